//! filesystem — size and usage of mounted filesystems: the mount table from
//! `<procfs>/1/mountinfo` (falling back to `self/mountinfo`, then the older
//! `mounts` format), `statfs` on `<rootfs>/<mount point>`.
//!
//! Metrics (labels `device`, `fstype`, `mountpoint`): `node_filesystem_size_bytes`,
//! `node_filesystem_free_bytes`, `node_filesystem_avail_bytes`,
//! `node_filesystem_files`, `node_filesystem_files_free`,
//! `node_filesystem_readonly`, `node_filesystem_device_error`; plus
//! `node_filesystem_mount_info{device,major,minor,mountpoint}` = 1.
//! Mount points and types matching `--collector.filesystem.mount-points-exclude`
//! / `--collector.filesystem.fs-types-exclude` are skipped.
//!
//! A hung mount (a dead NFS server) cannot block the scrape: `statfs` runs
//! on a blocking worker thread and each mount gets
//! `--collector.filesystem.mount-timeout` (default 5s). A mount that times
//! out is marked stuck and reported with `device_error` 1 (and no sizes)
//! without being touched again until its pending `statfs` returns. Local
//! filesystems whose statfs only reads in-memory counters (ext4, xfs,
//! tmpfs …) are stat'ed inline. On by default.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::sync::LockExt;
use oxmon_core::{Collector, MetricFamily, ScrapeContext};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::file_cache::{is_missing, lines, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// node_exporter's default for `--collector.filesystem.mount-points-exclude`.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// node_exporter's default for `--collector.filesystem.fs-types-exclude`.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// Flags of the filesystem collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regex of mount points to exclude for the filesystem collector.
    #[arg(id = "collector.filesystem.mount-points-exclude", long = "collector.filesystem.mount-points-exclude", alias = "collector.filesystem.ignored-mount-points", value_name = "REGEX", default_value = DEFAULT_MOUNT_POINTS_EXCLUDE)]
    pub mount_points_exclude: String,

    /// Regex of filesystem types to exclude for the filesystem collector.
    #[arg(id = "collector.filesystem.fs-types-exclude", long = "collector.filesystem.fs-types-exclude", alias = "collector.filesystem.ignored-fs-types", value_name = "REGEX", default_value = DEFAULT_FS_TYPES_EXCLUDE)]
    pub fs_types_exclude: String,

    /// How long to wait for a mount point's statfs before marking it stale
    /// (it is then skipped until that statfs returns).
    #[arg(id = "collector.filesystem.mount-timeout", long = "collector.filesystem.mount-timeout", value_name = "DURATION", default_value = "5s", value_parser = oxmon_core::parse_duration)]
    pub mount_timeout: Duration,

    /// Accepted for compatibility; statfs calls run on one blocking worker
    /// per scrape here.
    #[arg(
        id = "collector.filesystem.stat-workers",
        long = "collector.filesystem.stat-workers",
        value_name = "N",
        default_value_t = 4,
        hide = true
    )]
    pub stat_workers: u32,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Source device (`/dev/sda1`, `tmpfs`, `server:/export`).
    pub device: String,
    /// Mount point as the kernel reports it (octal escapes decoded).
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Per-mount options (`rw,relatime`).
    pub options: String,
    /// Device major number (mountinfo only).
    pub major: String,
    /// Device minor number (mountinfo only).
    pub minor: String,
}

/// Decodes the octal escapes the kernel writes in mount tables (`\040`
/// for a space, `\011` tab, `\012` newline, `\134` backslash).
pub fn unescape_mount(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/<pid>/mountinfo`; a malformed line is left out and noted.
pub fn parse_mountinfo(text: &str) -> (Vec<Mount>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        let mount = (|| {
            if parts.len() < 10 {
                return None;
            }
            let (major, minor) = parts[2].split_once(':')?;
            let sep = parts.iter().skip(6).position(|p| *p == "-")? + 6;
            Some(Mount {
                device: unescape_mount(parts.get(sep + 2)?),
                mount_point: unescape_mount(parts[4]),
                fs_type: parts.get(sep + 1)?.to_string(),
                options: parts[5].to_string(),
                major: major.to_string(),
                minor: minor.to_string(),
            })
        })();
        match mount {
            Some(m) => out.push(m),
            None => bad.line(i + 1, line, "not a mountinfo line"),
        }
    }
    (out, bad)
}

/// Parses the `/proc/mounts` format; a malformed line is left out and
/// noted.
pub fn parse_mounts(text: &str) -> (Vec<Mount>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let mount = (|| {
            Some(Mount {
                device: unescape_mount(parts.next()?),
                mount_point: unescape_mount(parts.next()?),
                fs_type: parts.next()?.to_string(),
                options: parts.next()?.to_string(),
                major: String::new(),
                minor: String::new(),
            })
        })();
        match mount {
            Some(m) => out.push(m),
            None => bad.line(i + 1, line, "not a mounts line"),
        }
    }
    (out, bad)
}

/// What `statfs` said about one mount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Total bytes.
    pub size: f64,
    /// Free bytes.
    pub free: f64,
    /// Bytes available to unprivileged users.
    pub avail: f64,
    /// Total inodes.
    pub files: f64,
    /// Free inodes.
    pub files_free: f64,
}

fn statfs(path: &std::path::Path) -> std::io::Result<Usage> {
    let s = rustix::fs::statvfs(path)?;
    // node_exporter multiplies by statfs' f_bsize, which statvfs reports as
    // f_bsize too.
    let bsize = s.f_bsize as f64;
    Ok(Usage {
        size: s.f_blocks as f64 * bsize,
        free: s.f_bfree as f64 * bsize,
        avail: s.f_bavail as f64 * bsize,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
    })
}

/// Filesystem types whose `statfs` only reads counters the kernel keeps in
/// memory (no device or network I/O, no locks held across I/O), so it cannot
/// hang: these are stat'ed inline, saving the hand-off to a worker thread.
/// Everything else (NFS, CIFS, FUSE, Ceph, ZFS, btrfs, …) goes through the
/// worker with its timeout.
const IN_MEMORY_STATFS: [&str; 9] = [
    "ext2", "ext3", "ext4", "xfs", "tmpfs", "ramfs", "vfat", "msdos", "exfat",
];

/// See [`IN_MEMORY_STATFS`].
fn stats_from_memory(fs_type: &str) -> bool {
    IN_MEMORY_STATFS.contains(&fs_type)
}

/// Outcome of one mount's statfs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok(Usage),
    Error,
    Stuck,
}

/// Mount points whose statfs is still pending after a timeout.
#[derive(Default)]
struct Stuck {
    mounts: Mutex<HashSet<String>>,
}

/// How a mount point is stat'ed (a parameter so tests can simulate a hung
/// mount).
type StatFn = fn(&std::path::Path) -> std::io::Result<Usage>;

/// A mount selected for reporting: the mount, its mount point label and
/// the path `statfs` is called on.
struct Selected {
    mount: Mount,
    mount_point: String,
    stat_path: PathBuf,
}

/// A mount table file kept open to ask the kernel whether the table
/// changed: procfs flags a mount or unmount in the file's namespace with
/// `POLLPRI | POLLERR` on the next `poll` (proc(5), `/proc/pid/mounts`),
/// so an unchanged table is not read and formatted again every scrape.
struct MountWatch {
    path: PathBuf,
    file: std::fs::File,
}

impl MountWatch {
    fn open(path: &std::path::Path) -> Option<Self> {
        let file = std::fs::File::open(path).ok()?;
        Some(MountWatch {
            path: path.to_path_buf(),
            file,
        })
    }

    /// True when the kernel says the table has not changed since the
    /// previous poll (or the open). A file that is not a procfs mount
    /// table (a fixture: a regular file polls writable) is never taken
    /// as unchanged.
    fn unchanged(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(
            &self.file,
            PollFlags::IN | PollFlags::PRI | PollFlags::OUT,
        )];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if poll(&mut fds, Some(&now)).is_err() {
            return false;
        }
        let got = fds[0].revents();
        got.contains(PollFlags::IN)
            && !got.intersects(PollFlags::OUT | PollFlags::PRI | PollFlags::ERR)
    }
}

/// How far one blocking worker got.
struct Progress {
    /// Index of the mount being stat'ed and when that started.
    current: usize,
    started: std::time::Instant,
    /// Outcome per target (`None`: not reached).
    results: Vec<Option<Outcome>>,
    /// Set when the collector gave up on this worker (a hung mount).
    abandoned: bool,
}

struct Filesystem {
    paths: Paths,
    stat: StatFn,
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    timeout: Duration,
    cache: FileCache,
    stuck: Arc<Stuck>,
    /// The last mount table text, the mounts selected from it and what in
    /// it did not parse: the table rarely changes, so parsing and filtering
    /// are skipped when it is the same as on the previous scrape.
    selection: Mutex<Option<(String, Selection)>>,
    /// The mount table the selection was read from, polled for changes.
    watch: Mutex<Option<MountWatch>>,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    let f = &ctx.options.filesystem;
    Ok(Arc::new(Filesystem {
        paths: ctx.paths.clone(),
        stat: statfs,
        mount_points_exclude: compile_regex(
            "collector.filesystem.mount-points-exclude",
            &f.mount_points_exclude,
        )?,
        fs_types_exclude: compile_regex(
            "collector.filesystem.fs-types-exclude",
            &f.fs_types_exclude,
        )?,
        timeout: f.mount_timeout,
        cache: FileCache::new(),
        stuck: Arc::default(),
        selection: Mutex::default(),
        watch: Mutex::default(),
    }))
}

/// The mounts to report, and the error naming the mount table's malformed
/// lines, if any.
type Selection = (Arc<Vec<Selected>>, Option<String>);

impl Filesystem {
    /// The mounts to report, or `None` when procfs has no mount table.
    fn selection(&self) -> Result<Option<Selection>, String> {
        let mut watch = self.watch.lock_unpoisoned();
        if watch.as_ref().is_some_and(MountWatch::unchanged) {
            if let Some((_, selection)) = self.selection.lock_unpoisoned().as_ref() {
                return Ok(Some(selection.clone()));
            }
        }
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        for (rel, mountinfo) in [
            ("1/mountinfo", true),
            ("self/mountinfo", true),
            ("1/mounts", false),
            ("mounts", false),
        ] {
            let path = self.paths.proc(rel);
            // Opened before the read: a change after it is flagged next time.
            if watch.as_ref().is_none_or(|w| w.path != path) {
                *watch = MountWatch::open(&path);
            }
            match scope.read_into(&path, &mut buf) {
                Ok(()) => {
                    let mut last = self.selection.lock_unpoisoned();
                    if let Some((text, selection)) = last.as_ref() {
                        if *text == buf {
                            return Ok(Some(selection.clone()));
                        }
                    }
                    let (mounts, bad) = if mountinfo {
                        parse_mountinfo(&buf)
                    } else {
                        parse_mounts(&buf)
                    };
                    let error = bad.into_result(&path).err().map(|e| e.to_string());
                    let selection = (Arc::new(self.select(mounts)), error);
                    *last = Some((buf, selection.clone()));
                    return Ok(Some(selection));
                }
                Err(e) if is_missing(&e) || e.kind() == std::io::ErrorKind::PermissionDenied => {
                    continue
                }
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            }
        }
        tracing::debug!("no mount table found under procfs");
        Ok(None)
    }

    /// Applies the exclusion flags and drops duplicate mounts.
    fn select(&self, mounts: Vec<Mount>) -> Vec<Selected> {
        let mut seen = HashSet::new();
        let mut selected = Vec::new();
        for mount in mounts {
            let mount_point = self.paths.strip_rootfs(&mount.mount_point).into_owned();
            if self.mount_points_exclude.is_match(&mount_point) {
                tracing::debug!(mountpoint = %mount_point, "ignoring mount point");
                continue;
            }
            if self.fs_types_exclude.is_match(&mount.fs_type) {
                tracing::debug!(fstype = %mount.fs_type, "ignoring fs type");
                continue;
            }
            if !seen.insert((
                mount.device.clone(),
                mount_point.clone(),
                mount.fs_type.clone(),
            )) {
                continue;
            }
            let stat_path = self.paths.root(&mount_point);
            selected.push(Selected {
                mount,
                mount_point,
                stat_path,
            });
        }
        selected
    }

    /// Runs statfs for every target on one blocking worker, which reports
    /// back once when done. A mount whose statfs has run for the timeout is
    /// marked stuck and its worker abandoned (it finishes in the background
    /// and then clears the mark); a new worker takes the remaining mounts.
    async fn stat_all(&self, targets: Vec<(String, PathBuf)>) -> Vec<Outcome> {
        let targets = Arc::new(targets);
        let n = targets.len();
        let mut results = vec![Outcome::Error; n];
        let mut start = 0;
        while start < n {
            let progress = Arc::new(Mutex::new(Progress {
                current: start,
                started: std::time::Instant::now(),
                results: vec![None; n],
                abandoned: false,
            }));
            let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
            {
                let targets = targets.clone();
                let stuck = self.stuck.clone();
                let progress = progress.clone();
                let stat = self.stat;
                tokio::task::spawn_blocking(move || {
                    for (i, (mount_point, path)) in targets.iter().enumerate().skip(start) {
                        {
                            let mut p = progress.lock_unpoisoned();
                            if p.abandoned {
                                return;
                            }
                            p.current = i;
                            p.started = std::time::Instant::now();
                        }
                        let r = stat(path);
                        if let Err(e) = &r {
                            tracing::debug!(path = %path.display(), err = %e, "statfs failed");
                        }
                        // Lock order: progress, then stuck (as in the timeout path).
                        let mut p = progress.lock_unpoisoned();
                        p.results[i] = Some(r.map_or(Outcome::Error, Outcome::Ok));
                        let mut s = stuck.mounts.lock_unpoisoned();
                        if s.remove(mount_point) {
                            tracing::info!(mountpoint = %mount_point, "mount point responds again, monitoring resumes");
                        }
                    }
                    let _ = tx.send(());
                });
            }
            let mut deadline = tokio::time::Instant::now() + self.timeout;
            let resume = loop {
                if tokio::time::timeout_at(deadline, &mut rx).await.is_ok() {
                    break None;
                }
                let mut p = progress.lock_unpoisoned();
                let cur = p.current;
                if p.results[cur].is_none() && p.started.elapsed() >= self.timeout {
                    p.abandoned = true;
                    let mount_point = &targets[cur].0;
                    tracing::warn!(mountpoint = %mount_point, timeout = ?self.timeout, "statfs timed out: mount point marked stale and skipped until it responds");
                    self.stuck
                        .mounts
                        .lock_unpoisoned()
                        .insert(mount_point.clone());
                    p.results[cur] = Some(Outcome::Stuck);
                    break Some(cur + 1);
                }
                // The worker moved on since: give the current mount its own
                // full timeout.
                deadline = tokio::time::Instant::from_std(p.started) + self.timeout;
                if deadline <= tokio::time::Instant::now() {
                    deadline = tokio::time::Instant::now() + self.timeout;
                }
            };
            let p = progress.lock_unpoisoned();
            for (slot, r) in results.iter_mut().zip(p.results.iter()).skip(start) {
                if let Some(r) = r {
                    *slot = *r;
                }
            }
            match resume {
                None => break,
                Some(next) => start = next,
            }
        }
        results
    }
}

impl Collector for Filesystem {
    fn name(&self) -> &str {
        "filesystem"
    }

    fn collect<'a>(
        &'a self,
        _ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let Some((selected, malformed)) = self.selection()? else {
                return Ok(());
            };
            let mut outcomes = vec![Outcome::Stuck; selected.len()];
            let mut targets = Vec::new();
            let mut pending = Vec::new();
            {
                let stuck = self.stuck.mounts.lock_unpoisoned();
                for (idx, sel) in selected.iter().enumerate() {
                    if stuck.contains(&sel.mount_point) {
                        tracing::debug!(mountpoint = %sel.mount_point, "mount point still unresponsive, skipped");
                    } else if stats_from_memory(&sel.mount.fs_type) {
                        outcomes[idx] =
                            (self.stat)(&sel.stat_path).map_or(Outcome::Error, Outcome::Ok);
                    } else {
                        targets.push((sel.mount_point.clone(), sel.stat_path.clone()));
                        pending.push(idx);
                    }
                }
            }
            for (idx, outcome) in pending.into_iter().zip(self.stat_all(targets).await) {
                outcomes[idx] = outcome;
            }

            let names: [(&'static str, &'static str); 5] = [
                ("node_filesystem_size_bytes", "Filesystem size in bytes."),
                (
                    "node_filesystem_free_bytes",
                    "Filesystem free space in bytes.",
                ),
                (
                    "node_filesystem_avail_bytes",
                    "Filesystem space available to non-root users in bytes.",
                ),
                ("node_filesystem_files", "Filesystem total file nodes."),
                (
                    "node_filesystem_files_free",
                    "Filesystem total free file nodes.",
                ),
            ];
            let mut usage: Vec<MetricFamily> = names
                .iter()
                .map(|(n, h)| MetricFamily::gauge(*n, *h))
                .collect();
            let mut readonly =
                MetricFamily::gauge("node_filesystem_readonly", "Filesystem read-only status.");
            let mut device_error = MetricFamily::gauge(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
            );
            let mut mount_info = MetricFamily::gauge(
                "node_filesystem_mount_info",
                "Filesystem mount information.",
            );
            for (sel, outcome) in selected.iter().zip(outcomes) {
                let (m, mount_point) = (&sel.mount, &sel.mount_point);
                let labels: [(&'static str, &str); 3] = [
                    ("device", &m.device),
                    ("fstype", &m.fs_type),
                    ("mountpoint", mount_point),
                ];
                let ro = m.options.split(',').any(|o| o == "ro");
                readonly.add(&labels, if ro { 1.0 } else { 0.0 });
                if !m.major.is_empty() {
                    mount_info.add(
                        &[
                            ("device", &m.device),
                            ("major", &m.major),
                            ("minor", &m.minor),
                            ("mountpoint", mount_point),
                        ],
                        1.0,
                    );
                }
                match outcome {
                    Outcome::Ok(u) => {
                        device_error.add(&labels, 0.0);
                        for (family, v) in
                            usage
                                .iter_mut()
                                .zip([u.size, u.free, u.avail, u.files, u.files_free])
                        {
                            family.add(&labels, v);
                        }
                    }
                    Outcome::Error | Outcome::Stuck => {
                        device_error.add(&labels, 1.0);
                    }
                }
            }
            out.extend(usage);
            out.push(readonly);
            out.push(device_error);
            out.push(mount_info);
            match malformed {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_procfs_mount_table_is_trusted_to_say_unchanged() {
        let live = MountWatch::open(std::path::Path::new("/proc/self/mountinfo")).unwrap();
        assert!(live.unchanged());
        assert!(live.unchanged());
        let dir = tempfile::tempdir().unwrap();
        let fixture = dir.path().join("mountinfo");
        std::fs::write(&fixture, "").unwrap();
        assert!(!MountWatch::open(&fixture).unwrap().unchanged());
    }

    /// A mount in another namespace (`unshare`, util-linux; needs root, as
    /// CI runs) is flagged on that namespace's table, once.
    #[test]
    fn a_new_mount_is_flagged_by_the_watch() {
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("echo ready; read x; mount -t tmpfs oxmon-test /mnt && echo mounted; read y")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (package util-linux) runs");
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(
            lines.next().unwrap().unwrap(),
            "ready",
            "unshare --mount needs root"
        );
        let table = PathBuf::from(format!("/proc/{}/mountinfo", child.id()));
        let watch = MountWatch::open(&table).unwrap();
        assert!(watch.unchanged());
        writeln!(stdin, "go").unwrap();
        assert_eq!(lines.next().unwrap().unwrap(), "mounted");
        assert!(!watch.unchanged(), "the mount was not flagged");
        assert!(watch.unchanged(), "flagged only once");
        assert!(std::fs::read_to_string(&table)
            .unwrap()
            .contains("oxmon-test"));
        writeln!(stdin, "end").unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro\n\
                    30 22 0:25 / /mnt/my\\040disk ro,nosuid master:3 shared:9 - vfat /dev/sdb1 ro\n\
                    broken line here\n";
        let (m, bad) = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(bad.count(), 1);
        assert_eq!(m[0].device, "/dev/sda2");
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!((m[0].major.as_str(), m[0].minor.as_str()), ("8", "2"));
        assert_eq!(m[1].mount_point, "/mnt/my disk");
        assert_eq!(m[1].options, "ro,nosuid");
        assert_eq!(m[1].fs_type, "vfat");
    }

    #[test]
    fn mounts_lines() {
        let (m, bad) = parse_mounts("tmpfs /run tmpfs rw,nosuid 0 0\nshort\n");
        assert_eq!(m.len(), 1);
        assert_eq!(bad.to_string(), "line 2 \"short\": not a mounts line");
        assert_eq!(m[0].mount_point, "/run");
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape_mount("/a\\011b\\134c"), "/a\tb\\c");
        assert_eq!(unescape_mount("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn default_excludes() {
        let mp = Regex::new(DEFAULT_MOUNT_POINTS_EXCLUDE).unwrap();
        assert!(mp.is_match("/proc/sys/fs/binfmt_misc"));
        assert!(mp.is_match("/var/lib/docker/overlay2/x"));
        assert!(!mp.is_match("/"));
        assert!(!mp.is_match("/home"));
        let fs = Regex::new(DEFAULT_FS_TYPES_EXCLUDE).unwrap();
        assert!(fs.is_match("cgroup2"));
        assert!(!fs.is_match("ext4"));
    }

    fn collector(stat: StatFn, timeout: Duration) -> Filesystem {
        Filesystem {
            paths: Paths {
                procfs: "/proc".into(),
                sysfs: "/sys".into(),
                rootfs: "/".into(),
                udev_data: "/nonexistent".into(),
            },
            stat,
            mount_points_exclude: Regex::new("^$").unwrap(),
            fs_types_exclude: Regex::new("^$").unwrap(),
            timeout,
            cache: FileCache::new(),
            stuck: Arc::default(),
            selection: Mutex::default(),
            watch: Mutex::default(),
        }
    }

    /// Simulates a hung NFS mount: any path containing "hung" blocks for
    /// 1.5 s.
    fn slow_stat(path: &std::path::Path) -> std::io::Result<Usage> {
        if path.to_string_lossy().contains("hung") {
            std::thread::sleep(Duration::from_millis(1500));
        }
        Ok(Usage {
            size: 1.0,
            free: 1.0,
            avail: 1.0,
            files: 1.0,
            files_free: 1.0,
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hung_mount_is_marked_stuck_and_recovers() {
        let fs = collector(slow_stat, Duration::from_millis(200));
        let targets = || {
            vec![
                ("/a".to_string(), PathBuf::from("/a")),
                ("/hung".to_string(), PathBuf::from("/hung")),
                ("/b".to_string(), PathBuf::from("/b")),
            ]
        };
        let started = std::time::Instant::now();
        let got = fs.stat_all(targets()).await;
        // The hung mount costs one timeout, and the mounts after it are
        // still stat'ed.
        assert!(started.elapsed() < Duration::from_millis(1000));
        assert!(matches!(got[0], Outcome::Ok(_)));
        assert_eq!(got[1], Outcome::Stuck);
        assert!(matches!(got[2], Outcome::Ok(_)));
        assert!(fs.stuck.mounts.lock().unwrap().contains("/hung"));
        // Once the pending statfs returns, the mount is monitored again.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !fs.stuck.mounts.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "stuck mark never cleared"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every mount takes 120 ms: slow, but each one is within the timeout.
    fn sluggish_stat(_: &std::path::Path) -> std::io::Result<Usage> {
        std::thread::sleep(Duration::from_millis(120));
        slow_stat(std::path::Path::new("/"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeout_is_per_mount_not_per_scrape() {
        let fs = collector(sluggish_stat, Duration::from_millis(300));
        let targets: Vec<(String, PathBuf)> = (0..5)
            .map(|i| (format!("/m{i}"), PathBuf::from(format!("/m{i}"))))
            .collect();
        let got = fs.stat_all(targets).await;
        assert!(got.iter().all(|o| matches!(o, Outcome::Ok(_))), "{got:?}");
        assert!(fs.stuck.mounts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn stats_real_paths_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let fs = collector(statfs, Duration::from_secs(5));
        let got = fs
            .stat_all(vec![
                ("a".into(), dir.path().to_path_buf()),
                ("b".into(), dir.path().join("missing")),
            ])
            .await;
        assert!(matches!(got[0], Outcome::Ok(u) if u.size > 0.0));
        assert_eq!(got[1], Outcome::Error);
    }
}
