//! The HTTP server: `/metrics` (configurable), extra metric routes such as
//! `/probe` or `/scrape`, the landing page, `/-/healthy` and `/-/ready`;
//! TLS and basic auth from the web config; `--web.max-requests`; header
//! read timeout; graceful shutdown on SIGTERM/SIGINT.
//!
//! [`handle`] is a plain function from request to response, so tests can
//! drive the service without a socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::collector::{BoxFuture, Registry, ScrapeContext, Selection, MAX_SCRAPE_TIMEOUT};
use crate::encode::{encode, Format};
use crate::flags::WebArgs;
use crate::metrics::{extend_normalized, normalize, MetricFamily};
use crate::web_config::WebConfigWatcher;

/// An error a route answers with: status and a message safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status code.
    pub status: u16,
    /// Plain-text body. Never put a secret here.
    pub message: String,
}

impl HttpError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError {
            status: 400,
            message: message.into(),
        }
    }
    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        HttpError {
            status: 403,
            message: message.into(),
        }
    }
}

/// What a metric route receives.
#[derive(Debug, Clone)]
pub struct RouteRequest {
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The scrape deadline.
    pub ctx: ScrapeContext,
}

impl RouteRequest {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An extra endpoint that answers with metric families (multi-target
/// `/probe`, `/scrape`). The server handles auth, limits, encoding and
/// compression.
pub trait Route: Send + Sync {
    /// Produces the families for one request.
    fn handle<'a>(
        &'a self,
        req: &'a RouteRequest,
    ) -> BoxFuture<'a, Result<Vec<MetricFamily>, HttpError>>;
}

/// Everything the server needs to know about one exporter.
pub struct Exporter {
    /// Program name, e.g. `oxmon-node`.
    pub name: &'static str,
    /// One line for the landing page.
    pub description: &'static str,
    /// The collectors behind the telemetry path.
    pub registry: Registry,
    /// Extra metric routes: `(path, handler, landing-page description)`.
    pub routes: Vec<(String, Arc<dyn Route>, String)>,
}

struct State {
    exporter: Exporter,
    web: WebArgs,
    limiter: Option<Semaphore>,
    config: Arc<WebConfigWatcher>,
    self_metrics: crate::process::SelfMetrics,
    last_size: AtomicUsize,
}

/// A running server's shared state, built once.
#[derive(Clone)]
pub struct Service(Arc<State>);

impl Service {
    /// Builds the service; fails when the web config file is broken.
    pub fn new(
        exporter: Exporter,
        web: WebArgs,
    ) -> Result<Self, crate::web_config::WebConfigError> {
        let config = WebConfigWatcher::new(web.config_file.clone())?;
        let limiter = (web.max_requests > 0).then(|| Semaphore::new(web.max_requests));
        let self_metrics = crate::process::SelfMetrics::new(exporter.registry.namespace());
        Ok(Service(Arc::new(State {
            exporter,
            web,
            limiter,
            config,
            self_metrics,
            last_size: AtomicUsize::new(4096),
        })))
    }

    /// The web config holder (for reload tests).
    pub fn web_config(&self) -> &Arc<WebConfigWatcher> {
        &self.0.config
    }

    /// What SIGHUP does: re-reads the web config (when it changed; a broken
    /// or empty file keeps the running one) and runs the registry's reload
    /// hooks, on a blocking thread, logging each outcome.
    pub async fn reload(&self) {
        let state = Arc::clone(&self.0);
        let reloading = tokio::task::spawn_blocking(move || {
            state.config.reload();
            for (name, hook) in state.exporter.registry.reload_hooks() {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook())) {
                    Ok(Ok(())) => tracing::info!(hook = %name, "reloaded"),
                    Ok(Err(e)) => {
                        tracing::error!(hook = %name, err = %e, "reload failed; keeping what was loaded")
                    }
                    Err(_) => {
                        tracing::error!(hook = %name, "reload panicked; keeping what was loaded")
                    }
                }
            }
        });
        let _ = reloading.await;
    }
}

type Resp = Response<Full<Bytes>>;

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Answers one request.
pub async fn handle<B>(svc: &Service, req: Request<B>) -> Resp {
    let state = &svc.0;
    let config = state.config.current();
    let mut resp = if config.auth_required() {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cfg = Arc::clone(&config);
        let ok = tokio::task::spawn_blocking(move || cfg.check_basic_auth(header.as_deref()))
            .await
            .unwrap_or(false);
        if ok {
            route(state, &req).await
        } else {
            let mut r = text_response(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic"),
            );
            r
        }
    } else {
        route(state, &req).await
    };
    for (k, v) in &config.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

async fn route<B>(state: &State, req: &Request<B>) -> Resp {
    let path = req.uri().path();
    if path == state.web.telemetry_path {
        return metrics(state, req, None).await;
    }
    if let Some((_, r, _)) = state.exporter.routes.iter().find(|(p, _, _)| p == path) {
        return metrics(state, req, Some(r.as_ref())).await;
    }
    match path {
        "/" => landing(state),
        "/-/healthy" => text_response(StatusCode::OK, "Healthy\n"),
        "/-/ready" => text_response(StatusCode::OK, "Ready\n"),
        _ => text_response(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

fn landing(state: &State) -> Resp {
    let e = &state.exporter;
    let mut links = format!(
        "<li><a href=\"{p}\">{p}</a> metrics</li>",
        p = html_escape(&state.web.telemetry_path)
    );
    for (p, _, desc) in &e.routes {
        links.push_str(&format!(
            "<li><code>{}</code> {}</li>",
            html_escape(p),
            html_escape(desc)
        ));
    }
    links.push_str(
        "<li><a href=\"/-/healthy\">/-/healthy</a></li><li><a href=\"/-/ready\">/-/ready</a></li>",
    );
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name}</title></head>\n<body><h1>{name}</h1><p>{desc}</p><p>Version {ver} (revision {rev})</p><ul>{links}</ul></body></html>\n",
        name = html_escape(e.name),
        desc = html_escape(e.description),
        ver = crate::process::VERSION,
        rev = crate::process::REVISION,
    );
    let mut r = text_response(StatusCode::OK, body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The deadline for a scrape: Prometheus' timeout header minus the offset,
/// else the flag default. The header is untrusted: a value that is not a
/// positive number (NaN, infinite, negative, zero, junk) is ignored, and a
/// huge one is cut to [`MAX_SCRAPE_TIMEOUT`].
fn scrape_timeout(web: &WebArgs, header: Option<&str>) -> Duration {
    let from_header = header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_SCRAPE_TIMEOUT.as_secs_f64())));
    match from_header {
        Some(t) if t > web.timeout_offset * 2 => t - web.timeout_offset,
        Some(t) => t.mul_f64(0.75),
        None => web.scrape_timeout,
    }
}

async fn metrics<B>(state: &State, req: &Request<B>, route: Option<&dyn Route>) -> Resp {
    let _permit = match &state.limiter {
        Some(sem) => match sem.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                return text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Limit of concurrent requests reached ({}), try again later.\n",
                        state.web.max_requests
                    ),
                )
            }
        },
        None => None,
    };
    let headers = req.headers();
    let timeout = scrape_timeout(
        &state.web,
        headers
            .get("X-Prometheus-Scrape-Timeout-Seconds")
            .and_then(|v| v.to_str().ok()),
    );
    let ctx = ScrapeContext::with_timeout(timeout);
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();

    let mut families = match route {
        None => {
            let sel = Selection::from_query(&query);
            let sel = (!sel.include.is_empty() || !sel.exclude.is_empty()).then_some(sel);
            match state.exporter.registry.gather(&ctx, sel.as_ref()).await {
                Ok(f) => f,
                Err(e) => return text_response(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        }
        Some(r) => {
            let rr = RouteRequest { query, ctx };
            // A bug in a route answers 500 instead of dropping the connection.
            let handled = std::panic::AssertUnwindSafe(r.handle(&rr))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!(path = req.uri().path(), "route handler panicked");
                    Err(HttpError {
                        status: 500,
                        message: "internal error".into(),
                    })
                });
            match handled {
                Ok(mut f) => {
                    normalize(&mut f);
                    f
                }
                Err(e) => {
                    let status =
                        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return text_response(status, format!("{}\n", e.message));
                }
            }
        }
    };
    if route.is_none() && !state.web.disable_exporter_metrics {
        extend_normalized(&mut families, state.self_metrics.collect());
    }

    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let mut body = Vec::with_capacity(state.last_size.load(Ordering::Relaxed) + 1024);
    encode(&families, format, &mut body);
    state.last_size.store(body.len(), Ordering::Relaxed);

    let gzip = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let mut resp = if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        let gz = std::io::Write::write_all(&mut enc, &body).and_then(|_| enc.finish());
        match gz {
            Ok(gz) => {
                let mut r = Response::new(Full::new(Bytes::from(gz)));
                r.headers_mut()
                    .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(_) => Response::new(Full::new(Bytes::from(body))),
        }
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or("");
        let q = it
            .find_map(|p| p.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
    })
}

/// A listen address that cannot be used; names the address.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address does not parse or resolve.
    #[error("invalid listen address {address:?}: {source}")]
    Invalid {
        /// The address as given.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The address resolves to no socket address.
    #[error("listen address {0:?} resolves to nothing")]
    Unresolved(String),
    /// Binding failed (address in use, permission denied).
    #[error("listening on {address}: {source}")]
    Bind {
        /// The address as given.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Parses a listen address: `:9100`, `0.0.0.0:9100`, `[::1]:9100`,
/// `localhost:9100`.
pub fn parse_listen_address(addr: &str) -> Result<Vec<SocketAddr>, ListenError> {
    use std::net::ToSocketAddrs;
    let full = if addr.starts_with(':') {
        format!("[::]{addr}")
    } else {
        addr.to_string()
    };
    let resolved: Vec<SocketAddr> = full
        .to_socket_addrs()
        .map_err(|source| ListenError::Invalid {
            address: addr.to_string(),
            source,
        })?
        .collect();
    if resolved.is_empty() {
        return Err(ListenError::Unresolved(addr.to_string()));
    }
    Ok(resolved)
}

/// Binds every listen address (a `:port` address binds all IPv6 and IPv4
/// addresses, falling back to IPv4 only when IPv6 is unavailable).
pub async fn bind(web: &WebArgs, default_port: u16) -> Result<Vec<TcpListener>, ListenError> {
    let addrs = if web.listen_address.is_empty() {
        vec![format!(":{default_port}")]
    } else {
        web.listen_address.clone()
    };
    let mut listeners = Vec::new();
    for a in &addrs {
        let resolved = parse_listen_address(a)?;
        let mut last_err = None;
        let mut bound = false;
        for sa in resolved {
            match TcpListener::bind(sa).await {
                Ok(l) => {
                    listeners.push(l);
                    bound = true;
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        if !bound && a.starts_with(':') {
            let v4 = format!("0.0.0.0{a}");
            match TcpListener::bind(&v4).await {
                Ok(l) => {
                    listeners.push(l);
                    bound = true;
                }
                Err(e) => last_err = Some(e),
            }
        }
        if !bound {
            return Err(ListenError::Bind {
                address: a.clone(),
                source: last_err.unwrap_or_else(|| std::io::Error::other("no address to bind")),
            });
        }
    }
    Ok(listeners)
}

/// Serves on the listeners until `shutdown` completes, then lets in-flight
/// requests finish (up to 10 s).
pub async fn serve(
    svc: Service,
    listeners: Vec<TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    svc.0.config.spawn_reloader(Duration::from_secs(2));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let mut tasks = Vec::new();
    for l in listeners {
        if let Ok(a) = l.local_addr() {
            tracing::info!(address = %a, tls = svc.0.config.current().tls.is_some(), "listening");
        }
        let svc = svc.clone();
        let mut stop = stop_rx.clone();
        let graceful = Arc::clone(&graceful);
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = l.accept() => match accepted {
                        Ok((stream, _peer)) => spawn_connection(svc.clone(), stream, &graceful),
                        Err(e) => {
                            tracing::warn!(err = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Ok(g) = Arc::try_unwrap(graceful) {
        let _ = tokio::time::timeout(Duration::from_secs(10), g.shutdown()).await;
    }
}

fn spawn_connection(
    svc: Service,
    stream: tokio::net::TcpStream,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let tls = svc.0.config.current().tls.clone();
    let header_timeout = svc.0.web.read_header_timeout;
    let watcher = graceful.watcher();
    tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let svc = svc.clone();
            async move { Ok::<_, Infallible>(handle(&svc, req).await) }
        });
        match tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(conn).await;
            }
            Some(cfg) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                    Ok(Err(e)) => tracing::debug!(err = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            }
        }
    });
}

/// Reloads `svc` on every SIGHUP (see [`Service::reload`]) instead of
/// letting SIGHUP end the process. The handler is installed before this
/// returns, so a SIGHUP sent once the server answers cannot kill it.
pub fn reload_on_hangup(svc: Service) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(err = %e, "cannot handle SIGHUP; it will end the process");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the web config and reloadable files");
            svc.reload().await;
        }
    });
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::sync_collector;
    use crate::collector::{CollectResult, SyncCollector};
    use clap::Parser;

    struct One;
    impl SyncCollector for One {
        fn name(&self) -> &'static str {
            "one"
        }
        fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
            out.push(crate::metrics::gauge("t_one", "One.", 1.0));
            Ok(())
        }
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        web: WebArgs,
    }

    fn svc(args: &[&str]) -> Service {
        let mut argv = vec!["t"];
        argv.extend_from_slice(args);
        let web = Cli::parse_from(argv).web;
        let mut registry = Registry::new("t");
        registry.register(sync_collector(One));
        Service::new(
            Exporter {
                name: "oxmon-test",
                description: "Test <exporter>.",
                registry,
                routes: vec![],
            },
            web,
        )
        .unwrap()
    }

    async fn body(r: Resp) -> String {
        use http_body_util::BodyExt;
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    fn get(path: &str) -> Request<()> {
        Request::get(path).body(()).unwrap()
    }

    #[tokio::test]
    async fn routes_and_formats() {
        let s = svc(&[]);
        let r = handle(&s, get("/metrics")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()[CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let b = body(r).await;
        assert!(b.contains("\nt_one 1\n"));
        assert!(b.contains("t_scrape_collector_success{collector=\"one\"} 1\n"));
        assert!(b.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(b.contains("t_exporter_build_info{"));

        let r = handle(
            &s,
            Request::get("/metrics")
                .header(ACCEPT, "application/openmetrics-text;version=1.0.0")
                .header(ACCEPT_ENCODING, "gzip")
                .body(())
                .unwrap(),
        )
        .await;
        assert_eq!(
            r.headers()[CONTENT_TYPE],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");

        let r = handle(&s, get("/")).await;
        let b = body(r).await;
        assert!(b.contains("Test &lt;exporter&gt;."));
        assert_eq!(handle(&s, get("/-/healthy")).await.status(), 200);
        assert_eq!(handle(&s, get("/-/ready")).await.status(), 200);
        assert_eq!(handle(&s, get("/nope")).await.status(), 404);
        assert_eq!(
            handle(&s, get("/metrics?collect[]=zzz")).await.status(),
            400
        );

        let s = svc(&["--web.disable-exporter-metrics", "--web.telemetry-path=/m"]);
        let b = body(handle(&s, get("/m")).await).await;
        assert!(!b.contains("process_"));
        assert!(b.contains("t_one 1"));
    }

    struct Panics;
    impl Route for Panics {
        fn handle<'a>(
            &'a self,
            _: &'a RouteRequest,
        ) -> BoxFuture<'a, Result<Vec<MetricFamily>, HttpError>> {
            Box::pin(async { panic!("bug in a route") })
        }
    }

    #[tokio::test]
    async fn panicking_route_answers_500() {
        let web = Cli::parse_from(["t"]).web;
        let s = Service::new(
            Exporter {
                name: "t",
                description: "t",
                registry: Registry::new("t"),
                routes: vec![("/probe".into(), Arc::new(Panics), "probe".into())],
            },
            web,
        )
        .unwrap();
        assert_eq!(handle(&s, get("/probe?target=x")).await.status(), 500);
        assert_eq!(handle(&s, get("/-/healthy")).await.status(), 200);
    }

    #[test]
    fn timeout_from_header() {
        let web = Cli::parse_from(["t"]).web;
        assert_eq!(scrape_timeout(&web, None), Duration::from_secs(10));
        assert_eq!(scrape_timeout(&web, Some("5")), Duration::from_millis(4500));
        assert_eq!(
            scrape_timeout(&web, Some("0.5")),
            Duration::from_millis(375)
        );
        assert_eq!(scrape_timeout(&web, Some("junk")), Duration::from_secs(10));
        assert_eq!(scrape_timeout(&web, Some("NaN")), Duration::from_secs(10));
        assert_eq!(scrape_timeout(&web, Some("-3")), Duration::from_secs(10));
        assert_eq!(
            scrape_timeout(&web, Some("1e19")),
            MAX_SCRAPE_TIMEOUT - web.timeout_offset
        );
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn listen_addresses() {
        assert!(parse_listen_address(":9100").unwrap()[0]
            .ip()
            .is_unspecified());
        assert_eq!(parse_listen_address("127.0.0.1:1").unwrap()[0].port(), 1);
        assert!(parse_listen_address("nonsense").is_err());
    }
}
