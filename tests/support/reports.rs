//! The head office's sales reports recomputed by brute force from central's own listings
//! (`/sales`, `/returns`), one sale and one return at a time, for the tests that hold
//! `GET /reports/sales` to them (docs/protocol.md, "Reports"). Nothing here knows about
//! buckets: each sale is placed by its own instant.
#![allow(dead_code)]
use super::{get_json, ADMIN_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const GROUPS: [&str; 6] = ["branch", "product", "day", "hour", "cashier", "method"];

/// Every page of a listing (`/sales` or `/returns`, `field` its array), following `next`.
pub async fn all_pages(c: &reqwest::Client, central: &str, path: &str, field: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{central}{path}?limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page = get_json(c, &url, ADMIN_TOKEN).await;
        out.extend(page[field].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    out
}

/// Every sale and every return central holds.
pub async fn listings(c: &reqwest::Client, central: &str) -> (Vec<Value>, Vec<Value>) {
    (
        all_pages(c, central, "/sales", "sales").await,
        all_pages(c, central, "/returns", "returns").await,
    )
}

/// Milliseconds since the epoch of an RFC 3339 instant.
pub fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().expect("RFC 3339").as_millisecond()
}

/// A report query's range, as the report should read it.
#[derive(Debug, Clone)]
pub struct Range<'a> {
    pub tz: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
    pub branch: Option<&'a str>,
}

#[derive(Default, Clone, Copy)]
struct Fig {
    sales: i64,
    units: i64,
    gross: i64,
    returns: i64,
}

impl Fig {
    fn json(&self, key: Option<&str>) -> Value {
        let mut v = json!({"sales_count": self.sales, "units": self.units, "gross_cents": self.gross,
            "returns_cents": self.returns, "net_cents": self.gross - self.returns});
        if let Some(k) = key {
            v["key"] = json!(k);
        }
        v
    }
}

fn time_key(group: &str, tz: &str, at: &str) -> String {
    let zone = jiff::tz::TimeZone::get(tz).expect("zone");
    let z = at.parse::<jiff::Timestamp>().expect("RFC 3339").to_zoned(zone);
    match group {
        "hour" => z.strftime("%Y-%m-%dT%H").to_string(),
        _ => z.strftime("%Y-%m-%d").to_string(),
    }
}

/// The report's `rows` and `totals` (as `{"rows": [...], "totals": {...}}`) recomputed from
/// `sales` and `returns` for `group` over `range`.
pub fn expected(sales: &[Value], returns: &[Value], group: &str, range: &Range<'_>) -> Value {
    let inside = |branch: &str, at: &str| {
        let t = ms(at);
        t >= range.from_ms && t < range.to_ms && range.branch.is_none_or(|b| b == branch)
    };
    let mut rows: BTreeMap<String, Fig> = BTreeMap::new();
    let mut totals = Fig::default();
    for s in sales {
        let (branch, at) = (s["branch_id"].as_str().unwrap(), s["sold_at"].as_str().unwrap());
        if !inside(branch, at) {
            continue;
        }
        let lines = s["lines"].as_array().unwrap();
        let units: i64 = lines.iter().map(|l| l["quantity"].as_i64().unwrap()).sum();
        let total = s["total_cents"].as_i64().unwrap();
        let whole = Fig {
            sales: 1,
            units,
            gross: total,
            returns: 0,
        };
        add(&mut totals, &whole);
        match group {
            "branch" => add(rows.entry(branch.into()).or_default(), &whole),
            "day" | "hour" => add(rows.entry(time_key(group, range.tz, at)).or_default(), &whole),
            "cashier" => add(
                rows.entry(s["cashier_id"].as_str().unwrap_or("").into()).or_default(),
                &whole,
            ),
            "product" => {
                let mut per: BTreeMap<String, Fig> = BTreeMap::new();
                for l in lines {
                    let f = per.entry(l["product_id"].as_str().unwrap().into()).or_default();
                    f.sales = 1;
                    f.units += l["quantity"].as_i64().unwrap();
                    f.gross += l["line_total_cents"].as_i64().unwrap();
                }
                for (p, f) in per {
                    add(rows.entry(p).or_default(), &f);
                }
            }
            "method" => {
                let payments = s["payments"].as_array().unwrap();
                let paid: i64 = payments.iter().map(|p| p["amount_cents"].as_i64().unwrap()).sum();
                let mut change = paid - total;
                let mut per: BTreeMap<String, i64> = BTreeMap::new();
                for p in payments {
                    let (m, mut a) = (p["method"].as_str().unwrap(), p["amount_cents"].as_i64().unwrap());
                    if m == "cash" {
                        let given = change.min(a);
                        a -= given;
                        change -= given;
                    }
                    *per.entry(m.into()).or_default() += a;
                }
                for (m, gross) in per {
                    add(
                        rows.entry(m).or_default(),
                        &Fig {
                            sales: 1,
                            units,
                            gross,
                            returns: 0,
                        },
                    );
                }
            }
            other => panic!("group_by {other}"),
        }
    }
    for r in returns {
        let (branch, at) = (r["branch_id"].as_str().unwrap(), r["returned_at"].as_str().unwrap());
        if !inside(branch, at) {
            continue;
        }
        let total = r["total_cents"].as_i64().unwrap();
        let refund = Fig {
            returns: total,
            ..Fig::default()
        };
        add(&mut totals, &refund);
        let key = match group {
            "branch" => branch.to_string(),
            "day" | "hour" => time_key(group, range.tz, at),
            "cashier" => r["user_id"].as_str().unwrap_or("").to_string(),
            "method" => r["refund_method"].as_str().unwrap().to_string(),
            _ => {
                for l in r["lines"].as_array().unwrap() {
                    let f = rows.entry(l["product_id"].as_str().unwrap().into()).or_default();
                    f.returns += l["line_total_cents"].as_i64().unwrap();
                }
                continue;
            }
        };
        add(rows.entry(key).or_default(), &refund);
    }
    json!({
        "rows": rows.iter().map(|(k, f)| f.json(Some(k))).collect::<Vec<_>>(),
        "totals": totals.json(None),
    })
}

fn add(to: &mut Fig, f: &Fig) {
    to.sales += f.sales;
    to.units += f.units;
    to.gross += f.gross;
    to.returns += f.returns;
}

/// `GET /reports/sales` with `query` (already URL-safe), answered 200.
pub async fn report(c: &reqwest::Client, central: &str, query: &str) -> Value {
    get_json(c, &format!("{central}/reports/sales?{query}"), ADMIN_TOKEN).await
}

/// After a chaos round has drained: the report by branch over every day central has sales
/// or returns on equals the per-branch sums of its `/sales` and `/returns` (no rollup drift
/// under kills, retries and duplicate pushes). Returns the number of branches compared.
pub async fn check_branch_report(c: &reqwest::Client, central: &str, round: usize) -> usize {
    let (sales, returns) = listings(c, central).await;
    let times = sales
        .iter()
        .map(|s| ms(s["sold_at"].as_str().unwrap()))
        .chain(returns.iter().map(|r| ms(r["returned_at"].as_str().unwrap())));
    let (Some(first), Some(last)) = (times.clone().min(), times.max()) else {
        return 0;
    };
    const DAY: i64 = 86_400_000;
    let (from_ms, to_ms) = (first.div_euclid(DAY) * DAY, (last.div_euclid(DAY) + 1) * DAY);
    let day = |t: i64| {
        jiff::Timestamp::from_millisecond(t)
            .unwrap()
            .strftime("%Y-%m-%d")
            .to_string()
    };
    let query = format!("from={}&to={}&tz=UTC&group_by=branch", day(from_ms), day(to_ms));
    let got = report(c, central, &query).await;
    let range = Range {
        tz: "UTC",
        from_ms,
        to_ms,
        branch: None,
    };
    let want = expected(&sales, &returns, "branch", &range);
    assert_eq!(
        got["rows"], want["rows"],
        "round {round}: the branch report drifted from central's sales"
    );
    assert_eq!(
        got["totals"], want["totals"],
        "round {round}: the report's totals drifted"
    );
    got["rows"].as_array().map_or(0, |r| r.len())
}
