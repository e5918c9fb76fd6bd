//! Reading small procfs/sysfs files cheaply.
//!
//! A scrape reads ~150 small files; opening and closing each costs more
//! than reading it. [`FileCache`] keeps files open and re-reads them with
//! `pread` at offset 0 (procfs seq files and sysfs attributes regenerate
//! their content on a read at offset 0). A file that fails is dropped from
//! the cache and reopened next time, so hot-plugged devices are handled.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Reads a whole file into a new string (no caching).
pub fn read_string(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut s = String::with_capacity(4096);
    f.read_to_string(&mut s)?;
    Ok(s)
}

/// Reads a one-line sysfs attribute, trimmed.
pub fn read_trimmed(path: &Path) -> io::Result<String> {
    let mut s = read_string(path)?;
    let len = s.trim_end().len();
    s.truncate(len);
    Ok(s)
}

/// Names of the entries of a directory, sorted.
pub fn list_dir(path: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort_unstable();
    Ok(names)
}

/// Names of the entries of `path` that are `prefix` followed by a decimal
/// number (`cpu0`, `node1`, `clocksource0`), with that number, sorted by it.
pub fn numbered_entries(path: &Path, prefix: &str) -> io::Result<Vec<(u32, String)>> {
    let mut out: Vec<(u32, String)> = list_dir(path)?
        .into_iter()
        .filter_map(|name| {
            let n = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
            Some((n, name))
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Keeps files open across scrapes and re-reads them with `pread`.
#[derive(Default)]
pub struct FileCache {
    files: Mutex<HashMap<PathBuf, File>>,
}

impl FileCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `path` into `buf` (cleared first), reusing an open descriptor.
    pub fn read_into(&self, path: &Path, buf: &mut String) -> io::Result<()> {
        buf.clear();
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files.get(path) {
            match pread_all(f, buf) {
                Ok(()) => return Ok(()),
                Err(_) => {
                    files.remove(path);
                    buf.clear();
                }
            }
        }
        let f = File::open(path)?;
        pread_all(&f, buf)?;
        files.insert(path.to_owned(), f);
        Ok(())
    }
}

fn pread_all(f: &File, buf: &mut String) -> io::Result<()> {
    let mut bytes = std::mem::take(buf).into_bytes();
    bytes.clear();
    let mut chunk = [0u8; 8192];
    let mut off = 0u64;
    loop {
        let n = f.read_at(&mut chunk, off)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        off += n as u64;
    }
    *buf = String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_rereads_changed_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, "1\n").unwrap();
        let c = FileCache::new();
        let mut buf = String::new();
        c.read_into(&p, &mut buf).unwrap();
        assert_eq!(buf, "1\n");
        std::fs::write(&p, "22\n").unwrap();
        c.read_into(&p, &mut buf).unwrap();
        assert_eq!(buf, "22\n");
        assert_eq!(c.files.lock().unwrap().len(), 1);
        assert!(c.read_into(&dir.path().join("missing"), &mut buf).is_err());
        std::fs::write(&p, " 42 \n").unwrap();
        assert_eq!(read_trimmed(&p).unwrap(), " 42");
    }
}
