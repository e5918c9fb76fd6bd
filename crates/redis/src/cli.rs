//! The command line: redis_exporter's flags and environment variables,
//! plus the common oxmon flags.
//!
//! redis_exporter parses flags with Go's `flag` package, so existing command
//! lines may spell long flags with one dash (`-redis.addr=...`) and use its
//! names for common settings (`--debug`, `--log-format=txt|json`,
//! `--redis-only-metrics`); [`go_style_args`] and [`common_args`] map them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Prometheus exporter for Redis, compatible with redis_exporter"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: oxmon_core::CommonArgs,

    /// Address of the Redis instance scraped by /metrics
    /// (redis://host:port, rediss://host:port, unix:///path); empty: none,
    /// /metrics shows only the exporter's own metrics.
    #[arg(
        long = "redis.addr",
        env = "REDIS_ADDR",
        default_value = "redis://localhost:6379",
        hide_env_values = true
    )]
    pub redis_addr: String,

    /// ACL user for --redis.addr.
    #[arg(long = "redis.user", env = "REDIS_USER", hide_env_values = true)]
    pub redis_user: Option<String>,

    /// Password for --redis.addr (prefer the REDIS_PASSWORD environment
    /// variable or --redis.password-file; flags are visible in ps).
    #[arg(
        long = "redis.password",
        env = "REDIS_PASSWORD",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub redis_password: Option<String>,

    /// JSON file mapping target URIs to passwords
    /// ({"redis://host:6379": "password"}); a password is only sent to its
    /// own target.
    #[arg(long = "redis.password-file", env = "REDIS_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,

    /// Namespace (prefix) of the metrics.
    #[arg(
        long = "namespace",
        env = "REDIS_EXPORTER_NAMESPACE",
        default_value = "redis"
    )]
    pub namespace: String,

    /// Timeout for connecting to Redis and for each command.
    #[arg(long = "connection-timeout", env = "REDIS_EXPORTER_CONNECTION_TIMEOUT", default_value = "15s", value_parser = oxmon_core::parse_duration)]
    pub connection_timeout: Duration,

    /// Keys or glob patterns to export sizes and numeric values of
    /// (comma-separated, db3=pattern for other databases); globs use SCAN.
    #[arg(
        long = "check-keys",
        env = "REDIS_EXPORTER_CHECK_KEYS",
        default_value = ""
    )]
    pub check_keys: String,

    /// Single keys to export sizes and numeric values of (never scanned).
    #[arg(
        long = "check-single-keys",
        env = "REDIS_EXPORTER_CHECK_SINGLE_KEYS",
        default_value = ""
    )]
    pub check_single_keys: String,

    /// Patterns whose matching keys are counted (redis_keys_count).
    #[arg(
        long = "count-keys",
        env = "REDIS_EXPORTER_COUNT_KEYS",
        default_value = ""
    )]
    pub count_keys: String,

    /// Stream patterns (db3=pattern) whose streams, groups and consumers are
    /// exported; globs use SCAN.
    #[arg(
        long = "check-streams",
        env = "REDIS_EXPORTER_CHECK_STREAMS",
        default_value = ""
    )]
    pub check_streams: String,

    /// Single streams whose streams, groups and consumers are exported.
    #[arg(
        long = "check-single-streams",
        env = "REDIS_EXPORTER_CHECK_SINGLE_STREAMS",
        default_value = ""
    )]
    pub check_single_streams: String,

    /// Lua patterns (comma-separated) grouping keys by their captures for
    /// redis_key_group_count and redis_key_group_memory_usage_bytes; keys
    /// matching none are "unclassified".
    #[arg(
        long = "check-key-groups",
        env = "REDIS_EXPORTER_CHECK_KEY_GROUPS",
        default_value = ""
    )]
    pub check_key_groups: String,

    /// Key groups shown per database; the rest (least memory) are summed
    /// as "overflow".
    #[arg(
        long = "max-distinct-key-groups",
        env = "REDIS_EXPORTER_MAX_DISTINCT_KEY_GROUPS",
        default_value_t = 100
    )]
    pub max_distinct_key_groups: usize,

    /// COUNT hint of each SCAN of the key checks.
    #[arg(
        long = "check-keys-batch-size",
        env = "REDIS_EXPORTER_CHECK_KEYS_BATCH_SIZE",
        default_value_t = 1000
    )]
    pub check_keys_batch_size: u64,

    /// Time allowed for all key checks of one scrape; unfinished patterns
    /// give no series.
    #[arg(long = "check-keys-time-budget", env = "REDIS_EXPORTER_CHECK_KEYS_TIME_BUDGET", default_value = "2s", value_parser = oxmon_core::parse_duration)]
    pub check_keys_time_budget: Duration,

    /// Name of the CONFIG command, for servers that rename it.
    #[arg(
        long = "config-command",
        env = "REDIS_EXPORTER_CONFIG_COMMAND",
        default_value = "CONFIG"
    )]
    pub config_command: String,

    /// Name the connection "oxmon-redis" (CLIENT SETNAME).
    #[arg(long = "set-client-name", env = "REDIS_EXPORTER_SET_CLIENT_NAME", default_value_t = true, action = clap::ArgAction::Set)]
    pub set_client_name: bool,

    /// Export every setting (CONFIG GET *) as redis_config_key_value and
    /// redis_config_value; password settings are never exported.
    #[arg(
        long = "include-config-metrics",
        env = "REDIS_EXPORTER_INCL_CONFIG_METRICS"
    )]
    pub include_config_metrics: bool,

    /// Export CLIENT LIST as redis_connected_clients_details.
    #[arg(long = "export-client-list", env = "REDIS_EXPORTER_EXPORT_CLIENT_LIST")]
    pub export_client_list: bool,

    /// Include the client's port in redis_connected_clients_details (more
    /// series).
    #[arg(long = "export-client-port", env = "REDIS_EXPORTER_EXPORT_CLIENT_PORT")]
    pub export_client_port: bool,

    /// Also export total_system_memory as redis_total_system_memory_bytes.
    #[arg(
        long = "include-system-metrics",
        env = "REDIS_EXPORTER_INCL_SYSTEM_METRICS"
    )]
    pub include_system_metrics: bool,

    /// PEM client certificate for rediss:// targets.
    #[arg(
        long = "tls-client-cert-file",
        env = "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE"
    )]
    pub tls_client_cert_file: Option<PathBuf>,

    /// PEM client key for rediss:// targets.
    #[arg(
        long = "tls-client-key-file",
        env = "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE"
    )]
    pub tls_client_key_file: Option<PathBuf>,

    /// PEM CA bundle to verify rediss:// servers (default: system roots).
    #[arg(long = "tls-ca-cert-file", env = "REDIS_EXPORTER_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,

    /// Do not verify the server certificate of rediss:// targets.
    #[arg(
        long = "skip-tls-verification",
        env = "REDIS_EXPORTER_SKIP_TLS_VERIFICATION"
    )]
    pub skip_tls_verification: bool,

    /// redis_exporter's spelling of --log.level=debug.
    #[arg(long = "debug", env = "REDIS_EXPORTER_DEBUG")]
    pub debug: bool,

    /// redis_exporter's spelling of --log.format (txt is logfmt).
    #[arg(long = "log-format", env = "REDIS_EXPORTER_LOG_FORMAT", value_parser = ["txt", "json"])]
    pub log_format: Option<String>,

    /// redis_exporter's spelling of --web.disable-exporter-metrics.
    #[arg(long = "redis-only-metrics", env = "REDIS_EXPORTER_REDIS_ONLY_METRICS")]
    pub redis_only_metrics: bool,

    /// Accepted for redis_exporter compatibility: settings holding secrets
    /// are never exported, whatever the value.
    #[arg(long = "redact-config-metrics", env = "REDIS_EXPORTER_REDACT_CONFIG_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub redact_config_metrics: bool,

    /// Targets /scrape may reach (comma-separated): CIDRs or IPs checked
    /// against every resolved address, host globs with optional port
    /// (*.cache.internal, redis-?:6380), unix:///socket/globs. Without an
    /// allow-list only --redis.addr may be scraped.
    #[arg(
        long = "scrape.allowed-targets",
        env = "REDIS_EXPORTER_ALLOWED_TARGETS",
        value_delimiter = ','
    )]
    pub allowed_targets: Vec<String>,

    /// File with more allowed targets, one per line (# comments).
    #[arg(
        long = "scrape.allowed-targets-file",
        env = "REDIS_EXPORTER_ALLOWED_TARGETS_FILE"
    )]
    pub allowed_targets_file: Option<PathBuf>,
}

/// redis_exporter parses flags with Go's `flag` package, which also accepts
/// a single dash (`-redis.addr=...`); rewrite those to `--` so existing
/// command lines keep working. Only known long flag names are rewritten.
pub fn go_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
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
pub fn common_args(cli: &Cli) -> oxmon_core::CommonArgs {
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

#[cfg(test)]
mod tests {
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
