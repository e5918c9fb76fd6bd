//! Ports, programs, child processes.

use std::collections::HashSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago and that this
/// process has not handed out before.
///
/// Ports are drawn at random below the kernel's ephemeral range (so outgoing
/// connections, which take ephemeral ports, cannot grab them meanwhile);
/// other processes running tests at the same time draw from the same range,
/// so collisions are unlikely but possible: the starters in this crate retry
/// on "address in use".
pub fn free_port() -> u16 {
    static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let (lo, hi) = port_range();
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    let used = used.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let port = (lo as u64 + next_random() % (hi - lo) as u64) as u16;
        if used.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            used.insert(port);
            return port;
        }
    }
    // Fall back to a kernel-chosen ephemeral port.
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if used.insert(port) {
            return port;
        }
    }
}

/// The range free ports are drawn from: below the ephemeral range.
fn port_range() -> (u16, u16) {
    let ephemeral_lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_lo > 12000 {
        (10000, ephemeral_lo - 1)
    } else {
        (ephemeral_lo.max(1024), 65000)
    }
}

pub(crate) fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        x = nanos ^ ((std::process::id() as u64) << 32) | 1;
    }
    // xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

/// Finds `name` (a bare name on `PATH`, or a path) or panics with
/// "NAME not found: apt-get install PACKAGE".
pub fn require_program(name: &str, debian_package: &str) -> PathBuf {
    find_program(name)
        .unwrap_or_else(|| panic!("{name} not found: apt-get install {debian_package}"))
}

/// Finds `name` on `PATH` (or checks a path), if it is there.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (real uid 0).
pub fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// The last `lines` lines of a file (for error messages).
pub fn log_tail(path: &Path, lines: usize) -> String {
    tail(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `check` every 50 ms until it returns `Some`, or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens `path` for a child's stdout and stderr.
pub(crate) fn log_stdio(path: &Path) -> (Stdio, Stdio) {
    let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let err = file.try_clone().expect("clone log file handle");
    (Stdio::from(file), Stdio::from(err))
}

/// Sends `signal` to a process; errors (already gone) are ignored.
pub fn send_signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Sends SIGTERM, waits up to `grace` for exit, then SIGKILLs. Returns the
/// exit status (None if it had to be killed or could not be waited for).
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    send_signal(child.id(), rustix::process::Signal::TERM);
    let status = wait_until(grace, || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Runs a command to completion; `Err` holds the command line, status and
/// output when it fails.
pub(crate) fn run_command(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let set: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(set.len(), ports.len());
        for p in ports {
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }

    #[test]
    fn missing_program_names_the_package() {
        let err =
            std::panic::catch_unwind(|| require_program("oxmon-no-such-program", "oxmon-pkg"))
                .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert_eq!(
            msg,
            "oxmon-no-such-program not found: apt-get install oxmon-pkg"
        );
        assert!(require_program("sh", "dash").is_file());
    }
}
