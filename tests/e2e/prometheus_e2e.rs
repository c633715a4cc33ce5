//! Observability proven on a real Prometheus: a chain on free ports, Prometheus
//! scraping it every second with the repository's config and rules, sales, central killed
//! until the breakers open, central back; then every dashboard query has data, the breaker
//! series shows `open` then `closed`, and `promtool check metrics` is silent on both
//! services' `/metrics`.

use crate::support::dashboards;
use crate::support::prometheus::Prometheus;
use crate::support::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAST: &[&str] = &[
    "--breaker-failures",
    "3",
    "--breaker-wait-min",
    "1s",
    "--breaker-wait-max",
    "2s",
    "--request-timeout",
    "1s",
    "--connect-timeout",
    "300ms",
    "--pull-interval",
    "500ms",
];

async fn query(c: &reqwest::Client, prom: &str, q: &str) -> Vec<Value> {
    let r: Value = c
        .get(format!("{prom}/api/v1/query?query={}", urlencode(q)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "success", "query {q}: {r}");
    match &r["data"]["result"] {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        other => vec![other.clone()], // scalar results
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn promtool_check_metrics(body: &str) -> String {
    let mut child = Command::new(dashboards::prometheus_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()
}

async fn sell_some(c: &reqwest::Client, branches: &[&Proc], n: usize) {
    for i in 0..n {
        for b in branches {
            let body = json!({"items": [{"product_id": format!("P{}", i % 4), "quantity": 1}], "cashier_id": "caja-1"});
            assert!(sell(c, &b.url, &body).await.is_some(), "sale refused");
        }
    }
    // One refused sale, so rejection series move too.
    for b in branches {
        let _ = c
            .post(format!("{}/sell", b.url))
            .bearer_auth(POS_TOKEN)
            .json(&json!({"product_id": "P0", "quantity": 999_999}))
            .send()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_has_data_on_a_real_prometheus_and_the_breaker_series_opens_and_closes() {
    let dir = TempDir::new("prom-e2e");
    let mut central = spawn_central(dir.path(), &["CUS", "ABA"], &[]);
    let c = client();
    for i in 0..4 {
        put_product(&c, &central.url, &format!("P{i}"), &format!("Producto {i}"), 250).await;
        allocate(&c, &central.url, "CUS", &format!("P{i}"), 10_000).await;
        allocate(&c, &central.url, "ABA", &format!("P{i}"), 10_000).await;
    }
    // A withdrawal larger than the stock: an oversold product, for the negative-stock panel.
    put_product(&c, &central.url, "NEG", "Oversold", 100).await;
    allocate(&c, &central.url, "CUS", "NEG", -3).await;
    let cus = spawn_branch(dir.path(), "CUS", &central.url, FAST);
    let aba = spawn_branch(dir.path(), "ABA", &central.url, FAST);
    let config = dashboards::prometheus_config(&central.addr, &[("CUS", &cus.addr), ("ABA", &aba.addr)], "1s");
    let prom = Prometheus::start_with(dir.path(), &config).await;
    let started = Instant::now();

    eventually(Duration::from_secs(20), "branches have their stock", || async {
        let v = get_json(&c, &format!("{}/inventory/P3", aba.url), POS_TOKEN).await;
        (v["stock"] == 10_000).then_some(())
    })
    .await;
    sell_some(&c, &[&cus, &aba], 40).await;
    wait_drained(&c, &cus.url, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    central.kill9();
    for _ in 0..40 {
        sell_some(&c, &[&cus, &aba], 2).await;
        if circuit(&c, &cus.url).await == "open" && circuit(&c, &aba.url).await == "open" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // scraped while open
    central.restart();
    for b in [&cus, &aba] {
        eventually(Duration::from_secs(20), "breaker closes", || async {
            (circuit(&c, &b.url).await == "closed").then_some(())
        })
        .await;
    }
    sell_some(&c, &[&cus, &aba], 40).await;
    wait_drained(&c, &cus.url, Duration::from_secs(20)).await;
    wait_drained(&c, &aba.url, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(4)).await; // a few more scrapes

    // Breaker series: open at some point, closed now.
    let window = format!("{}s", started.elapsed().as_secs() + 5);
    for b in ["CUS", "ABA"] {
        let was_open = query(
            &c,
            &prom.url,
            &format!("max_over_time(colmena_circuit_breaker_state{{branch=\"{b}\",state=\"open\"}}[{window}])"),
        )
        .await;
        assert_eq!(
            was_open.first().map(|r| r["value"][1].clone()),
            Some(json!("1")),
            "{b} never showed open: {was_open:?}"
        );
        let closed = query(
            &c,
            &prom.url,
            &format!("colmena_circuit_breaker_state{{branch=\"{b}\",state=\"closed\"}}"),
        )
        .await;
        assert_eq!(
            closed.first().map(|r| r["value"][1].clone()),
            Some(json!("1")),
            "{b} not closed at the end: {closed:?}"
        );
    }

    // Every panel query of every dashboard returns data.
    let mut empty = Vec::new();
    let queries = dashboards::panel_queries("CUS", "1m");
    assert!(queries.len() > 20, "{} queries", queries.len());
    for q in &queries {
        if query(&c, &prom.url, &q.expr).await.is_empty() {
            empty.push(format!("{q}"));
        }
    }
    assert!(
        empty.is_empty(),
        "{} of {} panel queries returned no data:\n{}",
        empty.len(),
        queries.len(),
        empty.join("\n")
    );

    // promtool check metrics: nothing to report on either service after real traffic.
    for (name, url) in [("central", &central.url), ("CUS", &cus.url)] {
        let body = metrics_text(&c, url).await;
        assert!(
            body.contains("colmena_http_requests_total"),
            "{name} /metrics looks empty"
        );
        let report = promtool_check_metrics(&body);
        assert!(report.is_empty(), "promtool check metrics on {name}:\n{report}");
    }
}
