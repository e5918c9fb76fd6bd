//! Running reads that can block (a hung driver, a dead NFS mount, a GPU
//! that stopped answering) off the runtime thread, waited for only until
//! the scrape deadline, without piling up threads behind a stuck call.
//!
//! Two levels:
//! - [`Lane`]: single-flight execution of blocking closures on tokio's
//!   blocking pool. A lane runs one job at a time: a [`Lane::run`] that
//!   finds a job running waits for it (until its own deadline) and then
//!   runs its own, so overlapping scrapes (two Prometheus servers) both
//!   get an answer. A job that outlived a caller's deadline marks the lane
//!   stuck: until it returns, every [`Lane::run`] answers
//!   [`LaneError::Busy`] at once instead of waiting or starting another
//!   thread, so a call that never returns holds one thread, never more.
//!   [`LaneError::TimedOut`] says the deadline passed.
//! - [`BlockingCollector`] + [`blocking_collector`]: a collector whose
//!   collect step runs on its own lane, with an optional cheap check on the
//!   runtime thread first (a directory listing that may find nothing to
//!   read, so no thread hop is made). A stuck collector is reported as
//!   failed with the lane's message; families are kept only from a job
//!   that finished.
//!
//! Threads come from tokio's blocking pool, so idle ones are shared with
//! every other blocking task and go away when unused. Lanes that share a
//! [`LaneLimit`] start at most that many jobs at once (a job waits for a
//! free slot until the deadline): each thread that runs a read costs a
//! malloc arena and stack pages, so an exporter with many lanes (one per
//! GPU) can bound its threads. A slot belongs to the caller waiting for a
//! job, not to the job's thread: it is given back when the job returns,
//! when the caller stops waiting (its deadline), or when the job has held
//! it for the limit's hold time ([`LaneLimit::releasing_after`]). So jobs
//! stuck in the driver never hold slots, however many devices hang, and
//! the threads in use are at most the slots plus one per stuck lane.
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
    /// An earlier job outlived its caller's deadline and has not returned;
    /// no new job was started.
    #[error("{lane}: the previous call has not returned yet (stuck in a blocking call); not starting another")]
    Busy {
        /// The lane's name.
        lane: String,
    },
    /// The deadline passed first (waiting for the running job, for a slot
    /// of the [`LaneLimit`], or for this job); a job that started goes on in
    /// the background and keeps the lane stuck until it returns.
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
    /// One permit: held by the running job (moved into its thread).
    running: Arc<tokio::sync::Semaphore>,
    /// Set when a job outlived a caller's deadline; cleared when it returns.
    stuck: Arc<AtomicBool>,
    limit: Option<LaneLimit>,
}

/// At most this many jobs of the lanes that share it are started and
/// waited for at once; a job that outlives its caller's deadline (or the
/// hold time) runs on without a slot.
///
/// ```
/// use std::time::Duration;
/// use oxmon_core::blocking::{Lane, LaneLimit};
///
/// let two_at_a_time = LaneLimit::new(2).releasing_after(Duration::from_secs(1));
/// let lanes: Vec<Lane> = (0..8)
///     .map(|i| Lane::new(format!("GPU {i}")).limited_by(&two_at_a_time))
///     .collect();
/// # assert_eq!(lanes[7].name(), "GPU 7");
/// ```
#[derive(Debug, Clone)]
pub struct LaneLimit {
    slots: Arc<tokio::sync::Semaphore>,
    /// A job still running after this long gives its slot up.
    hold: Option<std::time::Duration>,
}

impl LaneLimit {
    /// Allows `running` jobs at once (at least 1), each holding its slot
    /// until it returns or its caller stops waiting.
    pub fn new(running: usize) -> Self {
        LaneLimit {
            slots: Arc::new(tokio::sync::Semaphore::new(running.max(1))),
            hold: None,
        }
    }

    /// A job still running after `hold` gives its slot to the next one
    /// (and runs on): devices that hang together cannot keep the others
    /// waiting past `hold`, even in the scrape in which they hang.
    pub fn releasing_after(mut self, hold: std::time::Duration) -> Self {
        self.hold = Some(hold);
        self
    }
}

/// Frees the lane when the job is done with it: when the job returns,
/// panics, or is dropped unrun. The stuck mark goes before the permit, so a
/// caller that gets the permit never sees a stale mark.
struct Release {
    stuck: Arc<AtomicBool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.stuck.store(false, Ordering::Release);
    }
}

impl Lane {
    /// A free lane; `name` appears in its errors.
    pub fn new(name: impl Into<String>) -> Self {
        Lane {
            name: name.into(),
            running: Arc::new(tokio::sync::Semaphore::new(1)),
            stuck: Arc::new(AtomicBool::new(false)),
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
        self.running.available_permits() == 0
    }

    /// Marks the lane stuck after a caller gave up on a running job, unless
    /// that job has returned meanwhile.
    fn mark_stuck(&self) {
        self.stuck.store(true, Ordering::Release);
        if !self.is_busy() {
            self.stuck.store(false, Ordering::Release);
        }
    }

    fn error(&self, make: fn(String) -> LaneError) -> LaneError {
        make(self.name.clone())
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
        if self.stuck.load(Ordering::Acquire) {
            return Err(self.error(|lane| LaneError::Busy { lane }));
        }
        let permit = match tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.running).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed.
            Ok(Err(_)) => return Err(self.error(|lane| LaneError::Cancelled { lane })),
            Err(_) => {
                // The job ahead of this one outlived this deadline too.
                self.mark_stuck();
                return Err(self.error(|lane| LaneError::TimedOut { lane }));
            }
        };
        let release = Release {
            stuck: Arc::clone(&self.stuck),
            _permit: permit,
        };
        let slot = match &self.limit {
            None => None,
            Some(limit) => {
                let free = Arc::clone(&limit.slots).acquire_owned();
                match tokio::time::timeout_at(deadline, free).await {
                    Ok(Ok(slot)) => Some((slot, limit.hold)),
                    // The semaphore is never closed.
                    Ok(Err(_)) => return Err(self.error(|lane| LaneError::Cancelled { lane })),
                    Err(_) => return Err(self.error(|lane| LaneError::TimedOut { lane })),
                }
            }
        };
        let mut task = tokio::task::spawn_blocking(move || {
            let _release = release;
            job()
        });
        // The slot stays with this caller: it is dropped when the job
        // returns, when this wait ends (deadline) or after the hold time,
        // so a job stuck in the driver never keeps it.
        let (mut slot, hold) = slot.unzip();
        if let Some(hold) = hold.flatten() {
            let held_until = (Instant::now() + hold).min(deadline);
            if let Ok(done) = tokio::time::timeout_at(held_until, &mut task).await {
                return self.finished(done);
            }
            drop(slot.take());
        }
        let waited = tokio::time::timeout_at(deadline, task).await;
        drop(slot);
        match waited {
            Ok(done) => self.finished(done),
            Err(_) => {
                self.mark_stuck();
                Err(self.error(|lane| LaneError::TimedOut { lane }))
            }
        }
    }

    fn finished<T>(&self, done: Result<T, tokio::task::JoinError>) -> Result<T, LaneError> {
        match done {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => Err(self.error(|lane| LaneError::Panicked { lane })),
            Err(_) => Err(self.error(|lane| LaneError::Cancelled { lane })),
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

    /// Two scrapes at once (two Prometheus servers): the second waits for
    /// the first one's job, which is slow but not stuck, then runs its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_overlapping_call_waits_for_a_job_that_is_not_stuck() {
        let lane = Arc::new(Lane::new("netlink"));
        let (release, blocked) = mpsc::channel::<()>();
        let first = {
            let lane = Arc::clone(&lane);
            tokio::spawn(async move {
                lane.run(after(5_000), move || {
                    blocked.recv().unwrap();
                    1
                })
                .await
            })
        };
        while !lane.is_busy() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let second = {
            let lane = Arc::clone(&lane);
            tokio::spawn(async move { lane.run(after(5_000), || 2).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the second call must wait, not fail");
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2));
        assert!(!lane.is_busy());
    }

    /// A caller that gave up waiting for the job ahead marks the lane stuck:
    /// the next caller fails at once instead of waiting again.
    #[tokio::test]
    async fn giving_up_on_the_job_ahead_marks_the_lane_stuck() {
        let lane = Lane::new("hwmon");
        let (release, blocked) = mpsc::channel::<()>();
        let r = lane.run(after(50), move || blocked.recv().unwrap()).await;
        assert_eq!(
            r,
            Err(LaneError::TimedOut {
                lane: "hwmon".into()
            })
        );
        let t0 = std::time::Instant::now();
        assert_eq!(
            lane.run(after(5_000), || ()).await,
            Err(LaneError::Busy {
                lane: "hwmon".into()
            })
        );
        assert!(t0.elapsed() < Duration::from_millis(500));
        release.send(()).unwrap();
        for _ in 0..200 {
            if !lane.is_busy() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lane.run(after(5_000), || 3).await, Ok(3));
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
    async fn a_limit_bounds_waited_jobs_and_a_stuck_one_gives_its_slot_back() {
        let limit = LaneLimit::new(1);
        let stuck = Lane::new("stuck").limited_by(&limit);
        let other = Lane::new("other").limited_by(&limit);
        let (release, blocked) = mpsc::channel::<()>();
        let ran = Arc::new(AtomicUsize::new(0));
        // While the stuck job is waited for, it holds the only slot: the
        // other lane's job does not start, and its lane is not left busy.
        let count = Arc::clone(&ran);
        let (r, r_other) = tokio::join!(
            stuck.run(after(200), move || blocked.recv().unwrap()),
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                other
                    .run(after(100), move || count.fetch_add(1, Ordering::SeqCst))
                    .await
            }
        );
        assert!(matches!(r, Err(LaneError::TimedOut { .. })));
        assert!(matches!(r_other, Err(LaneError::TimedOut { .. })));
        assert!(!other.is_busy());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        // Past its caller's deadline the stuck job runs without a slot.
        let count = Arc::clone(&ran);
        let r = other
            .run(after(1_000), move || count.fetch_add(1, Ordering::SeqCst))
            .await;
        assert_eq!(r, Ok(0));
        assert!(stuck.is_busy());
        release.send(()).unwrap();
    }

    #[tokio::test]
    async fn jobs_hanging_together_free_their_slots_after_the_hold_time() {
        let limit = LaneLimit::new(2).releasing_after(Duration::from_millis(100));
        let lanes: Vec<Lane> = (0..3)
            .map(|i| Lane::new(format!("GPU {i}")).limited_by(&limit))
            .collect();
        let (release, blocked) = mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let hang = |gate: Arc<Mutex<mpsc::Receiver<()>>>| move || gate.lock().unwrap().recv();
        let started = std::time::Instant::now();
        // Two jobs hang at once; within the same deadline the third still
        // gets a slot once the hold time has passed.
        let (a, b, c) = tokio::join!(
            lanes[0].run(after(1_000), hang(Arc::clone(&blocked))),
            lanes[1].run(after(1_000), hang(Arc::clone(&blocked))),
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                lanes[2].run(after(1_000), || 7).await
            }
        );
        assert_eq!(c, Ok(7));
        assert!(matches!(a, Err(LaneError::TimedOut { .. })));
        assert!(matches!(b, Err(LaneError::TimedOut { .. })));
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Later rounds skip the stuck lanes at once and never wait for a slot.
        let t0 = std::time::Instant::now();
        assert!(matches!(
            lanes[0].run(after(1_000), || ()).await,
            Err(LaneError::Busy { .. })
        ));
        assert_eq!(lanes[2].run(after(1_000), || 8).await, Ok(8));
        assert!(t0.elapsed() < Duration::from_millis(100));
        release.send(()).unwrap();
        release.send(()).unwrap();
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
