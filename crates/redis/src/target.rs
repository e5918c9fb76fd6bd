//! Redis target addresses: parsing, normalising, redacting, the password
//! file and the `/scrape` allow-list.
//!
//! A target is written like redis_exporter's: `redis://[user:pass@]host[:port][/db]`,
//! `rediss://...` (TLS), `unix:///path/to/redis.sock` (or
//! `redis+unix://`), or a bare `host:port` (taken as `redis://host:port`).
//! Its *key* is the normalised form without credentials
//! (`redis://host:6379`); the key is what logs, metrics and errors show and
//! what the password file and the allow-list are matched against.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use ipnet::IpNet;

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

/// A parsed target.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetSpec {
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

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.write_str(&self.key())
    }
}

/// A target that cannot be parsed. The message never contains the
/// credentials of the input.
#[derive(Debug, thiserror::Error)]
#[error("invalid Redis target {target}: {reason}")]
pub struct TargetError {
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

impl TargetSpec {
    /// Parses a target address.
    pub fn parse(input: &str) -> Result<TargetSpec, TargetError> {
        let err = |reason: &str| TargetError {
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
            return Ok(TargetSpec {
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
        Ok(TargetSpec {
            transport,
            host: host.to_ascii_lowercase(),
            port,
            db,
            user,
            password,
        })
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

/// Credentials for one target.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// ACL user.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: {} }}",
            self.user,
            if self.password.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

/// The password file: a JSON object mapping target URIs to passwords, as
/// redis_exporter's `--redis.password-file`. A URI key may carry a user
/// (`redis://alice@host:6379`), which is used with the password.
#[derive(Default)]
pub struct PasswordMap {
    entries: HashMap<String, Credentials>,
}

impl PasswordMap {
    /// Loads and validates the file. Errors name the file and, for JSON
    /// errors, the line; they never contain a password.
    pub fn load(path: &Path) -> Result<PasswordMap, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading password file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("password file {}: {e}", path.display()))
    }

    /// Parses the JSON text.
    pub fn parse(text: &str) -> Result<PasswordMap, String> {
        let raw: HashMap<String, String> = serde_json::from_str(text).map_err(|e| {
            format!(
                "line {} column {}: expected a JSON object of \"uri\": \"password\" strings",
                e.line(),
                e.column()
            )
        })?;
        let mut entries = HashMap::with_capacity(raw.len());
        for (uri, password) in raw {
            let spec = TargetSpec::parse(&uri).map_err(|e| e.to_string())?;
            entries.insert(
                spec.key(),
                Credentials {
                    user: spec.user.clone(),
                    password: Some(password),
                },
            );
        }
        Ok(PasswordMap { entries })
    }

    /// The credentials stored for this exact target (by its key).
    pub fn get(&self, spec: &TargetSpec) -> Option<&Credentials> {
        self.entries.get(&spec.key())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One allow-list entry.
#[derive(Debug, Clone)]
enum Allowed {
    /// An IP network; the target's resolved addresses must all be inside.
    Net(IpNet),
    /// A host glob (`*` and `?` never cross a `.`), optional port.
    Host(Glob, Option<u16>),
    /// A unix socket path glob.
    Unix(Glob),
}

/// How a target was allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by name: connect using the name.
    ByName,
    /// Allowed by address: connect to this resolved address (so a later DNS
    /// change cannot redirect the connection).
    ByAddress(SocketAddr),
    /// Refused, with a reason safe to show.
    Refused(String),
}

/// The `/scrape` target allow-list (`--scrape.allowed-targets`,
/// `--scrape.allowed-targets-file`).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<Allowed>,
}

/// A glob: `*` matches any run of characters and `?` one character,
/// neither crossing `sep` when one is given; case-insensitive.
#[derive(Debug, Clone)]
struct Glob {
    pattern: Vec<u8>,
    sep: Option<u8>,
}

impl Glob {
    fn new(pattern: &str, sep: Option<u8>) -> Glob {
        Glob {
            pattern: pattern.to_ascii_lowercase().into_bytes(),
            sep,
        }
    }

    fn is_match(&self, text: &str) -> bool {
        let text = text.to_ascii_lowercase();
        self.matches(&self.pattern, text.as_bytes())
    }

    fn matches(&self, p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => {
                // Try every split point, never swallowing a separator.
                let mut i = 0;
                loop {
                    if self.matches(rest, &t[i..]) {
                        return true;
                    }
                    if i == t.len() || Some(t[i]) == self.sep {
                        return false;
                    }
                    i += 1;
                }
            }
            Some((b'?', rest)) => match t.split_first() {
                Some((c, tail)) if Some(*c) != self.sep => self.matches(rest, tail),
                _ => false,
            },
            Some((c, rest)) => match t.split_first() {
                Some((d, tail)) if c == d => self.matches(rest, tail),
                _ => false,
            },
        }
    }
}

impl AllowList {
    /// Parses entries: CIDRs or IPs (`10.0.0.0/8`, `127.0.0.1`), host globs
    /// with an optional port (`*.cache.internal`, `redis-?.prod:6380`), and
    /// unix socket path globs (`unix:///run/redis/*.sock`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<AllowList, String> {
        let mut out = Vec::new();
        for raw in entries {
            let e = raw.trim();
            if e.is_empty() || e.starts_with('#') {
                continue;
            }
            if let Ok(net) = e.parse::<IpNet>() {
                out.push(Allowed::Net(net));
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                out.push(Allowed::Net(IpNet::from(ip)));
            } else if let Some(path) = e
                .strip_prefix("unix://")
                .or_else(|| e.strip_prefix("redis+unix://"))
            {
                out.push(Allowed::Unix(Glob::new(path, None)));
            } else {
                let e = e
                    .strip_prefix("redis://")
                    .or_else(|| e.strip_prefix("rediss://"))
                    .unwrap_or(e);
                let (host, port) = match e.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        Some(
                            p.parse::<u16>()
                                .map_err(|_| format!("invalid port in allowed target {e:?}"))?,
                        ),
                    ),
                    None => (e, None),
                };
                if host.is_empty()
                    || !host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._*?".contains(c))
                {
                    return Err(format!("invalid allowed target {e:?}"));
                }
                out.push(Allowed::Host(Glob::new(host, Some(b'.')), port));
            }
        }
        Ok(AllowList { entries: out })
    }

    /// Reads entries from a file, one per line (`#` comments); errors name
    /// the file and line.
    pub fn load(path: &Path) -> Result<AllowList, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading allowed targets file {}: {e}", path.display()))?;
        let mut all = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let one = AllowList::parse([line])
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
            all.extend(one.entries);
        }
        Ok(AllowList { entries: all })
    }

    /// Adds the entries of another list.
    pub fn extend(&mut self, other: AllowList) {
        self.entries.extend(other.entries);
    }

    /// True when no entry is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decides whether `spec` may be scraped. Names are resolved (bounded
    /// by `timeout`) only when no host glob matched; then every resolved
    /// address must lie in an allowed network.
    pub async fn check(&self, spec: &TargetSpec, timeout: std::time::Duration) -> Decision {
        if let Transport::Unix(path) = &spec.transport {
            return if self
                .entries
                .iter()
                .any(|e| matches!(e, Allowed::Unix(re) if re.is_match(path)))
            {
                Decision::ByName
            } else {
                Decision::Refused("target not in the allow-list".into())
            };
        }
        let by_name = self.entries.iter().any(|e| match e {
            Allowed::Host(re, port) => {
                re.is_match(&spec.host) && port.is_none_or(|p| p == spec.port)
            }
            _ => false,
        });
        if by_name {
            return Decision::ByName;
        }
        let nets: Vec<&IpNet> = self
            .entries
            .iter()
            .filter_map(|e| match e {
                Allowed::Net(n) => Some(n),
                _ => None,
            })
            .collect();
        if nets.is_empty() {
            return Decision::Refused("target not in the allow-list".into());
        }
        let addrs: Vec<SocketAddr> = if let Ok(ip) = spec.host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, spec.port)]
        } else {
            match tokio::time::timeout(
                timeout,
                tokio::net::lookup_host((spec.host.as_str(), spec.port)),
            )
            .await
            {
                Ok(Ok(it)) => it.collect(),
                Ok(Err(_)) | Err(_) => {
                    return Decision::Refused("target host does not resolve".into())
                }
            }
        };
        if addrs.is_empty() {
            return Decision::Refused("target host does not resolve".into());
        }
        let all_inside = addrs
            .iter()
            .all(|a| nets.iter().any(|n| n.contains(&a.ip())));
        if all_inside {
            Decision::ByAddress(addrs[0])
        } else {
            Decision::Refused("target not in the allow-list".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normalise() {
        let s = TargetSpec::parse("redis://alice:s%40cret@Cache.Local:6380/3").unwrap();
        assert_eq!(s.key(), "redis://cache.local:6380/3");
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.password.as_deref(), Some("s@cret"));
        assert_eq!(format!("{s:?}"), "redis://cache.local:6380/3");
        assert_eq!(
            TargetSpec::parse("localhost").unwrap().key(),
            "redis://localhost:6379"
        );
        assert_eq!(
            TargetSpec::parse("10.1.2.3:7000").unwrap().key(),
            "redis://10.1.2.3:7000"
        );
        assert_eq!(
            TargetSpec::parse("rediss://h").unwrap().transport,
            Transport::Tls
        );
        assert_eq!(
            TargetSpec::parse("redis://:pw@h")
                .unwrap()
                .password
                .as_deref(),
            Some("pw")
        );
        assert_eq!(
            TargetSpec::parse("redis://[::1]:6379").unwrap().key(),
            "redis://[::1]:6379"
        );
        let u = TargetSpec::parse("unix:///run/redis.sock").unwrap();
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
            assert!(TargetSpec::parse(bad).is_err(), "{bad}");
        }
        let e = TargetSpec::parse("redis://u:topsecret@h:notaport").unwrap_err();
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

    #[test]
    fn password_map() {
        let m = PasswordMap::parse(r#"{"redis://h1:6379": "one", "redis://bob@H2:7000": "two"}"#)
            .unwrap();
        let h1 = TargetSpec::parse("h1").unwrap();
        assert_eq!(m.get(&h1).unwrap().password.as_deref(), Some("one"));
        let h2 = TargetSpec::parse("redis://h2:7000").unwrap();
        assert_eq!(m.get(&h2).unwrap().user.as_deref(), Some("bob"));
        assert!(m.get(&TargetSpec::parse("h3").unwrap()).is_none());
        let err = PasswordMap::parse("{\n\"redis://h\": 1}").err().unwrap();
        assert!(err.contains("line 2"), "{err}");
    }

    #[tokio::test]
    async fn allow_list() {
        let t = std::time::Duration::from_secs(2);
        let a = AllowList::parse([
            "10.0.0.0/8",
            "*.cache.internal",
            "redis-?:6380",
            "127.0.0.1",
            "unix:///run/*.sock",
        ])
        .unwrap();
        let d = |s: &str| TargetSpec::parse(s).unwrap();
        assert_eq!(a.check(&d("a.cache.internal"), t).await, Decision::ByName);
        assert!(matches!(
            a.check(&d("a.b.cache.internal"), t).await,
            Decision::Refused(_)
        ));
        assert_eq!(a.check(&d("redis-1:6380"), t).await, Decision::ByName);
        assert!(matches!(
            a.check(&d("redis-1:6379"), t).await,
            Decision::Refused(_)
        ));
        assert_eq!(
            a.check(&d("10.2.3.4:7000"), t).await,
            Decision::ByAddress("10.2.3.4:7000".parse().unwrap())
        );
        assert!(matches!(
            a.check(&d("192.168.1.1"), t).await,
            Decision::Refused(_)
        ));
        assert!(matches!(
            a.check(&d("127.0.0.1"), t).await,
            Decision::ByAddress(_)
        ));
        assert_eq!(a.check(&d("unix:///run/r.sock"), t).await, Decision::ByName);
        assert!(matches!(
            a.check(&d("unix:///tmp/r.sock"), t).await,
            Decision::Refused(_)
        ));
        assert!(AllowList::parse(["bad host!"]).is_err());
        let g = Glob::new("*.Cache-?.internal", Some(b'.'));
        assert!(g.is_match("a.cache-1.internal"));
        assert!(!g.is_match("a.b.cache-1.internal"));
        assert!(!g.is_match(".cache-12.internal"));
        assert!(g.is_match(".cache-x.INTERNAL"));
        assert!(Glob::new("/run/*", None).is_match("/run/a/b.sock"));
        assert!(Glob::new("**", Some(b'.')).is_match(""));
        assert!(AllowList::parse(["h:notaport"]).is_err());
    }
}
