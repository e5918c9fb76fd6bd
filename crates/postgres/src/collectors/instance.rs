//! One single-row query per scrape for the server-wide scalars that several
//! collectors need: it answers `pg_up` (the liveness check), the settings
//! cache key, and the `postmaster`, `replication`, `stat_archiver` and
//! `stat_bgwriter` collectors, whose tables read its columns by name.
//! These views and functions need no special privileges, so sharing one
//! query cannot make one collector fail because of another; it saves five
//! round trips and statement executions per scrape on both sides. The
//! collectors still report success separately.

use std::sync::{Arc, Mutex};

use oxmon_core::sync::LockExt;
use oxmon_core::ScrapeContext;
use tokio::sync::OnceCell;

use super::table::ResultSet;
use super::Monitored;
use crate::conn::Error;
use crate::target::Target;

/// `pg_conf_load_time()` in epoch seconds.
pub const CONF_LOAD_TIME: &str = "conf_load_time";
/// `pg_is_in_recovery()` as 1 or 0.
pub const IN_RECOVERY: &str = "in_recovery";

macro_rules! instance_query {
    ($bgwriter:expr, $from:expr) => {
        concat!(
            "SELECT extract(epoch FROM pg_conf_load_time())::float8 AS conf_load_time, \
             pg_is_in_recovery()::int::float8 AS in_recovery, \
             'postmaster'::text AS process_name, \
             extract(epoch FROM pg_postmaster_start_time())::float8 AS postmaster_start_time, \
             (CASE WHEN NOT pg_is_in_recovery() THEN 0 \
                   WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                   ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END)::float8 AS lag_seconds, \
             (CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END)::float8 AS is_replica, \
             GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8 AS last_replay_seconds, \
             a.archived_count::float8, a.failed_count::float8, \
             extract(epoch FROM now() - a.last_archived_time)::float8 AS last_archive_age, ",
            $bgwriter,
            " FROM pg_stat_archiver a, pg_stat_bgwriter b",
            $from
        )
    };
}

/// Up to PostgreSQL 16 the checkpoint counters are in pg_stat_bgwriter.
const QUERY_12: &str = instance_query!(
    "b.checkpoints_timed::float8, b.checkpoints_req::float8, \
     b.checkpoint_write_time::float8, b.checkpoint_sync_time::float8, b.buffers_checkpoint::float8, \
     b.buffers_clean::float8, b.maxwritten_clean::float8, b.buffers_backend::float8, \
     b.buffers_backend_fsync::float8, b.buffers_alloc::float8, \
     extract(epoch FROM b.stats_reset)::float8 AS stats_reset",
    ""
);

/// From 17 they moved to pg_stat_checkpointer (read under their old names
/// here), and `buffers_backend*` are gone.
const QUERY_17: &str = instance_query!(
    "c.num_timed::float8 AS checkpoints_timed, c.num_requested::float8 AS checkpoints_req, \
     c.write_time::float8 AS checkpoint_write_time, c.sync_time::float8 AS checkpoint_sync_time, \
     c.buffers_written::float8 AS buffers_checkpoint, \
     b.buffers_clean::float8, b.maxwritten_clean::float8, b.buffers_alloc::float8, \
     extract(epoch FROM b.stats_reset)::float8 AS stats_reset",
    ", pg_stat_checkpointer c"
);

/// Every version of the query, for the tables' tests.
#[cfg(test)]
pub const VARIANTS: &[&str] = &[QUERY_12, QUERY_17];

type Shared = Arc<OnceCell<Result<Arc<ResultSet>, String>>>;

/// The instance row of the scrape in progress (one per target), by
/// scrape id.
#[derive(Default)]
pub struct PerScrape(Mutex<Option<(u64, Shared)>>);

impl PerScrape {
    /// The cell of scrape `id`: the one its first collector made, or a new
    /// one that replaces the previous scrape's.
    fn cell(&self, id: u64) -> Shared {
        let mut slot = self.0.lock_unpoisoned();
        match &*slot {
            Some((of, cell)) if *of == id => cell.clone(),
            _ => {
                let cell: Shared = Arc::new(OnceCell::new());
                *slot = Some((id, cell.clone()));
                cell
            }
        }
    }
}

/// The instance row for this scrape: the first collector to ask runs the
/// query, the others of the same scrape wait for it.
pub async fn row(m: &Monitored, ctx: &ScrapeContext) -> Result<Arc<ResultSet>, Error> {
    let cell = m.instance.cell(ctx.id);
    let t = &m.target;
    let result = cell
        .get_or_init(|| async {
            let live = t.main(ctx).await.map_err(|e| e.to_string())?;
            let query = if live.version_num >= 170000 {
                QUERY_17
            } else {
                QUERY_12
            };
            let rows = live
                .query(query, Target::query_deadline(ctx))
                .await
                .map_err(|e| e.to_string())?;
            let result = ResultSet::from_rows(&rows)
                .map_err(|e| format!("{}: the instance query: {e}", t.server))?;
            if result.rows.is_empty() {
                return Err(format!("{}: the instance query returned no row", t.server));
            }
            Ok(Arc::new(result))
        })
        .await;
    result.clone().map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cell_per_scrape_even_after_a_panic_while_locked() {
        let per_scrape = PerScrape::default();
        let first = per_scrape.cell(7);
        assert!(Arc::ptr_eq(&first, &per_scrape.cell(7)));
        let _ = std::panic::catch_unwind(|| {
            let _held = per_scrape.0.lock();
            panic!("a collector bug while holding the lock");
        });
        assert!(per_scrape.0.is_poisoned());
        let next = per_scrape.cell(8);
        assert!(!Arc::ptr_eq(&first, &next));
        assert!(Arc::ptr_eq(&next, &per_scrape.cell(8)));
    }
}
