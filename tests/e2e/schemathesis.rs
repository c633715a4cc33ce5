//! Property-based fuzzing of both services from their own OpenAPI documents, by
//! schemathesis — a fuzzer written by someone else, so it does not share our blind spots.
//!
//! A real central and a real branch are started on fresh data dirs, central is loaded with
//! part of the demo catalog (so the documents' examples sell real products), and `st run`
//! is pointed at each service's `GET /openapi.json` with a valid token. The run must exit 0:
//! no 5xx on any generated input, every response in a documented status, with the
//! documented content type, headers and schema, schema-violating requests rejected, no
//! protected operation served without its token, wrong methods answered 405.
//!
//! Excluded check: `positive_data_acceptance` (schema-valid input must get 2xx). Some rules
//! of the services cannot be said in JSON Schema — `from` not after `to`, a sale event's
//! `total_cents` equal to the sum of its lines, the admin naming a branch on `/sync/pull`,
//! names without control characters — and such inputs get a documented 400, which is right.
//!
//! The branch is fuzzed twice: with the POS token (every route) and with a supervisor's
//! session (the till's and the stock's routes, which refuse the POS token with 403).
//!
//! Proven to bite: with the 400 of `GET /outbox` left out of the branch's document, this test
//! fails on `GET /outbox?limit=0` (ST103, undocumented status code).
//!
//! Budget: a fixed seed and `COLMENA_FUZZ_EXAMPLES` (default 25) examples per operation keep
//! the run to about 10 s per service; `COLMENA_FUZZ_EXAMPLES=500` is the long run,
//! `COLMENA_FUZZ_SEED` another seed, `COLMENA_FUZZ_VERBOSE=1` prints schemathesis's report.
//! schemathesis comes from `COLMENA_SCHEMATHESIS`, or the venv `scripts/test.sh` installs it
//! into (`target/schemathesis-venv`), or `PATH`. `COLMENA_REQUIRE_SCHEMATHESIS` (set by
//! `scripts/test.sh` once it installed it) turns a missing schemathesis into a failure.

use crate::support::*;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEFAULT_EXAMPLES: u32 = 25;

/// Every check of schemathesis 4 but `positive_data_acceptance` (see the module doc), named
/// one by one: `--checks all --exclude-checks …` silently ran almost nothing in 4.32.5 (an
/// undocumented 404 passed), so the list is explicit.
const CHECKS: [&str; 13] = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
];
const DEFAULT_SEED: u64 = 20261123;

/// Part of the demo catalog (`src/main.rs`): (product_id, name, price_cents, units for CUS).
const CATALOG: [(&str, &str, i64, i64); 3] = [
    ("ARROZ-1KG", "Arroz Costeño 1 kg", 520, 100_000),
    ("AZUCAR-1KG", "Azúcar rubia 1 kg", 450, 100_000),
    ("COCA-500ML", "Coca Cola 500 ml", 350, 100_000),
];

/// Written straight to the process's stderr, past the test harness's capture, so the CI log
/// shows the case counts of a passing run too.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn is_schemathesis(cmd: &Path) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("st, version"))
}

/// The `st` command, if schemathesis is installed anywhere we look.
fn find_schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COLMENA_SCHEMATHESIS") {
        let p = PathBuf::from(p);
        assert!(
            is_schemathesis(&p),
            "COLMENA_SCHEMATHESIS={} is not a working schemathesis `st`",
            p.display()
        );
        return Some(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis-venv/bin/st");
    [venv, PathBuf::from("st"), PathBuf::from("schemathesis")]
        .into_iter()
        .find(|p| is_schemathesis(p))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number")),
        Err(_) => default,
    }
}

/// What one `st run` reported.
struct Run {
    ok: bool,
    generated: u64,
    summary: String,
    output: String,
}

/// `st run` against `base`'s document. `extra` narrows or widens it (e.g. a path filter).
fn fuzz(st: &Path, workdir: &Path, base: &str, token: &str, extra: &[&str]) -> Run {
    let examples: u32 = env_or("COLMENA_FUZZ_EXAMPLES", DEFAULT_EXAMPLES);
    let seed: u64 = env_or("COLMENA_FUZZ_SEED", DEFAULT_SEED);
    // Stateful links come from dependency analysis only. 4.32.5's other algorithm,
    // location-headers, reads the paths in central's audit entries (`/products/P1`,
    // `/users/ana`) as links and builds invalid ones (`GET /users/{user_id}` given a
    // `product_id`), which aborts the whole stateful phase; neither service sends
    // `Location`, so it finds nothing real.
    let config = workdir.join("schemathesis.toml");
    std::fs::write(
        &config,
        "[phases.stateful.inference]\nalgorithms = [\"dependency-analysis\"]\n",
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
    let mut cmd = Command::new(st);
    cmd.arg("--config-file")
        .arg(&config)
        .current_dir(workdir)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .args(["run", &format!("{base}/openapi.json"), "--url", base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", &CHECKS.join(",")])
        .args(["--max-examples", &examples.to_string(), "--seed", &seed.to_string()])
        // `:memory:`, not `none`: against the same server and seed, 4.32.5 with `none` passed a
        // run that `:memory:` failed (an undocumented status). Neither writes into the tree.
        .args([
            "--generation-database",
            ":memory:",
            "--request-timeout",
            "30",
            "--no-color",
        ])
        .args(extra);
    let out = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", st.display()));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary line reads "  2978 generated, 2978 passed, 22 skipped" (or "..., 2 found ...").
    let summary = output
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or("(no summary line)")
        .trim()
        .to_string();
    let generated = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Run {
        ok: out.status.success(),
        generated,
        summary,
        output,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_either_service() {
    let Some(st) = find_schemathesis() else {
        let banner = "!".repeat(78);
        say(&banner);
        say("!! SKIPPED: schemathesis is not installed, so neither service was fuzzed.");
        say("!! scripts/test.sh installs it (python3 -m venv target/schemathesis-venv &&");
        say("!! target/schemathesis-venv/bin/pip install schemathesis); or set COLMENA_SCHEMATHESIS.");
        say(&banner);
        assert!(
            std::env::var_os("COLMENA_REQUIRE_SCHEMATHESIS").is_none(),
            "COLMENA_REQUIRE_SCHEMATHESIS is set but schemathesis was not found"
        );
        return;
    };
    let version = Command::new(&st)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    let dir = TempDir::new("schemathesis");
    let central = spawn_central(dir.path(), &["CUS"], &[]);
    let branch = spawn_branch(dir.path(), "CUS", &central.url, &["--pull-interval", "200ms"]);
    let c = client();
    for (id, name, price, units) in CATALOG {
        put_product(&c, &central.url, id, name, price).await;
        allocate(&c, &central.url, "CUS", id, units).await;
    }
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(30)).await;
    let sold = sell(&c, &branch.url, &json!({"product_id": "ARROZ-1KG", "quantity": 2})).await;
    assert!(sold.is_some(), "the branch sells the demo catalog before fuzzing");
    // A supervisor's session, so the till's and the stock's routes are fuzzed past their
    // permission check (with the POS token they only ever answer 403).
    crate::support::central::put_user_ok(
        &c,
        &central.url,
        "sara",
        json!({"name": "Sara", "role": "supervisor", "branches": ["CUS"], "pin": "7390"}),
    )
    .await;
    let supervisor = eventually(Duration::from_secs(30), "sara can log in at CUS", || async {
        let r = c
            .post(format!("{}/login", branch.url))
            .json(&json!({"user_id": "sara", "pin": "7390"}))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        v["token"].as_str().map(str::to_string)
    })
    .await;

    let runs = [
        ("branch", branch.url.as_str(), POS_TOKEN.to_string(), vec![]),
        (
            "branch's till and stock (supervisor's token)",
            branch.url.as_str(),
            supervisor,
            // Not /logout: it would end the session the rest of the run uses.
            vec![
                "--include-path-regex",
                "^/(sell|shifts|sales/|stock/|products|transfers)",
            ],
        ),
        (
            "central (admin token)",
            central.url.as_str(),
            ADMIN_TOKEN.to_string(),
            vec![],
        ),
        (
            "central /sync/* (branch token)",
            central.url.as_str(),
            branch_token("CUS"),
            vec!["--include-path-regex", "^/sync/"],
        ),
    ];
    let mut failed = Vec::new();
    for (name, url, token, extra) in &runs {
        let started = Instant::now();
        let run = fuzz(&st, dir.path(), url, token, extra);
        say(&format!(
            "schemathesis ({version}) vs {name}: {} cases generated in {:.1}s — {}",
            run.generated,
            started.elapsed().as_secs_f64(),
            run.summary
        ));
        if std::env::var_os("COLMENA_FUZZ_VERBOSE").is_some() {
            say(&run.output);
        }
        if !run.ok || run.generated == 0 {
            failed.push(format!("==== {name} ====\n{}", run.output));
        }
    }
    assert!(
        failed.is_empty(),
        "schemathesis found failures (reproduce with the `curl` lines; seed and examples via \
         COLMENA_FUZZ_SEED / COLMENA_FUZZ_EXAMPLES):\n{}",
        failed.join("\n")
    );
}
