//! `colmena-bench push-load`: central ingest under the push protocol (see docs/protocol.md).
//!
//! Simulates N branches (`B0001`, `B0002`, …). Each branch has its own run of consecutive
//! seqs 1, 2, 3… cut into batches of sale events (1–3 lines each, `total_cents` equal to
//! Σ quantity × unit price, so central accepts them), serialised and gzip'd like the
//! branch's relay does above 1 KiB (`Compression::fast`). All bodies are built *before* the
//! clock starts, so the figure is central's, not this generator's JSON building.
//!
//! C pushers run concurrently. Pusher i owns branches i, i+C, i+2C, … and walks them
//! round-robin, one batch per branch per round, so every branch's batches arrive in order
//! while up to C branches push at once. Events/s counts only events central acknowledged
//! with a 200 (`applied`, i.e. batch size minus reported duplicates) over the wall time
//! of the timed part.
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Central's base URL, e.g. http://127.0.0.1:8000; several, comma separated, for central
    /// instances over one database: the pushers are dealt out over them in turn.
    #[arg(long)]
    central: String,
    /// Bearer token for /sync/push. The admin token may push for any branch.
    #[arg(long, env = "COLMENA_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file instead (first line).
    #[arg(long, conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Number of simulated branches.
    #[arg(long, default_value_t = 1000)]
    branches: usize,
    /// Events per push (the branch relay's maximum is 500).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Total events over all branches (split evenly).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Concurrent pushers (connections).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinct product ids the sales draw from (`P00001`…).
    #[arg(long, default_value_t = 1000)]
    products: usize,
    /// Branch id prefix; ids are PREFIX + a zero-padded number (2-16 chars in all).
    #[arg(long, default_value = "B")]
    branch_prefix: String,
    /// First seq of every branch (use applied_through+1 against a central that has data).
    #[arg(long, default_value_t = 1)]
    start_seq: u64,
    /// Bodies larger than this are gzip'd (the relay's rule is 1 KiB).
    #[arg(long, default_value_t = 1024)]
    gzip_above: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Seed of the event generator (runs are reproducible).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also print one JSON line with the results (for scripts).
    #[arg(long)]
    json: bool,
    /// Date the sales from this instant (RFC 3339) instead of now: seq s of every branch is
    /// sold at `sold_from + (s - 1) × sold_step_ms`, so loads cut into several runs (with
    /// `--start-seq`) spread one history over days (the reports benchmark).
    #[arg(long, requires = "sold_step_ms")]
    sold_from: Option<String>,
    /// Milliseconds between a branch's consecutive sales, with `--sold-from`.
    #[arg(long)]
    sold_step_ms: Option<i64>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    product_id: &'a str,
    quantity: i64,
    unit_price_cents: i64,
}

#[derive(Serialize)]
struct SaleEvent<'a> {
    seq: u64,
    kind: &'static str,
    occurred_at: std::borrow::Cow<'a, str>,
    sale_id: String,
    lines: Vec<LineOut<'a>>,
    total_cents: i64,
}

#[derive(Serialize)]
struct Push<'a> {
    branch_id: &'a str,
    events: Vec<SaleEvent<'a>>,
}

/// One pre-built request.
struct Batch {
    events: u64,
    last_seq: u64,
    body: Vec<u8>,
    gzip: bool,
}

struct BranchLoad {
    id: String,
    batches: Vec<Batch>,
}

/// xorshift64*: deterministic and good enough to vary baskets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn branch_ids(prefix: &str, n: usize) -> Result<Vec<String>, String> {
    let width = n.to_string().len().max(4);
    let ids: Vec<String> = (1..=n).map(|i| format!("{prefix}{i:0width$}")).collect();
    for id in ids.iter().take(1).chain(ids.last()) {
        colmena_shared::ids::BranchId::parse(id)?;
    }
    Ok(ids)
}

fn build_branch(
    a: &Args,
    id: String,
    events: usize,
    products: &[(String, i64)],
    now: &str,
    seed: u64,
) -> Result<BranchLoad, String> {
    let mut rng = Rng(seed | 1);
    let sold_from = match &a.sold_from {
        Some(f) => Some(
            colmena_shared::clock::parse_rfc3339_millis(f)
                .ok_or_else(|| format!("--sold-from {f:?} is not RFC 3339"))?,
        ),
        None => None,
    };
    let mut batches = Vec::with_capacity(events.div_ceil(a.batch.max(1)));
    let mut seq = a.start_seq;
    let mut left = events;
    while left > 0 {
        let n = left.min(a.batch);
        left -= n;
        let mut evs = Vec::with_capacity(n);
        for _ in 0..n {
            let k = 1 + rng.below(3) as usize;
            let mut lines = Vec::with_capacity(k);
            let mut total = 0i64;
            for _ in 0..k {
                let (pid, price) = &products[rng.below(products.len() as u64) as usize];
                let q = 1 + rng.below(5) as i64;
                total += q * price;
                lines.push(LineOut {
                    product_id: pid,
                    quantity: q,
                    unit_price_cents: *price,
                });
            }
            let occurred_at = match (sold_from, a.sold_step_ms) {
                (Some(from), Some(step)) => {
                    std::borrow::Cow::Owned(colmena_shared::clock::millis_to_rfc3339(from + (seq as i64 - 1) * step))
                }
                _ => std::borrow::Cow::Borrowed(now),
            };
            evs.push(SaleEvent {
                seq,
                kind: "sale",
                occurred_at,
                sale_id: format!("{id}-{seq:010}"),
                lines,
                total_cents: total,
            });
            seq += 1;
        }
        let json = serde_json::to_vec(&Push {
            branch_id: &id,
            events: evs,
        })
        .map_err(|e| e.to_string())?;
        let (body, gzip) = if json.len() > a.gzip_above {
            let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
            enc.write_all(&json).map_err(|e| e.to_string())?;
            (enc.finish().map_err(|e| e.to_string())?, true)
        } else {
            (json, false)
        };
        batches.push(Batch {
            events: n as u64,
            last_seq: seq - 1,
            body,
            gzip,
        });
    }
    Ok(BranchLoad { id, batches })
}

#[derive(Default)]
struct Tally {
    pushes_ok: u64,
    events_applied: u64,
    duplicates: u64,
    latencies_us: Vec<u64>,
    errors: std::collections::BTreeMap<String, u64>,
    first_error: Option<String>,
}

impl Tally {
    /// Adds one pusher's tally; the first error kept is the first pusher's that had one.
    fn absorb(&mut self, t: Tally) {
        self.pushes_ok += t.pushes_ok;
        self.events_applied += t.events_applied;
        self.duplicates += t.duplicates;
        self.latencies_us.extend(t.latencies_us);
        for (k, v) in t.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = t.first_error;
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

pub fn run(a: Args) -> Result<(), String> {
    let token = token(&a)?;
    if a.branches == 0 || a.batch == 0 || a.concurrency == 0 || a.products == 0 {
        return Err("--branches, --batch, --concurrency and --products must be at least 1".into());
    }
    let centrals: Vec<String> = a
        .central
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if centrals.is_empty() {
        return Err("--central needs at least one URL".into());
    }
    let ids = branch_ids(&a.branch_prefix, a.branches)?;
    let loads = build_all(&a, &ids)?;
    let (wall, tally) = push_all(&a, &centrals, &token, loads)?;
    report(&a, wall, tally)
}

fn token(a: &Args) -> Result<String, String> {
    match (&a.token, &a.token_file) {
        (Some(t), _) => Ok(t.clone()),
        (None, Some(f)) => Ok(std::fs::read_to_string(f)
            .map_err(|e| format!("--token-file {}: {e}", f.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string()),
        (None, None) => Err("--token, --token-file or COLMENA_ADMIN_TOKEN is required".into()),
    }
}

/// Untimed: builds every body of every branch, on all cores, before the clock starts.
fn build_all(a: &Args, ids: &[String]) -> Result<Vec<BranchLoad>, String> {
    let prep = Instant::now();
    let products: Vec<(String, i64)> = (1..=a.products)
        .map(|i| (format!("P{i:05}"), 50 + (i as i64 * 37) % 5000))
        .collect();
    let now = colmena_shared::clock::now_rfc3339();
    let per = a.events / a.branches;
    let extra = a.events % a.branches;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut loads: Vec<Option<BranchLoad>> = (0..a.branches).map(|_| None).collect();
    std::thread::scope(|s| -> Result<(), String> {
        let chunk = a.branches.div_ceil(threads);
        let mut handles = Vec::new();
        for (t, slots) in loads.chunks_mut(chunk).enumerate() {
            let (products, now) = (&products, &now);
            handles.push(s.spawn(move || -> Result<(), String> {
                for (j, slot) in slots.iter_mut().enumerate() {
                    let i = t * chunk + j;
                    let n = per + usize::from(i < extra);
                    *slot = Some(build_branch(
                        a,
                        ids[i].clone(),
                        n,
                        products,
                        now,
                        a.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    )?);
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join().map_err(|_| "generator thread panicked".to_string())??;
        }
        Ok(())
    })?;
    let loads: Vec<BranchLoad> = loads.into_iter().flatten().collect();
    let total_batches: usize = loads.iter().map(|l| l.batches.len()).sum();
    let body_bytes: usize = loads.iter().flat_map(|l| l.batches.iter()).map(|b| b.body.len()).sum();
    eprintln!(
        "push-load: built {} events in {} pushes for {} branches ({:.1} MB on the wire) in {:.2}s",
        a.events,
        total_batches,
        loads.len(),
        body_bytes as f64 / 1e6,
        prep.elapsed().as_secs_f64()
    );
    Ok(loads)
}

/// Timed: checks every central's health, then pushes everything with `a.concurrency`
/// pushers dealt over the centrals; returns the wall time of the pushes and their tally.
fn push_all(a: &Args, centrals: &[String], token: &str, loads: Vec<BranchLoad>) -> Result<(Duration, Tally), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(a.concurrency)
            .timeout(Duration::from_secs(a.timeout_secs))
            .build()
            .map_err(|e| e.to_string())?;
        for central in centrals {
            let health = client
                .get(format!("{central}/health"))
                .send()
                .await
                .map_err(|e| format!("{central}/health: {e}"))?;
            if !health.status().is_success() {
                return Err(format!("{central}/health answered {}", health.status()));
            }
        }
        let auth = Arc::new(format!("Bearer {token}"));
        let urls: Vec<Arc<String>> = centrals.iter().map(|c| Arc::new(format!("{c}/sync/push"))).collect();
        // Deal the branches out to the pushers.
        let mut owned: Vec<Vec<BranchLoad>> = (0..a.concurrency.min(loads.len())).map(|_| Vec::new()).collect();
        let c = owned.len();
        for (i, l) in loads.into_iter().enumerate() {
            owned[i % c].push(l);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, mine) in owned.into_iter().enumerate() {
            let (client, auth, url) = (client.clone(), auth.clone(), urls[i % urls.len()].clone());
            tasks.push(tokio::spawn(async move { pusher(client, &url, &auth, mine).await }));
        }
        let mut total = Tally::default();
        for t in tasks {
            total.absorb(t.await.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>((started.elapsed(), total))
    })
}

/// Prints the human line (and with `--json` the JSON line scripts read); fails when
/// nothing was applied, so a broken central cannot pass for a slow one.
fn report(a: &Args, wall: Duration, tally: Tally) -> Result<(), String> {
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let secs = wall.as_secs_f64();
    let eps = tally.events_applied as f64 / secs;
    let (p50, p99, max) = (
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    let errors: u64 = tally.errors.values().sum();
    println!(
        "push-load: {} branches, batch {}, concurrency {}: {} events applied in {:.2}s = {:.0} events/s; {} pushes ok, {} failed; push latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        a.branches, a.batch, a.concurrency, tally.events_applied, secs, eps, tally.pushes_ok, errors, p50, p99, max
    );
    if !tally.errors.is_empty() {
        println!(
            "push-load: errors by kind: {:?}; first: {}",
            tally.errors,
            tally.first_error.as_deref().unwrap_or("-")
        );
    }
    if a.json {
        let v = serde_json::json!({
            "branches": a.branches, "batch": a.batch, "concurrency": a.concurrency,
            "events_planned": a.events, "events_applied": tally.events_applied, "duplicates": tally.duplicates,
            "wall_s": secs, "events_per_s": eps, "pushes_ok": tally.pushes_ok, "pushes_failed": errors,
            "p50_ms": p50, "p99_ms": p99, "max_ms": max, "errors": tally.errors,
        });
        println!("{v}");
    }
    if tally.events_applied == 0 {
        return Err("no event was applied".into());
    }
    Ok(())
}

/// Pushes every batch of `mine`, one per branch per round, each branch in seq order. A
/// branch whose push fails is dropped (its later batches would only be sequence gaps).
async fn pusher(client: reqwest::Client, url: &str, auth: &str, mine: Vec<BranchLoad>) -> Tally {
    let mut t = Tally::default();
    let mut queues: Vec<(String, std::collections::VecDeque<Batch>)> = mine
        .into_iter()
        .map(|l| (l.id, l.batches.into_iter().collect()))
        .collect();
    loop {
        let mut any = false;
        for (id, q) in queues.iter_mut() {
            let Some(b) = q.pop_front() else { continue };
            any = true;
            let mut rb = client
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json");
            if b.gzip {
                rb = rb.header("Content-Encoding", "gzip");
            }
            let sent = Instant::now();
            let res = rb.body(b.body).send().await;
            let outcome = match res {
                Ok(r) if r.status().as_u16() == 200 => match r.json::<colmena_shared::wire::PushResponse>().await {
                    Ok(p) if p.applied_through == b.last_seq => Ok(p.duplicates),
                    Ok(p) => Err((
                        "bad_ack".to_string(),
                        format!(
                            "{id}: applied_through {} after pushing through {}",
                            p.applied_through, b.last_seq
                        ),
                    )),
                    Err(e) => Err(("bad_body".to_string(), format!("{id}: {e}"))),
                },
                Ok(r) => {
                    let s = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    Err((
                        format!("http_{s}"),
                        format!("{id}: {s} {}", text.chars().take(300).collect::<String>()),
                    ))
                }
                Err(e) => Err((
                    if e.is_timeout() { "timeout" } else { "transport" }.to_string(),
                    format!("{id}: {e}"),
                )),
            };
            t.latencies_us.push(sent.elapsed().as_micros() as u64);
            match outcome {
                Ok(dups) => {
                    t.pushes_ok += 1;
                    t.duplicates += dups;
                    t.events_applied += b.events.saturating_sub(dups);
                }
                Err((kind, msg)) => {
                    *t.errors.entry(kind).or_default() += 1;
                    t.first_error.get_or_insert(msg);
                    q.clear();
                }
            }
        }
        if !any {
            return t;
        }
    }
}
