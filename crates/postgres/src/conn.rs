//! One persistent connection to one database, re-established after a
//! failure; every query bounded by the scrape deadline and cancelled on the
//! server when it is cut off, or when the exporter is stopping.
//!
//! Concurrent callers share the connection: tokio-postgres pipelines their
//! queries. Statements are prepared once per connection and reused, so the
//! server parses and plans each built-in query once, not once per scrape.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::sync::LockExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::{CancelToken, Client, Row, SimpleQueryMessage, Statement};

use crate::dsn::{Dsn, SslMode};
use crate::tls::RustlsMakeTls;

/// A connection or query failure; its text never contains a password.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Whether the exporter is stopping (SIGTERM or SIGINT arrived):
/// process-wide, like the signal. See [`stop_queries_on_shutdown`].
static STOPPING: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::Sender::new(false));

/// From SIGTERM or SIGINT on, every query still running is cancelled on
/// its server at once and no new one starts. PostgreSQL does not notice a
/// client that went away while a query runs (a `pg_sleep(30)` would run
/// its 30 s after the exporter exited); with this, core's graceful
/// shutdown, which waits for the scrapes in flight, ends after their
/// cancel requests went out. Call once, inside the runtime.
pub fn stop_queries_on_shutdown() {
    tokio::spawn(async {
        oxmon_core::server::shutdown_signal().await;
        STOPPING.send_replace(true);
    });
}

/// Session settings applied to every connection.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `statement_timeout` (0 disables).
    pub statement_timeout: Duration,
    /// `lock_timeout` (0 disables).
    pub lock_timeout: Duration,
}

enum State {
    Idle,
    Live(Arc<Live>),
    Failed { at: Instant, err: String },
}

/// A lazily opened, self-healing connection to one database.
pub struct DbConn {
    label: String,
    config: tokio_postgres::Config,
    tls: Option<RustlsMakeTls>,
    session_sql: String,
    state: tokio::sync::Mutex<State>,
    /// Logs a failure once, not every scrape while it repeats.
    failures: FailureLog,
}

impl DbConn {
    /// Prepares (does not open) a connection to `dbname` on the DSN's server;
    /// `hostaddr` pins the address that was checked against an allow-list.
    pub fn new(
        dsn: &Dsn,
        dbname: &str,
        hostaddr: Option<IpAddr>,
        tls: Option<RustlsMakeTls>,
        session: &SessionSettings,
    ) -> DbConn {
        let mut config = tokio_postgres::Config::new();
        if dsn.is_unix_socket() {
            config.host_path(&dsn.host);
        } else {
            config.host(&dsn.host);
        }
        if let Some(addr) = hostaddr {
            config.hostaddr(addr);
        }
        config.port(dsn.port);
        config.user(dsn.user.as_deref().unwrap_or("postgres"));
        if let Some(p) = &dsn.password {
            config.password(p.expose());
        }
        config.dbname(dbname);
        config.application_name(dsn.application_name.as_deref().unwrap_or("oxmon-postgres"));
        if let Some(o) = &dsn.options {
            config.options(o);
        }
        if let Some(t) = dsn.connect_timeout {
            config.connect_timeout(t);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(60));
        let tls = match dsn.sslmode {
            SslMode::Disable | SslMode::Allow => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            _ if dsn.is_unix_socket() => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            SslMode::Prefer => {
                config.ssl_mode(tokio_postgres::config::SslMode::Prefer);
                tls
            }
            _ => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                tls
            }
        };
        let session_sql = format!(
            "SET statement_timeout = {}; SET lock_timeout = {}",
            session.statement_timeout.as_millis(),
            session.lock_timeout.as_millis()
        );
        DbConn {
            label: format!("{}/{}", dsn.server_label(), dbname),
            config,
            tls,
            session_sql,
            state: tokio::sync::Mutex::new(State::Idle),
            failures: FailureLog::new(FailureSubject::Target),
        }
    }

    /// The open connection, opening it when needed. Callers that waited
    /// while another caller failed to connect get that failure instead of
    /// trying again within the same moment.
    pub async fn get(&self, deadline: Instant) -> Result<Arc<Live>, Error> {
        let asked = Instant::now();
        let mut state = timeout_at(deadline, self.state.lock())
            .await
            .map_err(|_| self.err("timed out waiting for the connection"))?;
        match &*state {
            State::Live(l) if !l.client.is_closed() => return Ok(l.clone()),
            State::Failed { at, err } if *at >= asked => return Err(err.clone().into()),
            _ => {}
        }
        let result = match timeout_at(deadline, self.connect()).await {
            Ok(r) => r,
            Err(_) => Err(self.err("timed out connecting")),
        };
        match result {
            Ok(live) => {
                self.failures.succeeded(&self.label);
                let live = Arc::new(live);
                *state = State::Live(live.clone());
                Ok(live)
            }
            Err(e) => {
                let msg = e.to_string();
                self.failures.failed(&self.label, &msg);
                *state = State::Failed {
                    at: Instant::now(),
                    err: msg,
                };
                Err(e)
            }
        }
    }

    fn err(&self, what: &str) -> Error {
        format!("{}: {what}", self.label).into()
    }

    async fn connect(&self) -> Result<Live, Error> {
        let (client, cancel, tls) = match &self.tls {
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| self.err(&describe(&e)))?;
                spawn_connection(connection, self.label.clone());
                let cancel = client.cancel_token();
                (client, cancel, Some(tls.clone()))
            }
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| self.err(&describe(&e)))?;
                spawn_connection(connection, self.label.clone());
                let cancel = client.cancel_token();
                (client, cancel, None)
            }
        };
        client
            .batch_execute(&self.session_sql)
            .await
            .map_err(|e| self.err(&format!("setting session timeouts: {e}")))?;
        let row = client
            .query_one(
                "SELECT version(), current_setting('server_version_num')::int4",
                &[],
            )
            .await
            .map_err(|e| self.err(&format!("reading the server version: {e}")))?;
        let version: String = row.get(0);
        let version_num: i32 = row.get(1);
        tracing::info!(target_db = %self.label, version_num, "connected to PostgreSQL");
        Ok(Live {
            label: self.label.clone(),
            client,
            cancel,
            tls,
            version,
            version_num: version_num.max(0) as u32,
            statements: Mutex::new(HashMap::new()),
        })
    }
}

fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>, label: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(target_db = %label, err = %e, "connection closed");
        }
    });
}

/// An open connection.
pub struct Live {
    label: String,
    client: Client,
    cancel: CancelToken,
    tls: Option<RustlsMakeTls>,
    /// `version()`.
    pub version: String,
    /// `server_version_num`, e.g. 150004.
    pub version_num: u32,
    statements: Mutex<HashMap<&'static str, Statement>>,
}

impl Live {
    /// Runs a built-in query (prepared once per connection) with the
    /// deadline; a query cut off is cancelled on the server.
    pub async fn query(&self, sql: &'static str, deadline: Instant) -> Result<Vec<Row>, Error> {
        let run = async {
            let cached = self.statements.lock_unpoisoned().get(sql).cloned();
            let stmt = match cached {
                Some(s) => s,
                None => {
                    let s = self.client.prepare(sql).await?;
                    self.statements.lock_unpoisoned().insert(sql, s.clone());
                    s
                }
            };
            self.client.query(&stmt, &[]).await
        };
        match self.bounded(run, deadline).await? {
            Ok(rows) => Ok(rows),
            Err(e) => {
                self.statements.lock_unpoisoned().remove(sql);
                Err(format!("{}: {}", self.label, describe(&e)).into())
            }
        }
    }

    /// Runs a query with the simple protocol (text results), for user
    /// queries, under the same deadline and cancellation rules.
    pub async fn simple_query(
        &self,
        sql: &str,
        deadline: Instant,
    ) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), Error> {
        let messages = self
            .bounded(self.client.simple_query(sql), deadline)
            .await?
            .map_err(|e| format!("{}: {}", self.label, describe(&e)))?;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) => {
                    columns = cols.iter().map(|c| c.name().to_owned()).collect();
                }
                SimpleQueryMessage::Row(r) => {
                    if columns.is_empty() {
                        columns = r.columns().iter().map(|c| c.name().to_owned()).collect();
                    }
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
                }
                _ => {}
            }
        }
        Ok((columns, rows))
    }

    /// Runs `query` until it answers, the deadline passes or the exporter
    /// stops; in the last two cases the query is cancelled on the server
    /// before this returns (the cancel request goes out even if this
    /// future is dropped meanwhile).
    async fn bounded<T>(
        &self,
        query: impl Future<Output = Result<T, tokio_postgres::Error>>,
        deadline: Instant,
    ) -> Result<Result<T, tokio_postgres::Error>, Error> {
        let mut stopping = STOPPING.subscribe();
        if *stopping.borrow() {
            return Err(format!("{}: not queried: the exporter is stopping", self.label).into());
        }
        let guard = CancelGuard::new(self);
        let why = tokio::select! {
            answer = query => {
                guard.disarm();
                return Ok(answer);
            }
            _ = tokio::time::sleep_until(deadline) => "query cut off at the scrape deadline and cancelled",
            _ = stopping.wait_for(|stop| *stop) => "query cancelled: the exporter is stopping",
        };
        guard.cancel().await;
        Err(format!("{}: {why}", self.label).into())
    }
}

/// The server's message for a database error, else the driver's text.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    // The driver's text names the step ("error connecting to server"); the
    // reason ("Connection refused") is in the source chain.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Sends a cancel request for the running query unless disarmed, also when
/// the query future is dropped by the registry at the deadline.
struct CancelGuard {
    armed: Option<(CancelToken, Option<RustlsMakeTls>, String)>,
}

impl CancelGuard {
    fn new(live: &Live) -> Self {
        CancelGuard {
            armed: Some((live.cancel.clone(), live.tls.clone(), live.label.clone())),
        }
    }

    fn disarm(mut self) {
        self.armed = None;
    }

    /// Sends the cancel request now and waits until it went out (or
    /// failed).
    async fn cancel(mut self) {
        if let Some(sending) = self.send() {
            let _ = sending.await;
        }
    }

    /// Sends the cancel request from a task of its own, which finishes
    /// whether or not anyone waits for it.
    fn send(&mut self) -> Option<JoinHandle<()>> {
        let (token, tls, label) = self.armed.take()?;
        let handle = tokio::runtime::Handle::try_current().ok()?;
        Some(handle.spawn(async move {
            let sent = match tls {
                Some(tls) => {
                    tokio::time::timeout(Duration::from_secs(5), token.cancel_query(tls)).await
                }
                None => {
                    tokio::time::timeout(
                        Duration::from_secs(5),
                        token.cancel_query(tokio_postgres::NoTls),
                    )
                    .await
                }
            };
            match sent {
                Ok(Ok(())) => tracing::debug!(target_db = %label, "cancelled a running query"),
                Ok(Err(e)) => {
                    tracing::warn!(target_db = %label, err = %e, "cancelling a query failed")
                }
                Err(_) => tracing::warn!(target_db = %label, "cancelling a query timed out"),
            }
        }))
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.send();
    }
}

/// A text column ("" for NULL).
pub fn text_col(row: &Row, idx: usize) -> String {
    row.try_get::<_, Option<String>>(idx)
        .ok()
        .flatten()
        .unwrap_or_default()
}
