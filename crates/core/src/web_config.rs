//! `--web.config.file`: the exporter-toolkit web configuration format
//! (`tls_server_config`, `http_server_config`, `basic_auth_users`).
//!
//! The file is validated when loaded; [`WebConfigWatcher`] re-reads it when
//! its contents change and keeps the last good configuration when the new
//! one is broken.
//!
//! Supported as the Go toolkit does: certificate and key files (or inline
//! `cert`/`key`), every `client_auth_type`, `client_ca_file`,
//! `min_version`/`max_version` (TLS 1.2 and 1.3; rustls has no 1.0/1.1, so
//! those minimums mean 1.2), bcrypt `basic_auth_users`, response `headers`.
//! Accepted and ignored with a warning: `cipher_suites`, `curve_preferences`,
//! `prefer_server_cipher_suites` (rustls only offers modern suites) and
//! `http2`. Refused with an error: `client_allowed_sans` (not implemented;
//! refusing is safer than silently allowing every client).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::sync::{LockExt, RwLockExt};

/// An error loading the web configuration; names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("reading web config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The YAML is invalid.
    #[error("parsing web config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_yaml::Error,
    },
    /// A value is invalid.
    #[error("web config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<HashMap<String, String>>,
}

/// Headers the toolkit allows to be set from the file.
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// A loaded, validated web configuration.
pub struct WebConfig {
    /// The TLS server configuration, when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    users: HashMap<String, String>,
    dummy_hash: String,
    cache: Mutex<HashMap<[u8; 32], ()>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("users", &self.users.len())
            .finish()
    }
}

impl WebConfig {
    /// No TLS, no auth.
    pub fn plain() -> Self {
        WebConfig {
            tls: None,
            headers: Vec::new(),
            users: HashMap::new(),
            dummy_hash: String::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Loads and validates a file.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses file contents; relative paths inside resolve against the
    /// file's directory, as in the toolkit.
    pub fn parse(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|source| WebConfigError::Parse {
                path: path.to_owned(),
                source,
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match raw.tls_server_config {
            Some(t) => build_tls(t, base).map_err(invalid)?,
            None => None,
        };
        let mut headers = Vec::new();
        if let Some(http) = raw.http_server_config {
            if http.http2 == Some(true) {
                tracing::warn!("web config: http2 is not supported, serving HTTP/1.1");
            }
            for (k, v) in http.headers.unwrap_or_default() {
                let Some(canon) = ALLOWED_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&k))
                else {
                    return Err(invalid(format!("HTTP header {k:?} can not be configured")));
                };
                headers.push((canon.to_string(), v));
            }
            headers.sort();
        }
        let users = raw.basic_auth_users.unwrap_or_default();
        for (user, hash) in &users {
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                return Err(invalid(format!(
                    "basic_auth_users: the hash for user {user:?} is not a bcrypt hash"
                )));
            }
        }
        let dummy_hash = match users.values().next() {
            Some(h) => {
                let cost = h.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(10);
                bcrypt::hash("oxmon-dummy-password", cost)
                    .map_err(|e| invalid(format!("preparing dummy hash: {e}")))?
            }
            None => String::new(),
        };
        Ok(WebConfig {
            tls,
            headers,
            users,
            dummy_hash,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// True when basic auth is required.
    pub fn auth_required(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks an `Authorization` header value. Slow (bcrypt) on a cache
    /// miss: call it from a blocking context.
    pub fn check_basic_auth(&self, header: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, pass)) = header.and_then(decode_basic) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        let mut key = Sha256::new();
        key.update(user.as_bytes());
        key.update([0]);
        key.update(pass.as_bytes());
        key.update([0]);
        key.update(hash.as_bytes());
        let key: [u8; 32] = key.finalize().into();
        if known && self.cache.lock_unpoisoned().contains_key(&key) {
            return true;
        }
        // Unknown users still pay for a bcrypt check so timing does not
        // reveal which users exist.
        let ok = bcrypt::verify(pass.as_bytes(), hash).unwrap_or(false) && known;
        if ok {
            let mut cache = self.cache.lock_unpoisoned();
            if cache.len() > 1024 {
                cache.clear();
            }
            cache.insert(key, ());
        }
        ok
    }
}

fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn build_tls(t: RawTls, base: &Path) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let has_cert = t.cert_file.is_some() || t.cert.is_some();
    let has_key = t.key_file.is_some() || t.key.is_some();
    if !has_cert && !has_key {
        if t.client_auth_type.is_some() || t.client_ca_file.is_some() {
            return Err("tls_server_config: missing cert_file and key_file".into());
        }
        return Ok(None);
    }
    if !has_cert {
        return Err("tls_server_config: missing cert_file".into());
    }
    if !has_key {
        return Err("tls_server_config: missing key_file".into());
    }
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err("tls_server_config: client_allowed_sans is not supported by oxmon".into());
    }
    if t.cipher_suites.is_some()
        || t.curve_preferences.is_some()
        || t.prefer_server_cipher_suites.is_some()
    {
        tracing::warn!("web config: cipher_suites, curve_preferences and prefer_server_cipher_suites are ignored; rustls offers only modern suites");
    }
    let certs: Vec<CertificateDer<'static>> = match (&t.cert, &t.cert_file) {
        (Some(inline), _) => CertificateDer::pem_slice_iter(inline.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("tls_server_config.cert: {e}"))?,
        (None, Some(f)) => {
            let p = resolve(base, f);
            CertificateDer::pem_file_iter(&p)
                .map_err(|e| format!("cert_file {}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cert_file {}: {e}", p.display()))?
        }
        (None, None) => unreachable!("checked above"),
    };
    if certs.is_empty() {
        return Err("tls_server_config: no certificate found".into());
    }
    let key = match (&t.key, &t.key_file) {
        (Some(inline), _) => PrivateKeyDer::from_pem_slice(inline.as_bytes())
            .map_err(|e| format!("tls_server_config.key: {e}"))?,
        (None, Some(f)) => {
            let p = resolve(base, f);
            PrivateKeyDer::from_pem_file(&p)
                .map_err(|e| format!("key_file {}: {e}", p.display()))?
        }
        (None, None) => unreachable!("checked above"),
    };

    let versions = tls_versions(t.min_version.as_deref(), t.max_version.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls versions: {e}"))?;

    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let mut roots = rustls::RootCertStore::empty();
    let ca_certs: Vec<CertificateDer<'static>> = match (&t.client_ca, &t.client_ca_file) {
        (Some(inline), _) => CertificateDer::pem_slice_iter(inline.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("client_ca: {e}"))?,
        (None, Some(f)) => {
            let p = resolve(base, f);
            CertificateDer::pem_file_iter(&p)
                .map_err(|e| format!("client_ca_file {}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("client_ca_file {}: {e}", p.display()))?
        }
        (None, None) => Vec::new(),
    };
    for c in ca_certs {
        roots
            .add(c)
            .map_err(|e| format!("client CA certificate: {e}"))?;
    }
    let verifying = matches!(
        auth,
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert"
    );
    if verifying && roots.is_empty() {
        return Err(format!("client_auth_type {auth} requires client_ca_file"));
    }
    if !verifying && !roots.is_empty() && auth != "NoClientCert" {
        tracing::warn!("web config: client_ca_file is only used with VerifyClientCertIfGiven or RequireAndVerifyClientCert");
    }
    let builder = match auth {
        "NoClientCert" | "" => builder.with_no_client_auth(),
        "RequestClientCert" | "RequireAnyClientCert" => {
            builder.with_client_cert_verifier(Arc::new(any_client::AcceptAny {
                mandatory: auth == "RequireAnyClientCert",
                provider: provider.clone(),
            }))
        }
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            );
            if auth == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            builder
                .with_client_cert_verifier(v.build().map_err(|e| format!("client verifier: {e}"))?)
        }
        other => return Err(format!("invalid client_auth_type {other:?}")),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(cfg)))
}

fn tls_versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str| -> Result<u8, String> {
        match v {
            "TLS10" | "TLS11" | "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            other => Err(format!("unknown TLS version {other:?}")),
        }
    };
    let lo = min.map(rank).transpose()?.unwrap_or(12);
    let hi = max.map(rank).transpose()?.unwrap_or(13);
    if lo > hi {
        return Err("min_version is above max_version".into());
    }
    let mut v = Vec::new();
    if lo <= 12 {
        v.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        v.push(&rustls::version::TLS13);
    }
    Ok(v)
}

mod any_client {
    //! `RequestClientCert` / `RequireAnyClientCert`: ask for a client
    //! certificate and check only that the client holds its key, as Go's
    //! tls package does for those modes.
    use std::sync::Arc;

    use rustls::client::danger::HandshakeSignatureValid;
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, UnixTime};
    use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
    use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

    #[derive(Debug)]
    pub(super) struct AcceptAny {
        pub(super) mandatory: bool,
        pub(super) provider: Arc<CryptoProvider>,
    }

    impl ClientCertVerifier for AcceptAny {
        fn offer_client_auth(&self) -> bool {
            true
        }
        fn client_auth_mandatory(&self) -> bool {
            self.mandatory
        }
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            &[]
        }
        fn verify_client_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _now: UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            Ok(ClientCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

/// Holds the current web configuration and re-reads the file when it
/// changes.
pub struct WebConfigWatcher {
    path: Option<PathBuf>,
    current: RwLock<Arc<WebConfig>>,
    last_text: Mutex<Option<String>>,
}

impl WebConfigWatcher {
    /// Loads `path` (or a plain config when `None`); fails when the file is
    /// broken at start-up, like the Go exporters.
    pub fn new(path: Option<PathBuf>) -> Result<Arc<Self>, WebConfigError> {
        let (cfg, text) = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| WebConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                (WebConfig::parse(&text, p)?, Some(text))
            }
            None => (WebConfig::plain(), None),
        };
        Ok(Arc::new(WebConfigWatcher {
            path,
            current: RwLock::new(Arc::new(cfg)),
            last_text: Mutex::new(text),
        }))
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<WebConfig> {
        self.current.read_unpoisoned().clone()
    }

    /// Re-reads the file if its contents changed; a broken file keeps the
    /// last good configuration. Returns true when a new one was installed.
    pub fn reload(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(file = %path.display(), err = %e, "reading web config failed; keeping the last good one");
                return false;
            }
        };
        {
            let last = self.last_text.lock_unpoisoned();
            if last.as_deref() == Some(text.as_str()) {
                return false;
            }
        }
        let parsed = WebConfig::parse(&text, path);
        *self.last_text.lock_unpoisoned() = Some(text);
        match parsed {
            Ok(cfg) => {
                *self.current.write_unpoisoned() = Arc::new(cfg);
                tracing::info!(file = %path.display(), "web config reloaded");
                true
            }
            Err(e) => {
                tracing::error!(err = %e, "web config is invalid; keeping the last good one");
                false
            }
        }
    }

    /// Spawns a task that checks the file every `interval`.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) {
        if self.path.is_none() {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                let me2 = Arc::clone(&me);
                // Parsing may hash a bcrypt dummy password: keep it off the workers.
                let _ = tokio::task::spawn_blocking(move || me2.reload()).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_fields_and_headers() {
        let p = Path::new("/x/web.yml");
        assert!(WebConfig::parse("tls_server_config:\n  cert_fil: a\n", p).is_err());
        let e =
            WebConfig::parse("http_server_config:\n  headers:\n    Server: x\n", p).unwrap_err();
        assert!(e.to_string().contains("/x/web.yml"), "{e}");
        let c = WebConfig::parse(
            "http_server_config:\n  headers:\n    x-frame-options: deny\n",
            p,
        )
        .unwrap();
        assert_eq!(
            c.headers,
            [("X-Frame-Options".to_string(), "deny".to_string())]
        );
        assert!(WebConfig::parse("", p).unwrap().tls.is_none());
        assert!(WebConfig::parse("basic_auth_users:\n  a: plaintext\n", p).is_err());
        let e = WebConfig::parse(
            "tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n",
            p,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
    }

    #[test]
    fn basic_auth() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let c = WebConfig::parse(
            &format!("basic_auth_users:\n  alice: '{hash}'\n"),
            Path::new("w.yml"),
        )
        .unwrap();
        let b64 = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(c.check_basic_auth(Some(&b64("alice:s3cret"))));
        assert!(c.check_basic_auth(Some(&b64("alice:s3cret"))));
        assert!(!c.check_basic_auth(Some(&b64("alice:wrong"))));
        assert!(!c.check_basic_auth(Some(&b64("bob:s3cret"))));
        assert!(!c.check_basic_auth(None));
        assert!(!c.check_basic_auth(Some("Bearer x")));
    }

    #[test]
    fn versions() {
        assert_eq!(tls_versions(None, None).unwrap().len(), 2);
        assert_eq!(tls_versions(Some("TLS13"), None).unwrap().len(), 1);
        assert!(tls_versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(tls_versions(Some("SSL3"), None).is_err());
    }
}
