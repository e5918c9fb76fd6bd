//! perf: hardware, software, cache and tracepoint event counts per CPU from
//! `perf_event_open(2)` (through `oxmon_sys::PerfCounter`).
//!
//! Counters count every process on each selected CPU from the first scrape
//! on. Metrics (counters, label `cpu`): hardware `node_perf_cpucycles_total`,
//! `instructions_total`, `branch_instructions_total`, `branch_misses_total`,
//! `cache_refs_total`, `cache_misses_total`, `ref_cpucycles_total`,
//! `stalled_cycles_{backend,frontend}_total`; software
//! `node_perf_page_faults_total`, `context_switches_total`,
//! `cpu_migrations_total`, `minor_faults_total`, `major_faults_total`; cache
//! `node_perf_cache_{l1d_read_hits,l1d_read_misses,l1d_write_hits,l1_instr_read_misses,tlb_instr_read_hits,tlb_instr_read_misses,tlb_data_read_hits,tlb_data_read_misses,tlb_data_write_hits,tlb_data_write_misses,ll_read_hits,ll_read_misses,ll_write_hits,ll_write_misses,bpu_read_hits,bpu_read_misses}_total`;
//! and `node_perf_<subsystem>_<event>` for each `--collector.perf.tracepoint`.
//! Off by default.
//!
//! Flags (node_exporter's): `--collector.perf.cpus` (`1,3-5,8-16:4`; default
//! the online CPUs), `--collector.perf.tracepoint` (repeatable,
//! `subsystem:event`), `--collector.perf.disable-{hardware,software,cache}-profilers`,
//! `--collector.perf.{hardware,software,cache}-profilers` (repeatable
//! profiler names such as `CpuCycles`, `ContextSwitch`, `L1DataReadHit`:
//! only those are opened).
//!
//! node_exporter refuses to start when the kernel refuses a whole profiler
//! group; here each event the kernel refuses (no PMU in a VM, seccomp in a
//! container, `perf_event_paranoid`) is logged once with the reason and left
//! out, and the collector succeeds with what remains. Values are raw counts,
//! as node_exporter reports them (not scaled for multiplexing).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};
use oxmon_sys::{PerfCounter, PerfEvent};

use crate::collectors::cpu::parse_cpu_list;
use crate::collectors::Ctx;
use crate::paths::Paths;

/// Flags of the perf collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// List of CPUs from which perf metrics should be collected.
    #[arg(
        id = "collector.perf.cpus",
        long = "collector.perf.cpus",
        value_name = "CPUS",
        default_value = ""
    )]
    pub cpus: String,
    /// perf tracepoint that should be collected (`subsystem:event`).
    #[arg(
        id = "collector.perf.tracepoint",
        long = "collector.perf.tracepoint",
        value_name = "TRACEPOINT"
    )]
    pub tracepoint: Vec<String>,
    /// disable perf hardware profilers.
    #[arg(
        id = "collector.perf.disable-hardware-profilers",
        long = "collector.perf.disable-hardware-profilers"
    )]
    pub disable_hardware_profilers: bool,
    /// perf hardware profilers that should be collected.
    #[arg(
        id = "collector.perf.hardware-profilers",
        long = "collector.perf.hardware-profilers",
        value_name = "NAME"
    )]
    pub hardware_profilers: Vec<String>,
    /// disable perf software profilers.
    #[arg(
        id = "collector.perf.disable-software-profilers",
        long = "collector.perf.disable-software-profilers"
    )]
    pub disable_software_profilers: bool,
    /// perf software profilers that should be collected.
    #[arg(
        id = "collector.perf.software-profilers",
        long = "collector.perf.software-profilers",
        value_name = "NAME"
    )]
    pub software_profilers: Vec<String>,
    /// disable perf cache profilers.
    #[arg(
        id = "collector.perf.disable-cache-profilers",
        long = "collector.perf.disable-cache-profilers"
    )]
    pub disable_cache_profilers: bool,
    /// perf cache profilers that should be collected.
    #[arg(
        id = "collector.perf.cache-profilers",
        long = "collector.perf.cache-profilers",
        value_name = "NAME"
    )]
    pub cache_profilers: Vec<String>,
}

/// One countable event: node_exporter's profiler name (for the
/// `--collector.perf.*-profilers` flags), the kernel event, the metric.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    /// `CpuCycles`, `ContextSwitch`, `L1DataReadHit` …
    pub profiler: &'static str,
    /// What the kernel counts.
    pub event: PerfEvent,
    /// `node_perf_…_total`.
    pub metric: &'static str,
    /// node_exporter's help text.
    pub help: &'static str,
}

const fn hw(
    profiler: &'static str,
    config: u64,
    metric: &'static str,
    help: &'static str,
) -> EventSpec {
    EventSpec {
        profiler,
        event: PerfEvent {
            kind: PerfEvent::HARDWARE,
            config,
        },
        metric,
        help,
    }
}

const fn sw(
    profiler: &'static str,
    config: u64,
    metric: &'static str,
    help: &'static str,
) -> EventSpec {
    EventSpec {
        profiler,
        event: PerfEvent {
            kind: PerfEvent::SOFTWARE,
            config,
        },
        metric,
        help,
    }
}

// `PERF_COUNT_HW_CACHE_*` ids, operations and results.
const L1D: u64 = 0;
const L1I: u64 = 1;
const LL: u64 = 2;
const DTLB: u64 = 3;
const ITLB: u64 = 4;
const BPU: u64 = 5;
const READ: u64 = 0;
const WRITE: u64 = 1;
const ACCESS: u64 = 0;
const MISS: u64 = 1;

const fn cache(
    profiler: &'static str,
    (id, op, result): (u64, u64, u64),
    metric: &'static str,
    help: &'static str,
) -> EventSpec {
    EventSpec {
        profiler,
        event: PerfEvent {
            kind: PerfEvent::HW_CACHE,
            config: id | op << 8 | result << 16,
        },
        metric,
        help,
    }
}

/// Hardware events (`PERF_COUNT_HW_*` numbers).
#[rustfmt::skip]
pub const HARDWARE: [EventSpec; 9] = [
    hw("CpuCycles", 0, "node_perf_cpucycles_total", "Number of CPU cycles (frequency scaled)"),
    hw("CpuInstr", 1, "node_perf_instructions_total", "Number of CPU instructions"),
    hw("CacheRef", 2, "node_perf_cache_refs_total", "Number of cache references (non frequency scaled)"),
    hw("CacheMisses", 3, "node_perf_cache_misses_total", "Number of cache misses"),
    hw("BranchInstr", 4, "node_perf_branch_instructions_total", "Number of CPU branch instructions"),
    hw("BranchMisses", 5, "node_perf_branch_misses_total", "Number of CPU branch misses"),
    hw("StalledCyclesFrontend", 7, "node_perf_stalled_cycles_frontend_total", "Number of stalled frontend CPU cycles"),
    hw("StalledCyclesBackend", 8, "node_perf_stalled_cycles_backend_total", "Number of stalled backend CPU cycles"),
    hw("RefCpuCycles", 9, "node_perf_ref_cpucycles_total", "Number of CPU cycles"),
];

/// Software events (`PERF_COUNT_SW_*` numbers).
#[rustfmt::skip]
pub const SOFTWARE: [EventSpec; 5] = [
    sw("PageFault", 2, "node_perf_page_faults_total", "Number of page faults"),
    sw("ContextSwitch", 3, "node_perf_context_switches_total", "Number of context switches"),
    sw("CpuMigration", 4, "node_perf_cpu_migrations_total", "Number of CPU process migrations"),
    sw("MinorFault", 5, "node_perf_minor_faults_total", "Number of minor page faults"),
    sw("MajorFault", 6, "node_perf_major_faults_total", "Number of major page faults"),
];

/// Cache events.
#[rustfmt::skip]
pub const CACHE: [EventSpec; 16] = [
    cache("L1DataReadHit", (L1D, READ, ACCESS), "node_perf_cache_l1d_read_hits_total", "Number L1 data cache read hits"),
    cache("L1DataReadMiss", (L1D, READ, MISS), "node_perf_cache_l1d_read_misses_total", "Number L1 data cache read misses"),
    cache("L1DataWriteHit", (L1D, WRITE, ACCESS), "node_perf_cache_l1d_write_hits_total", "Number L1 data cache write hits"),
    cache("L1InstrReadMiss", (L1I, READ, MISS), "node_perf_cache_l1_instr_read_misses_total", "Number instruction L1 instruction read misses"),
    cache("InstrTLBReadHit", (ITLB, READ, ACCESS), "node_perf_cache_tlb_instr_read_hits_total", "Number instruction TLB read hits"),
    cache("InstrTLBReadMiss", (ITLB, READ, MISS), "node_perf_cache_tlb_instr_read_misses_total", "Number instruction TLB read misses"),
    cache("DataTLBReadHit", (DTLB, READ, ACCESS), "node_perf_cache_tlb_data_read_hits_total", "Number of data TLB read hits"),
    cache("DataTLBReadMiss", (DTLB, READ, MISS), "node_perf_cache_tlb_data_read_misses_total", "Number of data TLB read misses"),
    cache("DataTLBWriteHit", (DTLB, WRITE, ACCESS), "node_perf_cache_tlb_data_write_hits_total", "Number of data TLB write hits"),
    cache("DataTLBWriteMiss", (DTLB, WRITE, MISS), "node_perf_cache_tlb_data_write_misses_total", "Number of data TLB write misses"),
    cache("LLReadHit", (LL, READ, ACCESS), "node_perf_cache_ll_read_hits_total", "Number last level read hits"),
    cache("LLReadMiss", (LL, READ, MISS), "node_perf_cache_ll_read_misses_total", "Number last level read misses"),
    cache("LLWriteHit", (LL, WRITE, ACCESS), "node_perf_cache_ll_write_hits_total", "Number last level write hits"),
    cache("LLWriteMiss", (LL, WRITE, MISS), "node_perf_cache_ll_write_misses_total", "Number last level write misses"),
    cache("BPUReadHit", (BPU, READ, ACCESS), "node_perf_cache_bpu_read_hits_total", "Number BPU read hits"),
    cache("BPUReadMiss", (BPU, READ, MISS), "node_perf_cache_bpu_read_misses_total", "Number BPU read misses"),
];

/// `--collector.perf.cpus` as node_exporter reads it: comma-separated CPU
/// numbers and `first-last` ranges with an optional `:stride`
/// (`0-8:4` is 0, 4, 8).
pub fn parse_cpus(flag: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("--collector.perf.cpus: invalid value {flag:?}");
    let mut cpus = Vec::new();
    for part in flag.split(',') {
        let Some((range, stride)) = (if part.contains('-') {
            Some(part.split_once(':').unwrap_or((part, "1")))
        } else {
            None
        }) else {
            cpus.push(part.trim().parse().map_err(|_| bad())?);
            continue;
        };
        let stride: u32 = stride.parse().map_err(|_| bad())?;
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if stride == 0 || b < a || b - a > 65535 {
            return Err(bad());
        }
        cpus.extend((a..=b).step_by(stride as usize));
    }
    Ok(cpus)
}

/// A tracepoint flag `subsystem:event`.
pub fn parse_tracepoint(flag: &str) -> Result<(&str, &str), String> {
    match flag.split(':').collect::<Vec<_>>()[..] {
        [sub, event] if !sub.is_empty() && !event.is_empty() => Ok((sub, event)),
        _ => Err(format!(
            "--collector.perf.tracepoint: invalid tracepoint {flag:?} (want subsystem:event)"
        )),
    }
}

/// The events of one group the flags select: none when disabled, only the
/// named profilers when names are given (unknown names are warned about and
/// ignored, as node_exporter ignores them), else all.
fn select(group: &[EventSpec], disabled: bool, names: &[String], flag: &str) -> Vec<EventSpec> {
    if disabled {
        return Vec::new();
    }
    if names.is_empty() {
        return group.to_vec();
    }
    for n in names {
        if !group.iter().any(|e| e.profiler == n) {
            tracing::warn!(flag, profiler = %n, "unknown perf profiler ignored");
        }
    }
    group
        .iter()
        .filter(|e| names.iter().any(|n| n == e.profiler))
        .copied()
        .collect()
}

/// A metric to open on every CPU.
struct Wanted {
    metric: String,
    help: String,
    event: Option<PerfEvent>,
}

/// The counters of one metric that opened, with their `cpu` labels.
struct OpenFamily {
    metric: String,
    help: String,
    counters: Vec<(String, PerfCounter)>,
}

/// The perf collector.
pub struct Perf {
    cpus: Vec<u32>,
    wanted: Vec<Wanted>,
    open: OnceLock<Vec<OpenFamily>>,
}

impl Perf {
    /// Opens every wanted event on every CPU. What the kernel refuses is
    /// logged once per distinct reason, naming the events and CPUs (a VM
    /// without a PMU refuses all 25 hardware and cache events alike).
    fn open_all(&self) -> Vec<OpenFamily> {
        let mut families = Vec::new();
        let mut refused: BTreeMap<String, (Vec<&str>, Vec<u32>)> = BTreeMap::new();
        for w in &self.wanted {
            let Some(event) = w.event else {
                continue;
            };
            let mut counters = Vec::new();
            for &cpu in &self.cpus {
                match PerfCounter::open(event, cpu) {
                    Ok(c) => counters.push((cpu.to_string(), c)),
                    Err(e) => {
                        let (metrics, cpus) = refused.entry(e.to_string()).or_default();
                        if metrics.last() != Some(&w.metric.as_str()) {
                            metrics.push(&w.metric);
                        }
                        if !cpus.contains(&cpu) {
                            cpus.push(cpu);
                        }
                    }
                }
            }
            if !counters.is_empty() {
                families.push(OpenFamily {
                    metric: w.metric.clone(),
                    help: w.help.clone(),
                    counters,
                });
            }
        }
        for (error, (metrics, cpus)) in refused {
            tracing::warn!(
                %error,
                metrics = %metrics.join(","),
                cpus = ?cpus,
                "perf events refused by the kernel, left out"
            );
        }
        families
    }
}

impl SyncCollector for Perf {
    fn name(&self) -> &'static str {
        "perf"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let open = self.open.get_or_init(|| self.open_all());
        let mut result = Ok(());
        for fam in open {
            let metric = &fam.metric;
            let mut f = MetricFamily::counter(metric.clone(), fam.help.clone());
            for (cpu, c) in &fam.counters {
                match c.read() {
                    Ok(v) => {
                        f.add(&[("cpu", cpu)], v as f64);
                    }
                    Err(e) => result = Err(format!("reading {metric} on cpu {cpu}: {e}").into()),
                }
            }
            out.push(f);
        }
        result
    }
}

/// The online CPUs (`<sysfs>/devices/system/cpu/online`), else as many as
/// this process may run on.
fn online_cpus(paths: &Paths) -> Vec<u32> {
    let online = std::fs::read_to_string(paths.sys("devices/system/cpu/online"))
        .map(|t| parse_cpu_list(&t))
        .unwrap_or_default();
    if !online.is_empty() {
        return online;
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n as u32).collect()
}

/// The tracepoint's id from tracefs (`<sysfs>/kernel/tracing`, or the older
/// `<sysfs>/kernel/debug/tracing`).
fn tracepoint_id(paths: &Paths, sub: &str, event: &str) -> Result<u64, String> {
    let rel = format!("events/{sub}/{event}/id");
    let mut last = String::new();
    for dir in ["kernel/tracing", "kernel/debug/tracing"] {
        let p = paths.sys(&format!("{dir}/{rel}"));
        match std::fs::read_to_string(&p) {
            Ok(t) => {
                return t
                    .trim()
                    .parse()
                    .map_err(|_| format!("{}: not a tracepoint id: {:?}", p.display(), t.trim()))
            }
            Err(e) => last = format!("{}: {e}", p.display()),
        }
    }
    Err(last)
}

/// Builds the collector; counters open at the first scrape.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let f = &ctx.options.perf;
    let cpus = if f.cpus.is_empty() {
        online_cpus(ctx.paths)
    } else {
        parse_cpus(&f.cpus)?
    };
    let mut wanted = Vec::new();
    for tp in &f.tracepoint {
        let (sub, event) = parse_tracepoint(tp)?;
        let id = tracepoint_id(ctx.paths, sub, event);
        if let Err(e) = &id {
            tracing::warn!(tracepoint = %tp, error = %e, "perf tracepoint not found, left out");
        }
        wanted.push(Wanted {
            metric: format!("node_perf_{sub}_{event}"),
            help: format!("Perf tracepoint {sub}:{event}"),
            event: id.ok().map(|config| PerfEvent {
                kind: PerfEvent::TRACEPOINT,
                config,
            }),
        });
    }
    for spec in [
        select(
            &HARDWARE,
            f.disable_hardware_profilers,
            &f.hardware_profilers,
            "--collector.perf.hardware-profilers",
        ),
        select(
            &SOFTWARE,
            f.disable_software_profilers,
            &f.software_profilers,
            "--collector.perf.software-profilers",
        ),
        select(
            &CACHE,
            f.disable_cache_profilers,
            &f.cache_profilers,
            "--collector.perf.cache-profilers",
        ),
    ]
    .into_iter()
    .flatten()
    {
        wanted.push(Wanted {
            metric: spec.metric.to_string(),
            help: spec.help.to_string(),
            event: Some(spec.event),
        });
    }
    Ok(sync_collector(Perf {
        cpus,
        wanted,
        open: OnceLock::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build_with, paths_under, scrape};

    #[test]
    fn cpu_lists_as_node_exporter_reads_them() {
        assert_eq!(parse_cpus("0").unwrap(), [0]);
        assert_eq!(parse_cpus("1,3-5").unwrap(), [1, 3, 4, 5]);
        assert_eq!(parse_cpus("0-8:4").unwrap(), [0, 4, 8]);
        assert_eq!(parse_cpus("1-10:5").unwrap(), [1, 6]);
        for bad in ["", "a", "1-", "3-1", "0-4:0", "0-4:x", "1-2-3", "-1"] {
            let e = parse_cpus(bad).unwrap_err();
            assert!(e.contains("--collector.perf.cpus"), "{bad}: {e}");
        }
    }

    #[test]
    fn tracepoints_are_subsystem_colon_event() {
        assert_eq!(
            parse_tracepoint("sched:sched_switch").unwrap(),
            ("sched", "sched_switch")
        );
        for bad in ["sched", "a:b:c", ":x", "x:"] {
            assert!(parse_tracepoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tracepoint_ids_come_from_tracefs_under_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        let e = tracepoint_id(&paths, "sched", "sched_switch").unwrap_err();
        assert!(
            e.contains("kernel/debug/tracing/events/sched/sched_switch/id"),
            "{e}"
        );
        let old = dir
            .path()
            .join("kernel/debug/tracing/events/sched/sched_switch");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("id"), "316\n").unwrap();
        assert_eq!(tracepoint_id(&paths, "sched", "sched_switch"), Ok(316));
        let new = dir.path().join("kernel/tracing/events/sched/sched_switch");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("id"), "317\n").unwrap();
        assert_eq!(tracepoint_id(&paths, "sched", "sched_switch"), Ok(317));
        std::fs::write(new.join("id"), "x\n").unwrap();
        let e = tracepoint_id(&paths, "sched", "sched_switch").unwrap_err();
        assert!(e.contains("not a tracepoint id"), "{e}");
    }

    #[test]
    fn profiler_flags_select_events() {
        let names = |v: Vec<EventSpec>| v.iter().map(|e| e.profiler).collect::<Vec<_>>();
        assert_eq!(select(&SOFTWARE, false, &[], "x").len(), 5);
        assert!(select(&SOFTWARE, true, &[], "x").is_empty());
        let some = vec!["ContextSwitch".to_string(), "Nonsense".to_string()];
        assert_eq!(
            names(select(&SOFTWARE, false, &some, "x")),
            ["ContextSwitch"]
        );
        // Cache configs are id | op << 8 | result << 16.
        assert_eq!(CACHE[1].event.config, 0x10000);
        assert_eq!(CACHE[9].event.config, 3 | 1 << 8 | 1 << 16);
    }

    #[test]
    fn bad_flags_stop_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        let options = crate::collectors::testing::options(&["--collector.perf.tracepoint=nocolon"]);
        let ctx = Ctx {
            paths: &paths,
            options: &options,
        };
        let e = build(&ctx).err().unwrap();
        assert!(e.contains("--collector.perf.tracepoint"), "{e}");
    }

    /// Software counters on CPU 0 where the kernel allows them; where it
    /// refuses, the collector still succeeds with no perf families. The
    /// output says which path ran.
    #[test]
    fn counts_software_events_or_degrades_gracefully() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("devices/system/cpu")).unwrap();
        std::fs::write(dir.path().join("devices/system/cpu/online"), "0\n").unwrap();
        let c = build_with(
            "perf",
            &paths_under(dir.path()),
            &[
                "--collector.perf.disable-hardware-profilers",
                "--collector.perf.disable-cache-profilers",
                "--collector.perf.tracepoint=oxmon_none:missing",
            ],
        );
        let allowed = PerfCounter::open(SOFTWARE[1].event, 0).is_ok();
        let first = scrape(c.as_ref());
        if !allowed {
            println!("perf_event_open refused here: collector succeeded with nothing");
            assert!(first.is_empty(), "{first:?}");
            return;
        }
        println!("perf_event_open allowed: reading software counters on cpu 0");
        let names: Vec<&str> = first.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "node_perf_page_faults_total",
                "node_perf_context_switches_total",
                "node_perf_cpu_migrations_total",
                "node_perf_minor_faults_total",
                "node_perf_major_faults_total",
            ]
        );
        let switches = |out: &[MetricFamily]| {
            let f = out
                .iter()
                .find(|f| f.name == "node_perf_context_switches_total")
                .unwrap();
            assert_eq!(f.metrics.len(), 1);
            assert_eq!(f.metrics[0].labels, [("cpu".into(), "0".into())]);
            match f.metrics[0].value {
                oxmon_core::metrics::Value::Single(v) => v,
                ref other => panic!("{other:?}"),
            }
        };
        let before = switches(&first);
        let mut after = before;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            after = switches(&scrape(c.as_ref()));
            if after > before {
                break;
            }
        }
        assert!(after > before, "{before} then {after}");
    }
}
