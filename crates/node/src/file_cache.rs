//! Reading procfs/sysfs files cheaply and regular files correctly.
//!
//! A scrape reads ~150 small files; opening and closing each costs more
//! than reading it. [`FileCache`] keeps *pseudo-files* open — files on
//! procfs or sysfs, recognised by the filesystem magic of the open
//! descriptor, so a container's `/host/proc` counts too — and re-reads them
//! with `pread` at offset 0: procfs seq files and sysfs attributes
//! regenerate their content on such a read.
//!
//! A regular file (`/etc/os-release`, `/run/udev/data/b8:0`, a fixture
//! tree) is opened for every read: tools replace such files by renaming a
//! new one over them, and a kept descriptor would show the old content
//! forever.
//!
//! Only regular files are read (procfs and sysfs files are regular files
//! too), and opening one never waits: it is opened with `O_NONBLOCK` and
//! its type checked with `fstat` before the first read, so a FIFO or a
//! device node where a collector expects a file (a copied fixture tree, a
//! `--path.procfs` pointing somewhere odd) fails that read at once with
//! "not a regular file" instead of blocking the thread that reads it. The
//! same holds for a file whose lease (a Samba oplock, an NFS delegation)
//! would make `open` wait: the open fails with `EWOULDBLOCK`. Readers on a
//! blocking lane that may wait for a lease break (textfiles) use
//! [`open_regular`] with [`OnLease::Wait`].
//!
//! A read stops with an error past [`MAX_FILE_BYTES`] (a regular file
//! larger than that is refused from its size, before reading).
//!
//! Reads happen inside a [`CacheScope`], one per scrape. A descriptor the
//! scope did not use is closed when the scope ends, so the handles of
//! removed devices (container veths, unplugged disks) do not pile up; a
//! descriptor whose device is gone (`ENODEV`, `ENOENT`, `ESRCH`) is closed
//! and its path opened again once. A cache made with
//! [`FileCache::remembering_missing`] also remembers a missing path for
//! [`MISSING_RECHECK`], so an attribute a device lacks costs no `open` per
//! scrape.

use oxmon_core::hash::FastMap;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oxmon_core::collector::CollectError;
use oxmon_core::sync::LockExt;

/// `SYSFS_MAGIC` of `<linux/magic.h>` (rustix names only procfs's).
const SYSFS_MAGIC: rustix::fs::FsWord = 0x6265_6572;

/// How long a missing file is remembered as missing before it is looked
/// for again (a module loaded later, a device plugged in).
pub const MISSING_RECHECK: Duration = Duration::from_secs(60);

/// The most the cache reads of one file: over it, the read fails with
/// "larger than 64 MiB". The largest files the kernel generates for a
/// collector are `net/udp{,6}` (128 bytes a socket: the limit is reached
/// at half a million UDP sockets) and `1/mountinfo` (a few MB on a node
/// with thousands of mounts); nothing legitimate comes close, while
/// `/proc/kcore` (or a fixture tree's symlink to a huge file) would
/// otherwise be read in full.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// Reads a whole file once, without caching, trimmed at the end (for
/// values read at start-up); only a regular file, opened without waiting.
pub fn read_trimmed(path: &Path) -> io::Result<String> {
    let (bytes, _) = read_regular(path, OnLease::Fail, MAX_FILE_BYTES)?;
    let mut s = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
    let len = s.trim_end().len();
    s.truncate(len);
    Ok(s)
}

/// What [`open_regular`] does when a lease on the file makes `open` wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLease {
    /// Fail with `EWOULDBLOCK` at once: for reads on the runtime thread,
    /// which must never wait.
    Fail,
    /// Wait for the lease holder to give it up (up to the kernel's
    /// `lease-break-time`, 45 s by default): for reads on a blocking lane,
    /// which the scrape deadline abandons, so that a file a Samba or NFS
    /// client holds is read once its lease is broken rather than skipped.
    Wait,
}

/// Reads a whole regular file, without caching (see [`open_regular`]),
/// with its metadata; a file of more than `limit` bytes is an error
/// (`FileTooLarge`), found from its size before reading when it can be.
pub fn read_regular(
    path: &Path,
    on_lease: OnLease,
    limit: usize,
) -> io::Result<(Vec<u8>, Metadata)> {
    let (file, meta) = open_regular(path, on_lease)?;
    if meta.len() > limit as u64 {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::new();
    fill(&file, &mut bytes, Reads::ToEnd, limit)?;
    Ok((bytes, meta))
}

/// Opens `path` for reading without waiting for a FIFO writer or a device,
/// and refuses it unless it is a regular file (after following symlinks).
/// Returns the file and its metadata (from `fstat` on the open file, so
/// both describe the same file).
pub fn open_regular(path: &Path, on_lease: OnLease) -> io::Result<(File, Metadata)> {
    let open = |flags: rustix::fs::OFlags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
    };
    let file = match open(rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY) {
        Err(e) if on_lease == OnLease::Wait && e.kind() == io::ErrorKind::WouldBlock => {
            open(rustix::fs::OFlags::NOCTTY)?
        }
        other => other?,
    };
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a plain file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ));
    }
    Ok((file, meta))
}

/// True for the errors that mean "this kernel/host does not have it".
pub fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(rustix::io::Errno::NODEV.raw_os_error())
}

/// A file's bytes as text: borrowed when valid UTF-8 (a word-at-a-time
/// check), invalid sequences replaced otherwise.
/// `String::from_utf8_lossy` alone walks valid text byte by byte.
pub fn utf8_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The lines of `text` exactly as `str::lines` gives them (split at `\n`,
/// a `\r` before the `\n` dropped, no empty last line), each found with
/// `memchr`: vmstat and snmp6 have a few hundred short lines a scrape, and
/// `str::lines` searches each byte by byte up to an aligned word.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let line = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(at) => {
                let line = &rest[..at];
                rest = &rest[at + 1..];
                line.strip_suffix('\r').unwrap_or(line)
            }
            // A last line without `\n` keeps a `\r` at its end.
            None => std::mem::take(&mut rest),
        };
        Some(line)
    })
}

/// A file that more than one collector parses in the same scrape
/// (`/proc/stat`: cpu and stat; `net/sockstat{,6}`: sockstat and
/// udp_queues), read once per scrape: the first to ask reads it, the
/// others get the same text. On a large host `/proc/stat` is one of the
/// dearest files to produce (its `intr` line sums every interrupt over
/// every CPU). Only for files the kernel writes whole in one read (see
/// [`FileCache::whole_in_one_read`]); a missing one is looked for again a
/// minute later.
pub struct SharedRead {
    cache: FileCache,
    /// The scrape that read it last and what that read gave.
    last: Mutex<Option<(u64, SharedText)>>,
}

/// The text of a shared read, or its error's kind and message (an
/// `io::Error` cannot be cloned for the second reader).
type SharedText = Result<Arc<str>, (io::ErrorKind, String)>;

impl SharedRead {
    /// The process-wide reader of `path`.
    pub fn of(path: &Path) -> Arc<SharedRead> {
        static ALL: std::sync::OnceLock<Mutex<FastMap<PathBuf, Arc<SharedRead>>>> =
            std::sync::OnceLock::new();
        let mut all = ALL.get_or_init(Default::default).lock_unpoisoned();
        Arc::clone(all.entry(path.to_path_buf()).or_insert_with(|| {
            Arc::new(SharedRead {
                cache: FileCache::remembering_missing().whole_in_one_read(),
                last: Mutex::new(None),
            })
        }))
    }

    /// The file's text for scrape `scrape` (a [`ScrapeContext`]'s `id`),
    /// read now unless this scrape already read it. Invalid UTF-8 is an
    /// `InvalidData` error, as with [`CacheScope::read_into`].
    ///
    /// [`ScrapeContext`]: oxmon_core::ScrapeContext
    pub fn read(&self, scrape: u64, path: &Path) -> io::Result<Arc<str>> {
        let mut last = self.last.lock_unpoisoned();
        let text = match &*last {
            Some((id, text)) if *id == scrape => text.clone(),
            _ => {
                let mut buf = String::new();
                let text = match self.cache.scope().read_into(path, &mut buf) {
                    Ok(()) => Ok(Arc::from(buf)),
                    Err(e) => Err((e.kind(), e.to_string())),
                };
                *last = Some((scrape, text.clone()));
                text
            }
        };
        text.map_err(|(kind, message)| io::Error::new(kind, message))
    }

    /// [`SharedRead::read`] as [`read_optional`] treats a file: missing is
    /// `Ok(None)` (logged at debug level), another error fails the
    /// collector.
    pub fn read_optional(
        &self,
        scrape: u64,
        path: &Path,
        collector: &'static str,
    ) -> Result<Option<Arc<str>>, CollectError> {
        match self.read(scrape, path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if is_missing(&e) => {
                tracing::debug!(collector, path = %path.display(), "not present, skipped");
                Ok(None)
            }
            Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
        }
    }
}

/// Reads `path` through `scope` into `buf`. A missing file is not an
/// error: it is logged at debug level and `Ok(false)` is returned, so the
/// collector reports nothing for it.
pub fn read_optional(
    scope: &mut CacheScope<'_>,
    path: &Path,
    buf: &mut String,
    collector: &'static str,
) -> Result<bool, CollectError> {
    match scope.read_into(path, buf) {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => {
            tracing::debug!(collector, path = %path.display(), "not present, skipped");
            Ok(false)
        }
        Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
    }
}

/// Reads a file holding one number (a sysctl, a counter attribute):
/// `Ok(None)` when it does not exist (logged at debug level), an error
/// naming the file when it cannot be read or is not a number.
pub fn read_number(
    scope: &mut CacheScope<'_>,
    path: &Path,
    collector: &'static str,
) -> Result<Option<f64>, CollectError> {
    match scope.attr(path) {
        Ok(b) => match std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            Some(v) => Ok(Some(v)),
            None => Err(format!(
                "{}: not a number: {:?}",
                path.display(),
                String::from_utf8_lossy(&b[..b.len().min(40)])
            )
            .into()),
        },
        Err(e) if is_missing(&e) => {
            tracing::debug!(collector, path = %path.display(), "not present, skipped");
            Ok(None)
        }
        Err(e) => Err(format!("reading {}: {e}", path.display()).into()),
    }
}

/// Parses an integer like Go's `strconv.ParseInt(s, 0, 64)`: decimal,
/// `0x` hex, `0o`/leading-zero octal, `0b` binary, optional sign (sysfs
/// writes some attributes in hex).
pub fn parse_int_auto(s: &str) -> Option<i64> {
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

/// Parses an unsigned integer like Go's `strconv.ParseUint(s, 0, 64)`
/// (decimal, `0x` hex, leading-zero octal): counters that use the whole
/// 64 bits, such as Fibre Channel's all-ones "not implemented" value.
pub fn parse_uint_auto(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if lower.len() > 1 && lower.starts_with('0') {
        u64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.starts_with('+') {
        None
    } else {
        lower.parse().ok()
    }
}

/// What the cache knows about one path.
enum Slot {
    /// A pseudo-file kept open.
    Open(File),
    /// Not found; not looked for again before this instant.
    Missing(Instant),
}

struct Entry {
    slot: Slot,
    /// The scope that last used it.
    seen: u64,
}

#[derive(Default)]
struct Entries {
    // Keyed by the path's bytes: hashing an `OsString` is a byte hash,
    // hashing a `PathBuf` walks its components.
    by_path: FastMap<OsString, Entry>,
    /// Number of the current scope.
    epoch: u64,
}

/// Pseudo-files kept open across scrapes (see the module docs).
#[derive(Default)]
pub struct FileCache {
    entries: Mutex<Entries>,
    missing_recheck: Option<Duration>,
    /// The kernel writes each file whole in one read (see
    /// [`FileCache::whole_in_one_read`]).
    one_read: bool,
}

/// How far [`fill`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Until a read returns nothing.
    ToEnd,
    /// Until a read returns less than asked for.
    UntilShort,
    /// One read.
    One,
}

impl FileCache {
    /// A cache that looks for a missing file again on every read.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache that remembers a missing file for [`MISSING_RECHECK`] (for
    /// collectors that probe many optional attributes).
    pub fn remembering_missing() -> Self {
        FileCache {
            missing_recheck: Some(MISSING_RECHECK),
            ..Self::default()
        }
    }

    /// A cache for files the kernel writes whole on each read from the
    /// start: procfs files built by a single show call (`single_open`:
    /// `/proc/meminfo`, `/proc/stat`, `/proc/loadavg`, `/proc/pressure/*`,
    /// `/proc/net/{netstat,snmp,snmp6,sockstat,sockstat6}`), `/proc/sys`
    /// values, sysfs attributes, and regular files. A read that returns
    /// less than it asked for has the whole file, so the end-of-file read
    /// (a second syscall per file and scrape) is left out. Never for
    /// record-by-record files (`/proc/vmstat`, `/proc/diskstats`,
    /// mountinfo), whose reads stop at a page.
    pub fn whole_in_one_read(self) -> Self {
        FileCache {
            one_read: true,
            ..self
        }
    }

    /// Starts one scrape's use of the cache; descriptors not used by the
    /// time the scope is dropped are closed.
    pub fn scope(&self) -> CacheScope<'_> {
        let mut entries = self.entries.lock_unpoisoned();
        entries.epoch += 1;
        CacheScope {
            entries,
            buf: Vec::new(),
            missing_recheck: self.missing_recheck,
            reads: if self.one_read {
                Reads::UntilShort
            } else {
                Reads::ToEnd
            },
        }
    }

    /// Number of descriptors held open.
    #[cfg(test)]
    fn open_handles(&self) -> usize {
        let entries = self.entries.lock_unpoisoned();
        entries
            .by_path
            .values()
            .filter(|e| matches!(e.slot, Slot::Open(_)))
            .count()
    }
}

/// One scrape's view of a [`FileCache`].
pub struct CacheScope<'a> {
    entries: MutexGuard<'a, Entries>,
    buf: Vec<u8>,
    missing_recheck: Option<Duration>,
    /// How whole files are read.
    reads: Reads,
}

impl CacheScope<'_> {
    /// Reads a whole file into `out` (replacing its content); invalid
    /// UTF-8 is an `InvalidData` error.
    pub fn read_into(&mut self, path: &Path, out: &mut String) -> io::Result<()> {
        let mut bytes = std::mem::take(out).into_bytes();
        self.load(path, self.reads, &mut bytes)?;
        *out = String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
        Ok(())
    }

    /// Reads a whole file and returns its bytes.
    pub fn read(&mut self, path: &Path) -> io::Result<&[u8]> {
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.load(path, self.reads, &mut buf);
        self.buf = buf;
        res.map(|()| &self.buf[..])
    }

    /// Reads a sysfs attribute with a single `pread` (sysfs attributes are
    /// at most a page, and some hwmon drivers misbehave on a second read).
    pub fn attr_raw(&mut self, path: &Path) -> io::Result<&[u8]> {
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.load(path, Reads::One, &mut buf);
        self.buf = buf;
        res.map(|()| &self.buf[..])
    }

    /// [`Self::attr_raw`] without trailing whitespace.
    pub fn attr(&mut self, path: &Path) -> io::Result<&[u8]> {
        let b = self.attr_raw(path)?;
        let end = b
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Ok(&b[..end])
    }

    /// A sysfs attribute as text (invalid UTF-8 replaced), trimmed.
    pub fn attr_string(&mut self, path: &Path) -> Option<String> {
        let b = self.attr(path).ok()?;
        Some(String::from_utf8_lossy(b).trim().to_string())
    }

    /// A sysfs attribute holding an integer (decimal, or `0x` hex as some
    /// attributes are written), like Go's `ParseInt(s, 0, 64)`; `None`
    /// when it cannot be read or is not a number (logged at debug level:
    /// the attribute is skipped, as node_exporter skips it).
    pub fn attr_i64(&mut self, path: &Path) -> Option<i64> {
        let b = self.attr(path).ok()?;
        let v = std::str::from_utf8(b)
            .ok()
            .and_then(|t| parse_int_auto(t.trim()));
        if v.is_none() {
            not_a_number(path, b);
        }
        v
    }

    /// A sysfs attribute holding a number; `None` when it cannot be read
    /// or is not a number (logged at debug level, as for [`Self::attr_i64`]).
    pub fn attr_f64(&mut self, path: &Path) -> Option<f64> {
        let b = self.attr(path).ok()?;
        let v = std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        if v.is_none() {
            not_a_number(path, b);
        }
        v
    }

    /// Reads `path` into `buf` through a kept descriptor, or opens it
    /// (keeping the descriptor when the file is a pseudo-file).
    fn load(&mut self, path: &Path, reads: Reads, buf: &mut Vec<u8>) -> io::Result<()> {
        let entries = &mut *self.entries;
        let epoch = entries.epoch;
        let key = path.as_os_str();
        if let Some(entry) = entries.by_path.get_mut(key) {
            entry.seen = epoch;
            match &entry.slot {
                Slot::Open(file) => match fill(file, buf, reads, MAX_FILE_BYTES) {
                    Ok(()) => return Ok(()),
                    // The device behind the descriptor is gone; a new one
                    // may have the same path.
                    Err(e) if is_gone(&e) => {
                        entries.by_path.remove(key);
                    }
                    // Attributes that refuse a read for now (`speed` of a
                    // link that is down: EINVAL) answer again through the
                    // same descriptor once they can: keep it.
                    Err(e) => return Err(e),
                },
                Slot::Missing(until) if Instant::now() < *until => {
                    return Err(io::ErrorKind::NotFound.into());
                }
                Slot::Missing(_) => {
                    entries.by_path.remove(key);
                }
            }
        }
        let (file, meta) = match open_regular(path, OnLease::Fail) {
            Ok(opened) => opened,
            Err(e) => {
                if let Some(recheck) = self.missing_recheck {
                    if e.kind() == io::ErrorKind::NotFound {
                        let slot = Slot::Missing(Instant::now() + recheck);
                        entries
                            .by_path
                            .insert(key.to_owned(), Entry { slot, seen: epoch });
                    }
                }
                return Err(e);
            }
        };
        // procfs and sysfs give no size (0, or a page whatever the
        // content): those are cut off while reading.
        let pseudo = is_pseudo_file(&file);
        if !pseudo && meta.len() > MAX_FILE_BYTES as u64 {
            return Err(too_large(MAX_FILE_BYTES));
        }
        let filled = fill(&file, buf, reads, MAX_FILE_BYTES);
        let gone = filled.as_ref().is_err_and(is_gone);
        if pseudo && !gone {
            let slot = Slot::Open(file);
            entries
                .by_path
                .insert(key.to_owned(), Entry { slot, seen: epoch });
        }
        filled
    }
}

impl Drop for CacheScope<'_> {
    fn drop(&mut self) {
        let epoch = self.entries.epoch;
        self.entries.by_path.retain(|_, e| e.seen == epoch);
    }
}

/// Logs an attribute skipped because it is not a number.
fn not_a_number(path: &Path, content: &[u8]) {
    tracing::debug!(
        path = %path.display(),
        content = %String::from_utf8_lossy(&content[..content.len().min(40)]),
        "not a number, skipped"
    );
}

/// One scrape's reads of attribute files for a collector that reports
/// what it could and then fails with the first problem: a missing file is
/// `None` (a kernel without that attribute), any other error is kept.
pub struct ScrapeReader<'s, 'c> {
    scope: &'s mut CacheScope<'c>,
    error: Option<CollectError>,
}

impl<'s, 'c> ScrapeReader<'s, 'c> {
    /// Reads through `scope`.
    pub fn new(scope: &'s mut CacheScope<'c>) -> Self {
        ScrapeReader { scope, error: None }
    }

    /// Keeps `e` unless an earlier failure was kept.
    pub fn fail(&mut self, e: impl Into<CollectError>) {
        self.error.get_or_insert(e.into());
    }

    /// The text of `path`; `None` when missing or unreadable (kept).
    pub fn text(&mut self, path: &Path) -> Option<String> {
        match self.scope.read(path) {
            Ok(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Err(e) if is_missing(&e) => None,
            Err(e) => {
                self.fail(format!("reading {}: {e}", path.display()));
                None
            }
        }
    }

    /// The collector's result: the first failure kept, if any.
    pub fn finish(self) -> Result<(), CollectError> {
        self.error.map_or(Ok(()), Err)
    }
}

/// True for a file on procfs or sysfs, whose content is regenerated on
/// every read at offset 0 and which is never replaced by a rename.
fn is_pseudo_file(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|s| {
        let magic = s.f_type;
        magic == rustix::fs::PROC_SUPER_MAGIC || magic == SYSFS_MAGIC
    })
}

/// True when a read on a kept descriptor failed because its file is gone
/// (a removed device, an exited process).
fn is_gone(e: &io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::NODEV, Errno::NOENT, Errno::SRCH]
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// The error for a file over `limit` bytes.
fn too_large(limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {} MiB, the most read of one file", limit >> 20),
    )
}

/// Smallest and largest chunk of one `pread`.
const CHUNK_MIN: usize = 8192;
const CHUNK_MAX: usize = 1 << 20;

thread_local! {
    /// Zero-initialised once per thread and reused: a read goes here and
    /// only the bytes read are copied out, so no read pays for zeroing a
    /// fresh buffer (which cost more than the reads themselves).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads `f` from offset 0 into `buf` (cleared first), as far as `reads`
/// says.
/// More than `limit` bytes is an error (and `buf` is left empty); the
/// buffer never grows past one byte over the limit.
fn fill(f: &File, buf: &mut Vec<u8>, reads: Reads, limit: usize) -> io::Result<()> {
    SCRATCH.with(|scratch| fill_via(f, buf, &mut scratch.borrow_mut(), reads, limit))
}

fn fill_via(
    f: &File,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    reads: Reads,
    limit: usize,
) -> io::Result<()> {
    buf.clear();
    let mut off = 0usize;
    loop {
        if buf.len() > limit {
            buf.clear();
            return Err(too_large(limit));
        }
        let cap = limit.saturating_add(1);
        if scratch.len() < CHUNK_MIN.min(cap) {
            scratch.resize(CHUNK_MIN.min(cap), 0);
        }
        let want = scratch.len().min(cap - buf.len());
        let n = match f.read_at(&mut scratch[..want], off as u64) {
            Ok(n) => n,
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        };
        buf.extend_from_slice(&scratch[..n]);
        off += n;
        let done = match reads {
            Reads::ToEnd => n == 0,
            Reads::UntilShort => n < want,
            Reads::One => true,
        };
        if done {
            return Ok(());
        }
        // A large file: fewer, larger reads.
        if n == want && scratch.len() < CHUNK_MAX.min(cap) {
            let grown = (scratch.len() * 2).min(CHUNK_MAX).min(cap);
            scratch.resize(grown, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_str_lines() {
        let pieces = ["a", "", "\n", "\r", "\r\n", "bc d", "\n\n", "é", "\r\r"];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..x % 9 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ours: Vec<&str> = lines(&text).collect();
            let std: Vec<&str> = text.lines().collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

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
        assert_eq!(parse_uint_auto("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_uint_auto("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_uint_auto("0x13"), Some(19));
        assert_eq!(parse_uint_auto("-1"), None);
        assert_eq!(parse_uint_auto("+1"), None);
        assert_eq!(parse_uint_auto("N/A (no PMA)"), None);
    }

    #[test]
    fn a_cache_of_whole_shows_reads_large_files_whole_and_procfs_ones_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() > 2 * CHUNK_MIN);
        std::fs::write(&big, &text).unwrap();
        let cache = FileCache::new().whole_in_one_read();
        assert_eq!(cache.scope().read(&big).unwrap(), text.as_bytes());
        // A single-show procfs file: what one read returns is all of it.
        let loadavg = Path::new("/proc/loadavg");
        let once = String::from_utf8(cache.scope().read(loadavg).unwrap().to_vec()).unwrap();
        assert_eq!(once.lines().count(), 1);
        assert!(once.ends_with('\n'));
    }

    #[test]
    fn a_shared_read_reads_once_per_scrape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(&path, "cpu 1\n").unwrap();
        let shared = SharedRead::of(&path);
        assert!(Arc::ptr_eq(&shared, &SharedRead::of(&path)), "one per path");
        assert_eq!(&*shared.read(7, &path).unwrap(), "cpu 1\n");
        std::fs::write(&path, "cpu 2\n").unwrap();
        // Same scrape: the text the first reader got.
        assert_eq!(&*shared.read(7, &path).unwrap(), "cpu 1\n");
        // The next scrape reads again.
        assert_eq!(&*shared.read(8, &path).unwrap(), "cpu 2\n");
        std::fs::remove_file(&path).unwrap();
        assert!(shared.read_optional(9, &path, "test").unwrap().is_none());
        assert!(shared.read_optional(9, &path, "test").unwrap().is_none());
    }

    #[test]
    fn reads_whole_files_and_trimmed_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "0x10\n").unwrap();
        let big = dir.path().join("big");
        let text = "x".repeat(20_000);
        std::fs::write(&big, &text).unwrap();
        let cache = FileCache::new();
        let mut s = cache.scope();
        assert_eq!(s.attr(&a).unwrap(), b"0x10");
        assert_eq!(s.attr_i64(&a), Some(16));
        assert_eq!(s.attr_string(&a).as_deref(), Some("0x10"));
        assert_eq!(s.read(&big).unwrap().len(), 20_000);
        let mut out = String::from("old");
        s.read_into(&big, &mut out).unwrap();
        assert_eq!(out, text);
        std::fs::write(&a, [0xff, 0xfe]).unwrap();
        let err = s.read_into(&a, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(out.is_empty());
        std::fs::write(&a, " 42 \n").unwrap();
        assert_eq!(read_trimmed(&a).unwrap(), " 42");
    }

    /// A FIFO (opening one for reading waits for a writer), a device and a
    /// directory are refused at once, through the cache and without it.
    #[test]
    fn only_regular_files_are_read_and_opening_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from(0o644),
            0,
        )
        .unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let cache = FileCache::new();
        let mut buf = String::new();
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (zero.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = cache.scope().read_into(path, &mut buf).unwrap_err();
            assert_eq!(e.to_string(), format!("not a regular file ({what})"));
            assert!(!is_missing(&e));
            let e = read_trimmed(path).unwrap_err();
            assert_eq!(e.to_string(), format!("not a regular file ({what})"));
        }
        assert_eq!(cache.open_handles(), 0);
    }

    /// procfs gives no size, so the limit is applied while reading; the
    /// buffer does not grow past it.
    #[test]
    fn reads_stop_past_the_limit() {
        let status = File::open("/proc/self/status").unwrap();
        assert_eq!(status.metadata().unwrap().len(), 0);
        let mut buf = Vec::new();
        let e = fill(&status, &mut buf, Reads::ToEnd, 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(
            buf.is_empty() && buf.capacity() <= 101,
            "{}",
            buf.capacity()
        );
        fill(&status, &mut buf, Reads::ToEnd, 1 << 20).unwrap();
        assert!(buf.starts_with(b"Name:"));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 300]).unwrap();
        let e = read_regular(&big, OnLease::Fail, 299).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(read_regular(&big, OnLease::Fail, 300).unwrap().0.len(), 300);
    }

    /// Tools replace regular files by renaming a new one over them; the
    /// next read shows the new content.
    #[test]
    fn a_regular_file_replaced_by_rename_shows_its_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("os-release");
        std::fs::write(&p, "VERSION_ID=1\n").unwrap();
        let cache = FileCache::new();
        let mut buf = String::new();
        cache.scope().read_into(&p, &mut buf).unwrap();
        assert_eq!(buf, "VERSION_ID=1\n");
        let tmp = dir.path().join("os-release.new");
        std::fs::write(&tmp, "VERSION_ID=2\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        cache.scope().read_into(&p, &mut buf).unwrap();
        assert_eq!(buf, "VERSION_ID=2\n");
        assert_eq!(cache.open_handles(), 0, "regular files are not kept open");
    }

    /// procfs files stay open between scrapes: the `pread` fast path.
    #[test]
    fn pseudo_files_stay_open_across_scopes() {
        let cache = FileCache::new();
        let loadavg = Path::new("/proc/loadavg");
        for _ in 0..2 {
            let mut s = cache.scope();
            let text = String::from_utf8(s.read(loadavg).unwrap().to_vec()).unwrap();
            assert_eq!(text.split_ascii_whitespace().count(), 5, "{text:?}");
        }
        assert_eq!(cache.open_handles(), 1);
    }

    /// The target of `/proc/self/fd/<fd>`, if that descriptor is open.
    fn fd_target(fd: i32) -> Option<std::path::PathBuf> {
        std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
    }

    /// The one descriptor the cache holds and the file it points to.
    fn kept_fd(cache: &FileCache) -> (i32, std::path::PathBuf) {
        use std::os::fd::AsRawFd;
        let entries = cache.entries.lock().unwrap();
        let fds: Vec<i32> = entries
            .by_path
            .values()
            .filter_map(|e| match &e.slot {
                Slot::Open(f) => Some(f.as_raw_fd()),
                Slot::Missing(_) => None,
            })
            .collect();
        assert_eq!(fds.len(), 1);
        (fds[0], fd_target(fds[0]).expect("kept descriptor is open"))
    }

    /// A process's procfs files vanish with it, like a removed device's
    /// sysfs files: its kept descriptor is closed, by the scope that does
    /// not read it any more, or by a read that finds it gone.
    #[test]
    fn handles_of_vanished_files_are_closed() {
        for read_after_exit in [false, true] {
            let mut child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let stat = std::path::PathBuf::from(format!("/proc/{}/stat", child.id()));
            let cache = FileCache::new();
            cache.scope().read(&stat).unwrap();
            let (fd, target) = kept_fd(&cache);
            assert_eq!(target, stat);
            child.kill().unwrap();
            child.wait().unwrap();
            {
                let mut s = cache.scope();
                if read_after_exit {
                    assert!(s.read(&stat).is_err());
                }
                s.read(Path::new("/proc/loadavg")).unwrap();
            }
            assert_eq!(cache.open_handles(), 1, "only /proc/loadavg is open");
            assert_ne!(
                fd_target(fd),
                Some(target),
                "the descriptor of the exited process's file is closed"
            );
        }
    }

    /// A pseudo-file that refuses a read for now (sysfs `speed` of a link
    /// that is down) keeps its descriptor: the next scrape asks again
    /// without an `open`. `/proc/self/mem` at offset 0 always gives EIO.
    #[test]
    fn a_refused_read_keeps_the_descriptor() {
        let mem = Path::new("/proc/self/mem");
        let cache = FileCache::new();
        let first = cache.scope().read(mem).map(<[u8]>::len);
        assert_eq!(
            first.unwrap_err().raw_os_error(),
            Some(rustix::io::Errno::IO.raw_os_error())
        );
        let (fd, target) = kept_fd(&cache);
        assert_eq!(target, mem.canonicalize().unwrap());
        assert!(cache.scope().read(mem).is_err());
        assert_eq!(
            kept_fd(&cache).0,
            fd,
            "read again through the same descriptor"
        );
    }

    #[test]
    fn missing_files_are_remembered_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        let remembering = FileCache::remembering_missing();
        let plain = FileCache::new();
        for cache in [&remembering, &plain] {
            assert!(cache.scope().attr(&late).is_err());
        }
        std::fs::write(&late, "5").unwrap();
        assert!(
            remembering.scope().attr(&late).is_err(),
            "still remembered as missing"
        );
        assert_eq!(plain.scope().attr_i64(&late), Some(5));
        let quick = FileCache {
            missing_recheck: Some(Duration::from_millis(30)),
            ..FileCache::default()
        };
        let later = dir.path().join("later");
        assert!(quick.scope().attr(&later).is_err());
        std::fs::write(&later, "6").unwrap();
        assert!(quick.scope().attr(&later).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(quick.scope().attr_i64(&later), Some(6));
    }
}
