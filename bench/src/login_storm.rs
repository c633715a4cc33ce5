//! `colmena-bench login-storm`: does a flood of logins slow the till?
//!
//! A login verifies an argon2id hash (tens of milliseconds of CPU), so 200 cashiers logging
//! in at once could starve `/sell` on a 2-core branch. The branch bounds concurrent
//! verifications and runs them off the HTTP workers; this measures whether that holds.
//!
//! Two phases of the same open-loop `/sell` load (a fixed rate, each request's latency
//! measured from its *scheduled* send time, so a stall is not hidden by the loop waiting —
//! coordinated omission): first idle, then while `--logins` clients each log in again and
//! again with a valid PIN. It prints both `/sell` p50/p99, the storm's p99 ÷ the idle p99,
//! and how many logins completed.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The branch's base URL.
    #[arg(long)]
    branch: String,
    /// Bearer token for `/sell` (the POS token).
    #[arg(long, env = "COLMENA_POS_TOKEN", hide_env_values = true)]
    pos_token: String,
    /// The user the login clients log in as, and their PIN.
    #[arg(long)]
    user: String,
    #[arg(long, hide_env_values = true)]
    pin: String,
    /// The product every sale sells one unit of.
    #[arg(long, default_value = "P1")]
    product: String,
    /// Concurrent login clients during the storm.
    #[arg(long, default_value_t = 200)]
    logins: usize,
    /// `/sell` requests per second, in both phases.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

struct Phase {
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

pub fn run(a: Args) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let idle = sell_phase(&client, &a).await;
        let stop = Arc::new(AtomicBool::new(false));
        let logins = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let storm: Vec<_> = (0..a.logins)
            .map(|_| {
                let (c, stop, logins, refused) = (client.clone(), stop.clone(), logins.clone(), refused.clone());
                let (url, body) = (
                    format!("{}/login", a.branch),
                    serde_json::json!({"user_id": a.user, "pin": a.pin}),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match c.post(&url).json(&body).send().await {
                            Ok(r) if r.status().is_success() => logins.fetch_add(1, Ordering::Relaxed),
                            _ => refused.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        // Let every login client get going before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = logins.load(Ordering::Relaxed);
        let stormy = sell_phase(&client, &a).await;
        let during = logins.load(Ordering::Relaxed) - before;
        stop.store(true, Ordering::Relaxed);
        for t in storm {
            let _ = t.await;
        }
        println!(
            "login-storm: /sell at {} req/s: idle p50 {:.2} ms p99 {:.2} ms ({} errors); with {} login clients p50 {:.2} ms p99 {:.2} ms ({} errors); p99 ratio {:.2}; {} logins in {} s ({:.1}/s), {} refused",
            a.rate,
            idle.p50_ms,
            idle.p99_ms,
            idle.errors,
            a.logins,
            stormy.p50_ms,
            stormy.p99_ms,
            stormy.errors,
            stormy.p99_ms / idle.p99_ms.max(0.001),
            during,
            a.seconds,
            during as f64 / a.seconds as f64,
            refused.load(Ordering::Relaxed),
        );
        Ok(())
    })
}

/// `rate` sales a second for `seconds`, open loop; latencies from each scheduled start.
async fn sell_phase(client: &reqwest::Client, a: &Args) -> Phase {
    let n = a.rate * a.seconds;
    let every = Duration::from_nanos(1_000_000_000 / a.rate.max(1));
    let url = format!("{}/sell", a.branch);
    let body = serde_json::json!({"product_id": a.product, "quantity": 1});
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let due = t0 + every * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let req = client.post(&url).bearer_auth(&a.pos_token).json(&body);
        tasks.push(tokio::spawn(async move {
            let ok = matches!(req.send().await, Ok(r) if r.status().as_u16() == 201);
            (due.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((d, true)) => lat.push(d.as_secs_f64() * 1000.0),
            _ => errors += 1,
        }
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Phase {
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        errors,
    }
}
