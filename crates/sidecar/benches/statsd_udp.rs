//! StatsD over UDP on loopback: the highest paced rate the sidecar takes
//! without losing a line, and the CPU the sender and the sidecar use.
//!
//! Run: `cargo bench -p oxmon-sidecar --bench statsd_udp` (optionally
//! `-- --seconds 3 --lines-per-packet 32,1`). It starts the real binary,
//! sends realistic lines (timers with tags, counters with DogStatsD tags,
//! gauges; 24 series behind a mapping file) at rising rates, 3 s per step,
//! and after each step compares the lines sent with
//! `statsd_exporter_lines_total`, the sidecar's queue drops
//! (`statsd_exporter_udp_packet_drops_total`) and the kernel's
//! (`RcvbufErrors` in /proc/net/snmp). The sender is this process's main
//! thread; CPU is read from /proc for both processes.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::cpu_seconds;

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-sidecar");

const MAPPING: &str = r#"
mappings:
- match: "model.inference.*"
  name: "model_inference_duration_seconds"
  observer_type: histogram
  labels: {model: "$1"}
- match: "model.queue.length"
  name: "model_queue_length"
- match: "model.accuracy"
  name: "model_prediction_accuracy_percent"
"#;

fn lines() -> Vec<String> {
    let mut v = Vec::new();
    for (i, model) in ["resnet", "bert", "gpt", "yolo"].iter().enumerate() {
        for region in ["eu", "us"] {
            v.push(format!(
                "model.inference.{model}:{}|ms|#region:{region}",
                10 + i * 7
            ));
            v.push(format!(
                "requests:1|c|#route:/v1/{model},code:200,region:{region}"
            ));
        }
        v.push(format!("model.queue.length:{}|g", i * 3));
        v.push(format!("model.accuracy:9{i}.5|g|#model:{model}"));
    }
    v
}

fn packets(lines_per_packet: usize) -> Vec<(Vec<u8>, u64)> {
    let all = lines();
    (0..all.len())
        .map(|start| {
            let chosen: Vec<&str> = (0..lines_per_packet)
                .map(|j| all[(start + j) % all.len()].as_str())
                .collect();
            (chosen.join("\n").into_bytes(), lines_per_packet as u64)
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn kernel_udp_drops() -> f64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0.0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

struct Sidecar {
    child: Child,
    http: u16,
    statsd: u16,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Sidecar {
    let mapping = dir.join("mapping.yml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let (http, statsd) = (free_port(), free_port());
    let child = Command::new(BIN)
        .args([
            format!("--web.listen-address=127.0.0.1:{http}"),
            format!("--statsd.listen-udp=127.0.0.1:{statsd}"),
            "--statsd.listen-tcp=".into(),
            format!("--statsd.mapping-config={}", mapping.display()),
            "--statsd.read-buffer=4194304".into(),
            "--log.level=warn".into(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("start oxmon-sidecar");
    let s = Sidecar {
        child,
        http,
        statsd,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(http, "/-/ready").is_none() {
        assert!(Instant::now() < deadline, "oxmon-sidecar did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

struct Step {
    rate: f64,
    sent: f64,
    received: f64,
    queue_drops: f64,
    kernel_drops: f64,
    seconds: f64,
    sender_cpu: f64,
    sidecar_cpu: f64,
}

fn run_step(s: &Sidecar, packets: &[(Vec<u8>, u64)], rate: f64, seconds: f64) -> Step {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", s.statsd)).unwrap();
    let before = http_get(s.http, "/metrics").unwrap_or_default();
    let pid = s.child.id().to_string();
    let (kernel0, side0, send0) = (kernel_udp_drops(), cpu_seconds(&pid), cpu_seconds("self"));
    let start = Instant::now();
    let mut sent = 0u64;
    let mut i = 0;
    while start.elapsed().as_secs_f64() < seconds {
        // Keep to the schedule: send while behind, sleep briefly when ahead.
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        while sent < due {
            let (p, n) = &packets[i % packets.len()];
            if socket.send(p).is_ok() {
                sent += n;
            }
            i += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let send_cpu = cpu_seconds("self") - send0;
    // Let the sidecar drain its queue before reading its counters.
    std::thread::sleep(Duration::from_millis(700));
    let side_cpu = cpu_seconds(&pid) - side0;
    let after = http_get(s.http, "/metrics").unwrap_or_default();
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    Step {
        rate,
        sent: sent as f64,
        received: delta("statsd_exporter_lines_total"),
        queue_drops: delta("statsd_exporter_udp_packet_drops_total"),
        kernel_drops: kernel_udp_drops() - kernel0,
        seconds: elapsed,
        sender_cpu: send_cpu / elapsed,
        sidecar_cpu: side_cpu / elapsed,
    }
}

fn main() {
    let mut seconds = 3.0;
    let mut sizes = vec![32usize, 1];
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--seconds" => seconds = w[1].parse().expect("--seconds N"),
            "--lines-per-packet" => {
                sizes = w[1].split(',').map(|n| n.parse().expect("sizes")).collect()
            }
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let sidecar = start(dir.path());
    println!(
        "StatsD over UDP on loopback, {} CPUs, {seconds} s per step",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for lines_per_packet in sizes {
        let packets = packets(lines_per_packet);
        println!("\n{lines_per_packet} lines per datagram");
        println!("target lines/s | received lines/s | lost | queue drops | kernel drops | sender CPU | sidecar CPU");
        let mut best = 0.0;
        for rate in [
            100_000.0,
            250_000.0,
            500_000.0,
            750_000.0,
            1_000_000.0,
            1_500_000.0,
            2_000_000.0,
            3_000_000.0,
        ] {
            let r = run_step(&sidecar, &packets, rate, seconds);
            let lost = r.sent - r.received;
            println!(
                "{:>14.0} | {:>16.0} | {:>4.0} | {:>11.0} | {:>12.0} | {:>10.2} | {:>11.2}",
                r.rate,
                r.received / r.seconds,
                lost,
                r.queue_drops,
                r.kernel_drops,
                r.sender_cpu,
                r.sidecar_cpu
            );
            let achieved = r.sent / r.seconds;
            if lost > 0.0 || r.queue_drops > 0.0 || r.kernel_drops > 0.0 {
                break;
            }
            best = achieved;
            if achieved < rate * 0.9 {
                // The sender cannot go faster.
                break;
            }
        }
        println!("highest rate without a lost line: {best:.0} lines/s");
    }
}
