//! A value loaded from a file at start-up and replaced on SIGHUP (the
//! custom queries file, the `/probe` config file): `main` registers a
//! hook with `Registry::on_reload` that re-reads the file and hands the
//! result to [`Reloadable::reload`]. A file that no longer loads keeps the
//! running value, so a half-written or mistyped file never drops the
//! queries or the allow-list in use; the failure is logged by core (with
//! the loader's message, which names the file and line) and remembered
//! for `pg_exporter_user_queries_load_error`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use oxmon_core::sync::RwLockExt;
use oxmon_core::Registry;

/// Re-reads `path` with `load` into `value` on every SIGHUP (a hook named
/// `name` on `registry`, which must be the one handed to core's `run`).
pub fn reload_on_hangup<T: Send + Sync + 'static>(
    registry: &mut Registry,
    name: &str,
    value: &Arc<Reloadable<T>>,
    path: PathBuf,
    load: fn(&Path) -> Result<T, String>,
) {
    let value = Arc::clone(value);
    registry.on_reload(name, move || {
        value.reload(|| load(&path))?;
        Ok(())
    });
}

/// The running value and whether the last reload failed.
#[derive(Debug)]
pub struct Reloadable<T> {
    current: RwLock<Arc<T>>,
    failing: AtomicBool,
}

impl<T> Reloadable<T> {
    /// Starts with `value`.
    pub fn new(value: T) -> Self {
        Reloadable {
            current: RwLock::new(Arc::new(value)),
            failing: AtomicBool::new(false),
        }
    }

    /// The value in use.
    pub fn current(&self) -> Arc<T> {
        self.current.read_unpoisoned().clone()
    }

    /// Installs what `load` returns, or keeps the running value when it
    /// fails and returns its error.
    pub fn reload(&self, load: impl FnOnce() -> Result<T, String>) -> Result<(), String> {
        match load() {
            Ok(value) => {
                *self.current.write_unpoisoned() = Arc::new(value);
                self.failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Whether the last reload failed (the value in use is older than the
    /// file).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_reload_keeps_the_running_value_until_one_succeeds() {
        let r = Reloadable::new(1);
        assert_eq!(r.reload(|| Ok(2)), Ok(()));
        assert_eq!(*r.current(), 2);
        assert!(!r.failing());
        let e = r.reload(|| Err("q.yaml: line 3: bad".to_string()));
        assert_eq!(e.unwrap_err(), "q.yaml: line 3: bad");
        assert_eq!(*r.current(), 2);
        assert!(r.failing());
        r.reload(|| Ok(3)).unwrap();
        assert_eq!(*r.current(), 3);
        assert!(!r.failing());
    }
}
