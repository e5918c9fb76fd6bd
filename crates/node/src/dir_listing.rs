//! Directory listings: sorted entry names, numbered entries (`cpu0`,
//! `node1`), [`Refreshed`], a value derived from a directory walk that
//! is rebuilt once a minute instead of on every scrape, and
//! [`AbsentSource`], which remembers that a subsystem's directory or file
//! is missing so a host without it pays one look a minute, not one per
//! scrape.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxmon_core::collector::CollectError;
use oxmon_core::sync::LockExt;

use crate::file_cache::{is_missing, MISSING_RECHECK};

/// Names of the entries of a directory with their file type (not
/// following symlinks), sorted by name.
fn sorted_entries(path: &Path) -> io::Result<Vec<(String, std::fs::FileType)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(path)?.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(ft) = e.file_type() else { continue };
        out.push((name, ft));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Names of the entries of a directory with their file type (not
/// following symlinks), sorted by name; a missing directory is `Ok(None)`.
pub fn dir_entries(path: &Path) -> io::Result<Option<Vec<(String, std::fs::FileType)>>> {
    match sorted_entries(path) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Names of the entries of a directory, sorted.
pub fn list_dir(path: &Path) -> io::Result<Vec<String>> {
    Ok(sorted_entries(path)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// The entries of `dir` that are `prefix` followed by a decimal number
/// (`cpu0`, `node1`, `clocksource0`), with that number, sorted by it;
/// empty when the directory does not exist.
pub fn numbered_entries(dir: &Path, prefix: &str) -> Result<Vec<(u32, String)>, CollectError> {
    let names = match list_dir(dir) {
        Ok(names) => names,
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(format!("listing {}: {e}", dir.display()).into()),
    };
    let mut out: Vec<(u32, String)> = names
        .into_iter()
        .filter_map(|name| {
            let n = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
            Some((n, name))
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// How long a [`Refreshed`] value is reused before it is built again:
/// hot-plugged devices show up within this time instead of costing a
/// directory walk on every scrape.
const LISTING_TTL: Duration = Duration::from_secs(60);

/// A value derived from a sysfs directory walk (which CPUs have cpufreq,
/// the CPU topology, the clock sources), rebuilt after [`LISTING_TTL`] or
/// when a caller finds it stale.
pub struct Refreshed<T> {
    cached: Mutex<Option<(Instant, Arc<T>)>>,
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
    pub fn get(
        &self,
        load: impl FnOnce() -> Result<T, CollectError>,
    ) -> Result<Arc<T>, CollectError> {
        let mut cached = self.cached.lock_unpoisoned();
        if let Some((at, v)) = cached.as_ref() {
            if at.elapsed() < LISTING_TTL {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(load()?);
        *cached = Some((Instant::now(), v.clone()));
        Ok(v)
    }

    /// Forgets the value (something in it vanished).
    pub fn invalidate(&self) {
        *self.cached.lock_unpoisoned() = None;
    }
}

/// Remembers that a collector's source (`class/infiniband`, `net/rpc/nfs`)
/// was missing: the collector asks [`AbsentSource::skip`] before reading
/// and calls [`AbsentSource::missing`] when a read finds nothing, so a host
/// without the subsystem (no InfiniBand, no NFS module) costs nothing on
/// most scrapes and a module loaded later is seen within
/// [`MISSING_RECHECK`]. A present source costs no extra look.
pub struct AbsentSource {
    until: Mutex<Option<Instant>>,
    recheck: Duration,
}

impl Default for AbsentSource {
    fn default() -> Self {
        AbsentSource {
            until: Mutex::new(None),
            recheck: MISSING_RECHECK,
        }
    }
}

impl AbsentSource {
    /// One that looks again `recheck` after a miss (tests use a short one).
    #[cfg(test)]
    pub fn with_recheck(recheck: Duration) -> Self {
        AbsentSource {
            until: Mutex::new(None),
            recheck,
        }
    }

    /// True while the source is remembered as missing: do not look.
    pub fn skip(&self) -> bool {
        let mut until = self.until.lock_unpoisoned();
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// Notes that a look found the source missing.
    pub fn missing(&self) {
        *self.until.lock_unpoisoned() = Some(Instant::now() + self.recheck);
    }

    /// The entries of `dir` (see [`dir_entries`]), or `None` when it is
    /// missing now or was missing at the last look.
    pub fn entries(
        &self,
        dir: &Path,
    ) -> Result<Option<Vec<(String, std::fs::FileType)>>, CollectError> {
        if self.skip() {
            return Ok(None);
        }
        match dir_entries(dir) {
            Ok(Some(entries)) => Ok(Some(entries)),
            Ok(None) => {
                self.missing();
                Ok(None)
            }
            Err(e) if is_missing(&e) => {
                self.missing();
                Ok(None)
            }
            Err(e) => Err(format!("listing {}: {e}", dir.display()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_is_remembered_until_the_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("class");
        let a = AbsentSource::with_recheck(Duration::from_millis(40));
        assert!(a.entries(&class).unwrap().is_none());
        std::fs::create_dir(&class).unwrap();
        std::fs::write(class.join("x"), "").unwrap();
        assert!(a.skip(), "still remembered as missing");
        assert!(a.entries(&class).unwrap().is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(a.entries(&class).unwrap().unwrap().len(), 1);
        assert!(!a.skip());
    }

    #[test]
    fn numbered_entries_sorted_by_number() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["cpu10", "cpu2", "cpufreq", "cpu0", "cpux1"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("online"), "0-10").unwrap();
        let got = numbered_entries(dir.path(), "cpu").unwrap();
        assert_eq!(
            got,
            [(0, "cpu0".into()), (2, "cpu2".into()), (10, "cpu10".into())]
        );
        assert!(numbered_entries(&dir.path().join("none"), "cpu")
            .unwrap()
            .is_empty());
        let names = list_dir(dir.path()).unwrap();
        assert_eq!(names.first().map(String::as_str), Some("cpu0"));
        assert_eq!(names.len(), 6);
        assert_eq!(
            list_dir(&dir.path().join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn refreshed_reuses_until_invalidated() {
        let r = Refreshed::default();
        assert_eq!(*r.get(|| Ok(1)).unwrap(), 1);
        assert_eq!(*r.get(|| Ok(2)).unwrap(), 1);
        r.invalidate();
        assert_eq!(*r.get(|| Ok(3)).unwrap(), 3);
        r.invalidate();
        assert!(r.get(|| Err("gone".into())).is_err());
    }
}
