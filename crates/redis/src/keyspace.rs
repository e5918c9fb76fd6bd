//! The keyspace walk shared by the key, stream and key group checks.
//!
//! `db=pattern` lists (`--check-keys`, `--check-streams`, ...), selecting a
//! database inside each pipeline (never in cluster mode, where only db0
//! exists), `SCAN cursor MATCH pattern COUNT --check-keys-batch-size`, and
//! the resolution of patterns and single names to the keys to inspect.
//!
//! Every round trip first checks the per-scrape time budget
//! (`--check-keys-time-budget`, and the scrape deadline) and is itself cut
//! off at it: [`KeyError::Budget`] tells the caller to stop and give no
//! partial series.

use std::collections::HashSet;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use tokio::time::Instant;
/// One `db=pattern` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// Database index.
    pub db: i64,
    /// Key name or glob pattern.
    pub pattern: String,
}

/// A key list entry that cannot be parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyListError {
    /// The part before `=` is not a database number.
    #[error("invalid database {db:?} in key entry {entry:?}")]
    Database {
        /// The database part.
        db: String,
        /// The whole entry.
        entry: String,
    },
    /// Nothing after `=`.
    #[error("empty key in entry {entry:?}")]
    EmptyKey {
        /// The whole entry.
        entry: String,
    },
}

/// Parses redis_exporter's key list syntax: comma-separated `key`,
/// `db3=key` or `3=key` (db 0 when omitted).
pub fn parse_key_list(s: &str) -> Result<Vec<KeyPattern>, KeyListError> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (db, pattern) = match item.split_once('=') {
            Some((db, p)) => {
                let n = db.trim().strip_prefix("db").unwrap_or(db.trim());
                let db = n.parse::<i64>().map_err(|_| KeyListError::Database {
                    db: db.to_string(),
                    entry: item.to_string(),
                })?;
                (db, p)
            }
            None => (0, item),
        };
        if pattern.is_empty() {
            return Err(KeyListError::EmptyKey {
                entry: item.to_string(),
            });
        }
        out.push(KeyPattern {
            db,
            pattern: pattern.to_string(),
        });
    }
    Ok(out)
}

/// True when `s` has glob characters, so it needs a SCAN.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// What every keyspace check shares.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    /// SCAN COUNT hint (`--check-keys-batch-size`).
    pub batch_size: u64,
    /// Time allowed for all keyspace checks of one scrape
    /// (`--check-keys-time-budget`).
    pub budget: Duration,
}

/// Why a keyspace check stopped early.
#[derive(Debug)]
pub enum KeyError {
    /// The time budget or the scrape deadline was reached.
    Budget,
    /// A Redis error (connection-level errors end the keyspace checks).
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for KeyError {
    fn from(e: redis::RedisError) -> Self {
        KeyError::Redis(e)
    }
}

/// Keys per database, each key once.
pub type KeysPerDb = Vec<(i64, Vec<Vec<u8>>)>;

/// One scrape's access to the keyspace: the connection, whether the server
/// runs in cluster mode (only db0, no `SELECT`), the SCAN batch size and
/// the deadline of the keyspace checks.
pub struct Keyspace<'a> {
    conn: &'a mut MultiplexedConnection,
    cluster: bool,
    batch_size: u64,
    deadline: Instant,
}

impl<'a> Keyspace<'a> {
    /// Keyspace access until `deadline`.
    pub fn new(
        conn: &'a mut MultiplexedConnection,
        cluster: bool,
        limits: ScanLimits,
        deadline: Instant,
    ) -> Self {
        Keyspace {
            conn,
            cluster,
            batch_size: limits.batch_size,
            deadline,
        }
    }

    /// True in cluster mode, where only db0 exists.
    pub fn cluster(&self) -> bool {
        self.cluster
    }

    /// The SCAN COUNT hint.
    pub fn batch_size(&self) -> u64 {
        self.batch_size
    }

    /// `Err(KeyError::Budget)` once the deadline has passed; called before
    /// every round trip.
    pub fn check_time(&self) -> Result<(), KeyError> {
        if Instant::now() >= self.deadline {
            Err(KeyError::Budget)
        } else {
            Ok(())
        }
    }

    /// A pipeline whose commands run in `db`: it starts with `SELECT`
    /// (none in cluster mode), which [`Keyspace::query`] checks and strips.
    pub fn pipeline(&self, db: i64) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        if !self.cluster {
            pipe.cmd("SELECT").arg(db);
        }
        pipe
    }

    /// Runs a pipeline from [`Keyspace::pipeline`] within the deadline;
    /// returns the replies after the `SELECT`, or an error when the
    /// `SELECT` failed (so no command ever runs against the wrong
    /// database).
    pub async fn query(&mut self, pipe: &redis::Pipeline) -> Result<Vec<Value>, KeyError> {
        let reply = pipe.query_async::<Vec<Value>>(self.conn);
        let mut replies = match tokio::time::timeout_at(self.deadline, reply).await {
            Ok(r) => r?,
            Err(_) => return Err(KeyError::Budget),
        };
        if !self.cluster && !replies.is_empty() {
            if let Value::ServerError(e) = replies.remove(0) {
                return Err(KeyError::Redis(e.into()));
            }
        }
        Ok(replies)
    }

    /// Scans `pattern` in `db`, calling `each` with every batch of keys.
    pub async fn scan(
        &mut self,
        db: i64,
        pattern: &str,
        mut each: impl FnMut(Vec<Vec<u8>>),
    ) -> Result<(), KeyError> {
        let mut cursor: u64 = 0;
        loop {
            self.check_time()?;
            let mut pipe = self.pipeline(db);
            pipe.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(self.batch_size);
            let mut reply = self.query(&pipe).await?;
            let (next, keys): (u64, Vec<Vec<u8>>) =
                redis::from_redis_value(reply.pop().unwrap_or(Value::Nil))
                    .map_err(redis::RedisError::from)?;
            each(keys);
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }

    /// The keys named by `scanned` patterns (globs are SCANned, plain
    /// names taken as they are) and `single` names, grouped per database
    /// without repeats. In cluster mode only db0 exists. A scan of one
    /// pattern that fails is logged and skipped; `KeyError::Budget` means
    /// the budget ran out, `KeyError::Redis` carries a fatal (connection)
    /// error. `what` names the check in logs.
    pub async fn resolve(
        &mut self,
        scanned: &[KeyPattern],
        single: &[KeyPattern],
        what: &str,
    ) -> Result<KeysPerDb, KeyError> {
        let mut per_db: KeysPerDb = Vec::new();
        let mut seen: HashSet<(i64, Vec<u8>)> = HashSet::new();
        let entries = scanned
            .iter()
            .map(|p| (p, true))
            .chain(single.iter().map(|p| (p, false)));
        for (p, may_scan) in entries {
            if self.cluster && p.db != 0 {
                continue;
            }
            let mut found: Vec<Vec<u8>> = Vec::new();
            if may_scan && is_glob(&p.pattern) {
                match self.scan(p.db, &p.pattern, |keys| found.extend(keys)).await {
                    Ok(()) => {}
                    Err(KeyError::Redis(e)) if !is_fatal(&e) => {
                        tracing::warn!(db = p.db, pattern = %p.pattern, err = %e, "{what} scan failed");
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                found.push(p.pattern.as_bytes().to_vec());
            }
            let slot = match per_db.iter().position(|(d, _)| *d == p.db) {
                Some(i) => i,
                None => {
                    per_db.push((p.db, Vec::new()));
                    per_db.len() - 1
                }
            };
            for k in found {
                if seen.insert((p.db, k.clone())) {
                    per_db[slot].1.push(k);
                }
            }
        }
        Ok(per_db)
    }
}

/// True for errors after which the connection must not be reused.
pub fn is_fatal(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists() {
        let l = parse_key_list("a*, db3=user:*,5=x,").unwrap();
        assert_eq!(
            l,
            vec![
                KeyPattern {
                    db: 0,
                    pattern: "a*".into()
                },
                KeyPattern {
                    db: 3,
                    pattern: "user:*".into()
                },
                KeyPattern {
                    db: 5,
                    pattern: "x".into()
                },
            ]
        );
        assert!(parse_key_list("dbx=a").is_err());
        assert!(parse_key_list("db1=").is_err());
        assert!(is_glob("a*") && is_glob("a?") && is_glob("a[bc]") && !is_glob("plain"));
    }
}
