//! A cap on the size of each reply a target sends (`--redis.max-reply-bytes`).
//!
//! The Redis client buffers a whole reply before handing it over, so a
//! hostile or broken server that announces a 2 GB bulk string (or streams
//! an endless line, or an array that never ends) would make the exporter
//! hold all of it. [`Limited`] wraps a connection's byte stream and follows
//! the RESP2/RESP3 framing as the bytes arrive: a reply whose size passes
//! the cap, or whose header announces more than the cap can hold, fails the
//! connection with [`ReplyTooLarge`] at once, before the bytes are kept.
//! The client reports a broken connection to the commands waiting on it,
//! so the refusal is also kept in a [`Refusal`] the connection's owner
//! reads: the scrape then reports `redis_up 0` with that message, and the
//! connection is dropped.
//!
//! Only framing is followed (type bytes, lengths, counts, line ends); the
//! client still parses and checks the replies.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The default cap, 16 MiB: far larger than any INFO, CONFIG GET or SCAN
/// reply (tens of KiB), and than CLIENT LIST with 40,000 clients; small
/// enough that a few hostile targets at once cannot exhaust memory.
pub const DEFAULT_MAX_REPLY_BYTES: u64 = 16 << 20;

/// Nesting of aggregates followed at most (the client refuses deeper
/// replies too).
const MAX_DEPTH: usize = 128;

/// Why a reply was refused; the message names the flag that raises the cap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyTooLarge {
    /// The header announced more than the cap holds.
    #[error("reply announces {announced} {unit}, larger than the limit of {max} bytes (--redis.max-reply-bytes)")]
    Announced {
        /// The announced length or element count.
        announced: u64,
        /// `bytes` or `elements`.
        unit: &'static str,
        /// The cap.
        max: u64,
    },
    /// The reply grew past the cap.
    #[error("reply larger than the limit of {max} bytes (--redis.max-reply-bytes)")]
    Grew {
        /// The cap.
        max: u64,
    },
    /// A length or count is not a number.
    #[error("malformed reply header")]
    Malformed,
    /// Aggregates nested deeper than anything Redis sends.
    #[error("reply nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Where the scanner is within a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the type byte of a value.
    Type,
    /// In the header line of a value of type `kind`; for types that carry
    /// a length or count, `number` collects it.
    Header {
        kind: u8,
        number: u64,
        negative: bool,
        digits: u8,
    },
    /// In a bulk payload, `left` bytes to go (with its closing CRLF).
    Payload { left: u64 },
}

/// Follows the framing of the replies on one connection.
#[derive(Debug)]
struct Scanner {
    max: u64,
    /// Elements each open aggregate still expects, innermost last.
    open: Vec<u64>,
    state: State,
    /// Bytes of the top-level reply so far.
    size: u64,
}

/// A value whose header line carries a byte length.
fn is_bulk(kind: u8) -> bool {
    matches!(kind, b'$' | b'!' | b'=')
}

/// The elements an aggregate header's count stands for, if `kind` is one.
fn elements(kind: u8, count: u64) -> Option<u64> {
    match kind {
        b'*' | b'~' | b'>' => Some(count),
        b'%' => Some(count.saturating_mul(2)),
        // As the client reads it: the attribute pairs, then the value
        // they describe.
        b'|' => Some(count.saturating_mul(2).saturating_add(1)),
        _ => None,
    }
}

impl Scanner {
    fn new(max: u64) -> Self {
        Scanner {
            max,
            open: Vec::new(),
            state: State::Type,
            size: 0,
        }
    }

    /// Follows `bytes`; an error means the reply must be refused.
    fn scan(&mut self, mut bytes: &[u8]) -> Result<(), ReplyTooLarge> {
        while !bytes.is_empty() {
            if let State::Payload { left } = self.state {
                let take = left.min(bytes.len() as u64);
                self.grow(take)?;
                bytes = &bytes[take as usize..];
                if take == left {
                    self.state = State::Type;
                    self.complete();
                } else {
                    self.state = State::Payload { left: left - take };
                }
                continue;
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            self.grow(1)?;
            self.state = match self.state {
                State::Type => State::Header {
                    kind: b,
                    number: 0,
                    negative: false,
                    digits: 0,
                },
                State::Header { kind, .. } if b == b'\n' => self.end_header(kind)?,
                State::Header { kind, .. } if !is_bulk(kind) && elements(kind, 0).is_none() => {
                    self.state
                }
                State::Header {
                    kind,
                    number,
                    negative,
                    digits,
                } => match b {
                    b'\r' => self.state,
                    b'-' if digits == 0 && !negative => State::Header {
                        kind,
                        number,
                        negative: true,
                        digits,
                    },
                    b'0'..=b'9' if digits < 19 => State::Header {
                        kind,
                        number: number * 10 + u64::from(b - b'0'),
                        negative,
                        digits: digits + 1,
                    },
                    b'0'..=b'9' => {
                        return Err(ReplyTooLarge::Announced {
                            announced: u64::MAX,
                            unit: "bytes",
                            max: self.max,
                        })
                    }
                    _ => return Err(ReplyTooLarge::Malformed),
                },
                State::Payload { .. } => unreachable!("handled above"),
            };
        }
        Ok(())
    }

    fn grow(&mut self, by: u64) -> Result<(), ReplyTooLarge> {
        self.size += by;
        if self.size > self.max {
            return Err(ReplyTooLarge::Grew { max: self.max });
        }
        Ok(())
    }

    /// Refuses a header announcing `announced` `unit`s that take `bytes`
    /// at least: more than the cap at all, or more than the rest of the
    /// reply may still take.
    fn fits(&self, announced: u64, unit: &'static str, bytes: u64) -> Result<(), ReplyTooLarge> {
        if bytes > self.max {
            return Err(ReplyTooLarge::Announced {
                announced,
                unit,
                max: self.max,
            });
        }
        if bytes > self.max - self.size {
            return Err(ReplyTooLarge::Grew { max: self.max });
        }
        Ok(())
    }

    /// The state after the header line of a `kind` value ends.
    fn end_header(&mut self, kind: u8) -> Result<State, ReplyTooLarge> {
        let State::Header {
            number, negative, ..
        } = self.state
        else {
            unreachable!("called in a header");
        };
        if is_bulk(kind) {
            if negative {
                self.complete();
                return Ok(State::Type);
            }
            self.fits(number, "bytes", number)?;
            return Ok(State::Payload { left: number + 2 });
        }
        match elements(kind, number) {
            Some(n) if !negative && n > 0 => {
                // Each element takes three bytes at least (`_\r\n`).
                self.fits(n, "elements", n.saturating_mul(3))?;
                if self.open.len() >= MAX_DEPTH {
                    return Err(ReplyTooLarge::TooDeep);
                }
                self.open.push(n);
            }
            _ => self.complete(),
        }
        Ok(State::Type)
    }

    /// One value ended: count it against the aggregates it closes.
    fn complete(&mut self) {
        while let Some(left) = self.open.last_mut() {
            *left -= 1;
            if *left > 0 {
                return;
            }
            self.open.pop();
        }
        self.size = 0;
    }
}

/// Why a connection's reply was refused, once it was; shared between the
/// stream and the connection's owner.
#[derive(Debug, Clone, Default)]
pub struct Refusal(Arc<OnceLock<ReplyTooLarge>>);

impl Refusal {
    /// The refusal, if a reply was refused.
    pub fn get(&self) -> Option<&ReplyTooLarge> {
        self.0.get()
    }
}

/// A connection whose replies are capped (see the module docs); writes
/// pass through.
pub struct Limited<S> {
    inner: S,
    scanner: Scanner,
    refusal: Refusal,
}

impl<S> Limited<S> {
    /// Caps each reply read from `inner` at `max` bytes; a refusal is
    /// also recorded in `refusal`.
    pub fn new(inner: S, max: u64, refusal: Refusal) -> Self {
        Limited {
            inner,
            scanner: Scanner::new(max),
            refusal,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.refusal.get() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.clone())));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        if let Err(e) = this.scanner.scan(&buf.filled()[before..]) {
            // The refused bytes are not handed on.
            buf.set_filled(before);
            let _ = this.refusal.0.set(e.clone());
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `input` in chunks of `step` bytes with a cap of `max`.
    fn scan(max: u64, input: &[u8], step: usize) -> Result<Scanner, ReplyTooLarge> {
        let mut s = Scanner::new(max);
        for chunk in input.chunks(step) {
            s.scan(chunk)?;
        }
        Ok(s)
    }

    #[test]
    fn replies_within_the_cap_pass_in_any_chunking() {
        let replies: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR unknown command\r\n",
            b":42\r\n",
            b"$5\r\nhello\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$3\r\nfoo\r\n*2\r\n:1\r\n_\r\n",
            b"%1\r\n+key\r\n=7\r\ntxt:abc\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
            b">2\r\n+message\r\n$2\r\nhi\r\n",
            b",1.5\r\n#t\r\n(123\r\n!3\r\nERR\r\n~1\r\n_\r\n",
        ];
        let all: Vec<u8> = replies.concat();
        for step in [1, 2, 3, 7, all.len()] {
            let s = scan(64, &all, step).unwrap();
            assert_eq!(s.state, State::Type, "step {step}");
            assert!(s.open.is_empty() && s.size == 0, "step {step}");
        }
    }

    #[test]
    fn each_reply_is_counted_on_its_own() {
        // Ten replies of 11 bytes: each fits a cap of 16, together not.
        let ten = b"$5\r\nhello\r\n".repeat(10);
        assert!(scan(16, &ten, 4).is_ok());
        assert_eq!(
            scan(16, b"$20\r\n", 1).err(),
            Some(ReplyTooLarge::Announced {
                announced: 20,
                unit: "bytes",
                max: 16
            })
        );
    }

    #[test]
    fn hostile_replies_are_refused_before_they_are_kept() {
        let max = 1 << 20;
        assert!(matches!(
            scan(max, b"$2000000000\r\n", 64),
            Err(ReplyTooLarge::Announced {
                announced: 2_000_000_000,
                ..
            })
        ));
        assert!(matches!(
            scan(max, b"*100000000\r\n", 64),
            Err(ReplyTooLarge::Announced {
                unit: "elements",
                ..
            })
        ));
        assert!(matches!(
            scan(max, b"$99999999999999999999999\r\n", 64),
            Err(ReplyTooLarge::Announced { .. })
        ));
        let endless_line = [b"+".as_slice(), &vec![b'x'; 2 << 20]].concat();
        assert_eq!(
            scan(max, &endless_line, 4096).err(),
            Some(ReplyTooLarge::Grew { max })
        );
        let one = [b"$2000\r\n".as_slice(), &[b'y'; 2000], b"\r\n"].concat();
        let many = [b"*1000\r\n".to_vec(), one.repeat(600)].concat();
        assert_eq!(
            scan(max, &many, 999).err(),
            Some(ReplyTooLarge::Grew { max })
        );
        assert_eq!(
            scan(max, &b"*1\r\n".repeat(200), 7).err(),
            Some(ReplyTooLarge::TooDeep)
        );
        assert_eq!(
            scan(max, b"$1x\r\n", 1).err(),
            Some(ReplyTooLarge::Malformed)
        );
    }

    #[tokio::test]
    async fn a_refused_reply_fails_the_read_and_every_later_one() {
        use tokio::io::AsyncReadExt;
        let (mut server, client) = tokio::io::duplex(1024);
        let refusal = Refusal::default();
        let mut limited = Limited::new(client, 100, refusal.clone());
        tokio::io::AsyncWriteExt::write_all(&mut server, b"+OK\r\n$500\r\n")
            .await
            .unwrap();
        let mut ok = [0u8; 5];
        limited.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        let mut buf = [0u8; 64];
        let e = limited.read(&mut buf).await.unwrap_err();
        assert!(
            e.to_string().contains("larger than the limit of 100 bytes"),
            "{e}"
        );
        assert!(limited.read(&mut buf).await.is_err());
        assert!(matches!(
            refusal.get(),
            Some(ReplyTooLarge::Announced { announced: 500, .. })
        ));
    }
}
