//! Transfers across real processes (docs/protocol.md, "Transfers"): a transfer CUS → ABA
//! done with central killed between every step, and a dispatch that crossed a cancel. Each
//! step is recorded where it happens; the stock moves exactly once and the shortfall of a
//! partial receipt is booked lost.
use crate::support::central::put_user_ok;
use crate::support::till::code;
use crate::support::transfers::{self as tr, check_central};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const FAST: &[&str] = &["--pull-interval", "200ms", "--breaker-wait-max", "1s"];

/// Central with P1 and P2, CUS holding 100 and 50 of them and ABA 5 of P1, a supervisor at
/// each branch, and both branches up to date.
async fn chain(dir: &TempDir, central_flags: &[&str]) -> (Proc, Proc, Proc) {
    let c = client();
    let central = spawn_central(dir.path(), &["CUS", "ABA"], central_flags);
    put_product(&c, &central.url, "P1", "Arroz 1 kg", 450).await;
    put_product(&c, &central.url, "P2", "Aceite 1 l", 990).await;
    allocate(&c, &central.url, "CUS", "P1", 100).await;
    allocate(&c, &central.url, "CUS", "P2", 50).await;
    allocate(&c, &central.url, "ABA", "P1", 5).await;
    let sara = json!({"name": "Sara", "role": "supervisor", "branches": ["CUS", "ABA"], "pin": "7390"});
    put_user_ok(&c, &central.url, "sara", sara).await;
    let cus = spawn_branch(dir.path(), "CUS", &central.url, FAST);
    let aba = spawn_branch(dir.path(), "ABA", &central.url, FAST);
    for (b, url) in [("CUS", &cus.url), ("ABA", &aba.url)] {
        wait_pulled(&c, &central.url, url, b, Duration::from_secs(20)).await;
    }
    (central, cus, aba)
}

async fn stock(c: &reqwest::Client, branch: &str, p: &str) -> i64 {
    get_json(c, &format!("{branch}/inventory/{p}"), POS_TOKEN).await["stock"]
        .as_i64()
        .expect("stock")
}

async fn central_product(c: &reqwest::Client, central: &str, p: &str) -> Value {
    get_json(c, &format!("{central}/inventory/{p}"), ADMIN_TOKEN).await
}

async fn supervisor(c: &reqwest::Client, branch: &str) -> String {
    let r = c
        .post(format!("{branch}/login"))
        .json(&json!({"user_id": "sara", "pin": "7390"}))
        .send()
        .await
        .expect("login");
    let v: Value = r.json().await.expect("login body");
    v["token"].as_str().expect("a session token").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_stock_exactly_once_with_central_down_between_every_step() {
    let dir = TempDir::new("transfer-offline");
    let c = client();
    let (mut central, cus, aba) = chain(&dir, &[]).await;
    let id = tr::create(&c, &central.url, "CUS", "ABA", &[("P1", 30), ("P2", 10)]).await;
    for (b, url) in [("CUS", &cus.url), ("ABA", &aba.url)] {
        wait_pulled(&c, &central.url, url, b, Duration::from_secs(20)).await;
        assert_eq!(tr::get(&c, url, BRANCH_ADMIN_TOKEN, &id).await["status"], "requested");
    }

    // Central dies; CUS's supervisor dispatches offline.
    central.kill9();
    let sara_cus = supervisor(&c, &cus.url).await;
    let (status, v) = tr::step(&c, &cus.url, &sara_cus, &id, "dispatch", &json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["dispatched_by"].as_str()),
        (Some("in_transit"), Some("sara"))
    );
    assert_eq!(
        (stock(&c, &cus.url, "P1").await, stock(&c, &cus.url, "P2").await),
        (70, 40)
    );
    // ABA cannot receive what it does not know was dispatched.
    let (status, v) = tr::step(&c, &aba.url, BRANCH_ADMIN_TOKEN, &id, "receive", &json!({})).await;
    assert_eq!((status, code(&v)), (409, "transfer_conflict"), "{v}");

    // Central comes back: the dispatch reaches it once, and ABA learns of it by pull.
    central.restart();
    wait_drained(&c, &cus.url, Duration::from_secs(30)).await;
    wait_pulled(&c, &central.url, &aba.url, "ABA", Duration::from_secs(20)).await;
    assert_eq!(
        tr::get(&c, &aba.url, BRANCH_ADMIN_TOKEN, &id).await["status"],
        "in_transit"
    );
    let p1 = central_product(&c, &central.url, "P1").await;
    assert_eq!(
        (p1["by_branch"]["CUS"].as_i64(), p1["in_transit"].as_i64()),
        (Some(70), Some(30)),
        "{p1}"
    );
    assert_eq!(p1["total_stock"], 105, "{p1}");

    // Central dies again; ABA receives 28 of the 30 P1 and all the P2, offline.
    central.kill9();
    let body = json!({"lines": [{"product_id": "P1", "quantity": 28}, {"product_id": "P2", "quantity": 10}]});
    let (status, v) = tr::step(&c, &aba.url, BRANCH_ADMIN_TOKEN, &id, "receive", &body).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("received")), "{v}");
    let (again, v2) = tr::step(&c, &aba.url, BRANCH_ADMIN_TOKEN, &id, "receive", &body).await;
    assert_eq!((again, &v2), (200, &v), "a repeated receipt answers the same");
    assert_eq!(
        (stock(&c, &aba.url, "P1").await, stock(&c, &aba.url, "P2").await),
        (33, 10)
    );

    // Central back: the receipt applies once, the shortfall is booked lost, nothing is in
    // transit, and both branches agree with central.
    central.restart();
    wait_drained(&c, &aba.url, Duration::from_secs(30)).await;
    let t = tr::get(&c, &central.url, ADMIN_TOKEN, &id).await;
    assert_eq!(t["status"], "received", "{t}");
    let p1_line = t["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["product_id"] == "P1")
        .cloned();
    let p1_line = p1_line.expect("the P1 line");
    assert_eq!(
        (p1_line["received"].as_i64(), p1_line["lost"].as_i64()),
        (Some(28), Some(2)),
        "{t}"
    );
    let (in_transit, lost) = check_central(&c, &central.url).await;
    assert_eq!((in_transit, lost), (0, 2));
    let p1 = central_product(&c, &central.url, "P1").await;
    assert_eq!(
        (p1["total_stock"].as_i64(), p1["in_transit"].as_i64()),
        (Some(103), Some(0)),
        "{p1}"
    );
    let none = Default::default();
    for (b, url) in [("CUS", &cus.url), ("ABA", &aba.url)] {
        wait_pulled(&c, &central.url, url, b, Duration::from_secs(20)).await;
        check_invariant(&c, &central.url, url, b, &none, true).await;
        assert_eq!(
            tr::get(&c, url, BRANCH_ADMIN_TOKEN, &id).await["status"],
            "received",
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_that_crossed_a_cancel_wins_and_nothing_is_lost() {
    let dir = TempDir::new("transfer-cancel-race");
    let c = client();
    // Central refuses dispatch events for now, as a central that cannot be reached would:
    // the dispatch is done at CUS while central still sees the transfer as requested.
    let (mut central, cus, aba) = chain(&dir, &["--refuse-event-kind", "transfer_dispatched"]).await;
    let id = tr::create(&c, &central.url, "CUS", "ABA", &[("P1", 12)]).await;
    wait_pulled(&c, &central.url, &cus.url, "CUS", Duration::from_secs(20)).await;
    let (status, v) = tr::step(&c, &cus.url, BRANCH_ADMIN_TOKEN, &id, "dispatch", &json!({})).await;
    assert_eq!(status, 200, "{v}");

    // Head office cancels, not knowing: central says cancelled, CUS keeps its dispatch.
    let r = c
        .post(format!("{}/transfers/{id}/cancel", central.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status().as_u16(), 200);
    wait_pulled(&c, &central.url, &cus.url, "CUS", Duration::from_secs(20)).await;
    assert_eq!(
        tr::get(&c, &cus.url, BRANCH_ADMIN_TOKEN, &id).await["status"],
        "in_transit"
    );
    assert_eq!(stock(&c, &cus.url, "P1").await, 88);

    // A central that applies dispatches: the dispatch wins over the cancel.
    central.remove_arg("--refuse-event-kind");
    central.restart();
    wait_drained(&c, &cus.url, Duration::from_secs(30)).await;
    let t = tr::get(&c, &central.url, ADMIN_TOKEN, &id).await;
    assert_eq!(t["status"], "in_transit", "{t}");
    assert!(t["cancelled_at"].is_string(), "the crossed cancel stays on record: {t}");
    let again = c
        .post(format!("{}/transfers/{id}/cancel", central.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("cancel again");
    assert_eq!(
        again.status().as_u16(),
        409,
        "a dispatched transfer cannot be cancelled"
    );

    // ABA receives it all; every unit is accounted for.
    wait_pulled(&c, &central.url, &aba.url, "ABA", Duration::from_secs(20)).await;
    let (status, v) = tr::step(&c, &aba.url, BRANCH_ADMIN_TOKEN, &id, "receive", &json!({})).await;
    assert_eq!(status, 200, "{v}");
    wait_drained(&c, &aba.url, Duration::from_secs(30)).await;
    assert_eq!(check_central(&c, &central.url).await, (0, 0));
    let none = Default::default();
    for (b, url) in [("CUS", &cus.url), ("ABA", &aba.url)] {
        wait_pulled(&c, &central.url, url, b, Duration::from_secs(20)).await;
        check_invariant(&c, &central.url, url, b, &none, true).await;
    }
    assert_eq!(stock(&c, &aba.url, "P1").await, 17);
}
