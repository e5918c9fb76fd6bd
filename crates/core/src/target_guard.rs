//! The guard in front of multi-target endpoints (`/probe?target=`,
//! `/scrape?target=`): which targets a request may make the exporter
//! connect to, and a bounded cache of what the exporter keeps per target.
//!
//! Without the guard anyone who reaches the exporter could make it connect
//! anywhere, with stored credentials. So:
//! - [`AllowList`]: nothing is allowed without entries, except what the
//!   exporter itself permits ([`AllowList::permit`], e.g. its own
//!   configured target). Entries are
//!   - CIDRs or IPs, optionally with a port (`10.0.0.0/8`, `127.0.0.1:6379`,
//!     `[::1]:5432`, `[fd00::/8]:5432`): every address the target's name
//!     resolves to must be inside one of them (IPv4-mapped IPv6 addresses
//!     count as IPv4), and the connection is then pinned to the checked
//!     address ([`Allowed::ByAddress`]) so a DNS answer that changes
//!     between check and connect cannot redirect it;
//!   - host globs with an optional port (`db-*.internal:5432`,
//!     `redis-?.prod`): matched against the name as given, without DNS;
//!   - unix socket path globs (`unix:///run/redis/*.sock`, or a bare
//!     absolute path).
//!
//!   A `scheme://` prefix on a network entry (`redis://cache:6379`) is
//!   ignored: the list says where, not how. Resolution is bounded by a
//!   timeout ([`Refused::ResolveTimeout`]).
//!
//!   **Glob rule**: matching is case-insensitive; `*` matches any run of
//!   characters and `?` exactly one character, but neither ever matches the
//!   separator: `.` in host names (so `*.cache.internal` matches
//!   `a.cache.internal` but not `a.b.cache.internal`) and `/` in socket
//!   paths (so `/run/*.sock` does not reach into subdirectories). Every
//!   other character matches itself.
//! - [`TargetCache`]: per-target state (a connection, a registry) kept
//!   across scrapes, at most `max` entries, least recently used evicted
//!   first, entries idle longer than `idle` dropped.
//!
//! ```
//! use std::time::Duration;
//! use oxmon_core::target_guard::{AllowList, Allowed, Refused, Target};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let list = AllowList::parse(["db-*.internal:5432", "10.0.0.0/8"]).unwrap();
//! let t = Duration::from_secs(1);
//! assert_eq!(list.check(&Target::tcp("DB-1.internal", 5432), t).await, Ok(Allowed::ByName));
//! assert_eq!(
//!     list.check(&Target::tcp("10.1.2.3", 5432), t).await,
//!     Ok(Allowed::ByAddress("10.1.2.3:5432".parse().unwrap()))
//! );
//! // Wrong port for the glob, and the name is not in 10.0.0.0/8.
//! assert!(list.check(&Target::tcp("db-1.internal", 6432), t).await.is_err());
//! assert_eq!(
//!     AllowList::default().check(&Target::tcp("db-1.internal", 5432), t).await,
//!     Err(Refused::NoAllowList)
//! );
//! # });
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ipnet::IpNet;
use tokio::time::Instant;

use crate::sync::LockExt;

/// A target a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// A host name or IP address (brackets around IPv6 are allowed) and port.
    Tcp {
        /// Name or address.
        host: &'a str,
        /// Port.
        port: u16,
    },
    /// A unix socket path.
    Socket(&'a str),
}

impl<'a> Target<'a> {
    /// A TCP target.
    pub fn tcp(host: &'a str, port: u16) -> Self {
        Target::Tcp { host, port }
    }

    /// A unix socket target.
    pub fn socket(path: &'a str) -> Self {
        Target::Socket(path)
    }
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') && !host.starts_with('[') => {
                write!(f, "[{host}]:{port}")
            }
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Socket(path) => write!(f, "unix://{path}"),
        }
    }
}

/// How a target was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// By its name (a host glob, a socket path, or a target the exporter
    /// permits itself): connect using the name.
    ByName,
    /// By its resolved address: connect to exactly this address.
    ByAddress(SocketAddr),
}

/// Why a target is refused. The message is safe to answer with (HTTP 403):
/// it names the target as the request gave it and nothing it resolved to.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No allow-list is configured.
    #[error("no targets are allowed: configure an allow-list of host patterns or CIDRs")]
    NoAllowList,
    /// No entry matches.
    #[error("target {target} is not in the allow-list")]
    NotAllowed {
        /// The target.
        target: String,
    },
    /// The name resolves to an address no CIDR entry covers.
    #[error("target {target} resolves to an address outside the allow-list")]
    OutsideAllowList {
        /// The target.
        target: String,
        /// The first address outside (for logs, not for the response).
        address: IpAddr,
    },
    /// Name resolution failed.
    #[error("resolving {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Name resolution took too long.
    #[error("resolving {host} took longer than {timeout:?}")]
    ResolveTimeout {
        /// The host name.
        host: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The name resolves to no address.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The host name.
        host: String,
    },
}

impl PartialEq for Refused {
    /// Equal variants with equal fields; resolution errors compare by kind.
    fn eq(&self, other: &Self) -> bool {
        use Refused::*;
        match (self, other) {
            (NoAllowList, NoAllowList) => true,
            (NotAllowed { target: a }, NotAllowed { target: b }) => a == b,
            (
                OutsideAllowList {
                    target: a,
                    address: x,
                },
                OutsideAllowList {
                    target: b,
                    address: y,
                },
            ) => a == b && x == y,
            (Resolve { host: a, source: x }, Resolve { host: b, source: y }) => {
                a == b && x.kind() == y.kind()
            }
            (
                ResolveTimeout {
                    host: a,
                    timeout: x,
                },
                ResolveTimeout {
                    host: b,
                    timeout: y,
                },
            ) => a == b && x == y,
            (NoAddress { host: a }, NoAddress { host: b }) => a == b,
            _ => false,
        }
    }
}

/// An allow-list entry or file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AllowListError {
    /// An entry does not parse.
    #[error("allow-list entry {entry:?}: {reason}")]
    Invalid {
        /// The entry as written.
        entry: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The allow-list file cannot be read.
    #[error("reading allow-list file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An entry in the allow-list file does not parse.
    #[error("{}:{line}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The entry's error.
        source: Box<AllowListError>,
    },
}

/// A case-insensitive glob whose `*` and `?` never match `sep`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    pattern: Vec<u8>,
    sep: u8,
}

impl Glob {
    fn new(pattern: &str, sep: u8) -> Glob {
        Glob {
            pattern: pattern.to_ascii_lowercase().into_bytes(),
            sep,
        }
    }

    /// Dynamic programming over (pattern, text) prefixes: time
    /// O(pattern × text) whatever the input, so a hostile target name cannot
    /// make matching slow.
    fn is_match(&self, text: &str) -> bool {
        let text = text.to_ascii_lowercase().into_bytes();
        // row[j]: the pattern prefix so far matches text[..j].
        let mut row = vec![false; text.len() + 1];
        row[0] = true;
        for &p in &self.pattern {
            let mut next = vec![false; text.len() + 1];
            match p {
                b'*' => {
                    next[0] = row[0];
                    for j in 1..=text.len() {
                        next[j] = row[j] || (next[j - 1] && text[j - 1] != self.sep);
                    }
                }
                b'?' => {
                    for j in 1..=text.len() {
                        next[j] = row[j - 1] && text[j - 1] != self.sep;
                    }
                }
                c => {
                    for j in 1..=text.len() {
                        next[j] = row[j - 1] && text[j - 1] == c;
                    }
                }
            }
            row = next;
        }
        row[text.len()]
    }
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Net { net: IpNet, port: Option<u16> },
    Host { glob: Glob, port: Option<u16> },
    Socket(Glob),
}

/// The targets a multi-target endpoint may reach (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<Entry>,
    /// Exact targets the exporter allows itself: `(lower-case host, port)`
    /// or a socket path with port 0.
    permitted: Vec<(String, u16)>,
}

fn invalid(entry: &str, reason: &'static str) -> AllowListError {
    AllowListError::Invalid {
        entry: entry.to_string(),
        reason,
    }
}

/// An IP or CIDR, bare or in brackets.
fn parse_net(s: &str) -> Option<IpNet> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_entry(raw: &str) -> Result<Entry, AllowListError> {
    let e = raw.trim();
    let rest = match e.split_once("://") {
        Some((scheme, path)) if scheme == "unix" || scheme.ends_with("+unix") => {
            return socket_entry(raw, path);
        }
        Some((_, rest)) => rest,
        None if e.starts_with('/') => return socket_entry(raw, e),
        None => e,
    };
    if rest.is_empty() {
        return Err(invalid(raw, "empty entry"));
    }
    if let Some(net) = parse_net(rest) {
        return Ok(Entry::Net { net, port: None });
    }
    // `[v6 or v6 CIDR]:port`, `v4 or v4 CIDR or host glob:port`, or a glob.
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| invalid(raw, "unclosed ["))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| invalid(raw, "expected :PORT after ]"))?;
        (host, Some(port))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => {
                return Err(invalid(
                    raw,
                    "write IPv6 addresses with a port as [ADDR]:PORT",
                ))
            }
            None => (rest, None),
        }
    };
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| invalid(raw, "invalid port")))
        .transpose()?;
    if let Some(net) = parse_net(host) {
        return Ok(Entry::Net { net, port });
    }
    let glob_chars = |c: char| c.is_ascii_alphanumeric() || "-._*?".contains(c);
    if host.is_empty() || !host.chars().all(glob_chars) {
        return Err(invalid(
            raw,
            "expected a CIDR (10.0.0.0/8), an IP, a host pattern (db-*.internal[:5432]) or a socket path (unix:///run/*.sock)",
        ));
    }
    Ok(Entry::Host {
        glob: Glob::new(host, b'.'),
        port,
    })
}

fn socket_entry(raw: &str, path: &str) -> Result<Entry, AllowListError> {
    if !path.starts_with('/') || path.len() < 2 {
        return Err(invalid(raw, "a socket path must be absolute"));
    }
    Ok(Entry::Socket(Glob::new(path, b'/')))
}

/// Host as compared: lower case, without IPv6 brackets.
fn normalize_host(host: &str) -> String {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_ascii_lowercase()
}

impl AllowList {
    /// Parses entries; blank entries and `#` comments are skipped.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<AllowList, AllowListError> {
        let mut list = AllowList::default();
        for raw in entries {
            let e = raw.trim();
            if !e.is_empty() && !e.starts_with('#') {
                list.entries.push(parse_entry(e)?);
            }
        }
        Ok(list)
    }

    /// Reads entries from a file, one per line (`#` comments); errors name
    /// the file and line.
    pub fn load(path: &Path) -> Result<AllowList, AllowListError> {
        let text = std::fs::read_to_string(path).map_err(|source| AllowListError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut list = AllowList::default();
        for (i, line) in text.lines().enumerate() {
            let one = AllowList::parse([line]).map_err(|e| AllowListError::InFile {
                path: path.to_owned(),
                line: i + 1,
                source: Box::new(e),
            })?;
            list.entries.extend(one.entries);
        }
        Ok(list)
    }

    /// Adds the entries (and permitted targets) of another list.
    pub fn extend(&mut self, other: AllowList) {
        self.entries.extend(other.entries);
        self.permitted.extend(other.permitted);
    }

    /// Always allows exactly this target (by name), with or without
    /// entries: the exporter's own configured target.
    pub fn permit(&mut self, target: &Target<'_>) {
        self.permitted.push(match target {
            Target::Tcp { host, port } => (normalize_host(host), *port),
            Target::Socket(path) => ((*path).to_string(), 0),
        });
    }

    /// True when no entry is configured (permitted targets aside).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decides whether `target` may be reached. A name is resolved (within
    /// `dns_timeout`) only when no host glob matched it and CIDR entries
    /// exist; then every address must be allowed.
    pub async fn check(
        &self,
        target: &Target<'_>,
        dns_timeout: Duration,
    ) -> Result<Allowed, Refused> {
        self.check_with(target, dns_timeout, |host, port| async move {
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(|addrs| addrs.map(|a| a.ip()).collect())
        })
        .await
    }

    /// [`check`](Self::check) with the name lookup supplied (for tests).
    async fn check_with<F, Fut>(
        &self,
        target: &Target<'_>,
        dns_timeout: Duration,
        lookup: F,
    ) -> Result<Allowed, Refused>
    where
        F: FnOnce(String, u16) -> Fut,
        Fut: Future<Output = std::io::Result<Vec<IpAddr>>>,
    {
        let (host, port) = match target {
            Target::Socket(path) => {
                return self.check_socket(path);
            }
            Target::Tcp { host, port } => (normalize_host(host), *port),
        };
        if self.permitted.iter().any(|(h, p)| *h == host && *p == port) {
            return Ok(Allowed::ByName);
        }
        if self.entries.is_empty() {
            return Err(Refused::NoAllowList);
        }
        let by_name = self.entries.iter().any(|e| match e {
            Entry::Host { glob, port: p } => glob.is_match(&host) && p.is_none_or(|p| p == port),
            _ => false,
        });
        if by_name {
            return Ok(Allowed::ByName);
        }
        let not_allowed = || Refused::NotAllowed {
            target: target.to_string(),
        };
        if !self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Net { port: p, .. } if p.is_none_or(|p| p == port)))
        {
            return Err(not_allowed());
        }
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::time::timeout(dns_timeout, lookup(host.clone(), port)).await {
                Ok(Ok(addrs)) => addrs,
                Ok(Err(source)) => return Err(Refused::Resolve { host, source }),
                Err(_) => {
                    return Err(Refused::ResolveTimeout {
                        host,
                        timeout: dns_timeout,
                    })
                }
            },
        };
        let Some(first) = addrs.first() else {
            return Err(Refused::NoAddress { host });
        };
        if let Some(outside) = addrs.iter().find(|ip| !self.net_allows(**ip, port)) {
            return Err(if addrs.len() == 1 && host.parse::<IpAddr>().is_ok() {
                not_allowed()
            } else {
                Refused::OutsideAllowList {
                    target: target.to_string(),
                    address: *outside,
                }
            });
        }
        Ok(Allowed::ByAddress(SocketAddr::new(
            first.to_canonical(),
            port,
        )))
    }

    fn net_allows(&self, ip: IpAddr, port: u16) -> bool {
        let ip = ip.to_canonical();
        self.entries.iter().any(|e| match e {
            Entry::Net { net, port: p } => net.contains(&ip) && p.is_none_or(|p| p == port),
            _ => false,
        })
    }

    fn check_socket(&self, path: &str) -> Result<Allowed, Refused> {
        if self
            .permitted
            .iter()
            .any(|(p, port)| *port == 0 && p == path)
        {
            return Ok(Allowed::ByName);
        }
        if self.entries.is_empty() {
            return Err(Refused::NoAllowList);
        }
        let ok = self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Socket(glob) if glob.is_match(path)));
        if ok {
            Ok(Allowed::ByName)
        } else {
            Err(Refused::NotAllowed {
                target: Target::Socket(path).to_string(),
            })
        }
    }
}

struct Slot<V> {
    value: V,
    used: Instant,
}

/// Per-target values kept across scrapes: at most `max` entries, the least
/// recently used evicted first, entries unused for `idle` dropped.
///
/// ```
/// use std::time::Duration;
/// use oxmon_core::target_guard::TargetCache;
///
/// let cache: TargetCache<u32> = TargetCache::new(2, Duration::from_secs(300));
/// cache.insert("a", 1);
/// cache.insert("b", 2);
/// assert_eq!(cache.get("a"), Some(1)); // "b" is now the least recently used
/// cache.insert("c", 3);
/// assert_eq!(cache.get("b"), None);
/// assert_eq!(cache.len(), 2);
/// ```
pub struct TargetCache<V> {
    slots: Mutex<HashMap<String, Slot<V>>>,
    max: usize,
    idle: Duration,
}

impl<V: Clone> TargetCache<V> {
    /// An empty cache of at most `max` entries (at least 1).
    pub fn new(max: usize, idle: Duration) -> Self {
        TargetCache {
            slots: Mutex::new(HashMap::new()),
            max: max.max(1),
            idle,
        }
    }

    /// The value for `key`, marking it used; `None` when absent or idle
    /// too long (then it is dropped).
    pub fn get(&self, key: &str) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    /// Stores `value` for `key` unless a live value is already there, and
    /// returns the stored one (so two requests that raced to create a
    /// target share the first one's). Evicts idle entries, then the least
    /// recently used one when full.
    pub fn insert(&self, key: impl Into<String>, value: V) -> V {
        self.insert_at(key.into(), value, Instant::now())
    }

    /// Drops the value for `key` (after a failure, so the next request
    /// checks and connects again).
    pub fn remove(&self, key: &str) -> Option<V> {
        let removed = self.slots.lock_unpoisoned().remove(key);
        removed.map(|s| s.value)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.slots.lock_unpoisoned().len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_at(&self, key: &str, now: Instant) -> Option<V> {
        let mut slots = self.slots.lock_unpoisoned();
        let slot = slots.get_mut(key)?;
        if now.saturating_duration_since(slot.used) > self.idle {
            let expired = slots.remove(key);
            drop(slots);
            drop(expired);
            return None;
        }
        slot.used = now;
        Some(slot.value.clone())
    }

    fn insert_at(&self, key: String, value: V, now: Instant) -> V {
        let mut dropped = Vec::new();
        let stored = {
            let mut slots = self.slots.lock_unpoisoned();
            let idle = self.idle;
            let expired: Vec<String> = slots
                .iter()
                .filter(|(_, s)| now.saturating_duration_since(s.used) > idle)
                .map(|(k, _)| k.clone())
                .collect();
            dropped.extend(expired.iter().filter_map(|k| slots.remove(k)));
            if let Some(slot) = slots.get_mut(&key) {
                slot.used = now;
                slot.value.clone()
            } else {
                if slots.len() >= self.max {
                    let oldest = slots
                        .iter()
                        .min_by_key(|(_, s)| s.used)
                        .map(|(k, _)| k.clone());
                    dropped.extend(oldest.and_then(|k| slots.remove(&k)));
                }
                slots.insert(
                    key,
                    Slot {
                        value: value.clone(),
                        used: now,
                    },
                );
                value
            }
        };
        // Evicted values (connections) close outside the lock.
        drop(dropped);
        stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(entries.iter().copied()).unwrap()
    }

    fn addr(s: &str) -> Allowed {
        Allowed::ByAddress(s.parse().unwrap())
    }

    /// Checks with a fixed DNS answer.
    async fn check_resolving(
        l: &AllowList,
        host: &str,
        port: u16,
        answer: &[&str],
    ) -> Result<Allowed, Refused> {
        let ips: Vec<IpAddr> = answer.iter().map(|a| a.parse().unwrap()).collect();
        l.check_with(&Target::tcp(host, port), T, |_, _| async move { Ok(ips) })
            .await
    }

    #[test]
    fn globs_stay_within_one_label_or_path_component() {
        let g = Glob::new("*.Cache-?.internal", b'.');
        assert!(g.is_match("a.cache-1.internal"));
        assert!(g.is_match(".cache-x.INTERNAL"));
        assert!(!g.is_match("a.b.cache-1.internal"));
        assert!(!g.is_match("a.cache-12.internal"));
        assert!(Glob::new("db-*", b'.').is_match("db-"));
        assert!(!Glob::new("db-*", b'.').is_match("db-1.evil.com"));
        assert!(Glob::new("a*b*c", b'.').is_match("axxbyyc"));
        assert!(!Glob::new("a*b*c", b'.').is_match("axxbyyc.d"));
        assert!(Glob::new("**", b'.').is_match(""));
        assert!(!Glob::new("?", b'.').is_match("."));
        assert!(Glob::new("/run/*.sock", b'/').is_match("/run/r.sock"));
        assert!(!Glob::new("/run/*.sock", b'/').is_match("/run/a/r.sock"));
        // A pathological pattern against a long name answers quickly.
        let long = "a".repeat(250);
        assert!(!Glob::new(&"*a".repeat(40), b'.').is_match(&format!("{long}b")));
    }

    #[test]
    fn entries_parse_or_name_the_problem() {
        let l = list(&[
            "10.0.0.0/8",
            "127.0.0.1:6379",
            "::1",
            "[::1]:5432",
            "[fd00::/8]:5432",
            "db-*.internal:5432",
            "redis://cache.internal",
            "unix:///run/redis/*.sock",
            "/tmp/pg/.s.PGSQL.*",
            "# a comment",
            "",
        ]);
        assert_eq!(l.entries.len(), 9);
        assert_eq!(
            l.entries[4],
            Entry::Net {
                net: "fd00::/8".parse().unwrap(),
                port: Some(5432)
            }
        );
        for bad in [
            "bad host!",
            "h:notaport",
            "h:99999",
            "fe80::g:5432",
            "[::1",
            "unix://relative.sock",
        ] {
            let e = AllowList::parse([bad]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn load_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("allowed");
        std::fs::write(&p, "# targets\n10.0.0.0/8\n\nbad host!\n").unwrap();
        let e = AllowList::load(&p).unwrap_err().to_string();
        assert!(e.contains("allowed:4:") && e.contains("bad host!"), "{e}");
        std::fs::write(&p, "10.0.0.0/8\n*.internal\n").unwrap();
        assert_eq!(AllowList::load(&p).unwrap().entries.len(), 2);
        assert!(matches!(
            AllowList::load(&dir.path().join("missing")),
            Err(AllowListError::Read { .. })
        ));
    }

    #[tokio::test]
    async fn host_globs_and_ports() {
        let l = list(&["db-*.internal:5432", "redis-?"]);
        assert_eq!(
            l.check(&Target::tcp("DB-7.internal", 5432), T).await,
            Ok(Allowed::ByName)
        );
        assert_eq!(
            l.check(&Target::tcp("db-7.internal", 5433), T).await,
            Err(Refused::NotAllowed {
                target: "db-7.internal:5433".into()
            })
        );
        assert_eq!(
            l.check(&Target::tcp("redis-1", 1), T).await,
            Ok(Allowed::ByName)
        );
        assert!(l.check(&Target::tcp("redis-12", 1), T).await.is_err());
        assert!(l.check(&Target::tcp("db.internal", 5432), T).await.is_err());
    }

    #[tokio::test]
    async fn addresses_must_all_be_inside_and_are_pinned() {
        let l = list(&["10.0.0.0/8", "[fd00::/8]:5432", "127.0.0.1:6379"]);
        assert_eq!(
            l.check(&Target::tcp("10.2.3.4", 7000), T).await,
            Ok(addr("10.2.3.4:7000"))
        );
        assert_eq!(
            l.check(&Target::tcp("[fd00::1]", 5432), T).await,
            Ok(addr("[fd00::1]:5432"))
        );
        assert!(l.check(&Target::tcp("fd00::1", 5433), T).await.is_err());
        assert_eq!(
            l.check(&Target::tcp("127.0.0.1", 6379), T).await,
            Ok(addr("127.0.0.1:6379"))
        );
        assert_eq!(
            l.check(&Target::tcp("127.0.0.1", 6380), T).await,
            Err(Refused::NotAllowed {
                target: "127.0.0.1:6380".into()
            })
        );
        // A name is checked on what it resolves to, and pinned to it.
        assert_eq!(
            check_resolving(&l, "db.internal", 5432, &["10.9.9.9", "fd00::2"]).await,
            Ok(addr("10.9.9.9:5432"))
        );
        // One forbidden address among allowed ones refuses the name (DNS
        // rebinding to an internal address).
        assert_eq!(
            check_resolving(&l, "evil.example", 5432, &["10.1.1.1", "169.254.169.254"]).await,
            Err(Refused::OutsideAllowList {
                target: "evil.example:5432".into(),
                address: "169.254.169.254".parse().unwrap()
            })
        );
        // IPv4-mapped IPv6 counts as the IPv4 address it carries.
        assert_eq!(
            check_resolving(&l, "mapped", 1, &["::ffff:10.0.0.1"]).await,
            Ok(addr("10.0.0.1:1"))
        );
        assert!(check_resolving(&l, "mapped", 1, &["::ffff:192.168.0.1"])
            .await
            .is_err());
        assert_eq!(
            check_resolving(&l, "empty", 1, &[]).await,
            Err(Refused::NoAddress {
                host: "empty".into()
            })
        );
    }

    #[tokio::test]
    async fn real_dns_names_resolving_to_a_forbidden_address_are_refused() {
        let l = list(&["10.0.0.0/8"]);
        let r = l.check(&Target::tcp("localhost", 5432), T).await;
        assert!(
            matches!(r, Err(Refused::OutsideAllowList { ref address, .. }) if address.is_loopback()),
            "{r:?}"
        );
        let l = list(&["127.0.0.0/8", "::1"]);
        match l.check(&Target::tcp("localhost", 5432), T).await {
            Ok(Allowed::ByAddress(a)) => assert!(a.ip().is_loopback() && a.port() == 5432),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn resolution_is_bounded_in_time() {
        let l = list(&["10.0.0.0/8"]);
        let t0 = std::time::Instant::now();
        let r = l
            .check_with(
                &Target::tcp("slow.example", 1),
                Duration::from_millis(50),
                |_, _| std::future::pending::<std::io::Result<Vec<IpAddr>>>(),
            )
            .await;
        assert_eq!(
            r,
            Err(Refused::ResolveTimeout {
                host: "slow.example".into(),
                timeout: Duration::from_millis(50)
            })
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        let r = l
            .check_with(&Target::tcp("nx.example", 1), T, |_, _| async {
                Err(std::io::Error::other("no such host"))
            })
            .await;
        assert!(matches!(r, Err(Refused::Resolve { .. })), "{r:?}");
    }

    #[tokio::test]
    async fn nothing_is_allowed_without_entries_except_what_is_permitted() {
        let mut l = AllowList::default();
        assert_eq!(
            l.check(&Target::tcp("127.0.0.1", 6379), T).await,
            Err(Refused::NoAllowList)
        );
        l.permit(&Target::tcp("Cache", 6379));
        l.permit(&Target::socket("/run/redis.sock"));
        assert_eq!(
            l.check(&Target::tcp("cache", 6379), T).await,
            Ok(Allowed::ByName)
        );
        assert_eq!(
            l.check(&Target::tcp("cache", 6380), T).await,
            Err(Refused::NoAllowList)
        );
        assert_eq!(
            l.check(&Target::socket("/run/redis.sock"), T).await,
            Ok(Allowed::ByName)
        );
        assert!(l.is_empty());
    }

    #[tokio::test]
    async fn socket_paths() {
        let l = list(&["unix:///run/redis/*.sock"]);
        assert_eq!(
            l.check(&Target::socket("/run/redis/a.sock"), T).await,
            Ok(Allowed::ByName)
        );
        assert_eq!(
            l.check(&Target::socket("/run/redis/x/a.sock"), T).await,
            Err(Refused::NotAllowed {
                target: "unix:///run/redis/x/a.sock".into()
            })
        );
        assert!(l.check(&Target::tcp("a.sock", 1), T).await.is_err());
    }

    #[test]
    fn cache_evicts_least_recently_used_and_idle_entries() {
        let cache: TargetCache<String> = TargetCache::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(cache.insert_at("a".into(), "A".into(), at(0)), "A");
        cache.insert_at("b".into(), "B".into(), at(1));
        // An existing live entry wins over a racing insert.
        assert_eq!(cache.insert_at("a".into(), "A2".into(), at(2)), "A");
        assert_eq!(cache.get_at("b", at(3)).as_deref(), Some("B"));
        // "a" (used at 2) is older than "b" (used at 3): evicted.
        cache.insert_at("c".into(), "C".into(), at(4));
        assert_eq!(cache.get_at("a", at(5)), None);
        assert_eq!(cache.len(), 2);
        // Idle past 60 s: gone on access, and swept on insert.
        assert_eq!(cache.get_at("b", at(64)), None);
        cache.insert_at("d".into(), "D".into(), at(70));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.remove("d").as_deref(), Some("D"));
        assert!(cache.is_empty());
    }
}
