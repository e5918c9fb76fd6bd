//! The `nvml` collector: one scrape reads the GPUs concurrently and renders
//! what answered before the deadline.
//!
//! GPUs are read on [`READERS`] long-lived threads (see [`crate::pool`]),
//! two GPUs at a time: each reading thread costs a malloc arena and stack
//! pages (about 150 KiB of RSS, measured), and two parallel reads already
//! keep a slow GPU from holding back the others. A GPU whose previous read
//! is still running (a hung driver call) is not queued again until that
//! read returns, so a stuck GPU holds at most one reader; the other keeps
//! reading the rest. A GPU that does not answer in time is left out of this
//! scrape (logged at warn); it does not delay the others.
//!
//! Lost GPUs (NVML_ERROR_GPU_IS_LOST): their series are absent,
//! `nvidia_gpu_lost{gpu,uuid,name}` is 1 (uuid and name as last seen), and
//! `nvidia_gpu_nvml_up` is 0 until a re-initialisation finds every GPU
//! healthy again; the other GPUs are still reported.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxmon_core::collector::{BoxFuture, CollectResult, Collector, ScrapeContext};
use oxmon_core::MetricFamily;

use crate::metrics::{self, LostGpu, Snapshot};
use crate::pool::Pool;
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
    busy: Arc<Mutex<HashSet<u32>>>,
    readers: Pool,
    /// `(uuid, name)` last seen per index, to label lost GPUs.
    seen: Mutex<HashMap<u32, (String, String)>>,
}

/// GPUs read at the same time.
pub const READERS: usize = 2;

/// Time kept back from the scrape deadline for rendering and encoding.
const MARGIN: Duration = Duration::from_millis(50);

impl NvmlCollector {
    /// A collector over `state`.
    pub fn new(
        state: Arc<NvmlState>,
        xid: Arc<XidCounters>,
        opts: Options,
    ) -> std::io::Result<Self> {
        let readers = Pool::new(READERS, "gpu-reader")?;
        Ok(NvmlCollector {
            state,
            xid,
            opts,
            logged: Arc::default(),
            busy: Arc::default(),
            readers,
            seen: Mutex::default(),
        })
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

        let mut tasks = Vec::new();
        let mut complete = true;
        for index in 0..count {
            if !self
                .busy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(index)
            {
                tracing::warn!(
                    gpu = index,
                    "the previous read of this GPU has not returned; skipping it"
                );
                complete = false;
                continue;
            }
            let nvml = up.nvml.clone();
            let logged = self.logged.clone();
            let busy = self.busy.clone();
            let opts = self.opts.read;
            let task = self.readers.run(move || {
                let r = catch_unwind(AssertUnwindSafe(|| read_gpu(&nvml, index, opts, &logged)));
                busy.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&index);
                r
            });
            tasks.push((index, task));
        }

        let mut problems = Vec::new();
        for (index, task) in tasks {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(Ok(g)))) => {
                    self.remember(index, &g.uuid, &g.name);
                    snap.gpus.push(g);
                }
                Ok(Ok(Ok(Err(ReadError::Lost)))) => {
                    let (uuid, name) = self.last_seen(index);
                    problems.push(format!("GPU {index} ({uuid}) is lost"));
                    snap.lost.push(LostGpu { index, uuid, name });
                }
                Ok(Ok(Ok(Err(ReadError::Failed(e))))) => problems.push(e),
                Ok(Ok(Err(_panic))) => problems.push(format!("reading GPU {index} panicked")),
                Ok(Err(_gone)) => problems.push(format!("the reader of GPU {index} went away")),
                Err(_) => {
                    tracing::warn!(
                        gpu = index,
                        "GPU did not answer before the scrape deadline; left out of this scrape"
                    );
                    complete = false;
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
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = seen.get(&index).is_none_or(|(u, n)| u != uuid || n != name);
        if fresh {
            seen.insert(index, (uuid.to_string(), name.to_string()));
        }
    }

    fn last_seen(&self, index: u32) -> (String, String) {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
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
