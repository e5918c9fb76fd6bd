//! The exporter's own metrics: `<ns>_exporter_build_info` and the standard
//! `process_*` family set, read from the exporter's own `/proc/self` (never
//! from `--path.procfs`, which may point at a host or fixture tree).

use crate::metrics::{counter, gauge, MetricFamily};

/// The workspace version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from.
pub const REVISION: &str = env!("OXMON_REVISION");
/// The rustc version that built it.
pub const RUSTVERSION: &str = env!("OXMON_RUSTVERSION");

/// Produces the self-metrics for one namespace.
pub struct SelfMetrics {
    build_info: MetricFamily,
    ticks: f64,
    page_size: f64,
    boot_time: Option<f64>,
    /// `/proc/self/stat`, kept open: a scrape reads it with one `pread`.
    stat: Option<std::fs::File>,
}

impl SelfMetrics {
    /// Prepares the constant parts.
    pub fn new(namespace: &str) -> Self {
        let mut build_info = MetricFamily::gauge(
            format!("{namespace}_exporter_build_info"),
            format!("A metric with a constant '1' value labeled by version, revision and rustversion from which {namespace} exporter was built."),
        );
        build_info.add(
            &[
                ("version", VERSION),
                ("revision", REVISION),
                ("rustversion", RUSTVERSION),
            ],
            1.0,
        );
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_btime(&s));
        SelfMetrics {
            build_info,
            ticks: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as f64,
            boot_time,
            stat: std::fs::File::open("/proc/self/stat").ok(),
        }
    }

    /// The families for one scrape.
    pub fn collect(&self) -> Vec<MetricFamily> {
        let mut out = vec![self.build_info.clone()];
        if let Some(stat) = self.read_stat() {
            if let Some(s) = parse_self_stat(&stat) {
                out.push(counter(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    (s.utime + s.stime) as f64 / self.ticks,
                ));
                out.push(gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    s.vsize as f64,
                ));
                out.push(gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    s.rss_pages as f64 * self.page_size,
                ));
                if let Some(boot) = self.boot_time {
                    out.push(gauge(
                        "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        boot + s.start_ticks as f64 / self.ticks,
                    ));
                }
            }
        }
        if let Some(n) = open_fds() {
            out.push(gauge(
                "process_open_fds",
                "Number of open file descriptors.",
                n as f64,
            ));
        }
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(max) = limit.current {
            out.push(gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max as f64,
            ));
        }
        // Unlimited is reported as the largest limit, as client_golang does.
        let address_space = rustix::process::getrlimit(rustix::process::Resource::As);
        out.push(gauge(
            "process_virtual_memory_max_bytes",
            "Maximum amount of virtual memory available in bytes.",
            address_space.current.map_or(u64::MAX as f64, |v| v as f64),
        ));
        out
    }
}

impl SelfMetrics {
    /// The text of `/proc/self/stat`: one `pread` of the kept descriptor
    /// (the kernel writes the line whole), or a fresh read when it could
    /// not be kept or the line filled the buffer.
    fn read_stat(&self) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 1024];
        if let Some(n) = self.stat.as_ref().and_then(|f| f.read_at(&mut buf, 0).ok()) {
            if n > 0 && n < buf.len() {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        std::fs::read_to_string("/proc/self/stat").ok()
    }
}

/// Open descriptors. Linux 6.2 and later give the count as the size of
/// `/proc/self/fd`, one `stat` instead of listing the directory (which the
/// kernel fills entry by entry); older kernels give 0 there and are listed.
fn open_fds() -> Option<usize> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(meta) if meta.len() > 0 => Some(meta.len() as usize),
        _ => listed_fds(),
    }
}

/// Open descriptors by listing `/proc/self/fd`.
fn listed_fds() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    // The count includes the descriptor read_dir itself holds open.
    Some(dir.count().saturating_sub(1))
}

struct SelfStat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`; the command name may contain spaces and
/// parentheses, so fields are counted after the last `)`.
fn parse_self_stat(s: &str) -> Option<SelfStat> {
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")" the first field is state (field 3 of the man page).
    let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
    Some(SelfStat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
        rss_pages: field(24)?,
    })
}

fn parse_btime(s: &str) -> Option<f64> {
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = "1234 (my (odd) exe) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 9876 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_self_stat(line).unwrap();
        assert_eq!(
            (s.utime, s.stime, s.start_ticks, s.vsize, s.rss_pages),
            (250, 50, 9876, 123456789, 2048)
        );
        assert_eq!(parse_btime("cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
    }

    #[test]
    fn open_fds_follow_the_descriptors_opened() {
        // Both ways agree (retried: tests on other threads open files too).
        let agree = (0..50).any(|_| open_fds() == listed_fds());
        assert!(agree, "{:?} vs {:?}", open_fds(), listed_fds());
        let before = open_fds().unwrap();
        let files: Vec<_> = (0..3)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        // Other tests run in parallel threads and open files too: at least three more.
        let after = open_fds().unwrap();
        assert!(after >= before + 3, "{before} -> {after}");
        drop(files);
    }

    #[test]
    fn live_self_metrics() {
        let names: Vec<String> = SelfMetrics::new("t")
            .collect()
            .into_iter()
            .map(|f| f.name.into_owned())
            .collect();
        for want in [
            "t_exporter_build_info",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_virtual_memory_max_bytes",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }
}
