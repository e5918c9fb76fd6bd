//! Throwaway Prometheus, Alertmanager and VictoriaMetrics servers, and a
//! webhook receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::http::{http_get, http_post, http_try_get, url_encode};
use crate::util::{free_port, log_stdio, log_tail, require_program, terminate, wait_until};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process in a temp dir (its config written as `config.yml`
/// unless empty), ready when `/-/ready` says 200.
#[derive(Debug)]
struct Server {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    what: &'static str,
}

impl Server {
    fn start(
        what: &'static str,
        bin: &Path,
        config_yaml: &str,
        extra_files: &[(&str, &str)],
        args: impl Fn(&Path, u16) -> Vec<String>,
    ) -> Server {
        let dir = tempfile::Builder::new()
            .prefix(&format!("oxmon-{what}"))
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        crate::reaper::remove_on_abort(dir.path());
        let write = |name: &str, content: &str| {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
            }
            std::fs::write(&path, content)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        };
        if !config_yaml.is_empty() {
            write("config.yml", config_yaml);
        }
        for (name, content) in extra_files {
            write(name, content);
        }
        let mut last_err = String::new();
        for _ in 0..4 {
            let port = free_port();
            let log = dir.path().join(format!("{what}.log"));
            let (out, err) = log_stdio(&log);
            let mut child = Command::new(bin)
                .args(args(dir.path(), port))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            crate::reaper::kill_on_abort(child.id());
            let url = format!("http://127.0.0.1:{port}/-/ready");
            let mut exited = false;
            let ready = wait_until(READY_TIMEOUT, || {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    return Some(false);
                }
                http_try_get(&url, &[])
                    .is_ok_and(|r| r.status == 200)
                    .then_some(true)
            });
            if ready == Some(true) {
                return Server {
                    port,
                    dir,
                    child: Some(child),
                    what,
                };
            }
            terminate(&mut child, Duration::from_secs(5));
            let text = log_tail(&log, 30);
            last_err = format!(
                "{what} {} on port {port}\n--- log ---\n{text}",
                if exited { "exited" } else { "was not ready" }
            );
            if !text.contains("address already in use") {
                break;
            }
        }
        panic!("{last_err}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.what)))
            .unwrap_or_default()
    }

    fn get_json(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.url());
        let resp = http_get(&url, &[]);
        assert_eq!(resp.status, 200, "GET {url}: {} {}", resp.status, resp.body);
        serde_json::from_str(&resp.body)
            .unwrap_or_else(|e| panic!("GET {url}: invalid JSON ({e}): {}", resp.body))
    }

    /// An instant query through the Prometheus query API; returns `data`.
    fn query(&self, promql: &str) -> Value {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let url = format!("{}{path}", self.url());
        let resp = http_get(&url, &[]);
        let v: Value = serde_json::from_str(&resp.body).unwrap_or_else(|e| {
            panic!(
                "{} query {promql:?}: invalid JSON ({e}): {}",
                self.what, resp.body
            )
        });
        assert_eq!(
            v["status"], "success",
            "{} query {promql:?} failed: {}",
            self.what, resp.body
        );
        v["data"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if std::thread::panicking() {
                eprintln!(
                    "--- {} log tail ---\n{}",
                    self.what,
                    crate::util::tail(&self.log(), 20)
                );
            }
            terminate(&mut child, Duration::from_secs(10));
        }
    }
}

/// A Prometheus server with the given config (written as `config.yml`) and
/// extra files (rule files and such, relative names) in its temp dir, so
/// `rule_files: ["rules.yml"]` works. Lifecycle API enabled.
#[derive(Debug)]
pub struct Prometheus {
    /// The port.
    pub port: u16,
    server: Server,
}

impl Prometheus {
    /// Starts `prometheus` and waits for `/-/ready` (60 s); panics with the
    /// log otherwise ("prometheus not found: apt-get install prometheus").
    pub fn start(config_yaml: &str, extra_files: &[(&str, &str)]) -> Prometheus {
        Self::start_with_flags(config_yaml, extra_files, &[])
    }

    /// Like [`Prometheus::start`] with extra command-line flags
    /// (`--enable-feature=exemplar-storage`).
    pub fn start_with_flags(
        config_yaml: &str,
        extra_files: &[(&str, &str)],
        flags: &[&str],
    ) -> Prometheus {
        let bin = require_program("prometheus", "prometheus");
        let server = Server::start("prometheus", &bin, config_yaml, extra_files, |dir, port| {
            let mut args = vec![
                format!("--config.file={}", dir.join("config.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--web.enable-lifecycle".into(),
                "--log.level=info".into(),
            ];
            args.extend(flags.iter().map(|f| f.to_string()));
            args
        });
        Prometheus {
            port: server.port,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The temp dir holding `config.yml` and the extra files.
    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// GET an API path (`/api/v1/targets`) and return the JSON; panics
    /// unless 200 with valid JSON.
    pub fn api(&self, path_and_query: &str) -> Value {
        self.server.get_json(path_and_query)
    }

    /// An instant query; returns `data` (`{"resultType":…, "result":[…]}`).
    /// Panics unless the status is `success`.
    pub fn query(&self, promql: &str) -> Value {
        self.server.query(promql)
    }

    /// The `result` array of an instant query.
    pub fn query_result(&self, promql: &str) -> Vec<Value> {
        match &self.query(promql)["result"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        }
    }

    /// Repeats `query(promql)` every 200 ms until `done(&data)` holds;
    /// panics after `timeout` with the last answer.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let data = self.query(promql);
            if done(&data) {
                return data;
            }
            if Instant::now() >= end {
                panic!(
                    "query {promql:?}: condition not met after {timeout:?}; last answer: {data}"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `/api/v1/targets` `data.activeTargets`.
    pub fn active_targets(&self) -> Vec<Value> {
        match &self.api("/api/v1/targets")["data"]["activeTargets"] {
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        }
    }

    /// `/api/v1/rules` `data.groups`.
    pub fn rule_groups(&self) -> Vec<Value> {
        match &self.api("/api/v1/rules")["data"]["groups"] {
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        }
    }

    /// Rewrites `config.yml` (or another file) and POSTs `/-/reload`;
    /// panics unless the reload succeeds.
    pub fn reload_with(&self, files: &[(&str, &str)]) {
        for (name, content) in files {
            let path = self.dir().join(name);
            std::fs::write(&path, content)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
        let url = format!("{}/-/reload", self.url());
        let resp = http_post(&url, &[], &[]).unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(resp.status, 200, "reload failed: {}", resp.body);
    }
}

/// An Alertmanager with the given config (clustering off).
#[derive(Debug)]
pub struct Alertmanager {
    /// The port.
    pub port: u16,
    server: Server,
}

impl Alertmanager {
    /// Starts `prometheus-alertmanager` (or `alertmanager`) and waits for
    /// `/-/ready`; panics with the log otherwise ("prometheus-alertmanager
    /// not found: apt-get install prometheus-alertmanager").
    pub fn start(config_yaml: &str) -> Alertmanager {
        Self::start_with_files(config_yaml, &[])
    }

    /// Like [`Alertmanager::start`] with extra files (templates) in its dir.
    pub fn start_with_files(config_yaml: &str, extra_files: &[(&str, &str)]) -> Alertmanager {
        let bin = crate::util::find_program("prometheus-alertmanager")
            .or_else(|| crate::util::find_program("alertmanager"))
            .unwrap_or_else(|| {
                panic!("prometheus-alertmanager not found: apt-get install prometheus-alertmanager")
            });
        let server = Server::start(
            "alertmanager",
            &bin,
            config_yaml,
            extra_files,
            |dir, port| {
                vec![
                    format!("--config.file={}", dir.join("config.yml").display()),
                    format!("--storage.path={}", dir.join("data").display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    "--cluster.listen-address=".into(),
                ]
            },
        );
        Alertmanager {
            port: server.port,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The temp dir holding `config.yml`.
    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// GET an API path and return the JSON (panics unless 200).
    pub fn api(&self, path_and_query: &str) -> Value {
        self.server.get_json(path_and_query)
    }

    /// `/api/v2/status`.
    pub fn status(&self) -> Value {
        self.api("/api/v2/status")
    }

    /// `/api/v2/alerts` (active, silenced and inhibited).
    pub fn alerts(&self) -> Vec<Value> {
        match self.api("/api/v2/alerts") {
            Value::Array(a) => a,
            _ => Vec::new(),
        }
    }

    /// POSTs alerts (a JSON array as in `/api/v2/alerts`).
    pub fn post_alerts(&self, alerts: &Value) {
        let url = format!("{}/api/v2/alerts", self.url());
        let body = alerts.to_string();
        let resp = http_post(
            &url,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(resp.status, 200, "POST {url}: {}", resp.body);
    }
}

/// A single-node VictoriaMetrics (`victoria-metrics`) with its storage in
/// a temp dir, accepting Prometheus remote write on
/// [`VictoriaMetrics::write_url`]. Data becomes visible to queries a second
/// after it arrives (`-search.latencyOffset=1s`; the default 30 s suits
/// production, not tests).
#[derive(Debug)]
pub struct VictoriaMetrics {
    /// The port.
    pub port: u16,
    server: Server,
}

impl VictoriaMetrics {
    /// Starts `victoria-metrics` and waits for `/-/ready`; panics with the
    /// log otherwise ("victoria-metrics not found: apt-get install
    /// victoria-metrics").
    pub fn start() -> VictoriaMetrics {
        let bin = require_program("victoria-metrics", "victoria-metrics");
        let server = Server::start("victoriametrics", &bin, "", &[], |dir, port| {
            vec![
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.join("data").display()),
                "-search.latencyOffset=1s".into(),
            ]
        });
        VictoriaMetrics {
            port: server.port,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The Prometheus remote-write endpoint, `http://127.0.0.1:PORT/api/v1/write`.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// An instant query (MetricsQL, a superset of PromQL); returns `data`.
    /// Panics unless the status is `success`.
    pub fn query(&self, promql: &str) -> Value {
        self.server.query(promql)
    }
}

/// An HTTP server on a free port that answers every request 200 and records
/// the bodies of POSTs — an Alertmanager webhook receiver for tests.
#[derive(Debug)]
pub struct WebhookReceiver {
    /// The port.
    pub port: u16,
    received: Arc<Mutex<Vec<String>>>,
}

impl WebhookReceiver {
    /// Starts listening (a background thread serves until the process
    /// exits; each connection gets its own thread).
    pub fn start() -> WebhookReceiver {
        let (listener, port) = loop {
            let port = free_port();
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                break (l, port);
            }
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || serve_webhook(stream, &sink));
            }
        });
        WebhookReceiver { port, received }
    }

    /// `http://127.0.0.1:PORT/` + `path` (any path is accepted).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// The POST bodies received so far.
    pub fn received(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a received body satisfies `pred` (bodies are parsed as
    /// JSON; non-JSON bodies are `Value::String`); panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let found = wait_until(timeout, || {
            self.received().iter().find_map(|b| {
                let v = serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.clone()));
                pred(&v).then_some(v)
            })
        });
        found.unwrap_or_else(|| {
            panic!(
                "webhook: no matching notification after {timeout:?}; received: {:?}",
                self.received()
            )
        })
    }
}

fn serve_webhook(stream: TcpStream, sink: &Mutex<Vec<String>>) {
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim();
                if k == "content-length" {
                    content_length = v.parse().unwrap_or(0);
                } else if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if request_line.starts_with("POST") {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(String::from_utf8_lossy(&body).into_owned());
        }
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if writer.write_all(resp).is_err() || close {
            return;
        }
    }
}
