//! The `/scrape` target allow-list (`--scrape.allowed-targets`,
//! `--scrape.allowed-targets-file`): CIDRs or IPs checked against every
//! resolved address, host globs with an optional port, unix socket path
//! globs.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use ipnet::IpNet;

use crate::address::{Address, Transport};

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

    /// Decides whether `addr` may be scraped. Names are resolved (bounded
    /// by `timeout`) only when no host glob matched; then every resolved
    /// address must lie in an allowed network.
    pub async fn check(&self, addr: &Address, timeout: std::time::Duration) -> Decision {
        if let Transport::Unix(path) = &addr.transport {
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
                re.is_match(&addr.host) && port.is_none_or(|p| p == addr.port)
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
        let addrs: Vec<SocketAddr> = if let Ok(ip) = addr.host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, addr.port)]
        } else {
            match tokio::time::timeout(
                timeout,
                tokio::net::lookup_host((addr.host.as_str(), addr.port)),
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
        let d = |s: &str| Address::parse(s).unwrap();
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
