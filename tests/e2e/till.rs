//! The till across real processes (docs/protocol.md, "The till"): a whole day at two tills
//! ending with both shifts consistent at central; a `kill -9` in the middle of a shift that
//! loses nothing; a central that predates an event kind, which the relay waits out without
//! skipping anything.
use crate::support::central::put_user_ok;
use crate::support::till::{code, Clerk};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const STAFF: [(&str, &str, &str); 3] = [
    ("ana", "cashier", "4821"),
    ("beto", "cashier", "2468"),
    ("sara", "supervisor", "7390"),
];

/// A central with P1 (100) and P2 (2550) allocated to CUS and the staff, and CUS on it.
async fn chain(dir: &TempDir, central_flags: &[&str]) -> (Proc, Proc) {
    let c = client();
    let central = spawn_central(dir.path(), &["CUS"], central_flags);
    put_product(&c, &central.url, "P1", "Arroz 1 kg", 100).await;
    put_product(&c, &central.url, "P2", "Aceite 5 l", 2550).await;
    allocate(&c, &central.url, "CUS", "P1", 1000).await;
    allocate(&c, &central.url, "CUS", "P2", 100).await;
    for (id, role, pin) in STAFF {
        put_user_ok(
            &c,
            &central.url,
            id,
            json!({"name": id, "role": role, "branches": ["CUS"], "pin": pin}),
        )
        .await;
    }
    let branch = spawn_branch(
        dir.path(),
        "CUS",
        &central.url,
        &["--pull-interval", "300ms", "--breaker-wait-max", "2s"],
    );
    let url = branch.url.clone();
    eventually(Duration::from_secs(20), "stock and staff at CUS", || async {
        let p2 = get_json(&c, &format!("{url}/inventory/P2"), POS_TOKEN).await;
        let login = c
            .post(format!("{url}/login"))
            .json(&json!({"user_id": "sara", "pin": "7390"}))
            .send()
            .await
            .ok()?;
        (p2["stock"] == 100 && login.status().as_u16() == 200).then_some(())
    })
    .await;
    (central, branch)
}

fn pay(method: &str, cents: i64) -> Value {
    json!({"method": method, "amount_cents": cents})
}

fn line(p: &str, q: i64) -> Value {
    json!({"product_id": p, "quantity": q})
}

/// Central's ledger stock of `product` at CUS.
async fn central_stock(c: &reqwest::Client, central: &str, product: &str) -> i64 {
    let inv = get_json(c, &format!("{central}/inventory"), ADMIN_TOKEN).await;
    let products = inv["products"].as_array().cloned().unwrap_or_default();
    let p = products
        .iter()
        .find(|p| p["product_id"] == product)
        .expect("product at central");
    p["by_branch"]["CUS"].as_i64().expect("CUS stock")
}

/// Central's view of CUS's shifts, once every event the branch made is applied.
async fn central_shifts(c: &reqwest::Client, central: &str, branch: &str) -> Vec<Value> {
    wait_drained(c, branch, Duration::from_secs(30)).await;
    let v = get_json(c, &format!("{central}/shifts?branch_id=CUS"), ADMIN_TOKEN).await;
    v["shifts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_day_at_two_tills_closes_consistent_at_central() {
    let dir = TempDir::new("till-day-e2e");
    let (central, branch) = chain(&dir, &[]).await;
    let c = client();
    let ana = Clerk::login(&branch.url, "ana", "4821").await;
    let beto = Clerk::login(&branch.url, "beto", "2468").await;
    let sara = Clerk::login(&branch.url, "sara", "7390").await;
    let t1 = ana.open("T1", 10_000).await;
    let t2 = beto.open("T2", 5_000).await;

    ana.sell(&t1, json!([line("P1", 3)]), json!([pay("cash", 500)])).await; // change 200
    ana.sell(&t1, json!([line("P2", 1)]), json!([pay("card", 2550)])).await;
    let split = ana
        .sell(
            &t1,
            json!([line("P1", 5), line("P2", 1)]),
            json!([pay("card", 1000), pay("cash", 2100)]),
        )
        .await; // 3050, change 50
    let w = beto
        .sell(&t2, json!([line("P1", 2)]), json!([pay("wallet", 200)]))
        .await;
    let big = beto.sell(&t2, json!([line("P2", 3)]), json!([pay("cash", 8000)])).await; // 7650, change 350
    beto.sell(&t2, json!([line("P1", 1)]), Value::Null).await;
    let cash = |k: &str, cents: i64| json!({"kind": k, "amount_cents": cents, "reason": "caja chica"});
    assert_eq!(
        ana.post(&format!("/shifts/{t1}/cash-movements"), &cash("out", 1500))
            .await
            .0,
        201
    );
    assert_eq!(
        beto.post(&format!("/shifts/{t2}/cash-movements"), &cash("in", 1000))
            .await
            .0,
        201
    );
    // A partial return paid from T1's drawer, and a void of beto's wallet sale.
    let partial = json!({"lines": [line("P1", 2)], "refund_method": "cash", "shift_id": t1});
    let sid = |v: &Value| v["sale_id"].as_str().unwrap().to_string();
    assert_eq!(
        ana.post(&format!("/sales/{}/returns", sid(&split)), &partial).await.0,
        201
    );
    assert_eq!(
        beto.post(&format!("/sales/{}/returns", sid(&w)), &json!({"shift_id": t2}))
            .await
            .0,
        201
    );
    // 7650 is over a cashier's limit: beto is refused, the supervisor refunds it from T2.
    let all_back = json!({"shift_id": t2, "refund_method": "cash"});
    let (st, v) = beto.post(&format!("/sales/{}/returns", sid(&big)), &all_back).await;
    assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    assert_eq!(
        sara.post(&format!("/sales/{}/returns", sid(&big)), &all_back).await.0,
        201
    );

    // T1 cash: 300 + 2050 - 200 = 2150 → expected 10000 + 2150 - 1500 = 10650.
    let c1 = ana.close(&t1, 10_650).await;
    // T2 cash: 7650 - 7650 = 0 → expected 5000 + 0 + 1000 = 6000; counted 5990.
    let c2 = beto.close(&t2, 5_990).await;
    assert_eq!(
        (
            c1["summary"]["expected_cash_cents"].as_i64(),
            c1["summary"]["difference_cents"].as_i64()
        ),
        (Some(10_650), Some(0))
    );
    assert_eq!(
        c2["summary"],
        json!({"sales_count": 3, "gross_cents": 7950, "returns_cents": 7850, "net_cents": 100,
            "by_method": {"cash": 0, "wallet": 0, "unspecified": 100}, "cash_in_cents": 1000, "cash_out_cents": 0,
            "expected_cash_cents": 6000, "counted_cash_cents": 5990, "difference_cents": -10})
    );
    let at_central = central_shifts(&c, &central.url, &branch.url).await;
    assert_eq!(at_central.len(), 2, "{at_central:?}");
    for (mine, closed) in [(&t1, &c1), (&t2, &c2)] {
        let s = at_central
            .iter()
            .find(|s| s["shift_id"] == **mine)
            .expect("shift at central");
        assert_eq!(s["consistent"], true, "{s}");
        assert_eq!(s["summary"], closed["summary"], "central's own figures: {s}");
    }
    // Stock agrees: what was sold minus what came back.
    assert_eq!(central_stock(&c, &central.url, "P1").await, 1000 - 11 + 2 + 2);
    assert_eq!(central_stock(&c, &central.url, "P2").await, 100 - 5 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_in_the_middle_of_a_shift_loses_nothing_and_keeps_what_is_left_to_return() {
    let dir = TempDir::new("till-kill");
    let (central, mut branch) = chain(&dir, &[]).await;
    let c = client();
    let ana = Clerk::login(&branch.url, "ana", "4821").await;
    let shift = ana.open("T1", 2_000).await;
    let mut sales = Vec::new();
    for i in 0..20 {
        sales.push(
            ana.sell(&shift, json!([line("P1", 1 + i % 3)]), json!([pay("cash", 500)]))
                .await,
        );
    }
    let first = format!("/sales/{}/returns", sales[0]["sale_id"].as_str().unwrap());
    assert_eq!(ana.post(&first, &json!({"shift_id": shift})).await.0, 201);
    let before = ana.get(&format!("/shifts/{shift}")).await.1;
    branch.restart(); // kill -9, then start on the same data dir
    let ana = Clerk::login(&branch.url, "ana", "4821").await;
    assert_eq!(
        ana.get(&format!("/shifts/{shift}")).await.1,
        before,
        "the shift survives as it was"
    );
    let (st, v) = ana.post(&first, &json!({})).await;
    assert_eq!((st, code(&v)), (409, "return_exceeds_sale"), "{v}");
    ana.sell(&shift, json!([line("P1", 1)]), json!([pay("card", 100)]))
        .await;
    let closed = ana
        .close(&shift, before["summary"]["expected_cash_cents"].as_i64().unwrap())
        .await;
    assert_eq!(closed["summary"]["sales_count"], 21);
    assert_eq!(closed["summary"]["difference_cents"], 0);
    let at_central = central_shifts(&c, &central.url, &branch.url).await;
    assert_eq!(at_central.len(), 1);
    assert_eq!(at_central[0]["consistent"], true, "{}", at_central[0]);
    assert_eq!(at_central[0]["summary"], closed["summary"]);
    assert_eq!(
        central_sales(&c, &central.url, "CUS").await.len(),
        21,
        "no sale lost or doubled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_that_predates_an_event_kind_gets_it_later_and_nothing_is_skipped() {
    let dir = TempDir::new("till-upgrade");
    let (mut central, branch) = chain(&dir, &["--refuse-event-kind", "return"]).await;
    let c = client();
    let sara = Clerk::login(&branch.url, "sara", "7390").await;
    let a = sara.post("/sell", &json!({"product_id": "P1", "quantity": 2})).await.1;
    let seq_of = |v: &Value| v["seq"].as_u64().unwrap();
    let (st, r) = sara
        .post(
            &format!("/sales/{}/returns", a["sale_id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let after = sara.post("/sell", &json!({"product_id": "P1", "quantity": 1})).await.1;
    // Central applies up to the return and no further: the return is kept, never skipped.
    let applied = |c: reqwest::Client, url: String| async move {
        let v = get_json(&c, &format!("{url}/branches"), ADMIN_TOKEN).await;
        v["branches"][0]["applied_through"].as_u64().unwrap_or(0)
    };
    eventually(Duration::from_secs(20), "the relay counts the refusal", || async {
        let m = metrics_text(&c, &branch.url).await;
        (metric(&m, "colmena_sync_errors_total{kind=\"unsupported_event\"}").unwrap_or(0.0) >= 1.0).then_some(())
    })
    .await;
    assert!(
        applied(c.clone(), central.url.clone()).await < seq_of(&r),
        "central applied past the kind it refuses"
    );
    let status = get_json(&c, &format!("{}/status", branch.url), POS_TOKEN).await;
    assert!(status["outbox"]["pending"].as_u64().unwrap() >= 2, "{status}");
    // Central is upgraded (the flag goes): everything arrives, in order, once.
    central.remove_arg("--refuse-event-kind");
    central.restart();
    wait_drained(&c, &branch.url, Duration::from_secs(30)).await;
    assert_eq!(applied(c.clone(), central.url.clone()).await, seq_of(&after));
    let returns = get_json(&c, &format!("{}/returns?branch_id=CUS", central.url), ADMIN_TOKEN).await;
    assert_eq!(returns["returns"].as_array().map(Vec::len), Some(1), "{returns}");
    assert_eq!(central_stock(&c, &central.url, "P1").await, 1000 - 2 + 2 - 1);
}
