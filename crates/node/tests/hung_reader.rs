//! A sysfs read that never returns (a hung hwmon driver, an interface
//! attribute waiting on the kernel's rtnl lock) must cost its collector
//! that scrape and nothing else: the real binary runs on a copy of the
//! fixture tree in which a hwmon attribute and a netclass attribute are
//! FIFOs (opening one blocks until a writer appears).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oxmon_testkit::ExporterProcess;

/// A copy of `tests/fixtures` in a temporary directory.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(dir.path().join("fixtures"))
        .status()
        .unwrap();
    assert!(status.success(), "copying {}", src.display());
    dir
}

/// Replaces `path` by a FIFO.
fn hang(path: &Path) {
    std::fs::remove_file(path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o644),
        0,
    )
    .unwrap();
}

/// Opens the FIFOs for writing when dropped, which releases the readers
/// stuck opening them so the exporter can exit.
struct Release(Vec<PathBuf>);

impl Drop for Release {
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

/// `node_scrape_collector_success{collector="<name>"}` in `body`.
fn success(body: &str, collector: &str) -> Option<f64> {
    let prefix = format!("node_scrape_collector_success{{collector=\"{collector}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

#[test]
fn a_hung_sysfs_read_fails_its_collector_only() {
    let tree = fixture_copy();
    let f = tree.path().join("fixtures");
    let fifos = vec![
        f.join("sys/class/hwmon/hwmon0/temp1_input"),
        f.join("sys/class/net/lo/mtu"),
    ];
    for fifo in &fifos {
        hang(fifo);
    }
    let args = [
        format!("--path.procfs={}", f.join("proc").display()),
        format!("--path.sysfs={}", f.join("sys").display()),
        format!("--path.rootfs={}", f.join("rootfs").display()),
        "--collector.disable-defaults".into(),
        "--collector.hwmon".into(),
        "--collector.netclass".into(),
        "--collector.loadavg".into(),
        "--collector.meminfo".into(),
        "--collector.stat".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = ExporterProcess::start(env!("CARGO_BIN_EXE_oxmon-node"), &args, &[]);
    let _release = Release(fifos);

    for round in 1..=2 {
        let url = exporter.url("/metrics");
        let scrape = std::thread::spawn(move || {
            let started = Instant::now();
            let resp = oxmon_testkit::http_get(
                &url,
                &[
                    ("Accept", "text/plain;version=0.0.4"),
                    ("X-Prometheus-Scrape-Timeout-Seconds", "1.5"),
                ],
            );
            (resp, started.elapsed())
        });
        // While the scrape waits on the hung readers, the server answers.
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let healthy = exporter.get("/-/healthy");
        let took = started.elapsed();
        assert_eq!(healthy.status, 200);
        assert!(
            took < Duration::from_millis(100),
            "round {round}: /-/healthy took {took:?} during a scrape"
        );
        if round == 1 {
            assert!(
                !scrape.is_finished(),
                "the scrape did not wait for the hung reads"
            );
        }

        let (resp, took) = scrape.join().unwrap();
        assert_eq!(resp.status, 200, "{}", exporter.log());
        // The first scrape waits for the hung reads until its deadline
        // (1.5 s less the offset); the next finds their lanes still busy
        // and does not wait.
        let limit = if round == 1 { 3000 } else { 1000 };
        assert!(
            took < Duration::from_millis(limit),
            "round {round}: scrape took {took:?}"
        );
        let body = &resp.body;
        for (collector, ok) in [
            ("hwmon", 0.0),
            ("netclass", 0.0),
            ("loadavg", 1.0),
            ("meminfo", 1.0),
            ("stat", 1.0),
        ] {
            assert_eq!(
                success(body, collector),
                Some(ok),
                "round {round}: {collector}\n{body}"
            );
        }
        for series in [
            "node_load1 ",
            "node_memory_MemTotal_bytes ",
            "node_boot_time_seconds ",
        ] {
            assert!(
                body.lines().any(|l| l.starts_with(series)),
                "round {round}: {series}missing\n{body}"
            );
        }
    }
}
