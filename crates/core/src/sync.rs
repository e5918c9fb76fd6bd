//! Locks that survive a panic.
//!
//! A collector that panics while holding a lock poisons it, and
//! `lock().unwrap()` would then panic in every later scrape: one bug would
//! turn into a collector that never recovers. Collectors catch panics per
//! scrape (see [`crate::collector`]) and rebuild their state each scrape,
//! so the state behind a poisoned lock is still usable; these helpers take
//! the lock anyway.
//!
//! ```
//! use std::sync::Mutex;
//! use oxmon_core::sync::LockExt;
//!
//! let seen = Mutex::new(Vec::<u32>::new());
//! let _ = std::panic::catch_unwind(|| {
//!     let _guard = seen.lock_unpoisoned();
//!     panic!("a bug while holding the lock");
//! });
//! seen.lock_unpoisoned().push(1);
//! assert_eq!(*seen.lock_unpoisoned(), [1]);
//! ```

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Taking a lock whether or not an earlier holder panicked.
pub trait LockExt<T: ?Sized> {
    /// Locks a [`Mutex`], recovering the guard from a poisoned lock.
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`LockExt`] for [`RwLock`].
pub trait RwLockExt<T: ?Sized> {
    /// Takes the read lock, recovering it from a poisoned lock.
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T>;
    /// Takes the write lock, recovering it from a poisoned lock.
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T> {
        self.write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rwlock_recovers_from_poison() {
        let lock = RwLock::new(1);
        let _ = std::panic::catch_unwind(|| {
            let _w = lock.write().unwrap();
            panic!("poison");
        });
        assert!(lock.is_poisoned());
        *lock.write_unpoisoned() += 1;
        assert_eq!(*lock.read_unpoisoned(), 2);
    }
}
