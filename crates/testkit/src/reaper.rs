//! Cleanup after a test process that dies without running destructors
//! (killed by a timeout, SIGKILL, `panic = "abort"`).
//!
//! The first registration starts one detached watchdog shell per test
//! process. It polls the test process every second and, once it is gone,
//! runs the cleanup script the test process appended to: kill the servers
//! it started (only if the PID still belongs to the same process, judged by
//! its start time) and delete their temp dirs. After a normal exit every
//! line is a no-op, because the destructors already did the work.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

struct Reaper {
    script: Mutex<File>,
}

fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            let dir = std::env::temp_dir();
            let path: PathBuf = dir.join(format!(
                "oxmon-testkit-reaper-{}-{}.sh",
                std::process::id(),
                crate::util::next_random() % 1_000_000
            ));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .ok()?;
            let watch = format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; . '{script}'; rm -f '{script}'",
                pid = std::process::id(),
                script = path.display()
            );
            let mut cmd = match crate::util::find_program("setsid") {
                Some(setsid) => {
                    let mut c = Command::new(setsid);
                    c.arg("sh");
                    c
                }
                None => Command::new("sh"),
            };
            cmd.args(["-c", &watch])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            Some(Reaper {
                script: Mutex::new(file),
            })
        })
        .as_ref()
}

fn append(line: &str) {
    if let Some(r) = reaper() {
        let mut f = r.script.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{line}");
    }
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The start time of a process (field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(19).map(str::to_string)
}

/// Kill `pid` if the test process dies, unless the PID was reused by then.
pub(crate) fn kill_on_abort(pid: u32) {
    if let Some(start) = start_time(pid) {
        append(&format!(
            "[ \"$(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -d' ' -f20)\" = '{start}' ] && kill -9 {pid}"
        ));
    }
}

/// Delete `dir` if the test process dies.
pub(crate) fn remove_on_abort(dir: &Path) {
    append(&format!("rm -rf {}", quote(dir)));
}

/// Run a shell command if the test process dies (before the removals
/// registered after it).
pub(crate) fn run_on_abort(shell: &str) {
    append(&format!("{shell} >/dev/null 2>&1"));
}
