//! The `nvml` collector: one scrape reads the GPUs concurrently and renders
//! what answered before the deadline.
//!
//! Each GPU is read on its own [`Lane`] (oxmon-core's off-thread
//! mechanism), [`READERS`] GPUs at a time: each reading thread costs a
//! malloc arena and stack pages (about 150 KiB of RSS, measured), and two
//! parallel reads already keep a slow GPU from holding back the others. A
//! GPU whose previous read is still running (a hung driver call) is not
//! read again until that read returns, so a stuck GPU holds at most one
//! thread; the others go on being read. A GPU that does not answer in time
//! is left out of this scrape (logged at warn); it does not delay the
//! others.
//!
//! Lost GPUs (NVML_ERROR_GPU_IS_LOST): their series are absent,
//! `nvidia_gpu_lost{gpu,uuid,name}` is 1 (uuid and name as last seen), and
//! `nvidia_gpu_nvml_up` is 0 until a re-initialisation finds every GPU
//! healthy again; the other GPUs are still reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxmon_core::blocking::{Lane, LaneError, LaneLimit};
use oxmon_core::collector::{BoxFuture, CollectResult, Collector, ScrapeContext};
use oxmon_core::sync::LockExt;
use oxmon_core::MetricFamily;

use crate::metrics::{self, LostGpu, Snapshot};
use crate::read::{read_gpu, Logged, ReadError, ReadOptions};
use crate::state::NvmlState;
use crate::xid::XidCounters;

/// Options of the collector.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-GPU read options.
    pub read: ReadOptions,
    /// `Some(hostname)`: also emit dcgm-exporter names.
    pub dcgm_compat: Option<String>,
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
    /// `(uuid, name)` last seen per index, to label lost GPUs.
    seen: Mutex<HashMap<u32, (String, String)>>,
}

/// GPUs read at the same time.
pub const READERS: usize = 2;

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
            readers: LaneLimit::new(READERS),
            seen: Mutex::default(),
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
        let count = match up.nvml.device_count() {
            Ok(n) => n,
            Err(e) => {
                self.state
                    .report_failure(format!("nvmlDeviceGetCount failed: {e}"));
                return snap;
            }
        };
        snap.num_devices = Some(count);

        let reads = self.lanes(count).into_iter().zip(0..).map(|(lane, index)| {
            let nvml = up.nvml.clone();
            let logged = self.logged.clone();
            let opts = self.opts.read;
            async move {
                let read = move || read_gpu(&nvml, index, opts, &logged);
                (index, lane.run(deadline, read).await)
            }
        });
        let results = futures_util::future::join_all(reads).await;

        let mut complete = true;
        let mut problems = Vec::new();
        for (index, result) in results {
            match result {
                Ok(Ok(g)) => {
                    self.remember(index, &g.uuid, &g.name);
                    snap.gpus.push(g);
                }
                Ok(Err(ReadError::Lost)) => {
                    let (uuid, name) = self.last_seen(index);
                    problems.push(format!("GPU {index} ({uuid}) is lost"));
                    snap.lost.push(LostGpu { index, uuid, name });
                }
                Ok(Err(ReadError::Failed(e))) => problems.push(e),
                Err(LaneError::Busy { .. }) => {
                    tracing::warn!(
                        gpu = index,
                        "the previous read of this GPU has not returned; skipping it"
                    );
                    complete = false;
                }
                Err(LaneError::TimedOut { .. }) => {
                    tracing::warn!(
                        gpu = index,
                        "GPU did not answer before the scrape deadline; left out of this scrape"
                    );
                    complete = false;
                }
                Err(LaneError::Panicked { .. }) => {
                    problems.push(format!("reading GPU {index} panicked"))
                }
                Err(LaneError::Cancelled { .. }) => {
                    problems.push(format!("the reader of GPU {index} went away"))
                }
            }
        }
        if problems.is_empty() {
            if complete {
                self.state.report_success();
            }
            snap.nvml_up = down.is_none();
        } else {
            self.state.report_failure(problems.join("; "));
        }
        snap
    }

    fn remember(&self, index: u32, uuid: &str, name: &str) {
        let mut seen = self.seen.lock_unpoisoned();
        let fresh = seen.get(&index).is_none_or(|(u, n)| u != uuid || n != name);
        if fresh {
            seen.insert(index, (uuid.to_string(), name.to_string()));
        }
    }

    fn last_seen(&self, index: u32) -> (String, String) {
        let seen = self.seen.lock_unpoisoned();
        seen.get(&index).cloned().unwrap_or_default()
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
            let snap = self.snapshot(ctx).await;
            out.extend(metrics::render(&snap));
            if let Some(host) = &self.opts.dcgm_compat {
                out.extend(metrics::render_dcgm(&snap, host));
            }
            Ok(())
        })
    }
}
