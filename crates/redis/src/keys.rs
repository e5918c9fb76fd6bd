//! Key checks: `--check-keys`, `--check-single-keys`, `--count-keys`.
//!
//! Source: `SCAN cursor MATCH pattern COUNT --check-keys-batch-size`, then
//! pipelined `TYPE` and a type-aware size command per key (`STRLEN`,
//! `LLEN`, `SCARD`, `ZCARD`, `HLEN`, `XLEN`, `PFCOUNT` for HyperLogLogs).
//!
//! Emits `redis_key_size{db,key}`, `redis_key_value{db,key}` (strings whose
//! value is a number), `redis_key_value_as_string{db,key,val}` (other
//! strings up to 1 KiB) and `redis_keys_count{db,key}` (the pattern as
//! `key`). Keys that do not exist give no series.
//!
//! Bounded: every round trip checks the per-scrape time budget
//! (`--check-keys-time-budget`, and the scrape deadline); a pattern whose
//! scan did not finish in time gives no series (a partial count would be a
//! wrong number), and the scrape counts it in
//! `redis_exporter_key_check_budget_exhausted_total`.

use std::collections::HashSet;

use oxmon_core::MetricFamily;
use redis::aio::MultiplexedConnection;
use redis::Value;
use tokio::time::Instant;

use crate::names::Names;

/// Strings up to this length are read whole, for `redis_key_value` or
/// `redis_key_value_as_string`; longer ones only get `redis_key_size` (a
/// label holding a large value would bloat every scrape).
const MAX_STRING_LABEL: i64 = 1024;

/// One `db=pattern` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// Database index.
    pub db: i64,
    /// Key name or glob pattern.
    pub pattern: String,
}

/// Parses redis_exporter's key list syntax: comma-separated `key`,
/// `db3=key` or `3=key` (db 0 when omitted).
pub fn parse_key_list(s: &str) -> Result<Vec<KeyPattern>, String> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (db, pattern) = match item.split_once('=') {
            Some((db, p)) => {
                let n = db.trim().strip_prefix("db").unwrap_or(db.trim());
                let db = n
                    .parse::<i64>()
                    .map_err(|_| format!("invalid database {db:?} in key entry {item:?}"))?;
                (db, p)
            }
            None => (0, item),
        };
        if pattern.is_empty() {
            return Err(format!("empty key in entry {item:?}"));
        }
        out.push(KeyPattern {
            db,
            pattern: pattern.to_string(),
        });
    }
    Ok(out)
}

/// True when `s` has glob characters, so it needs a SCAN.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The configured key checks.
#[derive(Debug, Clone, Default)]
pub struct KeyChecks {
    /// `--check-keys` (globs are scanned, plain names looked up).
    pub check: Vec<KeyPattern>,
    /// `--check-single-keys` (looked up, never scanned).
    pub single: Vec<KeyPattern>,
    /// `--count-keys` (scanned and counted).
    pub count: Vec<KeyPattern>,
    /// `--check-streams` (globs are scanned).
    pub streams: Vec<KeyPattern>,
    /// `--check-single-streams`.
    pub single_streams: Vec<KeyPattern>,
    /// SCAN COUNT hint.
    pub batch_size: u64,
    /// Time allowed for all key checks of one scrape.
    pub budget: std::time::Duration,
}

impl KeyChecks {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.check.is_empty()
            && self.single.is_empty()
            && self.count.is_empty()
            && self.streams.is_empty()
            && self.single_streams.is_empty()
    }
}

/// Why key checks stopped early.
#[derive(Debug)]
pub enum KeyError {
    /// The time budget or the scrape deadline was reached.
    Budget,
    /// A Redis error (connection-level errors end the key checks).
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for KeyError {
    fn from(e: redis::RedisError) -> Self {
        KeyError::Redis(e)
    }
}

pub(crate) fn over(deadline: Instant) -> Result<(), KeyError> {
    if Instant::now() >= deadline {
        Err(KeyError::Budget)
    } else {
        Ok(())
    }
}

/// Runs a pipeline that starts with `SELECT` unless `cluster`; returns the
/// other replies, or an error when the `SELECT` failed (so no command ever
/// runs against the wrong database).
pub(crate) async fn query(
    conn: &mut MultiplexedConnection,
    pipe: &redis::Pipeline,
    cluster: bool,
    deadline: Instant,
) -> Result<Vec<Value>, KeyError> {
    let mut replies =
        match tokio::time::timeout_at(deadline, pipe.query_async::<Vec<Value>>(conn)).await {
            Ok(r) => r?,
            Err(_) => return Err(KeyError::Budget),
        };
    if !cluster {
        if replies.is_empty() {
            return Ok(replies);
        }
        if let Value::ServerError(e) = replies.remove(0) {
            return Err(KeyError::Redis(e.into()));
        }
    }
    Ok(replies)
}

pub(crate) fn select(pipe: &mut redis::Pipeline, db: i64, cluster: bool) {
    if !cluster {
        pipe.cmd("SELECT").arg(db);
    }
}

/// Scans `pattern` in `db`, calling `each` with every batch of keys.
pub(crate) async fn scan(
    conn: &mut MultiplexedConnection,
    db: i64,
    pattern: &str,
    batch: u64,
    cluster: bool,
    deadline: Instant,
    mut each: impl FnMut(Vec<Vec<u8>>),
) -> Result<(), KeyError> {
    let mut cursor: u64 = 0;
    loop {
        over(deadline)?;
        let mut pipe = redis::pipe();
        select(&mut pipe, db, cluster);
        pipe.cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(batch);
        let mut reply = query(conn, &pipe, cluster, deadline).await?;
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::from_redis_value(reply.pop().unwrap_or(Value::Nil))
                .map_err(redis::RedisError::from)?;
        each(keys);
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

pub(crate) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn as_text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::Okay => Some("OK"),
        _ => None,
    }
}

/// The families of the key checks.
struct KeyFamilies {
    size: MetricFamily,
    value: MetricFamily,
    as_string: MetricFamily,
}

/// Size (and numeric value) of existing keys in `db`.
async fn key_infos(
    conn: &mut MultiplexedConnection,
    db: i64,
    keys: &[Vec<u8>],
    cluster: bool,
    deadline: Instant,
    fams: &mut KeyFamilies,
) -> Result<(), KeyError> {
    let KeyFamilies {
        size,
        value,
        as_string,
    } = fams;
    const CHUNK: usize = 500;
    let db_label = format!("db{db}");
    for chunk in keys.chunks(CHUNK) {
        over(deadline)?;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        select(&mut pipe, db, cluster);
        for k in chunk {
            pipe.cmd("TYPE").arg(k);
        }
        let types = query(conn, &pipe, cluster, deadline).await?;

        // Second round trip: the size command for each key's type; strings
        // also fetch their first bytes to read numbers and spot HLLs.
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        select(&mut pipe, db, cluster);
        let mut plan: Vec<(&Vec<u8>, &'static str)> = Vec::with_capacity(chunk.len());
        for (k, t) in chunk.iter().zip(types.iter()) {
            let cmd = match as_text(t) {
                Some("string") => "STRLEN",
                Some("list") => "LLEN",
                Some("set") => "SCARD",
                Some("zset") => "ZCARD",
                Some("hash") => "HLEN",
                Some("stream") => "XLEN",
                _ => continue, // "none" (gone) or a module type
            };
            pipe.cmd(cmd).arg(k);
            if cmd == "STRLEN" {
                pipe.cmd("GETRANGE").arg(k).arg(0).arg(MAX_STRING_LABEL - 1);
            }
            plan.push((k, cmd));
        }
        if plan.is_empty() {
            continue;
        }
        over(deadline)?;
        let replies = query(conn, &pipe, cluster, deadline).await?;
        let mut it = replies.iter();
        let mut hll: Vec<&Vec<u8>> = Vec::new();
        for (k, cmd) in plan {
            let Some(n) = it.next() else { break };
            let key = String::from_utf8_lossy(k);
            let labels = [("db", db_label.as_str()), ("key", key.as_ref())];
            if cmd == "STRLEN" {
                let head = it.next();
                let head_bytes: &[u8] = match head {
                    Some(Value::BulkString(b)) => b,
                    _ => &[],
                };
                if head_bytes.starts_with(b"HYLL") {
                    hll.push(k);
                    continue;
                }
                if let Some(n) = as_int(n) {
                    size.add(&labels, n as f64);
                    if n <= MAX_STRING_LABEL {
                        let text = String::from_utf8_lossy(head_bytes);
                        match text.trim().parse::<f64>() {
                            Ok(v) => {
                                value.add(&labels, v);
                            }
                            Err(_) => {
                                as_string.add(
                                    &[
                                        ("db", db_label.as_str()),
                                        ("key", key.as_ref()),
                                        ("val", text.as_ref()),
                                    ],
                                    1.0,
                                );
                            }
                        }
                    }
                }
            } else if let Some(n) = as_int(n) {
                size.add(&labels, n as f64);
            }
        }
        if !hll.is_empty() {
            over(deadline)?;
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            select(&mut pipe, db, cluster);
            for k in &hll {
                pipe.cmd("PFCOUNT").arg(*k);
            }
            let counts = query(conn, &pipe, cluster, deadline).await?;
            for (k, c) in hll.iter().zip(counts.iter()) {
                if let Some(n) = as_int(c) {
                    let key = String::from_utf8_lossy(k);
                    size.add(
                        &[("db", db_label.as_str()), ("key", key.as_ref())],
                        n as f64,
                    );
                }
            }
        }
    }
    Ok(())
}

/// The keys named by `scanned` patterns (globs are SCANned, plain names
/// taken as they are) and `single` names, grouped per database without
/// repeats. In cluster mode only db0 exists. A scan of one pattern that
/// fails is logged and skipped; `KeyError::Budget` means the budget ran
/// out, `KeyError::Redis` carries a fatal (connection) error.
pub(crate) async fn resolve(
    conn: &mut MultiplexedConnection,
    scanned: &[KeyPattern],
    single: &[KeyPattern],
    checks: &KeyChecks,
    cluster: bool,
    deadline: Instant,
    what: &str,
) -> Result<Vec<(i64, Vec<Vec<u8>>)>, KeyError> {
    let mut per_db: Vec<(i64, Vec<Vec<u8>>)> = Vec::new();
    let mut seen: HashSet<(i64, Vec<u8>)> = HashSet::new();
    let entries = scanned
        .iter()
        .map(|p| (p, true))
        .chain(single.iter().map(|p| (p, false)));
    for (p, may_scan) in entries {
        if cluster && p.db != 0 {
            continue;
        }
        let mut found: Vec<Vec<u8>> = Vec::new();
        if may_scan && is_glob(&p.pattern) {
            let r = scan(
                conn,
                p.db,
                &p.pattern,
                checks.batch_size,
                cluster,
                deadline,
                |keys| found.extend(keys),
            )
            .await;
            match r {
                Ok(()) => {}
                Err(KeyError::Redis(e)) if !is_fatal(&e) => {
                    tracing::warn!(db = p.db, pattern = %p.pattern, err = %e, "{what} scan failed");
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            found.push(p.pattern.as_bytes().to_vec());
        }
        let slot = match per_db.iter().position(|(d, _)| *d == p.db) {
            Some(i) => i,
            None => {
                per_db.push((p.db, Vec::new()));
                per_db.len() - 1
            }
        };
        for k in found {
            if seen.insert((p.db, k.clone())) {
                per_db[slot].1.push(k);
            }
        }
    }
    Ok(per_db)
}

/// Runs all configured key checks; returns the families and whether the
/// budget ran out. Connection errors are returned.
pub async fn collect(
    conn: &mut MultiplexedConnection,
    checks: &KeyChecks,
    names: &Names,
    cluster: bool,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> Result<bool, redis::RedisError> {
    let mut size = names.gauge("key_size");
    let mut value = names.gauge("key_value");
    let mut as_string = names.gauge("key_value_as_string");
    let mut counts = names.gauge("keys_count");
    let mut exhausted = false;

    let per_db = match resolve(
        conn,
        &checks.check,
        &checks.single,
        checks,
        cluster,
        deadline,
        "key",
    )
    .await
    {
        Ok(per_db) => per_db,
        Err(KeyError::Budget) => {
            exhausted = true;
            Vec::new()
        }
        Err(KeyError::Redis(e)) => return Err(e),
    };
    if !exhausted {
        for (db, keys) in &per_db {
            let mut fams = KeyFamilies {
                size: names.gauge("key_size"),
                value: names.gauge("key_value"),
                as_string: names.gauge("key_value_as_string"),
            };
            match key_infos(conn, *db, keys, cluster, deadline, &mut fams).await {
                Ok(()) => {
                    size.metrics.append(&mut fams.size.metrics);
                    value.metrics.append(&mut fams.value.metrics);
                    as_string.metrics.append(&mut fams.as_string.metrics);
                }
                Err(KeyError::Budget) => {
                    exhausted = true;
                    break;
                }
                Err(KeyError::Redis(e)) if is_fatal(&e) => return Err(e),
                Err(KeyError::Redis(e)) => {
                    tracing::warn!(db, err = %e, "key check failed");
                }
            }
        }
    }

    for p in &checks.count {
        if exhausted {
            break;
        }
        if cluster && p.db != 0 {
            continue;
        }
        let mut n: u64 = 0;
        let r = scan(
            conn,
            p.db,
            &p.pattern,
            checks.batch_size,
            cluster,
            deadline,
            |keys| n += keys.len() as u64,
        )
        .await;
        match r {
            Ok(()) => {
                let db = format!("db{}", p.db);
                counts.add(
                    &[("db", db.as_str()), ("key", p.pattern.as_str())],
                    n as f64,
                );
            }
            Err(KeyError::Budget) => exhausted = true,
            Err(KeyError::Redis(e)) if is_fatal(&e) => return Err(e),
            Err(KeyError::Redis(e)) => {
                tracing::warn!(db = p.db, pattern = %p.pattern, err = %e, "key count failed");
            }
        }
    }
    out.push(size);
    out.push(value);
    out.push(as_string);
    out.push(counts);
    let has_streams = !checks.streams.is_empty() || !checks.single_streams.is_empty();
    if !exhausted && has_streams {
        exhausted = crate::streams::collect(conn, checks, names, cluster, deadline, out).await?;
    }
    Ok(exhausted)
}

/// True for errors after which the connection must not be reused.
pub fn is_fatal(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists() {
        let l = parse_key_list("a*, db3=user:*,5=x,").unwrap();
        assert_eq!(
            l,
            vec![
                KeyPattern {
                    db: 0,
                    pattern: "a*".into()
                },
                KeyPattern {
                    db: 3,
                    pattern: "user:*".into()
                },
                KeyPattern {
                    db: 5,
                    pattern: "x".into()
                },
            ]
        );
        assert!(parse_key_list("dbx=a").is_err());
        assert!(parse_key_list("db1=").is_err());
        assert!(is_glob("a*") && is_glob("a?") && is_glob("a[bc]") && !is_glob("plain"));
    }
}
