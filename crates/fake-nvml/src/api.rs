//! The exported NVML functions. Each one answers from the JSON config; a
//! field the config leaves out answers NVML_ERROR_NOT_SUPPORTED, and
//! `errors: {"<function name>": code}` forces any code for one function.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_ulonglong};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nvml_wrapper_sys::bindings::{
    nvmlComputeMode_t, nvmlDevice_t, nvmlEnableState_t, nvmlEventData_t, nvmlEventSet_t,
    nvmlFieldValue_t, nvmlGpmMetricsGet_t, nvmlGpmSample_t, nvmlGpmSupport_t, nvmlMemory_v2_t,
    nvmlPciInfo_t, nvmlProcessInfo_t, nvmlProcessUtilizationSample_t, nvmlPstates_t, nvmlReturn_t,
    nvmlUtilization_t, nvmlValue_t, NVML_GPM_METRICS_GET_VERSION,
};

use crate::codes::*;
use crate::config::{self, Config, Device, MigInstance};
use crate::ffi::{decode_handle, device_handle, get, get_mut, put, put_str, slice_mut, Ret};

/// The XID critical error event bit (nvmlEventTypeXidCriticalError).
const EVENT_XID: u64 = 8;

static INIT_COUNT: AtomicU32 = AtomicU32::new(0);

fn code(r: Ret) -> nvmlReturn_t {
    match r {
        Ok(()) => SUCCESS,
        Err(c) => c,
    }
}

fn initialised() -> Ret {
    if INIT_COUNT.load(Ordering::SeqCst) == 0 {
        Err(UNINITIALIZED)
    } else {
        Ok(())
    }
}

fn supported<T>(v: Option<T>) -> Result<T, u32> {
    v.ok_or(NOT_SUPPORTED)
}

fn init() -> nvmlReturn_t {
    let config = match config::reload() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-nvml: {e}");
            return if std::env::var_os(config::CONFIG_ENV).is_none() {
                DRIVER_NOT_LOADED
            } else {
                UNKNOWN
            };
        }
    };
    if config.init_error != SUCCESS {
        return config.init_error;
    }
    INIT_COUNT.fetch_add(1, Ordering::SeqCst);
    SUCCESS
}

/// `nvmlInit_v2`: reads the config; fails with its `init_error` when set.
#[no_mangle]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    init()
}

/// `nvmlInitWithFlags`: as `nvmlInit_v2`; flags are ignored.
#[no_mangle]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    init()
}

/// `nvmlShutdown`: drops one reference taken by an init.
#[no_mangle]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    match INIT_COUNT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
        Ok(_) => SUCCESS,
        Err(_) => UNINITIALIZED,
    }
}

/// `nvmlErrorString`: a static description of a return code.
#[no_mangle]
pub extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    let s: &'static std::ffi::CStr = match result {
        SUCCESS => c"Success",
        UNINITIALIZED => c"Uninitialized",
        INVALID_ARGUMENT => c"Invalid Argument",
        NOT_SUPPORTED => c"Not Supported",
        NO_PERMISSION => c"Insufficient Permissions",
        NOT_FOUND => c"Not Found",
        INSUFFICIENT_SIZE => c"Insufficient Size",
        DRIVER_NOT_LOADED => c"Driver Not Loaded",
        TIMEOUT => c"Timeout",
        GPU_IS_LOST => c"GPU is lost",
        _ => c"Unknown Error",
    };
    s.as_ptr()
}

/// `nvmlSystemGetDriverVersion`.
#[no_mangle]
pub extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> nvmlReturn_t {
    code(system(|c| {
        put_str(version, length, supported(c.driver_version.as_deref())?)
    }))
}

/// `nvmlSystemGetCudaDriverVersion_v2`.
#[no_mangle]
pub extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    code(system(|c| put(version, supported(c.cuda_driver_version)?)))
}

/// `nvmlSystemGetCudaDriverVersion`.
#[no_mangle]
pub extern "C" fn nvmlSystemGetCudaDriverVersion(version: *mut c_int) -> nvmlReturn_t {
    nvmlSystemGetCudaDriverVersion_v2(version)
}

/// `nvmlSystemGetProcessName`: the name of a process listed under any GPU.
#[no_mangle]
pub extern "C" fn nvmlSystemGetProcessName(
    pid: c_uint,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    code(system(|c| {
        let found = c
            .devices
            .iter()
            .filter_map(|d| d.processes.as_ref())
            .flatten()
            .find(|p| p.pid == pid)
            .ok_or(NOT_FOUND)?;
        // Like NVML, crop to the buffer rather than fail.
        let max = (length as usize).saturating_sub(1);
        let mut end = found.name.len().min(max);
        while !found.name.is_char_boundary(end) {
            end -= 1;
        }
        put_str(name, length, &found.name[..end])
    }))
}

fn system(f: impl FnOnce(&Config) -> Ret) -> Ret {
    initialised()?;
    let config = config::current().ok_or(UNINITIALIZED)?;
    f(&config)
}

/// `nvmlDeviceGetCount_v2`: re-reads the config file when it changed.
#[no_mangle]
pub extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let config = config::reload().map_err(|_| UNKNOWN)?;
        put(count, config.devices.len() as c_uint)
    })())
}

/// `nvmlDeviceGetHandleByIndex_v2`.
#[no_mangle]
pub extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let config = config::reload().map_err(|_| UNKNOWN)?;
        let d = config.devices.get(index as usize).ok_or(INVALID_ARGUMENT)?;
        if d.lost {
            return Err(GPU_IS_LOST);
        }
        put(device, device_handle(index as usize, None))
    })())
}

/// What a device handle resolved to.
struct Target<'a> {
    index: usize,
    gpu: &'a Device,
    mig: Option<&'a MigInstance>,
}

impl<'a> Target<'a> {
    /// The physical GPU; MIG device handles do not answer GPU-wide queries.
    fn gpu(&self) -> Result<&'a Device, u32> {
        match self.mig {
            None => Ok(self.gpu),
            Some(_) => Err(NOT_SUPPORTED),
        }
    }
}

/// Resolves a handle and applies the per-device behaviours: lost GPUs,
/// delays and forced error codes.
fn on_device(handle: nvmlDevice_t, function: &str, f: impl FnOnce(Target) -> Ret) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let config = config::current().ok_or(UNINITIALIZED)?;
        let (index, mig) = decode_handle(handle).ok_or(INVALID_ARGUMENT)?;
        let gpu = config.devices.get(index).ok_or(INVALID_ARGUMENT)?;
        if gpu.lost {
            return Err(GPU_IS_LOST);
        }
        if gpu.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(gpu.delay_ms));
        }
        if let Some(&c) = gpu.errors.get(function) {
            return Err(c);
        }
        let mig = match mig {
            None => None,
            Some(m) => Some(
                gpu.mig
                    .as_ref()
                    .and_then(|g| g.instances.get(m))
                    .ok_or(INVALID_ARGUMENT)?,
            ),
        };
        f(Target { index, gpu, mig })
    })())
}

macro_rules! device_fn {
    ($name:ident ( $($arg:ident : $ty:ty),* ) |$t:ident| $body:expr) => {
        #[doc = concat!("`", stringify!($name), "`, answered from the config.")]
        #[no_mangle]
        pub extern "C" fn $name(device: nvmlDevice_t, $($arg: $ty),*) -> nvmlReturn_t {
            on_device(device, stringify!($name), |$t: Target| $body)
        }
    };
}

device_fn!(nvmlDeviceGetIndex(index: *mut c_uint) |t| put(index, t.index as c_uint));

device_fn!(nvmlDeviceGetName(name: *mut c_char, length: c_uint) |t| {
    put_str(name, length, t.mig.map_or(&t.gpu.name, |m| &m.name))
});

device_fn!(nvmlDeviceGetUUID(uuid: *mut c_char, length: c_uint) |t| {
    put_str(uuid, length, t.mig.map_or(&t.gpu.uuid, |m| &m.uuid))
});

device_fn!(nvmlDeviceGetPciInfo_v3(pci: *mut nvmlPciInfo_t) |t| {
    let d = t.gpu()?;
    let mut info = nvmlPciInfo_t {
        busIdLegacy: [0; 16],
        domain: 0,
        bus: 0,
        device: 0,
        pciDeviceId: d.pci_device_id,
        pciSubSystemId: 0,
        busId: [0; 32],
    };
    let id = d.pci_bus_id.as_bytes();
    if id.len() >= info.busId.len() {
        return Err(UNKNOWN);
    }
    for (dst, &b) in info.busId.iter_mut().zip(id) {
        *dst = b as c_char;
    }
    put(pci, info)
});

device_fn!(nvmlDeviceGetVbiosVersion(version: *mut c_char, length: c_uint) |t| {
    put_str(version, length, supported(t.gpu()?.vbios_version.as_deref())?)
});

device_fn!(nvmlDeviceGetComputeMode(mode: *mut nvmlComputeMode_t) |t| {
    put(mode, supported(t.gpu()?.compute_mode)?)
});

device_fn!(nvmlDeviceGetPersistenceMode(mode: *mut nvmlEnableState_t) |t| {
    put(mode, supported(t.gpu()?.persistence_mode)? as nvmlEnableState_t)
});

device_fn!(nvmlDeviceGetUtilizationRates(util: *mut nvmlUtilization_t) |t| {
    let u = supported(t.gpu()?.utilization)?;
    put(util, nvmlUtilization_t { gpu: u.gpu, memory: u.memory })
});

device_fn!(nvmlDeviceGetEncoderUtilization(util: *mut c_uint, period_us: *mut c_uint) |t| {
    put(util, supported(t.gpu()?.encoder_utilization)?)?;
    put(period_us, 167_000)
});

device_fn!(nvmlDeviceGetDecoderUtilization(util: *mut c_uint, period_us: *mut c_uint) |t| {
    put(util, supported(t.gpu()?.decoder_utilization)?)?;
    put(period_us, 167_000)
});

device_fn!(nvmlDeviceGetMemoryInfo_v2(memory: *mut nvmlMemory_v2_t) |t| {
    let m = match t.mig {
        Some(mig) => supported(mig.memory)?,
        None => supported(t.gpu.memory)?,
    };
    let version = get(memory)?.version;
    put(memory, nvmlMemory_v2_t { version, total: m.total, reserved: m.reserved, free: m.free, used: m.used })
});

device_fn!(nvmlDeviceGetTemperature(sensor: c_uint, temp: *mut c_uint) |t| {
    if sensor != 0 {
        return Err(INVALID_ARGUMENT);
    }
    put(temp, supported(t.gpu()?.temperature)?)
});

device_fn!(nvmlDeviceGetTemperatureThreshold(kind: c_uint, temp: *mut c_uint) |t| {
    let key = match kind {
        0 => "shutdown",
        1 => "slowdown",
        2 => "memory_max",
        3 => "gpu_max",
        _ => return Err(NOT_SUPPORTED),
    };
    put(temp, *supported(t.gpu()?.temperature_thresholds.get(key))?)
});

device_fn!(nvmlDeviceGetPowerUsage(power_mw: *mut c_uint) |t| put(power_mw, supported(t.gpu()?.power_usage_mw)?));

device_fn!(nvmlDeviceGetEnforcedPowerLimit(limit_mw: *mut c_uint) |t| put(limit_mw, supported(t.gpu()?.power_limit_mw)?));

device_fn!(nvmlDeviceGetPowerManagementLimit(limit_mw: *mut c_uint) |t| put(limit_mw, supported(t.gpu()?.power_limit_mw)?));

device_fn!(nvmlDeviceGetTotalEnergyConsumption(energy_mj: *mut c_ulonglong) |t| put(energy_mj, supported(t.gpu()?.energy_mj)?));

fn clock_key(kind: c_uint) -> Result<&'static str, u32> {
    Ok(match kind {
        0 => "graphics",
        1 => "sm",
        2 => "memory",
        3 => "video",
        _ => return Err(INVALID_ARGUMENT),
    })
}

device_fn!(nvmlDeviceGetClockInfo(kind: c_uint, mhz: *mut c_uint) |t| {
    put(mhz, *supported(t.gpu()?.clocks_mhz.get(clock_key(kind)?))?)
});

device_fn!(nvmlDeviceGetMaxClockInfo(kind: c_uint, mhz: *mut c_uint) |t| {
    put(mhz, *supported(t.gpu()?.max_clocks_mhz.get(clock_key(kind)?))?)
});

device_fn!(nvmlDeviceGetNumFans(count: *mut c_uint) |t| put(count, supported(t.gpu()?.fans.as_ref())?.len() as c_uint));

device_fn!(nvmlDeviceGetFanSpeed_v2(fan: c_uint, speed: *mut c_uint) |t| {
    let fans = supported(t.gpu()?.fans.as_ref())?;
    put(speed, *fans.get(fan as usize).ok_or(INVALID_ARGUMENT)?)
});

device_fn!(nvmlDeviceGetFanSpeed(speed: *mut c_uint) |t| {
    put(speed, *supported(t.gpu()?.fans.as_ref().and_then(|f| f.first()))?)
});

device_fn!(nvmlDeviceGetPerformanceState(state: *mut nvmlPstates_t) |t| put(state, supported(t.gpu()?.performance_state)?));

device_fn!(nvmlDeviceGetCurrentClocksThrottleReasons(reasons: *mut c_ulonglong) |t| put(reasons, supported(t.gpu()?.throttle_reasons)?));

device_fn!(nvmlDeviceGetCurrentClocksEventReasons(reasons: *mut c_ulonglong) |t| put(reasons, supported(t.gpu()?.throttle_reasons)?));

device_fn!(nvmlDeviceGetEccMode(current: *mut nvmlEnableState_t, pending: *mut nvmlEnableState_t) |t| {
    let on = supported(t.gpu()?.ecc_mode)? as nvmlEnableState_t;
    put(current, on)?;
    put(pending, on)
});

device_fn!(nvmlDeviceGetTotalEccErrors(error_type: c_uint, counter_type: c_uint, count: *mut c_ulonglong) |t| {
    let e = supported(t.gpu()?.ecc_errors)?;
    let v = match (error_type, counter_type) {
        (0, 0) => e.volatile_corrected,
        (1, 0) => e.volatile_uncorrected,
        (0, 1) => e.aggregate_corrected,
        (1, 1) => e.aggregate_uncorrected,
        _ => return Err(INVALID_ARGUMENT),
    };
    put(count, v)
});

device_fn!(nvmlDeviceGetPcieThroughput(counter: c_uint, kbps: *mut c_uint) |t| {
    let p = supported(t.gpu()?.pcie)?;
    put(kbps, match counter {
        0 => p.tx_kbps,
        1 => p.rx_kbps,
        _ => return Err(INVALID_ARGUMENT),
    })
});

device_fn!(nvmlDeviceGetCurrPcieLinkGeneration(v: *mut c_uint) |t| put(v, supported(t.gpu()?.pcie)?.link_gen));
device_fn!(nvmlDeviceGetMaxPcieLinkGeneration(v: *mut c_uint) |t| put(v, supported(t.gpu()?.pcie)?.max_link_gen));
device_fn!(nvmlDeviceGetCurrPcieLinkWidth(v: *mut c_uint) |t| put(v, supported(t.gpu()?.pcie)?.link_width));
device_fn!(nvmlDeviceGetMaxPcieLinkWidth(v: *mut c_uint) |t| put(v, supported(t.gpu()?.pcie)?.max_link_width));
device_fn!(nvmlDeviceGetPcieReplayCounter(v: *mut c_uint) |t| put(v, supported(t.gpu()?.pcie)?.replay_counter));

device_fn!(nvmlDeviceGetNvLinkState(link: c_uint, active: *mut nvmlEnableState_t) |t| {
    let links = supported(t.gpu()?.nvlinks.as_ref())?;
    put(active, *links.get(link as usize).ok_or(INVALID_ARGUMENT)? as nvmlEnableState_t)
});

device_fn!(nvmlDeviceGetMigMode(current: *mut c_uint, pending: *mut c_uint) |t| {
    let m = supported(t.gpu()?.mig.as_ref())?;
    put(current, m.current as c_uint)?;
    put(pending, m.pending as c_uint)
});

device_fn!(nvmlDeviceGetMaxMigDeviceCount(count: *mut c_uint) |t| {
    put(count, supported(t.gpu()?.mig.as_ref())?.instances.len() as c_uint)
});

device_fn!(nvmlDeviceGetMigDeviceHandleByIndex(index: c_uint, mig: *mut nvmlDevice_t) |t| {
    let m = supported(t.gpu()?.mig.as_ref())?;
    if !m.current {
        return Err(INVALID_ARGUMENT);
    }
    if index as usize >= m.instances.len() {
        return Err(NOT_FOUND);
    }
    put(mig, device_handle(t.index, Some(index as usize)))
});

device_fn!(nvmlDeviceIsMigDeviceHandle(is_mig: *mut c_uint) |t| put(is_mig, t.mig.is_some() as c_uint));

device_fn!(nvmlDeviceGetGpuInstanceId(id: *mut c_uint) |t| {
    let mig = t.mig.ok_or(NOT_SUPPORTED)?;
    put(id, supported(mig.gpu_instance_id)?)
});

/// Field values: memory temperature, retired pages, remapped rows and the
/// PCIe replay counter. Unknown or unconfigured fields get
/// NVML_ERROR_NOT_SUPPORTED in their own entry; the call succeeds.
fn field_value(d: &Device, id: u32) -> Result<(u32, nvmlValue_t), u32> {
    const UINT: u32 = 1;
    const ULL: u32 = 3;
    let ull = |v: u64| Ok((ULL, nvmlValue_t { ullVal: v }));
    let uint = |v: u64| Ok((UINT, nvmlValue_t { uiVal: v as c_uint }));
    match id {
        29 => ull(supported(d.retired_pages)?.single_bit),
        30 => ull(supported(d.retired_pages)?.double_bit),
        31 => ull(supported(d.retired_pages)?.pending),
        82 => uint(supported(d.memory_temperature)?.into()),
        94 => uint(supported(d.pcie)?.replay_counter.into()),
        142 => uint(supported(d.remapped_rows)?.correctable),
        143 => uint(supported(d.remapped_rows)?.uncorrectable),
        144 => uint(supported(d.remapped_rows)?.pending),
        145 => uint(supported(d.remapped_rows)?.failure),
        _ => Err(NOT_SUPPORTED),
    }
}

device_fn!(nvmlDeviceGetFieldValues(count: c_int, values: *mut nvmlFieldValue_t) |t| {
    let d = t.gpu()?;
    let n = usize::try_from(count).map_err(|_| INVALID_ARGUMENT)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    for fv in slice_mut(values, n)? {
        fv.timestamp = now;
        fv.latencyUsec = 0;
        match field_value(d, fv.fieldId) {
            Ok((kind, value)) => {
                fv.valueType = kind;
                fv.value = value;
                fv.nvmlReturn = SUCCESS;
            }
            Err(c) => fv.nvmlReturn = c,
        }
    }
    Ok(())
});

fn processes(t: Target, count: *mut c_uint, infos: *mut nvmlProcessInfo_t, graphics: bool) -> Ret {
    let list: Vec<_> = supported(t.gpu()?.processes.as_ref())?
        .iter()
        .filter(|p| {
            if graphics {
                p.is_graphics()
            } else {
                p.is_compute()
            }
        })
        .collect();
    let room = get(count)? as usize;
    put(count, list.len() as c_uint)?;
    if list.is_empty() {
        return Ok(());
    }
    if infos.is_null() || room < list.len() {
        return Err(INSUFFICIENT_SIZE);
    }
    for (slot, p) in slice_mut(infos, list.len())?.iter_mut().zip(list) {
        *slot = nvmlProcessInfo_t {
            pid: p.pid,
            // NVML_VALUE_NOT_AVAILABLE when the driver cannot tell.
            usedGpuMemory: p.used_memory.unwrap_or(u64::MAX),
            gpuInstanceId: u32::MAX,
            computeInstanceId: u32::MAX,
        };
    }
    Ok(())
}

device_fn!(nvmlDeviceGetComputeRunningProcesses_v3(count: *mut c_uint, infos: *mut nvmlProcessInfo_t) |t| {
    processes(t, count, infos, false)
});

device_fn!(nvmlDeviceGetGraphicsRunningProcesses_v3(count: *mut c_uint, infos: *mut nvmlProcessInfo_t) |t| {
    processes(t, count, infos, true)
});

device_fn!(nvmlDeviceGetProcessUtilization(samples: *mut nvmlProcessUtilizationSample_t, count: *mut c_uint, last_seen: c_ulonglong) |t| {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let list: Vec<nvmlProcessUtilizationSample_t> = supported(t.gpu()?.processes.as_ref())?
        .iter()
        .filter_map(|p| {
            let u = p.utilization?;
            let stamp = u.timestamp_us.unwrap_or(now);
            (stamp > last_seen).then_some(nvmlProcessUtilizationSample_t {
                pid: p.pid,
                timeStamp: stamp,
                smUtil: u.sm,
                memUtil: u.memory,
                encUtil: u.encoder,
                decUtil: u.decoder,
            })
        })
        .collect();
    // Like NVML: no sample newer than `last_seen` is NOT_FOUND.
    if list.is_empty() {
        return Err(NOT_FOUND);
    }
    let room = get(count)? as usize;
    put(count, list.len() as c_uint)?;
    if samples.is_null() || room < list.len() {
        return Err(INSUFFICIENT_SIZE);
    }
    slice_mut(samples, list.len())?.copy_from_slice(&list);
    Ok(())
});

// ---- GPM ---------------------------------------------------------------------

/// NVML's GPM metric ids and the names the config uses for them.
const GPM_METRICS: [(u32, &str); 15] = [
    (1, "graphics_util"),
    (2, "sm_util"),
    (3, "sm_occupancy"),
    (5, "any_tensor_util"),
    (6, "dfma_tensor_util"),
    (7, "hmma_tensor_util"),
    (9, "imma_tensor_util"),
    (10, "dram_bw_util"),
    (11, "fp64_util"),
    (12, "fp32_util"),
    (13, "fp16_util"),
    (20, "pcie_tx_per_sec"),
    (21, "pcie_rx_per_sec"),
    (60, "nvlink_total_rx_per_sec"),
    (61, "nvlink_total_tx_per_sec"),
];

/// What a GPM sample holds: whose it is, when it was taken (a sequence
/// number), and the config's values at that time.
#[derive(Clone)]
struct GpmSampleData {
    source: (usize, Option<u32>),
    taken: u64,
    values: BTreeMap<String, f64>,
}

/// Allocated samples by handle value; `None` until a sample is taken.
static GPM_SAMPLES: Mutex<BTreeMap<usize, Option<GpmSampleData>>> = Mutex::new(BTreeMap::new());
static GPM_NEXT: AtomicUsize = AtomicUsize::new(1);

/// `nvmlGpmSampleAlloc`.
#[no_mangle]
pub extern "C" fn nvmlGpmSampleAlloc(sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let id = GPM_NEXT.fetch_add(1, Ordering::SeqCst);
        lock(&GPM_SAMPLES).insert(id, None);
        put(sample, std::ptr::without_provenance_mut(id))
    })())
}

/// `nvmlGpmSampleFree`.
#[no_mangle]
pub extern "C" fn nvmlGpmSampleFree(sample: nvmlGpmSample_t) -> nvmlReturn_t {
    match lock(&GPM_SAMPLES).remove(&sample.addr()) {
        Some(_) => SUCCESS,
        None => INVALID_ARGUMENT,
    }
}

fn take_sample(sample: nvmlGpmSample_t, data: GpmSampleData) -> Ret {
    let mut samples = lock(&GPM_SAMPLES);
    let slot = samples.get_mut(&sample.addr()).ok_or(INVALID_ARGUMENT)?;
    *slot = Some(data);
    Ok(())
}

device_fn!(nvmlGpmQueryDeviceSupport(support: *mut nvmlGpmSupport_t) |t| {
    let d = t.gpu()?;
    let version = get(support)?.version;
    put(support, nvmlGpmSupport_t { version, isSupportedDevice: d.gpm.is_some() as c_uint })
});

device_fn!(nvmlGpmSampleGet(sample: nvmlGpmSample_t) |t| {
    let values = supported(t.gpu()?.gpm.clone())?;
    take_sample(sample, GpmSampleData {
        source: (t.index, None),
        taken: GPM_NEXT.fetch_add(1, Ordering::SeqCst) as u64,
        values,
    })
});

device_fn!(nvmlGpmMigSampleGet(gpu_instance_id: c_uint, sample: nvmlGpmSample_t) |t| {
    let mig = supported(t.gpu()?.mig.as_ref())?;
    let instance = mig
        .instances
        .iter()
        .find(|m| m.gpu_instance_id == Some(gpu_instance_id))
        .ok_or(INVALID_ARGUMENT)?;
    take_sample(sample, GpmSampleData {
        source: (t.index, Some(gpu_instance_id)),
        taken: GPM_NEXT.fetch_add(1, Ordering::SeqCst) as u64,
        values: supported(instance.gpm.clone())?,
    })
});

/// `nvmlGpmMetricsGet`: the values of the later sample, which the config
/// gives as the activity since the sample before. Both samples must be
/// taken, of the same GPU (or GPU instance), the second after the first.
#[no_mangle]
pub extern "C" fn nvmlGpmMetricsGet(request: *mut nvmlGpmMetricsGet_t) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let request = get_mut(request)?;
        if request.version != NVML_GPM_METRICS_GET_VERSION {
            return Err(INVALID_ARGUMENT);
        }
        let samples = lock(&GPM_SAMPLES);
        let taken = |s: nvmlGpmSample_t| samples.get(&s.addr()).cloned().flatten();
        let (first, second) = match (taken(request.sample1), taken(request.sample2)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(INVALID_ARGUMENT),
        };
        if first.source != second.source || second.taken <= first.taken {
            return Err(INVALID_ARGUMENT);
        }
        let n = request.numMetrics as usize;
        let metrics = request.metrics.get_mut(..n).ok_or(INVALID_ARGUMENT)?;
        for m in metrics {
            let name = GPM_METRICS
                .iter()
                .find(|(id, _)| *id == m.metricId)
                .map(|(_, n)| *n);
            match name.and_then(|n| second.values.get(n)) {
                Some(&v) => {
                    m.value = v;
                    m.nvmlReturn = SUCCESS;
                }
                None => m.nvmlReturn = NOT_SUPPORTED,
            }
            m.metricInfo.shortName = std::ptr::null_mut();
            m.metricInfo.longName = std::ptr::null_mut();
            m.metricInfo.unit = std::ptr::null_mut();
        }
        Ok(())
    })())
}

device_fn!(nvmlDeviceGetSupportedEventTypes(types: *mut c_ulonglong) |t| {
    supported(t.gpu()?.xid_events.as_ref())?;
    put(types, EVENT_XID)
});

// ---- events ----------------------------------------------------------------

/// Registered `(gpu index, event types)` per event set id.
static EVENT_SETS: Mutex<BTreeMap<usize, Vec<(usize, u64)>>> = Mutex::new(BTreeMap::new());
static NEXT_SET: AtomicUsize = AtomicUsize::new(1);
/// How many of each GPU's `xid_events` (by UUID) were delivered. Kept for
/// the life of the process so a new event set (after a re-init) does not
/// see old events again.
static XID_DELIVERED: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `nvmlEventSetCreate`.
#[no_mangle]
pub extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let id = NEXT_SET.fetch_add(1, Ordering::SeqCst);
        lock(&EVENT_SETS).insert(id, Vec::new());
        put(set, std::ptr::without_provenance_mut(id))
    })())
}

/// `nvmlEventSetFree`.
#[no_mangle]
pub extern "C" fn nvmlEventSetFree(set: nvmlEventSet_t) -> nvmlReturn_t {
    match lock(&EVENT_SETS).remove(&set.addr()) {
        Some(_) => SUCCESS,
        None => INVALID_ARGUMENT,
    }
}

device_fn!(nvmlDeviceRegisterEvents(types: c_ulonglong, set: nvmlEventSet_t) |t| {
    supported(t.gpu()?.xid_events.as_ref())?;
    let mut sets = lock(&EVENT_SETS);
    let entry = sets.get_mut(&set.addr()).ok_or(INVALID_ARGUMENT)?;
    entry.push((t.index, types & EVENT_XID));
    Ok(())
});

/// The next undelivered XID event of any GPU registered in `set`.
fn next_event(config: &Arc<Config>, set: usize) -> Result<Option<nvmlEventData_t>, u32> {
    let sets = lock(&EVENT_SETS);
    let registered = sets.get(&set).ok_or(INVALID_ARGUMENT)?;
    let mut delivered = lock(&XID_DELIVERED);
    for &(index, types) in registered {
        let Some(d) = config.devices.get(index) else {
            continue;
        };
        let Some(events) = d.xid_events.as_ref() else {
            continue;
        };
        if types & EVENT_XID == 0 || d.lost {
            continue;
        }
        if !delivered.contains_key(&d.uuid) {
            delivered.insert(d.uuid.clone(), 0);
        }
        let Some(cursor) = delivered.get_mut(&d.uuid) else {
            continue;
        };
        // A rewritten, shorter list starts over from its current end.
        if *cursor > events.len() {
            *cursor = events.len();
        }
        if let Some(&xid) = events.get(*cursor) {
            *cursor += 1;
            return Ok(Some(nvmlEventData_t {
                device: device_handle(index, None),
                eventType: EVENT_XID,
                eventData: xid,
                gpuInstanceId: u32::MAX,
                computeInstanceId: u32::MAX,
            }));
        }
    }
    Ok(None)
}

/// `nvmlEventSetWait_v2`: re-reads the config and returns the next XID
/// event listed there that was not delivered yet, else waits up to the
/// timeout (polling the file) and answers NVML_ERROR_TIMEOUT.
#[no_mangle]
pub extern "C" fn nvmlEventSetWait_v2(
    set: nvmlEventSet_t,
    data: *mut nvmlEventData_t,
    timeout_ms: c_uint,
) -> nvmlReturn_t {
    code((|| {
        initialised()?;
        let until = Instant::now() + Duration::from_millis(timeout_ms.into());
        loop {
            let config = config::reload().map_err(|_| UNKNOWN)?;
            if let Some(event) = next_event(&config, set.addr())? {
                return put(data, event);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TIMEOUT);
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    })())
}
