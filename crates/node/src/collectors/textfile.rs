//! textfile — metrics written by other programs (cron jobs, scripts) as
//! `*.prom` files in the text exposition format 0.0.4, in the directories
//! given by `--collector.textfile.directory` (repeatable; `*` and `?`
//! globs allowed).
//!
//! Every file is parsed on each scrape. Families of the same name from
//! several files are merged. A file that cannot be read or parsed, or that
//! carries client-side timestamps, is skipped entirely; a family whose
//! type or help text conflicts with the same family from an earlier file
//! is dropped from the later file. Each of these is logged and sets
//! `node_textfile_scrape_error` to 1. Series of one family that use
//! different label names are padded with empty labels. A family without
//! help text gets "Metric read from <files>".
//!
//! Only regular files are read: a FIFO, socket or device named `*.prom`
//! (or a symlink to one) is skipped as an error without being opened for
//! more than an `fstat`, so it cannot block the read. The files are read
//! and parsed on the collector's blocking lane: a file on a hung network
//! filesystem, or one whose lease a Samba or NFS client holds, costs this
//! collector the scrape (reported as failed at the deadline) and nothing
//! else.
//!
//! Metrics: the files' own families, `node_textfile_mtime_seconds{file}`
//! (per file read successfully), `node_textfile_scrape_error`. On by
//! default (it reports only `node_textfile_scrape_error 0` when no
//! directory is given, without using its lane).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::blocking::Lane;
use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext};
use oxmon_core::expo::{self, Exposition, Family};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_regular, OnLease};

/// The largest textfile read: a larger one is skipped as an error (its
/// size is checked before reading). Parsed, a textfile takes several times
/// its size in memory; node_exporter has no limit.
pub const MAX_TEXTFILE_BYTES: usize = 16 << 20;

/// The metric types of text format 0.0.4; a file that declares another
/// (OpenMetrics' `info`, `stateset`, …) is rejected, as node_exporter does.
const TEXT_FORMAT_TYPES: [&str; 5] = ["counter", "gauge", "untyped", "histogram", "summary"];

/// Why a file is skipped.
#[derive(Debug)]
pub enum FileError {
    /// Bad syntax, with its line.
    Syntax(expo::ParseError),
    /// A type the text format does not have.
    NotTextFormat {
        /// The family.
        family: String,
        /// Its declared type.
        kind: String,
    },
    /// Samples that do not make a family of the declared type (a bucket
    /// whose `le` is not a number).
    Shape(expo::ConvertError),
    /// Series whose label names differ so much that padding them would
    /// add more than [`MAX_PADDING_LABELS`] empty labels.
    Padding {
        /// How many padding would add.
        missing: usize,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Syntax(e) => e.fmt(f),
            FileError::NotTextFormat { family, kind } => {
                write!(
                    f,
                    "metric {family}: type {kind} is not part of text format 0.0.4"
                )
            }
            FileError::Shape(e) => e.fmt(f),
            FileError::Padding { missing } => write!(
                f,
                "its series use so many different label names that padding them would add {missing} empty labels (the limit is {MAX_PADDING_LABELS})"
            ),
        }
    }
}

/// Parses one file with oxmon-core's exposition parser and checks it
/// against the textfile rules: only the text format's types, and every
/// family convertible to a metric family. Client-side timestamps are left
/// to the caller ([`Exposition::has_timestamps`]).
pub fn parse_file(text: &str) -> Result<Exposition, FileError> {
    let parsed = expo::try_parse(text).map_err(FileError::Syntax)?;
    for family in parsed.families.values() {
        if !TEXT_FORMAT_TYPES.contains(&family.kind.as_str()) {
            return Err(FileError::NotTextFormat {
                family: family.name.clone(),
                kind: family.kind.clone(),
            });
        }
        if !family.samples.is_empty() {
            family.to_metric_family().map_err(FileError::Shape)?;
        }
    }
    Ok(parsed)
}

/// A family merged from one or more files.
struct Merged {
    family: Family,
    files: Vec<String>,
}

/// The most empty labels padding may add to one family. Padding grows
/// with series times label names: 2,000 one-line series that each use
/// another label name (a 40 KB file) would need 4 million. A family that
/// needs more is dropped as an error; node_exporter pads without limit.
pub const MAX_PADDING_LABELS: usize = 100_000;

/// Converts a merged family into a [`MetricFamily`]: label names padded
/// with empty values across series, and "Metric read from <files>" as
/// help text when no file gave one.
fn finish(mut m: Merged) -> Result<MetricFamily, FileError> {
    let missing = m.family.missing_label_count();
    if missing > MAX_PADDING_LABELS {
        return Err(FileError::Padding { missing });
    }
    m.family.fill_missing_labels();
    if m.family.help.is_empty() {
        m.family.help = format!("Metric read from {}", m.files.join(", "));
    }
    m.family.to_metric_family().map_err(FileError::Shape)
}

/// Expands `*` and `?` in the components of a directory pattern; a pattern
/// without wildcards is returned as is. Results are sorted.
pub fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?']) {
        return vec![PathBuf::from(pattern)];
    }
    let absolute = pattern.starts_with('/');
    let mut current = vec![PathBuf::from(if absolute { "/" } else { "." })];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for base in &current {
            if comp.contains(['*', '?']) {
                if let Ok(names) = crate::dir_listing::list_dir(base) {
                    for name in names {
                        if (!name.starts_with('.') || comp.starts_with('.'))
                            && wildcard_match(comp, &name)
                        {
                            next.push(base.join(name));
                        }
                    }
                }
            } else {
                let p = base.join(comp);
                if p.exists() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    if !absolute {
        current = current
            .into_iter()
            .map(|p| p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p))
            .collect();
    }
    current.sort();
    current
}

/// Matches `name` against a pattern of literal characters, `*` and `?`.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Flags of the textfile collector.
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Directory (or glob of directories) to read text files with metrics
    /// from; repeatable.
    #[arg(
        id = "collector.textfile.directory",
        long = "collector.textfile.directory",
        value_name = "DIR"
    )]
    pub directory: Vec<String>,
}

struct Textfile {
    directories: Arc<[String]>,
    lane: Lane,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(Textfile {
        directories: ctx.options.textfile.directory.clone().into(),
        lane: Lane::new("textfile"),
    }))
}

/// Joins a directory as given on the command line with a file name,
/// without doubling a trailing slash (the `file` label shows this path).
fn join_display(dir: &Path, name: &str) -> String {
    let d = dir.to_string_lossy();
    format!("{}/{}", d.trim_end_matches('/'), name)
}

impl Collector for Textfile {
    fn name(&self) -> &str {
        "textfile"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            if self.directories.is_empty() {
                out.push(scrape_error(false));
                return Ok(());
            }
            let directories = Arc::clone(&self.directories);
            let families = self
                .lane
                .run(ctx.deadline, move || read_directories(&directories))
                .await?;
            out.extend(families);
            Ok(())
        })
    }
}

/// `node_textfile_scrape_error`.
fn scrape_error(error: bool) -> MetricFamily {
    oxmon_core::gauge(
        "node_textfile_scrape_error",
        "1 if there was an error opening or reading a file, 0 otherwise",
        if error { 1.0 } else { 0.0 },
    )
}

/// Reads, parses and merges every `*.prom` file of `directories` (run on
/// the collector's lane).
fn read_directories(directories: &[String]) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    let mut error = false;
    let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
    let mut mtimes = MetricFamily::gauge(
        "node_textfile_mtime_seconds",
        "Unixtime mtime of textfiles successfully read.",
    );
    for pattern in directories {
        let dirs = expand_glob(pattern);
        if dirs.is_empty() {
            tracing::error!(directory = %pattern, "textfile directory pattern matches nothing");
            error = true;
        }
        for dir in dirs {
            let names = match crate::dir_listing::list_dir(&dir) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(directory = %dir.display(), err = %e, "failed to read textfile collector directory");
                    error = true;
                    continue;
                }
            };
            for name in names.iter().filter(|n| n.ends_with(".prom")) {
                let path = dir.join(name);
                let shown = join_display(&dir, name);
                match read_file(&path) {
                    Ok((text, mtime)) => match parse_file(&text) {
                        Ok(parsed) => {
                            if parsed.has_timestamps() {
                                tracing::error!(file = %shown, "textfile contains unsupported client-side timestamps, skipping entire file");
                                error = true;
                                continue;
                            }
                            mtimes.add_owned(
                                vec![(Cow::Borrowed("file"), shown.as_str().into())],
                                mtime,
                            );
                            for (name, f) in parsed.families {
                                if f.samples.is_empty() {
                                    continue;
                                }
                                match merged.get_mut(&name) {
                                    None => {
                                        let files = vec![shown.clone()];
                                        merged.insert(name, Merged { family: f, files });
                                    }
                                    Some(m) => {
                                        let help_conflict = !m.family.help.is_empty()
                                            && !f.help.is_empty()
                                            && m.family.help != f.help;
                                        if m.family.kind != f.kind || help_conflict {
                                            tracing::error!(file = %shown, metric = %name, "metric family conflicts with the same family in an earlier file (type or help differs), dropped");
                                            error = true;
                                            continue;
                                        }
                                        if m.family.help.is_empty() {
                                            m.family.help = f.help;
                                        }
                                        m.files.push(shown.clone());
                                        m.family.samples.extend(f.samples);
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            tracing::error!(file = %shown, err = %e, "failed to parse textfile, skipped");
                            error = true;
                        }
                    },
                    Err(e) => {
                        tracing::error!(file = %shown, err = %e, "failed to read textfile, skipped");
                        error = true;
                    }
                }
            }
        }
    }
    for (name, m) in merged {
        match finish(m) {
            Ok(family) => out.push(family),
            Err(e) => {
                tracing::error!(metric = %name, err = %e, "textfile metric family dropped");
                error = true;
            }
        }
    }
    out.push(mtimes);
    out.push(scrape_error(error));
    // Sorted and deduplicated here, on the lane, the families cost the
    // scrape's own pass on the runtime thread only a linear check.
    let duplicates = oxmon_core::metrics::normalize(&mut out);
    if duplicates > 0 {
        tracing::debug!(
            duplicates,
            "textfile series repeated within a family (or across files), the first kept"
        );
    }
    out
}

/// Reads a regular file and its mtime (seconds since the epoch).
fn read_file(path: &Path) -> std::io::Result<(String, f64)> {
    let (bytes, meta) = read_regular(path, OnLease::Wait, MAX_TEXTFILE_BYTES)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))?;
    // Seconds and nanoseconds from the epoch, negative before 1970.
    let mtime = meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9;
    Ok((text, mtime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxmon_core::metrics::Value;

    #[test]
    fn parses_families_and_types() {
        let text = "# HELP jobs_done_total Jobs done.\n# TYPE jobs_done_total counter\njobs_done_total{queue=\"a\"} 3\njobs_done_total{queue=\"b\",} 4\n\n# some comment\nlast_run 1.5e9\n";
        let f = parse_file(text).unwrap().families;
        assert_eq!(f.len(), 2);
        let jobs = &f["jobs_done_total"];
        assert_eq!(jobs.kind, "counter");
        assert_eq!(jobs.help, "Jobs done.");
        assert_eq!(jobs.samples.len(), 2);
        assert_eq!(f["last_run"].kind, "untyped");
        assert_eq!(f["last_run"].samples[0].value, 1.5e9);
    }

    #[test]
    fn label_escapes_and_specials() {
        let f = parse_file("x{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\"\\n\"} +Inf\n").unwrap();
        let s = &f.families["x"].samples[0];
        assert_eq!(s.label("path"), Some("C:\\dir"));
        assert_eq!(s.label("msg"), Some("say \"hi\"\n"));
        assert!(s.value.is_infinite());
    }

    #[test]
    fn rejects_malformed_input_without_panicking() {
        for bad in [
            "x{a=\"1\" 2\n",
            "x{a=1} 2\n",
            "x 1 2 3\n",
            "9x 1\n",
            "x abc\n",
            "# TYPE x bogus\n",
            "# TYPE x gauge\n# TYPE x gauge\n",
            "x 1\n# TYPE x gauge\n",
            "x{a=\"1\",a=\"2\"} 1\n",
            "x{a=\"\\q\"} 1\n",
            "# TYPE h histogram\nh_bucket{x=\"1\"} 1\n",
            "# TYPE s summary\ns{x=\"1\"} 1\n",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
        ] {
            match parse_file(bad) {
                Err(FileError::Syntax(e)) => assert!(e.line >= 1, "{bad}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = parse_file("# TYPE x info\nx_info 1\n").unwrap_err();
        assert!(matches!(e, FileError::NotTextFormat { .. }), "{e}");
        let e = parse_file("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n").unwrap_err();
        assert!(matches!(e, FileError::Shape(_)), "{e}");
    }

    #[test]
    fn timestamps_are_reported() {
        let f = parse_file("x 1 1700000000000\n").unwrap();
        assert!(f.has_timestamps());
        assert_eq!(f.families["x"].samples[0].timestamp, Some(1.7e12));
    }

    #[test]
    fn histogram_assembly_and_label_padding() {
        let text = "# TYPE lat histogram\nlat_bucket{op=\"r\",le=\"0.1\"} 2\nlat_bucket{op=\"r\",le=\"+Inf\"} 5\nlat_sum{op=\"r\"} 1.25\nlat_count{op=\"r\"} 5\n";
        let family = parse_file(text).unwrap().families.remove("lat").unwrap();
        let fam = finish(Merged {
            family,
            files: vec!["a.prom".into()],
        })
        .unwrap();
        assert_eq!(fam.help, "Metric read from a.prom");
        assert_eq!(fam.metrics.len(), 1);
        assert_eq!(
            fam.metrics[0].value,
            Value::Histogram {
                buckets: vec![(0.1, 2), (f64::INFINITY, 5)],
                sum: 1.25,
                count: 5
            }
        );

        let mut family = parse_file("y{a=\"1\"} 1\ny{b=\"2\"} 2\n")
            .unwrap()
            .families
            .remove("y")
            .unwrap();
        family.help = "h".into();
        let fam = finish(Merged {
            family,
            files: vec![],
        })
        .unwrap();
        assert_eq!(fam.help, "h");
        assert_eq!(fam.metrics[0].labels.len(), 2);
        assert_eq!(fam.metrics[0].labels[1].1, "");
        assert_eq!(fam.metrics[1].labels[0].1, "");
    }

    #[test]
    fn globs() {
        assert!(wildcard_match("*_dimension", "histogram_extra_dimension"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("*", ""));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("one_x")).unwrap();
        std::fs::create_dir(dir.path().join("two_x")).unwrap();
        std::fs::create_dir(dir.path().join("other")).unwrap();
        let got = expand_glob(&format!("{}/*_x", dir.path().display()));
        assert_eq!(
            got,
            vec![dir.path().join("one_x"), dir.path().join("two_x")]
        );
    }

    fn collect_dir(dir: &Path) -> Vec<MetricFamily> {
        read_directories(&[dir.display().to_string()])
    }

    fn error_value(fams: &[MetricFamily]) -> f64 {
        let f = fams
            .iter()
            .find(|f| f.name == "node_textfile_scrape_error")
            .unwrap();
        match f.metrics[0].value {
            Value::Single(v) => v,
            _ => unreachable!(),
        }
    }

    #[test]
    fn merges_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.prom"),
            "# TYPE backups_total counter\nbackups_total{host=\"a\"} 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.prom"),
            "# TYPE backups_total counter\nbackups_total{host=\"b\"} 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "garbage").unwrap();
        let fams = collect_dir(dir.path());
        assert_eq!(error_value(&fams), 0.0);
        let b = fams.iter().find(|f| f.name == "backups_total").unwrap();
        assert_eq!(b.metrics.len(), 2);
        assert!(b.help.starts_with("Metric read from "));
        assert!(b.help.contains("a.prom, "));

        std::fs::write(dir.path().join("c.prom"), "broken{ 1\n").unwrap();
        std::fs::write(
            dir.path().join("d.prom"),
            "# TYPE backups_total gauge\nbackups_total{host=\"d\"} 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("e.prom"), "stamped 1 1700000000000\n").unwrap();
        let fams = collect_dir(dir.path());
        assert_eq!(error_value(&fams), 1.0);
        let b = fams.iter().find(|f| f.name == "backups_total").unwrap();
        assert_eq!(b.metrics.len(), 2);
        assert!(!fams.iter().any(|f| f.name == "stamped"));
        let mtimes = fams
            .iter()
            .find(|f| f.name == "node_textfile_mtime_seconds")
            .unwrap();
        // a, b and d were read (d's only family was dropped).
        assert_eq!(mtimes.metrics.len(), 3);
    }

    /// Padding is bounded: n series with n different label names need
    /// n * (n - 1) empty labels.
    #[test]
    fn padding_beyond_the_limit_drops_the_family() {
        let dir = tempfile::tempdir().unwrap();
        let series = |family: &str, n: usize| -> String {
            (0..n)
                .map(|i| format!("{family}{{l{i}=\"x\"}} 1\n"))
                .collect()
        };
        std::fs::write(dir.path().join("ok.prom"), series("fits", 300)).unwrap();
        std::fs::write(dir.path().join("bad.prom"), series("explodes", 400)).unwrap();
        let fams = collect_dir(dir.path());
        assert_eq!(error_value(&fams), 1.0);
        assert!(!fams.iter().any(|f| f.name == "explodes"));
        let fits = fams.iter().find(|f| f.name == "fits").unwrap();
        assert_eq!(fits.metrics.len(), 300);
        assert!(fits.metrics.iter().all(|m| m.labels.len() == 300));
    }

    #[test]
    fn missing_directory_is_an_error() {
        let fams = collect_dir(Path::new("/nonexistent/textfile/dir"));
        assert_eq!(error_value(&fams), 1.0);
    }
}
