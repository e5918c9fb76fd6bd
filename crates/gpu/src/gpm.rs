//! Profiling metrics from NVML GPM (GPU Performance Monitoring, Hopper and
//! newer): SM activity and occupancy, tensor and floating-point pipe
//! activity, DRAM bandwidth, PCIe and NVLink throughput.
//!
//! GPM compares two samples. Each scrape takes a new sample of every GPU
//! that supports GPM (and of every MIG GPU instance with a known ID) and
//! reports the metrics between the previous sample and it, so the values
//! cover the time since the previous scrape. The first scrape after start,
//! after NVML is re-initialised (lost GPU), or after a scrape in which the
//! GPU gave no reading (slow, hung, failed), has no previous sample and
//! emits none. GPUs
//! without GPM have none of these series; nothing is logged for them
//! beyond the usual once-per-field debug line.
//!
//! NVML reports percentages and MiB/s; the metrics are ratios 0–1 and
//! bytes per second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::{gpm_metrics_get, GpmSample};
use nvml_wrapper::Nvml;
use oxmon_core::sync::LockExt;

use crate::metrics::*;

/// What a sample is of: a GPU (by UUID), or one GPU instance of it.
pub type Source = (String, Option<u32>);

/// The latest sample of each source, taken through one `Nvml`.
pub struct Previous<'nvml>(Mutex<HashMap<Source, GpmSample<'nvml>>>);

self_cell::self_cell!(
    /// An initialised NVML and the GPM samples taken through it. The
    /// samples borrow the handle, so they live and die with it: after a
    /// re-initialisation there is no previous sample.
    pub struct Session {
        owner: Arc<Nvml>,
        #[not_covariant]
        dependent: Previous,
    }
);

impl Session {
    /// A session over `nvml` with no samples yet.
    pub fn start(nvml: Arc<Nvml>) -> Session {
        Session::new(nvml, |_| Previous(Mutex::default()))
    }

    /// Drops the samples of GPU `uuid` (and its GPU instances): it gave no
    /// reading, so when it answers again its first scrape emits no GPM
    /// metrics rather than an average over the time it was away.
    pub fn forget(&self, uuid: &str) {
        self.with_dependent(|_, previous| {
            let gone: Vec<GpmSample<'_>> = {
                let mut samples = previous.0.lock_unpoisoned();
                let keys: Vec<Source> =
                    samples.keys().filter(|(u, _)| u == uuid).cloned().collect();
                keys.iter().filter_map(|k| samples.remove(k)).collect()
            };
            // Freed outside the lock (nvmlGpmSampleFree).
            drop(gone);
        });
    }
}

/// One GPM metric: NVML's id, the family and label value it fills, and the
/// factor from NVML's unit to ours.
pub struct Metric {
    /// NVML's metric.
    pub id: GpmMetricId,
    /// Name for logs (`gpm_sm_active`).
    pub field: &'static str,
    /// The family.
    pub def: &'static Def,
    /// Its label value, for families with a label.
    pub label: Option<&'static str>,
    /// NVML unit → base unit.
    pub scale: f64,
}

const PERCENT: f64 = 0.01;
const MIB: f64 = 1024.0 * 1024.0;

/// The metrics read, in request order.
pub static METRICS: [Metric; 14] = {
    const fn m(
        id: GpmMetricId,
        field: &'static str,
        def: &'static Def,
        label: Option<&'static str>,
        scale: f64,
    ) -> Metric {
        Metric {
            id,
            field,
            def,
            label,
            scale,
        }
    }
    use GpmMetricId::*;
    [
        m(SmUtil, "gpm_sm_active", &SM_ACTIVE, None, PERCENT),
        m(
            SmOccupancy,
            "gpm_sm_occupancy",
            &SM_OCCUPANCY,
            None,
            PERCENT,
        ),
        m(
            AnyTensorUtil,
            "gpm_tensor_any",
            &TENSOR_PIPE_ACTIVE,
            Some("any"),
            PERCENT,
        ),
        m(
            HmmaTensorUtil,
            "gpm_tensor_hmma",
            &TENSOR_PIPE_ACTIVE,
            Some("hmma"),
            PERCENT,
        ),
        m(
            ImmaTensorUtil,
            "gpm_tensor_imma",
            &TENSOR_PIPE_ACTIVE,
            Some("imma"),
            PERCENT,
        ),
        m(
            DfmaTensorUtil,
            "gpm_tensor_dfma",
            &TENSOR_PIPE_ACTIVE,
            Some("dfma"),
            PERCENT,
        ),
        m(DramBwUtil, "gpm_dram_active", &DRAM_ACTIVE, None, PERCENT),
        m(Fp64Util, "gpm_fp64", &FP_PIPE_ACTIVE, Some("fp64"), PERCENT),
        m(Fp32Util, "gpm_fp32", &FP_PIPE_ACTIVE, Some("fp32"), PERCENT),
        m(Fp16Util, "gpm_fp16", &FP_PIPE_ACTIVE, Some("fp16"), PERCENT),
        m(PcieTxPerSec, "gpm_pcie_tx", &PCIE_TX_RATE, None, MIB),
        m(PcieRxPerSec, "gpm_pcie_rx", &PCIE_RX_RATE, None, MIB),
        m(
            NvlinkTotalTxPerSec,
            "gpm_nvlink_tx",
            &NVLINK_TX_RATE,
            None,
            MIB,
        ),
        m(
            NvlinkTotalRxPerSec,
            "gpm_nvlink_rx",
            &NVLINK_RX_RATE,
            None,
            MIB,
        ),
    ]
};

/// Takes a new sample of `source` with `take` and returns each metric
/// between the previous sample and it (in [`METRICS`] order, already in
/// base units), or `None` when there was no previous sample. The new sample
/// replaces the previous one even when the comparison fails, so the next
/// scrape has a fresh pair. The lock is never held across an NVML call: a
/// GPU stuck in `take` does not block the others.
pub fn step<'nvml>(
    previous: &Previous<'nvml>,
    source: Source,
    take: impl FnOnce() -> Result<GpmSample<'nvml>, NvmlError>,
) -> Result<Option<Vec<Result<f64, NvmlError>>>, NvmlError> {
    let before = previous.0.lock_unpoisoned().remove(&source);
    let now = take()?;
    let compared = before.map(|before| {
        let ids: Vec<GpmMetricId> = METRICS.iter().map(|m| m.id).collect();
        gpm_metrics_get(now.nvml(), &before, &now, &ids).map(|results| {
            results
                .into_iter()
                .zip(&METRICS)
                .map(|(r, m)| r.map(|r| r.value * m.scale))
                .collect()
        })
    });
    previous.0.lock_unpoisoned().insert(source, now);
    compared.transpose()
}
