//! Nothing a scrape reads can stop the process. The real binary runs on a
//! copy of the fixture tree:
//! - with FIFOs where a procfs file, sysfs attributes and a textfile are
//!   expected (opening a FIFO for reading blocks until a writer appears):
//!   each is refused at once, the scrape answers long before its deadline;
//! - with a textfile whose open really waits (a write lease held by another
//!   process, as a Samba or NFS client holds one; the open waits until the
//!   lease is given up or the kernel's 45 s lease-break-time): the textfile
//!   collector fails at the deadline, `/-/healthy` answers meanwhile, the
//!   next scrape does not wait again, and SIGTERM still ends the process.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxmon_testkit::{require_program, ExporterProcess, HttpResponse};

mod common;
use common::{fixture_copy, sample, success};

/// Replaces (or creates) `path` as a FIFO.
fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o644),
        0,
    )
    .unwrap();
}

/// Opens the FIFOs for writing when dropped, which releases a reader stuck
/// opening one (only a binary without the fix gets stuck), so it can exit.
struct ReleaseFifos(Vec<PathBuf>);

impl Drop for ReleaseFifos {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        for fifo in &self.0 {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(fifo);
        }
    }
}

/// Scrapes `/metrics` on another thread with the given scrape timeout
/// header, returning the response and how long it took.
fn scrape_in_background(
    exporter: &ExporterProcess,
    timeout_header: &'static str,
) -> std::thread::JoinHandle<(HttpResponse, Duration)> {
    let url = exporter.url("/metrics");
    std::thread::spawn(move || {
        let started = Instant::now();
        let resp = oxmon_testkit::http_get(
            &url,
            &[
                ("Accept", "text/plain;version=0.0.4"),
                ("X-Prometheus-Scrape-Timeout-Seconds", timeout_header),
            ],
        );
        (resp, started.elapsed())
    })
}

/// `/-/healthy` answers 200 within 100 ms.
fn assert_healthy_at_once(exporter: &ExporterProcess, when: &str) {
    let started = Instant::now();
    let healthy = exporter.get("/-/healthy");
    let took = started.elapsed();
    assert_eq!(healthy.status, 200, "{when}");
    assert!(
        took < Duration::from_millis(100),
        "{when}: /-/healthy took {took:?}"
    );
}

#[test]
fn fifos_where_files_are_expected_are_refused_without_waiting() {
    let tree = fixture_copy();
    let f = tree.path().join("fixtures");
    let fifos = vec![
        f.join("proc/loadavg"),
        f.join("sys/class/hwmon/hwmon0/temp1_input"),
        f.join("sys/class/net/lo/mtu"),
        f.join("textfile/x.prom"),
    ];
    for fifo in &fifos {
        make_fifo(fifo);
    }
    let mut args = common::root_args(&f);
    for c in [
        "hwmon", "netclass", "loadavg", "meminfo", "stat", "textfile",
    ] {
        args.push(format!("--collector.{c}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);
    let _release = ReleaseFifos(fifos);

    for round in 1..=2 {
        let scrape = scrape_in_background(&exporter, "10");
        std::thread::sleep(Duration::from_millis(200));
        assert_healthy_at_once(&exporter, &format!("round {round}"));
        let (resp, took) = scrape.join().unwrap();
        assert_eq!(resp.status, 200, "{}", exporter.log());
        assert!(
            took < Duration::from_secs(2),
            "round {round}: the scrape took {took:?} (its deadline is 9.5 s away)"
        );
        let body = &resp.body;
        for (collector, ok) in [
            // The procfs file it needs is a FIFO: the collector fails.
            ("loadavg", 0.0),
            // A sysfs attribute that cannot be read is skipped.
            ("hwmon", 1.0),
            ("netclass", 1.0),
            ("meminfo", 1.0),
            ("stat", 1.0),
            ("textfile", 1.0),
        ] {
            assert_eq!(
                success(body, collector),
                Some(ok),
                "round {round}: {collector}\n{body}"
            );
        }
        // The FIFO textfile is an error; the other files are read.
        assert_eq!(sample(body, "node_textfile_scrape_error"), Some(1.0));
        assert!(
            body.contains("\nnode_textfile_mtime_seconds{file=\""),
            "{body}"
        );
        assert!(
            !body.contains("x.prom\"}"),
            "the FIFO has no mtime series\n{body}"
        );
        assert!(body.contains("\nnode_hwmon_chip_names{"), "{body}");
        assert!(body.contains("\nnode_memory_MemTotal_bytes "), "{body}");
    }
    let log = exporter.log();
    for needle in ["loadavg: not a regular file (a FIFO)", "x.prom"] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
}

/// Holds a write lease on a file (through Python, since taking a lease
/// needs `fcntl(F_SETLEASE)`, which no safe Rust API offers): any other
/// process's blocking `open` of the file waits until the lease is given up.
struct Lease(Child);

impl Lease {
    fn take(path: &Path) -> Lease {
        const HOLD: &str = "import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print('held', flush=True)
time.sleep(600)
";
        let mut child = Command::new(require_program("python3", "python3"))
            .args(["-c", HOLD])
            .arg(path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held", "taking a lease on {}", path.display());
        Lease(child)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stuck_textfile_read_fails_only_textfile_and_sigterm_still_exits() {
    let tree = fixture_copy();
    let f = tree.path().join("fixtures");
    let held = f.join("textfile/held.prom");
    std::fs::write(&held, "held_metric 1\n").unwrap();
    let mut args = common::root_args(&f);
    for c in ["textfile", "loadavg", "meminfo"] {
        args.push(format!("--collector.{c}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);
    let _lease = Lease::take(&held);

    for round in 1..=2 {
        // A 1.5 s timeout header gives a 1 s deadline.
        let scrape = scrape_in_background(&exporter, "1.5");
        std::thread::sleep(Duration::from_millis(300));
        if round == 1 {
            assert!(
                !scrape.is_finished(),
                "the first scrape waits for the stuck read until its deadline"
            );
        }
        assert_healthy_at_once(&exporter, &format!("round {round}, during the scrape"));
        let (resp, took) = scrape.join().unwrap();
        assert_eq!(resp.status, 200, "{}", exporter.log());
        // The first scrape ends at its deadline; the next finds the lane
        // still stuck and does not wait.
        let limit = if round == 1 { 2500 } else { 1000 };
        assert!(
            took < Duration::from_millis(limit),
            "round {round}: scrape took {took:?}"
        );
        let body = &resp.body;
        for (collector, ok) in [("textfile", 0.0), ("loadavg", 1.0), ("meminfo", 1.0)] {
            assert_eq!(
                success(body, collector),
                Some(ok),
                "round {round}: {collector}\n{body}"
            );
        }
        assert!(body.contains("\nnode_load1 "), "{body}");
    }

    // SIGTERM while the read is still stuck: the process exits within the
    // grace for blocking threads (1 s) plus some slack.
    let started = Instant::now();
    exporter.signal(rustix::process::Signal::TERM);
    let status = exporter.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM with a stuck read: {status:?} after {:?}\n{}",
        started.elapsed(),
        exporter.log()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}
