//! `/probe?target=HOST[:PORT][/DB]&auth_module=NAME`: scrape any allowed
//! server with credentials from a named auth module, never from the URL.
//!
//! The config file (`--config.file`, postgres_exporter's format plus an
//! allow-list):
//!
//! ```yaml
//! auth_modules:
//!   prod:
//!     type: userpass
//!     userpass:
//!       username: monitor
//!       password_file: /run/secrets/pg   # or password: "..."
//!     options:
//!       sslmode: verify-full
//!       sslrootcert: /etc/ssl/pg-ca.pem
//! probe:
//!   allowed_targets:
//!     - "db-*.internal:5432"   # host glob, optional port
//!     - "10.0.0.0/8"           # CIDR, checked on the resolved address
//! ```
//!
//! Without an allow-list every target is refused (403): `/probe` would
//! otherwise let anyone who reaches the exporter make it connect anywhere
//! and hand it stored credentials. The list is checked by core's
//! multi-target guard (`oxmon_core::target_guard`): host globs match the
//! name as given (`*` and `?` never cross a `.`); CIDRs match every address
//! the name resolves to (within 5 s), and the connection is then pinned to
//! the checked address, so a DNS answer that changes between check and
//! connect cannot redirect it.
//!
//! A target is identified by its host, port, pinned address, database,
//! auth module and sslmode: those are all a URL can choose. The other
//! connection parameters postgres_exporter's target URLs may carry,
//! `connect_timeout` and `application_name`, are accepted and ignored
//! (the auth module's `options` set them; the scrape deadline bounds the
//! connect anyway), and any other parameter is refused with 400. So
//! requests that vary such parameters reach the same target and its
//! connections. Connections live in core's bounded cache
//! (`--target.max-connections`, `--target.max-connections-per-host`, see
//! [`SharedConnections`]); each target's collector state (registry) in a
//! second cache of the same total size, holding no connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oxmon_core::collector::{BoxFuture, Selection};
use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::metrics::Value;
use oxmon_core::target_guard::{
    AllowList, Allowed, Refused, Target as GuardTarget, TargetCache, TargetCacheArgs,
};
use oxmon_core::{HttpError, MetricFamily, Registry, Route, RouteRequest, ScrapeContext};
use serde::Deserialize;

use crate::collectors::{self, Monitored};
use crate::dsn::{Dsn, Secret};
use crate::reloadable::Reloadable;
use crate::target::{Options, SharedConnections, Target};

#[derive(Debug, Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    auth_modules: HashMap<String, RawAuthModule>,
    #[serde(default)]
    probe: RawProbe,
}

#[derive(Debug, Deserialize, Default)]
struct RawProbe {
    #[serde(default)]
    allowed_targets: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawAuthModule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    userpass: Option<RawUserPass>,
    #[serde(default)]
    options: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RawUserPass {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_file: Option<String>,
}

/// Credentials and connection options of one auth module.
#[derive(Debug, Clone)]
pub struct AuthModule {
    user: String,
    password: Option<Secret>,
    password_file: Option<String>,
    options: Vec<(String, String)>,
    /// A short, non-reversible digest of all of the above, in cache keys:
    /// a module that changes under the same name (a reloaded config file)
    /// gets new connections.
    digest: u64,
}

/// The parsed config file.
#[derive(Debug, Clone, Default)]
pub struct ProbeConfig {
    modules: HashMap<String, AuthModule>,
    allowed: AllowList,
}

impl ProbeConfig {
    /// Reads the config file; errors name the file (and line, from YAML).
    pub fn load(path: &Path) -> Result<ProbeConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading config file {}: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses config text.
    pub fn parse(path: &str, text: &str) -> Result<ProbeConfig, String> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| format!("config file {path}: {e}"))?
        };
        let mut modules = HashMap::new();
        for (name, m) in raw.auth_modules {
            if m.kind != "userpass" {
                return Err(format!(
                    "config file {path}: auth module {name:?}: type {:?} is not supported (only userpass)",
                    m.kind
                ));
            }
            let up = m.userpass.ok_or_else(|| {
                format!("config file {path}: auth module {name:?}: missing userpass section")
            })?;
            if up.password.is_some() && up.password_file.is_some() {
                return Err(format!(
                    "config file {path}: auth module {name:?}: give password or password_file, not both"
                ));
            }
            let mut options: Vec<(String, String)> = m.options.into_iter().collect();
            options.sort();
            for (k, _) in &options {
                if matches!(
                    k.as_str(),
                    "user" | "password" | "host" | "hostaddr" | "port" | "dbname"
                ) {
                    return Err(format!(
                        "config file {path}: auth module {name:?}: option {k:?} is not allowed here"
                    ));
                }
            }
            let digest = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (&up.username, &up.password, &up.password_file, &options).hash(&mut h);
                h.finish()
            };
            let module = AuthModule {
                user: up.username,
                password: up.password.map(Secret::new),
                password_file: up.password_file,
                options,
                digest,
            };
            // Check the options now rather than at the first probe.
            module
                .apply(Dsn::default())
                .map_err(|e| format!("config file {path}: auth module {name:?}: {e}"))?;
            modules.insert(name, module);
        }
        let allowed = AllowList::parse(raw.probe.allowed_targets.iter().map(String::as_str))
            .map_err(|e| format!("config file {path}: probe.allowed_targets: {e}"))?;
        Ok(ProbeConfig { modules, allowed })
    }

    /// Whether the allow-list has entries.
    pub fn has_allow_list(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Checks a target against the allow-list (resolving its name within
    /// `dns_timeout` where a CIDR entry needs it); returns the address to
    /// pin the connection to, or why it is refused.
    pub async fn check(
        &self,
        t: &ProbeTarget,
        dns_timeout: Duration,
    ) -> Result<Option<IpAddr>, String> {
        match self
            .allowed
            .check(&GuardTarget::tcp(&t.host, t.port), dns_timeout)
            .await
        {
            Ok(Allowed::ByName) => Ok(None),
            Ok(Allowed::ByAddress(addr)) => Ok(Some(addr.ip())),
            Err(Refused::NoAllowList) => Err("no probe targets are allowed: add probe.allowed_targets (host patterns or CIDRs) to the --config.file".into()),
            Err(refused) => Err(refused.to_string()),
        }
    }
}

impl AuthModule {
    fn apply(&self, mut dsn: Dsn) -> Result<Dsn, String> {
        dsn.user = Some(self.user.clone());
        dsn.password = match (&self.password, &self.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(Secret::new(crate::dsn::read_secret_file(Path::new(f))?)),
            (None, None) => None,
        };
        let opts: String = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}='{}' ", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect();
        if !opts.is_empty() {
            let parsed = Dsn::parse(&opts).map_err(|e| format!("options: {e}"))?;
            dsn.sslmode = parsed.sslmode;
            dsn.sslrootcert = parsed.sslrootcert;
            dsn.sslcert = parsed.sslcert;
            dsn.sslkey = parsed.sslkey;
            dsn.connect_timeout = parsed.connect_timeout.or(dsn.connect_timeout);
            dsn.application_name = parsed.application_name.or(dsn.application_name);
            dsn.options = parsed.options.or(dsn.options);
        }
        Ok(dsn)
    }
}

/// A parsed probe target.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeTarget {
    /// Host name or IP.
    pub host: String,
    /// Port (default 5432).
    pub port: u16,
    /// Database (default `postgres`).
    pub dbname: String,
    /// The URI parameters that take effect (`sslmode`); the ignored ones
    /// are left out.
    pub params: Vec<(String, String)>,
}

/// Target parameters accepted for compatibility with postgres_exporter's
/// target URLs and ignored: they do not say which server or database is
/// scraped, and honouring them would give each variant a connection of
/// its own. An auth module's `options` set them.
const IGNORED_PARAMS: &[&str] = &["connect_timeout", "application_name"];

/// Parses `host[:port][/db]` or a `postgresql://host:port/db?...` URI
/// without credentials; of its parameters only `sslmode` takes effect,
/// [`IGNORED_PARAMS`] are dropped and any other is refused.
pub fn parse_target(s: &str) -> Result<ProbeTarget, String> {
    let uri = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        s.to_owned()
    } else {
        format!("postgresql://{s}")
    };
    let after_scheme = uri.split_once("://").map(|(_, r)| r).unwrap_or("");
    let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("credentials are not accepted in the target; use auth_module".into());
    }
    let dsn = Dsn::parse(&uri).map_err(|e| format!("bad target: {e}"))?;
    if dsn.user.is_some() || dsn.password.is_some() {
        return Err("credentials are not accepted in the target; use auth_module".into());
    }
    if dsn.is_unix_socket() || authority.is_empty() {
        return Err("target must name a host: HOST[:PORT][/DATABASE]".into());
    }
    let mut params = Vec::new();
    if let Some((_, q)) = uri.split_once('?') {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if IGNORED_PARAMS.contains(&k) {
                continue;
            }
            if k != "sslmode" {
                return Err(format!("parameter {k:?} is not accepted in the target; put it in the auth module's options"));
            }
            params.push((k.to_owned(), v.to_owned()));
        }
    }
    Ok(ProbeTarget {
        host: dsn.host,
        port: dsn.port,
        dbname: dsn.dbname.unwrap_or_else(|| "postgres".into()),
        params,
    })
}

fn strength(mode: crate::dsn::SslMode) -> u8 {
    use crate::dsn::SslMode::*;
    match mode {
        Disable | Allow => 0,
        Prefer => 1,
        Require => 2,
        VerifyCa => 3,
        VerifyFull => 4,
    }
}

/// The `/probe` route.
pub struct ProbeRoute {
    /// Auth modules and allow-list, replaced on SIGHUP.
    config: Arc<Reloadable<ProbeConfig>>,
    opts: Arc<Options>,
    collectors: collectors::Config,
    /// Each target's collectors and what they remember (no connections).
    registries: TargetCache<Arc<Registry>>,
    connections: SharedConnections,
    /// Refused targets: each logged once, not once per request.
    refusals: FailureLog,
}

/// Idle probe targets are forgotten (and their connections closed) after this.
const IDLE: Duration = Duration::from_secs(300);
/// Longest wait for a target name to resolve (when a CIDR entry needs it).
const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// The collector whose `pg_up` says whether the others can run.
const LIVENESS: &str = "up";

impl ProbeRoute {
    /// Builds the route; `bounds` limits the connections kept in all and
    /// per host.
    pub fn new(
        config: Arc<Reloadable<ProbeConfig>>,
        opts: Arc<Options>,
        collectors: collectors::Config,
        bounds: &TargetCacheArgs,
    ) -> ProbeRoute {
        ProbeRoute {
            config,
            opts,
            collectors,
            registries: TargetCache::new(bounds.max_connections as usize, IDLE),
            connections: SharedConnections::new(bounds, IDLE),
            refusals: FailureLog::new(FailureSubject::Target),
        }
    }

    async fn registry_for(&self, req: &RouteRequest) -> Result<Arc<Registry>, HttpError> {
        let raw = req
            .param("target")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| HttpError::bad_request("missing target parameter: /probe?target=HOST[:PORT][/DATABASE]&auth_module=NAME"))?;
        let target = parse_target(raw).map_err(HttpError::bad_request)?;
        let config = self.config.current();
        let module_name = req.param("auth_module").unwrap_or("");
        let module = if module_name.is_empty() {
            None
        } else {
            Some(config.modules.get(module_name).ok_or_else(|| {
                HttpError::bad_request(format!("unknown auth_module {module_name:?}"))
            })?)
        };
        // As logged: no parameters, and core's log format cuts a hostile
        // name short.
        let shown = format!(
            "{}/{}",
            GuardTarget::tcp(&target.host, target.port),
            target.dbname
        );
        let pin = match config
            .check(&target, req.ctx.remaining().min(DNS_TIMEOUT))
            .await
        {
            Ok(pin) => {
                self.refusals.forget(&shown);
                pin
            }
            Err(refused) => {
                self.refusals.failed(&shown, &refused);
                return Err(HttpError::forbidden(refused));
            }
        };
        // The server, as the per-host bound counts it: the checked address
        // when a CIDR entry allowed the target, else its name.
        let name = target.host.to_ascii_lowercase();
        let host = match pin {
            Some(addr) => GuardTarget::tcp(&addr.to_string(), target.port).to_string(),
            None => GuardTarget::tcp(&name, target.port).to_string(),
        };
        let key = format!(
            "{host}|{name}|{module_name}#{:x}|{:?}|{}",
            module.map_or(0, |m| m.digest),
            target.params,
            target.dbname
        );
        if let Some(registry) = self.registries.get(&key) {
            return Ok(registry);
        }
        let mut dsn = Dsn {
            host: target.host.clone(),
            port: target.port,
            dbname: Some(target.dbname.clone()),
            ..Dsn::default()
        };
        if let Some(m) = module {
            dsn = m.apply(dsn).map_err(|e| HttpError {
                status: 500,
                message: format!("auth_module {module_name:?}: {e}"),
            })?;
        }
        for (k, v) in &target.params {
            let parsed = Dsn::parse(&format!("{k}='{}'", v.replace('\'', "")))
                .map_err(|e| HttpError::bad_request(format!("target: {e}")))?;
            // A URL must not weaken the TLS an auth module asks for.
            if module.is_some() && strength(parsed.sslmode) < strength(dsn.sslmode) {
                return Err(HttpError::bad_request(format!(
                    "sslmode={} is weaker than the auth module's {}",
                    parsed.sslmode.as_str(),
                    dsn.sslmode.as_str()
                )));
            }
            dsn.sslmode = parsed.sslmode;
        }
        // Targets that differ only in the database share connections.
        let server = format!("{host}|{name}|{:x}", connection_digest(&dsn));
        let t = Target::probe(
            dsn,
            pin,
            self.opts.clone(),
            self.connections.clone(),
            host,
            server,
        )
        .map_err(|e| HttpError {
            status: 500,
            message: e,
        })?;
        let registry = Arc::new(collectors::registry(
            &self.collectors,
            &[Arc::new(Monitored::new(t))],
        ));
        Ok(self.registries.insert(key, registry))
    }
}

/// A digest of everything but the address and database that decides how
/// a connection is made (credentials, TLS files, session options), so
/// that targets which differ only in the database share connections and a
/// changed password (file) gets connections of its own. Never logged.
fn connection_digest(dsn: &Dsn) -> u64 {
    use std::hash::{Hash, Hasher};
    let settings = Dsn {
        host: String::new(),
        port: 0,
        dbname: None,
        ..dsn.clone()
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{settings:?}").hash(&mut h);
    dsn.password.as_ref().map(Secret::expose).hash(&mut h);
    h.finish()
}

/// Scrapes one target: `up` first, and the other collectors only when it
/// connected. A server that cannot be reached answers `pg_up 0` and the
/// exporter's scrape bookkeeping (current postgres_exporter's `/probe`
/// also skips its collectors when the connection fails), instead of every
/// collector failing, and logging, the same connection error.
async fn scrape(registry: &Registry, ctx: &ScrapeContext) -> Result<Vec<MetricFamily>, HttpError> {
    let liveness = Selection {
        include: vec![LIVENESS.to_string()],
        exclude: Vec::new(),
    };
    let mut families = registry
        .gather(ctx, Some(&liveness))
        .await
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let up = families.iter().any(|f| {
        f.name == "pg_up"
            && f.metrics
                .first()
                .is_some_and(|m| m.value == Value::Single(1.0))
    });
    if up {
        let rest = Selection {
            include: Vec::new(),
            exclude: vec![LIVENESS.to_string()],
        };
        let more = registry
            .gather(ctx, Some(&rest))
            .await
            .map_err(|e| HttpError::bad_request(e.to_string()))?;
        families.extend(more);
    }
    Ok(families)
}

impl Route for ProbeRoute {
    fn handle<'a>(
        &'a self,
        req: &'a RouteRequest,
    ) -> BoxFuture<'a, Result<Vec<MetricFamily>, HttpError>> {
        Box::pin(async move {
            let registry = self.registry_for(req).await?;
            scrape(&registry, &req.ctx).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_and_refuses_bad_modules() {
        let c = ProbeConfig::parse(
            "pg.yml",
            "auth_modules:\n  m:\n    type: userpass\n    userpass: {username: u, password: p}\n    options: {sslmode: require}\nprobe:\n  allowed_targets: ['db-*.internal:5432', '10.0.0.0/8', '::1']\n",
        )
        .unwrap();
        assert!(c.has_allow_list());
        let d = c.modules["m"].apply(Dsn::default()).unwrap();
        assert_eq!(d.sslmode, crate::dsn::SslMode::Require);
        assert_eq!(d.password.unwrap().expose(), "p");

        let e =
            ProbeConfig::parse("pg.yml", "auth_modules:\n  m:\n    type: kerberos\n").unwrap_err();
        assert!(e.contains("pg.yml") && e.contains("kerberos"), "{e}");
        let e = ProbeConfig::parse("pg.yml", "auth_modules:\n  m:\n    type: userpass\n    userpass: {username: u}\n    options: {sslmode: maybe}\n").unwrap_err();
        assert!(e.contains("sslmode"), "{e}");
        let e =
            ProbeConfig::parse("pg.yml", "probe:\n  allowed_targets: ['bad host!']\n").unwrap_err();
        assert!(e.contains("bad host!"), "{e}");
        let e = ProbeConfig::parse("pg.yml", "auth_modules: [\n").unwrap_err();
        assert!(e.contains("pg.yml") && e.contains("line"), "{e}");
    }

    #[test]
    fn parses_targets_and_rejects_credentials() {
        let t = parse_target("db-1.internal:5433/app").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.dbname.as_str()),
            ("db-1.internal", 5433, "app")
        );
        let t = parse_target("postgresql://10.1.2.3/x?sslmode=disable").unwrap();
        assert_eq!(
            t.params,
            vec![("sslmode".to_string(), "disable".to_string())]
        );
        assert!(parse_target("u:pw@h/db")
            .unwrap_err()
            .contains("auth_module"));
        assert!(parse_target("h/db?password=x").is_err());
        assert!(parse_target("h/db?host=evil").is_err());
        assert!(parse_target("").is_err());
    }

    #[test]
    fn connection_parameters_in_the_target_are_ignored_or_refused() {
        let plain = parse_target("db-1.internal:5432/app").unwrap();
        let varied = parse_target(
            "postgresql://db-1.internal:5432/app?application_name=x7&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(varied, plain);
        let t = parse_target("db-1.internal/app?connect_timeout=9&sslmode=require").unwrap();
        assert_eq!(t.params, [("sslmode".to_string(), "require".to_string())]);
        for refused in [
            "db-1.internal/app?options=-c%20work_mem%3D1MB",
            "db-1.internal/app?keepalives=0",
            "db-1.internal/app?target_session_attrs=any",
        ] {
            let e = parse_target(refused).unwrap_err();
            assert!(e.contains("not accepted"), "{refused}: {e}");
        }
    }

    #[tokio::test]
    async fn allow_list_checks_names_ports_and_addresses() {
        let config = ProbeConfig::parse(
            "pg.yml",
            "probe:\n  allowed_targets: ['db-*.internal:5432', '10.0.0.0/8', '127.0.0.1']\n",
        )
        .unwrap();
        let check = |s: &str| {
            let t = parse_target(s).unwrap();
            let config = &config;
            async move { config.check(&t, Duration::from_secs(2)).await }
        };
        assert_eq!(check("DB-7.internal:5432").await, Ok(None));
        assert!(check("db-7.internal:5433").await.is_err());
        assert!(check("db.internal").await.is_err());
        // A glob's * stays within one name label.
        assert!(check("db-7.eu.internal:5432").await.is_err());
        assert_eq!(
            check("10.2.3.4:6000").await,
            Ok(Some("10.2.3.4".parse().unwrap()))
        );
        assert!(check("192.168.1.1").await.is_err());
        let e = ProbeConfig::default()
            .check(
                &parse_target("db-1.internal").unwrap(),
                Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(e.contains("probe.allowed_targets"), "{e}");
    }
}
