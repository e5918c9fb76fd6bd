//! Following files through rotation and truncation, line by line.
//!
//! Each file is known by device and inode ([`FileId`]) and read through
//! the descriptor opened when it was found, at the offset of the next
//! unread byte, so no line is read twice and none is skipped:
//! - rotation by rename (or delete and re-create): the old file keeps its
//!   descriptor; it is read to its end before the file now at its path is
//!   opened, and kept for `rotate_wait` after it left its path so lines the
//!   application writes to it before reopening its log are counted too;
//!   then whatever is left without a newline is taken as its last line.
//!   A renamed file that still matches a glob (`app.log.1` under
//!   `app.log*`) is the same file, not a new one. A file renamed away
//!   before any scan found it at its path (rotations faster than a scan)
//!   is found through the rename event inotify reports for its directory
//!   and read from its start; one deleted or moved to another directory
//!   that fast is lost;
//! - truncation (copytruncate): when the file is shorter than the offset,
//!   reading starts again at 0; a held partial line is dropped and counted
//!   as a parse error. Lines written between the last read and the
//!   truncation are lost (copytruncate's own race), and so is a truncation
//!   followed by more writing than was read before, within one read pass:
//!   the file is then never seen shorter. Globs must not match the copies
//!   copytruncate makes, or the copies are read as new files;
//! - files present when the source starts are read from their end (a
//!   partly written last line is skipped) unless `from_beginning`; files
//!   that appear later, including the new file after a rotation, from 0.
//!
//! A line ends at `\n` (a `\r` before it is dropped). A partial last line is
//! held until its newline arrives. A line longer than `max_line_bytes` is
//! counted as a parse error once and skipped up to its newline without
//! being held. Empty lines are ignored. Bytes that are not UTF-8 are
//! replaced (U+FFFD) rather than rejected. At most [`READ_PER_PASS`] bytes
//! are read from one file before the others get their turn.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memchr;

use super::glob::Glob;
use super::json::Values;
use super::line::Joiner;
use super::pipeline::{count_parse_error, Batch, Fields, Pipeline};
use super::watch::{FileId, Watcher};
use crate::store::{Store, Writer};

/// Bytes read at once.
pub const READ_CHUNK: usize = 64 * 1024;

/// Bytes read from one file in one pass before the other files' turn.
pub const READ_PER_PASS: u64 = 8 * 1024 * 1024;

/// One followed file.
#[derive(Debug)]
struct Tracked {
    file: File,
    /// Where it was last seen (for log messages).
    path: PathBuf,
    /// The path it was found at: its `file` label.
    label: Box<str>,
    offset: u64,
    /// A line whose newline has not arrived.
    partial: Vec<u8>,
    /// Discarding the rest of a line that was too long.
    skipping: bool,
    joiner: Joiner,
    /// When it was first missing from every glob.
    gone_since: Option<Instant>,
    watch: Option<i32>,
}

/// One configured glob.
#[derive(Debug)]
pub struct Pattern {
    /// As configured.
    pub text: String,
    /// Compiled.
    pub glob: Glob,
    /// Its files found so far were there from the start.
    scanned: bool,
}

impl Pattern {
    /// A glob not expanded yet.
    pub fn new(text: String, glob: Glob) -> Pattern {
        Pattern {
            text,
            glob,
            scanned: false,
        }
    }
}

/// Follows the files of a set of globs into the store.
pub struct Tailer {
    patterns: Vec<Pattern>,
    files: HashMap<FileId, Tracked>,
    /// Parses lines and writes their metrics.
    pub pipeline: Pipeline,
    store: Arc<Store>,
    buf: Vec<u8>,
    values: Values,
    batch: Batch,
    /// Start files present at start at 0.
    pub from_beginning: bool,
    /// How long a file that left its path is still read.
    pub rotate_wait: Duration,
}

impl Tailer {
    /// A tailer with no file open yet.
    pub fn new(
        patterns: Vec<Pattern>,
        pipeline: Pipeline,
        store: Arc<Store>,
        from_beginning: bool,
        rotate_wait: Duration,
    ) -> Tailer {
        Tailer {
            patterns,
            files: HashMap::new(),
            pipeline,
            store,
            buf: vec![0; READ_CHUNK],
            values: Values::default(),
            batch: Batch::default(),
            from_beginning,
            rotate_wait,
        }
    }

    /// Replaces the globs; those already known keep their state, so files
    /// they found are not treated as present from the start again.
    pub fn set_patterns(&mut self, patterns: Vec<Pattern>) {
        let old = std::mem::take(&mut self.patterns);
        self.patterns = patterns
            .into_iter()
            .map(|mut p| {
                p.scanned = old.iter().any(|o| o.text == p.text && o.scanned);
                p
            })
            .collect();
    }

    /// Replaces the parser and metrics; held partial messages are dropped
    /// when the format changes.
    pub fn set_pipeline(&mut self, pipeline: Pipeline, format_changed: bool) {
        self.pipeline = pipeline;
        // Batched keys index the old routes.
        self.batch = Batch::default();
        if format_changed {
            for t in self.files.values_mut() {
                t.joiner.clear();
            }
        }
    }

    /// Reads the given files (all of them with `None`) up to their end or
    /// their per-pass budget; returns whether any has more to read.
    pub fn read(&mut self, which: Option<&[FileId]>) -> bool {
        let ids: Vec<FileId> = match which {
            Some(ids) => ids.to_vec(),
            None => self.files.keys().copied().collect(),
        };
        let mut more = false;
        for id in ids {
            more |= self.read_file(id);
        }
        more
    }

    fn read_file(&mut self, id: FileId) -> bool {
        let Tailer {
            files,
            pipeline,
            store,
            buf,
            values,
            batch,
            ..
        } = self;
        let Some(t) = files.get_mut(&id) else {
            return false;
        };
        let mut scratch = Scratch { buf, values, batch };
        match read_available(t, pipeline, store, &mut scratch) {
            Ok(more) => more,
            Err(e) => {
                tracing::warn!(file = %t.path.display(), err = %e, "reading log file failed");
                false
            }
        }
    }

    /// Expands the globs: files that left every glob are marked gone (read
    /// for `rotate_wait` more), new files are opened after the files they
    /// replace were read to their end, and gone files past their wait are
    /// closed. New files are read at once unless `initial` (the first
    /// scan only positions them). Returns the directories to watch.
    pub fn rescan(&mut self, watcher: &mut Watcher, initial: bool) -> Vec<PathBuf> {
        let now = Instant::now();
        let mut dirs = Vec::new();
        let mut seen = HashSet::new();
        let mut found: Vec<(PathBuf, bool)> = Vec::new();
        for p in &mut self.patterns {
            let e = p.glob.expand();
            dirs.extend(e.dirs);
            for path in e.files {
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let id = FileId::of(&meta);
                match self.files.get_mut(&id) {
                    Some(t) => {
                        seen.insert(id);
                        t.gone_since = None;
                        t.path = path;
                    }
                    None => found.push((path, !p.scanned)),
                }
            }
            p.scanned = true;
        }
        let mut left = Vec::new();
        for (id, t) in &mut self.files {
            if !seen.contains(id) {
                left.push(*id);
                t.gone_since.get_or_insert(now);
            }
        }
        // Finish the files that left their paths before their successors.
        for &id in &left {
            while self.read_file(id) {}
        }
        for (path, present_at_start) in found {
            let label = path.to_string_lossy().into();
            let from_end = present_at_start && !self.from_beginning;
            let opened = self.open(path, label, from_end, None, watcher);
            if let (Some(id), false) = (opened, initial) {
                while self.read_file(id) {}
            }
        }
        for id in left {
            let expired = self
                .files
                .get(&id)
                .and_then(|t| t.gone_since)
                .is_some_and(|since| now.duration_since(since) >= self.rotate_wait);
            if expired {
                self.close(id, watcher);
            }
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Follows files renamed from a followed path to one no glob matches
    /// (`app.log` to `app.log.1`): normally such a file is followed
    /// already, but one that lived at its path too briefly to be found by
    /// a scan is read from its start here instead of being lost.
    pub fn follow_renames(&mut self, renames: &[(PathBuf, PathBuf)], watcher: &mut Watcher) {
        let now = Instant::now();
        for (from, to) in renames {
            let matched = |p: &PathBuf| self.patterns.iter().any(|g| g.glob.matches(p));
            if matched(from) && !matched(to) {
                let label = from.to_string_lossy().into();
                if let Some(id) = self.open(to.clone(), label, false, Some(now), watcher) {
                    while self.read_file(id) {}
                }
            }
        }
    }

    /// Opens `path` unless its file is followed already, positioned at its
    /// start (its end with `from_end`).
    fn open(
        &mut self,
        path: PathBuf,
        label: Box<str>,
        from_end: bool,
        gone_since: Option<Instant>,
        watcher: &mut Watcher,
    ) -> Option<FileId> {
        let (file, meta) = match File::open(&path).and_then(|f| {
            let m = f.metadata()?;
            Ok((f, m))
        }) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(file = %path.display(), err = %e, "cannot open log file");
                return None;
            }
        };
        let id = FileId::of(&meta);
        if self.files.contains_key(&id) {
            return None;
        }
        let mut t = Tracked {
            file,
            label,
            path,
            offset: 0,
            partial: Vec::new(),
            skipping: false,
            joiner: Joiner::default(),
            gone_since,
            watch: None,
        };
        if from_end {
            t.offset = meta.len();
            let mut last = [0u8];
            if t.offset > 0 && t.file.read_at(&mut last, t.offset - 1).ok() == Some(1) {
                t.skipping = last[0] != b'\n';
            }
        }
        tracing::info!(file = %t.path.display(), offset = t.offset, "following log file");
        t.watch = watcher.watch_file(&t.path, id);
        self.files.insert(id, t);
        Some(id)
    }

    fn close(&mut self, id: FileId, watcher: &mut Watcher) {
        while self.read_file(id) {}
        let Some(mut t) = self.files.remove(&id) else {
            return;
        };
        if let Some(wd) = t.watch {
            watcher.unwatch_file(wd);
        }
        if !t.partial.is_empty() && !t.skipping {
            let line = std::mem::take(&mut t.partial);
            let mut w = self.store.writer(Instant::now());
            let mut scratch = Scratch {
                buf: &mut self.buf,
                values: &mut self.values,
                batch: &mut self.batch,
            };
            handle_line(&line, &mut t, &mut self.pipeline, &mut scratch, &mut w);
            self.pipeline.metrics.flush(&mut self.batch, &mut w);
        }
        tracing::info!(file = %t.path.display(), "stopped following rotated log file");
    }

    /// Closes every file (the source stops).
    pub fn close_all(&mut self, watcher: &mut Watcher) {
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            if let Some(t) = self.files.remove(&id) {
                if let Some(wd) = t.watch {
                    watcher.unwatch_file(wd);
                }
            }
        }
    }
}

/// The tailer's buffers, reused for every read and line.
struct Scratch<'a> {
    buf: &'a mut [u8],
    values: &'a mut Values,
    batch: &'a mut Batch,
}

/// Reads `t` from its offset to its end (or [`READ_PER_PASS`]); returns
/// whether there is more.
fn read_available(
    t: &mut Tracked,
    pipeline: &mut Pipeline,
    store: &Store,
    scratch: &mut Scratch<'_>,
) -> io::Result<bool> {
    let mut budget = READ_PER_PASS;
    loop {
        let n = t.file.read_at(scratch.buf, t.offset)?;
        if n == 0 {
            let size = t.file.metadata()?.len();
            if size >= t.offset {
                return Ok(false);
            }
            tracing::info!(file = %t.path.display(), size, offset = t.offset, "log file truncated; reading it from the start");
            t.offset = 0;
            t.skipping = false;
            t.joiner.clear();
            if !std::mem::take(&mut t.partial).is_empty() {
                count_parse_error(&mut store.writer(Instant::now()), &t.label);
            }
            continue;
        }
        t.offset += n as u64;
        let mut w = store.writer(Instant::now());
        // The chunk leaves the buffer for the time of the split, so the
        // lines can borrow it while the scratch values are written.
        let chunk = std::mem::take(&mut scratch.buf);
        consume(t, &chunk[..n], pipeline, scratch, &mut w);
        scratch.buf = chunk;
        pipeline.metrics.flush(scratch.batch, &mut w);
        budget = budget.saturating_sub(n as u64);
        if budget == 0 {
            return Ok(true);
        }
    }
}

/// Splits `data` into lines, joining a held partial line.
fn consume(
    t: &mut Tracked,
    mut data: &[u8],
    pipeline: &mut Pipeline,
    scratch: &mut Scratch<'_>,
    w: &mut Writer<'_>,
) {
    let max = pipeline.parser.max_line;
    while !data.is_empty() {
        let Some(k) = memchr(b'\n', data) else {
            if !t.skipping {
                if t.partial.len() + data.len() > max {
                    count_parse_error(w, &t.label);
                    t.partial = Vec::new();
                    t.skipping = true;
                } else {
                    t.partial.extend_from_slice(data);
                }
            }
            return;
        };
        let line = &data[..k];
        data = &data[k + 1..];
        if std::mem::take(&mut t.skipping) {
            continue;
        }
        if t.partial.is_empty() {
            if line.len() > max {
                count_parse_error(w, &t.label);
            } else {
                handle_line(line, t, pipeline, scratch, w);
            }
        } else if t.partial.len() + line.len() > max {
            count_parse_error(w, &t.label);
            t.partial.clear();
        } else {
            let mut joined = std::mem::take(&mut t.partial);
            joined.extend_from_slice(line);
            handle_line(&joined, t, pipeline, scratch, w);
            joined.clear();
            t.partial = joined;
        }
    }
}

fn handle_line(
    line: &[u8],
    t: &mut Tracked,
    pipeline: &mut Pipeline,
    scratch: &mut Scratch<'_>,
    w: &mut Writer<'_>,
) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    let text = match std::str::from_utf8(line) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(line),
    };
    let Pipeline { parser, metrics } = pipeline;
    match parser.parse(&text, &mut t.joiner, scratch.values) {
        Ok(Some(message)) => metrics.record(
            Fields {
                message,
                values: &*scratch.values,
            },
            scratch.batch,
            w,
        ),
        Ok(None) => {}
        Err(_) => count_parse_error(w, &t.label),
    }
}
