//! `INFO ALL` → metric families, the redis_exporter way.
//!
//! Source: the reply of `INFO ALL` (every section: Server, Clients, Memory,
//! Persistence, Stats, Replication, CPU, Modules, Errorstats, Cluster,
//! Keyspace, Commandstats, Latencystats, Sentinel) and of `CLUSTER INFO`.
//!
//! Emits the plain fields of [`crate::names`] (`redis_memory_used_bytes`,
//! `redis_commands_processed_total`, ...), every `cluster_*` field as a
//! gauge, and the structured ones: `redis_commands_total{cmd}`,
//! `redis_commands_duration_seconds_total{cmd}`,
//! `redis_commands_rejected_calls_total{cmd}`,
//! `redis_commands_failed_calls_total{cmd}`,
//! `redis_latency_percentiles_usec{cmd}` (summary), `redis_errors_total{err}`,
//! `redis_db_keys{db}`, `redis_db_keys_expiring{db}`,
//! `redis_db_avg_ttl_seconds{db}`, `redis_db_keys_with_expiring_items{db}`
//! (Redis 7.4's `subexpiry`: keys with expiring hash fields),
//! `redis_db_keys_cached{db}` (KeyDB's `cached_keys`; keyspace fields are
//! read by name, so 7.4's extra field is not taken for it, as
//! redis_exporter 1.45 did), `redis_connected_slave_offset_bytes` and
//! `redis_connected_slave_lag_seconds{slave_ip,slave_port,slave_state}`,
//! `redis_master_link_up{master_host,master_port}` and the other replica
//! fields, `redis_start_time_seconds`, `redis_instance_info{...}`,
//! `redis_slave_info{master_host,master_port,read_only}` and the Sentinel
//! section's `redis_sentinel_*`.
//!
//! [`parse_info`] is a pure function: any text gives families and never a
//! panic; malformed lines are skipped.

use std::collections::HashMap;

use oxmon_core::MetricFamily;

use crate::names::Names;

/// Facts about the instance that the rest of the scrape needs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InfoFacts {
    /// `cluster_enabled:1`.
    pub cluster_enabled: bool,
    /// Major version from `redis_version`.
    pub major_version: Option<u32>,
    /// `role` (`master`, `slave`).
    pub role: String,
    /// Number of `key:value` lines seen.
    pub fields: usize,
}

/// Parses an INFO value the way redis_exporter does: `ok`/`true` are 1,
/// `err`/`fail`/`false` are 0, anything else must be a number.
pub fn parse_value(v: &str) -> Option<f64> {
    match v {
        "ok" | "true" => Some(1.0),
        "err" | "fail" | "false" => Some(0.0),
        _ => v.parse::<f64>().ok(),
    }
}

/// Splits `a=1,b=2` into pairs; `None` when a part lacks its `=`.
fn kv_pairs(v: &str) -> impl Iterator<Item = Option<(&str, &str)>> {
    v.split(',').map(|p| p.split_once('='))
}

fn kv_get<'a>(v: &'a str, key: &str) -> Option<&'a str> {
    v.split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `master_host`, `master_1_host` (KeyDB multi-master) → `Some("host")`.
fn master_field(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("master_")?;
    let rest = match rest.split_once('_') {
        Some((n, tail)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => tail,
        _ => rest,
    };
    Some(rest)
}

fn is_numbered(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Default)]
struct Instance<'a> {
    role: &'a str,
    redis_version: &'a str,
    redis_build_id: &'a str,
    redis_mode: &'a str,
    server_mode: &'a str,
    os: &'a str,
    maxmemory_policy: &'a str,
    tcp_port: &'a str,
    run_id: &'a str,
    process_id: &'a str,
    master_host: &'a str,
    master_port: &'a str,
    slave_read_only: &'a str,
}

/// Parses `INFO ALL` text into `out`. `db_count` is the number of
/// databases (`CONFIG GET databases`), used to emit zero key counts for
/// empty databases; `now_unix` turns `uptime_in_seconds` into
/// `redis_start_time_seconds`.
pub fn parse_info(
    text: &str,
    names: &Names,
    db_count: usize,
    now_unix: f64,
    out: &mut Vec<MetricFamily>,
) -> InfoFacts {
    let mut facts = InfoFacts::default();
    let mut inst = Instance::default();
    let mut section = "";

    let mut cmd_total = names.counter("commands_total");
    let mut cmd_duration = names.counter("commands_duration_seconds_total");
    let mut cmd_rejected = names.counter("commands_rejected_calls_total");
    let mut cmd_failed = names.counter("commands_failed_calls_total");
    let mut errors = names.counter("errors_total");
    let mut db_keys = names.gauge("db_keys");
    let mut db_expiring = names.gauge("db_keys_expiring");
    let mut db_ttl = names.gauge("db_avg_ttl_seconds");
    let mut db_expiring_items = names.gauge("db_keys_with_expiring_items");
    let mut db_cached = names.gauge("db_keys_cached");
    let mut slave_offset = names.gauge("connected_slave_offset_bytes");
    let mut slave_lag = names.gauge("connected_slave_lag_seconds");
    let mut link_up = names.gauge("master_link_up");
    let mut last_io = names.gauge("master_last_io_seconds_ago");
    let mut sync_in_progress = names.gauge("master_sync_in_progress");
    let mut link_down_since = names.gauge("master_link_down_since_seconds");
    let mut slave_repl_offset = names.gauge("slave_repl_offset");
    let mut sentinel_status = names.gauge("sentinel_master_status");
    let mut sentinel_slaves = names.gauge("sentinel_master_slaves");
    let mut sentinel_sentinels = names.gauge("sentinel_master_sentinels");
    let mut latency = names.gauge("latency_percentiles_usec");
    latency.kind = oxmon_core::MetricType::Summary;

    let mut cmd_stats: HashMap<&str, (u64, f64)> = HashMap::new();
    let mut percentiles: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    let mut seen_dbs = vec![false; db_count.min(4096)];

    for raw in text.split('\n') {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("# ") {
            section = name.trim();
            continue;
        }
        if line.len() < 2 {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        facts.fields += 1;

        match key {
            "role" => inst.role = value,
            "redis_version" => inst.redis_version = value,
            "redis_build_id" => inst.redis_build_id = value,
            "redis_mode" => inst.redis_mode = value,
            "server_mode" => inst.server_mode = value,
            "os" => inst.os = value,
            "maxmemory_policy" => inst.maxmemory_policy = value,
            "tcp_port" => inst.tcp_port = value,
            "run_id" => inst.run_id = value,
            "process_id" => inst.process_id = value,
            "slave_read_only" => inst.slave_read_only = value,
            "cluster_enabled" => facts.cluster_enabled = value == "1",
            _ => {}
        }
        match master_field(key) {
            Some("host") => inst.master_host = value,
            Some("port") => inst.master_port = value,
            _ => {}
        }
        let master_labels = [
            ("master_host", inst.master_host),
            ("master_port", inst.master_port),
        ];

        match section {
            "Commandstats" => {
                if let Some(cmd) = key.strip_prefix("cmdstat_") {
                    let calls = kv_get(value, "calls").and_then(|v| v.parse::<f64>().ok());
                    let usec = kv_get(value, "usec").and_then(|v| v.parse::<f64>().ok());
                    if let (Some(calls), Some(usec)) = (calls, usec) {
                        let l = [("cmd", cmd)];
                        cmd_total.add(&l, calls);
                        cmd_duration.add(&l, usec / 1e6);
                        let rejected = kv_get(value, "rejected_calls").and_then(|v| v.parse().ok());
                        let failed = kv_get(value, "failed_calls").and_then(|v| v.parse().ok());
                        if let (Some(r), Some(f)) = (rejected, failed) {
                            cmd_rejected.add(&l, r);
                            cmd_failed.add(&l, f);
                        }
                        cmd_stats.insert(cmd, (calls as u64, usec));
                    }
                }
                continue;
            }
            "Latencystats" => {
                if let Some(cmd) = key.strip_prefix("latency_percentiles_usec_") {
                    let mut qs = Vec::with_capacity(3);
                    let mut ok = true;
                    for pair in kv_pairs(value) {
                        let parsed = pair.and_then(|(p, v)| {
                            let q = p.strip_prefix('p')?.parse::<f64>().ok()?;
                            Some((q, v.parse::<f64>().ok()?))
                        });
                        match parsed {
                            Some(qv) => qs.push(qv),
                            None => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    if ok {
                        percentiles.push((cmd, qs));
                    }
                }
                continue;
            }
            "Errorstats" => {
                if let Some(err) = key.strip_prefix("errorstat_") {
                    if let Some(n) = kv_get(value, "count").and_then(|v| v.parse::<f64>().ok()) {
                        errors.add(&[("err", err)], n);
                    }
                }
                continue;
            }
            "Keyspace" => {
                if let Some(idx) = key.strip_prefix("db") {
                    let keys = kv_get(value, "keys").and_then(|v| v.parse::<f64>().ok());
                    let expires = kv_get(value, "expires").and_then(|v| v.parse::<f64>().ok());
                    if let (Some(keys), Some(expires)) = (keys, expires) {
                        let l = [("db", key)];
                        db_keys.add(&l, keys);
                        db_expiring.add(&l, expires);
                        if let Some(ttl) =
                            kv_get(value, "avg_ttl").and_then(|v| v.parse::<f64>().ok())
                        {
                            db_ttl.add(&l, ttl / 1000.0);
                        }
                        for (field, family) in [
                            ("subexpiry", &mut db_expiring_items),
                            ("cached_keys", &mut db_cached),
                        ] {
                            if let Some(n) = kv_get(value, field).and_then(|v| v.parse().ok()) {
                                family.add(&l, n);
                            }
                        }
                        if let Ok(i) = idx.parse::<usize>() {
                            if let Some(s) = seen_dbs.get_mut(i) {
                                *s = true;
                            }
                        }
                    }
                    continue;
                }
            }
            "Replication" => {
                match master_field(key) {
                    Some("link_status") => {
                        link_up.add(&master_labels, if value == "up" { 1.0 } else { 0.0 });
                        continue;
                    }
                    Some("last_io_seconds_ago") => {
                        last_io.add(&master_labels, value.parse::<i64>().unwrap_or(0) as f64);
                        continue;
                    }
                    Some("sync_in_progress") => {
                        sync_in_progress
                            .add(&master_labels, value.parse::<i64>().unwrap_or(0) as f64);
                        continue;
                    }
                    Some("link_down_since_seconds") => {
                        if let Some(v) = parse_value(value) {
                            link_down_since.add(&master_labels, v);
                        }
                        continue;
                    }
                    _ => {}
                }
                if key == "slave_repl_offset" {
                    slave_repl_offset.add(&master_labels, value.parse::<i64>().unwrap_or(0) as f64);
                    continue;
                }
                if is_numbered(key, "slave") {
                    let offset = kv_get(value, "offset").and_then(|v| v.parse::<f64>().ok());
                    let well_formed = kv_pairs(value).all(|p| p.is_some());
                    if let (Some(offset), true) = (offset, well_formed) {
                        let l = [
                            ("slave_ip", kv_get(value, "ip").unwrap_or("")),
                            ("slave_port", kv_get(value, "port").unwrap_or("")),
                            ("slave_state", kv_get(value, "state").unwrap_or("")),
                        ];
                        match kv_get(value, "lag").map(|v| v.parse::<f64>()) {
                            Some(Ok(lag)) => {
                                slave_offset.add(&l, offset);
                                slave_lag.add(&l, lag);
                            }
                            None => {
                                slave_offset.add(&l, offset);
                            }
                            Some(Err(_)) => {}
                        }
                    }
                    continue;
                }
            }
            "Server" if key == "uptime_in_seconds" => {
                if let Ok(up) = value.parse::<f64>() {
                    out.push(names.gauge1("start_time_seconds", (now_unix - up).floor()));
                }
            }
            "Sentinel" => {
                if is_numbered(key, "master") {
                    let name = kv_get(value, "name").unwrap_or("");
                    let addr = kv_get(value, "address").unwrap_or("");
                    let status = kv_get(value, "status").unwrap_or("");
                    sentinel_status.add(
                        &[
                            ("master_name", name),
                            ("master_address", addr),
                            ("master_status", status),
                        ],
                        if status == "ok" { 1.0 } else { 0.0 },
                    );
                    let l = [("master_name", name), ("master_address", addr)];
                    if let Some(v) = kv_get(value, "slaves").and_then(|v| v.parse().ok()) {
                        sentinel_slaves.add(&l, v);
                    }
                    if let Some(v) = kv_get(value, "sentinels").and_then(|v| v.parse().ok()) {
                        sentinel_sentinels.add(&l, v);
                    }
                    continue;
                }
                if key.starts_with("sentinel_") {
                    if let Some(v) = parse_value(value) {
                        out.push(names.gauge1(&sanitize(key), v));
                    }
                    continue;
                }
            }
            _ => {}
        }

        push_field(names, key, value, out);
    }

    for (i, seen) in seen_dbs.iter().enumerate() {
        if !seen {
            let db = format!("db{i}");
            let l = [("db", db.as_str())];
            db_keys.add(&l, 0.0);
            db_expiring.add(&l, 0.0);
        }
    }

    for (cmd, qs) in percentiles {
        if let Some(&(count, sum)) = cmd_stats.get(cmd) {
            latency.add_summary(&[("cmd", cmd)], qs, sum, count);
        }
    }

    facts.major_version = inst
        .redis_version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok());
    facts.role = inst.role.to_string();

    if facts.fields > 0 {
        let mode = if inst.redis_mode.is_empty() {
            inst.server_mode
        } else {
            inst.redis_mode
        };
        let mut info = names.gauge("instance_info");
        info.add(
            &[
                ("role", inst.role),
                ("redis_version", inst.redis_version),
                ("redis_build_id", inst.redis_build_id),
                ("redis_mode", mode),
                ("os", inst.os),
                ("maxmemory_policy", inst.maxmemory_policy),
                ("tcp_port", inst.tcp_port),
                ("run_id", inst.run_id),
                ("process_id", inst.process_id),
            ],
            1.0,
        );
        out.push(info);
        if inst.role == "slave" {
            let mut slave = names.gauge("slave_info");
            slave.add(
                &[
                    ("master_host", inst.master_host),
                    ("master_port", inst.master_port),
                    ("read_only", inst.slave_read_only),
                ],
                1.0,
            );
            out.push(slave);
        }
    }

    out.extend([
        cmd_total,
        cmd_duration,
        cmd_rejected,
        cmd_failed,
        errors,
        db_keys,
        db_expiring,
        db_ttl,
        db_expiring_items,
        db_cached,
        slave_offset,
        slave_lag,
        link_up,
        last_io,
        sync_in_progress,
        link_down_since,
        slave_repl_offset,
        sentinel_status,
        sentinel_slaves,
        sentinel_sentinels,
        latency,
    ]);
    facts
}

/// Exports one plain field if the tables know it (or it is `cluster_*`).
fn push_field(names: &Names, key: &str, value: &str, out: &mut Vec<MetricFamily>) {
    if let Some(f) = names.field(key) {
        if let Some(v) = parse_value(value) {
            let mut fam = if f.counter {
                MetricFamily::counter(f.name, f.help)
            } else {
                MetricFamily::gauge(f.name, f.help)
            };
            fam.add(&[], v * f.scale);
            out.push(fam);
        }
    } else if key.starts_with("cluster_") {
        if let Some(v) = parse_value(value) {
            let name = sanitize(key);
            out.push(names.gauge1(&name, v));
        }
    }
}

/// Replaces characters not allowed in a metric name with `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Parses `CLUSTER INFO` text: every field as a gauge under its own name
/// (`redis_cluster_state` 1 for `ok`, `redis_cluster_slots_assigned`, ...),
/// with `cluster_stats_messages_sent/received` renamed as in
/// redis_exporter.
pub fn parse_cluster_info(text: &str, names: &Names, out: &mut Vec<MetricFamily>) {
    for raw in text.split('\n') {
        let line = raw.trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if value.contains(':') {
            continue;
        }
        push_field(names, key, value, out);
    }
}

/// Parses `CLIENT LIST` into `redis_connected_clients_details{name,
/// created_at,idle_since,flags,db,omem,cmd,host[,port]}` (value 1), as
/// redis_exporter's `--export-client-list` (`--export-client-port`).
pub fn parse_client_list(
    text: &str,
    names: &Names,
    now_unix: f64,
    with_port: bool,
) -> MetricFamily {
    let mut fam = names.gauge("connected_clients_details");
    for line in text.lines() {
        let get = |k: &str| {
            line.split(' ')
                .filter_map(|p| p.split_once('='))
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v)
        };
        let (Some(addr), Some(age), Some(idle)) = (get("addr"), get("age"), get("idle")) else {
            continue;
        };
        let (Ok(age), Ok(idle)) = (age.parse::<i64>(), idle.parse::<i64>()) else {
            continue;
        };
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
        let now = now_unix as i64;
        let created = (now - age).to_string();
        let idle_since = (now - idle).to_string();
        let mut labels = vec![
            ("name", get("name").unwrap_or("")),
            ("created_at", created.as_str()),
            ("idle_since", idle_since.as_str()),
            ("flags", get("flags").unwrap_or("")),
            ("db", get("db").unwrap_or("")),
            ("omem", get("omem").unwrap_or("")),
            ("cmd", get("cmd").unwrap_or("")),
            ("host", host),
        ];
        if with_port {
            labels.push(("port", port));
        }
        fam.add(&labels, 1.0);
    }
    fam
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxmon_core::metrics::Value;

    pub(crate) const MASTER: &str = include_str!("../testdata/info_master.txt");
    const REPLICA: &str = include_str!("../testdata/info_replica.txt");

    fn names() -> &'static Names {
        use std::sync::OnceLock;
        static N: OnceLock<&'static Names> = OnceLock::new();
        N.get_or_init(|| Names::new("redis", false))
    }

    fn find(fams: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        fams.iter().filter(|f| f.name == name).find_map(|f| {
            f.metrics.iter().find_map(|m| {
                let ok = labels
                    .iter()
                    .all(|(k, v)| m.labels.iter().any(|(lk, lv)| lk == k && lv == v));
                match (&m.value, ok) {
                    (Value::Single(v), true) => Some(*v),
                    (Value::Summary { count, .. }, true) => Some(*count as f64),
                    _ => None,
                }
            })
        })
    }

    #[test]
    fn master_sections() {
        let mut out = Vec::new();
        let facts = parse_info(MASTER, names(), 16, 2_000_000_000.0, &mut out);
        assert!(!facts.cluster_enabled);
        assert_eq!(facts.major_version, Some(7));
        assert_eq!(facts.role, "master");
        assert_eq!(find(&out, "redis_memory_used_bytes", &[]), Some(1165544.0));
        assert_eq!(find(&out, "redis_connected_clients", &[]), Some(1.0));
        assert_eq!(find(&out, "redis_rdb_last_bgsave_status", &[]), Some(1.0));
        assert_eq!(
            find(&out, "redis_commands_total", &[("cmd", "set")]),
            Some(3.0)
        );
        assert_eq!(
            find(
                &out,
                "redis_commands_failed_calls_total",
                &[("cmd", "incr")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                &out,
                "redis_commands_duration_seconds_total",
                &[("cmd", "incr")]
            ),
            Some(0.000006)
        );
        assert_eq!(
            find(&out, "redis_errors_total", &[("err", "WRONGTYPE")]),
            Some(1.0)
        );
        assert_eq!(find(&out, "redis_db_keys", &[("db", "db0")]), Some(2.0));
        assert_eq!(find(&out, "redis_db_keys", &[("db", "db15")]), Some(0.0));
        assert_eq!(
            find(&out, "redis_db_keys_expiring", &[("db", "db2")]),
            Some(1.0)
        );
        assert_eq!(
            find(&out, "redis_db_avg_ttl_seconds", &[("db", "db2")]),
            Some(998.98)
        );
        assert_eq!(
            find(&out, "redis_db_avg_ttl_seconds", &[("db", "db1")]),
            None
        );
        assert_eq!(
            find(
                &out,
                "redis_connected_slave_offset_bytes",
                &[
                    ("slave_ip", "127.0.0.1"),
                    ("slave_port", "16380"),
                    ("slave_state", "wait_bgsave")
                ]
            ),
            Some(0.0)
        );
        assert_eq!(
            find(&out, "redis_latency_percentiles_usec", &[("cmd", "set")]),
            Some(3.0)
        );
        assert_eq!(find(&out, "redis_latest_fork_seconds", &[]), Some(0.0));
        assert_eq!(find(&out, "redis_cluster_enabled", &[]), Some(0.0));
        assert_eq!(
            find(
                &out,
                "redis_instance_info",
                &[("role", "master"), ("redis_version", "7.0.15")]
            ),
            Some(1.0)
        );
        let cpu = out
            .iter()
            .find(|f| f.name == "redis_cpu_sys_seconds_total")
            .unwrap();
        assert_eq!(cpu.kind, oxmon_core::MetricType::Counter);
        assert_eq!(
            find(&out, "redis_start_time_seconds", &[]),
            Some(2_000_000_000.0 - 2.0)
        );
        // Fields that are not exported.
        assert!(!out.iter().any(|f| f.name == "redis_used_memory_human"));
    }

    #[test]
    fn replica_sections() {
        let mut out = Vec::new();
        let facts = parse_info(REPLICA, names(), 16, 0.0, &mut out);
        assert_eq!(facts.role, "slave");
        let m = [("master_host", "127.0.0.1"), ("master_port", "16379")];
        assert_eq!(find(&out, "redis_master_link_up", &m), Some(0.0));
        assert_eq!(
            find(&out, "redis_master_link_down_since_seconds", &m),
            Some(181.0)
        );
        assert_eq!(
            find(&out, "redis_master_last_io_seconds_ago", &m),
            Some(-1.0)
        );
        assert_eq!(find(&out, "redis_master_sync_in_progress", &m), Some(0.0));
        assert_eq!(find(&out, "redis_slave_repl_offset", &m), Some(395.0));
        assert_eq!(
            find(&out, "redis_slave_info", &[("read_only", "1")]),
            Some(1.0)
        );
        assert_eq!(find(&out, "redis_slave_priority", &[]), Some(100.0));
    }

    #[test]
    fn cluster_info_and_sentinel() {
        let mut out = Vec::new();
        parse_cluster_info(
            "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_stats_messages_sent:42\r\ncluster_known_nodes:3\r\n",
            names(),
            &mut out,
        );
        assert_eq!(find(&out, "redis_cluster_state", &[]), Some(1.0));
        assert_eq!(
            find(&out, "redis_cluster_slots_assigned", &[]),
            Some(16384.0)
        );
        assert_eq!(
            find(&out, "redis_cluster_messages_sent_total", &[]),
            Some(42.0)
        );

        let mut out = Vec::new();
        parse_info(
            "# Sentinel\r\nsentinel_masters:1\r\nsentinel_tilt:0\r\nmaster0:name=mymaster,status=ok,address=10.0.0.1:6379,slaves=2,sentinels=3\r\n",
            names(),
            0,
            0.0,
            &mut out,
        );
        assert_eq!(find(&out, "redis_sentinel_masters", &[]), Some(1.0));
        let l = [
            ("master_name", "mymaster"),
            ("master_address", "10.0.0.1:6379"),
        ];
        assert_eq!(find(&out, "redis_sentinel_master_status", &l), Some(1.0));
        assert_eq!(find(&out, "redis_sentinel_master_slaves", &l), Some(2.0));
        assert_eq!(find(&out, "redis_sentinel_master_sentinels", &l), Some(3.0));
    }

    #[test]
    fn keyspace_fields_by_name() {
        let text = "# Keyspace\ndb0:keys=4,expires=1,avg_ttl=999733,subexpiry=2\n\
                    db1:keys=3,expires=0,avg_ttl=0,cached_keys=3\n";
        let mut out = Vec::new();
        parse_info(text, names(), 2, 0.0, &mut out);
        let db0 = [("db", "db0")];
        let db1 = [("db", "db1")];
        assert_eq!(find(&out, "redis_db_keys", &db0), Some(4.0));
        assert_eq!(
            find(&out, "redis_db_keys_with_expiring_items", &db0),
            Some(2.0)
        );
        assert_eq!(find(&out, "redis_db_keys_cached", &db0), None);
        assert_eq!(find(&out, "redis_db_keys_cached", &db1), Some(3.0));
        assert_eq!(find(&out, "redis_db_keys_with_expiring_items", &db1), None);
    }

    #[test]
    fn old_commandstats_format_and_garbage() {
        let text = "# Commandstats\ncmdstat_get:calls=21,usec=175,usec_per_call=8.33\ncmdstat_bad:calls=x,usec=1\ncmdstat_:\n# Keyspace\ndb0:keys=abc\ndbx:keys=1,expires=0\n# Replication\nslave0:ip=1.2.3.4,port=1,state=online,offset=zz,lag=0\nslave1:garbage\n";
        let mut out = Vec::new();
        parse_info(text, names(), 2, 0.0, &mut out);
        assert_eq!(
            find(&out, "redis_commands_total", &[("cmd", "get")]),
            Some(21.0)
        );
        assert_eq!(
            find(&out, "redis_commands_failed_calls_total", &[("cmd", "get")]),
            None
        );
        assert_eq!(find(&out, "redis_commands_total", &[("cmd", "bad")]), None);
        assert_eq!(find(&out, "redis_db_keys", &[("db", "db0")]), Some(0.0));
        assert_eq!(find(&out, "redis_db_keys", &[("db", "dbx")]), Some(1.0));
        assert_eq!(find(&out, "redis_connected_slave_offset_bytes", &[]), None);
    }

    #[test]
    fn client_list() {
        let text = "id=11 addr=10.0.0.1:32860 laddr=127.0.0.1:6379 fd=8 name= age=100 idle=1 flags=S db=0 omem=20504 cmd=replconf\nid=34 addr=[::1]:5 name=app age=0 idle=0 flags=N db=2 omem=0 cmd=client|list\ngarbage line\n";
        let f = parse_client_list(text, names(), 1000.0, true);
        assert_eq!(f.metrics.len(), 2);
        let labels: Vec<(&str, &str)> = f.metrics[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert!(labels.contains(&("created_at", "900")));
        assert!(labels.contains(&("idle_since", "999")));
        assert!(labels.contains(&("host", "10.0.0.1")));
        assert!(labels.contains(&("port", "32860")));
        let f = parse_client_list(text, names(), 1000.0, false);
        assert!(f.metrics[1]
            .labels
            .iter()
            .any(|(k, v)| k == "host" && v == "[::1]"));
        assert!(!f.metrics[1].labels.iter().any(|(k, _)| k == "port"));
    }

    /// A tiny deterministic PRNG (xorshift64*), so the fuzz test needs no
    /// dependency and every failure is reproducible from its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const ALPHABET: &[u8] = b":,=#\r\n \t_0123456789.-+eEinfaNpcmdstatusdbkeyslave\xc3\xa9\xff";

    fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        let edits = 1 + rng.below(40);
        for _ in 0..edits {
            if v.is_empty() {
                v.push(b':');
            }
            let at = rng.below(v.len());
            match rng.below(6) {
                0 => v[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 => {
                    v.remove(at);
                }
                2 => v.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                3 => {
                    // Duplicate a random chunk elsewhere.
                    let len = rng.below(80).min(v.len() - at);
                    let chunk = v[at..at + len].to_vec();
                    let to = rng.below(v.len());
                    v.splice(to..to, chunk);
                }
                4 => {
                    let end = (at + rng.below(200)).min(v.len());
                    v.drain(at..end);
                }
                _ => v.truncate(at),
            }
        }
        v
    }

    #[test]
    fn randomized_mutations_never_panic() {
        let bases = [MASTER.as_bytes(), REPLICA.as_bytes()];
        for seed in 1..=3000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let base = bases[rng.below(bases.len())];
            let bytes = mutate(&mut rng, base);
            let text = String::from_utf8_lossy(&bytes);
            let mut out = Vec::new();
            let db_count = rng.below(20);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parse_info(&text, names(), db_count, 1e9, &mut out);
                parse_cluster_info(&text, names(), &mut out);
            }));
            assert!(result.is_ok(), "parse_info panicked for seed {seed}");
            for f in &out {
                assert!(
                    f.name.starts_with("redis_"),
                    "seed {seed}: bad name {}",
                    f.name
                );
                assert!(
                    f.name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "seed {seed}: invalid name {:?}",
                    f.name
                );
            }
        }
    }
}
