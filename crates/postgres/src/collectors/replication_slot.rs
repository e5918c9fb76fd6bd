//! `replication_slot` collector (on by default): `pg_replication_slots`,
//! with both the current postgres_exporter names and the 0.11 legacy ones.
//!
//! Metrics: `pg_replication_slot_slot_current_wal_lsn{slot_name,slot_type}`,
//! `pg_replication_slot_slot_confirmed_flush_lsn` (active slots),
//! `pg_replication_slot_slot_is_active`, `pg_replication_slot_safe_wal_size_bytes`
//! and `pg_replication_slot_wal_status{wal_status}` (13+);
//! legacy `pg_replication_slots_active{slot_name,database}` and
//! `pg_replication_slots_pg_wal_lsn_diff{slot_name,database}`.

use std::borrow::Cow;

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::GAUGE;
use crate::conn::{f, s, Live};

const QUERY_13: &str = "SELECT slot_name::text, slot_type::text, COALESCE(database::text, ''), \
     (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() - '0/0' ELSE pg_current_wal_lsn() - '0/0' END)::float8, \
     (COALESCE(confirmed_flush_lsn, '0/0') - '0/0')::float8, active::int::float8, \
     (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END)::float8, \
     safe_wal_size::float8, wal_status::text \
     FROM pg_replication_slots";

const QUERY_12: &str = "SELECT slot_name::text, slot_type::text, COALESCE(database::text, ''), \
     (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() - '0/0' ELSE pg_current_wal_lsn() - '0/0' END)::float8, \
     (COALESCE(confirmed_flush_lsn, '0/0') - '0/0')::float8, active::int::float8, \
     (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END)::float8, \
     NULL::float8, NULL::text \
     FROM pg_replication_slots";

/// Collects the slot families.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let query = if live.version_num >= 130000 {
        QUERY_13
    } else {
        QUERY_12
    };
    let rows = live.query(query, deadline).await?;
    let mut current = MetricFamily::new(
        "pg_replication_slot_slot_current_wal_lsn",
        "current wal lsn value",
        GAUGE,
    );
    let mut flushed = MetricFamily::new(
        "pg_replication_slot_slot_confirmed_flush_lsn",
        "last lsn confirmed flushed to the replication slot",
        GAUGE,
    );
    let mut active = MetricFamily::new(
        "pg_replication_slot_slot_is_active",
        "whether the replication slot is active or not",
        GAUGE,
    );
    let mut safe = MetricFamily::new(
        "pg_replication_slot_safe_wal_size_bytes",
        "number of bytes that can be written to WAL such that this slot is not in danger of getting in state lost",
        GAUGE,
    );
    let mut status = MetricFamily::new(
        "pg_replication_slot_wal_status",
        "availability of WAL files claimed by this slot",
        GAUGE,
    );
    let mut legacy_active = MetricFamily::new(
        "pg_replication_slots_active",
        "Flag indicating if the slot is active",
        GAUGE,
    );
    let mut legacy_diff = MetricFamily::new(
        "pg_replication_slots_pg_wal_lsn_diff",
        "Replication lag in bytes",
        GAUGE,
    );
    for row in &rows {
        let (name, kind, db) = (s(row, 0), s(row, 1), s(row, 2));
        let slot = || {
            vec![
                (Cow::Borrowed("slot_name"), name.clone()),
                (Cow::Borrowed("slot_type"), kind.clone()),
                (Cow::Borrowed("server"), server.to_owned()),
            ]
        };
        let legacy = || {
            vec![
                (Cow::Borrowed("slot_name"), name.clone()),
                (Cow::Borrowed("database"), db.clone()),
                (Cow::Borrowed("server"), server.to_owned()),
            ]
        };
        let is_active = f(row, 5);
        current.add_owned(slot(), zero_nan(f(row, 3)));
        if is_active == 1.0 {
            flushed.add_owned(slot(), zero_nan(f(row, 4)));
        }
        active.add_owned(slot(), zero_nan(is_active));
        legacy_active.add_owned(legacy(), zero_nan(is_active));
        legacy_diff.add_owned(legacy(), f(row, 6));
        let safe_size = f(row, 7);
        if !safe_size.is_nan() {
            safe.add_owned(slot(), safe_size);
        }
        let wal_status = s(row, 8);
        if !wal_status.is_empty() {
            let mut l = slot();
            l.push((Cow::Borrowed("wal_status"), wal_status));
            status.add_owned(l, 1.0);
        }
    }
    out.extend([
        current,
        flushed,
        active,
        safe,
        status,
        legacy_active,
        legacy_diff,
    ]);
    Ok(())
}

fn zero_nan(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v
    }
}
