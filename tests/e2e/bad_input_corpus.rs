//! The bad-input corpus against the real processes (the corpus itself is data in
//! `tests/support/corpus`; the `api` binary runs it in process too): a few hundred hostile or
//! broken requests against every endpoint of both services, sent as raw bytes over TCP.
//!
//! Every case must be answered with its 4xx status and the JSON error of docs/protocol.md,
//! 'Errors' (`error.code` asserted), quickly; then, over the whole corpus:
//! - both processes are still alive and healthy;
//! - their state is unchanged: every GET that shows state (inventories, outbox, status
//!   counters, backups, products, branches, sales, exports) is byte-equal before and after;
//! - memory stayed flat: peak and current RSS grew by less than 64 MiB, although the corpus
//!   streams 100 MB bodies and decompression bombs at them. This is what needs processes:
//!   the RSS of each service on its own.

use crate::support::corpus::{self, Expect, Svc};
use crate::support::*;
use std::time::{Duration, Instant};

fn mem(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_bad_requests_get_4xx_json_and_change_nothing_while_memory_stays_flat() {
    let dir = TempDir::new("corpus");
    let mut central = spawn_central(dir.path(), &["CUS", "ABA"], &[]);
    let c = client();
    corpus::seed_central(&c, &central.url).await;
    let mut branch = spawn_branch(dir.path(), "CUS", &central.url, &corpus::BRANCH_FLAGS);
    let (through, till) = corpus::ready_chain(&c, &central.url, &branch.url).await;

    let before = corpus::snapshot(&c, &central.url, &branch.url).await;
    let (bpid, cpid) = (branch.pid().unwrap(), central.pid().unwrap());
    let (mem_b0, mem_c0) = (mem(bpid), mem(cpid));

    let cases = corpus::full_corpus(through, &till);
    assert!(cases.len() >= 200, "only {} cases", cases.len());

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut framing = 0;
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let addr = match case.svc {
            Svc::Branch => &branch.addr,
            Svc::Central => &central.addr,
        };
        let a = corpus::send(addr, case).await;
        if a.took > slowest.0 {
            slowest = (a.took, case.name.clone());
        }
        if matches!(case.expect, Expect::Framing(_)) {
            framing += 1;
        }
        failures.extend(corpus::check(case, &a));
        assert!(
            branch.is_running() && central.is_running(),
            "a process died on: {}",
            case.name
        );
    }
    let took = started.elapsed();
    corpus::assert_no_failures(&failures, cases.len());

    // Alive, healthy, unchanged, flat.
    for url in [&branch.url, &central.url] {
        assert_eq!(c.get(format!("{url}/health")).send().await.unwrap().status(), 200);
    }
    let after = corpus::snapshot(&c, &central.url, &branch.url).await;
    for ((what, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what} changed");
    }
    let (mem_b1, mem_c1) = (mem(bpid), mem(cpid));
    let limit = 64 * 1024;
    for (who, (rss0, hwm0), (rss1, hwm1)) in [("branch", mem_b0, mem_b1), ("central", mem_c0, mem_c1)] {
        println!("{who}: RSS {rss0} → {rss1} KiB, peak {hwm0} → {hwm1} KiB");
        assert!(rss1 < rss0 + limit, "{who}: RSS grew from {rss0} to {rss1} KiB");
        assert!(hwm1 < hwm0 + limit, "{who}: peak RSS grew from {hwm0} to {hwm1} KiB");
    }
    println!(
        "{} bad requests ({} rejected by the HTTP parser itself) in {:.1}s, slowest {:?} ({})",
        cases.len(),
        framing,
        took.as_secs_f64(),
        slowest.0,
        slowest.1
    );
    eprintln!(
        "bad-input corpus: {} cases, all 4xx, state unchanged, memory flat, both processes alive",
        cases.len()
    );
}
