//! The branch as a real process: what only `kill -9` shows (no acknowledged sale lost, no
//! seq reused, adjustments durable). The API itself is tested in process by the `api`
//! binary's `branch_api`.

use crate::support::pos::*;
use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A `colmena-sucursal` process CUS, its catalog `PRODUCTS` products of `stock` units each.
fn start_branch(dir: &Path, stock: i64) -> Proc {
    let catalog = write_catalog(dir, stock);
    spawn_branch(dir, "CUS", &dead_url(), &["--catalog", &catalog])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_storm_loses_no_acknowledged_sale_and_never_reuses_a_seq() {
    let dir = TempDir::new("kill9");
    let initial = 100_000;
    let mut branch = start_branch(dir.path(), initial);
    let url = branch.url.clone();
    let storm = tokio::spawn(async move { storm(&url, 16, 100_000).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    branch.kill9();
    let (acked, _) = storm.await.unwrap();
    assert!(
        acked.len() > 50,
        "the storm should have sold something before the kill: {}",
        acked.len()
    );

    branch.restart();
    let c = client();
    let events = stored_events(dir.path(), "CUS");
    let by_id: HashMap<&str, &Value> = events
        .iter()
        .filter(|e| e["kind"] == "sale")
        .map(|e| (e["sale_id"].as_str().unwrap(), e))
        .collect();
    for s in &acked {
        let e = by_id
            .get(s["sale_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("acknowledged sale {} lost", s["sale_id"]));
        assert_eq!(e["seq"], s["seq"]);
        assert_eq!(e["total_cents"], s["total_cents"]);
    }
    // Stock = initial − every durable sale (including ones whose 201 never reached the client).
    let durable: Vec<Value> = events.iter().filter(|e| e["kind"] == "sale").cloned().collect();
    let sold = units_by_product(&durable);
    let stock = stock_by_product(&c, &branch.url).await;
    for (p, s) in &stock {
        assert_eq!(*s, initial - sold.get(p).copied().unwrap_or(0), "{p}");
    }
    let last_seq = events.iter().map(|e| e["seq"].as_u64().unwrap()).max().unwrap();
    let (st, v, _) = post(
        &c,
        &format!("{}/sell", branch.url),
        &json!({"product_id": "P1", "quantity": 1}),
        None,
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(
        v["seq"].as_u64().unwrap(),
        last_seq + 1,
        "the next sale continues the seq"
    );
    let status = get(&c, &format!("{}/status", branch.url)).await;
    assert_eq!(status["outbox"]["last_seq"].as_u64().unwrap(), last_seq + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_are_durable_events_and_move_stock() {
    let dir = TempDir::new("adjust");
    let mut branch = start_branch(dir.path(), 10);
    let c = client();
    let url = format!("{}/stock/adjustments", branch.url);
    let (s, v, _) = post(
        &c,
        &url,
        &json!({"product_id": "P1", "quantity_delta": 24, "reason": "receipt"}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["stock"], 34);
    let (s, v, _) = post(
        &c,
        &url,
        &json!({"product_id": "P1", "quantity_delta": -4, "reason": "shrinkage"}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["stock"], 30);
    branch.kill9();
    branch.restart();
    assert_eq!(get(&c, &format!("{}/inventory/P1", branch.url)).await["stock"], 30);
    let events = stored_events(dir.path(), "CUS");
    let adj: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "adjustment" && e["reason"] != "initial_catalog")
        .collect();
    assert_eq!(adj.len(), 2);
    assert_eq!(adj[0]["quantity_delta"], 24);
    assert_eq!(adj[1]["quantity_delta"], -4);
}
