//! The repository's Grafana dashboards and Prometheus configuration, as data for tests.
//!
//! `tests/api/observability_config.rs` checks them statically (valid Grafana JSON, promtool);
//! an end-to-end test can reuse [`panel_queries`] to run every panel query against a real
//! Prometheus, and [`prometheus_config`] to scrape a chain that runs on other ports.
//!
//! It is `support::dashboards` in every test binary, and depends on `serde_json` only.
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The uid of the provisioned Prometheus datasource
/// (`grafana/provisioning/datasources/prometheus.yaml`); every panel refers to it.
pub const DATASOURCE_UID: &str = "colmena-prometheus";

/// Dashboard files, relative to the repository root.
pub const DASHBOARD_FILES: [&str; 2] = [
    "grafana/dashboards/colmena-overview.json",
    "grafana/dashboards/colmena-branch.json",
];

/// uid of the branch drill-down dashboard (the one with the `$branch` variable).
pub const BRANCH_DASHBOARD_UID: &str = "colmena-branch";

/// Every metric a dashboard or an alert may use: docs/protocol.md ('Metrics'), plus central's
/// `colmena_central_negative_stock_products`. Histograms are listed by base name.
pub const KNOWN_METRICS: &[&str] = &[
    // branch
    "colmena_sales_total",
    "colmena_sale_rejections_total",
    "colmena_sell_duration_seconds",
    "colmena_outbox_pending",
    "colmena_outbox_oldest_pending_age_seconds",
    "colmena_sync_latency_seconds",
    "colmena_sync_request_duration_seconds",
    "colmena_sync_errors_total",
    "colmena_circuit_breaker_state",
    "colmena_circuit_breaker_transitions_total",
    "colmena_logins_total",
    "colmena_returns_total",
    "colmena_refunded_cents_total",
    "colmena_shifts_closed_total",
    "colmena_shift_cash_difference_cents",
    "colmena_open_shifts",
    "colmena_low_stock_products",
    // central
    "colmena_sync_events_applied_total",
    "colmena_sync_duplicate_events_total",
    "colmena_sync_apply_duration_seconds",
    "colmena_branch_applied_through",
    "colmena_branch_last_push_timestamp_seconds",
    "colmena_central_negative_stock_products",
    "colmena_central_returns_total",
    "colmena_central_shifts_closed_total",
    "colmena_central_transfers_in_transit",
    "colmena_central_transfer_oldest_in_transit_seconds",
    "colmena_central_transfers_overdue",
    "colmena_central_transfer_steps_total",
    "colmena_central_transfer_units_lost_total",
    // both
    "colmena_http_requests_total",
    "colmena_http_request_duration_seconds",
];

/// Histograms among [`KNOWN_METRICS`]: they are queried through `_bucket`, `_sum`, `_count`.
pub const KNOWN_HISTOGRAMS: &[&str] = &[
    "colmena_sell_duration_seconds",
    "colmena_sync_latency_seconds",
    "colmena_sync_request_duration_seconds",
    "colmena_sync_apply_duration_seconds",
    "colmena_http_request_duration_seconds",
];

/// The repository root (the root package's manifest dir).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a file of the repository, panicking with its path.
pub fn read_repo_file(rel: &str) -> String {
    let p = repo_root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// A dashboard file and its parsed JSON.
pub struct Dashboard {
    pub file: String,
    pub json: Value,
}

impl Dashboard {
    pub fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or("")
    }
    pub fn title(&self) -> &str {
        self.json["title"].as_str().unwrap_or("")
    }
    /// Every panel, the panels nested in (collapsed) rows included, in file order.
    pub fn panels(&self) -> Vec<&Value> {
        fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
            for p in list.as_array().into_iter().flatten() {
                out.push(p);
                walk(&p["panels"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.json["panels"], &mut out);
        out
    }
    /// The template variables (`templating.list`).
    pub fn variables(&self) -> Vec<&Value> {
        self.json["templating"]["list"]
            .as_array()
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    }
}

/// Both dashboards, parsed. Panics on a missing file or invalid JSON.
pub fn load_dashboards() -> Vec<Dashboard> {
    DASHBOARD_FILES
        .iter()
        .map(|f| {
            let text = read_repo_file(f);
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{f} is not valid JSON: {e}"));
            Dashboard {
                file: f.to_string(),
                json,
            }
        })
        .collect()
}

/// One query of one dashboard panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// uid of the dashboard (`colmena-overview` or `colmena-branch`).
    pub dashboard: String,
    pub panel_id: u64,
    pub panel_title: String,
    pub ref_id: String,
    /// The query as stored in the dashboard, Grafana variables included.
    pub raw_expr: String,
    /// The query with `$branch` and `$__rate_interval` substituted: plain PromQL.
    pub expr: String,
}

impl fmt::Display for PanelQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / panel {} \"{}\" / {}: {}",
            self.dashboard, self.panel_id, self.panel_title, self.ref_id, self.expr
        )
    }
}

/// Replaces the Grafana variables the dashboards use by values: `$branch` (a branch_id, e.g.
/// `CUS`) and `$__rate_interval` (a PromQL duration, e.g. `1m`; Grafana uses at least four
/// scrape intervals, so with a 1 s scrape anything from `10s` up works).
pub fn substitute(expr: &str, branch: &str, rate_interval: &str) -> String {
    expr.replace("${__rate_interval}", rate_interval)
        .replace("$__rate_interval", rate_interval)
        .replace("${branch}", branch)
        .replace("$branch", branch)
}

/// Every panel query of both dashboards, in dashboard and panel order, with `$branch` and
/// `$__rate_interval` substituted (see [`substitute`]). Each is plain PromQL for
/// Prometheus's `/api/v1/query`; on a chain that has sold and whose breaker has opened and
/// closed, every one of them returns a non-empty result.
pub fn panel_queries(branch: &str, rate_interval: &str) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for d in load_dashboards() {
        for p in d.panels() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let raw = t["expr"].as_str().unwrap_or("").to_string();
                out.push(PanelQuery {
                    dashboard: d.uid().to_string(),
                    panel_id: p["id"].as_u64().unwrap_or(0),
                    panel_title: p["title"].as_str().unwrap_or("").to_string(),
                    ref_id: t["refId"].as_str().unwrap_or("").to_string(),
                    expr: substitute(&raw, branch, rate_interval),
                    raw_expr: raw,
                });
            }
        }
    }
    out
}

/// The branch dashboard's `branch` variable, `label_values(<metric>, <label>)`, as
/// `(metric, label)`: its values are `GET /api/v1/label/<label>/values?match[]=<metric>`.
pub fn branch_variable_query() -> (String, String) {
    let dashboards = load_dashboards();
    let d = dashboards
        .iter()
        .find(|d| d.uid() == BRANCH_DASHBOARD_UID)
        .expect("branch dashboard");
    let var = d
        .variables()
        .into_iter()
        .find(|v| v["name"] == "branch")
        .expect("a `branch` variable");
    let q = var["query"]["query"]
        .as_str()
        .or_else(|| var["query"].as_str())
        .expect("variable query");
    let args = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("branch variable is not label_values(metric, label): {q}"));
    let (metric, label) = args
        .split_once(',')
        .unwrap_or_else(|| panic!("label_values needs (metric, label): {q}"));
    (metric.trim().to_string(), label.trim().to_string())
}

/// Every `colmena_*` identifier in `text` (metric names, whole words).
pub fn colmena_identifiers(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = text[i..].find("colmena_") {
        let start = i + off;
        let mut end = start + "colmena_".len();
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !is_ident(bytes[start - 1]) {
            out.push(text[start..end].to_string());
        }
        i = end;
    }
    out
}

/// Whether `name` is a metric of [`KNOWN_METRICS`] (histograms through their series).
pub fn is_known_metric(name: &str) -> bool {
    KNOWN_METRICS.contains(&name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| KNOWN_HISTOGRAMS.contains(&base))
        })
}

/// A copy of the repository's `prometheus.yml` for a chain on other addresses: central at
/// `central` and one branch per `(branch_id, address)`, each with its `branch` label;
/// scrape and rule evaluation every `interval` (e.g. `"1s"`); the rule file by absolute
/// path, so the copy can live anywhere. Addresses are `host:port`, an `http://` prefix is
/// dropped. Job names and everything else stay as in the repository's file.
pub fn prometheus_config(central: &str, branches: &[(&str, &str)], interval: &str) -> String {
    let original = read_repo_file("prometheus.yml");
    let addr = |a: &str| a.trim_start_matches("http://").trim_end_matches('/').to_string();
    let rules = repo_root().join("prometheus/alerts.yml");
    let mut out = String::new();
    let mut in_branch_job = false;
    for line in original.lines() {
        let t = line.trim();
        if t.starts_with("- job_name:") {
            in_branch_job = t.ends_with("colmena-sucursal");
        }
        if in_branch_job && t == "static_configs:" {
            out.push_str(line);
            out.push('\n');
            let indent = &line[..line.len() - line.trim_start().len()];
            for (branch, a) in branches {
                out.push_str(&format!("{indent}  - targets: [\"{}\"]\n", addr(a)));
                out.push_str(&format!("{indent}    labels:\n{indent}      branch: {branch}\n"));
            }
            // The rest of the file is this job's static targets (it is the last job).
            break;
        }
        let line = if t.starts_with("scrape_interval:") || t.starts_with("evaluation_interval:") {
            let key = t.split(':').next().unwrap_or_default();
            format!("{}{key}: {interval}", &line[..line.len() - line.trim_start().len()])
        } else if t == "- prometheus/alerts.yml" {
            line.replace("prometheus/alerts.yml", &rules.to_string_lossy())
        } else if t.contains("\"127.0.0.1:8000\"") {
            line.replace("127.0.0.1:8000", &addr(central))
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(
        in_branch_job,
        "prometheus.yml: the colmena-sucursal job must be the last one, with static_configs"
    );
    out
}

/// Looks `name` up on PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// What to install when `promtool` or `prometheus` is missing.
pub const INSTALL_HINT: &str = "install Debian's prometheus package (it brings both prometheus and promtool): \
     apt-get install -y --no-install-recommends prometheus";

/// Path of a Prometheus tool (`promtool` or `prometheus`); panics, saying what to install,
/// when it is not on PATH. Never skips: CI must not pass without checking.
pub fn prometheus_tool(name: &str) -> PathBuf {
    find_in_path(name).unwrap_or_else(|| panic!("`{name}` is not on PATH; {INSTALL_HINT}"))
}
