//! Opening a target's connection: TCP, TLS (`rediss://`) or a unix socket.
//!
//! The exporter opens the byte stream itself, wraps it in the reply cap
//! ([`crate::reply_limit`]), and hands it to the Redis client, which runs
//! its handshake (AUTH, SELECT) and multiplexes commands on it. The client's
//! own connect would give no place for the cap. The task that drives a
//! connection is aborted when the connection is dropped, so a server that
//! never answers cannot keep a dropped connection's socket open.
//!
//! TLS: rustls with the `ring` provider; the server certificate is checked
//! against `--tls-ca-cert-file` (else the system roots) and the target's
//! host name or address, unless `--skip-tls-verification`; a client
//! certificate is presented when `--tls-client-cert-file` and
//! `--tls-client-key-file` are given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, RedisResult};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply_limit::{Limited, Refusal, ReplyTooLarge};

/// Where a connection goes.
#[derive(Debug, Clone)]
pub enum Dial {
    /// Plain TCP to a name or address.
    Tcp {
        /// Name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// TLS over TCP; `name` is what the certificate is checked against.
    Tls {
        /// Name or address to connect to and verify.
        name: String,
        /// Port.
        port: u16,
        /// The client settings.
        config: Arc<rustls::ClientConfig>,
    },
    /// A unix socket.
    Unix(PathBuf),
}

/// A connection and the task that drives it, aborted on drop.
pub struct Connection {
    /// The multiplexed connection (clones share it).
    pub conn: MultiplexedConnection,
    driver: tokio::task::AbortHandle,
    refusal: Refusal,
}

impl Connection {
    /// Why the reply cap broke this connection, if it did (the commands
    /// that were waiting only see a closed connection).
    pub fn refused(&self) -> Option<&ReplyTooLarge> {
        self.refusal.get()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How to open a target's connections.
pub struct Endpoint {
    /// Where to.
    pub dial: Dial,
    /// Database, user and password for the handshake.
    pub settings: RedisConnectionInfo,
}

impl Endpoint {
    /// Opens a connection: the dial and TLS handshake within
    /// `connect_timeout`, then the Redis handshake; every reply capped at
    /// `max_reply` bytes, every command answered within `response_timeout`.
    pub async fn connect(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
        max_reply: u64,
    ) -> RedisResult<Connection> {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        let cfg = AsyncConnectionConfig::new().set_response_timeout(Some(response_timeout));
        match &self.dial {
            Dial::Tcp { host, port } => {
                let tcp = tokio::time::timeout(
                    connect_timeout,
                    tokio::net::TcpStream::connect((host.as_str(), *port)),
                )
                .await
                .map_err(|_| timed_out())??;
                let _ = tcp.set_nodelay(true);
                self.multiplex(tcp, cfg, max_reply).await
            }
            Dial::Tls { name, port, config } => {
                let server_name = ServerName::try_from(name.clone()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(connect_timeout, async {
                    let tcp = tokio::net::TcpStream::connect((name.as_str(), *port)).await?;
                    let _ = tcp.set_nodelay(true);
                    connector.connect(server_name, tcp).await
                })
                .await
                .map_err(|_| timed_out())??;
                self.multiplex(tls, cfg, max_reply).await
            }
            Dial::Unix(path) => {
                let unix =
                    tokio::time::timeout(connect_timeout, tokio::net::UnixStream::connect(path))
                        .await
                        .map_err(|_| timed_out())??;
                self.multiplex(unix, cfg, max_reply).await
            }
        }
    }

    async fn multiplex<S>(
        &self,
        stream: S,
        cfg: AsyncConnectionConfig,
        max_reply: u64,
    ) -> RedisResult<Connection>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let refusal = Refusal::default();
        let stream = Limited::new(stream, max_reply, refusal.clone());
        let (conn, driver) =
            MultiplexedConnection::new_with_config(&self.settings, stream, cfg).await?;
        let driver = tokio::spawn(driver).abort_handle();
        Ok(Connection {
            conn,
            driver,
            refusal,
        })
    }
}

/// The TLS client settings from the `--tls-*` flags' file contents.
pub fn tls_client_config(
    ca_cert: Option<&[u8]>,
    client_pair: Option<(&[u8], &[u8])>,
    skip_verify: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                oxmon_core::tls_client::AcceptAnyServerCert::new(provider),
            ))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca_cert {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("--tls-ca-cert-file: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("--tls-ca-cert-file: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("--tls-ca-cert-file: no certificate found".into());
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(format!(
                        "no system root certificates found ({} errors); give --tls-ca-cert-file",
                        found.errors.len()
                    ));
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match client_pair {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("--tls-client-cert-file: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| format!("--tls-client-key-file: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--tls-client-cert-file and --tls-client-key-file: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
