//! Collector group A: CPU, memory, kernel counters, disks, filesystems,
//! time, OS identity and the textfile collector. Its modules, flags and
//! table rows.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use oxmon_core::collector::CollectError;

use super::Entry;
use crate::read::FileCache;

#[path = "cpu.rs"]
pub mod cpu;
#[path = "cpu_vulnerabilities.rs"]
pub mod cpu_vulnerabilities;
#[path = "cpufreq.rs"]
pub mod cpufreq;
#[path = "diskstats.rs"]
pub mod diskstats;
#[path = "entropy.rs"]
pub mod entropy;
#[path = "filefd.rs"]
pub mod filefd;
#[path = "filesystem.rs"]
pub mod filesystem;
#[path = "loadavg.rs"]
pub mod loadavg;
#[path = "meminfo.rs"]
pub mod meminfo;
#[path = "meminfo_numa.rs"]
pub mod meminfo_numa;
#[path = "os.rs"]
pub mod os;
#[path = "pressure.rs"]
pub mod pressure;
#[path = "schedstat.rs"]
pub mod schedstat;
#[path = "softirqs.rs"]
pub mod softirqs;
#[path = "stat.rs"]
pub mod stat;
#[path = "textfile.rs"]
pub mod textfile;
#[path = "time.rs"]
pub mod time;
#[path = "timex.rs"]
pub mod timex;
#[path = "uname.rs"]
pub mod uname;
#[path = "vmstat.rs"]
pub mod vmstat;

/// node_exporter's default for `--collector.filesystem.mount-points-exclude`.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// node_exporter's default for `--collector.filesystem.fs-types-exclude`.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// node_exporter's default for `--collector.diskstats.device-exclude`.
pub const DEFAULT_DISK_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// node_exporter's default for `--collector.vmstat.fields`.
pub const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// Flags of the collectors in this group (node_exporter's names and
/// defaults).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FlagsA {
    /// Accepted for compatibility: guest CPU time is exported by default.
    #[arg(long = "collector.cpu.guest", hide = true)]
    pub cpu_guest: bool,

    /// Do not export node_cpu_guest_seconds_total.
    #[arg(long = "no-collector.cpu.guest")]
    pub no_cpu_guest: bool,

    /// Enables node_cpu_info (and node_cpu_frequency_hertz from /proc/cpuinfo
    /// when cpufreq is enabled).
    #[arg(long = "collector.cpu.info")]
    pub cpu_info: bool,

    /// Regex of the `flags` of /proc/cpuinfo exported as node_cpu_flag_info
    /// (implies --collector.cpu.info).
    #[arg(long = "collector.cpu.info.flags-include", value_name = "REGEX")]
    pub cpu_flags_include: Option<String>,

    /// Regex of the `bugs` of /proc/cpuinfo exported as node_cpu_bug_info
    /// (implies --collector.cpu.info).
    #[arg(long = "collector.cpu.info.bugs-include", value_name = "REGEX")]
    pub cpu_bugs_include: Option<String>,

    /// Regex of block devices to ignore for diskstats
    /// [default: ^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$].
    #[arg(
        long = "collector.diskstats.device-exclude",
        alias = "collector.diskstats.ignored-devices",
        value_name = "REGEX"
    )]
    pub diskstats_device_exclude: Option<String>,

    /// Regex of block devices to include (mutually exclusive with
    /// --collector.diskstats.device-exclude).
    #[arg(long = "collector.diskstats.device-include", value_name = "REGEX")]
    pub diskstats_device_include: Option<String>,

    /// Regex of mount points to exclude for the filesystem collector.
    #[arg(
        long = "collector.filesystem.mount-points-exclude",
        alias = "collector.filesystem.ignored-mount-points",
        value_name = "REGEX",
        default_value = DEFAULT_MOUNT_POINTS_EXCLUDE
    )]
    pub filesystem_mount_points_exclude: String,

    /// Regex of filesystem types to exclude for the filesystem collector.
    #[arg(
        long = "collector.filesystem.fs-types-exclude",
        alias = "collector.filesystem.ignored-fs-types",
        value_name = "REGEX",
        default_value = DEFAULT_FS_TYPES_EXCLUDE
    )]
    pub filesystem_fs_types_exclude: String,

    /// How long to wait for a mount point's statfs before marking it stale
    /// (it is then skipped until that statfs returns).
    #[arg(
        long = "collector.filesystem.mount-timeout",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = oxmon_core::parse_duration
    )]
    pub filesystem_mount_timeout: std::time::Duration,

    /// Accepted for compatibility; statfs calls run on one blocking worker
    /// per scrape here.
    #[arg(
        long = "collector.filesystem.stat-workers",
        value_name = "N",
        default_value_t = 4,
        hide = true
    )]
    pub filesystem_stat_workers: u32,

    /// Export softirq counts per vector from /proc/stat
    /// (node_softirqs_total{vector}).
    #[arg(long = "collector.stat.softirq")]
    pub stat_softirq: bool,

    /// Regex of /proc/vmstat fields to export.
    #[arg(
        long = "collector.vmstat.fields",
        value_name = "REGEX",
        default_value = DEFAULT_VMSTAT_FIELDS
    )]
    pub vmstat_fields: String,

    /// Directory (or glob of directories) to read text files with metrics
    /// from; repeatable.
    #[arg(long = "collector.textfile.directory", value_name = "DIR")]
    pub textfile_directory: Vec<String>,
}

/// Table rows of this group.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            name: "cpu",
            default_enabled: true,
            build: cpu::build,
        },
        Entry {
            name: "cpu_vulnerabilities",
            default_enabled: false,
            build: cpu_vulnerabilities::build,
        },
        Entry {
            name: "cpufreq",
            default_enabled: true,
            build: cpufreq::build,
        },
        Entry {
            name: "diskstats",
            default_enabled: true,
            build: diskstats::build,
        },
        Entry {
            name: "entropy",
            default_enabled: true,
            build: entropy::build,
        },
        Entry {
            name: "filefd",
            default_enabled: true,
            build: filefd::build,
        },
        Entry {
            name: "filesystem",
            default_enabled: true,
            build: filesystem::build,
        },
        Entry {
            name: "loadavg",
            default_enabled: true,
            build: loadavg::build,
        },
        Entry {
            name: "meminfo",
            default_enabled: true,
            build: meminfo::build,
        },
        Entry {
            name: "meminfo_numa",
            default_enabled: false,
            build: meminfo_numa::build,
        },
        Entry {
            name: "os",
            default_enabled: true,
            build: os::build,
        },
        Entry {
            name: "pressure",
            default_enabled: true,
            build: pressure::build,
        },
        Entry {
            name: "schedstat",
            default_enabled: true,
            build: schedstat::build,
        },
        Entry {
            name: "softirqs",
            default_enabled: false,
            build: softirqs::build,
        },
        Entry {
            name: "stat",
            default_enabled: true,
            build: stat::build,
        },
        Entry {
            name: "textfile",
            default_enabled: true,
            build: textfile::build,
        },
        Entry {
            name: "time",
            default_enabled: true,
            build: time::build,
        },
        Entry {
            name: "timex",
            default_enabled: true,
            build: timex::build,
        },
        Entry {
            name: "uname",
            default_enabled: true,
            build: uname::build,
        },
        Entry {
            name: "vmstat",
            default_enabled: true,
            build: vmstat::build,
        },
    ]
}

/// Reads `path` through `cache` into `buf`. A missing file is not an error:
/// it is logged at debug level and `Ok(false)` is returned, so the
/// collector reports nothing for it.
fn read_optional(
    cache: &FileCache,
    path: &Path,
    buf: &mut String,
    collector: &'static str,
) -> Result<bool, CollectError> {
    match cache.read_into(path, buf) {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => {
            tracing::debug!(collector, path = %path.display(), "not present, skipped");
            Ok(false)
        }
        Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
    }
}

/// True for the errors that mean "this kernel/host does not have it".
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(19) // ENODEV: sysfs attribute without backing device
}

/// Compiles a user-supplied regex, naming the flag in the error.
fn compile_regex(flag: &str, re: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(re).map_err(|e| format!("--{flag}: invalid regex {re:?}: {e}"))
}

/// Metric names and help texts derived from kernel field names (meminfo,
/// vmstat, NUMA fields): the set is small and fixed by the kernel, so each
/// pair is built once per `(scope, field)` and kept for the life of the
/// process instead of being formatted on every scrape. Never use it for
/// user-controlled names (textfile).
fn intern_pair(
    scope: &'static str,
    field: &str,
    make: impl FnOnce(&str) -> (String, String),
) -> (&'static str, &'static str) {
    type Table = HashMap<&'static str, HashMap<String, (&'static str, &'static str)>>;
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let scoped = table.entry(scope).or_default();
    if let Some(pair) = scoped.get(field) {
        return *pair;
    }
    let (name, help) = make(field);
    let pair: (&'static str, &'static str) = (name.leak(), help.leak());
    scoped.insert(field.to_string(), pair);
    pair
}

/// How long a cached sysfs directory listing (CPUs, NUMA nodes, clock
/// sources) is reused before it is read again: hot-plugged devices show up
/// within this time instead of costing a directory walk on every scrape.
const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A value derived from a sysfs directory walk (which CPUs have cpufreq,
/// the CPU topology, the clock sources), rebuilt after [`LISTING_TTL`] or
/// when a caller finds it stale.
struct Refreshed<T> {
    cached: Mutex<Option<(std::time::Instant, Arc<T>)>>,
}

impl<T> Default for Refreshed<T> {
    fn default() -> Self {
        Refreshed {
            cached: Mutex::new(None),
        }
    }
}

impl<T> Refreshed<T> {
    /// The cached value, or a fresh one from `load`.
    fn get(&self, load: impl FnOnce() -> Result<T, CollectError>) -> Result<Arc<T>, CollectError> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, v)) = cached.as_ref() {
            if at.elapsed() < LISTING_TTL {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(load()?);
        *cached = Some((std::time::Instant::now(), v.clone()));
        Ok(v)
    }

    /// Forgets the value (something in it vanished).
    fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The `<prefix><N>` entries of `dir` (see [`crate::read::numbered_entries`]);
/// empty when the directory does not exist.
fn numbered_or_empty(dir: &Path, prefix: &str) -> Result<Vec<(u32, String)>, CollectError> {
    match crate::read::numbered_entries(dir, prefix) {
        Ok(list) => Ok(list),
        Err(e) if is_missing(&e) => Ok(Vec::new()),
        Err(e) => Err(format!("listing {}: {e}", dir.display()).into()),
    }
}

/// Metric names remembered by line position, for files whose field order
/// the kernel keeps fixed (`/proc/meminfo`, `/proc/vmstat`): a line whose
/// key equals the key seen at that position on the previous scrape reuses
/// its names (or its "not exported" verdict) without hashing, regex
/// matching or formatting.
#[derive(Default)]
struct FieldNames(Mutex<NameTable>);

/// `(key, names)` by line position; `None` names: not exported.
type NameTable = Vec<(String, Option<(&'static str, &'static str)>)>;

impl FieldNames {
    fn lock(&self) -> std::sync::MutexGuard<'_, NameTable> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The names for `key` at position `i` of `table`, computed by `make` (and
/// remembered) when the position held another key.
fn names_at(
    table: &mut NameTable,
    i: usize,
    key: &str,
    make: impl FnOnce(&str) -> Option<(&'static str, &'static str)>,
) -> Option<(&'static str, &'static str)> {
    if let Some((k, v)) = table.get(i) {
        if k == key {
            return *v;
        }
    }
    let v = make(key);
    if table.len() <= i {
        table.resize(i + 1, (String::new(), None));
    }
    table[i] = (key.to_string(), v);
    v
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::collectors::{CollectorFlags, Ctx};
    use crate::paths::Paths;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: FlagsA,
    }

    fn flags(args: &[&str]) -> CollectorFlags {
        let cli = Cli::try_parse_from(std::iter::once("oxmon-node").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        CollectorFlags {
            a: cli.a,
            b: Default::default(),
        }
    }

    fn build(name: &str, args: &[&str]) -> Result<(), String> {
        let paths = Paths {
            procfs: "/nonexistent/proc".into(),
            sysfs: "/nonexistent/sys".into(),
            rootfs: "/nonexistent".into(),
            udev_data: "/nonexistent/udev".into(),
        };
        let flags = flags(args);
        let ctx = Ctx {
            paths: &paths,
            flags: &flags,
        };
        let entry = entries().into_iter().find(|e| e.name == name).unwrap();
        (entry.build)(&ctx).map(|_| ())
    }

    #[test]
    fn node_exporter_flag_names_and_defaults() {
        let f = flags(&[]).a;
        assert_eq!(
            f.filesystem_mount_points_exclude,
            DEFAULT_MOUNT_POINTS_EXCLUDE
        );
        assert_eq!(f.filesystem_fs_types_exclude, DEFAULT_FS_TYPES_EXCLUDE);
        assert_eq!(
            f.filesystem_mount_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(f.vmstat_fields, DEFAULT_VMSTAT_FIELDS);
        assert!(!f.cpu_info && !f.stat_softirq && !f.no_cpu_guest);
        let f = flags(&[
            "--collector.cpu.info",
            "--collector.stat.softirq",
            "--no-collector.cpu.guest",
            "--collector.filesystem.ignored-mount-points=^/x",
            "--collector.diskstats.ignored-devices=^loop",
            "--collector.filesystem.mount-timeout=250ms",
            "--collector.textfile.directory=/a",
            "--collector.textfile.directory=/b",
        ])
        .a;
        assert!(f.cpu_info && f.stat_softirq && f.no_cpu_guest);
        assert_eq!(f.filesystem_mount_points_exclude, "^/x");
        assert_eq!(f.diskstats_device_exclude.as_deref(), Some("^loop"));
        assert_eq!(
            f.filesystem_mount_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(f.textfile_directory, ["/a", "/b"]);
    }

    #[test]
    fn bad_flag_values_stop_start_up_with_the_flag_named() {
        let e = build(
            "diskstats",
            &[
                "--collector.diskstats.device-exclude=^sd",
                "--collector.diskstats.device-include=^nvme",
            ],
        )
        .unwrap_err();
        assert!(e.contains("mutually exclusive"), "{e}");
        let e = build("vmstat", &["--collector.vmstat.fields=("]).unwrap_err();
        assert!(e.contains("--collector.vmstat.fields"), "{e}");
        let e = build("cpu", &["--collector.cpu.info.flags-include=[a-"]).unwrap_err();
        assert!(e.contains("--collector.cpu.info.flags-include"), "{e}");
        for name in entries().iter().map(|e| e.name) {
            build(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// Feeds every parser of this group pseudo-random text built from the
    /// characters their formats use (plus multi-byte ones): none may panic.
    #[test]
    fn parsers_never_panic_on_garbage() {
        const PIECES: &[&str] = &[
            "cpu",
            "cpu0",
            " ",
            "  ",
            "\t",
            "\n",
            ":",
            "=",
            ",",
            "-",
            ".",
            "{",
            "}",
            "\"",
            "\\",
            "#",
            "# HELP ",
            "# TYPE ",
            "counter",
            "histogram",
            "summary",
            "_bucket",
            "_sum",
            "le=\"",
            "quantile",
            "kB",
            "0",
            "1",
            "42",
            "18446744073709551616",
            "-7",
            "1e3",
            "NaN",
            "+Inf",
            "é",
            "€",
            "\u{1F600}",
            "some",
            "full",
            "total=",
            "Node",
            "E:",
            "TZif",
            "x",
            "_",
            "\\040",
            "processor",
            "flags",
            "Mitigation",
            "Vulnerable",
            "\0",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let t = text.as_str();
            let _ = loadavg::parse_loadavg(t);
            let _ = t.lines().filter_map(meminfo::parse_mem_line).count();
            let _ = stat::parse_stat(t);
            let _ = cpu::parse_cpu_times(t);
            let _ = cpu::parse_cpuinfo(t);
            let _ = cpu::parse_cpu_list(t);
            let _ = cpu_vulnerabilities::parse_vulnerability(t);
            let _ = cpufreq::parse_khz(t);
            let _ = diskstats::parse_diskstats(t);
            let _ = diskstats::parse_udev(t);
            let _ = filefd::parse_file_nr(t);
            let _ = filesystem::parse_mountinfo(t);
            let _ = filesystem::parse_mounts(t);
            let _ = filesystem::unescape_mount(t);
            let _ = meminfo_numa::parse_node_meminfo(t);
            let _ = meminfo_numa::parse_numastat(t);
            let _ = os::parse_os_release(t);
            let _ = os::major_minor(t);
            let _ = os::parse_date(t);
            let _ = pressure::parse_psi(t);
            let _ = schedstat::parse_schedstat(t);
            let _ = softirqs::parse_softirqs(t);
            let _ = textfile::parse_exposition(t);
            let _ = textfile::wildcard_match(t, t);
            let _ = vmstat::parse_vmstat(t);
            let _ = time::parse_tzif(t.as_bytes());
            let _ = time::parse_fixed_posix_tz(t);
        }
    }
}
