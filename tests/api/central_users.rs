//! Central's people and who-did-what, in this process over real HTTP (docs/protocol.md,
//! "Users", "Audit trail", "Sync pull"): users CRUD without ever answering a PIN or its hash,
//! user changes in the pull feed only for branches that ask and may hear of them, the audit
//! trail of every admin change, and sales by cashier.
//!
//! Every test runs on both stores (`sqlite::…`, `postgres::…`), listed in `both_stores!` at
//! the end of this file.
use crate::support::app::{self, App};
use crate::support::central::*;
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::{allocate, branch_token, client, get_json, metrics_text, put_product, TempDir, ADMIN_TOKEN};
use serde_json::{json, Value};

const PIN: &str = "48213";

async fn start(db: StoreKind, tag: &str) -> (TempDir, App) {
    let dir = TempDir::new(tag);
    let central = app::spawn_central_db(&db.database(dir.path(), tag), &["CUS", "ABA"], &[]).await;
    (dir, central)
}

/// `PUT /users/{id}` with the admin token: (status, body).
/// Fails if `text` shows the PIN or any argon2 hash.
fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !crate::support::appears_as_word(text, PIN),
        "{what} shows the PIN: {text}"
    );
    assert!(!text.contains("argon2"), "{what} shows a PIN hash: {text}");
    assert!(!text.contains("pin_hash"), "{what} names the hash: {text}");
}

/// Every user change CUS (or `branch`) gets with `include`, following `next`.
async fn pull(c: &reqwest::Client, url: &str, branch: &str, query: &str) -> Value {
    let r = c
        .get(format!("{url}/sync/pull?{query}"))
        .bearer_auth(branch_token(branch))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

fn user_changes(pull: &Value) -> Vec<(String, u64, bool)> {
    pull["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "user")
        .map(|c| {
            let u = &c["user"];
            (
                u["user_id"].as_str().unwrap().to_string(),
                u["version"].as_u64().unwrap(),
                u["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn users_are_created_and_updated_and_never_show_their_pin(db: StoreKind) {
    let (_d, central) = start(db, "users").await;
    let c = client();
    let u = central.url.clone();
    let ana = json!({"name": "Ana Quispe", "role": "cashier", "branches": ["CUS"], "pin": PIN});
    let saved = put_user_ok(&c, &u, "ana", ana.clone()).await;
    assert_eq!(
        (
            saved["user_id"].as_str(),
            saved["version"].as_u64(),
            saved["active"].as_bool()
        ),
        (Some("ana"), Some(1), Some(true)),
        "{saved}"
    );
    assert!(saved.get("pin").is_none() && saved.get("pin_hash").is_none(), "{saved}");
    assert_no_secret("PUT /users", &saved.to_string());

    // A new PIN is a change (a new salt); the same fields without one change nothing.
    assert_eq!(put_user_ok(&c, &u, "ana", ana.clone()).await["version"], 2);
    let same = json!({"name": "Ana Quispe", "role": "cashier", "branches": ["CUS"]});
    assert_eq!(put_user_ok(&c, &u, "ana", same).await["version"], 2);
    let promoted = json!({"name": "Ana Quispe", "role": "supervisor", "branches": ["ABA", "CUS", "ABA"]});
    let v3 = put_user_ok(&c, &u, "ana", promoted).await;
    assert_eq!((v3["version"].as_u64(), &v3["role"]), (Some(3), &json!("supervisor")));
    assert_eq!(v3["branches"], json!(["ABA", "CUS"]), "sorted, no repeats");

    // A new user needs a PIN; nothing is created without one.
    let (status, e) = put_user(
        &c,
        &u,
        "bob",
        json!({"name": "Bob", "role": "manager", "branches": ["*"]}),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    put_user_ok(
        &c,
        &u,
        "bob",
        json!({"name": "Bob", "role": "manager", "branches": ["*"], "pin": "0000"}),
    )
    .await;

    let one = get_json(&c, &format!("{u}/users/ana"), ADMIN_TOKEN).await;
    assert_eq!(one, v3);
    let all = get_json(&c, &format!("{u}/users"), ADMIN_TOKEN).await;
    let ids: Vec<&str> = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ana", "bob"]);
    assert_no_secret("GET /users", &all.to_string());
    let r = c
        .get(format!("{u}/users/nobody"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    // A branch token manages no users.
    let r = c
        .get(format!("{u}/users"))
        .bearer_auth(branch_token("CUS"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    let metrics = metrics_text(&c, &u).await;
    assert_no_secret("/metrics", &metrics);
    let audit = get_json(&c, &format!("{u}/audit"), ADMIN_TOKEN).await;
    assert_no_secret("/audit", &audit.to_string());
}

async fn a_malformed_pin_is_refused_without_being_quoted(db: StoreKind) {
    let (_d, central) = start(db, "pin-echo").await;
    let c = client();
    for pin in [json!("48x13"), json!(48213), json!("482131234"), json!(48.213)] {
        let body = json!({"name": "Ana", "role": "cashier", "branches": ["CUS"], "pin": pin});
        let (status, e) = put_user(&c, &central.url, "ana", body).await;
        assert_eq!(status, 400, "{e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            !msg.contains("4821") && !msg.contains("48x1") && !msg.contains("48.2"),
            "{msg}"
        );
    }
    let all = get_json(&c, &format!("{}/users", central.url), ADMIN_TOKEN).await;
    assert_eq!(all["users"], json!([]));
}

async fn users_reach_by_pull_only_branches_that_ask_and_may_hear_of_them(db: StoreKind) {
    let (_d, central) = start(db, "pull-users").await;
    let c = client();
    let u = central.url.clone();
    put_product(&c, &u, "P1", "Coca", 500).await;
    put_user_ok(
        &c,
        &u,
        "ana",
        json!({"name": "Ana", "role": "cashier", "branches": ["CUS"], "pin": PIN}),
    )
    .await;
    put_user_ok(
        &c,
        &u,
        "eva",
        json!({"name": "Eva", "role": "manager", "branches": ["*"], "pin": "1111"}),
    )
    .await;
    put_product(&c, &u, "P2", "Pan", 100).await;

    // Without include=users: products only, and the cursor moves past the user changes.
    let old = pull(&c, &u, "CUS", "after=0").await;
    assert!(user_changes(&old).is_empty(), "{old}");
    assert_no_secret("a pull without include=users", &old.to_string());
    let kinds: Vec<&str> = old["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["product", "product"]);
    assert_eq!(old["next"], 4, "{old}");

    // With it: the hash comes along, for the branches the user may work at.
    let cus = pull(&c, &u, "CUS", "after=0&include=users").await;
    assert_eq!(user_changes(&cus), [("ana".into(), 1, true), ("eva".into(), 1, true)]);
    let ana = cus["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"]["user_id"] == "ana")
        .unwrap();
    assert!(
        ana["user"]["pin_hash"].as_str().unwrap().starts_with("$argon2id$"),
        "{ana}"
    );
    assert!(!ana.to_string().contains(PIN));
    let aba = pull(&c, &u, "ABA", "after=0&include=users").await;
    assert_eq!(user_changes(&aba), [("eva".into(), 1, true)]);

    // Moved from CUS to ABA, then deactivated: CUS hears of both (to revoke), ABA too.
    let next = cus["next"].as_u64().unwrap();
    put_user_ok(
        &c,
        &u,
        "ana",
        json!({"name": "Ana", "role": "cashier", "branches": ["ABA"]}),
    )
    .await;
    put_user_ok(
        &c,
        &u,
        "ana",
        json!({"name": "Ana", "role": "cashier", "branches": ["ABA"], "active": false}),
    )
    .await;
    let cus = pull(&c, &u, "CUS", &format!("after={next}&include=users")).await;
    assert_eq!(
        user_changes(&cus),
        [("ana".into(), 2, true)],
        "removed from CUS: told once"
    );
    let aba = pull(&c, &u, "ABA", &format!("after={next}&include=users")).await;
    assert_eq!(user_changes(&aba), [("ana".into(), 2, true), ("ana".into(), 3, false)]);

    // The admin token pulls for a branch; an unknown include is a mistake.
    let r = c
        .get(format!("{u}/sync/pull?branch_id=ABA&include=users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(user_changes(&r.json().await.unwrap()).len(), 3);
    let r = c
        .get(format!("{u}/sync/pull?include=shifts"))
        .bearer_auth(branch_token("CUS"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

async fn every_admin_change_is_audited_with_before_and_after(db: StoreKind) {
    let (_d, central) = start(db, "audit").await;
    let c = client();
    let u = central.url.clone();
    put_product(&c, &u, "P1", "Coca", 500).await;
    put_product(&c, &u, "P1", "Coca", 550).await;
    put_product(&c, &u, "P1", "Coca", 550).await; // no change: not recorded
    allocate(&c, &u, "CUS", "P1", 10).await;
    put_user_ok(
        &c,
        &u,
        "ana",
        json!({"name": "Ana", "role": "cashier", "branches": ["CUS"], "pin": PIN}),
    )
    .await;
    put_user_ok(
        &c,
        &u,
        "ana",
        json!({"name": "Ana Q", "role": "cashier", "branches": ["CUS"]}),
    )
    .await;

    let all = get_json(&c, &format!("{u}/audit"), ADMIN_TOKEN).await;
    assert_no_secret("/audit", &all.to_string());
    assert_eq!(all["next"], Value::Null);
    let entries = all["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("product.put", "/products/P1"),
            ("product.put", "/products/P1"),
            ("allocation.create", "/branches/CUS/allocations"),
            ("user.put", "/users/ana"),
            ("user.put", "/users/ana"),
        ]
    );
    assert!(entries.iter().all(|e| e["actor"] == "admin" && e["at"].is_string()));
    assert_eq!(entries[0]["before"], Value::Null);
    assert_eq!(entries[0]["after"]["price_cents"], 500);
    assert_eq!(
        (
            &entries[1]["before"]["price_cents"],
            &entries[1]["after"]["price_cents"]
        ),
        (&json!(500), &json!(550))
    );
    assert_eq!(
        (&entries[1]["before"]["version"], &entries[1]["after"]["version"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(entries[2]["before"], Value::Null);
    assert_eq!(
        (&entries[2]["after"]["quantity"], &entries[2]["after"]["branch_stock"]),
        (&json!(10), &json!(10))
    );
    assert_eq!(entries[3]["before"], Value::Null);
    assert_eq!(
        (&entries[4]["before"]["name"], &entries[4]["after"]["name"]),
        (&json!("Ana"), &json!("Ana Q"))
    );

    // Pages of two, following `next`, give the same entries.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = after.as_ref().map_or(String::new(), |a| format!("&after={a}"));
        let page = get_json(&c, &format!("{u}/audit?limit=2{q}"), ADMIN_TOKEN).await;
        paged.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(&paged, entries);
    // Time bounds: nothing before 2000, everything before 2100.
    let none = get_json(&c, &format!("{u}/audit?to=2000-01-01T00:00:00Z"), ADMIN_TOKEN).await;
    assert_eq!(none["entries"], json!([]));
    let some = get_json(
        &c,
        &format!("{u}/audit?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(some["entries"].as_array().unwrap().len(), 5);
}

async fn sales_are_listed_and_exported_by_cashier(db: StoreKind) {
    let (_d, central) = start(db, "cashier").await;
    let c = client();
    let u = central.url.clone();
    let by = |seq: u64, cashier: &str| {
        let mut s = sale(seq, &[("P1", 1, 100)]);
        s["cashier_id"] = json!(cashier);
        s
    };
    push_ok(
        &c,
        &u,
        "CUS",
        &[by(1, "ana"), by(2, "bob"), by(3, "ana"), sale(4, &[("P1", 1, 100)])],
    )
    .await;
    push_ok(&c, &u, "ABA", &[by(1, "ana")]).await;

    let page = get_json(&c, &format!("{u}/sales?cashier_id=ana"), ADMIN_TOKEN).await;
    let got: Vec<(&str, u64)> = page["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["branch_id"].as_str().unwrap(), s["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("ABA", 1), ("CUS", 1), ("CUS", 3)]);
    let page = get_json(
        &c,
        &format!("{u}/sales?cashier_id=ana&branch_id=CUS&limit=1"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(page["sales"][0]["seq"], 1);
    let next = page["next"].as_str().unwrap().to_string();
    let page = get_json(
        &c,
        &format!("{u}/sales?cashier_id=ana&branch_id=CUS&limit=1&after={next}"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!((&page["sales"][0]["seq"], &page["next"]), (&json!(3), &Value::Null));

    let csv = c
        .get(format!("{u}/sales/export?cashier_id=bob"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(rows[0].starts_with("S-0000000002,CUS,2,"), "{csv}");
    for bad in ["a%20b", "", "%C3%B1"] {
        let r = c
            .get(format!("{u}/sales?cashier_id={bad}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "cashier_id={bad}");
    }
}

both_stores!(
    users_are_created_and_updated_and_never_show_their_pin,
    a_malformed_pin_is_refused_without_being_quoted,
    users_reach_by_pull_only_branches_that_ask_and_may_hear_of_them,
    every_admin_change_is_audited_with_before_and_after,
    sales_are_listed_and_exported_by_cashier,
);
