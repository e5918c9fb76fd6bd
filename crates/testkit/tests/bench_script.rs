//! `scripts/bench` runs end to end: two exporters, a throwaway Redis as the
//! measured server, a table with a ratio row, and JSON with every run.

use std::process::Command;

#[test]
fn bench_script_measures_two_exporters_and_a_server() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench");
    oxmon_testkit::require_program("python3", "python3");
    let exporter =
        oxmon_testkit::require_program("prometheus-redis-exporter", "prometheus-redis-exporter");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let cmd = format!(
        "{} --redis.addr=redis://{{redis_addr}} --web.listen-address=127.0.0.1:{{port}}",
        exporter.display()
    );
    let out = Command::new(script)
        .args(["--with-redis", "--redis-cmd", "SET foo bar"])
        .args([
            "--name",
            "first",
            "--cmd",
            &cmd,
            "--peer-name",
            "second",
            "--peer-cmd",
            &cmd,
        ])
        .args([
            "--runs",
            "1",
            "--scrapes",
            "5",
            "--warmup",
            "1",
            "--concurrent-seconds",
            "1",
        ])
        .args(["--server-idle-seconds", "0.2", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(rows[0].contains("CPU ms/scrape") && rows[0].contains("server CPU ms/scrape"));
    assert!(rows[1].starts_with("| first |") && rows[2].starts_with("| second |"));
    assert!(rows[3].starts_with("| first/second |"));
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &data["runs"]["first"][0];
    assert!(run["samples"].as_f64().unwrap() > 50.0, "{run}");
    assert!(run["cpu_ms"].as_f64().unwrap() > 0.0, "{run}");
    assert!(run["bytes_gzip"].as_f64().unwrap() < run["bytes"].as_f64().unwrap());
    assert!(run["server_cpu_ms"].as_f64().is_some(), "{run}");
}

#[test]
fn bench_script_stops_on_a_bad_response() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench");
    let empty = tempfile::tempdir().unwrap();
    // A static file server over an empty directory: 404 for /metrics.
    let cmd = format!(
        "python3 -m http.server {{port}} --bind 127.0.0.1 --directory {}",
        empty.path().display()
    );
    let out = Command::new(script)
        .args(["--cmd", &cmd, "--runs", "1", "--ready-timeout", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("/metrics not ready"), "{stderr}");
    let logs = stderr
        .lines()
        .find_map(|l| l.strip_prefix("bench: logs kept in "))
        .unwrap();
    std::fs::remove_dir_all(logs.trim()).unwrap();
}
