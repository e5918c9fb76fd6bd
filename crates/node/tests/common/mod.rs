//! Helpers shared by the integration tests that run the binary on a copy
//! of the fixture tree.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// A copy of `tests/fixtures` in a temporary directory, at `<dir>/fixtures`.
pub fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(dir.path().join("fixtures"))
        .status()
        .unwrap();
    assert!(status.success(), "copying {}", src.display());
    dir
}

/// Flags that point every root at the fixture copy `f` (its `textfile`
/// directory included) and turn the default collectors off.
pub fn root_args(f: &Path) -> Vec<String> {
    vec![
        format!("--path.procfs={}", f.join("proc").display()),
        format!("--path.sysfs={}", f.join("sys").display()),
        format!("--path.rootfs={}", f.join("rootfs").display()),
        format!(
            "--collector.textfile.directory={}",
            f.join("textfile").display()
        ),
        "--collector.disable-defaults".into(),
    ]
}

/// `node_scrape_collector_success{collector="<name>"}` in `body`.
pub fn success(body: &str, collector: &str) -> Option<f64> {
    sample(
        body,
        &format!("node_scrape_collector_success{{collector=\"{collector}\"}}"),
    )
}

/// The value of the series written exactly as `series` in `body`.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// A line of `/proc/<pid>/status` in kB (`VmHWM`: peak resident memory).
pub fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}
