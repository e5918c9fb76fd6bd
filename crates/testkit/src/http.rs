//! A small blocking HTTP/1.1 client for tests, plain and over TLS.
//!
//! It sends exactly the headers it is given (plus `Host`, `Connection:
//! close` and a `User-Agent` unless the caller sets them) — in particular no
//! `Accept-Encoding` unless asked — and never treats a 4xx/5xx status as an
//! error. A gzip body (`Content-Encoding: gzip`) is decompressed into
//! [`HttpResponse::body`]; the bytes as received are in
//! [`HttpResponse::raw_body`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A complete HTTP response.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers in received order, names as sent by the server.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8), gunzipped if it was gzip-encoded.
    pub body: String,
    /// The body bytes as received (after de-chunking, before gunzip).
    pub raw_body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GET `url` (`http://` only); panics when no response can be had
/// (connection refused, timeout, malformed response). 4xx/5xx are returned.
pub fn http_get(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_try_get(url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GET `url` (`http://` only); `Err` when no response can be had.
pub fn http_try_get(url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, String> {
    http_request("GET", url, headers, &[])
}

/// Any method on an `http://` URL, with a body (a `Content-Length` header is
/// added when the body is not empty).
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let target = Target::parse(url)?;
    if target.tls {
        return Err(format!("{url}: use http_get_tls for https URLs"));
    }
    let stream = target.connect()?;
    exchange(stream, method, &target, headers, body)
}

/// POST `body` to an `http://` URL.
pub fn http_post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<HttpResponse, String> {
    http_request("POST", url, headers, body)
}

/// TLS settings of a request.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions<'a> {
    /// PEM of the CA certificate(s) that must have signed the server's.
    pub ca_pem: &'a [u8],
    /// A client certificate chain and its private key, both PEM.
    pub client_cert: Option<(&'a [u8], &'a [u8])>,
    /// The name to verify (and send as SNI); defaults to the URL's host.
    pub server_name: Option<&'a str>,
    /// Allowed protocol versions; defaults to TLS 1.2 and 1.3.
    pub versions: Option<&'a [&'static rustls::SupportedProtocolVersion]>,
}

/// GET an `https://` URL, trusting `ca_pem`, optionally presenting a client
/// certificate `(cert_pem, key_pem)`. `Err` on any TLS or I/O failure (a
/// rejected client certificate shows up here).
pub fn http_get_tls(
    url: &str,
    ca_pem: &[u8],
    client_cert: Option<(&[u8], &[u8])>,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, String> {
    let opts = TlsOptions {
        ca_pem,
        client_cert,
        ..TlsOptions::default()
    };
    https_request("GET", url, &opts, headers, &[])
}

/// Any method on an `https://` URL with full [`TlsOptions`].
pub fn https_request(
    method: &str,
    url: &str,
    opts: &TlsOptions<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let target = Target::parse(url)?;
    let config = client_config(opts)?;
    let name = opts.server_name.unwrap_or(&target.host).to_string();
    let server_name =
        ServerName::try_from(name.clone()).map_err(|e| format!("server name {name:?}: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| format!("TLS setup: {e}"))?;
    let tcp = target.connect()?;
    let stream = rustls::StreamOwned::new(conn, tcp);
    exchange(stream, method, &target, headers, body)
}

fn client_config(opts: &TlsOptions<'_>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(opts.ca_pem) {
        let cert = cert.map_err(|e| format!("CA PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no CA certificate in ca_pem".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider);
    let builder = match opts.versions {
        Some(v) => builder.with_protocol_versions(v),
        None => builder.with_safe_default_protocol_versions(),
    }
    .map_err(|e| format!("TLS versions: {e}"))?
    .with_root_certificates(roots);
    match opts.client_cert {
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate PEM: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| format!("client key PEM: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
    /// `user:password` from the URL, percent-decoded.
    userinfo: Option<String>,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(format!("{url}: not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (userinfo, authority) = match authority.rsplit_once('@') {
            Some((u, a)) => (Some(percent_decode(u)), a),
            None => (None, authority),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("{url}: bad IPv6 host"))?;
            let port = match v6[end + 1..].strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
                None => default_port,
            };
            (v6[..end].to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("{url}: bad port"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Target {
            tls,
            host,
            port,
            path,
            userinfo,
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{}", self.port)
    }

    fn connect(&self) -> Result<TcpStream, String> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("resolve {}: {e}", self.host))?;
        let mut last = format!("{}: no address", self.host);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(IO_TIMEOUT)).ok();
                    s.set_write_timeout(Some(IO_TIMEOUT)).ok();
                    s.set_nodelay(true).ok();
                    return Ok(s);
                }
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Err(last)
    }
}

fn exchange<S: Read + Write>(
    mut stream: S,
    method: &str,
    target: &Target,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut req = format!("{method} {} HTTP/1.1\r\n", target.path);
    if !has("host") {
        req.push_str(&format!("Host: {}\r\n", target.host_header()));
    }
    if !has("connection") {
        req.push_str("Connection: close\r\n");
    }
    if let Some(userinfo) = target.userinfo.as_deref().filter(|_| !has("authorization")) {
        let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        req.push_str(&format!("Authorization: {}\r\n", basic_auth(user, pass)));
    }
    if !has("user-agent") {
        req.push_str("User-Agent: oxmon-testkit\r\n");
    }
    if !body.is_empty() && !has("content-length") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream
        .write_all(&bytes)
        .and_then(|_| stream.flush())
        .map_err(|e| format!("send request: {e}"))?;
    read_response(BufReader::new(stream), method == "HEAD")
}

fn read_line<R: BufRead>(r: &mut R) -> Result<String, String> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf)
        .map_err(|e| format!("read response: {e}"))?;
    if buf.is_empty() {
        return Err("connection closed before the response was complete".into());
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn read_response<R: BufRead>(mut r: R, head: bool) -> Result<HttpResponse, String> {
    let (status, headers) = loop {
        let status_line = read_line(&mut r)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/") {
            return Err(format!("not an HTTP response: {status_line:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(&mut r)?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        if !(100..200).contains(&status) {
            break (status, headers);
        }
    };
    let mut resp = HttpResponse {
        status,
        headers,
        ..HttpResponse::default()
    };
    let no_body = head || status == 204 || status == 304;
    if !no_body {
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            resp.raw_body = read_chunked(&mut r)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len:?}"))?;
            let mut body = vec![0; len];
            r.read_exact(&mut body)
                .map_err(|e| format!("read body ({len} bytes): {e}"))?;
            resp.raw_body = body;
        } else {
            read_to_close(&mut r, &mut resp.raw_body)?;
        }
    }
    let gzip = resp
        .header("content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    resp.body = if gzip && !resp.raw_body.is_empty() {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(resp.raw_body.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("gunzip body: {e}"))?;
        String::from_utf8_lossy(&out).into_owned()
    } else {
        String::from_utf8_lossy(&resp.raw_body).into_owned()
    };
    Ok(resp)
}

/// Reads until EOF; a TLS peer that closes without close_notify is accepted.
fn read_to_close<R: Read>(r: &mut R, out: &mut Vec<u8>) -> Result<(), String> {
    match r.read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        Err(e) => Err(format!("read body: {e}")),
    }
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| format!("read chunk: {e}"))?;
        let crlf = read_line(r)?;
        if !crlf.is_empty() {
            return Err("chunk not followed by CRLF".into());
        }
    }
}

/// The value of an `Authorization` header for basic auth:
/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query parameter value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("http://127.0.0.1:9100/metrics?collect[]=cpu").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9100));
        assert_eq!(t.path, "/metrics?collect[]=cpu");
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8443, "/")
        );
        assert_eq!(t.host_header(), "[::1]:8443");
        let t = Target::parse("http://localhost?x=1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/?x=1"));
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://:80/").is_err());
        assert!(Target::parse("http://h:port/").is_err());
        let t = Target::parse("http://al%40ice:p%3Aw@127.0.0.1:1/metrics").unwrap();
        assert_eq!(t.userinfo.as_deref(), Some("al@ice:p:w"));
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 1));
    }

    #[test]
    fn reads_chunked_and_gzip_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        let r = read_response(&raw[..], false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "hello world");
        assert_eq!(r.header("x-a"), Some("b"));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"metric 1\n").unwrap();
        let gz = gz.finish().unwrap();
        let mut raw = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        raw.extend_from_slice(&gz);
        let r = read_response(raw.as_slice(), false).unwrap();
        assert_eq!(r.body, "metric 1\n");
        assert_eq!(r.raw_body, gz);

        let r = read_response(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n\r\nover"[..],
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "over"));
        assert!(read_response(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
            false
        )
        .is_err());
        assert!(read_response(&b"garbage\r\n\r\n"[..], false).is_err());
        assert!(read_response(&b""[..], false).is_err());
    }

    #[test]
    fn basic_auth_header() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(url_encode("up{job=\"a b\"}"), "up%7Bjob%3D%22a%20b%22%7D");
    }
}
