//! SIGHUP does not end an exporter: `oxmon_core::run` reloads the web
//! config and the exporter's registered reload hooks instead of letting the
//! default action (exit 129) happen.
//!
//! The test runs its own test binary a second time as the exporter (the
//! child mode below), through the testkit's `ExporterProcess`, so it
//! exercises the real `run` and signal delivery to a real process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{gauge, Exporter, MetricFamily, Registry};
use oxmon_testkit::{wait_until, ExporterProcess, Readiness, Signal, StartOptions};

/// Set in the child process to the port it serves on.
const CHILD_PORT: &str = "OXMON_SIGNALS_TEST_PORT";

/// Exposes how many times the reload hook ran.
struct Reloads(Arc<AtomicU64>);
impl SyncCollector for Reloads {
    fn name(&self) -> &'static str {
        "reloads"
    }
    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let n = self.0.load(Ordering::Relaxed) as f64;
        out.push(gauge("t_reloads", "Reload hook runs.", n));
        Ok(())
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,
}

fn serve_as_child(port: &str) -> ! {
    let cli = Cli::parse_from([
        "reloading-exporter".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ]);
    let status = oxmon_core::run(&cli.common, 0, || {
        let reloads = Arc::new(AtomicU64::new(0));
        let mut registry = Registry::new("t");
        registry.register(sync_collector(Reloads(reloads.clone())));
        registry.on_reload("counter", move || {
            reloads.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        registry.on_reload("broken", || Err("custom queries file: line 3: bad".into()));
        Ok(Exporter {
            name: "reloading-exporter",
            description: "Counts reloads.",
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
fn sighup_reloads_and_the_exporter_keeps_serving() {
    if let Ok(port) = std::env::var(CHILD_PORT) {
        serve_as_child(&port);
    }
    let port = oxmon_testkit::free_port();
    let exe = std::env::current_exe().unwrap();
    let mut exp = ExporterProcess::start_with(
        &exe,
        &[
            "--exact",
            "sighup_reloads_and_the_exporter_keeps_serving",
            "--nocapture",
        ],
        &[(CHILD_PORT, &port.to_string())],
        StartOptions {
            port: Some(port),
            add_listen_address: false,
            readiness: Readiness::HttpReady,
            ..StartOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exp.scrape().value("t_reloads", &[]), Some(0.0));

    for round in 1..=3 {
        exp.signal(Signal::HUP);
        let reloaded = wait_until(Duration::from_secs(10), || {
            let running = exp.is_running();
            let n = running
                .then(|| exp.scrape().value("t_reloads", &[]))
                .flatten();
            (!running || n == Some(round as f64)).then_some(running)
        });
        assert_eq!(
            reloaded,
            Some(true),
            "after SIGHUP {round} the exporter must still run and reload; log:\n{}",
            exp.log()
        );
    }
    let log = exp.log();
    assert!(
        log.contains("reload failed") && log.contains("hook=broken"),
        "{log}"
    );
    let status = exp.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
