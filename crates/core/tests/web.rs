//! The server over real sockets: TLS with client certificates, basic auth,
//! web config reload, `--web.max-requests`, header-read timeout and
//! graceful shutdown. Certificates come from the testkit (`openssl`); every
//! web config used here is also checked with `promtool check web-config`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext};
use oxmon_core::server::{self, Service};
use oxmon_core::{gauge, Collector, Exporter, MetricFamily, Registry};
use oxmon_testkit::{http_get_tls, promtool, TestCerts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    web: oxmon_core::flags::WebArgs,
}

/// Answers after `delay`.
struct Sleepy(Duration);
impl Collector for Sleepy {
    fn name(&self) -> &str {
        "sleepy"
    }
    fn collect<'a>(
        &'a self,
        _: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            out.push(gauge("t_sleepy", "Slept.", 1.0));
            Ok(())
        })
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start(args: &[&str], delay: Duration) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut argv = vec!["t", "--web.listen-address=127.0.0.1:0"];
    argv.extend_from_slice(args);
    let web = Cli::parse_from(argv).web;
    let mut registry = Registry::new("t");
    registry.register(Arc::new(Sleepy(delay)));
    let svc = Service::new(
        Exporter {
            name: "oxmon-test",
            description: "Test exporter.",
            registry,
            routes: vec![],
        },
        web.clone(),
    )
    .unwrap();
    let listeners = server::bind(&web, 0).await.unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(svc, listeners, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn request(path: &str, extra_headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n")
}

/// Plain HTTP GET; returns (status, whole response text).
async fn get(addr: SocketAddr, path: &str, extra_headers: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request(path, extra_headers).as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    parse_status(buf)
}

fn parse_status(buf: Vec<u8>) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
    Ok((status, text))
}

/// HTTPS GET of /metrics through the testkit client, off the runtime.
async fn get_tls(
    addr: SocketAddr,
    certs: &Arc<TestCerts>,
    identity: Identity,
) -> Result<(u16, String), String> {
    let certs = Arc::clone(certs);
    tokio::task::spawn_blocking(move || {
        let id = match identity {
            Identity::None => None,
            Identity::Client => Some(certs.client_identity()),
            Identity::Rogue => Some(certs.rogue_identity()),
        };
        let url = format!("https://localhost:{}/metrics", addr.port());
        http_get_tls(&url, &certs.ca_pem, id, &[]).map(|r| {
            let headers: String = r
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect();
            (r.status, format!("{headers}\n{}", r.body))
        })
    })
    .await
    .unwrap()
}

#[derive(Clone, Copy)]
enum Identity {
    None,
    Client,
    Rogue,
}

fn promtool_accepts(path: &Path) {
    let file = path.to_str().unwrap();
    if let Err(e) = promtool(&["check", "web-config", file], "") {
        panic!("promtool rejects {file}: {e}");
    }
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_required_client_certificates() {
    let certs = Arc::new(TestCerts::generate());
    let cfg = write_config(
        certs.dir(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            certs.server_cert_file().display(),
            certs.server_key_file().display(),
            certs.ca_file().display()
        ),
    );
    promtool_accepts(&cfg);
    let arg = format!("--web.config.file={}", cfg.display());
    let srv = start(&[&arg], Duration::ZERO).await;
    let (status, text) = get_tls(srv.addr, &certs, Identity::Client).await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("t_sleepy 1"));
    assert!(text.to_ascii_lowercase().contains("x-frame-options: deny"));

    assert!(
        get_tls(srv.addr, &certs, Identity::None).await.is_err(),
        "no client cert must be refused"
    );
    assert!(
        get_tls(srv.addr, &certs, Identity::Rogue).await.is_err(),
        "a client cert from an untrusted CA must be refused"
    );
    assert!(
        get(srv.addr, "/metrics", "")
            .await
            .map(|(s, _)| s != 200)
            .unwrap_or(true),
        "plain HTTP must not be served"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_reload_keeping_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let alice = bcrypt::hash("alice-pw", 4).unwrap();
    let bob = bcrypt::hash("bob-pw", 4).unwrap();
    let cfg = write_config(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  alice: {alice}\n"),
    );
    promtool_accepts(&cfg);
    let arg = format!("--web.config.file={}", cfg.display());
    let srv = start(&[&arg], Duration::ZERO).await;
    let auth = |u: &str, p: &str| {
        use base64::Engine;
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };

    let (s, text) = get(srv.addr, "/metrics", "").await.unwrap();
    assert_eq!(s, 401);
    assert!(text.contains("WWW-Authenticate: Basic") || text.contains("www-authenticate: Basic"));
    assert_eq!(
        get(srv.addr, "/metrics", &auth("alice", "alice-pw"))
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        get(srv.addr, "/metrics", &auth("alice", "nope"))
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        get(srv.addr, "/metrics", &auth("bob", "bob-pw"))
            .await
            .unwrap()
            .0,
        401
    );

    std::fs::write(&cfg, format!("basic_auth_users:\n  bob: {bob}\n")).unwrap();
    promtool_accepts(&cfg);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(srv.addr, "/metrics", &auth("bob", "bob-pw"))
        .await
        .unwrap()
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "new web config not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        get(srv.addr, "/metrics", &auth("alice", "alice-pw"))
            .await
            .unwrap()
            .0,
        401
    );

    // A broken file keeps the last good config.
    std::fs::write(&cfg, "basic_auth_users: [this is: not valid\n").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        get(srv.addr, "/metrics", &auth("bob", "bob-pw"))
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(get(srv.addr, "/metrics", "").await.unwrap().0, 401);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_web_config_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
    );
    let web = Cli::parse_from(["t", &format!("--web.config.file={}", cfg.display())]).web;
    let err = Service::new(
        Exporter {
            name: "t",
            description: "t",
            registry: Registry::new("t"),
            routes: vec![],
        },
        web,
    )
    .err()
    .expect("a config naming missing files must be refused");
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_answers_503_beyond_the_limit() {
    let srv = start(&["--web.max-requests=1"], Duration::from_millis(800)).await;
    let addr = srv.addr;
    let first = tokio::spawn(async move { get(addr, "/metrics", "").await.unwrap().0 });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(addr, "/metrics", "").await.unwrap().0, 503);
    // Non-scrape endpoints are not limited.
    assert_eq!(get(addr, "/-/healthy", "").await.unwrap().0, 200);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(get(addr, "/metrics", "").await.unwrap().0, 200);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_deadline_from_prometheus_header() {
    let srv = start(&[], Duration::from_secs(30)).await;
    let started = Instant::now();
    let (status, text) = get(
        srv.addr,
        "/metrics",
        "X-Prometheus-Scrape-Timeout-Seconds: 1.5\r\n",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        text.contains("t_scrape_collector_success{collector=\"sleepy\"} 0"),
        "{text}"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_shutdown_is_graceful() {
    let srv = start(
        &["--web.read-header-timeout=500ms"],
        Duration::from_millis(1500),
    )
    .await;
    let addr = srv.addr;

    // A client that never finishes its headers is disconnected.
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        started.elapsed()
    });
    assert!(slow.join().unwrap() < Duration::from_secs(5));

    // An in-flight scrape completes during shutdown.
    let inflight = tokio::spawn(async move { get(addr, "/metrics", "").await.unwrap().0 });
    tokio::time::sleep(Duration::from_millis(300)).await;
    srv.shutdown().await;
    assert_eq!(inflight.await.unwrap(), 200);
    assert!(
        get(addr, "/metrics", "").await.is_err(),
        "listener must be closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_scrape_timeout_headers_are_clamped_not_fatal() {
    let srv = start(&["--scrape.timeout=2s"], Duration::ZERO).await;
    for value in [
        "1e19",
        "1e308",
        "99999999999999999999999",
        "NaN",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e-300",
        "junk",
    ] {
        let header = format!("X-Prometheus-Scrape-Timeout-Seconds: {value}\r\n");
        let (status, text) = get(srv.addr, "/metrics", &header)
            .await
            .unwrap_or_else(|e| panic!("timeout header {value}: no answer: {e}"));
        assert_eq!(status, 200, "timeout header {value}: {text}");
    }
    // Other request values with absurd numbers are taken in stride too.
    let (status, _) = get(
        srv.addr,
        "/metrics?collect[]=sleepy&exclude[]=",
        "Accept: application/openmetrics-text;q=NaN;version=1.0.0, text/plain;q=1e40\r\nAccept-Encoding: gzip;q=inf, *;q=-1\r\n",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    // The request task survived: the server still answers.
    assert_eq!(get(srv.addr, "/-/healthy", "").await.unwrap().0, 200);
    srv.shutdown().await;
}

/// HTTPS GET of /metrics trusting only `ca_pem`: `Ok` when the server's
/// certificate chains to it.
async fn get_tls_trusting(addr: SocketAddr, ca_pem: Vec<u8>) -> Result<u16, String> {
    tokio::task::spawn_blocking(move || {
        let url = format!("https://localhost:{}/metrics", addr.port());
        http_get_tls(&url, &ca_pem, None, &[]).map(|r| r.status)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_renewed_by_rename_is_served_on_the_next_handshake() {
    let old = TestCerts::generate();
    // Another PKI: its server certificate chains only to its own CA.
    let renewed = TestCerts::generate();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, &old.server_cert_pem).unwrap();
    std::fs::write(&key, &old.server_key_pem).unwrap();
    let cfg = write_config(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
    );
    let arg = format!("--web.config.file={}", cfg.display());
    let srv = start(&[&arg], Duration::ZERO).await;
    assert_eq!(
        get_tls_trusting(srv.addr, old.ca_pem.clone()).await,
        Ok(200)
    );
    assert!(get_tls_trusting(srv.addr, renewed.ca_pem.clone())
        .await
        .is_err());

    // As cert-manager and certbot do: write aside, rename over. The YAML
    // does not change.
    for (path, pem) in [
        (&cert, &renewed.server_cert_pem),
        (&key, &renewed.server_key_pem),
    ] {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, pem).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    assert_eq!(
        get_tls_trusting(srv.addr, renewed.ca_pem.clone()).await,
        Ok(200),
        "the renewed certificate is served at once"
    );
    assert!(get_tls_trusting(srv.addr, old.ca_pem.clone())
        .await
        .is_err());

    // A half-written pair (a key that does not match) keeps the last good
    // certificate.
    std::fs::write(&key, &old.server_key_pem).unwrap();
    assert_eq!(
        get_tls_trusting(srv.addr, renewed.ca_pem.clone()).await,
        Ok(200)
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_web_config_keeps_the_running_one_and_empty_at_start_is_plain() {
    let dir = tempfile::tempdir().unwrap();
    let alice = bcrypt::hash("alice-pw", 4).unwrap();
    let cfg = write_config(
        dir.path(),
        "web.yml",
        &format!("basic_auth_users:\n  alice: {alice}\n"),
    );
    let arg = format!("--web.config.file={}", cfg.display());
    let srv = start(&[&arg], Duration::ZERO).await;
    assert_eq!(get(srv.addr, "/metrics", "").await.unwrap().0, 401);
    // A deploy tool truncates the file before writing it.
    std::fs::write(&cfg, "").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        get(srv.addr, "/metrics", "").await.unwrap().0,
        401,
        "an emptied web config must not drop basic auth"
    );
    srv.shutdown().await;

    // At start-up an empty file means no TLS and no auth, as in the Go
    // toolkit.
    let empty = write_config(dir.path(), "empty.yml", "\n");
    let arg = format!("--web.config.file={}", empty.display());
    let srv = start(&[&arg], Duration::ZERO).await;
    assert_eq!(get(srv.addr, "/metrics", "").await.unwrap().0, 200);
    srv.shutdown().await;
}
