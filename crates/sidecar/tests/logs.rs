//! Log tailing end to end: real files written, rotated by rename (the old
//! file still written after the rename), truncated, with partial, malformed
//! and overlong lines, in JSON, regex, Kubernetes CRI and Docker json-file
//! form, read by the real `oxmon-sidecar` binary and checked line-exact
//! against `/metrics`: every line counted once, none skipped. Configured
//! metrics (filters, nested fields) and reconfiguration run through the
//! library's `start` on real files and threads.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxmon_core::encode::{encode, Format};
use oxmon_sidecar::logs::{self, LogsConfig};
use oxmon_sidecar::store::{Limits, Store};
use oxmon_testkit::{free_port, wait_until, ExporterProcess, Exposition};

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-sidecar");

/// The sidecar with log flags; StatsD on a free port so it cannot clash.
fn sidecar(log_args: &[String]) -> ExporterProcess {
    let port = free_port();
    let mut args = vec![
        format!("--statsd.listen-udp=127.0.0.1:{port}"),
        format!("--statsd.listen-tcp=127.0.0.1:{port}"),
    ];
    args.extend_from_slice(log_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ExporterProcess::start(BIN, &args, &[])
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn write(f: &mut File, text: &str) {
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
}

fn sum(m: &Exposition, name: &str) -> f64 {
    m.samples(name).iter().map(|s| s.value).sum()
}

/// Waits until the messages and parse errors counted reach the expected
/// totals, then checks a moment later that they did not go past them.
fn settle(scrape: impl Fn() -> Exposition, messages: f64, errors: f64) -> Exposition {
    let reached = wait_until(Duration::from_secs(15), || {
        let m = scrape();
        (sum(&m, "app_log_messages_total") >= messages
            && sum(&m, "app_log_parse_errors_total") >= errors)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(400));
    let m = scrape();
    let got = (
        sum(&m, "app_log_messages_total"),
        sum(&m, "app_log_parse_errors_total"),
    );
    assert!(
        reached.is_some() && got == (messages, errors),
        "expected {messages} messages and {errors} parse errors, got {got:?}"
    );
    m
}

fn access(method: &str, path: &str, status: u16, ms: f64) -> String {
    format!(
        r#"{{"time":"2024-05-01T10:00:00Z","level":"info","method":"{method}","path":"{path}","status":{status},"duration_ms":{ms},"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}}"#
    )
}

fn requests(m: &Exposition, method: &str, route: &str, status: &str) -> Option<f64> {
    m.value(
        "http_requests_total",
        &[("method", method), ("route", route), ("status", status)],
    )
}

#[test]
fn json_lines_through_rename_rotation_truncation_and_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    let label = app.to_str().unwrap().to_string();
    // Present before the start, ending in a partial line: none of it counts.
    let mut w = append(&app);
    write(
        &mut w,
        &format!(
            "{}\n{}\n{{\"level\":",
            access("GET", "/old", 200, 1.0),
            access("GET", "/old", 200, 1.0)
        ),
    );

    let s = sidecar(&[
        format!("--logs.path={}/*.log", dir.path().display()),
        "--logs.route=/users/{id}".into(),
        "--logs.route=/health".into(),
    ]);
    let scrape = || s.scrape();

    // The rest of the partial line, 6 requests, 2 malformed lines, a blank
    // line, and a line written in two pieces.
    let mut text = String::from("\"error\"}\n");
    for (method, path, status, ms) in [
        ("GET", "/users/1", 200, 5.0),
        ("get", "/users/2?x=1", 200, 20.0),
        ("POST", "/users/3", 500, 150.0),
        ("GET", "/health", 200, 1.0),
        ("DELETE", "/admin", 403, 2.0),
        ("BREW", "/users/4", 418, 3.0),
    ] {
        text.push_str(&access(method, path, status, ms));
        text.push('\n');
    }
    text.push_str("this is not json\n{\"method\":\"GET\",\n\n");
    write(&mut w, &text);
    let half = access("GET", "/users/5", 200, 7.0);
    write(&mut w, &half[..40]);
    std::thread::sleep(Duration::from_millis(300));
    write(&mut w, &format!("{}\n", &half[40..]));

    let m = settle(scrape, 7.0, 2.0);
    assert_eq!(requests(&m, "GET", "/users/{id}", "200"), Some(3.0));
    assert_eq!(requests(&m, "POST", "/users/{id}", "500"), Some(1.0));
    assert_eq!(requests(&m, "GET", "/health", "200"), Some(1.0));
    assert_eq!(requests(&m, "DELETE", "other", "403"), Some(1.0));
    assert_eq!(requests(&m, "other", "/users/{id}", "418"), Some(1.0));
    assert_eq!(requests(&m, "GET", "/old", "200"), None);
    assert_eq!(
        m.value("app_log_parse_errors_total", &[("file", &label)]),
        Some(2.0)
    );
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "info")]),
        Some(7.0)
    );
    let labels = [("method", "GET"), ("route", "/users/{id}")];
    assert_eq!(
        m.value("http_request_duration_seconds_count", &labels),
        Some(3.0)
    );
    let total = m
        .value("http_request_duration_seconds_sum", &labels)
        .unwrap();
    assert!((total - 0.032).abs() < 1e-9, "{total}");
    assert_eq!(
        m.value(
            "http_request_duration_seconds_bucket",
            &[("method", "GET"), ("route", "/users/{id}"), ("le", "0.005")]
        ),
        Some(1.0)
    );
    // Each line's trace id becomes its bucket's exemplar, with the line's
    // own duration as the value, in OpenMetrics only.
    let om = s.get_with(
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    let exemplars: Vec<&str> = om
        .body
        .lines()
        .filter(|l| {
            l.starts_with(
                "http_request_duration_seconds_bucket{method=\"GET\",route=\"/users/{id}\"",
            )
        })
        .filter_map(|l| l.split_once(" # ").map(|(_, e)| e))
        .collect();
    let trace = "{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"}";
    for value in ["0.005", "0.007", "0.02"] {
        let want = format!("{trace} {value} ");
        assert!(
            exemplars.iter().any(|e| e.starts_with(&want)),
            "no exemplar {want}in {exemplars:?}\n{}",
            om.body
        );
    }
    assert_eq!(exemplars.len(), 3, "{exemplars:?}");
    assert!(!s.get("/metrics").body.contains(" # {"));

    // Rotation by rename to a name the glob does not match; the application
    // keeps writing to the old file for a moment, then a new file appears.
    let rotated = dir.path().join("app.log.1");
    std::fs::rename(&app, &rotated).unwrap();
    write(
        &mut w,
        &format!("{}\n", access("GET", "/users/6", 200, 1.0)).repeat(5),
    );
    let mut w2 = append(&app);
    write(
        &mut w2,
        &format!("{}\n", access("PUT", "/users/7", 201, 1.0)).repeat(7),
    );
    write(
        &mut w,
        &format!("{}\nnot json either\n", access("GET", "/users/8", 200, 1.0)).repeat(2),
    );
    let m = settle(scrape, 7.0 + 5.0 + 7.0 + 2.0, 4.0);
    assert_eq!(requests(&m, "GET", "/users/{id}", "200"), Some(10.0));
    assert_eq!(requests(&m, "PUT", "/users/{id}", "201"), Some(7.0));
    // The old file's lines keep the label of the path it was found at.
    assert_eq!(
        m.value("app_log_parse_errors_total", &[("file", &label)]),
        Some(4.0)
    );

    // Rotation by rename to a name the glob matches: the same file, not a
    // new one; both keep being read.
    let renamed = dir.path().join("app-1.log");
    std::fs::rename(&app, &renamed).unwrap();
    let mut w3 = append(&app);
    write(
        &mut w2,
        &format!("{}\n", access("PUT", "/users/7", 201, 1.0)).repeat(3),
    );
    write(
        &mut w3,
        &format!("{}\n", access("PATCH", "/users/9", 200, 1.0)).repeat(4),
    );
    let m = settle(scrape, 21.0 + 3.0 + 4.0, 4.0);
    assert_eq!(requests(&m, "PUT", "/users/{id}", "201"), Some(10.0));
    assert_eq!(requests(&m, "PATCH", "/users/{id}", "200"), Some(4.0));

    // Truncation (copytruncate): fewer bytes than were read follow.
    w3.set_len(0).unwrap();
    write(
        &mut w3,
        &format!("{}\n", access("HEAD", "/health", 204, 1.0)).repeat(2),
    );
    let m = settle(scrape, 28.0 + 2.0, 4.0);
    assert_eq!(requests(&m, "HEAD", "/health", "204"), Some(2.0));

    // An overlong line is one parse error, and the next line still counts.
    write(
        &mut w3,
        &format!("{{\"pad\":\"{}\"}}\n", "x".repeat(70_000)),
    );
    write(
        &mut w3,
        &format!("{}\n", access("HEAD", "/health", 204, 1.0)),
    );
    let m = settle(scrape, 31.0, 5.0);
    assert_eq!(requests(&m, "HEAD", "/health", "204"), Some(3.0));

    // A new file matching the glob is read from its beginning.
    let mut other = append(&dir.path().join("other.log"));
    write(
        &mut other,
        &format!("{}\n", access("OPTIONS", "/x", 200, 1.0)).repeat(3),
    );
    let m = settle(scrape, 34.0, 5.0);
    assert_eq!(requests(&m, "OPTIONS", "other", "200"), Some(3.0));
}

#[test]
fn regex_lines_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut w = append(&path);
    write(
        &mut w,
        "GET /users/1 200 0.010 WARN\nPOST /users/2 503 1.500 ERROR\nnonsense\n",
    );
    let s = sidecar(&[
        format!("--logs.path={}", path.display()),
        "--logs.format=regex".into(),
        r"--logs.regex=^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<duration>[\d.]+) (?P<level>\w+)$".into(),
        "--logs.from-beginning".into(),
        "--logs.route=/users/{id}".into(),
    ]);
    let scrape = || s.scrape();
    let m = settle(scrape, 2.0, 1.0);
    assert_eq!(requests(&m, "GET", "/users/{id}", "200"), Some(1.0));
    assert_eq!(requests(&m, "POST", "/users/{id}", "503"), Some(1.0));
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "warn")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "error")]),
        Some(1.0)
    );
    // Seconds come from `duration` only when configured: no duration here.
    assert!(m.family("http_request_duration_seconds").is_none());
    write(&mut w, "GET /users/3 200 0.020 INFO\nGET /users/3 200\n");
    let m = settle(scrape, 3.0, 2.0);
    assert_eq!(requests(&m, "GET", "/users/{id}", "200"), Some(2.0));
}

/// `<time> <stream> <tag> <message>` as the kubelet writes it.
fn cri(stream: &str, tag: &str, message: &str) -> String {
    format!("2024-05-01T10:00:00.123456789Z {stream} {tag} {message}\n")
}

#[test]
fn cri_lines_in_pod_directories_through_kubelet_rotation() {
    let root = tempfile::tempdir().unwrap();
    let container = root.path().join("default_api-1_uid/api");
    std::fs::create_dir_all(&container).unwrap();
    let log = container.join("0.log");
    let mut w = append(&log);
    let s = sidecar(&[
        format!("--logs.path={}/*/*/*.log", root.path().display()),
        "--logs.format=cri".into(),
        "--logs.route=/v1/models/{model}/predict".into(),
    ]);
    let scrape = || s.scrape();
    let predict = access("POST", "/v1/models/resnet/predict", 200, 42.0);
    let (head, tail) = predict.split_at(30);
    let mut text = cri("stdout", "F", &predict);
    text.push_str(&cri("stdout", "P", head));
    text.push_str(&cri("stderr", "F", r#"{"level":"ERROR","msg":"boom"}"#));
    text.push_str(&cri("stdout", "F", tail));
    text.push_str(&cri("stdout", "F", "plain text"));
    text.push_str("not a cri line\n");
    write(&mut w, &text);
    let m = settle(scrape, 3.0, 2.0);
    assert_eq!(
        requests(&m, "POST", "/v1/models/{model}/predict", "200"),
        Some(2.0)
    );
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "error")]),
        Some(1.0)
    );

    // The kubelet renames 0.log and starts a new one; lines written to the
    // old file after the rename still count.
    std::fs::rename(&log, container.join("0.log.20240501-100000")).unwrap();
    write(&mut w, &cri("stdout", "F", &predict));
    let mut w2 = append(&log);
    write(&mut w2, &cri("stdout", "F", &predict).repeat(3));
    let m = settle(scrape, 7.0, 2.0);
    assert_eq!(
        requests(&m, "POST", "/v1/models/{model}/predict", "200"),
        Some(6.0)
    );

    // A pod that starts later is found in its new directory.
    let later = root.path().join("default_api-2_uid/api");
    std::fs::create_dir_all(&later).unwrap();
    write(
        &mut append(&later.join("0.log")),
        &cri("stdout", "F", &predict).repeat(2),
    );
    let m = settle(scrape, 9.0, 2.0);
    assert_eq!(
        requests(&m, "POST", "/v1/models/{model}/predict", "200"),
        Some(8.0)
    );
}

fn docker(stream: &str, log: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"log": log, "stream": stream, "time": "2024-05-01T10:00:00.1Z"})
    )
}

#[test]
fn docker_json_file_lines_with_split_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abc-json.log");
    let mut w = append(&path);
    let s = sidecar(&[
        format!("--logs.path={}/*-json.log", dir.path().display()),
        "--logs.format=docker".into(),
    ]);
    let scrape = || s.scrape();
    let line = access("GET", "/a", 404, 3.0);
    let (head, tail) = line.split_at(50);
    let mut text = docker("stdout", &format!("{line}\n"));
    text.push_str(&docker("stdout", head));
    text.push_str(&docker("stderr", "{\"level\":\"warn\"}\n"));
    text.push_str(&docker("stdout", &format!("{tail}\n")));
    text.push_str(&docker("stdout", "not json\n"));
    text.push_str("{\"stream\":\"stdout\"}\n");
    write(&mut w, &text);
    let m = settle(scrape, 3.0, 2.0);
    assert_eq!(requests(&m, "GET", "other", "404"), Some(2.0));
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "warn")]),
        Some(1.0)
    );
}

#[test]
fn bad_log_flags_are_reported_by_check_config() {
    let out = std::process::Command::new(BIN)
        .args([
            "--logs.path=/tmp/x.log",
            "--logs.format=regex",
            "--check-config",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("logs.regex") && err.contains("needs a regex"),
        "{err}"
    );
}

/// A store fed by `logs::start`, read back as exposition text.
struct Source {
    store: Arc<Store>,
    handle: Option<logs::Handle>,
}

impl Source {
    fn start(yaml: &str) -> Source {
        let section: LogsConfig = serde_yaml::from_str(yaml).unwrap();
        let store = Arc::new(Store::new(Limits::default()));
        let handle = logs::start(&section, store.clone()).unwrap();
        Source {
            store,
            handle: Some(handle),
        }
    }

    fn scrape(&self) -> Exposition {
        let mut families = Vec::new();
        self.store.collect(Instant::now(), &mut families);
        oxmon_core::metrics::normalize(&mut families);
        let mut text = Vec::new();
        encode(&families, Format::Text, &mut text);
        oxmon_testkit::parse(&String::from_utf8(text).unwrap())
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}

#[test]
fn configured_metrics_with_filters_and_nested_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut w = append(&path);
    let source = Source::start(&format!(
        r#"
paths: ["{}"]
fields:
  path: [request.path]
  method: request.method
  status: response.status
  duration_ms: [metadata.duration_ms]
http:
  routes: ["/login"]
metrics:
  - name: app_auth_failures_total
    type: counter
    help: Failed logins.
    match: {{event: login_failed}}
    labels: {{reason: reason}}
  - name: app_bytes_total
    type: counter
    value: bytes
    match_regex: {{request.path: "/download/.*"}}
  - name: model_inference_duration_seconds
    type: histogram
    value: metadata.inference_ms
    scale: 0.001
    buckets: [0.01, 0.1, 1]
    labels: {{model: metadata.model}}
  - name: model_queue_length
    type: gauge
    value: queue.length
"#,
        path.display()
    ));
    let lines = [
        r#"{"event":"login_failed","reason":"bad_password","request":{"method":"POST","path":"/login"},"response":{"status":401},"metadata":{"duration_ms":8}}"#,
        r#"{"event":"login_failed","reason":"bad_password"}"#,
        r#"{"event":"login_failed","reason":"locked"}"#,
        r#"{"event":"login_ok","reason":"x"}"#,
        r#"{"request":{"path":"/download/a"},"bytes":1000}"#,
        r#"{"request":{"path":"/download/b"},"bytes":"24"}"#,
        r#"{"request":{"path":"/upload"},"bytes":5}"#,
        r#"{"request":{"path":"/download/c"},"bytes":"lots"}"#,
        r#"{"metadata":{"model":"resnet","inference_ms":20}}"#,
        r#"{"metadata":{"model":"resnet","inference_ms":400}}"#,
        r#"{"metadata":{"model":"bert","inference_ms":5}}"#,
        r#"{"queue":{"length":7}}"#,
        r#"{"queue":{"length":3}}"#,
    ];
    write(&mut w, &(lines.join("\n") + "\n"));
    let m = settle(|| source.scrape(), lines.len() as f64, 0.0);
    assert_eq!(
        m.value("app_auth_failures_total", &[("reason", "bad_password")]),
        Some(2.0)
    );
    assert_eq!(
        m.value("app_auth_failures_total", &[("reason", "locked")]),
        Some(1.0)
    );
    assert_eq!(m.samples("app_auth_failures_total").len(), 2);
    assert_eq!(m.value("app_bytes_total", &[]), Some(1024.0));
    assert_eq!(
        m.value(
            "app_log_field_errors_total",
            &[("metric", "app_bytes_total")]
        ),
        Some(1.0)
    );
    let resnet = [("model", "resnet")];
    assert_eq!(
        m.value("model_inference_duration_seconds_count", &resnet),
        Some(2.0)
    );
    assert_eq!(
        m.value(
            "model_inference_duration_seconds_bucket",
            &[("model", "resnet"), ("le", "0.1")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "model_inference_duration_seconds_bucket",
            &[("model", "bert"), ("le", "0.01")]
        ),
        Some(1.0)
    );
    assert_eq!(m.value("model_queue_length", &[]), Some(3.0));
    assert_eq!(requests(&m, "POST", "/login", "401"), Some(1.0));
    assert_eq!(
        m.value(
            "http_request_duration_seconds_sum",
            &[("method", "POST"), ("route", "/login")]
        ),
        Some(0.008)
    );
}

#[test]
fn reconfiguration_keeps_positions_and_refuses_bad_sections() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    let mut wa = append(&a);
    let mut wb = append(&b);
    write(&mut wb, "{\"level\":\"info\"}\n");
    let section = |paths: &[&Path], max: usize| -> LogsConfig {
        let mut c = LogsConfig::new(paths.iter().map(|p| p.display().to_string()).collect());
        c.max_line_bytes = max;
        c
    };
    let source = Source::start(&format!(
        "paths: [\"{}\"]\nmax_line_bytes: 100\n",
        a.display()
    ));
    let handle = source.handle.as_ref().unwrap();
    write(&mut wa, &"{\"level\":\"info\"}\n".repeat(3));
    settle(|| source.scrape(), 3.0, 0.0);

    // Bad sections are refused; the source keeps running.
    let mut bad = section(&[&a], 100);
    bad.format = logs::Format::Regex;
    assert!(handle.reconfigure(&bad).is_err());

    // b.log joins and is read from its end (it was there before); a.log
    // keeps its position.
    handle.reconfigure(&section(&[&a, &b], 40)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    write(&mut wa, &"{\"level\":\"info\"}\n".repeat(2));
    write(&mut wb, "{\"level\":\"debug\"}\n");
    // Longer than the new maximum: a parse error, written in two pieces
    // so the partial line is bounded too.
    write(&mut wb, &format!("{{\"level\":\"{}", "x".repeat(30)));
    std::thread::sleep(Duration::from_millis(200));
    write(
        &mut wb,
        &format!("{}\"}}\n{{\"level\":\"debug\"}}\n", "x".repeat(30)),
    );
    let m = settle(|| source.scrape(), 7.0, 1.0);
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "info")]),
        Some(5.0)
    );
    assert_eq!(
        m.value("app_log_messages_total", &[("level", "debug")]),
        Some(2.0)
    );
    assert_eq!(
        m.value(
            "app_log_parse_errors_total",
            &[("file", b.to_str().unwrap())]
        ),
        Some(1.0)
    );
}

/// Lines written in random pieces (a piece may end anywhere in a line),
/// with pauses so the tailer sees partial lines, across renames: every
/// line is counted exactly once.
#[test]
fn random_write_splits_across_rotations_count_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.log");
    let source = Source::start(&format!("paths: [\"{}\"]\n", path.display()));
    let mut state: u64 = 0x5eed_1234;
    let mut random = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let (mut good, mut bad) = (0.0, 0.0);
    let mut text = String::new();
    for i in 0..3000 {
        if random(10) == 0 {
            text.push_str("{\"broken\":\n");
            bad += 1.0;
        } else {
            text.push_str(&access("GET", &format!("/users/{i}"), 200, 1.0));
            text.push('\n');
            good += 1.0;
        }
    }
    let mut w = append(&path);
    let mut rest = text.as_str();
    let mut rotations = 0;
    while !rest.is_empty() {
        let n = (1 + random(400)).min(rest.len());
        // Split on a character boundary (the text is ASCII anyway).
        write(&mut w, &rest[..n]);
        rest = &rest[n..];
        if random(20) == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        // Rotate only between lines, as a logger reopening its file does.
        if rest.len() > 1000 && rotations < 3 && random(200) == 0 {
            if let Some(k) = rest.find('\n') {
                write(&mut w, &rest[..=k]);
                rest = &rest[k + 1..];
                rotations += 1;
                std::fs::rename(&path, dir.path().join(format!("split.log.{rotations}"))).unwrap();
                w = append(&path);
            }
        }
    }
    assert_eq!(rotations, 3);
    let m = settle(|| source.scrape(), good, bad);
    assert_eq!(requests(&m, "GET", "other", "200"), Some(good));
}
