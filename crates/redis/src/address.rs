//! Redis target addresses: parsing, normalising and redacting.
//!
//! An address is written like redis_exporter's: `redis://[user:pass@]host[:port][/db]`,
//! `rediss://...` (TLS), `unix:///path/to/redis.sock` (or
//! `redis+unix://`), or a bare `host:port` (taken as `redis://host:port`).
//! Its *key* is the normalised form without credentials
//! (`redis://host:6379`); the key is what logs, metrics and errors show and
//! what the password file and the `/scrape` allow-list are matched against.

use oxmon_core::target_guard;

/// The transport of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TCP with TLS (`rediss://`).
    Tls,
    /// A unix socket path.
    Unix(String),
}

/// A parsed target address.
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    /// Transport.
    pub transport: Transport,
    /// Host name or IP (empty for unix sockets).
    pub host: String,
    /// TCP port (6379 when not given).
    pub port: u16,
    /// Database selected by the URI path (`/2`), 0 by default.
    pub db: i64,
    /// User name from the URI.
    pub user: Option<String>,
    /// Password from the URI.
    pub password: Option<String>,
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.write_str(&self.key())
    }
}

/// An address that cannot be parsed. The message never contains the
/// credentials of the input.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis target {target}: {reason}")]
pub struct AddressError {
    /// The input with credentials redacted.
    pub target: String,
    /// What is wrong.
    pub reason: String,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces the password (and user) of every `scheme://user:pass@` in `s`
/// with `<redacted>`; used on anything that could echo a URI.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("<redacted>@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl Address {
    /// Parses a target address.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let err = |reason: &str| AddressError {
            target: redact(input),
            reason: reason.to_string(),
        };
        let input = input.trim();
        if input.is_empty() {
            return Err(err("empty address"));
        }
        let full = if input.contains("://") {
            input.to_string()
        } else {
            format!("redis://{input}")
        };
        let (scheme, rest) = full.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "unix" || scheme == "redis+unix" {
            // unix:///path or unix://user:pass@/path (rare); db as ?db=N.
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => return Err(err("unix socket address needs a path")),
            };
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let (user, password) = split_userinfo(authority.rsplit_once('@').map(|(u, _)| u));
            let db = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("db="))
                .map(|d| d.parse::<i64>().map_err(|_| err("invalid db")))
                .transpose()?
                .unwrap_or(0);
            if path.is_empty() || path == "/" {
                return Err(err("unix socket address needs a path"));
            }
            return Ok(Address {
                transport: Transport::Unix(percent_decode(path)),
                host: String::new(),
                port: 0,
                db,
                user,
                password,
            });
        }
        let transport = match scheme.as_str() {
            "redis" | "valkey" => Transport::Tcp,
            "rediss" | "valkeys" => Transport::Tls,
            _ => return Err(err("scheme must be redis, rediss or unix")),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = split_userinfo(userinfo);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, tail) = v6
                .split_once(']')
                .ok_or_else(|| err("unclosed [ in host"))?;
            (h.to_string(), tail.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(err("missing host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        {
            return Err(err("invalid host"));
        }
        let port = if port.is_empty() {
            6379
        } else {
            port.parse::<u16>().map_err(|_| err("invalid port"))?
        };
        let path = path.split('?').next().unwrap_or("");
        let db = match path.trim_matches('/') {
            "" => 0,
            d => d
                .parse::<i64>()
                .map_err(|_| err("invalid database in path"))?,
        };
        Ok(Address {
            transport,
            host: host.to_ascii_lowercase(),
            port,
            db,
            user,
            password,
        })
    }

    /// The address as the multi-target guard checks it: host and port, or
    /// the socket path.
    pub fn guard_target(&self) -> target_guard::Target<'_> {
        match &self.transport {
            Transport::Unix(path) => target_guard::Target::socket(path),
            Transport::Tcp | Transport::Tls => target_guard::Target::tcp(&self.host, self.port),
        }
    }

    /// The normalised address without credentials, e.g.
    /// `redis://10.0.0.1:6379`, `rediss://cache:6380/2`, `unix:///run/redis.sock`.
    pub fn key(&self) -> String {
        let db = if self.db != 0 {
            format!("/{}", self.db)
        } else {
            String::new()
        };
        match &self.transport {
            Transport::Unix(p) => {
                if self.db != 0 {
                    format!("unix://{p}?db={}", self.db)
                } else {
                    format!("unix://{p}")
                }
            }
            t => {
                let scheme = if *t == Transport::Tls {
                    "rediss"
                } else {
                    "redis"
                };
                if self.host.contains(':') {
                    format!("{scheme}://[{}]:{}{db}", self.host, self.port)
                } else {
                    format!("{scheme}://{}:{}{db}", self.host, self.port)
                }
            }
        }
    }
}

fn split_userinfo(userinfo: Option<&str>) -> (Option<String>, Option<String>) {
    match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u, None),
            };
            let user = (!user.is_empty()).then(|| percent_decode(user));
            let pass = pass.filter(|p| !p.is_empty()).map(percent_decode);
            (user, pass)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalise() {
        let s = Address::parse("redis://alice:s%40cret@Cache.Local:6380/3").unwrap();
        assert_eq!(s.key(), "redis://cache.local:6380/3");
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.password.as_deref(), Some("s@cret"));
        assert_eq!(format!("{s:?}"), "redis://cache.local:6380/3");
        assert_eq!(
            Address::parse("localhost").unwrap().key(),
            "redis://localhost:6379"
        );
        assert_eq!(
            Address::parse("10.1.2.3:7000").unwrap().key(),
            "redis://10.1.2.3:7000"
        );
        assert_eq!(
            Address::parse("rediss://h").unwrap().transport,
            Transport::Tls
        );
        assert_eq!(
            Address::parse("redis://:pw@h").unwrap().password.as_deref(),
            Some("pw")
        );
        assert_eq!(
            Address::parse("redis://[::1]:6379").unwrap().key(),
            "redis://[::1]:6379"
        );
        let u = Address::parse("unix:///run/redis.sock").unwrap();
        assert_eq!(u.transport, Transport::Unix("/run/redis.sock".into()));
        assert_eq!(u.key(), "unix:///run/redis.sock");
        for bad in [
            "",
            "http://x",
            "redis://",
            "redis://h:99999",
            "redis://h/x",
            "unix://",
            "redis://a b",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
        let e = Address::parse("redis://u:topsecret@h:notaport").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("dial redis://u:p4ss@h:1/0 failed"),
            "dial redis://<redacted>@h:1/0 failed"
        );
        assert_eq!(redact("rediss://:x@h"), "rediss://<redacted>@h");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("no uri"), "no uri");
    }
}
