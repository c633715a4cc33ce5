//! The catalog from central to a till (docs/protocol.md, "Catalog and stock rules"): what
//! central's `PUT /products` says — barcode, category, active, a scheduled price — reaches
//! the branch by pull and is what its search and `/sell` answer.
use crate::support::app;
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn put(c: &reqwest::Client, central: &str, id: &str, body: Value) -> Value {
    let r = c
        .put(format!("{central}/products/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("PUT product");
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "PUT /products/{id}: {v}");
    v
}

async fn search(c: &reqwest::Client, branch: &str, query: &str) -> Vec<String> {
    let v = get_json(c, &format!("{branch}/products/search?{query}"), POS_TOKEN).await;
    v["products"]
        .as_array()
        .unwrap_or_else(|| panic!("a product list: {v}"))
        .iter()
        .map(|p| p["product_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_finds_by_any_spelling_or_barcode_what_central_sells_and_never_an_inactive_product() {
    let dir = TempDir::new("catalog");
    let central = app::spawn_central(dir.path(), &["CUS"], &[]).await;
    let c = client();
    let u = central.url.clone();
    put(
        &c,
        &u,
        "AZUCAR-1KG",
        json!({"name": "Azúcar rubia 1 kg", "price_cents": 550, "barcode": "7750885000018", "category": "abarrotes"}),
    )
    .await;
    put(
        &c,
        &u,
        "ARROZ-1KG",
        json!({"name": "Arroz Costeño 1 kg", "price_cents": 520}),
    )
    .await;
    put(
        &c,
        &u,
        "AZUCAR-OLD",
        json!({"name": "Azúcar blanca (descontinuada)", "price_cents": 400, "barcode": "7750885000025", "active": false}),
    )
    .await;
    for p in ["AZUCAR-1KG", "ARROZ-1KG", "AZUCAR-OLD"] {
        allocate(&c, &u, "CUS", p, 40).await;
    }
    let branch = app::spawn_branch(dir.path(), "CUS", &u, &["--pull-interval", "200ms"]).await;
    wait_pulled(&c, &u, &branch.url, "CUS", Duration::from_secs(20)).await;
    let b = branch.url.clone();

    for q in ["azucar", "AZ%C3%9ACAR", "z%C3%BAc", "rubia", "azucar-1"] {
        assert_eq!(search(&c, &b, &format!("q={q}")).await, ["AZUCAR-1KG"], "q={q}");
    }
    let hit = get_json(&c, &format!("{b}/products/search?barcode=7750885000018"), POS_TOKEN).await;
    assert_eq!(
        hit["products"],
        json!([{"product_id": "AZUCAR-1KG", "name": "Azúcar rubia 1 kg", "price_cents": 550, "stock": 40,
                "barcode": "7750885000018"}])
    );
    assert!(search(&c, &b, "barcode=7750885000025").await.is_empty(), "inactive");
    assert!(search(&c, &b, "q=descontinuada").await.is_empty(), "inactive");

    // An inactive product cannot be sold, not even in a basket with others; nothing is sold.
    let r = c
        .post(format!("{b}/sell"))
        .bearer_auth(POS_TOKEN)
        .json(&json!({"items": [{"product_id": "ARROZ-1KG", "quantity": 1}, {"product_id": "AZUCAR-OLD", "quantity": 1}]}))
        .send()
        .await
        .expect("sell");
    assert_eq!(r.status().as_u16(), 409);
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "product_inactive", "{e}");
    let arroz = get_json(&c, &format!("{b}/inventory/ARROZ-1KG"), POS_TOKEN).await;
    assert_eq!(arroz["stock"], 40, "nothing of the basket was sold: {arroz}");

    // Active again at central: found and sold after the next pull.
    put(
        &c,
        &u,
        "AZUCAR-OLD",
        json!({"name": "Azúcar blanca (descontinuada)", "price_cents": 400, "barcode": "7750885000025"}),
    )
    .await;
    wait_pulled(&c, &u, &branch.url, "CUS", Duration::from_secs(20)).await;
    assert_eq!(search(&c, &b, "barcode=7750885000025").await, ["AZUCAR-OLD"]);
    assert!(
        sell(&c, &b, &json!({"product_id": "AZUCAR-OLD", "quantity": 1}))
            .await
            .is_some(),
        "sold once active again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_shows_the_price_in_force_and_the_one_to_come_and_the_branch_sells_at_the_one_in_force() {
    let dir = TempDir::new("catalog-scheduled");
    let central = app::spawn_central(dir.path(), &["CUS"], &[]).await;
    let c = client();
    let u = central.url.clone();
    put(&c, &u, "P1", json!({"name": "Aceite 1 l", "price_cents": 1090})).await;
    allocate(&c, &u, "CUS", "P1", 10).await;
    let at = colmena_shared::clock::millis_to_rfc3339(colmena_shared::clock::now_millis() + 3_600_000);
    let saved = put(
        &c,
        &u,
        "P1",
        json!({"name": "Aceite 1 l", "price_cents": 990, "price_effective_at": at}),
    )
    .await;
    assert_eq!(
        (&saved["price_cents"], &saved["scheduled_price"]),
        (&json!(1090), &json!({"price_cents": 990, "effective_at": at})),
        "{saved}"
    );
    let listed = get_json(&c, &format!("{u}/products"), ADMIN_TOKEN).await;
    assert_eq!(listed["products"][0]["scheduled_price"]["price_cents"], 990, "{listed}");

    let branch = app::spawn_branch(dir.path(), "CUS", &u, &["--pull-interval", "200ms"]).await;
    wait_pulled(&c, &u, &branch.url, "CUS", Duration::from_secs(20)).await;
    let sale = sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
        .await
        .expect("a sale");
    assert_eq!(
        sale["lines"][0]["unit_price_cents"], 1090,
        "an hour early: today's price"
    );
    let hit = get_json(&c, &format!("{}/products/search?q=aceite", branch.url), POS_TOKEN).await;
    assert_eq!(hit["products"][0]["price_cents"], 1090, "{hit}");
}
