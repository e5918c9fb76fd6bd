//! End to end: the real `oxmon-sidecar` with `--config.file` — start-up
//! errors that name file, line and key (also from `--check-config`), and
//! reloads good and bad through SIGHUP and `POST /-/reload`, counted, with
//! an invalid file keeping the running config for every source.

mod app;

use std::net::UdpSocket;
use std::path::Path;

use app::{expect, scrape_until, series, App, Reply, BIN};
use oxmon_testkit::{free_port, http_post, ExporterProcess, Exposition, Signal, StartOptions};

#[test]
fn start_up_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.yml");
    let cases = [
        (
            "health:\n  targets:\n  - url: http://127.0.0.1:1/health\n    interval: fast\n",
            "line 4: health.targets[0].interval: invalid number in duration \"fast\"",
        ),
        (
            "relay:\n  targets:\n  - url: http://127.0.0.1:1/metrics\n    prefx: x_\n",
            "line 4 column 5: relay.targets[0].prefx: unknown field `prefx`",
        ),
        (
            "statsd:\n  mapping:\n    mappings:\n    - match: 'model\\.(.*'\n      match_type: regex\n      name: x\n",
            "line 4: statsd.mapping.mappings[0].match: ",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&path, text).unwrap();
        let file = format!("--config.file={}", path.display());
        let want = format!("config file {} {want}", path.display());
        let err = ExporterProcess::start_with(
            BIN,
            &[
                &file,
                "--statsd.listen-udp=127.0.0.1:0",
                "--statsd.listen-tcp=",
            ],
            &[],
            StartOptions::default(),
        )
        .expect_err("a bad config must stop the start");
        // The log is logfmt: quotes inside a value are escaped.
        let logged = err.replace("\\\"", "\"");
        assert!(logged.contains(&want), "want {want:?} in:\n{err}");

        let out = std::process::Command::new(BIN)
            .args([&file, "--check-config"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    }

    std::fs::write(
        &path,
        "health: {targets: [{url: 'http://127.0.0.1:1/health'}]}\nrelay: {targets: [{url: 'http://127.0.0.1:1/metrics'}]}\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            &format!("--config.file={}", path.display()),
            "--health.url=http://127.0.0.1:2/health",
            "--check-config",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "configuration OK: 2 health targets, 1 relay targets, 0 StatsD mappings\n"
    );
}

fn config(app: &App, target: &str, mapped_name: &str) -> String {
    format!(
        "health:
  interval: 300ms
  targets:
  - {{url: '{url}', name: {target}}}
statsd:
  mapping:
    mappings:
    - match: 'job.*'
      name: '{mapped_name}_$1'
limits:
  max_series_per_metric: 100
",
        url = app.url("/health")
    )
}

fn reloads(m: &Exposition) -> (f64, f64, f64) {
    (
        m.value("app_config_reloads_total", &[("result", "success")])
            .unwrap(),
        m.value("app_config_reloads_total", &[("result", "failure")])
            .unwrap(),
        m.value("app_config_last_reload_successful", &[]).unwrap(),
    )
}

fn send(port: u16, line: &str) {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(line.as_bytes(), ("127.0.0.1", port))
        .unwrap();
}

fn write(path: &Path, text: &str) {
    // Written aside and renamed, as config management does, so a reload
    // never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn reload_good_and_bad_through_sighup_and_post() {
    let app = App::start();
    app.set(
        "/health",
        Reply::json(200, r#"{"status":"UP","checks":{"db":"UP"}}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.yml");
    write(&path, &config(&app, "first", "first"));
    let statsd_port = free_port();
    let s = app::sidecar(&[
        &format!("--config.file={}", path.display()),
        &format!("--statsd.listen-udp=127.0.0.1:{statsd_port}"),
    ]);
    let m = scrape_until(&s, "the first check", |m| {
        m.value("app_up", &[("target", "first")]).is_some()
    });
    assert_eq!(reloads(&m), (0.0, 0.0, 1.0));
    let started_at = m
        .value("app_config_last_reload_success_timestamp_seconds", &[])
        .unwrap();
    send(statsd_port, "job.a:1|c");
    scrape_until(&s, "the first mapping", |m| {
        m.value("first_a", &[]) == Some(1.0)
    });

    // A good file through SIGHUP: the health target is renamed (the old
    // one's series go), the inline StatsD mapping changes.
    write(&path, &config(&app, "second", "second"));
    s.signal(Signal::HUP);
    let m = scrape_until(&s, "the SIGHUP reload", |m| {
        reloads(m).0 == 1.0 && m.value("app_up", &[("target", "second")]).is_some()
    });
    assert_eq!(reloads(&m), (1.0, 0.0, 1.0));
    assert_eq!(series(&m, "app_up"), expect(&[("target=second", 1.0)]));
    assert!(
        m.value("app_config_last_reload_success_timestamp_seconds", &[])
            .unwrap()
            >= started_at
    );
    assert_eq!(
        m.value(
            "statsd_exporter_config_reloads_total",
            &[("outcome", "success")]
        ),
        Some(1.0)
    );
    send(statsd_port, "job.b:1|c");
    scrape_until(&s, "the second mapping", |m| {
        m.value("second_b", &[]) == Some(1.0)
    });
    assert!(s.log().contains("hook=config"), "{}", s.log());

    // A bad file through POST /-/reload: 500 naming file, line and key;
    // everything keeps running as it was.
    write(
        &path,
        &config(&app, "third", "third").replace("300ms", "300 ms"),
    );
    let resp = http_post(&s.url("/-/reload"), &[], b"").unwrap();
    assert_eq!(resp.status, 500);
    let want = format!(
        "failed to reload config: config file {} line 2: health.interval: ",
        path.display()
    );
    assert!(resp.body.starts_with(&want), "{}", resp.body);
    let m = s.scrape();
    assert_eq!(reloads(&m), (1.0, 1.0, 0.0));
    assert_eq!(
        m.value(
            "statsd_exporter_config_reloads_total",
            &[("outcome", "failure")]
        ),
        Some(1.0)
    );
    assert_eq!(series(&m, "app_up"), expect(&[("target=second", 1.0)]));
    send(statsd_port, "job.c:1|c");
    scrape_until(&s, "the kept mapping", |m| {
        m.value("second_c", &[]) == Some(1.0)
    });
    assert!(
        s.log().contains("reloading the config failed"),
        "{}",
        s.log()
    );

    // The same bad file through SIGHUP counts a second failure.
    s.signal(Signal::HUP);
    scrape_until(&s, "the failed SIGHUP reload", |m| reloads(m).1 == 2.0);

    // Fixed, through POST: 200 with an empty body.
    write(&path, &config(&app, "third", "third"));
    let resp = http_post(&s.url("/-/reload"), &[], b"").unwrap();
    assert_eq!((resp.status, resp.body.as_str()), (200, ""));
    let m = scrape_until(&s, "the third target", |m| {
        m.value("app_up", &[("target", "third")]).is_some()
    });
    assert_eq!(reloads(&m), (2.0, 2.0, 1.0));
    assert_eq!(series(&m, "app_up"), expect(&[("target=third", 1.0)]));
}

#[test]
fn reload_without_a_file_reloads_the_mapping_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yml");
    write(&mapping, "mappings:\n- match: x.*\n  name: one_$1\n");
    let statsd_port = free_port();
    let s = app::sidecar(&[
        &format!("--statsd.mapping-config={}", mapping.display()),
        &format!("--statsd.listen-udp=127.0.0.1:{statsd_port}"),
    ]);
    write(&mapping, "mappings:\n- match: x.*\n  name: two_$1\n");
    let resp = http_post(&s.url("/-/reload"), &[], b"").unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    send(statsd_port, "x.y:1|c");
    let m = scrape_until(&s, "the reloaded mapping", |m| {
        m.value("two_y", &[]) == Some(1.0)
    });
    assert_eq!(reloads(&m), (1.0, 0.0, 1.0));
}

/// Top-level sections of the README example whose types this build does
/// not have yet (they arrive with the tap and log sources); the example is
/// checked without them. Empty once every section is in `FileConfig`.
const PENDING_SECTIONS: &[&str] = &[];

/// `text` without the top-level `sections`.
fn without_sections(text: &str, sections: &[&str]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let top_level = !line.starts_with([' ', '#', '-']) && !line.trim().is_empty();
        if top_level {
            skipping = sections
                .iter()
                .any(|s| line.strip_prefix(s).is_some_and(|r| r.starts_with(':')));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_readme_example_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## A complete config: a model-serving API")
        .nth(1)
        .expect("the README has the model-serving example");
    let yaml = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    for pending in PENDING_SECTIONS {
        assert!(
            yaml.contains(&format!("\n{pending}:\n")),
            "the example shows {pending}"
        );
    }
    let flags = oxmon_sidecar::config::Flags {
        health: Default::default(),
        relay: Default::default(),
        statsd_mapping: None,
        store: Default::default(),
        logs: Default::default(),
        tap: Default::default(),
    };
    let config = oxmon_sidecar::config::Config::from_yaml(
        &without_sections(yaml, PENDING_SECTIONS),
        "README.md",
        &flags,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.health.targets[0].name, "model-api");
    assert_eq!(config.relay.targets[0].prefix, "modelapi_");
    assert_eq!(config.statsd.len(), 3);
    assert_eq!(config.limits.max_series_per_metric, 2000);
    use oxmon_sidecar::statsd::mapper::MetricType;
    for (statsd, kind, name) in [
        (
            "model.inference.resnet50",
            MetricType::Observer,
            "model_inference_duration_seconds",
        ),
        (
            "model.queue.length",
            MetricType::Gauge,
            "model_queue_length",
        ),
        (
            "model.accuracy",
            MetricType::Gauge,
            "model_prediction_accuracy_percent",
        ),
    ] {
        let found = config.statsd.lookup(statsd, kind).map(|m| m.name);
        assert_eq!(found.as_deref(), Some(name), "{statsd}");
    }
    assert_eq!(
        without_sections(
            "a: 1\ntap:\n  x: 1\n\n  y: [2]\nlogs: {}\nb:\n- 1\n",
            &["tap", "logs"]
        ),
        "a: 1\nb:\n- 1\n"
    );
}

#[test]
fn every_statsd_listener_off_turns_statsd_off() {
    let app = App::start();
    app.set("/metrics", Reply::text(200, "# TYPE jobs gauge\njobs 3\n"));
    let relay = format!("--relay.url={}", app.url("/metrics"));
    let s = ExporterProcess::start(
        BIN,
        &["--statsd.listen-udp=", "--statsd.listen-tcp=", &relay],
        &[],
    );
    let m = s.scrape();
    assert_eq!(m.value("jobs", &[]), Some(3.0));
    assert!(
        !m.names().iter().any(|n| n.starts_with("statsd_exporter_")),
        "{:?}",
        m.names()
    );
    let resp = http_post(&s.url("/-/reload"), &[], b"").unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(reloads(&s.scrape()), (1.0, 0.0, 1.0));
}
