//! The JSON description of the fake GPUs and its reload-on-change logic.

// Field-by-field docs live in the crate-level schema (src/lib.rs).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// What `nvmlInit_v2` returns (0: success).
    pub init_error: u32,
    /// `nvmlSystemGetDriverVersion`.
    pub driver_version: Option<String>,
    /// `nvmlSystemGetCudaDriverVersion_v2` (e.g. 12040 for 12.4).
    pub cuda_driver_version: Option<i32>,
    /// The GPUs, in index order.
    pub devices: Vec<Device>,
}

/// One GPU. Every optional field left out answers NVML_ERROR_NOT_SUPPORTED.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Device {
    pub name: String,
    pub uuid: String,
    pub pci_bus_id: String,
    pub pci_device_id: u32,
    pub lost: bool,
    pub delay_ms: u64,
    pub errors: BTreeMap<String, u32>,
    pub vbios_version: Option<String>,
    pub compute_mode: Option<u32>,
    pub persistence_mode: Option<bool>,
    pub utilization: Option<Utilization>,
    pub encoder_utilization: Option<u32>,
    pub decoder_utilization: Option<u32>,
    pub memory: Option<Memory>,
    pub temperature: Option<u32>,
    pub memory_temperature: Option<u32>,
    pub temperature_thresholds: BTreeMap<String, u32>,
    pub power_usage_mw: Option<u32>,
    pub power_limit_mw: Option<u32>,
    pub energy_mj: Option<u64>,
    pub clocks_mhz: BTreeMap<String, u32>,
    pub max_clocks_mhz: BTreeMap<String, u32>,
    pub fans: Option<Vec<u32>>,
    pub performance_state: Option<u32>,
    pub throttle_reasons: Option<u64>,
    pub ecc_mode: Option<bool>,
    pub ecc_errors: Option<EccErrors>,
    pub retired_pages: Option<RetiredPages>,
    pub remapped_rows: Option<RemappedRows>,
    pub xid_events: Option<Vec<u64>>,
    pub pcie: Option<Pcie>,
    pub nvlinks: Option<Vec<bool>>,
    pub mig: Option<Mig>,
    pub processes: Option<Vec<Process>>,
    /// GPM metric values by NVML name (`sm_util`, `pcie_tx_per_sec`, ...)
    /// in NVML's units (percent, MiB/s); present = the GPU supports GPM.
    pub gpm: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Utilization {
    pub gpu: u32,
    pub memory: u32,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct Memory {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub reserved: u64,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct EccErrors {
    pub volatile_corrected: u64,
    pub volatile_uncorrected: u64,
    pub aggregate_corrected: u64,
    pub aggregate_uncorrected: u64,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct RetiredPages {
    pub single_bit: u64,
    pub double_bit: u64,
    pub pending: u64,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct RemappedRows {
    pub correctable: u64,
    pub uncorrectable: u64,
    pub pending: u64,
    pub failure: u64,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct Pcie {
    pub tx_kbps: u32,
    pub rx_kbps: u32,
    pub link_gen: u32,
    pub max_link_gen: u32,
    pub link_width: u32,
    pub max_link_width: u32,
    pub replay_counter: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mig {
    pub current: bool,
    pub pending: bool,
    pub instances: Vec<MigInstance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MigInstance {
    pub uuid: String,
    pub name: String,
    pub memory: Option<Memory>,
    pub gpu_instance_id: Option<u32>,
    pub gpm: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct Process {
    pub pid: u32,
    pub name: String,
    pub used_memory: Option<u64>,
    /// "compute" (default), "graphics" or "both".
    pub kind: String,
    /// `nvmlDeviceGetProcessUtilization`; absent = no sample.
    pub utilization: Option<ProcessUtilization>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessUtilization {
    pub sm: u32,
    pub memory: u32,
    pub encoder: u32,
    pub decoder: u32,
    /// The sample's CPU timestamp in µs; absent = the time of the call.
    pub timestamp_us: Option<u64>,
}

impl Process {
    pub fn is_compute(&self) -> bool {
        matches!(self.kind.as_str(), "" | "compute" | "both")
    }
    pub fn is_graphics(&self) -> bool {
        matches!(self.kind.as_str(), "graphics" | "both")
    }
}

/// The environment variable naming the JSON file.
pub const CONFIG_ENV: &str = "FAKE_NVML_CONFIG";

/// What identifies one version of the file.
type Stamp = (SystemTime, u64, u64);

struct Loaded {
    stamp: Option<Stamp>,
    config: Arc<Config>,
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

fn stamp(path: &PathBuf) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// Re-reads the file when its mtime, size or inode changed. A file that
/// does not parse (a test writing it in place) keeps the previous version;
/// the error goes to stderr.
pub fn reload() -> Result<Arc<Config>, String> {
    let path = std::env::var_os(CONFIG_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{CONFIG_ENV} is not set"))?;
    let now = stamp(&path);
    let mut guard = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = guard.as_ref() {
        if l.stamp == now {
            return Ok(l.config.clone());
        }
    }
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading {}: {e}", path.display()))
        .and_then(|text| {
            serde_json::from_str::<Config>(&text)
                .map_err(|e| format!("parsing {}: {e}", path.display()))
        });
    match parsed {
        Ok(config) => {
            let config = Arc::new(config);
            *guard = Some(Loaded {
                stamp: now,
                config: config.clone(),
            });
            Ok(config)
        }
        Err(e) => match guard.as_ref() {
            Some(l) => {
                eprintln!("fake-nvml: {e}; keeping the previous config");
                Ok(l.config.clone())
            }
            None => Err(e),
        },
    }
}

/// The last loaded config without checking the file.
pub fn current() -> Option<Arc<Config>> {
    let guard = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map(|l| l.config.clone())
}
