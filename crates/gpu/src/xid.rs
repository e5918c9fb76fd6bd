//! XID critical errors from an NVML event set, counted per GPU and code.
//!
//! A background thread registers every GPU that supports XID events in one
//! event set and waits on it with a short timeout, so it notices a stop
//! request (NVML re-initialised or the exporter shutting down) within half
//! a second. Every two seconds it looks for GPUs NVML counts beyond those
//! it has seen (hot-plugged after start) and registers them too. Counts live in [`XidCounters`], which outlives NVML
//! re-initialisations so the counters stay monotonic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{EventSet, Nvml};
use oxmon_core::sync::LockExt;

use crate::metrics::XidReading;

/// XID counts since the exporter started, by GPU UUID.
#[derive(Default)]
pub struct XidCounters(Mutex<BTreeMap<String, XidReading>>);

impl XidCounters {
    /// Counts one XID error.
    pub fn record(&self, index: u32, uuid: &str, name: &str, code: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut all = self.0.lock_unpoisoned();
        let entry = all.entry(uuid.to_string()).or_insert_with(|| XidReading {
            uuid: uuid.to_string(),
            ..Default::default()
        });
        entry.index = index;
        entry.name = name.to_string();
        match entry.counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => {
                entry.counts.push((code, 1));
                entry.counts.sort_unstable();
            }
        }
        entry.last = Some((now, code));
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> Vec<XidReading> {
        let all = self.0.lock_unpoisoned();
        all.values().cloned().collect()
    }
}

/// Stops the watcher thread when dropped.
pub struct XidWatcher {
    stop: Arc<AtomicBool>,
}

impl Drop for XidWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How long one wait blocks; bounds the time to notice a stop request.
const WAIT_MS: u32 = 500;

/// Starts the watcher thread for an initialised NVML.
pub fn watch(nvml: Arc<Nvml>, counters: Arc<XidCounters>) -> XidWatcher {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("xid-events".into())
        .stack_size(256 * 1024)
        .spawn(move || run(&nvml, &counters, &flag));
    if let Err(e) = spawned {
        tracing::warn!(err = %e, "starting the XID event thread failed; XID errors are not counted");
    }
    XidWatcher { stop }
}

/// How often the watcher looks for GPUs that appeared since it started.
const RESCAN: Duration = Duration::from_secs(2);

fn run(nvml: &Nvml, counters: &XidCounters, stop: &AtomicBool) {
    let mut watch = Watch::default();
    let mut next_scan = Instant::now();
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_scan {
            watch.add_new(nvml);
            next_scan = Instant::now() + RESCAN;
        }
        let Some(set) = &watch.set else {
            std::thread::sleep(Duration::from_millis(WAIT_MS.into()));
            continue;
        };
        match set.wait(WAIT_MS) {
            Ok(event) => {
                failures = 0;
                let Some(xid) = event.event_data else {
                    continue;
                };
                let code = match xid {
                    nvml_wrapper::enums::event::XidError::Value(v) => v,
                    nvml_wrapper::enums::event::XidError::Unknown => 999,
                };
                let dev = event.device;
                let index = dev.index().unwrap_or(u32::MAX);
                let uuid = dev.uuid().unwrap_or_default();
                let name = dev.name().unwrap_or_default();
                tracing::warn!(gpu = index, uuid = %uuid, xid = code, "XID error");
                counters.record(index, &uuid, &name, code);
            }
            Err(NvmlError::Timeout) => failures = 0,
            Err(e) => {
                // A lost GPU makes every wait fail; back off instead of spinning.
                failures += 1;
                if failures == 1 {
                    tracing::warn!(err = %e, "waiting for NVML events failed");
                }
                std::thread::sleep(Duration::from_millis(WAIT_MS.into()));
            }
        }
    }
}

/// One event set with every GPU that supports XID events registered, GPUs
/// that appear later (hot-plug) included.
#[derive(Default)]
struct Watch<'nvml> {
    set: Option<EventSet<'nvml>>,
    registered: Vec<u32>,
    /// GPUs `0..looked_at` were already looked at.
    looked_at: u32,
}

impl<'nvml> Watch<'nvml> {
    /// Registers the GPUs NVML counts beyond those already looked at.
    fn add_new(&mut self, nvml: &'nvml Nvml) {
        let Ok(count) = nvml.device_count() else {
            return;
        };
        if count <= self.looked_at {
            // Fewer GPUs than before (one fell off): look at the tail again
            // when it comes back.
            self.looked_at = self.looked_at.min(count);
            return;
        }
        for i in self.looked_at..count {
            let Ok(dev) = nvml.device_by_index(i) else {
                // Not readable yet (lost, initialising): try again later.
                return;
            };
            self.looked_at = i + 1;
            match dev.supported_event_types() {
                Ok(t) if t.contains(EventTypes::CRITICAL_XID_ERROR) => self.register(nvml, i),
                Ok(_) | Err(_) => tracing::debug!(gpu = i, "GPU does not report XID events"),
            }
        }
        tracing::debug!(gpus = ?self.registered, "watching XID events");
    }

    fn register(&mut self, nvml: &'nvml Nvml, index: u32) {
        let Some(set) = self.set.take().or_else(|| nvml.create_event_set().ok()) else {
            return;
        };
        let Ok(dev) = nvml.device_by_index(index) else {
            self.set = Some(set);
            return;
        };
        match dev.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
            Ok(set) => {
                self.set = Some(set);
                self.registered.push(index);
            }
            Err(e) => {
                // A failed registration frees the set: build it again with
                // the GPUs registered so far.
                tracing::warn!(gpu = index, err = %e.error, "registering for XID events failed");
                let again = std::mem::take(&mut self.registered);
                for j in again {
                    self.register(nvml, j);
                }
            }
        }
    }
}
