//! The Grafana dashboard and the Prometheus alert rules under deploy/ against what a freshly
//! started daemon really exports: every metric they name is scraped from `/metrics` before any
//! traffic, every exported metric has HELP text and a row in the README's table, and every
//! labelled counter whose label values are known in advance is there at 0 (an alert on
//! `rate(moauth_sms_failed_total[5m])` needs a series before the first failure).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::process::Spawned;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/moauth-dashboard.json"
);
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/moauth-rules.yml"
);

/// Every `moauth_…` metric name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    expr.match_indices("moauth_")
        .map(|(at, _)| {
            expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// The strings of every `expr` / `query` (dashboard targets and variables, alert rules).
fn expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => expressions(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

/// The sample names in a Prometheus text exposition (`name{labels} value`).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// (name, type) of every `# TYPE` line.
fn families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn dashboard_and_alerts_name_only_metrics_a_fresh_daemon_exports() {
    // Every subsystem on, so that each of its series can be there: a remote auth core (never
    // asked: no MO comes) and a webhook.
    let mut daemon = Spawned::start(
        r#"[[http.api_keys]]
name = "shop"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

[[webhooks]]
backend = "shop"
url = "http://127.0.0.1:9/events"
secret = "webhook-secret"

[auth]
mode = "remote"

[auth.remote]
url = "http://127.0.0.1:9/login"
secret = "auth-core-secret"
"#,
        &[],
    )
    .await;
    let text = crate::common::http_client()
        .get(format!("http://{}/metrics", daemon.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = exported(&text);

    let mut exprs = Vec::new();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    expressions(&dashboard, &mut exprs);
    let rules: Value = serde_norway::from_str(&std::fs::read_to_string(RULES).unwrap()).unwrap();
    let rule_count = rules["groups"][0]["rules"].as_array().unwrap().len();
    expressions(&rules, &mut exprs);
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(used.len() >= 15 && rule_count >= 5, "{used:?}");
    let missing: Vec<_> = used.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exported at start: {missing:?}\n{text}"
    );

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (family, kind) in families(&text) {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP text"
        );
        assert!(
            readme.contains(&format!("| `{family}` | {kind} |")),
            "{family} ({kind}) has no row in the README's metrics table"
        );
    }
    for series in [
        "moauth_mo_rejected_total{reason=\"bad_token\"} 0",
        "moauth_mo_rejected_total{reason=\"malformed\"} 0",
        "moauth_limit_hits_total{limit=\"new_accounts_per_prefix\"} 0",
        "moauth_sms_sent_total{smsc=\"sim\"} 0",
        "moauth_sms_failed_total{smsc=\"sim\"} 0",
        "moauth_sms_throttled_total{smsc=\"sim\"} 0",
        "moauth_dlr_total{smsc=\"sim\",stat=\"undeliv\"} 0",
        "moauth_smsc_bind_failures_total{smsc=\"sim\",status=\"ESME_RINVPASWD\"} 0",
        "moauth_auth_core_requests_total{outcome=\"unavailable\"} 0",
        "moauth_webhook_calls_total{outcome=\"failed\"} 0",
        "moauth_mo_to_session_seconds_count 0",
        "moauth_mo_to_session_seconds_bucket{le=\"0.01\"} 0",
        "moauth_poll_waiters 0",
        "moauth_long_polls_active 0",
        "moauth_inbox_depth 0",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "no {series} at start:\n{text}"
        );
    }
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.exit_code().await, 0);
}
