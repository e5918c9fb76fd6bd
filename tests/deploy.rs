//! The deployment files under deploy/, checked with the real validators and
//! against the rest of the shipped configuration:
//!
//! - `docker-compose config -q` (Debian `docker-compose`; validates without a
//!   Docker engine) with and without the `gpu` profile, then the resolved
//!   file against prometheus.yml (every scraped host is a service on the
//!   right port), the secrets (files, every path a config reads), Grafana's
//!   provisioning and the sidecar wiring;
//! - `kubectl kustomize deploy/kubernetes` (Debian `kubernetes-client`), its
//!   core kinds through `kubernetes-validate --strict` (PyPI) for
//!   Kubernetes [`K8S_VERSION`], its ServiceMonitor/PodMonitor/PrometheusRule
//!   objects against prometheus-operator's own CRD schemas (see
//!   [`crd_files`]), and the references between objects (selectors, port
//!   names, ConfigMaps, allow-lists, job names);
//! - the PrometheusRule and the shared files of the Kubernetes base are
//!   exactly what `scripts/gen-k8s-rules` generates now;
//! - `systemd-analyze verify` and `systemd-analyze security --offline` on
//!   every unit (rewritten to stub executables: verify needs ExecStart to
//!   exist), and the hardening each unit must keep;
//! - `deploy/run-native --check`: the commands, and its generated
//!   prometheus.yml through `promtool check config` (alertmanager.yml through
//!   `amtool check-config`);
//! - the image's health check script, the demo app (real process: health
//!   JSON, access log, StatsD packets), the Dockerfile's build line, and
//!   every exporter flag used anywhere in deploy/ against the binary's
//!   `--help`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oxmon_testkit::serde_json;
use oxmon_testkit::{find_program, free_port, http_try_get, line_diff, promtool, require_program};
use serde_yaml::Value;

/// The Kubernetes version `kubernetes-validate` checks the core kinds
/// against: the first release with native sidecars (initContainers with
/// `restartPolicy: Always`) generally available.
const K8S_VERSION: &str = "1.33.0";

/// The crates.io crate whose source ships prometheus-operator's CRDs (its
/// tests/ generate Rust types from them), and the operator release they are.
const CRD_CRATE: &str = "kopium";
const CRD_CRATE_VERSION: &str = "0.24.1";
const CRD_OPERATOR_VERSION: &str = "0.89.0";
const CRD_FILES: [&str; 3] = [
    "servicemonitors.monitoring.coreos.com.yaml",
    "podmonitors.monitoring.coreos.com.yaml",
    "prometheusrules.monitoring.coreos.com.yaml",
];

/// The exporters: binary, default port.
const EXPORTERS: [(&str, u16); 5] = [
    ("oxmon-node", 9100),
    ("oxmon-gpu", 9445),
    ("oxmon-postgres", 9187),
    ("oxmon-redis", 9121),
    ("oxmon-sidecar", 9102),
];

// --- helpers -------------------------------------------------------------------

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn parse_yaml(text: &str, what: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("parse {what}: {e}"))
}

fn load(rel: &str) -> Value {
    parse_yaml(&read(&root().join(rel)), rel)
}

/// The documents of a multi-document YAML text (split on `---` lines, as
/// kustomize and scripts/gen-k8s-rules write them); empty ones dropped.
fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            let doc = parse_yaml(&cur, what);
            if !doc.is_null() {
                docs.push(doc);
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

fn seq_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other).unwrap().trim().to_string(),
        })
        .collect()
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a command to completion; panics with its output unless it succeeded.
fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("oxmon-deploy-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(path, perm).unwrap();
}

/// `host:port` of a target written as `host:port`, `scheme://host:port[/…]`.
fn host_port(target: &str) -> (String, Option<u16>) {
    let t = target.split_once("://").map_or(target, |(_, rest)| rest);
    let t = t.split('/').next().unwrap_or(t);
    match t.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()),
        None => (t.to_string(), None),
    }
}

// --- prometheus.yml ---------------------------------------------------------------

/// What prometheus.yml expects of the environment: per job, the targets of
/// its static_configs and the address actually scraped (the `__address__`
/// replacement of the multi-target jobs, else the target itself), the
/// query parameters, plus the Alertmanager and remote-write addresses.
/// One scrape job: its targets, the address scraped instead when relabelling
/// rewrites `__address__` (multi-target), its query parameters.
type Job = (Vec<String>, Option<String>, BTreeMap<String, Vec<String>>);

struct PromExpectations {
    /// job name -> job
    jobs: BTreeMap<String, Job>,
    /// every host:port Prometheus itself connects to
    addresses: BTreeSet<String>,
}

fn prometheus_expectations() -> PromExpectations {
    let prom = load("prometheus/prometheus.yml");
    let mut jobs = BTreeMap::new();
    let mut addresses = BTreeSet::new();
    for sc in seq_at(&prom, &["scrape_configs"]) {
        let job = str_at(sc, &["job_name"]).expect("job_name").to_string();
        let targets: Vec<String> = seq_at(sc, &["static_configs"])
            .iter()
            .flat_map(|c| strings(seq_at(c, &["targets"])))
            .collect();
        let rewritten = seq_at(sc, &["relabel_configs"])
            .iter()
            .find(|r| str_at(r, &["target_label"]) == Some("__address__"))
            .and_then(|r| str_at(r, &["replacement"]))
            .map(str::to_string);
        let params = get(sc, &["params"])
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap().to_string(),
                            strings(v.as_sequence().map(Vec::as_slice).unwrap_or(&[])),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        match &rewritten {
            Some(a) => {
                addresses.insert(a.clone());
            }
            None => addresses.extend(targets.iter().cloned()),
        }
        jobs.insert(job, (targets, rewritten, params));
    }
    for am in seq_at(&prom, &["alerting", "alertmanagers"]) {
        for c in seq_at(am, &["static_configs"]) {
            addresses.extend(strings(seq_at(c, &["targets"])));
        }
    }
    for rw in seq_at(&prom, &["remote_write"]) {
        let (h, p) = host_port(str_at(rw, &["url"]).expect("remote_write url"));
        addresses.insert(format!("{h}:{}", p.expect("remote_write port")));
    }
    PromExpectations { jobs, addresses }
}

// --- docker compose ---------------------------------------------------------------

fn compose_file() -> PathBuf {
    root().join("deploy/docker-compose.yml")
}

/// `docker-compose config -q`, then the resolved configuration.
fn compose_config(profile: Option<&str>) -> Value {
    let bin = require_program("docker-compose", "docker-compose");
    let mut base = vec![
        "-f".to_string(),
        compose_file().to_string_lossy().into_owned(),
    ];
    if let Some(p) = profile {
        base.extend(["--profile".to_string(), p.to_string()]);
    }
    let what = format!("docker-compose {} config", base.join(" "));
    let quiet = run_ok(
        Command::new(&bin)
            .args(&base)
            .args(["config", "-q"])
            .current_dir(root()),
        &what,
    );
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{what} -q printed:\n{}{}",
        stdout_of(&quiet),
        stderr_of(&quiet)
    );
    let out = run_ok(
        Command::new(&bin)
            .args(&base)
            .arg("config")
            .current_dir(root()),
        &what,
    );
    parse_yaml(&stdout_of(&out), &what)
}

fn compose_gpu() -> &'static Value {
    static C: OnceLock<Value> = OnceLock::new();
    C.get_or_init(|| compose_config(Some("gpu")))
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    get(compose, &["services", name]).unwrap_or_else(|| panic!("compose has no service {name}"))
}

/// A service's entrypoint and command, as one list.
fn service_args(svc: &Value) -> Vec<String> {
    let mut v = strings(seq_at(svc, &["entrypoint"]));
    v.extend(strings(seq_at(svc, &["command"])));
    v
}

/// (source, target) of a service's volumes (short syntax as compose prints it).
fn service_volumes(svc: &Value) -> Vec<(String, String)> {
    seq_at(svc, &["volumes"])
        .iter()
        .map(|v| match v {
            Value::String(s) => {
                let mut parts = s.split(':');
                let src = parts.next().unwrap_or("").to_string();
                let dst = parts.next().unwrap_or("").to_string();
                (src, dst)
            }
            other => (
                str_at(other, &["source"]).unwrap_or("").to_string(),
                str_at(other, &["target"]).unwrap_or("").to_string(),
            ),
        })
        .collect()
}

/// (secret name, path in the container) of a service's secrets.
fn service_secrets(svc: &Value) -> Vec<(String, String)> {
    seq_at(svc, &["secrets"])
        .iter()
        .map(|s| match s {
            Value::String(name) => (name.clone(), format!("/run/secrets/{name}")),
            other => {
                let name = str_at(other, &["source"])
                    .expect("secret source")
                    .to_string();
                let target = str_at(other, &["target"]).map_or_else(
                    || format!("/run/secrets/{name}"),
                    |t| {
                        if t.starts_with('/') {
                            t.to_string()
                        } else {
                            format!("/run/secrets/{t}")
                        }
                    },
                );
                (name, target)
            }
        })
        .collect()
}

fn service_env(svc: &Value) -> BTreeMap<String, String> {
    match get(svc, &["environment"]) {
        Some(Value::Sequence(items)) => strings(items)
            .into_iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        other => string_map(other),
    }
}

/// The value of `--flag=value` in an argument list.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn compose_config_is_valid_with_and_without_the_gpu_profile() {
    let plain = compose_config(None);
    let gpu = compose_gpu();
    let names = |c: &Value| -> BTreeSet<String> {
        get(c, &["services"])
            .and_then(Value::as_mapping)
            .expect("services")
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    let (plain_names, gpu_names) = (names(&plain), names(gpu));
    for want in [
        "prometheus",
        "alertmanager",
        "grafana",
        "victoriametrics",
        "oxmon-node",
        "oxmon-postgres",
        "oxmon-redis",
        "oxmon-sidecar",
        "postgres",
        "redis",
        "demo-app",
    ] {
        assert!(
            plain_names.contains(want),
            "compose lacks service {want}: {plain_names:?}"
        );
    }
    // docker-compose 1.29 lists services of every profile in `config`, so
    // check the profiles themselves: only oxmon-gpu has one, `gpu`.
    for (name, svc) in get(&plain, &["services"])
        .and_then(Value::as_mapping)
        .unwrap()
    {
        let profiles = strings(seq_at(svc, &["profiles"]));
        if name.as_str() == Some("oxmon-gpu") {
            assert_eq!(
                profiles,
                ["gpu"],
                "oxmon-gpu must only start with --profile gpu"
            );
        } else {
            assert!(
                profiles.is_empty(),
                "{name:?} must start without a profile: {profiles:?}"
            );
        }
    }
    assert!(
        gpu_names.contains("oxmon-gpu"),
        "--profile gpu must add oxmon-gpu"
    );

    let g = service(gpu, "oxmon-gpu");
    assert_eq!(strings(seq_at(g, &["profiles"])), ["gpu"]);
    let devices = seq_at(g, &["deploy", "resources", "reservations", "devices"]);
    assert!(
        devices
            .iter()
            .any(|d| str_at(d, &["driver"]) == Some("nvidia")
                && strings(seq_at(d, &["capabilities"]))
                    .iter()
                    .any(|c| c == "gpu")),
        "oxmon-gpu needs an NVIDIA device reservation with the gpu capability: {devices:?}"
    );

    // Everything that runs non-root-capable code is hardened.
    for name in [
        "oxmon-node",
        "oxmon-gpu",
        "oxmon-postgres",
        "oxmon-redis",
        "oxmon-sidecar",
    ] {
        let s = service(gpu, name);
        assert_eq!(
            get(s, &["read_only"]),
            Some(&Value::Bool(true)),
            "{name}: read_only"
        );
        assert_eq!(
            strings(seq_at(s, &["cap_drop"])),
            ["ALL"],
            "{name}: cap_drop"
        );
        assert!(
            get(s, &["healthcheck", "test"]).is_some(),
            "{name}: no health check"
        );
    }
    // Published ports only on loopback.
    for (name, svc) in get(gpu, &["services"]).and_then(Value::as_mapping).unwrap() {
        for p in strings(seq_at(svc, &["ports"])) {
            assert!(
                p.starts_with("127.0.0.1:"),
                "{name:?} publishes {p} beyond loopback"
            );
        }
    }
}

#[test]
fn compose_services_are_what_prometheus_scrapes() {
    let compose = compose_gpu();
    let prom = prometheus_expectations();
    // Every address Prometheus connects to, and every multi-target target,
    // is a compose service listening on that port.
    let mut wanted: BTreeSet<String> = prom.addresses.clone();
    for (targets, rewritten, _) in prom.jobs.values() {
        if rewritten.is_some() {
            wanted.extend(targets.iter().cloned());
        }
    }
    for addr in &wanted {
        let (host, port) = host_port(addr);
        let port = port.unwrap_or_else(|| panic!("prometheus.yml address {addr} has no port"));
        if host == "localhost" {
            continue;
        }
        let svc = get(compose, &["services", &host]).unwrap_or_else(|| {
            panic!("prometheus.yml scrapes {addr}, but compose has no service {host}")
        });
        let image = str_at(svc, &["image"]).unwrap_or("");
        let listens = match (host.as_str(), port) {
            ("postgres", 5432) => image.starts_with("postgres:"),
            ("redis", 6379) => image.starts_with("redis:"),
            _ => service_args(svc)
                .iter()
                .any(|a| a.ends_with(&format!(":{port}"))),
        };
        assert!(
            listens,
            "compose service {host} does not listen on :{port} ({addr}): {:?}",
            service_args(svc)
        );
    }
    // The exporters run the image's binaries.
    for (bin, port) in EXPORTERS {
        let svc = service(compose, bin);
        let args = service_args(svc);
        assert_eq!(
            args.first().map(String::as_str),
            Some(format!("/usr/local/bin/{bin}").as_str())
        );
        assert_eq!(
            flag_value(&args, "--web.listen-address"),
            Some(format!(":{port}").as_str())
        );
        assert!(
            get(svc, &["build"]).is_some(),
            "{bin}: built from deploy/Dockerfile"
        );
    }
    // Prometheus keeps 7 days and reloads over HTTP; VictoriaMetrics a year.
    let p = service_args(service(compose, "prometheus"));
    assert_eq!(flag_value(&p, "--storage.tsdb.retention.time"), Some("7d"));
    assert!(p.iter().any(|a| a == "--web.enable-lifecycle"));
    let config = flag_value(&p, "--config.file").expect("prometheus --config.file");
    assert!(
        service_volumes(service(compose, "prometheus"))
            .iter()
            .any(
                |(src, dst)| src.ends_with("/prometheus") && config.starts_with(&format!("{dst}/"))
            ),
        "prometheus' config file must come from the mounted ../prometheus"
    );
    let vm = service_args(service(compose, "victoriametrics"));
    assert_eq!(flag_value(&vm, "-retentionPeriod"), Some("1y"));
    assert_eq!(flag_value(&vm, "-httpListenAddr"), Some(":8428"));
}

#[test]
fn compose_secrets_are_files_and_cover_every_secret_a_config_reads() {
    let compose = compose_gpu();
    let prom = prometheus_expectations();
    let defined = get(compose, &["secrets"])
        .and_then(Value::as_mapping)
        .expect("top-level secrets");
    for (name, def) in defined {
        let file =
            str_at(def, &["file"]).unwrap_or_else(|| panic!("secret {name:?} must be a file"));
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("secret {name:?}: {file}: {e}"));
        assert!(!text.trim().is_empty(), "secret file {file} is empty");
    }
    let services = get(compose, &["services"])
        .and_then(Value::as_mapping)
        .unwrap();
    for (name, svc) in services {
        for (secret, _) in service_secrets(svc) {
            assert!(
                defined.contains_key(secret.as_str()),
                "service {name:?} uses undefined secret {secret}"
            );
        }
        // No secret inline: a variable named like one must point at a file.
        for (k, v) in service_env(svc) {
            let sensitive = ["PASSWORD", "SECRET", "TOKEN", "_KEY"]
                .iter()
                .any(|w| k.contains(w));
            assert!(
                !sensitive || k.ends_with("_FILE"),
                "service {name:?} sets {k}={v} inline; use a secret file (*_FILE)"
            );
        }
    }

    // Alertmanager: every /etc/alertmanager/secrets/... path of alertmanager.yml is mounted.
    let am_text = read(&root().join("alertmanager/alertmanager.yml"));
    let am_targets: BTreeSet<String> = service_secrets(service(compose, "alertmanager"))
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let mut am_paths = BTreeSet::new();
    for line in am_text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some(i) = line.find("/etc/alertmanager/secrets/") {
            let path: String = line[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '\'' && *c != '"')
                .collect();
            am_paths.insert(path);
        }
    }
    assert!(
        !am_paths.is_empty(),
        "alertmanager.yml reads no secret file?"
    );
    for p in &am_paths {
        assert!(
            am_targets.contains(p),
            "alertmanager.yml reads {p}, not mounted by compose: {am_targets:?}"
        );
    }
    let am_args = service_args(service(compose, "alertmanager"));
    let am_vols = service_volumes(service(compose, "alertmanager"));
    let am_config = flag_value(&am_args, "--config.file").expect("alertmanager --config.file");
    assert!(am_vols
        .iter()
        .any(|(s, d)| s.ends_with("alertmanager/alertmanager.yml") && d == am_config));
    assert!(am_vols
        .iter()
        .any(|(s, d)| s.ends_with("alertmanager/templates") && d == "/etc/alertmanager/templates"));

    // oxmon-postgres: the config file, its password files, its allow-list
    // and the auth module prometheus.yml asks for.
    let pg = service(compose, "oxmon-postgres");
    let pg_args = service_args(pg);
    let pg_config_path =
        flag_value(&pg_args, "--config.file").expect("oxmon-postgres --config.file");
    let (pg_src, _) = service_volumes(pg)
        .into_iter()
        .find(|(_, d)| d == pg_config_path)
        .unwrap_or_else(|| panic!("oxmon-postgres' {pg_config_path} is not mounted"));
    let pg_config = parse_yaml(&read(Path::new(&pg_src)), &pg_src);
    let pg_secrets: BTreeSet<String> = service_secrets(pg).into_iter().map(|(_, t)| t).collect();
    let modules = get(&pg_config, &["auth_modules"])
        .and_then(Value::as_mapping)
        .expect("auth_modules");
    for (m, def) in modules {
        let pw = str_at(def, &["userpass", "password_file"]).unwrap_or_else(|| {
            panic!("auth module {m:?}: password_file (never an inline password)")
        });
        assert!(
            pg_secrets.contains(pw),
            "auth module {m:?} reads {pw}, not a secret of oxmon-postgres"
        );
        assert!(
            str_at(def, &["userpass", "password"]).is_none(),
            "inline password in {pg_src}"
        );
    }
    let allowed = strings(seq_at(&pg_config, &["probe", "allowed_targets"]));
    let (pg_targets, _, pg_params) = &prom.jobs["postgres"];
    for t in pg_targets {
        assert!(
            allowed.contains(t),
            "prometheus.yml probes {t}, not in {pg_src}'s allow-list {allowed:?}"
        );
    }
    for m in pg_params.get("auth_module").into_iter().flatten() {
        assert!(
            modules.contains_key(m.as_str()),
            "prometheus.yml asks for auth module {m}, not in {pg_src}"
        );
    }
    // The PostgreSQL that creates the login has the same secret.
    let init = read(&root().join("deploy/postgres/init-monitor.sh"));
    let pg_server_secrets: BTreeSet<String> = service_secrets(service(compose, "postgres"))
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    for p in &pg_secrets {
        if init.contains(p.as_str()) {
            assert!(
                pg_server_secrets.contains(p),
                "init-monitor.sh reads {p}, not a secret of postgres"
            );
        }
    }
    assert!(
        service_volumes(service(compose, "postgres"))
            .iter()
            .any(|(s, d)| s.ends_with("deploy/postgres/init-monitor.sh")
                && d.starts_with("/docker-entrypoint-initdb.d/")),
        "postgres must run init-monitor.sh"
    );

    // oxmon-redis: every target prometheus.yml scrapes is allowed.
    let redis_args = service_args(service(compose, "oxmon-redis"));
    let redis_allowed: Vec<&str> = flag_value(&redis_args, "--scrape.allowed-targets")
        .expect("oxmon-redis --scrape.allowed-targets")
        .split(',')
        .collect();
    for t in &prom.jobs["redis"].0 {
        assert!(
            redis_allowed.contains(&t.as_str()),
            "prometheus.yml scrapes redis {t}, not allowed: {redis_allowed:?}"
        );
    }
    assert_eq!(
        flag_value(&redis_args, "--redis.addr"),
        Some(""),
        "oxmon-redis: no default instance"
    );

    // Grafana: the admin password is a secret; provisioning and dashboards
    // are mounted where the provisioning files point.
    let gr = service(compose, "grafana");
    let gr_env = service_env(gr);
    let pw_file = gr_env
        .get("GF_SECURITY_ADMIN_PASSWORD__FILE")
        .expect("Grafana admin password from a file");
    assert!(service_secrets(gr).iter().any(|(_, t)| t == pw_file));
    let gr_vols = service_volumes(gr);
    assert!(gr_vols
        .iter()
        .any(|(s, d)| s.ends_with("/grafana/provisioning") && d == "/etc/grafana/provisioning"));
    let dash_target = gr_vols
        .iter()
        .find(|(s, _)| s.ends_with("/grafana/dashboards"))
        .map(|(_, d)| d.clone())
        .expect("grafana/dashboards mounted");
    let services_set: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for dir in [
        "grafana/provisioning/dashboards",
        "grafana/provisioning/datasources",
    ] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let doc = parse_yaml(&read(&path), &path.display().to_string());
            for p in seq_at(&doc, &["providers"]) {
                if let Some(dir) = str_at(p, &["options", "path"]) {
                    assert_eq!(
                        dir,
                        dash_target,
                        "{}: dashboards path vs compose mount",
                        path.display()
                    );
                }
            }
            for ds in seq_at(&doc, &["datasources"]) {
                if let Some(url) = str_at(ds, &["url"]) {
                    let (h, _) = host_port(url);
                    assert!(
                        services_set.contains(h.as_str()),
                        "{}: datasource {url} is no compose service",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn compose_wires_the_demo_app_through_the_sidecar() {
    let compose = compose_gpu();
    let sc = service(compose, "oxmon-sidecar");
    let args = service_args(sc);
    for flag in [
        "--config.file",
        "--health.url",
        "--tap.listen-address",
        "--tap.upstream",
        "--tap.route",
        "--statsd.listen-udp",
        "--statsd.listen-tcp",
    ] {
        assert!(
            flag_value(&args, flag).is_some(),
            "oxmon-sidecar lacks {flag}: {args:?}"
        );
    }
    // The file's `logs` section would replace --logs.* flags: they would
    // only mislead.
    assert!(
        !args.iter().any(|a| a.starts_with("--logs.")),
        "the log source is deploy/sidecar.yml's section: {args:?}"
    );
    assert_eq!(flag_value(&args, "--statsd.listen-udp"), Some(":9125"));
    assert_eq!(flag_value(&args, "--statsd.listen-tcp"), Some(":9125"));
    let config = flag_value(&args, "--config.file").unwrap();
    assert!(
        service_volumes(sc)
            .iter()
            .any(|(s, d)| s.ends_with("deploy/sidecar.yml") && d == config),
        "the sidecar's --config.file must be deploy/sidecar.yml"
    );
    let app = service(compose, "demo-app");
    let env = service_env(app);
    let (health_host, health_port) = host_port(flag_value(&args, "--health.url").unwrap());
    let (up_host, up_port) = host_port(flag_value(&args, "--tap.upstream").unwrap());
    let listen_port = host_port(&env["LISTEN"]).1;
    assert_eq!(
        (health_host.as_str(), health_port),
        ("demo-app", listen_port)
    );
    assert_eq!((up_host.as_str(), up_port), ("demo-app", listen_port));
    let tap_port = host_port(flag_value(&args, "--tap.listen-address").unwrap()).1;
    assert_eq!(
        host_port(&env["TRAFFIC_URL"]),
        ("oxmon-sidecar".to_string(), tap_port),
        "traffic goes through the tap"
    );
    assert_eq!(env["STATSD_ADDR"], "oxmon-sidecar:9125");
    // The access log lands where the sidecar tails, on a shared volume.
    let log_dir = Path::new(&env["LOG_PATH"])
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let sidecar_cfg = load("deploy/sidecar.yml");
    let logs_globs = strings(seq_at(&sidecar_cfg, &["logs", "paths"]));
    assert!(
        logs_globs
            .iter()
            .any(|g| g.starts_with(&format!("{log_dir}/"))),
        "{logs_globs:?} vs LOG_PATH {}",
        env["LOG_PATH"]
    );
    assert_eq!(str_at(&sidecar_cfg, &["logs", "format"]), Some("json"));
    let volume_at = |svc: &Value, dir: &str| {
        service_volumes(svc)
            .into_iter()
            .find(|(_, d)| d == dir)
            .map(|(s, _)| s)
    };
    let shared = volume_at(app, &log_dir).expect("demo-app's log directory is a volume");
    assert_eq!(
        volume_at(sc, &log_dir),
        Some(shared),
        "the sidecar must mount the app's log volume"
    );
}

#[test]
fn sidecar_config_maps_the_model_metrics() {
    let cfg = load("deploy/sidecar.yml");
    let mappings = seq_at(&cfg, &["statsd", "mapping", "mappings"]);
    let find = |m: &str| {
        mappings
            .iter()
            .find(|x| str_at(x, &["match"]) == Some(m))
            .unwrap_or_else(|| panic!("deploy/sidecar.yml: no StatsD mapping for {m}"))
    };
    let inf = find("model.inference.*");
    assert_eq!(
        str_at(inf, &["name"]),
        Some("model_inference_duration_seconds")
    );
    assert_eq!(str_at(inf, &["observer_type"]), Some("histogram"));
    let q = find("model.queue.length");
    assert_eq!(str_at(q, &["name"]), Some("model_queue_length"));
    assert_eq!(str_at(q, &["match_metric_type"]), Some("gauge"));
    let acc = find("model.accuracy");
    assert_eq!(
        str_at(acc, &["name"]),
        Some("model_prediction_accuracy_percent")
    );
    assert_eq!(str_at(acc, &["match_metric_type"]), Some("gauge"));
    // The tap counts the requests; the log must not count them again.
    assert_eq!(
        str_at(&cfg, &["logs", "fields", "method"]),
        Some(""),
        "the log's http_* metrics are off"
    );
    let auth = seq_at(&cfg, &["logs", "metrics"])
        .iter()
        .find(|m| str_at(m, &["name"]) == Some("app_auth_failures_total"))
        .expect("deploy/sidecar.yml: a log metric app_auth_failures_total");
    assert_eq!(str_at(auth, &["match", "event"]), Some("login_failed"));
}

// --- Kubernetes -------------------------------------------------------------------

/// `kubectl kustomize deploy/kubernetes`, as text (once per test binary).
fn kustomize_text() -> &'static str {
    static OUT: OnceLock<String> = OnceLock::new();
    OUT.get_or_init(|| {
        let kubectl = require_program("kubectl", "kubernetes-client");
        let out = run_ok(
            Command::new(kubectl)
                .args(["kustomize", "deploy/kubernetes"])
                .current_dir(root()),
            "kubectl kustomize deploy/kubernetes",
        );
        stdout_of(&out)
    })
}

fn kustomize_docs() -> Vec<Value> {
    yaml_docs(kustomize_text(), "kubectl kustomize output")
}

fn kind(d: &Value) -> &str {
    str_at(d, &["kind"]).unwrap_or("")
}

fn name(d: &Value) -> &str {
    str_at(d, &["metadata", "name"]).unwrap_or("")
}

fn is_monitoring(d: &Value) -> bool {
    str_at(d, &["apiVersion"]).is_some_and(|a| a.starts_with("monitoring.coreos.com/"))
}

fn write_docs(path: &Path, docs: &[&Value]) {
    let text: String = docs
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn kustomize_core_kinds_pass_kubernetes_validate_strict() {
    let validate = find_program("kubernetes-validate").unwrap_or_else(|| {
        panic!("kubernetes-validate not found: pip install kubernetes-validate (PyPI)")
    });
    let docs = kustomize_docs();
    let kinds: BTreeSet<&str> = docs.iter().map(kind).collect();
    for want in [
        "Namespace",
        "DaemonSet",
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    ] {
        assert!(
            kinds.contains(want),
            "kustomize output has no {want}: {kinds:?}"
        );
    }
    let core: Vec<&Value> = docs.iter().filter(|d| !is_monitoring(d)).collect();
    let dir = TempDir::new("kv");
    let file = dir.path().join("core.yaml");
    write_docs(&file, &core);
    let out = Command::new(validate)
        .args(["--strict", "--kubernetes-version", K8S_VERSION])
        .arg(&file)
        .output()
        .expect("run kubernetes-validate");
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        out.status.success(),
        "kubernetes-validate --strict failed:\n{text}"
    );
    // An unknown apiVersion/kind is only a warning there: fail on it too.
    assert!(
        !text.contains("WARN") && !text.contains("ERROR"),
        "kubernetes-validate complained:\n{text}"
    );
    let passed = text.lines().filter(|l| l.contains(" passed ")).count();
    assert_eq!(passed, core.len(), "every core object must pass:\n{text}");
}

/// prometheus-operator's CRDs for ServiceMonitor, PodMonitor and
/// PrometheusRule (operator 0.89.0, descriptions stripped), offline after the
/// first run. They come from the crates.io crate kopium, whose published
/// source carries them as test input: fetched with `cargo fetch` into the
/// ordinary cargo cache, then extracted from its `.crate` archive into
/// `~/.cache/oxmon/` (never into the repository).
fn crd_files() -> Vec<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let cache = home.join(format!(
        ".cache/oxmon/prometheus-operator-crds-{CRD_OPERATOR_VERSION}"
    ));
    let files: Vec<PathBuf> = CRD_FILES.iter().map(|f| cache.join(f)).collect();
    if files.iter().all(|f| f.is_file()) {
        return files;
    }
    let cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| home.join(".cargo"), PathBuf::from);
    let crate_file = || -> Option<PathBuf> {
        let dirs = std::fs::read_dir(cargo_home.join("registry/cache")).ok()?;
        dirs.filter_map(|d| d.ok())
            .map(|d| {
                d.path()
                    .join(format!("{CRD_CRATE}-{CRD_CRATE_VERSION}.crate"))
            })
            .find(|p| p.is_file())
    };
    let krate = crate_file().unwrap_or_else(|| {
        // A throw-away package depending on the crate, fetched (not built).
        let fetch_dir = home.join(".cache/oxmon/crd-fetch");
        std::fs::create_dir_all(fetch_dir.join("src")).unwrap();
        std::fs::write(
            fetch_dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"oxmon-crd-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
                 [dependencies]\n{CRD_CRATE} = \"={CRD_CRATE_VERSION}\"\n\n[workspace]\n"
            ),
        )
        .unwrap();
        std::fs::write(fetch_dir.join("src/lib.rs"), "").unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["fetch", "--manifest-path"])
            .arg(fetch_dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", fetch_dir.join("target"))
            .output()
            .expect("run cargo fetch");
        assert!(
            out.status.success(),
            "prometheus-operator CRD schemas: `cargo fetch` of the crates.io crate \
             {CRD_CRATE} {CRD_CRATE_VERSION} (its tests/ ship the CRDs) failed:\n{}",
            stderr_of(&out)
        );
        crate_file().unwrap_or_else(|| panic!("{CRD_CRATE}-{CRD_CRATE_VERSION}.crate not in the cargo cache after cargo fetch"))
    });
    let tmp = PathBuf::from(format!("{}.tmp", cache.display()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let members: Vec<String> = CRD_FILES
        .iter()
        .map(|f| format!("{CRD_CRATE}-{CRD_CRATE_VERSION}/tests/{f}"))
        .collect();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(&krate)
            .arg("-C")
            .arg(&tmp)
            .arg("--strip-components=2")
            .args(&members),
        "extract the CRDs from the kopium crate",
    );
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::rename(&tmp, &cache).unwrap();
    for f in &files {
        let text = read(f);
        assert!(
            text.contains(&format!(
                "operator.prometheus.io/version: {CRD_OPERATOR_VERSION}"
            )),
            "{} is not prometheus-operator {CRD_OPERATOR_VERSION}'s CRD",
            f.display()
        );
    }
    files
}

/// Validates custom resources against their CRDs' openAPIV3Schema with
/// Python's jsonschema (installed with kubernetes-validate), strictly: an
/// unknown field is an error, as with `kubectl apply --validate=strict`.
const VALIDATE_CRS_PY: &str = r#"
import copy, sys
import jsonschema, yaml

OBJECT_META = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

def to_json_schema(s):
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("description", "default", "format", "example", "nullable") or k.startswith("x-kubernetes-"):
            continue
        if k == "properties":
            out[k] = {n: to_json_schema(sub) for n, sub in v.items()}
        elif k in ("items", "not"):
            out[k] = to_json_schema(v)
        elif k == "additionalProperties":
            out[k] = to_json_schema(v) if isinstance(v, dict) else v
        elif k in ("anyOf", "allOf", "oneOf"):
            out[k] = [to_json_schema(x) for x in v]
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (s.get("type") == "object" and "properties" in s and "additionalProperties" not in s
            and not s.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out

def main(argv):
    sep = argv.index("--")
    schemas = {}
    for path in argv[:sep]:
        for crd in yaml.safe_load_all(open(path)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for ver in crd["spec"]["versions"]:
                schema = to_json_schema(copy.deepcopy(ver["schema"]["openAPIV3Schema"]))
                schema["properties"]["metadata"] = OBJECT_META
                schema["properties"]["apiVersion"] = {"const": group + "/" + ver["name"]}
                schema["properties"]["kind"] = {"const": kind}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
                schemas[(group + "/" + ver["name"], kind)] = schema
    problems, checked = [], 0
    for path in argv[sep + 1:]:
        for doc in yaml.safe_load_all(open(path)):
            if not doc or not str(doc.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
                continue
            key = (doc["apiVersion"], doc.get("kind"))
            name = "%s/%s" % (doc.get("kind"), (doc.get("metadata") or {}).get("name"))
            if key not in schemas:
                problems.append("%s: no CRD schema for %s %s" % (name, key[0], key[1]))
                continue
            checked += 1
            for err in sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
                where = ".".join(str(p) for p in err.absolute_path) or "(root)"
                problems.append("%s: %s: %s" % (name, where, err.message))
    for p in problems:
        print(p)
    print("checked=%d schemas=%d problems=%d" % (checked, len(schemas), len(problems)))
    return 1 if problems else 0

sys.exit(main(sys.argv[1:]))
"#;

fn validate_crs(crds: &[PathBuf], manifest: &Path, dir: &Path) -> (bool, String) {
    let python = require_program("python3", "python3");
    let probe = Command::new(&python)
        .args(["-c", "import jsonschema, yaml"])
        .output()
        .expect("run python3");
    assert!(
        probe.status.success(),
        "python3 lacks jsonschema/PyYAML: pip install kubernetes-validate (PyPI; brings both)\n{}",
        stderr_of(&probe)
    );
    let script = dir.join("validate_crs.py");
    std::fs::write(&script, VALIDATE_CRS_PY).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .args(crds)
        .arg("--")
        .arg(manifest)
        .output()
        .expect("run validate_crs.py");
    (
        out.status.success(),
        format!("{}{}", stdout_of(&out), stderr_of(&out)),
    )
}

#[test]
fn monitoring_resources_validate_against_prometheus_operator_crds() {
    let crds = crd_files();
    let docs = kustomize_docs();
    let monitoring: Vec<&Value> = docs.iter().filter(|d| is_monitoring(d)).collect();
    let dir = TempDir::new("crd");
    let file = dir.path().join("monitoring.yaml");
    write_docs(&file, &monitoring);
    let (ok, text) = validate_crs(&crds, &file, dir.path());
    assert!(
        ok,
        "prometheus-operator {CRD_OPERATOR_VERSION} CRD schemas reject:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "checked={} schemas=3 problems=0",
            monitoring.len()
        )),
        "not every custom resource was checked:\n{text}"
    );

    // The check is strict: a misspelt field and a wrong type are refused.
    let mut bad: Vec<Value> = monitoring.iter().map(|d| (*d).clone()).collect();
    let sm = bad
        .iter_mut()
        .find(|d| kind(d) == "ServiceMonitor")
        .unwrap();
    let spec = sm.get_mut("spec").and_then(Value::as_mapping_mut).unwrap();
    let endpoints = spec.remove("endpoints").unwrap();
    spec.insert("endpoint".into(), endpoints);
    let pr = bad
        .iter_mut()
        .find(|d| kind(d) == "PrometheusRule")
        .unwrap();
    pr["spec"]["groups"][0]["rules"][0]["labels"] = Value::String("not a map".into());
    let bad_refs: Vec<&Value> = bad.iter().collect();
    let bad_file = dir.path().join("bad.yaml");
    write_docs(&bad_file, &bad_refs);
    let (ok, text) = validate_crs(&crds, &bad_file, dir.path());
    assert!(
        !ok,
        "the CRD check must refuse a broken ServiceMonitor:\n{text}"
    );
    assert!(text.contains("'endpoint' was unexpected"), "{text}");
    assert!(
        text.contains("labels: 'not a map' is not of type 'object'"),
        "{text}"
    );
}

/// Pod templates of the workloads: (kind/name, template).
fn pod_templates(docs: &[Value]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter(|d| matches!(kind(d), "Deployment" | "DaemonSet" | "StatefulSet"))
        .map(|d| {
            (
                format!("{}/{}", kind(d), name(d)),
                get(d, &["spec", "template"]).expect("template"),
            )
        })
        .collect()
}

fn containers(tpl: &Value) -> Vec<&Value> {
    seq_at(tpl, &["spec", "containers"])
        .iter()
        .chain(seq_at(tpl, &["spec", "initContainers"]))
        .collect()
}

fn port_names(tpl: &Value) -> BTreeSet<String> {
    containers(tpl)
        .iter()
        .flat_map(|c| seq_at(c, &["ports"]))
        .filter_map(|p| str_at(p, &["name"]).map(str::to_string))
        .collect()
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn find_doc<'a>(docs: &'a [Value], k: &str, n: &str) -> &'a Value {
    docs.iter()
        .find(|d| kind(d) == k && name(d) == n)
        .unwrap_or_else(|| panic!("kustomize output has no {k}/{n}"))
}

/// A ConfigMap's (or Secret's) data entry, by the object's name before
/// kustomize's hash suffix.
fn generated_data(docs: &[Value], k: &str, base: &str, key: &str) -> String {
    let d = docs
        .iter()
        .find(|d| {
            kind(d) == k
                && name(d)
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
        .unwrap_or_else(|| panic!("no {k} {base}"));
    str_at(d, &["data", key])
        .unwrap_or_else(|| panic!("{k} {base} has no {key}"))
        .to_string()
}

#[test]
fn kubernetes_objects_reference_each_other_correctly() {
    let docs = kustomize_docs();
    for d in &docs {
        if kind(d) != "Namespace" {
            assert_eq!(
                str_at(d, &["metadata", "namespace"]),
                Some("oxmon"),
                "{}/{} namespace",
                kind(d),
                name(d)
            );
        }
    }
    let configmaps: BTreeSet<&str> = docs
        .iter()
        .filter(|d| kind(d) == "ConfigMap")
        .map(name)
        .collect();
    let secrets: BTreeSet<&str> = docs
        .iter()
        .filter(|d| kind(d) == "Secret")
        .map(name)
        .collect();
    let templates = pod_templates(&docs);
    let binaries: BTreeSet<String> = EXPORTERS
        .iter()
        .map(|(b, _)| format!("/usr/local/bin/{b}"))
        .collect();

    for (w, tpl) in &templates {
        let doc = docs
            .iter()
            .find(|d| format!("{}/{}", kind(d), name(d)) == *w)
            .unwrap();
        let sel = string_map(get(doc, &["spec", "selector", "matchLabels"]));
        let labels = string_map(get(tpl, &["metadata", "labels"]));
        assert!(
            labels_match(&sel, &labels),
            "{w}: selector {sel:?} vs template labels {labels:?}"
        );
        // Volumes refer to objects that exist; host paths are read-only.
        let mut host_volumes = BTreeSet::new();
        for v in seq_at(tpl, &["spec", "volumes"]) {
            if let Some(cm) = str_at(v, &["configMap", "name"]) {
                assert!(
                    configmaps.contains(cm),
                    "{w}: ConfigMap {cm} does not exist"
                );
            }
            if let Some(s) = str_at(v, &["secret", "secretName"]) {
                assert!(secrets.contains(s), "{w}: Secret {s} does not exist");
            }
            if get(v, &["hostPath"]).is_some() {
                host_volumes.insert(str_at(v, &["name"]).unwrap().to_string());
            }
        }
        for c in containers(tpl) {
            let cname = str_at(c, &["name"]).unwrap_or("?");
            let sc = get(c, &["securityContext"])
                .unwrap_or_else(|| panic!("{w}/{cname}: no securityContext"));
            assert_eq!(
                get(sc, &["readOnlyRootFilesystem"]),
                Some(&Value::Bool(true)),
                "{w}/{cname}"
            );
            assert_eq!(
                get(sc, &["allowPrivilegeEscalation"]),
                Some(&Value::Bool(false)),
                "{w}/{cname}"
            );
            assert_eq!(
                strings(seq_at(sc, &["capabilities", "drop"])),
                ["ALL"],
                "{w}/{cname}"
            );
            for m in seq_at(c, &["volumeMounts"]) {
                if host_volumes.contains(str_at(m, &["name"]).unwrap()) {
                    assert_eq!(
                        get(m, &["readOnly"]),
                        Some(&Value::Bool(true)),
                        "{w}/{cname}: host path mounted writable"
                    );
                }
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(Value::String(p)) = get(c, &[probe, "httpGet", "port"]) {
                    let own: BTreeSet<String> = seq_at(c, &["ports"])
                        .iter()
                        .filter_map(|p| str_at(p, &["name"]).map(str::to_string))
                        .collect();
                    assert!(
                        own.contains(p),
                        "{w}/{cname}: {probe} port {p} is not a port of this container"
                    );
                }
            }
            let image = str_at(c, &["image"]).unwrap_or("");
            if image.starts_with("oxmon:") || image.contains("/oxmon:") {
                let cmd = strings(seq_at(c, &["command"]));
                assert!(
                    cmd.len() == 1 && binaries.contains(&cmd[0]),
                    "{w}/{cname}: an oxmon container runs one of the image's binaries: {cmd:?}"
                );
            }
        }
    }

    // The node and GPU DaemonSets, as node_exporter's and dcgm-exporter's charts.
    let node = get(
        find_doc(&docs, "DaemonSet", "oxmon-node"),
        &["spec", "template", "spec"],
    )
    .unwrap();
    assert_eq!(get(node, &["hostNetwork"]), Some(&Value::Bool(true)));
    assert_eq!(get(node, &["hostPID"]), Some(&Value::Bool(true)));
    assert_eq!(
        get(node, &["securityContext", "runAsNonRoot"]),
        Some(&Value::Bool(true))
    );
    let node_c = &seq_at(node, &["containers"])[0];
    let node_args = strings(seq_at(node_c, &["args"]));
    for (flag, mount, host) in [
        ("--path.procfs", "/host/proc", "/proc"),
        ("--path.sysfs", "/host/sys", "/sys"),
        ("--path.rootfs", "/host/root", "/"),
    ] {
        assert_eq!(
            flag_value(&node_args, flag),
            Some(mount),
            "oxmon-node {flag}"
        );
        let vol = seq_at(node_c, &["volumeMounts"])
            .iter()
            .find(|m| str_at(m, &["mountPath"]) == Some(mount))
            .and_then(|m| str_at(m, &["name"]))
            .unwrap_or_else(|| panic!("oxmon-node: nothing mounted at {mount}"));
        let hp = seq_at(node, &["volumes"])
            .iter()
            .find(|v| str_at(v, &["name"]) == Some(vol))
            .and_then(|v| str_at(v, &["hostPath", "path"]));
        assert_eq!(
            hp,
            Some(host),
            "oxmon-node {mount} must be the host's {host}"
        );
    }
    let gpu = get(
        find_doc(&docs, "DaemonSet", "oxmon-gpu"),
        &["spec", "template", "spec"],
    )
    .unwrap();
    assert!(
        !string_map(get(gpu, &["nodeSelector"])).is_empty(),
        "oxmon-gpu: GPU nodes only"
    );
    assert!(seq_at(gpu, &["tolerations"])
        .iter()
        .any(|t| str_at(t, &["key"]) == Some("nvidia.com/gpu")));
    let gpu_c = &seq_at(gpu, &["containers"])[0];
    let pr_mount = seq_at(gpu_c, &["volumeMounts"])
        .iter()
        .find(|m| str_at(m, &["mountPath"]) == Some("/var/lib/kubelet/pod-resources"))
        .expect("the kubelet pod-resources directory is mounted");
    assert_eq!(get(pr_mount, &["readOnly"]), Some(&Value::Bool(true)));

    // The example app's sidecar is a native sidecar.
    let app = get(
        find_doc(&docs, "Deployment", "example-app"),
        &["spec", "template", "spec"],
    )
    .unwrap();
    let sidecar = seq_at(app, &["initContainers"])
        .iter()
        .find(|c| str_at(c, &["name"]) == Some("oxmon-sidecar"))
        .expect("example-app: oxmon-sidecar among initContainers");
    assert_eq!(
        str_at(sidecar, &["restartPolicy"]),
        Some("Always"),
        "a native sidecar"
    );
    assert_eq!(
        strings(seq_at(sidecar, &["command"])),
        ["/usr/local/bin/oxmon-sidecar"]
    );

    // Services select workloads and name their ports.
    let services: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Service").collect();
    for s in &services {
        let sel = string_map(get(s, &["spec", "selector"]));
        let matched: Vec<&(String, &Value)> = templates
            .iter()
            .filter(|(_, t)| labels_match(&sel, &string_map(get(t, &["metadata", "labels"]))))
            .collect();
        assert!(
            !matched.is_empty(),
            "Service {} selects no workload ({sel:?})",
            name(s)
        );
        for p in seq_at(s, &["spec", "ports"]) {
            if let Some(Value::String(tp)) = get(p, &["targetPort"]) {
                for (w, t) in &matched {
                    assert!(
                        port_names(t).contains(tp),
                        "Service {} targetPort {tp} is no port of {w}",
                        name(s)
                    );
                }
            }
        }
    }

    // ServiceMonitors select Services, name their ports, and name the job
    // after the Service's oxmon.io/job label: the jobs of prometheus.yml.
    let prom = prometheus_expectations();
    let mut jobs = BTreeSet::new();
    for sm in docs.iter().filter(|d| kind(d) == "ServiceMonitor") {
        let sel = string_map(get(sm, &["spec", "selector", "matchLabels"]));
        let matched: Vec<&&Value> = services
            .iter()
            .filter(|s| labels_match(&sel, &string_map(get(s, &["metadata", "labels"]))))
            .collect();
        assert!(
            !matched.is_empty(),
            "ServiceMonitor {} selects no Service",
            name(sm)
        );
        let job_label = str_at(sm, &["spec", "jobLabel"])
            .unwrap_or_else(|| panic!("ServiceMonitor {}: jobLabel", name(sm)));
        for s in &matched {
            let job = string_map(get(s, &["metadata", "labels"]))
                .get(job_label)
                .cloned()
                .unwrap_or_else(|| panic!("Service {} lacks label {job_label}", name(s)));
            assert!(
                prom.jobs.contains_key(&job),
                "job {job} is not a job of prometheus.yml"
            );
            jobs.insert(job);
            let sports: BTreeSet<&str> = seq_at(s, &["spec", "ports"])
                .iter()
                .filter_map(|p| str_at(p, &["name"]))
                .collect();
            for e in seq_at(sm, &["spec", "endpoints"]) {
                let port = str_at(e, &["port"]).expect("endpoint port name");
                assert!(
                    sports.contains(port),
                    "ServiceMonitor {}: Service {} has no port {port}",
                    name(sm),
                    name(s)
                );
            }
        }
    }
    for want in ["node", "gpu", "postgres", "redis", "app"] {
        assert!(
            jobs.contains(want),
            "no ServiceMonitor gives job {want}: {jobs:?}"
        );
    }
    // PodMonitors select pods and name their ports.
    for pm in docs.iter().filter(|d| kind(d) == "PodMonitor") {
        let mut matched = Vec::new();
        for (w, t) in &templates {
            let labels = string_map(get(t, &["metadata", "labels"]));
            let by_labels = {
                let m = string_map(get(pm, &["spec", "selector", "matchLabels"]));
                m.iter().all(|(k, v)| labels.get(k) == Some(v))
            };
            let by_exprs = seq_at(pm, &["spec", "selector", "matchExpressions"])
                .iter()
                .all(|e| {
                    let key = str_at(e, &["key"]).unwrap();
                    let values = strings(seq_at(e, &["values"]));
                    match str_at(e, &["operator"]) {
                        Some("In") => labels.get(key).is_some_and(|v| values.contains(v)),
                        Some("Exists") => labels.contains_key(key),
                        other => panic!(
                            "PodMonitor {}: operator {other:?} not checked here",
                            name(pm)
                        ),
                    }
                });
            if by_labels && by_exprs {
                matched.push((w, t));
            }
        }
        assert!(
            !matched.is_empty(),
            "PodMonitor {} selects no pod",
            name(pm)
        );
        for e in seq_at(pm, &["spec", "podMetricsEndpoints"]) {
            let port = str_at(e, &["port"]).expect("podMetricsEndpoints port");
            for (w, t) in &matched {
                assert!(
                    port_names(t).contains(port),
                    "PodMonitor {}: {w} has no port {port}",
                    name(pm)
                );
            }
        }
    }

    // Multi-target: every probed database is in the exporter's allow-list,
    // with an auth module that exists, and becomes the instance label.
    let pg_config = parse_yaml(
        &generated_data(
            &docs,
            "ConfigMap",
            "oxmon-postgres-config",
            "postgres_exporter.yml",
        ),
        "ConfigMap oxmon-postgres-config",
    );
    let pg_allowed = strings(seq_at(&pg_config, &["probe", "allowed_targets"]));
    let modules = get(&pg_config, &["auth_modules"])
        .and_then(Value::as_mapping)
        .expect("auth_modules");
    let pg_dep = find_doc(&docs, "Deployment", "oxmon-postgres");
    let pg_c = &seq_at(pg_dep, &["spec", "template", "spec", "containers"])[0];
    let mounts: Vec<(&str, &str)> = seq_at(pg_c, &["volumeMounts"])
        .iter()
        .map(|m| {
            (
                str_at(m, &["name"]).unwrap(),
                str_at(m, &["mountPath"]).unwrap(),
            )
        })
        .collect();
    for (m, def) in modules {
        let pw = str_at(def, &["userpass", "password_file"]).expect("password_file");
        assert!(
            mounts
                .iter()
                .any(|(n, path)| *n == "auth" && pw.starts_with(&format!("{path}/"))),
            "auth module {m:?} reads {pw}, not in the mounted Secret"
        );
    }
    let pg_sm = find_doc(&docs, "ServiceMonitor", "oxmon-postgres");
    let redis_allowed: Vec<String> =
        generated_data(&docs, "ConfigMap", "oxmon-redis-config", "allowed-targets")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
    let redis_sm = find_doc(&docs, "ServiceMonitor", "oxmon-redis");
    for (sm, path, allowed) in [
        (pg_sm, "/probe", &pg_allowed),
        (redis_sm, "/scrape", &redis_allowed),
    ] {
        let endpoints = seq_at(sm, &["spec", "endpoints"]);
        assert!(!endpoints.is_empty());
        for e in endpoints {
            assert_eq!(
                str_at(e, &["path"]),
                Some(path),
                "ServiceMonitor {}",
                name(sm)
            );
            let targets = strings(seq_at(e, &["params", "target"]));
            assert_eq!(targets.len(), 1, "one target per endpoint in {}", name(sm));
            let (h, p) = host_port(&targets[0]);
            let hp = format!("{h}:{}", p.expect("target port"));
            assert!(
                allowed.contains(&hp),
                "{} probes {hp}, not in the allow-list {allowed:?}",
                name(sm)
            );
            for m in strings(seq_at(e, &["params", "auth_module"])) {
                assert!(
                    modules.contains_key(m.as_str()),
                    "auth module {m} not in oxmon-postgres-config"
                );
            }
            assert!(
                seq_at(e, &["relabelings"]).iter().any(|r| {
                    strings(seq_at(r, &["sourceLabels"])) == ["__param_target"]
                        && str_at(r, &["targetLabel"]) == Some("instance")
                }),
                "{}: the target must become the instance label",
                name(sm)
            );
        }
    }
    assert!(!seq_at(pg_sm, &["spec", "endpoints"]).is_empty());
}

#[test]
fn kubernetes_generated_files_are_fresh() {
    let dir = TempDir::new("gen");
    run_ok(
        Command::new(root().join("scripts/gen-k8s-rules"))
            .arg(dir.path())
            .current_dir(root()),
        "scripts/gen-k8s-rules",
    );
    for rel in [
        "prometheus-rules.yaml",
        "shared/sidecar.yml",
        "shared/app.py",
    ] {
        let fresh = read(&dir.path().join(rel));
        let committed_path = root().join("deploy/kubernetes").join(rel);
        let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
        assert!(
            fresh == committed,
            "deploy/kubernetes/{rel} is stale: run scripts/gen-k8s-rules\n{}",
            line_diff(&committed, &fresh)
        );
    }
    // One PrometheusRule per rule file, whose spec is exactly that file.
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(root().join("prometheus/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    rule_files.sort();
    let docs = yaml_docs(
        &read(&root().join("deploy/kubernetes/prometheus-rules.yaml")),
        "prometheus-rules.yaml",
    );
    assert_eq!(
        docs.len(),
        rule_files.len(),
        "one PrometheusRule per prometheus/rules/*.yml"
    );
    for (doc, file) in docs.iter().zip(&rule_files) {
        assert_eq!(kind(doc), "PrometheusRule");
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            str_at(doc, &["metadata", "annotations", "oxmon.io/source"]),
            Some(rel.as_str())
        );
        assert_eq!(
            get(doc, &["spec"]),
            Some(&parse_yaml(&read(file), &rel)),
            "{rel} vs its PrometheusRule"
        );
    }
    let k = load("deploy/kubernetes/kustomization.yaml");
    assert!(strings(seq_at(&k, &["resources"]))
        .iter()
        .any(|r| r == "prometheus-rules.yaml"));
}

// --- systemd ----------------------------------------------------------------------

fn unit_path(bin: &str) -> PathBuf {
    root().join(format!("deploy/systemd/{bin}.service"))
}

/// The unit's `key=value` lines (comments and sections dropped), in order.
fn unit_settings(bin: &str) -> Vec<(String, String)> {
    read(&unit_path(bin))
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('[')
        })
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Copies of the units whose ExecStart points at stub executables in a
/// temp dir: `systemd-analyze verify` refuses a unit whose binary does not
/// exist, and the real ones live in /usr/local/bin only once installed.
fn units_with_stubs(dir: &Path) -> Vec<PathBuf> {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    EXPORTERS
        .iter()
        .map(|(bin, _)| {
            write_executable(&bin_dir.join(bin), "#!/bin/sh\nexit 0\n");
            let text = read(&unit_path(bin));
            assert!(
                text.contains(&format!("ExecStart=/usr/local/bin/{bin} ")),
                "{bin}.service: ExecStart"
            );
            let rewritten = text.replace(
                "/usr/local/bin/oxmon-",
                &format!("{}/oxmon-", bin_dir.display()),
            );
            let path = dir.join(format!("{bin}.service"));
            std::fs::write(&path, rewritten).unwrap();
            path
        })
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify_and_security() {
    let analyze = require_program("systemd-analyze", "systemd");
    let dir = TempDir::new("systemd");
    let units = units_with_stubs(dir.path());
    let out = run_ok(
        Command::new(&analyze)
            .args(["verify", "--man=no"])
            .args(&units),
        "systemd-analyze verify",
    );
    // Unknown keys and bad values are only warnings: any output fails.
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify complained:\n{text}"
    );
    for unit in &units {
        let out = Command::new(&analyze)
            .args(["security", "--offline=yes", "--threshold=30", "--no-pager"])
            .arg(unit)
            .output()
            .expect("run systemd-analyze security");
        let text = stdout_of(&out);
        assert!(
            out.status.success(),
            "{}: exposure above 3.0:\n{}",
            unit.display(),
            text.lines().last().unwrap_or("")
        );
    }
}

#[test]
fn systemd_units_keep_their_hardening() {
    for (bin, _) in EXPORTERS {
        let settings = unit_settings(bin);
        let values = |k: &str| -> Vec<&str> {
            settings
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let one = |k: &str| -> &str {
            let v = values(k);
            assert_eq!(v.len(), 1, "{bin}.service: {k} set {} times", v.len());
            v[0]
        };
        for (k, v) in [
            ("DynamicUser", "yes"),
            ("ProtectSystem", "strict"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectControlGroups", "yes"),
            ("RestrictNamespaces", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("LockPersonality", "yes"),
            ("SystemCallArchitectures", "native"),
            ("CapabilityBoundingSet", ""),
            ("Restart", "on-failure"),
        ] {
            assert_eq!(one(k), v, "{bin}.service: {k}");
        }
        assert!(
            matches!(one("ProtectHome"), "yes" | "read-only"),
            "{bin}.service: ProtectHome"
        );
        assert_eq!(one("EnvironmentFile"), format!("-/etc/default/{bin}"));
        assert!(one("ExecStart").starts_with(&format!("/usr/local/bin/{bin}")));
        assert!(
            values("SystemCallFilter")
                .iter()
                .any(|f| f.starts_with("@system-service")),
            "{bin}: SystemCallFilter"
        );
        let families = one("RestrictAddressFamilies");
        if bin == "oxmon-node" {
            assert!(
                families.contains("AF_NETLINK"),
                "oxmon-node reads interface statistics over netlink"
            );
        } else {
            assert!(!families.contains("AF_NETLINK"), "{bin} needs no netlink");
        }
        if bin == "oxmon-gpu" {
            assert!(
                values("DeviceAllow")
                    .iter()
                    .any(|d| d.starts_with("char-nvidia-frontend")),
                "GPU devices"
            );
            assert!(
                values("PrivateDevices").iter().all(|v| *v != "yes"),
                "PrivateDevices hides /dev/nvidia*"
            );
        } else {
            assert_eq!(one("MemoryDenyWriteExecute"), "yes", "{bin}.service");
        }
        // Only the sidecar reloads on SIGHUP; to the others it is fatal.
        let reload = values("ExecReload");
        if bin == "oxmon-sidecar" {
            assert_eq!(reload, ["/bin/kill -HUP $MAINPID"]);
        } else {
            assert!(reload.is_empty(), "{bin} has no SIGHUP reload");
        }
    }
}

// --- run-native --------------------------------------------------------------------

#[test]
fn run_native_check_prints_the_commands_and_a_valid_config() {
    let dir = TempDir::new("native");
    let run_dir = dir.path().join("run");
    let out = run_ok(
        Command::new(root().join("deploy/run-native"))
            .arg("--check")
            .env("OXMON_RUN_DIR", &run_dir)
            .current_dir(root()),
        "deploy/run-native --check",
    );
    let text = stdout_of(&out);
    let line = |needle: &str| -> &str {
        text.lines()
            .find(|l| !l.starts_with('#') && l.contains(needle))
            .unwrap_or_else(|| panic!("run-native --check prints no command for {needle}:\n{text}"))
    };
    assert!(line("prometheus --config.file=").contains("--storage.tsdb.retention.time=7d"));
    assert!(line("alertmanager").contains(&format!(
        "--config.file={}/alertmanager.yml",
        run_dir.display()
    )));
    assert!(line("victoria-metrics").contains("-retentionPeriod=1y"));
    for (bin, port) in EXPORTERS {
        assert!(
            line(&format!("{bin} ")).contains(&format!("--web.listen-address=127.0.0.1:{port}")),
            "{bin}"
        );
    }
    assert!(line("demo-app/app.py").contains("STATSD_ADDR=127.0.0.1:9125"));
    assert!(
        !run_dir.join("data/prometheus").exists()
            || std::fs::read_dir(run_dir.join("data/prometheus"))
                .unwrap()
                .next()
                .is_none(),
        "--check must start nothing"
    );

    // The loopback prometheus.yml: valid (rules included), and every
    // address it connects to is on 127.0.0.1.
    let config = run_dir.join("prometheus.yml");
    promtool(&["check", "config", &config.to_string_lossy()], "")
        .unwrap_or_else(|e| panic!("generated prometheus.yml:\n{e}"));
    let prom = parse_yaml(&read(&config), "generated prometheus.yml");
    for sc in seq_at(&prom, &["scrape_configs"]) {
        for c in seq_at(sc, &["static_configs"]) {
            for t in strings(seq_at(c, &["targets"])) {
                assert!(
                    t.starts_with("127.0.0.1:"),
                    "generated prometheus.yml still targets {t}"
                );
            }
        }
        for r in seq_at(sc, &["relabel_configs"]) {
            if str_at(r, &["target_label"]) == Some("__address__") {
                let a = str_at(r, &["replacement"]).unwrap();
                assert!(
                    a.starts_with("127.0.0.1:"),
                    "generated prometheus.yml scrapes {a}"
                );
            }
        }
    }
    let am = run_dir.join("alertmanager.yml");
    let am_text = read(&am);
    assert!(!am_text.contains("/etc/alertmanager/secrets/"));
    let amtool = require_program("amtool", "prometheus-alertmanager");
    run_ok(
        Command::new(amtool).args(["check-config"]).arg(&am),
        "amtool check-config (run-native)",
    );
    let pg = parse_yaml(
        &read(&run_dir.join("postgres_exporter.yml")),
        "run-native postgres_exporter.yml",
    );
    let pw = str_at(&pg, &["auth_modules", "main", "userpass", "password_file"]).unwrap();
    assert!(Path::new(pw).is_file(), "run-native: {pw} missing");
}

// --- image --------------------------------------------------------------------------

#[test]
fn dockerfile_builds_every_exporter_into_a_non_root_image() {
    let text = read(&root().join("deploy/Dockerfile"));
    let joined = text.replace("\\\n", " ");
    let build = joined
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    assert!(
        build.contains("--release") && build.contains("--locked"),
        "{build}"
    );
    for (bin, _) in EXPORTERS {
        assert!(
            build.contains(&format!("-p {bin}")),
            "the image must build {bin}: {build}"
        );
        assert!(joined.contains(bin), "{bin} copied into the image");
    }
    let stages: Vec<&str> = joined.split("\nFROM ").collect();
    let last = stages.last().unwrap();
    let user = last
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back()
        .expect("the runtime stage sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("a numeric USER (runAsNonRoot checks it)");
    assert!(uid != 0, "the image must not run as root");
    assert!(
        !last
            .lines()
            .any(|l| l.trim_start().starts_with("ENTRYPOINT")),
        "one image, the binary chosen per service"
    );
    // The build context is the repository root, filtered by the ignore file
    // next to the Dockerfile; every COPY source must be let through.
    let ignore = read(&root().join("deploy/Dockerfile.dockerignore"));
    for l in joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let src = l.split_whitespace().nth(1).unwrap();
        if src == "." {
            continue;
        }
        assert!(root().join(src).exists(), "COPY {src}: no such file");
        assert!(
            ignore.lines().any(|i| i.trim() == format!("!{src}")),
            "COPY {src} is excluded by Dockerfile.dockerignore"
        );
    }
    for keep in ["!Cargo.toml", "!Cargo.lock", "!crates/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == keep),
            "Dockerfile.dockerignore must keep {keep}"
        );
    }
}

/// A one-request-per-connection HTTP server: `/-/healthy` answers 200,
/// anything else 404.
fn serve_health(listener: TcpListener, requests: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            // Read the headers too: closing with unread input resets the
            // connection before the client reads the answer.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
                line.clear();
            }
            let status = if first.starts_with("GET /-/healthy ") {
                "200 OK"
            } else {
                "404 Not Found"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    })
}

#[test]
fn healthcheck_script_passes_only_on_200() {
    let bash = require_program("bash", "bash");
    let script = root().join("deploy/healthcheck");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let server = serve_health(listener, 2);
    let ok = Command::new(&bash)
        .arg(&script)
        .arg(&port)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "healthy answer refused: {}",
        stderr_of(&ok)
    );
    let nope = Command::new(&bash)
        .arg(&script)
        .args([&port, "/nope"])
        .output()
        .unwrap();
    assert!(!nope.status.success(), "a 404 must fail the check");
    server.join().unwrap();
    let closed = free_port().to_string();
    let down = Command::new(&bash)
        .arg(&script)
        .arg(&closed)
        .output()
        .unwrap();
    assert!(!down.status.success(), "a closed port must fail the check");
}

// --- the demo app -------------------------------------------------------------------

#[test]
fn demo_app_serves_health_writes_access_log_and_sends_statsd() {
    let python = require_program("python3", "python3");
    let dir = TempDir::new("demo");
    let log = dir.path().join("logs/access.log");
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let port = free_port();
    let child = Command::new(python)
        .arg(root().join("deploy/demo-app/app.py"))
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("LOG_PATH", &log)
        .env("STATSD_ADDR", statsd.local_addr().unwrap().to_string())
        .env("TRAFFIC_URL", format!("http://127.0.0.1:{port}"))
        .env("TRAFFIC_INTERVAL", "0.05")
        .env("HEALTH_FLAP_PROBABILITY", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo app");
    let _guard = KillOnDrop(child);

    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        match http_try_get(&format!("http://127.0.0.1:{port}/health"), &[]) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("demo app never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(health.status, 200);
    assert_eq!(health.header("Content-Type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&health.body).expect("health body is JSON");
    assert_eq!(
        body,
        serde_json::json!({"status": "UP", "checks": {"database": "UP", "cache": "UP", "model": "UP"}})
    );

    // StatsD: the three model metrics, with their types.
    let mut seen = BTreeSet::new();
    let mut buf = [0u8; 2048];
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(n) = statsd.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                for (prefix, suffix) in [
                    ("model.inference.duration:", "|ms"),
                    ("model.queue.length:", "|g"),
                    ("model.accuracy:", "|g"),
                ] {
                    if line.starts_with(prefix) && line.ends_with(suffix) {
                        let value = &line[prefix.len()..line.len() - suffix.len()];
                        value
                            .parse::<f64>()
                            .unwrap_or_else(|_| panic!("StatsD value in {line:?}"));
                        seen.insert(prefix);
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), 3, "StatsD packets seen: {seen:?}");

    // The access log: one JSON object per line with the fields the sidecar reads.
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= 10 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        lines.len() >= 10,
        "the traffic loop wrote {} access-log lines",
        lines.len()
    );
    let mut statuses = BTreeSet::new();
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
        assert!(v["level"].is_string() && v["trace_id"].is_string(), "{l}");
        if v.get("event").is_none() {
            for k in ["method", "path"] {
                assert!(v[k].is_string(), "{k} in {l}");
            }
            assert!(v["status"].is_u64() && v["duration_ms"].is_number(), "{l}");
            statuses.insert(v["status"].as_u64().unwrap());
        }
    }
    assert!(statuses.contains(&200), "statuses {statuses:?}");
}

// --- flags ------------------------------------------------------------------------

/// Every `--flag` that deploy/ passes to an exporter (compose, Kubernetes,
/// run-native) exists in that exporter's `--help`, for every exporter whose
/// crate is in this tree (its binary built by `cargo build`, as
/// scripts/test does before testing).
#[test]
fn every_exporter_flag_used_in_deploy_exists() {
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut note = |bin: &'static str, args: &[String]| {
        for a in args.iter().filter(|a| a.starts_with("--")) {
            used.entry(bin)
                .or_default()
                .insert(a.split('=').next().unwrap().to_string());
        }
    };
    let compose = compose_gpu();
    let docs = kustomize_docs();
    let dir = TempDir::new("flags");
    let native = stdout_of(&run_ok(
        Command::new(root().join("deploy/run-native"))
            .arg("--check")
            .env("OXMON_RUN_DIR", dir.path())
            .current_dir(root()),
        "deploy/run-native --check",
    ));
    for (bin, _) in EXPORTERS {
        note(bin, &service_args(service(compose, bin)));
        for (_, tpl) in pod_templates(&docs) {
            for c in containers(tpl) {
                if strings(seq_at(c, &["command"])) == [format!("/usr/local/bin/{bin}")] {
                    note(bin, &strings(seq_at(c, &["args"])));
                }
            }
        }
        for l in native.lines().filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.ends_with(&format!("/{bin}")) || w == bin)
        }) {
            note(
                bin,
                &l.split_whitespace().map(str::to_string).collect::<Vec<_>>(),
            );
        }
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    for (bin, flags) in &used {
        let krate = root().join("crates").join(bin.trim_start_matches("oxmon-"));
        if !krate.is_dir() {
            eprintln!(
                "note: {} not in this tree yet; its flags {flags:?} are unchecked",
                krate.display()
            );
            continue;
        }
        let exe = ["release", "debug"]
            .iter()
            .map(|p| target.join(p).join(bin))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{bin} is not built: cargo build -p {bin} (scripts/test builds the workspace first)"));
        let help = stdout_of(&run_ok(
            Command::new(&exe).arg("--help"),
            &format!("{bin} --help"),
        ));
        for flag in flags {
            let known = help
                .match_indices(flag.as_str())
                .any(|(i, _)| help[i + flag.len()..].starts_with([' ', '\n', '=', ',']));
            if known {
                continue;
            }
            panic!(
                "deploy/ passes {flag} to {bin}, which does not know it ({})",
                exe.display()
            );
        }
    }
}
