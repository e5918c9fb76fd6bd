//! The throwaway servers start, answer, restart and go away.

use std::time::Duration;

use oxmon_testkit::{
    http_get, http_post, parse, Alertmanager, ExporterProcess, Postgres, Prometheus, Readiness,
    Redis, StartOptions, WebhookReceiver,
};

#[test]
fn postgres_starts_answers_and_restarts_on_the_same_port() {
    let mut pg = Postgres::start();
    assert_eq!(pg.psql("postgres", "SELECT 1"), "1");
    pg.psql(
        "postgres",
        "CREATE DATABASE app; CREATE ROLE reader LOGIN PASSWORD 'r p@ss'",
    );
    pg.psql(
        "app",
        "CREATE TABLE t (a int, b text); INSERT INTO t VALUES (1, 'x'), (2, 'y')",
    );
    assert_eq!(pg.psql("app", "SELECT a, b FROM t ORDER BY a"), "1|x\n2|y");
    assert!(pg
        .try_psql("app", "SELECT * FROM missing")
        .unwrap_err()
        .contains("missing"));
    assert_eq!(
        pg.psql_as("reader", "r p@ss", "app", "SELECT current_user")
            .unwrap(),
        "reader"
    );
    assert!(pg.psql_as("reader", "wrong", "app", "SELECT 1").is_err());
    assert!(pg.dsn("app").starts_with(&format!(
        "postgresql://postgres:postgres-test-pw@127.0.0.1:{}/app",
        pg.port
    )));
    assert!(pg
        .dsn_for("reader", "r p@ss", "app")
        .contains("reader:r%20p%40ss@"));
    assert!(pg.version_num() >= 120000);
    if pg.has_pg_stat_statements() {
        pg.psql("postgres", "CREATE EXTENSION pg_stat_statements");
        let n: i64 = pg
            .psql("postgres", "SELECT count(*) FROM pg_stat_statements")
            .parse()
            .unwrap();
        assert!(n >= 0);
    }
    let port = pg.port;
    pg.stop();
    assert!(pg.try_psql("postgres", "SELECT 1").is_err());
    pg.restart();
    assert_eq!(pg.port, port);
    assert_eq!(pg.psql("app", "SELECT count(*) FROM t"), "2");
    let data_dir = pg.data_dir();
    assert!(data_dir.join("PG_VERSION").is_file());
    drop(pg);
    assert!(!data_dir.exists());
}

#[test]
fn redis_starts_answers_and_restarts() {
    let mut redis = Redis::start(&[]);
    assert_eq!(redis.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(redis.cli(&["GET", "k"]), "v");
    assert_eq!(redis.cli(&["RPUSH", "l", "a", "b"]), "2");
    assert_eq!(redis.cli(&["LRANGE", "l", "0", "-1"]), "a\nb");
    assert!(redis
        .try_cmd(None, &["LPUSH", "k", "x"])
        .unwrap_err()
        .starts_with("WRONGTYPE"));
    assert!(redis.version().starts_with(|c: char| c.is_ascii_digit()));
    let port = redis.port;
    redis.stop();
    assert!(redis.try_cmd(None, &["PING"]).is_err());
    redis.restart();
    assert_eq!(redis.port, port);
    assert_eq!(redis.cli(&["PING"]), "PONG");
    // Persistence is off: the restart starts empty.
    assert_eq!(redis.cli(&["DBSIZE"]), "0");
}

#[test]
fn redis_with_password_and_acl_user() {
    let redis = Redis::start(&["--requirepass", "sekret"]);
    assert!(redis
        .try_cmd(None, &["GET", "x"])
        .unwrap_err()
        .starts_with("NOAUTH"));
    assert_eq!(redis.cli_auth("", "sekret", &["PING"]), "PONG");
    redis.cli_auth(
        "",
        "sekret",
        &["ACL", "SETUSER", "mon", "on", ">monpw", "+info", "+ping"],
    );
    assert_eq!(redis.cli_auth("mon", "monpw", &["PING"]), "PONG");
    assert!(redis
        .try_cmd(Some(("mon", "monpw")), &["GET", "x"])
        .is_err());
    assert!(redis.try_cmd(Some(("mon", "bad")), &["PING"]).is_err());
}

#[test]
fn prometheus_scrapes_itself_and_loads_rules() {
    let config =
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:PORT']\n";
    // Prometheus picks its own port; scrape a target we know is there: itself,
    // via a reload once the port is known.
    let rules = "groups:\n  - name: t\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n";
    let prom = Prometheus::start(&config.replace("PORT", "1"), &[("rules.yml", rules)]);
    prom.reload_with(&[(
        "config.yml",
        &config.replace("PORT", &prom.port.to_string()),
    )]);
    let data = prom.wait_for("up{job=\"self\"}", Duration::from_secs(30), |d| {
        d["result"][0]["value"][1] == "1"
    });
    assert_eq!(data["resultType"], "vector");
    prom.wait_for("job:up:sum", Duration::from_secs(30), |d| {
        d["result"].as_array().is_some_and(|r| !r.is_empty())
    });
    assert_eq!(prom.rule_groups().len(), 1);
    assert!(prom.active_targets().iter().any(|t| t["health"] == "up"));
    let metrics = parse(&http_get(&format!("{}/metrics", prom.url()), &[]).body);
    assert!(metrics.family("prometheus_build_info").is_some());
    assert_eq!(
        metrics
            .family("prometheus_http_requests_total")
            .unwrap()
            .kind,
        "counter"
    );
}

#[test]
fn alertmanager_serves_status_and_delivers_to_a_webhook() {
    let hook = WebhookReceiver::start();
    let config = format!(
        "route:\n  receiver: hook\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{}'\n",
        hook.url("/alerts")
    );
    let am = Alertmanager::start(&config);
    let status = am.status();
    assert_eq!(status["cluster"]["status"], "disabled");
    assert!(status["config"]["original"]
        .as_str()
        .unwrap()
        .contains("hook"));
    am.post_alerts(
        &serde_json::json!([{"labels": {"alertname": "TestAlert", "severity": "warning"}}]),
    );
    assert_eq!(am.alerts().len(), 1);
    let note = hook.wait_for(Duration::from_secs(30), |v| v["status"] == "firing");
    assert_eq!(note["alerts"][0]["labels"]["alertname"], "TestAlert");
    // The receiver also answers plain POSTs.
    let resp = http_post(&hook.url("/x"), &[], b"hello").unwrap();
    assert_eq!(resp.status, 200);
    assert!(hook.received().contains(&"hello".to_string()));
}

#[test]
fn exporter_process_runs_a_real_exporter() {
    // node_exporter from Debian stands in for an oxmon binary here.
    let bin =
        oxmon_testkit::require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let mut exporter = ExporterProcess::start(
        &bin,
        &["--collector.disable-defaults", "--collector.loadavg"],
        &[],
    );
    let metrics = exporter.scrape();
    assert_eq!(metrics.family("node_load1").unwrap().kind, "gauge");
    assert!(
        metrics.value("node_scrape_collector_success", &[("collector", "loadavg")]) == Some(1.0)
    );
    let resp = exporter.get_with("/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    assert!(resp.body.contains("node_load1"));
    assert!(resp.raw_body.len() < resp.body.len());
    let plain = exporter.get("/metrics");
    assert_eq!(plain.header("content-encoding"), None);
    assert!(exporter.is_running());
    let status = exporter.stop();
    assert!(status.is_some(), "node_exporter should exit on SIGTERM");
    assert!(!exporter.log().is_empty());
}

#[test]
fn exporter_that_exits_at_once_reports_its_log() {
    let bin =
        oxmon_testkit::require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let err = ExporterProcess::start_with(
        &bin,
        &["--web.config.file=/nonexistent/web.yml"],
        &[],
        StartOptions {
            readiness: Readiness::HttpReady,
            ..StartOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.contains("exited"), "{err}");
    assert!(err.contains("/nonexistent/web.yml"), "{err}");
}

#[test]
fn tls_client_against_an_mtls_exporter() {
    use oxmon_testkit::{http_get_tls, https_request, TestCerts, TlsOptions};
    let certs = TestCerts::generate();
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
        certs.server_cert_file().display(),
        certs.server_key_file().display(),
        certs.ca_file().display()
    );
    let web_file = certs.dir().join("web.yml");
    std::fs::write(&web_file, web).unwrap();
    let bin =
        oxmon_testkit::require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let flag = format!("--web.config.file={}", web_file.display());
    let exporter = ExporterProcess::start_with(
        &bin,
        &["--collector.disable-defaults", "--collector.loadavg", &flag],
        &[],
        StartOptions {
            readiness: Readiness::TcpConnect,
            ..StartOptions::default()
        },
    )
    .unwrap();
    let url = format!("https://127.0.0.1:{}/metrics", exporter.port);
    let ok = http_get_tls(&url, &certs.ca_pem, Some(certs.client_identity()), &[]).unwrap();
    assert_eq!(ok.status, 200);
    assert!(parse(&ok.body).family("node_load1").is_some());
    // By name, with SNI.
    let by_name = https_request(
        "GET",
        &format!("https://localhost:{}/metrics", exporter.port),
        &TlsOptions {
            ca_pem: &certs.ca_pem,
            client_cert: Some(certs.client_identity()),
            ..TlsOptions::default()
        },
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(by_name.status, 200);
    assert!(
        http_get_tls(&url, &certs.ca_pem, None, &[]).is_err(),
        "no client certificate"
    );
    assert!(
        http_get_tls(&url, &certs.ca_pem, Some(certs.rogue_identity()), &[]).is_err(),
        "rogue client certificate"
    );
    // A client that does not trust the server's CA fails too.
    let rogue_ca = std::fs::read(certs.dir().join("rogue-ca.crt")).unwrap();
    assert!(http_get_tls(&url, &rogue_ca, Some(certs.client_identity()), &[]).is_err());
}

#[test]
fn parses_everything_node_exporter_serves() {
    let bin =
        oxmon_testkit::require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let exporter = ExporterProcess::start(&bin, &["--no-collector.systemd"], &[]);
    let text = exporter.get("/metrics").body;
    let metrics = parse(&text);
    let lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(metrics.sample_count(), lines);
    assert!(metrics.names().len() > 50, "{:?}", metrics.names());
    assert_eq!(
        metrics.family("node_cpu_seconds_total").unwrap().kind,
        "counter"
    );
    assert_eq!(
        metrics.family("go_gc_duration_seconds").unwrap().kind,
        "summary"
    );
    // Every sample landed in a family declared by a TYPE line.
    for fam in metrics.families.values() {
        assert!(
            text.contains(&format!("# TYPE {} {}", fam.name, fam.kind)),
            "{}",
            fam.name
        );
    }
}

#[test]
fn basic_auth_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let web_file = dir.path().join("web.yml");
    // bcrypt("pw"), cost 4.
    std::fs::write(
        &web_file,
        "basic_auth_users:\n  alice: $2b$04$oAxu7ZvJv2xJoYOgmPWYye4zKd9o.y0Hx/YT12IyrRj8snMAumo4S\n",
    )
    .unwrap();
    let bin =
        oxmon_testkit::require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let flag = format!("--web.config.file={}", web_file.display());
    let exporter = ExporterProcess::start(&bin, &["--collector.disable-defaults", &flag], &[]);
    let url = |userinfo: &str| format!("http://{userinfo}127.0.0.1:{}/metrics", exporter.port);
    assert_eq!(http_get(&url(""), &[]).status, 401);
    assert_eq!(http_get(&url("alice:nope@"), &[]).status, 401);
    assert_eq!(http_get(&url("alice:pw@"), &[]).status, 200);
    let header = oxmon_testkit::basic_auth("alice", "pw");
    assert_eq!(
        http_get(&url(""), &[("Authorization", &header)]).status,
        200
    );
}

#[test]
fn redis_with_tls() {
    let certs = oxmon_testkit::TestCerts::generate();
    let redis = Redis::start_tls(
        &certs.server_cert_file(),
        &certs.server_key_file(),
        &certs.ca_file(),
        &[],
    );
    let tls_port = redis.tls_port.unwrap().to_string();
    let ca = certs.ca_file().display().to_string();
    let cert = certs.client_cert_file().display().to_string();
    let key = certs.client_key_file().display().to_string();
    let cli = oxmon_testkit::require_program("redis-cli", "redis-tools");
    let ping = |extra: &[&str]| {
        std::process::Command::new(&cli)
            .args(["-h", "127.0.0.1", "-p", &tls_port, "--tls", "--cacert", &ca])
            .args(extra)
            .arg("PING")
            .output()
            .unwrap()
    };
    let ok = ping(&["--cert", &cert, "--key", &key]);
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "PONG", "{ok:?}");
    // Client certificates are required by default.
    let no_cert = ping(&[]);
    assert_ne!(String::from_utf8_lossy(&no_cert.stdout).trim(), "PONG");
    // The plain port still works.
    assert_eq!(redis.cli(&["PING"]), "PONG");
}
