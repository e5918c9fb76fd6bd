//! A small HTTP application for the end-to-end tests: plain or TLS (with an
//! optional client certificate check), replies per path that a test changes
//! between scrapes, the request headers it saw, and a stop/start on the same
//! port to play an app that goes down and comes back.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use oxmon_testkit::{free_port, wait_until, ExporterProcess, Exposition, TestCerts};

/// What the app answers on a path.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            content_type: "text/plain; version=0.0.4",
            ..Reply::json(status, body)
        }
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<HashMap<String, Reply>>,
    /// Request headers (lower-cased names) by path, last request.
    seen: Mutex<HashMap<String, Vec<(String, String)>>>,
}

/// TLS settings of the app.
#[derive(Clone)]
pub struct AppTls {
    config: Arc<rustls::ServerConfig>,
}

impl AppTls {
    /// Serves the test server certificate; with `client_ca`, a client
    /// certificate signed by it is required.
    pub fn new(certs: &TestCerts, require_client_cert: bool) -> AppTls {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&certs.server_cert_pem)
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&certs.server_key_pem).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&certs.ca_pem) {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        AppTls {
            config: Arc::new(builder.with_single_cert(chain, key).unwrap()),
        }
    }
}

/// The running app.
pub struct App {
    /// Its port on 127.0.0.1.
    pub port: u16,
    tls: Option<AppTls>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl App {
    /// A plain HTTP app on a free port.
    pub fn start() -> App {
        Self::start_on(free_port(), None, Arc::default())
    }

    /// A TLS app on a free port.
    pub fn start_tls(tls: AppTls) -> App {
        Self::start_on(free_port(), Some(tls), Arc::default())
    }

    fn start_on(port: u16, tls: Option<AppTls>, shared: Arc<Shared>) -> App {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop, tls) = (shared.clone(), stop.clone(), tls.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (shared, tls) = (shared.clone(), tls.clone());
                    std::thread::spawn(move || serve(stream, tls, &shared));
                }
            })
        };
        App {
            port,
            tls,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// Answers `path` with `reply` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.shared
            .replies
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// The headers of the last request for `path`.
    pub fn headers_seen(&self, path: &str) -> Vec<(String, String)> {
        self.shared
            .seen
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Stops listening: connections are refused until [`App::restart`].
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Listens again on the same port with the same replies.
    pub fn restart(&mut self) {
        let again = Self::start_on(self.port, self.tls.clone(), self.shared.clone());
        *self = again;
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

fn serve(stream: TcpStream, tls: Option<AppTls>, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    match tls {
        None => answer(stream, shared),
        Some(t) => {
            let Ok(conn) = rustls::ServerConnection::new(t.config.clone()) else {
                return;
            };
            answer(rustls::StreamOwned::new(conn, stream), shared);
        }
    }
}

fn answer<S: Read + Write>(stream: S, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let route = path.split('?').next().unwrap_or("/").to_string();
    shared.seen.lock().unwrap().insert(route.clone(), headers);
    let reply = shared.replies.lock().unwrap().get(&route).cloned();
    let reply = reply.unwrap_or_else(|| Reply::text(404, "not found\n"));
    std::thread::sleep(reply.delay);
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

/// The sidecar binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_oxmon-sidecar");

/// Starts the sidecar with `args`, StatsD over UDP only and (unless `args`
/// choose) on an ephemeral port, so tests run in parallel.
pub fn sidecar(args: &[&str]) -> ExporterProcess {
    let mut all = vec!["--statsd.listen-tcp="];
    if !args.iter().any(|a| a.starts_with("--statsd.listen-udp")) {
        all.push("--statsd.listen-udp=127.0.0.1:0");
    }
    all.extend_from_slice(args);
    ExporterProcess::start(BIN, &all, &[])
}

/// Scrapes until `check` accepts, or panics after 15 s with the last
/// scrape.
pub fn scrape_until(
    sidecar: &ExporterProcess,
    what: &str,
    mut check: impl FnMut(&Exposition) -> bool,
) -> Exposition {
    let mut last = None;
    let found = wait_until(Duration::from_secs(15), || {
        let m = sidecar.scrape();
        let ok = check(&m);
        last = Some(m);
        ok.then(|| last.clone())
    });
    match found.flatten() {
        Some(m) => m,
        None => panic!(
            "{what}: not seen in 15 s; last scrape:\n{:#?}\n--- log ---\n{}",
            last.map(|m| m.sample_names().join(" ")),
            sidecar.log()
        ),
    }
}

/// Every series of sample `name` as `label=value,…` → value, for exact
/// comparisons.
pub fn series(m: &Exposition, name: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = m
        .samples(name)
        .into_iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (labels.join(","), s.value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Expected series, in the order [`series`] gives them.
pub fn expect(list: &[(&str, f64)]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = list.iter().map(|(l, v)| (l.to_string(), *v)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
