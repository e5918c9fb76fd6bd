//! Waiting for something to read: inotify where the kernel offers it,
//! polling otherwise.
//!
//! With inotify, each followed file is watched for writes (the watch
//! follows the file through a rename) and each directory a glob lists is
//! watched for files and directories appearing, moving or going; a line is
//! read within about [`super::COALESCE`] of being written. The tailer still reads every
//! file and re-expands the globs every poll interval, which covers what
//! inotify cannot see (a lost event queue, network file systems). Without
//! inotify (no kernel support, or the per-user watch limit reached) the
//! poll interval is capped at [`FALLBACK_POLL`], the latency of a line.
//! An eventfd wakes the wait for reconfiguration and stop.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// The longest wait when inotify is unavailable.
pub const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Identifies a file across renames: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
}

impl FileId {
    /// The identity in `meta`.
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Wakes a [`Watcher`] from another thread.
#[derive(Debug, Clone)]
pub struct Waker(Arc<OwnedFd>);

impl Waker {
    /// Makes the current or next wait return.
    pub fn wake(&self) {
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }
}

/// What a wait found.
#[derive(Debug, Default)]
pub struct Wake {
    /// Files written to.
    pub dirty: Vec<FileId>,
    /// Something appeared, moved or went: expand the globs again.
    pub rescan: bool,
    /// Events were lost: read everything.
    pub everything: bool,
    /// Files renamed within watched directories: (from, to).
    pub renames: Vec<(PathBuf, PathBuf)>,
}

impl Wake {
    /// Empties it for the next wait.
    pub fn clear(&mut self) {
        self.dirty.clear();
        self.rescan = false;
        self.everything = false;
        self.renames.clear();
    }
}

#[derive(Debug, Clone)]
enum Target {
    Dir(PathBuf),
    File(FileId),
}

/// The wait of the tailer thread.
#[derive(Debug)]
pub struct Watcher {
    inotify: Option<OwnedFd>,
    wake: Arc<OwnedFd>,
    dirs: HashMap<PathBuf, i32>,
    targets: HashMap<i32, Target>,
}

impl Watcher {
    /// A watcher; fails only when not even an eventfd can be made.
    pub fn new() -> std::io::Result<Watcher> {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let inotify = match inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(err = %e, poll = ?FALLBACK_POLL, "inotify unavailable; polling log files");
                None
            }
        };
        Ok(Watcher {
            inotify,
            wake: Arc::new(wake),
            dirs: HashMap::new(),
            targets: HashMap::new(),
        })
    }

    /// A handle that wakes this watcher.
    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// The poll interval to use for a configured one.
    pub fn poll_interval(&self, configured: Duration) -> Duration {
        if self.inotify.is_some() {
            configured
        } else {
            configured.min(FALLBACK_POLL)
        }
    }

    /// Watches file `path` (identity `id`) for writes; returns the watch to
    /// give back to [`Watcher::unwatch_file`].
    pub fn watch_file(&mut self, path: &Path, id: FileId) -> Option<i32> {
        let fd = self.inotify.as_ref()?;
        let flags = WatchFlags::MODIFY | WatchFlags::MOVE_SELF | WatchFlags::DELETE_SELF;
        match inotify::add_watch(fd, path, flags) {
            Ok(wd) => {
                self.targets.insert(wd, Target::File(id));
                Some(wd)
            }
            Err(e) => {
                tracing::debug!(file = %path.display(), err = %e, "cannot watch log file; polling it");
                None
            }
        }
    }

    /// Stops watching a file.
    pub fn unwatch_file(&mut self, wd: i32) {
        if let Some(fd) = &self.inotify {
            if self.targets.remove(&wd).is_some() {
                let _ = inotify::remove_watch(fd, wd);
            }
        }
    }

    /// Watches exactly `dirs` for entries appearing, moving or going.
    pub fn set_dirs(&mut self, dirs: &[PathBuf]) {
        let Some(fd) = &self.inotify else {
            return;
        };
        let flags = WatchFlags::CREATE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        let old = std::mem::take(&mut self.dirs);
        for dir in dirs {
            if self.dirs.contains_key(dir) {
                continue;
            }
            let wd = match old.get(dir) {
                Some(&wd) => wd,
                None => match inotify::add_watch(fd, dir, flags) {
                    Ok(wd) => wd,
                    Err(e) => {
                        tracing::debug!(dir = %dir.display(), err = %e, "cannot watch directory; polling it");
                        continue;
                    }
                },
            };
            self.targets.insert(wd, Target::Dir(dir.clone()));
            self.dirs.insert(dir.clone(), wd);
        }
        for (dir, wd) in old {
            // Two paths of one directory share a watch.
            if !self.dirs.contains_key(&dir) && !self.dirs.values().any(|w| *w == wd) {
                self.targets.remove(&wd);
                let _ = inotify::remove_watch(fd, wd);
            }
        }
    }

    /// Waits up to `timeout` for events or a wake-up; fills `out`.
    pub fn wait(&mut self, timeout: Duration, out: &mut Wake) {
        let ts = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = Vec::with_capacity(2);
        fds.push(PollFd::new(&*self.wake, PollFlags::IN));
        if let Some(fd) = &self.inotify {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        // EINTR and friends: the caller's loop comes back soon enough.
        let _ = poll(&mut fds, Some(&ts));
        drop(fds);
        let mut drain = [0u8; 8];
        let _ = rustix::io::read(&*self.wake, &mut drain);
        self.read_events(out);
    }

    fn read_events(&mut self, out: &mut Wake) {
        let Some(fd) = &self.inotify else {
            return;
        };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        // A rename is a MOVED_FROM and a MOVED_TO with one cookie, next to
        // each other in the queue.
        let mut moved_from: Vec<(u32, PathBuf)> = Vec::new();
        while let Ok(event) = reader.next() {
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                out.everything = true;
                out.rescan = true;
                continue;
            }
            match self.targets.get(&event.wd()) {
                Some(Target::File(id)) if flags.contains(ReadFlags::MODIFY) => {
                    if !out.dirty.contains(id) {
                        out.dirty.push(*id);
                    }
                }
                Some(Target::Dir(dir)) => {
                    out.rescan = true;
                    let name = event
                        .file_name()
                        .map(|n| dir.join(OsStr::from_bytes(n.to_bytes())));
                    match name {
                        Some(path) if flags.contains(ReadFlags::MOVED_FROM) => {
                            moved_from.push((event.cookie(), path));
                        }
                        Some(path) if flags.contains(ReadFlags::MOVED_TO) => {
                            if let Some(i) =
                                moved_from.iter().position(|(c, _)| *c == event.cookie())
                            {
                                let (_, from) = moved_from.swap_remove(i);
                                out.renames.push((from, path));
                            }
                        }
                        _ => {}
                    }
                }
                Some(Target::File(_)) | None => out.rescan = true,
            }
            if flags.contains(ReadFlags::IGNORED) {
                self.targets.remove(&event.wd());
                self.dirs.retain(|_, wd| *wd != event.wd());
            }
        }
    }
}
