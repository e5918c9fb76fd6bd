//! A collector stuck in a blocking call (a hung driver read) must not keep
//! the exporter alive after SIGTERM: `oxmon_core::run` gives blocking
//! threads a bounded grace period instead of waiting for them forever.
//!
//! The test runs its own test binary a second time as the exporter (the
//! child mode below), so it exercises the real `run`, signal handling and
//! process exit.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use oxmon_core::blocking::{blocking_collector, BlockingCollector};
use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
use oxmon_core::{Exporter, MetricFamily, Registry};
use oxmon_testkit::{free_port, http_get, http_try_get, send_signal, wait_until, Signal};

/// Set in the child process to the port it serves on.
const CHILD_PORT: &str = "OXMON_SHUTDOWN_TEST_PORT";

/// Never returns from its blocking read.
struct Hung;
impl BlockingCollector for Hung {
    type Found = ();
    fn name(&self) -> &'static str {
        "hung"
    }
    fn check(&self, _: &ScrapeContext) -> Result<Option<()>, CollectError> {
        Ok(Some(()))
    }
    fn collect(&self, _: &ScrapeContext, _: (), _: &mut Vec<MetricFamily>) -> CollectResult {
        loop {
            std::thread::park();
        }
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,
}

/// The exporter side: serves until SIGTERM, then exits with run's status.
fn serve_as_child(port: &str) -> ! {
    let cli = Cli::parse_from([
        "hung-exporter".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--scrape.timeout=300ms".to_string(),
    ]);
    let status = oxmon_core::run(&cli.common, 0, || {
        let mut registry = Registry::new("t");
        registry.register(blocking_collector(Hung));
        Ok(Exporter {
            name: "hung-exporter",
            description: "A collector that never returns.",
            registry,
            routes: vec![],
        })
    });
    std::process::exit(if status == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    });
}

#[test]
fn sigterm_ends_the_process_despite_a_stuck_blocking_read() {
    if let Ok(port) = std::env::var(CHILD_PORT) {
        serve_as_child(&port);
    }
    let port = free_port();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_ends_the_process_despite_a_stuck_blocking_read",
            "--nocapture",
        ])
        .env(CHILD_PORT, port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_until(Duration::from_secs(20), || {
        http_try_get(&format!("{base}/-/ready"), &[]).ok()
    });
    assert!(ready.is_some(), "the child exporter did not start");

    // The scrape leaves a blocking thread stuck for good.
    let scrape = http_get(&format!("{base}/metrics"), &[]);
    assert!(
        scrape
            .body
            .contains("t_scrape_collector_success{collector=\"hung\"} 0"),
        "{}",
        scrape.body
    );

    let asked = Instant::now();
    send_signal(child.id(), Signal::TERM);
    let status = wait_until(Duration::from_secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("still running 10 s after SIGTERM");
    };
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?}",
        asked.elapsed()
    );
}
