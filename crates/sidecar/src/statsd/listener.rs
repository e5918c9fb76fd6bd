//! The StatsD listeners and the thread that applies what they receive.
//!
//! - UDP: a dedicated thread does blocking `recv`s (64 KiB buffer) and hands
//!   each datagram, copied into a recycled buffer, to a bounded queue
//!   (`--statsd.udp-packet-queue-size`); when the queue is full the packet
//!   is dropped and counted in `statsd_exporter_udp_packet_drops_total`, so
//!   a burst never grows memory without bound.
//! - TCP: one task per connection reads lines (`\n` or `\r\n`), batches the
//!   complete lines of each read into one queue item and waits while the
//!   queue is full, which pushes back on the sender as TCP does. A line of
//!   4096 bytes or more closes the connection
//!   (`statsd_exporter_tcp_too_long_lines_total`), as statsd_exporter's
//!   4 KiB line reader does.
//! - Unixgram: like UDP but, as in statsd_exporter, never dropped.
//!
//! One worker thread takes queue items, parses their lines and applies them
//! to the store, everything already queued under one lock, and expires idle
//! series every second. A datagram is split on `\n` and every piece counts as a line (a
//! trailing newline adds an empty one), as statsd_exporter counts them.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::handler::Handler;
use super::line::{Line, ParseCounts, Parser};
use super::mapper::Mapper;
use super::stats::Stats;
use crate::store::{Store, Writer};

/// statsd_exporter's TCP line limit: its line reader holds 4096 bytes,
/// newline included.
pub const MAX_TCP_LINE: usize = 4096;

/// Most packets applied under one store lock, so a scrape waits little.
const MAX_BATCH: u64 = 256;

/// Buffers larger than this are not recycled, so rare jumbo datagrams do
/// not pin memory.
const RECYCLE_LIMIT: usize = 16 * 1024;

/// How received bytes divide into lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A datagram: every `\n`-separated piece is a line.
    Datagram,
    /// Complete lines, each ending in `\n`.
    Lines,
}

/// One queue item.
#[derive(Debug)]
pub struct Packet {
    /// The bytes.
    pub data: Vec<u8>,
    /// How they divide into lines.
    pub framing: Framing,
}

/// The thread applying queued packets.
pub struct Worker {
    /// Packets from the listeners.
    pub packets: Receiver<Packet>,
    /// Emptied UDP buffers back to the UDP reader.
    pub recycle: SyncSender<Vec<u8>>,
    /// Replacement mappings (reloads).
    pub reloads: Receiver<Mapper>,
    /// Applies samples.
    pub handler: Handler,
    /// Parses lines.
    pub parser: Parser,
    /// Where samples go.
    pub store: Arc<Store>,
    /// Self-metrics.
    pub stats: Arc<Stats>,
}

impl Worker {
    /// Runs until every sender is gone.
    pub fn run(mut self) {
        let mut line: Line<'static> = Line::default();
        let mut next_expiry = Instant::now() + Duration::from_secs(1);
        loop {
            let wait = next_expiry.saturating_duration_since(Instant::now());
            let first = match self.packets.recv_timeout(wait) {
                Ok(packet) => Some(packet),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // A reload applies to every packet that arrives after it.
            while let Ok(mapper) = self.reloads.try_recv() {
                self.handler.set_mapper(mapper);
            }
            if let Some(packet) = first {
                line = self.process_batch(packet, line);
            }
            let now = Instant::now();
            if now >= next_expiry {
                self.store.expire(now);
                next_expiry = now + Duration::from_secs(1);
            }
        }
    }

    /// Applies `first` and whatever else is already queued (up to
    /// [`MAX_BATCH`] packets) under one store lock; takes and returns the
    /// reusable line buffers.
    fn process_batch(&mut self, first: Packet, line: Line<'static>) -> Line<'static> {
        let mut counts = ParseCounts::default();
        let mut lines = 0u64;
        let mut packets = 0u64;
        let mut line = line;
        {
            let store = self.store.clone();
            let mut writer = store.writer(Instant::now());
            let mut next = Some(first);
            while let Some(packet) = next {
                line = self.process(packet, line, &mut writer, &mut counts, &mut lines);
                packets += 1;
                next = if packets < MAX_BATCH {
                    self.packets.try_recv().ok()
                } else {
                    None
                };
            }
        }
        self.stats.lines.fetch_add(lines, Relaxed);
        self.stats.add_parsed(&counts);
        self.stats.events_flushed.fetch_add(packets, Relaxed);
        line
    }

    fn process(
        &mut self,
        packet: Packet,
        line: Line<'static>,
        writer: &mut Writer<'_>,
        counts: &mut ParseCounts,
        lines: &mut u64,
    ) -> Line<'static> {
        let mut line = line.recycle();
        let body: &[u8] = match packet.framing {
            Framing::Datagram => &packet.data,
            Framing::Lines => packet.data.strip_suffix(b"\n").unwrap_or(&packet.data),
        };
        for raw in body.split(|&b| b == b'\n') {
            *lines += 1;
            self.parser.parse_bytes(raw, &mut line, counts);
            self.handler.handle(&mut line, writer);
        }
        let line = line.recycle();
        if packet.framing == Framing::Datagram && packet.data.capacity() <= RECYCLE_LIMIT {
            let _ = self.recycle.try_send(packet.data);
        }
        line
    }
}

/// Reads datagrams from `socket` into the queue until the worker is gone.
pub fn udp_reader(
    socket: UdpSocket,
    queue: SyncSender<Packet>,
    recycled: Receiver<Vec<u8>>,
    stats: Arc<Stats>,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!(err = %e, "reading from the StatsD UDP socket failed");
                return;
            }
        };
        stats.udp_packets.fetch_add(1, Relaxed);
        let mut data = recycled.try_recv().unwrap_or_default();
        data.clear();
        data.extend_from_slice(&buf[..n]);
        match queue.try_send(Packet {
            data,
            framing: Framing::Datagram,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                stats.udp_packet_drops.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Queues a packet, waiting while the queue is full; false when the worker
/// is gone.
async fn enqueue(queue: &SyncSender<Packet>, mut packet: Packet) -> bool {
    loop {
        match queue.try_send(packet) {
            Ok(()) => return true,
            Err(TrySendError::Full(p)) => {
                packet = p;
                // The queue is a std channel shared with the UDP thread; a
                // short sleep is the async wait for room.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// Accepts TCP connections forever.
pub async fn tcp_listener(
    listener: tokio::net::TcpListener,
    queue: SyncSender<Packet>,
    stats: Arc<Stats>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(tcp_connection(stream, queue.clone(), stats.clone()));
            }
            Err(e) => {
                tracing::warn!(err = %e, "accepting a StatsD TCP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn tcp_connection<S: tokio::io::AsyncRead + Unpin>(
    mut stream: S,
    queue: SyncSender<Packet>,
    stats: Arc<Stats>,
) {
    stats.tcp_connections.fetch_add(1, Relaxed);
    let mut pending: Vec<u8> = Vec::with_capacity(MAX_TCP_LINE);
    loop {
        pending.reserve(MAX_TCP_LINE);
        let read = stream.read_buf(&mut pending).await;
        let eof = match read {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                stats.tcp_errors.fetch_add(1, Relaxed);
                tracing::debug!(err = %e, "reading a StatsD TCP connection failed");
                return;
            }
        };
        let (chunk, consumed, too_long) = complete_lines(&pending, eof);
        pending.drain(..consumed);
        if !chunk.is_empty()
            && !enqueue(
                &queue,
                Packet {
                    data: chunk,
                    framing: Framing::Lines,
                },
            )
            .await
        {
            return;
        }
        if too_long {
            stats.tcp_too_long_lines.fetch_add(1, Relaxed);
            tracing::debug!("StatsD TCP line too long; closing the connection");
            return;
        }
        if eof {
            return;
        }
    }
}

/// Splits the complete lines off `pending`: returns them as `\n`-ended
/// lines (a `\r` before the `\n` removed), the bytes consumed, and whether a
/// line too long for statsd_exporter's reader was reached. At `eof` the
/// unterminated rest is a last line.
fn complete_lines(pending: &[u8], eof: bool) -> (Vec<u8>, usize, bool) {
    let mut chunk = Vec::new();
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
        let line = &pending[start..start + pos];
        if line.len() >= MAX_TCP_LINE {
            return (chunk, start, true);
        }
        chunk.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        chunk.push(b'\n');
        start += pos + 1;
    }
    let rest = &pending[start..];
    if rest.len() >= MAX_TCP_LINE {
        return (chunk, start, true);
    }
    if eof && !rest.is_empty() {
        chunk.extend_from_slice(rest);
        chunk.push(b'\n');
        start = pending.len();
    }
    (chunk, start, false)
}

/// Reads unixgram datagrams forever.
pub async fn unixgram_reader(
    socket: tokio::net::UnixDatagram,
    queue: SyncSender<Packet>,
    stats: Arc<Stats>,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(err = %e, "reading from the StatsD unixgram socket failed");
                return;
            }
        };
        stats.unixgram_packets.fetch_add(1, Relaxed);
        let packet = Packet {
            data: buf[..n].to_vec(),
            framing: Framing::Datagram,
        };
        if !enqueue(&queue, packet).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_lines_like_statsd_exporter() {
        let (chunk, used, long) = complete_lines(b"a:1|c\r\nb:2|c\n\nc:3", false);
        assert_eq!(
            (chunk.as_slice(), used, long),
            (&b"a:1|c\nb:2|c\n\n"[..], 14, false)
        );
        let (chunk, used, long) = complete_lines(b"c:3\r", true);
        assert_eq!((chunk.as_slice(), used, long), (&b"c:3\r\n"[..], 4, false));
        let mut long_line = vec![b'x'; MAX_TCP_LINE];
        long_line.push(b'\n');
        let mut input = b"ok:1|c\n".to_vec();
        input.extend_from_slice(&long_line);
        let (chunk, used, long) = complete_lines(&input, false);
        assert_eq!((chunk.as_slice(), used, long), (&b"ok:1|c\n"[..], 7, true));
        let fits = vec![b'x'; MAX_TCP_LINE - 1];
        assert!(!complete_lines(&fits, false).2);
        assert!(complete_lines(&vec![b'x'; MAX_TCP_LINE], false).2);
    }

    #[tokio::test]
    async fn tcp_connection_queues_lines_and_stops_at_too_long() {
        let (tx, rx) = std::sync::mpsc::sync_channel(10);
        let stats = Arc::new(Stats::default());
        let mut input = b"a:1|c\nb:2|c".to_vec();
        tcp_connection(&input[..], tx.clone(), stats.clone()).await;
        let got: Vec<Vec<u8>> = rx.try_iter().map(|p| p.data).collect();
        assert_eq!(got.concat(), b"a:1|c\nb:2|c\n");
        input = vec![b'y'; MAX_TCP_LINE + 10];
        tcp_connection(&input[..], tx, stats.clone()).await;
        assert!(rx.try_recv().is_err());
        assert_eq!(stats.tcp_too_long_lines.load(Relaxed), 1);
        assert_eq!(stats.tcp_connections.load(Relaxed), 2);
    }
}
