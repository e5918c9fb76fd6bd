//! The HTTP tap: an optional reverse proxy in front of the application that
//! records what passes through it into the store, without the application
//! changing a line.
//!
//! Clients talk to the tap's listen address; each request goes to the
//! upstream (the application) over a pool of HTTP/1.1 keep-alive
//! connections, and the response comes back. Bodies stream through as they
//! arrive, never buffered whole (chunked uploads, large downloads);
//! `Upgrade` (WebSocket) is tunnelled after the `101`; client connections
//! are kept alive. An upstream that cannot be reached gives `502`. See
//! [`proxy`] for the headers.
//!
//! Metrics (all in the store, so the series cap and TTL apply):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram (`buckets`) | `method`, `route` |
//! | `http_request_size_bytes` | histogram (`size_buckets`), body bytes | `method`, `route` |
//! | `http_response_size_bytes` | histogram (`size_buckets`), body bytes | `method`, `route` |
//! | `http_requests_in_flight` | gauge | |
//!
//! - `route` is the first configured pattern the path matches, else
//!   `other` ([`crate::route`]); `method` is the standard method or `other`, so
//!   neither grows with what clients send.
//! - The duration runs from the request's headers to the last byte of the
//!   response body handed to the connection; for an upgrade, to the `101`.
//! - A request whose client goes away before the response headers is
//!   recorded with `status="499"` (nginx's code for it); a `CONNECT` gets
//!   `405`, a request target that is not a path `400`.
//! - A request with a W3C `traceparent` header gives its duration
//!   observation an exemplar `{trace_id="…"}` with the time, shown when
//!   Prometheus negotiates OpenMetrics (with
//!   `--enable-feature=exemplar-storage` it stores them).
//!
//! Flags (the one-line setup), and the config file section they build:
//!
//! | flag | YAML key | default |
//! |---|---|---|
//! | `--tap.listen-address` | `listen` | off; `:8080`, `127.0.0.1:8080` |
//! | `--tap.upstream` | `upstream` | required with a listen address; `http://127.0.0.1:8000` or `127.0.0.1:8000` |
//! | `--tap.route` (repeatable) | `routes` | none: every path is `other` |
//! | `--tap.buckets` (comma list) | `buckets` | `0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10` |
//! | `--tap.size-buckets` (comma list) | `size_buckets` | `100,1000,10000,100000,1e+06,1e+07,1e+08` |
//!
//! ```yaml
//! tap:
//!   listen: ":8080"
//!   upstream: "http://127.0.0.1:8000"
//!   routes:
//!     - /users/{id}
//!     - /v1/models/{model}:predict
//!     - /static/*
//!   buckets: [0.01, 0.05, 0.1, 0.5, 1, 5]
//!   size_buckets: [1000, 100000, 10000000]
//! ```
//!
//! [`Handle::reconfigure`] applies a new section: routes and the upstream at
//! once for new requests, a new listen address by binding it before the old
//! one closes (connections already open finish on the old one). The store
//! fixes a histogram's buckets when its first series is created, so changed
//! buckets take effect at the next restart.

pub mod proxy;
pub mod record;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::http::uri::{Authority, Scheme};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use oxmon_core::sync::LockExt;
use tokio::task::JoinHandle;

use self::proxy::UpstreamClient;
use self::record::Meter;
use crate::route::{PatternError, Routes};
use crate::store::Store;

/// Prometheus' default latency buckets.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Body size buckets: powers of ten from 100 B to 100 MB.
pub const DEFAULT_SIZE_BUCKETS: [f64; 7] = [100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

/// How long connecting to the upstream may take before the request gets 502.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The tap's flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TapArgs {
    /// Address of the HTTP tap, a reverse proxy in front of the application
    /// that records http_* metrics (":8080"). Empty: no tap.
    #[arg(
        id = "tap.listen-address",
        long = "tap.listen-address",
        default_value = ""
    )]
    pub listen_address: String,

    /// The application the tap forwards to ("http://127.0.0.1:8000").
    #[arg(id = "tap.upstream", long = "tap.upstream", default_value = "")]
    pub upstream: String,

    /// A route pattern ("/users/{id}", "/static/*"); repeatable, first match
    /// wins, unmatched paths are route="other".
    #[arg(id = "tap.route", long = "tap.route")]
    pub routes: Vec<String>,

    /// Buckets of http_request_duration_seconds, in seconds.
    #[arg(id = "tap.buckets", long = "tap.buckets", value_delimiter = ',', default_values_t = DEFAULT_BUCKETS)]
    pub buckets: Vec<f64>,

    /// Buckets of http_request_size_bytes and http_response_size_bytes.
    #[arg(id = "tap.size-buckets", long = "tap.size-buckets", value_delimiter = ',', default_values_t = DEFAULT_SIZE_BUCKETS)]
    pub size_buckets: Vec<f64>,
}

impl TapArgs {
    /// The section the flags describe; `None` when the tap is off.
    pub fn config(&self) -> Result<Option<TapConfig>, Error> {
        match (self.listen_address.is_empty(), self.upstream.is_empty()) {
            (true, true) => Ok(None),
            (false, true) => Err(Error::Incomplete(
                "--tap.listen-address needs --tap.upstream",
            )),
            (true, false) => Err(Error::Incomplete(
                "--tap.upstream needs --tap.listen-address",
            )),
            (false, false) => Ok(Some(TapConfig {
                listen: self.listen_address.clone(),
                upstream: self.upstream.clone(),
                routes: self.routes.clone(),
                buckets: self.buckets.clone(),
                size_buckets: self.size_buckets.clone(),
            })),
        }
    }
}

/// The `tap` section of the config file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapConfig {
    /// Listen address (`:8080`).
    pub listen: String,
    /// The application (`http://127.0.0.1:8000`).
    pub upstream: String,
    /// Route patterns, first match wins.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Latency buckets in seconds.
    #[serde(default = "default_buckets")]
    pub buckets: Vec<f64>,
    /// Body size buckets in bytes.
    #[serde(default = "default_size_buckets")]
    pub size_buckets: Vec<f64>,
}

fn default_buckets() -> Vec<f64> {
    DEFAULT_BUCKETS.to_vec()
}

fn default_size_buckets() -> Vec<f64> {
    DEFAULT_SIZE_BUCKETS.to_vec()
}

/// Why the tap could not start or take a new configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A route pattern is unusable.
    #[error("tap: {0}")]
    Route(#[from] PatternError),
    /// A bucket list is unusable.
    #[error("tap {key}: {reason}")]
    Buckets {
        /// `buckets` or `size_buckets`.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The upstream URL is unusable.
    #[error("tap upstream {upstream:?}: {reason}")]
    Upstream {
        /// The URL, credentials removed.
        upstream: String,
        /// What is wrong.
        reason: String,
    },
    /// The listen address cannot be bound.
    #[error("tap listener on {address}: {message}")]
    Listen {
        /// The address as given.
        address: String,
        /// Why.
        message: String,
    },
    /// One of the two flags is missing.
    #[error("{0}")]
    Incomplete(&'static str),
    /// `start` ran outside the Tokio runtime.
    #[error("the tap must be started inside the Tokio runtime")]
    NoRuntime,
}

/// A configuration, checked and compiled.
#[derive(Debug)]
pub struct Settings {
    upstream: Authority,
    routes: Routes,
    duration_buckets: Arc<[f64]>,
    size_buckets: Arc<[f64]>,
}

impl Settings {
    /// Checks and compiles a section.
    pub fn new(config: &TapConfig) -> Result<Settings, Error> {
        Ok(Settings {
            upstream: parse_upstream(&config.upstream)?,
            routes: Routes::new(&config.routes)?,
            duration_buckets: buckets("buckets", &config.buckets)?,
            size_buckets: buckets("size_buckets", &config.size_buckets)?,
        })
    }
}

/// Checks bucket bounds: strictly increasing numbers; a final `+Inf` is
/// implied and dropped when given.
fn buckets(key: &'static str, bounds: &[f64]) -> Result<Arc<[f64]>, Error> {
    let err = |reason| Error::Buckets { key, reason };
    let bounds = match bounds.split_last() {
        Some((last, rest)) if *last == f64::INFINITY => rest,
        _ => bounds,
    };
    if bounds.iter().any(|b| !b.is_finite()) {
        return Err(err("bounds must be numbers (+Inf only last)"));
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(err("bounds must increase"));
    }
    Ok(Arc::from(bounds))
}

/// The authority of an `http://host:port` upstream (a bare `host:port`
/// means http).
fn parse_upstream(upstream: &str) -> Result<Authority, Error> {
    let err = |reason: &str| Error::Upstream {
        upstream: redact(upstream),
        reason: reason.to_string(),
    };
    let full = if upstream.contains("://") {
        upstream.to_string()
    } else {
        format!("http://{upstream}")
    };
    let uri: Uri = full
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| err(&e.to_string()))?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(err("only http:// upstreams are supported"));
    }
    let authority = uri.authority().ok_or_else(|| err("no host"))?;
    if authority.as_str().contains('@') {
        return Err(err("credentials in the upstream URL are not supported"));
    }
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(err(
            "a path or query is not supported; give scheme, host and port",
        ));
    }
    Ok(authority.clone())
}

/// The URL with any `user:password@` replaced, for messages.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}***@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// What every request of a tap shares.
#[derive(Debug)]
pub struct Shared {
    meter: Arc<Meter>,
    client: UpstreamClient,
    settings: Mutex<Arc<Settings>>,
}

impl Shared {
    fn settings(&self) -> Arc<Settings> {
        self.settings.lock_unpoisoned().clone()
    }
}

/// A running tap. Dropping the handle leaves the tap running; [`Handle::stop`]
/// stops it.
#[derive(Debug)]
pub struct Handle {
    shared: Arc<Shared>,
    listener: Mutex<Listening>,
}

#[derive(Debug)]
struct Listening {
    address: String,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
}

/// Starts the tap on the current Tokio runtime, feeding `store`.
pub fn start(config: &TapConfig, store: Arc<Store>) -> Result<Handle, Error> {
    let settings = Settings::new(config)?;
    tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let client = Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .build(connector);
    let shared = Arc::new(Shared {
        meter: Arc::new(Meter::new(store)),
        client,
        settings: Mutex::new(Arc::new(settings)),
    });
    let listening = listen(&config.listen, shared.clone())?;
    Ok(Handle {
        shared,
        listener: Mutex::new(listening),
    })
}

impl Handle {
    /// The address the tap accepts connections on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.lock_unpoisoned().local_addr
    }

    /// Applies a new section; on error the running configuration stays.
    pub fn reconfigure(&self, config: &TapConfig) -> Result<(), Error> {
        let settings = Settings::new(config)?;
        let mut listener = self.listener.lock_unpoisoned();
        if listener.address != config.listen {
            let new = listen(&config.listen, self.shared.clone())?;
            std::mem::replace(&mut *listener, new).accept.abort();
        }
        *self.shared.settings.lock_unpoisoned() = Arc::new(settings);
        Ok(())
    }

    /// Stops accepting connections; requests already in progress finish.
    pub fn stop(self) {
        self.listener.lock_unpoisoned().accept.abort();
    }
}

/// Binds `address` and spawns the loop accepting connections on it.
fn listen(address: &str, shared: Arc<Shared>) -> Result<Listening, Error> {
    let listener = crate::listen::bind(address, |sa| {
        let l = std::net::TcpListener::bind(sa)?;
        l.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(l)
    })
    .map_err(|message| Error::Listen {
        address: address.to_string(),
        message,
    })?;
    let local_addr = listener.local_addr().map_err(|e| Error::Listen {
        address: address.to_string(),
        message: e.to_string(),
    })?;
    tracing::info!(address = %local_addr, "HTTP tap accepting connections");
    Ok(Listening {
        address: address.to_string(),
        local_addr,
        accept: tokio::spawn(accept_loop(listener, shared)),
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and such: wait rather than spin.
                tracing::warn!(err = %e, "tap: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| proxy::handle(shared.clone(), peer, req));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!(err = %e, "tap: client connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tap: TapArgs,
    }

    fn cli(args: &[&str]) -> TapArgs {
        let mut all = vec!["x"];
        all.extend_from_slice(args);
        Cli::parse_from(all).tap
    }

    #[test]
    fn flags_build_the_section() {
        assert_eq!(cli(&[]).config().unwrap(), None);
        let c = cli(&[
            "--tap.listen-address=:8080",
            "--tap.upstream=127.0.0.1:8000",
            "--tap.route=/users/{id}",
            "--tap.route=/static/*",
            "--tap.buckets=0.1,1",
        ])
        .config()
        .unwrap()
        .unwrap();
        assert_eq!(
            c,
            TapConfig {
                listen: ":8080".into(),
                upstream: "127.0.0.1:8000".into(),
                routes: vec!["/users/{id}".into(), "/static/*".into()],
                buckets: vec![0.1, 1.0],
                size_buckets: DEFAULT_SIZE_BUCKETS.to_vec(),
            }
        );
        assert!(matches!(
            cli(&["--tap.listen-address=:8080"]).config(),
            Err(Error::Incomplete(_))
        ));
        assert!(matches!(
            cli(&["--tap.upstream=http://a:1"]).config(),
            Err(Error::Incomplete(_))
        ));
    }

    #[test]
    fn yaml_section_parses_with_defaults_and_rejects_unknown_keys() {
        let c: TapConfig = serde_yaml::from_str(
            "listen: ':8080'\nupstream: http://127.0.0.1:8000\nroutes: ['/users/{id}', '/v1/models/{model}:predict']\n",
        )
        .unwrap();
        assert_eq!(c.routes, ["/users/{id}", "/v1/models/{model}:predict"]);
        assert_eq!(c.buckets, DEFAULT_BUCKETS);
        assert_eq!(c.size_buckets, DEFAULT_SIZE_BUCKETS);
        Settings::new(&c).unwrap();
        let e = serde_yaml::from_str::<TapConfig>("listen: ':8080'\nupstream: a:1\nroute: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `route`"), "{e}");
        let e = serde_yaml::from_str::<TapConfig>("listen: ':8080'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `upstream`"), "{e}");
    }

    #[test]
    fn bad_sections_are_rejected_with_what_is_wrong() {
        let section = |upstream: &str, routes: &[&str], buckets: &[f64]| TapConfig {
            listen: ":0".into(),
            upstream: upstream.into(),
            routes: routes.iter().map(|r| r.to_string()).collect(),
            buckets: buckets.to_vec(),
            size_buckets: DEFAULT_SIZE_BUCKETS.to_vec(),
        };
        let msg = |c: TapConfig| Settings::new(&c).unwrap_err().to_string();
        assert_eq!(
            msg(section("https://app:443", &[], &[1.0])),
            "tap upstream \"https://app:443\": only http:// upstreams are supported"
        );
        assert_eq!(
            msg(section("http://user:hunter2@app:80", &[], &[1.0])),
            "tap upstream \"http://***@app:80\": credentials in the upstream URL are not supported"
        );
        assert_eq!(
            msg(section("http://app:80/api", &[], &[1.0])),
            "tap upstream \"http://app:80/api\": a path or query is not supported; give scheme, host and port"
        );
        assert_eq!(
            msg(section("app:80", &["users"], &[1.0])),
            "tap: route pattern \"users\": must start with /"
        );
        assert_eq!(
            msg(section("app:80", &[], &[1.0, 1.0])),
            "tap buckets: bounds must increase"
        );
        assert_eq!(
            msg(section("app:80", &[], &[f64::NAN])),
            "tap buckets: bounds must be numbers (+Inf only last)"
        );
        let s = Settings::new(&section("app:80", &[], &[0.5, f64::INFINITY])).unwrap();
        assert_eq!(&*s.duration_buckets, [0.5]);
        assert_eq!(s.upstream, "app:80");
    }
}
