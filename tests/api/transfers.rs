//! Transfers at one branch (docs/protocol.md, "Transfers"): central's view arriving by pull,
//! the dispatch at the sending branch and the receipt at the receiving one, each checked
//! against the stock, the outbox and the transfer as the branch shows it. The fake central
//! ([`crate::support::fake_central`]) feeds users, products and transfers; the branch is
//! CUS, which sends `TR-…` transfers to ABA and receives others from ABA.
use crate::support::app::{self, App};
use crate::support::corpus;
use crate::support::fake_central::{transfer, user, FakeCentral};
use crate::support::till::{code, Clerk};
use crate::support::{
    client, eventually, get_json, metric, metrics_text, stored_events, TempDir, BRANCH_ADMIN_TOKEN, POS_TOKEN,
};
use serde_json::{json, Value};
use std::time::Duration;

/// Staff at CUS, product P2 (P1 comes with the fake: 1000 units), and the transfers the
/// tests start from.
fn feed(transfers: Vec<Value>) -> Vec<Value> {
    let mut f = vec![
        user("ana", "cashier", &["CUS"], true, 1, "4821"),
        user("sara", "supervisor", &["CUS"], true, 1, "7390"),
        user("mario", "manager", &["*"], true, 1, "1357"),
        json!({"kind": "product", "product_id": "P2", "name": "P2", "price_cents": 2550, "version": 1}),
        json!({"kind": "allocation", "product_id": "P2", "quantity": 100}),
    ];
    f.extend(transfers);
    f
}

struct Store {
    central: FakeCentral,
    branch: App,
    sara: Clerk,
}

/// Branch CUS pulling from a fake central that serves `transfers` (and then whatever the
/// test adds), with every transfer of `transfers` pulled before it returns.
async fn store(dir: &TempDir, transfers: Vec<Value>) -> Store {
    // The ones this branch keeps: between CUS and another branch.
    let ids: Vec<String> = transfers
        .iter()
        .map(|c| &c["transfer"])
        .filter(|t| (t["from_branch"] == "CUS") != (t["to_branch"] == "CUS"))
        .filter_map(|t| t["transfer_id"].as_str().map(String::from))
        .collect();
    let central = FakeCentral::start(feed(transfers)).await;
    let branch = app::spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "200ms"]).await;
    let base = branch.url.clone();
    eventually(Duration::from_secs(10), "P2 and the users pulled", || async {
        let inv = get_json(&client(), &format!("{base}/inventory/P2"), POS_TOKEN).await;
        (inv["stock"] == 100).then_some(())
    })
    .await;
    let sara = Clerk::login(&base, "sara", "7390").await;
    for id in ids {
        wait_status(&sara, &id, None).await;
    }
    Store { central, branch, sara }
}

/// Waits until the branch knows transfer `id` (with `status`, if given); the transfer.
async fn wait_status(clerk: &Clerk, id: &str, status: Option<&str>) -> Value {
    eventually(
        Duration::from_secs(10),
        &format!("{id} pulled ({status:?})"),
        || async {
            let (s, t) = clerk.get(&format!("/transfers/{id}")).await;
            (s == 200 && status.is_none_or(|st| t["status"] == st)).then_some(t)
        },
    )
    .await
}

async fn stock(branch: &App, product: &str) -> i64 {
    let v = get_json(&client(), &format!("{}/inventory/{product}", branch.url), POS_TOKEN).await;
    v["stock"].as_i64().expect("stock")
}

/// The transfer events in the branch's store, oldest first.
fn transfer_events(dir: &TempDir) -> Vec<Value> {
    stored_events(dir.path(), "CUS")
        .into_iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("transfer_")))
        .collect()
}

const OUT: &str = "TR-000001";
const IN: &str = "TR-000002";

/// TR-000001: CUS sends ABA 10 P1 and 5 P2 (requested). TR-000002: ABA sends CUS 8 P1 and
/// 3 P2 (requested; the tests move it on).
fn both_ways() -> Vec<Value> {
    vec![
        transfer(OUT, "CUS", "ABA", "requested", &[("P1", 10), ("P2", 5)]),
        transfer(IN, "ABA", "CUS", "requested", &[("P1", 8), ("P2", 3)]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pulled_transfer_shows_at_the_branch_that_sends_or_receives_it_and_no_other() {
    let dir = TempDir::new("tr-pulled");
    let s = store(
        &dir,
        vec![
            transfer(OUT, "CUS", "ABA", "requested", &[("P1", 10)]),
            transfer(IN, "ABA", "CUS", "in_transit", &[("P2", 3)]),
            // Neither end is CUS, and a malformed one: both skipped, the pull goes on.
            transfer("TR-000003", "ABA", "LIM", "requested", &[("P1", 1)]),
            transfer("TR-000004", "CUS", "CUS", "requested", &[("P1", 1)]),
            transfer("TR-000005", "CUS", "LIM", "cancelled", &[("P1", 2)]),
        ],
    )
    .await;
    wait_status(&s.sara, "TR-000005", Some("cancelled")).await;
    let (status, all) = s.sara.get("/transfers").await;
    assert_eq!(status, 200, "{all}");
    let ids: Vec<&str> = all["transfers"]
        .as_array()
        .expect("transfers")
        .iter()
        .filter_map(|t| t["transfer_id"].as_str())
        .collect();
    assert_eq!(ids, [OUT, IN, "TR-000005"]);
    let (_, sent) = s.sara.get(&format!("/transfers/{OUT}")).await;
    assert_eq!(
        (&sent["from_branch"], &sent["to_branch"], &sent["status"]),
        (&json!("CUS"), &json!("ABA"), &json!("requested"))
    );
    assert_eq!(sent["lines"], json!([{"product_id": "P1", "quantity": 10}]));
    let (_, in_transit) = s.sara.get("/transfers?status=in_transit").await;
    assert_eq!(in_transit["transfers"][0]["transfer_id"], IN);
    assert_eq!(in_transit["transfers"].as_array().map(Vec::len), Some(1));
    let (status, body) = s.sara.get("/transfers?status=lost").await;
    assert_eq!((status, code(&body)), (400, "invalid_request"));
    for unknown in ["TR-000003", "TR-000004", "TR-999999"] {
        let (status, body) = s.sara.get(&format!("/transfers/{unknown}")).await;
        assert_eq!((status, code(&body)), (404, "not_found"), "{unknown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_takes_the_stock_out_records_one_event_and_a_repeat_answers_the_same_transfer() {
    let dir = TempDir::new("tr-dispatch");
    let s = store(&dir, both_ways()).await;
    // A dispatch is local: it works with central down, and its event waits in the outbox.
    s.central.stop().await;
    let (status, t) = s.sara.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["status"], "in_transit");
    assert_eq!(t["dispatched_by"], "sara");
    assert!(t["dispatched_at"].is_string(), "{t}");
    assert_eq!((stock(&s.branch, "P1").await, stock(&s.branch, "P2").await), (990, 95));
    // Read your writes.
    let (_, shown) = s.sara.get(&format!("/transfers/{OUT}")).await;
    assert_eq!(shown, t);

    let events = transfer_events(&dir);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (&e["kind"], &e["transfer_id"], &e["user_id"]),
        (&json!("transfer_dispatched"), &json!(OUT), &json!("sara"))
    );
    assert_eq!(
        e["transfer_lines"],
        json!([{"product_id": "P1", "quantity": 10}, {"product_id": "P2", "quantity": 5}])
    );
    let outbox = get_json(&client(), &format!("{}/outbox", s.branch.url), BRANCH_ADMIN_TOKEN).await;
    let listed: Vec<&Value> = outbox["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "transfer_dispatched")
        .collect();
    assert_eq!(listed, [e]);

    // Again, with no body at all: the same transfer, nothing new.
    let r = client()
        .post(format!("{}/transfers/{OUT}/dispatch", s.branch.url))
        .bearer_auth(&s.sara.token)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 200);
    let again: Value = r.json().await.expect("JSON");
    assert_eq!(again, t);
    assert_eq!(transfer_events(&dir).len(), 1);
    assert_eq!((stock(&s.branch, "P1").await, stock(&s.branch, "P2").await), (990, 95));
    let text = metrics_text(&client(), &s.branch.url).await;
    assert_eq!(
        metric(&text, "colmena_transfer_steps_total{step=\"dispatched\"}"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_concurrent_dispatches_record_exactly_one_event_and_take_the_stock_once() {
    let dir = TempDir::new("tr-concurrent");
    let s = store(&dir, both_ways()).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let clerk = Clerk::with_token(&s.branch.url, "sara", s.sara.token.clone());
        tasks.push(tokio::spawn(async move {
            clerk.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every answer is the one dispatch"
    );
    assert_eq!(transfer_events(&dir).len(), 1);
    assert_eq!((stock(&s.branch, "P1").await, stock(&s.branch, "P2").await), (990, 95));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_without_enough_stock_is_refused_and_changes_nothing() {
    let dir = TempDir::new("tr-short");
    let s = store(
        &dir,
        vec![transfer(OUT, "CUS", "ABA", "requested", &[("P1", 10), ("P2", 101)])],
    )
    .await;
    let (status, body) = s.sara.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!((status, code(&body)), (409, "insufficient_stock"), "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("P2") && msg.contains("100"), "{msg}");
    // All or nothing: P1 was not taken either.
    assert_eq!(
        (stock(&s.branch, "P1").await, stock(&s.branch, "P2").await),
        (1000, 100)
    );
    assert!(transfer_events(&dir).is_empty());
    let (_, t) = s.sara.get(&format!("/transfers/{OUT}")).await;
    assert_eq!(t["status"], "requested");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_at_the_receiving_branch_of_a_cancelled_or_of_an_unknown_transfer_changes_nothing() {
    let dir = TempDir::new("tr-refused");
    let s = store(
        &dir,
        vec![
            transfer(IN, "ABA", "CUS", "requested", &[("P1", 8)]),
            transfer("TR-000003", "CUS", "ABA", "cancelled", &[("P1", 4)]),
        ],
    )
    .await;
    let (status, body) = s.sara.post(&format!("/transfers/{IN}/dispatch"), &json!({})).await;
    assert_eq!((status, code(&body)), (409, "transfer_conflict"), "{body}");
    assert_eq!(body["error"]["message"], "CUS receives TR-000002; ABA dispatches it");
    let (status, body) = s.sara.post("/transfers/TR-000003/dispatch", &json!({})).await;
    assert_eq!((status, code(&body)), (409, "transfer_conflict"), "{body}");
    let (status, body) = s.sara.post("/transfers/TR-999999/dispatch", &json!({})).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = s
        .sara
        .post(&format!("/transfers/{IN}/dispatch"), &json!({"x": 1}))
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    assert_eq!(stock(&s.branch, "P1").await, 1000);
    assert!(transfer_events(&dir).is_empty());
    let (_, t) = s.sara.get("/transfers/TR-000003").await;
    assert_eq!(t["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_waits_for_the_dispatch_then_adds_only_what_arrived_and_books_the_rest_lost() {
    let dir = TempDir::new("tr-receive");
    let s = store(&dir, both_ways()).await;
    let receive = |body: Value| {
        let sara = &s.sara;
        async move { sara.post(&format!("/transfers/{IN}/receive"), &body).await }
    };
    let (status, body) = receive(json!({})).await;
    assert_eq!((status, code(&body)), (409, "transfer_conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not dispatched yet"),
        "{body}"
    );
    // At the sending side a receipt is the other branch's.
    let (status, body) = s.sara.post(&format!("/transfers/{OUT}/receive"), &json!({})).await;
    assert_eq!((status, code(&body)), (409, "transfer_conflict"), "{body}");

    s.central
        .add(transfer(IN, "ABA", "CUS", "in_transit", &[("P1", 8), ("P2", 3)]));
    wait_status(&s.sara, IN, Some("in_transit")).await;
    for (bad, want) in [
        (
            json!({"lines": [{"product_id": "P1", "quantity": 9}]}),
            (409, "receipt_exceeds_dispatch"),
        ),
        (
            json!({"lines": [{"product_id": "P9", "quantity": 1}]}),
            (409, "receipt_exceeds_dispatch"),
        ),
        (
            json!({"lines": [{"product_id": "P1", "quantity": -1}]}),
            (400, "invalid_request"),
        ),
    ] {
        let (status, body) = receive(bad.clone()).await;
        assert_eq!((status, code(&body)), want, "{bad}: {body}");
    }
    assert_eq!(
        (stock(&s.branch, "P1").await, stock(&s.branch, "P2").await),
        (1000, 100)
    );
    assert!(transfer_events(&dir).is_empty());

    // 7 of 8 P1 arrived, no P2.
    let partial = json!({"lines": [{"product_id": "P1", "quantity": 7}]});
    let (status, t) = receive(partial.clone()).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["status"], "received");
    assert_eq!(t["received_by"], "sara");
    assert_eq!(
        t["lines"],
        json!([{"product_id": "P1", "quantity": 8, "received": 7, "lost": 1},
            {"product_id": "P2", "quantity": 3, "received": 0, "lost": 3}])
    );
    assert_eq!(
        (stock(&s.branch, "P1").await, stock(&s.branch, "P2").await),
        (1007, 100)
    );
    let events = transfer_events(&dir);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["kind"], &events[0]["transfer_id"], &events[0]["user_id"]),
        (&json!("transfer_received"), &json!(IN), &json!("sara"))
    );
    assert_eq!(
        events[0]["transfer_lines"],
        json!([{"product_id": "P1", "quantity": 7, "lost": 1}, {"product_id": "P2", "quantity": 0, "lost": 3}])
    );

    // The same receipt again: the same answer, nothing new. Another one: a conflict.
    let (status, again) = receive(partial).await;
    assert_eq!((status, &again), (200, &t));
    let (status, body) = receive(json!({})).await;
    assert_eq!((status, code(&body)), (409, "transfer_conflict"), "{body}");
    assert_eq!(transfer_events(&dir).len(), 1);
    assert_eq!(stock(&s.branch, "P1").await, 1007);
    // A pull that still says in_transit does not undo the receipt.
    s.central
        .add(transfer(IN, "ABA", "CUS", "in_transit", &[("P1", 8), ("P2", 3)]));
    s.central
        .add(transfer("TR-000009", "ABA", "CUS", "requested", &[("P1", 1)]));
    wait_status(&s.sara, "TR-000009", None).await;
    let (_, shown) = s.sara.get(&format!("/transfers/{IN}")).await;
    assert_eq!(shown, t);
    let text = metrics_text(&client(), &s.branch.url).await;
    assert_eq!(
        metric(&text, "colmena_transfer_steps_total{step=\"received\"}"),
        Some(1.0)
    );
    assert_eq!(metric(&text, "colmena_transfer_units_lost_total"), Some(4.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_that_still_says_requested_or_cancelled_does_not_undo_a_local_dispatch() {
    let dir = TempDir::new("tr-merge");
    let s = store(&dir, both_ways()).await;
    let (status, t) = s.sara.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!(status, 200, "{t}");
    // Central's view from before it applied the dispatch, then a cancel that crossed it.
    s.central
        .add(transfer(OUT, "CUS", "ABA", "requested", &[("P1", 10), ("P2", 5)]));
    s.central
        .add(transfer(OUT, "CUS", "ABA", "cancelled", &[("P1", 10), ("P2", 5)]));
    s.central
        .add(transfer("TR-000009", "ABA", "CUS", "requested", &[("P1", 1)]));
    wait_status(&s.sara, "TR-000009", None).await;
    let (_, shown) = s.sara.get(&format!("/transfers/{OUT}")).await;
    assert_eq!(shown, t, "the local dispatch stands");
    assert_eq!(stock(&s.branch, "P1").await, 990);
    // A requested transfer cancelled at central becomes cancelled here.
    s.central
        .add(transfer(IN, "ABA", "CUS", "cancelled", &[("P1", 8), ("P2", 3)]));
    wait_status(&s.sara, IN, Some("cancelled")).await;
    // Central dispatched-wins: a cancelled transfer that central says is in transit is.
    s.central
        .add(transfer(IN, "ABA", "CUS", "in_transit", &[("P1", 8), ("P2", 3)]));
    wait_status(&s.sara, IN, Some("in_transit")).await;
    assert_eq!(transfer_events(&dir).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_branch_keeps_its_transfers_and_their_states() {
    let dir = TempDir::new("tr-restart");
    let mut s = store(&dir, both_ways()).await;
    let (status, sent) = s.sara.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!(status, 200, "{sent}");
    s.central
        .add(transfer(IN, "ABA", "CUS", "in_transit", &[("P1", 8), ("P2", 3)]));
    wait_status(&s.sara, IN, Some("in_transit")).await;
    let (status, got) = s.sara.post(&format!("/transfers/{IN}/receive"), &json!({})).await;
    assert_eq!(status, 200, "{got}");
    let (_, before) = s.sara.get("/transfers").await;
    s.central.stop().await;
    s.branch.restart().await;
    let sara = Clerk::login(&s.branch.url, "sara", "7390").await;
    let (_, after) = sara.get("/transfers").await;
    assert_eq!(after, before);
    assert_eq!(after["transfers"][0]["status"], "in_transit");
    assert_eq!(after["transfers"][1]["status"], "received");
    assert_eq!((stock(&s.branch, "P1").await, stock(&s.branch, "P2").await), (998, 98));
    // The steps stand after the restart: a repeat records nothing.
    let (status, again) = sara.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!((status, &again), (200, &sent));
    assert_eq!(transfer_events(&dir).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cashier_and_the_pos_token_may_not_touch_transfers_a_manager_and_the_branch_admin_may() {
    let dir = TempDir::new("tr-perm");
    let s = store(&dir, both_ways()).await;
    let ana = Clerk::login(&s.branch.url, "ana", "4821").await;
    let pos = Clerk::with_token(&s.branch.url, "pos", POS_TOKEN.into());
    for clerk in [&ana, &pos] {
        let (status, body) = clerk.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{}: {body}", clerk.user);
        let (status, _) = clerk.get("/transfers").await;
        assert_eq!(status, 403, "{}", clerk.user);
    }
    assert!(transfer_events(&dir).is_empty());
    let mario = Clerk::login(&s.branch.url, "mario", "1357").await;
    let admin = Clerk::with_token(&s.branch.url, "admin", BRANCH_ADMIN_TOKEN.into());
    for clerk in [&mario, &admin] {
        let (status, _) = clerk.get(&format!("/transfers/{OUT}")).await;
        assert_eq!(status, 200, "{}", clerk.user);
    }
    // The admin token names nobody: the dispatch records no user.
    let (status, t) = admin.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!(status, 200, "{t}");
    assert!(t.get("dispatched_by").is_none(), "{t}");
    assert!(transfer_events(&dir)[0].get("user_id").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_receipts_from_the_corpus_get_their_4xx_and_change_nothing() {
    let dir = TempDir::new("tr-corpus");
    let s = store(&dir, both_ways()).await;
    s.central
        .add(transfer(IN, "ABA", "CUS", "in_transit", &[("P1", 8), ("P2", 3)]));
    wait_status(&s.sara, IN, Some("in_transit")).await;
    let cases = corpus::load("transfers.json", None);
    assert!(cases.len() >= 15, "only {} cases", cases.len());
    let failures = corpus::run_all(&cases, |_| s.branch.addr.clone()).await;
    corpus::assert_no_failures(&failures, cases.len());
    assert_eq!(
        (stock(&s.branch, "P1").await, stock(&s.branch, "P2").await),
        (1000, 100)
    );
    assert!(transfer_events(&dir).is_empty());
    let (_, t) = s.sara.get(&format!("/transfers/{IN}")).await;
    assert_eq!(t["status"], "in_transit");
    let (_, t) = s.sara.get(&format!("/transfers/{OUT}")).await;
    assert_eq!(t["status"], "requested");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_no_longer_sold_may_still_be_dispatched() {
    let dir = TempDir::new("tr-inactive");
    let s = store(
        &dir,
        vec![
            json!({"kind": "allocation", "product_id": "P3", "quantity": 6}),
            json!({"kind": "product", "product_id": "P3", "name": "P3", "price_cents": 10, "version": 1,
                "active": false}),
            transfer(OUT, "CUS", "ABA", "requested", &[("P3", 6)]),
        ],
    )
    .await;
    let sold = client()
        .post(format!("{}/sell", s.branch.url))
        .bearer_auth(POS_TOKEN)
        .json(&json!({"product_id": "P3", "quantity": 1}))
        .send()
        .await
        .expect("POST /sell");
    assert_eq!(sold.status().as_u16(), 409, "P3 is not sold any more");
    let (status, t) = s.sara.post(&format!("/transfers/{OUT}/dispatch"), &json!({})).await;
    assert_eq!((status, &t["status"]), (200, &json!("in_transit")), "{t}");
    assert_eq!(stock(&s.branch, "P3").await, 0);
}
