//! From the command line to the settings the scrapes use: metric names,
//! keyspace checks, TLS files, the password file, the `/scrape`
//! allow-list and the `--redis.addr` target with its credentials.
//!
//! Everything is checked here, at start-up: a bad flag, an unreadable file
//! or a malformed entry stops the exporter with a message naming the flag
//! or file, never one containing a password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::target_guard::{AllowList, AllowListError};

use crate::address::{Address, AddressError};
use crate::cli::Cli;
use crate::credentials::{CredentialResolver, PasswordFileError, PasswordMap};
use crate::keygroups::{self, KeyGroups};
use crate::keys::KeyChecks;
use crate::keyspace::{parse_key_list, KeyListError, KeyPattern, ScanLimits};
use crate::names::Names;
use crate::streams::StreamChecks;
use crate::target::{ClientError, Options, Target, TlsFiles};

/// A setting that stops the exporter from starting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--namespace` is not a valid metric name prefix.
    #[error("invalid --namespace {0:?}: use letters, digits and _, not starting with a digit")]
    Namespace(String),
    /// A key list flag (`--check-keys`, ...) has a bad entry.
    #[error("{flag}: {source}")]
    KeyList {
        /// The flag.
        flag: &'static str,
        /// The bad entry.
        source: KeyListError,
    },
    /// A file named by a flag cannot be read.
    #[error("reading {flag} {}: {source}", path.display())]
    ReadFile {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Only one half of the TLS client certificate pair is given.
    #[error("--tls-client-cert-file and --tls-client-key-file go together")]
    TlsClientPair,
    /// The password file cannot be used.
    #[error(transparent)]
    PasswordFile(#[from] PasswordFileError),
    /// A `--scrape.allowed-targets` entry is malformed.
    #[error("--scrape.allowed-targets: {0}")]
    AllowedTargets(AllowListError),
    /// The allowed targets file cannot be used (the message names it).
    #[error(transparent)]
    AllowedTargetsFile(AllowListError),
    /// `--redis.addr` is not a Redis address.
    #[error("--redis.addr: {0}")]
    RedisAddr(AddressError),
    /// The Redis client for `--redis.addr` cannot be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Everything the exporter serves with.
pub struct Config {
    /// Metric name prefix.
    pub namespace: String,
    /// Settings shared by every target.
    pub opts: Arc<Options>,
    /// `--redis.addr` (none when it is empty: `/scrape` only).
    pub main: Option<Arc<Target>>,
    /// Credentials of every target.
    pub credentials: CredentialResolver,
    /// Which targets `/scrape` may reach: the allow-list, and
    /// `--redis.addr` always.
    pub allow: AllowList,
}

/// A metric name prefix: letters, digits and `_`, not starting with a digit.
fn valid_namespace(ns: &str) -> bool {
    ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && ns.bytes().next().is_some_and(|b| !b.is_ascii_digit())
}

fn key_list(flag: &'static str, value: &str) -> Result<Vec<KeyPattern>, ConfigError> {
    parse_key_list(value).map_err(|source| ConfigError::KeyList { flag, source })
}

fn read_pem(flag: &'static str, path: Option<&Path>) -> Result<Option<Vec<u8>>, ConfigError> {
    path.map(|p| {
        std::fs::read(p).map_err(|source| ConfigError::ReadFile {
            flag,
            path: p.to_path_buf(),
            source,
        })
    })
    .transpose()
}

impl Config {
    /// Checks and assembles the settings of `cli`.
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        if !valid_namespace(&cli.namespace) {
            return Err(ConfigError::Namespace(cli.namespace.clone()));
        }
        let tls = TlsFiles {
            client_cert: read_pem(
                "--tls-client-cert-file",
                cli.tls_client_cert_file.as_deref(),
            )?,
            client_key: read_pem("--tls-client-key-file", cli.tls_client_key_file.as_deref())?,
            ca_cert: read_pem("--tls-ca-cert-file", cli.tls_ca_cert_file.as_deref())?,
            skip_verify: cli.skip_tls_verification,
        };
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            return Err(ConfigError::TlsClientPair);
        }
        let opts = Arc::new(Options {
            names: Names::new(&cli.namespace, cli.include_system_metrics),
            connection_timeout: cli.connection_timeout,
            tls,
            keys: KeyChecks {
                check: key_list("--check-keys", &cli.check_keys)?,
                single: key_list("--check-single-keys", &cli.check_single_keys)?,
                count: key_list("--count-keys", &cli.count_keys)?,
            },
            streams: StreamChecks {
                patterns: key_list("--check-streams", &cli.check_streams)?,
                single: key_list("--check-single-streams", &cli.check_single_streams)?,
            },
            key_groups: KeyGroups {
                patterns: keygroups::parse_patterns(&cli.check_key_groups),
                max_distinct: cli.max_distinct_key_groups,
            },
            scan: ScanLimits {
                batch_size: cli.check_keys_batch_size.max(1),
                budget: cli.check_keys_time_budget,
            },
            config_command: cli.config_command.clone(),
            set_client_name: cli.set_client_name,
            all_config: cli.include_config_metrics,
            client_list: cli.export_client_list,
            client_port: cli.export_client_port,
            request_errors: Default::default(),
            failures: FailureLog::new(FailureSubject::Target),
        });

        let mut allow = AllowList::parse(cli.allowed_targets.iter().map(String::as_str))
            .map_err(ConfigError::AllowedTargets)?;
        if let Some(p) = &cli.allowed_targets_file {
            allow.extend(AllowList::load(p).map_err(ConfigError::AllowedTargetsFile)?);
        }

        // An empty --redis.addr (as redis_exporter allows) serves only /scrape.
        let main_addr = match cli.redis_addr.trim() {
            "" => None,
            addr => Some(Address::parse(addr).map_err(ConfigError::RedisAddr)?),
        };
        let passwords = match &cli.password_file {
            Some(p) => PasswordMap::load(p)?,
            None => PasswordMap::default(),
        };
        let credentials = CredentialResolver::new(
            passwords,
            main_addr.as_ref(),
            cli.redis_user.clone(),
            cli.redis_password.clone(),
        );
        if let Some(addr) = &main_addr {
            allow.permit(&addr.guard_target());
        }
        let main = match &main_addr {
            Some(addr) => Some(Arc::new(Target::new(
                addr,
                credentials.resolve(addr),
                &opts.tls,
                None,
            )?)),
            None => None,
        };
        Ok(Config {
            namespace: cli.namespace.clone(),
            opts,
            main,
            credentials,
            allow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("oxmon-redis").chain(args.iter().copied()))
            .unwrap();
        Config::from_cli(&cli)
    }

    #[test]
    fn namespaces() {
        for ok in ["redis", "kv_2", "_x"] {
            assert!(valid_namespace(ok), "{ok}");
        }
        for bad in ["", "2kv", "kv-x", "kv x"] {
            assert!(!valid_namespace(bad), "{bad}");
        }
        let err = config(&["--namespace=9x"]).err().unwrap().to_string();
        assert!(err.contains("--namespace"), "{err}");
    }

    /// Each rejected setting names the flag (or file) that holds it.
    #[test]
    fn errors_name_the_flag() {
        let msg = |args: &[&str]| config(args).err().unwrap().to_string();
        assert!(msg(&["--count-keys=dbx=a"]).starts_with("--count-keys: "));
        assert!(msg(&["--check-single-streams=db1="]).starts_with("--check-single-streams: "));
        let err = msg(&["--tls-ca-cert-file=/nonexistent/ca.pem"]);
        assert!(
            err.contains("--tls-ca-cert-file /nonexistent/ca.pem"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "x").unwrap();
        let err = msg(&[&format!("--tls-client-cert-file={}", cert.display())]);
        assert!(err.contains("go together"), "{err}");
        assert!(
            msg(&["--scrape.allowed-targets=bad host!"]).starts_with("--scrape.allowed-targets: ")
        );
        let err = msg(&["--redis.addr=redis://u:hidden@h:notaport"]);
        assert!(
            err.starts_with("--redis.addr: ") && !err.contains("hidden"),
            "{err}"
        );
        let pw = dir.path().join("pw.json");
        std::fs::write(&pw, "[]").unwrap();
        let err = msg(&[&format!("--redis.password-file={}", pw.display())]);
        assert!(err.contains("pw.json"), "{err}");
    }

    #[test]
    fn keyspace_settings_and_main_target() {
        let c = config(&[
            "--redis.addr=cache:7000",
            "--check-keys=a*,db2=b",
            "--check-streams=s*",
            "--check-keys-batch-size=0",
            "--check-key-groups=^(u):",
        ])
        .unwrap();
        assert_eq!(c.opts.keys.check.len(), 2);
        assert_eq!(c.opts.streams.patterns.len(), 1);
        assert!(c.opts.keys.single.is_empty() && c.opts.streams.single.is_empty());
        // A zero batch would make SCAN loop without progress.
        assert_eq!(c.opts.scan.batch_size, 1);
        assert_eq!(c.opts.key_groups.patterns, ["^(u):"]);
        assert_eq!(c.main.unwrap().key(), "redis://cache:7000");
        // An empty --redis.addr serves only /scrape.
        assert!(config(&["--redis.addr="]).unwrap().main.is_none());
    }
}
