//! The OpenAPI documents: the committed copies under `docs/openapi/` are exactly
//! what the code generates, each service serves its own at `GET /openapi.json` without a
//! token, and the documents keep the promises every client relies on (the bearer scheme,
//! the error body of docs/protocol.md, 'Errors', on every error status, 401 on every
//! protected operation). The hidden `openapi` subcommands are run as the real binaries.

use crate::support::*;
use serde_json::Value;
use std::path::PathBuf;

const REGENERATE: &str = "regenerate it with `scripts/openapi.sh` and commit the result";

fn committed(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/openapi")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}; {REGENERATE}", path.display()));
    (path, text)
}

/// Fails with the first differing line, so the message says what changed, not only that
/// something did.
fn assert_same(what: &str, path: &std::path::Path, committed: &str, generated: &str) {
    if committed == generated {
        return;
    }
    let first_diff = committed
        .lines()
        .zip(generated.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("line {}:\n  committed: {a}\n  generated: {b}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "one is a prefix of the other ({} vs {} lines)",
                committed.lines().count(),
                generated.lines().count()
            )
        });
    panic!(
        "{} differs from what the code generates ({what}); {REGENERATE}.\nFirst difference at {first_diff}",
        path.display()
    );
}

#[test]
fn the_committed_branch_document_is_what_the_code_generates() {
    let (path, text) = committed("sucursal.json");
    assert_same(
        "colmena-sucursal openapi",
        &path,
        &text,
        colmena_sucursal::openapi::rendered(),
    );
}

#[test]
fn the_committed_central_document_is_what_the_code_generates() {
    let (path, text) = committed("central.json");
    assert_same(
        "colmena-central openapi",
        &path,
        &text,
        colmena_central::openapi::rendered(),
    );
}

#[test]
fn the_hidden_openapi_subcommands_print_the_committed_documents() {
    for (bin_name, file) in [
        ("colmena-sucursal", "sucursal.json"),
        ("colmena-central", "central.json"),
    ] {
        let out = std::process::Command::new(bin(bin_name))
            .arg("openapi")
            .output()
            .expect("run openapi subcommand");
        assert!(out.status.success(), "{bin_name} openapi: {:?}", out.status);
        let (path, text) = committed(file);
        assert_same(
            &format!("{bin_name} openapi"),
            &path,
            &text,
            &String::from_utf8_lossy(&out.stdout),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_serves_its_document_without_a_token() {
    let dir = TempDir::new("openapi-serve");
    let central = crate::support::app::spawn_central(dir.path(), &["CUS"], &[]).await;
    let branch = crate::support::app::spawn_branch(dir.path(), "CUS", &central.url, &[]).await;
    let c = client();
    for (url, file) in [(&branch.url, "sucursal.json"), (&central.url, "central.json")] {
        let r = c
            .get(format!("{url}/openapi.json"))
            .send()
            .await
            .expect("GET /openapi.json");
        assert_eq!(r.status().as_u16(), 200, "{url}/openapi.json without a token");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("application/json"), "content-type {ct}");
        let body = r.text().await.expect("body");
        let (path, text) = committed(file);
        assert_same(&format!("GET {url}/openapi.json"), &path, &text, &body);
    }
}

/// Every operation of a document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

fn check_document(name: &str, doc: &Value, scheme: &str, public: &[&str]) {
    assert_eq!(doc["openapi"], "3.1.0", "{name}: OpenAPI 3.1");
    let s = &doc["components"]["securitySchemes"][scheme];
    assert_eq!(s["type"], "http", "{name}: bearer scheme {scheme}");
    assert_eq!(s["scheme"], "bearer", "{name}: bearer scheme {scheme}");
    assert_eq!(
        doc["security"][0][scheme],
        serde_json::json!([]),
        "{name}: bearer by default"
    );
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>();
    for code in [
        "invalid_request",
        "unauthorized",
        "forbidden",
        "unknown_product",
        "not_found",
        "insufficient_stock",
        "idempotency_key_in_flight",
        "sequence_gap",
        "payload_too_large",
        "unsupported_media_type",
        "idempotency_key_reused",
        "storage_unavailable",
    ] {
        assert!(
            codes.contains(&code),
            "{name}: error code {code} missing from ErrorCode"
        );
    }
    for (path, method, op) in operations(doc) {
        let responses = op["responses"].as_object().expect("responses");
        let is_public = public.contains(&path.as_str());
        // `POST /login` needs no token, yet answers 401 `invalid_credentials` to a wrong PIN.
        let login = path == "/login";
        assert_eq!(
            responses.contains_key("401"),
            !is_public || login,
            "{name}: {method} {path} documents 401 exactly when it needs a token"
        );
        if is_public {
            assert_eq!(
                op["security"],
                serde_json::json!([{}]),
                "{name}: {method} {path} needs no token"
            );
        }
        for (status, r) in responses {
            let n: u16 = status.parse().expect("numeric status");
            if n >= 400 {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{name}: {method} {path} {status} has the error body of docs/protocol.md, 'Errors'"
                );
            }
            if n == 503 {
                assert!(
                    r["headers"]["Retry-After"].is_object(),
                    "{name}: {method} {path} 503 Retry-After"
                );
            }
        }
    }
}

#[test]
fn both_documents_have_the_bearer_scheme_and_the_error_body_everywhere() {
    let public = ["/health", "/metrics", "/openapi.json", "/login"];
    let branch: Value = serde_json::from_str(colmena_sucursal::openapi::rendered()).expect("branch doc");
    check_document("branch", &branch, colmena_sucursal::openapi::SECURITY_SCHEME, &public);
    let central: Value = serde_json::from_str(colmena_central::openapi::rendered()).expect("central doc");
    check_document("central", &central, colmena_central::openapi::SECURITY_SCHEME, &public);
    // The CSV exports are documented as text/csv, not JSON.
    for doc in [&branch, &central] {
        assert!(
            doc["paths"]["/sales/export"]["get"]["responses"]["200"]["content"]["text/csv; charset=utf-8"].is_object()
        );
    }
}
