//! The head office's sales reports over real HTTP (docs/protocol.md, "Reports"): a chain
//! of three branches pushes sales with split tenders and several cashiers, and returns,
//! across Chile's spring-forward (America/Santiago, 2026-09-06) and around the midnights of
//! America/Lima and Asia/Kolkata (a half-hour offset); every `group_by` is compared to the
//! cent with a brute-force recomputation from central's own `/sales` and `/returns`. A
//! duplicate push changes no figure, and the CSV says what the JSON says.
//!
//! Every test runs on both stores (`sqlite::…`, `postgres::…`).

use crate::support::app::{self, App};
use crate::support::central::{push_ok, sale};
use crate::support::postgres::{both_stores, StoreKind};
use crate::support::reports::{self as rep, Range, GROUPS};
use crate::support::{client, get_text, TempDir, ADMIN_TOKEN};
use serde_json::{json, Value};

const BRANCHES: [&str; 3] = ["CUS", "ABA", "LIM"];
const ZONES: [&str; 4] = ["America/Santiago", "America/Lima", "Asia/Kolkata", "UTC"];
const PRODUCTS: [(&str, i64); 5] = [("P1", 550), ("P2", 1000), ("P3", 199), ("P4", 12_345), ("P5", 75)];
/// 2026-09-04T12:00:00Z: the events run for three days from here, over the night Chile's
/// clocks jump from 24:00 to 01:00 (2026-09-06T04:00Z).
const START_MS: i64 = 1_788_523_200_000;

async fn start(db: StoreKind, tag: &str) -> (TempDir, App) {
    let dir = TempDir::new(tag);
    let central = app::spawn_central_db(&db.database(dir.path(), tag), &BRANCHES, &[]).await;
    (dir, central)
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
}

/// Branch `b`'s events: mostly sales (1–3 lines, four tenders shapes, three cashiers or
/// none), every fifth a return of part of the sale before it, some at instants one
/// millisecond either side of a quarter hour; then sales exactly at and just before the
/// midnights of Lima, Kolkata and Santiago.
fn events_of(b: usize) -> Vec<Value> {
    let branch = BRANCHES[b];
    let mut out: Vec<Value> = Vec::new();
    let edges = [0, 899_999, 900_000, 1_799_999, 1_800_000, 59_999];
    let mut last_sale: Option<(String, (&str, i64))> = None;
    for i in 0..90usize {
        let seq = out.len() as u64 + 1;
        let at = START_MS + i as i64 * 47 * 60_000 + b as i64 * 13 * 60_000 + edges[i % 6];
        if i % 5 == 4 {
            let (sale_id, (p, price)) = last_sale.clone().expect("a sale before");
            let mut r = json!({"seq": seq, "kind": "return", "occurred_at": rfc3339(at),
                "return_id": format!("R-{branch}-{seq}"), "sale_id": sale_id,
                "lines": [{"product_id": p, "quantity": 1, "unit_price_cents": price}],
                "total_cents": price, "restock": i % 2 == 0,
                "refund_method": if i % 3 == 0 { "card" } else { "cash" }});
            if i % 4 != 0 {
                r["user_id"] = json!(["sup", "ana"][i % 2]);
            }
            out.push(r);
            continue;
        }
        out.push(sale_at(branch, seq, at, i + b));
        let first = &out.last().unwrap()["lines"][0];
        let p = PRODUCTS.iter().find(|(id, _)| *id == first["product_id"]).unwrap();
        last_sale = Some((out.last().unwrap()["sale_id"].as_str().unwrap().to_string(), *p));
    }
    // Midnights: Lima 05:00Z, Kolkata 18:30Z, Santiago 04:00Z (before its jump).
    for (k, at) in ["2026-09-05T05:00:00Z", "2026-09-05T18:30:00Z", "2026-09-05T04:00:00Z"]
        .iter()
        .enumerate()
    {
        let at = rep::ms(at);
        for t in [at - 1, at] {
            let seq = out.len() as u64 + 1;
            out.push(sale_at(branch, seq, t, k + b + seq as usize));
        }
    }
    out
}

fn sale_at(branch: &str, seq: u64, at: i64, n: usize) -> Value {
    let lines: Vec<(&str, i64, i64)> = (0..1 + n % 3)
        .map(|k| {
            let (p, price) = PRODUCTS[(n + 2 * k) % PRODUCTS.len()];
            (p, 1 + ((n + k) % 4) as i64, price)
        })
        .collect();
    let mut s = sale(seq, &lines);
    let total = s["total_cents"].as_i64().unwrap();
    s["occurred_at"] = json!(rfc3339(at));
    s["sale_id"] = json!(format!("S-{branch}-{seq}"));
    if n % 4 != 3 {
        s["cashier_id"] = json!(["ana", "beto", "caro"][n % 3]);
    }
    let payments = match n % 5 {
        0 => None,
        1 => Some(json!([{"method": "cash", "amount_cents": total + 450}])),
        2 => Some(json!([{"method": "card", "amount_cents": total}])),
        3 if total > 1 => Some(json!([{"method": "card", "amount_cents": total / 2},
            {"method": "cash", "amount_cents": total - total / 2 + 1000}])),
        _ if total > 1 => Some(json!([{"method": "wallet", "amount_cents": 1},
            {"method": "card", "amount_cents": total - 1}])),
        _ => None,
    };
    if let Some(p) = payments {
        s["payments"] = p;
    }
    s
}

async fn push_chain(c: &reqwest::Client, url: &str) {
    for (b, branch) in BRANCHES.iter().enumerate() {
        let events = events_of(b);
        // Several pushes per branch, as a relay sends batches.
        for chunk in events.chunks(25) {
            push_ok(c, url, branch, chunk).await;
        }
    }
}

/// Midnight of `date` in `tz`, in ms.
fn midnight(tz: &str, date: &str) -> i64 {
    let d: jiff::civil::Date = date.parse().unwrap();
    d.to_zoned(jiff::tz::TimeZone::get(tz).unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// Compares one report with the brute force; returns the report.
async fn check(
    c: &reqwest::Client,
    url: &str,
    listings: &(Vec<Value>, Vec<Value>),
    query: &str,
    want: Range<'_>,
    group: &str,
) -> Value {
    let got = rep::report(c, url, &format!("{query}&group_by={group}")).await;
    let expected = rep::expected(&listings.0, &listings.1, group, &want);
    assert_eq!(got["group_by"], group, "{query}");
    assert_eq!(got["tz"], want.tz, "{query}");
    assert_eq!(rep::ms(got["from"].as_str().unwrap()), want.from_ms, "{query}");
    assert_eq!(rep::ms(got["to"].as_str().unwrap()), want.to_ms, "{query}");
    assert_eq!(got["rows"], expected["rows"], "rows of {group} for {query}");
    assert_eq!(got["totals"], expected["totals"], "totals of {group} for {query}");
    got
}

async fn every_group_by_in_every_zone_equals_the_brute_force_to_the_cent(db: StoreKind) {
    let (_dir, central) = start(db, "reports-brute").await;
    let (c, u) = (client(), central.url.clone());
    push_chain(&c, &u).await;
    let listings = rep::listings(&c, &u).await;
    assert_eq!(listings.1.len(), 3 * 18, "every return applied");
    let mut nonempty = 0;
    for tz in ZONES {
        let whole = Range {
            tz,
            from_ms: midnight(tz, "2026-09-04"),
            to_ms: midnight(tz, "2026-09-08"),
            branch: None,
        };
        let ragged = Range {
            tz,
            from_ms: rep::ms("2026-09-05T07:45:00Z"),
            to_ms: rep::ms("2026-09-06T18:15:00Z"),
            branch: None,
        };
        let one_branch = Range {
            branch: Some("ABA"),
            ..whole.clone()
        };
        let queries = [
            (format!("from=2026-09-04&to=2026-09-08&tz={tz}"), whole),
            (
                format!("from=2026-09-05T07:45:00Z&to=2026-09-06T18:15:00Z&tz={tz}"),
                ragged,
            ),
            (
                format!("from=2026-09-04&to=2026-09-08&tz={tz}&branch_id=ABA"),
                one_branch,
            ),
        ];
        for (query, want) in &queries {
            for group in GROUPS {
                let got = check(&c, &u, &listings, query, want.clone(), group).await;
                nonempty += usize::from(!got["rows"].as_array().unwrap().is_empty());
            }
        }
    }
    assert_eq!(nonempty, ZONES.len() * 3 * GROUPS.len(), "every report had rows");
    // Santiago's short day (23 hours) and Kolkata's half-hour midnight are in the answers.
    let santiago = rep::report(
        &c,
        &u,
        "from=2026-09-06&to=2026-09-07&tz=America/Santiago&group_by=hour",
    )
    .await;
    let hours: Vec<&str> = santiago["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(
        !hours.contains(&"2026-09-06T00"),
        "there is no midnight hour that day: {hours:?}"
    );
    let kolkata = rep::report(&c, &u, "from=2026-09-05&to=2026-09-07&tz=Asia/Kolkata&group_by=day").await;
    assert_eq!(
        rep::ms(kolkata["from"].as_str().unwrap()),
        rep::ms("2026-09-04T18:30:00Z")
    );
}

async fn a_duplicate_push_changes_no_figure_of_any_report(db: StoreKind) {
    let (_dir, central) = start(db, "reports-dup").await;
    let (c, u) = (client(), central.url.clone());
    push_chain(&c, &u).await;
    let query = "from=2026-09-04&to=2026-09-08&tz=America/Lima";
    let mut before = Vec::new();
    for group in GROUPS {
        before.push(rep::report(&c, &u, &format!("{query}&group_by={group}")).await);
    }
    // Whole batches again, and a batch that overlaps applied events by half.
    for (b, branch) in BRANCHES.iter().enumerate() {
        let events = events_of(b);
        let (_, dups) = push_ok(&c, &u, branch, &events[..50]).await;
        assert_eq!(dups, 50);
        let (_, dups) = push_ok(&c, &u, branch, &events[25..]).await;
        assert_eq!(dups as usize, events.len() - 25);
    }
    for (group, was) in GROUPS.iter().zip(&before) {
        let now = rep::report(&c, &u, &format!("{query}&group_by={group}")).await;
        assert_eq!(&now, was, "{group} moved on a duplicate push");
    }
    let listings = rep::listings(&c, &u).await;
    let want = Range {
        tz: "America/Lima",
        from_ms: midnight("America/Lima", "2026-09-04"),
        to_ms: midnight("America/Lima", "2026-09-08"),
        branch: None,
    };
    check(&c, &u, &listings, query, want, "branch").await;
}

async fn the_csv_says_what_the_json_says(db: StoreKind) {
    let (_dir, central) = start(db, "reports-csv").await;
    let (c, u) = (client(), central.url.clone());
    push_chain(&c, &u).await;
    for group in GROUPS {
        let query = format!("from=2026-09-04&to=2026-09-08&tz=Asia/Kolkata&group_by={group}");
        let json = rep::report(&c, &u, &query).await;
        let csv = get_text(&c, &format!("{u}/reports/sales.csv?{query}"), Some(ADMIN_TOKEN)).await;
        let mut lines = csv.split("\r\n");
        assert_eq!(
            lines.next(),
            Some("key,sales_count,units,gross_cents,returns_cents,net_cents")
        );
        let rows: Vec<Value> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let n = |i: usize| f[i].parse::<i64>().unwrap();
                json!({"key": f[0], "sales_count": n(1), "units": n(2), "gross_cents": n(3),
                    "returns_cents": n(4), "net_cents": n(5)})
            })
            .collect();
        assert_eq!(json["rows"].as_array().unwrap(), &rows, "{group}");
    }
}

async fn an_empty_range_and_an_unknown_branch_answer_no_rows(db: StoreKind) {
    let (_dir, central) = start(db, "reports-empty").await;
    let (c, u) = (client(), central.url.clone());
    push_chain(&c, &u).await;
    for query in [
        "from=2026-09-05&to=2026-09-05&group_by=day",
        "from=2026-09-04&to=2026-09-08&group_by=product&branch_id=NOPE",
        "from=2025-01-01&to=2025-02-01&group_by=hour",
    ] {
        let r = rep::report(&c, &u, query).await;
        assert_eq!(r["rows"], json!([]), "{query}");
        assert_eq!(r["totals"]["gross_cents"], 0, "{query}");
    }
    // `--timezone` is UTC here: a date means UTC midnight.
    let r = rep::report(&c, &u, "from=2026-09-05&to=2026-09-06&group_by=branch").await;
    assert_eq!(r["tz"], "UTC");
    assert_eq!(rep::ms(r["from"].as_str().unwrap()), rep::ms("2026-09-05T00:00:00Z"));
}

both_stores!(
    every_group_by_in_every_zone_equals_the_brute_force_to_the_cent,
    a_duplicate_push_changes_no_figure_of_any_report,
    the_csv_says_what_the_json_says,
    an_empty_range_and_an_unknown_branch_answer_no_rows,
);
