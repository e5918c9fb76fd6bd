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

use oxmon_core::MetricFamily;
use redis::Value;

use crate::keyspace::{is_fatal, KeyError, KeyPattern, Keyspace};
use crate::names::Names;
use crate::reply::{as_int, as_text};

/// Strings up to this length are read whole, for `redis_key_value` or
/// `redis_key_value_as_string`; longer ones only get `redis_key_size` (a
/// label holding a large value would bloat every scrape).
const MAX_STRING_LABEL: i64 = 1024;
/// The configured key checks.
#[derive(Debug, Clone, Default)]
pub struct KeyChecks {
    /// `--check-keys` (globs are scanned, plain names looked up).
    pub check: Vec<KeyPattern>,
    /// `--check-single-keys` (looked up, never scanned).
    pub single: Vec<KeyPattern>,
    /// `--count-keys` (scanned and counted).
    pub count: Vec<KeyPattern>,
}

impl KeyChecks {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.check.is_empty() && self.single.is_empty() && self.count.is_empty()
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
    ks: &mut Keyspace<'_>,
    db: i64,
    keys: &[Vec<u8>],
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
        ks.check_time()?;
        let mut pipe = ks.pipeline(db);
        pipe.ignore_errors();
        for k in chunk {
            pipe.cmd("TYPE").arg(k);
        }
        let types = ks.query(&pipe).await?;

        // Second round trip: the size command for each key's type; strings
        // also fetch their first bytes to read numbers and spot HLLs.
        let mut pipe = ks.pipeline(db);
        pipe.ignore_errors();
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
        ks.check_time()?;
        let replies = ks.query(&pipe).await?;
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
            ks.check_time()?;
            let mut pipe = ks.pipeline(db);
            pipe.ignore_errors();
            for k in &hll {
                pipe.cmd("PFCOUNT").arg(*k);
            }
            let counts = ks.query(&pipe).await?;
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

/// Runs all configured key checks; returns whether the budget ran out.
/// Connection errors are returned.
pub async fn collect(
    ks: &mut Keyspace<'_>,
    checks: &KeyChecks,
    names: &Names,
    out: &mut Vec<MetricFamily>,
) -> Result<bool, redis::RedisError> {
    let mut size = names.gauge("key_size");
    let mut value = names.gauge("key_value");
    let mut as_string = names.gauge("key_value_as_string");
    let mut counts = names.gauge("keys_count");
    let mut exhausted = false;

    let per_db = match ks.resolve(&checks.check, &checks.single, "key").await {
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
            match key_infos(ks, *db, keys, &mut fams).await {
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
        if ks.cluster() && p.db != 0 {
            continue;
        }
        let mut n: u64 = 0;
        match ks
            .scan(p.db, &p.pattern, |keys| n += keys.len() as u64)
            .await
        {
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
    Ok(exhausted)
}
