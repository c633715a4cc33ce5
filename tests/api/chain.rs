//! A whole chain in one test process: central and three branches, each with its own store,
//! listener and Prometheus registry. Proves what the in-process harness relies on (nothing
//! a service keeps is process-global) and the invariant of docs/protocol.md, 'The
//! invariant', for every branch.

use crate::support::app;
use crate::support::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

const BRANCHES: [&str; 3] = ["CUS", "ABA", "LIM"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_and_three_branches_share_one_process_and_each_keeps_its_own_metrics() {
    let dir = TempDir::new("chain");
    let mut central = app::spawn_central(dir.path(), &BRANCHES, &[]).await;
    let c = client();
    put_product(&c, &central.url, "P1", "uno", 100).await;
    for b in BRANCHES {
        allocate(&c, &central.url, b, "P1", 50).await;
    }
    let mut branches = Vec::new();
    for b in BRANCHES {
        let branch = app::spawn_branch(dir.path(), b, &central.url, &["--pull-interval", "200ms"]).await;
        wait_pulled(&c, &central.url, &branch.url, b, Duration::from_secs(20)).await;
        branches.push((b, branch));
    }
    // A different number of sales at each branch, so mixed-up registries would show.
    let mut acked: Vec<BTreeSet<String>> = Vec::new();
    for (i, (_, branch)) in branches.iter().enumerate() {
        let mut ids = BTreeSet::new();
        for _ in 0..=i {
            let sale = sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
                .await
                .expect("a sale");
            ids.insert(sale["sale_id"].as_str().expect("sale_id").to_string());
        }
        acked.push(ids);
    }
    for ((b, branch), ids) in branches.iter().zip(&acked) {
        check_invariant(&c, &central.url, &branch.url, b, ids, true).await;
        let m = metrics_text(&c, &branch.url).await;
        assert_eq!(metric(&m, "colmena_sales_total"), Some(ids.len() as f64), "{b}: {m}");
    }
    for (b, mut branch) in branches {
        branch
            .stop()
            .await
            .unwrap_or_else(|e| panic!("{b} stopped with an error: {e}"));
    }
    central.stop().await.expect("central stops gracefully");
}
