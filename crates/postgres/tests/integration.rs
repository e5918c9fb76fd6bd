//! Integration tests: the real oxmon-postgres binary against a real
//! PostgreSQL started by the test (oxmon-testkit), and against Debian's
//! prometheus-postgres-exporter for the comparison.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oxmon_testkit::{require_program, ExporterProcess, Exposition, Postgres};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-postgres");

/// A server with two application databases, tables and some activity.
fn seeded_postgres() -> Postgres {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE app1; CREATE DATABASE app2;");
    for db in ["app1", "app2"] {
        pg.psql(
            db,
            "CREATE TABLE orders (id int PRIMARY KEY, note text);
             INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 500) g;
             UPDATE orders SET note = 'x' WHERE id <= 10;
             DELETE FROM orders WHERE id > 490;
             SELECT count(*) FROM orders;
             ANALYZE orders;",
        );
    }
    pg
}

fn start(pg: &Postgres, args: &[&str]) -> ExporterProcess {
    let dsn = pg.dsn("postgres");
    ExporterProcess::start(BIN, args, &[("DATA_SOURCE_NAME", dsn.as_str())])
}

/// Scrapes until `check` passes (statistics reach the views with a delay).
fn scrape_until(
    exp: &ExporterProcess,
    what: &str,
    check: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let started = Instant::now();
    loop {
        let e = exp.scrape();
        if check(&e) {
            return e;
        }
        if started.elapsed() > Duration::from_secs(20) {
            panic!(
                "{what}: not seen within 20 s; last scrape:\n{e:?}\nlog:\n{}",
                exp.log()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn label_names(e: &Exposition, family: &str) -> BTreeSet<Vec<String>> {
    let f = e
        .family(family)
        .unwrap_or_else(|| panic!("family {family} missing; have {:?}", e.names()));
    f.samples
        .iter()
        .map(|s| s.labels.keys().cloned().collect::<Vec<_>>())
        .collect()
}

fn assert_family(e: &Exposition, family: &str, kind: &str, labels: &[&str]) {
    let f = e
        .family(family)
        .unwrap_or_else(|| panic!("family {family} missing; have {:?}", e.names()));
    assert_eq!(f.kind, kind, "type of {family}");
    let want: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    for names in label_names(e, family) {
        assert_eq!(names, want, "label names of {family}");
    }
}

#[test]
fn every_collector_emits_its_families_with_postgres_exporter_labels() {
    let pg = seeded_postgres();
    let stat_statements = pg.has_pg_stat_statements();
    if stat_statements {
        pg.psql(
            "postgres",
            "CREATE EXTENSION pg_stat_statements; SELECT count(*) FROM pg_class;",
        );
    }
    pg.psql(
        "postgres",
        "SELECT pg_create_physical_replication_slot('slot_a', true);",
    );
    let exp = start(
        &pg,
        &[
            "--collector.stat_statements",
            "--collector.stat_statements.limit=5",
            "--collector.stat_statements.include_query",
            "--collector.stat_statements.query_length=20",
        ],
    );
    let want: f64 = pg
        .psql(
            "app2",
            "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'orders'",
        )
        .parse()
        .unwrap();
    assert!(want >= 500.0);
    let e = scrape_until(&exp, "app2.orders inserted tuples", |e| {
        e.value(
            "pg_stat_user_tables_n_tup_ins",
            &[("datname", "app2"), ("relname", "orders")],
        ) == Some(want)
    });
    let server = format!("127.0.0.1:{}", pg.port);
    assert_eq!(e.value("pg_up", &[]), Some(1.0));
    for f in e.samples("pg_scrape_collector_success") {
        assert_eq!(
            f.value,
            1.0,
            "collector {:?} failed:\n{}",
            f.labels,
            exp.log()
        );
    }

    assert_family(
        &e,
        "pg_database_size_bytes",
        "gauge",
        &["datname", "server"],
    );
    assert!(
        e.value(
            "pg_database_size_bytes",
            &[("datname", "app1"), ("server", &server)]
        )
        .unwrap()
            > 1e6
    );
    assert_family(
        &e,
        "pg_database_connection_limit",
        "gauge",
        &["datname", "server"],
    );
    assert_family(
        &e,
        "pg_locks_count",
        "gauge",
        &["datname", "mode", "server"],
    );
    assert_eq!(
        e.samples("pg_locks_count")
            .iter()
            .filter(|s| s.label("datname") == Some("app1"))
            .count(),
        9
    );
    assert_family(&e, "pg_replication_lag_seconds", "gauge", &["server"]);
    assert_eq!(e.value("pg_replication_is_replica", &[]), Some(0.0));
    assert_family(
        &e,
        "pg_replication_slot_slot_is_active",
        "gauge",
        &["server", "slot_name", "slot_type"],
    );
    assert_eq!(
        e.value(
            "pg_replication_slot_slot_is_active",
            &[("slot_name", "slot_a")]
        ),
        Some(0.0)
    );
    assert_family(
        &e,
        "pg_replication_slot_wal_status",
        "gauge",
        &["server", "slot_name", "slot_type", "wal_status"],
    );
    assert_family(
        &e,
        "pg_replication_slots_active",
        "gauge",
        &["database", "server", "slot_name"],
    );
    assert_family(
        &e,
        "pg_roles_connection_limit",
        "gauge",
        &["rolname", "server"],
    );
    assert_eq!(
        e.value("pg_roles_connection_limit", &[("rolname", "postgres")]),
        Some(-1.0)
    );
    assert_family(&e, "pg_settings_shared_buffers_bytes", "gauge", &["server"]);
    assert_eq!(
        e.value("pg_settings_shared_buffers_bytes", &[]),
        Some(32.0 * 1024.0 * 1024.0)
    );
    // The exporter's own session timeout is not what the server reports.
    assert_eq!(
        e.value("pg_settings_statement_timeout_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(e.value("pg_settings_fsync", &[]), Some(0.0));
    assert_family(
        &e,
        "pg_stat_activity_count",
        "gauge",
        &["datname", "server", "state"],
    );
    assert_family(
        &e,
        "pg_stat_activity_max_tx_duration",
        "gauge",
        &["datname", "server", "state"],
    );
    assert_family(
        &e,
        "pg_stat_archiver_archived_count",
        "counter",
        &["server"],
    );
    assert_family(
        &e,
        "pg_stat_archiver_last_archive_age",
        "gauge",
        &["server"],
    );
    assert_family(
        &e,
        "pg_stat_bgwriter_buffers_alloc_total",
        "counter",
        &["server"],
    );
    assert_family(
        &e,
        "pg_stat_database_xact_commit",
        "counter",
        &["datid", "datname", "server"],
    );
    assert_family(
        &e,
        "pg_stat_database_numbackends",
        "gauge",
        &["datid", "datname", "server"],
    );
    assert_family(
        &e,
        "pg_stat_database_conflicts_confl_lock",
        "counter",
        &["datid", "datname", "server"],
    );
    assert!(
        e.value("pg_stat_database_tup_inserted", &[("datname", "app1")])
            .unwrap()
            >= 500.0
    );
    assert_family(
        &e,
        "pg_stat_user_tables_seq_scan",
        "counter",
        &["datname", "relname", "schemaname", "server"],
    );
    assert_family(
        &e,
        "pg_stat_user_tables_n_dead_tup",
        "gauge",
        &["datname", "relname", "schemaname", "server"],
    );
    assert_family(
        &e,
        "pg_stat_user_tables_table_size_bytes",
        "gauge",
        &["datname", "relname", "schemaname", "server"],
    );
    let deleted: f64 = pg
        .psql(
            "app1",
            "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = 'orders'",
        )
        .parse()
        .unwrap();
    assert!(deleted >= 10.0);
    assert_eq!(
        e.value(
            "pg_stat_user_tables_n_tup_del",
            &[("datname", "app1"), ("relname", "orders")]
        ),
        Some(deleted)
    );
    assert!(
        e.value(
            "pg_stat_user_tables_last_analyze",
            &[("datname", "app1"), ("relname", "orders")]
        )
        .unwrap()
            > 1.6e9
    );
    assert_family(
        &e,
        "pg_statio_user_tables_heap_blocks_hit",
        "counter",
        &["datname", "relname", "schemaname", "server"],
    );
    assert!(e
        .value(
            "pg_statio_user_tables_heap_blocks_hit",
            &[("datname", "app2"), ("relname", "orders")]
        )
        .is_some());
    assert_family(&e, "pg_wal_segments", "gauge", &["server"]);
    assert!(e.value("pg_wal_size_bytes", &[]).unwrap() > 0.0);
    assert_family(
        &e,
        "pg_postmaster_start_time_seconds",
        "gauge",
        &["process_name", "server"],
    );
    assert_family(
        &e,
        "pg_static",
        "untyped",
        &["server", "short_version", "version"],
    );
    assert_family(&e, "pg_exporter_scrapes_total", "counter", &[]);
    assert_family(&e, "pg_exporter_last_scrape_error", "gauge", &[]);
    if stat_statements {
        assert_family(
            &e,
            "pg_stat_statements_calls_total",
            "counter",
            &["datname", "queryid", "server", "user"],
        );
        assert!(
            e.samples("pg_stat_statements_seconds_total").len() <= 5,
            "top-N limit"
        );
        assert_family(
            &e,
            "pg_stat_statements_query_id",
            "counter",
            &["query", "queryid", "server"],
        );
        for s in e.samples("pg_stat_statements_query_id") {
            assert!(s.label("query").unwrap().chars().count() <= 20, "{s:?}");
        }
    }

    // pg_stat_progress_vacuum has no rows unless a vacuum runs: its query
    // must still succeed (checked through scrape_collector_success above).
    assert_eq!(
        e.value(
            "pg_scrape_collector_success",
            &[("collector", "stat_progress_vacuum")]
        ),
        Some(1.0)
    );

    // --exclude-databases keeps app2 out of the per-database collectors.
    let only = start(
        &pg,
        &["--exclude-databases=app2", "--no-collector.settings"],
    );
    let e = scrape_until(&only, "app1 tables", |e| {
        e.value("pg_stat_user_tables_seq_scan", &[("datname", "app1")])
            .is_some()
    });
    assert!(e
        .value("pg_stat_user_tables_seq_scan", &[("datname", "app2")])
        .is_none());
    assert!(
        e.family("pg_settings_fsync").is_none(),
        "--no-collector.settings"
    );
}

#[test]
fn server_down_gives_pg_up_0_and_recovers_without_restart() {
    let mut pg = Postgres::start();
    let exp = start(&pg, &[]);
    assert_eq!(exp.scrape().value("pg_up", &[]), Some(1.0));
    pg.stop();
    let started = Instant::now();
    let r = exp.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    let e = oxmon_testkit::parse(&r.body);
    assert_eq!(e.value("pg_up", &[]), Some(0.0));
    assert_eq!(e.value("pg_exporter_last_scrape_error", &[]), Some(1.0));
    assert_eq!(
        e.value("pg_scrape_collector_success", &[("collector", "database")]),
        Some(0.0)
    );
    pg.restart();
    let e = scrape_until(&exp, "pg_up 1 after restart", |e| {
        e.value("pg_up", &[]) == Some(1.0)
    });
    assert!(e.family("pg_stat_database_xact_commit").is_some());
}

#[test]
fn slow_custom_query_is_cut_at_the_deadline_and_cancelled() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries.yaml");
    std::fs::write(
        &queries,
        "pg_slow:\n  query: \"SELECT 1 AS v FROM pg_sleep(30)\"\n  metrics:\n    - v: {usage: GAUGE, description: slow}\n\
         pg_fast:\n  query: \"SELECT datname, numbackends FROM pg_stat_database WHERE datname IS NOT NULL\"\n  metrics:\n    - datname: {usage: LABEL, description: db}\n    - numbackends: {usage: GAUGE, description: backends}\n",
    )
    .unwrap();
    let exp = start(
        &pg,
        &[&format!("--extend.query-path={}", queries.display())],
    );
    let started = Instant::now();
    let r = exp.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
    let took = started.elapsed();
    assert_eq!(r.status, 200);
    assert!(took < Duration::from_millis(2600), "scrape took {took:?}");
    let e = oxmon_testkit::parse(&r.body);
    assert_eq!(
        e.value("pg_scrape_collector_success", &[("collector", "queries")]),
        Some(0.0)
    );
    // The built-in collectors do not wait behind the slow user query.
    assert_eq!(e.value("pg_up", &[]), Some(1.0));
    assert_eq!(
        e.value(
            "pg_scrape_collector_success",
            &[("collector", "stat_database")]
        ),
        Some(1.0)
    );
    // The backend stops running the query: it was cancelled, not abandoned.
    let mut running = String::new();
    for _ in 0..30 {
        running = pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()",
        );
        if running == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(running, "0", "the slow query still runs on the server");
    assert!(
        exp.log().contains("cut off at the scrape deadline"),
        "{}",
        exp.log()
    );
    // The user-query connection is usable again on the next scrape.
    let e = exp.scrape();
    assert!(
        e.value("pg_fast_numbackends", &[("datname", "postgres")])
            .is_some(),
        "{:?}",
        e.names()
    );
}

#[test]
fn bad_login_gives_pg_up_0_and_never_shows_the_password() {
    let pg = Postgres::start();
    let secret = "Wr0ng-Pass-Leak-7731";
    let dsn = format!(
        "postgresql://postgres:{secret}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    let exp = ExporterProcess::start(
        BIN,
        &["--log.level=debug"],
        &[("DATA_SOURCE_NAME", dsn.as_str())],
    );
    let r = exp.get("/metrics");
    assert_eq!(r.status, 200);
    let e = oxmon_testkit::parse(&r.body);
    assert_eq!(e.value("pg_up", &[]), Some(0.0));
    assert!(!r.body.contains(secret));
    let landing = exp.get("/");
    assert!(!landing.body.contains(secret));
    let log = exp.log();
    assert!(log.contains("password authentication failed"), "{log}");
    assert!(!log.contains(secret), "password in log:\n{log}");
}

#[test]
fn password_never_appears_in_logs_output_or_help() {
    let pg = Postgres::start();
    let secret = "Sup3r-S3cret-Leak-Check";
    pg.psql(
        "postgres",
        &format!("CREATE ROLE mon LOGIN PASSWORD '{secret}' IN ROLE pg_monitor;"),
    );
    let dsn = pg.dsn_for("mon", secret, "postgres");
    let kv = format!(
        "host=127.0.0.1 port={} user=mon password='{secret}' dbname=postgres sslmode=disable",
        pg.port
    );
    for source in [dsn.as_str(), kv.as_str()] {
        let exp =
            ExporterProcess::start(BIN, &["--log.level=debug"], &[("DATA_SOURCE_NAME", source)]);
        let body = exp.get("/metrics").body;
        let e = oxmon_testkit::parse(&body);
        assert_eq!(e.value("pg_up", &[]), Some(1.0), "{}", exp.log());
        assert!(!body.contains(secret));
        assert!(!exp.get("/").body.contains(secret));
        let log = exp.log();
        assert!(log.contains("postgresql://mon:***@127.0.0.1"), "{log}");
        assert!(!log.contains(secret), "password in log:\n{log}");
    }
    // --help shows the environment variables but never their values.
    let out = Command::new(BIN)
        .arg("--help")
        .env("DATA_SOURCE_NAME", &dsn)
        .env("DATA_SOURCE_PASS", secret)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("DATA_SOURCE_NAME"), "{help}");
    assert!(!help.contains(secret), "{help}");
    // A broken DSN is reported without echoing it.
    let out = Command::new(BIN)
        .env(
            "DATA_SOURCE_NAME",
            format!("postgresql://mon:{secret}@127.0.0.1:99999/x"),
        )
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("DATA_SOURCE_NAME entry 1") && err.contains("port"),
        "{err}"
    );
    assert!(!err.contains(secret), "{err}");
}

fn run_to_exit(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--web.listen-address=127.0.0.1:0")
        .env_remove("DATA_SOURCE_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("exporter did not exit on a broken config");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn broken_queries_and_config_files_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("queries.yaml");
    std::fs::write(
        &q,
        "pg_ok:\n  query: \"SELECT 1 AS v\"\n  metrics:\n    - v:\n        usage: \"GAUGE\"\n        description: one\n\
         pg_bad:\n  query: \"SELECT 1 AS v\"\n  metrics:\n    - v:\n        usage: \"GAGE\"\n        description: typo\n",
    )
    .unwrap();
    let (ok, out) = run_to_exit(&[&format!("--extend.query-path={}", q.display())]);
    assert!(!ok);
    assert!(out.contains(&q.display().to_string()), "{out}");
    assert!(
        out.contains("line 11") && out.contains("GAGE") && out.contains("pg_bad"),
        "{out}"
    );

    std::fs::write(&q, "pg_map:\n  query: \"SELECT 'a' AS s\"\n  metrics:\n    - s: {usage: MAPPEDMETRIC, description: x}\n").unwrap();
    let (ok, out) = run_to_exit(&[&format!("--extend.query-path={}", q.display())]);
    assert!(!ok);
    assert!(
        out.contains("pg_map")
            && out.contains("(line 1)")
            && out.contains("column")
            && out.contains("metric_mapping"),
        "{out}"
    );

    let c = dir.path().join("pg.yml");
    std::fs::write(
        &c,
        "auth_modules:\n  m:\n    type: userpass\n    userpass:\n      username: [oops\n",
    )
    .unwrap();
    let (ok, out) = run_to_exit(&[&format!("--config.file={}", c.display())]);
    assert!(!ok);
    assert!(
        out.contains(&c.display().to_string()) && out.contains("line"),
        "{out}"
    );
}

#[test]
fn probe_needs_an_allow_list_and_uses_auth_modules() {
    let pg = seeded_postgres();
    let dir = tempfile::tempdir().unwrap();
    let pass_file = dir.path().join("pw");
    std::fs::write(
        &pass_file,
        format!("{}\n", oxmon_testkit::POSTGRES_PASSWORD),
    )
    .unwrap();
    let target = format!("127.0.0.1:{}/postgres", pg.port);

    // No allow-list: every target is refused, with the way out in the message.
    let open = ExporterProcess::start(BIN, &[], &[]);
    let r = open.get(&format!("/probe?target={target}"));
    assert_eq!(r.status, 403);
    assert!(r.body.contains("allowed_targets"), "{}", r.body);

    let config = dir.path().join("pg.yml");
    std::fs::write(
        &config,
        format!(
            r#"auth_modules:
  mon:
    type: userpass
    userpass:
      username: postgres
      password_file: {}
    options:
      sslmode: disable
  tls:
    type: userpass
    userpass:
      username: postgres
      password: unused
    options:
      sslmode: require
probe:
  allowed_targets: ["127.0.0.0/8", "db-*.internal:5432"]
"#,
            pass_file.display()
        ),
    )
    .unwrap();
    let exp = ExporterProcess::start(BIN, &[&format!("--config.file={}", config.display())], &[]);
    // /metrics without a DSN: only the exporter's own metrics.
    assert!(exp.scrape().family("pg_up").is_none());

    let r = exp.get(&format!("/probe?target={target}&auth_module=mon"));
    assert_eq!(r.status, 200, "{}", r.body);
    let e = oxmon_testkit::parse(&r.body);
    assert_eq!(e.value("pg_up", &[]), Some(1.0), "{}", exp.log());
    assert!(
        e.value("pg_stat_user_tables_n_live_tup", &[("datname", "app1")])
            .is_some()
            || e.family("pg_stat_user_tables_seq_scan").is_some()
    );
    assert!(e.family("pg_settings_max_connections").is_some());
    assert!(e.family("process_cpu_seconds_total").is_none());

    let r = exp.get(&format!("/probe?target={target}&auth_module=nope"));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown auth_module"), "{}", r.body);
    let r = exp.get("/probe?target=192.0.2.10:5432/postgres&auth_module=mon");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = exp.get("/probe?target=db-1.internal:6432/postgres&auth_module=mon");
    assert_eq!(r.status, 403, "port outside the pattern: {}", r.body);
    let r = exp.get(&format!(
        "/probe?target=postgres:x@127.0.0.1:{}/postgres",
        pg.port
    ));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("auth_module"), "{}", r.body);
    let r = exp.get("/probe");
    assert_eq!(r.status, 400);
    // The URL cannot weaken the module's TLS (disable is the module's own
    // here, so require is allowed and disable is fine; nothing is weaker).
    let r = exp.get(&format!(
        "/probe?target={target}?sslmode=disable&auth_module=mon"
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = exp.get(&format!(
        "/probe?target={target}?sslmode=disable&auth_module=tls"
    ));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("weaker"), "{}", r.body);

    // A wrong password in the module: pg_up 0, HTTP 200.
    std::fs::write(&pass_file, "wrong\n").unwrap();
    let r = exp.get(&format!(
        "/probe?target=127.0.0.1:{}/app1&auth_module=mon",
        pg.port
    ));
    assert_eq!(r.status, 200);
    assert_eq!(oxmon_testkit::parse(&r.body).value("pg_up", &[]), Some(0.0));
}

/// Starts pg_receivewal streaming from `slot` so that pg_stat_replication
/// has a row; killed on drop.
struct Receiver {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_receiver(pg: &Postgres) -> Receiver {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(pg.bin_dir().join("pg_receivewal"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-S",
            "slot_r",
            "-D",
        ])
        .arg(dir.path())
        .env("PGPASSWORD", oxmon_testkit::POSTGRES_PASSWORD)
        .env("PGAPPNAME", "walrecv")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pg_receivewal");
    Receiver { child, _dir: dir }
}

#[test]
fn every_family_of_prometheus_postgres_exporter_is_present_with_same_type_and_labels() {
    let peer_bin = require_program(
        "prometheus-postgres-exporter",
        "prometheus-postgres-exporter",
    );
    let pg = seeded_postgres();
    pg.psql(
        "postgres",
        "SELECT pg_create_physical_replication_slot('slot_r', true);",
    );
    let _receiver = start_receiver(&pg);
    let dsn = pg.dsn("postgres");
    let peer = ExporterProcess::start(&peer_bin, &[], &[("DATA_SOURCE_NAME", dsn.as_str())]);
    let ours = start(&pg, &[]);
    // Wait until the WAL receiver streams, so the replication families exist on both sides.
    let peer_e = scrape_until(&peer, "peer pg_stat_replication", |e| {
        e.family("pg_stat_replication_pg_wal_lsn_diff").is_some()
    });
    let ours_e = scrape_until(&ours, "our pg_stat_replication", |e| {
        e.family("pg_stat_replication_pg_wal_lsn_diff").is_some()
    });
    let common::Comparison {
        compared,
        missing,
        different,
    } = common::compare(&peer_e, &ours_e);
    assert!(compared > 200, "the peer exposed only {compared} families");
    eprintln!(
        "compared {compared} families of prometheus-postgres-exporter: {} missing, {} different",
        missing.len(),
        different.len()
    );
    assert!(missing.is_empty(), "families missing here: {missing:?}");
    assert!(
        different.is_empty(),
        "families that differ:\n{}",
        different.join("\n")
    );
    assert!(
        ours_e
            .value(
                "pg_stat_replication_pg_wal_lsn_diff",
                &[("application_name", "walrecv"), ("slot_name", "slot_r")]
            )
            .is_some(),
        "{:?}",
        ours_e.samples("pg_stat_replication_pg_wal_lsn_diff")
    );
}

#[test]
fn tls_modes_through_rustls() {
    let certs = oxmon_testkit::TestCerts::generate();
    // The server's key must belong to the server's OS user.
    let tls_dir = tempfile::Builder::new()
        .prefix("oxmon-pg-tls")
        .tempdir_in("/tmp")
        .unwrap();
    let cert = tls_dir.path().join("server.crt");
    let key = tls_dir.path().join("server.key");
    std::fs::copy(certs.server_cert_file(), &cert).unwrap();
    std::fs::copy(certs.server_key_file(), &key).unwrap();
    chown_to_postgres(tls_dir.path(), &[&cert, &key]);
    let pg = Postgres::start_with(&[
        ("ssl", "on"),
        ("ssl_cert_file", &format!("'{}'", cert.display())),
        ("ssl_key_file", &format!("'{}'", key.display())),
    ]);
    pg.psql("postgres", "SELECT 1");
    let base = format!(
        "postgresql://postgres:{}@{{host}}:{}/postgres",
        oxmon_testkit::POSTGRES_PASSWORD,
        pg.port
    );
    let ca = certs.ca_file();
    let cases: Vec<(String, f64)> = vec![
        (
            format!("{}?sslmode=require", base.replace("{host}", "127.0.0.1")),
            1.0,
        ),
        (
            format!("{}?sslmode=prefer", base.replace("{host}", "127.0.0.1")),
            1.0,
        ),
        (
            format!(
                "{}?sslmode=verify-full&sslrootcert={}",
                base.replace("{host}", "localhost"),
                ca.display()
            ),
            1.0,
        ),
        (
            format!(
                "{}?sslmode=verify-ca&sslrootcert={}",
                base.replace("{host}", "127.0.0.1"),
                ca.display()
            ),
            1.0,
        ),
        // A CA that did not sign the server certificate.
        (
            format!(
                "{}?sslmode=verify-ca&sslrootcert={}",
                base.replace("{host}", "127.0.0.1"),
                cert.display()
            ),
            0.0,
        ),
    ];
    for (dsn, want) in cases {
        let exp = ExporterProcess::start(BIN, &[], &[("DATA_SOURCE_NAME", dsn.as_str())]);
        let e = exp.scrape();
        assert_eq!(e.value("pg_up", &[]), Some(want), "{dsn}\n{}", exp.log());
        if want == 1.0 {
            let ssl = pg.psql(
                "postgres",
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'oxmon-postgres'",
            );
            assert_eq!(ssl, "t", "{dsn}: the exporter's sessions are not encrypted");
        }
    }
}

fn chown_to_postgres(dir: &Path, files: &[&Path]) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let ids = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| (f[2].parse::<u32>().unwrap(), f[3].parse::<u32>().unwrap()))
    });
    use std::os::unix::fs::PermissionsExt;
    for f in files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    if let Some((uid, gid)) = ids {
        if rustix_is_root() {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
            for f in files {
                std::os::unix::fs::chown(f, Some(uid), Some(gid)).unwrap();
            }
        }
    }
}

fn rustix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn several_dsns_are_scraped_in_parallel_with_a_server_label() {
    let a = Postgres::start();
    let mut b = Postgres::start();
    // The second one over its Unix socket, in key=value form.
    let dsns = format!(
        "{},host={} port={} user=postgres dbname=postgres sslmode=disable",
        a.dsn("postgres"),
        b.socket_dir().display(),
        b.port
    );
    let exp = ExporterProcess::start(BIN, &[], &[("DATA_SOURCE_NAME", dsns.as_str())]);
    let server_a = format!("127.0.0.1:{}", a.port);
    let server_b = format!("{}:{}", b.socket_dir().display(), b.port);
    let e = exp.scrape();
    assert_eq!(
        e.value("pg_up", &[("server", &server_a)]),
        Some(1.0),
        "{}",
        exp.log()
    );
    assert_eq!(
        e.value("pg_up", &[("server", &server_b)]),
        Some(1.0),
        "{}",
        exp.log()
    );
    assert!(e
        .value(
            "pg_stat_database_xact_commit",
            &[("server", &server_b), ("datname", "postgres")]
        )
        .is_some());
    b.stop();
    let e = exp.scrape();
    assert_eq!(e.value("pg_up", &[("server", &server_a)]), Some(1.0));
    assert_eq!(e.value("pg_up", &[("server", &server_b)]), Some(0.0));
    assert!(e
        .value("pg_stat_database_xact_commit", &[("server", &server_a)])
        .is_some());
    assert!(e
        .value("pg_stat_database_xact_commit", &[("server", &server_b)])
        .is_none());
}

#[test]
fn custom_queries_follow_master_auto_discovery_and_cache() {
    let pg = seeded_postgres();
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries.yaml");
    std::fs::write(
        &queries,
        r#"
pg_each_db:
  query: "SELECT current_database() AS datname, 1 AS one, 'ok' AS state, interval '1.5 seconds' AS took, 7 AS undescribed"
  metrics:
    - datname: {usage: LABEL, description: "Database"}
    - one: {usage: COUNTER, description: "One"}
    - state: {usage: MAPPEDMETRIC, description: "State", metric_mapping: {ok: 1, bad: 0}}
    - took: {usage: DURATION, description: "Time"}
pg_once:
  master: true
  cache_seconds: 300
  query: "SELECT count(*) AS backends, now() AS at FROM pg_stat_activity"
  metrics:
    - backends: {usage: GAUGE, description: "Backends"}
    - at: {usage: GAUGE, description: "When"}
pg_never:
  runonserver: "<10.0.0"
  query: "SELECT 1 AS x"
  metrics:
    - x: {usage: GAUGE, description: "Old servers only"}
"#,
    )
    .unwrap();
    let exp = start(
        &pg,
        &[
            &format!("--extend.query-path={}", queries.display()),
            "--auto-discover-databases",
        ],
    );
    let e = exp.scrape();
    assert_eq!(
        e.value("pg_scrape_collector_success", &[("collector", "queries")]),
        Some(1.0),
        "{}",
        exp.log()
    );
    let dbs: BTreeSet<&str> = e
        .samples("pg_each_db_one")
        .iter()
        .filter_map(|s| s.label("datname"))
        .collect();
    assert_eq!(dbs, BTreeSet::from(["app1", "app2", "postgres"]));
    assert_eq!(e.family("pg_each_db_one").unwrap().kind, "counter");
    assert_eq!(
        e.value("pg_each_db_state", &[("datname", "app1")]),
        Some(1.0)
    );
    assert_eq!(
        e.value("pg_each_db_took_milliseconds", &[("datname", "app2")]),
        Some(1500.0)
    );
    assert_eq!(e.family("pg_each_db_undescribed").unwrap().kind, "untyped");
    assert_eq!(e.samples("pg_once_backends").len(), 1);
    assert!(e.family("pg_never_x").is_none());
    assert_eq!(
        e.family("pg_exporter_user_queries_load_error")
            .unwrap()
            .samples[0]
            .value,
        0.0
    );
    // cache_seconds: the second scrape reuses the first result.
    let at = e.value("pg_once_at", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(exp.scrape().value("pg_once_at", &[]), Some(at));
}

/// Backends the exporter holds open as role `mon`.
fn backends_of_mon(pg: &Postgres) -> u32 {
    pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'mon'",
    )
    .parse()
    .unwrap()
}

#[test]
fn probe_requests_varying_connection_parameters_stay_within_the_per_host_bound() {
    let pg = Postgres::start();
    // Twelve databases to name as targets; the per-database collectors
    // visit only `postgres`, so each target adds one connection of its own.
    let mut sql = String::from("CREATE ROLE mon LOGIN PASSWORD 'mon-pw' IN ROLE pg_monitor;\n");
    for i in 1..12 {
        sql.push_str(&format!("CREATE DATABASE d{i};\n"));
    }
    pg.psql("postgres", &sql);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pg.yml");
    std::fs::write(
        &config,
        "auth_modules:\n  mon:\n    type: userpass\n    userpass: {username: mon, password: mon-pw}\n    options: {sslmode: disable}\n\
         probe:\n  allowed_targets: ['127.0.0.1']\n",
    )
    .unwrap();
    // The default bounds: 8 connections per host, 500 in all.
    let exp = ExporterProcess::start(
        BIN,
        &[
            &format!("--config.file={}", config.display()),
            "--include-databases=postgres",
        ],
        &[],
    );
    for i in 0..120 {
        let db = match i % 12 {
            0 => "postgres".to_string(),
            n => format!("d{n}"),
        };
        let target = format!(
            "postgresql://127.0.0.1:{}/{db}?application_name=probe-{i}&connect_timeout={}",
            pg.port,
            1 + i % 9
        );
        let r = exp.get(&format!(
            "/probe?target={}&auth_module=mon",
            oxmon_testkit::url_encode(&target)
        ));
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        assert_eq!(
            oxmon_testkit::parse(&r.body).value("pg_up", &[]),
            Some(1.0),
            "request {i}:\n{}",
            exp.log()
        );
    }
    // Connections dropped from the cache close once their scrape is done.
    let started = Instant::now();
    let mut open = backends_of_mon(&pg);
    while open > 8 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        open = backends_of_mon(&pg);
    }
    assert!(
        (1..=8).contains(&open),
        "{open} exporter connections are open"
    );
    // The URL's application_name never reached the server.
    let names = pg.psql(
        "postgres",
        "SELECT string_agg(DISTINCT application_name, ',') FROM pg_stat_activity WHERE usename = 'mon'",
    );
    assert_eq!(names, "oxmon-postgres");
    // Other connection parameters are refused, not used.
    let r = exp.get(&format!(
        "/probe?target={}&auth_module=mon",
        oxmon_testkit::url_encode(&format!(
            "postgresql://127.0.0.1:{}/postgres?options=-c%20work_mem%3D1MB",
            pg.port
        ))
    ));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("options"), "{}", r.body);
}

const ONE_QUERY: &str =
    "pg_one:\n  query: \"SELECT 1 AS v\"\n  master: true\n  metrics:\n    - v: {usage: GAUGE, description: one}\n";
const TWO_QUERY: &str =
    "pg_two:\n  query: \"SELECT 2 AS v\"\n  master: true\n  metrics:\n    - v: {usage: GAUGE, description: two}\n";

fn probe_config(allowed: &str) -> String {
    format!(
        "auth_modules:\n  mon:\n    type: userpass\n    userpass: {{username: postgres, password: '{}'}}\n    options: {{sslmode: disable}}\n\
         probe:\n  allowed_targets: ['{allowed}']\n",
        oxmon_testkit::POSTGRES_PASSWORD
    )
}

/// The log lines about a failed reload of `path`.
fn reload_failures(exp: &ExporterProcess, path: &Path) -> Vec<String> {
    exp.log()
        .lines()
        .filter(|l| l.contains("reload failed") && l.contains(&path.display().to_string()))
        .map(str::to_string)
        .collect()
}

#[test]
fn sighup_reloads_the_queries_and_config_files_and_a_broken_one_keeps_the_old() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries.yaml");
    let config = dir.path().join("pg.yml");
    std::fs::write(&queries, ONE_QUERY).unwrap();
    std::fs::write(&config, probe_config("10.0.0.0/8")).unwrap();
    let mut exp = start(
        &pg,
        &[
            &format!("--extend.query-path={}", queries.display()),
            &format!("--config.file={}", config.display()),
        ],
    );
    let probe = format!(
        "/probe?target=127.0.0.1:{}/postgres&auth_module=mon",
        pg.port
    );
    let e = exp.scrape();
    assert_eq!(e.value("pg_one_v", &[]), Some(1.0));
    assert!(e.family("pg_two_v").is_none());
    assert_eq!(exp.get(&probe).status, 403);

    // New contents: a second query, and an allow-list with this server.
    std::fs::write(&queries, format!("{ONE_QUERY}{TWO_QUERY}")).unwrap();
    std::fs::write(&config, probe_config("127.0.0.1")).unwrap();
    exp.signal(oxmon_testkit::Signal::HUP);
    let reloaded = oxmon_testkit::wait_until(Duration::from_secs(10), || {
        exp.scrape().value("pg_two_v", &[]).filter(|v| *v == 2.0)
    });
    assert!(
        reloaded.is_some(),
        "pg_two_v never appeared:\n{}",
        exp.log()
    );
    let r = exp.get(&probe);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        oxmon_testkit::parse(&r.body).value("pg_two_v", &[]),
        Some(2.0)
    );
    let load_error = |e: &Exposition| {
        e.samples("pg_exporter_user_queries_load_error")
            .first()
            .map(|s| s.value)
    };
    assert_eq!(load_error(&exp.scrape()), Some(0.0));

    // Broken files keep what runs; the log names the file and the line.
    std::fs::write(
        &queries,
        format!("{TWO_QUERY}pg_bad:\n  query: \"SELECT 1 AS v\"\n  metrics:\n    - v:\n        usage: \"GAGE\"\n"),
    )
    .unwrap();
    std::fs::write(&config, "auth_modules:\n  mon: [\n").unwrap();
    exp.signal(oxmon_testkit::Signal::HUP);
    let logged = oxmon_testkit::wait_until(Duration::from_secs(10), || {
        let q = reload_failures(&exp, &queries);
        let c = reload_failures(&exp, &config);
        (!q.is_empty() && !c.is_empty()).then_some((q, c))
    });
    let (q, c) = logged.unwrap_or_else(|| panic!("no reload failure logged:\n{}", exp.log()));
    assert!(q[0].contains("line") && q[0].contains("GAGE"), "{q:?}");
    assert!(c[0].contains("line"), "{c:?}");
    let e = exp.scrape();
    assert_eq!(e.value("pg_one_v", &[]), Some(1.0));
    assert_eq!(e.value("pg_two_v", &[]), Some(2.0));
    assert_eq!(load_error(&e), Some(1.0));
    assert_eq!(exp.get(&probe).status, 200);
    assert!(exp.is_running());
}

#[test]
fn sigterm_cancels_a_running_query_on_the_server() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries.yaml");
    std::fs::write(
        &queries,
        "pg_slow:\n  query: \"SELECT 1 AS v FROM pg_sleep(30)\"\n  master: true\n  metrics:\n    - v: {usage: GAUGE, description: slow}\n",
    )
    .unwrap();
    let mut exp = start(
        &pg,
        &[&format!("--extend.query-path={}", queries.display())],
    );
    let url = exp.url("/metrics");
    let scrape = std::thread::spawn(move || {
        oxmon_testkit::http_try_get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "60")])
    });
    let sleeping = |state: &str| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' \
                 AND pid <> pg_backend_pid() {state}"
            ),
        )
    };
    let running = oxmon_testkit::wait_until(Duration::from_secs(10), || {
        (sleeping("AND state = 'active'") == "1").then_some(())
    });
    assert!(running.is_some(), "the query never ran:\n{}", exp.log());

    let stopping = Instant::now();
    exp.signal(oxmon_testkit::Signal::TERM);
    let status = exp.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        exp.log()
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        stopping.elapsed()
    );
    // The scrape in flight was answered, not dropped.
    let answer = scrape.join().unwrap().expect("the scrape got no answer");
    assert_eq!(answer.status, 200);
    // No backend is left sleeping once the exporter is gone.
    let gone = oxmon_testkit::wait_until(Duration::from_secs(2), || {
        (sleeping("") == "0").then_some(())
    });
    assert!(
        gone.is_some(),
        "pg_sleep still runs on the server after the exporter exited:\n{}",
        exp.log()
    );
}

#[test]
fn failing_probe_requests_with_a_long_target_keep_the_log_short() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pg.yml");
    std::fs::write(&config, probe_config("127.0.0.1")).unwrap();
    let exp = ExporterProcess::start(BIN, &[&format!("--config.file={}", config.display())], &[]);
    let startup_lines = exp.log().lines().count();
    let long = "a".repeat(5000);
    let down = oxmon_testkit::free_port();
    let refused = format!("{long}.example:5432/postgres");
    let unreachable = format!("127.0.0.1:{down}/{long}");
    let no_such_database = format!("127.0.0.1:{}/{long}", pg.port);
    for _ in 0..20 {
        let r = exp.get(&format!(
            "/probe?target={}&auth_module=mon",
            oxmon_testkit::url_encode(&refused)
        ));
        assert_eq!(r.status, 403, "{}", r.body);
        for target in [&unreachable, &no_such_database] {
            let r = exp.get(&format!(
                "/probe?target={}&auth_module=mon",
                oxmon_testkit::url_encode(target)
            ));
            assert_eq!(r.status, 200, "{}", r.body);
            let e = oxmon_testkit::parse(&r.body);
            assert_eq!(e.value("pg_up", &[]), Some(0.0));
            // Only `up` ran: the other collectors need the connection.
            assert_eq!(e.samples("pg_scrape_collector_success").len(), 1);
        }
    }
    let log = exp.log();
    let lines: Vec<&str> = log.lines().skip(startup_lines).collect();
    // 60 failing requests about three targets: one line each.
    assert_eq!(lines.len(), 3, "{log}");
    for about in [
        "target=\"aaaa".to_string(),
        format!("{down}/aaa"),
        format!("{}/aaa", pg.port),
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.contains(&about)).count(),
            1,
            "{log}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.contains(".example")).count(),
        0,
        "the refused name is cut before its end:\n{log}"
    );
    let longest = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    assert!(longest < 2048, "a log line of {longest} bytes:\n{log}");
}

#[test]
fn absurd_scrape_timeout_headers_are_clamped_on_metrics_and_probe() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pg.yml");
    std::fs::write(&config, probe_config("127.0.0.1")).unwrap();
    let exp = start(&pg, &[&format!("--config.file={}", config.display())]);
    let probe = format!(
        "/probe?target=127.0.0.1:{}/postgres&auth_module=mon",
        pg.port
    );
    for timeout in ["1e19", "1e308", "inf", "NaN", "-5", "0", "junk"] {
        for path in ["/metrics", probe.as_str()] {
            let r = exp.get_with(path, &[("X-Prometheus-Scrape-Timeout-Seconds", timeout)]);
            assert_eq!(r.status, 200, "{path} with {timeout}: {}", r.body);
            let e = oxmon_testkit::parse(&r.body);
            assert_eq!(e.value("pg_up", &[]), Some(1.0), "{path} with {timeout}");
            assert_eq!(
                e.value("pg_scrape_collector_success", &[("collector", "database")]),
                Some(1.0),
                "{path} with {timeout}"
            );
        }
    }
    assert!(
        exp.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        exp.log()
    );
}
