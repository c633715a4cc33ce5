//! `colmena-bench report-load`: the latency of central's sales reports (docs/protocol.md,
//! "Reports") over a loaded store, for the reports figure of BENCHMARKS.md.
//!
//! The store is loaded beforehand by `push-load --sold-from … --sold-step-ms …` (sales
//! spread over the days the reports read). This sends `--requests` sequential
//! `GET /reports/sales?group_by=G&from=…&to=…` per group (one client, so each figure is
//! the server's answer time with nothing queued before it), after `--warmup` unmeasured
//! ones, and prints p50/p99/max per group. It fails when an answer is not a 200 or reports
//! no sale, so an empty or broken central cannot pass for a fast one.
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Central's base URL.
    #[arg(long)]
    central: String,
    /// The admin token.
    #[arg(long, env = "COLMENA_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Start of the range (a date or an RFC 3339 instant on a quarter hour).
    #[arg(long)]
    from: String,
    /// End of the range, exclusive.
    #[arg(long)]
    to: String,
    /// IANA time zone of the reports.
    #[arg(long, default_value = "America/Lima")]
    tz: String,
    /// The groupings measured, comma separated.
    #[arg(long, default_value = "branch,day")]
    group_by: String,
    /// Measured requests per grouping.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Unmeasured requests first (caches warm, connections open).
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Also print one JSON line per grouping (for scripts).
    #[arg(long)]
    json: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(a: Args) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let base = a.central.trim_end_matches('/');
        for group in a.group_by.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let url = format!(
                "{base}/reports/sales?group_by={group}&from={}&to={}&tz={}",
                a.from, a.to, a.tz
            );
            let mut lat_ms = Vec::with_capacity(a.requests);
            let (mut rows, mut sales) = (0usize, 0i64);
            for i in 0..a.warmup + a.requests {
                let sent = Instant::now();
                let r = client
                    .get(&url)
                    .bearer_auth(&a.token)
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.map_err(|e| format!("{url}: {e}"))?;
                let took = sent.elapsed().as_secs_f64() * 1000.0;
                if status != 200 {
                    return Err(format!("{url}: {status} {body}"));
                }
                if i >= a.warmup {
                    lat_ms.push(took);
                }
                rows = body["rows"].as_array().map_or(0, Vec::len);
                sales = body["totals"]["sales_count"].as_i64().unwrap_or(0);
            }
            if sales == 0 {
                return Err(format!("{url}: the report counts no sale (is the store loaded?)"));
            }
            lat_ms.sort_by(f64::total_cmp);
            let (p50, p99, max) = (
                percentile(&lat_ms, 50.0),
                percentile(&lat_ms, 99.0),
                lat_ms.last().copied().unwrap_or(0.0),
            );
            println!(
                "report-load: group_by={group}, {} requests: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; {rows} rows, {sales} sales in the range",
                a.requests
            );
            if a.json {
                let v = serde_json::json!({"group_by": group, "requests": a.requests, "p50_ms": p50,
                    "p99_ms": p99, "max_ms": max, "rows": rows, "sales": sales});
                println!("{v}");
            }
        }
        Ok(())
    })
}
