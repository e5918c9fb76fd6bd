//! `--web.config.file`: the exporter-toolkit web configuration format
//! (`tls_server_config`, `http_server_config`, `basic_auth_users`).
//!
//! The file is validated when loaded; [`WebConfigWatcher`] re-reads it when
//! its contents change and keeps the last good configuration when the new
//! one is broken.
//!
//! Supported as the Go toolkit does: certificate and key files (re-read on
//! the first handshake after either changes, so a renewed certificate is
//! served without editing the YAML) or inline `cert`/`key`, every `client_auth_type`, `client_ca_file`,
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
use rustls::pki_types::CertificateDer;
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

/// The highest bcrypt cost accepted in `basic_auth_users`. Each cost step
/// doubles the work of one check: cost 10 (the usual default) takes about
/// 60 ms on one core, 17 about 8 s, 31 about 4 days — a hash of cost 31
/// would hang every request and the reload that hashes it. A config with a
/// higher cost is refused (at start-up, and by a reload, which then keeps
/// the running config) with an error naming the user.
pub const MAX_BCRYPT_COST: u32 = 17;

/// What an unknown user's password is checked against, so that a request
/// for a user that does not exist costs a bcrypt check too (cost 10, the
/// toolkit's and `htpasswd -B`'s default: the same time as a wrong password
/// of a user hashed with the default cost) and timing does not reveal which
/// users exist. Fixed, so loading a config never hashes anything.
const DUMMY_HASH: &str = "$2b$10$pT4SB3kSQF08Mccd6WfrHON8C/DBD/kDqH1Mg9QZIJZyGwLd5WSQi";

/// The cost of a bcrypt hash (`$2b$10$...`), if it looks like one.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = hash
        .strip_prefix("$2a$")
        .or_else(|| hash.strip_prefix("$2b$"))
        .or_else(|| hash.strip_prefix("$2y$"))?;
    let (cost, _) = rest.split_once('$')?;
    (cost.len() == 2).then_some(())?;
    cost.parse().ok()
}

/// A loaded, validated web configuration.
pub struct WebConfig {
    /// The TLS server configuration, when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    users: HashMap<String, String>,
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
        let mut names: Vec<&String> = users.keys().collect();
        names.sort();
        for user in names {
            match bcrypt_cost(&users[user]) {
                Some(cost) if (4..=MAX_BCRYPT_COST).contains(&cost) => {}
                Some(cost) if cost > MAX_BCRYPT_COST => {
                    return Err(invalid(format!(
                        "basic_auth_users: the bcrypt cost {cost} of user {user:?} is above the maximum of {MAX_BCRYPT_COST} (each check would take hours or more); hash the password again with a cost of 10 to {MAX_BCRYPT_COST}"
                    )))
                }
                _ => {
                    return Err(invalid(format!(
                        "basic_auth_users: the hash for user {user:?} is not a bcrypt hash"
                    )))
                }
            }
        }
        Ok(WebConfig {
            tls,
            headers,
            users,
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
            None => (DUMMY_HASH, false),
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
    let cert_source = match (t.cert, &t.cert_file) {
        (Some(inline), _) => PemSource::Inline(inline),
        (None, Some(f)) => PemSource::File(resolve(base, f)),
        (None, None) => unreachable!("checked above"),
    };
    let key_source = match (t.key, &t.key_file) {
        (Some(inline), _) => PemSource::Inline(inline),
        (None, Some(f)) => PemSource::File(resolve(base, f)),
        (None, None) => unreachable!("checked above"),
    };
    let versions = tls_versions(t.min_version.as_deref(), t.max_version.as_deref())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_cert = server_cert::ServerCert::load(cert_source, key_source, provider.clone())?;
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
    let mut cfg = builder.with_cert_resolver(Arc::new(server_cert));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(cfg)))
}

/// Where a certificate or key comes from.
#[derive(Debug, Clone)]
enum PemSource {
    /// Inline in the web config (`cert`, `key`).
    Inline(String),
    /// A file (`cert_file`, `key_file`), re-read when it changes.
    File(PathBuf),
}

mod server_cert {
    //! The server certificate, re-read on the first handshake after its
    //! files change. The Go toolkit reads `cert_file` and `key_file` on
    //! every handshake, so a certificate renewed on disk (cert-manager and
    //! certbot replace the files by rename) is served without touching the
    //! web config; here two `stat` calls per handshake notice the change
    //! (inode, size or mtime of either file) and only then are the files
    //! read. A new pair that does not load (half written, or a key that
    //! does not match the certificate) is logged once and the last good
    //! pair stays in use until the files change again.

    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::sync::{Arc, RwLock};

    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;

    use super::PemSource;
    use crate::sync::RwLockExt;

    /// What identifies one version of a file: a rename gives a new inode,
    /// an edit in place a new size or mtime.
    type Stamp = Option<(u64, u64, i64, i64, u64)>;

    fn stamp(source: &PemSource) -> Stamp {
        match source {
            PemSource::Inline(_) => None,
            PemSource::File(p) => std::fs::metadata(p)
                .ok()
                .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size())),
        }
    }

    fn certificates(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs: Vec<CertificateDer<'static>> = match source {
            PemSource::Inline(pem) => CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("tls_server_config.cert: {e}"))?,
            PemSource::File(p) => CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("cert_file {}: {e}", p.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("cert_file {}: {e}", p.display()))?,
        };
        if certs.is_empty() {
            return Err("tls_server_config: no certificate found".into());
        }
        Ok(certs)
    }

    fn private_key(source: &PemSource) -> Result<PrivateKeyDer<'static>, String> {
        match source {
            PemSource::Inline(pem) => PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| format!("tls_server_config.key: {e}")),
            PemSource::File(p) => PrivateKeyDer::from_pem_file(p)
                .map_err(|e| format!("key_file {}: {e}", p.display())),
        }
    }

    fn file_name(source: &PemSource) -> &Path {
        match source {
            PemSource::Inline(_) => Path::new("(inline)"),
            PemSource::File(p) => p,
        }
    }

    struct Loaded {
        stamps: [Stamp; 2],
        key: Arc<CertifiedKey>,
    }

    /// The certificate and key a TLS server presents (see the module docs).
    pub(super) struct ServerCert {
        cert: PemSource,
        key: PemSource,
        provider: Arc<CryptoProvider>,
        loaded: RwLock<Loaded>,
    }

    impl std::fmt::Debug for ServerCert {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ServerCert")
                .field("cert", &file_name(&self.cert))
                .field("key", &file_name(&self.key))
                .finish()
        }
    }

    impl ServerCert {
        /// Loads the pair; an error names the file and what is wrong.
        pub(super) fn load(
            cert: PemSource,
            key: PemSource,
            provider: Arc<CryptoProvider>,
        ) -> Result<ServerCert, String> {
            let stamps = [stamp(&cert), stamp(&key)];
            let certified = Self::read(&cert, &key, &provider)?;
            Ok(ServerCert {
                cert,
                key,
                provider,
                loaded: RwLock::new(Loaded {
                    stamps,
                    key: Arc::new(certified),
                }),
            })
        }

        fn read(
            cert: &PemSource,
            key: &PemSource,
            provider: &CryptoProvider,
        ) -> Result<CertifiedKey, String> {
            CertifiedKey::from_der(certificates(cert)?, private_key(key)?, provider)
                .map_err(|e| format!("certificate and key: {e}"))
        }

        /// The pair to present now, re-read first when a file changed.
        fn current(&self) -> Arc<CertifiedKey> {
            let stamps = [stamp(&self.cert), stamp(&self.key)];
            {
                let loaded = self.loaded.read_unpoisoned();
                if loaded.stamps == stamps {
                    return loaded.key.clone();
                }
            }
            let mut loaded = self.loaded.write_unpoisoned();
            if loaded.stamps != stamps {
                loaded.stamps = stamps;
                match Self::read(&self.cert, &self.key, &self.provider) {
                    Ok(k) => {
                        loaded.key = Arc::new(k);
                        tracing::info!(cert_file = %file_name(&self.cert).display(), "TLS certificate reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(err = %e, "reloading the TLS certificate failed; serving the previous one")
                    }
                }
            }
            loaded.key.clone()
        }
    }

    impl ResolvesServerCert for ServerCert {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.current())
        }
    }
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
                if text.trim().is_empty() {
                    tracing::warn!(file = %p.display(), "web config file is empty: serving without TLS and basic auth");
                }
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

    /// Re-reads the file if its contents changed; a broken or empty file
    /// keeps the last good configuration. Returns true when a new one was
    /// installed.
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
        if text.trim().is_empty() {
            // Most likely a deploy tool that truncates before writing:
            // dropping TLS and auth until it writes would be worse.
            tracing::error!(file = %path.display(), "web config file became empty; keeping the running config");
            *self.last_text.lock_unpoisoned() = Some(text);
            return false;
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

    /// A syntactically valid bcrypt hash of `cost` (never verified here).
    fn hash_of_cost(cost: u32) -> String {
        format!("$2b${cost:02}${}", &DUMMY_HASH[7..])
    }

    #[test]
    fn absurd_bcrypt_costs_are_refused_naming_the_user() {
        let p = Path::new("w.yml");
        let started = std::time::Instant::now();
        let e = WebConfig::parse(
            &format!(
                "basic_auth_users:\n  alice: '{}'\n  mallory: '{}'\n",
                hash_of_cost(10),
                hash_of_cost(31)
            ),
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("mallory") && e.contains("31"), "{e}");
        assert!(!e.contains("alice"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
        let at_max = format!(
            "basic_auth_users:\n  bob: '{}'\n",
            hash_of_cost(MAX_BCRYPT_COST)
        );
        assert!(WebConfig::parse(&at_max, p).is_ok());
    }

    #[test]
    fn unknown_users_are_checked_against_a_fixed_cost_hash() {
        // Loading hashes nothing, whatever the users' costs.
        let started = std::time::Instant::now();
        let c = WebConfig::parse(
            &format!("basic_auth_users:\n  bob: '{}'\n", hash_of_cost(16)),
            Path::new("w.yml"),
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(bcrypt_cost(DUMMY_HASH), Some(10));
        let users = WebConfig::parse(
            &format!(
                "basic_auth_users:\n  bob: '{}'\n",
                bcrypt::hash("x", 4).unwrap()
            ),
            Path::new("w.yml"),
        )
        .unwrap();
        let b64 = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("nobody:x")
        );
        assert!(!users.check_basic_auth(Some(&b64)));
        drop(c);
    }

    #[test]
    fn versions() {
        assert_eq!(tls_versions(None, None).unwrap().len(), 2);
        assert_eq!(tls_versions(Some("TLS13"), None).unwrap().len(), 1);
        assert!(tls_versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(tls_versions(Some("SSL3"), None).is_err());
    }
}
