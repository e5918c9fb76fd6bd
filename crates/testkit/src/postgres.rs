//! A throwaway PostgreSQL server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::util::{find_program, free_port, is_root, log_tail, run_command};
use crate::versions::ServerBuild;

/// The superuser's password of every [`Postgres`] instance.
pub const POSTGRES_PASSWORD: &str = "postgres-test-pw";

const MISSING: &str = "PostgreSQL server not found: apt-get install postgresql";

/// A PostgreSQL server in a temp dir on a free 127.0.0.1 port: superuser
/// `postgres` with password [`POSTGRES_PASSWORD`] over TCP
/// (scram-sha-256), trust on its private Unix socket. `pg_stat_statements`
/// is preloaded when the extension is installed (`CREATE EXTENSION` is up
/// to the test). When the tests run as root, the server runs as the
/// `postgres` OS user (PostgreSQL refuses root). Stopped and deleted on drop.
#[derive(Debug)]
pub struct Postgres {
    /// The TCP port.
    pub port: u16,
    build: ServerBuild,
    psql: PathBuf,
    dir: TempDir,
    running: bool,
    stat_statements: bool,
}

impl Postgres {
    /// initdb + start; panics with the reason (and the server log) on failure,
    /// with "PostgreSQL server not found: apt-get install postgresql" when
    /// the binaries are missing.
    pub fn start() -> Postgres {
        Self::start_with(&[])
    }

    /// Like [`Postgres::start`], with extra `postgresql.conf` settings, for
    /// example `&[("max_connections", "20")]` (values are written as given,
    /// so quote strings: `("log_line_prefix", "'%m '")`).
    pub fn start_with(settings: &[(&str, &str)]) -> Postgres {
        let bin_dir = find_bin_dir().unwrap_or_else(|| panic!("{MISSING}"));
        Self::start_build(
            &ServerBuild {
                bin_dir,
                library_dir: None,
                origin: "Debian".into(),
            },
            settings,
        )
    }

    /// Like [`Postgres::start_with`], with the server programs of `build`
    /// (one version of the version matrix, see [`ServerBuild::postgres`]).
    /// `psql` comes from the build when it has one, else from Debian's
    /// client (it talks to every server version the matrix has).
    pub fn start_build(build: &ServerBuild, settings: &[(&str, &str)]) -> Postgres {
        let psql = Some(build.bin_dir.join("psql"))
            .filter(|p| p.is_file())
            .or_else(|| find_bin_dir().map(|b| b.join("psql")))
            .or_else(|| find_program("psql"))
            .unwrap_or_else(|| panic!("psql not found: apt-get install postgresql-client"));
        let dir = tempfile::Builder::new()
            .prefix("oxmon-pg")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("create temp dir in /tmp: {e}"));
        let stat_statements = pg_stat_statements_installed(&build.bin_dir);
        let mut pg = Postgres {
            port: 0,
            build: build.clone(),
            psql,
            dir,
            running: false,
            stat_statements,
        };
        pg.register_abort_cleanup();
        pg.init(settings)
            .unwrap_or_else(|e| panic!("PostgreSQL initdb: {e}"));
        let mut last_err = String::new();
        for _ in 0..4 {
            pg.port = free_port();
            match pg.try_start() {
                Ok(()) => return pg,
                Err(e) => {
                    let in_use = e.contains("in use") || e.contains("could not bind");
                    last_err = e;
                    if !in_use {
                        break;
                    }
                }
            }
        }
        panic!("PostgreSQL start: {last_err}");
    }

    /// Should the test process die without dropping us: stop the server
    /// and delete the directory.
    fn register_abort_cleanup(&self) {
        let cmd = self.server_command("pg_ctl");
        let mut line: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        line.extend([
            "-D".into(),
            self.data_dir().display().to_string(),
            "-m".into(),
            "immediate".into(),
            "stop".into(),
        ]);
        let quoted: Vec<String> = line
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        crate::reaper::run_on_abort(&quoted.join(" "));
        crate::reaper::remove_on_abort(self.dir.path());
    }

    fn init(&self, settings: &[(&str, &str)]) -> Result<(), String> {
        let dir = self.dir.path();
        std::fs::write(dir.join("pwfile"), format!("{POSTGRES_PASSWORD}\n"))
            .map_err(|e| format!("write pwfile: {e}"))?;
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
            run_command(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir),
            )?;
            // A build outside Debian's directories must be reachable by
            // that user, which cannot enter /root, for example.
            let initdb = self.build.bin_dir.join("initdb");
            run_command(
                Command::new("runuser")
                    .args(["-u", "postgres", "--", "test", "-x"])
                    .arg(&initdb),
            )
            .map_err(|_| {
                format!(
                    "the postgres user cannot run {}: every directory above it must be \
                     searchable by others (root's server cache is /var/cache/oxmon/servers)",
                    initdb.display()
                )
            })?;
        }
        run_command(
            self.server_command("initdb")
                .arg("-D")
                .arg(self.data_dir())
                .args([
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--username=postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", dir.join("pwfile").display())),
        )?;
        let mut conf = format!(
            "\n# oxmon-testkit\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nsynchronous_commit = off\ntrack_io_timing = on\n\
             shared_buffers = 32MB\n",
            dir.display()
        );
        if self.stat_statements {
            conf.push_str("shared_preload_libraries = 'pg_stat_statements'\n");
        }
        for (k, v) in settings {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| format!("append to postgresql.conf: {e}"))
    }

    fn try_start(&mut self) -> Result<(), String> {
        let log = self.log_path();
        let result = run_command(
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-o")
                .arg(format!("-p {}", self.port))
                .args(["-w", "-t", "60", "-l"])
                .arg(&log)
                .arg("start"),
        );
        match result {
            Ok(_) => {
                self.running = true;
                Ok(())
            }
            Err(e) => {
                // pg_ctl may have timed out with the server half up.
                let _ = self.pg_ctl_stop("immediate");
                Err(format!("{e}\n--- server log ---\n{}", log_tail(&log, 30)))
            }
        }
    }

    /// A command running a server-side program of this installation, as the
    /// `postgres` user when we are root, in the instance's directory. The
    /// build's library path is an argument of `env` rather than part of
    /// our environment, so the abort cleanup's shell line has it too.
    fn server_command(&self, program: &str) -> Command {
        let bin = self.build.bin_dir.join(program);
        let mut line: Vec<std::ffi::OsString> = Vec::new();
        if is_root() {
            line.extend(["runuser", "-u", "postgres", "--"].map(Into::into));
        }
        if let Some(lib) = &self.build.library_dir {
            line.push("env".into());
            let mut assignment = std::ffi::OsString::from("LD_LIBRARY_PATH=");
            assignment.push(lib);
            line.push(assignment);
        }
        line.push(bin.into());
        let mut cmd = Command::new(&line[0]);
        cmd.args(&line[1..]);
        cmd.current_dir(self.dir.path())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        cmd
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<String, String> {
        run_command(
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", mode, "-w", "-t", "30", "stop"]),
        )
    }

    /// `postgresql://postgres:PASSWORD@127.0.0.1:PORT/db?sslmode=disable`.
    pub fn dsn(&self, db: &str) -> String {
        self.dsn_for("postgres", POSTGRES_PASSWORD, db)
    }

    /// A URI DSN for another role (user and password are percent-encoded).
    pub fn dsn_for(&self, user: &str, password: &str, db: &str) -> String {
        use crate::http::url_encode;
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}?sslmode=disable",
            url_encode(user),
            url_encode(password),
            self.port,
            url_encode(db)
        )
    }

    /// Runs `sql` (one or more statements, each in its own transaction)
    /// as superuser in `db` and returns the output of `psql -A -t` (rows
    /// as lines, columns separated by `|`), trimmed. Panics on any error.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {db}: {e}"))
    }

    /// Like [`Postgres::psql`] but returns the error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        self.psql_as("postgres", POSTGRES_PASSWORD, db, sql)
    }

    /// Runs `sql` as another role over TCP with password auth.
    pub fn psql_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let mut child = self
            .psql_command_as(user, password, db)
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn psql: {e}"))?;
        let mut stdin = child.stdin.take().expect("psql stdin");
        let write = stdin.write_all(sql.as_bytes());
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|e| format!("wait for psql: {e}"))?;
        write.map_err(|e| format!("write SQL to psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "psql exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A `psql` command connected as superuser to `db` over TCP, for a
    /// session the test runs itself (add `-c SQL` or feed it stdin), for
    /// example one that holds a connection open.
    pub fn psql_command(&self, db: &str) -> Command {
        self.psql_command_as("postgres", POSTGRES_PASSWORD, db)
    }

    fn psql_command_as(&self, user: &str, password: &str, db: &str) -> Command {
        let mut cmd = Command::new(&self.psql);
        cmd.args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE");
        cmd
    }

    /// Stops the server (`pg_ctl stop -m fast`); the data stay.
    pub fn stop(&mut self) {
        if self.running {
            self.pg_ctl_stop("fast")
                .unwrap_or_else(|e| panic!("PostgreSQL stop: {e}"));
            self.running = false;
        }
    }

    /// Starts a stopped server again on the same port (stops it first if
    /// it is running).
    pub fn restart(&mut self) {
        self.stop();
        self.try_start()
            .unwrap_or_else(|e| panic!("PostgreSQL restart: {e}"));
    }

    /// Whether the server is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding the Unix socket (`.s.PGSQL.PORT`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory of `postgres`, `pg_ctl` (and, from Debian, `psql`).
    pub fn bin_dir(&self) -> &Path {
        &self.build.bin_dir
    }

    /// The server build it runs.
    pub fn build(&self) -> &ServerBuild {
        &self.build
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `server_version_num`, for example 150008.
    pub fn version_num(&self) -> u32 {
        let v = self.psql("postgres", "SHOW server_version_num");
        v.parse()
            .unwrap_or_else(|_| panic!("server_version_num {v:?} is not a number"))
    }

    /// The PID of the postmaster (the first line of `postmaster.pid`).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether `pg_stat_statements` is preloaded (installed on this host).
    pub fn has_pg_stat_statements(&self) -> bool {
        self.stat_statements
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            if std::thread::panicking() {
                eprintln!(
                    "--- PostgreSQL log tail (port {}) ---\n{}",
                    self.port,
                    log_tail(&self.log_path(), 20)
                );
            }
            let _ = self.pg_ctl_stop("immediate");
        }
    }
}

/// `/usr/lib/postgresql/<highest version>/bin`, if it has `initdb`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether the server installation next to `bin_dir` has the
/// `pg_stat_statements` extension: Debian's layout
/// (`/usr/share/postgresql/<v>/extension`, `/usr/lib/postgresql/<v>/lib`)
/// or a relocatable build's (`../share/postgresql/extension`,
/// `../lib/postgresql`).
fn pg_stat_statements_installed(bin_dir: &Path) -> bool {
    let Some(prefix) = bin_dir.parent() else {
        return false;
    };
    if prefix
        .join("share/postgresql/extension/pg_stat_statements.control")
        .is_file()
        && prefix
            .join("lib/postgresql/pg_stat_statements.so")
            .is_file()
    {
        return true;
    }
    let version = bin_dir
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|v| v.to_str())
        .unwrap_or("");
    Path::new("/usr/share/postgresql")
        .join(version)
        .join("extension/pg_stat_statements.control")
        .is_file()
        && bin_dir
            .parent()
            .is_some_and(|lib| lib.join("lib/pg_stat_statements.so").is_file())
}
