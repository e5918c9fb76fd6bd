//! bcachefs: bcachefs filesystem statistics.
//!
//! Source: `<sysfs>/fs/bcachefs/<uuid>/` of each mounted filesystem:
//! `btree_cache_size`, `compression_stats`, `errors`, `btree_write_stats`,
//! one file per event under `counters/`, and per member device `dev-<N>/`
//! (`label`, `state`, `bucket_size`, `nbuckets`, `durability`, `io_done`,
//! `io_errors`). Sizes are written with binary unit suffixes (`2.05G`),
//! decoded by [`human_bytes`].
//!
//! Metrics (labelled `uuid`): `node_bcachefs_info`,
//! `node_bcachefs_btree_cache_size_bytes`,
//! `node_bcachefs_compression_{compressed,uncompressed}_bytes{algorithm}`,
//! `node_bcachefs_errors_total{error_type}`,
//! `node_bcachefs_btree_writes_total{type}`,
//! `node_bcachefs_btree_write_average_size_bytes{type}`, one counter
//! `node_bcachefs_<event>_total` per file of `counters/` (its value since
//! filesystem creation), and per device (`device` is `<N>`)
//! `node_bcachefs_device_info{label,state}`,
//! `node_bcachefs_device_bucket_size_bytes`, `node_bcachefs_device_buckets`,
//! `node_bcachefs_device_durability`,
//! `node_bcachefs_device_io_done_bytes_total{operation,data_type}` and
//! `node_bcachefs_device_io_errors_total{type}` (since filesystem creation).
//!
//! On by default; no flags. Without bcachefs (no `fs/bcachefs` in sysfs)
//! it reports nothing; filesystems, devices and counters are listed again
//! once a minute. A file a kernel lacks is skipped; a line that does not
//! parse is left out and fails the collector after the rest is exported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::collector::{
    sync_collector, CollectError, CollectResult, ScrapeContext, SyncCollector,
};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, Refreshed};
use crate::field_names::{intern_pair, name_part};
use crate::file_cache::{FileCache, ScrapeReader};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// Decodes a size written by bcachefs: a decimal number with an optional
/// binary unit suffix (`k`, `M`, `G`, `T`, `P`, `E`, either case),
/// truncated to whole bytes, as node_exporter reads it.
pub fn human_bytes(s: &str) -> Option<f64> {
    let s = s.trim();
    let (number, exponent) = match s.chars().last()? {
        c if c.is_ascii_alphabetic() => {
            let exponent = b"kmgtpe"
                .iter()
                .position(|&u| u == c.to_ascii_lowercase() as u8)?;
            (&s[..s.len() - 1], exponent as i32 + 1)
        }
        _ => (s, 0),
    };
    let v = number.trim().parse::<f64>().ok()? * 1024f64.powi(exponent);
    (v.is_finite() && v >= 0.0).then(|| v.trunc())
}

/// An unsigned integer column.
fn unsigned(s: &str) -> Option<f64> {
    s.parse::<u64>().ok().map(|v| v as f64)
}

/// The rows of a whitespace-separated table after its first `skip` lines:
/// `row` turns the fields of a line with at least `columns` of them into a
/// value; a line it refuses is noted with `problem`. Shorter lines are
/// skipped.
fn parse_table<'a, T>(
    text: &'a str,
    skip: usize,
    columns: usize,
    problem: &str,
    row: impl Fn(&[&'a str]) -> Option<T>,
) -> (Vec<T>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate().skip(skip) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < columns {
            continue;
        }
        match row(&f) {
            Some(v) => out.push(v),
            None => bad.line(i + 1, line, problem),
        }
    }
    (out, bad)
}

/// `compression_stats`: `(algorithm, compressed bytes, uncompressed
/// bytes)` per line after the header.
pub fn parse_compression_stats(text: &str) -> (Vec<(&str, f64, f64)>, Malformed) {
    parse_table(text, 1, 3, "sizes do not parse", |f| {
        Some((
            f[0].trim_end_matches(':'),
            human_bytes(f[1])?,
            human_bytes(f[2])?,
        ))
    })
}

/// `errors`: `(error type, count)` per line.
pub fn parse_errors(text: &str) -> (Vec<(&str, f64)>, Malformed) {
    parse_table(text, 0, 2, "count is not an unsigned integer", |f| {
        Some((f[0], unsigned(f[1])?))
    })
}

/// `btree_write_stats`: `(write type, count, average size in bytes)` per
/// line after the header.
pub fn parse_btree_write_stats(text: &str) -> (Vec<(&str, f64, f64)>, Malformed) {
    parse_table(text, 1, 3, "count or size does not parse", |f| {
        Some((
            f[0].trim_end_matches(':'),
            unsigned(f[1])?,
            human_bytes(f[2])?,
        ))
    })
}

/// A `counters/<event>` file: its value since filesystem creation (`None`
/// when only the value since mount is written), or what is wrong with it.
pub fn parse_counter(text: &str) -> Result<Option<f64>, String> {
    let mut creation = None;
    let mut seen = false;
    for line in text.lines() {
        let (value, since_creation) =
            if let Some(v) = line.strip_prefix("since filesystem creation:") {
                (v, true)
            } else if let Some(v) = line.strip_prefix("since mount:") {
                (v, false)
            } else {
                continue;
            };
        let v = human_bytes(value).ok_or_else(|| format!("cannot read {line:?}"))?;
        seen = true;
        if since_creation {
            creation = Some(v);
        }
    }
    if !seen {
        return Err("no `since mount:` or `since filesystem creation:` line".into());
    }
    Ok(creation)
}

/// A device's `io_done`: `(operation, data type, bytes)` under the `read:`
/// and `write:` headings.
pub fn parse_io_done(text: &str) -> (Vec<(&str, &str, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    let mut op = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t == "read:" || t == "write:" {
            op = Some(&t[..t.len() - 1]);
            continue;
        }
        let (Some(op), Some((kind, value))) = (op, t.split_once(':')) else {
            continue;
        };
        match unsigned(value.trim()) {
            Some(v) => out.push((op, kind.trim(), v)),
            None => bad.line(i + 1, line, "not an unsigned integer"),
        }
    }
    (out, bad)
}

/// A device's `io_errors`: `(error type, count)` of the section since
/// filesystem creation.
pub fn parse_io_errors(text: &str) -> (Vec<(&str, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("IO errors since filesystem creation") {
            in_section = true;
            continue;
        }
        if line.starts_with("IO errors since ") {
            break;
        }
        let Some((kind, value)) = line.trim().split_once(':').filter(|_| in_section) else {
            continue;
        };
        match unsigned(value.trim()) {
            Some(v) => out.push((kind.trim(), v)),
            None => bad.line(i + 1, line, "not an unsigned integer"),
        }
    }
    (out, bad)
}

/// One filesystem, as listed.
#[derive(Debug)]
struct Filesystem {
    uuid: String,
    dir: PathBuf,
    /// Files of `counters/`.
    counters: Vec<String>,
    /// `(N, dev-N directory)`.
    devices: Vec<(String, PathBuf)>,
}

fn list_filesystems(root: &Path) -> Result<Vec<Filesystem>, CollectError> {
    let listing = |d: &Path| dir_entries(d).map_err(|e| format!("listing {}: {e}", d.display()));
    let mut out = Vec::new();
    for (uuid, kind) in listing(root)?.unwrap_or_default() {
        if !kind.is_dir() {
            continue;
        }
        let dir = root.join(&uuid);
        let counters = listing(&dir.join("counters"))?
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, t)| !t.is_dir())
            .map(|(n, _)| n)
            .collect();
        let devices = listing(&dir)?
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, t)| t.is_dir())
            .filter_map(|(n, _)| {
                let path = dir.join(&n);
                Some((n.strip_prefix("dev-")?.to_string(), path))
            })
            .collect();
        out.push(Filesystem {
            uuid,
            dir,
            counters,
            devices,
        });
    }
    Ok(out)
}

/// The bcachefs collector.
pub struct Bcachefs {
    root: PathBuf,
    cache: FileCache,
    filesystems: Refreshed<Vec<Filesystem>>,
}

impl Bcachefs {
    /// Reads under the given sysfs.
    pub fn new(paths: &Paths) -> Self {
        Bcachefs {
            root: paths.sys("fs/bcachefs"),
            cache: FileCache::remembering_missing(),
            filesystems: Refreshed::default(),
        }
    }
}

struct Families {
    info: MetricFamily,
    btree_cache: MetricFamily,
    compressed: MetricFamily,
    uncompressed: MetricFamily,
    errors: MetricFamily,
    btree_writes: MetricFamily,
    btree_write_size: MetricFamily,
    device_info: MetricFamily,
    bucket_size: MetricFamily,
    buckets: MetricFamily,
    durability: MetricFamily,
    io_done: MetricFamily,
    io_errors: MetricFamily,
    /// One family per counter file.
    counters: Vec<MetricFamily>,
}

impl Families {
    fn new() -> Self {
        let g = MetricFamily::gauge;
        let c = MetricFamily::counter;
        Families {
            info: g("node_bcachefs_info", "Filesystem information."),
            btree_cache: g(
                "node_bcachefs_btree_cache_size_bytes",
                "Btree cache memory usage in bytes.",
            ),
            compressed: g(
                "node_bcachefs_compression_compressed_bytes",
                "Compressed size by algorithm.",
            ),
            uncompressed: g(
                "node_bcachefs_compression_uncompressed_bytes",
                "Uncompressed size by algorithm.",
            ),
            errors: c("node_bcachefs_errors_total", "Error count by error type."),
            btree_writes: c(
                "node_bcachefs_btree_writes_total",
                "Number of btree writes by type.",
            ),
            btree_write_size: g(
                "node_bcachefs_btree_write_average_size_bytes",
                "Average btree write size by type.",
            ),
            device_info: g("node_bcachefs_device_info", "Device information."),
            bucket_size: g(
                "node_bcachefs_device_bucket_size_bytes",
                "Bucket size in bytes.",
            ),
            buckets: g("node_bcachefs_device_buckets", "Total number of buckets."),
            durability: g(
                "node_bcachefs_device_durability",
                "Device durability setting.",
            ),
            io_done: c(
                "node_bcachefs_device_io_done_bytes_total",
                "IO bytes by operation type and data type.",
            ),
            io_errors: c(
                "node_bcachefs_device_io_errors_total",
                "IO errors by error type.",
            ),
            counters: Vec::new(),
        }
    }

    fn into_vec(self) -> Vec<MetricFamily> {
        let mut v = vec![
            self.info,
            self.btree_cache,
            self.compressed,
            self.uncompressed,
            self.errors,
            self.btree_writes,
            self.btree_write_size,
            self.device_info,
            self.bucket_size,
            self.buckets,
            self.durability,
            self.io_done,
            self.io_errors,
        ];
        v.extend(self.counters);
        v
    }
}

/// Reads of one scrape; the first failure is kept.
struct Reader<'s, 'c>(ScrapeReader<'s, 'c>);

impl Reader<'_, '_> {
    fn fail(&mut self, e: String) {
        self.0.fail(e);
    }

    /// The text of `path`; `None` when missing or unreadable (noted).
    fn text(&mut self, path: &Path) -> Option<String> {
        self.0.text(path)
    }

    /// A one-value attribute decoded by `parse`; `None` when missing or
    /// malformed (noted).
    fn value(&mut self, path: &Path, parse: fn(&str) -> Option<f64>) -> Option<f64> {
        let text = self.text(path)?;
        let v = parse(text.trim());
        if v.is_none() {
            self.fail(format!("{}: cannot read {:?}", path.display(), text.trim()));
        }
        v
    }

    fn note(&mut self, bad: Malformed, path: &Path) {
        if let Err(e) = bad.into_result(path) {
            self.0.fail(e);
        }
    }
}

fn filesystem(r: &mut Reader<'_, '_>, fs: &Filesystem, f: &mut Families) {
    let uuid = fs.uuid.as_str();
    let dir = &fs.dir;
    f.info.add(&[("uuid", uuid)], 1.0);
    if let Some(v) = r.value(&dir.join("btree_cache_size"), human_bytes) {
        f.btree_cache.add(&[("uuid", uuid)], v);
    }
    let path = dir.join("compression_stats");
    if let Some(text) = r.text(&path) {
        let (rows, bad) = parse_compression_stats(&text);
        for (algorithm, compressed, uncompressed) in rows {
            let labels = [("uuid", uuid), ("algorithm", algorithm)];
            f.compressed.add(&labels, compressed);
            f.uncompressed.add(&labels, uncompressed);
        }
        r.note(bad, &path);
    }
    let path = dir.join("errors");
    if let Some(text) = r.text(&path) {
        let (rows, bad) = parse_errors(&text);
        for (kind, n) in rows {
            f.errors.add(&[("uuid", uuid), ("error_type", kind)], n);
        }
        r.note(bad, &path);
    }
    for name in &fs.counters {
        let path = dir.join("counters").join(name);
        let Some(text) = r.text(&path) else { continue };
        match parse_counter(&text) {
            Ok(Some(v)) => {
                let (metric, help) = intern_pair("bcachefs/counters", name, |n| {
                    (
                        format!("node_bcachefs_{}_total", name_part(n)),
                        format!("Bcachefs counter {n} since filesystem creation."),
                    )
                });
                let mut family = MetricFamily::counter(metric, help);
                family.add(&[("uuid", uuid)], v);
                f.counters.push(family);
            }
            Ok(None) => {}
            Err(e) => r.fail(format!("{}: {e}", path.display())),
        }
    }
    let path = dir.join("btree_write_stats");
    if let Some(text) = r.text(&path) {
        let (rows, bad) = parse_btree_write_stats(&text);
        for (kind, n, size) in rows {
            let labels = [("uuid", uuid), ("type", kind)];
            f.btree_writes.add(&labels, n);
            f.btree_write_size.add(&labels, size);
        }
        r.note(bad, &path);
    }
    for (device, dev_dir) in &fs.devices {
        device_stats(r, uuid, device, dev_dir, f);
    }
}

fn device_stats(r: &mut Reader<'_, '_>, uuid: &str, device: &str, dir: &Path, f: &mut Families) {
    let trimmed = |r: &mut Reader<'_, '_>, name: &str| {
        r.text(&dir.join(name))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    let label = trimmed(r, "label");
    let state = trimmed(r, "state");
    f.device_info.add(
        &[
            ("uuid", uuid),
            ("device", device),
            ("label", &label),
            ("state", &state),
        ],
        1.0,
    );
    let labels = [("uuid", uuid), ("device", device)];
    if let Some(v) = r.value(&dir.join("bucket_size"), human_bytes) {
        f.bucket_size.add(&labels, v);
    }
    if let Some(v) = r.value(&dir.join("nbuckets"), unsigned) {
        f.buckets.add(&labels, v);
    }
    if let Some(v) = r.value(&dir.join("durability"), unsigned) {
        f.durability.add(&labels, v);
    }
    let path = dir.join("io_done");
    if let Some(text) = r.text(&path) {
        let (rows, bad) = parse_io_done(&text);
        for (op, kind, v) in rows {
            f.io_done.add(
                &[
                    ("uuid", uuid),
                    ("device", device),
                    ("operation", op),
                    ("data_type", kind),
                ],
                v,
            );
        }
        r.note(bad, &path);
    }
    let path = dir.join("io_errors");
    if let Some(text) = r.text(&path) {
        let (rows, bad) = parse_io_errors(&text);
        for (kind, v) in rows {
            f.io_errors
                .add(&[("uuid", uuid), ("device", device), ("type", kind)], v);
        }
        r.note(bad, &path);
    }
}

impl SyncCollector for Bcachefs {
    fn name(&self) -> &'static str {
        "bcachefs"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let filesystems = self.filesystems.get(|| list_filesystems(&self.root))?;
        if filesystems.is_empty() {
            return Ok(());
        }
        let mut scope = self.cache.scope();
        let mut r = Reader(ScrapeReader::new(&mut scope));
        let mut f = Families::new();
        for fs in filesystems.iter() {
            if fs.dir.exists() {
                filesystem(&mut r, fs, &mut f);
            } else {
                // Unmounted since the listing.
                self.filesystems.invalidate();
            }
        }
        out.extend(f.into_vec());
        r.0.finish()
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Bcachefs::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape, try_scrape, write};

    #[test]
    fn sizes() {
        assert_eq!(human_bytes("0"), Some(0.0));
        assert_eq!(human_bytes("720"), Some(720.0));
        assert_eq!(human_bytes("1.26k"), Some(1290.0));
        assert_eq!(human_bytes("2.00M"), Some(2_097_152.0));
        assert_eq!(human_bytes(" 44.5T"), Some(48_928_267_436_032.0));
        for bad in ["", "M", "1.2.3k", "-1k", "1Q", "inf"] {
            assert_eq!(human_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn tables() {
        let (rows, bad) = parse_compression_stats(
            "typetype compressed uncompressed average extent size\n\
             lz4 1.0k 2.0k 4.0k\nzstd: 3 x 1\n\n",
        );
        assert_eq!(rows, [("lz4", 1024.0, 2048.0)]);
        assert_eq!(bad.count(), 1);
        let (rows, bad) = parse_errors("journal_entry_bad 3 1700000000\nbad_thing\nx y\n");
        assert_eq!(rows, [("journal_entry_bad", 3.0)]);
        assert_eq!(bad.count(), 1);
        let (rows, bad) =
            parse_btree_write_stats("   nr size\ninitial:  12  100k\ninterior: 4 1.26k\n");
        assert!(bad.is_empty());
        assert_eq!(
            rows,
            [("initial", 12.0, 102_400.0), ("interior", 4.0, 1290.0)]
        );
    }

    #[test]
    fn counters() {
        let text = "since mount:                   302707\nsince filesystem creation:     1.5k\n";
        assert_eq!(parse_counter(text), Ok(Some(1536.0)));
        assert_eq!(parse_counter("since mount: 4\n"), Ok(None));
        assert!(parse_counter("whatever\n").is_err());
        assert!(parse_counter("since filesystem creation: lots\n").is_err());
    }

    #[test]
    fn device_io() {
        let done = "read:\nsb          :       86016\nuser        :10\nwrite:\nsb :1\n";
        let (rows, bad) = parse_io_done(done);
        assert!(bad.is_empty());
        assert_eq!(
            rows,
            [
                ("read", "sb", 86016.0),
                ("read", "user", 10.0),
                ("write", "sb", 1.0)
            ]
        );
        let errors =
            "IO errors since filesystem creation\n  read:    18\n  write:   1\n  checksum:5\n\
                      IO errors since 8 y ago\n  read:    2\n";
        let (rows, bad) = parse_io_errors(errors);
        assert!(bad.is_empty());
        assert_eq!(rows, [("read", 18.0), ("write", 1.0), ("checksum", 5.0)]);
    }

    #[test]
    fn reads_a_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        assert!(scrape(build("bcachefs", &paths).as_ref()).is_empty());
        let fs = "fs/bcachefs/aaaa-bbbb";
        write(dir.path(), &format!("{fs}/btree_cache_size"), "1.0M\n");
        write(
            dir.path(),
            &format!("{fs}/counters/bucket_alloc"),
            "since mount: 1\nsince filesystem creation: 7\n",
        );
        write(dir.path(), &format!("{fs}/dev-0/label"), "ssd\n");
        write(dir.path(), &format!("{fs}/dev-0/nbuckets"), "100\n");
        let out = scrape(build("bcachefs", &paths).as_ref());
        let names: Vec<&str> = out
            .iter()
            .filter(|f| !f.metrics.is_empty())
            .map(|f| f.name.as_ref())
            .collect();
        assert_eq!(
            names,
            [
                "node_bcachefs_info",
                "node_bcachefs_btree_cache_size_bytes",
                "node_bcachefs_device_info",
                "node_bcachefs_device_buckets",
                "node_bcachefs_bucket_alloc_total"
            ]
        );
        write(dir.path(), &format!("{fs}/dev-0/nbuckets"), "many\n");
        let (_, result) = try_scrape(build("bcachefs", &paths).as_ref());
        assert!(result.is_err());
    }
}
