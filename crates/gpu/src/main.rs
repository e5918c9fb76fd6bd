//! # oxmon-gpu
//!
//! A Prometheus exporter for NVIDIA GPUs on NVML (through `nvml-wrapper`):
//! `nvidia_gpu_*` metrics in Prometheus naming, optionally dcgm-exporter's
//! `DCGM_FI_*` names too. It starts and serves `nvidia_gpu_nvml_up 0` where
//! there is no driver or GPU, and retries. See `crates/gpu/README.md`.

mod collector;
mod gpm;
mod metrics;
mod pod_resources;
mod read;
mod state;
mod xid;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use oxmon_core::{Exporter, Registry};

use crate::collector::{NvmlCollector, Options};
use crate::pod_resources::PodResourcesSource;
use crate::read::ReadOptions;
use crate::state::NvmlState;
use crate::xid::XidCounters;

/// Default port, as registered for NVIDIA GPU exporters.
const DEFAULT_PORT: u16 = 9445;

/// Prometheus exporter for NVIDIA GPUs (NVML).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    /// Path of the NVML library to load (default: libnvidia-ml.so.1 from the
    /// dynamic loader's search path).
    #[arg(long = "nvml.library-path", env = "OXMON_NVML_LIBRARY_PATH")]
    nvml_library_path: Option<PathBuf>,

    /// Also emit dcgm-exporter's metric names and labels (DCGM_FI_DEV_*,
    /// labels gpu, UUID, device, modelName, pci_bus_id, Hostname) for its
    /// dashboards.
    #[arg(long = "metrics.dcgm-compat", env = "OXMON_METRICS_DCGM_COMPAT")]
    dcgm_compat: bool,

    /// Export per-process GPU memory and utilisation
    /// (nvidia_gpu_process_memory_bytes, nvidia_gpu_process_*_utilization_ratio).
    #[arg(long = "collector.processes", env = "OXMON_COLLECTOR_PROCESSES")]
    processes: bool,

    /// At most this many processes per GPU: the largest memory users, and
    /// the busiest SM users for utilisation.
    #[arg(
        long = "collector.processes.max",
        env = "OXMON_COLLECTOR_PROCESSES_MAX",
        default_value_t = 50
    )]
    processes_max: usize,

    #[command(flatten)]
    kubernetes: pod_resources::Args,
}

/// The `Hostname` label of dcgm-compat series: `NODE_NAME` (as
/// dcgm-exporter reads it in Kubernetes), else the kernel's hostname.
fn hostname() -> String {
    std::env::var("NODE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    oxmon_core::run(&cli.common, DEFAULT_PORT, move || {
        let xid = Arc::new(XidCounters::default());
        let state = NvmlState::new(cli.nvml_library_path.clone(), xid.clone());
        state.init_now();
        let opts = Options {
            read: ReadOptions {
                processes: cli.processes,
                processes_max: cli.processes_max,
            },
            dcgm_compat: cli.dcgm_compat.then(hostname),
            pods: PodResourcesSource::new(&cli.kubernetes),
        };
        let mut registry = Registry::new("nvidia_gpu");
        registry.register(Arc::new(NvmlCollector::new(state, xid, opts)));
        Ok(Exporter {
            name: "oxmon-gpu",
            description: "Prometheus exporter for NVIDIA GPUs (NVML).",
            registry,
            routes: vec![],
        })
    })
}
