//! People and permissions across real processes (docs/protocol.md, "People and
//! permissions"): a login is verified at the branch, so it works with central killed; a user
//! deactivated at central is refused at the branch after its next pull, and an open session
//! of theirs ends then too; the sales a user makes reach central with their `cashier_id`;
//! no PIN, hash or session token reaches either process's log.
use crate::support::central::put_user_ok;
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// [`put_user_ok`], and the answer shows neither the PIN nor its hash.
async fn put_user(c: &reqwest::Client, central: &str, id: &str, body: Value) -> Value {
    let v = put_user_ok(c, central, id, body).await;
    assert!(v.get("pin").is_none() && v.get("pin_hash").is_none(), "{v}");
    v
}

/// (status, body) of `POST /login`.
async fn login(c: &reqwest::Client, branch: &str, user: &str, pin: &str) -> (u16, Value) {
    let r = c
        .post(format!("{branch}/login"))
        .json(&json!({"user_id": user, "pin": pin}))
        .send()
        .await
        .expect("POST /login");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn sell_as(c: &reqwest::Client, branch: &str, token: &str) -> (u16, Value) {
    let r = c
        .post(format!("{branch}/sell"))
        .bearer_auth(token)
        .json(&json!({"product_id": "P1", "quantity": 1}))
        .send()
        .await
        .expect("POST /sell");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_works_with_central_killed_and_a_deactivated_user_is_refused_after_the_next_pull() {
    let dir = TempDir::new("people");
    let c = client();
    let mut central = spawn_central(dir.path(), &["CUS"], &[]);
    put_product(&c, &central.url, "P1", "Arroz 1 kg", 520).await;
    allocate(&c, &central.url, "CUS", "P1", 100).await;
    put_user(
        &c,
        &central.url,
        "ana",
        json!({"name": "Ana Quispe", "role": "cashier", "branches": ["CUS"], "pin": "4821"}),
    )
    .await;
    let branch = spawn_branch(
        dir.path(),
        "CUS",
        &central.url,
        &["--pull-interval", "1s", "--breaker-wait-max", "2s"],
    );

    // The user arrives by pull; until then a login is refused like any wrong PIN.
    let token = eventually(Duration::from_secs(20), "ana can log in at CUS", || async {
        let (status, v) = login(&c, &branch.url, "ana", "4821").await;
        (status == 200).then(|| v["token"].as_str().unwrap_or_default().to_string())
    })
    .await;
    assert!(token.len() >= 22, "a session token carries at least 128 bits");

    // Central dies: the branch still logs people in and sells with their tokens.
    central.kill9();
    let (status, v) = login(&c, &branch.url, "ana", "4821").await;
    assert_eq!(status, 200, "login with central down: {v}");
    let offline_token = v["token"].as_str().unwrap_or_default().to_string();
    let (status, sale) = sell_as(&c, &branch.url, &offline_token).await;
    assert_eq!(status, 201, "{sale}");
    assert_eq!(sale["cashier_id"], "ana", "the cashier is the session's user");
    let (status, v) = login(&c, &branch.url, "ana", "0000").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );

    // Back up, ana is deactivated: after the next pull she cannot log in, and the sessions
    // she holds end too.
    central.restart();
    put_user(
        &c,
        &central.url,
        "ana",
        json!({"name": "Ana Quispe", "role": "cashier", "branches": ["CUS"], "active": false}),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "ana's login is refused after the pull",
        || async {
            let (status, _) = login(&c, &branch.url, "ana", "4821").await;
            (status == 401).then_some(())
        },
    )
    .await;
    for t in [&token, &offline_token] {
        let (status, v) = sell_as(&c, &branch.url, t).await;
        assert_eq!(status, 401, "a session of a deactivated user is over: {v}");
    }

    // The sale made offline reached central with its cashier.
    wait_drained(&c, &branch.url, Duration::from_secs(20)).await;
    let sales = central_sales(&c, &central.url, "CUS").await;
    assert!(
        sales
            .iter()
            .any(|s| s["sale_id"] == sale["sale_id"] && s["cashier_id"] == "ana"),
        "central has the offline sale with cashier_id ana: {sales:?}"
    );

    // Neither process wrote a PIN, a hash or a session token to its log.
    let logs = format!("{}{}", central.log_text(), branch.log_text());
    assert!(logs.contains("login"), "the branch logs logins (without secrets)");
    for secret in ["4821", "$argon2", token.as_str(), offline_token.as_str()] {
        assert!(
            !crate::support::appears_as_word(&logs, secret),
            "{secret} appears in a log"
        );
    }
}

#[test]
fn a_pin_inside_a_timestamp_is_not_a_leak_but_a_pin_as_a_value_is() {
    assert!(!crate::support::appears_as_word(
        "2026-12-07T16:55:34.482105Z INFO login",
        "4821"
    ));
    assert!(crate::support::appears_as_word("login pin=4821 user=ana", "4821"));
    assert!(crate::support::appears_as_word("{\"pin\":\"4821\"}", "4821"));
}
