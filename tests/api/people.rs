//! People at the branch (docs/protocol.md, "People and permissions"): users pulled from a
//! feed, `POST /login` / `POST /logout`, the permission table cell by cell, rate limits,
//! timing, and the cashier a sale records. The users come from the test-only fake central
//! ([`crate::support::fake_central`]), which feeds nothing but users and one product.
use crate::support::app::{self, App};
use crate::support::fake_central::{user, FakeCentral};
use crate::support::{client, eventually, metrics_text, TempDir, BRANCH_ADMIN_TOKEN, POS_TOKEN};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The branch's users: one per role at CUS, one inactive, one of another branch.
fn staff() -> Vec<Value> {
    vec![
        user("ana", "cashier", &["CUS"], true, 1, "4821"),
        user("sara", "supervisor", &["CUS"], true, 1, "7390"),
        user("mario", "manager", &["*"], true, 1, "1357"),
        user("ivan", "cashier", &["CUS"], false, 1, "2468"),
        user("lia", "cashier", &["ABA"], true, 1, "2468"),
    ]
}

async fn chain(dir: &TempDir, users: Vec<Value>, extra: &[&str]) -> (FakeCentral, App) {
    let central = FakeCentral::start(users).await;
    let mut flags = vec!["--pull-interval", "200ms"];
    flags.extend_from_slice(extra);
    let branch = app::spawn_branch(dir.path(), "CUS", &central.url, &flags).await;
    (central, branch)
}

/// A client whose requests come from `ip` (any 127.0.0.0/8 address reaches loopback), so a
/// test can play several client addresses.
fn client_from(ip: &str) -> reqwest::Client {
    crate::support::client_builder()
        .timeout(Duration::from_secs(30))
        .local_address(ip.parse::<IpAddr>().ok())
        .build()
        .expect("client")
}

async fn login_with(c: &reqwest::Client, branch: &App, id: &str, pin: &str) -> (u16, Value, Option<String>) {
    let r = c
        .post(format!("{}/login", branch.url))
        .json(&json!({"user_id": id, "pin": pin}))
        .send()
        .await
        .expect("POST /login");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

async fn token(branch: &App, id: &str, pin: &str) -> String {
    let (status, body, _) = login_with(&client(), branch, id, pin).await;
    assert_eq!(status, 200, "login {id}: {body}");
    body["token"].as_str().expect("token").to_string()
}

async fn call(branch: &App, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let c = client();
    let url = format!("{}{path}", branch.url);
    let rb = match method {
        "GET" => c.get(url),
        _ => c.post(url),
    };
    let rb = match body {
        Some(b) => rb.json(&b),
        None => rb,
    };
    let r = rb.bearer_auth(token).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Each action of the table, as one request, and the status it answers when allowed.
fn actions() -> Vec<(&'static str, &'static str, &'static str, Option<Value>, u16)> {
    vec![
        ("inventory", "GET", "/inventory", None, 200),
        ("one product", "GET", "/inventory/P1", None, 200),
        ("status", "GET", "/status", None, 200),
        (
            "sell",
            "POST",
            "/sell",
            Some(json!({"product_id": "P1", "quantity": 1})),
            201,
        ),
        (
            "adjust",
            "POST",
            "/stock/adjustments",
            Some(json!({"product_id": "P1", "quantity_delta": 1, "reason": "receipt"})),
            201,
        ),
        ("backups", "GET", "/admin/backups", None, 200),
        ("export", "GET", "/sales/export", None, 200),
        ("outbox", "GET", "/outbox", None, 200),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cell_of_the_permission_table() {
    let dir = TempDir::new("people-table");
    let (_central, branch) = chain(&dir, staff(), &[]).await;
    let callers = [
        ("device", POS_TOKEN.to_string()),
        ("cashier", token(&branch, "ana", "4821").await),
        ("supervisor", token(&branch, "sara", "7390").await),
        ("manager", token(&branch, "mario", "1357").await),
        ("admin", BRANCH_ADMIN_TOKEN.to_string()),
    ];
    // Allowed per action, columns as `callers` (docs/protocol.md, "Permissions").
    let table: [(&str, [bool; 5]); 8] = [
        ("inventory", [true, true, true, true, true]),
        ("one product", [true, true, true, true, true]),
        ("status", [true, true, true, true, true]),
        ("sell", [true, true, true, true, false]),
        ("adjust", [false, false, true, true, true]),
        ("backups", [false, false, false, true, true]),
        ("export", [false, false, false, true, true]),
        ("outbox", [false, false, false, true, true]),
    ];
    for (name, method, path, body, ok_status) in actions() {
        let row = table.iter().find(|r| r.0 == name).expect("row").1;
        for ((who, tok), allowed) in callers.iter().zip(row) {
            let (status, v) = call(&branch, method, path, tok, body.clone()).await;
            if allowed {
                assert_eq!(status, ok_status, "{who} {method} {path}: {v}");
            } else {
                assert_eq!((status, code(&v)), (403, "forbidden"), "{who} {method} {path}: {v}");
            }
        }
    }
    // Logout: users only (a fresh session each, the others keep theirs).
    for (who, tok) in &callers {
        let tok = match *who {
            "cashier" => token(&branch, "ana", "4821").await,
            "supervisor" => token(&branch, "sara", "7390").await,
            "manager" => token(&branch, "mario", "1357").await,
            _ => tok.clone(),
        };
        let (status, v) = call(&branch, "POST", "/logout", &tok, None).await;
        let want = if matches!(*who, "device" | "admin") { 403 } else { 204 };
        assert_eq!(status, want, "{who} POST /logout: {v}");
    }
    // No token, or a wrong one: 401 everywhere but the public paths.
    for (_, method, path, body, _) in actions() {
        let (status, v) = call(&branch, method, path, "not-a-token", body).await;
        assert_eq!((status, code(&v)), (401, "unauthorized"), "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_require_login_the_pos_token_no_longer_sells_but_a_cashier_does() {
    let dir = TempDir::new("people-require-login");
    let (_central, branch) = chain(&dir, staff(), &["--require-login", "true"]).await;
    let sale = json!({"product_id": "P1", "quantity": 1});
    let (status, v) = call(&branch, "POST", "/sell", POS_TOKEN, Some(sale.clone())).await;
    assert_eq!((status, code(&v)), (403, "forbidden"), "{v}");
    let ana = token(&branch, "ana", "4821").await;
    let (status, v) = call(&branch, "POST", "/sell", &ana, Some(sale)).await;
    assert_eq!(status, 201, "{v}");
    let (status, _) = call(&branch, "GET", "/inventory", POS_TOKEN, None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_gives_a_token_that_works_until_logout() {
    let dir = TempDir::new("people-login");
    let (_central, branch) = chain(&dir, staff(), &[]).await;
    let (status, body, _) = login_with(&client(), &branch, "ana", "4821").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["user_id"].as_str(), body["role"].as_str()),
        (Some("ana"), Some("cashier"))
    );
    assert_eq!(body["name"], "User ana");
    let tok = body["token"].as_str().unwrap().to_string();
    assert!(tok.len() >= 32 && tok.bytes().all(|b| b.is_ascii_hexdigit()), "{tok}");
    let expires = body["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() >= 20, "{expires}");
    let (status, _) = call(&branch, "GET", "/inventory", &tok, None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&branch, "POST", "/logout", &tok, None).await;
    assert_eq!(status, 204);
    let (status, v) = call(&branch, "GET", "/inventory", &tok, None).await;
    assert_eq!((status, code(&v)), (401, "unauthorized"));
    // Every refusal is the same 401 body: unknown, inactive, other branch, wrong or bad PIN.
    let mut bodies = Vec::new();
    for (id, pin) in [
        ("nadie", "4821"),
        ("ivan", "2468"),
        ("lia", "2468"),
        ("sara", "0000"),
        ("sara", "12ab"),
    ] {
        let (status, v, _) = login_with(&client(), &branch, id, pin).await;
        assert_eq!(status, 401, "{id}: {v}");
        bodies.push(v);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(code(&bodies[0]), "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_is_401() {
    let dir = TempDir::new("people-ttl");
    let (_central, branch) = chain(&dir, staff(), &["--session-ttl", "1s"]).await;
    let tok = token(&branch, "ana", "4821").await;
    let (status, _) = call(&branch, "GET", "/inventory", &tok, None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, v) = call(&branch, "GET", "/inventory", &tok, None).await;
    assert_eq!((status, code(&v)), (401, "unauthorized"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_wrong_pins_lock_that_user_only_and_twenty_lock_the_address() {
    let dir = TempDir::new("people-brute");
    let (_central, branch) = chain(&dir, staff(), &[]).await;
    let c = client_from("127.0.0.2");
    for i in 0..5 {
        let (status, v, _) = login_with(&c, &branch, "ana", "0000").await;
        assert_eq!(status, 401, "attempt {i}: {v}");
    }
    // Even the right PIN is refused now, with the wait until a slot frees.
    let (status, v, retry) = login_with(&c, &branch, "ana", "4821").await;
    assert_eq!((status, code(&v)), (429, "too_many_attempts"), "{v}");
    let secs: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=300).contains(&secs), "{secs}");
    // Another user from the same address is not affected.
    let (status, v, _) = login_with(&c, &branch, "sara", "7390").await;
    assert_eq!(status, 200, "{v}");

    // 20 failures from one address, over many user ids: that address is refused...
    let c = client_from("127.0.0.3");
    for i in 0..20 {
        let (status, v, _) = login_with(&c, &branch, &format!("guess{i}"), "1234").await;
        assert_eq!(status, 401, "attempt {i}: {v}");
    }
    let (status, v, retry) = login_with(&c, &branch, "mario", "1357").await;
    assert_eq!((status, code(&v)), (429, "too_many_attempts"), "{v}");
    assert!(retry.is_some());
    // ...and only that one.
    let (status, v, _) = login_with(&client_from("127.0.0.4"), &branch, "mario", "1357").await;
    assert_eq!(status, 200, "{v}");
    let metrics = metrics_text(&client(), &branch.url).await;
    let count = |outcome: &str| {
        crate::support::metric(&metrics, &format!("colmena_logins_total{{outcome=\"{outcome}\"}}")).unwrap_or(-1.0)
    };
    assert_eq!(
        (count("ok"), count("invalid_credentials"), count("too_many_attempts")),
        (2.0, 25.0, 2.0)
    );
}

/// The median time of one refused login.
fn median_ms(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_and_a_wrong_pin_take_the_same_time() {
    let dir = TempDir::new("people-timing");
    // Eight real users, each tried 4 times (under the per-user limit of 5).
    let ids: Vec<String> = (1..=8).map(|i| format!("u{i}")).collect();
    let users: Vec<Value> = ids
        .iter()
        .map(|id| user(id, "cashier", &["CUS"], true, 1, "4821"))
        .collect();
    let (_central, branch) = chain(&dir, users, &[]).await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    // Four addresses take 17 failures each (a warm-up, 8 + 8), under the per-address limit of
    // 20; each client
    // connects once before measuring, and the two kinds take turns going first.
    for round in 0..4 {
        let c = client_from(&format!("127.0.0.{}", 20 + round));
        let (status, _, _) = login_with(&c, &branch, "warm-up", "0000").await;
        assert_eq!(status, 401);
        for (i, id) in ids.iter().enumerate() {
            let nobody = format!("nobody{round}{i}");
            let attempts = [(nobody.as_str(), "4821", true), (id.as_str(), "9999", false)];
            let order: Vec<_> = if (round + i) % 2 == 0 {
                attempts.iter().collect()
            } else {
                attempts.iter().rev().collect()
            };
            for (who, pin, is_unknown) in order {
                let started = Instant::now();
                let (status, _, _) = login_with(&c, &branch, who, pin).await;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                assert_eq!(status, 401);
                if *is_unknown {
                    unknown.push(ms);
                } else {
                    wrong.push(ms);
                }
            }
        }
    }
    let (u, w) = (median_ms(&mut unknown), median_ms(&mut wrong));
    let diff = (u - w).abs() / u.max(w);
    assert!(
        diff <= 0.20,
        "unknown user median {u:.1} ms, wrong PIN median {w:.1} ms ({:.0} %)",
        diff * 100.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sale_with_a_user_token_records_that_cashier() {
    let dir = TempDir::new("people-cashier");
    let (central, branch) = chain(&dir, staff(), &[]).await;
    let ana = token(&branch, "ana", "4821").await;
    let (status, v) = call(
        &branch,
        "POST",
        "/sell",
        &ana,
        Some(json!({"product_id": "P1", "quantity": 1})),
    )
    .await;
    assert_eq!((status, v["cashier_id"].as_str()), (201, Some("ana")), "{v}");
    let same = json!({"product_id": "P1", "quantity": 1, "cashier_id": "ana"});
    let (status, v) = call(&branch, "POST", "/sell", &ana, Some(same)).await;
    assert_eq!((status, v["cashier_id"].as_str()), (201, Some("ana")), "{v}");
    let other = json!({"product_id": "P1", "quantity": 1, "cashier_id": "sara"});
    let (status, v) = call(&branch, "POST", "/sell", &ana, Some(other.clone())).await;
    assert_eq!((status, code(&v)), (403, "forbidden"), "{v}");
    // The POS token still names whoever the body says.
    let (status, v) = call(&branch, "POST", "/sell", POS_TOKEN, Some(other)).await;
    assert_eq!((status, v["cashier_id"].as_str()), (201, Some("sara")), "{v}");
    // And what central receives says the same.
    let events = pushed(&central, 3).await;
    let cashiers: Vec<&str> = events.iter().filter_map(|e| e["cashier_id"].as_str()).collect();
    assert_eq!(cashiers, ["ana", "ana", "sara"], "{events:?}");
}

/// The first `n` events the (fake) central received, once they have all arrived.
async fn pushed(central: &FakeCentral, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), "the branch pushes its events", || async {
        let events = central.pushed();
        (events.len() >= n).then(|| events[..n].to_vec())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adjustment_with_a_user_token_records_that_user() {
    let dir = TempDir::new("people-adjuster");
    let (central, branch) = chain(&dir, staff(), &[]).await;
    let sara = token(&branch, "sara", "7390").await;
    let body = json!({"product_id": "P1", "quantity_delta": 5, "reason": "receipt"});
    let (status, v) = call(&branch, "POST", "/stock/adjustments", &sara, Some(body.clone())).await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = call(&branch, "POST", "/stock/adjustments", BRANCH_ADMIN_TOKEN, Some(body)).await;
    assert_eq!(status, 201, "{v}");
    let events = pushed(&central, 2).await;
    assert_eq!(events[0]["kind"], "adjustment");
    assert_eq!(events[0]["user_id"], "sara", "{events:?}");
    assert!(
        events[1].get("user_id").is_none(),
        "the admin token is no user: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_deactivated_at_central_loses_their_session_at_the_next_pull() {
    let dir = TempDir::new("people-revoke");
    let (central, branch) = chain(&dir, staff(), &[]).await;
    let ana = token(&branch, "ana", "4821").await;
    let sara = token(&branch, "sara", "7390").await;
    central.add(user("ana", "cashier", &["CUS"], false, 2, "4821"));
    eventually(Duration::from_secs(10), "ana's session revoked", || {
        let branch = &branch;
        let ana = ana.clone();
        async move { (call(branch, "GET", "/inventory", &ana, None).await.0 == 401).then_some(()) }
    })
    .await;
    assert_eq!(
        call(&branch, "GET", "/inventory", &sara, None).await.0,
        200,
        "others keep theirs"
    );
    let (status, _, _) = login_with(&client(), &branch, "ana", "4821").await;
    assert_eq!(status, 401);
    // Moved to another branch: the same.
    central.add(user("sara", "supervisor", &["ABA"], true, 2, "7390"));
    eventually(Duration::from_secs(10), "sara's session revoked", || {
        let branch = &branch;
        let sara = sara.clone();
        async move { (call(branch, "GET", "/inventory", &sara, None).await.0 == 401).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_survive_a_restart_and_log_in_with_central_down() {
    let dir = TempDir::new("people-offline");
    let (central, mut branch) = chain(&dir, staff(), &["--startup-sync-timeout", "300ms"]).await;
    token(&branch, "ana", "4821").await;
    central.stop().await;
    branch.restart().await;
    let (status, v, _) = login_with(&client(), &branch, "mario", "1357").await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_status_metrics_or_other_answers() {
    let dir = TempDir::new("people-secrets");
    let (_central, branch) = chain(&dir, staff(), &[]).await;
    let tok = token(&branch, "mario", "1357").await;
    let mut seen = String::new();
    for path in ["/status", "/inventory", "/outbox"] {
        seen.push_str(&call(&branch, "GET", path, &tok, None).await.1.to_string());
    }
    seen.push_str(&metrics_text(&client(), &branch.url).await);
    for secret in [tok.as_str(), "$argon2id", BRANCH_ADMIN_TOKEN, POS_TOKEN] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
}
