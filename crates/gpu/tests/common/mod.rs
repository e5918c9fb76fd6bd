//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The oxmon-gpu binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_oxmon-gpu");

/// Builds the fake library (integration tests cannot depend on a cdylib)
/// into the same target dir and profile as this test's binary.
pub fn fake_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let profile_dir = Path::new(BIN).parent().expect("binary has a parent dir");
        let target_dir = profile_dir.parent().expect("profile dir has a parent");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "oxmon-fake-nvml",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("running cargo build -p oxmon-fake-nvml");
        assert!(status.success(), "cargo build -p oxmon-fake-nvml failed");
        let lib = profile_dir.join("libnvidia_ml.so");
        assert!(lib.is_file(), "{} missing after the build", lib.display());
        lib
    })
}
