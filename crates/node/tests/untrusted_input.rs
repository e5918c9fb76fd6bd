//! What a scrape reads cannot exhaust the exporter: the real binary runs on
//! a copy of the fixture tree with hostile files in it, and its peak
//! resident memory is checked.

use std::path::Path;
use std::time::{Duration, Instant};

use oxmon_testkit::ExporterProcess;

mod common;
use common::{fixture_copy, sample, status_kb, success};

/// A sparse file of `len` bytes: costs no disk, reads as zeros.
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// A textfile symlinked to `/dev/zero`, a 2 GiB textfile and a 1 GiB
/// `meminfo` are refused without being read: the scrape answers, each is
/// reported, and peak RSS stays small (it grew by the files' size before).
#[test]
fn endless_and_huge_files_are_refused_and_memory_stays_bounded() {
    let tree = fixture_copy();
    let f = tree.path().join("fixtures");
    std::os::unix::fs::symlink("/dev/zero", f.join("textfile/zero.prom")).unwrap();
    sparse(&f.join("textfile/huge.prom"), 2 << 30);
    sparse(&f.join("proc/meminfo"), 1 << 30);
    let mut args = common::root_args(&f);
    for c in ["textfile", "meminfo", "loadavg"] {
        args.push(format!("--collector.{c}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);

    let started = Instant::now();
    let resp = exporter.get("/metrics");
    assert_eq!(resp.status, 200, "{}", exporter.log());
    assert!(started.elapsed() < Duration::from_secs(5));
    let body = &resp.body;
    assert_eq!(
        sample(body, "node_textfile_scrape_error"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(success(body, "textfile"), Some(1.0), "{body}");
    assert!(
        body.contains("\ncron_jobs_running"),
        "the fixture's good textfiles are read\n{body}"
    );
    assert_eq!(success(body, "meminfo"), Some(0.0), "{body}");
    assert_eq!(success(body, "loadavg"), Some(1.0), "{body}");

    let peak_kb = status_kb(exporter.pid(), "VmHWM");
    assert!(
        peak_kb < 100 * 1024,
        "peak RSS {peak_kb} kB after reading hostile files"
    );
    let log = exporter.log();
    for needle in [
        "zero.prom",
        "not a regular file (a character device)",
        "huge.prom",
        "larger than 16 MiB",
        "meminfo: larger than 64 MiB",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
}

/// Large textfiles cost the textfile collector, never the others: one
/// series of 100,000 labels (it took 25 s and held `/-/healthy` for 23 s),
/// a histogram of 10,000 series (assembled by a scan per sample it took
/// 11 s) and 2,000 series that each use another label name (padding
/// them would add 4 million labels, over the limit: dropped as an error).
/// `/-/healthy` answers within 100 ms throughout, and the scrape returns
/// well within its deadline with the large families in it.
#[test]
fn large_textfiles_do_not_starve_the_server() {
    let tree = fixture_copy();
    let f = tree.path().join("fixtures");
    let labels: Vec<String> = (0..100_000).map(|i| format!("l{i}=\"v\"")).collect();
    std::fs::write(
        f.join("textfile/wide.prom"),
        format!("wide{{{}}} 1\n", labels.join(",")),
    )
    .unwrap();
    let mut hist = String::from("# TYPE lat histogram\n");
    for i in 0..10_000 {
        hist.push_str(&format!(
            "lat_bucket{{id=\"{i}\",le=\"1\"}} 1\nlat_bucket{{id=\"{i}\",le=\"+Inf\"}} 2\nlat_sum{{id=\"{i}\"}} 3\nlat_count{{id=\"{i}\"}} 2\n"
        ));
    }
    std::fs::write(f.join("textfile/hist.prom"), hist).unwrap();
    let ragged: String = (0..2_000)
        .map(|i| format!("ragged{{l{i}=\"x\"}} 1\n"))
        .collect();
    std::fs::write(f.join("textfile/ragged.prom"), ragged).unwrap();
    let mut args = common::root_args(&f);
    for c in ["textfile", "loadavg", "meminfo"] {
        args.push(format!("--collector.{c}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);

    let url = exporter.url("/metrics");
    let scrape = std::thread::spawn(move || {
        let started = Instant::now();
        let resp = oxmon_testkit::http_get(
            &url,
            &[
                ("Accept", "text/plain;version=0.0.4"),
                ("X-Prometheus-Scrape-Timeout-Seconds", "10"),
            ],
        );
        (resp, started.elapsed())
    });
    let mut slowest = Duration::ZERO;
    let mut checks = 0;
    while !scrape.is_finished() {
        let started = Instant::now();
        assert_eq!(exporter.get("/-/healthy").status, 200);
        slowest = slowest.max(started.elapsed());
        checks += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let (resp, took) = scrape.join().unwrap();
    assert!(
        slowest < Duration::from_millis(100),
        "/-/healthy took {slowest:?} during the scrape ({checks} checks)"
    );
    assert!(checks >= 3, "the scrape took {took:?}: too quick to check");
    assert!(
        took < Duration::from_millis(9500),
        "the scrape took {took:?}"
    );
    assert_eq!(resp.status, 200, "{}", exporter.log());
    let body = &resp.body;
    let line = |prefix: &str| body.lines().find(|l| l.starts_with(prefix));
    for (collector, ok) in [("textfile", 1.0), ("loadavg", 1.0), ("meminfo", 1.0)] {
        assert_eq!(success(body, collector), Some(ok), "{collector}");
    }
    let wide = line("wide{").expect("the wide series");
    assert_eq!(wide.matches("=\"v\"").count(), 100_000);
    assert_eq!(
        body.lines().filter(|l| l.starts_with("lat_count{")).count(),
        10_000
    );
    assert!(
        line("ragged").is_none(),
        "the over-padded family is dropped"
    );
    assert_eq!(sample(body, "node_textfile_scrape_error"), Some(1.0));
    assert!(exporter
        .log()
        .contains("padding them would add 3998000 empty labels"));
}

/// Corrupt procfs files are reported, never dressed up as data:
/// `/proc/stat` with a CPU line missing columns (oxmon-node used to export
/// zeros for them, node_exporter 1.5 still does, both with success 1), a
/// `MemTotal` that is not a number (no memory series and success 1
/// before), and field names that are no metric names (`Bad Name` in
/// meminfo made a line that fails the whole scrape in Prometheus;
/// node_exporter 1.5 panics on `pgfault-x` in vmstat). The broken fields
/// are left out, their collectors fail naming file and line, the rest is
/// exported, and the whole response parses.
#[test]
fn corrupt_procfs_is_reported_not_dressed_up() {
    let tree = fixture_copy();
    let f = tree.path().join("fixtures");
    let edit = |rel: &str, change: &dyn Fn(String) -> String| {
        let path = f.join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, change(text)).unwrap();
    };
    edit("proc/stat", &|t| {
        t.lines()
            .map(|l| {
                if l.starts_with("cpu1 ") {
                    "cpu1 100 200 300"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    });
    edit("proc/meminfo", &|t| {
        let t: Vec<&str> = t
            .lines()
            .map(|l| {
                if l.starts_with("MemTotal:") {
                    "MemTotal:       abc kB"
                } else {
                    l
                }
            })
            .collect();
        t.join("\n") + "\nBad Name:   3 kB\n"
    });
    edit("proc/vmstat", &|t| t + "pgfault-x 5\n");
    let mut args = common::root_args(&f);
    for c in ["cpu", "meminfo", "vmstat", "loadavg"] {
        args.push(format!("--collector.{c}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);

    let resp = exporter.get("/metrics");
    assert_eq!(resp.status, 200);
    let body = &resp.body;
    let parsed = oxmon_testkit::try_parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    for (collector, ok) in [
        ("cpu", 0.0),
        ("meminfo", 0.0),
        ("vmstat", 1.0),
        ("loadavg", 1.0),
    ] {
        assert_eq!(success(body, collector), Some(ok), "{collector}\n{body}");
    }
    let cpus: std::collections::BTreeSet<&str> = parsed
        .samples("node_cpu_seconds_total")
        .iter()
        .filter_map(|s| s.label("cpu"))
        .collect();
    assert!(
        !cpus.is_empty() && !cpus.contains("1"),
        "cpu1 is not exported: {cpus:?}"
    );
    assert!(parsed.family("node_memory_MemTotal_bytes").is_none());
    assert!(parsed.family("node_memory_MemFree_bytes").is_some());
    assert_eq!(
        parsed.value("node_memory_Bad_Name_bytes", &[]),
        Some(3072.0)
    );
    assert_eq!(parsed.value("node_vmstat_pgfault_x", &[]), Some(5.0));
    let log = exporter.log();
    for needle in [
        "stat: line 3 \\\"cpu1 100 200 300\\\": 3 columns, expected 10",
        "meminfo: line 1 \\\"MemTotal:       abc kB\\\": the value is not a number",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
}
