//! The catalog's rules across real processes (docs/protocol.md, "Catalog and stock rules"):
//! a price scheduled at central switches at its instant at a branch that cannot reach
//! central any more, on the branch's own clock, and central later gets every sale at the
//! price it was sold at.
use crate::support::*;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC of a Unix-ms instant, as the protocol writes it.
fn rfc3339(ms: i64) -> String {
    colmena_shared::clock::millis_to_rfc3339(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_scheduled_before_central_dies_switches_on_time_at_the_branch() {
    let dir = TempDir::new("scheduled-price");
    let c = client();
    let mut central = spawn_central(dir.path(), &["CUS"], &[]);
    put_product(&c, &central.url, "P1", "Azúcar rubia 1 kg", 520).await;
    allocate(&c, &central.url, "CUS", "P1", 10_000).await;
    let branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "200ms"]);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;

    // Tomorrow's price, three seconds from now; the branch pulls it, then central dies.
    let at = now_ms() + 3_000;
    let r = c
        .put(format!("{}/products/P1", central.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Azúcar rubia 1 kg", "price_cents": 590, "price_effective_at": rfc3339(at)}))
        .send()
        .await
        .expect("PUT the scheduled price");
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;
    central.kill9();
    assert!(
        now_ms() < at - 500,
        "the test machine is too slow to see the price before its instant"
    );

    // Sell one unit every 20 ms from now until a second after the instant.
    let mut sold: Vec<(i64, i64, i64)> = Vec::new(); // (sent ms, answered ms, unit price)
    while now_ms() < at + 1_000 {
        let sent = now_ms();
        let sale = sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
            .await
            .expect("the branch sells with central down");
        let unit = sale["lines"][0]["unit_price_cents"].as_i64().expect("unit price");
        sold.push((sent, now_ms(), unit));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for &(sent, answered, unit) in &sold {
        if answered < at - 100 {
            assert_eq!(unit, 520, "a sale answered {} ms before the instant", at - answered);
        }
        if sent > at + 100 {
            assert_eq!(unit, 590, "a sale sent {} ms after the instant", sent - at);
        }
    }
    let first_new = sold
        .iter()
        .position(|s| s.2 == 590)
        .expect("some sale at the new price");
    assert!(first_new > 0, "some sale at the old price");
    assert!(
        sold[first_new..].iter().all(|s| s.2 == 590),
        "once in force, the new price stays: {sold:?}"
    );

    // Central, back, gets every sale at the price the branch sold it at.
    central.restart();
    wait_drained(&c, &branch.url, Duration::from_secs(30)).await;
    let at_central: i64 = central_sales(&c, &central.url, "CUS")
        .await
        .iter()
        .map(|s| s["total_cents"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(at_central, sold.iter().map(|s| s.2).sum::<i64>());
}
