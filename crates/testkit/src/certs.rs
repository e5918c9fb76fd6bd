//! A throwaway PKI for TLS tests, made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::util::{require_program, run_command};

/// A CA, a server certificate for `localhost` / `127.0.0.1` / `::1`, a
/// client certificate signed by the same CA, and a "rogue" client
/// certificate signed by an unrelated CA — all EC P-256, PEM, as files in a
/// temp dir (deleted on drop) and as bytes.
#[derive(Debug)]
pub struct TestCerts {
    dir: TempDir,
    /// The CA certificate.
    pub ca_pem: Vec<u8>,
    /// The server certificate (signed by the CA).
    pub server_cert_pem: Vec<u8>,
    /// The server key (PKCS#8).
    pub server_key_pem: Vec<u8>,
    /// A client certificate (CN `oxmon-test-client`, signed by the CA).
    pub client_cert_pem: Vec<u8>,
    /// The client key.
    pub client_key_pem: Vec<u8>,
    /// A client certificate signed by another CA.
    pub rogue_cert_pem: Vec<u8>,
    /// Its key.
    pub rogue_key_pem: Vec<u8>,
}

impl TestCerts {
    /// Generates everything (a few hundred ms); panics with "openssl not
    /// found: apt-get install openssl" when the command is missing.
    pub fn generate() -> TestCerts {
        let openssl = require_program("openssl", "openssl");
        let dir = tempfile::Builder::new()
            .prefix("oxmon-certs")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        crate::reaper::remove_on_abort(dir.path());
        let d = dir.path();
        let run = |args: &[&str]| {
            run_command(Command::new(&openssl).current_dir(d).args(args))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        let ca = |name: &str| {
            run(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
                "-days",
                "3650",
                "-subj",
                &format!("/CN=oxmon test {name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        };
        let leaf = |name: &str, cn: &str, ca: &str, ext: &str| {
            std::fs::write(d.join(format!("{name}.ext")), ext)
                .unwrap_or_else(|e| panic!("write {name}.ext: {e}"));
            run(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "3650",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        };
        let common = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n";
        ca("ca");
        ca("rogue-ca");
        leaf(
            "server",
            "localhost",
            "ca",
            &format!("{common}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"),
        );
        leaf(
            "client",
            "oxmon-test-client",
            "ca",
            &format!("{common}extendedKeyUsage=clientAuth\n"),
        );
        leaf(
            "rogue",
            "oxmon-test-client",
            "rogue-ca",
            &format!("{common}extendedKeyUsage=clientAuth\n"),
        );
        let read =
            |name: &str| std::fs::read(d.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
        TestCerts {
            ca_pem: read("ca.crt"),
            server_cert_pem: read("server.crt"),
            server_key_pem: read("server.key"),
            client_cert_pem: read("client.crt"),
            client_key_pem: read("client.key"),
            rogue_cert_pem: read("rogue.crt"),
            rogue_key_pem: read("rogue.key"),
            dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ca.crt`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// `server.crt`.
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    /// `server.key`.
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// `client.crt`.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.path().join("client.crt")
    }

    /// `client.key`.
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// The client certificate and key, as [`crate::http_get_tls`] takes them.
    pub fn client_identity(&self) -> (&[u8], &[u8]) {
        (&self.client_cert_pem, &self.client_key_pem)
    }

    /// The rogue client certificate and key.
    pub fn rogue_identity(&self) -> (&[u8], &[u8]) {
        (&self.rogue_cert_pem, &self.rogue_key_pem)
    }
}
