//! One HTTP GET to an application endpoint, as the health probe and the
//! relay make it: a fresh connection (plain TCP or rustls on the ring
//! provider), the configured headers (values inline or read from a file at
//! each request, never logged), a bounded body.
//!
//! The settings an endpoint shares between sections of the config file:
//!
//! ```yaml
//! url: https://user:password@127.0.0.1:8443/health   # userinfo becomes basic auth
//! headers:
//!   Accept: application/json
//!   X-Api-Key: {file: /run/secrets/api-key}           # read at each request
//!   Authorization: {file: /var/run/secrets/token, prefix: "Bearer "}
//! tls:                                  # only for https URLs
//!   ca_file: /etc/ssl/app-ca.pem        # default: the system roots
//!   cert_file: /etc/ssl/client.pem      # client certificate (with key_file)
//!   key_file: /etc/ssl/client.key
//!   server_name: app.internal           # default: the URL's host
//!   insecure_skip_verify: false         # true: accept any certificate
//! ```
//!
//! Error messages and the default `target` label name an endpoint by
//! [`Endpoint::redacted`]: scheme, host, port and path, never the userinfo
//! or the query.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use oxmon_core::tls_client::AcceptAnyServerCert;

use crate::config::FieldError;

/// The largest header value file read (a token, not a document).
const MAX_SECRET_FILE: u64 = 16 * 1024;

/// A header value in the config file: inline, or read from a file at each
/// request (its content without the trailing newline, after `prefix`).
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderValueConfig {
    /// The value itself.
    Inline(String),
    /// A file holding the value.
    File {
        /// The file.
        file: PathBuf,
        /// Written before the file's content (`"Bearer "`).
        prefix: String,
    },
}

impl fmt::Debug for HeaderValueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderValueConfig::Inline(_) => f.write_str("<redacted>"),
            HeaderValueConfig::File { file, .. } => write!(f, "<from {}>", file.display()),
        }
    }
}

impl<'de> Deserialize<'de> for HeaderValueConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = HeaderValueConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value or {file: PATH, prefix: TEXT}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(HeaderValueConfig::Inline(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(HeaderValueConfig::Inline(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(HeaderValueConfig::Inline(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut file, mut prefix) = (None, String::new());
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "file" => file = Some(map.next_value::<PathBuf>()?),
                        "prefix" => prefix = map.next_value()?,
                        other => return Err(de::Error::unknown_field(other, &["file", "prefix"])),
                    }
                }
                let file = file.ok_or_else(|| de::Error::missing_field("file"))?;
                Ok(HeaderValueConfig::File { file, prefix })
            }
        }
        d.deserialize_any(HeaderVisitor)
    }
}

/// TLS settings of an https endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificates (PEM) the server's chain must lead to; default the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM), with `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the certificate must carry; default the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate (handshake signatures are still
    /// checked).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Clone)]
enum HeaderSource {
    Value(HeaderValue),
    File { file: PathBuf, prefix: String },
}

/// A validated endpoint, ready to fetch.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    host_header: HeaderValue,
    path: Uri,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    headers: Vec<(HeaderName, HeaderSource)>,
    redacted: String,
    host_port_path: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.redacted)
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

/// A response: status and body.
#[derive(Debug)]
pub struct Fetched {
    /// The HTTP status code.
    pub status: u16,
    /// The body, at most the limit asked for.
    pub body: Bytes,
}

/// Why a fetch failed. Never carries a header value.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// TCP connect (or name resolution) failed.
    #[error("connecting to {target}: {source}")]
    Connect {
        /// The endpoint, redacted.
        target: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {target}: {source}")]
    Tls {
        /// The endpoint, redacted.
        target: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP request to {target}: {message}")]
    Http {
        /// The endpoint, redacted.
        target: String,
        /// The cause with its causes (hyper's own message is vague:
        /// "connection error").
        message: String,
    },
    /// A header file could not be read or is not a valid header value.
    #[error("header {header} from {file}: {message}")]
    HeaderFile {
        /// The header name.
        header: String,
        /// The file.
        file: String,
        /// Why (never the content).
        message: String,
    },
    /// The body is larger than allowed.
    #[error("response of {target} is larger than {limit} bytes")]
    TooLarge {
        /// The endpoint, redacted.
        target: String,
        /// The limit.
        limit: usize,
    },
}

/// Aborts the connection task when the fetch ends or is dropped (cut off
/// by a timeout), so no connection outlives its request.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Endpoint {
    /// Validates an endpoint's settings; error keys are `url`,
    /// `headers.NAME`, `tls.FIELD`.
    pub fn new(
        url: &str,
        headers: &BTreeMap<String, HeaderValueConfig>,
        tls: Option<&TlsConfig>,
    ) -> Result<Endpoint, FieldError> {
        let bad_url = |message: &str| FieldError::new("url", message);
        let uri: Uri = url
            .parse()
            .map_err(|e| bad_url(&format!("invalid URL: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad_url("the URL must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad_url("the URL has no host"))?;
        let host = authority.host();
        if host.is_empty() {
            return Err(bad_url("the URL has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host_header = match authority.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let scheme = if https { "https" } else { "http" };
        let path = uri.path();
        let redacted = format!("{scheme}://{host}:{port}{path}");
        let host_port_path = format!("{host}:{port}{path}");
        let path_and_query: Uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e| bad_url(&format!("invalid path: {e}")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();

        let mut resolved = Vec::new();
        if let Some((userinfo, _)) = authority.as_str().rsplit_once('@') {
            use base64::Engine;
            let decoded = percent_decode(userinfo);
            let token = base64::engine::general_purpose::STANDARD.encode(decoded);
            let mut value = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| bad_url("the URL's user information is not a valid header"))?;
            value.set_sensitive(true);
            resolved.push((AUTHORIZATION, HeaderSource::Value(value)));
        }
        for (name, value) in headers {
            let key = format!("headers.{name}");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| FieldError::new(&key, "invalid header name"))?;
            let source = match value {
                HeaderValueConfig::Inline(v) => {
                    // The message never repeats the value: it may be a secret.
                    let mut v = HeaderValue::from_str(v).map_err(|_| {
                        FieldError::new(&key, "invalid header value (control characters?)")
                    })?;
                    v.set_sensitive(true);
                    HeaderSource::Value(v)
                }
                HeaderValueConfig::File { file, prefix } => {
                    std::fs::metadata(file).map_err(|e| {
                        FieldError::new(format!("{key}.file"), format!("{}: {e}", file.display()))
                    })?;
                    HeaderSource::File {
                        file: file.clone(),
                        prefix: prefix.clone(),
                    }
                }
            };
            resolved.retain(|(n, _)| *n != header);
            resolved.push((header, source));
        }

        let tls = match (https, tls) {
            (true, t) => {
                let t = t.cloned().unwrap_or_default();
                let name = t.server_name.clone().unwrap_or_else(|| host.clone());
                let server_name = ServerName::try_from(name.clone()).map_err(|_| {
                    FieldError::new(
                        "tls.server_name",
                        format!("{name:?} is not a valid server name"),
                    )
                })?;
                Some((Arc::new(client_config(&t)?), server_name))
            }
            (false, Some(_)) => {
                return Err(FieldError::new("tls", "TLS settings need an https:// URL"))
            }
            (false, None) => None,
        };

        Ok(Endpoint {
            host,
            port,
            host_header: HeaderValue::from_str(&host_header)
                .map_err(|_| bad_url("invalid host"))?,
            path: path_and_query,
            tls,
            headers: resolved,
            redacted,
            host_port_path,
        })
    }

    /// The URL without userinfo and query: `http://host:port/path`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `host:port/path`: the default `target` label.
    pub fn host_port_path(&self) -> &str {
        &self.host_port_path
    }

    /// The `target` label of a target with this endpoint: `name`, else
    /// [`Endpoint::host_port_path`]. Error key `name`.
    pub fn target_name(&self, name: Option<&str>) -> Result<String, FieldError> {
        match name {
            Some("") => Err(FieldError::new("name", "must not be empty")),
            Some(n) => Ok(n.to_string()),
            None => Ok(self.host_port_path.clone()),
        }
    }

    /// GETs the endpoint, reading at most `max_body` bytes of body. Bound
    /// the whole call with a timeout; dropping it closes the connection.
    pub async fn get(&self, accept: &str, max_body: usize) -> Result<Fetched, FetchError> {
        let mut request = Request::get(self.path.clone())
            .body(Empty::<Bytes>::new())
            .expect("a GET with a valid path is a valid request");
        let h = request.headers_mut();
        h.insert(HOST, self.host_header.clone());
        h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        h.insert(
            ACCEPT,
            HeaderValue::from_str(accept).unwrap_or(HeaderValue::from_static("*/*")),
        );
        for (name, source) in &self.headers {
            let value = match source {
                HeaderSource::Value(v) => v.clone(),
                HeaderSource::File { file, prefix } => read_header_file(name, file, prefix).await?,
            };
            h.insert(name.clone(), value);
        }

        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| FetchError::Connect {
                target: self.redacted.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(TokioIo::new(tcp), request, max_body).await,
            Some((config, name)) => {
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| FetchError::Tls {
                        target: self.redacted.clone(),
                        source,
                    })?;
                self.exchange(TokioIo::new(stream), request, max_body).await
            }
        }
    }

    async fn exchange<IO>(
        &self,
        io: IO,
        request: Request<Empty<Bytes>>,
        max_body: usize,
    ) -> Result<Fetched, FetchError>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let http = |e: hyper::Error| {
            let mut message = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(": ");
                message.push_str(&c.to_string());
                cause = c.source();
            }
            FetchError::Http {
                target: self.redacted.clone(),
                message,
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(http)?;
        let _conn = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(http)?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > max_body {
                    return Err(FetchError::TooLarge {
                        target: self.redacted.clone(),
                        limit: max_body,
                    });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Fetched {
            status,
            body: Bytes::from(out),
        })
    }
}

const USER_AGENT_VALUE: &str = concat!("oxmon-sidecar/", env!("CARGO_PKG_VERSION"));

async fn read_header_file(
    name: &HeaderName,
    file: &PathBuf,
    prefix: &str,
) -> Result<HeaderValue, FetchError> {
    let fail = |message: String| FetchError::HeaderFile {
        header: name.to_string(),
        file: file.display().to_string(),
        message,
    };
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut content = Vec::new();
    f.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut content)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if content.len() as u64 > MAX_SECRET_FILE {
        return Err(fail(format!("larger than {MAX_SECRET_FILE} bytes")));
    }
    while content.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        content.pop();
    }
    let mut value = prefix.as_bytes().to_vec();
    value.extend_from_slice(&content);
    let mut value = HeaderValue::from_bytes(&value)
        .map_err(|_| fail("not a valid header value (control characters?)".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `%XX` escapes decoded, as URL userinfo carries them.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn client_config(t: &TlsConfig) -> Result<ClientConfig, FieldError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FieldError::new("tls", e))?;
    let builder = if t.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &t.ca_file {
            Some(path) => {
                let bad = |e: &dyn fmt::Display| {
                    FieldError::new("tls.ca_file", format!("{}: {e}", path.display()))
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                    roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
                }
                if roots.is_empty() {
                    return Err(bad(&"no certificate in the file"));
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect())
                .map_err(|e| {
                    FieldError::new("tls.cert_file", format!("{}: {e}", cert.display()))
                })?;
            if certs.is_empty() {
                return Err(FieldError::new(
                    "tls.cert_file",
                    format!("{}: no certificate in the file", cert.display()),
                ));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| FieldError::new("tls.key_file", format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| FieldError::new("tls.key_file", e))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(FieldError::new("tls.cert_file", "needs key_file too")),
        (None, Some(_)) => return Err(FieldError::new("tls.key_file", "needs cert_file too")),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Result<Endpoint, FieldError> {
        Endpoint::new(url, &BTreeMap::new(), None)
    }

    #[test]
    fn urls_are_redacted_and_validated() {
        let e = endpoint("http://user:s3cret@127.0.0.1:8080/health?token=abc").unwrap();
        assert_eq!(e.redacted(), "http://127.0.0.1:8080/health");
        assert_eq!(e.host_port_path(), "127.0.0.1:8080/health");
        assert_eq!(e.path, "/health?token=abc");
        assert_eq!(e.host_header, "127.0.0.1:8080");
        assert!(!format!("{e:?}").contains("s3cret"));
        match &e.headers[0].1 {
            // user:s3cret
            HeaderSource::Value(v) => assert_eq!(v, "Basic dXNlcjpzM2NyZXQ="),
            HeaderSource::File { .. } => panic!("inline expected"),
        }
        let e = endpoint("https://[::1]/").unwrap();
        assert_eq!(e.host, "::1");
        assert_eq!(e.host_port_path(), "[::1]:443/");
        assert_eq!(e.host_header, "[::1]");

        assert_eq!(
            endpoint("ftp://x/").unwrap_err(),
            FieldError::new("url", "the URL must start with http:// or https://")
        );
        assert_eq!(endpoint("not a url").unwrap_err().key, "url");
        assert_eq!(endpoint("/health").unwrap_err().key, "url");
        let tls = TlsConfig::default();
        let e = Endpoint::new("http://x/", &BTreeMap::new(), Some(&tls)).unwrap_err();
        assert_eq!(
            e,
            FieldError::new("tls", "TLS settings need an https:// URL")
        );
    }

    #[test]
    fn header_errors_never_show_the_value() {
        let mut headers = BTreeMap::new();
        headers.insert(
            "X-Key".to_string(),
            HeaderValueConfig::Inline("sec\nret".into()),
        );
        let e = Endpoint::new("http://x/", &headers, None).unwrap_err();
        assert_eq!(e.key, "headers.X-Key");
        assert!(!e.message.contains("sec"), "{}", e.message);
        let mut headers = BTreeMap::new();
        headers.insert(
            "Bad Name".to_string(),
            HeaderValueConfig::Inline("v".into()),
        );
        assert_eq!(
            Endpoint::new("http://x/", &headers, None).unwrap_err(),
            FieldError::new("headers.Bad Name", "invalid header name")
        );
        let mut headers = BTreeMap::new();
        headers.insert(
            "X-Key".to_string(),
            HeaderValueConfig::File {
                file: "/nonexistent/key".into(),
                prefix: String::new(),
            },
        );
        let e = Endpoint::new("http://x/", &headers, None).unwrap_err();
        assert_eq!(e.key, "headers.X-Key.file");
        assert!(e.message.starts_with("/nonexistent/key: "), "{}", e.message);
        assert_eq!(
            format!("{:?}", HeaderValueConfig::Inline("hunter2".into())),
            "<redacted>"
        );
    }

    #[test]
    fn header_values_deserialize_inline_or_from_a_file() {
        let h: BTreeMap<String, HeaderValueConfig> =
            serde_yaml::from_str("A: x\nB: 12\nC: {file: /k, prefix: 'Bearer '}\n").unwrap();
        assert_eq!(h["A"], HeaderValueConfig::Inline("x".into()));
        assert_eq!(h["B"], HeaderValueConfig::Inline("12".into()));
        assert_eq!(
            h["C"],
            HeaderValueConfig::File {
                file: "/k".into(),
                prefix: "Bearer ".into()
            }
        );
        let e = serde_yaml::from_str::<BTreeMap<String, HeaderValueConfig>>("A: {path: /k}\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `path`"), "{e}");
    }

    #[test]
    fn tls_files_are_checked() {
        let t = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let e = Endpoint::new("https://x/", &BTreeMap::new(), Some(&t)).unwrap_err();
        assert_eq!(e.key, "tls.ca_file");
        assert!(
            e.message.starts_with("/nonexistent/ca.pem: "),
            "{}",
            e.message
        );
        let t = TlsConfig {
            cert_file: Some("/c.pem".into()),
            ..TlsConfig::default()
        };
        assert_eq!(
            Endpoint::new("https://x/", &BTreeMap::new(), Some(&t)).unwrap_err(),
            FieldError::new("tls.cert_file", "needs key_file too")
        );
    }

    #[test]
    fn percent_escapes_in_userinfo() {
        assert_eq!(percent_decode("a%40b:p%3Aw%"), b"a@b:p:w%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%zz"), b"%zz");
    }
}
