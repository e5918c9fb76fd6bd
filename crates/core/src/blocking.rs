//! Running reads that can block (a hung driver, a dead NFS mount, a GPU
//! that stopped answering) off the runtime thread, waited for only until
//! the scrape deadline, without piling up threads behind a stuck call.
//!
//! Two levels:
//! - [`Lane`]: single-flight execution of blocking closures on tokio's
//!   blocking pool. While a lane's job runs, the next [`Lane::run`]
//!   answers [`LaneError::Busy`] at once instead of starting another
//!   thread, so a call that never returns holds one thread, never more.
//!   [`LaneError::TimedOut`] says the deadline passed; the job goes on and
//!   keeps the lane busy until it really returns.
//! - [`BlockingCollector`] + [`blocking_collector`]: a collector whose
//!   collect step runs on its own lane, with an optional cheap check on the
//!   runtime thread first (a directory listing that may find nothing to
//!   read, so no thread hop is made). A stuck collector is reported as
//!   failed with the lane's message; families are kept only from a job
//!   that finished.
//!
//! Threads come from tokio's blocking pool, so idle ones are shared with
//! every other blocking task and go away when unused. Lanes that share a
//! [`LaneLimit`] run at most that many jobs at once (a job waits for a
//! free slot until the deadline): each thread that runs a read costs a
//! malloc arena and stack pages, so an exporter with many lanes (one per
//! GPU) can bound its threads and still keep one stuck device from holding
//! back the others.
//!
//! ```
//! use std::time::Duration;
//! use oxmon_core::blocking::{Lane, LaneError};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let lane = Lane::new("gpu0");
//! let soon = || tokio::time::Instant::now() + Duration::from_millis(100);
//! assert_eq!(lane.run(soon(), || 40 + 2).await, Ok(42));
//!
//! let (release, stuck) = std::sync::mpsc::channel::<()>();
//! let r = lane.run(soon(), move || stuck.recv()).await;
//! assert!(matches!(r, Err(LaneError::TimedOut { .. })));
//! // Still running: no second thread is started.
//! assert!(matches!(lane.run(soon(), || ()).await, Err(LaneError::Busy { .. })));
//! release.send(()).unwrap();
//! # });
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::time::Instant;

use crate::collector::{BoxFuture, CollectError, CollectResult, Collector, ScrapeContext};
use crate::metrics::MetricFamily;

/// Why a lane did not deliver a job's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// The lane's previous job has not returned; no new job was started.
    #[error("{lane}: the previous call has not returned yet (stuck in a blocking call); not starting another")]
    Busy {
        /// The lane's name.
        lane: String,
    },
    /// The deadline passed first; the job goes on in the background and
    /// keeps the lane busy until it returns.
    #[error("{lane}: no answer before the scrape deadline")]
    TimedOut {
        /// The lane's name.
        lane: String,
    },
    /// The job panicked.
    #[error("{lane}: the blocking call panicked")]
    Panicked {
        /// The lane's name.
        lane: String,
    },
    /// The job was dropped before it ran (the runtime is shutting down).
    #[error("{lane}: the blocking call was cancelled")]
    Cancelled {
        /// The lane's name.
        lane: String,
    },
}

/// A single-flight path to the blocking pool (see the module docs).
#[derive(Debug)]
pub struct Lane {
    name: String,
    busy: Arc<AtomicBool>,
    limit: Option<LaneLimit>,
}

/// At most this many jobs of the lanes that share it run at once.
///
/// ```
/// use oxmon_core::blocking::{Lane, LaneLimit};
///
/// let two_at_a_time = LaneLimit::new(2);
/// let lanes: Vec<Lane> = (0..8)
///     .map(|i| Lane::new(format!("GPU {i}")).limited_by(&two_at_a_time))
///     .collect();
/// # assert_eq!(lanes[7].name(), "GPU 7");
/// ```
#[derive(Debug, Clone)]
pub struct LaneLimit(Arc<tokio::sync::Semaphore>);

impl LaneLimit {
    /// Allows `running` jobs at once (at least 1).
    pub fn new(running: usize) -> Self {
        LaneLimit(Arc::new(tokio::sync::Semaphore::new(running.max(1))))
    }
}

/// Marks the lane free when the job is done with it: when the job
/// returns, panics, or is dropped unrun.
struct Release(Arc<AtomicBool>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Lane {
    /// A free lane; `name` appears in its errors.
    pub fn new(name: impl Into<String>) -> Self {
        Lane {
            name: name.into(),
            busy: Arc::new(AtomicBool::new(false)),
            limit: None,
        }
    }

    /// Makes the lane's jobs count against `limit`.
    pub fn limited_by(mut self, limit: &LaneLimit) -> Self {
        self.limit = Some(limit.clone());
        self
    }

    /// The lane's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a job is running (possibly stuck past its deadline).
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Runs `job` on a blocking thread and waits for it until `deadline`.
    /// With a [`LaneLimit`], first waits (also until `deadline`) for a free
    /// slot; a job that never got one never runs. Must be called within a
    /// tokio runtime.
    pub async fn run<T, F>(&self, deadline: Instant, job: F) -> Result<T, LaneError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(LaneError::Busy {
                lane: self.name.clone(),
            });
        }
        let release = Release(Arc::clone(&self.busy));
        let slot = match &self.limit {
            None => None,
            Some(LaneLimit(slots)) => {
                match tokio::time::timeout_at(deadline, Arc::clone(slots).acquire_owned()).await {
                    Ok(Ok(slot)) => Some(slot),
                    // The semaphore is never closed.
                    Ok(Err(_)) => {
                        return Err(LaneError::Cancelled {
                            lane: self.name.clone(),
                        })
                    }
                    Err(_) => {
                        return Err(LaneError::TimedOut {
                            lane: self.name.clone(),
                        })
                    }
                }
            }
        };
        let task = tokio::task::spawn_blocking(move || {
            let _release = release;
            let _slot = slot;
            job()
        });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_panic() => Err(LaneError::Panicked {
                lane: self.name.clone(),
            }),
            Ok(Err(_)) => Err(LaneError::Cancelled {
                lane: self.name.clone(),
            }),
            Err(_) => Err(LaneError::TimedOut {
                lane: self.name.clone(),
            }),
        }
    }
}

/// A collector whose reads can block; wrap it with [`blocking_collector`].
///
/// ```
/// use oxmon_core::blocking::{blocking_collector, BlockingCollector};
/// use oxmon_core::collector::{CollectError, CollectResult, ScrapeContext};
/// use oxmon_core::{gauge, MetricFamily};
///
/// /// Temperatures of thermal zones, which ACPI firmware can take seconds to answer.
/// struct Thermal;
/// impl BlockingCollector for Thermal {
///     type Found = Vec<std::path::PathBuf>;
///     fn name(&self) -> &'static str { "thermal_zone" }
///     fn check(&self, _: &ScrapeContext) -> Result<Option<Self::Found>, CollectError> {
///         // Listing the directory is quick; reading the zones is not.
///         let zones: Vec<_> = match std::fs::read_dir("/sys/class/thermal") {
///             Ok(dir) => dir.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
///             Err(_) => return Ok(None),
///         };
///         Ok((!zones.is_empty()).then_some(zones))
///     }
///     fn collect(&self, _: &ScrapeContext, zones: Self::Found, out: &mut Vec<MetricFamily>) -> CollectResult {
///         out.push(gauge("demo_thermal_zones", "Zones found.", zones.len() as f64));
///         Ok(())
///     }
/// }
///
/// let collector = blocking_collector(Thermal);
/// assert_eq!(collector.name(), "thermal_zone");
/// ```
pub trait BlockingCollector: Send + Sync + 'static {
    /// What [`check`](BlockingCollector::check) hands to the blocking step;
    /// `()` for a collector without a check.
    type Found: Send + 'static;

    /// Short name (see [`Collector::name`]); also the lane's name.
    fn name(&self) -> &'static str;

    /// A cheap check on the runtime thread. `Ok(None)` means there is
    /// nothing to read: the collector succeeds with no families and no
    /// thread is used. Collectors without a check return `Ok(Some(()))`.
    fn check(&self, ctx: &ScrapeContext) -> Result<Option<Self::Found>, CollectError>;

    /// The blocking collect step; runs on a blocking thread.
    fn collect(
        &self,
        ctx: &ScrapeContext,
        found: Self::Found,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult;
}

struct OffThread<T> {
    inner: Arc<T>,
    lane: Lane,
}

/// Wraps a [`BlockingCollector`] as a [`Collector`] with its own [`Lane`].
pub fn blocking_collector<T: BlockingCollector>(collector: T) -> Arc<dyn Collector> {
    let lane = Lane::new(collector.name());
    Arc::new(OffThread {
        inner: Arc::new(collector),
        lane,
    })
}

impl<T: BlockingCollector> Collector for OffThread<T> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let Some(found) = self.inner.check(ctx)? else {
                return Ok(());
            };
            let inner = Arc::clone(&self.inner);
            let job_ctx = ctx.clone();
            let job = move || {
                let mut families = Vec::new();
                // Errors become strings: a boxed error need not be Send
                // across the join, and its message is all the registry uses.
                let result = inner
                    .collect(&job_ctx, found, &mut families)
                    .map_err(|e| e.to_string());
                (families, result)
            };
            let (families, result) = self.lane.run(ctx.deadline, job).await?;
            out.extend(families);
            result.map_err(CollectError::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::collector::Registry;
    use crate::metrics::{gauge, Value};
    use crate::sync::LockExt;

    fn after(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_stuck_job_times_out_then_busies_the_lane_until_it_returns() {
        let lane = Lane::new("sensor");
        let started = Arc::new(AtomicUsize::new(0));
        let (release, blocked) = mpsc::channel::<()>();

        let count = Arc::clone(&started);
        let t0 = std::time::Instant::now();
        let r = lane
            .run(after(100), move || {
                count.fetch_add(1, Ordering::SeqCst);
                blocked.recv().unwrap();
                "late"
            })
            .await;
        assert_eq!(
            r,
            Err(LaneError::TimedOut {
                lane: "sensor".into()
            })
        );
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert!(lane.is_busy());

        // The next call answers at once and never starts its job.
        let count = Arc::clone(&started);
        let t1 = std::time::Instant::now();
        let r = lane
            .run(after(5_000), move || {
                count.fetch_add(1, Ordering::SeqCst);
            })
            .await;
        assert_eq!(
            r,
            Err(LaneError::Busy {
                lane: "sensor".into()
            })
        );
        assert!(t1.elapsed() < Duration::from_millis(500));
        assert_eq!(started.load(Ordering::SeqCst), 1);

        release.send(()).unwrap();
        for _ in 0..200 {
            if !lane.is_busy() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!lane.is_busy());
        assert_eq!(lane.run(after(5_000), || 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_panicking_job_frees_the_lane() {
        let lane = Lane::new("buggy");
        let r = lane.run(after(5_000), || -> u8 { panic!("bug") }).await;
        assert_eq!(
            r,
            Err(LaneError::Panicked {
                lane: "buggy".into()
            })
        );
        assert!(!lane.is_busy());
        assert_eq!(lane.run(after(5_000), || 1).await, Ok(1));
    }

    #[tokio::test]
    async fn a_limit_bounds_running_jobs_and_a_stuck_one_keeps_its_slot() {
        let limit = LaneLimit::new(1);
        let stuck = Lane::new("stuck").limited_by(&limit);
        let other = Lane::new("other").limited_by(&limit);
        let (release, blocked) = mpsc::channel::<()>();
        let r = stuck.run(after(50), move || blocked.recv().unwrap()).await;
        assert!(matches!(r, Err(LaneError::TimedOut { .. })));
        // No free slot: the other lane's job never starts, and its lane is
        // not left busy.
        let ran = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&ran);
        let r = other
            .run(after(50), move || count.fetch_add(1, Ordering::SeqCst))
            .await;
        assert!(matches!(r, Err(LaneError::TimedOut { .. })));
        assert!(!other.is_busy());
        release.send(()).unwrap();
        let count = Arc::clone(&ran);
        let r = other
            .run(after(5_000), move || count.fetch_add(1, Ordering::SeqCst))
            .await;
        assert_eq!(r, Ok(0));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    /// Reads "sensors" that block until the test lets them go.
    struct Sensors {
        present: bool,
        reads: AtomicUsize,
        gate: Mutex<Option<mpsc::Receiver<()>>>,
    }

    impl BlockingCollector for Sensors {
        type Found = u32;
        fn name(&self) -> &'static str {
            "sensors"
        }
        fn check(&self, _: &ScrapeContext) -> Result<Option<u32>, CollectError> {
            Ok(self.present.then_some(3))
        }
        fn collect(
            &self,
            _: &ScrapeContext,
            count: u32,
            out: &mut Vec<MetricFamily>,
        ) -> CollectResult {
            self.reads.fetch_add(1, Ordering::SeqCst);
            out.push(gauge("t_sensors", "x", f64::from(count)));
            if let Some(gate) = self.gate.lock_unpoisoned().take() {
                gate.recv()?;
            }
            Ok(())
        }
    }

    fn success(fams: &[MetricFamily]) -> f64 {
        let f = fams
            .iter()
            .find(|f| f.name == "t_scrape_collector_success")
            .unwrap();
        match f.metrics[0].value {
            Value::Single(v) => v,
            _ => unreachable!(),
        }
    }

    #[tokio::test]
    async fn a_stuck_collector_fails_its_scrapes_until_it_returns() {
        let (release, gate) = mpsc::channel::<()>();
        let sensors = Arc::new(Sensors {
            present: true,
            reads: AtomicUsize::new(0),
            gate: Mutex::new(Some(gate)),
        });
        let mut r = Registry::new("t");
        let lane = Lane::new("sensors");
        r.register(Arc::new(OffThread {
            inner: Arc::clone(&sensors),
            lane,
        }));
        let ctx = || ScrapeContext::with_timeout(Duration::from_millis(150));

        // The first read hangs: failed, and its family is not exposed.
        let fams = r.gather(&ctx(), None).await.unwrap();
        assert_eq!(success(&fams), 0.0);
        assert!(!fams.iter().any(|f| f.name == "t_sensors"));
        // The second scrape fails at once without a second read.
        let t0 = std::time::Instant::now();
        let fams = r.gather(&ctx(), None).await.unwrap();
        assert_eq!(success(&fams), 0.0);
        assert!(t0.elapsed() < Duration::from_millis(100));
        assert_eq!(sensors.reads.load(Ordering::SeqCst), 1);

        release.send(()).unwrap();
        let mut fams = Vec::new();
        for _ in 0..100 {
            fams = r.gather(&ctx(), None).await.unwrap();
            if success(&fams) == 1.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(success(&fams), 1.0);
        assert!(fams.iter().any(|f| f.name == "t_sensors"));
    }

    #[tokio::test]
    async fn nothing_found_means_success_without_a_read() {
        let sensors = Arc::new(Sensors {
            present: false,
            reads: AtomicUsize::new(0),
            gate: Mutex::new(None),
        });
        let c = OffThread {
            inner: Arc::clone(&sensors),
            lane: Lane::new("sensors"),
        };
        let mut out = Vec::new();
        let ctx = ScrapeContext::with_timeout(Duration::from_secs(1));
        Collector::collect(&c, &ctx, &mut out).await.unwrap();
        assert!(out.is_empty());
        assert_eq!(sensors.reads.load(Ordering::SeqCst), 0);
    }
}
