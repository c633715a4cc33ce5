//! Findings of a security review, each reproduced as the attacker would try it and held
//! fixed (docs/protocol.md, "Metrics" and "Errors"; SECURITY.md when it lands).
use crate::support::app;
use crate::support::*;
use std::time::Duration;

/// Sends `n` requests with invented methods and paths, no token, concurrently.
async fn flood(c: &reqwest::Client, base: &str, n: usize, salt: usize) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (c, base) = (c.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(8) {
                let method = reqwest::Method::from_bytes(format!("X{salt}M{i}").as_bytes()).expect("a method token");
                let _ = c.request(method, format!("{base}/no/such/{salt}/{i}")).send().await;
                if i % 2 == 0 {
                    let _ = c.get(format!("{base}/invented-{salt}-{i}")).send().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("flood task");
    }
}

/// The series `/metrics` exposes (its non-comment lines, values left out).
async fn series(c: &reqwest::Client, base: &str) -> Vec<String> {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_string()))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_do_not_grow_the_metrics_of_either_service() {
    let dir = TempDir::new("metrics-flood");
    let central = app::spawn_central(dir.path(), &["CUS"], &[]).await;
    let branch = app::spawn_branch(dir.path(), "CUS", &central.url, &[]).await;
    let c = crate::support::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for base in [&central.url, &branch.url] {
        // A first small flood makes the one `OTHER`/`unmatched` series exist.
        // (and reading /metrics once makes its own series exist).
        flood(&c, base, 50, 0).await;
        series(&c, base).await;
        let before = series(&c, base).await;
        flood(&c, base, 10_000, 1).await;
        let after = series(&c, base).await;
        assert_eq!(
            after.len(),
            before.len(),
            "{base}: 10,000 invented methods and paths added series: {:?}",
            after.iter().filter(|s| !before.contains(s)).take(5).collect::<Vec<_>>()
        );
        assert!(
            after.iter().any(|s| s.contains("method=\"OTHER\"")),
            "{base}: no OTHER method label"
        );
    }
}
