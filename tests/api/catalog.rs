//! The catalog at the branch (docs/protocol.md, "Catalog at the branch"): catalog fields
//! pulled from central, scheduled prices on the branch's own clock, inactive products,
//! search, stock counts, and `Idempotency-Key` on the stock endpoints. Central is the
//! test-only fake ([`crate::support::fake_central`]), which serves the product changes each
//! test chooses; a branch is built exactly as `colmena-sucursal` builds it.
use crate::support::app::{self, App};
use crate::support::fake_central::{user, FakeCentral};
use crate::support::pos::*;
use crate::support::till::{code, Clerk};
use crate::support::*;
use colmena_shared::clock;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn branch_of(dir: &TempDir, central: &FakeCentral) -> App {
    app::spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "200ms"]).await
}

async fn search(c: &reqwest::Client, branch: &App, query: &str) -> Value {
    get(c, &format!("{}/products/search?{query}", branch.url)).await
}

fn ids(found: &Value) -> Vec<String> {
    found["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["product_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn azucar(version: u64, active: bool) -> Value {
    json!({"kind": "product", "product_id": "AZUCAR-1KG", "name": "Azúcar rubia 1 kg", "price_cents": 550,
        "version": version, "barcode": "7750885000018", "category": "abarrotes", "active": active,
        "reorder_point": 40})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_price_takes_over_at_its_instant_on_the_branch_clock_with_central_stopped() {
    let dir = TempDir::new("scheduled");
    let at = clock::now_millis() + 2_000;
    let mut product = azucar(1, true);
    product["scheduled_price"] = json!({"price_cents": 590, "effective_at": clock::millis_to_rfc3339(at)});
    let central = FakeCentral::start(vec![
        product,
        json!({"kind": "allocation", "product_id": "AZUCAR-1KG", "quantity": 100}),
    ])
    .await;
    let branch = branch_of(&dir, &central).await;
    // The branch pulled at start; from here on it is alone.
    central.stop().await;
    let c = client();
    let sell = format!("{}/sell", branch.url);
    let line = json!({"product_id": "AZUCAR-1KG", "quantity": 1});
    let sent_at = clock::now_millis();
    let (s, before, _) = post(&c, &sell, &line, None).await;
    assert_eq!(s, 201, "{before}");
    assert!(
        sent_at < at - 200,
        "the branch took too long to start for this test: {}ms left",
        at - sent_at
    );
    assert_eq!(before["lines"][0]["unit_price_cents"], 550);
    assert_eq!(search(&c, &branch, "q=azucar").await["products"][0]["price_cents"], 550);

    let wait = at + 100 - clock::now_millis();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let (s, after, _) = post(&c, &sell, &line, None).await;
    assert_eq!(s, 201, "{after}");
    assert_eq!(after["lines"][0]["unit_price_cents"], 590);
    assert_eq!(after["total_cents"], 590);
    assert_eq!(search(&c, &branch, "q=azucar").await["products"][0]["price_cents"], 590);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_active_products_by_name_id_or_barcode_ignoring_case_and_accents() {
    let dir = TempDir::new("search");
    let central = FakeCentral::start(vec![
        azucar(1, true),
        json!({"kind": "product", "product_id": "ARROZ-1KG", "name": "Arroz Costeño 1 kg", "price_cents": 520, "version": 1}),
        json!({"kind": "product", "product_id": "AZUCAR-5KG", "name": "Azúcar blanca 5 kg", "price_cents": 2400,
            "version": 1, "active": false}),
        json!({"kind": "allocation", "product_id": "AZUCAR-1KG", "quantity": 37}),
        json!({"kind": "allocation", "product_id": "AZUCAR-5KG", "quantity": 5}),
    ])
    .await;
    let branch = branch_of(&dir, &central).await;
    let c = client();
    for q in ["azucar", "AZ%C3%9ACAR", "z%C3%BAc", "  rubia  "] {
        let found = search(&c, &branch, &format!("q={q}")).await;
        assert_eq!(
            found,
            json!({"products": [{"product_id": "AZUCAR-1KG", "name": "Azúcar rubia 1 kg", "price_cents": 550,
                "stock": 37, "barcode": "7750885000018"}]}),
            "q={q}"
        );
    }
    // Ids match too; answers are in name order; the limit holds.
    assert_eq!(ids(&search(&c, &branch, "q=1kg").await), ["ARROZ-1KG", "AZUCAR-1KG"]);
    assert_eq!(ids(&search(&c, &branch, "q=1kg&limit=1").await), ["ARROZ-1KG"]);
    assert_eq!(ids(&search(&c, &branch, "barcode=7750885000018").await), ["AZUCAR-1KG"]);
    assert_eq!(
        ids(&search(&c, &branch, "barcode=7750885000019").await),
        Vec::<String>::new()
    );

    // An inactive product is neither sold nor found; the refusal is counted.
    let (s, v, _) = post(
        &c,
        &format!("{}/sell", branch.url),
        &json!({"items": [{"product_id": "AZUCAR-1KG", "quantity": 1}, {"product_id": "AZUCAR-5KG", "quantity": 1}]}),
        None,
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("product_inactive")), "{v}");
    let stock = stock_by_product(&c, &branch.url).await;
    assert_eq!((stock["AZUCAR-1KG"], stock["AZUCAR-5KG"]), (37, 5), "nothing sold");
    let m = metrics_text(&c, &branch.url).await;
    assert_eq!(
        metric(&m, r#"colmena_sale_rejections_total{reason="product_inactive"}"#),
        Some(1.0),
        "{m}"
    );
    // 37 < reorder point 40, and the product is active: one product is low.
    assert_eq!(metric(&m, "colmena_low_stock_products"), Some(1.0), "{m}");

    // Central swaps them: the next pull rebuilds the index.
    central.add(azucar(2, false));
    central.add(
        json!({"kind": "product", "product_id": "AZUCAR-5KG", "name": "Azúcar blanca 5 kg",
        "price_cents": 2400, "version": 2, "active": true}),
    );
    let c2 = c.clone();
    let url = branch.url.clone();
    eventually(Duration::from_secs(10), "the pull swaps the active products", || {
        let (c, url) = (c2.clone(), url.clone());
        async move {
            let found = get(&c, &format!("{url}/products/search?q=azucar")).await;
            (ids(&found) == ["AZUCAR-5KG"]).then_some(())
        }
    })
    .await;
    let (s, v, _) = post(
        &c,
        &format!("{}/sell", branch.url),
        &json!({"product_id": "AZUCAR-5KG", "quantity": 1}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let m = metrics_text(&c, &branch.url).await;
    assert_eq!(metric(&m, "colmena_low_stock_products"), Some(0.0), "{m}");
    central.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_while_8_clients_sell_leaves_stock_counted_minus_the_sales_after_it() {
    let dir = TempDir::new("count");
    let catalog = write_catalog(dir.path(), 100_000);
    let mut branch = app::spawn_branch(dir.path(), "CUS", &dead_url(), &["--catalog", &catalog]).await;
    let c = client();
    let sell = format!("{}/sell", branch.url);
    let stop = Arc::new(AtomicBool::new(false));
    let sellers: Vec<_> = (0..8)
        .map(|_| {
            let (c, sell, stop) = (c.clone(), sell.clone(), stop.clone());
            tokio::spawn(async move {
                let mut sold = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let q = fastrand::i64(1..=3);
                    let (s, v, _) = post(&c, &sell, &json!({"product_id": "P1", "quantity": q}), None).await;
                    assert_eq!(s, 201, "{v}");
                    sold.push((v["seq"].as_u64().expect("seq"), q));
                }
                sold
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = format!("{}/stock/counts", branch.url);
    let (s, count, _) = post(&c, &counts, &json!({"product_id": "P1", "counted": 50_000}), None).await;
    assert_eq!(s, 201, "{count}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut sales = Vec::new();
    for t in sellers {
        sales.extend(t.await.expect("a seller"));
    }
    let count_seq = count["seq"].as_u64().expect("the count changed the stock");
    let before: i64 = sales.iter().filter(|(s, _)| *s < count_seq).map(|(_, q)| q).sum();
    let after: i64 = sales.iter().filter(|(s, _)| *s > count_seq).map(|(_, q)| q).sum();
    assert!(
        before > 0 && after > 0,
        "sales on both sides of the count: {before} {after}"
    );
    assert_eq!(count["stock"], 50_000);
    assert_eq!(count["delta"], 50_000 - (100_000 - before), "{count}");
    let stock = stock_by_product(&c, &branch.url).await;
    assert_eq!(stock["P1"], 50_000 - after);

    // A count that matches records nothing.
    let (s, same, _) = post(
        &c,
        &counts,
        &json!({"product_id": "P1", "counted": 50_000 - after}),
        None,
    )
    .await;
    assert_eq!(
        (s, same),
        (201, json!({"seq": null, "stock": 50_000 - after, "delta": 0}))
    );

    // More than one adjustment may carry: several events in one transaction.
    let adjust = format!("{}/stock/adjustments", branch.url);
    for _ in 0..2 {
        let (s, v, _) = post(
            &c,
            &adjust,
            &json!({"product_id": "P2", "quantity_delta": 1_000_000}),
            None,
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, zero, _) = post(&c, &counts, &json!({"product_id": "P2", "counted": 0}), None).await;
    assert_eq!(s, 201, "{zero}");
    assert_eq!(zero["delta"], -2_100_000);
    let first = zero["seq"].as_u64().expect("seq");
    let events = stored_events(dir.path(), "CUS");
    let pieces: Vec<i64> = events
        .iter()
        .filter(|e| e["seq"].as_u64().is_some_and(|s| s >= first) && e["reason"] == "count")
        .map(|e| e["quantity_delta"].as_i64().expect("quantity_delta"))
        .collect();
    assert_eq!(pieces, [-1_000_000, -1_000_000, -100_000]);

    // Memory and store agree: the stock after a restart is the same.
    branch.restart().await;
    let again = stock_by_product(&c, &branch.url).await;
    assert_eq!(again["P1"], 50_000 - after);
    assert_eq!(again["P2"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goods_receipt_retried_five_times_with_one_key_adds_the_goods_once() {
    let dir = TempDir::new("receipt");
    let catalog = write_catalog(dir.path(), 10);
    let mut branch = app::spawn_branch(dir.path(), "CUS", &dead_url(), &["--catalog", &catalog]).await;
    let c = client();
    let adjust = format!("{}/stock/adjustments", branch.url);
    let receipt = json!({"product_id": "P3", "quantity_delta": 24, "reason": "receipt"});
    let (s, first, replayed) = post(&c, &adjust, &receipt, Some("receipt-0001")).await;
    assert_eq!((s, replayed), (201, false), "{first}");
    assert_eq!(first["stock"], 34);
    for _ in 0..4 {
        let (s, again, replayed) = post(&c, &adjust, &receipt, Some("receipt-0001")).await;
        assert_eq!((s, replayed), (201, true));
        assert_eq!(again, first);
    }
    assert_eq!(stock_by_product(&c, &branch.url).await["P3"], 34);
    let other = json!({"product_id": "P3", "quantity_delta": 25, "reason": "receipt"});
    let (s, v, _) = post(&c, &adjust, &other, Some("receipt-0001")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));

    // A count takes a key the same way, and both survive a restart.
    let counts = format!("{}/stock/counts", branch.url);
    let count = json!({"product_id": "P3", "counted": 30});
    let (s, counted, _) = post(&c, &counts, &count, Some("count-0001")).await;
    assert_eq!(s, 201, "{counted}");
    branch.restart().await;
    let counts = format!("{}/stock/counts", branch.url);
    let (s, again, replayed) = post(&c, &counts, &count, Some("count-0001")).await;
    assert_eq!((s, replayed, &again), (201, true, &counted));
    let adjust = format!("{}/stock/adjustments", branch.url);
    let (s, again, replayed) = post(&c, &adjust, &receipt, Some("receipt-0001")).await;
    assert_eq!((s, replayed, &again), (201, true, &first));
    assert_eq!(stock_by_product(&c, &branch.url).await["P3"], 30);
    let receipts = stored_events(dir.path(), "CUS")
        .iter()
        .filter(|e| e["reason"] == "receipt")
        .count();
    assert_eq!(receipts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_made_inactive_after_its_sale_may_still_be_returned() {
    let dir = TempDir::new("inactive-return");
    let central = FakeCentral::start(vec![
        user("ana", "cashier", &["CUS"], true, 1, "4821"),
        azucar(1, true),
        json!({"kind": "allocation", "product_id": "AZUCAR-1KG", "quantity": 10}),
    ])
    .await;
    let branch = branch_of(&dir, &central).await;
    let ana = Clerk::login(&branch.url, "ana", "4821").await;
    // A cashier and the POS token may search.
    let (s, found) = ana.get("/products/search?q=azucar").await;
    assert_eq!((s, ids(&found)), (200, vec!["AZUCAR-1KG".to_string()]), "{found}");
    let by_pos = get_json(
        &client(),
        &format!("{}/products/search?barcode=7750885000018", branch.url),
        POS_TOKEN,
    )
    .await;
    assert_eq!(ids(&by_pos), ["AZUCAR-1KG"]);

    let (s, sale) = ana
        .post("/sell", &json!({"product_id": "AZUCAR-1KG", "quantity": 2}))
        .await;
    assert_eq!(s, 201, "{sale}");
    central.add(azucar(2, false));
    let base = branch.url.clone();
    eventually(Duration::from_secs(10), "the product made inactive", || {
        let base = base.clone();
        async move {
            let found = get_json(&client(), &format!("{base}/products/search?q=azucar"), POS_TOKEN).await;
            ids(&found).is_empty().then_some(())
        }
    })
    .await;
    let (s, v) = ana
        .post("/sell", &json!({"product_id": "AZUCAR-1KG", "quantity": 1}))
        .await;
    assert_eq!((s, code(&v)), (409, "product_inactive"), "{v}");
    // What was sold of it comes back: the return restocks it.
    let id = sale["sale_id"].as_str().expect("sale_id");
    let (s, r) = ana.post(&format!("/sales/{id}/returns"), &json!({})).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(stock_by_product(&client(), &branch.url).await["AZUCAR-1KG"], 10);
    central.stop().await;
}
