//! Reads one GPU through nvml-wrapper into a [`GpuReading`].
//!
//! A field the GPU does not support (NVML_ERROR_NOT_SUPPORTED, or a function
//! the installed driver lacks) is left out and logged once at debug; any
//! other error on a field is logged once at warn and the field left out.
//! NVML_ERROR_GPU_IS_LOST stops the read: the GPU is reported lost. A read
//! still going at the scrape deadline stops after the call in progress
//! ([`ReadError::Late`]), so a slow GPU frees its reading slot for the next
//! scrape instead of finishing a reading nobody waits for.
//!
//! Besides the fixed fields, a read takes the GPU's GPM sample (and its MIG
//! GPU instances', see [`crate::gpm`]) and, with `--collector.processes`,
//! per-process memory and utilisation (the utilisation samples NVML took
//! since the last one seen for that GPU).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use nvml_wrapper::enum_wrappers::device::{
    Clock, ComputeMode, EccCounter, MemoryError, PcieUtilCounter, TemperatureSensor,
    TemperatureThreshold,
};
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::GpmSample;
use nvml_wrapper::struct_wrappers::device::ProcessUtilizationSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use oxmon_core::sync::LockExt;
use oxmon_sys::nvml as nvml_extra;

use crate::gpm::{self, Previous, Session, Source};
use crate::metrics::*;

/// How one GPU read ended when it produced no reading.
#[derive(Debug, PartialEq)]
pub enum ReadError {
    /// NVML_ERROR_GPU_IS_LOST.
    Lost,
    /// The device handle or its identity could not be read.
    Failed(String),
    /// The scrape deadline passed during the read; it stopped there.
    Late,
}

/// Options for a read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Read per-process memory and utilisation.
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

/// Each GPU's UUID and name as last read, kept as soon as a read gets
/// them, so a GPU whose read then runs out of time (or that is lost later)
/// is still labelled.
#[derive(Default)]
pub struct Identities(Mutex<HashMap<u32, (String, String)>>);

impl Identities {
    fn remember(&self, index: u32, uuid: &str, name: &str) {
        let mut seen = self.0.lock_unpoisoned();
        let fresh = seen.get(&index).is_none_or(|(u, n)| u != uuid || n != name);
        if fresh {
            seen.insert(index, (uuid.to_string(), name.to_string()));
        }
    }

    /// `(uuid, name)` of GPU `index` as last seen; empty when never seen.
    pub fn last_seen(&self, index: u32) -> (String, String) {
        let seen = self.0.lock_unpoisoned();
        seen.get(&index).cloned().unwrap_or_default()
    }
}

struct Reader<'a> {
    uuid: String,
    index: u32,
    logged: &'a Logged,
    deadline: Instant,
}

impl Reader<'_> {
    /// `Ok(None)` for an absent field, `Err(Lost)` or `Err(Late)` to stop.
    fn check<T>(
        &self,
        field: &'static str,
        r: Result<T, NvmlError>,
    ) -> Result<Option<T>, ReadError> {
        if Instant::now() >= self.deadline {
            return Err(ReadError::Late);
        }
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

/// Each GPU's newest process utilisation sample timestamp (µs), by UUID:
/// NVML then answers only samples taken since.
#[derive(Default)]
pub struct LastSeen(Mutex<HashMap<String, u64>>);

impl LastSeen {
    fn get(&self, uuid: &str) -> u64 {
        self.0.lock_unpoisoned().get(uuid).copied().unwrap_or(0)
    }

    fn set(&self, uuid: &str, stamp: u64) {
        self.0.lock_unpoisoned().insert(uuid.to_string(), stamp);
    }
}

/// Where a GPU read runs: what it logs once, where it keeps identities and
/// sample timestamps, and when it must stop.
pub struct ReadContext<'a> {
    /// Fields already logged.
    pub logged: &'a Logged,
    /// UUIDs and names, remembered as soon as read.
    pub identities: &'a Identities,
    /// Process utilisation timestamps.
    pub last_seen: &'a LastSeen,
    /// The scrape deadline.
    pub deadline: Instant,
}

/// Reads GPU `index` through `session`, taking its GPM samples there.
pub fn read_gpu(
    session: &Session,
    index: u32,
    opts: ReadOptions,
    cx: &ReadContext<'_>,
) -> Result<GpuReading, ReadError> {
    session.with_dependent(|nvml, previous| read_with(nvml, previous, index, opts, cx))
}

fn read_with<'n>(
    nvml: &'n Nvml,
    previous: &Previous<'n>,
    index: u32,
    opts: ReadOptions,
    cx: &ReadContext<'_>,
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
    cx.identities.remember(index, &uuid, &name);
    let r = Reader {
        uuid: uuid.clone(),
        index,
        logged: cx.logged,
        deadline: cx.deadline,
    };
    let mut g = GpuReading {
        index,
        uuid,
        name,
        ..Default::default()
    };
    read_identity(&r, &dev, &mut g)?;
    read_values(&r, &dev, &mut g)?;
    let gpm = r.check("gpm_support", dev.gpm_support())? == Some(true);
    if gpm {
        let source = (g.uuid.clone(), None);
        let values = read_gpm(&r, previous, source, || dev.gpm_sample())?;
        g.values.extend(values);
    }
    read_mig(&r, &dev, gpm.then_some(previous), &mut g)?;
    if opts.processes {
        read_processes(&r, nvml, &dev, opts.processes_max, cx.last_seen, &mut g)?;
    }
    Ok(g)
}

/// One GPM step for `source` (see [`gpm::step`]): the values between the
/// previous sample and a new one, none on the first.
fn read_gpm<'n>(
    r: &Reader,
    previous: &Previous<'n>,
    source: Source,
    take: impl FnOnce() -> Result<GpmSample<'n>, NvmlError>,
) -> Result<Vec<Value>, ReadError> {
    let Some(Some(results)) = r.check("gpm_sample", gpm::step(previous, source, take))? else {
        return Ok(Vec::new());
    };
    let mut values = Vec::new();
    for (result, metric) in results.into_iter().zip(&gpm::METRICS) {
        if let Some(v) = r.check(metric.field, result)? {
            values.push(Value {
                def: metric.def,
                label: metric.label.map(Cow::Borrowed),
                value: v,
            });
        }
    }
    Ok(values)
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

/// MIG mode, and each instance's memory, GPU instance ID and (with
/// `previous`, when the GPU supports GPM) its GPM metrics.
fn read_mig<'n>(
    r: &Reader,
    dev: &Device<'n>,
    previous: Option<&Previous<'n>>,
    g: &mut GpuReading,
) -> Result<(), ReadError> {
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
        m.gpu_instance_id = r.check("mig_gpu_instance_id", nvml_extra::gpu_instance_id(&mig))?;
        if let (Some(previous), Some(id)) = (previous, m.gpu_instance_id) {
            let source = (g.uuid.clone(), Some(id));
            m.gpm = read_gpm(r, previous, source, || dev.gpm_mig_sample(id))?;
        }
        g.mig.push(m);
    }
    Ok(())
}

fn read_processes(
    r: &Reader,
    nvml: &Nvml,
    dev: &Device,
    max: usize,
    last_seen: &LastSeen,
    g: &mut GpuReading,
) -> Result<(), ReadError> {
    let mut names = ProcessNames::new(nvml);
    read_process_memory(r, dev, max, &mut names, g)?;
    read_process_utilization(r, dev, max, last_seen, &mut names, g)
}

/// Process names from `nvmlSystemGetProcessName`, looked up once per pid
/// and read, so memory and utilisation series carry the same name.
struct ProcessNames<'a> {
    nvml: &'a Nvml,
    known: HashMap<u32, String>,
}

impl<'a> ProcessNames<'a> {
    fn new(nvml: &'a Nvml) -> Self {
        ProcessNames {
            nvml,
            known: HashMap::new(),
        }
    }

    fn of(&mut self, pid: u32) -> String {
        let nvml = self.nvml;
        self.known
            .entry(pid)
            .or_insert_with(|| nvml.sys_process_name(pid, 64).unwrap_or_default())
            .clone()
    }
}

fn read_process_memory(
    r: &Reader,
    dev: &Device,
    max: usize,
    names: &mut ProcessNames,
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
        let name = names.of(pid);
        g.processes.push(ProcessReading { pid, name, memory });
    }
    Ok(())
}

/// Per-process utilisation samples NVML took since the last one this GPU
/// reported: the newest per process, busiest SM users first, at most `max`.
fn read_process_utilization(
    r: &Reader,
    dev: &Device,
    max: usize,
    last_seen: &LastSeen,
    names: &mut ProcessNames,
    g: &mut GpuReading,
) -> Result<(), ReadError> {
    let since = last_seen.get(&g.uuid);
    let samples = match dev.process_utilization_stats(since) {
        // No sample newer than `since`.
        Err(NvmlError::NotFound) => Vec::new(),
        other => match r.check("process_utilization", other)? {
            Some(samples) => samples,
            None => return Ok(()),
        },
    };
    let mut newest: HashMap<u32, ProcessUtilizationSample> = HashMap::new();
    for s in samples {
        match newest.get(&s.pid) {
            Some(seen) if seen.timestamp >= s.timestamp => {}
            _ => {
                newest.insert(s.pid, s);
            }
        }
    }
    if let Some(stamp) = newest.values().map(|s| s.timestamp).max() {
        last_seen.set(&g.uuid, stamp);
    }
    let mut list: Vec<ProcessUtilizationSample> = newest.into_values().collect();
    list.sort_by(|a, b| b.sm_util.cmp(&a.sm_util).then(a.pid.cmp(&b.pid)));
    for s in list.into_iter().take(max) {
        g.process_utilization.push(ProcessUtilization {
            pid: s.pid,
            name: names.of(s.pid),
            sm: f64::from(s.sm_util) / 100.0,
            memory: f64::from(s.mem_util) / 100.0,
            encoder: f64::from(s.enc_util) / 100.0,
            decoder: f64::from(s.dec_util) / 100.0,
        });
    }
    Ok(())
}
