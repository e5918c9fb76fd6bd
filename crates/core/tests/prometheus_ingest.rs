//! A real Prometheus scrapes families of every type, negotiating
//! OpenMetrics (its default); every series must be queryable under the name
//! the 0.0.4 text format gives it (the Go exporters' names), so dashboards
//! work whichever format is negotiated. The 0.0.4 side is covered by the
//! encoder's unit tests and `promtool check metrics` on golden files.

use std::time::Duration;

use clap::Parser;
use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::server::{self, Service};
use oxmon_core::{Exporter, MetricFamily, Registry};
use oxmon_testkit::Prometheus;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    web: oxmon_core::flags::WebArgs,
}

struct AllTypes;
impl SyncCollector for AllTypes {
    fn name(&self) -> &'static str {
        "all"
    }
    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut c = MetricFamily::counter("t_requests_total", "Requests.");
        c.add(&[("code", "200")], 7.0);
        out.push(c);
        let mut legacy = MetricFamily::counter(
            "t_xact_commit",
            "A counter without _total, as postgres_exporter has.",
        );
        legacy.add(&[("datname", "app")], 3.0);
        out.push(legacy);
        let mut u = MetricFamily::untyped("t_netstat_Tcp_InSegs", "Untyped.");
        u.add(&[], 11.0);
        out.push(u);
        let mut i = MetricFamily::info("t_os_info", "Info.");
        i.add(&[("name", "Debian")], 1.0);
        out.push(i);
        let mut g = MetricFamily::gauge("t_temperature_celsius", "Gauge.");
        g.add(&[("sensor", "a\"b")], -4.5);
        out.push(g);
        let mut h = MetricFamily::histogram("t_latency_seconds", "Histogram.");
        h.add_histogram(&[], vec![(0.1, 2), (1.0, 5)], 2.5, 6);
        out.push(h);
        let mut s = MetricFamily::summary("t_rpc_seconds", "Summary.");
        s.add_summary(&[], vec![(0.5, 0.25), (0.99, 2.0)], 9.0, 12);
        out.push(s);
        Ok(())
    }
}

#[test]
fn prometheus_sees_go_names_over_openmetrics() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let web = Cli::parse_from(["t", "--web.listen-address=127.0.0.1:0"]).web;
    let mut registry = Registry::new("t");
    registry.register(sync_collector(AllTypes));
    let (addr, _stop) = rt.block_on(async {
        let svc = Service::new(
            Exporter {
                name: "t",
                description: "t",
                registry,
                routes: vec![],
            },
            web.clone(),
        )
        .unwrap();
        let listeners = server::bind(&web, 0).await.unwrap();
        let addr = listeners[0].local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::serve(svc, listeners, async move {
            let _ = rx.await;
        }));
        (addr, tx)
    });

    // Prometheus sends an Accept header preferring OpenMetrics by default.
    let prom = Prometheus::start(
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: om\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
        &[],
    );
    for (query, want) in [
        ("t_requests_total{code=\"200\"}", 7.0),
        ("t_xact_commit{datname=\"app\"}", 3.0),
        ("t_netstat_Tcp_InSegs", 11.0),
        ("t_os_info{name=\"Debian\"}", 1.0),
        ("t_temperature_celsius{sensor=\"a\\\"b\"}", -4.5),
        ("t_latency_seconds_bucket{le=\"+Inf\"}", 6.0),
        ("t_latency_seconds_count", 6.0),
        ("t_rpc_seconds{quantile=\"0.99\"}", 2.0),
        ("t_rpc_seconds_sum", 9.0),
        ("up{job=\"om\"}", 1.0),
    ] {
        let data = prom.wait_for(query, Duration::from_secs(20), |d| {
            d["result"].as_array().is_some_and(|r| !r.is_empty())
        });
        let v: f64 = data["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(v, want, "{query}");
    }
    // The scrape really was OpenMetrics: Prometheus records the type it saw.
    let meta = prom.api("/api/v1/targets/metadata?match_target={job=\"om\"}");
    let types: Vec<(String, String)> = meta["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["metric"].as_str().unwrap().to_string(),
                m["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        types.contains(&("t_requests".into(), "counter".into())),
        "{types:?}"
    );
    assert!(types.contains(&("t_os".into(), "info".into())), "{types:?}");
    assert!(
        types.contains(&("t_xact_commit".into(), "unknown".into())),
        "{types:?}"
    );
}
