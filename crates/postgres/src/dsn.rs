//! Connection strings: the `postgresql://` URI and `key=value` forms that
//! libpq and postgres_exporter accept, the `DATA_SOURCE_*` environment
//! sources, and redaction so that a password never reaches a log line, a
//! metric or an error message.
//!
//! Parse errors never echo the input (it may hold a password); they say
//! which part was wrong.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A password or other secret: its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for handing to the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// libpq's `sslmode`, with the same default (`prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// Plain TCP only (libpq: try plain first; treated as disable).
    Allow,
    /// TLS when the server offers it, without certificate checks.
    #[default]
    Prefer,
    /// TLS required, without certificate checks (like libpq without a root cert).
    Require,
    /// TLS required; the certificate chain must lead to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self, DsnError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(DsnError::new(
                "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full",
            )),
        })
    }

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Why a connection string was rejected. Never contains the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DsnError(String);

impl DsnError {
    fn new(msg: impl Into<String>) -> Self {
        DsnError(msg.into())
    }
}

/// One parsed connection string.
#[derive(Debug, Clone, PartialEq)]
pub struct Dsn {
    /// Host name, IP address, or a Unix socket directory (starts with `/`).
    pub host: String,
    /// TCP port (also the socket file suffix for Unix sockets).
    pub port: u16,
    /// Login role; `None` means the driver default.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<Secret>,
    /// Database name; `None` means the user name, as in libpq.
    pub dbname: Option<String>,
    /// TLS mode.
    pub sslmode: SslMode,
    /// CA bundle for verify-ca/verify-full.
    pub sslrootcert: Option<PathBuf>,
    /// Client certificate (PEM).
    pub sslcert: Option<PathBuf>,
    /// Client key (PEM).
    pub sslkey: Option<PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Option<Duration>,
    /// `application_name` reported to the server.
    pub application_name: Option<String>,
    /// Backend options (`-c name=value ...`).
    pub options: Option<String>,
}

impl Default for Dsn {
    fn default() -> Self {
        Dsn {
            host: "localhost".into(),
            port: 5432,
            user: None,
            password: None,
            dbname: None,
            sslmode: SslMode::default(),
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            connect_timeout: None,
            application_name: None,
            options: None,
        }
    }
}

impl Dsn {
    /// Parses a `postgres://`/`postgresql://` URI or a libpq `key=value` string.
    pub fn parse(s: &str) -> Result<Dsn, DsnError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DsnError::new("empty connection string"));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            parse_uri(s)
        } else if s.contains('=') {
            parse_key_values(s)
        } else {
            Err(DsnError::new(
                "connection string is neither a postgresql:// URI nor key=value pairs",
            ))
        }
    }

    /// Whether `host` is a Unix socket directory.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// The database this DSN connects to (libpq default: the user name).
    pub fn database(&self) -> &str {
        self.dbname
            .as_deref()
            .or(self.user.as_deref())
            .unwrap_or("postgres")
    }

    /// The `server` label value, `host:port` like postgres_exporter's.
    pub fn server_label(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A form safe to log: `postgresql://user:***@host:port/db?sslmode=...`.
    pub fn redacted(&self) -> String {
        let mut out = String::from("postgresql://");
        if let Some(u) = &self.user {
            out.push_str(&percent_encode(u));
            if self.password.is_some() {
                out.push_str(":***");
            }
            out.push('@');
        }
        out.push_str(&self.server_label());
        out.push('/');
        out.push_str(&percent_encode(self.database()));
        out.push_str("?sslmode=");
        out.push_str(self.sslmode.as_str());
        out
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), DsnError> {
        match key {
            "host" | "hostaddr" => {
                if value.contains(',') {
                    return Err(DsnError::new("several hosts in one connection string are not supported; separate connection strings with commas instead"));
                }
                if !value.is_empty() {
                    self.host = value;
                }
            }
            "port" => {
                self.port = value
                    .parse()
                    .map_err(|_| DsnError::new("port must be a number from 1 to 65535"))?;
                if self.port == 0 {
                    return Err(DsnError::new("port must be a number from 1 to 65535"));
                }
            }
            "user" => self.user = Some(value),
            "password" => self.password = Some(Secret(value)),
            "dbname" => self.dbname = Some(value),
            "sslmode" => self.sslmode = SslMode::parse(&value)?,
            "sslrootcert" => self.sslrootcert = Some(value.into()),
            "sslcert" => self.sslcert = Some(value.into()),
            "sslkey" => self.sslkey = Some(value.into()),
            "connect_timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| DsnError::new("connect_timeout must be whole seconds"))?;
                self.connect_timeout = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "application_name" | "fallback_application_name" => self.application_name = Some(value),
            "options" => self.options = Some(value),
            // Accepted and ignored, as other drivers do.
            "sslcompression"
            | "sslsni"
            | "target_session_attrs"
            | "keepalives"
            | "keepalives_idle"
            | "keepalives_interval"
            | "keepalives_count"
            | "gssencmode"
            | "channel_binding"
            | "ssl_min_protocol_version"
            | "ssl_max_protocol_version"
            | "client_encoding"
            | "krbsrvname"
            | "requiressl"
            | "load_balance_hosts"
            | "tcp_user_timeout"
            | "sslpassword"
            | "sslcrl"
            | "sslcrldir"
            | "service"
            | "passfile"
            | "require_auth"
            | "sslnegotiation"
            | "sslcertmode" => {}
            _ => {
                return Err(DsnError::new(format!(
                    "unknown connection parameter {key:?}"
                )))
            }
        }
        Ok(())
    }
}

fn parse_uri(s: &str) -> Result<Dsn, DsnError> {
    let rest = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
        .unwrap_or(s);
    let (before_query, query) = match rest.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    let mut dsn = Dsn::default();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                dsn.user = Some(percent_decode(user, "user name")?);
            }
            if let Some(p) = pass {
                dsn.password = Some(Secret(percent_decode(p, "password")?));
            }
            hp
        }
        None => authority,
    };
    if hostport.contains(',') {
        return Err(DsnError::new("several hosts in one URI are not supported; separate connection strings with commas instead"));
    }
    if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| DsnError::new("unterminated [ in the URI host"))?;
        dsn.host = h.to_owned();
        if let Some(p) = after.strip_prefix(':') {
            dsn.set("port", p.to_owned())?;
        } else if !after.is_empty() {
            return Err(DsnError::new("unexpected text after the URI host"));
        }
    } else {
        let (h, p) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if !h.is_empty() {
            dsn.host = percent_decode(h, "host")?;
        }
        if let Some(p) = p {
            if !p.is_empty() {
                dsn.set("port", p.to_owned())?;
            }
        }
    }
    if let Some(p) = path {
        if !p.is_empty() {
            dsn.dbname = Some(percent_decode(p, "database name")?);
        }
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k, "query parameter name")?;
            let v = percent_decode(&v.replace('+', " "), "query parameter value")?;
            dsn.set(&k, v)?;
        }
    }
    Ok(dsn)
}

fn parse_key_values(s: &str) -> Result<Dsn, DsnError> {
    let mut dsn = Dsn::default();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DsnError::new(format!(
                "expected = after connection parameter {key:?}"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e) => value.push(e),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(DsnError::new(format!(
                    "unterminated quoted value for connection parameter {key:?}"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(e) = chars.next() {
                        value.push(e);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        dsn.set(&key, value)?;
    }
    Ok(dsn)
}

fn percent_decode(s: &str, what: &str) -> Result<String, DsnError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| DsnError::new(format!("bad percent-encoding in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DsnError::new(format!("the {what} is not valid UTF-8")))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where connection settings come from: postgres_exporter's environment
/// variables (or the flags that mirror them), already read.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `DATA_SOURCE_NAME`: one or more DSNs, comma separated.
    pub name: Option<Secret>,
    /// `DATA_SOURCE_URI`: `host:port/db?params`, comma separated, without credentials.
    pub uri: Option<String>,
    /// `DATA_SOURCE_USER`.
    pub user: Option<String>,
    /// `DATA_SOURCE_PASS`.
    pub pass: Option<Secret>,
}

impl Sources {
    /// The DSNs these sources describe: `DATA_SOURCE_NAME` wins; otherwise
    /// `DATA_SOURCE_URI` with `DATA_SOURCE_USER`/`DATA_SOURCE_PASS`. Empty
    /// when nothing is set (probe-only mode).
    pub fn dsns(&self) -> Result<Vec<Dsn>, DsnError> {
        if let Some(name) = self.name.as_ref().filter(|n| !n.0.trim().is_empty()) {
            return split_list(&name.0)
                .enumerate()
                .map(|(i, s)| {
                    Dsn::parse(s).map_err(|e| {
                        DsnError::new(format!("DATA_SOURCE_NAME entry {}: {e}", i + 1))
                    })
                })
                .collect();
        }
        let Some(uri) = self.uri.as_ref().filter(|u| !u.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        split_list(uri)
            .enumerate()
            .map(|(i, u)| {
                let with_scheme = if u.starts_with("postgres://") || u.starts_with("postgresql://")
                {
                    u.to_owned()
                } else {
                    format!("postgresql://{u}")
                };
                let mut d = Dsn::parse(&with_scheme)
                    .map_err(|e| DsnError::new(format!("DATA_SOURCE_URI entry {}: {e}", i + 1)))?;
                if let Some(user) = &self.user {
                    d.user = Some(user.clone());
                }
                if let Some(pass) = &self.pass {
                    d.password = Some(pass.clone());
                }
                Ok(d)
            })
            .collect()
    }
}

/// The `DATA_SOURCE_*` flags and environment variables (no `Debug`: they
/// hold secrets).
#[derive(clap::Args)]
pub struct SourceArgs {
    /// Connection string(s): postgresql:// URIs or key=value, comma separated.
    #[arg(
        long = "data-source-name",
        env = "DATA_SOURCE_NAME",
        hide_env_values = true
    )]
    data_source_name: Option<String>,
    /// File holding DATA_SOURCE_NAME.
    #[arg(
        long = "data-source-name-file",
        env = "DATA_SOURCE_NAME_FILE",
        hide_env_values = true
    )]
    data_source_name_file: Option<PathBuf>,
    /// host:port/db?params (comma separated), used with the user and password below.
    #[arg(
        long = "data-source-uri",
        env = "DATA_SOURCE_URI",
        hide_env_values = true
    )]
    data_source_uri: Option<String>,
    /// File holding DATA_SOURCE_URI.
    #[arg(
        long = "data-source-uri-file",
        env = "DATA_SOURCE_URI_FILE",
        hide_env_values = true
    )]
    data_source_uri_file: Option<PathBuf>,
    /// User for DATA_SOURCE_URI.
    #[arg(
        long = "data-source-user",
        env = "DATA_SOURCE_USER",
        hide_env_values = true
    )]
    data_source_user: Option<String>,
    /// File holding DATA_SOURCE_USER.
    #[arg(
        long = "data-source-user-file",
        env = "DATA_SOURCE_USER_FILE",
        hide_env_values = true
    )]
    data_source_user_file: Option<PathBuf>,
    /// Password for DATA_SOURCE_URI (prefer the file or the environment: flags show in ps).
    #[arg(
        long = "data-source-pass",
        env = "DATA_SOURCE_PASS",
        hide_env_values = true
    )]
    data_source_pass: Option<String>,
    /// File holding DATA_SOURCE_PASS.
    #[arg(
        long = "data-source-pass-file",
        env = "DATA_SOURCE_PASS_FILE",
        hide_env_values = true
    )]
    data_source_pass_file: Option<PathBuf>,
}

impl SourceArgs {
    /// The DSNs to monitor (see [`Sources::dsns`]); each `*_FILE` is read
    /// when its value is not given.
    pub fn dsns(self) -> Result<Vec<Dsn>, String> {
        let sources = Sources {
            name: pick(
                self.data_source_name,
                self.data_source_name_file,
                "DATA_SOURCE_NAME_FILE",
            )?
            .map(Secret::new),
            uri: pick(
                self.data_source_uri,
                self.data_source_uri_file,
                "DATA_SOURCE_URI_FILE",
            )?,
            user: pick(
                self.data_source_user,
                self.data_source_user_file,
                "DATA_SOURCE_USER_FILE",
            )?,
            pass: pick(
                self.data_source_pass,
                self.data_source_pass_file,
                "DATA_SOURCE_PASS_FILE",
            )?
            .map(Secret::new),
        };
        sources.dsns().map_err(|e| e.to_string())
    }
}

/// A value, else the content of its file.
fn pick(
    value: Option<String>,
    file: Option<PathBuf>,
    what: &str,
) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(v), _) if !v.is_empty() => Ok(Some(v)),
        (_, Some(f)) => read_secret_file(&f)
            .map(Some)
            .map_err(|e| format!("{what}: {e}")),
        _ => Ok(None),
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// Reads a secret file, trimming one trailing newline.
pub fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uri_with_everything() {
        let d = Dsn::parse(
            "postgresql://exp%40orter:p%3Ass%2Fw@db.example.com:6543/app%2Fdb?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(d.user.as_deref(), Some("exp@orter"));
        assert_eq!(d.password.as_ref().unwrap().expose(), "p:ss/w");
        assert_eq!(d.host, "db.example.com");
        assert_eq!(d.port, 6543);
        assert_eq!(d.database(), "app/db");
        assert_eq!(d.sslmode, SslMode::VerifyFull);
        assert_eq!(
            d.sslrootcert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert_eq!(d.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(d.server_label(), "db.example.com:6543");
    }

    #[test]
    fn parses_uri_defaults_ipv6_and_socket() {
        let d = Dsn::parse("postgres://");
        assert!(d.is_ok());
        let d = d.unwrap();
        assert_eq!(
            (d.host.as_str(), d.port, d.sslmode),
            ("localhost", 5432, SslMode::Prefer)
        );
        let d = Dsn::parse("postgresql://u@[::1]:5433/x").unwrap();
        assert_eq!(d.host, "::1");
        assert_eq!(d.server_label(), "[::1]:5433");
        let d = Dsn::parse("postgresql:///db?host=/var/run/postgresql&user=me").unwrap();
        assert!(d.is_unix_socket());
        assert_eq!(d.database(), "db");
        assert_eq!(d.server_label(), "/var/run/postgresql:5432");
    }

    #[test]
    fn parses_key_values_with_quotes() {
        let d = Dsn::parse(
            "host=10.1.2.3 port = 5433 user=postgres password='it''s \\'secret\\' here' dbname=postgres sslmode=disable",
        );
        // libpq does not treat '' as an escaped quote: that ends the value.
        assert!(d.is_err());
        let d = Dsn::parse(
            "host=10.1.2.3 port = 5433 user=postgres password='a \\'b\\' c' dbname=postgres sslmode=disable",
        )
        .unwrap();
        assert_eq!(d.password.as_ref().unwrap().expose(), "a 'b' c");
        assert_eq!(d.port, 5433);
        assert_eq!(d.sslmode, SslMode::Disable);
        assert_eq!(d.server_label(), "10.1.2.3:5433");
    }

    #[test]
    fn errors_never_echo_the_input() {
        for bad in [
            "postgresql://u:hunter2@h:99999/db",
            "user=u password=hunter2 sslmode=sometimes",
            "user=u password='hunter2",
            "user=u password=hunter2 bogus=1",
            "hunter2",
            "postgresql://u:hunter2%zz@h/db",
        ] {
            let e = Dsn::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn redaction_hides_password() {
        let d = Dsn::parse("postgresql://me:hunter2@h/db?sslmode=require").unwrap();
        let r = d.redacted();
        assert_eq!(r, "postgresql://me:***@h:5432/db?sslmode=require");
        assert!(!format!("{d:?}").contains("hunter2"));
    }

    #[test]
    fn sources_combine_uri_user_and_pass() {
        let s = Sources {
            name: None,
            uri: Some("h1:5432/a?sslmode=disable, h2/b".into()),
            user: Some("mon".into()),
            pass: Some(Secret::new("pw")),
        };
        let v = s.dsns().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].server_label(), "h1:5432");
        assert_eq!(v[1].database(), "b");
        assert_eq!(v[1].user.as_deref(), Some("mon"));
        assert_eq!(v[1].password.as_ref().unwrap().expose(), "pw");

        let s = Sources {
            name: Some(Secret::new("postgresql://a@x/db1,host=y user=b")),
            ..Sources::default()
        };
        let v = s.dsns().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].host, "y");
        assert!(Sources::default().dsns().unwrap().is_empty());

        let s = Sources {
            name: Some(Secret::new(
                "postgresql://a:pw@x/db1,host=y port=nope password=pw",
            )),
            ..Sources::default()
        };
        let e = s.dsns().unwrap_err().to_string();
        assert!(e.starts_with("DATA_SOURCE_NAME entry 2"), "{e}");
    }
}
