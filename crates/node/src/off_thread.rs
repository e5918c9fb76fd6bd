//! Collectors whose files are served by drivers that can take long to
//! answer (ACPI thermal zones and batteries, I2C/PMBus hwmon chips): a
//! cheap check runs on the runtime thread, the reads on a blocking thread
//! that the scrape waits for only until its deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectError, CollectResult, Collector, ScrapeContext};
use oxmon_core::MetricFamily;

/// A collector whose reads can block.
pub trait SlowSysfs: Send + Sync + 'static {
    /// What the cheap check found (typically a directory listing).
    type Found: Send + 'static;
    /// The collector's name.
    const NAME: &'static str;
    /// Runs on the runtime thread; `None` means there is nothing to read
    /// (and no thread hop is made).
    fn find(&self) -> Result<Option<Self::Found>, CollectError>;
    /// Reads the files; runs on a blocking thread.
    fn read(&self, found: Self::Found, out: &mut Vec<MetricFamily>) -> CollectResult;
}

/// Runs a [`SlowSysfs`] collector off the runtime thread. While an earlier
/// scrape's read is still running, later scrapes report the collector as
/// failed instead of piling up threads behind a hung driver.
struct OffThread<T> {
    inner: Arc<T>,
    busy: Arc<AtomicBool>,
}

/// Wraps a [`SlowSysfs`] collector.
pub fn off_thread<T: SlowSysfs>(collector: T) -> Arc<dyn Collector> {
    Arc::new(OffThread {
        inner: Arc::new(collector),
        busy: Arc::new(AtomicBool::new(false)),
    })
}

impl<T: SlowSysfs> Collector for OffThread<T> {
    fn name(&self) -> &str {
        T::NAME
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let Some(found) = self.inner.find()? else {
                return Ok(());
            };
            if self.busy.swap(true, Ordering::AcqRel) {
                return Err(
                    format!("an earlier scrape's {} read is still running", T::NAME).into(),
                );
            }
            let (inner, busy) = (self.inner.clone(), self.busy.clone());
            let work = tokio::task::spawn_blocking(move || {
                let mut fams = Vec::new();
                let res = inner.read(found, &mut fams);
                busy.store(false, Ordering::Release);
                (fams, res.map_err(|e| e.to_string()))
            });
            match tokio::time::timeout_at(ctx.deadline, work).await {
                Ok(Ok((fams, res))) => {
                    out.extend(fams);
                    res.map_err(Into::into)
                }
                Ok(Err(e)) => {
                    self.busy.store(false, Ordering::Release);
                    Err(format!("{} reader failed: {e}", T::NAME).into())
                }
                Err(_) => {
                    Err(format!("{} did not answer before the scrape deadline", T::NAME).into())
                }
            }
        })
    }
}
