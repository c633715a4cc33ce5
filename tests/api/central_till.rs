//! The till at central, over real HTTP (docs/protocol.md, "The till at central"): a whole
//! shift pushed as a branch would push it, central's own summary beside the branch's,
//! returns moving the ledger and the sales they refund, `GET /returns` paging, duplicates
//! of every new kind compared, and kinds central refuses changing nothing.
//!
//! Every test runs on both stores (`sqlite::…`, `postgres::…`), as in `central_api`.

use crate::support::app::{self, App};
use crate::support::central::{push, push_ok, sale, stock_of};
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::{allocate, client, get_json, get_text, metric, metrics_text, put_product, TempDir, ADMIN_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const AT: &str = "2026-12-07T13:00:00Z";

async fn start(db: StoreKind, tag: &str, extra: &[&str]) -> (TempDir, App) {
    let dir = TempDir::new(tag);
    let central = app::spawn_central_db(&db.database(dir.path(), tag), &["CUS", "ABA"], extra).await;
    (dir, central)
}

fn at(minute: u32) -> String {
    format!("2026-12-07T13:{minute:02}:00Z")
}

fn opened(seq: u64, shift: &str, float: i64) -> Value {
    json!({"seq": seq, "kind": "shift_opened", "occurred_at": AT, "shift_id": shift, "till_id": "T1",
           "opening_float_cents": float, "user_id": "ana"})
}

/// A sale in `shift` paid with `payments` (`(method, cents)`; none: no `payments` field).
fn paid(seq: u64, lines: &[(&str, i64, i64)], shift: Option<&str>, payments: &[(&str, i64)]) -> Value {
    let mut s = sale(seq, lines);
    s["occurred_at"] = json!(AT);
    if let Some(shift) = shift {
        s["shift_id"] = json!(shift);
    }
    if !payments.is_empty() {
        s["payments"] = payments
            .iter()
            .map(|(m, c)| json!({"method": m, "amount_cents": c}))
            .collect();
    }
    s
}

fn movement(seq: u64, shift: &str, kind: &str, cents: i64) -> Value {
    json!({"seq": seq, "kind": "cash_movement", "occurred_at": AT, "shift_id": shift, "movement": kind,
           "amount_cents": cents, "reason": "float top-up", "user_id": "ana"})
}

/// A return of `sale_id`'s `lines`, its refund paid by `method` from `shift`'s drawer.
fn returned(seq: u64, sale_id: &str, lines: &[(&str, i64, i64)], restock: bool, shift: Option<&str>) -> Value {
    let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
    let mut r = json!({"seq": seq, "kind": "return", "occurred_at": AT, "return_id": format!("R-{seq}"),
        "sale_id": sale_id,
        "lines": lines.iter().map(|(p, q, u)| json!({"product_id": p, "quantity": q, "unit_price_cents": u})).collect::<Vec<_>>(),
        "total_cents": total, "restock": restock, "refund_method": "cash", "reason": "damaged", "user_id": "sup"});
    if let Some(shift) = shift {
        r["shift_id"] = json!(shift);
    }
    r
}

fn closed(seq: u64, shift: &str, counted: i64, summary: &Value) -> Value {
    json!({"seq": seq, "kind": "shift_closed", "occurred_at": at(59), "shift_id": shift,
           "counted_cash_cents": counted, "summary": summary, "user_id": "ana"})
}

/// The shift every whole-shift test pushes: a float of 100.00; a cash sale of 15.50 paid
/// with 20.00 (4.50 change); 21.00 paid 5.00 by card and 20.00 in cash (4.00 change); 7.00
/// with no payments; a sale outside any shift; 2.00 in and 10.00 out of the drawer; 5.50 of
/// the first sale returned in cash from this shift's drawer. Closed with 117.50 counted.
fn whole_shift() -> (Vec<Value>, Value) {
    let events = vec![
        opened(1, "SH1", 10_000),
        paid(2, &[("P1", 1, 550), ("P2", 1, 1000)], Some("SH1"), &[("cash", 2000)]),
        paid(
            3,
            &[("P1", 2, 550), ("P2", 1, 1000)],
            Some("SH1"),
            &[("card", 500), ("cash", 2000)],
        ),
        paid(4, &[("P2", 7, 100)], Some("SH1"), &[]),
        paid(5, &[("P1", 1, 550)], None, &[]),
        movement(6, "SH1", "in", 200),
        movement(7, "SH1", "out", 1000),
        returned(8, "S-0000000002", &[("P1", 1, 550)], true, Some("SH1")),
    ];
    // What central must compute; written out, not derived from the code under test.
    let summary = json!({
        "sales_count": 3, "gross_cents": 4350, "returns_cents": 550, "net_cents": 3800,
        "by_method": {"cash": 1550 + 1600 - 550, "card": 500, "unspecified": 700},
        "cash_in_cents": 200, "cash_out_cents": 1000, "expected_cash_cents": 10_000 + 2600 - 1000 + 200,
        "counted_cash_cents": 11_750, "difference_cents": -50,
    });
    (events, summary)
}

async fn shifts(c: &reqwest::Client, url: &str, query: &str) -> Vec<Value> {
    let v = get_json(c, &format!("{url}/shifts{query}"), ADMIN_TOKEN).await;
    v["shifts"].as_array().expect("shifts").clone()
}

async fn sales_of(c: &reqwest::Client, url: &str) -> Vec<Value> {
    let v = get_json(c, &format!("{url}/sales?branch_id=CUS&limit=1000"), ADMIN_TOKEN).await;
    v["sales"].as_array().expect("sales").clone()
}

/// What a client can read of central's till and everything it moves, as raw bodies.
async fn till_snapshot(c: &reqwest::Client, url: &str) -> String {
    let mut out = String::new();
    for path in [
        "/shifts",
        "/returns?limit=1000",
        "/sales?limit=1000",
        "/inventory",
        "/branches",
    ] {
        out.push_str(&get_text(c, &format!("{url}{path}"), Some(ADMIN_TOKEN)).await);
        out.push('\n');
    }
    out
}

// ------------------------------------------------------------------ shifts

async fn a_whole_shift_pushed_shows_consistent_with_the_branchs_own_figures(db: StoreKind) {
    let (_d, central) = start(db, "shift", &[]).await;
    let (c, u) = (client(), central.url.clone());
    let (events, summary) = whole_shift();

    // Open, with its first sales: central's running figures, nothing to compare yet.
    push_ok(&c, &u, "CUS", &events[..4]).await;
    let open = shifts(&c, &u, "").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (&open[0]["status"], &open[0]["consistent"], &open[0]["branch_summary"]),
        (&json!("open"), &Value::Null, &Value::Null)
    );
    assert_eq!(open[0]["summary"]["sales_count"], 3);
    assert_eq!(open[0]["summary"]["counted_cash_cents"], Value::Null);
    assert_eq!(shifts(&c, &u, "?status=closed").await, Vec::<Value>::new());

    let mut rest = events[4..].to_vec();
    rest.push(closed(9, "SH1", 11_750, &summary));
    push_ok(&c, &u, "CUS", &rest).await;
    let all = shifts(&c, &u, "").await;
    assert_eq!(all.len(), 1);
    let s = &all[0];
    assert_eq!(s["summary"], summary, "central's figures");
    assert_eq!(s["branch_summary"], summary);
    assert_eq!(s["consistent"], true);
    for (field, want) in [
        ("branch_id", json!("CUS")),
        ("shift_id", json!("SH1")),
        ("till_id", json!("T1")),
        ("opened_by", json!("ana")),
        ("opened_at", json!(AT)),
        ("opening_float_cents", json!(10_000)),
        ("status", json!("closed")),
        ("closed_by", json!("ana")),
        ("closed_at", json!(at(59))),
    ] {
        assert_eq!(s[field], want, "{field}: {s}");
    }
    // The filters.
    assert_eq!(shifts(&c, &u, "?status=closed&branch_id=CUS").await.len(), 1);
    assert_eq!(shifts(&c, &u, "?status=open").await.len(), 0);
    assert_eq!(shifts(&c, &u, "?branch_id=ABA").await.len(), 0);
    assert_eq!(
        shifts(&c, &u, &format!("?from={AT}")).await.len(),
        1,
        "from is inclusive"
    );
    assert_eq!(shifts(&c, &u, &format!("?to={AT}")).await.len(), 0, "to is exclusive");

    // Sales carry their tenders, shift and refunds.
    let sales = sales_of(&c, &u).await;
    let pays = |i: usize| sales[i]["payments"].clone();
    assert_eq!(pays(0), json!([{"method": "cash", "amount_cents": 2000}]));
    assert_eq!(
        pays(1),
        json!([{"method": "card", "amount_cents": 500}, {"method": "cash", "amount_cents": 2000}])
    );
    assert_eq!(pays(2), json!([{"method": "unspecified", "amount_cents": 700}]));
    assert_eq!(pays(3), json!([{"method": "unspecified", "amount_cents": 550}]));
    assert_eq!(sales[0]["shift_id"], "SH1");
    assert!(sales[3].get("shift_id").is_none(), "{}", sales[3]);
    let refunded: Vec<i64> = sales.iter().map(|s| s["returned_cents"].as_i64().unwrap()).collect();
    assert_eq!(refunded, [550, 0, 0, 0]);
    // The export: the sale's till columns last, on each of its lines.
    let csv = get_text(&c, &format!("{u}/sales/export?branch_id=CUS"), Some(ADMIN_TOKEN)).await;
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        rows[0].ends_with(",sale_total_cents,shift_id,payments,returned_cents"),
        "{}",
        rows[0]
    );
    assert!(rows[1].ends_with(",1550,SH1,cash:2000,550"), "{}", rows[1]);
    assert!(rows[3].ends_with(",2100,SH1,card:500;cash:2000,0"), "{}", rows[3]);
    assert!(rows[6].ends_with(",550,,unspecified:550,0"), "{}", rows[6]);

    let m = metrics_text(&c, &u).await;
    let closes = |consistent: &str| {
        metric(
            &m,
            &format!(r#"colmena_central_shifts_closed_total{{branch_id="CUS",consistent="{consistent}"}}"#),
        )
    };
    assert_eq!((closes("true"), closes("false")), (Some(1.0), Some(0.0)), "{m}");
    assert_eq!(
        metric(&m, r#"colmena_central_returns_total{branch_id="CUS"}"#),
        Some(1.0)
    );
}

async fn a_close_whose_summary_disagrees_is_shown_inconsistent_and_counted(db: StoreKind) {
    let (_d, central) = start(db, "inconsistent", &[]).await;
    let (c, u) = (client(), central.url.clone());
    let m = metrics_text(&c, &u).await;
    let inconsistent = r#"colmena_central_shifts_closed_total{branch_id="CUS",consistent="false"}"#;
    assert_eq!(metric(&m, inconsistent), Some(0.0), "seeded at 0 before any close: {m}");

    let (mut events, summary) = whole_shift();
    // The branch says one more sale went through the card reader than central was told of.
    let mut wrong = summary.clone();
    wrong["by_method"]["card"] = json!(1000);
    events.push(closed(9, "SH1", 11_750, &wrong));
    push_ok(&c, &u, "CUS", &events).await;
    let s = &shifts(&c, &u, "").await[0];
    assert_eq!(s["consistent"], false);
    assert_eq!(s["summary"], summary, "central keeps its own figures");
    assert_eq!(s["branch_summary"], wrong);

    let m = metrics_text(&c, &u).await;
    assert_eq!(metric(&m, inconsistent), Some(1.0), "{m}");
    assert_eq!(
        metric(
            &m,
            r#"colmena_central_shifts_closed_total{branch_id="CUS",consistent="true"}"#
        ),
        Some(0.0)
    );
}

// ------------------------------------------------------------------ returns

async fn returns_with_restock_give_the_units_back_to_the_branch_and_without_do_not(db: StoreKind) {
    let (_d, central) = start(db, "restock", &[]).await;
    let (c, u) = (client(), central.url.clone());
    put_product(&c, &u, "P1", "Coca", 550).await;
    allocate(&c, &u, "CUS", "P1", 10).await;
    let stock = || async {
        let inv = get_json(&c, &format!("{u}/inventory"), ADMIN_TOKEN).await;
        stock_of(&inv, "P1", "CUS")
    };
    push_ok(&c, &u, "CUS", &[paid(1, &[("P1", 3, 550)], None, &[])]).await;
    assert_eq!(stock().await, Some(7));
    push_ok(
        &c,
        &u,
        "CUS",
        &[returned(2, "S-0000000001", &[("P1", 2, 550)], true, None)],
    )
    .await;
    assert_eq!(stock().await, Some(9), "restocked");
    push_ok(
        &c,
        &u,
        "CUS",
        &[returned(3, "S-0000000001", &[("P1", 1, 550)], false, None)],
    )
    .await;
    assert_eq!(stock().await, Some(9), "a damaged unit does not go back on the shelf");

    let sales = sales_of(&c, &u).await;
    assert_eq!(
        sales[0]["returned_cents"],
        3 * 550,
        "both returns count, restocked or not"
    );
    let page = get_json(&c, &format!("{u}/returns"), ADMIN_TOKEN).await;
    let r = &page["returns"][0];
    assert_eq!(
        r["lines"],
        json!([{"product_id": "P1", "quantity": 2, "unit_price_cents": 550, "line_total_cents": 1100}])
    );
    for (field, want) in [
        ("branch_id", json!("CUS")),
        ("return_id", json!("R-2")),
        ("sale_id", json!("S-0000000001")),
        ("seq", json!(2)),
        ("total_cents", json!(1100)),
        ("restock", json!(true)),
        ("refund_method", json!("cash")),
        ("shift_id", Value::Null),
        ("reason", json!("damaged")),
        ("user_id", json!("sup")),
        ("returned_at", json!(AT)),
    ] {
        assert_eq!(r[field], want, "{field}: {r}");
    }
    assert!(r["received_at"].as_str().is_some());
    assert_eq!(page["returns"][1]["restock"], false);
    assert_eq!(page["next"], Value::Null);
}

async fn returns_page_by_cursor_and_filter_by_branch_and_time(db: StoreKind) {
    let (_d, central) = start(db, "returns", &[]).await;
    let (c, u) = (client(), central.url.clone());
    for branch in ["CUS", "ABA"] {
        let mut events = vec![paid(1, &[("P1", 30, 100)], None, &[])];
        for seq in 2..=11u64 {
            let mut r = returned(seq, "S-0000000001", &[("P1", 1, 100)], seq % 2 == 0, None);
            r["occurred_at"] = json!(at(seq as u32));
            events.push(r);
        }
        push_ok(&c, &u, branch, &events).await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
        let page = get_json(&c, &format!("{u}/returns?limit=3{q}"), ADMIN_TOKEN).await;
        pages += 1;
        let got = page["returns"].as_array().unwrap();
        assert!(got.len() <= 3);
        seen.extend(
            got.iter()
                .map(|r| format!("{}/{}", r["branch_id"].as_str().unwrap(), r["seq"])),
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 7, "20 returns in pages of 3");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 20, "{seen:?}");
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert_eq!(
        (seen[0].as_str(), seen[19].as_str()),
        ("ABA/2", "CUS/11"),
        "branch by branch, in time order"
    );

    let window = get_json(
        &c,
        &format!("{u}/returns?branch_id=CUS&from={}&to={}", at(4), at(7)),
        ADMIN_TOKEN,
    )
    .await;
    let seqs: Vec<u64> = window["returns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5, 6], "from inclusive, to exclusive");
    let sales = sales_of(&c, &u).await;
    assert_eq!(sales[0]["returned_cents"], 1000);
}

// ------------------------------------------------------------------ exactly once

async fn a_different_till_event_under_an_applied_seq_is_refused_and_changes_nothing(db: StoreKind) {
    let (_d, central) = start(db, "till-mismatch", &[]).await;
    let (c, u) = (client(), central.url.clone());
    let (mut events, summary) = whole_shift();
    events.push(closed(9, "SH1", 11_750, &summary));
    assert_eq!(push_ok(&c, &u, "CUS", &events).await, (9, 0));
    // The same events again (a retry) are duplicates.
    assert_eq!(push_ok(&c, &u, "CUS", &events).await, (9, 9));
    let before = till_snapshot(&c, &u).await;

    // One changed field per kind; each push carries a new event behind it, not applied either.
    let changes: Vec<(usize, &str, Value)> = vec![
        (1, "payments", json!([{"method": "card", "amount_cents": 1550}])),
        (1, "shift_id", json!("SH2")),
        (0, "opening_float_cents", json!(9_000)),
        (0, "till_id", json!("T2")),
        (5, "amount_cents", json!(300)),
        (6, "movement", json!("in")),
        (7, "restock", json!(false)),
        (7, "refund_method", json!("card")),
        (7, "shift_id", Value::Null),
        (8, "counted_cash_cents", json!(11_700)),
    ];
    for (i, field, value) in changes {
        let mut batch = events[i..].to_vec();
        if value.is_null() {
            batch[0].as_object_mut().unwrap().remove(field);
        } else {
            batch[0][field] = value;
        }
        if field == "counted_cash_cents" {
            batch[0]["summary"]["counted_cash_cents"] = json!(11_700);
            batch[0]["summary"]["difference_cents"] = json!(-100);
        }
        batch.push(paid(10, &[("P1", 1, 550)], None, &[]));
        let (status, body) = push(&c, &u, "CUS", &batch).await;
        assert_eq!(status, 409, "{field}: {body}");
        assert_eq!(body["error"]["code"], "duplicate_mismatch", "{field}: {body}");
        assert_eq!(body["applied_through"], 9, "{field}");
        let seq = events[i]["seq"].as_u64().unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("event {seq}")),
            "{field}: {body}"
        );
    }
    // A summary that differs only in a figure.
    let mut other = events[8..].to_vec();
    other[0]["summary"]["by_method"]["card"] = json!(501);
    let (status, body) = push(&c, &u, "CUS", &other).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("duplicate_mismatch")),
        "{body}"
    );
    assert_eq!(till_snapshot(&c, &u).await, before, "a refused push changed central");
}

// ------------------------------------------------------------------ unsupported kinds

async fn a_kind_central_refuses_is_422_and_nothing_of_the_push_is_applied(db: StoreKind) {
    let (_d, central) = start(db, "refuse", &["--refuse-event-kind", "return"]).await;
    let (c, u) = (client(), central.url.clone());
    push_ok(&c, &u, "CUS", &[paid(1, &[("P1", 2, 100)], None, &[])]).await;
    let before = till_snapshot(&c, &u).await;
    let batch = vec![
        paid(2, &[("P1", 1, 100)], None, &[]),
        opened(3, "SH1", 0),
        returned(4, "S-0000000001", &[("P1", 1, 100)], true, None),
        paid(5, &[("P1", 1, 100)], None, &[]),
    ];
    let (status, body) = push(&c, &u, "CUS", &batch).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_event");
    assert!(body["error"]["message"].as_str().unwrap().contains("event 4"), "{body}");
    assert_eq!(
        till_snapshot(&c, &u).await,
        before,
        "not even the events before the refused one were applied"
    );
    let branches = get_json(&c, &format!("{u}/branches"), ADMIN_TOKEN).await;
    assert_eq!(
        crate::support::central::branch_row(&branches, "CUS")["applied_through"],
        1
    );
    // What comes before the refused kind is applied once it is pushed without it.
    assert_eq!(push_ok(&c, &u, "CUS", &batch[..2]).await, (3, 0));
    let (status, _) = push(&c, &u, "CUS", &batch[2..]).await;
    assert_eq!(status, 422);
}

async fn an_event_of_an_unknown_kind_is_422_and_nothing_of_the_push_is_applied(db: StoreKind) {
    let (_d, central) = start(db, "unknown-kind", &[]).await;
    let (c, u) = (client(), central.url.clone());
    let before = till_snapshot(&c, &u).await;
    let transfer = json!({"seq": 2, "kind": "transfer_out", "occurred_at": AT, "product_id": "P1", "quantity": 3});
    let (status, body) = push(&c, &u, "CUS", &[paid(1, &[("P1", 1, 100)], None, &[]), transfer]).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("unsupported_event")),
        "{body}"
    );
    assert_eq!(till_snapshot(&c, &u).await, before);
}

both_stores!(
    a_whole_shift_pushed_shows_consistent_with_the_branchs_own_figures,
    a_close_whose_summary_disagrees_is_shown_inconsistent_and_counted,
    returns_with_restock_give_the_units_back_to_the_branch_and_without_do_not,
    returns_page_by_cursor_and_filter_by_branch_and_time,
    a_different_till_event_under_an_applied_seq_is_refused_and_changes_nothing,
    a_kind_central_refuses_is_422_and_nothing_of_the_push_is_applied,
    an_event_of_an_unknown_kind_is_422_and_nothing_of_the_push_is_applied,
);
