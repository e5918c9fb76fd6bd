//! A monitored server: its main connection (the DSN's database), one
//! connection per other database for the per-database collectors, a
//! separate connection for user queries (so a slow custom query never
//! blocks the built-in ones), and the list of databases the per-database
//! collectors visit. What collectors remember lives with the collectors.
//!
//! A `/metrics` target keeps its connections for the life of the process.
//! `/probe` targets take theirs from one [`SharedConnections`] cache, keyed
//! by what makes two connections interchangeable (server, pinned address,
//! auth module, sslmode, database, built-in or user queries) and bounded
//! per host and in all, so no sequence of requests can hold more than the
//! bound open on one server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::sync::LockExt;
use oxmon_core::target_guard::{TargetCache, TargetCacheArgs};
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

/// What a connection serves: the built-in collectors (one per database,
/// the DSN's database being the main one) or user queries (a separate
/// connection for the DSN's database, so a slow one never holds up the
/// built-in queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    BuiltIn,
    UserQueries,
}

/// The connections of the `/probe` targets, shared by every target that
/// reaches the same server the same way: `/probe?target=h/db1` and
/// `/probe?target=h/db2` with one auth module use one connection to `db1`
/// and one to `db2`, however many requests name them. At most
/// `--target.max-connections` in all and
/// `--target.max-connections-per-host` to one host (host and port) are
/// kept; beyond that the least recently used one is dropped and closes
/// when the last scrape using it finishes. A target whose per-database
/// collectors visit more databases than one host may keep reopens some of
/// those connections every scrape; that is logged once per host.
#[derive(Clone)]
pub struct SharedConnections(Arc<SharedCache>);

struct SharedCache {
    cache: TargetCache<Arc<DbConn>>,
    per_host: usize,
    /// Hosts whose targets need more connections than the bound.
    crowded: FailureLog,
}

impl SharedConnections {
    /// An empty cache with these bounds; connections unused for `idle`
    /// are closed.
    pub fn new(bounds: &TargetCacheArgs, idle: Duration) -> Self {
        SharedConnections(Arc::new(SharedCache {
            cache: bounds.cache(idle),
            per_host: bounds.max_connections_per_host as usize,
            crowded: FailureLog::new(FailureSubject::Target),
        }))
    }
}

/// Where a target's connections are kept.
enum Connections {
    /// By the target, for the life of the process (`/metrics`).
    Own(Mutex<HashMap<(Role, String), Arc<DbConn>>>),
    /// In the `/probe` cache: `server` says how the target connects (all
    /// but the database), `host` groups the keys for the per-host bound.
    Shared {
        cache: SharedConnections,
        host: String,
        server: String,
    },
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
    connections: Connections,
    db_list: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
}

const DB_LIST_TTL: Duration = Duration::from_secs(60);

impl Target {
    /// Builds a target that keeps its own connections (opened lazily).
    pub fn new(dsn: Dsn, hostaddr: Option<IpAddr>, opts: Arc<Options>) -> Result<Target, String> {
        Self::build(dsn, hostaddr, opts, Connections::Own(Mutex::default()))
    }

    /// Builds a `/probe` target whose connections live in `cache`, under
    /// keys that start with `server` (everything that identifies how it
    /// connects except the database) and count against `host`.
    pub fn probe(
        dsn: Dsn,
        hostaddr: Option<IpAddr>,
        opts: Arc<Options>,
        cache: SharedConnections,
        host: String,
        server: String,
    ) -> Result<Target, String> {
        let connections = Connections::Shared {
            cache,
            host,
            server,
        };
        Self::build(dsn, hostaddr, opts, connections)
    }

    fn build(
        dsn: Dsn,
        hostaddr: Option<IpAddr>,
        opts: Arc<Options>,
        connections: Connections,
    ) -> Result<Target, String> {
        let tls = match dsn.sslmode {
            crate::dsn::SslMode::Disable | crate::dsn::SslMode::Allow => None,
            _ => Some(crate::tls::make_tls(&dsn).map_err(|e| format!("{}: {e}", dsn.redacted()))?),
        };
        Ok(Target {
            server: dsn.server_label(),
            dsn,
            opts,
            hostaddr,
            tls,
            connections,
            db_list: tokio::sync::Mutex::new(None),
        })
    }

    fn new_conn(&self, db: &str) -> Arc<DbConn> {
        Arc::new(DbConn::new(
            &self.dsn,
            db,
            self.hostaddr,
            self.tls.clone(),
            &self.opts.session,
        ))
    }

    /// The connection for `role` in `db`, made when there is none.
    fn conn(&self, role: Role, db: &str) -> Arc<DbConn> {
        match &self.connections {
            Connections::Own(map) => map
                .lock_unpoisoned()
                .entry((role, db.to_owned()))
                .or_insert_with(|| self.new_conn(db))
                .clone(),
            Connections::Shared {
                cache,
                host,
                server,
            } => {
                let key = format!("{server}|{role:?}|{db}");
                match cache.0.cache.get(&key) {
                    Some(c) => c,
                    None => cache.0.cache.insert_on_host(host, key, self.new_conn(db)),
                }
            }
        }
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
        self.conn(Role::BuiltIn, self.dsn.database())
            .get(Self::query_deadline(ctx))
            .await
    }

    /// The connection for user queries in `db` (the main database uses its
    /// own separate connection, so slow user queries never hold up the
    /// built-in collectors).
    pub fn user_query_conn(&self, db: &str) -> Arc<DbConn> {
        if db == self.dsn.database() {
            return self.conn(Role::UserQueries, db);
        }
        self.conn(Role::BuiltIn, db)
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
            let main_db = self.dsn.database();
            match &self.connections {
                Connections::Own(map) => {
                    map.lock_unpoisoned()
                        .retain(|(_, db), _| db == main_db || names.iter().any(|n| n == db));
                }
                // Shared connections to a vanished database go idle and
                // expire; too many databases for the bound are reported.
                Connections::Shared { cache, host, .. } => {
                    let needed = names.len() + usize::from(!names.iter().any(|n| n == main_db));
                    if needed > cache.0.per_host {
                        cache.0.crowded.failed(
                            host,
                            &format!(
                                "the per-database collectors visit {needed} databases but \
                                 --target.max-connections-per-host is {}: some connections \
                                 are reopened every scrape; raise it or narrow \
                                 --include-databases/--exclude-databases",
                                cache.0.per_host
                            ),
                        );
                    } else {
                        cache.0.crowded.forget(host);
                    }
                }
            }
            *cached = Some((Instant::now(), names));
        }
        let names = cached.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        drop(cached);
        Ok(names
            .into_iter()
            .map(|db| {
                let c = self.conn(Role::BuiltIn, &db);
                (db, c)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn opts() -> Arc<Options> {
        Arc::new(Options {
            session: SessionSettings {
                statement_timeout: Duration::from_secs(1),
                lock_timeout: Duration::from_secs(1),
            },
            include_databases: vec![],
            exclude_databases: vec![],
        })
    }

    #[derive(Parser)]
    struct Bounds {
        #[command(flatten)]
        bounds: TargetCacheArgs,
    }

    #[test]
    fn probe_targets_share_connections_within_the_per_host_bound() {
        let bounds = Bounds::parse_from(["t", "--target.max-connections-per-host=2"]).bounds;
        let shared = SharedConnections::new(&bounds, Duration::from_secs(60));
        let target = |db: &str| {
            let dsn = Dsn::parse(&format!("host=db port=5432 user=u dbname={db}")).unwrap();
            let host = "db:5432".to_string();
            Target::probe(dsn, None, opts(), shared.clone(), host, "db|u".into()).unwrap()
        };
        let (a, b) = (target("a"), target("b"));
        // Target b's connection to database a is target a's main one.
        assert!(Arc::ptr_eq(
            &a.conn(Role::BuiltIn, "a"),
            &b.conn(Role::BuiltIn, "a")
        ));
        assert!(!Arc::ptr_eq(
            &a.conn(Role::BuiltIn, "a"),
            &a.user_query_conn("a")
        ));
        assert_eq!(shared.0.cache.len_on_host("db:5432"), 2);
        // A third connection to the host drops the least recently used.
        let third = b.conn(Role::BuiltIn, "b");
        assert_eq!(shared.0.cache.len_on_host("db:5432"), 2);
        assert!(Arc::ptr_eq(&third, &b.conn(Role::BuiltIn, "b")));
    }
}
