//! One single-row query per scrape for the server-wide scalars that several
//! collectors need: it answers `pg_up` (the liveness check), the settings
//! cache key, and the `postmaster`, `replication`, `stat_archiver` and
//! `stat_bgwriter` collectors. These views and functions need no special
//! privileges, so sharing one query cannot make one collector fail because
//! of another; it saves five round trips and statement executions per
//! scrape on both sides. The collectors still report success separately.

use std::sync::Arc;

use oxmon_core::ScrapeContext;
use tokio::sync::OnceCell;
use tokio_postgres::Row;

use crate::conn::Error;
use crate::target::Target;

/// Column of `pg_conf_load_time()` (epoch seconds).
pub const CONF_LOAD_TIME: usize = 0;
/// Column of `pg_is_in_recovery()` (bool).
pub const IN_RECOVERY: usize = 1;
/// Column of the postmaster start time.
pub const POSTMASTER_START: usize = 2;
/// First of the three replication columns.
pub const REPLICATION: usize = 3;
/// First of the three archiver columns.
pub const ARCHIVER: usize = 6;
/// First of the eleven bgwriter columns.
pub const BGWRITER: usize = 9;

macro_rules! instance_query {
    ($bgwriter:expr, $from:expr) => {
        concat!(
            "SELECT extract(epoch FROM pg_conf_load_time())::float8, pg_is_in_recovery(), \
             extract(epoch FROM pg_postmaster_start_time())::float8, \
             (CASE WHEN NOT pg_is_in_recovery() THEN 0 \
                   WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                   ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END)::float8, \
             (CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END)::float8, \
             GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8, \
             a.archived_count::float8, a.failed_count::float8, \
             extract(epoch FROM now() - a.last_archived_time)::float8, ",
            $bgwriter,
            " FROM pg_stat_archiver a, pg_stat_bgwriter b",
            $from
        )
    };
}

const QUERY_16: &str = instance_query!(
    "b.checkpoints_timed::float8, b.checkpoints_req::float8, \
     b.checkpoint_write_time::float8, b.checkpoint_sync_time::float8, b.buffers_checkpoint::float8, \
     b.buffers_clean::float8, b.maxwritten_clean::float8, b.buffers_backend::float8, \
     b.buffers_backend_fsync::float8, b.buffers_alloc::float8, extract(epoch FROM b.stats_reset)::float8",
    ""
);

const QUERY_17: &str = instance_query!(
    "c.num_timed::float8, c.num_requested::float8, \
     c.write_time::float8, c.sync_time::float8, c.buffers_written::float8, \
     b.buffers_clean::float8, b.maxwritten_clean::float8, NULL::float8, NULL::float8, \
     b.buffers_alloc::float8, extract(epoch FROM b.stats_reset)::float8",
    ", pg_stat_checkpointer c"
);

/// The per-scrape result, shared by the collectors of one scrape.
pub type Shared = Arc<OnceCell<Result<Arc<Vec<Row>>, String>>>;

/// The instance row for this scrape: the first collector to ask runs the
/// query, the others of the same scrape (same deadline) wait for it.
pub async fn row(t: &Target, ctx: &ScrapeContext) -> Result<Arc<Vec<Row>>, Error> {
    let cell: Shared = {
        let mut slot = t.instance.lock().unwrap();
        match &*slot {
            Some((deadline, cell)) if *deadline == ctx.deadline => cell.clone(),
            _ => {
                let cell: Shared = Arc::new(OnceCell::new());
                *slot = Some((ctx.deadline, cell.clone()));
                cell
            }
        }
    };
    let result = cell
        .get_or_init(|| async {
            let live = t.main(ctx).await.map_err(|e| e.to_string())?;
            let query = if live.version_num >= 170000 {
                QUERY_17
            } else {
                QUERY_16
            };
            let rows = live
                .query(query, Target::query_deadline(ctx))
                .await
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                return Err(format!("{}: the instance query returned no row", t.server));
            }
            Ok(Arc::new(rows))
        })
        .await;
    result.clone().map_err(Error::from)
}
