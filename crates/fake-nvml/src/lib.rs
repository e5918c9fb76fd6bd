//! # oxmon-fake-nvml
//!
//! A stand-in for `libnvidia-ml.so.1` so oxmon-gpu can be tested, end to end
//! through the real `nvml-wrapper`, on machines without a GPU. Build it with
//! `cargo build -p oxmon-fake-nvml`; the library is
//! `target/<profile>/libnvidia_ml.so`. Point the exporter at it with
//! `--nvml.library-path` and describe the GPUs in a JSON file named by the
//! `FAKE_NVML_CONFIG` environment variable.
//!
//! ## Behaviour
//! - The file is re-read when its mtime, size or inode changes, checked in
//!   `nvmlInit_v2`, `nvmlDeviceGetCount_v2`, `nvmlDeviceGetHandleByIndex_v2`
//!   and `nvmlEventSetWait_v2` (every scrape calls the first two). Write it
//!   atomically (temp file + rename): a file that does not parse keeps the
//!   previous version (the error goes to stderr).
//! - `FAKE_NVML_CONFIG` unset: `nvmlInit_v2` answers
//!   NVML_ERROR_DRIVER_NOT_LOADED (9). Unreadable or invalid at init:
//!   NVML_ERROR_UNKNOWN (999).
//! - A GPU appended to `devices` is counted from the next
//!   `nvmlDeviceGetCount_v2` on (a GPU hot-plugged after start).
//! - A device field left out of the JSON answers NVML_ERROR_NOT_SUPPORTED (3).
//!   `errors` forces a return code for one NVML function of one GPU.
//! - `lost: true`: every call on that GPU, including
//!   `nvmlDeviceGetHandleByIndex_v2`, answers NVML_ERROR_GPU_IS_LOST (15).
//! - `delay_ms`: every call on that GPU sleeps that long first (a slow GPU).
//! - XID events: `xid_events` is a log of XID codes. `nvmlEventSetWait_v2`
//!   hands out entries not delivered before (per GPU UUID, for the life of
//!   the process, whichever event set asks), one per call; append codes to
//!   raise new events. A GPU without `xid_events` does not support events.
//! - Only what oxmon-gpu uses is exported; nvml-wrapper resolves symbols
//!   lazily into `Result`s, so any other function answers its
//!   `FailedToLoadSymbol` error.
//! - Built with `-z nodelete` so its state survives nvml-wrapper's `dlclose`.
//!
//! ## JSON schema
//! ```text
//! {
//!   "init_error": 0,                 // nvmlInit_v2's return code; 0 = success
//!                                    // (4 NO_PERMISSION, 9 DRIVER_NOT_LOADED, ...)
//!   "driver_version": "550.54.15",   // nvmlSystemGetDriverVersion
//!   "cuda_driver_version": 12040,    // nvmlSystemGetCudaDriverVersion_v2
//!   "devices": [{                    // index order
//!     "name": "NVIDIA A100-SXM4-40GB",
//!     "uuid": "GPU-...",
//!     "pci_bus_id": "00000000:07:00.0",
//!     "pci_device_id": 541003998,
//!     "lost": false,
//!     "delay_ms": 0,
//!     "errors": {"nvmlDeviceGetPowerUsage": 999},
//!     // every field below is optional; absent = NOT_SUPPORTED
//!     "vbios_version": "92.00.36.00.01",
//!     "compute_mode": 0,             // 0 default, 2 prohibited, 3 exclusive process
//!     "persistence_mode": true,
//!     "utilization": {"gpu": 87, "memory": 41},            // percent
//!     "encoder_utilization": 3, "decoder_utilization": 0,   // percent
//!     "memory": {"total": 0, "used": 0, "free": 0, "reserved": 0},  // bytes
//!     "temperature": 64, "memory_temperature": 71,          // °C
//!     "temperature_thresholds": {"shutdown": 92, "slowdown": 89,
//!                                "memory_max": 95, "gpu_max": 87},
//!     "power_usage_mw": 285123, "power_limit_mw": 400000,
//!     "energy_mj": 123456789,
//!     "clocks_mhz": {"graphics": 1410, "sm": 1410, "memory": 1215, "video": 1275},
//!     "max_clocks_mhz": {"graphics": 1410, "sm": 1410, "memory": 1215, "video": 1290},
//!     "fans": [45, 47],              // percent, one per fan
//!     "performance_state": 0,        // P0 = 0 ... P15 = 15, 32 unknown
//!     "throttle_reasons": 4,         // nvmlClocksThrottleReason* bit mask
//!     "ecc_mode": true,
//!     "ecc_errors": {"volatile_corrected": 0, "volatile_uncorrected": 0,
//!                    "aggregate_corrected": 0, "aggregate_uncorrected": 0},
//!     "retired_pages": {"single_bit": 0, "double_bit": 0, "pending": 0},
//!     "remapped_rows": {"correctable": 0, "uncorrectable": 0, "pending": 0, "failure": 0},
//!     "xid_events": [79, 13],        // XID codes, oldest first
//!     "pcie": {"tx_kbps": 0, "rx_kbps": 0, "link_gen": 4, "max_link_gen": 4,
//!              "link_width": 16, "max_link_width": 16, "replay_counter": 0},
//!     "nvlinks": [true, true, false],  // state per link
//!     "mig": {"current": true, "pending": true,
//!             "instances": [{"uuid": "MIG-...", "name": "...", "memory": {...},
//!                            "gpu_instance_id": 1,      // nvmlDeviceGetGpuInstanceId
//!                            "gpm": {"sm_util": 40}}]}, // GPM of that GPU instance
//!     "processes": [{"pid": 4242, "name": "python3", "used_memory": 1073741824,
//!                    "kind": "compute",          // compute | graphics | both
//!                    "utilization": {"sm": 80, "memory": 30, "encoder": 0,
//!                                    "decoder": 0, "timestamp_us": 1000}}],
//!     "gpm": {"sm_util": 75.5, "sm_occupancy": 40, "any_tensor_util": 60,
//!             "hmma_tensor_util": 55, "imma_tensor_util": 0, "dfma_tensor_util": 5,
//!             "dram_bw_util": 33, "fp64_util": 1, "fp32_util": 20, "fp16_util": 10,
//!             "graphics_util": 80, "pcie_tx_per_sec": 100, "pcie_rx_per_sec": 200,
//!             "nvlink_total_tx_per_sec": 1024, "nvlink_total_rx_per_sec": 2048}
//!   }]
//! }
//! ```
//!
//! GPM: a GPU with `gpm` supports GPM (`nvmlGpmQueryDeviceSupport`); each
//! sample records the config's values when it is taken, and
//! `nvmlGpmMetricsGet` answers the values of the later of two samples
//! (percent, MiB/s, as NVML), or NVML_ERROR_INVALID_ARGUMENT when the two
//! are of different GPUs or instances or not in order. A metric the config
//! leaves out answers NOT_SUPPORTED in its entry.
//!
//! Process utilisation: `nvmlDeviceGetProcessUtilization` lists the
//! processes with `utilization` whose sample (`timestamp_us`, else the time
//! of the call) is newer than the caller's last-seen timestamp, and answers
//! NVML_ERROR_NOT_FOUND when there is none.
//!
//! ## Exported functions
//! `nvmlInit_v2`, `nvmlInitWithFlags`, `nvmlShutdown`, `nvmlErrorString`,
//! `nvmlSystemGetDriverVersion`, `nvmlSystemGetCudaDriverVersion(_v2)`,
//! `nvmlSystemGetProcessName`, `nvmlDeviceGetCount_v2`,
//! `nvmlDeviceGetHandleByIndex_v2`, the `nvmlDeviceGet*` queries in
//! [`api`], field values 29–31, 82, 94, 142–145, and the event-set functions
//! `nvmlEventSetCreate`, `nvmlDeviceRegisterEvents`,
//! `nvmlDeviceGetSupportedEventTypes`, `nvmlEventSetWait_v2`,
//! `nvmlEventSetFree`, `nvmlDeviceGetProcessUtilization`,
//! `nvmlDeviceGetGpuInstanceId`, and GPM: `nvmlGpmQueryDeviceSupport`,
//! `nvmlGpmSampleAlloc`, `nvmlGpmSampleFree`, `nvmlGpmSampleGet`,
//! `nvmlGpmMigSampleGet`, `nvmlGpmMetricsGet`.
#![allow(clippy::missing_safety_doc)]

pub mod api;
mod config;
mod ffi;

/// NVML return codes used by the fake.
mod codes {
    pub const SUCCESS: u32 = 0;
    pub const UNINITIALIZED: u32 = 1;
    pub const INVALID_ARGUMENT: u32 = 2;
    pub const NOT_SUPPORTED: u32 = 3;
    pub const NO_PERMISSION: u32 = 4;
    pub const NOT_FOUND: u32 = 6;
    pub const INSUFFICIENT_SIZE: u32 = 7;
    pub const DRIVER_NOT_LOADED: u32 = 9;
    pub const TIMEOUT: u32 = 10;
    pub const GPU_IS_LOST: u32 = 15;
    pub const UNKNOWN: u32 = 999;
}
