//! End to end: the real `oxmon-sidecar` binary on free ports, StatsD sent
//! over UDP, TCP and unixgram with a mapping file, every tag style and
//! sample rates, and `/metrics` checked value by value.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use oxmon_testkit::{free_port, wait_until, ExporterProcess, Exposition, Signal, StartOptions};

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-sidecar");

const MAPPING: &str = r#"
mappings:
- match: "model.inference.*"
  name: "model_inference_duration_seconds"
  observer_type: histogram
  histogram_options:
    buckets: [0.01, 0.05, 0.1, 0.5, 1]
  help: "Model inference time."
  labels:
    model: "$1"
- match: "model.queue.length"
  match_metric_type: gauge
  name: "model_queue_length"
- match: "model.accuracy"
  name: "model_prediction_accuracy_percent"
- match: "noise.*"
  name: "dropped"
  action: drop
"#;

/// A sidecar whose StatsD listeners share one free port.
struct Sidecar {
    process: ExporterProcess,
    statsd_port: u16,
}

impl Sidecar {
    fn start(mapping: &str, extra: &[&str]) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping.yml");
        std::fs::write(&path, mapping).unwrap();
        Self::start_with_file(&path, extra, dir)
    }

    fn start_with_file(path: &Path, extra: &[&str], dir: tempfile::TempDir) -> Sidecar {
        let statsd_port = free_port();
        let udp = format!("--statsd.listen-udp=127.0.0.1:{statsd_port}");
        let tcp = format!("--statsd.listen-tcp=127.0.0.1:{statsd_port}");
        let mapping = format!("--statsd.mapping-config={}", path.display());
        let mut args = vec![udp.as_str(), tcp.as_str(), mapping.as_str()];
        args.extend_from_slice(extra);
        let process = ExporterProcess::start(BIN, &args, &[]);
        // The mapping file lives as long as the test.
        std::mem::forget(dir);
        Sidecar {
            process,
            statsd_port,
        }
    }

    fn udp(&self, packet: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .send_to(packet.as_bytes(), ("127.0.0.1", self.statsd_port))
            .unwrap();
    }

    fn tcp(&self, text: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.statsd_port)).unwrap();
        stream.write_all(text.as_bytes()).unwrap();
    }

    /// Scrapes until `statsd_exporter_lines_total` reaches `lines`, then
    /// once more: one scrape copies the store before it reads the line
    /// count, so the worker may count a line whose update that copy missed.
    fn scrape_after(&self, lines: f64) -> Exposition {
        wait_until(Duration::from_secs(10), || {
            let m = self.process.scrape();
            (m.value("statsd_exporter_lines_total", &[]) >= Some(lines)).then_some(())
        })
        .map(|()| self.process.scrape())
        .unwrap_or_else(|| {
            panic!(
                "lines_total never reached {lines}:\n{:?}",
                self.process
                    .scrape()
                    .value("statsd_exporter_lines_total", &[])
            )
        })
    }
}

fn bucket(m: &Exposition, model: &str, le: &str) -> Option<f64> {
    m.value(
        "model_inference_duration_seconds_bucket",
        &[("model", model), ("le", le)],
    )
}

#[test]
fn udp_and_tcp_with_mapping_rates_and_every_tag_style() {
    let s = Sidecar::start(MAPPING, &[]);
    // DogStatsD tags and sample rates over UDP: 8 lines in one datagram.
    s.udp(concat!(
        "model.inference.resnet:20|ms|@0.5\n",
        "model.inference.resnet:80|ms\n",
        "model.inference.bert:300|ms|#region:eu\n",
        "model.queue.length:12|g\n",
        "model.queue.length:+3|g\n",
        "model.queue.length:-5|g\n",
        "model.accuracy:97.5|g|#model:resnet\n",
        "requests:1|c|@0.1|#route:home,#client:web"
    ));
    let m = s.scrape_after(8.0);
    assert_eq!(m.value("model_queue_length", &[]), Some(10.0));
    assert_eq!(
        m.value("model_prediction_accuracy_percent", &[("model", "resnet")]),
        Some(97.5)
    );
    assert_eq!(
        m.value("requests", &[("route", "home"), ("client", "web")]),
        Some(10.0)
    );
    assert_eq!(
        m.value(
            "model_inference_duration_seconds_count",
            &[("model", "resnet")]
        ),
        Some(3.0)
    );

    // InfluxDB, Librato and SignalFX tags, extended aggregation, malformed
    // lines and a dropped name over TCP: 10 lines.
    s.tcp(concat!(
        "requests,route=search:2|c\n",
        "requests#route=search:3|c\r\n",
        "req[route=login]uests:4|c\n",
        "model.inference.resnet:0.5:1.5|ms\n",
        "garbage\n",
        "bad:1|x\n",
        "worse:abc|c\n",
        "mixed#a=b:1|c|#c:d\n",
        "noise.x:1|c\n",
        "\n",
    ));
    let m = s.scrape_after(18.0);

    assert_eq!(m.value("requests", &[("route", "search")]), Some(5.0));
    assert_eq!(m.value("requests", &[("route", "login")]), Some(4.0));
    let family = m.family("model_inference_duration_seconds").unwrap();
    assert_eq!(family.kind, "histogram");
    assert_eq!(family.help, "Model inference time.");
    for (le, want) in [
        ("0.01", 2.0),
        ("0.05", 4.0),
        ("0.1", 5.0),
        ("0.5", 5.0),
        ("1", 5.0),
        ("+Inf", 5.0),
    ] {
        assert_eq!(bucket(&m, "resnet", le), Some(want), "le={le}");
    }
    assert_eq!(
        m.value(
            "model_inference_duration_seconds_sum",
            &[("model", "resnet")]
        ),
        Some(0.02 + 0.02 + 0.08 + 0.0005 + 0.0015)
    );
    assert_eq!(
        m.value(
            "model_inference_duration_seconds_sum",
            &[("model", "bert"), ("region", "eu")]
        ),
        Some(0.3)
    );
    assert_eq!(m.family("model_queue_length").unwrap().kind, "gauge");
    assert_eq!(m.family("requests").unwrap().kind, "counter");
    assert_eq!(
        m.family("requests").unwrap().help,
        "Metric autogenerated by statsd_exporter."
    );
    assert!(m.family("dropped").is_none());

    // Self-metrics under statsd_exporter's names.
    let stat = |name: &str, labels: &[(&str, &str)]| m.value(name, labels);
    assert_eq!(stat("statsd_exporter_lines_total", &[]), Some(18.0));
    assert_eq!(stat("statsd_exporter_udp_packets_total", &[]), Some(1.0));
    assert_eq!(
        stat("statsd_exporter_udp_packet_drops_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        stat("statsd_exporter_tcp_connections_total", &[]),
        Some(1.0)
    );
    for reason in [
        "malformed_line",
        "illegal_event",
        "malformed_value",
        "mixed_tagging_styles",
    ] {
        assert_eq!(
            stat("statsd_exporter_sample_errors_total", &[("reason", reason)]),
            Some(1.0),
            "{reason}"
        );
    }
    assert_eq!(
        stat(
            "statsd_exporter_events_actions_total",
            &[("action", "drop")]
        ),
        Some(1.0)
    );
    // resnet 2+1+2, bert 1, gauges 4, counters 4 mapped or not.
    assert_eq!(
        stat("statsd_exporter_events_total", &[("type", "observer")]),
        Some(6.0)
    );
    assert_eq!(
        stat("statsd_exporter_events_total", &[("type", "gauge")]),
        Some(4.0)
    );
    assert_eq!(
        stat("statsd_exporter_events_total", &[("type", "counter")]),
        Some(4.0)
    );
    assert_eq!(
        stat("statsd_exporter_events_unmapped_total", &[]),
        Some(4.0)
    );
    assert_eq!(stat("statsd_exporter_loaded_mappings", &[]), Some(4.0));
    // Samples: 8 over UDP; over TCP 3 tagged, 2 aggregated, bad, worse and
    // noise; garbage and mixed are rejected before any sample.
    assert_eq!(stat("statsd_exporter_samples_total", &[]), Some(16.0));
    assert_eq!(
        stat("app_scrape_collector_success", &[("collector", "statsd")]),
        Some(1.0)
    );
    assert_eq!(
        stat("app_scrape_collector_success", &[("collector", "store")]),
        Some(1.0)
    );
}

#[test]
fn tcp_too_long_line_closes_the_connection() {
    let s = Sidecar::start(MAPPING, &[]);
    let long = format!("ok:1|c\n{}:1|c\nlost:1|c\n", "x".repeat(5000));
    s.tcp(&long);
    let m = s.scrape_after(1.0);
    let m = wait_until(Duration::from_secs(5), || {
        let m2 = s.process.scrape();
        (m2.value("statsd_exporter_tcp_too_long_lines_total", &[]) == Some(1.0)).then_some(m2)
    })
    .unwrap_or(m);
    assert_eq!(
        m.value("statsd_exporter_tcp_too_long_lines_total", &[]),
        Some(1.0)
    );
    assert_eq!(m.value("ok", &[]), Some(1.0));
    assert_eq!(m.value("lost", &[]), None);
}

#[test]
fn series_cap_and_ttl() {
    let s = Sidecar::start(
        "mappings:\n- match: short.*\n  name: short_lived\n  ttl: 1s\n  labels:\n    id: $1\n",
        &["--store.max-series-per-metric=2"],
    );
    s.udp(
        "users:1|c|#user:a\nusers:1|c|#user:b\nusers:1|c|#user:c\nusers:1|c|#user:a\nshort.x:1|g",
    );
    let m = s.scrape_after(5.0);
    assert_eq!(m.samples("users").len(), 2);
    assert_eq!(m.value("users", &[("user", "a")]), Some(2.0));
    assert_eq!(m.value("users", &[("user", "c")]), None);
    assert_eq!(
        m.value("app_series_dropped_total", &[("metric", "users")]),
        Some(1.0)
    );
    assert_eq!(m.value("short_lived", &[("id", "x")]), Some(1.0));
    // The mapping's ttl removes the idle series.
    let gone = wait_until(Duration::from_secs(5), || {
        s.process
            .scrape()
            .value("short_lived", &[("id", "x")])
            .is_none()
            .then_some(())
    });
    assert!(gone.is_some(), "short_lived did not expire");
    // The capped series stay.
    assert_eq!(
        s.process.scrape().value("users", &[("user", "b")]),
        Some(1.0)
    );
}

#[test]
fn unixgram_and_disabled_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("statsd.sock");
    let unixgram = format!("--statsd.listen-unixgram={}", sock.display());
    let process = ExporterProcess::start(
        BIN,
        &["--statsd.listen-udp=", "--statsd.listen-tcp=", &unixgram],
        &[],
    );
    let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
    client.send_to(b"via.unix:7|g", &sock).unwrap();
    let m = wait_until(Duration::from_secs(10), || {
        let m = process.scrape();
        m.value("via_unix", &[]).map(|_| m)
    })
    .expect("unixgram sample never arrived");
    assert_eq!(m.value("via_unix", &[]), Some(7.0));
    assert_eq!(
        m.value("statsd_exporter_unixgram_packets_total", &[]),
        Some(1.0)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
}

#[test]
fn bad_mapping_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "mappings:\n- match: ok.*\n  name: ok\n- match: bad--glob.*\n  name: x\n",
    )
    .unwrap();
    let mapping = format!("--statsd.mapping-config={}", path.display());
    let port = free_port();
    let udp = format!("--statsd.listen-udp=127.0.0.1:{port}");
    let tcp = format!("--statsd.listen-tcp=127.0.0.1:{port}");
    let err =
        ExporterProcess::start_with(BIN, &[&mapping, &udp, &tcp], &[], StartOptions::default())
            .expect_err("a bad mapping must stop the start");
    let want = format!(
        "{} line 4: mappings[1].match: invalid match: bad--glob.*",
        path.display()
    );
    assert!(err.contains(&want), "{err}");

    // --check-config reports the same without serving.
    let out = std::process::Command::new(BIN)
        .args([&mapping, "--check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want));
}

#[test]
fn sighup_reloads_the_mapping_and_keeps_it_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapping.yml");
    std::fs::write(&path, "mappings:\n- match: app.*\n  name: first_$1\n").unwrap();
    let s = Sidecar::start_with_file(&path, &[], tempfile::tempdir().unwrap());
    s.udp("app.x:1|c");
    let m = s.scrape_after(1.0);
    assert_eq!(m.value("first_x", &[]), Some(1.0));

    std::fs::write(&path, "mappings:\n- match: app.*\n  name: second_$1\n").unwrap();
    s.process.signal(Signal::HUP);
    let reloaded = wait_until(Duration::from_secs(10), || {
        let m = s.process.scrape();
        (m.value(
            "statsd_exporter_config_reloads_total",
            &[("outcome", "success")],
        ) == Some(1.0))
        .then_some(())
    });
    assert!(reloaded.is_some(), "no successful reload counted");
    s.udp("app.y:1|c");
    let m = s.scrape_after(2.0);
    assert_eq!(m.value("second_y", &[]), Some(1.0));

    std::fs::write(&path, "mappings:\n- match: bad--glob\n  name: x\n").unwrap();
    s.process.signal(Signal::HUP);
    let failed = wait_until(Duration::from_secs(10), || {
        let m = s.process.scrape();
        (m.value(
            "statsd_exporter_config_reloads_total",
            &[("outcome", "failure")],
        ) == Some(1.0))
        .then_some(())
    });
    assert!(failed.is_some(), "no failed reload counted");
    s.udp("app.z:1|c");
    let m = s.scrape_after(3.0);
    assert_eq!(m.value("second_z", &[]), Some(1.0));
}
