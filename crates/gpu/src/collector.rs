//! The `nvml` collector: one scrape reads the GPUs concurrently and renders
//! what answered before the deadline.
//!
//! Each GPU is read on its own [`Lane`] (oxmon-core's off-thread
//! mechanism), [`READERS`] GPUs at a time: each reading thread costs a
//! malloc arena and stack pages (about 150 KiB of RSS, measured), and two
//! parallel reads already keep a slow GPU from holding back the others. A
//! GPU whose previous read is still running (a hung driver call) is not
//! read again until that read returns, so a stuck GPU holds at most one
//! thread; the others go on being read. A reading slot belongs to the
//! scrape waiting for the read, not to the read's thread: it is given back
//! when the read returns, at the deadline, or after `READ_HOLD` (1 s), so
//! any number of GPUs hanging at once hold no slot and cannot starve the
//! rest, and later scrapes skip them without taking one. A read still
//! going at the deadline stops after its current call.
//!
//! Every GPU NVML counts has `nvidia_gpu_scrape_success{gpu,uuid,name}`
//! each scrape: 1 when it was read, 0 when it did not answer before the
//! deadline, is still stuck in an earlier read, failed, or is lost (uuid
//! and name as last seen, empty when never read). Its readings are left
//! out; each such GPU is logged once when it starts failing (core's
//! `FailureLog`), not every scrape. `nvidia_gpu_nvml_up` is 1 only when
//! every GPU answered.
//!
//! Lost GPUs (NVML_ERROR_GPU_IS_LOST): their series are absent,
//! `nvidia_gpu_lost{gpu,uuid,name}` is 1, and NVML is re-initialised after
//! a back-off until every GPU is healthy again; the other GPUs are still
//! reported. A GPU that is only slow does not make NVML re-initialise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::OptionFuture;
use oxmon_core::blocking::{Lane, LaneError, LaneLimit};
use oxmon_core::collector::{BoxFuture, CollectResult, Collector, ScrapeContext};
use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::sync::LockExt;
use oxmon_core::MetricFamily;

use crate::metrics::{self, GpuIdentity, Snapshot};
use crate::pod_resources::PodResourcesSource;
use crate::read::{read_gpu, Identities, LastSeen, Logged, ReadContext, ReadError, ReadOptions};
use crate::state::NvmlState;
use crate::xid::XidCounters;

/// Options of the collector.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-GPU read options.
    pub read: ReadOptions,
    /// `Some(hostname)`: also emit dcgm-exporter names.
    pub dcgm_compat: Option<String>,
    /// `Some`: label allocated GPUs with their Kubernetes pod.
    pub pods: Option<Arc<PodResourcesSource>>,
}

/// Reads all GPUs through NVML.
pub struct NvmlCollector {
    state: Arc<NvmlState>,
    xid: Arc<XidCounters>,
    opts: Options,
    logged: Arc<Logged>,
    /// One lane per GPU index, created as GPUs are first counted.
    lanes: Mutex<Vec<Arc<Lane>>>,
    readers: LaneLimit,
    /// `(uuid, name)` last seen per index, to label GPUs that gave no
    /// reading.
    identities: Arc<Identities>,
    /// Each GPU's newest process utilisation sample.
    last_seen: Arc<LastSeen>,
    /// GPUs that gave no reading, keyed `GPU <index>`: logged when that
    /// starts or changes, and when it ends.
    unanswered: FailureLog,
}

/// GPUs read at the same time.
pub const READERS: usize = 2;

/// A GPU read still running after this long gives its reading slot to the
/// next GPU (and goes on without one): GPUs that hang together never keep
/// the others waiting longer than this, even in the scrape in which they
/// hang. A healthy GPU's read takes tens of milliseconds.
const READ_HOLD: Duration = Duration::from_secs(1);

/// Time kept back from the scrape deadline for rendering and encoding.
const MARGIN: Duration = Duration::from_millis(50);

impl NvmlCollector {
    /// A collector over `state`.
    pub fn new(state: Arc<NvmlState>, xid: Arc<XidCounters>, opts: Options) -> Self {
        NvmlCollector {
            state,
            xid,
            opts,
            logged: Arc::default(),
            lanes: Mutex::default(),
            readers: LaneLimit::new(READERS).releasing_after(READ_HOLD),
            identities: Arc::default(),
            last_seen: Arc::default(),
            unanswered: FailureLog::new(FailureSubject::Collector),
        }
    }

    /// The lanes of GPUs `0..count`.
    fn lanes(&self, count: u32) -> Vec<Arc<Lane>> {
        let mut lanes = self.lanes.lock_unpoisoned();
        while lanes.len() < count as usize {
            let lane = Lane::new(format!("GPU {}", lanes.len())).limited_by(&self.readers);
            lanes.push(Arc::new(lane));
        }
        lanes[..count as usize].to_vec()
    }

    async fn snapshot(&self, ctx: &ScrapeContext) -> Snapshot {
        let deadline = ctx.deadline.checked_sub(MARGIN).unwrap_or(ctx.deadline);
        let (up, down) = self.state.get(deadline).await;
        let mut snap = Snapshot {
            xid: self.xid.snapshot(),
            ..Default::default()
        };
        let Some(up) = up else {
            return snap;
        };
        snap.system = up.system.clone();
        let count = match up.nvml().device_count() {
            Ok(n) => n,
            Err(e) => {
                self.state
                    .report_failure(format!("nvmlDeviceGetCount failed: {e}"));
                return snap;
            }
        };
        snap.num_devices = Some(count);

        let reads = self.lanes(count).into_iter().zip(0..).map(|(lane, index)| {
            let up = up.clone();
            let logged = self.logged.clone();
            let identities = self.identities.clone();
            let last_seen = self.last_seen.clone();
            let opts = self.opts.read;
            async move {
                let read = move || {
                    let cx = ReadContext {
                        logged: &logged,
                        identities: &identities,
                        last_seen: &last_seen,
                        deadline: deadline.into_std(),
                    };
                    read_gpu(&up.session, index, opts, &cx)
                };
                (index, lane.run(deadline, read).await)
            }
        });
        let results = futures_util::future::join_all(reads).await;

        let mut complete = true;
        let mut problems = Vec::new();
        for (index, result) in results {
            let key = format!("GPU {index}");
            let identity = || {
                let (uuid, name) = self.identities.last_seen(index);
                GpuIdentity { index, uuid, name }
            };
            // Slow or stuck GPUs are logged here; failures and lost GPUs
            // through the NVML state, which logs each reason once.
            let slow = match result {
                Ok(Ok(g)) => {
                    snap.gpus.push(g);
                    self.unanswered.succeeded(&key);
                    continue;
                }
                Ok(Err(ReadError::Lost)) => {
                    let lost = identity();
                    up.session.forget(&lost.uuid);
                    problems.push(format!("GPU {index} ({}) is lost", lost.uuid));
                    snap.lost.push(lost);
                    self.unanswered.forget(&key);
                    continue;
                }
                Ok(Err(ReadError::Failed(e))) => {
                    problems.push(e);
                    None
                }
                Err(e @ (LaneError::Panicked { .. } | LaneError::Cancelled { .. })) => {
                    problems.push(e.to_string());
                    None
                }
                Err(LaneError::Busy { .. }) => {
                    Some("the previous read of this GPU has not returned; skipping it")
                }
                Ok(Err(ReadError::Late)) | Err(LaneError::TimedOut { .. }) => {
                    Some("GPU did not answer before the scrape deadline; left out of this scrape")
                }
            };
            match slow {
                Some(why) => {
                    complete = false;
                    self.unanswered.failed(&key, why);
                }
                None => self.unanswered.forget(&key),
            }
            let gone = identity();
            // Its GPM comparison starts over when it answers again.
            up.session.forget(&gone.uuid);
            snap.unanswered.push(gone);
        }
        if problems.is_empty() {
            if complete {
                self.state.report_success();
            }
            snap.nvml_up = down.is_none() && complete;
        } else {
            self.state.report_failure(problems.join("; "));
        }
        snap
    }
}

impl Collector for NvmlCollector {
    fn name(&self) -> &str {
        "nvml"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            // The kubelet is asked while the GPUs are read.
            let deadline = ctx.deadline.checked_sub(MARGIN).unwrap_or(ctx.deadline);
            let owners = self.opts.pods.as_ref().map(|pods| pods.owners(deadline));
            let (snap, owners) = tokio::join!(self.snapshot(ctx), OptionFuture::from(owners));
            let first = out.len();
            out.extend(metrics::render(&snap));
            if let Some(host) = &self.opts.dcgm_compat {
                out.extend(metrics::render_dcgm(&snap, host));
            }
            if let Some(owners) = owners {
                owners.label(&mut out[first..]);
            }
            Ok(())
        })
    }
}
