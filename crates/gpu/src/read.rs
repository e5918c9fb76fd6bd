//! Reads one GPU through nvml-wrapper into a [`GpuReading`].
//!
//! A field the GPU does not support (NVML_ERROR_NOT_SUPPORTED, or a function
//! the installed driver lacks) is left out and logged once at debug; any
//! other error on a field is logged once at warn and the field left out.
//! NVML_ERROR_GPU_IS_LOST stops the read: the GPU is reported lost.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;

use nvml_wrapper::enum_wrappers::device::{
    Clock, ComputeMode, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor,
    TemperatureThreshold,
};
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use oxmon_core::sync::LockExt;

use crate::metrics::*;

/// How one GPU read ended when it produced no reading.
#[derive(Debug, PartialEq)]
pub enum ReadError {
    /// NVML_ERROR_GPU_IS_LOST.
    Lost,
    /// The device handle or its identity could not be read.
    Failed(String),
}

/// Options for a read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Read per-process memory.
    pub processes: bool,
    /// At most this many processes per GPU (largest first).
    pub processes_max: usize,
}

/// `(uuid, field)` pairs already logged, so each is logged once.
#[derive(Default)]
pub struct Logged(Mutex<HashSet<(String, &'static str)>>);

impl Logged {
    fn first(&self, uuid: &str, field: &'static str) -> bool {
        let mut seen = self.0.lock_unpoisoned();
        seen.insert((uuid.to_string(), field))
    }
}

struct Reader<'a> {
    uuid: String,
    index: u32,
    logged: &'a Logged,
}

impl Reader<'_> {
    /// `Ok(None)` for an absent field, `Err(Lost)` to stop.
    fn check<T>(
        &self,
        field: &'static str,
        r: Result<T, NvmlError>,
    ) -> Result<Option<T>, ReadError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(NvmlError::GpuLost) => Err(ReadError::Lost),
            Err(
                e @ (NvmlError::NotSupported
                | NvmlError::FailedToLoadSymbol(_)
                | NvmlError::FunctionNotFound),
            ) => {
                if self.logged.first(&self.uuid, field) {
                    tracing::debug!(gpu = self.index, uuid = %self.uuid, field, err = %e, "field not supported; leaving it out");
                }
                Ok(None)
            }
            Err(e) => {
                if self.logged.first(&self.uuid, field) {
                    tracing::warn!(gpu = self.index, uuid = %self.uuid, field, err = %e, "reading a GPU field failed; leaving it out (logged once)");
                }
                Ok(None)
            }
        }
    }
}

/// Throttle reason bits (nvmlClocksThrottleReason*) and their label values.
pub const THROTTLE_REASONS: [(u64, &str); 9] = [
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

const FI_RETIRED_SBE: u32 = 29;
const FI_RETIRED_DBE: u32 = 30;
const FI_RETIRED_PENDING: u32 = 31;
const FI_MEMORY_TEMP: u32 = 82;
const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;

/// NVLink links a GPU can have (NVML_NVLINK_MAX_LINKS).
const NVLINK_MAX_LINKS: u32 = 18;

fn sample_f64(v: &SampleValue) -> f64 {
    match *v {
        SampleValue::F64(x) => x,
        SampleValue::U32(x) => x.into(),
        SampleValue::U64(x) => x as f64,
        SampleValue::I64(x) => x as f64,
    }
}

/// Reads GPU `index`.
pub fn read_gpu(
    nvml: &Nvml,
    index: u32,
    opts: ReadOptions,
    logged: &Logged,
) -> Result<GpuReading, ReadError> {
    let failed = |what: &str, e: NvmlError| match e {
        NvmlError::GpuLost => ReadError::Lost,
        e => ReadError::Failed(format!("{what} of GPU {index}: {e}")),
    };
    let dev = nvml
        .device_by_index(index)
        .map_err(|e| failed("getting the handle", e))?;
    let uuid = dev.uuid().map_err(|e| failed("reading the UUID", e))?;
    let name = dev.name().map_err(|e| failed("reading the name", e))?;
    let r = Reader {
        uuid: uuid.clone(),
        index,
        logged,
    };
    let mut g = GpuReading {
        index,
        uuid,
        name,
        ..Default::default()
    };
    read_identity(&r, &dev, &mut g)?;
    read_values(&r, &dev, &mut g)?;
    read_mig(&r, &dev, &mut g)?;
    if opts.processes {
        read_processes(&r, nvml, &dev, opts.processes_max, &mut g)?;
    }
    Ok(g)
}

fn read_identity(r: &Reader, dev: &Device, g: &mut GpuReading) -> Result<(), ReadError> {
    g.pci_bus_id = r
        .check("pci_info", dev.pci_info())?
        .map(|p| p.bus_id)
        .unwrap_or_default();
    g.vbios_version = r
        .check("vbios_version", dev.vbios_version())?
        .unwrap_or_default();
    g.compute_mode = match r.check("compute_mode", dev.compute_mode())? {
        Some(ComputeMode::Default) => "default",
        Some(ComputeMode::ExclusiveThread) => "exclusive_thread",
        Some(ComputeMode::Prohibited) => "prohibited",
        Some(ComputeMode::ExclusiveProcess) => "exclusive_process",
        None => "unknown",
    }
    .to_string();
    g.persistence_mode = match r.check("persistence_mode", dev.is_in_persistent_mode())? {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "unknown",
    }
    .to_string();
    Ok(())
}

fn read_values(r: &Reader, dev: &Device, g: &mut GpuReading) -> Result<(), ReadError> {
    if let Some(u) = r.check("utilization", dev.utilization_rates())? {
        g.push(&UTILIZATION, None, f64::from(u.gpu) / 100.0);
        g.push(&MEMORY_UTILIZATION, None, f64::from(u.memory) / 100.0);
    }
    if let Some(u) = r.check("encoder_utilization", dev.encoder_utilization())? {
        g.push(&ENCODER_UTILIZATION, None, f64::from(u.utilization) / 100.0);
    }
    if let Some(u) = r.check("decoder_utilization", dev.decoder_utilization())? {
        g.push(&DECODER_UTILIZATION, None, f64::from(u.utilization) / 100.0);
    }
    if let Some(m) = r.check("memory", dev.memory_info())? {
        g.push(&MEMORY_USED, None, m.used as f64);
        g.push(&MEMORY_FREE, None, m.free as f64);
        g.push(&MEMORY_TOTAL, None, m.total as f64);
        g.push(&MEMORY_RESERVED, None, m.reserved as f64);
    }
    if let Some(t) = r.check("temperature", dev.temperature(TemperatureSensor::Gpu))? {
        g.push(&TEMPERATURE, None, t.into());
    }
    for (kind, label, field) in [
        (
            TemperatureThreshold::Slowdown,
            "slowdown",
            "temperature_threshold_slowdown",
        ),
        (
            TemperatureThreshold::Shutdown,
            "shutdown",
            "temperature_threshold_shutdown",
        ),
        (
            TemperatureThreshold::GpuMax,
            "gpu_max",
            "temperature_threshold_gpu_max",
        ),
        (
            TemperatureThreshold::MemoryMax,
            "memory_max",
            "temperature_threshold_memory_max",
        ),
    ] {
        if let Some(t) = r.check(field, dev.temperature_threshold(kind))? {
            g.push(&TEMPERATURE_THRESHOLD, Some(Cow::Borrowed(label)), t.into());
        }
    }
    if let Some(mw) = r.check("power_usage", dev.power_usage())? {
        g.push(&POWER_USAGE, None, f64::from(mw) / 1000.0);
    }
    if let Some(mw) = r.check("power_limit", dev.enforced_power_limit())? {
        g.push(&POWER_LIMIT, None, f64::from(mw) / 1000.0);
    }
    if let Some(mj) = r.check("energy", dev.total_energy_consumption())? {
        g.push(&ENERGY, None, mj as f64 / 1000.0);
    }
    for (clock, label) in [
        (Clock::Graphics, "graphics"),
        (Clock::SM, "sm"),
        (Clock::Memory, "memory"),
        (Clock::Video, "video"),
    ] {
        if let Some(mhz) = r.check("clock", dev.clock_info(clock))? {
            g.push(&CLOCK, Some(Cow::Borrowed(label)), f64::from(mhz) * 1e6);
        }
        if let Some(mhz) = r.check("max_clock", dev.max_clock_info(clock))? {
            g.push(&CLOCK_MAX, Some(Cow::Borrowed(label)), f64::from(mhz) * 1e6);
        }
    }
    if let Some(fans) = r.check("num_fans", dev.num_fans())? {
        for fan in 0..fans {
            if let Some(pct) = r.check("fan_speed", dev.fan_speed(fan))? {
                g.push(
                    &FAN_SPEED,
                    Some(Cow::Owned(fan.to_string())),
                    f64::from(pct) / 100.0,
                );
            }
        }
    }
    if let Some(p) = r.check("performance_state", dev.performance_state())? {
        let v = p.as_c();
        // NVML_PSTATE_UNKNOWN (32) is no state at all.
        if v <= 15 {
            g.push(&PERFORMANCE_STATE, None, v.into());
        }
    }
    if let Some(bits) = r.check("throttle_reasons", dev.current_throttle_reasons())? {
        let bits = bits.bits();
        for (bit, label) in THROTTLE_REASONS {
            g.push(
                &THROTTLE_REASON,
                Some(Cow::Borrowed(label)),
                if bits & bit != 0 { 1.0 } else { 0.0 },
            );
        }
    }
    read_ecc(r, dev, g)?;
    read_fields(r, dev, g)?;
    read_pcie(r, dev, g)?;
    for link in 0..NVLINK_MAX_LINKS {
        // Links are numbered from 0; the first error ends the list (no
        // NVLink at all, or past the GPU's last link).
        match dev.link_wrapper_for(link).is_active() {
            Ok(active) => g.push(
                &NVLINK_ACTIVE,
                Some(Cow::Owned(link.to_string())),
                if active { 1.0 } else { 0.0 },
            ),
            Err(NvmlError::GpuLost) => return Err(ReadError::Lost),
            Err(e) => {
                if link == 0 {
                    r.check::<()>("nvlink_state", Err(e))?;
                }
                break;
            }
        }
    }
    Ok(())
}

fn read_ecc(r: &Reader, dev: &Device, g: &mut GpuReading) -> Result<(), ReadError> {
    let Some(mode) = r.check("ecc_mode", dev.is_ecc_enabled())? else {
        return Ok(());
    };
    g.push(
        &ECC_ENABLED,
        None,
        if mode.currently_enabled { 1.0 } else { 0.0 },
    );
    if !mode.currently_enabled {
        return Ok(());
    }
    for (error, def) in [
        (MemoryError::Corrected, &ECC_CORRECTED),
        (MemoryError::Uncorrected, &ECC_UNCORRECTED),
    ] {
        for (counter, label) in [
            (EccCounter::Volatile, "volatile"),
            (EccCounter::Aggregate, "aggregate"),
        ] {
            if let Some(n) = r.check("ecc_errors", dev.total_ecc_errors(error, counter))? {
                g.push(def, Some(Cow::Borrowed(label)), n as f64);
            }
        }
    }
    Ok(())
}

/// Memory temperature, retired pages and remapped rows come from one
/// nvmlDeviceGetFieldValues call.
fn read_fields(r: &Reader, dev: &Device, g: &mut GpuReading) -> Result<(), ReadError> {
    let ids = [
        FI_MEMORY_TEMP,
        FI_RETIRED_SBE,
        FI_RETIRED_DBE,
        FI_RETIRED_PENDING,
        FI_REMAPPED_COR,
        FI_REMAPPED_UNC,
        FI_REMAPPED_PENDING,
        FI_REMAPPED_FAILURE,
    ];
    let request: Vec<FieldId> = ids.iter().map(|&i| FieldId(i)).collect();
    let Some(samples) = r.check("field_values", dev.field_values_for(&request))? else {
        return Ok(());
    };
    for (id, sample) in ids.iter().zip(samples) {
        let (field, def, label): (&'static str, &'static Def, Option<&'static str>) = match *id {
            FI_MEMORY_TEMP => ("memory_temperature", &MEMORY_TEMPERATURE, None),
            FI_RETIRED_SBE => ("retired_pages_sbe", &RETIRED_PAGES, Some("single_bit_ecc")),
            FI_RETIRED_DBE => ("retired_pages_dbe", &RETIRED_PAGES, Some("double_bit_ecc")),
            FI_RETIRED_PENDING => ("retired_pages_pending", &RETIRED_PAGES_PENDING, None),
            FI_REMAPPED_COR => (
                "remapped_rows_correctable",
                &REMAPPED_ROWS,
                Some("correctable"),
            ),
            FI_REMAPPED_UNC => (
                "remapped_rows_uncorrectable",
                &REMAPPED_ROWS,
                Some("uncorrectable"),
            ),
            FI_REMAPPED_PENDING => ("remapped_rows_pending", &REMAPPED_ROWS_PENDING, None),
            _ => ("remapped_rows_failure", &REMAPPED_ROWS_FAILED, None),
        };
        let value = match sample {
            Ok(s) => s.value,
            Err(e) => Err(e),
        };
        if let Some(v) = r.check(field, value)? {
            let mut v = sample_f64(&v);
            if matches!(
                *id,
                FI_RETIRED_PENDING | FI_REMAPPED_PENDING | FI_REMAPPED_FAILURE
            ) {
                v = if v != 0.0 { 1.0 } else { 0.0 };
            }
            g.push(def, label.map(Cow::Borrowed), v);
        }
    }
    Ok(())
}

fn read_pcie(r: &Reader, dev: &Device, g: &mut GpuReading) -> Result<(), ReadError> {
    for (counter, label) in [
        (PcieUtilCounter::Send, "tx"),
        (PcieUtilCounter::Receive, "rx"),
    ] {
        if let Some(kb) = r.check("pcie_throughput", dev.pcie_throughput(counter))? {
            // NVML's unit is KB/s (1024 bytes).
            g.push(
                &PCIE_THROUGHPUT,
                Some(Cow::Borrowed(label)),
                f64::from(kb) * 1024.0,
            );
        }
    }
    if let Some(v) = r.check("pcie_link_gen", dev.current_pcie_link_gen())? {
        g.push(&PCIE_GEN, None, v.into());
    }
    if let Some(v) = r.check("pcie_max_link_gen", dev.max_pcie_link_gen())? {
        g.push(&PCIE_MAX_GEN, None, v.into());
    }
    if let Some(v) = r.check("pcie_link_width", dev.current_pcie_link_width())? {
        g.push(&PCIE_WIDTH, None, v.into());
    }
    if let Some(v) = r.check("pcie_max_link_width", dev.max_pcie_link_width())? {
        g.push(&PCIE_MAX_WIDTH, None, v.into());
    }
    if let Some(v) = r.check("pcie_replay_counter", dev.pcie_replay_counter())? {
        g.push(&PCIE_REPLAY, None, v.into());
    }
    Ok(())
}

fn read_mig(r: &Reader, dev: &Device, g: &mut GpuReading) -> Result<(), ReadError> {
    let Some(mode) = r.check("mig_mode", dev.mig_mode())? else {
        return Ok(());
    };
    g.push(
        &MIG_ENABLED,
        None,
        if mode.current != 0 { 1.0 } else { 0.0 },
    );
    g.push(
        &MIG_PENDING,
        None,
        if mode.pending != 0 { 1.0 } else { 0.0 },
    );
    if mode.current == 0 {
        return Ok(());
    }
    let Some(max) = r.check("mig_device_count", dev.mig_device_count())? else {
        return Ok(());
    };
    for i in 0..max {
        let mig = match dev.mig_device_by_index(i) {
            Ok(m) => m,
            // Empty slots answer NOT_FOUND.
            Err(NvmlError::NotFound) => continue,
            Err(e) => {
                r.check::<()>("mig_device", Err(e))?;
                continue;
            }
        };
        let mut m = MigReading {
            index: i,
            ..Default::default()
        };
        m.uuid = r.check("mig_uuid", mig.uuid())?.unwrap_or_default();
        m.name = r.check("mig_name", mig.name())?.unwrap_or_default();
        m.memory = r
            .check("mig_memory", mig.memory_info())?
            .map(|mi| (mi.used, mi.free, mi.total));
        g.mig.push(m);
    }
    Ok(())
}

fn read_processes(
    r: &Reader,
    nvml: &Nvml,
    dev: &Device,
    max: usize,
    g: &mut GpuReading,
) -> Result<(), ReadError> {
    let compute = r.check("compute_processes", dev.running_compute_processes())?;
    let graphics = r.check("graphics_processes", dev.running_graphics_processes())?;
    if compute.is_none() && graphics.is_none() {
        return Ok(());
    }
    let mut seen = HashSet::new();
    let mut list: Vec<(u32, Option<u64>)> = compute
        .into_iter()
        .chain(graphics)
        .flatten()
        // A process with both contexts is listed twice with the same memory.
        .filter(|p| seen.insert(p.pid))
        .map(|p| {
            let mem = match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            };
            (p.pid, mem)
        })
        .collect();
    g.push(&PROCESSES, None, list.len() as f64);
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (pid, mem) in list.into_iter().take(max) {
        let Some(memory) = mem else { continue };
        let name = nvml.sys_process_name(pid, 64).unwrap_or_default();
        g.processes.push(ProcessReading { pid, name, memory });
    }
    Ok(())
}
