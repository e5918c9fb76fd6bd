//! The proxying itself: a client request forwarded to the upstream with its
//! body streaming through, the response streamed back, an `Upgrade`
//! tunnelled, and what happened handed to [`Exchange`].
//!
//! As a proxy must (RFC 9110 section 7.6): hop-by-hop headers
//! (`Connection` and the names it lists, `Keep-Alive`, `Proxy-Connection`,
//! `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`,
//! `Transfer-Encoding`, `Upgrade`) are not forwarded in either direction;
//! hyper frames each side's body itself (chunked when the length is
//! unknown). An upgrade keeps `Connection: upgrade` and `Upgrade` on the
//! request and on the `101` response, then bytes flow both ways untouched.
//! `Host` is kept (the app sees the name the client used);
//! `X-Forwarded-For` gets the client's address appended;
//! `X-Forwarded-Proto` (`http`) and `X-Forwarded-Host` are added unless a
//! proxy in front already set them. Nothing of a header or body is logged.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioIo;

use super::record::Exchange;
use super::Shared;

/// The pooled HTTP/1.1 client to the upstream.
pub type UpstreamClient = Client<HttpConnector, RequestBody>;

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// How much of a request body the upstream left unread the tap reads and
/// discards so the client's connection stays usable (Go's net/http server
/// does the same for its handlers); beyond it the connection is closed.
const DRAIN_LIMIT: u64 = 256 * 1024;

/// How long that draining may take.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// A client's request body on its way to the upstream, counting its bytes.
#[derive(Debug)]
pub struct RequestBody {
    /// Taken by `drop` when the upstream left some unread.
    inner: Option<Incoming>,
    bytes: Arc<AtomicU64>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes.fetch_add(data.len() as u64, Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    /// An upstream that answers without reading the whole body (and perhaps
    /// closes its connection) drops it unread; hyper would then close the
    /// client's connection, which did nothing wrong.
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes of `body` within
/// [`DRAIN_TIME`].
async fn drain(mut body: Incoming) {
    let discard = async {
        let mut left = DRAIN_LIMIT;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            match left.checked_sub(n) {
                Some(l) => left = l,
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

/// A response body on its way to the client. It owns the [`Exchange`], so
/// the request is recorded when hyper drops the body: after its last byte,
/// or when the client goes away.
#[derive(Debug)]
pub struct ResponseBody {
    content: Content,
    exchange: Exchange,
}

#[derive(Debug)]
enum Content {
    /// The upstream's body.
    Upstream(Incoming),
    /// The tap's own short answer (502 and such), until sent.
    Own(Option<Bytes>),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.content {
            Content::Upstream(body) => Pin::new(body).poll_frame(cx),
            Content::Own(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.exchange.add_response_bytes(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.content {
            Content::Upstream(body) => body.is_end_stream(),
            Content::Own(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            Content::Upstream(body) => body.size_hint(),
            Content::Own(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// Serves one client request from `peer` through the upstream.
pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let settings = shared.settings();
    let mut exchange = Exchange::begin(
        shared.meter.clone(),
        settings.clone(),
        req.method(),
        req.uri().path(),
        req.headers(),
        req.body().size_hint().exact(),
    );
    // CONNECT asks a forward proxy for a tunnel; the app behind a reverse
    // proxy has no use for it.
    if req.method() == Method::CONNECT {
        return Ok(own_response(exchange, StatusCode::METHOD_NOT_ALLOWED));
    }
    let Some(uri) = upstream_uri(&settings.upstream, req.uri()) else {
        return Ok(own_response(exchange, StatusCode::BAD_REQUEST));
    };
    let upgrade = upgrade_protocol(req.headers());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));

    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    add_forwarded(&mut headers, peer);
    let mut upstream_req = Request::new(RequestBody {
        inner: Some(body),
        bytes: exchange.request_bytes(),
    });
    *upstream_req.method_mut() = parts.method;
    *upstream_req.uri_mut() = uri;
    *upstream_req.headers_mut() = headers;

    let mut resp = match shared.client.request(upstream_req).await {
        Ok(resp) => resp,
        Err(e) => {
            // The error names the failure (connection refused, reset), not
            // the request.
            tracing::debug!(err = %e, "tap: upstream request failed");
            return Ok(own_response(exchange, StatusCode::BAD_GATEWAY));
        }
    };
    let status = resp.status();
    let mut headers = std::mem::take(resp.headers_mut());
    let response_upgrade = upgrade_protocol_response(&headers);
    strip_hop_by_hop(&mut headers);
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(client_upgrade), Some(protocol)) = (client_upgrade, response_upgrade) else {
            // A switch nobody asked for cannot be relayed.
            return Ok(own_response(exchange, StatusCode::BAD_GATEWAY));
        };
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
        tokio::spawn(tunnel(client_upgrade, hyper::upgrade::on(&mut resp)));
    }
    exchange.respond(status);
    let mut out = Response::new(ResponseBody {
        content: Content::Upstream(resp.into_body()),
        exchange,
    });
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The tap's own answer, with the status as its text.
fn own_response(mut exchange: Exchange, status: StatusCode) -> Response<ResponseBody> {
    exchange.respond(status);
    let text = format!(
        "{} {}\n",
        status.as_str(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut resp = Response::new(ResponseBody {
        content: Content::Own(Some(Bytes::from(text))),
        exchange,
    });
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The upstream URI for a request: the upstream's authority with the
/// request's path and query.
fn upstream_uri(upstream: &hyper::http::uri::Authority, uri: &Uri) -> Option<Uri> {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if !path_and_query.starts_with('/') {
        return None;
    }
    Uri::builder()
        .scheme("http")
        .authority(upstream.clone())
        .path_and_query(path_and_query)
        .build()
        .ok()
}

/// Whether `Connection` carries `token` (case-insensitive).
fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The protocol a request asks to switch to (`Connection: upgrade` with
/// `Upgrade: websocket`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    if !connection_has(headers, "upgrade") {
        return None;
    }
    headers.get(header::UPGRADE).cloned()
}

/// The protocol a `101` response switches to; a server may omit
/// `Connection: upgrade` there, so only `Upgrade` counts.
fn upgrade_protocol_response(headers: &HeaderMap) -> Option<HeaderValue> {
    headers.get(header::UPGRADE).cloned()
}

/// Removes hop-by-hop headers: the fixed set and those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds the `X-Forwarded-*` headers for a request from `peer`.
fn add_forwarded(headers: &mut HeaderMap, peer: SocketAddr) {
    const FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    const PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    const HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    let client = peer.ip().to_canonical().to_string();
    let mut chain = String::new();
    for earlier in headers.get_all(&FOR).iter().filter_map(|v| v.to_str().ok()) {
        chain.push_str(earlier);
        chain.push_str(", ");
    }
    chain.push_str(&client);
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert(FOR, v);
    }
    if !headers.contains_key(&PROTO) {
        headers.insert(PROTO, HeaderValue::from_static("http"));
    }
    if !headers.contains_key(&HOST) {
        if let Some(host) = headers.get(header::HOST).cloned() {
            headers.insert(HOST, host);
        }
    }
}

/// Copies bytes both ways between an upgraded client connection and the
/// upgraded upstream connection until both sides close.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(err = %e, "tap: upgrade failed");
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(err = %e, "tap: upgraded connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut v: Vec<_> = h.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Trace-Hop"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-trace-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic secret"),
            ("proxy-connection", "keep-alive"),
            ("host", "app.example"),
            ("authorization", "Bearer kept"),
            ("content-length", "10"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["authorization", "content-length", "host"]);
    }

    #[test]
    fn upgrades_need_connection_upgrade() {
        let ws = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(upgrade_protocol(&ws).unwrap(), "websocket");
        assert_eq!(
            upgrade_protocol(&headers(&[("upgrade", "websocket")])),
            None
        );
        assert_eq!(
            upgrade_protocol(&headers(&[("connection", "upgrade")])),
            None
        );
    }

    #[test]
    fn forwarded_headers_extend_what_a_front_proxy_set() {
        let peer: SocketAddr = "[::ffff:10.0.0.7]:5555".parse().unwrap();
        let mut h = headers(&[("host", "api.example:8080")]);
        add_forwarded(&mut h, peer);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example:8080");

        let mut h = headers(&[
            ("host", "inner"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example"),
        ]);
        add_forwarded(&mut h, "127.0.0.1:1".parse().unwrap());
        assert_eq!(
            h["x-forwarded-for"],
            "203.0.113.9, 10.0.0.1, 10.0.0.2, 127.0.0.1"
        );
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example");
    }

    #[test]
    fn upstream_uri_keeps_path_and_query() {
        let up: hyper::http::uri::Authority = "127.0.0.1:8000".parse().unwrap();
        let uri = |s: &str| upstream_uri(&up, &s.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(
            uri("/a/b?x=1&y=%20").as_deref(),
            Some("http://127.0.0.1:8000/a/b?x=1&y=%20")
        );
        assert_eq!(
            uri("http://elsewhere:1/p?q").as_deref(),
            Some("http://127.0.0.1:8000/p?q")
        );
        assert_eq!(uri("*"), None);
    }
}
