//! The catalog at central over real HTTP (docs/protocol.md, "Catalog at central"): every
//! product field kept and replaced by a PUT, barcodes unique, versions as entity tags with
//! `If-Match` checked in the write's transaction, scheduled prices, and `Idempotency-Key`
//! on the catalog's and the ledger's admin writes.
//!
//! Every test runs on both stores (`sqlite::…`, `postgres::…`), as in `central_api`.

use crate::support::app::{self, App};
use crate::support::central::stock_of;
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::{client, get_json, TempDir, ADMIN_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

async fn start(db: StoreKind, tag: &str) -> (TempDir, App) {
    let dir = TempDir::new(tag);
    let central = app::spawn_central_db(&db.database(dir.path(), tag), &["CUS", "ABA"], &[]).await;
    (dir, central)
}

/// An answer: status, `ETag`, `Idempotent-Replayed`, body as text.
struct Answer {
    status: u16,
    etag: Option<String>,
    replayed: bool,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn send(r: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Answer {
    let mut r = r.bearer_auth(ADMIN_TOKEN);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let res = r.send().await.expect("request");
    let header = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (etag, replayed) = (header("etag"), header("idempotent-replayed").as_deref() == Some("true"));
    Answer {
        status: res.status().as_u16(),
        etag,
        replayed,
        text: res.text().await.expect("body"),
    }
}

async fn put(c: &reqwest::Client, u: &str, id: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
    send(c.put(format!("{u}/products/{id}")).json(&body), headers).await
}

/// A `PUT` without headers that must answer 200.
async fn put_ok(c: &reqwest::Client, u: &str, id: &str, body: Value) -> Answer {
    let a = put(c, u, id, body, &[]).await;
    assert_eq!(a.status, 200, "PUT /products/{id}: {}", a.text);
    a
}

async fn get(c: &reqwest::Client, u: &str, id: &str) -> Answer {
    send(c.get(format!("{u}/products/{id}")), &[]).await
}

async fn allocate(c: &reqwest::Client, u: &str, body: Value, key: &str) -> Answer {
    send(
        c.post(format!("{u}/branches/CUS/allocations")).json(&body),
        &[("Idempotency-Key", key)],
    )
    .await
}

/// The product changes of CUS's pull feed.
async fn product_feed(c: &reqwest::Client, u: &str) -> Vec<Value> {
    let pull = get_json(c, &format!("{u}/sync/pull?branch_id=CUS"), ADMIN_TOKEN).await;
    pull["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|ch| ch["kind"] == "product")
        .cloned()
        .collect()
}

async fn audit_len(c: &reqwest::Client, u: &str) -> usize {
    let audit = get_json(c, &format!("{u}/audit?limit=1000"), ADMIN_TOKEN).await;
    audit["entries"].as_array().map_or(0, Vec::len)
}

/// Everything a refused write could have changed.
async fn state(c: &reqwest::Client, u: &str) -> String {
    let mut out = String::new();
    for p in [
        "/products",
        "/inventory",
        "/sync/pull?branch_id=CUS",
        "/audit?limit=1000",
    ] {
        out.push_str(&get_json(c, &format!("{u}{p}"), ADMIN_TOKEN).await.to_string());
    }
    out
}

async fn a_put_keeps_every_field_replaces_the_product_and_the_same_put_again_changes_nothing(db: StoreKind) {
    let (_d, central) = start(db, "cat-fields").await;
    let (c, u) = (client(), central.url.clone());
    let full = json!({"name": "Azúcar 1 kg", "price_cents": 550, "barcode": "7750885000018",
        "category": "abarrotes", "active": false, "reorder_point": 12});
    let a = put(&c, &u, "AZ", full.clone(), &[]).await;
    assert_eq!((a.status, a.etag.as_deref()), (200, Some("\"1\"")), "{}", a.text);
    let expected = json!({"product_id": "AZ", "name": "Azúcar 1 kg", "price_cents": 550, "version": 1,
        "barcode": "7750885000018", "category": "abarrotes", "active": false, "reorder_point": 12,
        "scheduled_price": null});
    assert_eq!(a.json(), expected);
    let one = get(&c, &u, "AZ").await;
    assert_eq!((one.status, one.etag.as_deref()), (200, Some("\"1\"")));
    assert_eq!(one.json(), expected);
    let list = get_json(&c, &format!("{u}/products"), ADMIN_TOKEN).await;
    assert_eq!(list["products"], json!([expected]));

    // The very same fields again: same version, no feed entry, no audit entry.
    let (feed, audit) = (product_feed(&c, &u).await.len(), audit_len(&c, &u).await);
    let again = put(&c, &u, "AZ", full, &[]).await;
    assert_eq!((again.status, again.json()["version"].as_u64()), (200, Some(1)));
    assert_eq!(product_feed(&c, &u).await.len(), feed);
    assert_eq!(audit_len(&c, &u).await, audit);

    // A PUT replaces: omitted barcode and category are none, active and reorder_point default.
    let bare = put(&c, &u, "AZ", json!({"name": "Azúcar 1 kg", "price_cents": 550}), &[]).await;
    assert_eq!(bare.etag.as_deref(), Some("\"2\""));
    let b = bare.json();
    assert_eq!(
        (&b["barcode"], &b["category"], &b["active"], &b["reorder_point"]),
        (&Value::Null, &Value::Null, &json!(true), &json!(0))
    );
    // Each feed entry carries the values of its own version.
    let feed = product_feed(&c, &u).await;
    assert_eq!(feed.len(), 2);
    assert_eq!(
        (
            &feed[0]["barcode"],
            &feed[0]["category"],
            &feed[0]["active"],
            &feed[0]["reorder_point"]
        ),
        (&json!("7750885000018"), &json!("abarrotes"), &json!(false), &json!(12))
    );
    assert_eq!(
        (&feed[1]["barcode"], &feed[1]["active"], &feed[1]["version"]),
        (&Value::Null, &json!(true), &json!(2))
    );
    // The audit entry records before and after.
    let audit = get_json(&c, &format!("{u}/audit?limit=1000"), ADMIN_TOKEN).await;
    let last = audit["entries"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&last["before"]["barcode"], &last["after"]["barcode"]),
        (&json!("7750885000018"), &Value::Null)
    );

    let unknown = get(&c, &u, "NOPE").await;
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].as_str()),
        (404, Some("unknown_product"))
    );
}

async fn a_barcode_held_by_another_product_is_409_and_changes_nothing(db: StoreKind) {
    let (_d, central) = start(db, "cat-barcode").await;
    let (c, u) = (client(), central.url.clone());
    put_ok(
        &c,
        &u,
        "P1",
        json!({"name": "uno", "price_cents": 1, "barcode": "12345670"}),
    )
    .await;
    put_ok(&c, &u, "P2", json!({"name": "dos", "price_cents": 2})).await;
    let before = state(&c, &u).await;
    for id in ["P2", "P3"] {
        let a = put(
            &c,
            &u,
            id,
            json!({"name": "x", "price_cents": 2, "barcode": "12345670"}),
            &[],
        )
        .await;
        assert_eq!(
            (a.status, a.json()["error"]["code"].as_str()),
            (409, Some("barcode_taken")),
            "{}",
            a.text
        );
    }
    assert_eq!(state(&c, &u).await, before);
    // The holder may keep it; once it lets go, another may take it.
    put_ok(
        &c,
        &u,
        "P1",
        json!({"name": "uno!", "price_cents": 1, "barcode": "12345670"}),
    )
    .await;
    put_ok(&c, &u, "P1", json!({"name": "uno", "price_cents": 1})).await;
    put_ok(
        &c,
        &u,
        "P2",
        json!({"name": "dos", "price_cents": 2, "barcode": "12345670"}),
    )
    .await;
}

async fn a_put_with_a_stale_if_match_gets_412_and_changes_nothing(db: StoreKind) {
    let (_d, central) = start(db, "cat-ifmatch").await;
    let (c, u) = (client(), central.url.clone());
    let body = |n: &str| json!({"name": n, "price_cents": 100});
    // If-Match on a product that does not exist, even `*`: 412.
    for tag in ["*", "\"1\""] {
        let a = put(&c, &u, "P1", body("a"), &[("If-Match", tag)]).await;
        assert_eq!(a.status, 412, "{tag}: {}", a.text);
    }
    assert_eq!(get(&c, &u, "P1").await.status, 404);
    assert_eq!(put(&c, &u, "P1", body("a"), &[]).await.status, 200);
    assert_eq!(
        put(&c, &u, "P1", body("b"), &[("If-Match", "\"1\"")])
            .await
            .etag
            .as_deref(),
        Some("\"2\"")
    );
    let before = state(&c, &u).await;
    for tag in ["\"1\"", "W/\"2\"", "\"02\"", "\"1\", \"3\""] {
        let a = put(&c, &u, "P1", body("c"), &[("If-Match", tag)]).await;
        assert_eq!(
            (a.status, a.json()["error"]["code"].as_str()),
            (412, Some("version_mismatch")),
            "{tag}"
        );
        assert!(
            a.json()["error"]["message"].as_str().unwrap_or("").contains("\"2\""),
            "{}",
            a.text
        );
    }
    for garbage in ["2", "\"2", "\"2\";", "W/2"] {
        let a = put(&c, &u, "P1", body("c"), &[("If-Match", garbage)]).await;
        assert_eq!(
            (a.status, a.json()["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{garbage}"
        );
    }
    assert_eq!(state(&c, &u).await, before);
    assert_eq!(
        put(&c, &u, "P1", body("c"), &[("If-Match", "\"7\", \"2\"")])
            .await
            .status,
        200
    );
    assert_eq!(
        put(&c, &u, "P1", body("d"), &[("If-Match", "*")]).await.etag.as_deref(),
        Some("\"4\"")
    );
}

async fn two_concurrent_puts_with_the_same_if_match_one_wins_and_nothing_is_lost(db: StoreKind) {
    let (_d, central) = start(db, "cat-race").await;
    let (c, u) = (client(), central.url.clone());
    put_ok(&c, &u, "P1", json!({"name": "base", "price_cents": 100})).await;
    for round in 1..=5u64 {
        let tag = format!("\"{round}\"");
        let guard = [("If-Match", tag.as_str())];
        let (a, b) = tokio::join!(
            put(
                &c,
                &u,
                "P1",
                json!({"name": format!("a{round}"), "price_cents": 100}),
                &guard
            ),
            put(
                &c,
                &u,
                "P1",
                json!({"name": format!("b{round}"), "price_cents": 100}),
                &guard
            ),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412], "round {round}: {} / {}", a.text, b.text);
        let winner = if a.status == 200 { a.json() } else { b.json() };
        let now = get(&c, &u, "P1").await.json();
        assert_eq!(now, winner, "round {round}: the loser's write must not land");
        assert_eq!(now["version"].as_u64(), Some(round + 1));
    }
}

async fn a_scheduled_price_takes_over_at_its_instant_and_the_feed_carries_base_and_schedule(db: StoreKind) {
    let (_d, central) = start(db, "cat-sched").await;
    let (c, u) = (client(), central.url.clone());
    // A new product needs a price in force first.
    let soon = |ms: u64| {
        let at = std::time::SystemTime::now() + Duration::from_millis(ms);
        let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        // Whole seconds, so the wire form is stable (RFC 3339, UTC).
        let t = time_fmt(secs + 1);
        (t, secs + 1)
    };
    let (at, at_secs) = soon(1500);
    let early = put(
        &c,
        &u,
        "P1",
        json!({"name": "pan", "price_cents": 120, "price_effective_at": at}),
        &[],
    )
    .await;
    assert_eq!(early.status, 400, "{}", early.text);
    assert!(early.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("price in force"));
    put_ok(&c, &u, "P1", json!({"name": "pan", "price_cents": 100})).await;
    allocate(&c, &u, json!({"product_id": "P1", "quantity": 5}), "sched-alloc").await;

    let s = put(
        &c,
        &u,
        "P1",
        json!({"name": "pan", "price_cents": 120, "price_effective_at": at}),
        &[],
    )
    .await;
    assert_eq!(s.status, 200, "{}", s.text);
    let scheduled = json!({"price_cents": 120, "effective_at": at});
    assert_eq!(
        (
            &s.json()["price_cents"],
            &s.json()["scheduled_price"],
            &s.json()["version"]
        ),
        (&json!(100), &scheduled, &json!(2))
    );
    let inv = get_json(&c, &format!("{u}/inventory/P1"), ADMIN_TOKEN).await;
    assert_eq!(inv["price_cents"], 100);
    // The feed carries the stored base price and the schedule.
    let feed = product_feed(&c, &u).await;
    let last = feed.last().cloned().unwrap_or_default();
    assert_eq!(
        (&last["price_cents"], &last["scheduled_price"], &last["version"]),
        (&json!(100), &scheduled, &json!(2))
    );
    // The same schedule again is no change.
    let again = put(
        &c,
        &u,
        "P1",
        json!({"name": "pan", "price_cents": 120, "price_effective_at": at}),
        &[],
    )
    .await;
    assert_eq!(again.json()["version"], 2);

    while std::time::SystemTime::now()
        < std::time::UNIX_EPOCH + Duration::from_secs(at_secs) + Duration::from_millis(50)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = get(&c, &u, "P1").await.json();
    assert_eq!(
        (&now["price_cents"], &now["scheduled_price"], &now["version"]),
        (&json!(120), &Value::Null, &json!(2))
    );
    let listed = get_json(&c, &format!("{u}/products"), ADMIN_TOKEN).await;
    assert_eq!(listed["products"][0]["price_cents"], 120);
    assert_eq!(
        get_json(&c, &format!("{u}/inventory/P1"), ADMIN_TOKEN).await["price_cents"],
        120
    );
    // A PUT of the price now in force is no change; a schedule the PUT drops is a change.
    assert_eq!(
        put(&c, &u, "P1", json!({"name": "pan", "price_cents": 120}), &[])
            .await
            .json()["version"],
        2
    );
    let (later, _) = soon(3_600_000);
    assert_eq!(
        put(
            &c,
            &u,
            "P1",
            json!({"name": "pan", "price_cents": 130, "price_effective_at": later}),
            &[]
        )
        .await
        .json()["version"],
        3
    );
    let dropped = put(&c, &u, "P1", json!({"name": "pan", "price_cents": 125}), &[])
        .await
        .json();
    assert_eq!(
        (
            &dropped["price_cents"],
            &dropped["scheduled_price"],
            &dropped["version"]
        ),
        (&json!(125), &Value::Null, &json!(4))
    );
    let last = product_feed(&c, &u).await.last().cloned().unwrap_or_default();
    assert_eq!((&last["price_cents"], last.get("scheduled_price")), (&json!(125), None));
}

/// `secs` since the epoch as RFC 3339 UTC (`2026-12-07T17:00:05Z`).
fn time_fmt(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (proleptic Gregorian), as in Howard Hinnant's algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn an_allocation_retried_five_times_with_one_key_adds_the_goods_once(db: StoreKind) {
    let (_d, central) = start(db, "cat-idem-alloc").await;
    let (c, u) = (client(), central.url.clone());
    put_ok(&c, &u, "P1", json!({"name": "pan", "price_cents": 100})).await;
    let body = json!({"product_id": "P1", "quantity": 7});
    let first = allocate(&c, &u, body.clone(), "alloc-1").await;
    assert_eq!((first.status, first.replayed), (201, false), "{}", first.text);
    for _ in 0..5 {
        let again = allocate(&c, &u, json!({"quantity": 7, "product_id": "P1"}), "alloc-1").await;
        assert_eq!((again.status, again.replayed), (201, true));
        assert_eq!(again.text, first.text, "a replay is the first answer, byte for byte");
    }
    // Five at once with a new key: one applies, the others replay it.
    let racers = (0..5).map(|_| allocate(&c, &u, body.clone(), "alloc-2"));
    let answers = futures::future::join_all(racers).await;
    assert!(answers.iter().all(|a| a.status == 201));
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    let inv = get_json(&c, &format!("{u}/inventory"), ADMIN_TOKEN).await;
    assert_eq!(stock_of(&inv, "P1", "CUS"), Some(14));
    // The key with another request: 422, nothing allocated.
    let before = state(&c, &u).await;
    let other = allocate(&c, &u, json!({"product_id": "P1", "quantity": 8}), "alloc-1").await;
    assert_eq!(
        (other.status, other.json()["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // A refusal is not remembered: the key stays free for the request that succeeds.
    let refused = allocate(&c, &u, json!({"product_id": "NOPE", "quantity": 1}), "alloc-3").await;
    assert_eq!(refused.status, 404);
    assert_eq!(state(&c, &u).await, before);
    let fresh = allocate(&c, &u, body, "alloc-3").await;
    assert_eq!((fresh.status, fresh.replayed), (201, false));
}

async fn a_put_replayed_with_its_key_returns_the_same_version(db: StoreKind) {
    let (_d, central) = start(db, "cat-idem-put").await;
    let (c, u) = (client(), central.url.clone());
    let body = json!({"name": "pan", "price_cents": 100, "category": "panadería"});
    let first = put(&c, &u, "P1", body.clone(), &[("Idempotency-Key", "put-1")]).await;
    assert_eq!(
        (first.status, first.etag.as_deref(), first.replayed),
        (200, Some("\"1\""), false)
    );
    // Someone else changes the product; the retry still gets its own first answer.
    put_ok(&c, &u, "P1", json!({"name": "pan", "price_cents": 110})).await;
    let before = state(&c, &u).await;
    let spelt_otherwise = json!({"category": "panadería", "price_cents": 100, "name": "pan", "active": true});
    let again = put(&c, &u, "P1", spelt_otherwise, &[("Idempotency-Key", "put-1")]).await;
    assert_eq!(
        (again.status, again.etag.as_deref(), again.replayed),
        (200, Some("\"1\""), true)
    );
    assert_eq!(again.text, first.text);
    assert_eq!(state(&c, &u).await, before, "a replay changes nothing");
    let reused = put(
        &c,
        &u,
        "P1",
        json!({"name": "pan", "price_cents": 100}),
        &[("Idempotency-Key", "put-1")],
    )
    .await;
    assert_eq!(
        (reused.status, reused.json()["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // The same body with an If-Match is another request.
    let guarded = put(&c, &u, "P1", body, &[("Idempotency-Key", "put-1"), ("If-Match", "*")]).await;
    assert_eq!(guarded.status, 422);
    assert_eq!(state(&c, &u).await, before);
}

/// Two central processes (here: two in-process centrals) over one PostgreSQL database: a
/// version or a key is won once across them, not once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_centrals_on_one_postgres_never_both_win_one_version_or_one_key() {
    let dir = TempDir::new("cat-two-pg");
    let db = StoreKind::Postgres.database(dir.path(), "cat-two-pg");
    let one = app::spawn_central_db(&db, &["CUS", "ABA"], &[]).await;
    let two = app::spawn_central_db(&db, &["CUS", "ABA"], &[]).await;
    let c = client();
    assert_eq!(
        put(&c, &one.url, "P1", json!({"name": "base", "price_cents": 100}), &[])
            .await
            .status,
        200
    );
    for round in 1..=5u64 {
        let tag = format!("\"{round}\"");
        let guard = [("If-Match", tag.as_str())];
        let (a, b) = tokio::join!(
            put(
                &c,
                &one.url,
                "P1",
                json!({"name": format!("a{round}"), "price_cents": 100}),
                &guard
            ),
            put(
                &c,
                &two.url,
                "P1",
                json!({"name": format!("b{round}"), "price_cents": 100}),
                &guard
            ),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412], "round {round}: {} / {}", a.text, b.text);
        let winner = if a.status == 200 { a.json() } else { b.json() };
        assert_eq!(get(&c, &two.url, "P1").await.json(), winner);
    }
    let body = json!({"product_id": "P1", "quantity": 3});
    let racers = (0..6).map(|i| allocate(&c, if i % 2 == 0 { &one.url } else { &two.url }, body.clone(), "two-pg"));
    let answers = futures::future::join_all(racers).await;
    assert!(
        answers.iter().all(|a| a.status == 201),
        "{:?}",
        answers.iter().map(|a| &a.text).collect::<Vec<_>>()
    );
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    let inv = get_json(&c, &format!("{}/inventory", two.url), ADMIN_TOKEN).await;
    assert_eq!(stock_of(&inv, "P1", "CUS"), Some(3));
}

both_stores!(
    a_put_keeps_every_field_replaces_the_product_and_the_same_put_again_changes_nothing,
    a_barcode_held_by_another_product_is_409_and_changes_nothing,
    a_put_with_a_stale_if_match_gets_412_and_changes_nothing,
    two_concurrent_puts_with_the_same_if_match_one_wins_and_nothing_is_lost,
    a_scheduled_price_takes_over_at_its_instant_and_the_feed_carries_base_and_schedule,
    an_allocation_retried_five_times_with_one_key_adds_the_goods_once,
    a_put_replayed_with_its_key_returns_the_same_version,
);
