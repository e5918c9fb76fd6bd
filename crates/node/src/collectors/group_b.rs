//! Collector group B (network, hardware sensors, storage health): its
//! modules, flags, table rows, and two helpers the group shares — a device
//! include/exclude filter and [`AttrCache`], which keeps sysfs/procfs files
//! open between scrapes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oxmon_core::collector::{
    sync_collector, BoxFuture, CollectError, CollectResult, Collector, ScrapeContext,
};
use oxmon_core::MetricFamily;
use regex::Regex;

use super::Entry;

#[path = "conntrack.rs"]
pub mod conntrack;
#[path = "edac.rs"]
pub mod edac;
#[path = "hwmon.rs"]
pub mod hwmon;
#[path = "mdadm.rs"]
pub mod mdadm;
#[path = "netclass.rs"]
pub mod netclass;
#[path = "netdev.rs"]
pub mod netdev;
#[path = "netstat.rs"]
pub mod netstat;
#[path = "nvme.rs"]
pub mod nvme;
#[path = "powersupplyclass.rs"]
pub mod powersupplyclass;
#[path = "sockstat.rs"]
pub mod sockstat;
#[path = "softnet.rs"]
pub mod softnet;
#[path = "thermal_zone.rs"]
pub mod thermal_zone;
#[path = "udp_queues.rs"]
pub mod udp_queues;

/// node_exporter's default for `--collector.netstat.fields`.
pub const NETSTAT_FIELDS_DEFAULT: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// Flags of the collectors in this group (node_exporter's names and
/// defaults).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FlagsB {
    /// Regexp of net devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.netdev.device-include")]
    pub netdev_device_include: Option<String>,
    /// DEPRECATED: use --collector.netdev.device-include.
    #[arg(long = "collector.netdev.device-whitelist", hide = true)]
    pub netdev_device_whitelist: Option<String>,
    /// Regexp of net devices to exclude (mutually exclusive to device-include).
    #[arg(long = "collector.netdev.device-exclude")]
    pub netdev_device_exclude: Option<String>,
    /// DEPRECATED: use --collector.netdev.device-exclude.
    #[arg(long = "collector.netdev.device-blacklist", hide = true)]
    pub netdev_device_blacklist: Option<String>,
    /// Collect address-info for every device (node_network_address_info).
    #[arg(long = "collector.netdev.address-info")]
    pub netdev_address_info: bool,
    /// Use (incompatible) metric names that provide more detailed stats on Linux.
    #[arg(long = "collector.netdev.enable-detailed-metrics")]
    pub netdev_detailed: bool,
    /// Use netlink to gather stats instead of /proc/net/dev (default: on).
    #[arg(long = "collector.netdev.netlink")]
    pub netdev_netlink: bool,
    /// Read /proc/net/dev instead of netlink.
    #[arg(long = "no-collector.netdev.netlink")]
    pub no_netdev_netlink: bool,

    /// Regexp of net devices to ignore for netclass collector.
    #[arg(long = "collector.netclass.ignored-devices", default_value = "^$")]
    pub netclass_ignored_devices: String,
    /// Ignore devices where the speed is invalid.
    #[arg(long = "collector.netclass.ignore-invalid-speed")]
    pub netclass_ignore_invalid_speed: bool,
    /// Accepted for compatibility; oxmon-node always reads
    /// /sys/class/net (kept-open files make it cheap).
    #[arg(long = "collector.netclass.netlink")]
    pub netclass_netlink: bool,
    /// Accepted for compatibility (the default).
    #[arg(long = "no-collector.netclass.netlink", hide = true)]
    pub no_netclass_netlink: bool,

    /// Regexp of fields to return for netstat collector.
    #[arg(long = "collector.netstat.fields", default_value = NETSTAT_FIELDS_DEFAULT)]
    pub netstat_fields: String,

    /// Regexp of hwmon chip to include (mutually exclusive to chip-exclude).
    #[arg(long = "collector.hwmon.chip-include")]
    pub hwmon_chip_include: Option<String>,
    /// Regexp of hwmon chip to exclude (mutually exclusive to chip-include).
    #[arg(long = "collector.hwmon.chip-exclude")]
    pub hwmon_chip_exclude: Option<String>,
    /// Regexp of hwmon sensor (`<chip>;<sensor>`) to include.
    #[arg(long = "collector.hwmon.sensor-include")]
    pub hwmon_sensor_include: Option<String>,
    /// Regexp of hwmon sensor (`<chip>;<sensor>`) to exclude.
    #[arg(long = "collector.hwmon.sensor-exclude")]
    pub hwmon_sensor_exclude: Option<String>,

    /// Regexp of power supplies to ignore for powersupplyclass collector.
    #[arg(long = "collector.powersupply.ignored-supplies", default_value = "^$")]
    pub powersupply_ignored: String,
}

/// Table rows of this group.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            name: "conntrack",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(conntrack::Conntrack::new(ctx.paths))),
        },
        Entry {
            name: "edac",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(edac::Edac::new(ctx.paths))),
        },
        Entry {
            name: "hwmon",
            default_enabled: true,
            build: |ctx| Ok(off_thread(hwmon::Hwmon::new(ctx)?)),
        },
        Entry {
            name: "mdadm",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(mdadm::Mdadm::new(ctx.paths))),
        },
        Entry {
            name: "netclass",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(netclass::NetClass::new(ctx)?)),
        },
        Entry {
            name: "netdev",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(netdev::NetDev::new(ctx)?)),
        },
        Entry {
            name: "netstat",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(netstat::NetStat::new(ctx)?)),
        },
        Entry {
            name: "nvme",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(nvme::Nvme::new(ctx.paths))),
        },
        Entry {
            name: "powersupplyclass",
            default_enabled: true,
            build: |ctx| Ok(off_thread(powersupplyclass::PowerSupply::new(ctx)?)),
        },
        Entry {
            name: "sockstat",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(sockstat::SockStat::new(ctx.paths))),
        },
        Entry {
            name: "softnet",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(softnet::Softnet::new(ctx.paths))),
        },
        Entry {
            name: "thermal_zone",
            default_enabled: true,
            build: |ctx| Ok(off_thread(thermal_zone::ThermalZone::new(ctx.paths))),
        },
        Entry {
            name: "udp_queues",
            default_enabled: true,
            build: |ctx| Ok(sync_collector(udp_queues::UdpQueues::new(ctx.paths))),
        },
    ]
}

/// A collector whose files are served by drivers that can take long to
/// answer (ACPI thermal zones and batteries, I2C/PMBus hwmon chips): a cheap
/// check runs on the runtime thread, the reads on a blocking thread that
/// the scrape waits for only until its deadline.
pub(crate) trait SlowSysfs: Send + Sync + 'static {
    /// What the cheap check found (typically a directory listing).
    type Found: Send + 'static;
    /// The collector's name.
    const NAME: &'static str;
    /// Runs on the runtime thread; `None` means there is nothing to read
    /// (and no thread hop is made).
    fn find(&self) -> Result<Option<Self::Found>, CollectError>;
    /// Reads the files; runs on a blocking thread.
    fn read(&self, found: Self::Found, out: &mut Vec<MetricFamily>) -> CollectResult;
}

/// Runs a [`SlowSysfs`] collector off the runtime thread. While an earlier
/// scrape's read is still running, later scrapes report the collector as
/// failed instead of piling up threads behind a hung driver.
pub(crate) struct OffThread<T> {
    inner: Arc<T>,
    busy: Arc<AtomicBool>,
}

/// Wraps a [`SlowSysfs`] collector.
pub(crate) fn off_thread<T: SlowSysfs>(collector: T) -> Arc<dyn Collector> {
    Arc::new(OffThread {
        inner: Arc::new(collector),
        busy: Arc::new(AtomicBool::new(false)),
    })
}

impl<T: SlowSysfs> Collector for OffThread<T> {
    fn name(&self) -> &str {
        T::NAME
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let Some(found) = self.inner.find()? else {
                return Ok(());
            };
            if self.busy.swap(true, Ordering::AcqRel) {
                return Err(
                    format!("an earlier scrape's {} read is still running", T::NAME).into(),
                );
            }
            let (inner, busy) = (self.inner.clone(), self.busy.clone());
            let work = tokio::task::spawn_blocking(move || {
                let mut fams = Vec::new();
                let res = inner.read(found, &mut fams);
                busy.store(false, Ordering::Release);
                (fams, res.map_err(|e| e.to_string()))
            });
            match tokio::time::timeout_at(ctx.deadline, work).await {
                Ok(Ok((fams, res))) => {
                    out.extend(fams);
                    res.map_err(Into::into)
                }
                Ok(Err(e)) => {
                    self.busy.store(false, Ordering::Release);
                    Err(format!("{} reader failed: {e}", T::NAME).into())
                }
                Err(_) => {
                    Err(format!("{} did not answer before the scrape deadline", T::NAME).into())
                }
            }
        })
    }
}

/// Compiles a user-supplied regexp, naming the flag in the error.
pub(crate) fn compile(flag: &str, re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("--{flag}: invalid regexp {re:?}: {e}"))
}

/// node_exporter's device filter: a name is ignored when it matches the
/// exclude regexp, or when an include regexp is set and does not match.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeviceFilter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl DeviceFilter {
    /// Builds the filter from optional include/exclude flags (empty means
    /// unset); both set is an error, as in node_exporter.
    pub(crate) fn new(
        flag_prefix: &str,
        include: Option<&str>,
        exclude: Option<&str>,
    ) -> Result<Self, String> {
        let include = include.filter(|s| !s.is_empty());
        let exclude = exclude.filter(|s| !s.is_empty());
        if include.is_some() && exclude.is_some() {
            return Err(format!(
                "--{flag_prefix}-include and --{flag_prefix}-exclude are mutually exclusive"
            ));
        }
        Ok(DeviceFilter {
            include: include
                .map(|r| compile(&format!("{flag_prefix}-include"), r))
                .transpose()?,
            exclude: exclude
                .map(|r| compile(&format!("{flag_prefix}-exclude"), r))
                .transpose()?,
        })
    }

    /// True when `name` should be skipped.
    pub(crate) fn ignored(&self, name: &str) -> bool {
        if let Some(ex) = &self.exclude {
            if ex.is_match(name) {
                return true;
            }
        }
        if let Some(inc) = &self.include {
            return !inc.is_match(name);
        }
        false
    }
}

/// How long a missing file is remembered as missing before it is looked
/// for again (a module loaded later, a device plugged in).
const MISSING_RECHECK: Duration = Duration::from_secs(60);

struct Slot {
    file: Option<File>,
    seen: u64,
    recheck_at: Option<Instant>,
}

#[derive(Default)]
struct CacheInner {
    // Keyed by the path's bytes: hashing an `OsString` is a byte hash,
    // hashing a `PathBuf` walks its components.
    files: HashMap<OsString, Slot>,
    epoch: u64,
}

/// Files kept open across scrapes and re-read with `pread` at offset 0
/// (sysfs attributes and procfs seq files regenerate on such a read).
///
/// Unlike a plain cache it forgets what a scrape did not ask for, so the
/// descriptors of removed devices (container veths come and go) are closed,
/// and it remembers missing files for a while so absent attributes cost no
/// `open` per scrape.
pub(crate) struct AttrCache {
    inner: Mutex<CacheInner>,
    recheck: Duration,
}

impl Default for AttrCache {
    fn default() -> Self {
        AttrCache {
            inner: Mutex::default(),
            recheck: MISSING_RECHECK,
        }
    }
}

impl AttrCache {
    /// Starts one scrape's use of the cache; entries not used by the time
    /// the scope is dropped are closed.
    pub(crate) fn scope(&self) -> CacheScope<'_> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.epoch += 1;
        CacheScope {
            inner,
            buf: Vec::with_capacity(4096),
            recheck: self.recheck,
        }
    }
}

/// One scrape's view of an [`AttrCache`].
pub(crate) struct CacheScope<'a> {
    inner: MutexGuard<'a, CacheInner>,
    buf: Vec<u8>,
    recheck: Duration,
}

impl CacheScope<'_> {
    /// Reads a whole file (looping until end of file) and returns its bytes.
    pub(crate) fn read(&mut self, path: &Path) -> io::Result<&[u8]> {
        self.read_impl(path, false)
    }

    /// Reads a sysfs attribute with a single `pread` (sysfs attributes are
    /// at most a page, and some hwmon drivers misbehave on a second read).
    pub(crate) fn attr_raw(&mut self, path: &Path) -> io::Result<&[u8]> {
        self.read_impl(path, true)
    }

    /// [`Self::attr_raw`] without trailing whitespace.
    pub(crate) fn attr(&mut self, path: &Path) -> io::Result<&[u8]> {
        let b = self.read_impl(path, true)?;
        let end = b
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Ok(&b[..end])
    }

    /// A sysfs attribute as text (invalid UTF-8 replaced), trimmed.
    pub(crate) fn attr_string(&mut self, path: &Path) -> Option<String> {
        let b = self.attr(path).ok()?;
        Some(String::from_utf8_lossy(b).trim().to_string())
    }

    /// A sysfs attribute holding an integer (decimal, or `0x` hex as some
    /// attributes are written), like Go's `ParseInt(s, 0, 64)`.
    pub(crate) fn attr_i64(&mut self, path: &Path) -> Option<i64> {
        let b = self.attr(path).ok()?;
        parse_int_auto(std::str::from_utf8(b).ok()?.trim())
    }

    /// A sysfs attribute holding a number.
    pub(crate) fn attr_f64(&mut self, path: &Path) -> Option<f64> {
        let b = self.attr(path).ok()?;
        std::str::from_utf8(b).ok()?.trim().parse().ok()
    }

    fn read_impl(&mut self, path: &Path, single: bool) -> io::Result<&[u8]> {
        let epoch = self.inner.epoch;
        let inner = &mut *self.inner;
        let slot = match inner.files.get_mut(path.as_os_str()) {
            Some(slot) => {
                slot.seen = epoch;
                slot
            }
            None => inner
                .files
                .entry(path.as_os_str().to_owned())
                .or_insert(Slot {
                    file: None,
                    seen: epoch,
                    recheck_at: None,
                }),
        };
        if slot.file.is_none() {
            if slot.recheck_at.is_some_and(|t| Instant::now() < t) {
                return Err(io::ErrorKind::NotFound.into());
            }
            match File::open(path) {
                Ok(f) => slot.file = Some(f),
                Err(e) => {
                    if e.kind() == io::ErrorKind::NotFound {
                        slot.recheck_at = Some(Instant::now() + self.recheck);
                    }
                    return Err(e);
                }
            }
        }
        let file = slot.file.as_ref().expect("opened above");
        match fill(file, &mut self.buf, single) {
            Ok(()) => Ok(&self.buf),
            Err(e) if is_stale(&e) => {
                // The device behind the descriptor is gone; a new one may
                // have the same path.
                slot.file = None;
                let f = File::open(path)?;
                let res = fill(&f, &mut self.buf, single);
                slot.file = Some(f);
                res.map(|()| &self.buf[..])
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for CacheScope<'_> {
    fn drop(&mut self) {
        let epoch = self.inner.epoch;
        self.inner.files.retain(|_, s| s.seen == epoch);
    }
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(19 /* ENODEV */) | Some(2 /* ENOENT */)
    )
}

fn fill(f: &File, buf: &mut Vec<u8>, single: bool) -> io::Result<()> {
    buf.clear();
    let mut off = 0usize;
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let n = match f.read_at(&mut buf[start..], off as u64) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        };
        buf.truncate(start + n);
        off += n;
        if n == 0 || single {
            return Ok(());
        }
    }
}

/// Parses an integer like Go's `strconv.ParseInt(s, 0, 64)`: decimal,
/// `0x` hex, `0o`/leading-zero octal, `0b` binary, optional sign.
pub(crate) fn parse_int_auto(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        lower.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Names of the entries of a directory with their file type (not
/// following symlinks), sorted by name; a missing directory is `Ok(None)`.
pub(crate) fn dir_entries(path: &Path) -> io::Result<Option<Vec<(String, std::fs::FileType)>>> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(ft) = e.file_type() else { continue };
        out.push((name, ft));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_parsing_like_go() {
        assert_eq!(parse_int_auto("0x1303"), Some(4867));
        assert_eq!(parse_int_auto("0x20"), Some(32));
        assert_eq!(parse_int_auto("-1"), Some(-1));
        assert_eq!(parse_int_auto("1500"), Some(1500));
        assert_eq!(parse_int_auto("0"), Some(0));
        assert_eq!(parse_int_auto("010"), Some(8));
        assert_eq!(parse_int_auto("x"), None);
        assert_eq!(parse_int_auto(""), None);
    }

    #[test]
    fn device_filter() {
        let f = DeviceFilter::new("collector.netdev.device", Some("^lo$"), None).unwrap();
        assert!(!f.ignored("lo"));
        assert!(f.ignored("eth0"));
        let f = DeviceFilter::new("collector.netdev.device", None, Some("^veth")).unwrap();
        assert!(f.ignored("veth12"));
        assert!(!f.ignored("eth0"));
        assert!(DeviceFilter::new("x", Some("a"), Some("b")).is_err());
        assert!(DeviceFilter::new("x", Some("("), None).is_err());
        let none = DeviceFilter::new("x", Some(""), None).unwrap();
        assert!(!none.ignored("anything"));
    }

    #[test]
    fn cache_rereads_forgets_and_remembers_missing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "1\n").unwrap();
        std::fs::write(&b, "x").unwrap();
        let cache = AttrCache::default();
        {
            let mut s = cache.scope();
            assert_eq!(s.attr(&a).unwrap(), b"1");
            assert_eq!(s.read(&b).unwrap(), b"x");
            assert!(s.attr(&dir.path().join("missing")).is_err());
        }
        std::fs::write(&a, "22\n").unwrap();
        {
            let mut s = cache.scope();
            assert_eq!(s.attr_i64(&a), Some(22));
        }
        // `b` and the missing entry were not used in the second scrape.
        assert_eq!(cache.inner.lock().unwrap().files.len(), 1);
        // A file that appears is found once the recheck interval passed.
        let late = dir.path().join("late");
        {
            let mut s = cache.scope();
            assert!(s.attr(&late).is_err());
        }
        std::fs::write(&late, "5").unwrap();
        {
            let mut s = cache.scope();
            assert!(s.attr(&late).is_err(), "still remembered as missing");
        }
        let cache = AttrCache {
            recheck: Duration::from_millis(30),
            ..AttrCache::default()
        };
        {
            let mut s = cache.scope();
            assert!(s.attr(&dir.path().join("later")).is_err());
        }
        std::fs::write(dir.path().join("later"), "6").unwrap();
        {
            let mut s = cache.scope();
            assert!(s.attr(&dir.path().join("later")).is_err());
        }
        std::thread::sleep(Duration::from_millis(40));
        let mut s = cache.scope();
        assert_eq!(s.attr_i64(&dir.path().join("later")), Some(6));
    }
}
