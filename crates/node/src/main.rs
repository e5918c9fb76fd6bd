//! oxmon-node: a drop-in node_exporter for Linux.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser};
use oxmon_core::{Exporter, Registry};

mod collectors;
mod device_filter;
mod dir_listing;
mod field_names;
mod file_cache;
mod off_thread;
mod paths;
#[cfg(test)]
mod procfs_core_comparison;

/// Host metrics with node_exporter's metric names.
#[derive(Parser, Debug)]
#[command(name = "oxmon-node", version, about)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    /// procfs mountpoint.
    #[arg(long = "path.procfs", default_value = "/proc")]
    procfs: std::path::PathBuf,

    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", default_value = "/sys")]
    sysfs: std::path::PathBuf,

    /// rootfs mountpoint.
    #[arg(long = "path.rootfs", default_value = "/")]
    rootfs: std::path::PathBuf,

    /// udev data path.
    #[arg(long = "path.udev.data", default_value = "/run/udev/data")]
    udev_data: std::path::PathBuf,

    /// Set all collectors to disabled by default.
    #[arg(long = "collector.disable-defaults")]
    disable_defaults: bool,

    #[command(flatten)]
    collectors: collectors::CollectorFlags,
}

/// node_exporter collectors oxmon-node does not implement. Their
/// `--collector.<name>` / `--no-collector.<name>` flags are accepted so a
/// node_exporter command line keeps working; enabling one logs a warning.
const NOT_IMPLEMENTED: &[&str] = &[
    "arp",
    "bcache",
    "bcachefs",
    "bonding",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "dmi",
    "dmmultipath",
    "drbd",
    "drm",
    "ethtool",
    "fibrechannel",
    "infiniband",
    "interrupts",
    "ipvs",
    "kernel_hung",
    "ksmd",
    "lnstat",
    "logind",
    "mountstats",
    "network_route",
    "nfs",
    "nfsd",
    "ntp",
    "pcidevice",
    "perf",
    "processes",
    "qdisc",
    "rapl",
    "runit",
    "selinux",
    "slabinfo",
    "supervisord",
    "sysctl",
    "systemd",
    "tapestats",
    "tcpstat",
    "thermal",
    "watchdog",
    "wifi",
    "xfrm",
    "xfs",
    "zfs",
    "zoneinfo",
];

fn main() -> ExitCode {
    let table = collectors::TABLE;
    // `--collector.<name>` / `--no-collector.<name>` for every collector,
    // added to the derived parser so --help lists them.
    let mut cmd = Cli::command();
    for e in table {
        let state = if e.default_enabled {
            "enabled"
        } else {
            "disabled"
        };
        cmd = cmd
            .arg(
                Arg::new(format!("collector.{}", e.name))
                    .long(format!("collector.{}", e.name))
                    .action(ArgAction::SetTrue)
                    .help(format!(
                        "Enable the {} collector (default: {state}).",
                        e.name
                    )),
            )
            .arg(
                Arg::new(format!("no-collector.{}", e.name))
                    .long(format!("no-collector.{}", e.name))
                    .action(ArgAction::SetTrue)
                    .hide(true),
            );
    }
    for name in NOT_IMPLEMENTED {
        for prefix in ["collector", "no-collector"] {
            cmd = cmd.arg(
                Arg::new(format!("{prefix}.{name}"))
                    .long(format!("{prefix}.{name}"))
                    .action(ArgAction::SetTrue)
                    .hide(true),
            );
        }
    }
    let matches = cmd.get_matches();
    let ignored: Vec<&str> = NOT_IMPLEMENTED
        .iter()
        .copied()
        .filter(|n| matches.get_flag(&format!("collector.{n}")))
        .collect();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let paths = paths::Paths {
        procfs: cli.procfs.clone(),
        sysfs: cli.sysfs.clone(),
        rootfs: cli.rootfs.clone(),
        udev_data: cli.udev_data.clone(),
    };
    let enabled: Vec<&collectors::Entry> = table
        .iter()
        .filter(|e| {
            let on = matches.get_flag(&format!("collector.{}", e.name));
            let off = matches.get_flag(&format!("no-collector.{}", e.name));
            !off && (on || (e.default_enabled && !cli.disable_defaults))
        })
        .collect();
    oxmon_core::run(&cli.common, 9100, move || {
        let ctx = collectors::Ctx {
            paths: &paths,
            flags: &cli.collectors,
        };
        for name in &ignored {
            tracing::warn!(
                collector = name,
                "node_exporter collector not implemented by oxmon-node; flag ignored"
            );
        }
        let mut registry = Registry::new("node");
        for e in enabled {
            let c: Arc<dyn oxmon_core::Collector> =
                (e.build)(&ctx).map_err(|err| format!("collector {}: {err}", e.name))?;
            tracing::info!(collector = e.name, "enabled");
            registry.register(c);
        }
        Ok(Exporter {
            name: "oxmon-node",
            description: "Host metrics with node_exporter's names.",
            registry,
            routes: vec![],
        })
    })
}
