//! zfs: OpenZFS kernel statistics (kstats).
//!
//! Source: `<procfs>/spl/kstat/zfs/`: the named kstat tables `abdstats`,
//! `arcstats`, `dbufstats`, `dmu_tx`, `dnodestats`, `fm`,
//! `vdev_cache_stats`, `vdev_mirror_stats`, `xuio_stats`, `zfetchstats` and
//! `zil` (a `name type data` table after a header line), and per pool
//! `<pool>/io` (a column table), `<pool>/objset-*` (one dataset each) and
//! `<pool>/state`.
//!
//! Metrics are named from the kstats as node_exporter names them: every
//! 64-bit integer row (kstat types 3 and 4) of a table becomes the untyped
//! `node_<subsystem>_<row>` (`-` and other characters not allowed in a
//! name become `_`) with the help text `kstat.zfs.misc.<file>.<row>`, where
//! the subsystem is given by [`TABLES`] (`arcstats` → `zfs_arc`). Pool
//! files give `node_zfs_zpool_<column>{zpool}`,
//! `node_zfs_zpool_dataset_<row>{zpool,dataset}` and the gauge
//! `node_zfs_zpool_state{zpool,state}` (1 for the pool's state, 0 for the
//! six others).
//!
//! On by default; no flags. Without the ZFS module (no `spl/kstat/zfs`) it
//! reports nothing, looking for the directory again once a minute; a kstat
//! file this ZFS version lacks is skipped. A row or line that does not
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
use crate::file_cache::{is_missing, CacheScope, FileCache};
use crate::malformed::Malformed;
use crate::paths::Paths;

/// The pool states `node_zfs_zpool_state` has a series for.
pub const POOL_STATES: [&str; 7] = [
    "online",
    "degraded",
    "faulted",
    "offline",
    "removed",
    "unavail",
    "suspended",
];

/// `KSTAT_DATA_INT64` and `KSTAT_DATA_UINT64`: the only row types exported.
const KSTAT_INT64: &str = "3";
const KSTAT_UINT64: &str = "4";

/// One row of a named kstat table.
struct KstatRow<'a> {
    /// 1-based line number, for notes.
    number: usize,
    line: &'a str,
    name: &'a str,
    kind: &'a str,
    data: &'a str,
}

/// The rows of a named kstat table: the lines of at least three fields after
/// its `name type data` header (the lines before it, such as the kstat's
/// own header, are skipped); `None` when there is no header.
fn kstat_table(text: &str) -> Option<Vec<KstatRow<'_>>> {
    let mut rows = None;
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(kind), Some(data)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        match &mut rows {
            None => {
                if name == "name" && kind == "type" && data == "data" && fields.next().is_none() {
                    rows = Some(Vec::new());
                }
            }
            Some(rows) => rows.push(KstatRow {
                number: i + 1,
                line,
                name,
                kind,
                data,
            }),
        }
    }
    rows
}

/// The rows of a named kstat table (`name type data` after its header line;
/// the line before the header is the kstat's own header and is skipped).
/// Rows of other types (strings, 32-bit values) are skipped, as
/// node_exporter skips them; a 64-bit row whose value is not a number is
/// left out and noted. A table without a header is noted too.
pub fn parse_kstat(text: &str) -> (Vec<(&str, f64)>, Malformed) {
    let mut rows = Vec::new();
    let mut bad = Malformed::default();
    let Some(table) = kstat_table(text) else {
        bad.note("no `name type data` header");
        return (rows, bad);
    };
    for row in table {
        let value = match row.kind {
            KSTAT_UINT64 => row.data.parse::<u64>().map(|v| v as f64).ok(),
            KSTAT_INT64 => row.data.parse::<i64>().map(|v| v as f64).ok(),
            _ => continue,
        };
        match value {
            Some(v) => rows.push((row.name, v)),
            None => bad.line(row.number, row.line, "value is not a 64-bit integer"),
        }
    }
    (rows, bad)
}

/// The columns of a pool's `io` kstat: a header line starting with `nread`
/// (at least 12 columns), then rows of as many integers. Every row is
/// returned column by column; a row of another width or with a value that
/// is not an integer is left out and noted.
pub fn parse_pool_io(text: &str) -> (Vec<(&str, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    let mut columns: Option<Vec<&str>> = None;
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(names) = &columns else {
            if fields.len() >= 12 && fields[0] == "nread" {
                columns = Some(fields);
            }
            continue;
        };
        if fields.is_empty() {
            continue;
        }
        if fields.len() != names.len() {
            bad.line(
                i + 1,
                line,
                format!("{} columns, the header has {}", fields.len(), names.len()),
            );
            continue;
        }
        let values: Option<Vec<f64>> = fields
            .iter()
            .map(|f| f.parse::<u64>().ok().map(|v| v as f64))
            .collect();
        match values {
            Some(values) => out.extend(names.iter().copied().zip(values)),
            None => bad.line(i + 1, line, "a column is not an unsigned integer"),
        }
    }
    (out, bad)
}

/// One dataset's `objset-*` kstat: the dataset name (the rest of the
/// `dataset_name` row after its type, spaces kept) and its unsigned 64-bit
/// rows.
#[derive(Debug, Default, PartialEq)]
pub struct Objset<'a> {
    /// The dataset, `pool/fs`.
    pub dataset: Option<&'a str>,
    /// `(row, value)`.
    pub rows: Vec<(&'a str, f64)>,
}

/// The value column of a kstat row: what follows the first two
/// whitespace-separated fields, with its own inner spaces kept.
fn third_column(line: &str) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..2 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

/// Parses a pool's `objset-*` kstat (see [`Objset`]); a row that does not
/// parse, or a table without a header or a dataset name, is noted.
pub fn parse_objset(text: &str) -> (Objset<'_>, Malformed) {
    let mut out = Objset::default();
    let mut bad = Malformed::default();
    let Some(table) = kstat_table(text) else {
        bad.note("no `name type data` header");
        return (out, bad);
    };
    for row in table {
        if row.name == "dataset_name" {
            out.dataset = Some(third_column(row.line));
            continue;
        }
        if row.kind != KSTAT_UINT64 {
            continue;
        }
        match row.data.parse::<u64>() {
            Ok(v) => out.rows.push((row.name, v as f64)),
            Err(_) => bad.line(
                row.number,
                row.line,
                "value is not an unsigned 64-bit integer",
            ),
        }
    }
    if out.dataset.is_none() {
        bad.note("no dataset_name row");
    }
    (out, bad)
}

/// The state of a pool as its `state` file gives it (first line,
/// lowercase), e.g. `online`.
pub fn parse_pool_state(text: &str) -> String {
    text.lines().next().unwrap_or("").to_lowercase()
}

/// The kstat files of one pool.
#[derive(Debug, Default)]
struct PoolFiles {
    name: String,
    io: Option<PathBuf>,
    objsets: Vec<PathBuf>,
    state: Option<PathBuf>,
}

/// What the kstat directory holds, rebuilt once a minute.
#[derive(Debug, Default)]
struct Layout {
    /// False without the ZFS module.
    present: bool,
    pools: Vec<PoolFiles>,
}

fn load_layout(base: &Path) -> Result<Layout, CollectError> {
    let listing =
        |dir: &Path| dir_entries(dir).map_err(|e| format!("listing {}: {e}", dir.display()));
    let Some(entries) = listing(base)? else {
        return Ok(Layout::default());
    };
    let mut pools = Vec::new();
    for (name, kind) in entries {
        if !kind.is_dir() {
            continue;
        }
        let dir = base.join(&name);
        let mut pool = PoolFiles {
            name,
            ..PoolFiles::default()
        };
        for (file, _) in listing(&dir)?.unwrap_or_default() {
            match file.as_str() {
                "io" => pool.io = Some(dir.join(file)),
                "state" => pool.state = Some(dir.join(file)),
                f if f.starts_with("objset-") => pool.objsets.push(dir.join(file)),
                _ => {}
            }
        }
        pools.push(pool);
    }
    Ok(Layout {
        present: true,
        pools,
    })
}

/// The zfs collector.
pub struct Zfs {
    base: PathBuf,
    cache: FileCache,
    layout: Refreshed<Layout>,
}

impl Zfs {
    /// Reads under the given procfs.
    pub fn new(paths: &Paths) -> Self {
        Zfs {
            base: paths.proc("spl/kstat/zfs"),
            cache: FileCache::remembering_missing(),
            layout: Refreshed::default(),
        }
    }
}

/// What one scrape found wrong: the first failure is reported, and a
/// vanished file makes the directory be listed again.
#[derive(Default)]
struct Outcome {
    error: Option<CollectError>,
    relist: bool,
}

impl Outcome {
    fn fail(&mut self, r: CollectResult) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }
}

/// Reads `path` as text; `None` (and a relisting) when it is gone, `None`
/// and a failure when it cannot be read.
fn read_text(scope: &mut CacheScope<'_>, path: &Path, outcome: &mut Outcome) -> Option<String> {
    match scope.read(path) {
        Ok(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Err(e) if is_missing(&e) => {
            outcome.relist = true;
            None
        }
        Err(e) => {
            outcome.fail(Err(format!("reading {}: {e}", path.display()).into()));
            None
        }
    }
}

/// An untyped family named from a kstat row (names built once per row
/// name; the help prefix, unique per table, is the interning scope).
fn row_family(prefix: &'static str, help_prefix: &'static str, row: &str) -> MetricFamily {
    let (name, help) = intern_pair(help_prefix, row, |f| {
        (
            format!("{prefix}{}", name_part(f)),
            format!("{help_prefix}{f}"),
        )
    });
    MetricFamily::untyped(name, help)
}

/// The named kstat tables read: file, metric-name prefix (namespace and
/// subsystem) and help prefix.
pub const TABLES: &[(&str, &str, &str)] = &[
    ("abdstats", "node_zfs_abd_", "kstat.zfs.misc.abdstats."),
    ("arcstats", "node_zfs_arc_", "kstat.zfs.misc.arcstats."),
    ("dbufstats", "node_zfs_dbuf_", "kstat.zfs.misc.dbufstats."),
    ("dmu_tx", "node_zfs_dmu_tx_", "kstat.zfs.misc.dmu_tx."),
    (
        "dnodestats",
        "node_zfs_dnode_",
        "kstat.zfs.misc.dnodestats.",
    ),
    ("fm", "node_zfs_fm_", "kstat.zfs.misc.fm."),
    // Deprecated upstream; older modules still write it.
    (
        "vdev_cache_stats",
        "node_zfs_vdev_cache_",
        "kstat.zfs.misc.vdev_cache_stats.",
    ),
    (
        "vdev_mirror_stats",
        "node_zfs_vdev_mirror_",
        "kstat.zfs.misc.vdev_mirror_stats.",
    ),
    ("xuio_stats", "node_zfs_xuio_", "kstat.zfs.misc.xuio_stats."),
    (
        "zfetchstats",
        "node_zfs_zfetch_",
        "kstat.zfs.misc.zfetchstats.",
    ),
    ("zil", "node_zfs_zil_", "kstat.zfs.misc.zil."),
];

impl Zfs {
    fn pool(
        &self,
        scope: &mut CacheScope<'_>,
        pool: &PoolFiles,
        out: &mut Vec<MetricFamily>,
        outcome: &mut Outcome,
    ) {
        let zpool = pool.name.as_str();
        if let Some(path) = &pool.io {
            if let Some(text) = read_text(scope, path, outcome) {
                let (rows, bad) = parse_pool_io(&text);
                for (column, v) in rows {
                    let mut f = row_family("node_zfs_zpool_", "kstat.zfs.misc.io.", column);
                    f.add(&[("zpool", zpool)], v);
                    out.push(f);
                }
                outcome.fail(bad.into_result(path));
            }
        }
        for path in &pool.objsets {
            let Some(text) = read_text(scope, path, outcome) else {
                continue;
            };
            let (objset, bad) = parse_objset(&text);
            if let Some(dataset) = objset.dataset {
                for (row, v) in objset.rows {
                    let mut f =
                        row_family("node_zfs_zpool_dataset_", "kstat.zfs.misc.objset.", row);
                    f.add(&[("zpool", zpool), ("dataset", dataset)], v);
                    out.push(f);
                }
            }
            outcome.fail(bad.into_result(path));
        }
        if let Some(path) = &pool.state {
            if let Some(text) = read_text(scope, path, outcome) {
                let state = parse_pool_state(&text);
                let mut f = MetricFamily::gauge("node_zfs_zpool_state", "kstat.zfs.misc.state");
                for s in POOL_STATES {
                    f.add(
                        &[("zpool", zpool), ("state", s)],
                        if state == s { 1.0 } else { 0.0 },
                    );
                }
                out.push(f);
            }
        }
    }
}

impl SyncCollector for Zfs {
    fn name(&self) -> &'static str {
        "zfs"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let layout = self.layout.get(|| load_layout(&self.base))?;
        if !layout.present {
            return Ok(());
        }
        let mut scope = self.cache.scope();
        let mut outcome = Outcome::default();
        for &(file, prefix, help_prefix) in TABLES {
            let path = self.base.join(file);
            let text = match scope.read(&path) {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                // Tables come with features: a module without one is fine.
                Err(e) if is_missing(&e) => continue,
                Err(e) => {
                    outcome.fail(Err(format!("reading {}: {e}", path.display()).into()));
                    continue;
                }
            };
            let (rows, bad) = parse_kstat(&text);
            for (row, v) in rows {
                let mut f = row_family(prefix, help_prefix, row);
                f.add(&[], v);
                out.push(f);
            }
            outcome.fail(bad.into_result(&path));
        }
        for pool in &layout.pools {
            self.pool(&mut scope, pool, out, &mut outcome);
        }
        if outcome.relist {
            // A pool was exported (or the module unloaded) since the
            // listing: look again next scrape.
            self.layout.invalidate();
        }
        outcome.error.map_or(Ok(()), Err)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Zfs::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, try_scrape, write};

    #[test]
    fn table_prefixes_match_their_files() {
        for (file, prefix, help) in TABLES {
            assert!(prefix.starts_with("node_zfs_") && prefix.ends_with('_'));
            assert_eq!(*help, format!("kstat.zfs.misc.{file}."));
        }
    }

    #[test]
    fn named_tables() {
        let text = "9 1 0x01 4 192 1 2\n\
                    name                            type data\n\
                    hits                            4    12\n\
                    memory_available_bytes          3    -5\n\
                    some-name                       4    7\n\
                    label                           7    text here\n\
                    c_min                           1    3\n\
                    broken                          4    x\n";
        let (rows, bad) = parse_kstat(text);
        assert_eq!(
            rows,
            [
                ("hits", 12.0),
                ("memory_available_bytes", -5.0),
                ("some-name", 7.0)
            ]
        );
        assert_eq!(bad.count(), 1);
        let (rows, bad) = parse_kstat("hits 4 1\n");
        assert!(rows.is_empty());
        assert_eq!(bad.count(), 1, "no header");
    }

    #[test]
    fn pool_io_columns() {
        let text = "3 3 0x00 1 80 1 2\n\
            nread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n\
            10 20 3 4 5 6 7 8 9 10 0 1\n";
        let (rows, bad) = parse_pool_io(text);
        assert!(bad.is_empty());
        assert_eq!(rows.len(), 12);
        assert_eq!(rows[0], ("nread", 10.0));
        assert_eq!(rows[11], ("rcnt", 1.0));
        let longer = format!("{text}1 2 3\n");
        let (rows, bad) = parse_pool_io(&longer);
        assert_eq!(rows.len(), 12);
        assert_eq!(bad.count(), 1);
    }

    #[test]
    fn objsets_keep_spaces_in_dataset_names() {
        let text = "23 1 0x01 7 2160 1 2\n\
                    name                            type data\n\
                    dataset_name                    7    tank/my  data\n\
                    writes                          4    4\n\
                    nread                           4    28\n";
        let (objset, bad) = parse_objset(text);
        assert!(bad.is_empty());
        assert_eq!(objset.dataset, Some("tank/my  data"));
        assert_eq!(objset.rows, [("writes", 4.0), ("nread", 28.0)]);
        let (_, bad) = parse_objset("name type data\nwrites 4 1\n");
        assert_eq!(bad.count(), 1, "no dataset name");
    }

    #[test]
    fn pool_states() {
        assert_eq!(parse_pool_state("DEGRADED\n"), "degraded");
        assert_eq!(parse_pool_state(""), "");
    }

    #[test]
    fn reads_a_tree_and_nothing_without_zfs() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_under(dir.path());
        let (out, result) = try_scrape(build("zfs", &paths).as_ref());
        result.unwrap();
        assert!(out.is_empty());

        write(
            dir.path(),
            "spl/kstat/zfs/arcstats",
            "6 1 0x01 2 96 1 2\nname type data\nhits 4 5\nc-max 4 9\n",
        );
        write(dir.path(), "spl/kstat/zfs/tank/state", "ONLINE\n");
        write(
            dir.path(),
            "spl/kstat/zfs/tank/objset-0x36",
            "1 1 0x01 2 96 1 2\nname type data\ndataset_name 7 tank\nreads 4 2\n",
        );
        let (mut out, result) = try_scrape(build("zfs", &paths).as_ref());
        result.unwrap();
        oxmon_core::metrics::normalize(&mut out);
        let names: Vec<&str> = out.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "node_zfs_arc_c_max",
                "node_zfs_arc_hits",
                "node_zfs_zpool_dataset_reads",
                "node_zfs_zpool_state"
            ]
        );
        let state = &out[3];
        assert_eq!(state.metrics.len(), 7);
        let online = state
            .metrics
            .iter()
            .find(|m| m.labels.iter().any(|(k, v)| k == "state" && v == "online"))
            .unwrap();
        assert_eq!(online.value, oxmon_core::metrics::Value::Single(1.0));
        assert_eq!(out[1].help, "kstat.zfs.misc.arcstats.hits");

        write(
            dir.path(),
            "spl/kstat/zfs/arcstats",
            "name type data\nhits 4 many\n",
        );
        let (_, result) = try_scrape(build("zfs", &paths).as_ref());
        assert!(result.is_err(), "a malformed row fails the collector");
    }
}
