//! Transfers between branches at central, over real HTTP (docs/protocol.md, "Transfers"):
//! requested at central, seen by pull by its two branches only, dispatched and received by
//! pushed events that move both ledgers through `in_transit`, a dispatch winning over a
//! cancel it crossed, impossible steps refusing the whole push, duplicates compared,
//! `Idempotency-Key` replays, bad requests as data, and the metrics.
//!
//! Every test runs on both stores (`sqlite::…`, `postgres::…`), as in `central_api`.

use crate::support::app::{self, App};
use crate::support::central::{push, push_ok, sale, stock_of};
use crate::support::corpus;
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::{allocate, client, get_json, get_text, metric, metrics_text, put_product, TempDir, ADMIN_TOKEN};
use serde_json::{json, Value};

/// When the tests' dispatches happened: days before any run, so they are overdue.
const AT: &str = "2026-12-01T15:00:00Z";

/// A central knowing CUS, ABA and LIM, with P1 and P2 in its catalog and 100 P1 + 50 P2
/// allocated to CUS.
async fn start(db: StoreKind, tag: &str) -> (TempDir, App) {
    let dir = TempDir::new(tag);
    let central = app::spawn_central_db(&db.database(dir.path(), tag), &["CUS", "ABA", "LIM"], &[]).await;
    let (c, u) = (client(), central.url.clone());
    put_product(&c, &u, "P1", "Arroz", 520).await;
    put_product(&c, &u, "P2", "Aceite", 900).await;
    allocate(&c, &u, "CUS", "P1", 100).await;
    allocate(&c, &u, "CUS", "P2", 50).await;
    (dir, central)
}

fn request(lines: &[(&str, i64)]) -> Value {
    json!({"from_branch": "CUS", "to_branch": "ABA", "note": "ABA se quedó sin arroz",
        "lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>()})
}

/// `POST /transfers` (with an optional Idempotency-Key): status, body, replayed header.
async fn post_transfer(c: &reqwest::Client, u: &str, body: &Value, key: Option<&str>) -> (u16, Value, bool) {
    let mut r = c.post(format!("{u}/transfers")).bearer_auth(ADMIN_TOKEN).json(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let r = r.send().await.expect("POST /transfers");
    let replayed = r.headers().get("Idempotent-Replayed").is_some();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null), replayed)
}

/// Creates the usual transfer (10 P1 + 3 P2, CUS → ABA); its id.
async fn create(c: &reqwest::Client, u: &str) -> String {
    let (status, t, _) = post_transfer(c, u, &request(&[("P1", 10), ("P2", 3)]), None).await;
    assert_eq!(status, 201, "{t}");
    t["transfer_id"].as_str().expect("transfer_id").to_string()
}

async fn cancel(c: &reqwest::Client, u: &str, id: &str) -> (u16, Value) {
    let r = c
        .post(format!("{u}/transfers/{id}/cancel"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("cancel");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn transfer(c: &reqwest::Client, u: &str, id: &str) -> Value {
    get_json(c, &format!("{u}/transfers/{id}"), ADMIN_TOKEN).await
}

async fn list(c: &reqwest::Client, u: &str, query: &str) -> Vec<String> {
    let v = get_json(c, &format!("{u}/transfers{query}"), ADMIN_TOKEN).await;
    v["transfers"]
        .as_array()
        .expect("transfers")
        .iter()
        .map(|t| t["transfer_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The transfer changes `branch` pulls, in cursor order.
async fn pulled_transfers(c: &reqwest::Client, u: &str, branch: &str) -> Vec<Value> {
    let v = get_json(c, &format!("{u}/sync/pull?branch_id={branch}"), ADMIN_TOKEN).await;
    v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|ch| ch["kind"] == "transfer")
        .map(|ch| ch["transfer"].clone())
        .collect()
}

fn dispatched(seq: u64, id: &str, lines: &[(&str, i64)]) -> Value {
    json!({"seq": seq, "kind": "transfer_dispatched", "occurred_at": AT, "transfer_id": id, "user_id": "sara",
        "transfer_lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>()})
}

fn received(seq: u64, id: &str, lines: &[(&str, i64, i64)]) -> Value {
    json!({"seq": seq, "kind": "transfer_received", "occurred_at": "2026-12-02T09:30:00Z", "transfer_id": id,
        "user_id": "beto",
        "transfer_lines": lines.iter().map(|(p, q, l)| json!({"product_id": p, "quantity": q, "lost": l})).collect::<Vec<_>>()})
}

async fn product(c: &reqwest::Client, u: &str, id: &str) -> Value {
    get_json(c, &format!("{u}/inventory/{id}"), ADMIN_TOKEN).await
}

/// Checks `total_stock = Σ by_branch + in_transit` on every product; returns the inventory.
async fn inventory(c: &reqwest::Client, u: &str) -> Value {
    let inv = get_json(c, &format!("{u}/inventory"), ADMIN_TOKEN).await;
    for p in inv["products"].as_array().expect("products") {
        let sum: i64 = p["by_branch"]
            .as_object()
            .expect("by_branch")
            .values()
            .map(|v| v.as_i64().unwrap_or(0))
            .sum();
        assert_eq!(
            p["total_stock"].as_i64(),
            Some(sum + p["in_transit"].as_i64().unwrap_or(-1)),
            "{p}"
        );
    }
    inv
}

/// Everything a client can read that a transfer step could move, as raw bodies.
async fn snapshot(c: &reqwest::Client, u: &str) -> String {
    let branches = get_text(c, &format!("{u}/branches"), Some(ADMIN_TOKEN)).await;
    branches + "\n" + &state(c, u).await
}

/// [`snapshot`] without `/branches` (whose `last_push_at` an all-duplicate push moves).
async fn state(c: &reqwest::Client, u: &str) -> String {
    let mut out = String::new();
    for path in [
        "/transfers",
        "/inventory",
        "/sync/pull?branch_id=CUS",
        "/sync/pull?branch_id=ABA",
        "/audit?limit=1000",
    ] {
        out.push_str(&get_text(c, &format!("{u}{path}"), Some(ADMIN_TOKEN)).await);
        out.push('\n');
    }
    out
}

// ------------------------------------------------------------------ create, read, feed

async fn a_transfer_is_created_listed_and_pulled_by_its_two_branches_only(db: StoreKind) {
    let (_d, central) = start(db, "tr-create").await;
    let (c, u) = (client(), central.url.clone());
    let (status, t, _) = post_transfer(&c, &u, &request(&[("P1", 10)]), None).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["transfer_id"], "TR-000001");
    assert_eq!(t["status"], "requested");
    assert_eq!(t["lines"], json!([{"product_id": "P1", "quantity": 10}]));
    assert!(t["requested_at"].as_str().is_some_and(|s| s.ends_with('Z')), "{t}");
    assert_eq!(transfer(&c, &u, "TR-000001").await, t);

    let mut other = request(&[("P2", 1)]);
    other["from_branch"] = json!("ABA");
    other["to_branch"] = json!("LIM");
    assert_eq!(post_transfer(&c, &u, &other, None).await.0, 201);
    assert_eq!(list(&c, &u, "").await, ["TR-000001", "TR-000002"]);
    assert_eq!(list(&c, &u, "?branch_id=CUS").await, ["TR-000001"]);
    assert_eq!(list(&c, &u, "?branch_id=ABA").await, ["TR-000001", "TR-000002"]);
    assert_eq!(list(&c, &u, "?branch_id=LIM&status=requested").await, ["TR-000002"]);
    assert!(list(&c, &u, "?status=in_transit").await.is_empty());

    // The feed: each branch sees the transfers it sends or receives, and no other.
    let ids = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|t| t["transfer_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(pulled_transfers(&c, &u, "CUS").await), ["TR-000001"]);
    assert_eq!(ids(pulled_transfers(&c, &u, "ABA").await), ["TR-000001", "TR-000002"]);
    assert_eq!(ids(pulled_transfers(&c, &u, "LIM").await), ["TR-000002"]);
    assert_eq!(
        pulled_transfers(&c, &u, "CUS").await[0],
        t,
        "the feed carries the whole transfer"
    );
    // An audit entry per create.
    let audit = get_json(&c, &format!("{u}/audit?limit=1000"), ADMIN_TOKEN).await;
    let creates = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "transfer.create")
        .count();
    assert_eq!(creates, 2);
}

// ------------------------------------------------------------------ dispatch and receipt

async fn a_dispatch_and_a_short_receipt_move_both_ledgers_through_in_transit(db: StoreKind) {
    let (_d, central) = start(db, "tr-move").await;
    let (c, u) = (client(), central.url.clone());
    let id = create(&c, &u).await;
    push_ok(&c, &u, "CUS", &[sale(1, &[("P1", 2, 520)])]).await;

    push_ok(&c, &u, "CUS", &[dispatched(2, &id, &[("P2", 3), ("P1", 10)])]).await;
    let t = transfer(&c, &u, &id).await;
    assert_eq!(
        (&t["status"], &t["dispatched_at"], &t["dispatched_by"]),
        (&json!("in_transit"), &json!(AT), &json!("sara"))
    );
    let inv = inventory(&c, &u).await;
    assert_eq!(stock_of(&inv, "P1", "CUS"), Some(88));
    assert_eq!(stock_of(&inv, "P2", "CUS"), Some(47));
    let p1 = product(&c, &u, "P1").await;
    assert_eq!(
        (p1["in_transit"].as_i64(), p1["total_stock"].as_i64()),
        (Some(10), Some(98)),
        "{p1}"
    );

    // ABA received 9 of 10 P1 and all 3 P2.
    push_ok(&c, &u, "ABA", &[received(1, &id, &[("P1", 9, 1), ("P2", 3, 0)])]).await;
    let t = transfer(&c, &u, &id).await;
    assert_eq!(t["status"], "received");
    assert_eq!(
        t["lines"],
        json!([{"product_id": "P1", "quantity": 10, "received": 9, "lost": 1},
               {"product_id": "P2", "quantity": 3, "received": 3, "lost": 0}])
    );
    assert_eq!(
        (&t["received_by"], &t["received_at"]),
        (&json!("beto"), &json!("2026-12-02T09:30:00Z"))
    );
    let inv = inventory(&c, &u).await;
    assert_eq!(stock_of(&inv, "P1", "ABA"), Some(9));
    assert_eq!(stock_of(&inv, "P2", "ABA"), Some(3));
    let p1 = product(&c, &u, "P1").await;
    assert_eq!(
        (p1["in_transit"].as_i64(), p1["total_stock"].as_i64()),
        (Some(0), Some(97)),
        "{p1}"
    );

    // Both branches saw every step: requested, in transit, received.
    for b in ["CUS", "ABA"] {
        let steps: Vec<Value> = pulled_transfers(&c, &u, b)
            .await
            .iter()
            .map(|t| t["status"].clone())
            .collect();
        assert_eq!(
            steps,
            [json!("requested"), json!("in_transit"), json!("received")],
            "{b}"
        );
    }
    assert!(pulled_transfers(&c, &u, "LIM").await.is_empty());
}

async fn a_product_only_in_transit_is_in_the_inventory(db: StoreKind) {
    let (_d, central) = start(db, "tr-only").await;
    let (c, u) = (client(), central.url.clone());
    put_product(&c, &u, "P3", "Azúcar", 400).await;
    let (status, t, _) = post_transfer(&c, &u, &request(&[("P3", 4)]), None).await;
    assert_eq!(status, 201, "{t}");
    push_ok(&c, &u, "CUS", &[dispatched(1, "TR-000001", &[("P3", 4)])]).await;
    let p3 = product(&c, &u, "P3").await;
    assert_eq!(p3["in_transit"], 4, "{p3}");
    assert_eq!(p3["by_branch"]["CUS"], -4, "{p3}");
    assert_eq!(p3["total_stock"], 0, "{p3}");
    inventory(&c, &u).await;
}

// ------------------------------------------------------------------ cancel

async fn a_dispatch_that_crossed_a_cancel_still_applies_and_a_later_cancel_is_refused(db: StoreKind) {
    let (_d, central) = start(db, "tr-cancel").await;
    let (c, u) = (client(), central.url.clone());
    let id = create(&c, &u).await;
    let (status, t) = cancel(&c, &u, &id).await;
    assert_eq!((status, &t["status"]), (200, &json!("cancelled")), "{t}");
    let cancelled_at = t["cancelled_at"].clone();
    assert!(cancelled_at.is_string());
    assert_eq!(
        cancel(&c, &u, &id).await,
        (200, t.clone()),
        "cancelling again answers the same"
    );

    // The store had already shipped it: the dispatch wins.
    push_ok(&c, &u, "CUS", &[dispatched(1, &id, &[("P1", 10), ("P2", 3)])]).await;
    let t = transfer(&c, &u, &id).await;
    assert_eq!(t["status"], "in_transit");
    assert_eq!(t["cancelled_at"], cancelled_at, "the cancel is kept on record");
    assert_eq!(product(&c, &u, "P1").await["in_transit"], 10);
    assert_eq!(stock_of(&inventory(&c, &u).await, "P1", "CUS"), Some(90));

    let (status, e) = cancel(&c, &u, &id).await;
    assert_eq!((status, &e["error"]["code"]), (409, &json!("transfer_conflict")), "{e}");
    assert_eq!(transfer(&c, &u, &id).await, t, "the refused cancel changed nothing");
}

async fn a_cancel_racing_a_dispatch_never_loses_the_dispatch(db: StoreKind) {
    let (_d, central) = start(db, "tr-race").await;
    let (c, u) = (client(), central.url.clone());
    let mut refused = 0;
    for seq in 1..=8u64 {
        let (status, t, _) = post_transfer(&c, &u, &request(&[("P1", 1)]), None).await;
        assert_eq!(status, 201, "{t}");
        let id = t["transfer_id"].as_str().unwrap().to_string();
        let events = [dispatched(seq, &id, &[("P1", 1)])];
        let ((cancel_status, body), (push_status, pushed)) =
            tokio::join!(cancel(&c, &u, &id), push(&c, &u, "CUS", &events));
        assert_eq!(push_status, 200, "the dispatch is always applied: {pushed}");
        match cancel_status {
            200 => assert_eq!(body["status"], "cancelled", "{body}"),
            409 => refused += 1,
            other => panic!("cancel answered {other}: {body}"),
        }
        let now = transfer(&c, &u, &id).await;
        assert_eq!(now["status"], "in_transit", "{now}");
    }
    let p1 = product(&c, &u, "P1").await;
    assert_eq!(
        (p1["in_transit"].as_i64(), p1["by_branch"]["CUS"].as_i64()),
        (Some(8), Some(92)),
        "{p1}"
    );
    assert!(refused <= 8);
}

// ------------------------------------------------------------------ impossible pushes

async fn impossible_transfer_steps_refuse_the_whole_push_and_change_nothing(db: StoreKind) {
    let (_d, central) = start(db, "tr-conflict").await;
    let (c, u) = (client(), central.url.clone());
    let id = create(&c, &u).await;
    push_ok(&c, &u, "CUS", &[sale(1, &[("P1", 1, 520)])]).await;
    push_ok(&c, &u, "ABA", &[sale(1, &[("P2", 1, 900)])]).await;
    let before = snapshot(&c, &u).await;

    let cases: Vec<(&str, &str, Vec<Value>)> = vec![
        (
            "dispatch by the receiving branch",
            "ABA",
            vec![dispatched(2, &id, &[("P1", 10), ("P2", 3)])],
        ),
        (
            "receipt before the dispatch",
            "ABA",
            vec![received(2, &id, &[("P1", 10, 0), ("P2", 3, 0)])],
        ),
        (
            "other quantities",
            "CUS",
            vec![dispatched(2, &id, &[("P1", 9), ("P2", 3)])],
        ),
        ("a line missing", "CUS", vec![dispatched(2, &id, &[("P1", 10)])]),
        (
            "another product",
            "CUS",
            vec![dispatched(2, &id, &[("P1", 10), ("P3", 3)])],
        ),
        (
            "an unknown transfer",
            "CUS",
            vec![dispatched(2, "TR-999999", &[("P1", 10)])],
        ),
        (
            "a sale then an impossible step",
            "CUS",
            vec![sale(2, &[("P1", 5, 520)]), dispatched(3, "TR-999999", &[("P1", 1)])],
        ),
        (
            "the same dispatch twice",
            "CUS",
            vec![
                dispatched(2, &id, &[("P1", 10), ("P2", 3)]),
                dispatched(3, &id, &[("P1", 10), ("P2", 3)]),
            ],
        ),
    ];
    for (what, branch, events) in cases {
        let (status, body) = push(&c, &u, branch, &events).await;
        assert_eq!(status, 409, "{what}: {body}");
        assert_eq!(body["error"]["code"], "transfer_conflict", "{what}: {body}");
        assert_eq!(body["applied_through"], 1, "{what}: {body}");
        let seq = events.last().unwrap()["seq"].as_u64().unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("event {seq}")),
            "{what}: {body}"
        );
        assert_eq!(snapshot(&c, &u).await, before, "{what} changed state");
    }

    // Received once, a second receipt is impossible too.
    push_ok(&c, &u, "CUS", &[dispatched(2, &id, &[("P1", 10), ("P2", 3)])]).await;
    let lines = [("P1", 10, 0), ("P2", 2, 0)];
    let (status, body) = push(&c, &u, "ABA", &[received(2, &id, &lines)]).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("transfer_conflict")),
        "units unaccounted: {body}"
    );
    push_ok(&c, &u, "ABA", &[received(2, &id, &[("P1", 10, 0), ("P2", 3, 0)])]).await;
    let (status, body) = push(&c, &u, "ABA", &[received(3, &id, &[("P1", 10, 0), ("P2", 3, 0)])]).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("transfer_conflict")),
        "received twice: {body}"
    );
}

// ------------------------------------------------------------------ duplicates

async fn a_repushed_transfer_step_is_a_duplicate_and_a_different_one_a_mismatch(db: StoreKind) {
    let (_d, central) = start(db, "tr-dup").await;
    let (c, u) = (client(), central.url.clone());
    let id = create(&c, &u).await;
    let step = dispatched(1, &id, &[("P1", 10), ("P2", 3)]);
    push_ok(&c, &u, "CUS", std::slice::from_ref(&step)).await;
    let before = state(&c, &u).await;
    assert_eq!(push_ok(&c, &u, "CUS", std::slice::from_ref(&step)).await, (1, 1));
    assert_eq!(state(&c, &u).await, before, "a duplicate changes nothing");

    let mut other = step.clone();
    other["transfer_lines"][0]["quantity"] = json!(9);
    let mut by_other = step.clone();
    by_other["user_id"] = json!("otro");
    for changed in [other, by_other] {
        let (status, body) = push(&c, &u, "CUS", &[changed]).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "duplicate_mismatch", "{body}");
    }
    // A receipt, re-pushed, is a duplicate too.
    let r = received(1, &id, &[("P1", 10, 0), ("P2", 3, 0)]);
    push_ok(&c, &u, "ABA", std::slice::from_ref(&r)).await;
    assert_eq!(push_ok(&c, &u, "ABA", std::slice::from_ref(&r)).await, (1, 1));
    let mut lost = r;
    lost["transfer_lines"][0] = json!({"product_id": "P1", "quantity": 9, "lost": 1});
    let (status, body) = push(&c, &u, "ABA", &[lost]).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("duplicate_mismatch")),
        "{body}"
    );
}

// ------------------------------------------------------------------ idempotency

async fn an_idempotency_key_replays_the_first_transfer_and_creates_no_second(db: StoreKind) {
    let (_d, central) = start(db, "tr-idem").await;
    let (c, u) = (client(), central.url.clone());
    let body = request(&[("P1", 10)]);
    let (status, first, replayed) = post_transfer(&c, &u, &body, Some("k-1")).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = post_transfer(&c, &u, &body, Some("k-1")).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first);
    assert_eq!(list(&c, &u, "").await, ["TR-000001"]);
    let (status, e, _) = post_transfer(&c, &u, &request(&[("P1", 11)]), Some("k-1")).await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (422, &json!("idempotency_key_reused")),
        "{e}"
    );
    // A refusal is not remembered: the key still works once the request is right.
    let (status, _, _) = post_transfer(&c, &u, &request(&[("NOPE", 1)]), Some("k-2")).await;
    assert_eq!(status, 404);
    let (status, t, replayed) = post_transfer(&c, &u, &request(&[("P2", 1)]), Some("k-2")).await;
    assert_eq!((status, replayed, &t["transfer_id"]), (201, false, &json!("TR-000002")));
}

// ------------------------------------------------------------------ bad input

async fn bad_transfer_requests_get_their_documented_4xx_and_change_nothing(db: StoreKind) {
    let (_d, central) = start(db, "tr-bad").await;
    let (c, u) = (client(), central.url.clone());
    create(&c, &u).await;
    let moving = create(&c, &u).await;
    push_ok(&c, &u, "CUS", &[dispatched(1, &moving, &[("P1", 10), ("P2", 3)])]).await;
    let before = snapshot(&c, &u).await;
    let cases = corpus::central_transfers_corpus();
    assert!(cases.len() >= 30);
    let failures = corpus::run_all(&cases, |_| central.addr.clone()).await;
    corpus::assert_no_failures(&failures, cases.len());
    assert_eq!(snapshot(&c, &u).await, before, "a refused request changed state");
    assert_eq!(app::service_panics(), 0, "central panicked");
}

// ------------------------------------------------------------------ metrics

async fn the_transit_gauges_and_step_counters_follow_the_transfers(db: StoreKind) {
    let (_d, central) = start(db, "tr-metrics").await;
    let (c, u) = (client(), central.url.clone());
    let m = |text: &str, series: &str| metric(text, series).unwrap_or(-1.0);
    let text = metrics_text(&c, &u).await;
    assert_eq!(m(&text, "colmena_central_transfers_in_transit"), 0.0);
    assert_eq!(m(&text, "colmena_central_transfer_oldest_in_transit_seconds"), 0.0);
    assert_eq!(
        m(&text, "colmena_central_transfer_steps_total{step=\"dispatched\"}"),
        0.0
    );

    let id = create(&c, &u).await;
    let spare = create(&c, &u).await;
    cancel(&c, &u, &spare).await;
    push_ok(&c, &u, "CUS", &[dispatched(1, &id, &[("P1", 10), ("P2", 3)])]).await;
    let text = metrics_text(&c, &u).await;
    assert_eq!(m(&text, "colmena_central_transfers_in_transit"), 1.0);
    // Dispatched at AT, days ago: older than the 48 h default.
    assert!(
        m(&text, "colmena_central_transfer_oldest_in_transit_seconds") > 0.0,
        "{text}"
    );
    assert_eq!(m(&text, "colmena_central_transfers_overdue"), 1.0);
    assert_eq!(
        m(&text, "colmena_central_transfer_steps_total{step=\"requested\"}"),
        2.0
    );
    assert_eq!(
        m(&text, "colmena_central_transfer_steps_total{step=\"cancelled\"}"),
        1.0
    );
    assert_eq!(
        m(&text, "colmena_central_transfer_steps_total{step=\"dispatched\"}"),
        1.0
    );

    push_ok(&c, &u, "ABA", &[received(1, &id, &[("P1", 8, 2), ("P2", 3, 0)])]).await;
    let text = metrics_text(&c, &u).await;
    assert_eq!(m(&text, "colmena_central_transfers_in_transit"), 0.0);
    assert_eq!(m(&text, "colmena_central_transfer_oldest_in_transit_seconds"), 0.0);
    assert_eq!(m(&text, "colmena_central_transfers_overdue"), 0.0);
    assert_eq!(m(&text, "colmena_central_transfer_steps_total{step=\"received\"}"), 1.0);
    assert_eq!(m(&text, "colmena_central_transfer_units_lost_total"), 2.0);
}

both_stores!(
    a_transfer_is_created_listed_and_pulled_by_its_two_branches_only,
    a_dispatch_and_a_short_receipt_move_both_ledgers_through_in_transit,
    a_product_only_in_transit_is_in_the_inventory,
    a_dispatch_that_crossed_a_cancel_still_applies_and_a_later_cancel_is_refused,
    a_cancel_racing_a_dispatch_never_loses_the_dispatch,
    impossible_transfer_steps_refuse_the_whole_push_and_change_nothing,
    a_repushed_transfer_step_is_a_duplicate_and_a_different_one_a_mismatch,
    an_idempotency_key_replays_the_first_transfer_and_creates_no_second,
    bad_transfer_requests_get_their_documented_4xx_and_change_nothing,
    the_transit_gauges_and_step_counters_follow_the_transfers,
);
