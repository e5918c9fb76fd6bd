//! The shipped Grafana dashboards (`grafana/dashboards/*.json`) and the
//! provisioning that loads them (`grafana/provisioning/`): every dashboard
//! parses, has its stable uid, selects Prometheus through the `datasource`
//! variable (never the import-only `${DS_PROMETHEUS}`), has `job` and
//! `instance` variables, uses `$__rate_interval` for rates, and every query
//! is valid PromQL (checked by `promtool check rules`) over metric names
//! the exporters serve or the shipped rules record.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{
    dashboards, files_with_ext, is_ident, known_metric_names, label_values_selector, metric_names,
    read, root, skip_string, substitute, variable_query,
};
use oxmon_testkit::promtool;
use oxmon_testkit::serde_json::{self, json, Value};

/// The dashboards and their uids; file `<uid without "oxmon-">.json`.
const UIDS: [&str; 8] = [
    "oxmon-overview",
    "oxmon-node",
    "oxmon-gpu",
    "oxmon-postgres",
    "oxmon-redis",
    "oxmon-app",
    "oxmon-ai-model",
    "oxmon-reports",
];

/// The report dashboard may use fixed windows such as `increase(x[1d])`.
const REPORTS_UID: &str = "oxmon-reports";
const REPORT_WINDOWS: [&str; 3] = ["1h", "1d", "7d"];

/// Where the dashboard provider reads the dashboards inside Grafana.
const GRAFANA_DASHBOARDS: &str = "/var/lib/grafana/dashboards";

/// Index of the `)` closing the `(` at `open`, skipping string literals.
fn closing_paren(s: &str, open: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = skip_string(bytes, i),
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Every `rate(`, `irate(` and `increase(` call with the range windows
/// (`[...]` contents) inside its argument.
fn rate_windows(expr: &str) -> Vec<(String, String)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    for func in ["rate", "irate", "increase"] {
        let pat = format!("{func}(");
        let mut from = 0;
        while let Some(pos) = expr[from..].find(&pat).map(|p| p + from) {
            from = pos + pat.len();
            if pos > 0 && is_ident(bytes[pos - 1]) {
                continue;
            }
            let open = pos + func.len();
            let Some(close) = closing_paren(expr, open) else {
                out.push((func.to_string(), "<unclosed>".to_string()));
                continue;
            };
            let arg = &expr[open..close];
            let mut windows = 0;
            let ab = arg.as_bytes();
            let mut i = 0;
            while i < ab.len() {
                match ab[i] {
                    b'"' | b'\'' | b'`' => i = skip_string(ab, i),
                    b'[' => {
                        let end = arg[i..].find(']').map_or(arg.len(), |e| e + i);
                        out.push((func.to_string(), arg[i + 1..end].trim().to_string()));
                        windows += 1;
                        i = end;
                    }
                    _ => {}
                }
                i += 1;
            }
            if windows == 0 {
                out.push((func.to_string(), "<no range>".to_string()));
            }
        }
    }
    out
}

fn expected_datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn load_yaml(rel: &str) -> serde_yaml::Value {
    let path = root().join(rel);
    serde_yaml::from_str(&read(&path)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

#[test]
fn dashboards_parse_with_their_uids_and_tags() {
    let dashboards = dashboards();
    let mut seen = BTreeMap::new();
    for d in &dashboards {
        let uid = d.uid().to_string();
        if let Some(other) = seen.insert(uid.clone(), d.file.clone()) {
            panic!("uid {uid} in both {other} and {}", d.file);
        }
        let want_file = format!("{}.json", uid.trim_start_matches("oxmon-"));
        assert_eq!(d.file, want_file, "uid {uid} is not in {want_file}");
        assert!(
            d.json["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("oxmon / ")),
            "{}: title {}",
            d.file,
            d.json["title"]
        );
        let tags: Vec<&str> = d.json["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            tags.contains(&"oxmon"),
            "{}: tags {tags:?} lack oxmon",
            d.file
        );
        let schema = d.json["schemaVersion"].as_u64().unwrap_or(0);
        assert!(
            (36..=41).contains(&schema),
            "{}: schemaVersion {schema}",
            d.file
        );
        assert!(
            d.json.get("__inputs").is_none() && d.json.get("__requires").is_none(),
            "{}: import-only __inputs/__requires",
            d.file
        );
        assert!(
            d.json.get("id").is_none_or(Value::is_null),
            "{}: a fixed numeric id",
            d.file
        );
    }
    let want: BTreeSet<&str> = UIDS.into_iter().collect();
    let got: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    assert_eq!(got, want, "dashboard uids");
}

#[test]
fn panels_sit_in_rows_with_titles_descriptions_and_units() {
    let mut problems = Vec::new();
    for d in dashboards() {
        let panels = d.panels();
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [i64; 4])> = Vec::new();
        let mut visible = 0;
        for p in &panels {
            let title = p["title"].as_str().unwrap_or("");
            let kind = p["type"].as_str().unwrap_or("");
            let here = format!("{}: panel {title:?}", d.file);
            match p["id"].as_u64() {
                Some(id) if ids.insert(id) => {}
                id => problems.push(format!("{here}: id {id:?} missing or repeated")),
            }
            if title.is_empty() {
                problems.push(format!("{here}: no title"));
            }
            let g = &p["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or(-1));
            if x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > 24 {
                problems.push(format!("{here}: gridPos {g}"));
            }
            for (other, b) in &boxes {
                if x < b[0] + b[2] && b[0] < x + w && y < b[1] + b[3] && b[1] < y + h {
                    problems.push(format!("{here}: overlaps {other}"));
                }
            }
            boxes.push((title.to_string(), [x, y, w, h]));
            if kind == "row" {
                continue;
            }
            visible += 1;
            if p["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{here}: no description"));
            }
            if p["targets"].as_array().is_none_or(Vec::is_empty) {
                problems.push(format!("{here}: no targets"));
            }
            if matches!(kind, "timeseries" | "stat" | "gauge" | "bargauge" | "table")
                && p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_none_or(str::is_empty)
            {
                problems.push(format!("{here}: no unit"));
            }
            let mut refs = BTreeSet::new();
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                if !refs.insert(t["refId"].to_string()) {
                    problems.push(format!("{here}: refId {} repeated", t["refId"]));
                }
                if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                    problems.push(format!("{here}: target {} has no expr", t["refId"]));
                }
            }
        }
        // The first panel from the top is a row: every panel is in one.
        let top = panels
            .iter()
            .filter(|p| p["gridPos"]["y"] == 0 && p["gridPos"]["x"] == 0)
            .map(|p| p["type"].as_str().unwrap_or(""))
            .next();
        if top != Some("row") {
            problems.push(format!(
                "{}: the top-left panel is {top:?}, not a row",
                d.file
            ));
        }
        if !(10..=25).contains(&visible) {
            problems.push(format!("{}: {visible} panels, want 10 to 25", d.file));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_datasource_is_the_datasource_variable() {
    fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{path}.{k}");
                    if k == "datasource" && *child != expected_datasource() {
                        problems.push(format!("{here} = {child}"));
                    }
                    walk(child, &here, problems);
                }
            }
            Value::Array(list) => {
                for (i, child) in list.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for d in dashboards() {
        for bad in ["${DS_", "DS_PROMETHEUS", "$datasource\""] {
            if d.text.contains(bad) {
                problems.push(format!("{}: contains {bad}", d.file));
            }
        }
        walk(&d.json, &d.file, &mut problems);
        // Present, not just correct where present: every panel but rows,
        // every target, every query variable.
        for p in d.panels() {
            if p["type"] == "row" {
                continue;
            }
            checked += 1;
            if p["datasource"].is_null() {
                problems.push(format!(
                    "{}: panel {:?} has no datasource",
                    d.file, p["title"]
                ));
            }
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                checked += 1;
                if t["datasource"].is_null() {
                    problems.push(format!(
                        "{}: panel {:?} target {} has no datasource",
                        d.file, p["title"], t["refId"]
                    ));
                }
            }
        }
        for v in d.variables() {
            if v["type"] == "query" && v["datasource"].is_null() {
                problems.push(format!(
                    "{}: variable {} has no datasource",
                    d.file, v["name"]
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} panels and targets checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn datasource_job_and_instance_variables_exist() {
    let provisioned = load_yaml("grafana/provisioning/datasources/prometheus.yml");
    let provisioned_uid = provisioned["datasources"][0]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut problems = Vec::new();
    for d in dashboards() {
        let f = &d.file;
        match d.variable("datasource") {
            None => problems.push(format!("{f}: no datasource variable")),
            Some(v) => {
                if v["type"] != "datasource" || v["query"] != "prometheus" {
                    problems.push(format!(
                        "{f}: datasource variable is {} over {}",
                        v["type"], v["query"]
                    ));
                }
                let current = &v["current"]["value"];
                if !current.is_null() && current.as_str() != Some(provisioned_uid.as_str()) {
                    problems.push(format!("{f}: datasource defaults to {current}, provisioned uid is {provisioned_uid}"));
                }
            }
        }
        for name in ["job", "instance"] {
            let Some(v) = d.variable(name) else {
                problems.push(format!("{f}: no {name} variable"));
                continue;
            };
            let q = variable_query(v);
            if v["type"] != "query" || label_values_selector(&q).is_none() {
                problems.push(format!(
                    "{f}: {name} is not a label_values query variable: {q}"
                ));
            }
            if !q.trim_end().ends_with(&format!("{name})")) {
                problems.push(format!("{f}: {name} does not list {name} values: {q}"));
            }
            if v["definition"].as_str().is_some_and(|def| def != q) {
                problems.push(format!(
                    "{f}: {name}: definition {} differs from query {q}",
                    v["definition"]
                ));
            }
            if !matches!(v["refresh"].as_u64(), Some(1 | 2)) {
                problems.push(format!(
                    "{f}: {name}: refresh {} (want on load or on time change)",
                    v["refresh"]
                ));
            }
        }
        if let Some(v) = d.variable("instance") {
            if !variable_query(v).contains("$job") {
                problems.push(format!("{f}: instance values are not filtered by $job"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rates_use_rate_interval_outside_reports() {
    let mut problems = Vec::new();
    let mut calls = 0;
    for d in dashboards() {
        for (place, expr) in d.queries() {
            for (func, window) in rate_windows(&expr) {
                calls += 1;
                let ok = window == "$__rate_interval"
                    || (d.uid() == REPORTS_UID && REPORT_WINDOWS.contains(&window.as_str()));
                if !ok {
                    problems.push(format!(
                        "{}: {place}: {func}(…[{window}]) in {expr}",
                        d.file
                    ));
                }
            }
        }
    }
    assert!(calls > 50, "only {calls} rate/irate/increase calls found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_query_is_valid_promql() {
    let dir = tempdir();
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for d in dashboards() {
        let defined: BTreeSet<String> = d
            .variables()
            .iter()
            .filter_map(|v| v["name"].as_str().map(String::from))
            .collect();
        for (place, expr) in d.queries() {
            match substitute(&expr, &defined) {
                Ok(e) if !e.contains('$') => rules.push((format!("{}: {place}", d.file), e)),
                Ok(e) => problems.push(format!("{}: {place}: $ left in {e}", d.file)),
                Err(e) => problems.push(format!("{}: {place}: {e}", d.file)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(rules.len() > 150, "only {} queries", rules.len());

    // One recording rule per query; promtool names the failing rule, and
    // the comment above it names the panel.
    let mut yaml = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (place, expr)) in rules.iter().enumerate() {
        yaml.push_str(&format!(
            "      # {}\n      - record: dashboard_query_{i}\n        expr: {}\n",
            place.replace('\n', " "),
            serde_json::to_string(expr).unwrap()
        ));
    }
    let path = dir.join("dashboards.rules.yml");
    std::fs::write(&path, &yaml).unwrap();
    let path_s = path.to_string_lossy().into_owned();
    if let Err(e) = promtool(&["check", "rules", &path_s], "") {
        let mut index = String::new();
        for (i, (place, _)) in rules.iter().enumerate() {
            if e.contains(&format!("dashboard_query_{i}\""))
                || e.contains(&format!("dashboard_query_{i} "))
            {
                index.push_str(&format!("dashboard_query_{i}: {place}\n"));
            }
        }
        panic!("{e}\n{index}");
    }

    // The same route rejects a broken query, so the check above means
    // something.
    let bad = dir.join("broken.rules.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: broken\n        expr: \"sum(rate(x[1m])\"\n",
    )
    .unwrap();
    assert!(promtool(&["check", "rules", &bad.to_string_lossy()], "").is_err());
}

#[test]
fn every_metric_name_is_served_or_recorded() {
    let known = known_metric_names();
    for sample in [
        "node_cpu_seconds_total",
        "node_filesystem_avail_bytes",
        "node_timex_offset_seconds",
        "nvidia_gpu_memory_used_bytes",
        "pg_stat_activity_count",
        "redis_memory_used_bytes",
        "redis_db_keys",
        "instance:node_cpu_utilisation:rate5m",
    ] {
        assert!(known.contains(sample), "the name scan missed {sample}");
    }
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for d in dashboards() {
        for (place, expr) in d.queries() {
            for name in metric_names(&expr) {
                if !known.contains(&name) {
                    problems.push(format!("{}: {place}: unknown metric {name}", d.file));
                }
                used.insert(name);
            }
        }
    }
    assert!(used.len() > 100, "only {} metric names found", used.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn provisioning_loads_the_datasource_and_the_dashboards_folder() {
    let ds = load_yaml("grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(ds["apiVersion"].as_u64(), Some(1));
    let list = ds["datasources"].as_sequence().expect("datasources list");
    let defaults: Vec<_> = list
        .iter()
        .filter(|d| d["isDefault"].as_bool() == Some(true))
        .collect();
    assert_eq!(defaults.len(), 1, "exactly one default datasource");
    let prom = &list[0];
    assert_eq!(prom["type"].as_str(), Some("prometheus"));
    assert_eq!(prom["uid"].as_str(), Some("prometheus"));
    assert_eq!(prom["url"].as_str(), Some("http://prometheus:9090"));
    assert_eq!(prom["access"].as_str(), Some("proxy"));
    assert_eq!(prom["isDefault"].as_bool(), Some(true));

    let dash = load_yaml("grafana/provisioning/dashboards/oxmon.yml");
    assert_eq!(dash["apiVersion"].as_u64(), Some(1));
    let providers = dash["providers"].as_sequence().expect("providers list");
    assert_eq!(providers.len(), 1);
    let p = &providers[0];
    assert_eq!(p["type"].as_str(), Some("file"));
    assert_eq!(p["folder"].as_str(), Some("oxmon"));
    assert_eq!(p["options"]["path"].as_str(), Some(GRAFANA_DASHBOARDS));
    assert_ne!(
        p["options"]["foldersFromFilesStructure"].as_bool(),
        Some(true)
    );
    assert_eq!(
        files_with_ext(&root().join("grafana/dashboards"), "json").len(),
        UIDS.len(),
        "grafana/dashboards holds exactly the shipped dashboards"
    );

    // Where the compose file runs Grafana, it mounts this folder at the
    // provider's path and the provisioning where Grafana reads it.
    let compose = root().join("deploy/docker-compose.yml");
    if compose.is_file() {
        let doc = load_yaml("deploy/docker-compose.yml");
        let volumes: Vec<&str> = doc["services"]["grafana"]["volumes"]
            .as_sequence()
            .map(|v| v.iter().filter_map(serde_yaml::Value::as_str).collect())
            .unwrap_or_default();
        let mounts = |host: &str, target: &str| {
            volumes.iter().any(|v| {
                let mut parts = v.split(':');
                let (h, t) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                h.trim_end_matches('/').ends_with(host) && t.trim_end_matches('/') == target
            })
        };
        assert!(
            mounts("grafana/dashboards", GRAFANA_DASHBOARDS),
            "compose grafana volumes {volumes:?}"
        );
        assert!(
            mounts("grafana/provisioning", "/etc/grafana/provisioning"),
            "compose grafana volumes {volumes:?}"
        );
    }
}

#[test]
fn the_query_helpers_catch_what_they_should() {
    let vars: BTreeSet<String> = ["job", "instance"].map(String::from).into();
    assert_eq!(
        substitute(
            "rate(x{job=~\"$job\", instance=~\"${instance:regex}\"}[$__rate_interval])",
            &vars
        )
        .unwrap(),
        "rate(x{job=~\".*\", instance=~\".*\"}[1m])"
    );
    assert!(substitute("x{a=~\"$nope\"}", &vars).is_err());

    let w = |f: &str, r: &str| (f.to_string(), r.to_string());
    assert_eq!(
        rate_windows("sum(irate(a{b=\"[x]\"}[5m])) / increase(c[$__rate_interval]) + rate(d)"),
        vec![
            w("rate", "<no range>"),
            w("irate", "5m"),
            w("increase", "$__rate_interval")
        ]
    );
    assert_eq!(
        rate_windows("rate(x[1m])"),
        vec![("rate".to_string(), "1m".to_string())]
    );
    assert_eq!(rate_windows("deriv(x[1m])"), vec![]);

    let names = metric_names(
        "sum by (instance, le) (rate(http_x_bucket{le=\"0.5\", job=~\"a|b\"}[1m])) \
         / on (instance) group_left (mode) max(node_y) or vector(0) * 1e-3 \
         unless count without (cpu) (ALERTS{alertname=\"x y\"} offset 5m)",
    );
    let want: BTreeSet<String> = ["http_x_bucket", "node_y", "ALERTS"]
        .map(String::from)
        .into();
    assert_eq!(names, want);

    assert_eq!(
        label_values_selector("label_values(up{job=~\"$job\"}, instance)").as_deref(),
        Some("up{job=~\"$job\"}")
    );
    assert_eq!(label_values_selector("query_result(up)"), None);
}

/// A fresh directory under the target dir's tmp (removed at the start of
/// the next run), so a failing run leaves its rules file to read.
fn tempdir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboards-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
