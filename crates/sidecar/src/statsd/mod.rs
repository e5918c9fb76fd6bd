//! The StatsD source: statsd_exporter's listeners, line protocol, mapping
//! file and self-metrics, feeding the sidecar's store.
//!
//! Flags (statsd_exporter's names and defaults):
//!
//! | flag | default | |
//! |---|---|---|
//! | `--statsd.listen-udp` | `:9125` | empty turns it off |
//! | `--statsd.listen-tcp` | `:9125` | empty turns it off |
//! | `--statsd.listen-unixgram` | empty | a socket path; must not exist |
//! | `--statsd.unixsocket-mode` | `755` | octal mode of that socket |
//! | `--statsd.mapping-config` | none | mapping file; re-read with the config (SIGHUP, `POST /-/reload`) |
//! | `--statsd.read-buffer` | system | `SO_RCVBUF` of the UDP socket |
//! | `--statsd.cache-size`, `--statsd.cache-type` | `1000`, `lru` | mapping cache (`lru`, `random`) |
//! | `--statsd.udp-packet-queue-size` | `10000` | packets waiting for the worker |
//! | `--statsd.parse-{dogstatsd,influxdb,librato,signalfx}-tags` | true | `--no-…` turns one off |
//! | `--statsd.event-queue-size`, `--statsd.event-flush-threshold`, `--statsd.event-flush-interval` | `10000`, `1000`, `200ms` | accepted; samples are applied as each packet is parsed, so there is no separate event queue |
//!
//! Modules: [`line`] (protocol), [`mapper`] (mapping file), [`handler`]
//! (samples into the store), [`listener`] (sockets and the worker),
//! [`stats`] (self-metrics); [`escape`] and [`gosyntax`] hold the Go
//! conventions statsd_exporter inherits.
//!
//! The mapping is part of the sidecar's config ([`crate::config`]: this flag
//! or the file's `statsd` section) and is reloaded with it;
//! `statsd_exporter_config_reloads_total{outcome}` counts those reloads.

pub mod escape;
pub mod gosyntax;
pub mod handler;
pub mod line;
pub mod listener;
pub mod mapper;
pub mod stats;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::Arc;
use std::time::Duration;

use clap::ArgAction;

use self::handler::Handler;
use self::line::{Parser, TagStyles};
use self::listener::{Packet, Worker};
use self::mapper::{CacheType, Mapper};
use self::stats::Stats;
use crate::store::Store;

/// The StatsD flags.
#[derive(clap::Args, Debug, Clone)]
pub struct StatsdArgs {
    /// The UDP address on which to receive statsd metric lines. "" disables
    /// it.
    #[arg(long = "statsd.listen-udp", default_value = ":9125")]
    pub listen_udp: String,

    /// The TCP address on which to receive statsd metric lines. "" disables
    /// it.
    #[arg(long = "statsd.listen-tcp", default_value = ":9125")]
    pub listen_tcp: String,

    /// The Unixgram socket path to receive statsd metric lines in datagram.
    /// "" disables it.
    #[arg(long = "statsd.listen-unixgram", default_value = "")]
    pub listen_unixgram: String,

    /// The permission mode of the unix socket.
    #[arg(long = "statsd.unixsocket-mode", default_value = "755")]
    pub unixsocket_mode: String,

    /// Metric mapping configuration file name.
    #[arg(long = "statsd.mapping-config")]
    pub mapping_config: Option<PathBuf>,

    /// Size (in bytes) of the operating system's transmit read buffer
    /// associated with the UDP connection. Please make sure the kernel
    /// parameters net.core.rmem_max is set to a value greater than the value
    /// specified.
    #[arg(long = "statsd.read-buffer")]
    pub read_buffer: Option<usize>,

    /// Maximum size of your metric mapping cache. Relies on least recently
    /// used replacement policy if max size is reached.
    #[arg(long = "statsd.cache-size", default_value_t = 1000)]
    pub cache_size: usize,

    /// Metric mapping cache type.
    #[arg(long = "statsd.cache-type", value_enum, default_value = "lru")]
    pub cache_type: CacheType,

    /// Size of internal queue for processing events (accepted for
    /// compatibility).
    #[arg(long = "statsd.event-queue-size", default_value_t = 10000)]
    pub event_queue_size: usize,

    /// Number of events to hold in queue before flushing (accepted for
    /// compatibility).
    #[arg(long = "statsd.event-flush-threshold", default_value_t = 1000)]
    pub event_flush_threshold: usize,

    /// Maximum time between event queue flushes (accepted for
    /// compatibility).
    #[arg(long = "statsd.event-flush-interval", default_value = "200ms", value_parser = oxmon_core::parse_duration)]
    pub event_flush_interval: Duration,

    /// Size of internal queue for processing UDP packets.
    #[arg(long = "statsd.udp-packet-queue-size", default_value_t = 10000)]
    pub udp_packet_queue_size: usize,

    /// Parse DogStatsd style tags. Enabled by default.
    #[arg(long = "statsd.parse-dogstatsd-tags", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", overrides_with = "no_dogstatsd")]
    dogstatsd: bool,
    #[arg(
        long = "no-statsd.parse-dogstatsd-tags",
        hide = true,
        overrides_with = "dogstatsd"
    )]
    no_dogstatsd: bool,

    /// Parse InfluxDB style tags. Enabled by default.
    #[arg(long = "statsd.parse-influxdb-tags", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", overrides_with = "no_influxdb")]
    influxdb: bool,
    #[arg(
        long = "no-statsd.parse-influxdb-tags",
        hide = true,
        overrides_with = "influxdb"
    )]
    no_influxdb: bool,

    /// Parse Librato style tags. Enabled by default.
    #[arg(long = "statsd.parse-librato-tags", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", overrides_with = "no_librato")]
    librato: bool,
    #[arg(
        long = "no-statsd.parse-librato-tags",
        hide = true,
        overrides_with = "librato"
    )]
    no_librato: bool,

    /// Parse SignalFX style tags. Enabled by default.
    #[arg(long = "statsd.parse-signalfx-tags", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", overrides_with = "no_signalfx")]
    signalfx: bool,
    #[arg(
        long = "no-statsd.parse-signalfx-tags",
        hide = true,
        overrides_with = "signalfx"
    )]
    no_signalfx: bool,
}

impl StatsdArgs {
    /// Whether any listener is on; with none the sidecar runs without
    /// StatsD.
    pub fn enabled(&self) -> bool {
        !(self.listen_udp.is_empty()
            && self.listen_tcp.is_empty()
            && self.listen_unixgram.is_empty())
    }

    /// The tag styles the flags enable.
    pub fn tag_styles(&self) -> TagStyles {
        TagStyles {
            dogstatsd: self.dogstatsd && !self.no_dogstatsd,
            influxdb: self.influxdb && !self.no_influxdb,
            librato: self.librato && !self.no_librato,
            signalfx: self.signalfx && !self.no_signalfx,
        }
    }
}

/// Why the StatsD source could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// All listeners are off.
    #[error("at least one of the StatsD UDP, TCP or unixgram listeners must be enabled")]
    NoListener,
    /// A listener could not be set up.
    #[error("StatsD {what} listener on {address}: {message}")]
    Listen {
        /// udp, tcp or unixgram.
        what: &'static str,
        /// The address or path.
        address: String,
        /// Why.
        message: String,
    },
}

fn listen_error(what: &'static str, address: &str, message: impl ToString) -> StartError {
    StartError::Listen {
        what,
        address: address.to_string(),
        message: message.to_string(),
    }
}

/// Binds a listen address with `bind` (see [`crate::listen::bind`]).
fn bind_address<T>(
    what: &'static str,
    address: &str,
    bind: impl Fn(SocketAddr) -> std::io::Result<T>,
) -> Result<T, StartError> {
    crate::listen::bind(address, bind).map_err(|message| listen_error(what, address, message))
}

/// The running StatsD source: its self-metrics, and the way in for a new
/// mapping.
pub struct Handle {
    stats: Arc<Stats>,
    reload: Sender<Mapper>,
}

impl Handle {
    /// The self-metrics.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Hands a new mapping to the worker (applied before its next packet)
    /// and counts a successful reload.
    pub fn reconfigure(&self, mapper: Mapper) {
        // The worker only stops with the process.
        let _ = self.reload.send(mapper);
        self.stats.reloads_ok.fetch_add(1, Relaxed);
    }

    /// Counts a reload whose config was rejected (the mapping stays).
    pub fn reload_failed(&self) {
        self.stats.reloads_failed.fetch_add(1, Relaxed);
    }
}

/// Starts the listeners and the worker feeding `store` with `mapper`; must
/// run inside the Tokio runtime.
pub fn start(args: &StatsdArgs, mapper: Mapper, store: Arc<Store>) -> Result<Handle, StartError> {
    if !args.enabled() {
        return Err(StartError::NoListener);
    }
    let stats = Arc::new(Stats::default());
    let (queue, packets) = sync_channel::<Packet>(args.udp_packet_queue_size.max(1));
    let (recycle, recycled) = sync_channel::<Vec<u8>>(256);
    let (reload, reloads) = channel::<Mapper>();

    if !args.listen_udp.is_empty() {
        let socket = bind_address("udp", &args.listen_udp, UdpSocket::bind)?;
        if let Some(size) = args.read_buffer {
            rustix::net::sockopt::set_socket_recv_buffer_size(&socket, size)
                .map_err(|e| listen_error("udp", &args.listen_udp, e))?;
        }
        tracing::info!(address = %socket.local_addr().map(|a| a.to_string()).unwrap_or_default(), "accepting StatsD over UDP");
        let (queue, stats) = (queue.clone(), stats.clone());
        std::thread::Builder::new()
            .name("statsd-udp".into())
            .spawn(move || listener::udp_reader(socket, queue, recycled, stats))
            .map_err(|e| listen_error("udp", &args.listen_udp, e))?;
    }
    if !args.listen_tcp.is_empty() {
        let listener = bind_address("tcp", &args.listen_tcp, |sa| {
            let l = std::net::TcpListener::bind(sa)?;
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        })?;
        tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "accepting StatsD over TCP");
        tokio::spawn(listener::tcp_listener(
            listener,
            queue.clone(),
            stats.clone(),
        ));
    }
    if !args.listen_unixgram.is_empty() {
        let path = &args.listen_unixgram;
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(listen_error(
                "unixgram",
                path,
                "the socket file already exists",
            ));
        }
        let mode = u32::from_str_radix(&args.unixsocket_mode, 8).map_err(|e| {
            listen_error(
                "unixgram",
                path,
                format!("bad --statsd.unixsocket-mode: {e}"),
            )
        })?;
        let socket =
            tokio::net::UnixDatagram::bind(path).map_err(|e| listen_error("unixgram", path, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| listen_error("unixgram", path, e))?;
        }
        tracing::info!(path = %path, "accepting StatsD over unixgram");
        tokio::spawn(listener::unixgram_reader(
            socket,
            queue.clone(),
            stats.clone(),
        ));
    }
    drop(queue);

    let worker = Worker {
        packets,
        recycle,
        reloads,
        handler: Handler::new(mapper, args.cache_size, args.cache_type, stats.clone()),
        parser: Parser {
            styles: args.tag_styles(),
        },
        store,
        stats: stats.clone(),
    };
    std::thread::Builder::new()
        .name("statsd-worker".into())
        .spawn(move || worker.run())
        .map_err(|e| listen_error("worker", "-", e))?;
    Ok(Handle { stats, reload })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        statsd: StatsdArgs,
    }

    fn styles(args: &[&str]) -> TagStyles {
        let mut all = vec!["x"];
        all.extend_from_slice(args);
        Cli::parse_from(all).statsd.tag_styles()
    }

    #[test]
    fn flags_follow_statsd_exporter() {
        let cli = Cli::parse_from(["x"]);
        assert_eq!(cli.statsd.listen_udp, ":9125");
        assert_eq!(cli.statsd.listen_tcp, ":9125");
        assert_eq!(cli.statsd.listen_unixgram, "");
        assert_eq!(cli.statsd.cache_size, 1000);
        assert_eq!(cli.statsd.cache_type, CacheType::Lru);
        assert_eq!(cli.statsd.udp_packet_queue_size, 10000);
        assert_eq!(cli.statsd.event_flush_interval, Duration::from_millis(200));
        assert_eq!(styles(&[]), TagStyles::default());
        let off = styles(&[
            "--no-statsd.parse-influxdb-tags",
            "--statsd.parse-librato-tags=false",
        ]);
        assert!(off.dogstatsd && !off.influxdb && !off.librato && off.signalfx);
        // The last of a flag and its negation wins.
        assert!(
            styles(&[
                "--no-statsd.parse-signalfx-tags",
                "--statsd.parse-signalfx-tags"
            ])
            .signalfx
        );
        assert!(
            !styles(&[
                "--statsd.parse-signalfx-tags",
                "--no-statsd.parse-signalfx-tags"
            ])
            .signalfx
        );
        let cli = Cli::parse_from(["x", "--statsd.listen-tcp=", "--statsd.cache-type=random"]);
        assert_eq!(cli.statsd.listen_tcp, "");
        assert_eq!(cli.statsd.cache_type, CacheType::Random);
    }
}
