//! Integration tests: the real `oxmon-redis` binary against real
//! `redis-server`s started here, and against Debian's
//! `prometheus-redis-exporter` for the compatibility comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use oxmon_testkit::{
    parse, require_program, url_encode, wait_until, ExporterProcess, Exposition, Readiness, Redis,
    StartOptions, TestCerts,
};

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-redis");

fn start(args: &[&str], env: &[(&str, &str)]) -> ExporterProcess {
    ExporterProcess::start(BIN, args, env)
}

fn up(e: &Exposition) -> Option<f64> {
    e.value("redis_up", &[])
}

/// A master with data in several databases, slowlog entries, errors, a
/// non-default maxclients, and a connected replica.
fn master_and_replica() -> (Redis, Redis) {
    let master = Redis::start(&["--maxclients", "1234"]);
    master.cli(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    master.cli(&["SET", "counter", "42"]);
    master.cli(&["SET", "greeting", "hello world"]);
    master.cli(&["RPUSH", "queue:a", "1", "2", "3"]);
    master.cli(&["HSET", "user:1", "name", "x", "age", "3"]);
    master.cli(&["SADD", "tags", "a", "b", "c", "d"]);
    master.cli(&["ZADD", "scores", "1", "a", "2", "b"]);
    master.cli(&["XADD", "events", "*", "k", "v"]);
    master.cli(&["XADD", "events", "*", "k", "w"]);
    master.cli(&["XGROUP", "CREATE", "events", "workers", "0"]);
    master.cli(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "w1",
        "COUNT",
        "1",
        "STREAMS",
        "events",
        ">",
    ]);
    master.cli(&["PFADD", "visitors", "a", "b", "c", "d", "e"]);
    // Keys in db1 (5, 2 expiring) and db3 (3).
    let script_db = |db: &str, n: usize, expiring: usize| {
        for i in 0..n {
            let key = format!("k{i}");
            let set = "redis.call('SELECT', ARGV[1]); return redis.call('SET', KEYS[1], 'v')";
            master.cli(&["EVAL", set, "1", key.as_str(), db]);
            if i < expiring {
                let expire =
                    "redis.call('SELECT', ARGV[1]); return redis.call('EXPIRE', KEYS[1], 1000)";
                master.cli(&["EVAL", expire, "1", key.as_str(), db]);
            }
        }
    };
    script_db("1", 5, 2);
    script_db("3", 3, 0);
    // avg_ttl is estimated by the expire cycle; wait until it has run.
    let sampled = wait_until(Duration::from_secs(20), || {
        let ks = master.cli(&["INFO", "keyspace"]);
        let db1 = ks.lines().find(|l| l.starts_with("db1:"))?;
        (!db1.trim_end().ends_with("avg_ttl=0")).then_some(())
    });
    assert!(sampled.is_some(), "avg_ttl of db1 never computed");
    let _ = master.try_cmd(None, &["NOSUCHCOMMAND"]);
    let _ = master.try_cmd(None, &["INCR", "queue:a"]);

    let port = master.port.to_string();
    let replica = Redis::start(&["--replicaof", "127.0.0.1", &port]);
    let linked = wait_until(Duration::from_secs(20), || {
        let info = replica.cli(&["INFO", "replication"]);
        info.contains("master_link_status:up").then_some(())
    });
    assert!(linked.is_some(), "replica did not link:\n{}", replica.log());
    let online = wait_until(Duration::from_secs(20), || {
        master
            .cli(&["INFO", "replication"])
            .contains("state=online")
            .then_some(())
    });
    assert!(online.is_some(), "replica not online on the master");
    (master, replica)
}

fn assert_kind(e: &Exposition, name: &str, kind: &str) {
    let f = e
        .family(name)
        .unwrap_or_else(|| panic!("family {name} missing; have {:?}", e.names()));
    assert_eq!(f.kind, kind, "type of {name}");
}

#[test]
fn every_section_key_checks_and_replica() {
    let (master, replica) = master_and_replica();
    let exp = start(
        &[
            &format!("--redis.addr={}", master.url()),
            "--check-keys=counter,greeting,queue:*,user:*,tags,scores,events,visitors,missing:*",
            "--check-single-keys=db1=k0,db0=does-not-exist,db99=counter",
            "--count-keys=db1=k*,db3=*,db0=queue:*",
            "--check-streams=ev*,tags",
            "--check-single-streams=nostream",
            "--export-client-list",
            "--export-client-port",
            "--check-key-groups=^(queue):,^(us)er:%d+$",
            "--scrape.allowed-targets=127.0.0.1/32",
        ],
        &[],
    );
    let e = exp.scrape();
    assert_eq!(up(&e), Some(1.0), "{}", exp.log());
    assert_eq!(
        e.value("redis_exporter_last_scrape_error", &[("err", "")]),
        Some(0.0)
    );

    // Server
    assert!(e.value("redis_uptime_in_seconds", &[]).is_some());
    assert!(e.value("redis_start_time_seconds", &[]).unwrap() > 1.6e9);
    let info = &e.samples("redis_instance_info")[0];
    assert_eq!(info.label("role"), Some("master"));
    assert_eq!(
        info.label("tcp_port"),
        Some(master.port.to_string().as_str())
    );
    // Clients
    assert!(e.value("redis_connected_clients", &[]).unwrap() >= 1.0);
    // Memory
    assert!(e.value("redis_memory_used_bytes", &[]).unwrap() > 0.0);
    assert_kind(&e, "redis_memory_used_bytes", "gauge");
    // Persistence
    assert_eq!(e.value("redis_rdb_last_bgsave_status", &[]), Some(1.0));
    assert_eq!(e.value("redis_aof_enabled", &[]), Some(0.0));
    // Stats
    assert_kind(&e, "redis_commands_processed_total", "counter");
    assert_kind(&e, "redis_keyspace_hits_total", "counter");
    // Replication
    assert_eq!(e.value("redis_connected_slaves", &[]), Some(1.0));
    let rport = replica.port.to_string();
    assert!(e
        .value(
            "redis_connected_slave_offset_bytes",
            &[
                ("slave_ip", "127.0.0.1"),
                ("slave_port", &rport),
                ("slave_state", "online")
            ]
        )
        .is_some());
    assert!(e
        .value(
            "redis_connected_slave_lag_seconds",
            &[("slave_port", &rport)]
        )
        .is_some());
    // CPU
    assert_kind(&e, "redis_cpu_user_seconds_total", "counter");
    assert_kind(&e, "redis_cpu_sys_main_thread_seconds_total", "counter");
    // Keyspace
    assert_eq!(e.value("redis_db_keys", &[("db", "db0")]), Some(8.0));
    assert_eq!(e.value("redis_db_keys", &[("db", "db1")]), Some(5.0));
    assert_eq!(
        e.value("redis_db_keys_expiring", &[("db", "db1")]),
        Some(2.0)
    );
    assert_eq!(e.value("redis_db_keys", &[("db", "db3")]), Some(3.0));
    assert_eq!(e.value("redis_db_keys", &[("db", "db15")]), Some(0.0));
    let ttl = e
        .value("redis_db_avg_ttl_seconds", &[("db", "db1")])
        .unwrap();
    assert!(ttl > 900.0 && ttl <= 1000.0, "avg ttl {ttl}");
    // Commandstats
    assert!(e.value("redis_commands_total", &[("cmd", "set")]).unwrap() >= 2.0);
    assert_kind(&e, "redis_commands_total", "counter");
    assert_kind(&e, "redis_commands_duration_seconds_total", "counter");
    assert_eq!(
        e.value("redis_commands_failed_calls_total", &[("cmd", "incr")]),
        Some(1.0)
    );
    assert!(e
        .value("redis_commands_rejected_calls_total", &[("cmd", "set")])
        .is_some());
    // Latencystats
    assert_kind(&e, "redis_latency_percentiles_usec", "summary");
    assert!(e
        .value(
            "redis_latency_percentiles_usec",
            &[("cmd", "set"), ("quantile", "99")]
        )
        .is_some());
    assert!(
        e.value("redis_latency_percentiles_usec_count", &[("cmd", "set")])
            .unwrap()
            >= 2.0
    );
    // Errorstats
    assert!(e.value("redis_errors_total", &[("err", "ERR")]).unwrap() >= 1.0);
    assert_eq!(
        e.value("redis_errors_total", &[("err", "WRONGTYPE")]),
        Some(1.0)
    );
    // Config, slowlog
    assert_eq!(e.value("redis_config_maxclients", &[]), Some(1234.0));
    assert_eq!(e.value("redis_config_maxmemory", &[]), Some(0.0));
    assert!(e.value("redis_slowlog_length", &[]).unwrap() > 0.0);
    assert!(e.value("redis_slowlog_last_id", &[]).unwrap() > 0.0);
    assert!(e
        .value("redis_last_slow_execution_duration_seconds", &[])
        .is_some());
    // Cluster mode is off: only the INFO flag.
    assert_eq!(e.value("redis_cluster_enabled", &[]), Some(0.0));
    assert!(e.family("redis_cluster_state").is_none());
    // Exporter self
    assert_kind(&e, "redis_exporter_scrapes_total", "counter");
    assert_kind(&e, "redis_exporter_scrape_duration_seconds", "summary");

    // Key checks: type-aware sizes, numeric values, no series for missing keys.
    let size = |k: &str, db: &str| e.value("redis_key_size", &[("db", db), ("key", k)]);
    assert_eq!(size("counter", "db0"), Some(2.0));
    assert_eq!(size("greeting", "db0"), Some(11.0));
    assert_eq!(size("queue:a", "db0"), Some(3.0));
    assert_eq!(size("user:1", "db0"), Some(2.0));
    assert_eq!(size("tags", "db0"), Some(4.0));
    assert_eq!(size("scores", "db0"), Some(2.0));
    assert_eq!(size("events", "db0"), Some(2.0));
    assert_eq!(size("visitors", "db0"), Some(5.0));
    assert_eq!(size("k0", "db1"), Some(1.0));
    assert_eq!(size("does-not-exist", "db0"), None);
    // SELECT 99 fails: nothing is read from another database instead.
    assert_eq!(size("counter", "db99"), None);
    assert!(e
        .samples("redis_key_size")
        .iter()
        .all(|s| !s.label("key").unwrap().starts_with("missing")));
    assert_eq!(
        e.value("redis_key_value", &[("db", "db0"), ("key", "counter")]),
        Some(42.0)
    );
    assert_eq!(
        e.value("redis_key_value", &[("db", "db0"), ("key", "greeting")]),
        None
    );
    assert_eq!(
        e.value("redis_keys_count", &[("db", "db1"), ("key", "k*")]),
        Some(5.0)
    );
    assert_eq!(
        e.value("redis_keys_count", &[("db", "db3"), ("key", "*")]),
        Some(3.0)
    );
    assert_eq!(
        e.value("redis_keys_count", &[("db", "db0"), ("key", "queue:*")]),
        Some(1.0)
    );

    // CLIENT LIST: the exporter's own connection and the replica's.
    let own = e
        .samples("redis_connected_clients_details")
        .into_iter()
        .find(|s| s.label("name") == Some("oxmon-redis"))
        .expect("own client in CLIENT LIST");
    assert_eq!(own.label("host"), Some("127.0.0.1"));
    assert!(own.label("port").is_some_and(|p| p.parse::<u16>().is_ok()));
    assert!(e
        .samples("redis_connected_clients_details")
        .iter()
        .any(|s| s.label("flags") == Some("S")));

    // Key groups: captures name the group, the rest is unclassified.
    let kg = |db: &str, g: &str| e.value("redis_key_group_count", &[("db", db), ("key_group", g)]);
    assert_eq!(kg("db0", "queue"), Some(1.0));
    assert_eq!(kg("db0", "us"), Some(1.0));
    assert_eq!(kg("db0", "unclassified"), Some(6.0));
    assert_eq!(kg("db1", "unclassified"), Some(5.0));
    assert_eq!(
        e.value("redis_number_of_distinct_key_groups", &[("db", "db0")]),
        Some(3.0)
    );
    assert!(
        e.value(
            "redis_key_group_memory_usage_bytes",
            &[("db", "db0"), ("key_group", "queue")]
        )
        .unwrap()
            > 0.0
    );

    // Streams, groups, consumers; no series for missing keys or non-streams.
    let st = [("db", "db0"), ("stream", "events")];
    assert_eq!(e.value("redis_stream_length", &st), Some(2.0));
    assert_eq!(e.value("redis_stream_groups", &st), Some(1.0));
    assert!(e.value("redis_stream_last_generated_id", &st).unwrap() > 1.6e12);
    let g = [("stream", "events"), ("group", "workers")];
    assert_eq!(e.value("redis_stream_group_consumers", &g), Some(1.0));
    assert_eq!(
        e.value("redis_stream_group_messages_pending", &g),
        Some(1.0)
    );
    let c = [("group", "workers"), ("consumer", "w1")];
    assert_eq!(
        e.value("redis_stream_group_consumer_messages_pending", &c),
        Some(1.0)
    );
    assert!(e
        .value("redis_stream_group_consumer_idle_seconds", &c)
        .is_some());
    assert_eq!(e.samples("redis_stream_length").len(), 1);

    // The replica through /scrape (allowed by 127.0.0.1/32).
    let r = exp.get(&format!("/scrape?target={}", url_encode(&replica.url())));
    assert_eq!(r.status, 200, "{}", r.body);
    let re = parse(&r.body);
    assert_eq!(up(&re), Some(1.0), "{}", r.body);
    let mp = master.port.to_string();
    let ml = [("master_host", "127.0.0.1"), ("master_port", mp.as_str())];
    assert_eq!(re.value("redis_master_link_up", &ml), Some(1.0));
    assert_eq!(re.value("redis_master_sync_in_progress", &ml), Some(0.0));
    assert!(re.value("redis_master_last_io_seconds_ago", &ml).is_some());
    assert!(re.value("redis_slave_repl_offset", &ml).is_some());
    assert_eq!(
        re.value("redis_slave_info", &[("read_only", "1")]),
        Some(1.0)
    );
    assert_eq!(
        re.samples("redis_instance_info")[0].label("role"),
        Some("slave")
    );
    // /scrape answers with the target's metrics only.
    assert!(re.family("process_cpu_seconds_total").is_none());
}

/// The set of label names per family, without `quantile`/`le`.
fn label_names(e: &Exposition) -> BTreeMap<String, (String, BTreeSet<String>)> {
    e.families
        .values()
        .map(|f| {
            let labels = f
                .samples
                .iter()
                .flat_map(|s| s.labels.keys().cloned())
                .filter(|l| l != "quantile" && l != "le")
                .collect();
            (f.name.clone(), (f.kind.clone(), labels))
        })
        .collect()
}

/// Families the Go exporter emits that oxmon-redis cannot match: Go
/// runtime metrics, and build info whose labels describe the Go build.
fn not_comparable(name: &str) -> bool {
    name.starts_with("go_") || name == "redis_exporter_build_info"
}

fn compare(peer: &Exposition, ours: &Exposition, what: &str) -> Vec<String> {
    let ours = label_names(ours);
    let mut problems = Vec::new();
    for (name, (kind, labels)) in label_names(peer) {
        if not_comparable(&name) {
            continue;
        }
        match ours.get(&name) {
            None => problems.push(format!("{what}: missing {name} ({kind})")),
            Some((k, _)) if *k != kind => {
                problems.push(format!("{what}: {name} is {k}, peer has {kind}"))
            }
            Some((_, l)) if *l != labels => {
                problems.push(format!("{what}: {name} labels {l:?}, peer has {labels:?}"))
            }
            _ => {}
        }
    }
    problems
}

#[test]
fn same_families_types_and_labels_as_redis_exporter() {
    let peer_bin = require_program("prometheus-redis-exporter", "prometheus-redis-exporter");
    let (master, replica) = master_and_replica();
    let flags = [
        "--check-keys=counter,queue:*".to_string(),
        "--check-single-keys=greeting".to_string(),
        "--count-keys=db1=k*".to_string(),
        "--check-streams=ev*".to_string(),
        "--export-client-list".to_string(),
        "--include-config-metrics".to_string(),
        "--check-key-groups=^(queue):,^(user):".to_string(),
    ];
    let mut args: Vec<String> = vec![format!("--redis.addr={}", master.url())];
    args.extend(flags.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // The peer serves no /-/ready: wait for its port.
    let peer = ExporterProcess::start_with(
        &peer_bin,
        &argv,
        &[],
        StartOptions {
            readiness: Readiness::TcpConnect,
            ..StartOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut ours_args = argv.clone();
    ours_args.push("--scrape.allowed-targets=127.0.0.1");
    let ours = start(&ours_args, &[]);

    let p = peer.scrape();
    let o = ours.scrape();
    assert_eq!(p.value("redis_up", &[]), Some(1.0), "peer: {}", peer.log());
    let mut problems = compare(&p, &o, "master /metrics");

    let q = format!("/scrape?target={}", url_encode(&replica.url()));
    let pr = parse(&peer.get(&q).body);
    let or = parse(&ours.get(&q).body);
    assert_eq!(pr.value("redis_up", &[]), Some(1.0));
    problems.extend(compare(&pr, &or, "replica /scrape"));
    assert!(
        problems.is_empty(),
        "differences from redis_exporter:\n{}",
        problems.join("\n")
    );
    // The comparison saw the interesting families on both sides.
    for f in [
        "redis_key_size",
        "redis_key_value",
        "redis_keys_count",
        "redis_latency_percentiles_usec",
        "redis_errors_total",
        "redis_connected_slave_offset_bytes",
        "redis_stream_group_consumer_idle_seconds",
        "redis_connected_clients_details",
        "redis_config_key_value",
        "redis_config_value",
        "redis_key_group_count",
        "redis_number_of_distinct_key_groups",
    ] {
        assert!(p.family(f).is_some(), "peer lacks {f}");
    }
    assert!(pr.family("redis_master_link_up").is_some());
}

#[test]
fn redis_down_gives_up_0_and_recovers() {
    let mut redis = Redis::start(&[]);
    let exp = start(&[&format!("--redis.addr={}", redis.url())], &[]);
    assert_eq!(up(&exp.scrape()), Some(1.0));

    redis.stop();
    let r = exp.get("/metrics");
    assert_eq!(r.status, 200);
    let e = parse(&r.body);
    assert_eq!(up(&e), Some(0.0));
    let err = e.samples("redis_exporter_last_scrape_error");
    assert_eq!(err[0].value, 1.0);
    assert!(!err[0].label("err").unwrap().is_empty());
    assert!(e.family("redis_memory_used_bytes").is_none());
    // Still 200 and up 0 on the next scrape too.
    assert_eq!(up(&exp.scrape()), Some(0.0));

    redis.restart();
    // The first scrape after the restart already reconnects.
    let e = exp.scrape();
    assert_eq!(up(&e), Some(1.0), "{}", exp.log());
    assert_eq!(
        e.value("redis_exporter_last_scrape_error", &[("err", "")]),
        Some(0.0)
    );
    assert!(e.value("redis_exporter_scrapes_total", &[]).unwrap() >= 4.0);
}

#[test]
fn kept_connection_is_reused_across_scrapes() {
    let redis = Redis::start(&[]);
    let exp = start(&[&format!("--redis.addr={}", redis.url())], &[]);
    let before = |e: &Exposition| e.value("redis_connections_received_total", &[]).unwrap();
    let first = before(&exp.scrape());
    for _ in 0..5 {
        exp.scrape();
    }
    let e = exp.scrape();
    assert_eq!(before(&e), first, "each scrape opened a new connection");
    assert_eq!(
        e.value("redis_exporter_last_scrape_connect_time_seconds", &[]),
        Some(0.0)
    );
}

const SECRET: &str = "s3cr3t-Pa55word";

fn assert_no_secret(exp: &ExporterProcess, secret: &str) {
    for path in ["/metrics", "/", "/-/healthy"] {
        let body = exp.get(path).body;
        assert!(!body.contains(secret), "{path} shows the password:\n{body}");
    }
    assert!(
        !exp.log().contains(secret),
        "log shows the password:\n{}",
        exp.log()
    );
}

#[test]
fn passwords_acl_users_and_wrong_password() {
    let redis = Redis::start(&["--requirepass", SECRET]);
    redis.cli_auth(
        "",
        SECRET,
        &[
            "ACL",
            "SETUSER",
            "monitor",
            "on",
            ">monitor-pw",
            "~*",
            "+@read",
            "+info",
            "+config|get",
            "+slowlog",
            "+latency",
            "+client",
            "+select",
            "+scan",
            "+ping",
            "+hello",
            "+auth",
        ],
    );

    // REDIS_PASSWORD for the default user; requirepass is not exported
    // with the settings.
    let exp = start(
        &[
            &format!("--redis.addr={}", redis.url()),
            "--include-config-metrics",
        ],
        &[("REDIS_PASSWORD", SECRET)],
    );
    let e = exp.scrape();
    assert_eq!(up(&e), Some(1.0), "{}", exp.log());
    assert_eq!(
        e.value("redis_config_value", &[("key", "maxclients")]),
        Some(10000.0)
    );
    assert!(e
        .value("redis_config_key_value", &[("key", "requirepass")])
        .is_none());
    assert_no_secret(&exp, SECRET);
    drop(exp);

    // An ACL user with REDIS_USER/REDIS_PASSWORD.
    let exp = start(
        &[&format!("--redis.addr={}", redis.url()), "--check-keys=k*"],
        &[("REDIS_USER", "monitor"), ("REDIS_PASSWORD", "monitor-pw")],
    );
    let e = exp.scrape();
    assert_eq!(up(&e), Some(1.0), "{}", exp.log());
    assert!(e.value("redis_memory_used_bytes", &[]).is_some());
    drop(exp);

    // The password file.
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("passwords.json");
    std::fs::write(&pwfile, format!("{{\"{}\": \"{SECRET}\"}}", redis.url())).unwrap();
    let exp = start(
        &[
            &format!("--redis.addr={}", redis.url()),
            &format!("--redis.password-file={}", pwfile.display()),
        ],
        &[],
    );
    assert_eq!(up(&exp.scrape()), Some(1.0), "{}", exp.log());
    drop(exp);

    // Wrong password in the URI: up 0 with HTTP 200, and the password
    // appears nowhere.
    let wrong = "wrong-Secret-42";
    let exp = start(
        &[&format!(
            "--redis.addr=redis://monitor:{wrong}@127.0.0.1:{}",
            redis.port
        )],
        &[],
    );
    let r = exp.get("/metrics");
    assert_eq!(r.status, 200);
    let e = parse(&r.body);
    assert_eq!(up(&e), Some(0.0));
    let err = e.samples("redis_exporter_last_scrape_error")[0]
        .label("err")
        .unwrap()
        .to_string();
    assert!(err.to_ascii_lowercase().contains("auth"), "{err}");
    assert_no_secret(&exp, wrong);

    // Not in --help either, even when set in the environment.
    let help = std::process::Command::new(BIN)
        .arg("--help")
        .env("REDIS_PASSWORD", SECRET)
        .env("REDIS_ADDR", format!("redis://u:{SECRET}@h:1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--redis.password-file"));
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn scrape_endpoint_allow_list_and_per_target_passwords() {
    let open = Redis::start(&[]);
    let locked = Redis::start(&["--requirepass", SECRET]);

    // Without an allow-list only --redis.addr may be scraped.
    let exp = start(&[&format!("--redis.addr={}", open.url())], &[]);
    let ok = exp.get(&format!("/scrape?target={}", url_encode(&open.url())));
    assert_eq!(ok.status, 200);
    assert_eq!(up(&parse(&ok.body)), Some(1.0));
    let refused = exp.get(&format!("/scrape?target={}", url_encode(&locked.url())));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(exp.get("/scrape").status, 400);
    assert_eq!(exp.get("/scrape?target=http%3A%2F%2Fx").status, 400);
    let e = exp.scrape();
    assert_eq!(
        e.value("redis_target_scrape_request_errors_total", &[]),
        Some(3.0)
    );
    drop(exp);

    // With an allow-list and a password file holding only the locked
    // server's password.
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pw.json");
    std::fs::write(&pwfile, format!("{{\"{}\": \"{SECRET}\"}}", locked.url())).unwrap();
    let exp = start(
        &[
            &format!("--redis.addr={}", open.url()),
            "--scrape.allowed-targets=127.0.0.1/32,*.example.invalid",
            &format!("--redis.password-file={}", pwfile.display()),
        ],
        &[],
    );
    let r = exp.get(&format!("/scrape?target={}", url_encode(&locked.url())));
    assert_eq!(r.status, 200);
    assert_eq!(up(&parse(&r.body)), Some(1.0), "{}", exp.log());
    // The bare host:port form works too.
    let r = exp.get(&format!("/scrape?target={}", locked.addr()));
    assert_eq!(up(&parse(&r.body)), Some(1.0));
    // The open server is scraped without the stored password (Redis 7
    // rejects AUTH when no password is set, so up 1 proves none was sent).
    let r = exp.get(&format!("/scrape?target={}", url_encode(&open.url())));
    assert_eq!(up(&parse(&r.body)), Some(1.0));
    // Outside the allow-list.
    for t in [
        "redis://10.9.8.7:6379",
        "redis://192.0.2.1:6379",
        "unix:///tmp/x.sock",
    ] {
        let r = exp.get(&format!("/scrape?target={}", url_encode(t)));
        assert_eq!(r.status, 403, "{t}: {}", r.body);
    }
    assert_no_secret(&exp, SECRET);
    drop(exp);

    // An empty --redis.addr (multi-target only, as redis_exporter allows).
    let exp = start(
        &["--redis.addr=", "--scrape.allowed-targets=127.0.0.1"],
        &[],
    );
    let e = exp.scrape();
    assert!(up(&e).is_none());
    assert!(e.family("process_cpu_seconds_total").is_some());
    let r = exp.get(&format!("/scrape?target={}", open.addr()));
    assert_eq!(up(&parse(&r.body)), Some(1.0));
}

#[test]
fn key_checks_on_a_large_keyspace_stay_within_budget() {
    let redis = Redis::start(&["--enable-debug-command", "yes"]);
    redis.cli(&["DEBUG", "POPULATE", "200000", "key"]);
    assert_eq!(redis.cli(&["DBSIZE"]), "200000");

    // Enough time: the full count.
    let exp = start(
        &[
            &format!("--redis.addr={}", redis.url()),
            "--count-keys=key:*",
            "--check-keys=key:1999*",
            "--check-keys-time-budget=20s",
        ],
        &[],
    );
    let e = exp.scrape();
    assert_eq!(
        e.value("redis_keys_count", &[("db", "db0"), ("key", "key:*")]),
        Some(200000.0)
    );
    // key:1999, key:19990..19999, key:199900..199999.
    assert_eq!(e.samples("redis_key_size").len(), 111);
    assert_eq!(
        e.value("redis_key_size", &[("db", "db0"), ("key", "key:19995")]),
        Some(11.0)
    );
    assert_eq!(
        e.value("redis_exporter_key_check_budget_exhausted_total", &[]),
        Some(0.0)
    );
    drop(exp);

    // A small budget: the scrape stops the scan, answers quickly with
    // redis_up 1, and drops the unfinished count.
    let exp = start(
        &[
            &format!("--redis.addr={}", redis.url()),
            "--count-keys=key:*",
            "--check-keys-batch-size=100",
            "--check-keys-time-budget=30ms",
        ],
        &[],
    );
    let started = Instant::now();
    let e = exp.scrape();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "scrape took {took:?}");
    assert_eq!(up(&e), Some(1.0));
    assert_eq!(
        e.value("redis_keys_count", &[("db", "db0"), ("key", "key:*")]),
        None
    );
    assert_eq!(
        e.value("redis_exporter_key_check_budget_exhausted_total", &[]),
        Some(1.0)
    );
    assert!(e.value("redis_memory_used_bytes", &[]).is_some());
}

#[test]
fn tls_unix_socket_and_namespace() {
    let certs = TestCerts::generate();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock");
    let sock_s = sock.display().to_string();
    let redis = Redis::start_tls(
        &certs.server_cert_file(),
        &certs.server_key_file(),
        &certs.ca_file(),
        &["--unixsocket", &sock_s, "--unixsocketperm", "700"],
    );
    let tls_port = redis.tls_port.unwrap();

    let exp = start(
        &[
            &format!("--redis.addr=rediss://127.0.0.1:{tls_port}"),
            &format!("--tls-ca-cert-file={}", certs.ca_file().display()),
            &format!(
                "--tls-client-cert-file={}",
                certs.client_cert_file().display()
            ),
            &format!(
                "--tls-client-key-file={}",
                certs.client_key_file().display()
            ),
        ],
        &[],
    );
    assert_eq!(up(&exp.scrape()), Some(1.0), "{}", exp.log());
    drop(exp);

    // Without the client certificate the server refuses the handshake.
    let exp = start(
        &[
            &format!("--redis.addr=rediss://127.0.0.1:{tls_port}"),
            &format!("--tls-ca-cert-file={}", certs.ca_file().display()),
            "--connection-timeout=2s",
        ],
        &[],
    );
    assert_eq!(up(&exp.scrape()), Some(0.0));
    drop(exp);

    // A server that does not ask for client certificates: its certificate
    // is not trusted by the system roots unless verification is skipped.
    let open_tls = Redis::start_tls(
        &certs.server_cert_file(),
        &certs.server_key_file(),
        &certs.ca_file(),
        &["--tls-auth-clients", "no"],
    );
    let addr = format!(
        "--redis.addr=rediss://127.0.0.1:{}",
        open_tls.tls_port.unwrap()
    );
    let exp = start(&[&addr, "--connection-timeout=2s"], &[]);
    assert_eq!(up(&exp.scrape()), Some(0.0));
    drop(exp);
    let exp = start(&[&addr, "--skip-tls-verification"], &[]);
    assert_eq!(up(&exp.scrape()), Some(1.0), "{}", exp.log());
    drop(exp);

    let exp = start(
        &[&format!("--redis.addr=unix://{sock_s}"), "--namespace=kv"],
        &[],
    );
    let e = exp.scrape();
    assert_eq!(e.value("kv_up", &[]), Some(1.0), "{}", exp.log());
    assert!(e.value("kv_memory_used_bytes", &[]).is_some());
    assert!(
        e.names().iter().all(|n| !n.starts_with("redis_")),
        "{:?}",
        e.names()
    );
}

#[test]
fn cluster_mode_node_matches_redis_exporter() {
    let peer_bin = require_program("prometheus-redis-exporter", "prometheus-redis-exporter");
    let redis = Redis::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
    ]);
    redis.cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let ok = wait_until(Duration::from_secs(20), || {
        redis
            .cli(&["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
            .then_some(())
    });
    assert!(ok.is_some(), "cluster did not become ok");
    redis.cli(&["SET", "foo", "7"]);
    let args = [
        format!("--redis.addr={}", redis.url()),
        "--check-keys=foo".to_string(),
        "--count-keys=*".to_string(),
    ];
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let peer = ExporterProcess::start_with(
        &peer_bin,
        &argv,
        &[],
        StartOptions {
            readiness: Readiness::TcpConnect,
            ..StartOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ours = start(&argv, &[]);
    let p = peer.scrape();
    let o = ours.scrape();
    assert_eq!(up(&o), Some(1.0), "{}", ours.log());
    assert_eq!(o.value("redis_cluster_enabled", &[]), Some(1.0));
    assert_eq!(o.value("redis_cluster_state", &[]), Some(1.0));
    assert_eq!(o.value("redis_cluster_slots_assigned", &[]), Some(16384.0));
    assert_eq!(o.value("redis_cluster_known_nodes", &[]), Some(1.0));
    // One database in cluster mode; key checks work without SELECT.
    assert_eq!(o.value("redis_db_keys", &[("db", "db0")]), Some(1.0));
    assert!(o.value("redis_db_keys", &[("db", "db1")]).is_none());
    assert_eq!(
        o.value("redis_key_value", &[("db", "db0"), ("key", "foo")]),
        Some(7.0)
    );
    assert_eq!(
        o.value("redis_keys_count", &[("db", "db0"), ("key", "*")]),
        Some(1.0)
    );
    assert!(
        p.family("redis_cluster_state").is_some(),
        "peer lacks cluster metrics"
    );
    let problems = compare(&p, &o, "cluster node");
    assert!(
        problems.is_empty(),
        "differences from redis_exporter:\n{}",
        problems.join("\n")
    );
}

#[test]
fn concurrent_scrapes_share_the_connection() {
    let redis = Redis::start(&[]);
    let exp = start(&[&format!("--redis.addr={}", redis.url())], &[]);
    let connections = |e: &Exposition| e.value("redis_connections_received_total", &[]).unwrap();
    let first = connections(&exp.scrape());
    let url = exp.url("/metrics");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| up(&parse(&oxmon_testkit::http_get(&url, &[]).body)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().iter().all(|u| *u == Some(1.0)));
    }
    assert_eq!(
        connections(&exp.scrape()),
        first,
        "concurrent scrapes opened connections"
    );
}

#[test]
fn hung_redis_is_cut_at_the_deadline_and_recovers() {
    let redis = Redis::start(&[]);
    let pid = redis.pid().unwrap();
    let exp = start(&[&format!("--redis.addr={}", redis.url())], &[]);
    assert_eq!(up(&exp.scrape()), Some(1.0));

    oxmon_testkit::send_signal(pid, oxmon_testkit::Signal::STOP);
    let started = Instant::now();
    let r = exp.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
    let took = started.elapsed();
    oxmon_testkit::send_signal(pid, oxmon_testkit::Signal::CONT);
    assert_eq!(r.status, 200);
    assert!(took < Duration::from_secs(3), "scrape took {took:?}");
    let e = parse(&r.body);
    assert_eq!(up(&e), Some(0.0), "{}", r.body);

    // After SIGCONT the late reply is discarded with the old connection.
    let e = exp.scrape();
    assert_eq!(up(&e), Some(1.0), "{}", exp.log());
    assert!(e.value("redis_memory_used_bytes", &[]).is_some());
}

/// Log lines of `exp` with message `msg` about `target` (logfmt fields).
fn log_lines_about(exp: &ExporterProcess, msg: &str, target: &str) -> usize {
    let field = format!("target={target}");
    exp.log()
        .lines()
        .filter(|l| l.contains(msg) && l.split(' ').any(|f| f == field))
        .count()
}

#[test]
fn a_target_that_stays_down_is_logged_once_then_its_recovery() {
    let mut main = Redis::start(&[]);
    let mut other = Redis::start(&[]);
    let exp = start(
        &[
            &format!("--redis.addr={}", main.url()),
            "--scrape.allowed-targets=127.0.0.1",
        ],
        &[],
    );
    assert_eq!(up(&exp.scrape()), Some(1.0));
    main.stop();
    other.stop();
    let other_path = format!("/scrape?target={}", url_encode(&other.url()));
    for _ in 0..5 {
        assert_eq!(up(&exp.scrape()), Some(0.0));
        // A failed /scrape target is dropped from the cache and re-created
        // by the next request; it is still logged only once.
        assert_eq!(up(&parse(&exp.get(&other_path).body)), Some(0.0));
    }
    assert_eq!(
        log_lines_about(&exp, "target failed", &main.url()),
        1,
        "{}",
        exp.log()
    );
    assert_eq!(
        log_lines_about(&exp, "target failed", &other.url()),
        1,
        "{}",
        exp.log()
    );

    main.restart();
    assert_eq!(up(&exp.scrape()), Some(1.0), "{}", exp.log());
    let recovered = wait_until(Duration::from_secs(5), || {
        (log_lines_about(&exp, "target recovered", &main.url()) == 1).then_some(())
    });
    assert!(recovered.is_some(), "{}", exp.log());
    assert_eq!(
        log_lines_about(&exp, "target recovered", &other.url()),
        0,
        "{}",
        exp.log()
    );
}
