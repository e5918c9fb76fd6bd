//! Running an exporter binary under test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use crate::http::{http_get, http_try_get, HttpResponse};
use crate::util::{free_port, log_stdio, log_tail, send_signal, tail, terminate, wait_until};
use oxmon_core::expo::{parse, Exposition};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`ExporterProcess::start_with`] decides the exporter is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `GET /-/ready` over plain HTTP answers (any status below 500).
    HttpReady,
    /// The port accepts TCP connections (use with TLS or auth).
    TcpConnect,
    /// Do not wait.
    None,
}

/// Options of [`ExporterProcess::start_with`].
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The port; `None` picks a free one (and retries with another if the
    /// exporter reports the address in use).
    pub port: Option<u16>,
    /// Append `--web.listen-address=127.0.0.1:PORT` to the arguments.
    pub add_listen_address: bool,
    /// How to wait for the exporter.
    pub readiness: Readiness,
    /// How long to wait.
    pub timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            port: None,
            add_listen_address: true,
            readiness: Readiness::HttpReady,
            timeout: READY_TIMEOUT,
        }
    }
}

/// An exporter process listening on 127.0.0.1; SIGTERMed (then killed) on
/// drop. Its stdout and stderr go to a log file, printed (tail) when a test
/// panics while the process is alive.
#[derive(Debug)]
pub struct ExporterProcess {
    /// The port it listens on.
    pub port: u16,
    child: Child,
    log_path: PathBuf,
    bin: PathBuf,
    dir: TempDir,
    status: Option<ExitStatus>,
}

impl ExporterProcess {
    /// Starts `bin args… --web.listen-address=127.0.0.1:PORT` with the extra
    /// environment `env` on a free port and waits up to 30 s until
    /// `/-/ready` answers; panics with the log tail if it does not.
    pub fn start(bin: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> ExporterProcess {
        Self::start_with(bin, args, env, StartOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`ExporterProcess::start`] with options; `Err` carries the
    /// reason and the log tail (for example when the exporter exits at once
    /// because its config is broken).
    pub fn start_with(
        bin: impl AsRef<Path>,
        args: &[&str],
        env: &[(&str, &str)],
        opts: StartOptions,
    ) -> Result<ExporterProcess, String> {
        let bin = bin.as_ref().to_path_buf();
        if !bin.is_file() {
            return Err(format!("exporter binary {} does not exist", bin.display()));
        }
        let attempts = if opts.port.is_some() { 1 } else { 4 };
        let mut last_err = String::new();
        for _ in 0..attempts {
            let port = opts.port.unwrap_or_else(free_port);
            let dir = tempfile::Builder::new()
                .prefix("oxmon-exporter")
                .tempdir()
                .map_err(|e| format!("temp dir: {e}"))?;
            let log_path = dir.path().join("exporter.log");
            let (out, err) = log_stdio(&log_path);
            let mut cmd = Command::new(&bin);
            cmd.args(args);
            if opts.add_listen_address {
                cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
            }
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
            crate::reaper::kill_on_abort(child.id());
            crate::reaper::remove_on_abort(dir.path());
            let mut proc = ExporterProcess {
                port,
                child,
                log_path,
                bin: bin.clone(),
                dir,
                status: None,
            };
            match proc.wait_ready(opts.readiness, opts.timeout) {
                Ok(()) => return Ok(proc),
                Err(e) => {
                    let log = proc.log();
                    proc.stop();
                    let in_use = log.to_ascii_lowercase().contains("address already in use");
                    last_err = format!(
                        "{} did not become ready on port {port}: {e}\n--- log tail ---\n{}",
                        bin.display(),
                        tail(&log, 40)
                    );
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }

    fn wait_ready(&mut self, readiness: Readiness, timeout: Duration) -> Result<(), String> {
        let url = self.url("/-/ready");
        let port = self.port;
        let mut exited = None;
        let ready = wait_until(timeout, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
                return Some(false);
            }
            let up = match readiness {
                Readiness::HttpReady => http_try_get(&url, &[]).is_ok_and(|r| r.status < 500),
                Readiness::TcpConnect => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
                Readiness::None => true,
            };
            up.then_some(true)
        });
        match (ready, exited) {
            (Some(true), _) => Ok(()),
            (_, Some(status)) => {
                self.status = Some(status);
                Err(format!("it exited with {status}"))
            }
            _ => Err(format!("not ready after {timeout:?}")),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// GET `path` (panics when there is no response at all).
    pub fn get(&self, path: &str) -> HttpResponse {
        http_get(&self.url(path), &[])
    }

    /// GET `path` with headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_get(&self.url(path), headers)
    }

    /// GET `/metrics` in the 0.0.4 format, assert 200, and parse it.
    pub fn scrape(&self) -> Exposition {
        self.scrape_path("/metrics")
    }

    /// GET `path` (a metrics path with its query), assert 200, parse.
    pub fn scrape_path(&self, path: &str) -> Exposition {
        let resp = self.get_with(path, &[("Accept", "text/plain;version=0.0.4")]);
        assert_eq!(
            resp.status,
            200,
            "GET {path}: status {}: {}\n--- exporter log tail ---\n{}",
            resp.status,
            resp.body,
            log_tail(&self.log_path, 30)
        );
        parse(&resp.body)
    }

    /// Everything the exporter wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log file's path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A private temp dir that lives as long as the process (for config
    /// files of the test).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (for example `Signal::HUP`).
    pub fn signal(&self, signal: rustix::process::Signal) {
        send_signal(self.pid(), signal);
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = wait_until(timeout, || self.child.try_wait().ok().flatten());
        }
        self.status
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status when
    /// it exited on SIGTERM (a graceful exit gives success).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = terminate(&mut self.child, Duration::from_secs(10));
        }
        self.status
    }

    /// The binary it runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let was_running = self.is_running();
        self.stop();
        if std::thread::panicking() && was_running {
            eprintln!(
                "--- {} log tail (port {}) ---\n{}",
                self.bin.display(),
                self.port,
                log_tail(&self.log_path, 40)
            );
        }
    }
}
