//! The chaos suite: a whole chain — central and branches CUS, ABA and LIM as real
//! processes, each branch reaching central through its own fault proxy — under POS load,
//! admin changes and randomly injected faults, with the invariant (docs/protocol.md, 'The
//! invariant') checked exactly after every round.
//!
//! A round: sellers on every branch, each a cashier logged in with their PIN (random
//! baskets, some with an Idempotency-Key and retried through failures, logging in again
//! when a restart ended their session; some stock adjustments and counts, the counts with an
//! Idempotency-Key retried through kills), the till (each cashier on a
//! shift of their own till, mixed tenders, returns, cash movements, some shifts closed:
//! [`crate::chaos_till`]), transfers between the branches requested, sometimes cancelled,
//! dispatched and received ([`crate::chaos_transfers`]), allocations and price changes at
//! central, and one to three faults drawn from a seeded schedule: `kill -9` of central or of
//! a branch (restarted on the same data and port), SIGTERM restarts of either, and proxy
//! toxics (latency beyond the request timeout, blackhole, resets, responses cut mid-way,
//! 503 bursts, slow bandwidth). Then everything is healed, the outboxes drain, the pulls
//! catch up, and for each branch:
//! - central's sales are exactly the sales answered 201 (plus, only for a branch killed
//!   this round, sales whose reply was lost in the kill; those must be in the branch's own
//!   store, at most one per unanswered request, and are expected exactly from then on);
//! - every sale answered 201 is at central with the `cashier_id` of the cashier whose
//!   session sold it;
//! - stock is equal product by product; `applied_through == last_seq`; prices agree;
//! - every closed shift is `consistent` at central (its figures, recomputed from the events
//!   central applied, equal the branch's closing summary);
//! - every transfer step a branch answered 200 is at central, central's `in_transit` is what
//!   its transfers carry, `total_stock` = Σ `by_branch` + `in_transit`, and both branches see
//!   each transfer as central does.
//!
//! And once per round, for the whole chain: central's sales report by branch, over every
//! day it has sales or returns on, equals the per-branch sums of its own `/sales` and
//! `/returns` to the cent (the rollups, moved inside each push's transaction, do not drift
//! under kills, retries and duplicate pushes).
//!
//! `COLMENA_CHAOS_ROUNDS` (default 20) and `COLMENA_CHAOS_SEED` (default fixed) make longer
//! runs and replays; a failure prints the seed and the fault schedule so far. See
//! `RELIABILITY.md`.

use crate::support::central::put_user_ok;
use crate::support::proxy::Proxy;
use crate::support::*;
use crate::{chaos_till, chaos_transfers};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BRANCHES: [&str; 3] = ["CUS", "ABA", "LIM"];
const PRODUCTS: usize = 20;
/// Sellers per branch.
const SELLERS: usize = 2;
/// How long the load of a round runs.
const LOAD: Duration = Duration::from_millis(3000);
const DEFAULT_SEED: u64 = 0xC0_1E4A_2026;

/// Fast breaker settings: a round's faults open and close breakers within seconds.
const FAST: &[&str] = &[
    "--breaker-failures",
    "3",
    "--breaker-wait-min",
    "200ms",
    "--breaker-wait-max",
    "2s",
    "--request-timeout",
    "1s",
    "--connect-timeout",
    "300ms",
    "--pull-interval",
    "300ms",
    "--startup-sync-timeout",
    "1s",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    KillCentral,
    TermCentral,
    KillBranch,
    TermBranch,
    Latency,
    Blackhole,
    Reset,
    CloseMidResponse,
    Burst503,
    SlowBandwidth,
}

const KINDS: [Kind; 10] = [
    Kind::KillCentral,
    Kind::TermCentral,
    Kind::KillBranch,
    Kind::TermBranch,
    Kind::Latency,
    Kind::Blackhole,
    Kind::Reset,
    Kind::CloseMidResponse,
    Kind::Burst503,
    Kind::SlowBandwidth,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::KillCentral => "kill -9 central",
            Kind::TermCentral => "central graceful restart",
            Kind::KillBranch => "kill -9 branch",
            Kind::TermBranch => "branch graceful restart",
            Kind::Latency => "latency beyond timeout",
            Kind::Blackhole => "blackhole",
            Kind::Reset => "connection resets",
            Kind::CloseMidResponse => "close mid-response",
            Kind::Burst503 => "503 burst",
            Kind::SlowBandwidth => "slow bandwidth",
        }
    }
    fn central(self) -> bool {
        matches!(self, Kind::KillCentral | Kind::TermCentral)
    }
}

#[derive(Clone, Debug)]
struct Fault {
    kind: Kind,
    /// Branch index for branch and proxy faults.
    target: usize,
    at: Duration,
    hold: Duration,
    /// Toxic parameter: latency ms, bytes before the cut, 503 count, bytes/s.
    param: u64,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.kind.central() {
            "central".to_string()
        } else {
            BRANCHES[self.target].to_string()
        };
        write!(
            f,
            "{} [{who}] at +{}ms for {}ms",
            self.kind.name(),
            self.at.as_millis(),
            self.hold.as_millis()
        )?;
        match self.kind {
            Kind::Latency => write!(f, " ({} ms)", self.param),
            Kind::CloseMidResponse => write!(f, " (after {} bytes)", self.param),
            Kind::Burst503 => write!(f, " ({} requests)", self.param),
            Kind::SlowBandwidth => write!(f, " ({} B/s)", self.param),
            _ => Ok(()),
        }
    }
}

/// The faults of one round, drawn from the seeded generator: 1 to 3 faults, at most one
/// central process fault, at most one process fault per branch.
fn draw_round(rng: &mut fastrand::Rng) -> Vec<Fault> {
    let n = match rng.u32(0..10) {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut out: Vec<Fault> = Vec::new();
    while out.len() < n {
        let kind = KINDS[rng.usize(..KINDS.len())];
        let target = rng.usize(..BRANCHES.len());
        let clash = out.iter().any(|f| {
            (kind.central() && f.kind.central())
                || (matches!(kind, Kind::KillBranch | Kind::TermBranch)
                    && matches!(f.kind, Kind::KillBranch | Kind::TermBranch)
                    && f.target == target)
                || (!kind.central() && f.kind == kind && f.target == target)
        });
        if clash {
            continue;
        }
        let at = Duration::from_millis(rng.u64(100..1500));
        let (hold, param) = match kind {
            Kind::KillCentral | Kind::KillBranch => (rng.u64(200..1500), 0),
            Kind::TermCentral | Kind::TermBranch => (rng.u64(0..500), 0),
            // Beyond the branches' 1 s request timeout.
            Kind::Latency => (rng.u64(1200..2500), rng.u64(1100..2000)),
            Kind::Blackhole | Kind::Reset => (rng.u64(500..2000), 0),
            Kind::CloseMidResponse => (rng.u64(500..2000), rng.u64(0..400)),
            // `hold` is the longest wait for the burst to be used up (Retry-After and the
            // open breaker space the relay's requests out).
            Kind::Burst503 => (rng.u64(3000..6000), rng.u64(1..8)),
            Kind::SlowBandwidth => (rng.u64(800..2000), rng.u64(200..4000)),
        };
        out.push(Fault {
            kind,
            target,
            at,
            hold: Duration::from_millis(hold),
            param,
        });
    }
    out.sort_by_key(|f| f.at);
    out
}

type Shared<T> = Arc<Mutex<T>>;

/// Field order is drop order: processes first, their data dir last.
struct Chain {
    branches: Vec<Shared<Proc>>,
    central: Shared<Proc>,
    proxies: Vec<Arc<Proxy>>,
    central_url: String,
    branch_urls: Vec<String>,
    /// `cashiers[branch][seller]`.
    cashiers: Vec<Vec<Arc<Cashier>>>,
    _dir: TempDir,
}

/// One till's cashier: a user at central (working at every branch) who logs in at the
/// branch with a PIN. The session outlives rounds; a branch restart ends it (sessions live
/// in memory), and the seller logs in again.
pub(super) struct Cashier {
    pub(super) user_id: String,
    pin: String,
    pub(super) token: Mutex<Option<String>>,
    /// Their own till, and the shift open on it (it outlives rounds and restarts until the
    /// cashier closes it).
    pub(super) till_id: String,
    pub(super) shift: Mutex<Option<String>>,
}

fn cashier_pin(s: usize) -> String {
    format!("{:04}", 2718 + 7 * s)
}

/// What one seller saw in a round.
#[derive(Default)]
pub(super) struct SellerReport {
    acked: Vec<String>,
    /// `(sale_id, cashier)` of every sale in `acked`.
    sold_by: Vec<(String, String)>,
    /// Successful logins (the first of each cashier, then one after each restart that ended
    /// their session).
    logins: usize,
    /// Sells without an Idempotency-Key that failed in transport (the sale may exist).
    unanswered: usize,
    adjustments: usize,
    /// Stock counts answered 201 (each with an Idempotency-Key, retried through kills).
    counts: usize,
    replays: usize,
    pub(super) returns: usize,
    pub(super) cash_moves: usize,
    pub(super) shifts_closed: usize,
    pub(super) unexpected: Vec<String>,
}

fn product(i: usize) -> String {
    format!("P{i:02}")
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints the seed and the schedule if the test panics, so a failure can be replayed.
struct Postmortem {
    seed: u64,
    log: Shared<Vec<String>>,
    logs: Vec<(String, Shared<Proc>)>,
}

impl Drop for Postmortem {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n==== CHAOS FAILURE: replay with COLMENA_CHAOS_SEED={} ====",
                self.seed
            );
            eprintln!("fault schedule so far:");
            for l in lock(&self.log).iter() {
                eprintln!("  {l}");
            }
            for (name, p) in &self.logs {
                let text = lock(p).log_text();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("---- last lines of {name}'s log:");
                for l in tail.iter().rev() {
                    eprintln!("  {l}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invariant_holds_through_rounds_of_random_kills_and_network_faults() {
    let rounds: usize = std::env::var("COLMENA_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("COLMENA_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut rng = fastrand::Rng::with_seed(seed);
    println!("chaos: {rounds} rounds, seed {seed}");
    let started = Instant::now();

    let chain = start_chain().await;
    let schedule_log: Shared<Vec<String>> = Arc::default();
    let mut logs = vec![("central".to_string(), chain.central.clone())];
    for (i, b) in chain.branches.iter().enumerate() {
        logs.push((BRANCHES[i].to_string(), b.clone()));
    }
    let _postmortem = Postmortem {
        seed,
        log: schedule_log.clone(),
        logs,
    };

    let c = client();
    let mut expected: Vec<BTreeSet<String>> = vec![BTreeSet::new(); BRANCHES.len()];
    let mut faults_by_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut acked_total, mut lost_replies, mut adjustments, mut replays, mut admin_ops, mut logins) =
        (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let (mut returns, mut cash_moves, mut shifts_closed, mut consistent) = (0usize, 0usize, 0usize, 0usize);
    let mut counts = 0usize;
    let mut transfers = chaos_transfers::Transfers::default();
    // Branch rows of the sales report compared with central's sales after each round.
    let mut report_checks = 0usize;

    for round in 1..=rounds {
        let faults = draw_round(&mut rng);
        let line = format!(
            "round {round}: {}",
            faults.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ")
        );
        lock(&schedule_log).push(line.clone());
        for f in &faults {
            *faults_by_kind.entry(f.kind.name()).or_default() += 1;
        }
        let t0 = Instant::now();

        // Load and admin traffic.
        let stop = Arc::new(AtomicBool::new(false));
        let mut sellers = Vec::new();
        for (b, url) in chain.branch_urls.iter().enumerate() {
            for s in 0..SELLERS {
                let rng = fastrand::Rng::with_seed(seed ^ ((round as u64) << 20) ^ ((b * SELLERS + s) as u64) << 8);
                let till = chain.cashiers[b][s].clone();
                sellers.push((b, tokio::spawn(seller(url.clone(), rng, stop.clone(), till))));
            }
        }
        let admin = tokio::spawn(admin_traffic(
            chain.central_url.clone(),
            fastrand::Rng::with_seed(seed ^ round as u64 ^ 0xAD),
            stop.clone(),
        ));

        let moving = tokio::spawn(chaos_transfers::traffic(
            std::mem::take(&mut transfers),
            chain.central_url.clone(),
            chain.branch_urls.clone(),
            BRANCHES.to_vec(),
            (0..PRODUCTS).map(product).collect(),
            seed ^ ((round as u64) << 32) ^ 0x7F,
            stop.clone(),
        ));

        // Faults, each on its own task (process restarts block, so they run off the runtime).
        let mut fault_tasks = Vec::new();
        for f in faults.clone() {
            let central = chain.central.clone();
            let branch = chain.branches[f.target].clone();
            let proxy = chain.proxies[f.target].clone();
            fault_tasks.push(tokio::spawn(async move { inject(f, central, branch, proxy).await }));
        }

        tokio::time::sleep(LOAD).await;
        stop.store(true, Ordering::SeqCst);
        for t in fault_tasks {
            let outcome = t.await.expect("fault task");
            if let Err(e) = outcome {
                panic!("round {round}: {e}");
            }
        }
        admin_ops += admin.await.expect("admin task");
        transfers = moving.await.expect("transfer task");
        let mut reports: Vec<SellerReport> = (0..BRANCHES.len()).map(|_| SellerReport::default()).collect();
        for (b, t) in sellers {
            let r = t.await.expect("seller task");
            let into = &mut reports[b];
            into.acked.extend(r.acked);
            into.sold_by.extend(r.sold_by);
            logins += r.logins;
            (returns, cash_moves, shifts_closed) = (
                returns + r.returns,
                cash_moves + r.cash_moves,
                shifts_closed + r.shifts_closed,
            );
            into.unanswered += r.unanswered;
            into.adjustments += r.adjustments;
            into.counts += r.counts;
            into.replays += r.replays;
            into.unexpected.extend(r.unexpected);
        }

        // Heal everything; make sure every process is up.
        for p in &chain.proxies {
            p.heal();
        }
        {
            let central = chain.central.clone();
            let branches = chain.branches.clone();
            tokio::task::spawn_blocking(move || {
                let mut c = lock(&central);
                if !c.is_running() {
                    c.restart();
                }
                for b in &branches {
                    let mut b = lock(b);
                    if !b.is_running() {
                        b.restart();
                    }
                }
            })
            .await
            .unwrap();
        }

        // The checks.
        let mut round_sales = 0;
        for (b, name) in BRANCHES.iter().enumerate() {
            let r = &reports[b];
            assert!(
                r.unexpected.is_empty(),
                "round {round}: {name}: unexpected answers: {:?}",
                &r.unexpected[..r.unexpected.len().min(5)]
            );
            let killed = faults.iter().any(|f| f.kind == Kind::KillBranch && f.target == b);
            let restarted = faults.iter().any(|f| f.kind == Kind::TermBranch && f.target == b);
            if !killed && !restarted {
                assert_eq!(
                    r.unanswered, 0,
                    "round {round}: {name}: sells failed in transport though the branch was up all along"
                );
            }
            for id in &r.acked {
                assert!(
                    expected[b].insert(id.clone()),
                    "round {round}: {name}: sale id {id} answered 201 twice"
                );
            }
            round_sales += r.acked.len();
            adjustments += r.adjustments;
            counts += r.counts;
            replays += r.replays;
            let url = &chain.branch_urls[b];
            wait_drained(&c, url, Duration::from_secs(90)).await;
            wait_pulled(&c, &chain.central_url, url, name, Duration::from_secs(60)).await;
            check_invariant(&c, &chain.central_url, url, name, &expected[b], !killed).await;
            check_cashiers(&c, &chain.central_url, name, &r.sold_by, round).await;
            consistent += chaos_till::check_shifts(&c, &chain.central_url, name, round).await;
            if killed {
                // Sales committed whose 201 was lost in the kill: in the branch's own store,
                // at central once, at most one per unanswered request; expected from now on.
                let at_central: BTreeSet<String> = central_sales(&c, &chain.central_url, name)
                    .await
                    .iter()
                    .map(|s| s["sale_id"].as_str().unwrap().to_string())
                    .collect();
                let durable = branch_sale_ids(&c, url).await;
                assert_eq!(
                    at_central, durable,
                    "round {round}: {name}: central's sales != the branch's durable sales"
                );
                let extra: Vec<String> = at_central.difference(&expected[b]).cloned().collect();
                assert!(
                    extra.len() <= r.unanswered,
                    "round {round}: {name}: {} sales at central were never answered, but only {} requests went unanswered",
                    extra.len(),
                    r.unanswered
                );
                lost_replies += extra.len();
                expected[b].extend(extra);
            }
            check_prices(&c, &chain.central_url, url, name).await;
        }
        chaos_transfers::check(
            &c,
            &mut transfers,
            &chain.central_url,
            &chain.branch_urls,
            &BRANCHES,
            round,
        )
        .await;
        report_checks += crate::support::reports::check_branch_report(&c, &chain.central_url, round).await;
        acked_total += round_sales;
        let took = t0.elapsed();
        println!(
            "{line}\n    ok in {:.1}s: {round_sales} sales acked this round, {} expected at central in all",
            took.as_secs_f64(),
            expected.iter().map(|s| s.len()).sum::<usize>()
        );
    }

    let verified: usize = expected.iter().map(|s| s.len()).sum();
    let faults_total: usize = faults_by_kind.values().sum();
    println!("\n==== chaos summary (seed {seed}) ====");
    println!("rounds: {rounds}, wall time {:.0}s", started.elapsed().as_secs_f64());
    println!("faults injected: {faults_total}");
    for (k, n) in &faults_by_kind {
        println!("  {k:<26} {n}");
    }
    println!("sales answered 201 and found at central exactly once: {acked_total}");
    println!("sales committed whose reply was lost in a kill, found at central exactly once: {lost_replies}");
    println!("sales verified at central in all: {verified} (0 lost, 0 duplicated)");
    println!("idempotent replays after failures: {replays}; stock adjustments: {adjustments}; stock counts: {counts}; admin changes at central: {admin_ops}");
    println!("cashier logins (first ones, then after restarts ended sessions): {logins}; every sale at central carries its seller's cashier_id");
    println!(
        "till: {returns} returns, {cash_moves} cash movements, {shifts_closed} shifts closed; closed shifts checked consistent at central after each round: {consistent} checks"
    );
    println!(
        "transfers: {} requested, {} dispatched, {} received ({} units booked lost), {} cancelled, {} dispatches that crossed a cancel and won; central's in_transit and total_stock checked after each round",
        transfers.created, transfers.dispatched, transfers.received, transfers.lost_units, transfers.cancelled, transfers.crossed
    );
    println!("reports: {report_checks} branch rows of GET /reports/sales equal to central's sales and returns, to the cent, after the rounds");
    for (i, p) in chain.proxies.iter().enumerate() {
        let s = p.stats();
        println!(
            "proxy {}: {} connections, {} requests forwarded, {} answered 503, {} blackholed, {} resets, {} responses cut",
            BRANCHES[i],
            s.connections.load(Ordering::Relaxed),
            s.requests_forwarded.load(Ordering::Relaxed),
            s.requests_503.load(Ordering::Relaxed),
            s.requests_blackholed.load(Ordering::Relaxed),
            s.resets.load(Ordering::Relaxed),
            s.responses_cut.load(Ordering::Relaxed),
        );
    }
    eprintln!(
        "chaos: seed {seed}, {rounds} rounds, {faults_total} faults ({}), {verified} sales verified (0 lost, 0 duplicated) in {:.0}s",
        faults_by_kind.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f64()
    );
}

async fn start_chain() -> Chain {
    let dir = TempDir::new("chaos");
    let central = spawn_central(dir.path(), &BRANCHES, &[]);
    let c = client();
    for s in 0..SELLERS {
        let body = json!({"name": format!("Caja {s}"), "role": "cashier", "branches": ["*"], "pin": cashier_pin(s)});
        put_user_ok(&c, &central.url, &format!("caja-{s}"), body).await;
    }
    for i in 0..PRODUCTS {
        put_product(
            &c,
            &central.url,
            &product(i),
            &format!("Producto {i}"),
            100 + 25 * i as i64,
        )
        .await;
        for b in BRANCHES {
            allocate(&c, &central.url, b, &product(i), 1_000_000).await;
        }
    }
    let mut proxies = Vec::new();
    let mut branches = Vec::new();
    let mut branch_urls = Vec::new();
    for b in BRANCHES {
        let p = Arc::new(Proxy::start(central.addr.as_str()));
        let branch = spawn_branch(dir.path(), b, &p.url, FAST);
        wait_pulled(&c, &central.url, &branch.url, b, Duration::from_secs(30)).await;
        branch_urls.push(branch.url.clone());
        branches.push(Arc::new(Mutex::new(branch)));
        proxies.push(p);
    }
    let central_url = central.url.clone();
    let cashiers = BRANCHES
        .iter()
        .map(|_| {
            (0..SELLERS)
                .map(|s| {
                    Arc::new(Cashier {
                        user_id: format!("caja-{s}"),
                        pin: cashier_pin(s),
                        token: Mutex::new(None),
                        till_id: format!("T{s}"),
                        shift: Mutex::new(None),
                    })
                })
                .collect()
        })
        .collect();
    Chain {
        cashiers,
        _dir: dir,
        central: Arc::new(Mutex::new(central)),
        central_url,
        proxies,
        branches,
        branch_urls,
    }
}

/// Applies one fault at its time and heals it after its hold. Process faults block, so they
/// run on the blocking pool.
async fn inject(f: Fault, central: Shared<Proc>, branch: Shared<Proc>, proxy: Arc<Proxy>) -> Result<(), String> {
    tokio::time::sleep(f.at).await;
    match f.kind {
        Kind::KillCentral | Kind::KillBranch => {
            let p = if f.kind == Kind::KillCentral { central } else { branch };
            tokio::task::spawn_blocking(move || {
                lock(&p).kill9();
                std::thread::sleep(f.hold);
                lock(&p).restart();
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        Kind::TermCentral | Kind::TermBranch => {
            let p = if f.kind == Kind::TermCentral { central } else { branch };
            let status = tokio::task::spawn_blocking(move || {
                let st = lock(&p).terminate(Duration::from_secs(20));
                std::thread::sleep(f.hold);
                lock(&p).restart();
                st
            })
            .await
            .map_err(|e| e.to_string())?;
            match status {
                Some(s) if s.success() => {}
                other => return Err(format!("{f}: SIGTERM did not stop the process cleanly: {other:?}")),
            }
        }
        Kind::Latency => {
            proxy.set_latency(Some(Duration::from_millis(f.param)));
            tokio::time::sleep(f.hold).await;
            proxy.set_latency(None);
        }
        Kind::Blackhole => {
            proxy.set_blackhole(true);
            tokio::time::sleep(f.hold).await;
            proxy.set_blackhole(false);
            proxy.cut_connections();
        }
        Kind::Reset => {
            proxy.set_reset(true);
            tokio::time::sleep(f.hold).await;
            proxy.set_reset(false);
        }
        Kind::CloseMidResponse => {
            proxy.set_close_after(Some(f.param));
            tokio::time::sleep(f.hold).await;
            proxy.set_close_after(None);
        }
        Kind::Burst503 => {
            proxy.fail_next(f.param);
            let until = Instant::now() + f.hold;
            while proxy.fail_left() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Kind::SlowBandwidth => {
            proxy.set_bandwidth(Some(f.param));
            tokio::time::sleep(f.hold).await;
            proxy.set_bandwidth(None);
        }
    }
    Ok(())
}

/// The cashier's session token, logging in first if they have none. `None` if the branch
/// did not answer the login in time (it is down); a refused login is unexpected.
pub(super) async fn session(c: &reqwest::Client, url: &str, till: &Cashier, r: &mut SellerReport) -> Option<String> {
    if let Some(t) = lock(&till.token).clone() {
        return Some(t);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = c
            .post(format!("{url}/login"))
            .json(&json!({"user_id": till.user_id, "pin": till.pin}))
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status() == 200 => {
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                let t = v["token"].as_str()?.to_string();
                *lock(&till.token) = Some(t.clone());
                r.logins += 1;
                return Some(t);
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                r.unexpected.push(format!("login {}: {status} {text}", till.user_id));
                return None;
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(_) => return None,
        }
    }
}

/// One POS till: its cashier's random baskets with their session token (half with an
/// Idempotency-Key, retried through transport failures until answered, and with a fresh
/// session when a restart ended the old one), and now and then a stock adjustment.
async fn seller(url: String, mut rng: fastrand::Rng, stop: Arc<AtomicBool>, till: Arc<Cashier>) -> SellerReport {
    let c = crate::support::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut r = SellerReport::default();
    let mut n = 0u64;
    // Sales of this round that a return may take a unit of: (sale_id, a product of it).
    let mut returnable: Vec<(String, String)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let Some(shift) = chaos_till::shift(&c, &url, &till, &mut r).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let dice = rng.u32(0..40);
        if dice == 0 {
            chaos_till::move_cash(&c, &url, &till, &shift, &mut rng, &mut r).await;
        } else if dice < 3 && !returnable.is_empty() {
            let (sale, product) = returnable.swap_remove(rng.usize(..returnable.len()));
            chaos_till::return_one(&c, &url, &till, (&sale, &product), &shift, &mut r).await;
        } else if rng.u32(0..20) == 0 {
            count_stock(&c, &url, &mut rng, n, &mut r).await;
        } else if rng.u32(0..10) == 0 {
            let delta = if rng.bool() { rng.i64(1..50) } else { -rng.i64(1..5) };
            let body =
                json!({"product_id": product(rng.usize(..PRODUCTS)), "quantity_delta": delta, "reason": "count"});
            match c
                .post(format!("{url}/stock/adjustments"))
                .bearer_auth(BRANCH_ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
            {
                Ok(resp) if resp.status() == 201 => r.adjustments += 1,
                Ok(resp) => r.unexpected.push(format!(
                    "adjustment {body}: {} {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                )),
                // A kill: the adjustment may or may not exist; stock equality covers it.
                Err(_) => {}
            }
        } else {
            let lines: Vec<Value> = (0..rng.usize(1..=3))
                .map(|_| json!({"product_id": product(rng.usize(..PRODUCTS)), "quantity": rng.i64(1..=3)}))
                .collect();
            // The cashier comes from the session; naming it in the body too is allowed.
            let mut body = if rng.bool() {
                json!({"items": lines, "shift_id": shift})
            } else {
                json!({"items": lines, "cashier_id": till.user_id, "shift_id": shift})
            };
            if let Some(p) = chaos_till::payments(&mut rng) {
                body["payments"] = p;
            }
            let key = rng.bool().then(|| format!("{}-{}-{n}", till.user_id, rng.u64(..)));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let Some(token) = session(&c, &url, &till, &mut r).await else {
                    r.unanswered += 1;
                    break;
                };
                let mut rb = c.post(format!("{url}/sell")).bearer_auth(&token).json(&body);
                if let Some(k) = &key {
                    rb = rb.header("Idempotency-Key", k);
                }
                match rb.send().await {
                    Ok(resp) if resp.status() == 201 => {
                        if resp.headers().get("idempotent-replayed").is_some() {
                            r.replays += 1;
                        }
                        let v: Value = resp.json().await.unwrap_or(Value::Null);
                        match v["sale_id"].as_str() {
                            Some(id) => {
                                if let Some(p) = v["lines"][0]["product_id"].as_str() {
                                    returnable.push((id.to_string(), p.to_string()));
                                }
                                r.acked.push(id.to_string());
                                r.sold_by.push((id.to_string(), till.user_id.clone()));
                            }
                            None => r.unexpected.push(format!("201 without sale_id: {v}")),
                        }
                        break;
                    }
                    Ok(resp) if resp.status() == 401 => {
                        // The branch restarted since the login: sessions live in memory.
                        // The same request (and key) again, with a new session.
                        *lock(&till.token) = None;
                        if Instant::now() > deadline {
                            r.unexpected.push(format!("sell {body}: 401 until the deadline"));
                            break;
                        }
                    }
                    Ok(resp) if resp.status() == 409 && key.is_some() => {
                        // idempotency_key_in_flight: the first attempt is still being processed.
                        let text = resp.text().await.unwrap_or_default();
                        if !text.contains("idempotency_key_in_flight") || Instant::now() > deadline {
                            r.unexpected.push(format!("sell {body}: 409 {text}"));
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(resp) => {
                        r.unexpected.push(format!(
                            "sell {body}: {} {}",
                            resp.status(),
                            resp.text().await.unwrap_or_default()
                        ));
                        break;
                    }
                    Err(_) if key.is_some() && Instant::now() < deadline => {
                        // The branch is down (killed): retry with the same key until it answers.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        if key.is_some() {
                            r.unexpected.push(format!("sell with key never answered: {e}"));
                        }
                        r.unanswered += 1;
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(5..20))).await;
    }
    // A third of the rounds end this cashier's shift (the next round opens another).
    if rng.u32(0..3) == 0 {
        chaos_till::close(&c, &url, &till, &mut rng, &mut r).await;
    }
    r
}

/// A stock count near the product's stock (so selling goes on), with an Idempotency-Key and
/// retried with it through kills until answered: the count's adjustment events then exist
/// once, and the stock equality after the round covers them like any other adjustment.
async fn count_stock(c: &reqwest::Client, url: &str, rng: &mut fastrand::Rng, n: u64, r: &mut SellerReport) {
    let body = json!({"product_id": product(rng.usize(..PRODUCTS)), "counted": 990_000 + rng.i64(0..10_000)});
    let key = format!("count-{n}-{}", rng.u64(..));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = c
            .post(format!("{url}/stock/counts"))
            .bearer_auth(BRANCH_ADMIN_TOKEN)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status() == 201 => {
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                if v["stock"] != body["counted"] {
                    r.unexpected.push(format!("count {body}: 201 with {v}"));
                }
                r.counts += 1;
                return;
            }
            Ok(resp) if resp.status() == 409 && Instant::now() < deadline => {
                // idempotency_key_in_flight: the first attempt is still being processed.
                let text = resp.text().await.unwrap_or_default();
                if !text.contains("idempotency_key_in_flight") {
                    r.unexpected.push(format!("count {body}: 409 {text}"));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                r.unexpected.push(format!("count {body}: {status} {text}"));
                return;
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                r.unexpected.push(format!("count with key never answered: {e}"));
                return;
            }
        }
    }
}

/// Allocations (mostly in, some withdrawn) and price changes at central; failures while
/// central is down are expected and ignored. Returns how many succeeded.
async fn admin_traffic(central: String, mut rng: fastrand::Rng, stop: Arc<AtomicBool>) -> usize {
    let c = crate::support::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut ok = 0;
    while !stop.load(Ordering::SeqCst) {
        let p = product(rng.usize(..PRODUCTS));
        let resp = if rng.u32(0..3) == 0 {
            let body = json!({"name": format!("Producto {p}"), "price_cents": rng.i64(50..5000)});
            c.put(format!("{central}/products/{p}"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
        } else {
            let q = if rng.u32(0..5) == 0 {
                -rng.i64(1..20)
            } else {
                rng.i64(1..200)
            };
            let b = BRANCHES[rng.usize(..BRANCHES.len())];
            let body = json!({"product_id": p, "quantity": q});
            c.post(format!("{central}/branches/{b}/allocations"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
        };
        if let Ok(r) = resp {
            let s = r.status();
            if s.is_success() {
                ok += 1;
            } else {
                assert!(
                    s.as_u16() == 503,
                    "central refused a valid admin change: {s} {}",
                    r.text().await.unwrap_or_default()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(20..80))).await;
    }
    ok
}

/// Every sale answered 201 this round is at central with the cashier whose session sold it.
async fn check_cashiers(c: &reqwest::Client, central: &str, branch: &str, sold_by: &[(String, String)], round: usize) {
    let at_central: BTreeMap<String, Value> = central_sales(c, central, branch)
        .await
        .into_iter()
        .filter_map(|s| Some((s["sale_id"].as_str()?.to_string(), s["cashier_id"].clone())))
        .collect();
    for (id, cashier) in sold_by {
        assert_eq!(
            at_central.get(id).and_then(Value::as_str),
            Some(cashier.as_str()),
            "round {round}: {branch}: sale {id} sold by {cashier} has cashier_id {:?} at central",
            at_central.get(id)
        );
    }
}

/// The sale ids in the branch's own store (its `/sales/export` CSV).
async fn branch_sale_ids(c: &reqwest::Client, branch_url: &str) -> BTreeSet<String> {
    let r = get_ok(c, &format!("{branch_url}/sales/export"), BRANCH_ADMIN_TOKEN).await;
    let text = r.text().await.unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// After the pull caught up, the branch sells at central's prices.
async fn check_prices(c: &reqwest::Client, central: &str, branch_url: &str, branch: &str) {
    let cat = get_json(c, &format!("{central}/products"), ADMIN_TOKEN).await;
    let want = by_product(&cat, "price_cents");
    let inv = get_json(c, &format!("{branch_url}/inventory"), POS_TOKEN).await;
    let got = by_product(&inv, "price_cents");
    assert_eq!(
        got, want,
        "{branch}: prices differ from central's catalog after the pull"
    );
}
