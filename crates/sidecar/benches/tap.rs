//! What the HTTP tap adds: latency percentiles and throughput measured by
//! `wrk` against a small application directly and through the tap, side by
//! side in one run.
//!
//! Run: `nice -n 10 cargo bench -p oxmon-sidecar --bench tap` (optionally
//! `-- --seconds 10 --connections 1,16 --rounds 3`). The application is a
//! hyper server in this process on one thread answering `GET /users/{id}`
//! with 64 bytes; the sidecar is the real binary with a route pattern, on
//! its default single runtime thread. Each connection count runs `rounds`
//! times alternating direct and tapped (so drift in the machine's load hits
//! both alike), `wrk -t1 -c<n> -d<s>s --latency`; the median of each figure
//! is reported. With one connection requests go one after another, so the
//! difference in latency is what the tap adds to each; with more, the
//! throughput shows the cost under load. The sidecar's CPU time per
//! tapped request is read from /proc. Afterwards the tap's
//! `http_requests_total` must equal the requests `wrk` completed through
//! it.

use std::convert::Infallible;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use oxmon_testkit::{free_port, ExporterProcess};

mod support;

use support::cpu_seconds;

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-sidecar");

/// What one `wrk` run reported.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    p50_us: f64,
    p99_us: f64,
    requests_per_s: f64,
    requests: f64,
    errors: f64,
}

/// Parses a wrk duration (`85.00us`, `1.23ms`, `2.00s`) into microseconds.
fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Run {
    let mut run = Run::default();
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["50%", v] => run.p50_us = micros(v).unwrap_or(f64::NAN),
            ["99%", v] => run.p99_us = micros(v).unwrap_or(f64::NAN),
            ["Requests/sec:", v] => run.requests_per_s = v.parse().unwrap_or(f64::NAN),
            [n, "requests", "in", ..] => run.requests = n.parse().unwrap_or(f64::NAN),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse().unwrap_or(0.0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|f| f.trim_end_matches(',').parse::<f64>().ok())
                    .sum::<f64>()
            }
            _ => {}
        }
    }
    run
}

fn wrk(port: u16, connections: usize, seconds: u64) -> Run {
    let out = Command::new("wrk")
        .args([
            "-t1".to_string(),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--latency".to_string(),
            format!("http://127.0.0.1:{port}/users/42"),
        ])
        .output()
        .expect("wrk not found: apt-get install wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    parse_wrk(&text)
}

/// The application: `GET` anything answers 64 bytes, on one thread.
fn start_app() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let body = Bytes::from(vec![b'x'; 64]);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        let body = body.clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    port
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut seconds = 10;
    let mut connections = vec![1usize, 16];
    let mut rounds = 3;
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--seconds" => seconds = w[1].parse().expect("--seconds N"),
            "--connections" => {
                connections = w[1]
                    .split(',')
                    .map(|n| n.parse().expect("--connections 1,16"))
                    .collect()
            }
            "--rounds" => rounds = w[1].parse().expect("--rounds N"),
            _ => {}
        }
    }
    let app = start_app();
    let tap_port = free_port();
    let sidecar = ExporterProcess::start(
        BIN,
        &[
            "--statsd.listen-udp=127.0.0.1:0",
            "--statsd.listen-tcp=",
            &format!("--tap.listen-address=127.0.0.1:{tap_port}"),
            &format!("--tap.upstream=http://127.0.0.1:{app}"),
            "--tap.route=/users/{id}",
            "--log.level=warn",
        ],
        &[],
    );
    // Warm both paths (connection pools, page faults).
    wrk(app, 4, 1);
    wrk(tap_port, 4, 1);
    let counted = || {
        sidecar
            .scrape()
            .value(
                "http_requests_total",
                &[("route", "/users/{id}"), ("status", "200")],
            )
            .unwrap_or(0.0)
    };
    let warmed = counted();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "HTTP tap overhead, wrk -t1 -d{seconds}s --latency, {rounds} rounds, {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("connections | path    | p50       | p99       | requests/s | errors");
    let mut tapped_requests = 0.0;
    let mut tap_cpu = 0.0;
    let pid = sidecar.pid().to_string();
    for &c in &connections {
        let (mut direct, mut tapped) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            direct.push(wrk(app, c, seconds));
            let cpu_before = cpu_seconds(&pid);
            let t = wrk(tap_port, c, seconds);
            tap_cpu += cpu_seconds(&pid) - cpu_before;
            tapped_requests += t.requests;
            tapped.push(t);
        }
        let mut figures = Vec::new();
        for (name, runs) in [("direct", &direct), ("tap", &tapped)] {
            let f = Run {
                p50_us: median(runs.iter().map(|r| r.p50_us).collect()),
                p99_us: median(runs.iter().map(|r| r.p99_us).collect()),
                requests_per_s: median(runs.iter().map(|r| r.requests_per_s).collect()),
                requests: 0.0,
                errors: runs.iter().map(|r| r.errors).sum(),
            };
            println!(
                "{c:>11} | {name:<7} | {:>6.0} us | {:>6.0} us | {:>10.0} | {}",
                f.p50_us, f.p99_us, f.requests_per_s, f.errors
            );
            figures.push(f);
        }
        println!(
            "{c:>11} | added   | {:>6.0} us | {:>6.0} us | {:>9.0}% |",
            figures[1].p50_us - figures[0].p50_us,
            figures[1].p99_us - figures[0].p99_us,
            (figures[1].requests_per_s / figures[0].requests_per_s - 1.0) * 100.0
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let counted = counted() - warmed;
    println!(
        "requests through the tap: wrk completed {tapped_requests}, the tap counted {counted}; sidecar CPU {:.1} us per request",
        tap_cpu / tapped_requests * 1e6
    );
    // wrk stops mid-request at the end of a run; those are counted by the
    // tap (status 499 or 200) but not by wrk.
    assert!(
        counted >= tapped_requests
            && counted <= tapped_requests + (connections.iter().sum::<usize>() * rounds) as f64,
        "the tap's count does not match wrk's"
    );
}
