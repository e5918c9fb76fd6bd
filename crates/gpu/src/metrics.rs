//! Metric definitions, the per-GPU reading they are filled from, and the
//! rendering of readings into families: the native `nvidia_gpu_*` names and,
//! with `--metrics.dcgm-compat`, dcgm-exporter's `DCGM_FI_*` names.
//!
//! Rendering is a pure function of the readings so it is tested without NVML.

use std::borrow::Cow;
use std::collections::HashMap;

use oxmon_core::metrics::{LabelName, LabelValue};
use oxmon_core::{MetricFamily, MetricType};

/// A metric family's fixed description.
#[derive(Debug, PartialEq)]
pub struct Def {
    /// Full name (with `_total` for counters).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: MetricType,
    /// Name of the one extra label the series carry, if any.
    pub label: Option<&'static str>,
}

macro_rules! defs {
    ($($id:ident = $name:literal, $kind:ident, $label:expr, $help:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "`: ", $help)]
            pub static $id: Def = Def { name: $name, help: $help, kind: MetricType::$kind, label: $label };
        )*
    };
}

defs! {
    NVML_UP = "nvidia_gpu_nvml_up", Gauge, None, "Whether NVML is initialised and every GPU it lists answered (1) or not (0).";
    NUM_DEVICES = "nvidia_gpu_num_devices", Gauge, None, "Number of GPUs NVML reports.";
    INFO = "nvidia_gpu_info", Gauge, None, "GPU, driver and CUDA versions and modes; value 1.";
    LOST = "nvidia_gpu_lost", Gauge, None, "Whether the GPU has fallen off the bus or is otherwise inaccessible (NVML_ERROR_GPU_IS_LOST).";
    SCRAPE_SUCCESS = "nvidia_gpu_scrape_success", Gauge, None, "Whether the GPU was read in this scrape (1) or did not answer before the deadline, is still stuck in an earlier read, failed or is lost (0).";
    UTILIZATION = "nvidia_gpu_utilization_ratio", Gauge, None, "Fraction of the last sample period during which a kernel ran on the GPU.";
    MEMORY_UTILIZATION = "nvidia_gpu_memory_utilization_ratio", Gauge, None, "Fraction of the last sample period during which device memory was read or written.";
    ENCODER_UTILIZATION = "nvidia_gpu_encoder_utilization_ratio", Gauge, None, "Video encoder utilisation.";
    DECODER_UTILIZATION = "nvidia_gpu_decoder_utilization_ratio", Gauge, None, "Video decoder utilisation.";
    MEMORY_USED = "nvidia_gpu_memory_used_bytes", Gauge, None, "Device memory allocated.";
    MEMORY_FREE = "nvidia_gpu_memory_free_bytes", Gauge, None, "Device memory free.";
    MEMORY_TOTAL = "nvidia_gpu_memory_total_bytes", Gauge, None, "Device memory installed.";
    MEMORY_RESERVED = "nvidia_gpu_memory_reserved_bytes", Gauge, None, "Device memory reserved by the driver and firmware.";
    TEMPERATURE = "nvidia_gpu_temperature_celsius", Gauge, None, "GPU core temperature.";
    MEMORY_TEMPERATURE = "nvidia_gpu_memory_temperature_celsius", Gauge, None, "Device memory (HBM) temperature.";
    TEMPERATURE_THRESHOLD = "nvidia_gpu_temperature_threshold_celsius", Gauge, Some("threshold"), "Temperature at which the GPU slows down (slowdown), shuts down (shutdown), or the maximum for GPU and memory (gpu_max, memory_max).";
    POWER_USAGE = "nvidia_gpu_power_usage_watts", Gauge, None, "Power drawn by the board.";
    POWER_LIMIT = "nvidia_gpu_power_limit_watts", Gauge, None, "Power limit the driver enforces.";
    ENERGY = "nvidia_gpu_energy_consumed_joules_total", Counter, None, "Energy consumed since the driver was loaded.";
    CLOCK = "nvidia_gpu_clock_hertz", Gauge, Some("clock"), "Current clock frequency.";
    CLOCK_MAX = "nvidia_gpu_clock_max_hertz", Gauge, Some("clock"), "Maximum clock frequency.";
    FAN_SPEED = "nvidia_gpu_fan_speed_ratio", Gauge, Some("fan"), "Intended fan speed as a fraction of its maximum.";
    PERFORMANCE_STATE = "nvidia_gpu_performance_state", Gauge, None, "Performance state: 0 (P0, maximum) to 15 (P15, minimum).";
    THROTTLE_REASON = "nvidia_gpu_clock_throttle_reason", Gauge, Some("reason"), "Whether clocks are currently held down for this reason (1) or not (0).";
    ECC_ENABLED = "nvidia_gpu_ecc_enabled", Gauge, None, "Whether ECC is currently enabled.";
    ECC_CORRECTED = "nvidia_gpu_ecc_corrected_errors_total", Counter, Some("counter"), "Corrected (single-bit) ECC errors; counter=volatile since the driver loaded, aggregate over the GPU's life.";
    ECC_UNCORRECTED = "nvidia_gpu_ecc_uncorrected_errors_total", Counter, Some("counter"), "Uncorrected (double-bit) ECC errors; counter=volatile since the driver loaded, aggregate over the GPU's life.";
    RETIRED_PAGES = "nvidia_gpu_retired_pages", Gauge, Some("cause"), "Device memory pages retired, by cause.";
    RETIRED_PAGES_PENDING = "nvidia_gpu_retired_pages_pending", Gauge, None, "Whether pages are waiting to be retired at the next reset.";
    REMAPPED_ROWS = "nvidia_gpu_remapped_rows", Gauge, Some("error"), "Memory rows remapped, by the error that caused it.";
    REMAPPED_ROWS_PENDING = "nvidia_gpu_remapped_rows_pending", Gauge, None, "Whether a row remapping waits for the next reset.";
    REMAPPED_ROWS_FAILED = "nvidia_gpu_remapped_rows_failed", Gauge, None, "Whether a row remapping has failed.";
    XID_ERRORS = "nvidia_gpu_xid_errors_total", Counter, Some("xid"), "XID critical errors received from NVML events since the exporter started, by XID code.";
    LAST_XID_TIME = "nvidia_gpu_last_xid_timestamp_seconds", Gauge, None, "Unix time when the last XID error was received.";
    PCIE_THROUGHPUT = "nvidia_gpu_pcie_throughput_bytes_per_second", Gauge, Some("direction"), "PCIe throughput over NVML's last 20 ms sample, by direction (tx, rx).";
    PCIE_GEN = "nvidia_gpu_pcie_link_generation", Gauge, None, "Current PCIe link generation.";
    PCIE_MAX_GEN = "nvidia_gpu_pcie_link_max_generation", Gauge, None, "Maximum PCIe link generation of the GPU and system.";
    PCIE_WIDTH = "nvidia_gpu_pcie_link_width", Gauge, None, "Current PCIe link width (lanes).";
    PCIE_MAX_WIDTH = "nvidia_gpu_pcie_link_max_width", Gauge, None, "Maximum PCIe link width (lanes).";
    PCIE_REPLAY = "nvidia_gpu_pcie_replay_errors_total", Counter, None, "PCIe replays (retransmissions after link errors).";
    NVLINK_ACTIVE = "nvidia_gpu_nvlink_active", Gauge, Some("link"), "Whether the NVLink link is active.";
    MIG_ENABLED = "nvidia_gpu_mig_enabled", Gauge, None, "Whether MIG mode is enabled.";
    MIG_PENDING = "nvidia_gpu_mig_pending_enabled", Gauge, None, "MIG mode that takes effect at the next reset.";
    MIG_MEMORY_USED = "nvidia_gpu_mig_memory_used_bytes", Gauge, None, "Device memory allocated in the MIG instance.";
    MIG_MEMORY_FREE = "nvidia_gpu_mig_memory_free_bytes", Gauge, None, "Device memory free in the MIG instance.";
    MIG_MEMORY_TOTAL = "nvidia_gpu_mig_memory_total_bytes", Gauge, None, "Device memory of the MIG instance.";
    PROCESSES = "nvidia_gpu_processes", Gauge, None, "Processes with a compute or graphics context on the GPU.";
    PROCESS_MEMORY = "nvidia_gpu_process_memory_bytes", Gauge, None, "Device memory used by a process (largest users first, capped by --collector.processes.max).";
    PROCESS_SM_UTILIZATION = "nvidia_gpu_process_sm_utilization_ratio", Gauge, None, "Fraction of time a kernel of the process ran on the SMs in NVML's last sample (busiest first, capped by --collector.processes.max).";
    PROCESS_MEMORY_UTILIZATION = "nvidia_gpu_process_memory_utilization_ratio", Gauge, None, "Fraction of time the process read or wrote device memory in NVML's last sample.";
    PROCESS_ENCODER_UTILIZATION = "nvidia_gpu_process_encoder_utilization_ratio", Gauge, None, "Video encoder utilisation of the process in NVML's last sample.";
    PROCESS_DECODER_UTILIZATION = "nvidia_gpu_process_decoder_utilization_ratio", Gauge, None, "Video decoder utilisation of the process in NVML's last sample.";
    SM_ACTIVE = "nvidia_gpu_sm_active_ratio", Gauge, None, "Fraction of time each SM had at least one warp assigned, averaged over the SMs, since the previous scrape (GPM).";
    SM_OCCUPANCY = "nvidia_gpu_sm_occupancy_ratio", Gauge, None, "Warps resident on the SMs as a fraction of the most they can hold, since the previous scrape (GPM).";
    TENSOR_PIPE_ACTIVE = "nvidia_gpu_tensor_pipe_active_ratio", Gauge, Some("pipe"), "Fraction of time the SMs ran tensor core instructions since the previous scrape, by pipe: any, hmma (half precision), imma (integer), dfma (double precision) (GPM).";
    DRAM_ACTIVE = "nvidia_gpu_dram_active_ratio", Gauge, None, "Device memory bandwidth used as a fraction of the peak, since the previous scrape (GPM).";
    FP_PIPE_ACTIVE = "nvidia_gpu_fp_pipe_active_ratio", Gauge, Some("precision"), "Fraction of time the SMs ran floating-point instructions since the previous scrape, by precision: fp64, fp32, fp16 (GPM).";
    PCIE_TX_RATE = "nvidia_gpu_pcie_tx_bytes_per_second", Gauge, None, "PCIe bytes sent by the GPU per second since the previous scrape (GPM).";
    PCIE_RX_RATE = "nvidia_gpu_pcie_rx_bytes_per_second", Gauge, None, "PCIe bytes received by the GPU per second since the previous scrape (GPM).";
    NVLINK_TX_RATE = "nvidia_gpu_nvlink_tx_bytes_per_second", Gauge, None, "NVLink bytes sent per second over all links since the previous scrape (GPM).";
    NVLINK_RX_RATE = "nvidia_gpu_nvlink_rx_bytes_per_second", Gauge, None, "NVLink bytes received per second over all links since the previous scrape (GPM).";
}

/// One value read from a GPU: which family, the extra label's value (for
/// families with one), and the value in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The family.
    pub def: &'static Def,
    /// Value of `def.label`.
    pub label: Option<Cow<'static, str>>,
    /// The value.
    pub value: f64,
}

/// A MIG instance's memory and profiling.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MigReading {
    /// Index under the parent GPU.
    pub index: u32,
    /// MIG device UUID.
    pub uuid: String,
    /// MIG device name (profile).
    pub name: String,
    /// GPU instance ID, where NVML gives it.
    pub gpu_instance_id: Option<u32>,
    /// (used, free, total) bytes.
    pub memory: Option<(u64, u64, u64)>,
    /// GPM values of the GPU instance (`crate::gpm::METRICS`).
    pub gpm: Vec<Value>,
}

impl MigReading {
    /// `(name, GPU instance ID)`, when NVML gave the ID.
    fn gpu_instance_label(&self, name: &'static str) -> Option<(LabelName, LabelValue)> {
        self.gpu_instance_id
            .map(|id| (Cow::Borrowed(name), id.to_string().into()))
    }
}

/// A process using the GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessReading {
    /// Process id.
    pub pid: u32,
    /// Name from NVML (empty when unknown).
    pub name: String,
    /// Device memory used.
    pub memory: u64,
}

/// A process's share of the GPU in NVML's last utilisation sample, as
/// ratios 0–1.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUtilization {
    /// Process id.
    pub pid: u32,
    /// Name, as for [`ProcessReading`].
    pub name: String,
    /// SM (kernel) utilisation.
    pub sm: f64,
    /// Device memory read/write utilisation.
    pub memory: f64,
    /// Video encoder utilisation.
    pub encoder: f64,
    /// Video decoder utilisation.
    pub decoder: f64,
}

/// Everything read from one GPU in one scrape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuReading {
    /// NVML index.
    pub index: u32,
    /// GPU UUID.
    pub uuid: String,
    /// Product name.
    pub name: String,
    /// PCI bus id (`00000000:07:00.0`).
    pub pci_bus_id: String,
    /// VBIOS version.
    pub vbios_version: String,
    /// `default`, `exclusive_thread`, `prohibited`, `exclusive_process`.
    pub compute_mode: String,
    /// `enabled` or `disabled`.
    pub persistence_mode: String,
    /// The values.
    pub values: Vec<Value>,
    /// MIG instances (when MIG is enabled).
    pub mig: Vec<MigReading>,
    /// Processes (with `--collector.processes`), already capped.
    pub processes: Vec<ProcessReading>,
    /// Per-process utilisation (with `--collector.processes`), capped.
    pub process_utilization: Vec<ProcessUtilization>,
}

impl GpuReading {
    /// Adds a value.
    pub fn push(&mut self, def: &'static Def, label: Option<Cow<'static, str>>, value: f64) {
        self.values.push(Value { def, label, value });
    }

    /// The value of `def` (with label value `label`), if read.
    pub fn get(&self, def: &'static Def, label: Option<&str>) -> Option<f64> {
        self.values
            .iter()
            .find(|v| std::ptr::eq(v.def, def) && v.label.as_deref() == label)
            .map(|v| v.value)
    }
}

/// What the XID watcher knows about one GPU.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XidReading {
    /// NVML index.
    pub index: u32,
    /// GPU UUID.
    pub uuid: String,
    /// Product name.
    pub name: String,
    /// Count per XID code.
    pub counts: Vec<(u64, u64)>,
    /// Unix time and code of the last XID.
    pub last: Option<(f64, u64)>,
}

/// A GPU that gave no reading this scrape: what was known of it before.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GpuIdentity {
    /// NVML index.
    pub index: u32,
    /// UUID, as last seen (empty when never seen).
    pub uuid: String,
    /// Name, likewise.
    pub name: String,
}

/// System-wide facts for `nvidia_gpu_info`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct System {
    /// Driver version (`550.54.15`).
    pub driver_version: String,
    /// CUDA driver version (`12.4`).
    pub cuda_version: String,
}

/// One scrape's worth of readings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Whether NVML is up and every GPU answered.
    pub nvml_up: bool,
    /// `nvmlDeviceGetCount`, when NVML is initialised.
    pub num_devices: Option<u32>,
    /// Versions.
    pub system: System,
    /// GPUs that answered.
    pub gpus: Vec<GpuReading>,
    /// GPUs that are lost.
    pub lost: Vec<GpuIdentity>,
    /// GPUs that are not lost but gave no reading this scrape (no answer
    /// before the deadline, still stuck in an earlier read, failed).
    pub unanswered: Vec<GpuIdentity>,
    /// XID counters.
    pub xid: Vec<XidReading>,
}

/// Families keyed by name, in first-use order.
#[derive(Default)]
struct Families {
    index: HashMap<&'static str, usize>,
    list: Vec<MetricFamily>,
}

impl Families {
    fn family(&mut self, def: &'static Def) -> &mut MetricFamily {
        let i = *self.index.entry(def.name).or_insert_with(|| {
            self.list
                .push(MetricFamily::new(def.name, def.help, def.kind));
            self.list.len() - 1
        });
        &mut self.list[i]
    }

    fn add(&mut self, def: &'static Def, labels: Vec<(LabelName, LabelValue)>, value: f64) {
        self.family(def).add_owned(labels, value);
    }
}

fn gpu_labels(index: u32, uuid: &str, name: &str) -> Vec<(LabelName, LabelValue)> {
    vec![
        (Cow::Borrowed("gpu"), index.to_string().into()),
        (Cow::Borrowed("uuid"), uuid.into()),
        (Cow::Borrowed("name"), name.into()),
    ]
}

fn with(
    mut base: Vec<(LabelName, LabelValue)>,
    extra: &[(&'static str, &str)],
) -> Vec<(LabelName, LabelValue)> {
    base.extend(
        extra
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), LabelValue::from(*v))),
    );
    base
}

/// The native `nvidia_gpu_*` families of a snapshot.
pub fn render(s: &Snapshot) -> Vec<MetricFamily> {
    let mut f = Families::default();
    f.add(&NVML_UP, Vec::new(), if s.nvml_up { 1.0 } else { 0.0 });
    if let Some(n) = s.num_devices {
        f.add(&NUM_DEVICES, Vec::new(), n.into());
    }
    for g in &s.gpus {
        let base = gpu_labels(g.index, &g.uuid, &g.name);
        f.add(&SCRAPE_SUCCESS, base.clone(), 1.0);
        f.add(&LOST, base.clone(), 0.0);
        f.add(
            &INFO,
            with(
                base.clone(),
                &[
                    ("pci_bus_id", &g.pci_bus_id),
                    ("driver_version", &s.system.driver_version),
                    ("cuda_version", &s.system.cuda_version),
                    ("vbios_version", &g.vbios_version),
                    ("compute_mode", &g.compute_mode),
                    ("persistence_mode", &g.persistence_mode),
                ],
            ),
            1.0,
        );
        for v in &g.values {
            let labels = match (v.def.label, &v.label) {
                (Some(k), Some(val)) => with(base.clone(), &[(k, val)]),
                _ => base.clone(),
            };
            f.add(v.def, labels, v.value);
        }
        for m in &g.mig {
            let index = m.index.to_string();
            let mut labels = with(
                base.clone(),
                &[
                    ("mig_index", &index),
                    ("mig_uuid", &m.uuid),
                    ("mig_name", &m.name),
                ],
            );
            labels.extend(m.gpu_instance_label("gpu_instance_id"));
            if let Some((used, free, total)) = m.memory {
                f.add(&MIG_MEMORY_USED, labels.clone(), used as f64);
                f.add(&MIG_MEMORY_FREE, labels.clone(), free as f64);
                f.add(&MIG_MEMORY_TOTAL, labels.clone(), total as f64);
            }
            for v in &m.gpm {
                let labels = match (v.def.label, &v.label) {
                    (Some(k), Some(val)) => with(labels.clone(), &[(k, val)]),
                    _ => labels.clone(),
                };
                f.add(v.def, labels, v.value);
            }
        }
        for p in &g.processes {
            let pid = p.pid.to_string();
            f.add(
                &PROCESS_MEMORY,
                with(base.clone(), &[("pid", &pid), ("process_name", &p.name)]),
                p.memory as f64,
            );
        }
        for p in &g.process_utilization {
            let pid = p.pid.to_string();
            let labels = with(base.clone(), &[("pid", &pid), ("process_name", &p.name)]);
            f.add(&PROCESS_SM_UTILIZATION, labels.clone(), p.sm);
            f.add(&PROCESS_MEMORY_UTILIZATION, labels.clone(), p.memory);
            f.add(&PROCESS_ENCODER_UTILIZATION, labels.clone(), p.encoder);
            f.add(&PROCESS_DECODER_UTILIZATION, labels, p.decoder);
        }
    }
    for l in &s.lost {
        let base = gpu_labels(l.index, &l.uuid, &l.name);
        f.add(&SCRAPE_SUCCESS, base.clone(), 0.0);
        f.add(&LOST, base, 1.0);
    }
    for u in &s.unanswered {
        f.add(&SCRAPE_SUCCESS, gpu_labels(u.index, &u.uuid, &u.name), 0.0);
    }
    for x in &s.xid {
        let base = gpu_labels(x.index, &x.uuid, &x.name);
        for (code, n) in &x.counts {
            f.add(
                &XID_ERRORS,
                with(base.clone(), &[("xid", &code.to_string())]),
                *n as f64,
            );
        }
        if let Some((ts, _)) = x.last {
            f.add(&LAST_XID_TIME, base, ts);
        }
    }
    f.list
}

/// dcgm-exporter compatible families (the fields its default counters and
/// Grafana dashboard 12239 use), in dcgm-exporter's units: percent, MiB, °C,
/// W, MHz, mJ.
pub fn render_dcgm(s: &Snapshot, hostname: &str) -> Vec<MetricFamily> {
    struct D {
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        from: &'static Def,
        label: Option<&'static str>,
        scale: f64,
    }
    const MIB: f64 = 1.0 / (1024.0 * 1024.0);
    let table = [
        D {
            name: "DCGM_FI_DEV_SM_CLOCK",
            help: "SM clock frequency (in MHz).",
            kind: MetricType::Gauge,
            from: &CLOCK,
            label: Some("sm"),
            scale: 1e-6,
        },
        D {
            name: "DCGM_FI_DEV_MEM_CLOCK",
            help: "Memory clock frequency (in MHz).",
            kind: MetricType::Gauge,
            from: &CLOCK,
            label: Some("memory"),
            scale: 1e-6,
        },
        D {
            name: "DCGM_FI_DEV_MEMORY_TEMP",
            help: "Memory temperature (in C).",
            kind: MetricType::Gauge,
            from: &MEMORY_TEMPERATURE,
            label: None,
            scale: 1.0,
        },
        D {
            name: "DCGM_FI_DEV_GPU_TEMP",
            help: "GPU temperature (in C).",
            kind: MetricType::Gauge,
            from: &TEMPERATURE,
            label: None,
            scale: 1.0,
        },
        D {
            name: "DCGM_FI_DEV_POWER_USAGE",
            help: "Power draw (in W).",
            kind: MetricType::Gauge,
            from: &POWER_USAGE,
            label: None,
            scale: 1.0,
        },
        D {
            name: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            help: "Total energy consumption since boot (in mJ).",
            kind: MetricType::Counter,
            from: &ENERGY,
            label: None,
            scale: 1000.0,
        },
        D {
            name: "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
            help: "Total number of PCIe retries.",
            kind: MetricType::Counter,
            from: &PCIE_REPLAY,
            label: None,
            scale: 1.0,
        },
        D {
            name: "DCGM_FI_DEV_GPU_UTIL",
            help: "GPU utilization (in %).",
            kind: MetricType::Gauge,
            from: &UTILIZATION,
            label: None,
            scale: 100.0,
        },
        D {
            name: "DCGM_FI_DEV_MEM_COPY_UTIL",
            help: "Memory utilization (in %).",
            kind: MetricType::Gauge,
            from: &MEMORY_UTILIZATION,
            label: None,
            scale: 100.0,
        },
        D {
            name: "DCGM_FI_DEV_ENC_UTIL",
            help: "Encoder utilization (in %).",
            kind: MetricType::Gauge,
            from: &ENCODER_UTILIZATION,
            label: None,
            scale: 100.0,
        },
        D {
            name: "DCGM_FI_DEV_DEC_UTIL",
            help: "Decoder utilization (in %).",
            kind: MetricType::Gauge,
            from: &DECODER_UTILIZATION,
            label: None,
            scale: 100.0,
        },
        D {
            name: "DCGM_FI_DEV_FB_FREE",
            help: "Framebuffer memory free (in MiB).",
            kind: MetricType::Gauge,
            from: &MEMORY_FREE,
            label: None,
            scale: MIB,
        },
        D {
            name: "DCGM_FI_DEV_FB_USED",
            help: "Framebuffer memory used (in MiB).",
            kind: MetricType::Gauge,
            from: &MEMORY_USED,
            label: None,
            scale: MIB,
        },
        D {
            name: "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
            help: "Number of remapped rows for uncorrectable errors",
            kind: MetricType::Counter,
            from: &REMAPPED_ROWS,
            label: Some("uncorrectable"),
            scale: 1.0,
        },
        D {
            name: "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
            help: "Number of remapped rows for correctable errors",
            kind: MetricType::Counter,
            from: &REMAPPED_ROWS,
            label: Some("correctable"),
            scale: 1.0,
        },
        D {
            name: "DCGM_FI_DEV_ROW_REMAP_FAILURE",
            help: "Whether remapping of rows has failed",
            kind: MetricType::Gauge,
            from: &REMAPPED_ROWS_FAILED,
            label: None,
            scale: 1.0,
        },
    ];
    let mut out: Vec<MetricFamily> = table
        .iter()
        .map(|d| MetricFamily::new(d.name, d.help, d.kind))
        .collect();
    let mut profiling: Vec<MetricFamily> = DCGM_PROFILING
        .iter()
        .map(|p| MetricFamily::new(p.name, p.help, p.kind))
        .collect();
    let mut xid = MetricFamily::gauge(
        "DCGM_FI_DEV_XID_ERRORS",
        "Value of the last XID error encountered.",
    );
    for g in &s.gpus {
        let labels = vec![
            (Cow::Borrowed("gpu"), LabelValue::from(g.index.to_string())),
            (Cow::Borrowed("UUID"), g.uuid.as_str().into()),
            (Cow::Borrowed("device"), format!("nvidia{}", g.index).into()),
            (Cow::Borrowed("modelName"), g.name.as_str().into()),
            (Cow::Borrowed("pci_bus_id"), g.pci_bus_id.as_str().into()),
            (Cow::Borrowed("Hostname"), hostname.into()),
        ];
        for (d, fam) in table.iter().zip(out.iter_mut()) {
            if let Some(v) = g.get(d.from, d.label) {
                let mut v = v * d.scale;
                // DCGM reports whole MiB and MHz.
                if d.scale == MIB || d.scale == 1e-6 {
                    v = v.round();
                }
                fam.add_owned(labels.clone(), v);
            }
        }
        for (p, fam) in DCGM_PROFILING.iter().zip(profiling.iter_mut()) {
            if let Some(v) = g.get(p.from, p.label) {
                fam.add_owned(labels.clone(), v);
            }
            for m in &g.mig {
                let Some(v) = m
                    .gpm
                    .iter()
                    .find(|v| std::ptr::eq(v.def, p.from) && v.label.as_deref() == p.label)
                else {
                    continue;
                };
                let mut mig_labels = labels.clone();
                mig_labels.push((Cow::Borrowed("GPU_I_PROFILE"), mig_profile(&m.name).into()));
                mig_labels.extend(m.gpu_instance_label("GPU_I_ID"));
                fam.add_owned(mig_labels, v.value);
            }
        }
        let last = s
            .xid
            .iter()
            .find(|x| x.uuid == g.uuid)
            .and_then(|x| x.last)
            .map_or(0.0, |(_, code)| code as f64);
        xid.add_owned(labels, last);
    }
    out.push(xid);
    out.extend(profiling);
    out.retain(|f| !f.is_empty());
    out
}

/// A dcgm-exporter profiling field (`DCGM_FI_PROF_*`) and the GPM value it
/// shows. DCGM's units are ours: ratios 0–1 for activity, bytes per second
/// for PCIe and NVLink (dcgm-exporter declares those two as counters).
struct DcgmProfiling {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    from: &'static Def,
    label: Option<&'static str>,
}

const DCGM_PROFILING: [DcgmProfiling; 14] = {
    const fn prof(
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        from: &'static Def,
        label: Option<&'static str>,
    ) -> DcgmProfiling {
        DcgmProfiling {
            name,
            help,
            kind,
            from,
            label,
        }
    }
    use MetricType::{Counter, Gauge};
    [
        prof(
            "DCGM_FI_PROF_SM_ACTIVE",
            "Ratio of cycles an SM has at least 1 warp assigned.",
            Gauge,
            &SM_ACTIVE,
            None,
        ),
        prof(
            "DCGM_FI_PROF_SM_OCCUPANCY",
            "Ratio of warps resident on an SM to the maximum.",
            Gauge,
            &SM_OCCUPANCY,
            None,
        ),
        prof(
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
            "Ratio of cycles any tensor pipe is active.",
            Gauge,
            &TENSOR_PIPE_ACTIVE,
            Some("any"),
        ),
        prof(
            "DCGM_FI_PROF_PIPE_TENSOR_HMMA_ACTIVE",
            "Ratio of cycles the HMMA tensor pipe is active.",
            Gauge,
            &TENSOR_PIPE_ACTIVE,
            Some("hmma"),
        ),
        prof(
            "DCGM_FI_PROF_PIPE_TENSOR_IMMA_ACTIVE",
            "Ratio of cycles the IMMA tensor pipe is active.",
            Gauge,
            &TENSOR_PIPE_ACTIVE,
            Some("imma"),
        ),
        prof(
            "DCGM_FI_PROF_PIPE_TENSOR_DFMA_ACTIVE",
            "Ratio of cycles the DFMA tensor pipe is active.",
            Gauge,
            &TENSOR_PIPE_ACTIVE,
            Some("dfma"),
        ),
        prof(
            "DCGM_FI_PROF_DRAM_ACTIVE",
            "Ratio of cycles the device memory interface is active.",
            Gauge,
            &DRAM_ACTIVE,
            None,
        ),
        prof(
            "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
            "Ratio of cycles the fp64 pipes are active.",
            Gauge,
            &FP_PIPE_ACTIVE,
            Some("fp64"),
        ),
        prof(
            "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
            "Ratio of cycles the fp32 pipes are active.",
            Gauge,
            &FP_PIPE_ACTIVE,
            Some("fp32"),
        ),
        prof(
            "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
            "Ratio of cycles the fp16 pipes are active.",
            Gauge,
            &FP_PIPE_ACTIVE,
            Some("fp16"),
        ),
        prof(
            "DCGM_FI_PROF_PCIE_TX_BYTES",
            "PCIe bytes transmitted per second, headers and payload.",
            Counter,
            &PCIE_TX_RATE,
            None,
        ),
        prof(
            "DCGM_FI_PROF_PCIE_RX_BYTES",
            "PCIe bytes received per second, headers and payload.",
            Counter,
            &PCIE_RX_RATE,
            None,
        ),
        prof(
            "DCGM_FI_PROF_NVLINK_TX_BYTES",
            "NVLink bytes transmitted per second, headers and payload.",
            Counter,
            &NVLINK_TX_RATE,
            None,
        ),
        prof(
            "DCGM_FI_PROF_NVLINK_RX_BYTES",
            "NVLink bytes received per second, headers and payload.",
            Counter,
            &NVLINK_RX_RATE,
            None,
        ),
    ]
};

/// dcgm-exporter's `GPU_I_PROFILE`: the profile part of a MIG device name
/// (`NVIDIA H100 80GB HBM3 MIG 1g.10gb` → `1g.10gb`).
fn mig_profile(name: &str) -> String {
    name.rsplit_once(" MIG ")
        .map_or(name, |(_, profile)| profile)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxmon_core::metrics::Value as V;

    fn find<'a>(fams: &'a [MetricFamily], name: &str) -> Option<&'a MetricFamily> {
        fams.iter().find(|f| f.name == name)
    }

    fn label<'a>(m: &'a oxmon_core::metrics::Metric, k: &str) -> Option<&'a str> {
        m.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    fn gpu() -> GpuReading {
        let mut g = GpuReading {
            index: 2,
            uuid: "GPU-x".into(),
            name: "NVIDIA H100".into(),
            pci_bus_id: "00000000:1A:00.0".into(),
            ..Default::default()
        };
        g.push(&MEMORY_USED, None, 3.0 * 1024.0 * 1024.0 + 1.0);
        g.push(&CLOCK, Some(Cow::Borrowed("sm")), 1_980_000_000.0);
        g.push(&CLOCK, Some(Cow::Borrowed("memory")), 2_619_400_000.0);
        g.push(&UTILIZATION, None, 0.5);
        g
    }

    #[test]
    fn mig_profile_is_the_part_after_mig() {
        assert_eq!(mig_profile("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), "1g.10gb");
        assert_eq!(mig_profile("NVIDIA A100-SXM4-40GB MIG 3g.20gb"), "3g.20gb");
        // Not a MIG name: kept whole rather than guessed at.
        assert_eq!(mig_profile("weird"), "weird");
    }

    #[test]
    fn mig_gpm_series_carry_the_instance_labels_native_and_dcgm() {
        let mut g = gpu();
        g.push(&SM_ACTIVE, None, 0.5);
        g.mig.push(MigReading {
            index: 0,
            uuid: "MIG-1".into(),
            name: "NVIDIA H100 MIG 1g.10gb".into(),
            gpu_instance_id: Some(9),
            memory: None,
            gpm: vec![Value {
                def: &SM_ACTIVE,
                label: None,
                value: 0.25,
            }],
        });
        let snap = Snapshot {
            gpus: vec![g],
            ..Default::default()
        };
        let fams = render(&snap);
        let sm = find(&fams, "nvidia_gpu_sm_active_ratio").unwrap();
        assert_eq!(sm.metrics.len(), 2);
        let mig = sm
            .metrics
            .iter()
            .find(|m| label(m, "mig_uuid") == Some("MIG-1"))
            .unwrap();
        assert_eq!(label(mig, "gpu_instance_id"), Some("9"));
        assert_eq!(mig.value, V::Single(0.25));
        let dcgm = render_dcgm(&snap, "h");
        let sm = find(&dcgm, "DCGM_FI_PROF_SM_ACTIVE").unwrap();
        assert_eq!(sm.metrics.len(), 2);
        let mig = sm
            .metrics
            .iter()
            .find(|m| label(m, "GPU_I_ID") == Some("9"))
            .unwrap();
        assert_eq!(label(mig, "GPU_I_PROFILE"), Some("1g.10gb"));
        assert_eq!(mig.value, V::Single(0.25));
    }

    #[test]
    fn nvml_down_is_only_nvml_up_0() {
        let fams = render(&Snapshot::default());
        assert_eq!(fams.len(), 1);
        assert_eq!(fams[0].name, "nvidia_gpu_nvml_up");
        assert_eq!(fams[0].metrics[0].value, V::Single(0.0));
        assert!(render_dcgm(&Snapshot::default(), "h").is_empty());
    }

    #[test]
    fn per_gpu_series_carry_gpu_uuid_name_and_their_label() {
        let snap = Snapshot {
            nvml_up: true,
            num_devices: Some(4),
            gpus: vec![gpu()],
            lost: vec![GpuIdentity {
                index: 3,
                uuid: "GPU-y".into(),
                name: "NVIDIA H100".into(),
            }],
            unanswered: vec![GpuIdentity {
                index: 1,
                uuid: String::new(),
                name: String::new(),
            }],
            xid: vec![XidReading {
                index: 2,
                uuid: "GPU-x".into(),
                name: "NVIDIA H100".into(),
                counts: vec![(48, 2), (79, 1)],
                last: Some((1700000000.5, 79)),
            }],
            ..Default::default()
        };
        let fams = render(&snap);
        let clock = find(&fams, "nvidia_gpu_clock_hertz").unwrap();
        assert_eq!(clock.metrics.len(), 2);
        let sm = &clock.metrics[0];
        assert_eq!(label(sm, "gpu"), Some("2"));
        assert_eq!(label(sm, "uuid"), Some("GPU-x"));
        assert_eq!(label(sm, "name"), Some("NVIDIA H100"));
        assert_eq!(label(sm, "clock"), Some("sm"));
        let lost = find(&fams, "nvidia_gpu_lost").unwrap();
        let values: Vec<_> = lost
            .metrics
            .iter()
            .map(|m| (label(m, "gpu").unwrap(), m.value.clone()))
            .collect();
        assert_eq!(values, [("2", V::Single(0.0)), ("3", V::Single(1.0))]);
        let success = find(&fams, "nvidia_gpu_scrape_success").unwrap();
        let values: Vec<_> = success
            .metrics
            .iter()
            .map(|m| (label(m, "gpu").unwrap(), m.value.clone()))
            .collect();
        assert_eq!(
            values,
            [
                ("2", V::Single(1.0)),
                ("3", V::Single(0.0)),
                ("1", V::Single(0.0))
            ]
        );
        let xid = find(&fams, "nvidia_gpu_xid_errors_total").unwrap();
        assert_eq!(xid.kind, MetricType::Counter);
        assert_eq!(xid.metrics.len(), 2);
        assert_eq!(label(&xid.metrics[0], "xid"), Some("48"));
        assert_eq!(xid.metrics[0].value, V::Single(2.0));
        let info = find(&fams, "nvidia_gpu_info").unwrap();
        assert_eq!(
            label(&info.metrics[0], "pci_bus_id"),
            Some("00000000:1A:00.0")
        );
        assert_eq!(
            find(&fams, "nvidia_gpu_num_devices").unwrap().metrics[0].value,
            V::Single(4.0)
        );
    }

    #[test]
    fn dcgm_units_and_labels() {
        let snap = Snapshot {
            nvml_up: true,
            gpus: vec![gpu()],
            ..Default::default()
        };
        let fams = render_dcgm(&snap, "node-1");
        let fb = find(&fams, "DCGM_FI_DEV_FB_USED").unwrap();
        assert_eq!(fb.metrics[0].value, V::Single(3.0));
        let m = &fb.metrics[0];
        assert_eq!(label(m, "gpu"), Some("2"));
        assert_eq!(label(m, "UUID"), Some("GPU-x"));
        assert_eq!(label(m, "device"), Some("nvidia2"));
        assert_eq!(label(m, "modelName"), Some("NVIDIA H100"));
        assert_eq!(label(m, "pci_bus_id"), Some("00000000:1A:00.0"));
        assert_eq!(label(m, "Hostname"), Some("node-1"));
        assert_eq!(
            find(&fams, "DCGM_FI_DEV_SM_CLOCK").unwrap().metrics[0].value,
            V::Single(1980.0)
        );
        assert_eq!(
            find(&fams, "DCGM_FI_DEV_MEM_CLOCK").unwrap().metrics[0].value,
            V::Single(2619.0)
        );
        assert_eq!(
            find(&fams, "DCGM_FI_DEV_GPU_UTIL").unwrap().metrics[0].value,
            V::Single(50.0)
        );
        // Not read: not emitted.
        assert!(find(&fams, "DCGM_FI_DEV_POWER_USAGE").is_none());
        assert_eq!(
            find(&fams, "DCGM_FI_DEV_XID_ERRORS").unwrap().metrics[0].value,
            V::Single(0.0)
        );
    }
}
