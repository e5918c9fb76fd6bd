//! What the tests of the shipped configuration share: the repository root,
//! the Grafana dashboards with their queries, Grafana's variables replaced
//! by what Prometheus accepts, the metric names a PromQL expression
//! selects, and the names the exporters in this tree serve (from their
//! golden files and sources). Used by `dashboards.rs` and `config.rs`
//! (static checks) and `stack.rs` (against a live Prometheus).

// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oxmon_testkit::serde_json::{self, Value};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// One dashboard file.
pub struct Dashboard {
    /// The file name (`node.json`).
    pub file: String,
    /// The file's text.
    pub text: String,
    /// The parsed JSON.
    pub json: Value,
}

impl Dashboard {
    pub fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or("")
    }

    /// Every panel, rows included, and the panels inside collapsed rows.
    pub fn panels(&self) -> Vec<&Value> {
        fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
            for p in list.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                out.push(p);
                walk(&p["panels"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.json["panels"], &mut out);
        out
    }

    pub fn variables(&self) -> &[Value] {
        self.json["templating"]["list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn variable(&self, name: &str) -> Option<&Value> {
        self.variables().iter().find(|v| v["name"] == name)
    }

    /// Every query with where it comes from: panel targets, annotation
    /// queries and the series selectors of `label_values(...)` variables.
    pub fn queries(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in self.panels() {
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let place = format!(
                    "panel {:?} target {}",
                    p["title"].as_str().unwrap_or(""),
                    t["refId"].as_str().unwrap_or("")
                );
                out.push((place, t["expr"].as_str().unwrap_or("").to_string()));
            }
        }
        for a in self.json["annotations"]["list"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if let Some(expr) = a["expr"].as_str() {
                out.push((format!("annotation {:?}", a["name"]), expr.to_string()));
            }
        }
        for v in self.variables() {
            if v["type"] == "query" {
                let q = variable_query(v);
                let selector = label_values_selector(&q).unwrap_or_else(|| {
                    panic!(
                        "{}: variable {}: not label_values(…): {q}",
                        self.file, v["name"]
                    )
                });
                out.push((format!("variable {}", v["name"]), selector));
            }
        }
        out
    }
}

pub fn dashboards() -> Vec<Dashboard> {
    let files = files_with_ext(&root().join("grafana/dashboards"), "json");
    assert!(!files.is_empty(), "no grafana/dashboards/*.json");
    files
        .into_iter()
        .map(|path| {
            let text = read(&path);
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            Dashboard { file, text, json }
        })
        .collect()
}

/// A query variable's query: a string, or the editor's `{"query": …}`.
pub fn variable_query(v: &Value) -> String {
    match &v["query"] {
        Value::String(s) => s.clone(),
        q => q["query"].as_str().unwrap_or("").to_string(),
    }
}

/// `label_values(SELECTOR, label)` → `SELECTOR`.
pub fn label_values_selector(q: &str) -> Option<String> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    let label = label.trim();
    if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(selector.trim().to_string())
}

/// Replaces Grafana's variables with what promtool can parse: ranges with
/// durations, template variables (always used in regex matchers) with
/// `.*`. Fails on a variable the dashboard does not define.
pub fn substitute(expr: &str, defined: &BTreeSet<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let name = braced[..end].split(':').next().unwrap_or("");
            (name, end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = match name {
            "__rate_interval" | "__interval" => "1m",
            "__range" => "1d",
            n if defined.contains(n) => ".*",
            n => return Err(format!("undefined variable ${n} in {expr}")),
        };
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}
/// Index of the quote closing the string literal that starts at `i`.
pub fn skip_string(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() && bytes[j] != quote {
        if bytes[j] == b'\\' && quote != b'`' {
            j += 1;
        }
        j += 1;
    }
    j
}

pub fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}
pub const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
pub const KEYWORDS: [&str; 9] = [
    "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start",
];
pub const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects: identifiers outside label
/// matchers, ranges, strings and grouping lists that are not functions,
/// aggregations or keywords.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    // Drop strings, {…} and […] first.
    let bytes = expr.as_bytes();
    let mut plain = String::new();
    let (mut braces, mut brackets) = (0, 0);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                plain.push(' ');
            }
            b'{' => braces += 1,
            b'}' => braces -= 1,
            b'[' => brackets += 1,
            b']' => brackets -= 1,
            _ if braces == 0 && brackets == 0 => plain.push(c as char),
            _ => {}
        }
        if c == b'{' || c == b'[' {
            plain.push(' ');
        }
        i += 1;
    }
    let p = plain.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        if c.is_ascii_digit() || (c == b'.' && p.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < p.len() && (p[i].is_ascii_alphanumeric() || p[i] == b'.' || p[i] == b'_') {
                i += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == b'_' || c == b':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < p.len() && is_ident(p[i]) {
            i += 1;
        }
        let word = &plain[start..i];
        let mut j = i;
        while j < p.len() && p[j].is_ascii_whitespace() {
            j += 1;
        }
        let lower = word.to_ascii_lowercase();
        if GROUPING.contains(&word) {
            if p.get(j) == Some(&b'(') {
                i = plain[j..].find(')').map_or(p.len(), |e| j + e + 1);
            }
            continue;
        }
        if p.get(j) == Some(&b'(')
            || AGGREGATIONS.contains(&word)
            || KEYWORDS.contains(&lower.as_str())
        {
            continue;
        }
        names.insert(word.to_string());
    }
    names
}

/// String literals in `text` that are a whole metric name starting with
/// `prefix` (`"node_load1"`).
fn literal_names(text: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let pat = format!("\"{prefix}");
    let mut from = 0;
    while let Some(pos) = text[from..].find(&pat).map(|p| p + from) {
        let start = pos + 1;
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |e| e + start);
        if text[end..].starts_with('"') && end > start + prefix.len() {
            out.insert(text[start..end].to_string());
        }
        from = start;
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of a Rust source fragment, escapes undone.
fn string_literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => s.extend(chars.next()),
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// The body of `const NAME: … = &[ … ];` in a Rust source.
fn const_table<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("const {name}:"))
        .unwrap_or_else(|| panic!("no const {name}"));
    let body = &text[start..];
    let open = body
        .find("&[")
        .unwrap_or_else(|| panic!("const {name}: no &["));
    let close = body
        .find("\n];")
        .unwrap_or_else(|| panic!("const {name}: no ];"));
    &body[open + 2..close]
}

/// Metric names the exporters in this tree serve, and the names the
/// shipped recording rules record, plus Prometheus's own series.
pub fn known_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    // oxmon-node: the golden exposition, and names the collectors emit
    // that the fixture cannot (filesystem statfs, timex, uname).
    let golden = read(&root().join("crates/node/tests/fixtures/golden.txt"));
    for line in golden.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_string());
            if kind == "histogram" || kind == "summary" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    for (crate_dir, prefix) in [
        ("node", "node_"),
        ("gpu", "nvidia_gpu_"),
        ("postgres", "pg_"),
    ] {
        let mut files = Vec::new();
        rust_files(
            &root().join("crates").join(crate_dir).join("src"),
            &mut files,
        );
        for f in files {
            literal_names(&read(&f), prefix, &mut names);
        }
    }
    // oxmon-sidecar: its own families (its duration families are all
    // histograms), and the application's StatsD mappings shipped in
    // deploy/sidecar.yml.
    let mut files = Vec::new();
    rust_files(&root().join("crates/sidecar/src"), &mut files);
    let mut sidecar = BTreeSet::new();
    for f in files {
        let text = read(&f);
        for prefix in ["app_", "http_", "statsd_exporter_"] {
            literal_names(&text, prefix, &mut sidecar);
        }
    }
    for name in sidecar {
        if name.ends_with("_seconds") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name);
    }
    let deploy: serde_yaml::Value = serde_yaml::from_str(&read(&root().join("deploy/sidecar.yml")))
        .expect("parse deploy/sidecar.yml");
    for m in deploy["statsd"]["mapping"]["mappings"]
        .as_sequence()
        .expect("deploy/sidecar.yml: statsd.mapping.mappings")
    {
        let name = m["name"].as_str().expect("mapping without a name");
        if m["observer_type"].as_str() == Some("histogram") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name.to_string());
    }
    // pg_settings rows are named at run time: pg_settings_<name>.
    names.insert("pg_settings_max_connections".to_string());
    // oxmon-redis: INFO fields (gauges, counters: field → suffix) and the
    // other families (suffix, help), under the default namespace `redis`.
    let redis = read(&root().join("crates/redis/src/names.rs"));
    for (table, pick) in [("GAUGES", 1), ("COUNTERS", 1), ("OTHERS", 0)] {
        let lits = string_literals(const_table(&redis, table));
        assert!(
            lits.len() % 2 == 0 && !lits.is_empty(),
            "names.rs {table}: {lits:?}"
        );
        for pair in lits.chunks(2) {
            names.insert(format!("redis_{}", pair[pick]));
        }
    }
    // Recording rules.
    for path in files_with_ext(&root().join("prometheus/rules"), "yml") {
        let doc: serde_yaml::Value = serde_yaml::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        for group in doc["groups"]
            .as_sequence()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            for rule in group["rules"]
                .as_sequence()
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                if let Some(r) = rule["record"].as_str() {
                    names.insert(r.to_string());
                }
            }
        }
    }
    // Prometheus's own.
    for n in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "ALERTS",
        "ALERTS_FOR_STATE",
    ] {
        names.insert(n.to_string());
    }
    names
}
