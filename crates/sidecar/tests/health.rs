//! End to end: the real `oxmon-sidecar` polling a small HTTP app of the
//! test: JSON health bodies whose components flip between scrapes, a body
//! that is not JSON, a 503, a timeout, a secret header read from a file,
//! and a TLS endpoint with a CA file and a client certificate.

mod app;

use std::time::Duration;

use app::{expect, scrape_until, series, sidecar, App, AppTls, Reply};
use oxmon_testkit::TestCerts;

const CHECK: &str = "app_health_component_up";

#[test]
fn components_flip_between_scrapes() {
    let app = App::start();
    app.set(
        "/health",
        Reply::json(
            200,
            r#"{"status":"UP","checks":{"database":"UP","cache":{"status":"DOWN"}}}"#,
        ),
    );
    let url = format!("--health.url={}", app.url("/health"));
    let s = sidecar(&[&url, "--health.interval=300ms", "--health.timeout=300ms"]);
    let target = format!("127.0.0.1:{}/health", app.port);
    let t = format!("target={target}");
    let with = |c: &str| format!("component={c},{t}");

    let m = scrape_until(&s, "the first check", |m| !series(m, CHECK).is_empty());
    assert_eq!(
        series(&m, CHECK),
        expect(&[(&with("cache"), 0.0), (&with("database"), 1.0)])
    );
    assert_eq!(series(&m, "app_up"), expect(&[(&t, 1.0)]));
    assert_eq!(series(&m, "app_health_status_code"), expect(&[(&t, 200.0)]));
    assert_eq!(
        series(&m, "app_health_parse_errors_total"),
        expect(&[(&t, 0.0)])
    );
    let took = m
        .value("app_health_check_duration_seconds", &[("target", &target)])
        .unwrap();
    assert!(took > 0.0 && took < 1.0, "{took}");

    // Spring answers 503 with the body when something is down.
    app.set(
        "/health",
        Reply::json(
            503,
            r#"{"status":"DOWN","checks":{"database":"DOWN","cache":"UP","model":{"status":"UP"}}}"#,
        ),
    );
    let m = scrape_until(&s, "the flip", |m| series(m, CHECK).len() == 3);
    assert_eq!(
        series(&m, CHECK),
        expect(&[
            (&with("cache"), 1.0),
            (&with("database"), 0.0),
            (&with("model"), 1.0)
        ])
    );
    assert_eq!(series(&m, "app_up"), expect(&[(&t, 0.0)]));
    assert_eq!(series(&m, "app_health_status_code"), expect(&[(&t, 503.0)]));

    // A component that is no longer reported loses its series.
    app.set(
        "/health",
        Reply::json(
            200,
            r#"{"status":"healthy","components":{"database":"ok"}}"#,
        ),
    );
    let m = scrape_until(&s, "components removed", |m| series(m, CHECK).len() == 1);
    assert_eq!(series(&m, CHECK), expect(&[(&with("database"), 1.0)]));
    assert_eq!(series(&m, "app_up"), expect(&[(&t, 1.0)]));
    assert_eq!(
        series(&m, "app_health_parse_errors_total"),
        expect(&[(&t, 0.0)])
    );
}

#[test]
fn non_json_503_timeout_missing_path_and_a_secret_header() {
    let app = App::start();
    app.set("/text", Reply::text(200, "OK"));
    app.set("/unavailable", Reply::text(503, "Service Unavailable"));
    app.set(
        "/slow",
        Reply {
            delay: Duration::from_secs(3),
            ..Reply::json(200, r#"{"status":"UP"}"#)
        },
    );
    app.set(
        "/nopath",
        Reply::json(200, r#"{"status":"UP","checks":{}}"#),
    );
    app.set("/secret", Reply::json(200, r#"{"status":"UP"}"#));

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cr3t-t0ken\n").unwrap();
    let config = dir.path().join("sidecar.yml");
    std::fs::write(
        &config,
        format!(
            "health:
  interval: 400ms
  timeout: 300ms
  targets:
  - {{url: '{text}', name: text}}
  - {{url: '{unavailable}', name: unavailable}}
  - {{url: '{slow}', name: slow}}
  - url: '{nopath}'
    name: nopath
    components_path: details.components
  - url: '{secret}'
    name: secret
    headers:
      Authorization: {{file: {token}, prefix: 'Bearer '}}
      X-Inline: plain-value
",
            text = app.url("/text"),
            unavailable = app.url("/unavailable"),
            slow = app.url("/slow"),
            nopath = app.url("/nopath"),
            secret = app.url("/secret"),
            token = token.display(),
        ),
    )
    .unwrap();
    let file = format!("--config.file={}", config.display());
    let s = sidecar(&[&file]);

    let errors = |m: &oxmon_testkit::Exposition, t: &str| {
        m.value("app_health_parse_errors_total", &[("target", t)])
            .unwrap_or(0.0)
    };
    let m = scrape_until(&s, "every target checked twice", |m| {
        ["text", "unavailable", "nopath"]
            .iter()
            .all(|t| errors(m, t) >= 2.0)
            && m.value("app_up", &[("target", "slow")]).is_some()
            && m.value("app_up", &[("target", "secret")]).is_some()
    });
    // Not JSON: app_up from the status code alone, a parse error each time.
    assert_eq!(
        series(&m, "app_up"),
        expect(&[
            ("target=nopath", 1.0),
            ("target=secret", 1.0),
            ("target=slow", 0.0),
            ("target=text", 1.0),
            ("target=unavailable", 0.0),
        ])
    );
    assert_eq!(
        series(&m, "app_health_status_code"),
        expect(&[
            ("target=nopath", 200.0),
            ("target=secret", 200.0),
            ("target=slow", 0.0),
            ("target=text", 200.0),
            ("target=unavailable", 503.0),
        ])
    );
    assert_eq!(errors(&m, "secret"), 0.0);
    assert_eq!(errors(&m, "slow"), 0.0);
    assert!(series(&m, CHECK).is_empty());
    // The timeout cut the slow check at 300 ms.
    let slow = m
        .value("app_health_check_duration_seconds", &[("target", "slow")])
        .unwrap();
    assert!((0.29..1.5).contains(&slow), "{slow}");

    // The header file was read; the secret is nowhere in logs or metrics.
    let seen = app.headers_seen("/secret");
    assert!(
        seen.contains(&("authorization".into(), "Bearer s3cr3t-t0ken".into())),
        "{seen:?}"
    );
    assert!(seen.contains(&("x-inline".into(), "plain-value".into())));
    assert!(seen
        .iter()
        .any(|(k, v)| k == "user-agent" && v.starts_with("oxmon-sidecar/")));
    let body = s.get("/metrics").body;
    assert!(!body.contains("s3cr3t") && !s.log().contains("s3cr3t"));
    assert!(!body.contains("plain-value") && !s.log().contains("plain-value"));
    // The timeout was logged once, naming the target but not the secret.
    assert!(
        s.log().contains("no answer from http://127.0.0.1:"),
        "{}",
        s.log()
    );
}

#[test]
fn tls_endpoint_with_ca_file_and_client_certificate() {
    let certs = TestCerts::generate();
    let app = App::start_tls(AppTls::new(&certs, true));
    app.set(
        "/health",
        Reply::json(
            200,
            r#"{"status":"Healthy","entries":{"db":{"status":"Healthy"}}}"#,
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.yml");
    let url = app.url("/health");
    std::fs::write(
        &config,
        format!(
            "health:
  interval: 500ms
  targets:
  - url: {url}
    name: mtls
    up_values: [Healthy]
    tls:
      ca_file: {ca}
      cert_file: {cert}
      key_file: {key}
  - url: {url}
    name: no-client-cert
    tls: {{ca_file: {ca}}}
  - url: {url}
    name: insecure
    up_values: [Healthy]
    tls: {{insecure_skip_verify: true, cert_file: {cert}, key_file: {key}}}
  - url: {url}
    name: system-roots
    tls: {{cert_file: {cert}, key_file: {key}}}
",
            ca = certs.ca_file().display(),
            cert = certs.client_cert_file().display(),
            key = certs.client_key_file().display(),
        ),
    )
    .unwrap();
    let file = format!("--config.file={}", config.display());
    let s = sidecar(&[&file]);
    let m = scrape_until(&s, "four TLS checks", |m| {
        series(m, "app_up").len() == 4 && series(m, CHECK).len() == 2
    });
    assert_eq!(
        series(&m, "app_up"),
        expect(&[
            ("target=insecure", 1.0),
            ("target=mtls", 1.0),
            ("target=no-client-cert", 0.0),
            ("target=system-roots", 0.0),
        ])
    );
    assert_eq!(
        series(&m, CHECK),
        expect(&[
            ("component=db,target=insecure", 1.0),
            ("component=db,target=mtls", 1.0)
        ])
    );
    assert_eq!(
        m.value("app_health_status_code", &[("target", "no-client-cert")]),
        Some(0.0)
    );
    // Failures are logged with their cause.
    let log = s.log();
    assert!(
        log.contains("target=system-roots err=\"TLS handshake with https://127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains("target=no-client-cert err=\"HTTP request to https://127.0.0.1:"),
        "{log}"
    );
    assert!(log.contains("CertificateRequired"), "{log}");
}
