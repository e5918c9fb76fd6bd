//! `stat_progress_vacuum` collector (on by default): every running vacuum,
//! its phase (one series per phase, 1 for the current one) and progress.
//!
//! Metrics: `pg_stat_progress_vacuum_phase{datname,relname,phase}`,
//! `pg_stat_progress_vacuum_{heap_blks,heap_blks_scanned,heap_blks_vacuumed,
//! index_vacuums,max_dead_tuples,num_dead_tuples}{datname,relname}`.

use std::borrow::Cow;

use oxmon_core::MetricFamily;
use tokio::time::Instant;

use super::{label_set, ValueSpec, GAUGE};
use crate::conn::{f, Live};

const QUERY: &str = "SELECT COALESCE(d.datname::text, 'unknown'), \
     COALESCE(CASE WHEN d.datname = current_database() THEN s.relid::regclass::text END, s.relid::text), \
     s.param1::float8, s.param2::float8, s.param3::float8, s.param4::float8, s.param5::float8, \
     s.param6::float8, s.param7::float8 \
     FROM pg_stat_get_progress_info('VACUUM') s \
     LEFT JOIN pg_database d ON s.datid = d.oid";

const PHASES: &[&str] = &[
    "initializing",
    "scanning heap",
    "vacuuming indexes",
    "vacuuming heap",
    "cleaning up indexes",
    "truncating heap",
    "performing final cleanup",
];

const VALUES: &[ValueSpec] = &[
    (
        "pg_stat_progress_vacuum_heap_blks",
        GAUGE,
        "Total number of heap blocks in the table being vacuumed.",
    ),
    (
        "pg_stat_progress_vacuum_heap_blks_scanned",
        GAUGE,
        "Number of heap blocks scanned so far.",
    ),
    (
        "pg_stat_progress_vacuum_heap_blks_vacuumed",
        GAUGE,
        "Number of heap blocks vacuumed so far.",
    ),
    (
        "pg_stat_progress_vacuum_index_vacuums",
        GAUGE,
        "Number of completed index vacuum cycles.",
    ),
    (
        "pg_stat_progress_vacuum_max_dead_tuples",
        GAUGE,
        "Maximum number of dead tuples that can be stored before cleanup is performed.",
    ),
    (
        "pg_stat_progress_vacuum_num_dead_tuples",
        GAUGE,
        "Current number of dead tuples found so far.",
    ),
];

/// Collects vacuum progress.
pub async fn collect(
    server: &str,
    live: &Live,
    deadline: Instant,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let rows = live.query(QUERY, deadline).await?;
    let mut phase = MetricFamily::new(
        "pg_stat_progress_vacuum_phase",
        "Current vacuum phase (1 = active, 0 = inactive). Label 'phase' is human-readable.",
        GAUGE,
    );
    let mut fams: Vec<MetricFamily> = VALUES
        .iter()
        .map(|(n, k, h)| MetricFamily::new(*n, *h, *k))
        .collect();
    for row in &rows {
        let labels = label_set(server, &["datname", "relname"], row);
        let current = f(row, 2);
        for (i, p) in PHASES.iter().enumerate() {
            let mut l = labels.clone();
            l.push((Cow::Borrowed("phase"), (*p).to_owned()));
            phase.add_owned(l, if current == i as f64 { 1.0 } else { 0.0 });
        }
        for (i, fam) in fams.iter_mut().enumerate() {
            let v = f(row, 3 + i);
            fam.add_owned(labels.clone(), if v.is_nan() { 0.0 } else { v });
        }
    }
    out.push(phase);
    out.extend(fams);
    Ok(())
}
