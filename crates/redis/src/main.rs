//! oxmon-redis: a drop-in replacement for redis_exporter.
//!
//! `/metrics` scrapes `--redis.addr`; `/scrape?target=` scrapes an
//! allow-listed target (see the crate README).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::{
    Collector, Exporter, HttpError, MetricFamily, Registry, Route, RouteRequest, ScrapeContext,
};

mod info;
mod keygroups;
mod keys;
mod names;
mod scrape;
mod streams;
mod target;

use scrape::{Options, Target, TargetCache, TlsFiles};
use target::{AllowList, Credentials, Decision, PasswordMap, TargetSpec};

const DEFAULT_PORT: u16 = 9121;

#[derive(Parser)]
#[command(
    version,
    about = "Prometheus exporter for Redis, compatible with redis_exporter"
)]
struct Cli {
    #[command(flatten)]
    common: oxmon_core::CommonArgs,

    /// Address of the Redis instance scraped by /metrics
    /// (redis://host:port, rediss://host:port, unix:///path); empty: none,
    /// /metrics shows only the exporter's own metrics.
    #[arg(
        long = "redis.addr",
        env = "REDIS_ADDR",
        default_value = "redis://localhost:6379",
        hide_env_values = true
    )]
    redis_addr: String,

    /// ACL user for --redis.addr.
    #[arg(long = "redis.user", env = "REDIS_USER", hide_env_values = true)]
    redis_user: Option<String>,

    /// Password for --redis.addr (prefer the REDIS_PASSWORD environment
    /// variable or --redis.password-file; flags are visible in ps).
    #[arg(
        long = "redis.password",
        env = "REDIS_PASSWORD",
        hide_env_values = true,
        hide_default_value = true
    )]
    redis_password: Option<String>,

    /// JSON file mapping target URIs to passwords
    /// ({"redis://host:6379": "password"}); a password is only sent to its
    /// own target.
    #[arg(long = "redis.password-file", env = "REDIS_PASSWORD_FILE")]
    password_file: Option<PathBuf>,

    /// Namespace (prefix) of the metrics.
    #[arg(
        long = "namespace",
        env = "REDIS_EXPORTER_NAMESPACE",
        default_value = "redis"
    )]
    namespace: String,

    /// Timeout for connecting to Redis and for each command.
    #[arg(long = "connection-timeout", env = "REDIS_EXPORTER_CONNECTION_TIMEOUT", default_value = "15s", value_parser = oxmon_core::parse_duration)]
    connection_timeout: Duration,

    /// Keys or glob patterns to export sizes and numeric values of
    /// (comma-separated, db3=pattern for other databases); globs use SCAN.
    #[arg(
        long = "check-keys",
        env = "REDIS_EXPORTER_CHECK_KEYS",
        default_value = ""
    )]
    check_keys: String,

    /// Single keys to export sizes and numeric values of (never scanned).
    #[arg(
        long = "check-single-keys",
        env = "REDIS_EXPORTER_CHECK_SINGLE_KEYS",
        default_value = ""
    )]
    check_single_keys: String,

    /// Patterns whose matching keys are counted (redis_keys_count).
    #[arg(
        long = "count-keys",
        env = "REDIS_EXPORTER_COUNT_KEYS",
        default_value = ""
    )]
    count_keys: String,

    /// Stream patterns (db3=pattern) whose streams, groups and consumers are
    /// exported; globs use SCAN.
    #[arg(
        long = "check-streams",
        env = "REDIS_EXPORTER_CHECK_STREAMS",
        default_value = ""
    )]
    check_streams: String,

    /// Single streams whose streams, groups and consumers are exported.
    #[arg(
        long = "check-single-streams",
        env = "REDIS_EXPORTER_CHECK_SINGLE_STREAMS",
        default_value = ""
    )]
    check_single_streams: String,

    /// Lua patterns (comma-separated) grouping keys by their captures for
    /// redis_key_group_count and redis_key_group_memory_usage_bytes; keys
    /// matching none are "unclassified".
    #[arg(
        long = "check-key-groups",
        env = "REDIS_EXPORTER_CHECK_KEY_GROUPS",
        default_value = ""
    )]
    check_key_groups: String,

    /// Key groups shown per database; the rest (least memory) are summed
    /// as "overflow".
    #[arg(
        long = "max-distinct-key-groups",
        env = "REDIS_EXPORTER_MAX_DISTINCT_KEY_GROUPS",
        default_value_t = 100
    )]
    max_distinct_key_groups: usize,

    /// COUNT hint of each SCAN of the key checks.
    #[arg(
        long = "check-keys-batch-size",
        env = "REDIS_EXPORTER_CHECK_KEYS_BATCH_SIZE",
        default_value_t = 1000
    )]
    check_keys_batch_size: u64,

    /// Time allowed for all key checks of one scrape; unfinished patterns
    /// give no series.
    #[arg(long = "check-keys-time-budget", env = "REDIS_EXPORTER_CHECK_KEYS_TIME_BUDGET", default_value = "2s", value_parser = oxmon_core::parse_duration)]
    check_keys_time_budget: Duration,

    /// Name of the CONFIG command, for servers that rename it.
    #[arg(
        long = "config-command",
        env = "REDIS_EXPORTER_CONFIG_COMMAND",
        default_value = "CONFIG"
    )]
    config_command: String,

    /// Name the connection "oxmon-redis" (CLIENT SETNAME).
    #[arg(long = "set-client-name", env = "REDIS_EXPORTER_SET_CLIENT_NAME", default_value_t = true, action = clap::ArgAction::Set)]
    set_client_name: bool,

    /// Export every setting (CONFIG GET *) as redis_config_key_value and
    /// redis_config_value; password settings are never exported.
    #[arg(
        long = "include-config-metrics",
        env = "REDIS_EXPORTER_INCL_CONFIG_METRICS"
    )]
    include_config_metrics: bool,

    /// Export CLIENT LIST as redis_connected_clients_details.
    #[arg(long = "export-client-list", env = "REDIS_EXPORTER_EXPORT_CLIENT_LIST")]
    export_client_list: bool,

    /// Include the client's port in redis_connected_clients_details (more
    /// series).
    #[arg(long = "export-client-port", env = "REDIS_EXPORTER_EXPORT_CLIENT_PORT")]
    export_client_port: bool,

    /// Also export total_system_memory as redis_total_system_memory_bytes.
    #[arg(
        long = "include-system-metrics",
        env = "REDIS_EXPORTER_INCL_SYSTEM_METRICS"
    )]
    include_system_metrics: bool,

    /// PEM client certificate for rediss:// targets.
    #[arg(
        long = "tls-client-cert-file",
        env = "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE"
    )]
    tls_client_cert_file: Option<PathBuf>,

    /// PEM client key for rediss:// targets.
    #[arg(
        long = "tls-client-key-file",
        env = "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE"
    )]
    tls_client_key_file: Option<PathBuf>,

    /// PEM CA bundle to verify rediss:// servers (default: system roots).
    #[arg(long = "tls-ca-cert-file", env = "REDIS_EXPORTER_TLS_CA_CERT_FILE")]
    tls_ca_cert_file: Option<PathBuf>,

    /// Do not verify the server certificate of rediss:// targets.
    #[arg(
        long = "skip-tls-verification",
        env = "REDIS_EXPORTER_SKIP_TLS_VERIFICATION"
    )]
    skip_tls_verification: bool,

    /// redis_exporter's spelling of --log.level=debug.
    #[arg(long = "debug", env = "REDIS_EXPORTER_DEBUG")]
    debug: bool,

    /// redis_exporter's spelling of --log.format (txt is logfmt).
    #[arg(long = "log-format", env = "REDIS_EXPORTER_LOG_FORMAT", value_parser = ["txt", "json"])]
    log_format: Option<String>,

    /// redis_exporter's spelling of --web.disable-exporter-metrics.
    #[arg(long = "redis-only-metrics", env = "REDIS_EXPORTER_REDIS_ONLY_METRICS")]
    redis_only_metrics: bool,

    /// Accepted for redis_exporter compatibility: settings holding secrets
    /// are never exported, whatever the value.
    #[arg(long = "redact-config-metrics", env = "REDIS_EXPORTER_REDACT_CONFIG_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    redact_config_metrics: bool,

    /// Targets /scrape may reach (comma-separated): CIDRs or IPs checked
    /// against every resolved address, host globs with optional port
    /// (*.cache.internal, redis-?:6380), unix:///socket/globs. Without an
    /// allow-list only --redis.addr may be scraped.
    #[arg(
        long = "scrape.allowed-targets",
        env = "REDIS_EXPORTER_ALLOWED_TARGETS",
        value_delimiter = ','
    )]
    allowed_targets: Vec<String>,

    /// File with more allowed targets, one per line (# comments).
    #[arg(
        long = "scrape.allowed-targets-file",
        env = "REDIS_EXPORTER_ALLOWED_TARGETS_FILE"
    )]
    allowed_targets_file: Option<PathBuf>,
}

fn read_pem(path: &Option<PathBuf>, what: &str) -> Result<Option<Vec<u8>>, String> {
    path.as_ref()
        .map(|p| std::fs::read(p).map_err(|e| format!("reading {what} {}: {e}", p.display())))
        .transpose()
}

/// `/metrics`: the configured instance.
struct MainCollector {
    target: Arc<Target>,
    opts: Arc<Options>,
}

impl Collector for MainCollector {
    fn name(&self) -> &str {
        "redis"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            out.extend(self.target.scrape(&self.opts, ctx).await);
            Ok(())
        })
    }
}

/// `/scrape?target=`: allow-listed targets with their own credentials.
struct ScrapeRoute {
    opts: Arc<Options>,
    /// `--redis.addr` (none when it is empty) and its normalised key.
    main: Option<(Arc<Target>, String)>,
    allow: AllowList,
    passwords: Arc<PasswordMap>,
    cache: TargetCache,
}

impl ScrapeRoute {
    async fn handle_inner(&self, req: &RouteRequest) -> Result<Vec<MetricFamily>, HttpError> {
        let raw = req
            .param("target")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| HttpError::bad_request("'target' parameter must be specified"))?;
        let spec = TargetSpec::parse(raw).map_err(|e| HttpError::bad_request(e.to_string()))?;
        let key = spec.key();
        let has_uri_creds = spec.user.is_some() || spec.password.is_some();
        let is_main = self.main.as_ref().is_some_and(|(_, k)| *k == key);
        if let (Some((main, _)), true, false) = (&self.main, is_main, has_uri_creds) {
            return Ok(main.scrape(&self.opts, &req.ctx).await);
        }
        let cache_key = if has_uri_creds {
            // Never share a connection authenticated with other credentials.
            format!("{key}#{}", fingerprint(&spec))
        } else {
            key.clone()
        };
        if let Some(t) = self.cache.get(&cache_key) {
            return Ok(self.scrape_cached(&cache_key, &t, req).await);
        }
        let pin = if is_main {
            None
        } else {
            match self.allow.check(&spec, req.ctx.remaining()).await {
                Decision::ByName => None,
                Decision::ByAddress(sa) => Some(sa),
                Decision::Refused(why) => {
                    tracing::warn!(target = %key, reason = %why, "refused /scrape target");
                    return Err(HttpError::forbidden(format!(
                        "target {key} is not allowed: {why}"
                    )));
                }
            }
        };
        let creds = if has_uri_creds {
            Credentials {
                user: spec.user.clone(),
                password: spec.password.clone(),
            }
        } else {
            self.passwords.get(&spec).cloned().unwrap_or_default()
        };
        let target =
            Target::new(&spec, creds, &self.opts.tls, pin).map_err(HttpError::bad_request)?;
        let t = self.cache.insert(cache_key.clone(), Arc::new(target));
        Ok(self.scrape_cached(&cache_key, &t, req).await)
    }

    async fn scrape_cached(
        &self,
        cache_key: &str,
        t: &Arc<Target>,
        req: &RouteRequest,
    ) -> Vec<MetricFamily> {
        let fams = t.scrape(&self.opts, &req.ctx).await;
        let up_name = self.opts.names.get("up").0;
        let down = fams.iter().any(|f| {
            f.name == up_name
                && f.metrics
                    .first()
                    .is_some_and(|m| m.value == oxmon_core::metrics::Value::Single(0.0))
        });
        if down {
            // Re-resolve and re-check the allow-list on the next request.
            self.cache.remove(cache_key);
        }
        fams
    }
}

/// A short, non-reversible tag for URI credentials (cache key only).
fn fingerprint(spec: &TargetSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    spec.user.hash(&mut h);
    spec.password.hash(&mut h);
    h.finish()
}

impl Route for ScrapeRoute {
    fn handle<'a>(
        &'a self,
        req: &'a RouteRequest,
    ) -> BoxFuture<'a, Result<Vec<MetricFamily>, HttpError>> {
        Box::pin(async move {
            let r = self.handle_inner(req).await;
            if r.is_err() {
                self.opts
                    .request_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            r
        })
    }
}

fn build(cli: Cli) -> Result<Exporter, oxmon_core::BuildError> {
    if cli.namespace.is_empty()
        || !cli
            .namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || cli.namespace.as_bytes()[0].is_ascii_digit()
    {
        return Err(format!("invalid --namespace {:?}", cli.namespace).into());
    }
    let names = names::Names::new(&cli.namespace, cli.include_system_metrics);
    let keys = keys::KeyChecks {
        check: keys::parse_key_list(&cli.check_keys).map_err(|e| format!("--check-keys: {e}"))?,
        single: keys::parse_key_list(&cli.check_single_keys)
            .map_err(|e| format!("--check-single-keys: {e}"))?,
        count: keys::parse_key_list(&cli.count_keys).map_err(|e| format!("--count-keys: {e}"))?,
        streams: keys::parse_key_list(&cli.check_streams)
            .map_err(|e| format!("--check-streams: {e}"))?,
        single_streams: keys::parse_key_list(&cli.check_single_streams)
            .map_err(|e| format!("--check-single-streams: {e}"))?,
        batch_size: cli.check_keys_batch_size.max(1),
        budget: cli.check_keys_time_budget,
    };
    let tls = TlsFiles {
        client_cert: read_pem(&cli.tls_client_cert_file, "--tls-client-cert-file")?,
        client_key: read_pem(&cli.tls_client_key_file, "--tls-client-key-file")?,
        ca_cert: read_pem(&cli.tls_ca_cert_file, "--tls-ca-cert-file")?,
        skip_verify: cli.skip_tls_verification,
    };
    if tls.client_cert.is_some() != tls.client_key.is_some() {
        return Err("--tls-client-cert-file and --tls-client-key-file go together".into());
    }
    let passwords = match &cli.password_file {
        Some(p) => PasswordMap::load(p)?,
        None => PasswordMap::default(),
    };
    let mut allow = AllowList::parse(cli.allowed_targets.iter().map(String::as_str))
        .map_err(|e| format!("--scrape.allowed-targets: {e}"))?;
    if let Some(p) = &cli.allowed_targets_file {
        allow.extend(AllowList::load(p)?);
    }

    let opts = Arc::new(Options {
        names,
        connection_timeout: cli.connection_timeout,
        tls,
        keys,
        config_command: cli.config_command.clone(),
        set_client_name: cli.set_client_name,
        key_groups: keygroups::KeyGroups {
            patterns: keygroups::parse_patterns(&cli.check_key_groups),
            max_distinct: cli.max_distinct_key_groups,
            batch: cli.check_keys_batch_size.max(1),
        },
        client_list: cli.export_client_list,
        all_config: cli.include_config_metrics,
        client_port: cli.export_client_port,
        request_errors: Default::default(),
    });
    // An empty --redis.addr (as redis_exporter allows) serves only /scrape.
    let main = if cli.redis_addr.trim().is_empty() {
        None
    } else {
        let spec = TargetSpec::parse(&cli.redis_addr).map_err(|e| format!("--redis.addr: {e}"))?;
        // Credentials: in the URI, else the password file, else
        // REDIS_USER/REDIS_PASSWORD.
        let creds = if spec.user.is_some() || spec.password.is_some() {
            Credentials {
                user: spec.user.clone(),
                password: spec.password.clone(),
            }
        } else if let Some(c) = passwords.get(&spec) {
            c.clone()
        } else {
            Credentials {
                user: cli.redis_user.clone().filter(|u| !u.is_empty()),
                password: cli.redis_password.clone().filter(|p| !p.is_empty()),
            }
        };
        Some((
            Arc::new(Target::new(&spec, creds, &opts.tls, None)?),
            spec.key(),
        ))
    };
    tracing::info!(
        target = main
            .as_ref()
            .map_or("none (only /scrape)", |(_, k)| k.as_str()),
        allowed_targets = if allow.is_empty() {
            "only --redis.addr"
        } else {
            "allow-list"
        },
        password_file_entries = passwords.len(),
        "configured"
    );

    let mut registry = Registry::new(cli.namespace.clone());
    if let Some((target, _)) = &main {
        registry.register(Arc::new(MainCollector {
            target: Arc::clone(target),
            opts: Arc::clone(&opts),
        }));
    }
    let route = ScrapeRoute {
        opts,
        main,
        allow,
        passwords: Arc::new(passwords),
        cache: TargetCache::new(1000),
    };
    Ok(Exporter {
        name: "oxmon-redis",
        description: "Prometheus exporter for Redis (redis_exporter compatible).",
        registry,
        routes: vec![(
            "/scrape".to_string(),
            Arc::new(route),
            "multi-target: /scrape?target=redis://host:port (allow-listed targets only)"
                .to_string(),
        )],
    })
}

/// redis_exporter parses flags with Go's `flag` package, which also accepts
/// a single dash (`-redis.addr=...`); rewrite those to `--` so existing
/// command lines keep working. Only known long flag names are rewritten.
fn go_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    longs.extend(["version", "help"]);
    args.map(|a| {
        let Some(s) = a.to_str() else { return a };
        match s.strip_prefix('-') {
            Some(rest) if !rest.starts_with('-') => {
                let name = rest.split('=').next().unwrap_or(rest);
                if name.len() > 1 && longs.contains(&name) {
                    format!("-{s}").into()
                } else {
                    a
                }
            }
            _ => a,
        }
    })
    .collect()
}

/// The common flags with redis_exporter's spellings (`--debug`,
/// `--log-format`, `--redis-only-metrics`) folded in.
fn common_args(cli: &Cli) -> oxmon_core::CommonArgs {
    let mut common = cli.common.clone();
    if cli.debug {
        common.log.level = "debug".into();
    }
    if let Some(f) = &cli.log_format {
        common.log.format = if f == "json" { "json" } else { "logfmt" }.into();
    }
    common.web.disable_exporter_metrics |= cli.redis_only_metrics;
    common
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(go_style_args(std::env::args_os()));
    let common = common_args(&cli);
    oxmon_core::run(&common, DEFAULT_PORT, move || build(cli))
}

#[cfg(test)]
mod cli_tests {
    use super::*;

    #[test]
    fn single_dash_go_flags() {
        let args = [
            "oxmon-redis",
            "-redis.addr=redis://h:1",
            "-namespace",
            "kv",
            "--check-keys=-x",
            "-h2",
        ];
        let out = go_style_args(args.iter().map(std::ffi::OsString::from));
        let out: Vec<_> = out.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            out,
            [
                "oxmon-redis",
                "--redis.addr=redis://h:1",
                "--namespace",
                "kv",
                "--check-keys=-x",
                "-h2"
            ]
        );
        let cli = Cli::parse_from(go_style_args(
            ["x", "-redis.addr", "redis://h:2", "-web.listen-address=:1"]
                .iter()
                .map(Into::into),
        ));
        assert_eq!(cli.redis_addr, "redis://h:2");
        assert_eq!(cli.common.web.listen_address, [":1"]);
        let cli = Cli::parse_from(go_style_args(
            ["x", "-debug", "-log-format=txt", "-redis-only-metrics"]
                .iter()
                .map(Into::into),
        ));
        let c = common_args(&cli);
        assert_eq!(
            (c.log.level.as_str(), c.log.format.as_str()),
            ("debug", "logfmt")
        );
        assert!(c.web.disable_exporter_metrics);
        let c = common_args(&Cli::parse_from(["x", "--log-format", "json"]));
        assert_eq!(
            (c.log.level.as_str(), c.log.format.as_str()),
            ("info", "json")
        );
        assert!(!c.web.disable_exporter_metrics);
    }
}
