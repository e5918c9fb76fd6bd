//! One Redis target: its kept connection and its scrape.
//!
//! Each target keeps a single multiplexed connection across scrapes
//! (concurrent scrapes share it; it is re-established after a failure).
//! One scrape is one pipelined round trip of `INFO ALL`,
//! `CONFIG GET maxmemory maxclients databases io-threads` (one `CONFIG GET`
//! per parameter before Redis 7), `SLOWLOG LEN`, `SLOWLOG GET 1` and
//! `LATENCY LATEST`, plus `CLUSTER INFO` in cluster mode and the keyspace
//! checks (keys, streams, key groups) when configured.
//!
//! Always emits `redis_up`, `redis_exporter_last_scrape_error{err}`,
//! `redis_exporter_last_scrape_duration_seconds`,
//! `redis_exporter_last_scrape_connect_time_seconds`,
//! `redis_exporter_scrapes_total`, `redis_exporter_scrape_duration_seconds`
//! and `redis_target_scrape_request_errors_total`; `redis_up` is 0 (and the
//! HTTP answer still 200) when Redis is down, rejects the credentials or
//! does not answer in time.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::logging::FailureLog;
use oxmon_core::sync::LockExt;
use oxmon_core::{Collector, MetricFamily, ScrapeContext};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, Value};
use tokio::time::Instant;

use crate::address::{redact, Address, Transport};
use crate::credentials::Credentials;
use crate::info::{parse_cluster_info, parse_info};
use crate::keygroups::{self, KeyGroups};
use crate::keys::{self, KeyChecks};
use crate::keyspace::{is_fatal, Keyspace, ScanLimits};
use crate::names::Names;
use crate::reply::{as_int, as_text, as_text_lossy, pairs};
use crate::streams::{self, StreamChecks};

/// `redis_config_key_value{key,value}` (1) for every setting of a
/// `CONFIG GET *` reply and `redis_config_value{key}` for the numeric ones;
/// settings that hold secrets (`requirepass`, `masterauth`, `*pass*`) are
/// left out.
fn config_families(reply: &Value, names: &Names) -> [MetricFamily; 2] {
    let mut kv = names.gauge("config_key_value");
    let mut num = names.gauge("config_value");
    for (k, v) in pairs(reply) {
        let Some(v) = as_text_lossy(v) else { continue };
        let lower = k.to_ascii_lowercase();
        if lower.contains("pass") || (lower.contains("auth") && !lower.starts_with("tls-auth")) {
            continue;
        }
        kv.add(&[("key", k), ("value", v.as_ref())], 1.0);
        if let Ok(n) = v.parse::<f64>() {
            num.add(&[("key", k)], n);
        }
    }
    [kv, num]
}

/// `(id, duration seconds)` of the newest entry of a `SLOWLOG GET 1`
/// reply, zeros when empty.
fn last_slowlog(v: &Value) -> (f64, f64) {
    if let Value::Array(entries) = v {
        if let Some(Value::Array(e)) = entries.first() {
            let id = e.first().and_then(as_int).unwrap_or(0);
            let usec = e.get(2).and_then(as_int).unwrap_or(0);
            return (id as f64, usec as f64 / 1e6);
        }
    }
    (0.0, 0.0)
}

/// TLS client settings for `rediss://` targets.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// PEM client certificate.
    pub client_cert: Option<Vec<u8>>,
    /// PEM client key.
    pub client_key: Option<Vec<u8>>,
    /// PEM CA bundle (else the system roots).
    pub ca_cert: Option<Vec<u8>>,
    /// Accept any server certificate.
    pub skip_verify: bool,
}

/// Settings shared by every target.
pub struct Options {
    /// Metric names.
    pub names: &'static Names,
    /// Connect and per-command timeout.
    pub connection_timeout: Duration,
    /// TLS settings.
    pub tls: TlsFiles,
    /// Key checks.
    pub keys: KeyChecks,
    /// Stream checks.
    pub streams: StreamChecks,
    /// Key groups.
    pub key_groups: KeyGroups,
    /// Batch size and time budget of the keyspace checks.
    pub scan: ScanLimits,
    /// Name of the CONFIG command (renamed on some hosted Redis).
    pub config_command: String,
    /// Send `CLIENT SETNAME oxmon-redis` after connecting.
    pub set_client_name: bool,
    /// Export every setting (`--include-config-metrics`).
    pub all_config: bool,
    /// Export `CLIENT LIST` (`--export-client-list`).
    pub client_list: bool,
    /// With the client's port (`--export-client-port`).
    pub client_port: bool,
    /// Bad `/scrape` requests so far.
    pub request_errors: AtomicU64,
    /// Failing targets by key, shared by `/metrics` and `/scrape` so that
    /// a target that stays down is logged once, however often it is
    /// scraped or re-created.
    pub failures: FailureLog,
}

/// A target's Redis client that cannot be set up (bad TLS material, an
/// address the client refuses). The message has credentials redacted.
#[derive(Debug, thiserror::Error)]
#[error("target {target}: {reason}")]
pub struct ClientError {
    /// The target's key.
    target: String,
    /// What the client said, redacted.
    reason: String,
}

/// One scraped Redis: its address, credentials and kept connection.
pub struct Target {
    key: String,
    password: Option<String>,
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    scrapes: AtomicU64,
    duration_sum: Mutex<f64>,
    major_version: AtomicU32,
    budget_hits: AtomicU64,
}

impl Target {
    /// Prepares a target (no connection yet). `pin` replaces the host of
    /// a plain TCP target by the address the allow-list approved (a TLS
    /// target keeps its name, which its certificate is checked against).
    pub fn new(
        addr: &Address,
        creds: Credentials,
        tls: &TlsFiles,
        pin: Option<std::net::SocketAddr>,
    ) -> Result<Target, ClientError> {
        let client_error = |e: redis::RedisError| ClientError {
            target: addr.key(),
            reason: redact(&e.to_string()),
        };
        let connect_to = match &addr.transport {
            Transport::Tcp => match pin {
                Some(sa) => ConnectionAddr::Tcp(sa.ip().to_string(), sa.port()),
                None => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
            },
            Transport::Tls => ConnectionAddr::TcpTls {
                host: addr.host.clone(),
                port: addr.port,
                insecure: tls.skip_verify,
                tls_params: None,
            },
            Transport::Unix(p) => ConnectionAddr::Unix(p.into()),
        };
        let info = connect_to.into_connection_info().map_err(client_error)?;
        // No CLIENT SETINFO on connect: servers before 7.2 count it as an
        // error in their errorstats.
        let mut settings = info
            .redis_settings()
            .clone()
            .set_db(addr.db)
            .set_skip_set_lib_name();
        if let Some(u) = &creds.user {
            settings = settings.set_username(u);
        }
        if let Some(p) = &creds.password {
            settings = settings.set_password(p);
        }
        let info = info.set_redis_settings(settings);
        let client = if addr.transport == Transport::Tls
            && (tls.ca_cert.is_some() || tls.client_cert.is_some())
        {
            let client_tls = match (&tls.client_cert, &tls.client_key) {
                (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                    client_cert: c.clone(),
                    client_key: k.clone(),
                }),
                _ => None,
            };
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls,
                    root_cert: tls.ca_cert.clone(),
                },
            )
        } else {
            redis::Client::open(info)
        }
        .map_err(client_error)?;
        Ok(Target {
            key: addr.key(),
            password: creds.password,
            client,
            conn: tokio::sync::Mutex::new(None),
            scrapes: AtomicU64::new(0),
            duration_sum: Mutex::new(0.0),
            major_version: AtomicU32::new(0),
            budget_hits: AtomicU64::new(0),
        })
    }

    /// The normalised address without credentials.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Makes an error message safe to show: URIs redacted and the
    /// target's own password removed wherever it appears.
    fn scrub(&self, msg: &str) -> String {
        let mut m = redact(msg);
        if let Some(p) = self.password.as_deref().filter(|p| p.len() >= 3) {
            m = m.replace(p, "<redacted>");
        }
        m
    }

    async fn connection(
        &self,
        opts: &Options,
        deadline: Instant,
    ) -> Result<(MultiplexedConnection, f64), String> {
        let mut guard = match tokio::time::timeout_at(deadline, self.conn.lock()).await {
            Ok(g) => g,
            Err(_) => return Err("timed out waiting for the connection".into()),
        };
        if let Some(c) = guard.as_ref() {
            return Ok((c.clone(), 0.0));
        }
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(opts.connection_timeout.min(left)))
            .set_response_timeout(Some(opts.connection_timeout));
        let connect = async {
            let mut c = self
                .client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            if opts.set_client_name {
                let _: redis::RedisResult<Value> = redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg("oxmon-redis")
                    .query_async(&mut c)
                    .await;
            }
            Ok::<_, redis::RedisError>(c)
        };
        let c = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.scrub(&e.to_string())),
            Err(_) => return Err("timed out connecting".into()),
        };
        *guard = Some(c.clone());
        Ok((c, started.elapsed().as_secs_f64()))
    }

    async fn drop_connection(&self) {
        *self.conn.lock().await = None;
    }

    /// Scrapes the target; never fails (failures give `redis_up 0`).
    pub async fn scrape(&self, opts: &Options, ctx: &ScrapeContext) -> Vec<MetricFamily> {
        let names = opts.names;
        let started = Instant::now();
        // Leave a little time to answer before the scrape deadline.
        let margin = Duration::from_millis(20).min(ctx.remaining() / 10);
        let deadline = ctx.deadline - margin;
        let mut out = Vec::with_capacity(200);
        let mut connect_secs = 0.0;
        let result = self
            .scrape_inner(opts, deadline, &mut out, &mut connect_secs)
            .await;
        opts.failures.record(
            &self.key,
            result.as_ref().map(|_| ()).map_err(String::as_str),
        );
        let (up, err) = match result {
            Ok(()) => (1.0, String::new()),
            Err(e) => {
                // No half-collected Redis metrics beside `redis_up 0`.
                out.clear();
                (0.0, e)
            }
        };
        let took = started.elapsed().as_secs_f64();
        let scrapes = self.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let sum = {
            let mut s = self.duration_sum.lock_unpoisoned();
            *s += took;
            *s
        };
        out.push(names.gauge1("up", up));
        let mut e = names.gauge("exporter_last_scrape_error");
        e.add(&[("err", err.as_str())], if up == 1.0 { 0.0 } else { 1.0 });
        out.push(e);
        out.push(names.gauge1("exporter_last_scrape_duration_seconds", took));
        out.push(names.gauge1("exporter_last_scrape_connect_time_seconds", connect_secs));
        let mut c = names.counter("exporter_scrapes_total");
        c.add(&[], scrapes as f64);
        out.push(c);
        let (n, h) = names.get("exporter_scrape_duration_seconds");
        let mut s = MetricFamily::summary(n, h);
        s.add_summary(&[], Vec::new(), sum, scrapes);
        out.push(s);
        let mut r = names.counter("target_scrape_request_errors_total");
        r.add(&[], opts.request_errors.load(Ordering::Relaxed) as f64);
        out.push(r);
        out
    }

    async fn scrape_inner(
        &self,
        opts: &Options,
        deadline: Instant,
        out: &mut Vec<MetricFamily>,
        connect_secs: &mut f64,
    ) -> Result<(), String> {
        let names = opts.names;
        let major = self.major_version.load(Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("INFO").arg("ALL");
        let config_params = ["maxmemory", "maxclients", "databases", "io-threads"];
        let config_replies = if major >= 7 {
            pipe.cmd(&opts.config_command)
                .arg("GET")
                .arg(&config_params[..]);
            1
        } else {
            for p in config_params {
                pipe.cmd(&opts.config_command).arg("GET").arg(p);
            }
            config_params.len()
        };
        pipe.cmd("SLOWLOG").arg("LEN");
        pipe.cmd("SLOWLOG").arg("GET").arg(1);
        pipe.cmd("LATENCY").arg("LATEST");
        if opts.client_list {
            pipe.cmd("CLIENT").arg("LIST");
        }
        if opts.all_config {
            pipe.cmd(&opts.config_command).arg("GET").arg("*");
        }

        // A kept connection may have died since the last scrape (Redis
        // restarted): then reconnect once right away instead of reporting
        // a spurious `up 0`.
        let mut retried = false;
        let (mut conn, replies) = loop {
            let (mut conn, secs) = self.connection(opts, deadline).await?;
            *connect_secs = secs;
            let reused = secs == 0.0;
            match tokio::time::timeout_at(
                deadline,
                pipe.query_async::<Vec<redis::RedisResult<Value>>>(&mut conn),
            )
            .await
            {
                Ok(Ok(r)) => break (conn, r),
                Ok(Err(e)) => {
                    if is_fatal(&e) {
                        self.drop_connection().await;
                        if reused && !retried {
                            retried = true;
                            continue;
                        }
                    }
                    return Err(self.scrub(&e.to_string()));
                }
                Err(_) => {
                    // The connection may hold a late reply; start afresh.
                    self.drop_connection().await;
                    return Err("timed out waiting for Redis".into());
                }
            }
        };
        let mut it = replies.into_iter();
        let info = match it.next() {
            Some(Ok(v)) => as_text_lossy(&v).unwrap_or_default().into_owned(),
            Some(Err(e)) => return Err(format!("INFO failed: {}", self.scrub(&e.to_string()))),
            None => return Err("empty reply to INFO".into()),
        };

        let mut db_count = 0usize;
        for _ in 0..config_replies {
            if let Some(Ok(v)) = it.next() {
                for (k, val) in pairs(&v) {
                    let Some(num) = as_text(val).and_then(|t| t.parse::<f64>().ok()) else {
                        continue;
                    };
                    match k {
                        "maxmemory" => out.push(names.gauge1("config_maxmemory", num)),
                        "maxclients" => out.push(names.gauge1("config_maxclients", num)),
                        "io-threads" => out.push(names.gauge1("config_io_threads", num)),
                        "databases" => db_count = num as usize,
                        _ => {}
                    }
                }
            }
        }

        let slowlog_len = it.next();
        let slowlog_get = it.next();
        let latency = it.next();
        let client_list = if opts.client_list { it.next() } else { None };
        let all_config = if opts.all_config { it.next() } else { None };
        if let Some(Ok(v)) = slowlog_len {
            if let Some(n) = as_int(&v) {
                out.push(names.gauge1("slowlog_length", n as f64));
            }
        }
        if let Some(Ok(v)) = slowlog_get {
            let (id, dur) = last_slowlog(&v);
            out.push(names.gauge1("slowlog_last_id", id));
            out.push(names.gauge1("last_slow_execution_duration_seconds", dur));
        }
        if let Some(Ok(Value::Array(events))) = latency {
            let mut last = names.gauge("latency_spike_last");
            let mut dur = names.gauge("latency_spike_duration_seconds");
            for ev in &events {
                if let Value::Array(f) = ev {
                    if let (Some(name), Some(ts), Some(ms)) = (
                        f.first().and_then(as_text_lossy),
                        f.get(1).and_then(as_int),
                        f.get(2).and_then(as_int),
                    ) {
                        last.add(&[("event_name", name.as_ref())], ts as f64);
                        dur.add(&[("event_name", name.as_ref())], ms as f64 / 1000.0);
                    }
                }
            }
            out.push(last);
            out.push(dur);
        }

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if let Some(Ok(v)) = all_config {
            out.extend(config_families(&v, names));
        }
        if let Some(Ok(v)) = client_list {
            if let Some(text) = as_text_lossy(&v) {
                out.push(crate::info::parse_client_list(
                    &text,
                    names,
                    now,
                    opts.client_port,
                ));
            }
        }
        let cluster = info.contains("cluster_enabled:1");
        if cluster {
            db_count = 1;
        } else if db_count == 0 {
            db_count = 16;
        }
        let facts = parse_info(&info, names, db_count, now, out);
        if facts.fields == 0 {
            return Err("INFO returned no fields".into());
        }
        if let Some(m) = facts.major_version {
            self.major_version.store(m, Ordering::Relaxed);
        }
        if facts.cluster_enabled {
            let r: Result<redis::RedisResult<String>, _> = tokio::time::timeout_at(
                deadline,
                redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn),
            )
            .await;
            match r {
                Ok(Ok(text)) => parse_cluster_info(&text, names, out),
                Ok(Err(e)) => {
                    tracing::warn!(target = %self.key, err = %self.scrub(&e.to_string()), "CLUSTER INFO failed")
                }
                Err(_) => return Err("timed out waiting for CLUSTER INFO".into()),
            }
        }

        self.keyspace_checks(
            &mut conn,
            opts,
            facts.cluster_enabled,
            db_count,
            deadline,
            out,
        )
        .await
    }

    /// The key, stream and key group checks, under one time budget per
    /// scrape. A connection error drops the kept connection and fails the
    /// scrape; other errors only cost their own series.
    async fn keyspace_checks(
        &self,
        conn: &mut MultiplexedConnection,
        opts: &Options,
        cluster: bool,
        db_count: usize,
        deadline: Instant,
        out: &mut Vec<MetricFamily>,
    ) -> Result<(), String> {
        let names = opts.names;
        let budget = deadline.min(Instant::now() + opts.scan.budget);
        let configured = !opts.keys.is_empty()
            || !opts.streams.is_empty()
            || !opts.key_groups.patterns.is_empty();
        let mut exhausted = false;
        let mut ks = Keyspace::new(conn, cluster, opts.scan, budget);
        let walked = async {
            if !opts.keys.is_empty() {
                exhausted = keys::collect(&mut ks, &opts.keys, names, out).await?;
            }
            if !exhausted && !opts.streams.is_empty() {
                exhausted = streams::collect(&mut ks, &opts.streams, names, out).await?;
            }
            if opts.key_groups.patterns.is_empty() || exhausted {
                // As redis_exporter: no key group scan, no time spent on it.
                out.push(names.gauge1("last_key_groups_scrape_duration_milliseconds", 0.0));
            } else {
                exhausted =
                    keygroups::collect(&mut ks, &opts.key_groups, db_count, names, out).await?;
            }
            Ok::<_, redis::RedisError>(())
        }
        .await;
        if let Err(e) = walked {
            self.drop_connection().await;
            return Err(self.scrub(&e.to_string()));
        }
        if exhausted {
            self.budget_hits.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target = %self.key, budget = ?opts.scan.budget, "key checks stopped at their time budget");
        }
        if configured {
            let mut hits = names.counter("exporter_key_check_budget_exhausted_total");
            hits.add(&[], self.budget_hits.load(Ordering::Relaxed) as f64);
            out.push(hits);
        }
        Ok(())
    }
}

/// `/metrics`: the scrape of `--redis.addr`.
pub struct TargetCollector {
    /// The target.
    pub target: Arc<Target>,
    /// Settings shared by every target.
    pub opts: Arc<Options>,
}

impl Collector for TargetCollector {
    fn name(&self) -> &str {
        "redis"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            out.extend(self.target.scrape(&self.opts, ctx).await);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn slowlog_and_config_replies() {
        let slow = Value::Array(vec![Value::Array(vec![
            Value::Int(22),
            Value::Int(1_700_000_000),
            Value::Int(1500),
        ])]);
        assert_eq!(last_slowlog(&slow), (22.0, 0.0015));
        assert_eq!(last_slowlog(&Value::Array(vec![])), (0.0, 0.0));
        assert_eq!(last_slowlog(&Value::Nil), (0.0, 0.0));
        let names = Names::new("redis", false);
        let settings = Value::Array(
            [
                "maxmemory",
                "0",
                "requirepass",
                "secret",
                "masterauth",
                "secret",
                "tls-key-file-pass",
                "secret",
                "appendonly",
                "no",
                "tls-auth-clients",
                "yes",
                "dangling",
            ]
            .into_iter()
            .map(bulk)
            .collect(),
        );
        let [kv, num] = config_families(&settings, names);
        assert_eq!(kv.metrics.len(), 3);
        assert!(kv
            .metrics
            .iter()
            .all(|m| m.labels.iter().all(|(_, v)| v != "secret")));
        assert_eq!(num.metrics.len(), 1);
    }
}
