//! A monitored server: its main connection (the DSN's database), one
//! connection per other database for the per-database collectors, a
//! separate connection for user queries (so a slow custom query never
//! blocks the built-in ones), and the list of databases the per-database
//! collectors visit. What collectors remember lives with the collectors.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use oxmon_core::sync::LockExt;
use oxmon_core::{parse_duration, ScrapeContext};
use tokio::time::Instant;

use crate::conn::{text_col, DbConn, Error, Live, SessionSettings};
use crate::dsn::Dsn;
use crate::tls::RustlsMakeTls;

/// How every target connects, and which databases it visits.
#[derive(Debug, Clone)]
pub struct Options {
    /// Session timeouts.
    pub session: SessionSettings,
    /// Per-database collectors only visit these databases (empty: all).
    pub include_databases: Vec<String>,
    /// Per-database collectors never visit these.
    pub exclude_databases: Vec<String>,
}

/// The connection and database-selection flags.
#[derive(clap::Args)]
pub struct ConnectionArgs {
    /// Databases the per-database collectors skip (comma separated).
    #[arg(
        long = "exclude-databases",
        env = "PG_EXPORTER_EXCLUDE_DATABASES",
        value_delimiter = ','
    )]
    exclude_databases: Vec<String>,
    /// Only these databases for the per-database collectors (comma separated; empty: all).
    #[arg(
        long = "include-databases",
        env = "PG_EXPORTER_INCLUDE_DATABASES",
        value_delimiter = ','
    )]
    include_databases: Vec<String>,
    /// statement_timeout for the exporter's sessions (a safety net; queries are also cancelled at the scrape deadline).
    #[arg(long = "pg.statement-timeout", default_value = "15s", value_parser = parse_duration)]
    statement_timeout: Duration,
    /// lock_timeout for the exporter's sessions, so a catalog lock never stalls a scrape.
    #[arg(long = "pg.lock-timeout", default_value = "1s", value_parser = parse_duration)]
    lock_timeout: Duration,
}

impl ConnectionArgs {
    /// The options every target is built with.
    pub fn options(self) -> Options {
        let named = |list: Vec<String>| list.into_iter().filter(|d| !d.is_empty()).collect();
        Options {
            session: SessionSettings {
                statement_timeout: self.statement_timeout,
                lock_timeout: self.lock_timeout,
            },
            include_databases: named(self.include_databases),
            exclude_databases: named(self.exclude_databases),
        }
    }
}

/// One monitored PostgreSQL server.
pub struct Target {
    /// The `server` label value (`host:port`).
    pub server: String,
    /// Connection settings (the password stays inside).
    pub dsn: Dsn,
    opts: Arc<Options>,
    hostaddr: Option<IpAddr>,
    tls: Option<RustlsMakeTls>,
    main: Arc<DbConn>,
    custom: OnceLock<Arc<DbConn>>,
    per_db: Mutex<HashMap<String, Arc<DbConn>>>,
    db_list: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
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
        })
    }

    /// The deadline for queries: a little before the scrape deadline so a
    /// cut-off query is reported (and cancelled) by us, not dropped.
    pub fn query_deadline(ctx: &ScrapeContext) -> Instant {
        let margin = (ctx.remaining() / 20).min(Duration::from_millis(100));
        ctx.deadline - margin
    }

    /// Whether `--include-databases` / `--exclude-databases` let the
    /// per-database collectors visit `db`.
    pub fn includes_database(&self, db: &str) -> bool {
        (self.opts.include_databases.is_empty()
            || self.opts.include_databases.iter().any(|d| d == db))
            && !self.opts.exclude_databases.iter().any(|d| d == db)
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
        let mut map = self.per_db.lock_unpoisoned();
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
                .map(|r| text_col(r, 0))
                .filter(|d| self.includes_database(d))
                .collect();
            self.per_db
                .lock_unpoisoned()
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
}
