//! The collector model: named collectors that write metric families for one
//! scrape, run concurrently under the scrape deadline, each reported as
//! `<ns>_scrape_collector_success{collector}` and
//! `<ns>_scrape_collector_duration_seconds{collector}`.
//!
//! ```
//! use oxmon_core::collector::{sync_collector, CollectResult, Registry, ScrapeContext, SyncCollector};
//! use oxmon_core::{gauge, MetricFamily};
//!
//! struct Answer;
//! impl SyncCollector for Answer {
//!     fn name(&self) -> &'static str { "answer" }
//!     fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
//!         out.push(gauge("demo_answer", "The answer.", 42.0));
//!         Ok(())
//!     }
//! }
//!
//! let mut registry = Registry::new("demo");
//! registry.register(sync_collector(Answer));
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! let families = rt.block_on(registry.gather(&ScrapeContext::with_timeout(std::time::Duration::from_secs(1)), None)).unwrap();
//! let names: Vec<_> = families.iter().map(|f| f.name.as_ref()).collect();
//! assert_eq!(names, ["demo_answer", "demo_scrape_collector_duration_seconds", "demo_scrape_collector_success"]);
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use crate::logging::{FailureLog, FailureSubject};
use crate::metrics::{normalize_remembering, MetricFamily, NameOrder};

/// A boxed, sendable future, as collectors return it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any error a collector reports; it is logged and turns
/// `scrape_collector_success` to 0, never fails the scrape.
pub type CollectError = Box<dyn std::error::Error + Send + Sync>;

/// What a collect step returns. Families written to `out` before an error
/// are still exposed.
pub type CollectResult = Result<(), CollectError>;

/// Facts about the scrape in progress.
///
/// Collectors that share work within one scrape (one netlink dump for
/// several collectors, one query for several metrics) key it by [`id`]:
/// two scrapes may well have the same deadline.
///
/// [`id`]: ScrapeContext::id
#[derive(Debug, Clone)]
pub struct ScrapeContext {
    /// When the scrape must be answered; collectors still running then are
    /// cut off and reported as failed.
    pub deadline: Instant,
    /// Unique within the process for each context built with
    /// [`ScrapeContext::new`] or [`ScrapeContext::with_timeout`] (clones
    /// share it).
    pub id: u64,
}

/// The longest scrape deadline anything can ask for: Prometheus' timeout
/// header, `--scrape.timeout`. Longer requests are cut to this, so no value
/// from a request can overflow a deadline (`1e19` seconds once panicked the
/// request task).
pub const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The id of the next scrape; starts at 1 so 0 can mean "none yet".
static NEXT_SCRAPE_ID: AtomicU64 = AtomicU64::new(1);

impl ScrapeContext {
    /// A context for a new scrape that must be answered by `deadline`.
    pub fn new(deadline: Instant) -> Self {
        ScrapeContext {
            deadline,
            id: NEXT_SCRAPE_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A context for a new scrape whose deadline is `timeout` from now, at
    /// most [`MAX_SCRAPE_TIMEOUT`].
    pub fn with_timeout(timeout: Duration) -> Self {
        Self::new(Instant::now() + timeout.min(MAX_SCRAPE_TIMEOUT))
    }

    /// Time left until the deadline (zero when past it).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A source of metrics, collected once per scrape.
///
/// Implement this for collectors that wait on I/O (a database, a socket);
/// for collectors that only read small local files, implement
/// [`SyncCollector`] and wrap it with [`sync_collector`].
pub trait Collector: Send + Sync {
    /// Short name used in `collect[]`/`exclude[]` and in the
    /// `collector` label.
    fn name(&self) -> &str;

    /// Writes this collector's families for one scrape into `out`.
    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult>;
}

/// A collector whose work is quick and synchronous (reading `/proc` files):
/// it runs inline on the scrape task without a thread hop.
pub trait SyncCollector: Send + Sync {
    /// Short name (see [`Collector::name`]).
    fn name(&self) -> &'static str;
    /// Writes this collector's families for one scrape into `out`.
    fn collect(&self, ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult;
}

struct SyncAdapter<T>(T);

impl<T: SyncCollector> Collector for SyncAdapter<T> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        // Run inside the future so a panic is caught by the registry.
        Box::pin(async move { self.0.collect(ctx, out) })
    }
}

/// Wraps a [`SyncCollector`] as a [`Collector`].
pub fn sync_collector<T: SyncCollector + 'static>(collector: T) -> Arc<dyn Collector> {
    Arc::new(SyncAdapter(collector))
}

/// Which collectors a request asked for (`collect[]` / `exclude[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only these (empty: all registered).
    pub include: Vec<String>,
    /// Never these.
    pub exclude: Vec<String>,
}

impl Selection {
    /// Reads `collect[]` and `exclude[]` from query pairs.
    pub fn from_query(pairs: &[(String, String)]) -> Self {
        let mut s = Selection::default();
        for (k, v) in pairs {
            match k.as_str() {
                "collect[]" => s.include.push(v.clone()),
                "exclude[]" => s.exclude.push(v.clone()),
                _ => {}
            }
        }
        s
    }
}

/// Why [`Registry::gather`] refused a request (answered with HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatherError {
    /// `collect[]` named a collector that is not registered.
    #[error("unknown collector {0:?}")]
    UnknownCollector(String),
}

/// Re-reads something an exporter loaded from a file (custom queries, a
/// mapping file) on SIGHUP; an error keeps what was loaded and is logged.
pub type ReloadHook = Arc<dyn Fn() -> Result<(), CollectError> + Send + Sync>;

/// The collectors of one exporter, and what it reloads on SIGHUP.
pub struct Registry {
    namespace: String,
    collectors: Vec<Arc<dyn Collector>>,
    reload_hooks: Vec<(String, ReloadHook)>,
    /// A failing collector is logged at error level when the failure starts
    /// or changes, then at debug level, so a target that is down does not
    /// flood the log every scrape.
    failures: FailureLog,
    /// The family order of the last full scrape, to skip its sort.
    order: NameOrder,
}

impl Registry {
    /// An empty registry; `namespace` prefixes the scrape_collector metrics.
    pub fn new(namespace: impl Into<String>) -> Self {
        Registry {
            namespace: namespace.into(),
            collectors: Vec::new(),
            reload_hooks: Vec::new(),
            failures: FailureLog::new(FailureSubject::Collector),
            order: NameOrder::default(),
        }
    }

    /// Runs `hook` on every SIGHUP (on a blocking thread, after the web
    /// config is re-read), logging its outcome under `name`. A hook should
    /// re-read its file and install the result only when it is valid, so a
    /// broken file keeps what runs. Only the registry handed to
    /// [`crate::run`] is asked.
    pub fn on_reload(
        &mut self,
        name: impl Into<String>,
        hook: impl Fn() -> Result<(), CollectError> + Send + Sync + 'static,
    ) {
        self.reload_hooks.push((name.into(), Arc::new(hook)));
    }

    /// The hooks registered with [`Registry::on_reload`], in order.
    pub fn reload_hooks(&self) -> &[(String, ReloadHook)] {
        &self.reload_hooks
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Adds a collector.
    pub fn register(&mut self, collector: Arc<dyn Collector>) {
        self.collectors.push(collector);
    }

    /// Names of the registered collectors, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Runs the selected collectors concurrently, each cut off at the
    /// deadline, and returns their families plus the scrape_collector
    /// families, normalized (sorted, merged, deduplicated).
    ///
    /// An unknown name in `selection.include` is an error (HTTP 400), as in
    /// node_exporter.
    pub async fn gather(
        &self,
        ctx: &ScrapeContext,
        selection: Option<&Selection>,
    ) -> Result<Vec<MetricFamily>, GatherError> {
        let chosen: Vec<&Arc<dyn Collector>> = match selection {
            None => self.collectors.iter().collect(),
            Some(sel) => {
                for want in &sel.include {
                    if !self.collectors.iter().any(|c| c.name() == want) {
                        return Err(GatherError::UnknownCollector(want.clone()));
                    }
                }
                self.collectors
                    .iter()
                    .filter(|c| sel.include.is_empty() || sel.include.iter().any(|n| n == c.name()))
                    .filter(|c| !sel.exclude.iter().any(|n| n == c.name()))
                    .collect()
            }
        };

        let runs = chosen.into_iter().map(|c| run_one(c.as_ref(), ctx));
        let results = futures_util::future::join_all(runs).await;

        let ns = &self.namespace;
        let mut duration = MetricFamily::gauge(
            format!("{ns}_scrape_collector_duration_seconds"),
            format!("{ns}_exporter: Duration of a collector scrape."),
        );
        let mut success = MetricFamily::gauge(
            format!("{ns}_scrape_collector_success"),
            format!("{ns}_exporter: Whether a collector succeeded."),
        );
        let mut all = Vec::new();
        for run in results {
            self.failures
                .record(run.name, run.error.as_deref().map_or(Ok(()), Err));
            duration.add(&[("collector", run.name)], run.seconds);
            success.add(
                &[("collector", run.name)],
                if run.error.is_none() { 1.0 } else { 0.0 },
            );
            all.extend(run.families);
        }
        all.push(duration);
        all.push(success);
        // A scrape of every collector comes in the same order each time; a
        // selection (`collect[]`) would only unsettle the remembered one.
        let order = selection.is_none().then_some(&self.order);
        let dropped = normalize_remembering(&mut all, order);
        if dropped > 0 {
            tracing::debug!(dropped, "dropped duplicate or conflicting series");
        }
        Ok(all)
    }
}

struct Run<'a> {
    name: &'a str,
    error: Option<String>,
    seconds: f64,
    families: Vec<MetricFamily>,
}

async fn run_one<'a>(c: &'a dyn Collector, ctx: &'a ScrapeContext) -> Run<'a> {
    let start = std::time::Instant::now();
    let mut families = Vec::new();
    let outcome = {
        let fut = AssertUnwindSafe(c.collect(ctx, &mut families)).catch_unwind();
        tokio::time::timeout_at(ctx.deadline, fut).await
    };
    let error = match outcome {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e.to_string()),
        Ok(Err(_panic)) => Some("panicked".to_string()),
        Err(_elapsed) => Some("timed out at the scrape deadline".to_string()),
    };
    Run {
        name: c.name(),
        error,
        seconds: start.elapsed().as_secs_f64(),
        families,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{gauge, Value};

    struct Fixed(&'static str, f64);
    impl SyncCollector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
            out.push(gauge(format!("t_{}", self.0), "x", self.1));
            Ok(())
        }
    }

    struct Slow;
    impl Collector for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn collect<'a>(
            &'a self,
            _: &'a ScrapeContext,
            out: &'a mut Vec<MetricFamily>,
        ) -> BoxFuture<'a, CollectResult> {
            Box::pin(async move {
                out.push(gauge("t_slow_partial", "x", 1.0));
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
        }
    }

    struct Failing;
    impl SyncCollector for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn collect(&self, _: &ScrapeContext, _: &mut Vec<MetricFamily>) -> CollectResult {
            Err("no such file".into())
        }
    }

    struct Panicking;
    impl SyncCollector for Panicking {
        fn name(&self) -> &'static str {
            "panicking"
        }
        fn collect(&self, _: &ScrapeContext, _: &mut Vec<MetricFamily>) -> CollectResult {
            panic!("bug")
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new("t");
        r.register(sync_collector(Fixed("a", 1.0)));
        r.register(sync_collector(Fixed("b", 2.0)));
        r.register(Arc::new(Slow));
        r.register(sync_collector(Failing));
        r.register(sync_collector(Panicking));
        r
    }

    fn success_of(fams: &[MetricFamily], collector: &str) -> Option<f64> {
        let f = fams
            .iter()
            .find(|f| f.name == "t_scrape_collector_success")?;
        f.metrics.iter().find_map(|m| match m.value {
            Value::Single(v) if m.labels[0].1 == collector => Some(v),
            _ => None,
        })
    }

    #[tokio::test]
    async fn failures_and_timeouts_are_reported_not_fatal() {
        let ctx = ScrapeContext::with_timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let fams = registry().gather(&ctx, None).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(success_of(&fams, "a"), Some(1.0));
        assert_eq!(success_of(&fams, "slow"), Some(0.0));
        assert_eq!(success_of(&fams, "failing"), Some(0.0));
        assert_eq!(success_of(&fams, "panicking"), Some(0.0));
        assert!(fams.iter().any(|f| f.name == "t_slow_partial"));
        assert!(fams.iter().any(|f| f.name == "t_b"));
    }

    #[tokio::test]
    async fn failing_collectors_are_remembered_until_they_recover() {
        let r = registry();
        let ctx = ScrapeContext::with_timeout(Duration::from_millis(100));
        r.gather(&ctx, None).await.unwrap();
        // slow, failing, panicking.
        assert_eq!(r.failures.failing(), 3);
        assert_eq!(
            r.failures.last_error("failing").as_deref(),
            Some("no such file")
        );
        let sel = Selection::from_query(&[("collect[]".into(), "a".into())]);
        r.gather(&ctx, Some(&sel)).await.unwrap();
        assert_eq!(r.failures.failing(), 3);
    }

    /// Panics in its first scrape while holding its state's lock; the lock
    /// is poisoned from then on.
    struct PanicsOnce {
        scrapes: std::sync::Mutex<u32>,
    }
    impl SyncCollector for PanicsOnce {
        fn name(&self) -> &'static str {
            "panics_once"
        }
        fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
            use crate::sync::LockExt;
            let mut scrapes = self.scrapes.lock_unpoisoned();
            *scrapes += 1;
            if *scrapes == 1 {
                panic!("bug in the first scrape");
            }
            out.push(gauge("t_scrapes", "x", f64::from(*scrapes)));
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_panic_holding_a_lock_does_not_break_later_scrapes() {
        let mut r = Registry::new("t");
        r.register(sync_collector(PanicsOnce {
            scrapes: std::sync::Mutex::new(0),
        }));
        let ctx = || ScrapeContext::with_timeout(Duration::from_secs(1));
        let first = r.gather(&ctx(), None).await.unwrap();
        assert_eq!(success_of(&first, "panics_once"), Some(0.0));
        let second = r.gather(&ctx(), None).await.unwrap();
        assert_eq!(success_of(&second, "panics_once"), Some(1.0));
        assert!(second.iter().any(|f| f.name == "t_scrapes"));
        assert_eq!(r.failures.failing(), 0);
    }

    #[test]
    fn every_context_has_its_own_id() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let a = ScrapeContext::new(deadline);
        let b = ScrapeContext::new(deadline);
        assert_ne!(a.id, b.id);
        assert_eq!(a.clone().id, a.id);
        assert_ne!(ScrapeContext::with_timeout(Duration::ZERO).id, b.id);
    }

    #[tokio::test]
    async fn selection_filters_and_rejects_unknown() {
        let r = registry();
        let ctx = ScrapeContext::with_timeout(Duration::from_secs(1));
        let sel = Selection::from_query(&[("collect[]".into(), "a".into())]);
        let fams = r.gather(&ctx, Some(&sel)).await.unwrap();
        assert!(fams.iter().any(|f| f.name == "t_a"));
        assert!(!fams.iter().any(|f| f.name == "t_b"));
        assert_eq!(success_of(&fams, "slow"), None);

        let sel = Selection::from_query(&[
            ("exclude[]".into(), "slow".into()),
            ("exclude[]".into(), "a".into()),
        ]);
        let fams = r.gather(&ctx, Some(&sel)).await.unwrap();
        assert!(!fams.iter().any(|f| f.name == "t_a"));
        assert!(fams.iter().any(|f| f.name == "t_b"));

        let sel = Selection::from_query(&[("collect[]".into(), "nope".into())]);
        assert_eq!(
            r.gather(&ctx, Some(&sel)).await.unwrap_err(),
            GatherError::UnknownCollector("nope".into())
        );
    }
}
