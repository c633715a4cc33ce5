//! The whole bad-input corpus (`tests/support/corpus`) against central and a branch running
//! in this process: every hostile request gets its 4xx and JSON error (docs/protocol.md,
//! 'Errors'), no handler panics, and nothing a client can read changes. The memory half
//! (each service's RSS stays flat) needs processes: the `e2e` binary's `bad_input_corpus`.

use crate::support::app;
use crate::support::corpus::{self, Svc};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_bad_requests_get_4xx_json_and_change_nothing() {
    let dir = TempDir::new("corpus-inproc");
    let central = app::spawn_central(dir.path(), &["CUS", "ABA"], &[]).await;
    let c = client();
    corpus::seed_central(&c, &central.url).await;
    let branch = app::spawn_branch(dir.path(), "CUS", &central.url, &corpus::BRANCH_FLAGS).await;
    let (through, till) = corpus::ready_chain(&c, &central.url, &branch.url).await;
    let before = corpus::snapshot(&c, &central.url, &branch.url).await;

    let cases = corpus::full_corpus(through, &till);
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let failures = corpus::run_all(&cases, |svc| match svc {
        Svc::Branch => branch.addr.clone(),
        Svc::Central => central.addr.clone(),
    })
    .await;
    corpus::assert_no_failures(&failures, cases.len());
    assert_eq!(app::service_panics(), 0, "a handler panicked");
    for url in [&branch.url, &central.url] {
        let health = c.get(format!("{url}/health")).send().await.expect("GET /health");
        assert_eq!(health.status(), 200);
    }
    let after = corpus::snapshot(&c, &central.url, &branch.url).await;
    for ((what, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what} changed");
    }
}
