//! TLS between the services (docs/protocol.md, "Transport security"), with certificates
//! from a private CA made in the test, as a chain would make its own: a branch that trusts
//! the chain's CA syncs over HTTPS; one that does not never sends anything, counts
//! `kind="tls"`, opens its breaker and keeps selling.
use crate::support::app;
use crate::support::tls::Pki;
use crate::support::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_that_trusts_the_chains_ca_syncs_with_central_over_https() {
    let dir = TempDir::new("tls-ok");
    let pki = Pki::new(dir.path(), "chain");
    let serve = pki.serve_args();
    let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
    let mut central = app::spawn_central(dir.path(), &["CUS"], &serve).await;
    assert!(central.url.starts_with("https://"), "{}", central.url);
    let c = pki.client();
    put_product(&c, &central.url, "P1", "uno", 100).await;
    allocate(&c, &central.url, "CUS", "P1", 20).await;

    // The branch serves HTTPS too, with the same chain's certificate.
    let ca = pki.ca.to_string_lossy().into_owned();
    let mut extra = vec!["--central-ca", &ca, "--pull-interval", "200ms"];
    extra.extend(serve.iter().copied());
    let mut branch = app::spawn_branch(dir.path(), "CUS", &central.url, &extra).await;
    assert!(branch.url.starts_with("https://"), "{}", branch.url);
    wait_pulled(&c, &central.url, &branch.url, "CUS", Duration::from_secs(20)).await;
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let sale = sell(&c, &branch.url, &json!({"product_id": "P1", "quantity": 1}))
            .await
            .expect("a sale over HTTPS");
        ids.insert(sale["sale_id"].as_str().expect("sale_id").to_string());
    }
    check_invariant(&c, &central.url, &branch.url, "CUS", &ids, true).await;
    let m = metrics_text(&c, &branch.url).await;
    assert_eq!(metric(&m, r#"colmena_sync_errors_total{kind="tls"}"#), Some(0.0), "{m}");

    // Plain HTTP to an HTTPS port gets no answer: there is no fallback to clear text.
    let plain = client()
        .get(format!("http://{}/health", central.addr))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(!matches!(plain, Ok(200)), "plain HTTP answered: {plain:?}");
    branch.stop().await.expect("branch stops");
    central.stop().await.expect("central stops");
}

/// A branch whose `--central-ca` is another chain's CA, and one with no `--central-ca` (the
/// system's roots, which never signed a private CA's certificate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_that_does_not_trust_centrals_certificate_sends_nothing_and_keeps_selling() {
    let dir = TempDir::new("tls-refused");
    let pki = Pki::new(dir.path(), "chain");
    let other = Pki::new(dir.path(), "impostor");
    let serve = pki.serve_args();
    let serve: Vec<&str> = serve.iter().map(String::as_str).collect();
    let central = app::spawn_central(dir.path(), &["CUS", "ABA"], &serve).await;
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        json!([{"product_id": "P1", "name": "uno", "price_cents": 100, "stock": 50}]).to_string(),
    )
    .expect("catalog");
    let catalog = catalog.to_string_lossy().into_owned();
    let other_ca = other.ca.to_string_lossy().into_owned();
    let common = [
        "--catalog",
        &catalog,
        "--startup-sync-timeout",
        "1s",
        "--pull-interval",
        "200ms",
        "--breaker-failures",
        "2",
    ];
    let mut wrong_ca = common.to_vec();
    wrong_ca.extend(["--central-ca", &other_ca]);
    let branches = [
        app::spawn_branch(dir.path(), "CUS", &central.url, &wrong_ca).await,
        app::spawn_branch(dir.path(), "ABA", &central.url, &common).await,
    ];
    let c = client();
    for b in &branches {
        for _ in 0..5 {
            sell(&c, &b.url, &json!({"product_id": "P1", "quantity": 1}))
                .await
                .expect("sales go on while central cannot be trusted");
        }
        eventually(Duration::from_secs(20), "tls errors and an open breaker", || async {
            let m = metrics_text(&c, &b.url).await;
            let tls = metric(&m, r#"colmena_sync_errors_total{kind="tls"}"#).unwrap_or(0.0);
            (tls >= 2.0 && circuit(&c, &b.url).await == "open").then_some(())
        })
        .await;
        let m = metrics_text(&c, &b.url).await;
        assert_eq!(
            metric(&m, r#"colmena_sync_errors_total{kind="connect"}"#),
            Some(0.0),
            "{m}"
        );
        let st = get_json(&c, &format!("{}/status", b.url), POS_TOKEN).await;
        // The catalog seed and the 5 sales, none acknowledged.
        assert_eq!(st["outbox"]["acked_through"], json!(0), "{st}");
        assert_eq!(st["outbox"]["pending"], st["outbox"]["last_seq"], "{st}");
        assert!(st["outbox"]["pending"].as_u64() >= Some(5), "{st}");
    }
    // Central never saw a request from either branch: nothing was sent, in clear or not.
    let tc = pki.client();
    let sales = get_json(&tc, &format!("{}/sales", central.url), ADMIN_TOKEN).await;
    assert_eq!(sales["sales"], json!([]), "{sales}");
    let m = metrics_text(&tc, &central.url).await;
    assert!(
        !m.contains(r#"path="/sync/push""#) && !m.contains(r#"path="/sync/pull""#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_without_its_key_or_with_the_wrong_key_stops_the_start_with_a_clear_message() {
    let dir = TempDir::new("tls-config");
    let a = Pki::new(dir.path(), "a");
    let b = Pki::new(dir.path(), "b");
    let (cert, key_b) = (
        a.cert.to_string_lossy().into_owned(),
        b.key.to_string_lossy().into_owned(),
    );
    let db = dir.path().join("c.db").to_string_lossy().into_owned();
    for (extra, expect) in [
        (vec!["--tls-cert", &cert], "go together"),
        (vec!["--tls-cert", &cert, "--tls-key", &key_b], "does not match"),
    ] {
        let argv =
            std::iter::once("colmena-central".to_string()).chain(central_db_args(&db, &["CUS"], &extra).into_iter());
        let settings = colmena_central::config::Settings::parse_from_args(argv).expect("flags parse");
        let err = match colmena_central::startup::Application::build(settings).await {
            Ok(_) => panic!("central started with {extra:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(expect), "{extra:?}: {err}");
    }
}

/// Every PostgreSQL test connects with `sslmode=verify-full` against the cluster's own CA
/// ([`crate::support::postgres`]); here the server's certificate is checked for real: the
/// server is reached over TLS, and a root that did not sign it, or a plain-text demand the
/// server cannot meet, stops central at start instead of falling back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_verifies_postgresql_with_verify_full_and_refuses_a_server_its_root_did_not_sign() {
    use crate::support::postgres;
    let url = tokio::task::spawn_blocking(|| postgres::fresh_database("tls"))
        .await
        .expect("database");
    assert!(url.contains("sslmode=verify-full"), "{url}");
    let dir = TempDir::new("pg-tls");
    let mut central = app::spawn_central_db(&url, &["CUS"], &[]).await;
    let c = client();
    put_product(&c, &central.url, "P1", "uno", 100).await;
    central.stop().await.expect("central stops");

    let other = Pki::new(dir.path(), "impostor");
    let (base, _) = url.split_once('?').expect("a query");
    let wrong = format!("{base}?sslmode=verify-full&sslrootcert={}", other.ca.display());
    let argv = std::iter::once("colmena-central".to_string()).chain(central_db_args(&wrong, &["CUS"], &[]));
    let settings = colmena_central::config::Settings::parse_from_args(argv).expect("flags parse");
    let err = match colmena_central::startup::Application::build(settings).await {
        Ok(_) => panic!("central trusted a PostgreSQL server its root did not sign"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("TLS") && err.contains("UnknownIssuer"), "{err}");
}
