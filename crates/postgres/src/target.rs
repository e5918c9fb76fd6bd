//! A monitored server: its main connection (the DSN's database), one
//! connection per other database for the per-database collectors, a
//! separate connection for user queries (so a slow custom query never
//! blocks the built-in ones), and the caches that make scrapes cheap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use oxmon_core::{MetricFamily, ScrapeContext};
use tokio::time::Instant;

use crate::conn::{DbConn, Error, Live, SessionSettings};
use crate::dsn::Dsn;
use crate::queries::UserQueries;
use crate::tls::RustlsMakeTls;

/// Settings shared by all targets.
#[derive(Debug, Clone)]
pub struct Options {
    /// Session timeouts.
    pub session: SessionSettings,
    /// Per-database collectors only visit these databases (empty: all).
    pub include_databases: Vec<String>,
    /// Per-database collectors never visit these.
    pub exclude_databases: Vec<String>,
    /// Run non-`master` user queries in every database too.
    pub auto_discover_databases: bool,
    /// Longest time a cached pg_settings result is reused.
    pub settings_max_age: Duration,
    /// pg_stat_statements: the top-N queries built from the flags.
    pub stat_statements: crate::collectors::stat_statements::Queries,
    /// pg_stat_statements: add the query text mapping.
    pub stat_statements_include_query: bool,
    /// Whether `pg_up` and the exporter metrics carry a `server` label
    /// (several targets, or `/probe`).
    pub label_up: bool,
    /// Parsed user queries, if a file was given.
    pub queries: Option<Arc<UserQueries>>,
}

impl Options {
    /// Whether a per-database collector visits `db`.
    pub fn database_allowed(&self, db: &str) -> bool {
        (self.include_databases.is_empty() || self.include_databases.iter().any(|d| d == db))
            && !self.exclude_databases.iter().any(|d| d == db)
    }
}

/// Cached pg_settings families, valid while the configuration load time
/// and recovery state are unchanged.
pub struct SettingsCache {
    /// `(pg_conf_load_time epoch, in recovery)`.
    pub key: (f64, bool),
    /// When it was filled.
    pub at: std::time::Instant,
    /// `(family name, help, value)` of every numeric setting.
    pub values: Vec<(&'static str, &'static str, f64)>,
}

/// A cached user query result and when it was read.
pub type CachedResult = (std::time::Instant, Vec<MetricFamily>);

/// One monitored PostgreSQL server.
pub struct Target {
    /// The `server` label value (`host:port`).
    pub server: String,
    /// Connection settings (the password stays inside).
    pub dsn: Dsn,
    /// Shared options.
    pub opts: Arc<Options>,
    hostaddr: Option<IpAddr>,
    tls: Option<RustlsMakeTls>,
    main: Arc<DbConn>,
    custom: OnceLock<Arc<DbConn>>,
    per_db: Mutex<HashMap<String, Arc<DbConn>>>,
    db_list: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
    /// The instance row of the scrape in progress, by deadline.
    pub instance: Mutex<Option<(Instant, crate::collectors::instance::Shared)>>,
    /// pg_settings cache.
    pub settings: Mutex<Option<SettingsCache>>,
    /// User query result cache: `(database, query name)` → families.
    pub query_cache: Mutex<HashMap<(String, String), CachedResult>>,
    /// Collector failures since the last `up` collection.
    pub failures: AtomicU64,
    /// Scrapes seen.
    pub scrapes: AtomicU64,
    /// `(start, end)` of the last scrape, in ms since `epoch`.
    pub last_scrape: Mutex<(Option<Instant>, Option<Instant>)>,
}

const DB_LIST_TTL: Duration = Duration::from_secs(60);

impl Target {
    /// Builds a target (connects lazily).
    pub fn new(dsn: Dsn, hostaddr: Option<IpAddr>, opts: Arc<Options>) -> Result<Target, String> {
        let tls = match dsn.sslmode {
            crate::dsn::SslMode::Disable | crate::dsn::SslMode::Allow => None,
            _ => Some(crate::tls::make_tls(&dsn).map_err(|e| format!("{}: {e}", dsn.redacted()))?),
        };
        let main = Arc::new(DbConn::new(
            &dsn,
            dsn.database(),
            hostaddr,
            tls.clone(),
            &opts.session,
        ));
        Ok(Target {
            server: dsn.server_label(),
            dsn,
            opts,
            hostaddr,
            tls,
            main,
            custom: OnceLock::new(),
            per_db: Mutex::new(HashMap::new()),
            db_list: tokio::sync::Mutex::new(None),
            instance: Mutex::new(None),
            settings: Mutex::new(None),
            query_cache: Mutex::new(HashMap::new()),
            failures: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            last_scrape: Mutex::new((None, None)),
        })
    }

    /// The deadline for queries: a little before the scrape deadline so a
    /// cut-off query is reported (and cancelled) by us, not dropped.
    pub fn query_deadline(ctx: &ScrapeContext) -> Instant {
        let margin = (ctx.remaining() / 20).min(Duration::from_millis(100));
        ctx.deadline - margin
    }

    /// The main connection.
    pub async fn main(&self, ctx: &ScrapeContext) -> Result<Arc<Live>, Error> {
        self.main.get(Self::query_deadline(ctx)).await
    }

    /// The connection for user queries in `db` (the main database uses its
    /// own separate connection, so slow user queries never hold up the
    /// built-in collectors).
    pub fn user_query_conn(&self, db: &str) -> Arc<DbConn> {
        if db == self.dsn.database() {
            return self
                .custom
                .get_or_init(|| {
                    Arc::new(DbConn::new(
                        &self.dsn,
                        db,
                        self.hostaddr,
                        self.tls.clone(),
                        &self.opts.session,
                    ))
                })
                .clone();
        }
        self.db_conn(db)
    }

    fn db_conn(&self, db: &str) -> Arc<DbConn> {
        if db == self.dsn.database() {
            return self.main.clone();
        }
        let mut map = self.per_db.lock().unwrap();
        map.entry(db.to_owned())
            .or_insert_with(|| {
                Arc::new(DbConn::new(
                    &self.dsn,
                    db,
                    self.hostaddr,
                    self.tls.clone(),
                    &self.opts.session,
                ))
            })
            .clone()
    }

    /// The databases the per-database collectors visit, with their
    /// connections: every database that accepts connections and is not a
    /// template, filtered by the include/exclude lists. The list is
    /// refreshed every minute; connections to vanished databases are closed.
    pub async fn databases(
        &self,
        ctx: &ScrapeContext,
    ) -> Result<Vec<(String, Arc<DbConn>)>, Error> {
        let deadline = Self::query_deadline(ctx);
        let mut cached = tokio::time::timeout_at(deadline, self.db_list.lock())
            .await
            .map_err(|_| format!("{}: timed out listing databases", self.server))?;
        let fresh = matches!(&*cached, Some((at, _)) if at.elapsed() < DB_LIST_TTL);
        if !fresh {
            let live = self.main(ctx).await?;
            let rows = live
                .query(
                    "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
                    deadline,
                )
                .await?;
            let names: Vec<String> = rows
                .iter()
                .map(|r| crate::conn::s(r, 0))
                .filter(|d| self.opts.database_allowed(d))
                .collect();
            self.per_db
                .lock()
                .unwrap()
                .retain(|db, _| names.iter().any(|n| n == db));
            *cached = Some((Instant::now(), names));
        }
        let names = cached.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        drop(cached);
        Ok(names
            .into_iter()
            .map(|db| {
                let c = self.db_conn(&db);
                (db, c)
            })
            .collect())
    }

    /// Counts a failed collector for `pg_exporter_last_scrape_error`.
    pub fn record(&self, ok: bool) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let mut last = self.last_scrape.lock().unwrap();
        last.1 = Some(Instant::now());
    }
}
