//! udp_queues: bytes waiting in UDP socket queues.
//!
//! Source: node_exporter reads `<procfs>/net/udp` and `<procfs>/net/udp6`
//! (the `tx_queue:rx_queue` column, hexadecimal). Metric: gauge
//! `node_udp_queues{ip="v4"|"v6",queue="tx"|"rx"}`, summed over sockets.
//! On by default; no flags. A missing file (no IPv6) reports nothing for
//! that family. A file without its header line, or a socket line whose
//! queue column is not `hex:hex`, fails the collector; the sums are then
//! not exported for that file (they would be too low).
//!
//! With the default `--path.procfs` the same two numbers per socket come
//! from a sock_diag dump (`udp_diag`: `idiag_wqueue`, `idiag_rqueue`, what
//! the files print). Each read of the files walks the kernel's whole UDP
//! hash table (16,384 slots here), and the end-of-file read walks it again:
//! four walks per scrape, about 0.17 ms of system time, against two for the
//! dumps. Without `udp_diag` (a kernel built without it) the files are read,
//! and the dump is tried again a minute later. A family whose `inuse`
//! count in `net/sockstat` (`net/sockstat6`) is 0 has no socket in the
//! table to walk: its sums are 0 without a dump.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, FileCache, SharedRead};
use crate::malformed::Malformed;
use crate::netlink::{self, inet_diag_request, parse_inet_diag, Absence, Netlink};
use crate::paths::Paths;

/// Sums the `tx_queue:rx_queue` column of a `net/udp` table, and what did
/// not parse (a missing header line, a malformed socket line).
pub fn parse_udp_queues(text: &str) -> ((u64, u64), Malformed) {
    let (mut tx, mut rx) = (0u64, 0u64);
    let mut bad = Malformed::default();
    let mut lines = text.lines();
    if !lines.next().is_some_and(|h| h.contains("tx_queue")) {
        bad.note("no header line with tx_queue");
    }
    for (i, line) in lines.enumerate() {
        let queues = line
            .split_ascii_whitespace()
            .nth(4)
            .and_then(|q| q.split_once(':'))
            .and_then(|(t, r)| {
                Some((
                    u64::from_str_radix(t, 16).ok()?,
                    u64::from_str_radix(r, 16).ok()?,
                ))
            });
        match queues {
            Some((t, r)) => {
                tx = tx.saturating_add(t);
                rx = rx.saturating_add(r);
            }
            None => bad.line(i + 2, line, "no tx_queue:rx_queue column"),
        }
    }
    ((tx, rx), bad)
}

/// The `inuse` count of the `prefix` line (`UDP:`, `UDP6:`) of
/// `net/sockstat` or `net/sockstat6`: the sockets in the UDP table.
pub fn udp_in_use(text: &str, prefix: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix(prefix))?;
    let mut words = line.split_ascii_whitespace();
    while let Some(word) = words.next() {
        if word == "inuse" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// The udp_queues collector.
pub struct UdpQueues {
    v4: PathBuf,
    v6: PathBuf,
    sockstat: PathBuf,
    sockstat6: PathBuf,
    /// The sockstat files, read once a scrape with the sockstat collector.
    shared: [Arc<SharedRead>; 2],
    cache: FileCache,
    /// The sock_diag socket, with the live procfs only.
    diag: Option<Netlink>,
    /// sock_diag refused UDP a moment ago (no `udp_diag`).
    no_diag: Absence,
}

fn family() -> MetricFamily {
    MetricFamily::gauge(
        "node_udp_queues",
        "Number of allocated memory in the kernel for UDP datagrams in bytes.",
    )
}

impl UdpQueues {
    /// Reads under the given procfs; dumps sockets when it is the host's.
    pub fn new(paths: &Paths) -> Self {
        let live = paths.procfs == std::path::Path::new("/proc");
        UdpQueues {
            v4: paths.proc("net/udp"),
            v6: paths.proc("net/udp6"),
            sockstat: paths.proc("net/sockstat"),
            sockstat6: paths.proc("net/sockstat6"),
            shared: [
                SharedRead::of(&paths.proc("net/sockstat")),
                SharedRead::of(&paths.proc("net/sockstat6")),
            ],
            cache: FileCache::remembering_missing(),
            diag: live.then(|| Netlink::new(netlink::SOCK_DIAG)),
            no_diag: Absence::default(),
        }
    }

    /// `(tx, rx)` summed over the UDP sockets of `family` (AF_INET,
    /// AF_INET6), from one sock_diag dump.
    async fn dump(
        &self,
        nl: &Netlink,
        ctx: &ScrapeContext,
        family: u8,
    ) -> std::io::Result<(u64, u64)> {
        const IPPROTO_UDP: u8 = 17;
        let (mut tx, mut rx) = (0u64, 0u64);
        nl.dump(
            ctx.deadline,
            netlink::SOCK_DIAG_BY_FAMILY,
            &inet_diag_request(family, IPPROTO_UDP),
            |ty, p| {
                if let Some(s) = parse_inet_diag(p).filter(|_| ty == netlink::SOCK_DIAG_BY_FAMILY) {
                    tx = tx.saturating_add(u64::from(s.tx_queue));
                    rx = rx.saturating_add(u64::from(s.rx_queue));
                }
            },
        )
        .await?;
        Ok((tx, rx))
    }

    /// The family from sock_diag dumps; IPv6 only where `net/udp6`
    /// exists, as with the files.
    async fn read_dumps(&self, nl: &Netlink, ctx: &ScrapeContext) -> std::io::Result<MetricFamily> {
        const AF_INET: u8 = 2;
        const AF_INET6: u8 = 10;
        let mut fam = family();
        // Socket counts first, from the read the sockstat collector shares.
        let counts = [
            ("v4", AF_INET, &self.sockstat, &self.shared[0], "UDP:"),
            ("v6", AF_INET6, &self.sockstat6, &self.shared[1], "UDP6:"),
        ]
        .map(|(ip, af, sockstat, shared, prefix)| {
            let in_use = match shared.read(ctx.id, sockstat) {
                Ok(text) => Some(udp_in_use(&text, prefix)),
                // No sockstat6: no IPv6, and no net/udp6 to report.
                Err(e) if is_missing(&e) && af == AF_INET6 => None,
                Err(_) => Some(None),
            };
            (ip, af, in_use)
        });
        for (ip, af, in_use) in counts {
            let Some(in_use) = in_use else { continue };
            let (tx, rx) = if in_use == Some(0) {
                (0, 0)
            } else {
                self.dump(nl, ctx, af).await?
            };
            fam.add(&[("ip", ip), ("queue", "rx")], rx as f64);
            fam.add(&[("ip", ip), ("queue", "tx")], tx as f64);
        }
        Ok(fam)
    }

    /// The family from `net/udp` and `net/udp6`.
    fn read_files(&self, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut fam = family();
        let mut result = Ok(());
        for (ip, path) in [("v4", &self.v4), ("v6", &self.v6)] {
            match scope.read(path) {
                Ok(b) => {
                    let ((tx, rx), bad) = parse_udp_queues(&crate::file_cache::utf8_text(b));
                    if bad.is_empty() {
                        fam.add(&[("ip", ip), ("queue", "rx")], rx as f64);
                        fam.add(&[("ip", ip), ("queue", "tx")], tx as f64);
                    }
                    result = result.and(bad.into_result(path));
                }
                Err(e) if is_missing(&e) => {
                    tracing::debug!(path = %path.display(), "udp socket table not available")
                }
                Err(e) => result = Err(format!("reading {}: {e}", path.display()).into()),
            }
        }
        if !fam.is_empty() {
            out.push(fam);
        }
        result
    }
}

impl Collector for UdpQueues {
    fn name(&self) -> &str {
        "udp_queues"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            if let Some(nl) = self.diag.as_ref().filter(|_| !self.no_diag.known()) {
                match self.read_dumps(nl, ctx).await {
                    Ok(fam) => {
                        if !fam.is_empty() {
                            out.push(fam);
                        }
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::debug!(err = %e, "sock_diag dump of UDP sockets failed, reading net/udp");
                        self.no_diag.set(true);
                    }
                }
            }
            self.read_files(out)
        })
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(UdpQueues::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_udp_socket_counts() {
        let v4 = "sockets: used 37\nTCP: inuse 6 orphan 0 tw 4 alloc 6 mem 127\nUDP: inuse 3 mem 18\nUDPLITE: inuse 0\n";
        let v6 = "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 2\n";
        assert_eq!(udp_in_use(v4, "UDP:"), Some(3));
        assert_eq!(udp_in_use(v6, "UDP6:"), Some(0));
        assert_eq!(udp_in_use(v4, "UDP6:"), None);
        assert_eq!(udp_in_use("UDP: mem 4\n", "UDP:"), None);
        assert_eq!(udp_in_use("UDP: inuse x\n", "UDP:"), None);
    }

    #[test]
    fn sums_queues() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   1: 0100007F:0035 00000000:0000 07 00000010:00000002 00:00000000 00000000   101        0 1 2 0\n\
   2: 00000000:0044 00000000:0000 07 00000001:000000A0 00:00000000 00000000     0        0 1 2 0\n\
   3: garbage\n";
        let (sums, bad) = parse_udp_queues(text);
        assert_eq!(sums, (17, 162));
        assert_eq!(
            bad.to_string(),
            "line 4 \"3: garbage\": no tx_queue:rx_queue column"
        );
        let (sums, bad) = parse_udp_queues("");
        assert_eq!(sums, (0, 0));
        assert_eq!(bad.to_string(), "no header line with tx_queue");
    }

    /// The live dump and the host's `net/udp` agree, and both see bytes
    /// this test leaves unread in its own socket's receive queue.
    #[test]
    fn dump_and_files_agree_on_the_tests_own_queued_bytes() {
        use crate::collectors::testing::{scrape, single};
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..4 {
            sender
                .send_to(&[7u8; 1000], receiver.local_addr().unwrap())
                .unwrap();
        }
        let live = Paths {
            procfs: "/proc".into(),
            ..crate::collectors::testing::paths_under(std::path::Path::new("/"))
        };
        let dumped = UdpQueues::new(&live);
        let rx = |out: &[MetricFamily]| {
            single(out, "node_udp_queues", &[("ip", "v4"), ("queue", "rx")]).expect("v4 rx")
        };
        // Other processes' sockets can change between the two reads: retry.
        let mut last = (0.0, 0.0);
        for _ in 0..20 {
            let from_dump = rx(&scrape(&dumped));
            let mut files = Vec::new();
            UdpQueues::new(&live).read_files(&mut files).unwrap();
            last = (from_dump, rx(&files));
            if last.0 == last.1 {
                break;
            }
        }
        assert_eq!(last.0, last.1, "sock_diag and net/udp disagree");
        assert!(
            last.0 >= 4000.0,
            "the 4000 unread bytes are counted: {last:?}"
        );
        assert!(
            dumped.diag.is_some() && !dumped.no_diag.known(),
            "the numbers came from sock_diag, not from the files"
        );
    }
}
