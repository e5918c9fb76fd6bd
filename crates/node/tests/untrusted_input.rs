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
