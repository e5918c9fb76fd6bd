//! The shipped Prometheus and Alertmanager configuration, checked with the
//! real tools (`promtool`, `amtool` from the Debian packages) and for the
//! conventions every rule follows: severity, summary, description, a
//! runbook that exists, a unit test that fires it and one that does not,
//! and a checked value for every recording rule.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use oxmon_testkit::promtool;
use oxmon_testkit::require_program;
use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `.yml` files of a directory under the repository, sorted.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let dir = root().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yml files in {}", dir.display());
    files
}

fn load(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn seq<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every rule of every file under prometheus/rules, with its file name.
fn rules() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in yaml_files("prometheus/rules") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc = load(&path);
        for group in seq(&doc, "groups") {
            for rule in seq(group, "rules") {
                out.push((file.clone(), rule.clone()));
            }
        }
    }
    out
}

/// Name prefixes of the exporters whose served names are known statically
/// (golden files and sources); the stack test checks every name live.
const STATIC_PREFIXES: [&str; 4] = ["node_", "nvidia_gpu_", "pg_", "redis_"];

#[test]
fn rules_watch_only_metrics_the_exporters_serve() {
    let known = common::known_metric_names();
    let mut checked = BTreeSet::new();
    let mut unknown = Vec::new();
    for (file, rule) in rules() {
        let place = str_of(&rule, "alert")
            .or(str_of(&rule, "record"))
            .unwrap_or("");
        let expr = str_of(&rule, "expr").unwrap_or_else(|| panic!("{file}: {place}: no expr"));
        for name in common::metric_names(expr) {
            if known.contains(&name) {
                checked.insert(name);
            } else if STATIC_PREFIXES.iter().any(|p| name.starts_with(p)) {
                unknown.push(format!("{file}: {place}: {name}"));
            }
        }
    }
    assert!(checked.len() > 50, "only {} names checked", checked.len());
    assert!(
        unknown.is_empty(),
        "rules watch metrics no exporter serves:\n{}",
        unknown.join("\n")
    );
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn promtool_accepts_config_rules_and_unit_tests() {
    let config = root().join("prometheus/prometheus.yml");
    promtool(&["check", "config", &path_arg(&config)], "").unwrap();
    let rule_files: Vec<String> = yaml_files("prometheus/rules")
        .iter()
        .map(|p| path_arg(p))
        .collect();
    let mut args = vec!["check", "rules"];
    args.extend(rule_files.iter().map(String::as_str));
    promtool(&args, "").unwrap();
    let tests: Vec<String> = yaml_files("prometheus/tests")
        .iter()
        .map(|p| path_arg(p))
        .collect();
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    promtool(&args, "").unwrap();
}

#[test]
fn every_alert_has_severity_annotations_and_a_runbook() {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (file, rule) in rules() {
        let Some(name) = str_of(&rule, "alert") else {
            continue;
        };
        if !names.insert(name.to_string()) {
            problems.push(format!("{file}: alert {name} is defined twice"));
        }
        if !name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            || !name.chars().all(|c| c.is_ascii_alphanumeric())
        {
            problems.push(format!("{file}: alert {name} is not CamelCase"));
        }
        let severity = rule.get("labels").and_then(|l| str_of(l, "severity"));
        if !matches!(severity, Some("critical" | "warning" | "info")) {
            problems.push(format!("{file}: {name}: severity {severity:?}"));
        }
        let annotations = rule.get("annotations").cloned().unwrap_or(Value::Null);
        for key in ["summary", "description", "runbook_url"] {
            if str_of(&annotations, key).is_none_or(str::is_empty) {
                problems.push(format!("{file}: {name}: no {key}"));
            }
        }
        if let Some(url) = str_of(&annotations, "runbook_url") {
            let want = format!("/docs/runbooks/{name}.md");
            if !url.ends_with(&want) {
                problems.push(format!(
                    "{file}: {name}: runbook_url {url} does not end in {want}"
                ));
            } else if !root().join(&want[1..]).is_file() {
                problems.push(format!("{file}: {name}: {want} does not exist"));
            }
        }
    }
    assert!(names.len() > 30, "only {} alerts found", names.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The alert names our users' runbooks use, with the severity and `for`
/// they expect.
#[test]
fn users_alert_names_exist_as_they_wrote_them() {
    let want = [
        ("SystemDown", "critical", "1m"),
        ("GPUTemperatureHigh", "critical", "5m"),
        ("VRAMExhausted", "critical", "30s"),
        ("HighCPUUsage", "warning", "10m"),
        ("HighMemoryUsage", "warning", "5m"),
        ("LowDiskSpace", "warning", "5m"),
        ("LowCacheHitRate", "warning", "15m"),
    ];
    let all: BTreeMap<String, Value> = rules()
        .into_iter()
        .filter_map(|(_, r)| str_of(&r, "alert").map(|n| (n.to_string(), r.clone())))
        .collect();
    for (name, severity, r#for) in want {
        let rule = all
            .get(name)
            .unwrap_or_else(|| panic!("alert {name} missing"));
        assert_eq!(
            rule.get("labels").and_then(|l| str_of(l, "severity")),
            Some(severity),
            "{name}"
        );
        assert_eq!(str_of(rule, "for"), Some(r#for), "{name}");
    }
}

#[test]
fn every_rule_is_unit_tested() {
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut exprs = Vec::new();
    for path in yaml_files("prometheus/tests") {
        let doc = load(&path);
        for test in seq(&doc, "tests") {
            for case in seq(test, "alert_rule_test") {
                let name = str_of(case, "alertname").unwrap_or_default().to_string();
                if seq(case, "exp_alerts").is_empty() {
                    quiet.insert(name);
                } else {
                    fired.insert(name);
                }
            }
            for case in seq(test, "promql_expr_test") {
                exprs.push(str_of(case, "expr").unwrap_or_default().to_string());
            }
        }
    }
    let mut problems = Vec::new();
    for (file, rule) in rules() {
        if let Some(name) = str_of(&rule, "alert") {
            if !fired.contains(name) {
                problems.push(format!("{file}: no test case where {name} fires"));
            }
            if !quiet.contains(name) {
                problems.push(format!("{file}: no test case where {name} stays quiet"));
            }
        }
        if let Some(name) = str_of(&rule, "record") {
            let checked = exprs.iter().any(|e| {
                e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .any(|word| word == name)
            });
            if !checked {
                problems.push(format!(
                    "{file}: recording rule {name} has no promql_expr_test"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn recording_rules_are_named_level_metric_operations() {
    for (file, rule) in rules() {
        let Some(name) = str_of(&rule, "record") else {
            continue;
        };
        // compat.rules.yml records the plain names our users' queries use.
        if file == "compat.rules.yml" {
            continue;
        }
        assert_eq!(
            name.split(':').filter(|p| !p.is_empty()).count(),
            3,
            "{file}: {name} is not level:metric:operations"
        );
    }
}

/// Every `job="…"` a rule selects is a scrape job of prometheus.yml, so the
/// selectors and the scrape config cannot drift apart.
#[test]
fn rule_job_selectors_name_scrape_jobs() {
    let config = load(&root().join("prometheus/prometheus.yml"));
    let jobs: BTreeSet<&str> = seq(&config, "scrape_configs")
        .iter()
        .filter_map(|c| str_of(c, "job_name"))
        .collect();
    for want in [
        "node",
        "gpu",
        "postgres",
        "redis",
        "app",
        "prometheus",
        "alertmanager",
    ] {
        assert!(jobs.contains(want), "prometheus.yml has no job {want}");
    }
    for (file, rule) in rules() {
        let expr = str_of(&rule, "expr").unwrap_or_default();
        for part in expr.split("job=\"").skip(1) {
            let job = part.split('"').next().unwrap_or_default();
            assert!(
                jobs.contains(job),
                "{file}: selector job=\"{job}\" is not a scrape job"
            );
        }
    }
}

fn amtool(args: &[&str]) -> String {
    let bin = require_program("amtool", "prometheus-alertmanager");
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run amtool: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "amtool {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn alertmanager_config_is_valid_and_routes_by_severity() {
    let config = path_arg(&root().join("alertmanager/alertmanager.yml"));
    amtool(&["check-config", &config]);
    for (severity, receivers) in [
        ("critical", "webhook,pagerduty,slack-critical"),
        ("warning", "webhook,slack"),
        ("info", "webhook,email"),
        ("none", "webhook,slack"),
    ] {
        let label = format!("severity={severity}");
        let got = amtool(&[
            "config",
            "routes",
            "test",
            "--config.file",
            &config,
            "alertname=Example",
            &label,
        ]);
        assert_eq!(got.trim(), receivers, "receivers of {label}");
    }
}

/// No secret is written in the Alertmanager config: every credential is a
/// `*_file` field.
#[test]
fn alertmanager_secrets_come_from_files() {
    let text = std::fs::read_to_string(root().join("alertmanager/alertmanager.yml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    let mut found = Vec::new();
    collect_keys(&doc, &mut found);
    for key in [
        "smtp_auth_password",
        "api_url",
        "routing_key",
        "service_key",
        "auth_password",
        "credentials",
        "password",
        "bearer_token",
    ] {
        assert!(
            !found.iter().any(|k| k == key),
            "alertmanager.yml sets {key} inline"
        );
    }
    for key in [
        "smtp_auth_password_file",
        "api_url_file",
        "routing_key_file",
        "credentials_file",
    ] {
        assert!(
            found.iter().any(|k| k == key),
            "alertmanager.yml lacks {key}"
        );
    }
}

fn collect_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                if let Some(k) = k.as_str() {
                    out.push(k.to_string());
                }
                collect_keys(v, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}
