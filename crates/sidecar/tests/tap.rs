//! End to end: the real `oxmon-sidecar` binary with its HTTP tap in front of
//! a small HTTP application run by the test, clients speaking raw HTTP/1.1
//! over TCP, and `/metrics` checked value by value.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use oxmon_testkit::{free_port, wait_until, ExporterProcess, Exposition, Prometheus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

const BIN: &str = env!("CARGO_BIN_EXE_oxmon-sidecar");

const ROUTES: &[&str] = &[
    "/users/{id}",
    "/v1/models/{model}:predict",
    "/static/*",
    "/status/{code}",
    "/upload",
    "/download",
    "/ws",
    "/hold",
    "/echo-headers",
];

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

// ---------------------------------------------------------------------------
// The application behind the tap.

/// What the application saw.
#[derive(Default)]
struct AppState {
    /// Peer address of the connection each request came on (the tap's
    /// upstream connections).
    peers: Mutex<Vec<SocketAddr>>,
    /// Body bytes of `/upload` received so far.
    upload_received: AtomicUsize,
    /// The last complete `/upload` body.
    upload: Mutex<Vec<u8>>,
    /// Whether `/upload` arrived chunked.
    upload_chunked: AtomicBool,
    /// Lets `/hold` answer and `/download` finish.
    release: Notify,
}

type AppBody = BoxBody<Bytes, Infallible>;

/// A response body fed through a channel, so the application can pause
/// in the middle of it.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn text(status: u16, body: impl Into<Bytes>) -> Response<AppBody> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp
}

async fn app(
    state: Arc<AppState>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<AppBody>, Infallible> {
    state.peers.lock().unwrap().push(peer);
    let path = req.uri().path().to_string();
    let resp = match path.as_str() {
        "/upload" => {
            state.upload_chunked.store(
                req.headers()
                    .get("transfer-encoding")
                    .is_some_and(|v| v == "chunked"),
                SeqCst,
            );
            state.upload_received.store(0, SeqCst);
            let mut body = req.into_body();
            let mut got = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    state.upload_received.fetch_add(data.len(), SeqCst);
                    got.extend_from_slice(&data);
                }
            }
            let n = got.len();
            *state.upload.lock().unwrap() = got;
            text(200, format!("received {n}"))
        }
        "/download" => {
            let (tx, rx) = mpsc::channel(4);
            let state = state.clone();
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"first-part")).await.unwrap();
                state.release.notified().await;
                for _ in 0..3 {
                    tx.send(Bytes::from(vec![b'x'; 100_000])).await.unwrap();
                }
            });
            Response::new(ChannelBody(rx).boxed())
        }
        "/hold" => {
            state.release.notified().await;
            text(200, "released")
        }
        "/ws" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(on_upgrade.await.unwrap());
                let mut buf = [0; 4096];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let reply: Vec<u8> = buf[..n].to_ascii_uppercase();
                            if io.write_all(&reply).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            let mut resp = text(101, "");
            resp.headers_mut()
                .insert("upgrade", "shout".parse().unwrap());
            resp.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            resp
        }
        "/echo-headers" => {
            let mut lines: Vec<String> = req
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                .collect();
            lines.sort();
            let mut resp = text(200, lines.join("\n"));
            let h = resp.headers_mut();
            h.insert("x-resp-hop", "1".parse().unwrap());
            h.insert("connection", "x-resp-hop".parse().unwrap());
            h.insert("keep-alive", "timeout=5".parse().unwrap());
            h.insert("x-app", "kept".parse().unwrap());
            resp
        }
        p if p.starts_with("/status/") => text(p[8..].parse().unwrap_or(400), "status"),
        // The query travels with the path.
        p if p.starts_with("/users/") => {
            let target = req.uri().path_and_query().unwrap().as_str();
            text(200, format!("user {}", &target[7..]))
        }
        _ => text(200, "ok"),
    };
    Ok(resp)
}

/// The application on a free port, served by its own runtime (stopped on
/// drop).
struct App {
    port: u16,
    state: Arc<AppState>,
    _runtime: tokio::runtime::Runtime,
}

impl App {
    fn start() -> App {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(AppState::default());
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| app(state.clone(), peer, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        App {
            port,
            state,
            _runtime: runtime,
        }
    }

    fn upstream_connections(&self) -> usize {
        let peers = self.state.peers.lock().unwrap();
        peers.iter().collect::<BTreeSet<_>>().len()
    }
}

// ---------------------------------------------------------------------------
// The sidecar and a raw HTTP/1.1 client.

struct Tap {
    sidecar: ExporterProcess,
    port: u16,
}

impl Tap {
    /// A sidecar whose tap forwards to `upstream_port`.
    fn start(upstream_port: u16, extra: &[&str]) -> Tap {
        let port = free_port();
        let mut args = vec![
            "--statsd.listen-udp=127.0.0.1:0".to_string(),
            "--statsd.listen-tcp=".to_string(),
            format!("--tap.listen-address=127.0.0.1:{port}"),
            format!("--tap.upstream=http://127.0.0.1:{upstream_port}"),
        ];
        args.extend(ROUTES.iter().map(|r| format!("--tap.route={r}")));
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sidecar = ExporterProcess::start(BIN, &args, &[]);
        wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("the tap listens");
        Tap { sidecar, port }
    }

    fn connect(&self) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// Scrapes until `check` holds (the exchange is recorded as the response
    /// body ends, which can be a moment after the client has it).
    fn scrape_until(&self, what: &str, check: impl Fn(&Exposition) -> bool) -> Exposition {
        wait_until(Duration::from_secs(10), || {
            let m = self.sidecar.scrape();
            check(&m).then_some(m)
        })
        .unwrap_or_else(|| {
            panic!(
                "{what}; last scrape:\n{}",
                self.sidecar.get("/metrics").body
            )
        })
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Sends a request with a `Content-Length` body and reads the response.
    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: app.test\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        self.send(head.as_bytes());
        self.send(body);
        self.response(method == "HEAD")
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "truncated line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Reads a status line and headers.
    fn head(&mut self) -> Resp {
        let status_line = self.line();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        Resp {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// Reads one chunk of a chunked body; empty at the end.
    fn chunk(&mut self) -> Vec<u8> {
        let size = usize::from_str_radix(self.line().split(';').next().unwrap(), 16).unwrap();
        let mut data = vec![0; size];
        self.reader.read_exact(&mut data).unwrap();
        // The CRLF after the data (after the last chunk: no trailers).
        assert_eq!(self.line(), "");
        data
    }

    /// Sends one chunk of a chunked request body.
    fn send_chunk(&mut self, data: &[u8]) {
        self.send(format!("{:x}\r\n", data.len()).as_bytes());
        self.send(data);
        self.send(b"\r\n");
    }

    fn response(&mut self, head_request: bool) -> Resp {
        let mut resp = self.head();
        let no_body =
            head_request || resp.status == 101 || resp.status == 204 || resp.status == 304;
        if no_body {
            return resp;
        }
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let chunk = self.chunk();
                if chunk.is_empty() {
                    break;
                }
                resp.body.extend_from_slice(&chunk);
            }
        } else if let Some(len) = resp.header("content-length") {
            resp.body = vec![0; len.parse().unwrap()];
            self.reader.read_exact(&mut resp.body).unwrap();
        } else {
            self.reader.read_to_end(&mut resp.body).unwrap();
        }
        resp
    }
}

fn value(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m.value(name, labels)
}

/// A deterministic body of `n` bytes.
fn pattern(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------

#[test]
fn keep_alive_routes_statuses_and_sizes_are_counted_exactly() {
    let app = App::start();
    let tap = Tap::start(app.port, &["--log.level=debug"]);
    let mut conn = tap.connect();
    let mut statuses = Vec::new();
    for (method, path) in [
        ("GET", "/users/1"),
        ("GET", "/users/2"),
        ("GET", "/users/3?verbose=1"),
        ("HEAD", "/users/1"),
        ("GET", "/v1/models/resnet:predict"),
        ("GET", "/static/css/site.css"),
        ("GET", "/status/500"),
        ("GET", "/status/503"),
        ("GET", "/status/404"),
        ("GET", "/not/a/route"),
        ("GET", "/users/1/"),
        ("PROPFIND", "/users/1"),
    ] {
        let resp = conn.request(method, path, &[], b"");
        statuses.push(resp.status);
        if method == "GET" && path.starts_with("/users/") && !path.ends_with('/') {
            assert_eq!(resp.text(), format!("user {}", &path[7..]));
        }
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 500, 503, 404, 200, 200, 200]
    );
    // A POST with a body the app answers without reading, and the
    // connection still serves the next request.
    let resp = conn.request("POST", "/v1/models/resnet:predict", &[], &[b'a'; 2500]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "ok");
    assert_eq!(conn.request("GET", "/users/4", &[], b"").text(), "user 4");

    // Sequential requests reuse the pooled upstream connection.
    assert!(
        app.upstream_connections() <= 2,
        "{} upstream connections for 14 sequential requests",
        app.upstream_connections()
    );

    let total = |method, route, status| [("method", method), ("route", route), ("status", status)];
    let users = [("method", "GET"), ("route", "/users/{id}")];
    let m = tap.scrape_until("14 requests recorded", |m| {
        value(m, "http_request_duration_seconds_count", &users) == Some(4.0)
    });
    for (labels, want) in [
        (total("GET", "/users/{id}", "200"), 4.0),
        (total("HEAD", "/users/{id}", "200"), 1.0),
        (total("GET", "/v1/models/{model}:predict", "200"), 1.0),
        (total("POST", "/v1/models/{model}:predict", "200"), 1.0),
        (total("GET", "/static/*", "200"), 1.0),
        (total("GET", "/status/{code}", "500"), 1.0),
        (total("GET", "/status/{code}", "503"), 1.0),
        (total("GET", "/status/{code}", "404"), 1.0),
        (total("GET", "other", "200"), 2.0),
        (total("other", "/users/{id}", "200"), 1.0),
    ] {
        assert_eq!(
            value(&m, "http_requests_total", &labels),
            Some(want),
            "{labels:?}"
        );
    }
    let family = m.family("http_requests_total").unwrap();
    assert_eq!(
        family.samples.len(),
        10,
        "no other series: {:?}",
        family.samples
    );
    assert_eq!(family.samples.iter().map(|s| s.value).sum::<f64>(), 14.0);

    let buckets: Vec<f64> = m
        .family("http_request_duration_seconds")
        .unwrap()
        .samples
        .iter()
        .filter(|s| {
            s.name == "http_request_duration_seconds_bucket"
                && s.label("route") == Some("/users/{id}")
                && s.label("method") == Some("GET")
        })
        .map(|s| s.value)
        .collect();
    // Default buckets: 11 bounds and +Inf, cumulative, all 4 by +Inf.
    assert_eq!(buckets.len(), 12);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(buckets[11], 4.0);

    // Sizes are body bytes: "user 1", "user 2", "user 3?verbose=1",
    // "user 4"; HEAD has none.
    assert_eq!(
        value(&m, "http_response_size_bytes_sum", &users),
        Some(34.0)
    );
    assert_eq!(
        value(&m, "http_response_size_bytes_count", &users),
        Some(4.0)
    );
    assert_eq!(
        value(
            &m,
            "http_response_size_bytes_sum",
            &[("method", "HEAD"), ("route", "/users/{id}")]
        ),
        Some(0.0)
    );
    let post = [("method", "POST"), ("route", "/v1/models/{model}:predict")];
    assert_eq!(
        value(&m, "http_request_size_bytes_sum", &post),
        Some(2500.0)
    );
    assert_eq!(
        value(
            &m,
            "http_request_size_bytes_bucket",
            &[post[0], post[1], ("le", "1000")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &m,
            "http_request_size_bytes_bucket",
            &[post[0], post[1], ("le", "10000")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&m, "http_requests_in_flight", &[]), Some(0.0));
    assert_eq!(
        m.family("http_request_duration_seconds").unwrap().kind,
        "histogram"
    );
}

#[test]
fn chunked_upload_and_download_stream_through_byte_exact() {
    let app = App::start();
    let tap = Tap::start(app.port, &[]);
    let mut conn = tap.connect();

    let body = pattern(6 * 1024 * 1024 + 12345);
    let mut chunks = body.chunks(1024 * 1024);
    conn.send(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n");
    let first = chunks.next().unwrap();
    conn.send_chunk(first);
    // The app has the first megabyte before the rest is even sent: the tap
    // streams the upload instead of buffering it.
    wait_until(Duration::from_secs(10), || {
        (app.state.upload_received.load(SeqCst) == first.len()).then_some(())
    })
    .expect("the first chunk reaches the app before the upload ends");
    for chunk in chunks {
        conn.send_chunk(chunk);
    }
    conn.send(b"0\r\n\r\n");
    let resp = conn.response(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), format!("received {}", body.len()));
    assert!(app.state.upload_chunked.load(SeqCst), "forwarded chunked");
    assert!(
        *app.state.upload.lock().unwrap() == body,
        "upload byte-exact"
    );

    // A streamed response on the same connection: its first part arrives
    // while the app still holds the rest.
    conn.send(b"GET /download HTTP/1.1\r\nHost: app.test\r\n\r\n");
    let head = conn.head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(conn.chunk(), b"first-part");
    app.state.release.notify_one();
    let mut rest = Vec::new();
    loop {
        let chunk = conn.chunk();
        if chunk.is_empty() {
            break;
        }
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, vec![b'x'; 300_000]);

    let upload = [("method", "POST"), ("route", "/upload")];
    let download = [("method", "GET"), ("route", "/download")];
    let m = tap.scrape_until("upload and download recorded", |m| {
        value(m, "http_response_size_bytes_count", &download) == Some(1.0)
    });
    assert_eq!(
        value(&m, "http_request_size_bytes_sum", &upload),
        Some(body.len() as f64)
    );
    assert_eq!(
        value(&m, "http_response_size_bytes_sum", &upload),
        Some(format!("received {}", body.len()).len() as f64)
    );
    assert_eq!(
        value(&m, "http_response_size_bytes_sum", &download),
        Some(300_010.0)
    );
    assert_eq!(
        value(
            &m,
            "http_request_size_bytes_bucket",
            &[upload[0], upload[1], ("le", "1e+06")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &m,
            "http_request_size_bytes_bucket",
            &[upload[0], upload[1], ("le", "1e+07")]
        ),
        Some(1.0)
    );
    // The download's duration includes the time the app held its body.
    assert_eq!(
        value(
            &m,
            "http_requests_total",
            &[download[0], download[1], ("status", "200")]
        ),
        Some(1.0)
    );
}

#[test]
fn upgrade_tunnels_bytes_both_ways() {
    let app = App::start();
    let tap = Tap::start(app.port, &[]);
    let mut conn = tap.connect();
    conn.send(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n",
    );
    let resp = conn.response(false);
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("upgrade"), Some("shout"));
    assert!(resp
        .header("connection")
        .unwrap()
        .eq_ignore_ascii_case("upgrade"));
    for msg in ["hello", "second message", &"z".repeat(50_000)] {
        conn.send(msg.as_bytes());
        let mut back = vec![0; msg.len()];
        conn.reader.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.to_ascii_uppercase().as_bytes());
    }
    drop(conn);
    let m = tap.scrape_until("upgrade recorded", |m| {
        value(
            m,
            "http_requests_total",
            &[("method", "GET"), ("route", "/ws"), ("status", "101")],
        ) == Some(1.0)
    });
    assert_eq!(value(&m, "http_requests_in_flight", &[]), Some(0.0));
}

#[test]
fn unreachable_upstream_is_a_counted_502() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let tap = Tap::start(port, &[]);
    let mut conn = tap.connect();
    for _ in 0..2 {
        let resp = conn.request("GET", "/users/7", &[], b"");
        assert_eq!(resp.status, 502);
        assert_eq!(resp.text(), "502 Bad Gateway\n");
    }
    let resp = conn.request("POST", "/upload", &[], b"payload");
    assert_eq!(resp.status, 502);
    let m = tap.scrape_until("502s recorded", |m| {
        value(
            m,
            "http_requests_total",
            &[("method", "POST"), ("route", "/upload"), ("status", "502")],
        ) == Some(1.0)
    });
    assert_eq!(
        value(
            &m,
            "http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/users/{id}"),
                ("status", "502")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(value(&m, "http_requests_in_flight", &[]), Some(0.0));
}

#[test]
fn headers_are_forwarded_as_a_proxy_must_and_never_logged() {
    let app = App::start();
    let tap = Tap::start(app.port, &["--log.level=debug"]);
    let mut conn = tap.connect();
    let resp = conn.request(
        "POST",
        "/echo-headers",
        &[
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic cHJveHk6aHVudGVyMg=="),
            ("Authorization", "Bearer hunter2-token"),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
        b"password=hunter2-body",
    );
    assert_eq!(resp.status, 200);
    let seen = resp.text();
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(
        seen,
        [
            "authorization: Bearer hunter2-token",
            "content-length: 21",
            "host: app.test",
            "x-forwarded-for: 203.0.113.9, 127.0.0.1",
            "x-forwarded-host: app.test",
            "x-forwarded-proto: http",
        ]
    );
    // Response hop-by-hop headers stop at the tap too.
    assert_eq!(resp.header("x-app"), Some("kept"));
    assert_eq!(resp.header("x-resp-hop"), None);
    assert_eq!(resp.header("keep-alive"), None);
    // The connection stays usable.
    assert_eq!(conn.request("GET", "/users/5", &[], b"").text(), "user 5");
    tap.scrape_until("requests recorded", |m| {
        value(
            m,
            "http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/users/{id}"),
                ("status", "200"),
            ],
        ) == Some(1.0)
    });
    let log = tap.sidecar.log();
    assert!(log.contains("HTTP tap accepting connections"), "{log}");
    assert!(!log.contains("hunter2"), "a secret reached the log:\n{log}");
}

#[test]
fn in_flight_gauge_follows_open_requests() {
    let app = App::start();
    let tap = Tap::start(app.port, &[]);
    let port = tap.port;
    let client = std::thread::spawn(move || {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut conn = Conn {
            reader: BufReader::new(stream),
        };
        conn.request("GET", "/hold", &[], b"").text()
    });
    tap.scrape_until("one request in flight", |m| {
        value(m, "http_requests_in_flight", &[]) == Some(1.0)
    });
    app.state.release.notify_one();
    assert_eq!(client.join().unwrap(), "released");
    let m = tap.scrape_until("none in flight", |m| {
        value(m, "http_requests_in_flight", &[]) == Some(0.0)
    });
    assert_eq!(
        value(
            &m,
            "http_requests_total",
            &[("method", "GET"), ("route", "/hold"), ("status", "200")]
        ),
        Some(1.0)
    );
}

/// The OpenMetrics `_bucket` lines of the tap's duration histogram for
/// `route` that carry an exemplar.
fn exemplar_lines(om: &str, route: &str) -> Vec<String> {
    let prefix = format!("http_request_duration_seconds_bucket{{method=\"GET\",route=\"{route}\",");
    om.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(" # {"))
        .map(str::to_string)
        .collect()
}

#[test]
fn traceparent_becomes_an_exemplar_in_openmetrics_only() {
    let app = App::start();
    let tap = Tap::start(app.port, &["--tap.buckets=0.5,5"]);
    let mut conn = tap.connect();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    conn.request("GET", "/users/1", &[("traceparent", TRACEPARENT)], b"");
    // Invalid or absent trace context gives no exemplar.
    conn.request("GET", "/static/a.css", &[("traceparent", "00-xyz")], b"");
    conn.request("GET", "/static/b.css", &[], b"");
    tap.scrape_until("traced requests recorded", |m| {
        value(
            m,
            "http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/static/*")],
        ) == Some(2.0)
    });

    let om = tap.sidecar.get_with(
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let lines = exemplar_lines(&om.body, "/users/{id}");
    assert_eq!(lines.len(), 1, "{}", om.body);
    // A request through a debug build on a loaded machine takes well under
    // 0.5 s: the exemplar is on the first bucket.
    let line = &lines[0];
    let rest = line
        .strip_prefix(
            "http_request_duration_seconds_bucket{method=\"GET\",route=\"/users/{id}\",le=\"0.5\"} 1 # {trace_id=\"",
        )
        .unwrap_or_else(|| panic!("{line}"));
    let rest = rest
        .strip_prefix(TRACE_ID)
        .unwrap_or_else(|| panic!("{line}"));
    let fields: Vec<f64> = rest
        .strip_prefix("\"} ")
        .unwrap()
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 2, "{line}");
    assert!(fields[0] > 0.0 && fields[0] <= 0.5, "{line}");
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        fields[1] >= before - 1.0 && fields[1] <= after + 1.0,
        "{line}"
    );
    assert!(
        exemplar_lines(&om.body, "/static/*").is_empty(),
        "{}",
        om.body
    );
    // Only the duration histogram carries them.
    assert_eq!(om.body.matches(" # {").count(), 1, "{}", om.body);

    let text = tap.sidecar.get("/metrics");
    assert!(text.body.contains("http_request_duration_seconds_bucket"));
    assert!(!text.body.contains(TRACE_ID), "no exemplars in 0.0.4");
}

#[test]
fn prometheus_stores_the_exemplars() {
    let app = App::start();
    let tap = Tap::start(app.port, &[]);
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sidecar\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        tap.sidecar.port
    );
    let prom = Prometheus::start_with_flags(&config, &[], &["--enable-feature=exemplar-storage"]);
    let mut conn = tap.connect();
    conn.request("GET", "/users/9", &[("traceparent", TRACEPARENT)], b"");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let query = format!(
        "/api/v1/query_exemplars?query=http_request_duration_seconds_bucket&start={}&end={}",
        now - 600,
        now + 600
    );
    let found = wait_until(Duration::from_secs(30), || {
        let data = prom.api(&query);
        let series = data["data"].as_array()?.first()?.clone();
        let exemplar = series["exemplars"].as_array()?.first()?.clone();
        Some((series, exemplar))
    });
    let (series, exemplar) =
        found.unwrap_or_else(|| panic!("no exemplar stored; Prometheus log:\n{}", prom.log()));
    assert_eq!(exemplar["labels"]["trace_id"], TRACE_ID);
    assert_eq!(series["seriesLabels"]["route"], "/users/{id}");
    assert_eq!(series["seriesLabels"]["method"], "GET");
}

#[test]
fn reconfigure_switches_routes_upstream_and_listener() {
    use oxmon_sidecar::store::{Limits, Store};
    use oxmon_sidecar::tap::{self, TapConfig, DEFAULT_BUCKETS, DEFAULT_SIZE_BUCKETS};

    let (first, second) = (App::start(), App::start());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = runtime.enter();
    let store = Arc::new(Store::new(Limits::default()));
    let section = |upstream: u16, routes: &[&str]| TapConfig {
        listen: "127.0.0.1:0".into(),
        upstream: format!("127.0.0.1:{upstream}"),
        routes: routes.iter().map(|r| r.to_string()).collect(),
        buckets: DEFAULT_BUCKETS.to_vec(),
        size_buckets: DEFAULT_SIZE_BUCKETS.to_vec(),
    };
    let handle = tap::start(&section(first.port, &["/users/{id}"]), store.clone()).unwrap();
    let get = |addr: SocketAddr, path: &str| {
        let stream = TcpStream::connect(addr).unwrap();
        let mut conn = Conn {
            reader: BufReader::new(stream),
        };
        conn.request("GET", path, &[], b"").text()
    };
    let requests = |route: &str| {
        let mut fams = Vec::new();
        store.collect(std::time::Instant::now(), &mut fams);
        let mut text = Vec::new();
        oxmon_core::metrics::normalize(&mut fams);
        oxmon_core::encode::encode(&fams, oxmon_core::encode::Format::Text, &mut text);
        let m = oxmon_testkit::parse(&String::from_utf8(text).unwrap());
        m.value("http_requests_total", &[("route", route)])
    };

    let old_addr = handle.local_addr();
    assert_eq!(get(old_addr, "/users/1"), "user 1");
    assert_eq!(first.state.peers.lock().unwrap().len(), 1);

    // A broken section changes nothing.
    let err = handle
        .reconfigure(&section(second.port, &["users"]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tap: route pattern \"users\": must start with /"
    );
    assert_eq!(handle.local_addr(), old_addr);

    // Same listen text: routes and upstream change in place.
    handle
        .reconfigure(&section(second.port, &["/users/{name}"]))
        .unwrap();
    assert_eq!(handle.local_addr(), old_addr);
    assert_eq!(get(old_addr, "/users/2"), "user 2");
    assert_eq!(second.state.peers.lock().unwrap().len(), 1);
    wait_until(Duration::from_secs(5), || {
        (requests("/users/{name}") == Some(1.0)).then_some(())
    })
    .expect("the new route names the request");
    assert_eq!(requests("/users/{id}"), Some(1.0));

    // A new listen address: bound first, the old one closes.
    let mut moved = section(second.port, &[]);
    let port = free_port();
    moved.listen = format!("127.0.0.1:{port}");
    handle.reconfigure(&moved).unwrap();
    assert_eq!(handle.local_addr().port(), port);
    assert_eq!(get(handle.local_addr(), "/users/3"), "user 3");
    wait_until(Duration::from_secs(5), || {
        TcpStream::connect(old_addr).is_err().then_some(())
    })
    .expect("the old address stops accepting");
    wait_until(Duration::from_secs(5), || {
        (requests("other") == Some(1.0)).then_some(())
    })
    .expect("no routes: other");

    handle.stop();
    wait_until(Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    })
    .expect("a stopped tap stops accepting");
}
