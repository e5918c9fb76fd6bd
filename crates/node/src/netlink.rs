//! Netlink: the one client every netlink-backed collector uses (netdev,
//! netclass, arp, qdisc, network_route, tcpstat, wifi).
//!
//! A [`Netlink`] keeps one non-blocking socket of a protocol (rtnetlink,
//! sock_diag, generic netlink) registered with the tokio runtime
//! (`AsyncFd`), so a request is awaited on the scrape task under the
//! scrape deadline: no blocking thread, no thread hop. Each request gets a
//! new sequence number and answers carrying another one (left over from a
//! request that was cut off) are skipped; a socket that failed or timed
//! out is dropped and opened afresh on the next request.
//!
//! Parsing is done on plain byte slices with bounds-checked reads (no
//! `unsafe`): [`split_messages`] cuts a received buffer into messages and
//! [`attributes`] walks (nested) route attributes. Both are pure and
//! covered by the seeded mutation test in `collectors/mutations.rs`.
//! [`Absence`] remembers that a subsystem is not there (no nl80211) so it
//! is asked again only once a minute.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use oxmon_core::sync::LockExt;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use crate::file_cache::MISSING_RECHECK;

/// `NETLINK_ROUTE`: links, addresses, routes, neighbours, qdiscs.
pub const ROUTE: i32 = 0;
/// `NETLINK_SOCK_DIAG` (`NETLINK_INET_DIAG`): socket dumps.
pub const SOCK_DIAG: i32 = 4;
/// `NETLINK_GENERIC`: families such as nl80211.
pub const GENERIC: i32 = 16;

/// `NLM_F_REQUEST`.
pub const F_REQUEST: u16 = 1;
/// `NLM_F_ACK`.
pub const F_ACK: u16 = 4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const F_DUMP: u16 = 0x300;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// Length of `struct nlmsghdr`.
pub const HEADER_LEN: usize = 16;

/// The type bits of an attribute type (without `NLA_F_NESTED` and
/// `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// A native-endian `u16` at `i`, if the slice holds one.
pub fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(i..i.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// A native-endian `u32` at `i`, if the slice holds one.
pub fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(i..i.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// A native-endian `u64` at `i`, if the slice holds one.
pub fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(
        b.get(i..i.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A NUL-terminated (or unterminated) string attribute as text.
pub fn text(val: &[u8]) -> String {
    let end = val.iter().position(|&c| c == 0).unwrap_or(val.len());
    String::from_utf8_lossy(&val[..end]).into_owned()
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Iterates the `(type, payload)` of route/generic attributes (`struct
/// nlattr`); stops at the first one that does not fit.
pub fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

/// Appends one attribute (`struct nlattr` + payload, padded) to `out`.
pub fn push_attr(out: &mut Vec<u8>, ty: u16, val: &[u8]) {
    out.extend_from_slice(&((4 + val.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(val);
    out.resize(align4(out.len()), 0);
}

/// What a message of an answer was.
#[derive(Debug, PartialEq)]
pub enum NlMessage<'a> {
    /// A payload of the given message type.
    Payload(u16, &'a [u8]),
    /// End of a dump.
    Done,
    /// The acknowledgement of a request (`NLMSG_ERROR` with errno 0).
    Ack,
    /// The kernel answered with this errno.
    Error(i32),
}

/// Splits a buffer received from a netlink socket into messages with
/// sequence number `seq` (others are skipped). `None` on a malformed
/// buffer (a length that is too short or runs past the end).
pub fn split_messages(b: &[u8], seq: u32) -> Option<Vec<NlMessage<'_>>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + HEADER_LEN <= b.len() {
        let len = u32_at(b, off)? as usize;
        if len < HEADER_LEN || len > b.len() - off {
            return None;
        }
        let ty = u16_at(b, off + 4)?;
        let mseq = u32_at(b, off + 8)?;
        let payload = &b[off + HEADER_LEN..off + len];
        if mseq == seq {
            out.push(match ty {
                NLMSG_DONE => NlMessage::Done,
                NLMSG_ERROR => match u32_at(payload, 0)? as i32 {
                    0 => NlMessage::Ack,
                    errno => NlMessage::Error(errno.saturating_neg()),
                },
                _ => NlMessage::Payload(ty, payload),
            });
        }
        off += align4(len);
    }
    Some(out)
}

/// A request message: header with `ty`, `flags` and `seq`, then `payload`.
pub fn request_message(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut req = Vec::with_capacity(HEADER_LEN + payload.len());
    req.extend_from_slice(&((HEADER_LEN + payload.len()) as u32).to_ne_bytes());
    req.extend_from_slice(&ty.to_ne_bytes());
    req.extend_from_slice(&flags.to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(payload);
    req
}

/// An open socket, its receive buffer and its last sequence number.
struct Socket {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
    seq: u32,
}

/// Large enough for any single message the kernel sends in a dump (it
/// fills at most about a page's worth per datagram, more for big link
/// messages).
const RECV_BUFFER: usize = 64 * 1024;

impl Socket {
    fn open(protocol: i32) -> io::Result<Self> {
        use rustix::net::{socket_with, AddressFamily, Protocol, SocketFlags, SocketType};
        let proto = std::num::NonZeroU32::new(protocol as u32).map(Protocol::from_raw);
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            proto,
        )?;
        Ok(Socket {
            fd: oxmon_sys::register_fd(fd)?,
            buf: vec![0u8; RECV_BUFFER],
            seq: 0,
        })
    }

    /// Sends one request and hands each payload of the answer to `f`,
    /// until the dump's end, the acknowledgement or an error.
    async fn exchange(
        &mut self,
        ty: u16,
        flags: u16,
        payload: &[u8],
        f: &mut (dyn FnMut(u16, &[u8]) + Send),
    ) -> io::Result<()> {
        use rustix::net::{netlink::SocketAddrNetlink, recv, sendto, RecvFlags, SendFlags};
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = request_message(ty, flags, seq, payload);
        loop {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|fd| {
                sendto(
                    fd.get_ref(),
                    &req,
                    SendFlags::DONTWAIT,
                    &SocketAddrNetlink::new(0, 0),
                )
                .map_err(io::Error::from)
            }) {
                Ok(sent) => {
                    sent?;
                    break;
                }
                Err(_would_block) => continue,
            }
        }
        let ends_with_ack = flags & F_DUMP == 0;
        loop {
            let mut ready = self.fd.readable().await?;
            let buf = &mut self.buf;
            let n = match ready.try_io(|fd| {
                // TRUNC: the datagram's real length, so a cut one is
                // named as such rather than as malformed.
                recv(
                    fd.get_ref(),
                    &mut buf[..],
                    RecvFlags::DONTWAIT | RecvFlags::TRUNC,
                )
                .map(|(_, datagram_len)| datagram_len)
                .map_err(io::Error::from)
            }) {
                Ok(n) => n?,
                Err(_would_block) => continue,
            };
            if n > RECV_BUFFER {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "netlink datagram of {n} bytes, larger than the {RECV_BUFFER}-byte buffer"
                    ),
                ));
            }
            let msgs = split_messages(&self.buf[..n], seq).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message")
            })?;
            for m in msgs {
                match m {
                    NlMessage::Done => return Ok(()),
                    NlMessage::Ack if ends_with_ack => return Ok(()),
                    NlMessage::Ack => {}
                    NlMessage::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
                    NlMessage::Payload(ty, p) => f(ty, p),
                }
            }
        }
    }
}

/// `SOCK_DIAG_BY_FAMILY`: the message type of sock_diag requests and
/// answers.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// One socket of the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetSocket {
    /// `TCP_ESTABLISHED` (1) … `TCP_CLOSING` (11).
    pub state: u8,
    /// Local port.
    pub source_port: u16,
    /// Remote port.
    pub dest_port: u16,
    /// Bytes in the receive queue.
    pub rx_queue: u32,
    /// Bytes in the send queue.
    pub tx_queue: u32,
}

/// Parses a `SOCK_DIAG_BY_FAMILY` answer (`struct inet_diag_msg`);
/// `None` when it is too short.
pub fn parse_inet_diag(p: &[u8]) -> Option<InetSocket> {
    // family, state, timer, retrans; then inet_diag_sockid (ports in
    // network byte order, addresses, interface, cookie: 48 bytes);
    // expires, rqueue, wqueue, uid, inode.
    let port = |i: usize| Some(u16::from_be_bytes(p.get(i..i + 2)?.try_into().ok()?));
    Some(InetSocket {
        state: *p.get(1)?,
        source_port: port(4)?,
        dest_port: port(6)?,
        rx_queue: u32_at(p, 56)?,
        tx_queue: u32_at(p, 60)?,
    })
}

/// A sock_diag dump request (`struct inet_diag_req_v2`) for the
/// `protocol` sockets (`IPPROTO_TCP`, `IPPROTO_UDP`) of `family`, in every
/// state, asking for `INET_DIAG_INFO` (TCP fills it, UDP ignores it).
pub fn inet_diag_request(family: u8, protocol: u8) -> [u8; 56] {
    const INET_DIAG_INFO: u8 = 2;
    const ALL_STATES: u32 = 0xfff;
    let mut req = [0u8; 56];
    req[0] = family;
    req[1] = protocol;
    req[2] = 1 << (INET_DIAG_INFO - 1);
    req[4..8].copy_from_slice(&ALL_STATES.to_ne_bytes());
    req
}

/// A kept-open netlink socket of one protocol, shared by the scrapes of
/// one collector; requests on it take turns.
pub struct Netlink {
    protocol: i32,
    sock: tokio::sync::Mutex<Option<Socket>>,
}

impl Netlink {
    /// A client of `protocol` ([`ROUTE`], [`SOCK_DIAG`], [`GENERIC`]); the
    /// socket is opened on the first request.
    pub fn new(protocol: i32) -> Self {
        Netlink {
            protocol,
            sock: tokio::sync::Mutex::new(None),
        }
    }

    /// Sends request `ty` with `flags` (`F_REQUEST` is added) and
    /// `payload`, and hands every payload of the answer to `f` as
    /// `(message type, payload)`. A dump (`F_DUMP`) ends at its end
    /// message; anything else is sent with `F_ACK` and ends at the
    /// acknowledgement. Fails with `TimedOut` at `deadline`, with the
    /// kernel's errno when it refuses.
    pub async fn request(
        &self,
        deadline: Instant,
        ty: u16,
        flags: u16,
        payload: &[u8],
        mut f: impl FnMut(u16, &[u8]) + Send,
    ) -> io::Result<()> {
        let flags = if flags & F_DUMP == 0 {
            flags | F_REQUEST | F_ACK
        } else {
            flags | F_REQUEST
        };
        let mut guard = tokio::time::timeout_at(deadline, self.sock.lock())
            .await
            .map_err(|_| timed_out())?;
        // Taken out while in use: a request cut off by the deadline (or
        // failed) leaves the slot empty, and the next one opens a fresh
        // socket instead of reading this one's late answer.
        let kept = guard.take();
        let reused = kept.is_some();
        let mut sock = match kept {
            Some(s) => s,
            None => Socket::open(self.protocol)?,
        };
        let delivered = std::sync::atomic::AtomicBool::new(false);
        let mut counted = |ty: u16, p: &[u8]| {
            delivered.store(true, std::sync::atomic::Ordering::Relaxed);
            f(ty, p)
        };
        let mut result =
            tokio::time::timeout_at(deadline, sock.exchange(ty, flags, payload, &mut counted))
                .await
                .map_err(|_| timed_out())?;
        // A kept socket can have gone stale (registered with a runtime
        // that has since shut down, an error queued by the kernel): one
        // more try on a fresh socket, unless the kernel itself refused the
        // request or the answer was already partly handed out.
        if let Err(e) = &result {
            if reused
                && e.raw_os_error().is_none()
                && e.kind() != io::ErrorKind::InvalidData
                && !delivered.load(std::sync::atomic::Ordering::Relaxed)
            {
                sock = Socket::open(self.protocol)?;
                result = tokio::time::timeout_at(
                    deadline,
                    sock.exchange(ty, flags, payload, &mut counted),
                )
                .await
                .map_err(|_| timed_out())?;
            }
        }
        if result.is_ok() {
            *guard = Some(sock);
        }
        result
    }

    /// A dump (`F_DUMP`) of `ty` with `payload`; see [`Netlink::request`].
    pub async fn dump(
        &self,
        deadline: Instant,
        ty: u16,
        payload: &[u8],
        f: impl FnMut(u16, &[u8]) + Send,
    ) -> io::Result<()> {
        self.request(deadline, ty, F_DUMP, payload, f).await
    }

    /// The id of generic netlink family `name` (`nl80211`); `None` when
    /// the kernel has no such family (module not loaded).
    pub async fn genl_family(&self, deadline: Instant, name: &str) -> io::Result<Option<u16>> {
        const GENL_ID_CTRL: u16 = 0x10;
        const CTRL_CMD_GETFAMILY: u8 = 3;
        const CTRL_ATTR_FAMILY_ID: u16 = 1;
        const CTRL_ATTR_FAMILY_NAME: u16 = 2;
        let mut payload = genl_header(CTRL_CMD_GETFAMILY, 1);
        let mut zname = name.as_bytes().to_vec();
        zname.push(0);
        push_attr(&mut payload, CTRL_ATTR_FAMILY_NAME, &zname);
        let mut id = None;
        let asked = self
            .request(deadline, GENL_ID_CTRL, 0, &payload, |_, p| {
                let Some(attrs) = p.get(GENL_HEADER_LEN..) else {
                    return;
                };
                for (ty, val) in attributes(attrs) {
                    if ty == CTRL_ATTR_FAMILY_ID {
                        id = u16_at(val, 0);
                    }
                }
            })
            .await;
        match asked {
            Ok(()) => Ok(id),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOENT.raw_os_error()) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Length of `struct genlmsghdr`.
pub const GENL_HEADER_LEN: usize = 4;

/// A generic netlink header (`struct genlmsghdr`): command and version.
pub fn genl_header(cmd: u8, version: u8) -> Vec<u8> {
    vec![cmd, version, 0, 0]
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "no netlink answer before the scrape deadline",
    )
}

/// Remembers that a subsystem is absent (no nl80211 family), so the
/// collector asks again only after [`MISSING_RECHECK`] rather than on
/// every scrape.
#[derive(Default)]
pub struct Absence(Mutex<Option<std::time::Instant>>);

impl Absence {
    /// True while a recent check found the subsystem absent.
    pub fn known(&self) -> bool {
        matches!(*self.0.lock_unpoisoned(), Some(since) if since.elapsed() < MISSING_RECHECK)
    }

    /// Records the outcome of a check.
    pub fn set(&self, absent: bool) {
        *self.0.lock_unpoisoned() = absent.then(std::time::Instant::now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A received message as the kernel lays it out.
    pub fn message(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = request_message(ty, 2, seq, payload);
        m.resize(align4(m.len()), 0);
        m
    }

    #[test]
    fn splits_messages_by_sequence_and_kind() {
        let mut buf = message(16, 5, &[1, 2, 3, 4]);
        buf.extend(message(16, 4, &[9; 8])); // stale sequence
        buf.extend(message(NLMSG_ERROR, 5, &0i32.to_ne_bytes()));
        buf.extend(message(NLMSG_ERROR, 5, &(-2i32).to_ne_bytes()));
        buf.extend(message(NLMSG_DONE, 5, &[0; 4]));
        let msgs = split_messages(&buf, 5).unwrap();
        assert_eq!(
            msgs,
            vec![
                NlMessage::Payload(16, &[1, 2, 3, 4]),
                NlMessage::Ack,
                NlMessage::Error(2),
                NlMessage::Done
            ]
        );
        // Truncated buffers and lengths that run past the end are refused.
        assert!(split_messages(&buf[..40], 5).is_none());
        let mut long = message(16, 5, &[]);
        long[0] = 200;
        assert!(split_messages(&long, 5).is_none());
        // A length below the header's is refused, not looped on.
        let mut short = message(16, 5, &[]);
        short[0] = 3;
        assert!(split_messages(&short, 5).is_none());
    }

    #[test]
    fn walks_nested_attributes_and_stops_at_a_bad_length() {
        let mut inner = Vec::new();
        push_attr(&mut inner, 1, &7u32.to_ne_bytes());
        push_attr(&mut inner, 2, b"abc\0");
        let mut outer = Vec::new();
        push_attr(&mut outer, 0x8000 | 9, &inner);
        push_attr(&mut outer, 3, &[1]);
        let got: Vec<_> = attributes(&outer).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 9, "NLA_F_NESTED is masked off");
        assert_eq!(got[1], (3, &[1u8][..]));
        let nested: Vec<_> = attributes(got[0].1).collect();
        assert_eq!(u32_at(nested[0].1, 0), Some(7));
        assert_eq!(text(nested[1].1), "abc");
        let mut bad = outer.clone();
        bad[0] = 250;
        assert_eq!(attributes(&bad).count(), 0);
    }

    #[test]
    fn live_route_dump_and_generic_family_lookup() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let nl = Netlink::new(ROUTE);
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            // RTM_GETLINK dump; ifinfomsg of zeroes asks for every link.
            let mut links = 0;
            nl.dump(deadline, 18, &[0; 16], |ty, _| {
                assert_eq!(ty, 16, "RTM_NEWLINK");
                links += 1;
            })
            .await
            .unwrap();
            assert!(links >= 1, "at least lo");
            // The kept socket serves the next request with the next sequence.
            let mut again = 0;
            nl.dump(deadline, 18, &[0; 16], |_, _| again += 1)
                .await
                .unwrap();
            assert_eq!(again, links);
            let genl = Netlink::new(GENERIC);
            let ctrl = genl.genl_family(deadline, "nlctrl").await.unwrap();
            assert_eq!(ctrl, Some(0x10), "the controller's own id");
            let none = genl.genl_family(deadline, "no-such-family").await.unwrap();
            assert_eq!(none, None);
        });
    }

    /// A client kept across runtimes (a process-wide one, tests that
    /// each build a runtime) opens a new socket when its old one belongs
    /// to a runtime that is gone.
    #[test]
    fn a_client_outlives_the_runtime_its_socket_was_registered_with() {
        let nl = Netlink::new(ROUTE);
        for _ in 0..2 {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut links = 0;
            rt.block_on(nl.dump(
                Instant::now() + std::time::Duration::from_secs(5),
                18,
                &[0; 16],
                |_, _| links += 1,
            ))
            .unwrap();
            assert!(links >= 1);
        }
    }

    /// A request the kernel never answers (`NLMSG_NOOP` without
    /// `NLM_F_ACK`) ends at the deadline with `TimedOut`, and the next
    /// request on the same client gets a fresh socket and its answer.
    #[test]
    fn an_unanswered_request_ends_at_the_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let nl = Netlink::new(ROUTE);
            let started = Instant::now();
            let deadline = started + std::time::Duration::from_millis(200);
            let err = nl.dump(deadline, 1, &[], |_, _| {}).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= std::time::Duration::from_millis(200));
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
            let mut links = 0;
            let deadline = Instant::now() + std::time::Duration::from_secs(5);
            nl.dump(deadline, 18, &[0; 16], |_, _| links += 1)
                .await
                .unwrap();
            assert!(links >= 1);
        });
    }

    #[test]
    fn absence_is_remembered_until_cleared() {
        let a = Absence::default();
        assert!(!a.known());
        a.set(true);
        assert!(a.known());
        a.set(false);
        assert!(!a.known());
    }
}
