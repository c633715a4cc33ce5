//! The till at one branch (docs/protocol.md, "The till"): shifts, tenders and change,
//! cash movements, returns and voids, each checked to the cent, with the fake central
//! ([`crate::support::fake_central`]) feeding users and products and taking the events.
use crate::support::app::{self, App};
use crate::support::fake_central::{user, FakeCentral};
use crate::support::till::{code, Clerk};
use crate::support::{client, eventually, get_json, TempDir, POS_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

/// Two cashiers, a supervisor and a manager at CUS.
fn staff() -> Vec<Value> {
    vec![
        user("ana", "cashier", &["CUS"], true, 1, "4821"),
        user("beto", "cashier", &["CUS"], true, 1, "2468"),
        user("sara", "supervisor", &["CUS"], true, 1, "7390"),
        user("mario", "manager", &["*"], true, 1, "1357"),
        // P1 (100, 1000 units) comes with the fake; P2 is dearer than a cashier may refund.
        json!({"kind": "product", "product_id": "P2", "name": "P2", "price_cents": 2550, "version": 1}),
        json!({"kind": "allocation", "product_id": "P2", "quantity": 100}),
    ]
}

struct Store {
    central: FakeCentral,
    branch: App,
    ana: Clerk,
    beto: Clerk,
    sara: Clerk,
}

async fn store(dir: &TempDir, extra: &[&str]) -> Store {
    let central = FakeCentral::start(staff()).await;
    let mut flags = vec!["--pull-interval", "200ms"];
    flags.extend_from_slice(extra);
    let branch = app::spawn_branch(dir.path(), "CUS", &central.url, &flags).await;
    let base = branch.url.clone();
    eventually(Duration::from_secs(10), "P2 and the users pulled", || async {
        let inv = get_json(&client(), &format!("{base}/inventory/P2"), POS_TOKEN).await;
        (inv["stock"] == 100).then_some(())
    })
    .await;
    Store {
        ana: Clerk::login(&base, "ana", "4821").await,
        beto: Clerk::login(&base, "beto", "2468").await,
        sara: Clerk::login(&base, "sara", "7390").await,
        central,
        branch,
    }
}

async fn stock(branch: &App, product: &str) -> i64 {
    let v = get_json(&client(), &format!("{}/inventory/{product}", branch.url), POS_TOKEN).await;
    v["stock"].as_i64().expect("stock")
}

async fn last_seq(branch: &App) -> u64 {
    let v = get_json(&client(), &format!("{}/status", branch.url), POS_TOKEN).await;
    v["outbox"]["last_seq"].as_u64().expect("last_seq")
}

fn pay(method: &str, cents: i64) -> Value {
    json!({"method": method, "amount_cents": cents})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shift_takes_mixed_tenders_and_closes_with_its_summary_to_the_cent() {
    let dir = TempDir::new("till-day");
    let s = store(&dir, &[]).await;
    let ana = &s.ana;
    let shift = ana.open("T1", 10_000).await;
    let p1 = |q: i64| json!({"product_id": "P1", "quantity": q});
    let p2 = |q: i64| json!({"product_id": "P2", "quantity": q});
    let a = ana.sell(&shift, json!([p1(3)]), json!([pay("cash", 500)])).await;
    assert_eq!(
        (a["total_cents"].as_i64(), a["change_cents"].as_i64()),
        (Some(300), Some(200))
    );
    assert_eq!(a["cashier_id"], "ana");
    ana.sell(&shift, json!([p2(1)]), json!([pay("card", 2550)])).await;
    let c = ana.sell(&shift, json!([p1(2)]), json!([pay("wallet", 200)])).await;
    let d = ana
        .sell(
            &shift,
            json!([p1(5), p2(1)]),
            json!([pay("card", 1000), pay("cash", 2100)]),
        )
        .await;
    assert_eq!(
        (d["total_cents"].as_i64(), d["change_cents"].as_i64()),
        (Some(3050), Some(50))
    );
    let e = ana.sell(&shift, json!([p1(1)]), Value::Null).await;
    assert_eq!(e["payments"], json!([pay("unspecified", 100)]));
    let moved = |kind: &str, cents: i64, why: &str| json!({"kind": kind, "amount_cents": cents, "reason": why});
    let path = format!("/shifts/{shift}/cash-movements");
    assert_eq!(ana.post(&path, &moved("out", 1500, "taxi")).await.0, 201);
    assert_eq!(ana.post(&path, &moved("in", 2000, "sencillo")).await.0, 201);
    let (st, r) = ana
        .post(
            &format!("/sales/{}/returns", d["sale_id"].as_str().unwrap()),
            &json!({"lines": [p1(2)], "reason": "damaged", "refund_method": "cash", "shift_id": shift}),
        )
        .await;
    assert_eq!((st, r["total_cents"].as_i64()), (201, Some(200)), "{r}");
    // A void: everything the sale sold, refunded the way it was paid (wallet).
    let (st, v) = ana
        .post(
            &format!("/sales/{}/returns", c["sale_id"].as_str().unwrap()),
            &json!({"shift_id": shift}),
        )
        .await;
    assert_eq!(
        (st, v["total_cents"].as_i64(), v["refund_method"].as_str()),
        (201, Some(200), Some("wallet")),
        "{v}"
    );

    let closed = ana.close(&shift, 12_600).await;
    let sum = &closed["summary"];
    // Cash: 500-200 + 2100-50 - 200 (refund) = 2150; expected 10000 + 2150 - 1500 + 2000.
    assert_eq!(
        sum,
        &json!({"sales_count": 5, "gross_cents": 6200, "returns_cents": 400, "net_cents": 5800,
            "by_method": {"cash": 2150, "card": 3550, "wallet": 0, "unspecified": 100},
            "cash_in_cents": 2000, "cash_out_cents": 1500, "expected_cash_cents": 12_650,
            "counted_cash_cents": 12_600, "difference_cents": -50}),
        "{closed}"
    );
    assert_eq!(
        (closed["status"].as_str(), closed["closed_by"].as_str()),
        (Some("closed"), Some("ana"))
    );
    assert_eq!(ana.get(&format!("/shifts/{shift}")).await.1, closed);
    assert_eq!(stock(&s.branch, "P1").await, 1000 - 11 + 2 + 2);
    assert_eq!(stock(&s.branch, "P2").await, 100 - 2);
    // Every fact reached central in order, each as its own event kind.
    let kinds = eventually(Duration::from_secs(10), "the shift's events pushed", || async {
        let kinds: Vec<String> = s
            .central
            .pushed()
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or("").to_string())
            .collect();
        (kinds.len() >= 11).then_some(kinds)
    })
    .await;
    let want = [
        "shift_opened",
        "sale",
        "sale",
        "sale",
        "sale",
        "sale",
        "cash_movement",
        "cash_movement",
        "return",
        "return",
        "shift_closed",
    ];
    assert_eq!(kinds, want);
    let pushed = s.central.pushed();
    assert_eq!(
        pushed[10]["summary"], *sum,
        "the closing summary travels with the event"
    );
    assert_eq!(pushed[4]["payments"], json!([pay("card", 1000), pay("cash", 2100)]));
    assert!(
        pushed[5].get("payments").is_none(),
        "an unspecified tender is sent as no payments"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_that_do_not_settle_a_sale_are_refused_and_change_nothing() {
    let dir = TempDir::new("till-payments");
    let s = store(&dir, &[]).await;
    let shift = s.ana.open("T1", 0).await;
    let (before_stock, before_seq) = (stock(&s.branch, "P1").await, last_seq(&s.branch).await);
    let many: Vec<Value> = (0..17).map(|_| pay("cash", 100)).collect();
    let cases = [
        (json!([pay("cash", 100)]), 400, "payment_mismatch"),
        (json!([pay("card", 300)]), 400, "payment_mismatch"),
        (json!([pay("card", 100), pay("wallet", 150)]), 400, "payment_mismatch"),
        (json!([pay("cash", 0), pay("card", 200)]), 400, "payment_mismatch"),
        (json!([pay("cash", -5), pay("cash", 205)]), 400, "payment_mismatch"),
        (json!([]), 400, "payment_mismatch"),
        (Value::Array(many), 400, "payment_mismatch"),
        (json!([pay("Cash", 200)]), 400, "invalid_request"),
        (json!([{"method": "cash"}]), 400, "invalid_request"),
        (json!([{"method": "cash", "amount_cents": 1.5}]), 400, "invalid_request"),
    ];
    for (payments, status, want) in cases {
        let body = json!({"product_id": "P1", "quantity": 2, "shift_id": shift, "payments": payments});
        let (st, v) = s.ana.post("/sell", &body).await;
        assert_eq!((st, code(&v)), (status, want), "{body}: {v}");
    }
    for bad_shift in ["CUS-SH-999999", "no such shift"] {
        let body = json!({"product_id": "P1", "quantity": 2, "shift_id": bad_shift});
        let (st, v) = s.ana.post("/sell", &body).await;
        let want = if bad_shift.contains(' ') {
            (400, "invalid_request")
        } else {
            (409, "shift_not_open")
        };
        assert_eq!((st, code(&v)), want, "{body}: {v}");
    }
    assert_eq!(stock(&s.branch, "P1").await, before_stock, "a refused sale took stock");
    assert_eq!(last_seq(&s.branch).await, before_seq, "a refused sale wrote an event");
    let summary = s.ana.get(&format!("/shifts/{shift}")).await.1["summary"].clone();
    assert_eq!(summary["sales_count"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_till_has_one_open_shift_and_a_closed_shift_takes_nothing_more() {
    let dir = TempDir::new("till-shifts");
    let s = store(&dir, &[]).await;
    let shift = s.ana.open("T2", 5000).await;
    let (st, v) = s
        .beto
        .post("/shifts", &json!({"till_id": "T2", "opening_float_cents": 0}))
        .await;
    assert_eq!((st, code(&v)), (409, "shift_already_open"), "{v}");
    let beto_shift = s.beto.open("T3", 0).await;
    // A cashier acts on their own shifts only; a supervisor on any.
    assert_eq!(code(&s.beto.get(&format!("/shifts/{shift}")).await.1), "forbidden");
    assert_eq!(
        s.beto
            .post(&format!("/shifts/{shift}/close"), &json!({"counted_cash_cents": 0}))
            .await
            .0,
        403
    );
    assert_eq!(s.sara.get(&format!("/shifts/{shift}")).await.0, 200);
    assert_eq!(s.sara.close(&beto_shift, 0).await["closed_by"], "sara");
    for (body, want) in [
        (json!({"kind": "out", "amount_cents": 0}), "invalid_request"),
        (json!({"kind": "out", "amount_cents": -1}), "invalid_request"),
        (json!({"kind": "sideways", "amount_cents": 1}), "invalid_request"),
        (
            json!({"kind": "in", "amount_cents": 1, "reason": ""}),
            "invalid_request",
        ),
    ] {
        let (st, v) = s.ana.post(&format!("/shifts/{shift}/cash-movements"), &body).await;
        assert_eq!((st, code(&v)), (400, want), "{body}: {v}");
    }
    let closed = s.ana.close(&shift, 5000).await;
    assert_eq!(closed["summary"]["difference_cents"], 0);
    // The same count again is the same close; another count is refused.
    assert_eq!(s.ana.close(&shift, 5000).await, closed);
    let (st, v) = s
        .ana
        .post(&format!("/shifts/{shift}/close"), &json!({"counted_cash_cents": 1}))
        .await;
    assert_eq!((st, code(&v)), (409, "shift_closed"), "{v}");
    let seq = last_seq(&s.branch).await;
    let (st, v) = s
        .ana
        .post("/sell", &json!({"product_id": "P1", "quantity": 1, "shift_id": shift}))
        .await;
    assert_eq!((st, code(&v)), (409, "shift_not_open"), "{v}");
    let (st, v) = s
        .ana
        .post(
            &format!("/shifts/{shift}/cash-movements"),
            &json!({"kind": "in", "amount_cents": 1}),
        )
        .await;
    assert_eq!((st, code(&v)), (409, "shift_not_open"), "{v}");
    assert_eq!(last_seq(&s.branch).await, seq, "a refused request wrote an event");
    assert_eq!(s.ana.get("/shifts/CUS-SH-424242").await.0, 404);
    // The till is a person's: the POS token opens nothing.
    let pos = client()
        .post(format!("{}/shifts", s.branch.url))
        .bearer_auth(POS_TOKEN)
        .json(&json!({"till_id": "T9", "opening_float_cents": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(pos.status().as_u16(), 403);
    // T2 is free again.
    s.beto.open("T2", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn return_is_refused_when_it_exceeds_what_was_sold() {
    let dir = TempDir::new("till-returns");
    let s = store(&dir, &[]).await;
    let sale = s.ana.post("/sell", &json!({"product_id": "P1", "quantity": 2})).await.1;
    let id = sale["sale_id"].as_str().expect("sale_id").to_string();
    let path = format!("/sales/{id}/returns");
    let (stock0, seq0) = (stock(&s.branch, "P1").await, last_seq(&s.branch).await);
    let line = |p: &str, q: i64| json!({"lines": [{"product_id": p, "quantity": q}]});
    for (body, status, want) in [
        (line("P1", 3), 409, "return_exceeds_sale"),
        (line("P2", 1), 409, "return_exceeds_sale"),
        (line("P1", 0), 400, "invalid_request"),
        (line("P1", -1), 400, "invalid_request"),
        (json!({"lines": []}), 400, "invalid_request"),
        (json!({"refund_method": "Cash"}), 400, "invalid_request"),
        (json!({"shift_id": "CUS-SH-000404"}), 409, "shift_not_open"),
    ] {
        let (st, v) = s.ana.post(&path, &body).await;
        assert_eq!((st, code(&v)), (status, want), "{body}: {v}");
    }
    for unknown in ["CUS-0000099999", "ABA-0000000001", "nonsense"] {
        let (st, v) = s.ana.post(&format!("/sales/{unknown}/returns"), &json!({})).await;
        assert_eq!((st, code(&v)), (404, "unknown_sale"), "{unknown}: {v}");
    }
    assert_eq!(
        (stock(&s.branch, "P1").await, last_seq(&s.branch).await),
        (stock0, seq0)
    );
    let (st, r) = s
        .ana
        .post(
            &path,
            &json!({"lines": [{"product_id": "P1", "quantity": 1}], "restock": false}),
        )
        .await;
    assert_eq!((st, r["restock"].as_bool()), (201, Some(false)), "{r}");
    assert_eq!(
        stock(&s.branch, "P1").await,
        stock0,
        "restock false keeps the units out"
    );
    // The void takes what is left, and then nothing is.
    let (st, v) = s.ana.post(&path, &json!({})).await;
    assert_eq!((st, v["lines"][0]["quantity"].as_i64()), (201, Some(1)), "{v}");
    assert_eq!(stock(&s.branch, "P1").await, stock0 + 1);
    let (st, v) = s.ana.post(&path, &json!({})).await;
    assert_eq!((st, code(&v)), (409, "return_exceeds_sale"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_over_the_cashier_limit_needs_a_supervisor() {
    let dir = TempDir::new("till-limit");
    let s = store(&dir, &[]).await;
    let sale = s.ana.post("/sell", &json!({"product_id": "P2", "quantity": 3})).await.1;
    let path = format!("/sales/{}/returns", sale["sale_id"].as_str().unwrap());
    let (st, v) = s.ana.post(&path, &json!({})).await;
    assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    // Under the limit the cashier may: one unit of 2550.
    let one = json!({"lines": [{"product_id": "P2", "quantity": 1}]});
    assert_eq!(s.ana.post(&path, &one).await.0, 201);
    let (st, v) = s.sara.post(&path, &json!({})).await;
    assert_eq!(
        (st, v["total_cents"].as_i64(), v["user_id"].as_str()),
        (201, Some(5100), Some("sara")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_returns_of_one_sale_never_refund_more_than_was_sold() {
    let dir = TempDir::new("till-race");
    let s = store(&dir, &[]).await;
    let sale = s
        .ana
        .post("/sell", &json!({"product_id": "P1", "quantity": 10}))
        .await
        .1;
    let path = format!("/sales/{}/returns", sale["sale_id"].as_str().unwrap());
    let stock0 = stock(&s.branch, "P1").await;
    let mut clerks = Vec::new();
    for _ in 0..16 {
        clerks.push(std::sync::Arc::new(Clerk::login(&s.branch.url, "sara", "7390").await));
    }
    let tasks: Vec<_> = clerks
        .into_iter()
        .map(|c| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..3 {
                    let body = json!({"lines": [{"product_id": "P1", "quantity": 1}]});
                    let (st, v) = c.post(&path, &body).await;
                    assert!(
                        st == 201 || (st == 409 && code(&v) == "return_exceeds_sale"),
                        "{st} {v}"
                    );
                    statuses.push(st);
                }
                statuses
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap().iter().filter(|st| **st == 201).count();
    }
    assert_eq!(created, 10, "48 tries on a sale of 10 units");
    assert_eq!(stock(&s.branch, "P1").await, stock0 + 10);
    let returns = eventually(Duration::from_secs(10), "the returns pushed", || async {
        let r: Vec<Value> = s
            .central
            .pushed()
            .into_iter()
            .filter(|e| e["kind"] == "return")
            .collect();
        (r.len() >= 10).then_some(r)
    })
    .await;
    let refunded: i64 = returns.iter().map(|r| r["total_cents"].as_i64().unwrap()).sum();
    assert_eq!((returns.len(), refunded), (10, 1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn till_posts_replay_their_first_answer_for_a_repeated_idempotency_key() {
    let dir = TempDir::new("till-idem");
    let s = store(&dir, &[]).await;
    let open = json!({"till_id": "T1", "opening_float_cents": 100});
    let (st1, first, r1) = s.ana.post_key("/shifts", &open, Some("open-1")).await;
    let (st2, again, r2) = s.ana.post_key("/shifts", &open, Some("open-1")).await;
    assert_eq!((st1, r1, st2, r2), (201, false, 201, true));
    assert_eq!(first, again);
    let other = json!({"till_id": "T1", "opening_float_cents": 200});
    let (st, v, _) = s.ana.post_key("/shifts", &other, Some("open-1")).await;
    assert_eq!((st, code(&v)), (422, "idempotency_key_reused"));
    let sale = s.ana.post("/sell", &json!({"product_id": "P1", "quantity": 2})).await.1;
    let path = format!("/sales/{}/returns", sale["sale_id"].as_str().unwrap());
    let one = json!({"lines": [{"product_id": "P1", "quantity": 1}]});
    let seq = last_seq(&s.branch).await;
    let (_, a, _) = s.ana.post_key(&path, &one, Some("ret-1")).await;
    let (st, b, replayed) = s.ana.post_key(&path, &one, Some("ret-1")).await;
    assert_eq!((st, replayed, &a), (201, true, &b));
    assert_eq!(last_seq(&s.branch).await, seq + 1, "a replay records nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_the_open_shift_its_summary_and_what_is_left_to_return() {
    let dir = TempDir::new("till-restart");
    let mut s = store(&dir, &[]).await;
    let shift = s.ana.open("T1", 1000).await;
    let sale = s
        .ana
        .sell(
            &shift,
            json!([{"product_id": "P1", "quantity": 3}]),
            json!([pay("cash", 500)]),
        )
        .await;
    let path = format!("/sales/{}/returns", sale["sale_id"].as_str().unwrap());
    let one = json!({"lines": [{"product_id": "P1", "quantity": 1}], "shift_id": shift});
    assert_eq!(s.ana.post(&path, &one).await.0, 201);
    let before = s.ana.get(&format!("/shifts/{shift}")).await.1;
    s.branch.restart().await;
    let ana = Clerk::login(&s.branch.url, "ana", "4821").await;
    assert_eq!(ana.get(&format!("/shifts/{shift}")).await.1, before);
    let (st, v) = ana
        .post(&path, &json!({"lines": [{"product_id": "P1", "quantity": 3}]}))
        .await;
    assert_eq!((st, code(&v)), (409, "return_exceeds_sale"), "{v}");
    assert_eq!(ana.post(&path, &json!({"shift_id": shift})).await.0, 201);
    let closed = ana.close(&shift, 1000 + 300 - 100 - 200).await;
    assert_eq!(closed["summary"]["difference_cents"], 0, "{closed}");
    assert_eq!(closed["summary"]["returns_cents"], 300, "{closed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_older_than_the_return_window_cannot_be_returned() {
    let dir = TempDir::new("till-window");
    let s = store(&dir, &["--return-window", "1s"]).await;
    let sale = s.ana.post("/sell", &json!({"product_id": "P1", "quantity": 1})).await.1;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (st, v) = s
        .ana
        .post(
            &format!("/sales/{}/returns", sale["sale_id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!((st, code(&v)), (409, "return_window_expired"), "{v}");
}
