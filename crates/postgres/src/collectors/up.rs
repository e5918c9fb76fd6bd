//! The always-on `up` collector: whether the server answers
//! (`pg_up`, 1 or 0, the scrape itself still succeeds), its version
//! (`pg_static{short_version,version}`), and postgres_exporter's scrape
//! bookkeeping: `pg_exporter_scrapes_total`, `pg_exporter_last_scrape_error`
//! (1 when the connection failed now or a collector failed in the previous
//! scrape), `pg_exporter_last_scrape_duration_seconds` (previous scrape).
//!
//! `pg_up` carries no label when the exporter watches one server (also on
//! `/probe`), like postgres_exporter; with several DSNs it has `server`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::sync::LockExt;
use oxmon_core::{MetricFamily, ScrapeContext};
use tokio::time::Instant;

use super::{instance, Monitored, TargetCollector};
use crate::queries::UserQueries;
use crate::reloadable::Reloadable;

/// The collector's options.
#[derive(Debug, Clone)]
pub struct Up {
    /// Whether `pg_up` and the exporter metrics carry a `server` label
    /// (several DSNs).
    pub server_label: bool,
    /// The custom queries file, reported by
    /// `pg_exporter_user_queries_load_error` (1 after a reload that failed:
    /// the queries in use are older than the file).
    pub queries_file: Option<Arc<Reloadable<UserQueries>>>,
}

/// What one target's scrapes did, for the `pg_exporter_*` families: every
/// other collector records its outcome here.
#[derive(Default)]
pub struct ScrapeLog {
    failures: AtomicU64,
    scrapes: AtomicU64,
    /// `(start, end)` of the last scrape: `up` starts it, the other
    /// collectors move its end as they finish.
    times: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl ScrapeLog {
    /// Records a collector's outcome.
    pub fn record(&self, ok: bool) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.times.lock_unpoisoned().1 = Some(Instant::now());
    }

    /// Starts a scrape: `(scrapes so far, failures of the previous one,
    /// its duration)`.
    fn start(&self) -> (u64, u64, Option<f64>) {
        let scrapes = self.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = self.failures.swap(0, Ordering::Relaxed);
        let mut times = self.times.lock_unpoisoned();
        let previous = match *times {
            (Some(start), Some(end)) if end > start => Some((end - start).as_secs_f64()),
            _ => None,
        };
        *times = (Some(Instant::now()), None);
        (scrapes, failures, previous)
    }
}

impl TargetCollector for Up {
    type State = ();

    fn collect<'a>(
        &'a self,
        m: &'a Monitored,
        _: &'a (),
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let t = &m.target;
            let (scrapes, failures, previous) = m.log.start();
            // The shared instance query is the liveness check: it runs on the
            // connection every other collector uses.
            let result = async {
                let live = t.main(ctx).await?;
                instance::row(m, ctx).await?;
                Ok::<_, crate::conn::Error>(live)
            }
            .await;
            let server = t.server.as_str();
            let labels: &[(&'static str, &str)] = if self.server_label {
                &[("server", server)]
            } else {
                &[]
            };
            let mut up = MetricFamily::gauge(
                "pg_up",
                "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).",
            );
            let mut error = MetricFamily::gauge(
                "pg_exporter_last_scrape_error",
                "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).",
            );
            let mut total = MetricFamily::counter(
                "pg_exporter_scrapes_total",
                "Total number of times PostgreSQL was scraped for metrics.",
            );
            total.add(labels, scrapes as f64);
            let mut duration = MetricFamily::gauge(
                "pg_exporter_last_scrape_duration_seconds",
                "Duration of the last scrape of metrics from PostgreSQL.",
            );
            duration.add(labels, previous.unwrap_or(0.0));
            match &result {
                Ok(live) => {
                    up.add(labels, 1.0);
                    error.add(labels, if failures > 0 { 1.0 } else { 0.0 });
                    let mut stat = MetricFamily::untyped(
                        "pg_static",
                        "Version string as reported by postgres",
                    );
                    stat.add(
                        &[
                            ("server", server),
                            ("short_version", &short_version(live.version_num)),
                            ("version", &live.version),
                        ],
                        1.0,
                    );
                    out.push(stat);
                }
                Err(_) => {
                    up.add(labels, 0.0);
                    error.add(labels, 1.0);
                }
            }
            out.extend([up, error, total, duration]);
            if let Some(file) = &self.queries_file {
                let mut load = MetricFamily::gauge(
                    "pg_exporter_user_queries_load_error",
                    "Whether the user queries file was loaded and parsed successfully (1 for error, 0 for success).",
                );
                let q = file.current();
                let failing = if file.failing() { 1.0 } else { 0.0 };
                load.add(&[("filename", &q.path), ("hashsum", &q.hashsum)], failing);
                out.push(load);
            }
            // A down server is reported by pg_up, not as a failed collector.
            Ok(())
        })
    }

    fn counts_in_scrape_error(&self) -> bool {
        false
    }
}

/// `150004` → `15.4.0`, `90624` → `9.6.24`, as postgres_exporter shows it.
pub fn short_version(num: u32) -> String {
    if num >= 100000 {
        format!("{}.{}.0", num / 10000, num % 10000)
    } else {
        format!("{}.{}.{}", num / 10000, (num / 100) % 100, num % 100)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use oxmon_core::metrics::Value;

    use super::super::{registry, stat_statements, Config};
    use super::*;
    use crate::conn::SessionSettings;
    use crate::dsn::Dsn;
    use crate::target::{Options, Target};

    fn value(families: &[MetricFamily], name: &str, label: Option<(&str, &str)>) -> Option<f64> {
        let family = families.iter().find(|f| f.name == name)?;
        let metric = family
            .metrics
            .iter()
            .find(|m| label.is_none_or(|(k, v)| m.labels.iter().any(|(n, x)| n == k && x == v)))?;
        match metric.value {
            Value::Single(v) => Some(v),
            _ => None,
        }
    }

    /// A panic while `up` held its lock must not break the scrapes after it.
    #[tokio::test]
    async fn the_scrape_after_a_panic_while_locked_still_reports_pg_up() {
        // Nothing listens on port 1: the scrape reports pg_up 0 without a server.
        let dsn = Dsn::parse("host=127.0.0.1 port=1 user=u dbname=d sslmode=disable").unwrap();
        let opts = Arc::new(Options {
            session: SessionSettings {
                statement_timeout: Duration::from_secs(1),
                lock_timeout: Duration::from_secs(1),
            },
            include_databases: vec![],
            exclude_databases: vec![],
        });
        let m = Arc::new(Monitored::new(Target::new(dsn, None, opts).unwrap()));
        let config = Config {
            enabled: vec![],
            up: Up {
                server_label: false,
                queries_file: None,
            },
            settings: super::super::settings::Settings {
                max_age: Duration::from_secs(60),
            },
            stat_statements: stat_statements::StatStatements::new(1, 1, false),
            custom_queries: None,
        };
        let registry = registry(&config, std::slice::from_ref(&m));
        let log = &m.log;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = log.times.lock();
            panic!("a collector bug while holding the lock");
        }));
        assert!(m.log.times.is_poisoned());
        for scrape in 1..=2 {
            let ctx = ScrapeContext::with_timeout(Duration::from_secs(5));
            let families = registry.gather(&ctx, None).await.unwrap();
            let success = ("collector", "up");
            assert_eq!(
                value(&families, "pg_scrape_collector_success", Some(success)),
                Some(1.0)
            );
            assert_eq!(value(&families, "pg_up", None), Some(0.0));
            assert_eq!(
                value(&families, "pg_exporter_scrapes_total", None),
                Some(scrape as f64)
            );
        }
    }

    #[test]
    fn short_versions() {
        assert_eq!(super::short_version(150018), "15.18.0");
        assert_eq!(super::short_version(170002), "17.2.0");
        assert_eq!(super::short_version(90624), "9.6.24");
    }
}
