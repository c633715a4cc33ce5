//! The observability configuration is checked by tests, not by eye: the Grafana dashboards
//! are valid and use the provisioned datasource, their queries are PromQL over the metrics
//! of docs/protocol.md ('Metrics'), and Prometheus's own tools accept `prometheus.yml`, the
//! alert rules and the alert rules' unit tests.
//!
//! Needs `promtool` and `prometheus` on PATH (Debian's `prometheus` package). Without them
//! these tests fail, saying what to install: they never skip.

use std::collections::{BTreeSet, HashSet};

use std::process::Command;

use crate::support::dashboards::*;
use crate::support::prometheus::Prometheus;
use crate::support::TempDir;
use serde_json::{json, Value};

/// The alerts the on-call people rely on; more may exist.
const REQUIRED_ALERTS: [&str; 8] = [
    "ColmenaCircuitOpen",
    "ColmenaOutboxStale",
    "ColmenaBranchSilent",
    "ColmenaSyncErrorRateHigh",
    "ColmenaNegativeStock",
    "ColmenaTargetDown",
    "ColmenaShiftInconsistent",
    "ColmenaTransferOverdue",
];

const DATASOURCE_PROVISIONING: &str = "grafana/provisioning/datasources/prometheus.yaml";
const DASHBOARD_PROVISIONING: &str = "grafana/provisioning/dashboards/colmena.yaml";

// ------------------------------------------------------------------------------------------
// helpers

/// Runs `promtool <args>` in the repository root; panics with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new(prometheus_tool("promtool"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    text
}

/// Value of the first `key: value` line of a small YAML file (quotes removed).
fn yaml_scalar(text: &str, key: &str) -> Option<String> {
    text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|l| {
        let t = l.trim().trim_start_matches("- ");
        t.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

fn dashboard(uid: &str) -> Dashboard {
    load_dashboards()
        .into_iter()
        .find(|d| d.uid() == uid)
        .unwrap_or_else(|| panic!("no dashboard with uid {uid}"))
}

fn expected_datasource() -> Value {
    json!({"type": "prometheus", "uid": DATASOURCE_UID})
}

/// For each alert of alerts_test.yml, whether some test expects it to fire and whether
/// some test expects it to stay quiet.
fn alert_test_coverage() -> Vec<(String, bool, bool)> {
    let text = read_repo_file("prometheus/alerts_test.yml");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut cov: Vec<(String, bool, bool)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = l.strip_prefix("alertname:") else {
            continue;
        };
        let name = name.trim().to_string();
        let Some(exp) = lines[i + 1..].iter().find(|l| l.starts_with("exp_alerts:")) else {
            continue;
        };
        let quiet = exp.trim_start_matches("exp_alerts:").trim() == "[]";
        let idx = cov.iter().position(|c| c.0 == name).unwrap_or_else(|| {
            cov.push((name.clone(), false, false));
            cov.len() - 1
        });
        if quiet {
            cov[idx].2 = true;
        } else {
            cov[idx].1 = true;
        }
    }
    cov
}

// ------------------------------------------------------------------------------------------
// Grafana dashboards

#[test]
fn both_dashboards_are_valid_grafana_json_with_a_uid_a_title_and_a_schema_version() {
    let ds = load_dashboards();
    assert_eq!(ds.len(), 2);
    let mut uids = HashSet::new();
    for d in &ds {
        assert!(
            !d.uid().is_empty() && d.uid().len() <= 40,
            "{}: uid must be set (≤ 40 chars)",
            d.file
        );
        assert!(
            uids.insert(d.uid().to_string()),
            "{}: uid {} used twice",
            d.file,
            d.uid()
        );
        assert!(!d.title().is_empty(), "{}: title must be set", d.file);
        let schema = d.json["schemaVersion"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: schemaVersion must be set", d.file));
        assert!(
            schema >= 36,
            "{}: schemaVersion {schema} is older than the panels used",
            d.file
        );
        assert!(d.json["panels"].is_array(), "{}: panels must be an array", d.file);
        assert!(
            d.json["templating"]["list"].is_array(),
            "{}: templating.list must be an array",
            d.file
        );
    }
}

#[test]
fn every_panel_has_a_unique_id_a_type_a_title_and_a_grid_position_inside_the_24_columns() {
    for d in load_dashboards() {
        let mut ids = HashSet::new();
        for p in d.panels() {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}: a panel has no numeric id: {}", d.file, p["title"]));
            assert!(ids.insert(id), "{}: panel id {id} used twice", d.file);
            let what = format!("{} panel {id}", d.file);
            assert!(
                p["type"].as_str().is_some_and(|t| !t.is_empty()),
                "{what}: type must be set"
            );
            assert!(
                p["title"].as_str().is_some_and(|t| !t.is_empty()),
                "{what}: title must be set"
            );
            let g = &p["gridPos"];
            let [h, w, x, _y] = ["h", "w", "x", "y"].map(|k| {
                g[k].as_u64()
                    .unwrap_or_else(|| panic!("{what}: gridPos.{k} must be set"))
            });
            assert!(
                h >= 1 && w >= 1 && x + w <= 24,
                "{what}: gridPos {g} is outside the 24 columns"
            );
        }
        assert!(!ids.is_empty(), "{}: no panels", d.file);
    }
}

#[test]
fn every_panel_and_every_query_uses_the_provisioned_prometheus_datasource() {
    let prov = read_repo_file(DATASOURCE_PROVISIONING);
    assert_eq!(
        yaml_scalar(&prov, "uid").as_deref(),
        Some(DATASOURCE_UID),
        "{DATASOURCE_PROVISIONING}: uid"
    );
    assert_eq!(
        yaml_scalar(&prov, "type").as_deref(),
        Some("prometheus"),
        "{DATASOURCE_PROVISIONING}: type"
    );
    assert!(
        yaml_scalar(&prov, "url").is_some_and(|u| u.starts_with("http")),
        "{DATASOURCE_PROVISIONING}: url"
    );
    let expected = expected_datasource();
    for d in load_dashboards() {
        for p in d.panels() {
            let what = format!("{} panel {} \"{}\"", d.file, p["id"], p["title"].as_str().unwrap_or(""));
            assert_eq!(p["datasource"], expected, "{what}: datasource");
            for t in p["targets"].as_array().into_iter().flatten() {
                assert_eq!(t["datasource"], expected, "{what} target {}: datasource", t["refId"]);
            }
        }
        for v in d.variables() {
            if v["type"] == "query" {
                assert_eq!(
                    v["datasource"], expected,
                    "{}: variable {} datasource",
                    d.file, v["name"]
                );
            }
        }
    }
}

#[test]
fn the_dashboard_provider_loads_json_files_from_a_folder() {
    let prov = read_repo_file(DASHBOARD_PROVISIONING);
    assert_eq!(
        yaml_scalar(&prov, "type").as_deref(),
        Some("file"),
        "{DASHBOARD_PROVISIONING}: type"
    );
    assert!(
        yaml_scalar(&prov, "path").is_some_and(|p| p.starts_with('/')),
        "{DASHBOARD_PROVISIONING}: an absolute path"
    );
    for f in DASHBOARD_FILES {
        assert!(
            f.starts_with("grafana/dashboards/") && f.ends_with(".json"),
            "{f} must be in grafana/dashboards"
        );
    }
}

#[test]
fn every_panel_with_data_has_queries_each_with_a_ref_id_and_a_non_empty_expression() {
    for d in load_dashboards() {
        for p in d.panels() {
            let what = format!("{} panel {} \"{}\"", d.file, p["id"], p["title"].as_str().unwrap_or(""));
            if p["type"] == "row" {
                assert!(
                    p["targets"].as_array().is_none_or(|t| t.is_empty()),
                    "{what}: a row has no queries"
                );
                continue;
            }
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{what}: no targets"));
            assert!(!targets.is_empty(), "{what}: no targets");
            let mut refs = HashSet::new();
            for t in targets {
                let r = t["refId"].as_str().unwrap_or("");
                assert!(
                    !r.is_empty() && refs.insert(r.to_string()),
                    "{what}: refIds must be set and unique"
                );
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{what} {r}: empty expr"
                );
            }
        }
    }
}

#[test]
fn panel_queries_use_only_the_branch_and_rate_interval_variables() {
    let qs = panel_queries("CUS", "1m");
    assert!(qs.len() >= 20, "expected every panel query, got {}", qs.len());
    for q in &qs {
        assert!(
            !q.expr.contains('$'),
            "an unknown Grafana variable is left after substitution: {q}"
        );
        assert!(
            !q.expr.contains("[[") && !q.expr.contains("]]"),
            "old-style variable syntax: {q}"
        );
        if q.raw_expr.contains('[') {
            // Range windows follow the scrape interval through Grafana: no fixed windows.
            let fixed = q
                .raw_expr
                .split('[')
                .skip(1)
                .any(|s| !s.starts_with("$__rate_interval]"));
            assert!(!fixed, "use [$__rate_interval] for every range window: {}", q.raw_expr);
        }
    }
}

#[test]
fn dashboards_and_alerts_use_only_metrics_of_the_contract() {
    let mut texts: Vec<(String, String)> = panel_queries("CUS", "1m")
        .into_iter()
        .map(|q| (q.to_string(), q.expr))
        .collect();
    texts.push(("prometheus/alerts.yml".into(), read_repo_file("prometheus/alerts.yml")));
    texts.push((
        "prometheus/alerts_test.yml".into(),
        read_repo_file("prometheus/alerts_test.yml"),
    ));
    let mut used = BTreeSet::new();
    for (what, text) in &texts {
        for m in colmena_identifiers(text) {
            assert!(
                is_known_metric(&m),
                "{what}: `{m}` is not a metric of the contract (typo?)"
            );
            used.insert(m);
        }
    }
    assert!(
        used.len() >= 15,
        "expected most of the contract's metrics in use, got {used:?}"
    );
}

#[test]
fn the_overview_shows_every_view_the_on_call_people_need() {
    let d = dashboard("colmena-overview");
    let panels = d.panels();
    let exprs: Vec<(String, String)> = panels
        .iter()
        .flat_map(|p| {
            let ty = p["type"].as_str().unwrap_or("").to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (ty.clone(), t["expr"].as_str().unwrap_or("").to_string()))
        })
        .collect();
    let has = |pred: &dyn Fn(&str, &str) -> bool, what: &str| {
        assert!(exprs.iter().any(|(ty, e)| pred(ty, e)), "overview: no panel for {what}");
    };
    has(
        &|_, e| e.contains("rate(colmena_sales_total") && e.contains("by (branch)"),
        "sales/s by branch",
    );
    for q in ["0.5", "0.99"] {
        has(
            &|_, e| {
                e.contains(&format!("histogram_quantile({q},"))
                    && e.contains("colmena_sync_latency_seconds_bucket")
                    && e.contains("branch")
            },
            &format!("sync latency quantile {q} by branch"),
        );
    }
    has(
        &|ty, e| ty == "state-timeline" && e.contains("colmena_circuit_breaker_state") && e.contains("by (branch)"),
        "breaker state timeline per branch",
    );
    // Panels found by what their queries contain (all of the needles).
    for (needles, what) in [
        (&["colmena_sync_errors_total", "by (kind)"][..], "sync errors by kind"),
        (&["colmena_outbox_pending"][..], "outbox pending"),
        (&["colmena_outbox_oldest_pending_age_seconds"][..], "oldest pending age"),
        (&["colmena_sync_events_applied_total"][..], "central apply rate"),
        (&["colmena_sync_duplicate_events_total"][..], "central duplicates"),
        (
            &["time() -", "colmena_branch_last_push_timestamp_seconds"][..],
            "seconds since last push",
        ),
        (
            &["colmena_central_negative_stock_products"][..],
            "negative-stock products",
        ),
        (
            &["histogram_quantile(0.99,", "colmena_sell_duration_seconds_bucket"][..],
            "/sell p99",
        ),
        (
            &["colmena_central_returns_total", "by (branch_id)"][..],
            "returns by branch",
        ),
        (
            &["colmena_central_shifts_closed_total", "by (consistent)"][..],
            "shift closes by consistency",
        ),
        (&["colmena_central_transfers_in_transit"][..], "transfers in transit"),
        (
            &["colmena_central_transfer_oldest_in_transit_seconds"][..],
            "oldest transfer in transit",
        ),
    ] {
        has(&|_, e| needles.iter().all(|n| e.contains(n)), what);
    }
}

#[test]
fn the_branch_dashboard_has_a_branch_variable_and_every_query_filters_on_it() {
    let (metric, label) = branch_variable_query();
    assert_eq!((metric.as_str(), label.as_str()), ("colmena_outbox_pending", "branch"));
    let d = dashboard(BRANCH_DASHBOARD_UID);
    let var = d
        .variables()
        .into_iter()
        .find(|v| v["name"] == "branch")
        .expect("branch variable");
    assert_eq!(var["type"], "query");
    let queries: Vec<PanelQuery> = panel_queries("CUS", "1m")
        .into_iter()
        .filter(|q| q.dashboard == BRANCH_DASHBOARD_UID)
        .collect();
    assert!(!queries.is_empty());
    for q in &queries {
        assert!(
            q.raw_expr.contains("branch=\"$branch\"") || q.raw_expr.contains("branch_id=\"$branch\""),
            "branch dashboard query does not filter on $branch: {}",
            q.raw_expr
        );
        assert!(
            !q.raw_expr.contains("branch=~") && !q.raw_expr.contains("branch!="),
            "{}",
            q.raw_expr
        );
    }
    // The overview has no variable to forget about.
    assert!(dashboard("colmena-overview").variables().is_empty());
    let overview = panel_queries("CUS", "1m")
        .into_iter()
        .filter(|q| q.dashboard == "colmena-overview");
    for q in overview {
        assert!(
            !q.raw_expr.contains("$branch"),
            "overview query uses $branch: {}",
            q.raw_expr
        );
    }
}

#[test]
fn every_panel_query_parses_as_promql() {
    // promtool has no expression checker; a recording rule per query makes it parse them.
    let dir = TempDir::new("panel-rules");
    let mut rules = String::from("groups:\n  - name: dashboard-panel-queries\n    rules:\n");
    for (i, q) in panel_queries("CUS", "1m").iter().enumerate() {
        let expr = serde_json::to_string(&q.expr).expect("quote");
        rules.push_str(&format!(
            "      - record: colmena:dashboard_panel_query:{i}\n        expr: {expr}\n"
        ));
    }
    let file = dir.path().join("panel_queries.yml");
    std::fs::write(&file, rules).expect("write rules");
    promtool(&["check", "rules", &file.to_string_lossy()]);
}

// ------------------------------------------------------------------------------------------
// Prometheus configuration and alert rules

#[test]
fn promtool_accepts_prometheus_yml() {
    let out = promtool(&["check", "config", "prometheus.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let text = read_repo_file("prometheus.yml");
    for needle in [
        "scrape_interval: 15s",
        "evaluation_interval: 15s",
        "- prometheus/alerts.yml",
        "job_name: colmena-central",
        "\"127.0.0.1:8000\"",
        "job_name: colmena-sucursal",
        "\"127.0.0.1:8001\"",
        "branch: CUS",
        "\"127.0.0.1:8002\"",
        "branch: ABA",
    ] {
        assert!(text.contains(needle), "prometheus.yml lacks `{needle}`");
    }
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let out = promtool(&["check", "rules", "prometheus/alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_alert_rules_unit_tests_pass_under_promtool() {
    let out = promtool(&["test", "rules", "prometheus/alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_is_unit_tested_both_firing_and_staying_quiet() {
    let cov = alert_test_coverage();
    let rules = read_repo_file("prometheus/alerts.yml");
    let alerts: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(|s| s.trim().to_string())
        .collect();
    for a in REQUIRED_ALERTS {
        assert!(alerts.iter().any(|x| x == a), "alerts.yml lacks {a}");
    }
    for a in &alerts {
        let c = cov
            .iter()
            .find(|c| &c.0 == a)
            .unwrap_or_else(|| panic!("alerts_test.yml never tests {a}"));
        assert!(c.1, "alerts_test.yml never expects {a} to fire");
        assert!(c.2, "alerts_test.yml never expects {a} to stay quiet");
    }
}

#[tokio::test]
async fn prometheus_loads_prometheus_yml_and_every_alert_has_a_severity_a_summary_and_a_description() {
    let prom = Prometheus::start(&repo_root().join("prometheus.yml")).await;

    let cfg = prom.api("/api/v1/status/config").await;
    let yaml = cfg["data"]["yaml"].as_str().unwrap_or("");
    assert!(
        yaml.contains("job_name: colmena-central") && yaml.contains("job_name: colmena-sucursal"),
        "{yaml}"
    );

    let rules = prom.api("/api/v1/rules?type=alert").await;
    let mut names = Vec::new();
    for g in rules["data"]["groups"].as_array().expect("rule groups") {
        for r in g["rules"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or("").to_string();
            // "unknown" until the first evaluation (up to one evaluation interval after start).
            assert!(
                r["health"] == "ok" || r["health"] == "unknown",
                "{name}: {} {}",
                r["health"],
                r["lastError"]
            );
            let sev = r["labels"]["severity"].as_str().unwrap_or("");
            assert!(
                ["critical", "warning"].contains(&sev),
                "{name}: severity must be critical or warning, is {sev:?}"
            );
            let summary = r["annotations"]["summary"].as_str().unwrap_or("");
            let description = r["annotations"]["description"].as_str().unwrap_or("");
            assert!(!summary.is_empty(), "{name}: no summary");
            assert!(
                description.len() >= 150,
                "{name}: the description should tell on call what it means and what to check"
            );
            assert!(
                description.contains("Check first"),
                "{name}: the description should say what to check first"
            );
            assert!(
                r["duration"].as_f64().is_some_and(|d| d >= 60.0),
                "{name}: use a `for:` of at least 1m"
            );
            names.push(name);
        }
    }
    for a in REQUIRED_ALERTS {
        assert!(
            names.iter().any(|n| n == a),
            "Prometheus did not load {a} (rule_files path?); loaded {names:?}"
        );
    }

    let doc = read_repo_file("docs/observability.md");
    for n in &names {
        assert!(doc.contains(n.as_str()), "docs/observability.md does not explain {n}");
    }
}

#[test]
fn a_copy_of_prometheus_yml_for_a_chain_on_other_ports_is_valid() {
    let dir = TempDir::new("prom-copy");
    let text = prometheus_config(
        "http://127.0.0.1:41000",
        &[
            ("CUS", "127.0.0.1:41001"),
            ("ABA", "127.0.0.1:41002"),
            ("MTY", "127.0.0.1:41003"),
        ],
        "1s",
    );
    for needle in [
        "scrape_interval: 1s",
        "evaluation_interval: 1s",
        "\"127.0.0.1:41000\"",
        "\"127.0.0.1:41001\"",
        "branch: CUS",
        "\"127.0.0.1:41003\"",
        "branch: MTY",
        "job_name: colmena-central",
        "job_name: colmena-sucursal",
    ] {
        assert!(text.contains(needle), "copy lacks `{needle}`:\n{text}");
    }
    for old in ["127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002", "15s"] {
        assert!(
            !text
                .lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains(old)),
            "copy still has {old}:\n{text}"
        );
    }
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, &text).expect("write copy");
    let out = promtool(&["check", "config", &file.to_string_lossy()]);
    assert!(
        out.contains("1 rule files found"),
        "the copy must still load the alert rules:\n{out}"
    );
}
