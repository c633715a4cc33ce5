//! Transfers from head office to two stores and back (docs/protocol.md, "Transfers"), with a
//! real central and real branches in-process: the transfer reaches its two branches (and
//! no other) by pull, each step moves stock once at central, and every impossible step,
//! wherever it is tried, is a documented 4xx that changes nothing.
use crate::support::app::{self, App};
use crate::support::central::put_user_ok;
use crate::support::till::code;
use crate::support::transfers::{self as tr, check_central};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

struct Chain {
    central: App,
    cus: App,
    aba: App,
    lim: App,
    _dir: TempDir,
}

/// P1 and P2 at central; CUS holds 100 P1 and 20 P2, ABA 5 P1; Sara supervises both stores
/// and Ana is a cashier at CUS.
async fn chain(tag: &str) -> Chain {
    let dir = TempDir::new(tag);
    let c = client();
    let central = app::spawn_central(dir.path(), &["CUS", "ABA", "LIM"], &[]).await;
    let u = central.url.clone();
    put_product(&c, &u, "P1", "Arroz 1 kg", 450).await;
    put_product(&c, &u, "P2", "Aceite 1 l", 990).await;
    allocate(&c, &u, "CUS", "P1", 100).await;
    allocate(&c, &u, "CUS", "P2", 20).await;
    allocate(&c, &u, "ABA", "P1", 5).await;
    let sara = json!({"name": "Sara", "role": "supervisor", "branches": ["CUS", "ABA"], "pin": "7390"});
    put_user_ok(&c, &u, "sara", sara).await;
    let ana = json!({"name": "Ana", "role": "cashier", "branches": ["CUS"], "pin": "4821"});
    put_user_ok(&c, &u, "ana", ana).await;
    let fast = ["--pull-interval", "100ms"];
    let cus = app::spawn_branch(dir.path(), "CUS", &u, &fast).await;
    let aba = app::spawn_branch(dir.path(), "ABA", &u, &fast).await;
    let lim = app::spawn_branch(dir.path(), "LIM", &u, &fast).await;
    let chain = Chain {
        central,
        cus,
        aba,
        lim,
        _dir: dir,
    };
    chain.pulled().await;
    chain
}

impl Chain {
    async fn pulled(&self) {
        let c = client();
        for (b, app) in [("CUS", &self.cus), ("ABA", &self.aba), ("LIM", &self.lim)] {
            wait_pulled(&c, &self.central.url, &app.url, b, Duration::from_secs(20)).await;
        }
    }

    async fn drained(&self) {
        let c = client();
        for app in [&self.cus, &self.aba, &self.lim] {
            wait_drained(&c, &app.url, Duration::from_secs(20)).await;
        }
        self.pulled().await;
    }

    /// Everything a refused step must leave as it was: each branch's last seq and stock,
    /// and central's transfers and inventory.
    async fn snapshot(&self) -> Value {
        let c = client();
        let mut branches = Vec::new();
        for app in [&self.cus, &self.aba, &self.lim] {
            let st = get_json(&c, &format!("{}/status", app.url), POS_TOKEN).await;
            let inv = get_json(&c, &format!("{}/inventory", app.url), POS_TOKEN).await;
            let transfers = get_json(&c, &format!("{}/transfers", app.url), BRANCH_ADMIN_TOKEN).await;
            branches.push(json!([st["outbox"]["last_seq"], inv["products"], transfers]));
        }
        let central_transfers = get_json(&c, &format!("{}/transfers", self.central.url), ADMIN_TOKEN).await;
        let inv = get_json(&c, &format!("{}/inventory", self.central.url), ADMIN_TOKEN).await;
        json!({"branches": branches, "central": [central_transfers, inv]})
    }
}

async fn login(c: &reqwest::Client, branch: &str, user: &str, pin: &str) -> String {
    let r = c
        .post(format!("{branch}/login"))
        .json(&json!({"user_id": user, "pin": pin}))
        .send()
        .await
        .expect("login");
    let v: Value = r.json().await.expect("login body");
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login {user}: {v}"))
        .to_string()
}

async fn stock(c: &reqwest::Client, branch: &str, p: &str) -> i64 {
    get_json(c, &format!("{branch}/inventory/{p}"), POS_TOKEN).await["stock"]
        .as_i64()
        .expect("stock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_reaches_its_two_branches_only_and_each_step_moves_stock_once() {
    let ch = chain("transfer-chain").await;
    let c = client();
    let id = tr::create(&c, &ch.central.url, "CUS", "ABA", &[("P1", 30), ("P2", 4)]).await;
    ch.pulled().await;
    for b in [&ch.cus, &ch.aba] {
        let t = tr::get(&c, &b.url, BRANCH_ADMIN_TOKEN, &id).await;
        assert_eq!(
            (t["status"].as_str(), t["from_branch"].as_str()),
            (Some("requested"), Some("CUS")),
            "{t}"
        );
    }
    let at_lim = get_json(&c, &format!("{}/transfers", ch.lim.url), BRANCH_ADMIN_TOKEN).await;
    assert_eq!(at_lim["transfers"], json!([]), "LIM is not part of this transfer");

    let sara = login(&c, &ch.cus.url, "sara", "7390").await;
    let (status, v) = tr::step(&c, &ch.cus.url, &sara, &id, "dispatch", &json!({})).await;
    assert_eq!(
        (status, v["status"].as_str(), v["dispatched_by"].as_str()),
        (200, Some("in_transit"), Some("sara")),
        "{v}"
    );
    assert_eq!(
        (stock(&c, &ch.cus.url, "P1").await, stock(&c, &ch.cus.url, "P2").await),
        (70, 16)
    );
    let listed = get_json(&c, &format!("{}/transfers?status=in_transit", ch.cus.url), &sara).await;
    assert_eq!(listed["transfers"][0]["transfer_id"], id.as_str(), "{listed}");
    ch.drained().await;
    let p1 = get_json(&c, &format!("{}/inventory/P1", ch.central.url), ADMIN_TOKEN).await;
    assert_eq!(
        (
            p1["by_branch"]["CUS"].as_i64(),
            p1["in_transit"].as_i64(),
            p1["total_stock"].as_i64()
        ),
        (Some(70), Some(30), Some(105)),
        "{p1}"
    );
    assert_eq!(check_central(&c, &ch.central.url).await, (34, 0));

    let sara_aba = login(&c, &ch.aba.url, "sara", "7390").await;
    let body = json!({"lines": [{"product_id": "P1", "quantity": 29}]});
    let (status, v) = tr::step(&c, &ch.aba.url, &sara_aba, &id, "receive", &body).await;
    assert_eq!(
        (status, v["status"].as_str(), v["received_by"].as_str()),
        (200, Some("received"), Some("sara")),
        "{v}"
    );
    assert_eq!(
        (stock(&c, &ch.aba.url, "P1").await, stock(&c, &ch.aba.url, "P2").await),
        (34, 0)
    );
    ch.drained().await;
    assert_eq!(
        check_central(&c, &ch.central.url).await,
        (0, 5),
        "1 P1 and 4 P2 booked lost"
    );
    let t = tr::get(&c, &ch.central.url, ADMIN_TOKEN, &id).await;
    assert_eq!(t["status"], "received");
    assert_eq!(
        tr::get(&c, &ch.cus.url, BRANCH_ADMIN_TOKEN, &id).await["lines"],
        t["lines"],
        "CUS sees the receipt"
    );
    let none = Default::default();
    for (b, app) in [("CUS", &ch.cus), ("ABA", &ch.aba), ("LIM", &ch.lim)] {
        check_invariant(&c, &ch.central.url, &app.url, b, &none, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_transfers_and_steps_are_refused_wherever_they_are_tried_and_change_nothing() {
    let ch = chain("transfer-refusals").await;
    let c = client();
    let id = tr::create(&c, &ch.central.url, "CUS", "ABA", &[("P1", 30)]).await;
    ch.pulled().await;
    let before = ch.snapshot().await;
    let (cus, aba) = (ch.cus.url.clone(), ch.aba.url.clone());

    // At central: each request is data, with the code it must get.
    let line = |p: Value, q: Value| json!([{"product_id": p, "quantity": q}]);
    let requests: Vec<(Value, u16, &str)> = vec![
        (
            json!({"from_branch": "CUS", "to_branch": "CUS", "lines": line(json!("P1"), json!(1))}),
            400,
            "invalid_request",
        ),
        (
            json!({"from_branch": "CUS", "to_branch": "XYZ", "lines": line(json!("P1"), json!(1))}),
            404,
            "not_found",
        ),
        (
            json!({"from_branch": "QQQ", "to_branch": "ABA", "lines": line(json!("P1"), json!(1))}),
            404,
            "not_found",
        ),
        (
            json!({"from_branch": "CUS", "to_branch": "ABA", "lines": line(json!("NOPE"), json!(1))}),
            404,
            "unknown_product",
        ),
        (
            json!({"from_branch": "CUS", "to_branch": "ABA", "lines": line(json!("P1"), json!(0))}),
            400,
            "invalid_request",
        ),
        (
            json!({"from_branch": "CUS", "to_branch": "ABA", "lines": line(json!("P1"), json!(-3))}),
            400,
            "invalid_request",
        ),
        (
            json!({"from_branch": "CUS", "to_branch": "ABA", "lines": []}),
            400,
            "invalid_request",
        ),
    ];
    for (i, (body, want, want_code)) in requests.iter().enumerate() {
        let (status, v) = tr::request(&c, &ch.central.url, body, &format!("bad-{i}")).await;
        assert_eq!((status, code(&v)), (*want, *want_code), "{body}: {v}");
    }

    // At the branches: the wrong branch for a step, a receipt before the dispatch is known,
    // more than dispatched, a cashier, an unknown transfer.
    let ana = login(&c, &cus, "ana", "4821").await;
    let admin = BRANCH_ADMIN_TOKEN;
    let steps: Vec<(&str, &str, &str, Value, u16, &str)> = vec![
        (aba.as_str(), admin, "dispatch", json!({}), 409, "transfer_conflict"),
        (aba.as_str(), admin, "receive", json!({}), 409, "transfer_conflict"),
        (cus.as_str(), admin, "receive", json!({}), 409, "transfer_conflict"),
        (cus.as_str(), ana.as_str(), "dispatch", json!({}), 403, "forbidden"),
    ];
    for (base, token, step, body, want, want_code) in &steps {
        let (status, v) = tr::step(&c, base, token, &id, step, body).await;
        assert_eq!((status, code(&v)), (*want, *want_code), "{step} at {base}: {v}");
    }
    let (status, v) = tr::step(&c, &cus, admin, "TR-999999", "dispatch", &json!({})).await;
    assert_eq!((status, code(&v)), (404, "not_found"), "{v}");
    assert_eq!(ch.snapshot().await, before, "a refused request changed something");

    // Once dispatched and known at ABA: a receipt over the dispatch, or of another product.
    let (status, v) = tr::step(&c, &cus, admin, &id, "dispatch", &json!({})).await;
    assert_eq!(status, 200, "{v}");
    ch.drained().await;
    let before = ch.snapshot().await;
    let receipts = [
        (
            json!({"lines": [{"product_id": "P1", "quantity": 31}]}),
            409,
            "receipt_exceeds_dispatch",
        ),
        (
            json!({"lines": [{"product_id": "P2", "quantity": 1}]}),
            409,
            "receipt_exceeds_dispatch",
        ),
        (
            json!({"lines": [{"product_id": "P1", "quantity": -1}]}),
            400,
            "invalid_request",
        ),
        (
            json!({"lines": [{"product_id": "P1", "quantity": "all"}]}),
            400,
            "invalid_request",
        ),
    ];
    for (body, want, want_code) in &receipts {
        let (status, v) = tr::step(&c, &aba, admin, &id, "receive", body).await;
        assert_eq!((status, code(&v)), (*want, *want_code), "{body}: {v}");
    }
    let (status, v) = tr::step(&c, &cus, admin, &id, "receive", &json!({})).await;
    assert_eq!(
        (status, code(&v)),
        (409, "transfer_conflict"),
        "receipt at the sending branch: {v}"
    );
    let cancel = c
        .post(format!("{}/transfers/{id}/cancel", ch.central.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("cancel");
    assert_eq!(
        cancel.status().as_u16(),
        409,
        "a dispatched transfer cannot be cancelled"
    );
    assert_eq!(ch.snapshot().await, before, "a refused request changed something");
}
