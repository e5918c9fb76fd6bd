//! Stream checks: `--check-streams` (patterns, found with SCAN) and
//! `--check-single-streams`.
//!
//! Source: pipelined `XINFO STREAM`, `XINFO GROUPS` and `XINFO CONSUMERS`
//! per stream, under the same time budget as the key checks.
//!
//! Emits, as redis_exporter: `redis_stream_length`,
//! `redis_stream_radix_tree_keys`, `redis_stream_radix_tree_nodes`,
//! `redis_stream_groups`, `redis_stream_last_generated_id` (ms part of the
//! id) `{db,stream}`; `redis_stream_group_consumers`,
//! `redis_stream_group_messages_pending`,
//! `redis_stream_group_last_delivered_id` `{db,stream,group}`;
//! `redis_stream_group_consumer_messages_pending`,
//! `redis_stream_group_consumer_idle_seconds` `{db,stream,group,consumer}`.
//! Keys that are missing or not streams give no series.

use oxmon_core::MetricFamily;
use redis::Value;

use crate::keyspace::{is_fatal, KeyError, KeyPattern, Keyspace};
use crate::names::Names;
use crate::reply::{as_int, as_text, field, pairs};

/// The configured stream checks.
#[derive(Debug, Clone, Default)]
pub struct StreamChecks {
    /// `--check-streams` (globs are scanned).
    pub patterns: Vec<KeyPattern>,
    /// `--check-single-streams`.
    pub single: Vec<KeyPattern>,
}

impl StreamChecks {
    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty() && self.single.is_empty()
    }
}

/// The millisecond part of a stream id (`1700000000000-3`).
fn id_ms(v: Option<&Value>) -> Option<f64> {
    as_text(v?)?.split('-').next()?.parse().ok()
}

struct StreamFamilies {
    length: MetricFamily,
    radix_keys: MetricFamily,
    radix_nodes: MetricFamily,
    groups: MetricFamily,
    last_id: MetricFamily,
    group_consumers: MetricFamily,
    group_pending: MetricFamily,
    group_last_delivered: MetricFamily,
    consumer_pending: MetricFamily,
    consumer_idle: MetricFamily,
}

impl StreamFamilies {
    fn new(names: &Names) -> Self {
        StreamFamilies {
            length: names.gauge("stream_length"),
            radix_keys: names.gauge("stream_radix_tree_keys"),
            radix_nodes: names.gauge("stream_radix_tree_nodes"),
            groups: names.gauge("stream_groups"),
            last_id: names.gauge("stream_last_generated_id"),
            group_consumers: names.gauge("stream_group_consumers"),
            group_pending: names.gauge("stream_group_messages_pending"),
            group_last_delivered: names.gauge("stream_group_last_delivered_id"),
            consumer_pending: names.gauge("stream_group_consumer_messages_pending"),
            consumer_idle: names.gauge("stream_group_consumer_idle_seconds"),
        }
    }

    fn push_into(self, out: &mut Vec<MetricFamily>) {
        out.extend([
            self.length,
            self.radix_keys,
            self.radix_nodes,
            self.groups,
            self.last_id,
            self.group_consumers,
            self.group_pending,
            self.group_last_delivered,
            self.consumer_pending,
            self.consumer_idle,
        ]);
    }
}

/// Reads the streams of one database into `f`.
async fn stream_infos(
    ks: &mut Keyspace<'_>,
    db: i64,
    keys: &[Vec<u8>],
    f: &mut StreamFamilies,
) -> Result<(), KeyError> {
    let db_label = format!("db{db}");
    for chunk in keys.chunks(100) {
        ks.check_time()?;
        let mut pipe = ks.pipeline(db);
        pipe.ignore_errors();
        for k in chunk {
            pipe.cmd("XINFO").arg("STREAM").arg(k);
            pipe.cmd("XINFO").arg("GROUPS").arg(k);
        }
        let replies = ks.query(&pipe).await?;
        let mut group_list: Vec<(String, &Vec<u8>, String)> = Vec::new();
        for (k, r) in chunk.iter().zip(replies.chunks(2)) {
            let [stream, groups] = r else { continue };
            if matches!(stream, Value::ServerError(_)) {
                continue;
            }
            let name = String::from_utf8_lossy(k);
            let l = [("db", db_label.as_str()), ("stream", name.as_ref())];
            let p = pairs(stream);
            let num = |n: &str| field(&p, n).and_then(as_int).map(|v| v as f64);
            if let Some(v) = num("length") {
                f.length.add(&l, v);
            }
            if let Some(v) = num("radix-tree-keys") {
                f.radix_keys.add(&l, v);
            }
            if let Some(v) = num("radix-tree-nodes") {
                f.radix_nodes.add(&l, v);
            }
            if let Some(v) = num("groups") {
                f.groups.add(&l, v);
            }
            if let Some(v) = id_ms(field(&p, "last-generated-id")) {
                f.last_id.add(&l, v);
            }
            let Value::Array(gs) = groups else { continue };
            for g in gs {
                let gp = pairs(g);
                let Some(gname) = field(&gp, "name").and_then(as_text) else {
                    continue;
                };
                let gl = [
                    ("db", db_label.as_str()),
                    ("stream", name.as_ref()),
                    ("group", gname),
                ];
                if let Some(v) = field(&gp, "consumers").and_then(as_int) {
                    f.group_consumers.add(&gl, v as f64);
                }
                if let Some(v) = field(&gp, "pending").and_then(as_int) {
                    f.group_pending.add(&gl, v as f64);
                }
                if let Some(v) = id_ms(field(&gp, "last-delivered-id")) {
                    f.group_last_delivered.add(&gl, v);
                }
                group_list.push((name.to_string(), k, gname.to_string()));
            }
        }
        if group_list.is_empty() {
            continue;
        }
        ks.check_time()?;
        let mut pipe = ks.pipeline(db);
        pipe.ignore_errors();
        for (_, k, g) in &group_list {
            pipe.cmd("XINFO").arg("CONSUMERS").arg(*k).arg(g);
        }
        let replies = ks.query(&pipe).await?;
        for ((stream, _, group), r) in group_list.iter().zip(replies.iter()) {
            let Value::Array(cs) = r else { continue };
            for c in cs {
                let cp = pairs(c);
                let Some(cname) = field(&cp, "name").and_then(as_text) else {
                    continue;
                };
                let cl = [
                    ("db", db_label.as_str()),
                    ("stream", stream.as_str()),
                    ("group", group.as_str()),
                    ("consumer", cname),
                ];
                if let Some(v) = field(&cp, "pending").and_then(as_int) {
                    f.consumer_pending.add(&cl, v as f64);
                }
                if let Some(v) = field(&cp, "idle").and_then(as_int) {
                    f.consumer_idle.add(&cl, v as f64 / 1000.0);
                }
            }
        }
    }
    Ok(())
}

/// Runs the stream checks; returns whether the budget ran out.
pub async fn collect(
    ks: &mut Keyspace<'_>,
    checks: &StreamChecks,
    names: &Names,
    out: &mut Vec<MetricFamily>,
) -> Result<bool, redis::RedisError> {
    let per_db = match ks.resolve(&checks.patterns, &checks.single, "stream").await {
        Ok(per_db) => per_db,
        Err(KeyError::Budget) => return Ok(true),
        Err(KeyError::Redis(e)) => return Err(e),
    };
    let mut fams = StreamFamilies::new(names);
    for (db, keys) in &per_db {
        let mut one = StreamFamilies::new(names);
        match stream_infos(ks, *db, keys, &mut one).await {
            Ok(()) => {
                for (all, part) in [
                    (&mut fams.length, &mut one.length),
                    (&mut fams.radix_keys, &mut one.radix_keys),
                    (&mut fams.radix_nodes, &mut one.radix_nodes),
                    (&mut fams.groups, &mut one.groups),
                    (&mut fams.last_id, &mut one.last_id),
                    (&mut fams.group_consumers, &mut one.group_consumers),
                    (&mut fams.group_pending, &mut one.group_pending),
                    (
                        &mut fams.group_last_delivered,
                        &mut one.group_last_delivered,
                    ),
                    (&mut fams.consumer_pending, &mut one.consumer_pending),
                    (&mut fams.consumer_idle, &mut one.consumer_idle),
                ] {
                    all.metrics.append(&mut part.metrics);
                }
            }
            Err(KeyError::Budget) => {
                fams.push_into(out);
                return Ok(true);
            }
            Err(KeyError::Redis(e)) if is_fatal(&e) => return Err(e),
            Err(KeyError::Redis(e)) => tracing::warn!(db, err = %e, "stream check failed"),
        }
    }
    fams.push_into(out);
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn xinfo_pairs_and_ids() {
        let v = Value::Array(vec![
            bulk("length"),
            Value::Int(2),
            bulk("last-generated-id"),
            bulk("1700000000123-4"),
            bulk("dangling"),
        ]);
        let p = pairs(&v);
        assert_eq!(field(&p, "length").and_then(as_int), Some(2));
        assert_eq!(
            id_ms(field(&p, "last-generated-id")),
            Some(1_700_000_000_123.0)
        );
        assert!(field(&p, "dangling").is_none());
        assert_eq!(id_ms(Some(&bulk("garbage"))), None);
        assert!(pairs(&Value::Nil).is_empty());
    }
}
