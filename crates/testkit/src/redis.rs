//! A throwaway Redis server and a tiny RESP client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::util::{free_port, log_stdio, log_tail, require_program, terminate, wait_until};
use crate::versions::ServerBuild;

/// A `redis-server` on a free 127.0.0.1 port with its own temp dir,
/// persistence off. Killed (SIGTERM) on drop.
#[derive(Debug)]
pub struct Redis {
    /// The TCP port.
    pub port: u16,
    /// The TLS port, when started with [`Redis::start_tls`].
    pub tls_port: Option<u16>,
    bin: PathBuf,
    library_dir: Option<PathBuf>,
    args: Vec<String>,
    dir: TempDir,
    child: Option<Child>,
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` and other simple strings.
    Status(String),
    /// `-ERR …`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// A bulk string (`None` for nil).
    Bulk(Option<Vec<u8>>),
    /// An array (`None` for a nil array).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as `redis-cli` prints it when not on a terminal: strings
    /// raw, integers in decimal, nil empty, array elements one per line.
    pub fn to_text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Bulk(None) | Reply::Array(None) => String::new(),
            Reply::Array(Some(items)) => items
                .iter()
                .map(Reply::to_text)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

impl Redis {
    /// Starts `redis-server --port P --bind 127.0.0.1 --dir TMP --save ""
    /// --appendonly no` plus `extra_args` (for example `["--requirepass",
    /// "pw"]`) and waits until it answers; panics with the log otherwise
    /// ("redis-server not found: apt-get install redis-server" if missing).
    pub fn start(extra_args: &[&str]) -> Redis {
        let bin = require_program("redis-server", "redis-server");
        Self::start_inner(bin, None, extra_args, None)
    }

    /// Like [`Redis::start`], with the `redis-server` of `build` (one
    /// version of the version matrix, see [`ServerBuild::redis`]).
    pub fn start_build(build: &ServerBuild, extra_args: &[&str]) -> Redis {
        Self::start_inner(
            build.bin_dir.join("redis-server"),
            build.library_dir.clone(),
            extra_args,
            None,
        )
    }

    /// Like [`Redis::start`], also listening with TLS on [`Redis::tls_port`]
    /// with the given PEM files (`ca_file` verifies client certificates;
    /// add `["--tls-auth-clients", "no"]` to make them optional).
    pub fn start_tls(
        cert_file: &Path,
        key_file: &Path,
        ca_file: &Path,
        extra_args: &[&str],
    ) -> Redis {
        let bin = require_program("redis-server", "redis-server");
        Self::start_inner(bin, None, extra_args, Some((cert_file, key_file, ca_file)))
    }

    fn start_inner(
        bin: PathBuf,
        library_dir: Option<PathBuf>,
        extra_args: &[&str],
        tls: Option<(&Path, &Path, &Path)>,
    ) -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("oxmon-redis")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        crate::reaper::remove_on_abort(dir.path());
        let mut redis = Redis {
            port: 0,
            tls_port: None,
            bin,
            library_dir,
            args: Vec::new(),
            dir,
            child: None,
        };
        let mut last_err = String::new();
        for _ in 0..4 {
            redis.port = free_port();
            let mut args: Vec<String> = vec![
                "--port".into(),
                redis.port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                redis.dir.path().display().to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--daemonize".into(),
                "no".into(),
            ];
            if let Some((cert, key, ca)) = tls {
                let tls_port = free_port();
                redis.tls_port = Some(tls_port);
                args.extend([
                    "--tls-port".into(),
                    tls_port.to_string(),
                    "--tls-cert-file".into(),
                    cert.display().to_string(),
                    "--tls-key-file".into(),
                    key.display().to_string(),
                    "--tls-ca-cert-file".into(),
                    ca.display().to_string(),
                ]);
            }
            args.extend(extra_args.iter().map(|s| s.to_string()));
            redis.args = args;
            match redis.spawn() {
                Ok(()) => return redis,
                Err(e) => {
                    let in_use = e.contains("in use");
                    last_err = e;
                    if !in_use {
                        break;
                    }
                }
            }
        }
        panic!("redis-server start: {last_err}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.log_path();
        let (out, err) = log_stdio(&log);
        let mut cmd = Command::new(&self.bin);
        if let Some(lib) = &self.library_dir {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        let child = cmd
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        crate::reaper::kill_on_abort(child.id());
        self.child = Some(child);
        let port = self.port;
        let mut exited = false;
        let child = self.child.as_mut().unwrap();
        let ready = wait_until(Duration::from_secs(20), || {
            if let Ok(Some(_)) = child.try_wait() {
                exited = true;
                return Some(false);
            }
            // Any answer to PING (PONG, or NOAUTH when a password is set)
            // means it is serving.
            ping(port).then_some(true)
        });
        if ready == Some(true) {
            return Ok(());
        }
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
        Err(format!(
            "redis-server {} on port {port}\n--- log ---\n{}",
            if exited { "exited" } else { "did not answer" },
            log_tail(&log, 30)
        ))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command without auth and returns the reply as text (see
    /// [`Reply::to_text`]); panics on an error reply or I/O failure.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cmd(None, args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
            .to_text()
    }

    /// Like [`Redis::cli`], authenticating first (`AUTH user pass`; an
    /// empty user means `AUTH pass`).
    pub fn cli_auth(&self, user: &str, pass: &str, args: &[&str]) -> String {
        self.try_cmd(Some((user, pass)), args)
            .unwrap_or_else(|e| panic!("redis {args:?} as {user:?}: {e}"))
            .to_text()
    }

    /// Runs one command on a fresh connection, optionally after `AUTH`;
    /// an error reply is `Err`.
    pub fn try_cmd(&self, auth: Option<(&str, &str)>, args: &[&str]) -> Result<Reply, String> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| format!("connect {}: {e}", self.addr()))?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut conn = BufReader::new(stream);
        if let Some((user, pass)) = auth {
            let auth_args: Vec<&str> = if user.is_empty() {
                vec!["AUTH", pass]
            } else {
                vec!["AUTH", user, pass]
            };
            if let Reply::Error(e) = round_trip(&mut conn, &auth_args)? {
                return Err(format!("AUTH: {e}"));
            }
        }
        match round_trip(&mut conn, args)? {
            Reply::Error(e) => Err(e),
            other => Ok(other),
        }
    }

    /// SIGTERM and wait (the port stays reserved for [`Redis::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10));
        }
    }

    /// Starts it again on the same port(s) (stopping it first if needed).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("redis-server restart: {e}"));
    }

    /// The server's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The temp dir (working dir of the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis_version` from `INFO server`, for example `7.0.15`.
    pub fn version(&self) -> String {
        let info = self.cli(&["INFO", "server"]);
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no redis_version in INFO server:\n{info}"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!(
                "--- redis-server log tail (port {}) ---\n{}",
                self.port,
                log_tail(&self.log_path(), 20)
            );
        }
        self.stop();
    }
}

fn ping(port: u16) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut conn = BufReader::new(stream);
    match round_trip(&mut conn, &["PING"]) {
        Ok(Reply::Status(_)) => true,
        // A LOADING error means not ready yet; NOAUTH means serving.
        Ok(Reply::Error(e)) => !e.starts_with("LOADING"),
        _ => false,
    }
}

/// Sends one command as a RESP array and reads one reply.
pub fn round_trip(conn: &mut BufReader<TcpStream>, args: &[&str]) -> Result<Reply, String> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    conn.get_mut()
        .write_all(&req)
        .map_err(|e| format!("send: {e}"))?;
    read_reply(conn)
}

/// Reads one RESP2 reply (RESP3 scalars are read too).
pub fn read_reply<R: BufRead>(r: &mut R) -> Result<Reply, String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)
        .map_err(|e| format!("read reply: {e}"))?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    let text = String::from_utf8_lossy(&line[1..]).into_owned();
    let len = || -> Result<i64, String> {
        text.parse()
            .map_err(|_| format!("bad length in reply {text:?}"))
    };
    match line[0] {
        b'+' => Ok(Reply::Status(text)),
        b'-' => Ok(Reply::Error(text)),
        b':' => Ok(Reply::Int(len()?)),
        b'$' => {
            let n = len()?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf)
                .map_err(|e| format!("read bulk: {e}"))?;
            buf.truncate(n as usize);
            Ok(Reply::Bulk(Some(buf)))
        }
        b'*' => {
            let n = len()?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let items = (0..n)
                .map(|_| read_reply(r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Reply::Array(Some(items)))
        }
        other => Err(format!("unexpected reply type {:?}", other as char)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_replies() {
        let mut r = &b"*3\r\n$3\r\nfoo\r\n$-1\r\n:7\r\n"[..];
        let reply = read_reply(&mut r).unwrap();
        assert_eq!(reply.to_text(), "foo\n\n7");
        let mut r = &b"-WRONGTYPE bad\r\n"[..];
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply::Error("WRONGTYPE bad".into())
        );
        let mut r = &b"$5\r\nab"[..];
        assert!(read_reply(&mut r).is_err());
        let mut r = &b"?\r\n"[..];
        assert!(read_reply(&mut r).is_err());
    }
}
