//! The `queries` collector (on with `--extend.query-path`): runs the
//! custom queries of the queries file (format and row mapping in
//! `crate::queries`) for every target. Queries without `master: true` run
//! in every database with `--auto-discover-databases`; `cache_seconds`
//! results are reused per target and database.
//!
//! Queries run over their own connection per database, so a slow query
//! never holds up the built-in collectors, and are cut (and cancelled on
//! the server) at the scrape deadline. SIGHUP re-reads the file; a scrape
//! runs the queries that were loaded when it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::sync::LockExt;
use oxmon_core::{MetricFamily, ScrapeContext};

use super::{joined, Monitored, TargetCollector};
use crate::queries::{to_families, UserQueries};
use crate::reloadable::Reloadable;
use crate::target::Target;

/// The collector's options.
#[derive(Debug, Clone)]
pub struct CustomQueries {
    /// The parsed queries file, replaced on SIGHUP.
    pub queries: Arc<Reloadable<UserQueries>>,
    /// Run queries without `master: true` in every database too.
    pub auto_discover_databases: bool,
}

/// Cached results of one target: `(database, query name)` → when read and
/// the families.
#[derive(Default)]
pub struct ResultCache(Mutex<HashMap<(String, String), Cached>>);

type Cached = (Instant, Vec<MetricFamily>);

impl ResultCache {
    /// The families `key` gave less than `max_age` ago.
    fn fresh(&self, key: &(String, String), max_age: Duration) -> Option<Vec<MetricFamily>> {
        let cache = self.0.lock_unpoisoned();
        let (at, families) = cache.get(key)?;
        (at.elapsed() < max_age).then(|| families.clone())
    }

    fn store(&self, key: (String, String), families: Vec<MetricFamily>) {
        self.0
            .lock_unpoisoned()
            .insert(key, (Instant::now(), families));
    }
}

impl TargetCollector for CustomQueries {
    type State = ResultCache;

    fn collect<'a>(
        &'a self,
        m: &'a Monitored,
        cache: &'a ResultCache,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let t = &m.target;
            let queries = self.queries.current();
            let main_db = t.dsn.database().to_owned();
            let mut other_dbs = Vec::new();
            if self.auto_discover_databases && queries.queries.iter().any(|q| !q.master) {
                other_dbs = t
                    .databases(ctx)
                    .await?
                    .into_iter()
                    .map(|(d, _)| d)
                    .filter(|d| *d != main_db)
                    .collect();
            }
            let deadline = Target::query_deadline(ctx);
            let mut jobs = Vec::new();
            for q in &queries.queries {
                jobs.push((main_db.clone(), q));
                if !q.master {
                    jobs.extend(other_dbs.iter().map(|d| (d.clone(), q)));
                }
            }
            let runs = jobs.into_iter().map(|(db, q)| async move {
                let key = (db.clone(), q.name.clone());
                if let Some(fams) = cache.fresh(&key, q.cache) {
                    return Ok(fams);
                }
                let live = t.user_query_conn(&db).get(deadline).await?;
                if !q.runonserver.matches(live.version_num) {
                    return Ok(Vec::new());
                }
                let (columns, rows) = live
                    .simple_query(&q.query, deadline)
                    .await
                    .map_err(|e| format!("query {:?}: {e}", q.name))?;
                let fams = to_families(q, &t.server, &columns, &rows);
                if !q.cache.is_zero() {
                    cache.store(key, fams.clone());
                }
                Ok::<_, crate::conn::Error>(fams)
            });
            let mut errors = Vec::new();
            for r in futures_util::future::join_all(runs).await {
                match r {
                    Ok(f) => out.extend(f),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            joined(errors)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_results_survive_a_panic_while_locked() {
        let cache = ResultCache::default();
        let key = ("app".to_string(), "pg_custom".to_string());
        cache.store(key.clone(), vec![MetricFamily::gauge("pg_custom_n", "N")]);
        let _ = std::panic::catch_unwind(|| {
            let _held = cache.0.lock();
            panic!("a collector bug while holding the lock");
        });
        assert!(cache.0.is_poisoned());
        let minute = Duration::from_secs(60);
        assert_eq!(cache.fresh(&key, minute).unwrap()[0].name, "pg_custom_n");
        assert!(
            cache.fresh(&key, Duration::ZERO).is_none(),
            "no cache_seconds"
        );
        let other = ("other".to_string(), "pg_custom".to_string());
        assert!(cache.fresh(&other, minute).is_none());
    }
}
