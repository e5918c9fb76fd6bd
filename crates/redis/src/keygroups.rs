//! Key groups: `--check-key-groups` (comma-separated Lua patterns) and
//! `--max-distinct-key-groups`.
//!
//! Source: a small Lua script run with `EVAL` per SCAN batch
//! (`--check-keys-batch-size` keys): it reads `MEMORY USAGE` of each key and
//! groups keys by the captures of the first pattern that matches
//! (`unclassified` when none does), so only per-group totals cross the
//! network. Every database up to `databases` is scanned, each batch under
//! the key-check time budget.
//!
//! Emits `redis_key_group_count{db,key_group}`,
//! `redis_key_group_memory_usage_bytes{db,key_group}`,
//! `redis_number_of_distinct_key_groups{db}` and
//! `redis_last_key_groups_scrape_duration_milliseconds`. Beyond
//! `--max-distinct-key-groups` groups in a database, the groups using the
//! least memory are summed into `key_group="overflow"`. A database whose
//! scan did not finish within the budget gives no series.

use std::collections::HashMap;

use oxmon_core::MetricFamily;
use redis::Value;

use crate::keyspace::{is_fatal, KeyError, Keyspace};
use crate::names::Names;
use crate::reply::{as_int, as_text};

/// Groups one SCAN batch server-side. ARGV: cursor, count, patterns...
/// Returns `{next_cursor, {{group, keys, bytes}, ...}}`.
const SCRIPT: &str = r#"
local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local totals = {}
for _, key in ipairs(reply[2]) do
  local bytes = redis.call('MEMORY', 'USAGE', key) or 0
  local name = 'unclassified'
  for p = 3, #ARGV do
    local found = {string.find(key, ARGV[p])}
    if found[1] then
      name = table.concat(found, '', 3)
      break
    end
  end
  local t = totals[name]
  if t then
    t[1] = t[1] + 1
    t[2] = t[2] + bytes
  else
    totals[name] = {1, bytes}
  end
end
local out = {}
for name, t in pairs(totals) do
  out[#out + 1] = {name, t[1], t[2]}
end
return {reply[1], out}
"#;

/// Key group settings.
#[derive(Debug, Clone, Default)]
pub struct KeyGroups {
    /// Lua patterns, tried in order.
    pub patterns: Vec<String>,
    /// Groups shown per database before the rest go to `overflow`.
    pub max_distinct: usize,
}

/// Parses `--check-key-groups`: comma-separated, blanks dropped.
pub fn parse_patterns(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// `(group, keys, bytes)` totals of one database.
type Totals = HashMap<String, (i64, i64)>;

async fn scan_db(ks: &mut Keyspace<'_>, db: i64, groups: &KeyGroups) -> Result<Totals, KeyError> {
    let mut totals = Totals::new();
    let mut cursor = "0".to_string();
    loop {
        ks.check_time()?;
        let mut pipe = ks.pipeline(db);
        pipe.cmd("EVAL")
            .arg(SCRIPT)
            .arg(0)
            .arg(&cursor)
            .arg(ks.batch_size());
        for p in &groups.patterns {
            pipe.arg(p);
        }
        let mut reply = ks.query(&pipe).await?;
        let Some(Value::Array(parts)) = reply.pop() else {
            return Err(KeyError::Redis(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected reply from the key group script",
            ))));
        };
        let (Some(next), Some(Value::Array(rows))) = (parts.first(), parts.get(1)) else {
            return Err(KeyError::Redis(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "unexpected reply from the key group script",
            ))));
        };
        for row in rows {
            if let Value::Array(r) = row {
                if let (Some(name), Some(n), Some(bytes)) = (
                    r.first().and_then(as_text),
                    r.get(1).and_then(as_int),
                    r.get(2).and_then(as_int),
                ) {
                    let t = totals.entry(name.to_string()).or_insert((0, 0));
                    t.0 += n;
                    t.1 += bytes;
                }
            }
        }
        cursor = as_text(next).unwrap_or("0").to_string();
        if cursor == "0" {
            return Ok(totals);
        }
    }
}

/// Keeps the `max` groups using the most memory (ties: fewer keys, then
/// name) and sums the others into `overflow`.
fn limit(totals: Totals, max: usize) -> Vec<(String, i64, i64)> {
    let mut all: Vec<(String, i64, i64)> =
        totals.into_iter().map(|(k, (n, b))| (k, n, b)).collect();
    if all.len() <= max {
        return all;
    }
    all.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
    let rest = all.split_off(max);
    let (n, b) = rest.iter().fold((0, 0), |(n, b), r| (n + r.1, b + r.2));
    all.push(("overflow".to_string(), n, b));
    all
}

/// Runs the key group scans over `db_count` databases. Returns whether the
/// budget ran out; connection errors are returned.
pub async fn collect(
    ks: &mut Keyspace<'_>,
    groups: &KeyGroups,
    db_count: usize,
    names: &Names,
    out: &mut Vec<MetricFamily>,
) -> Result<bool, redis::RedisError> {
    let started = std::time::Instant::now();
    let mut count = names.gauge("key_group_count");
    let mut memory = names.gauge("key_group_memory_usage_bytes");
    let mut distinct = names.gauge("number_of_distinct_key_groups");
    let mut exhausted = false;
    let dbs = if ks.cluster() { 1 } else { db_count as i64 };
    for db in 0..dbs {
        match scan_db(ks, db, groups).await {
            Ok(totals) => {
                let db_label = format!("db{db}");
                let n_groups = totals.len();
                for (name, n, bytes) in limit(totals, groups.max_distinct) {
                    let l = [("db", db_label.as_str()), ("key_group", name.as_str())];
                    count.add(&l, n as f64);
                    memory.add(&l, bytes as f64);
                }
                if n_groups > 0 {
                    distinct.add(&[("db", db_label.as_str())], n_groups as f64);
                }
            }
            Err(KeyError::Budget) => {
                exhausted = true;
                break;
            }
            Err(KeyError::Redis(e)) if is_fatal(&e) => return Err(e),
            Err(KeyError::Redis(e)) => {
                tracing::warn!(db, err = %e, "key group scan failed");
            }
        }
    }
    out.push(count);
    out.push(memory);
    out.push(distinct);
    out.push(names.gauge1(
        "last_key_groups_scrape_duration_milliseconds",
        started.elapsed().as_millis() as f64,
    ));
    Ok(exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_keeps_the_biggest_groups() {
        let mut t = Totals::new();
        t.insert("a".into(), (1, 100));
        t.insert("b".into(), (5, 10));
        t.insert("c".into(), (2, 50));
        t.insert("d".into(), (1, 10));
        let mut l = limit(t.clone(), 2);
        l.sort();
        assert_eq!(
            l,
            vec![
                ("a".to_string(), 1, 100),
                ("c".to_string(), 2, 50),
                ("overflow".to_string(), 6, 20)
            ]
        );
        assert_eq!(limit(t, 10).len(), 4);
        assert_eq!(
            parse_patterns(" ^(user):, ,^(.*)$ "),
            vec!["^(user):", "^(.*)$"]
        );
    }
}
