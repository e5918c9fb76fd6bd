//! NVML's lifecycle: initialisation, failure, back-off and re-initialisation.
//!
//! The exporter never exits for want of a GPU. When the library cannot be
//! loaded, `nvmlInit` fails, or a GPU is lost, the scrape reports
//! `nvidia_gpu_nvml_up 0`, the reason is logged once (again only when it
//! changes), and initialisation is retried on a later scrape after a
//! back-off that starts at 1 s and doubles up to 5 min. Retries happen only
//! when a scrape asks, never in the background. A fully successful scrape
//! resets the back-off and logs the recovery.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use oxmon_core::blocking::{Lane, LaneError};
use oxmon_core::sync::LockExt;
use tokio::time::Instant;

use crate::gpm::Session;
use crate::metrics::System;
use crate::xid::{self, XidCounters, XidWatcher};

/// First retry delay.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// An initialised NVML and what does not change until the next init.
pub struct Up {
    /// The library handle and the GPM samples taken through it.
    pub session: Session,
    /// Driver and CUDA versions.
    pub system: System,
    _xid: XidWatcher,
}

impl Up {
    /// The library handle.
    pub fn nvml(&self) -> &Nvml {
        self.session.borrow_owner()
    }
}

struct Inner {
    current: Option<Arc<Up>>,
    /// Why NVML is down; `None` while healthy.
    down: Option<String>,
    /// The reason last logged, so each reason is logged once.
    logged: Option<String>,
    backoff: Duration,
    next_retry: Instant,
}

/// Owns the NVML handle across scrapes.
pub struct NvmlState {
    lib_path: Option<PathBuf>,
    xid: Arc<XidCounters>,
    inner: Mutex<Inner>,
    /// Initialisations run here: one at a time, even when one hangs.
    init_lane: Lane,
}

impl NvmlState {
    /// Not yet initialised; the first [`NvmlState::get`] (or
    /// [`NvmlState::init_now`]) tries.
    pub fn new(lib_path: Option<PathBuf>, xid: Arc<XidCounters>) -> Arc<Self> {
        Arc::new(NvmlState {
            lib_path,
            xid,
            inner: Mutex::new(Inner {
                current: None,
                down: Some("not initialised yet".into()),
                logged: None,
                backoff: BACKOFF_MIN,
                next_retry: Instant::now(),
            }),
            init_lane: Lane::new("NVML initialisation"),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock_unpoisoned()
    }

    /// Initialises synchronously (at start-up, before any scrape, so the
    /// log says at once whether GPUs were found).
    pub fn init_now(self: &Arc<Self>) {
        let result = self.init();
        self.finish(result);
    }

    /// The NVML handle for this scrape, initialising first when NVML is
    /// down and the back-off has passed. Waits for an initialisation at
    /// most until `deadline` (it goes on in the background).
    pub async fn get(self: &Arc<Self>, deadline: Instant) -> (Option<Arc<Up>>, Option<String>) {
        let due = {
            let inner = self.lock();
            inner.down.is_some() && Instant::now() >= inner.next_retry
        };
        if due {
            let me = self.clone();
            let init = move || {
                let result = me.init();
                me.finish(result);
            };
            match self.init_lane.run(deadline, init).await {
                Ok(()) => {}
                Err(LaneError::Busy { .. } | LaneError::TimedOut { .. }) => {
                    tracing::debug!("NVML initialisation still running at the scrape deadline");
                }
                Err(e) => tracing::warn!(err = %e, "NVML initialisation failed"),
            }
        }
        let inner = self.lock();
        (inner.current.clone(), inner.down.clone())
    }

    fn init(&self) -> Result<Up, String> {
        let mut builder = Nvml::builder();
        if let Some(p) = &self.lib_path {
            builder.lib_path(p.as_os_str());
        }
        let nvml = builder.init().map_err(|e| self.describe(e))?;
        let driver_version = nvml.sys_driver_version().unwrap_or_default();
        let cuda_version = nvml
            .sys_cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default();
        let nvml = Arc::new(nvml);
        let watcher = xid::watch(nvml.clone(), self.xid.clone());
        Ok(Up {
            session: Session::start(nvml),
            system: System {
                driver_version,
                cuda_version,
            },
            _xid: watcher,
        })
    }

    fn describe(&self, e: NvmlError) -> String {
        let lib = self.lib_path.as_ref().map_or_else(
            || "libnvidia-ml.so.1".to_string(),
            |p| p.display().to_string(),
        );
        match e {
            NvmlError::LibloadingError(e) => {
                format!("loading {lib} failed (is the NVIDIA driver installed?): {e}")
            }
            NvmlError::DriverNotLoaded => "nvmlInit: the NVIDIA driver is not loaded".into(),
            NvmlError::NoPermission => {
                "nvmlInit: no permission to talk to the NVIDIA driver".into()
            }
            e => format!("nvmlInit failed: {e}"),
        }
    }

    fn finish(&self, result: Result<Up, String>) {
        let mut inner = self.lock();
        match result {
            Ok(up) => {
                inner.current = Some(Arc::new(up));
                // Healthy until a scrape proves otherwise; the back-off is
                // reset only by a fully successful scrape.
                inner.down = None;
            }
            Err(reason) => {
                inner.current = None;
                Self::fail(&mut inner, reason);
            }
        }
    }

    fn fail(inner: &mut Inner, reason: String) {
        if inner.logged.as_deref() != Some(reason.as_str()) {
            tracing::warn!(
                reason = %reason,
                retry_in = ?inner.backoff,
                "NVML unavailable: serving nvidia_gpu_nvml_up 0 and retrying with back-off"
            );
            inner.logged = Some(reason.clone());
        } else {
            tracing::debug!(reason = %reason, "NVML still unavailable");
        }
        inner.next_retry = Instant::now() + inner.backoff;
        inner.backoff = (inner.backoff * 2).min(BACKOFF_MAX);
        inner.down = Some(reason);
    }

    /// A scrape found a problem with an initialised NVML (a lost GPU, a
    /// failing device count): NVML is down until a re-initialisation after
    /// the back-off; the current handle is still used meanwhile.
    pub fn report_failure(&self, reason: String) {
        let mut inner = self.lock();
        if inner.down.is_none() {
            Self::fail(&mut inner, reason);
        }
    }

    /// A scrape read every GPU.
    pub fn report_success(&self) {
        let mut inner = self.lock();
        if inner.down.is_none() {
            inner.backoff = BACKOFF_MIN;
            if inner.logged.take().is_some() {
                tracing::info!("NVML available again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_init_backs_off_and_retries_only_when_due() {
        let state = NvmlState::new(
            Some("/nonexistent/libnvidia-ml.so.1".into()),
            Arc::default(),
        );
        state.init_now();
        let (first_backoff, first_retry) = {
            let inner = state.lock();
            assert!(inner.current.is_none());
            let reason = inner.down.clone().unwrap();
            assert!(
                reason.contains("loading /nonexistent/libnvidia-ml.so.1"),
                "{reason}"
            );
            (inner.backoff, inner.next_retry)
        };
        assert_eq!(first_backoff, Duration::from_secs(2));
        // Not due yet: no new attempt, the back-off does not grow.
        let (up, down) = state.get(Instant::now() + Duration::from_secs(1)).await;
        assert!(up.is_none() && down.is_some());
        assert_eq!(state.lock().backoff, first_backoff);
        assert_eq!(state.lock().next_retry, first_retry);
        // Due: one more attempt, the back-off doubles, up to the cap.
        state.lock().next_retry = Instant::now();
        let _ = state.get(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(state.lock().backoff, Duration::from_secs(4));
        for _ in 0..20 {
            state.lock().next_retry = Instant::now();
            let _ = state.get(Instant::now() + Duration::from_secs(5)).await;
        }
        assert_eq!(state.lock().backoff, BACKOFF_MAX);
    }
}
