//! End to end: the real `oxmon-sidecar` relaying a test app's own
//! `/metrics` in its scrape — exact values with a prefix and extra labels,
//! name collisions, the series limit — and staying a 200 scrape with
//! `app_relay_up 0` while the app is down or answers garbage, then
//! relaying again when it is back.

mod app;

use app::{expect, scrape_until, series, sidecar, App, Reply};
use oxmon_testkit::parse;

const APP_METRICS: &str = "# HELP requests_total Requests served.
# TYPE requests_total counter
requests_total{code=\"200\",source=\"web\"} 1027
requests_total{code=\"500\"} 3
# HELP queue_depth Jobs waiting.
# TYPE queue_depth gauge
queue_depth 12
# HELP latency_seconds Request latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le=\"0.1\"} 900
latency_seconds_bucket{le=\"1\"} 1020
latency_seconds_bucket{le=\"+Inf\"} 1030
latency_seconds_sum 83.5
latency_seconds_count 1030
# TYPE process_open_fds gauge
process_open_fds 40
";

#[test]
fn relays_with_prefix_and_labels_and_survives_the_app_going_down() {
    let mut app = App::start();
    app.set("/metrics", Reply::text(200, APP_METRICS));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.yml");
    std::fs::write(
        &config,
        format!(
            "relay:
  targets:
  - url: {url}
    name: app
    prefix: myapp_
    labels: {{source: app, pod: api-0}}
",
            url = app.url("/metrics")
        ),
    )
    .unwrap();
    let file = format!("--config.file={}", config.display());
    // The same app once more without a prefix: its process_ family
    // collides with the sidecar's own.
    let plain = format!("--relay.url={}", app.url("/metrics"));
    let s = sidecar(&[&file, &plain]);
    let plain_target = format!("target=127.0.0.1:{}/metrics", app.port);

    let m = s.scrape();
    assert_eq!(
        series(&m, "app_relay_up"),
        expect(&[(&plain_target, 1.0), ("target=app", 1.0)])
    );
    assert_eq!(
        series(&m, "myapp_requests_total"),
        expect(&[
            ("code=200,exported_source=web,pod=api-0,source=app", 1027.0),
            ("code=500,pod=api-0,source=app", 3.0),
        ])
    );
    assert_eq!(
        series(&m, "myapp_queue_depth"),
        expect(&[("pod=api-0,source=app", 12.0)])
    );
    assert_eq!(
        series(&m, "myapp_latency_seconds_bucket"),
        expect(&[
            ("le=+Inf,pod=api-0,source=app", 1030.0),
            ("le=0.1,pod=api-0,source=app", 900.0),
            ("le=1,pod=api-0,source=app", 1020.0),
        ])
    );
    assert_eq!(
        m.value("myapp_latency_seconds_sum", &[("pod", "api-0")]),
        Some(83.5)
    );
    assert_eq!(
        m.value("myapp_process_open_fds", &[("source", "app")]),
        Some(40.0)
    );
    assert_eq!(
        m.family("myapp_requests_total").unwrap().help,
        "Requests served."
    );
    assert_eq!(m.family("myapp_latency_seconds").unwrap().kind, "histogram");
    // Unprefixed: relayed as is, except process_open_fds (the sidecar's).
    assert_eq!(
        series(&m, "requests_total"),
        expect(&[("code=200,source=web", 1027.0), ("code=500", 3.0)])
    );
    assert_eq!(series(&m, "queue_depth"), expect(&[("", 12.0)]));
    let fds = series(&m, "process_open_fds");
    assert_eq!(fds.len(), 1, "{fds:?}");
    assert_ne!(fds[0].1, 40.0);
    assert_eq!(
        series(&m, "app_relay_series_dropped"),
        expect(&[
            (&format!("reason=name_collision,{plain_target}"), 1.0),
            (&format!("reason=series_limit,{plain_target}"), 0.0),
            ("reason=name_collision,target=app", 0.0),
            ("reason=series_limit,target=app", 0.0),
        ])
    );
    assert_eq!(
        m.value("app_scrape_collector_success", &[("collector", "relay")]),
        Some(1.0)
    );

    // The app goes down: the scrape still answers 200, without its families.
    app.stop();
    let resp = s.get("/metrics");
    assert_eq!(resp.status, 200);
    let m = parse(&resp.body);
    assert_eq!(
        series(&m, "app_relay_up"),
        expect(&[(&plain_target, 0.0), ("target=app", 0.0)])
    );
    assert!(m.family("myapp_requests_total").is_none());
    assert!(m.family("requests_total").is_none());
    assert_eq!(
        m.value("app_scrape_collector_success", &[("collector", "relay")]),
        Some(1.0)
    );
    assert!(
        s.log().contains("connecting to http://127.0.0.1:"),
        "{}",
        s.log()
    );

    // It comes back answering garbage: still down, nothing partial.
    app.restart();
    app.set(
        "/metrics",
        Reply::text(200, "queue_depth 5\nthis is { not metrics\n"),
    );
    let m = s.scrape();
    assert_eq!(
        series(&m, "app_relay_up"),
        expect(&[(&plain_target, 0.0), ("target=app", 0.0)])
    );
    assert!(m.family("queue_depth").is_none() && m.family("myapp_queue_depth").is_none());
    app.set("/metrics", Reply::text(500, "oops"));
    assert_eq!(
        s.scrape().value("app_relay_up", &[("target", "app")]),
        Some(0.0)
    );

    // And healthy again.
    app.set("/metrics", Reply::text(200, APP_METRICS));
    let m = scrape_until(&s, "relayed again", |m| {
        m.value("app_relay_up", &[("target", "app")]) == Some(1.0)
    });
    assert_eq!(
        m.value("myapp_requests_total", &[("code", "500")]),
        Some(3.0)
    );
    assert_eq!(series(&m, "queue_depth"), expect(&[("", 12.0)]));
}

#[test]
fn series_limit_timeout_and_body_limit() {
    let app = App::start();
    app.set("/metrics", Reply::text(200, APP_METRICS));
    app.set(
        "/slow",
        Reply {
            delay: std::time::Duration::from_secs(3),
            ..Reply::text(200, APP_METRICS)
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.yml");
    std::fs::write(
        &config,
        format!(
            "relay:
  targets:
  - {{url: '{url}', name: capped, prefix: capped_, max_series: 3}}
  - {{url: '{url}', name: small, prefix: small_, max_body_bytes: 100}}
  - {{url: '{slow}', name: slow, prefix: slow_, timeout: 300ms}}
",
            url = app.url("/metrics"),
            slow = app.url("/slow"),
        ),
    )
    .unwrap();
    let file = format!("--config.file={}", config.display());
    let s = sidecar(&[&file]);
    let started = std::time::Instant::now();
    let m = s.scrape();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        series(&m, "app_relay_up"),
        expect(&[
            ("target=capped", 1.0),
            ("target=slow", 0.0),
            ("target=small", 0.0)
        ])
    );
    // Whole families in name order: latency_seconds (1 series),
    // process_open_fds (1), queue_depth (1); requests_total (2) does not fit.
    assert!(m.family("capped_latency_seconds").is_some());
    assert!(m.family("capped_process_open_fds").is_some());
    assert!(m.family("capped_queue_depth").is_some());
    assert!(m.family("capped_requests_total").is_none());
    assert_eq!(
        m.value(
            "app_relay_series_dropped",
            &[("target", "capped"), ("reason", "series_limit")]
        ),
        Some(2.0)
    );
    let slow = m
        .value("app_relay_scrape_duration_seconds", &[("target", "slow")])
        .unwrap();
    assert!((0.29..1.5).contains(&slow), "{slow}");
    assert!(s.log().contains("larger than 100 bytes"), "{}", s.log());
}
