//! Log lines ingested per second: JSON access lines of about 200 bytes
//! read from a file into `http_requests_total`, the request duration
//! histogram and `app_log_messages_total`, by the sidecar's log source (one
//! tailer thread, so one core) and, side by side on the same file, by
//! `mtail --one_shot` with a program doing the same counting (written
//! below; Debian package `mtail`).
//!
//! Run: `nice cargo bench -p oxmon-sidecar --bench logs` (optionally
//! `-- --lines 2000000 --runs 3`, `--no-mtail` for the sidecar alone). For the sidecar it times from `start`
//! until every line is counted and reads the tailer thread's CPU time from
//! /proc; for mtail it times the process and reads its CPU time from the
//! shell's `times`. Both read the file from the page cache. Both outputs
//! are checked: every line counted once.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxmon_sidecar::logs::{self, LogsConfig};
use oxmon_sidecar::store::{Limits, Store};

const ROUTES: [&str; 4] = [
    "/users/{id}",
    "/v1/models/{model}/predict",
    "/health",
    "/static/*",
];

const MTAIL_PROGRAM: &str = r#"
counter app_log_messages_total by level
counter http_requests_total by method, route, status
histogram http_request_duration_seconds by method, route buckets 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0

/"level":"(?P<level>[a-z]+)"/ {
  app_log_messages_total[$level]++
}

/"method":"(?P<method>[A-Z]+)","path":"(?P<path>[^"?]*)[^"]*","status":(?P<status>\d{3}),"duration_ms":(?P<ms>\d+(\.\d+)?)/ {
  $path =~ /^\/users\/[^\/]+\/?$/ {
    http_requests_total[$method]["/users/{id}"][$status]++
    http_request_duration_seconds[$method]["/users/{id}"] = $ms / 1000.0
  }
  $path =~ /^\/v1\/models\/[^\/]+\/predict\/?$/ {
    http_requests_total[$method]["/v1/models/{model}/predict"][$status]++
    http_request_duration_seconds[$method]["/v1/models/{model}/predict"] = $ms / 1000.0
  }
  $path =~ /^\/health\/?$/ {
    http_requests_total[$method]["/health"][$status]++
    http_request_duration_seconds[$method]["/health"] = $ms / 1000.0
  }
  $path =~ /^\/static(\/.*)?$/ {
    http_requests_total[$method]["/static/*"][$status]++
    http_request_duration_seconds[$method]["/static/*"] = $ms / 1000.0
  }
  $path !~ /^(\/users\/[^\/]+\/?|\/v1\/models\/[^\/]+\/predict\/?|\/health\/?|\/static(\/.*)?)$/ {
    http_requests_total[$method]["other"][$status]++
    http_request_duration_seconds[$method]["other"] = $ms / 1000.0
  }
}
"#;

struct Args {
    lines: usize,
    runs: usize,
    mtail: bool,
}

fn argv_has(flag: &str) -> bool {
    std::env::args().any(|a| a == flag)
}

fn args() -> Args {
    let mut a = Args {
        lines: 1_000_000,
        runs: 3,
        mtail: !argv_has("--no-mtail"),
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        match w[0].as_str() {
            "--lines" => a.lines = w[1].parse().expect("--lines N"),
            "--runs" => a.runs = w[1].parse().expect("--runs N"),
            _ => {}
        }
    }
    a
}

/// Writes `n` access lines; returns the average line length.
fn write_log(path: &Path, n: usize) -> f64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 42;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let mut bytes = 0;
    for i in 0..n {
        let method = ["GET", "GET", "GET", "POST", "PUT", "DELETE"][next(6) as usize];
        let path = match next(10) {
            0..=4 => format!("/users/{}", next(100_000)),
            5..=6 => format!(
                "/v1/models/{}/predict",
                ["resnet", "bert", "gpt"][next(3) as usize]
            ),
            7 => "/health".to_string(),
            8 => format!("/static/app.{}.js", next(50)),
            _ => format!("/search?q={}", next(1000)),
        };
        let status = [200, 200, 200, 201, 204, 404, 500, 503][next(8) as usize];
        let level = if status >= 500 { "error" } else { "info" };
        let line = format!(
            r#"{{"time":"2024-05-01T10:00:{:02}.{:03}Z","level":"{level}","method":"{method}","path":"{path}","status":{status},"duration_ms":{}.{:03},"bytes":{},"trace_id":"{:032x}","ua":"curl/8.5"}}"#,
            i % 60,
            i % 1000,
            next(800),
            next(1000),
            next(100_000),
            (u128::from(next(u64::MAX)) << 64) | u128::from(next(u64::MAX)),
        );
        bytes += line.len() + 1;
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
    bytes as f64 / n as f64
}

/// CPU seconds of this process's thread named `name`.
fn thread_cpu(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = after.split_whitespace().collect();
            let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
                + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            return ticks / 100.0;
        }
    }
    0.0
}

fn sum_family(store: &Store, name: &str) -> f64 {
    let mut fams = Vec::new();
    store.collect(Instant::now(), &mut fams);
    fams.iter()
        .filter(|f| f.name == name)
        .flat_map(|f| f.metrics.iter())
        .map(|m| match &m.value {
            oxmon_core::metrics::Value::Single(v) => *v,
            _ => 0.0,
        })
        .sum()
}

/// (wall seconds, CPU seconds) for the sidecar's log source.
fn run_sidecar(path: &Path, lines: usize) -> (f64, f64) {
    let mut section = LogsConfig::new(vec![path.display().to_string()]);
    section.from_beginning = true;
    section.http.routes = ROUTES.iter().map(|r| r.to_string()).collect();
    let store = Arc::new(Store::new(Limits::default()));
    let started = Instant::now();
    let handle = logs::start(&section, store.clone()).expect("start the log source");
    let deadline = started + Duration::from_secs(600);
    let mut counted;
    loop {
        counted = sum_family(&store, "app_log_messages_total");
        if counted >= lines as f64 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = thread_cpu("logs-tailer");
    handle.stop();
    assert_eq!(counted, lines as f64, "the sidecar counted every line once");
    assert_eq!(sum_family(&store, "http_requests_total"), lines as f64);
    (wall, cpu)
}

/// (wall seconds, CPU seconds) for mtail --one_shot.
fn run_mtail(dir: &Path, path: &Path, lines: usize) -> Option<(f64, f64)> {
    let progs = dir.join("progs");
    std::fs::create_dir_all(&progs).unwrap();
    std::fs::write(progs.join("http.mtail"), MTAIL_PROGRAM).unwrap();
    let out = dir.join("mtail.out");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0);
    let script = format!(
        "mtail --progs {} --logs {} --one_shot --one_shot_format=prometheus --address 127.0.0.1 --port {port} > {} 2>/dev/null; times",
        progs.display(),
        path.display(),
        out.display()
    );
    let started = Instant::now();
    let result = Command::new("bash").args(["-c", &script]).output().ok()?;
    let wall = started.elapsed().as_secs_f64();
    // `times`: the shell's user and system time, then its children's.
    let times = String::from_utf8_lossy(&result.stdout).to_string();
    let children = times.lines().nth(1)?;
    let cpu: f64 = children.split_whitespace().map(minutes_seconds).sum();
    let text = std::fs::read_to_string(&out).ok()?;
    let counted: f64 = text
        .lines()
        .filter(|l| l.starts_with("app_log_messages_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, lines as f64, "mtail counted every line once");
    Some((wall, cpu))
}

/// `1m2.345s` → 62.345.
fn minutes_seconds(t: &str) -> f64 {
    let (m, s) = t.trim_end_matches('s').split_once('m').unwrap_or(("0", t));
    m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let avg = write_log(&path, a.lines);
    println!(
        "{} JSON access lines, {avg:.0} bytes each on average; load average before: {}",
        a.lines,
        loadavg()
    );
    let n = a.lines as f64;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..a.runs {
        let (wall, cpu) = run_sidecar(&path, a.lines);
        println!(
            "run {run}: oxmon-sidecar {wall:.3} s wall, {cpu:.2} s CPU: {:.0} lines/s, {:.0} lines per CPU second",
            n / wall,
            n / cpu.max(0.01)
        );
        ours.push(n / wall);
        if !a.mtail {
            continue;
        }
        match run_mtail(dir.path(), &path, a.lines) {
            Some((wall, cpu)) => {
                println!(
                    "run {run}: mtail         {wall:.3} s wall, {cpu:.2} s CPU: {:.0} lines/s, {:.0} lines per CPU second",
                    n / wall,
                    n / cpu.max(0.01)
                );
                theirs.push((n / wall, n / cpu.max(0.01)));
            }
            None => println!("run {run}: mtail did not run (Debian package mtail)"),
        }
    }
    let ours = median(ours);
    println!("oxmon-sidecar median: {ours:.0} lines/s on one thread");
    if !theirs.is_empty() {
        let wall = median(theirs.iter().map(|t| t.0).collect());
        let cpu = median(theirs.iter().map(|t| t.1).collect());
        println!(
            "mtail median: {wall:.0} lines/s ({cpu:.0} per CPU second); ratio oxmon-sidecar / mtail: {:.1}x",
            ours / wall
        );
    }
    println!("load average after: {}", loadavg());
}
