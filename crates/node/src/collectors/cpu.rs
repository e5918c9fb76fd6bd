//! cpu — per-CPU time from `/proc/stat`, thermal throttling and isolation
//! from sysfs, and (behind `--collector.cpu.info`) `/proc/cpuinfo`.
//!
//! Metrics:
//! - `node_cpu_seconds_total{cpu,mode}` (user, nice, system, idle, iowait,
//!   irq, softirq, steal) and `node_cpu_guest_seconds_total{cpu,mode}`
//!   (user, nice; off with `--no-collector.cpu.guest`). Counters that jump
//!   backwards are held at their previous value; an idle counter that drops
//!   by 3 s or more (CPU hot-plug) resets that CPU, as node_exporter does.
//! - `node_cpu_core_throttles_total{package,core}`,
//!   `node_cpu_package_throttles_total{package}` from
//!   `devices/system/cpu/cpu*/thermal_throttle`.
//! - `node_cpu_isolated{cpu}` from `devices/system/cpu/isolated` (read once
//!   at start-up).
//! - With `--collector.cpu.info`: `node_cpu_info{package,core,cpu,vendor,
//!   family,model,model_name,microcode,stepping,cachesize}`; with
//!   `--collector.cpu.info.flags-include` / `bugs-include` (regexes, which
//!   imply `--collector.cpu.info`): `node_cpu_flag_info{flag}` and
//!   `node_cpu_bug_info{bug}` of the first CPU. (`node_cpu_frequency_hertz`
//!   from `/proc/cpuinfo` is written by the cpufreq collector.)
//!
//! On by default.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oxmon_core::collector::{
    sync_collector, CollectError, CollectResult, ScrapeContext, SyncCollector,
};
use oxmon_core::sync::LockExt;
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::dir_listing::{numbered_entries, Refreshed};
use crate::file_cache::{
    is_missing, lines, read_optional, read_trimmed, CacheScope, FileCache, SharedRead,
};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// Flags of the cpu collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Accepted for compatibility: guest CPU time is exported by default.
    #[arg(id = "collector.cpu.guest", long = "collector.cpu.guest", hide = true)]
    pub guest: bool,

    /// Do not export node_cpu_guest_seconds_total.
    #[arg(id = "no-collector.cpu.guest", long = "no-collector.cpu.guest")]
    pub no_guest: bool,

    /// Enables node_cpu_info (and node_cpu_frequency_hertz from /proc/cpuinfo
    /// when cpufreq is enabled).
    #[arg(id = "collector.cpu.info", long = "collector.cpu.info")]
    pub info: bool,

    /// Regex of the `flags` of /proc/cpuinfo exported as node_cpu_flag_info
    /// (implies --collector.cpu.info).
    #[arg(
        id = "collector.cpu.info.flags-include",
        long = "collector.cpu.info.flags-include",
        value_name = "REGEX"
    )]
    pub flags_include: Option<String>,

    /// Regex of the `bugs` of /proc/cpuinfo exported as node_cpu_bug_info
    /// (implies --collector.cpu.info).
    #[arg(
        id = "collector.cpu.info.bugs-include",
        long = "collector.cpu.info.bugs-include",
        value_name = "REGEX"
    )]
    pub bugs_include: Option<String>,
}

impl Flags {
    /// True when /proc/cpuinfo is to be read: `--collector.cpu.info`, or
    /// one of the regexes that imply it.
    pub fn info_requested(&self) -> bool {
        let set = |re: &Option<String>| re.as_deref().is_some_and(|s| !s.is_empty());
        self.info || set(&self.flags_include) || set(&self.bugs_include)
    }
}

/// Clock ticks per second of `/proc/stat` (USER_HZ, 100 on every Linux
/// architecture node_exporter supports).
const USER_HZ: f64 = 100.0;

/// A drop of the idle counter by this many seconds means the CPU was
/// replaced (hot-plug): its saved counters are reset.
const JUMP_BACK_SECONDS: f64 = 3.0;

/// Mode labels of the first eight `/proc/stat` CPU columns.
/// Indices of [`MODES`] in name order: idle, iowait, irq, nice,
/// softirq, steal, system, user.
const MODES_SORTED: [usize; 8] = [3, 4, 5, 1, 6, 7, 2, 0];

const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// One CPU's `/proc/stat` columns in seconds: the eight [`MODES`] then
/// guest and guest_nice.
pub type CpuTimes = [f64; 10];

/// Parses the `cpuN` lines of `/proc/stat` into `(N, times)`, skipping
/// the aggregate `cpu` line. A line with fewer than ten columns (every
/// kernel since 2.6.33 writes ten) or one that is not a number is left
/// out and noted: node_exporter reads missing columns as 0.
pub fn parse_cpu_times(text: &str) -> (Vec<(u32, CpuTimes)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        if !rest.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            continue;
        }
        let mut parts = rest.split_ascii_whitespace();
        let Some(Ok(n)) = parts.next().map(str::parse::<u32>) else {
            bad.line(i + 1, line, "the CPU number is not a number");
            continue;
        };
        let mut times = [0.0; 10];
        let mut columns = 0;
        let mut numbers = true;
        for (slot, v) in times.iter_mut().zip(parts) {
            match v.parse::<u64>() {
                Ok(v) => *slot = v as f64 / USER_HZ,
                Err(_) => numbers = false,
            }
            columns += 1;
        }
        if !numbers {
            bad.line(i + 1, line, "a column is not a number");
        } else if columns < times.len() {
            bad.line(i + 1, line, format!("{columns} columns, expected 10"));
        } else {
            out.push((n, times));
        }
    }
    (out, bad)
}

/// Applies node_exporter's guard against counters going backwards to
/// `saved` (the last exported values) with the fresh `new` values.
pub fn merge_times(saved: &mut CpuTimes, new: &CpuTimes) {
    if saved[3] - new[3] >= JUMP_BACK_SECONDS {
        tracing::debug!(
            "CPU idle counter jumped backwards, possible hotplug event, resetting CPU stats"
        );
        *saved = [0.0; 10];
    }
    for (s, n) in saved.iter_mut().zip(new) {
        if *n >= *s {
            *s = *n;
        }
    }
}

/// Parses a kernel CPU list (`0-3,7,9-10`) into CPU numbers; malformed
/// parts are skipped.
pub fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    if a <= b && b - a < 65536 {
                        out.extend(a..=b);
                    }
                }
            }
            None => {
                if let Ok(n) = part.trim().parse() {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// One processor block of `/proc/cpuinfo`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CpuInfo {
    /// `processor`.
    pub processor: String,
    /// `vendor_id`.
    pub vendor: String,
    /// `cpu family`.
    pub family: String,
    /// `model`.
    pub model: String,
    /// `model name`.
    pub model_name: String,
    /// `microcode`.
    pub microcode: String,
    /// `stepping`.
    pub stepping: String,
    /// `cache size`.
    pub cache_size: String,
    /// `physical id`.
    pub physical_id: String,
    /// `core id`.
    pub core_id: String,
    /// `cpu MHz`.
    pub mhz: Option<f64>,
    /// `flags`.
    pub flags: Vec<String>,
    /// `bugs`.
    pub bugs: Vec<String>,
}

/// Parses `/proc/cpuinfo` (one block per processor, each starting with a
/// `processor` line; x86 field names, ARM's `Features` read as flags).
/// Lines before the first `processor` line are skipped.
pub fn parse_cpuinfo(text: &str) -> Vec<CpuInfo> {
    let mut out = Vec::new();
    let mut cur: Option<CpuInfo> = None;
    for line in lines(text) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        if key == "processor" {
            if let Some(done) = cur.take() {
                out.push(done);
            }
            cur = Some(CpuInfo {
                processor: value.to_string(),
                ..CpuInfo::default()
            });
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        match key {
            "vendor_id" => c.vendor = value.to_string(),
            "cpu family" => c.family = value.to_string(),
            "model" => c.model = value.to_string(),
            "model name" => c.model_name = value.to_string(),
            "microcode" => c.microcode = value.to_string(),
            "stepping" => c.stepping = value.to_string(),
            "cache size" => c.cache_size = value.to_string(),
            "physical id" => c.physical_id = value.to_string(),
            "core id" => c.core_id = value.to_string(),
            "cpu MHz" => {
                c.mhz = value.parse().ok();
                if c.mhz.is_none() {
                    tracing::debug!(cpu = %c.processor, value, "cpu MHz in cpuinfo is not a number, skipped");
                }
            }
            // "Features" is the ARM spelling.
            "flags" | "Features" => {
                c.flags = value.split_ascii_whitespace().map(String::from).collect()
            }
            "bugs" => c.bugs = value.split_ascii_whitespace().map(String::from).collect(),
            _ => {}
        }
    }
    if let Some(done) = cur {
        out.push(done);
    }
    out
}

struct Cpu {
    paths: Paths,
    stat_path: PathBuf,
    /// Shared with the stat collector: one read of `/proc/stat` per scrape.
    stat: Arc<SharedRead>,
    cpuinfo_path: PathBuf,
    cache: FileCache,
    guest: bool,
    info: bool,
    flags_include: Option<Regex>,
    bugs_include: Option<Regex>,
    isolated: Vec<u32>,
    saved: Mutex<HashMap<u32, CpuTimes>>,
    topology: Refreshed<Vec<CpuTopology>>,
    /// `cpu` label values, built once per CPU number.
    labels: Mutex<HashMap<u32, String>>,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let a = &ctx.options.cpu;
    let flags_include = a
        .flags_include
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|re| compile_regex("collector.cpu.info.flags-include", re))
        .transpose()?;
    let bugs_include = a
        .bugs_include
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|re| compile_regex("collector.cpu.info.bugs-include", re))
        .transpose()?;
    let info = a.info_requested();
    if info && !a.info {
        tracing::info!("--collector.cpu.info enabled because --collector.cpu.info.flags-include or bugs-include is set");
    }
    let isolated_path = ctx.paths.sys("devices/system/cpu/isolated");
    let isolated = match read_trimmed(&isolated_path) {
        Ok(text) => parse_cpu_list(&text),
        Err(e) if is_missing(&e) => {
            tracing::debug!(path = %isolated_path.display(), "no isolated CPU list");
            Vec::new()
        }
        Err(e) => return Err(format!("reading {}: {e}", isolated_path.display())),
    };
    Ok(sync_collector(Cpu {
        stat_path: ctx.paths.proc("stat"),
        stat: SharedRead::of(&ctx.paths.proc("stat")),
        cpuinfo_path: ctx.paths.proc("cpuinfo"),
        paths: ctx.paths.clone(),
        cache: FileCache::new(),
        guest: !a.no_guest,
        info,
        flags_include,
        bugs_include,
        isolated,
        saved: Mutex::default(),
        topology: Refreshed::default(),
        labels: Mutex::default(),
    }))
}

impl Cpu {
    fn collect_info(
        &self,
        scope: &mut CacheScope<'_>,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(scope, &self.cpuinfo_path, &mut buf, "cpu")? {
            return Ok(());
        }
        let cpus = parse_cpuinfo(&buf);
        let mut info = MetricFamily::gauge("node_cpu_info", "CPU information from /proc/cpuinfo.");
        for c in &cpus {
            info.add(
                &[
                    ("package", &c.physical_id),
                    ("core", &c.core_id),
                    ("cpu", &c.processor),
                    ("vendor", &c.vendor),
                    ("family", &c.family),
                    ("model", &c.model),
                    ("model_name", &c.model_name),
                    ("microcode", &c.microcode),
                    ("stepping", &c.stepping),
                    ("cachesize", &c.cache_size),
                ],
                1.0,
            );
        }
        out.push(info);
        if let Some(first) = cpus.first() {
            if let Some(re) = &self.flags_include {
                let mut f = MetricFamily::gauge(
                    "node_cpu_flag_info",
                    "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
                );
                for flag in first.flags.iter().filter(|f| re.is_match(f)) {
                    f.add(&[("flag", flag)], 1.0);
                }
                out.push(f);
            }
            if let Some(re) = &self.bugs_include {
                let mut f = MetricFamily::gauge(
                    "node_cpu_bug_info",
                    "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
                );
                for bug in first.bugs.iter().filter(|b| re.is_match(b)) {
                    f.add(&[("bug", bug)], 1.0);
                }
                out.push(f);
            }
        }
        Ok(())
    }

    fn collect_stat(&self, scrape: u64, out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(buf) = self.stat.read_optional(scrape, &self.stat_path, "cpu")? else {
            return Ok(());
        };
        let (fresh, bad) = parse_cpu_times(&buf);
        let mut saved = self.saved.lock_unpoisoned();
        let mut labels = self.labels.lock_unpoisoned();
        // Only the CPUs of this read are exported (and remembered): an
        // offline CPU or a malformed line has no value to show.
        saved.retain(|n, _| fresh.iter().any(|(f, _)| f == n));
        labels.retain(|n, _| saved.contains_key(n));
        for (n, times) in &fresh {
            merge_times(saved.entry(*n).or_insert([0.0; 10]), times);
        }
        let mut secs = MetricFamily::counter(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
        );
        let mut guest = MetricFamily::counter(
            "node_cpu_guest_seconds_total",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
        );
        secs.metrics.reserve(fresh.len() * MODES.len());
        for (n, _) in &fresh {
            let times = &saved[n];
            let cpu = labels.entry(*n).or_insert_with(|| n.to_string());
            // In label order, so the registry need not sort them.
            for i in MODES_SORTED {
                secs.add(&[("cpu", cpu), ("mode", MODES[i])], times[i]);
            }
            if self.guest {
                guest.add(&[("cpu", cpu), ("mode", "nice")], times[9]);
                guest.add(&[("cpu", cpu), ("mode", "user")], times[8]);
            }
        }
        out.push(secs);
        out.push(guest);
        bad.into_result(&self.stat_path)
    }

    /// CPU topology and which throttle counters exist (cached in
    /// `self.topology`, rebuilt when a counter disappears).
    fn load_topology(&self, scope: &mut CacheScope<'_>) -> Result<Vec<CpuTopology>, CollectError> {
        let dir = self.paths.sys("devices/system/cpu");
        let cpus = numbered_entries(&dir, "cpu")?;
        let mut buf = String::new();
        let mut read = |path: &Path| -> Option<u64> {
            scope.read_into(path, &mut buf).ok()?;
            buf.trim().parse().ok()
        };
        let mut topo = Vec::new();
        for (_, name) in &cpus {
            let base = dir.join(name);
            let (Some(package), Some(core)) = (
                read(&base.join("topology/physical_package_id")),
                read(&base.join("topology/core_id")),
            ) else {
                tracing::debug!(cpu = %name, "CPU without topology information");
                continue;
            };
            let core_file = base.join("thermal_throttle/core_throttle_count");
            let package_file = base.join("thermal_throttle/package_throttle_count");
            topo.push(CpuTopology {
                package,
                core,
                core_throttles: core_file.exists().then_some(core_file),
                package_throttles: package_file.exists().then_some(package_file),
            });
        }
        Ok(topo)
    }

    fn collect_throttles(
        &self,
        scope: &mut CacheScope<'_>,
        out: &mut Vec<MetricFamily>,
    ) -> CollectResult {
        let topo = self.topology.get(|| self.load_topology(scope))?;
        let mut packages: BTreeMap<u64, u64> = BTreeMap::new();
        let mut cores: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut buf = String::new();
        let mut stale = false;
        let mut read = |path: &Path| -> Option<u64> {
            if scope.read_into(path, &mut buf).is_err() {
                stale = true;
                return None;
            }
            let count = buf.trim().parse().ok();
            if count.is_none() {
                tracing::debug!(path = %path.display(), "throttle count is not a number, skipped");
            }
            count
        };
        for cpu in topo.iter() {
            if let Some(path) = &cpu.core_throttles {
                if let std::collections::btree_map::Entry::Vacant(e) =
                    cores.entry((cpu.package, cpu.core))
                {
                    if let Some(v) = read(path) {
                        e.insert(v);
                    }
                }
            }
            if let Some(path) = &cpu.package_throttles {
                if let std::collections::btree_map::Entry::Vacant(e) = packages.entry(cpu.package) {
                    if let Some(v) = read(path) {
                        e.insert(v);
                    }
                }
            }
        }
        if stale {
            self.topology.invalidate();
        }
        if !packages.is_empty() {
            let mut f = MetricFamily::counter(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
            );
            for (p, v) in &packages {
                f.add(&[("package", &p.to_string())], *v as f64);
            }
            out.push(f);
        }
        if !cores.is_empty() {
            let mut f = MetricFamily::counter(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
            );
            for ((p, c), v) in &cores {
                f.add(
                    &[("package", &p.to_string()), ("core", &c.to_string())],
                    *v as f64,
                );
            }
            out.push(f);
        }
        Ok(())
    }
}

/// One CPU's place in the topology and its throttle counter files.
struct CpuTopology {
    package: u64,
    core: u64,
    core_throttles: Option<PathBuf>,
    package_throttles: Option<PathBuf>,
}

impl SyncCollector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&self, ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        if self.info {
            self.collect_info(&mut scope, out)?;
        }
        self.collect_stat(ctx.id, out)?;
        if !self.isolated.is_empty() {
            let mut f = MetricFamily::gauge(
                "node_cpu_isolated",
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            );
            for cpu in &self.isolated {
                f.add(&[("cpu", &cpu.to_string())], 1.0);
            }
            out.push(f);
        }
        self.collect_throttles(&mut scope, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lines() {
        let text = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 100 200 300 400 500 600 700 800 900 1000\ncpu1 50 0 25 1000\ncpux 1 2\nintr 5\n";
        let (got, bad) = parse_cpu_times(text);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
        assert_eq!(
            got[0].1,
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
        );
        assert_eq!(
            bad.to_string(),
            "line 3 \"cpu1 50 0 25 1000\": 4 columns, expected 10"
        );
        let (got, bad) = parse_cpu_times("cpu2 1 2 3 4 5 6 7 8 9 x\ncpu3x 1\n");
        assert!(got.is_empty());
        assert_eq!(bad.count(), 2, "{bad}");
    }

    /// `/proc/stat` with a CPU line missing columns: that CPU is not
    /// exported (node_exporter exports zeros for the missing columns, with
    /// success 1) and the collector fails naming the line.
    #[test]
    fn missing_columns_are_not_made_up() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::collectors::testing::paths_under(dir.path());
        let c = crate::collectors::testing::build("cpu", &paths);
        std::fs::write(
            dir.path().join("stat"),
            "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 100 200 300 400 500 600 700 800 0 0\ncpu1 100 200 300\n",
        )
        .unwrap();
        let (out, result) = crate::collectors::testing::try_scrape(c.as_ref());
        let err = result.unwrap_err().to_string();
        assert!(
            err.ends_with("stat: line 3 \"cpu1 100 200 300\": 3 columns, expected 10"),
            "{err}"
        );
        let secs = out
            .iter()
            .find(|f| f.name == "node_cpu_seconds_total")
            .unwrap();
        assert_eq!(secs.metrics.len(), 8, "cpu0's eight modes only");
        assert!(secs.metrics.iter().all(|m| m.labels[0].1 == "0"));
    }

    #[test]
    fn backwards_counters_are_held_and_hotplug_resets() {
        let mut saved = [0.0; 10];
        merge_times(
            &mut saved,
            &[10.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        );
        merge_times(
            &mut saved,
            &[9.0, 0.0, 0.0, 99.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        );
        assert_eq!(saved[0], 10.0);
        assert_eq!(saved[3], 100.0);
        merge_times(
            &mut saved,
            &[1.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        );
        assert_eq!(saved[0], 1.0);
        assert_eq!(saved[3], 5.0);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5,7-8\n"), vec![0, 1, 2, 5, 7, 8]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("3-1,x,4"), vec![4]);
    }

    #[test]
    fn parses_cpuinfo_blocks() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 33\nmodel name\t: Example CPU 8-Core\nstepping\t: 2\nmicrocode\t: 0xa201016\ncpu MHz\t\t: 3400.125\ncache size\t: 512 KB\nphysical id\t: 0\ncore id\t\t: 3\nflags\t\t: fpu sse2 avx2\nbugs\t\t: sysret_ss_attrs spectre_v1\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n";
        let got = parse_cpuinfo(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].model_name, "Example CPU 8-Core");
        assert_eq!(got[0].mhz, Some(3400.125));
        assert_eq!(got[0].core_id, "3");
        assert_eq!(got[0].flags, vec!["fpu", "sse2", "avx2"]);
        assert_eq!(got[0].bugs.len(), 2);
        assert_eq!(got[1].processor, "1");
        assert_eq!(got[1].model, "");
    }
}
