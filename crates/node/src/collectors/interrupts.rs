//! interrupts: interrupt counts per CPU.
//!
//! Source: `<procfs>/interrupts` (a header of CPU columns, then one line per
//! interrupt: name, one count per CPU, then for numbered IRQs the chip
//! (`info`) and the devices, for named ones (`NMI`, `LOC`) a description).
//! Metric: counter `node_interrupts_total{cpu,type,info,devices}`. Lines
//! with fewer counts than CPUs (`ERR`, `MIS`) are skipped, as in
//! node_exporter; a count that is not a number fails the collector after
//! the rest is exported. Off by default. Flags:
//! `--collector.interrupts.name-include` / `--collector.interrupts.name-exclude`
//! (regex, mutually exclusive) match `<type>;<info>;<devices>`;
//! `--[no-]collector.interrupts.include-zeros` (default on) keeps zero
//! counts. Without the file it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::device_filter::DeviceFilter;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// Flags of the interrupts collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regexp of interrupts name to include (mutually exclusive to
    /// --collector.interrupts.name-exclude).
    #[arg(
        id = "collector.interrupts.name-include",
        long = "collector.interrupts.name-include",
        value_name = "REGEX"
    )]
    pub name_include: Option<String>,
    /// Regexp of interrupts name to exclude (mutually exclusive to
    /// --collector.interrupts.name-include).
    #[arg(
        id = "collector.interrupts.name-exclude",
        long = "collector.interrupts.name-exclude",
        value_name = "REGEX"
    )]
    pub name_exclude: Option<String>,
    /// Accepted for compatibility: zero counts are exported by default.
    #[arg(
        id = "collector.interrupts.include-zeros",
        long = "collector.interrupts.include-zeros",
        hide = true
    )]
    pub include_zeros: bool,
    /// Leave out interrupts whose count on a CPU is zero.
    #[arg(
        id = "no-collector.interrupts.include-zeros",
        long = "no-collector.interrupts.include-zeros"
    )]
    pub no_include_zeros: bool,
}

/// One interrupt line.
#[derive(Debug, PartialEq)]
pub struct Interrupt<'a> {
    /// The name before the colon (`0`, `NMI`).
    pub name: &'a str,
    /// Chip for numbered IRQs, description for named ones.
    pub info: String,
    /// Devices of a numbered IRQ (space separated), else empty.
    pub devices: String,
    /// One count per CPU, as written.
    pub counts: Vec<&'a str>,
}

/// Parses `/proc/interrupts`.
pub fn parse_interrupts(text: &str) -> Vec<Interrupt<'_>> {
    let mut lines = text.lines();
    let cpus = lines.next().map_or(0, |h| h.split_whitespace().count());
    let mut out = Vec::new();
    for line in lines {
        // aarch64 writes no space between some names and their counts.
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        if parts.len() < cpus + 1 {
            continue;
        }
        let name = name.trim_start();
        let (info, devices) = if name.parse::<i64>().is_ok() {
            (parts[cpus].to_string(), parts[cpus + 1..].join(" "))
        } else {
            (parts[cpus..].join(" "), String::new())
        };
        out.push(Interrupt {
            name,
            info,
            devices,
            counts: parts[..cpus].to_vec(),
        });
    }
    out
}

struct Interrupts {
    path: PathBuf,
    cache: FileCache,
    filter: DeviceFilter,
    include_zeros: bool,
}

impl SyncCollector for Interrupts {
    fn name(&self) -> &'static str {
        "interrupts"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "interrupts")? {
            return Ok(());
        }
        let mut fam = MetricFamily::counter("node_interrupts_total", "Interrupt details.");
        let mut bad = Malformed::default();
        for irq in parse_interrupts(&buf) {
            if self
                .filter
                .ignored(&format!("{};{};{}", irq.name, irq.info, irq.devices))
            {
                continue;
            }
            for (cpu, count) in irq.counts.iter().enumerate() {
                let Ok(v) = count.parse::<f64>() else {
                    bad.note(format!(
                        "interrupt {}: count {count:?} is not a number",
                        irq.name
                    ));
                    continue;
                };
                if v == 0.0 && !self.include_zeros {
                    continue;
                }
                let cpu = cpu.to_string();
                fam.add(
                    &[
                        ("cpu", &cpu),
                        ("type", irq.name),
                        ("info", &irq.info),
                        ("devices", &irq.devices),
                    ],
                    v,
                );
            }
        }
        out.push(fam);
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let f = &ctx.options.interrupts;
    Ok(sync_collector(Interrupts {
        path: ctx.paths.proc("interrupts"),
        cache: FileCache::remembering_missing(),
        filter: DeviceFilter::new(
            "collector.interrupts.name",
            f.name_include.as_deref(),
            f.name_exclude.as_deref(),
        )?,
        include_zeros: !f.no_include_zeros,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build_with, paths_under, scrape};
    use super::*;

    const TEXT: &str = "           CPU0       CPU1
  0:         18          0   IO-APIC   2-edge      timer
 16:          5          7   IO-APIC  16-fasteoi   ehci_hcd:usb1, mmc0
NMI:          1          2   Non-maskable interrupts
ERR:          0
IPI0:3 4 Rescheduling interrupts
";

    #[test]
    fn numbered_and_named_lines() {
        let irqs = parse_interrupts(TEXT);
        assert_eq!(irqs.len(), 4);
        assert_eq!(irqs[0].name, "0");
        assert_eq!(irqs[0].info, "IO-APIC");
        assert_eq!(irqs[0].devices, "2-edge timer");
        assert_eq!(irqs[1].devices, "16-fasteoi ehci_hcd:usb1, mmc0");
        assert_eq!(irqs[2].info, "Non-maskable interrupts");
        assert_eq!(irqs[2].devices, "");
        assert_eq!(irqs[3].name, "IPI0");
        assert_eq!(irqs[3].counts, ["3", "4"]);
    }

    #[test]
    fn filter_and_zeros() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("interrupts"), TEXT).unwrap();
        let c = build_with(
            "interrupts",
            &paths_under(dir.path()),
            &[
                "--collector.interrupts.name-exclude=^NMI;",
                "--no-collector.interrupts.include-zeros",
            ],
        );
        let out = scrape(c.as_ref());
        // timer on CPU0, IRQ 16 on both CPUs, IPI0 on both: NMI excluded,
        // the zero count of timer on CPU1 left out.
        assert_eq!(out[0].metrics.len(), 5);
    }
}
