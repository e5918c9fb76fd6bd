//! Flags every oxmon exporter shares, spelled like the Go exporters'.
//!
//! Each binary flattens [`CommonArgs`] into its own `clap` parser:
//!
//! ```
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! #[command(version)]
//! struct Cli {
//!     #[command(flatten)]
//!     common: oxmon_core::CommonArgs,
//! }
//!
//! let cli = Cli::parse_from(["x", "--web.listen-address=:9999", "--log.format=json", "--scrape.timeout=2s"]);
//! assert_eq!(cli.common.web.listen_address, [":9999"]);
//! assert_eq!(cli.common.web.scrape_timeout, std::time::Duration::from_secs(2));
//! ```

use std::path::PathBuf;
use std::time::Duration;

/// HTTP serving flags.
#[derive(clap::Args, Debug, Clone)]
pub struct WebArgs {
    /// Addresses to listen on (`[host]:port`, repeatable); default: the
    /// exporter's own port on all addresses.
    #[arg(
        long = "web.listen-address",
        env = "OXMON_WEB_LISTEN_ADDRESS",
        value_delimiter = ','
    )]
    pub listen_address: Vec<String>,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        env = "OXMON_WEB_TELEMETRY_PATH",
        default_value = "/metrics"
    )]
    pub telemetry_path: String,

    /// Path to a web configuration file (exporter-toolkit format: TLS and
    /// basic auth), re-read when it changes.
    #[arg(long = "web.config.file", env = "OXMON_WEB_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Maximum number of parallel scrape requests; more are answered 503.
    /// 0 means no limit.
    #[arg(
        long = "web.max-requests",
        env = "OXMON_WEB_MAX_REQUESTS",
        default_value_t = 40
    )]
    pub max_requests: usize,

    /// Exclude the exporter's own metrics (process_*, build info).
    #[arg(
        long = "web.disable-exporter-metrics",
        env = "OXMON_WEB_DISABLE_EXPORTER_METRICS"
    )]
    pub disable_exporter_metrics: bool,

    /// Scrape deadline when the request carries no
    /// X-Prometheus-Scrape-Timeout-Seconds header.
    #[arg(long = "scrape.timeout", env = "OXMON_SCRAPE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub scrape_timeout: Duration,

    /// Margin subtracted from Prometheus' scrape timeout so the answer
    /// arrives before Prometheus gives up.
    #[arg(long = "scrape.timeout-offset", env = "OXMON_SCRAPE_TIMEOUT_OFFSET", default_value = "500ms", value_parser = parse_duration)]
    pub timeout_offset: Duration,

    /// Time allowed for a client to send its request headers.
    #[arg(long = "web.read-header-timeout", default_value = "10s", value_parser = parse_duration)]
    pub read_header_timeout: Duration,
}

/// Logging flags.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", env = "OXMON_LOG_LEVEL", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub level: String,

    /// Output format of log messages.
    #[arg(long = "log.format", env = "OXMON_LOG_FORMAT", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub format: String,
}

/// All shared flags.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// HTTP serving.
    #[command(flatten)]
    pub web: WebArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Threads serving requests and running collectors. 1 (the default)
    /// runs everything on one thread, which serves hundreds of scrapes a
    /// second and saves each extra thread's memory; blocking work always
    /// has its own threads.
    #[arg(long = "runtime.worker-threads", env = "OXMON_WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: u16,
}

/// A duration flag or field that could not be parsed; names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration")]
    Empty,
    /// A number without a unit (`10s5`).
    #[error("duration {0:?} lacks a unit")]
    MissingUnit(String),
    /// A number that does not parse.
    #[error("invalid number in duration {0:?}")]
    InvalidNumber(String),
    /// A unit other than ns, us, µs, ms, s, m, h, d.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// Negative, or too large.
    #[error("invalid duration {0:?}")]
    OutOfRange(String),
}

/// Parses a Go-style duration: `250ms`, `10s`, `1m30s`, `2h`, or a bare
/// number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, s);
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit(s.to_string()))?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num
            .parse()
            .map_err(|_| DurationError::InvalidNumber(s.to_string()))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    input: s.to_string(),
                })
            }
        };
        total += value * scale;
        rest = next;
    }
    secs_to_duration(total, s)
}

fn secs_to_duration(secs: f64, original: &str) -> Result<Duration, DurationError> {
    Duration::try_from_secs_f64(secs).map_err(|_| DurationError::OutOfRange(original.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10").is_ok());
        assert!(parse_duration("ten").is_err());
        assert_eq!(
            parse_duration("5y").unwrap_err().to_string(),
            "unknown unit \"y\" in duration \"5y\""
        );
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
    }
}
