//! The whole oxmon stack on loopback, end to end (DESIGN.md "Testing",
//! the stack test of the shipped config): real PostgreSQL, Redis, Prometheus,
//! Alertmanager and VictoriaMetrics; the exporters cargo built (oxmon-gpu on
//! the fake NVML library with one hot, nearly full GPU); the shipped rules;
//! a loopback scrape config generated from the shipped
//! `prometheus/prometheus.yml`; the shipped Alertmanager routing with each
//! receiver replaced by a webhook that this test serves.
//!
//! It proves: every target is up; every rule evaluates without error; every
//! metric name a rule selects is served (except [`RULE_NAMES_WITHOUT_EVENT`]); every
//! query of every shipped dashboard returns a series (except what
//! [`NO_DATA_HERE`] lists, and the application's until oxmon-sidecar runs);
//! the hot GPU fires `GPUTemperatureHigh` and `VRAMExhausted` to the
//! critical receivers; stopping Redis sends `RedisDown` and `SystemDown` to
//! PagerDuty and Slack-critical (not to warning Slack or email) while
//! `LowCacheHitRate` of that Redis is inhibited, and starting it again
//! resolves them; the long-term aggregates reach VictoriaMetrics and the raw
//! series do not.
//!
//! Queries that need an event get it: a Redis replica (replication
//! panels, a second target of the redis job), `pg_recvlogical` streaming
//! from a logical slot (a WAL sender with a replay lag), a table with dead
//! rows, Redis lookups that mostly miss (hit ratio, `LowCacheHitRate`), an
//! XID after Prometheus has seen the first (XID panel), the hot GPU
//! (`ALERTS` panels). [`NO_DATA_HERE`] and [`HOST_DEPENDENT`] list what
//! cannot be produced here.
//!
//! Time runs faster, in the loaded copies only: scrapes every 2 s, rule
//! evaluation every second, every `for:` divided by 60 (a minute becomes a
//! second), groups with their own interval (the long-term aggregates) every
//! 5 s, Alertmanager's group_wait and group_interval 1 s. Rate windows in
//! rules and dashboards stay as shipped.
//!
//! The exporters come from the target dir this test was built in: run
//! `cargo build --workspace` first (scripts/test does). The application
//! (oxmon-sidecar in front of deploy/demo-app) runs when `oxmon-sidecar` is
//! there; until then its job, and the rules and queries over its series, are
//! reported as pending.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{dashboards, files_with_ext, metric_names, read, root, substitute};
use oxmon_testkit::serde_json::{json, Value};
use oxmon_testkit::{
    free_port, wait_until, Alertmanager, ExporterProcess, Postgres, Prometheus, Readiness, Redis,
    StartOptions, VictoriaMetrics, WebhookReceiver, POSTGRES_PASSWORD,
};

/// The loaded rules' `for:` durations are the shipped ones divided by this.
const TIME_SCALE: u64 = 60;
/// The interval of rule groups that set their own (the long-term ones).
const OWN_INTERVAL_GROUPS: &str = "5s";
const SCRAPE_INTERVAL: &str = "2s";
const EVALUATION_INTERVAL: &str = "1s";
/// How long any one condition may take to come true.
const WAIT: Duration = Duration::from_secs(90);

/// Series the dashboards use that cannot have data on this machine, and why.
/// A query over one of them (or over a rule recorded from one) may be empty.
const NO_DATA_HERE: [(&str, &str); 6] = [
    (
        "app_series_dropped_total",
        "only once a metric hits the sidecar's series cap (10000 series)",
    ),
    (
        "nvidia_gpu_sm_active_ratio",
        "GPM profiling: not built in oxmon-gpu yet",
    ),
    (
        "nvidia_gpu_sm_occupancy_ratio",
        "GPM profiling: not built in oxmon-gpu yet",
    ),
    (
        "nvidia_gpu_tensor_pipe_active_ratio",
        "GPM profiling: not built in oxmon-gpu yet",
    ),
    (
        "nvidia_gpu_dram_active_ratio",
        "GPM profiling: not built in oxmon-gpu yet",
    ),
    (
        "nvidia_gpu_process_sm_utilization_ratio",
        "per-process utilisation samples: not built in oxmon-gpu yet",
    ),
];

/// Metric names rules use that appear only on an event this test cannot
/// drive, and why. Every other name a rule selects must be served here.
const RULE_NAMES_WITHOUT_EVENT: [(&str, &str); 1] = [(
    "app_series_dropped_total",
    "only once a metric hits the sidecar's series cap (10000 series)",
)];

/// Series that exist only on some hosts: (name, why, a query that has
/// data where they do). A query over one may be empty where the condition
/// query is.
const HOST_DEPENDENT: [(&str, &str, &str); 1] = [(
    "node_memory_SwapTotal_bytes",
    "this host has no swap",
    "node_memory_SwapTotal_bytes > 0",
)];

/// Name prefixes of what oxmon-sidecar serves: its own series and the
/// application's (tap, logs, StatsD mapping).
const APP_PREFIXES: [&str; 4] = ["app_", "http_request", "model_", "statsd_exporter_"];

/// The shipped Alertmanager receivers, each served here by a webhook.
const RECEIVERS: [&str; 5] = ["pagerduty", "slack-critical", "slack", "email", "webhook"];

#[test]
fn the_stack_works_end_to_end() {
    let mut clock = Clock::new();
    let mut stack = Stack::start(&mut clock);
    stack.every_target_is_up();
    clock.lap("every target up");
    stack.drive_events();
    clock.lap("events driven");
    stack.the_hot_gpu_pages();
    clock.lap("GPUTemperatureHigh and VRAMExhausted reached the critical receivers");
    let pending = pending_names(&stack.prom, &stack.rules, stack.app.is_some());
    check_dashboards(&stack.prom, &pending);
    clock.lap("every dashboard query returns a series");
    let watched = check_rule_names(&stack.prom, &stack.rules, stack.app.is_some());
    clock.lap(&format!("{watched} metric names in rules are served"));
    let evaluated = assert_rules_healthy(&stack.prom, stack.rules.count);
    clock.lap(&format!("{evaluated} rules evaluate without error"));
    let stored = stack.aggregates_reach_victoriametrics(&pending);
    clock.lap(&format!("{stored} long-term aggregates in VictoriaMetrics"));
    stack.redis_down_pages_and_inhibits();
    clock.lap("Redis down: RedisDown and SystemDown paged, LowCacheHitRate inhibited");
    stack.redis_back_resolves();
    clock.lap("Redis back: both resolved, the inhibition lifted");
    assert_rules_healthy(&stack.prom, stack.rules.count);

    if stack.app.is_none() {
        println!(
            "[stack] PENDING: oxmon-sidecar is not in {}: the app job, the demo app and the \
             application's rules and dashboard queries were not run",
            stack.bins.dir.display()
        );
    }
    println!("[stack] total {:.1} s", clock.start.elapsed().as_secs_f64());
}

/// Everything the test runs. Fields drop in order: Prometheus first, the
/// watched servers last.
struct Stack {
    prom: Prometheus,
    rules: LoadedRules,
    am: Alertmanager,
    hooks: BTreeMap<&'static str, WebhookReceiver>,
    vm: VictoriaMetrics,
    app: Option<App>,
    gpu: ExporterProcess,
    _node: ExporterProcess,
    _pg_exporter: ExporterProcess,
    _redis_exporter: ExporterProcess,
    _wal_receiver: ExporterProcess,
    redis: Redis,
    redis_replica: Redis,
    pg: Postgres,
    /// The extra scrape targets beside the shipped ones: (job, address).
    extra_targets: Vec<(&'static str, String)>,
    nvml_config: PathBuf,
    bins: BinDir,
    scratch: Scratch,
}

impl Stack {
    fn start(clock: &mut Clock) -> Stack {
        let bins = BinDir::find();
        let scratch = Scratch::new();

        // Logical WAL, so pg_recvlogical can stream from a slot: a WAL
        // sender with a replay position for the replication panels.
        let pg = Postgres::start_with(&[("wal_level", "logical")]);
        let monitor_password = "stack-monitor-pw";
        // The login deploy/postgres/init-monitor.sh creates.
        pg.psql(
            "postgres",
            &format!(
                "CREATE ROLE oxmon LOGIN PASSWORD '{monitor_password}' CONNECTION LIMIT 5; \
                 GRANT pg_monitor TO oxmon; CREATE DATABASE app"
            ),
        );
        if pg.has_pg_stat_statements() {
            pg.psql("postgres", "CREATE EXTENSION pg_stat_statements");
        }
        // A table with live and dead rows for the table panels.
        pg.psql(
            "app",
            "CREATE TABLE orders (id int PRIMARY KEY, qty int); \
             INSERT INTO orders SELECT g, 1 FROM generate_series(1, 1000) g; \
             UPDATE orders SET qty = 2 WHERE id <= 200; DELETE FROM orders WHERE id > 900",
        );
        let port = pg.port.to_string();
        let wal_receiver = ExporterProcess::start_with(
            pg.bin_dir().join("pg_recvlogical"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "app",
                "--slot=stack",
                "--plugin=test_decoding",
                "--create-slot",
                "--start",
                "--status-interval=1",
                "-f",
                "/dev/null",
            ],
            &[("PGPASSWORD", POSTGRES_PASSWORD)],
            StartOptions {
                port: Some(pg.port),
                add_listen_address: false,
                readiness: Readiness::None,
                ..StartOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("pg_recvlogical: {e}"));
        // As deploy/docker-compose.yml runs it: with maxmemory, so the
        // memory ratio has a denominator.
        let redis = Redis::start(&["--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]);
        // A replica, for the replication panels: a second target of the
        // redis job (the multi-target pattern takes a list of servers).
        let redis_replica = Redis::start(&["--replicaof", "127.0.0.1", &redis.port.to_string()]);
        let pg_target = format!("127.0.0.1:{}", pg.port);

        let nvml_config = scratch.write("nvml.json", &fake_gpus().to_string());
        let gpu = ExporterProcess::start(
            bins.file("oxmon-gpu"),
            &[
                &format!(
                    "--nvml.library-path={}",
                    bins.file("libnvidia_ml.so").display()
                ),
                "--collector.processes",
            ],
            &[("FAKE_NVML_CONFIG", nvml_config.to_str().unwrap())],
        );
        let node = ExporterProcess::start(bins.file("oxmon-node"), &[], &[]);
        let password_file = scratch.write("oxmon-postgres-password", monitor_password);
        let pg_exporter_config = scratch.write(
            "postgres_exporter.yml",
            &postgres_exporter_config(&password_file, &pg_target),
        );
        let pg_exporter = ExporterProcess::start(
            bins.file("oxmon-postgres"),
            &[&format!("--config.file={}", pg_exporter_config.display())],
            &[],
        );
        // As deploy/docker-compose.yml runs it: no default server, an
        // allow-list for /scrape.
        let redis_exporter = ExporterProcess::start(
            bins.file("oxmon-redis"),
            &[
                "--redis.addr=",
                &format!(
                    "--scrape.allowed-targets={},{}",
                    redis.addr(),
                    redis_replica.addr()
                ),
            ],
            &[],
        );
        let app = App::start(&bins, &scratch);
        clock.lap("databases and exporters started");

        let vm = VictoriaMetrics::start();
        let hooks: BTreeMap<&'static str, WebhookReceiver> = RECEIVERS
            .iter()
            .map(|name| (*name, WebhookReceiver::start()))
            .collect();
        let templates: Vec<(String, String)> =
            files_with_ext(&root().join("alertmanager/templates"), "tmpl")
                .into_iter()
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    (format!("templates/{name}"), read(&p))
                })
                .collect();
        let templates: Vec<(&str, &str)> = templates
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let am = Alertmanager::start_with_files(&alertmanager_config(&hooks), &templates);

        let local = |port: u16| format!("127.0.0.1:{port}");
        let mut addresses = vec![
            ("alertmanager:9093", local(am.port)),
            ("oxmon-node:9100", local(node.port)),
            ("oxmon-gpu:9445", local(gpu.port)),
            ("oxmon-postgres:9187", local(pg_exporter.port)),
            ("postgres:5432", pg_target),
            ("oxmon-redis:9121", local(redis_exporter.port)),
            ("redis:6379", redis.addr()),
            ("victoriametrics:8428", local(vm.port)),
        ];
        if let Some(app) = &app {
            addresses.push(("oxmon-sidecar:9102", local(app.sidecar.port)));
        }
        let extra_targets = vec![("redis", redis_replica.addr())];
        let rules = LoadedRules::load();
        // Prometheus picks its own port: it starts scraping itself at the
        // shipped address and is reloaded with the real one at once.
        let config = |addresses: &[(&str, String)]| {
            prometheus_config(addresses, &extra_targets, app.is_some())
        };
        let prom = Prometheus::start(&config(&addresses), &rules.files());
        addresses.push(("localhost:9090", local(prom.port)));
        prom.reload_with(&[("config.yml", &config(&addresses))]);
        clock.lap("VictoriaMetrics, Alertmanager and Prometheus started");

        Stack {
            prom,
            rules,
            am,
            hooks,
            vm,
            app,
            gpu,
            _node: node,
            _pg_exporter: pg_exporter,
            _redis_exporter: redis_exporter,
            _wal_receiver: wal_receiver,
            redis,
            redis_replica,
            pg,
            extra_targets,
            nvml_config,
            bins,
            scratch,
        }
    }

    /// `up` is 1 for every job of the shipped config (app only with the
    /// sidecar) and every target, and Prometheus calls each target healthy.
    fn every_target_is_up(&self) {
        let mut jobs: BTreeSet<&str> = [
            "prometheus",
            "alertmanager",
            "node",
            "gpu",
            "postgres",
            "redis",
        ]
        .into_iter()
        .collect();
        if self.app.is_some() {
            jobs.insert("app");
        }
        // One series per job and one per extra target, all 1 (wait_for
        // panics with the last answer otherwise).
        let targets = jobs.len() + self.extra_targets.len();
        self.prom.wait_for("up", WAIT, |data| {
            let result = data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let seen: BTreeSet<&str> = result
                .iter()
                .filter_map(|s| s["metric"]["job"].as_str())
                .collect();
            seen == jobs && result.len() == targets && result.iter().all(|s| s["value"][1] == "1")
        });
        for t in self.prom.active_targets() {
            assert_eq!(t["health"], "up", "target {t}");
        }
        // The shipped relabelling makes the watched server the instance.
        let instances = |job: &str| -> BTreeSet<String> {
            self.prom
                .query_result(&format!("up{{job=\"{job}\"}}"))
                .iter()
                .filter_map(|s| s["metric"]["instance"].as_str().map(String::from))
                .collect()
        };
        assert_eq!(
            instances("postgres"),
            BTreeSet::from([format!("127.0.0.1:{}", self.pg.port)])
        );
        assert_eq!(
            instances("redis"),
            BTreeSet::from([self.redis.addr(), self.redis_replica.addr()])
        );
    }

    /// What the alerts and panels need to happen after Prometheus has seen
    /// the quiet state.
    fn drive_events(&self) {
        // Redis: mostly misses, so the hit ratio is low (LowCacheHitRate).
        self.redis.cli(&["SET", "stack:hit", "1"]);
        for i in 0..40 {
            let key = if i % 10 == 0 {
                "stack:hit"
            } else {
                "stack:miss"
            };
            self.redis.cli(&["GET", key]);
        }
        // One more XID 79 on GPU 0: the first was counted before Prometheus
        // started, so only now does the XID panel see an increase. A new
        // file (rename), so the fake sees the change within one mtime tick.
        let mut gpus = fake_gpus();
        gpus["devices"][0]["xid_events"] = json!([79, 79]);
        let tmp = self.scratch.write("nvml.json.tmp", &gpus.to_string());
        std::fs::rename(&tmp, &self.nvml_config).unwrap();
        // The app, through the tap: a 5xx and failed logins (the error-ratio
        // and auth panels), which its own traffic gives only now and then.
        if let Some(app) = &self.app {
            let fail = [("X-Demo-Fail", "1")];
            for (path, status) in [
                ("/api/predict", 500),
                ("/api/login", 401),
                ("/api/login", 401),
            ] {
                let url = format!("{}{path}", app.tap);
                let got = oxmon_testkit::http_post(&url, &fail, b"{}")
                    .unwrap_or_else(|e| panic!("POST {url}: {e}"));
                assert_eq!(got.status, status, "POST {url}: {}", got.body);
            }
            // A malformed StatsD line and a log line that is not JSON (the
            // panels of the sidecar's own errors).
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.send_to(b"model.queue.length:many|g", ("127.0.0.1", app.statsd_port))
                .unwrap();
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .open(&app.access_log)
                .unwrap();
            std::io::Write::write_all(&mut log, b"not a JSON line\n").unwrap();
        }
    }

    /// GPU 0 (hot, memory nearly full) pages through both critical
    /// receivers and the catch-all webhook; GPU 1 (cool) does not alert.
    fn the_hot_gpu_pages(&self) {
        let instance = format!("127.0.0.1:{}", self.gpu.port);
        for alert in ["GPUTemperatureHigh", "VRAMExhausted"] {
            for receiver in ["pagerduty", "slack-critical", "webhook"] {
                self.hooks[receiver].wait_for(WAIT, |body| {
                    notifies(body, "firing", alert, &instance)
                        && alerts_of(body).iter().any(|a| a["labels"]["gpu"] == "0")
                });
            }
        }
        let hot = self
            .prom
            .query_result("ALERTS{alertname=~\"GPUTemperatureHigh|VRAMExhausted\"}");
        assert!(
            hot.iter().all(|a| a["metric"]["gpu"] == "0"),
            "only GPU 0 is hot and full: {hot:?}"
        );
    }

    /// Prometheus computes every long-term aggregate whose inputs have data
    /// here, those arrive in VictoriaMetrics, and nothing the shipped
    /// write_relabel_configs drop does. Returns how many names arrived.
    fn aggregates_reach_victoriametrics(&self, pending: &BTreeMap<String, String>) -> usize {
        let keep = shipped_prometheus()["remote_write"][0]["write_relabel_configs"][0]["regex"]
            .as_str()
            .expect("remote_write keeps a name regex")
            .to_string();
        let kept_query = format!("count by (__name__) ({{__name__=~\"{keep}\"}})");
        let want: BTreeSet<String> = self
            .rules
            .longterm
            .iter()
            .filter(|name| !pending.contains_key(*name))
            .cloned()
            .collect();
        assert!(want.len() >= 20, "long-term aggregates expected: {want:?}");
        let computed = wait_until(WAIT, || {
            let got = names_of(&self.prom.query(&kept_query));
            want.is_subset(&got).then_some(got)
        })
        .unwrap_or_else(|| {
            panic!(
                "Prometheus computes only {:?} of {want:?}",
                names_of(&self.prom.query(&kept_query))
            )
        });
        let everything = "count by (__name__) ({__name__=~\".+\"})";
        let stored = wait_until(WAIT, || {
            let stored = names_of(&self.vm.query(everything));
            computed.is_subset(&stored).then_some(stored)
        })
        .unwrap_or_else(|| {
            panic!(
                "VictoriaMetrics has {:?}, Prometheus computed {computed:?}",
                names_of(&self.vm.query(everything))
            )
        });
        let kept = names_of(&self.prom.query(&kept_query));
        let extra: Vec<&String> = stored.difference(&kept).collect();
        assert!(
            extra.is_empty(),
            "{} names remote-written but not kept, such as {:?}",
            extra.len(),
            &extra[..extra.len().min(10)]
        );
        stored.len()
    }

    /// Redis's LowCacheHitRate alert in Alertmanager in `state` (active or
    /// suppressed), if it is.
    fn cache_alert(&self, state: &str) -> Option<Value> {
        let instance = self.redis.addr();
        self.am.alerts().into_iter().find(|a| {
            a["labels"]["alertname"] == "LowCacheHitRate"
                && a["labels"]["instance"] == instance.as_str()
                && a["status"]["state"] == state
        })
    }

    /// Stopping Redis (its LowCacheHitRate firing) pages RedisDown and
    /// SystemDown through PagerDuty and Slack-critical only, and the
    /// inhibition rule silences LowCacheHitRate because of them.
    fn redis_down_pages_and_inhibits(&mut self) {
        wait_until(WAIT, || self.cache_alert("active"))
            .unwrap_or_else(|| panic!("LowCacheHitRate never active: {:?}", states(&self.am)));
        self.redis.stop();
        let instance = self.redis.addr();
        for alert in ["RedisDown", "SystemDown"] {
            for receiver in ["pagerduty", "slack-critical", "webhook"] {
                self.hooks[receiver]
                    .wait_for(WAIT, |body| notifies(body, "firing", alert, &instance));
            }
        }
        for receiver in ["slack", "email"] {
            assert!(
                !self.hooks[receiver]
                    .received()
                    .iter()
                    .any(|b| b.contains("\"RedisDown\"") || b.contains("\"SystemDown\"")),
                "a critical alert reached {receiver}"
            );
        }
        let suppressed = wait_until(WAIT, || self.cache_alert("suppressed"))
            .unwrap_or_else(|| panic!("LowCacheHitRate not inhibited: {:?}", states(&self.am)));
        let down: BTreeSet<String> = self
            .am
            .alerts()
            .iter()
            .filter(|a| {
                a["labels"]["instance"] == instance.as_str()
                    && a["labels"]["alertname"]
                        .as_str()
                        .is_some_and(|n| n.ends_with("Down"))
            })
            .filter_map(|a| a["fingerprint"].as_str().map(String::from))
            .collect();
        let by: Vec<&str> = suppressed["status"]["inhibitedBy"]
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            !by.is_empty() && by.iter().all(|f| down.contains(*f)),
            "LowCacheHitRate inhibited by {by:?}, the Redis *Down alerts are {down:?}"
        );
    }

    /// Starting Redis again sends both resolved to the critical receivers
    /// and lifts the inhibition.
    fn redis_back_resolves(&mut self) {
        self.redis.restart();
        let instance = self.redis.addr();
        for alert in ["RedisDown", "SystemDown"] {
            for receiver in ["pagerduty", "slack-critical"] {
                self.hooks[receiver]
                    .wait_for(WAIT, |body| notifies(body, "resolved", alert, &instance));
            }
        }
        wait_until(WAIT, || self.cache_alert("active"))
            .unwrap_or_else(|| panic!("LowCacheHitRate still inhibited: {:?}", states(&self.am)));
    }
}

/// Waits until every rule has been evaluated, asserts that each of them
/// (`count` in all) is healthy and returns how many there are.
fn assert_rules_healthy(prom: &Prometheus, count: usize) -> usize {
    let groups = wait_until(WAIT, || {
        let groups = prom.rule_groups();
        let all_evaluated = groups
            .iter()
            .flat_map(rules_of)
            .all(|r| r["health"] != "unknown");
        all_evaluated.then_some(groups)
    })
    .expect("every rule evaluated within the wait");
    let all: Vec<&Value> = groups.iter().flat_map(rules_of).collect();
    let broken: Vec<String> = all
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{} ({}): {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(broken.is_empty(), "rules failing:\n{}", broken.join("\n"));
    assert_eq!(all.len(), count, "rules loaded");
    all.len()
}

/// Every query of every dashboard returns at least one series; the pending
/// ones (over `pending` names) may be empty and are listed. Rates need a few
/// scrapes, so it asks again until all have data or [`WAIT`] passes.
fn check_dashboards(prom: &Prometheus, pending: &BTreeMap<String, String>) {
    let mut todo = Vec::new();
    let mut excused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in dashboards() {
        let defined: BTreeSet<String> = d
            .variables()
            .iter()
            .filter_map(|v| v["name"].as_str().map(String::from))
            .collect();
        for (place, expr) in d.queries() {
            let query =
                substitute(&expr, &defined).unwrap_or_else(|e| panic!("{}: {place}: {e}", d.file));
            let place = format!("{}: {place}", d.file);
            match metric_names(&query)
                .into_iter()
                .find(|n| pending.contains_key(n))
            {
                Some(name) => excused.entry(name).or_default().push(place),
                None => todo.push((place, query)),
            }
        }
    }
    assert!(todo.len() > 100, "only {} dashboard queries", todo.len());
    let total = todo.len();
    let end = Instant::now() + WAIT;
    loop {
        todo.retain(|(_, query)| !has_series(&prom.query(query)));
        if todo.is_empty() || Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let empty: Vec<String> = todo.iter().map(|(p, q)| format!("{p}: {q}")).collect();
    assert!(
        empty.is_empty(),
        "{} of {total} dashboard queries return no series:\n{}",
        empty.len(),
        empty.join("\n")
    );
    println!("[stack] {total} dashboard queries return series");
    for (name, places) in &excused {
        println!(
            "[stack] no data here for {name} ({}): {} queries excused",
            pending[name],
            places.len()
        );
    }
}

/// Every metric name a rule expression selects is served by the exporters
/// running here (Prometheus's `__name__` values), recorded by a rule, or
/// Prometheus's own (`up`, `ALERTS`); except [`RULE_NAMES_WITHOUT_EVENT`],
/// and the application's while oxmon-sidecar is missing. Returns how many
/// distinct names the rules use.
fn check_rule_names(prom: &Prometheus, rules: &LoadedRules, with_app: bool) -> usize {
    let served: BTreeSet<String> = prom.api("/api/v1/label/__name__/values")["data"]
        .as_array()
        .expect("__name__ values")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let recorded: BTreeSet<&str> = rules.records.iter().map(|(r, _)| r.as_str()).collect();
    let excused: BTreeMap<&str, &str> = RULE_NAMES_WITHOUT_EVENT.into_iter().collect();
    let mut used = BTreeSet::new();
    let mut missing = Vec::new();
    for (place, expr) in &rules.exprs {
        for name in metric_names(expr) {
            let exists = served.contains(&name)
                || recorded.contains(name.as_str())
                || ["up", "ALERTS"].contains(&name.as_str())
                || excused.contains_key(name.as_str())
                || (!with_app && APP_PREFIXES.iter().any(|p| name.starts_with(p)));
            if !exists {
                missing.push(format!("{place}: {name}"));
            }
            used.insert(name);
        }
    }
    assert!(used.len() > 50, "only {} metric names in rules", used.len());
    assert!(
        missing.is_empty(),
        "rules watch metrics no exporter serves here:\n{}",
        missing.join("\n")
    );
    for (name, why) in excused {
        assert!(used.contains(name), "{name} is excused but no rule uses it");
        let state = if served.contains(name) {
            "served now"
        } else {
            "not served"
        };
        println!("[stack] rule metric {name} excused ({why}): {state}");
    }
    used.len()
}

fn has_series(data: &Value) -> bool {
    match &data["result"] {
        Value::Array(list) => !list.is_empty(),
        other => !other.is_null(),
    }
}

fn rules_of(group: &Value) -> Vec<&Value> {
    group["rules"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

fn alerts_of(body: &Value) -> &[Value] {
    body["alerts"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Whether an Alertmanager webhook body carries `alertname` for `instance`
/// in `status` ("firing" or "resolved").
fn notifies(body: &Value, status: &str, alertname: &str, instance: &str) -> bool {
    alerts_of(body).iter().any(|a| {
        a["status"] == status
            && a["labels"]["alertname"] == alertname
            && a["labels"]["instance"] == instance
    })
}

/// Alertmanager's alerts as `alertname instance state`, for messages.
fn states(am: &Alertmanager) -> Vec<String> {
    am.alerts()
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["labels"]["alertname"], a["labels"]["instance"], a["status"]["state"]
            )
        })
        .collect()
}

/// The `__name__` labels of a query's result.
fn names_of(data: &Value) -> BTreeSet<String> {
    data["result"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|s| s["metric"]["__name__"].as_str().map(String::from))
        .collect()
}

// --- generated configuration ---------------------------------------------

fn shipped_prometheus() -> serde_yaml::Value {
    let path = root().join("prometheus/prometheus.yml");
    serde_yaml::from_str(&read(&path)).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The shipped prometheus.yml on loopback: every shipped address (a
/// compose service name) replaced by the local one, faster intervals, the
/// app job dropped without the sidecar; relabelling, rule files and the
/// remote-write filter as shipped.
fn prometheus_config(
    addresses: &[(&str, String)],
    extra_targets: &[(&str, String)],
    with_app: bool,
) -> String {
    let mut doc = shipped_prometheus();
    doc["global"]["scrape_interval"] = SCRAPE_INTERVAL.into();
    doc["global"]["scrape_timeout"] = SCRAPE_INTERVAL.into();
    doc["global"]["evaluation_interval"] = EVALUATION_INTERVAL.into();
    if !with_app {
        let jobs = doc["scrape_configs"]
            .as_sequence_mut()
            .expect("scrape_configs");
        let before = jobs.len();
        jobs.retain(|j| j["job_name"] != "app");
        assert_eq!(jobs.len() + 1, before, "the shipped config has an app job");
    }
    let mut by_length: Vec<&(&str, String)> = addresses.iter().collect();
    by_length.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let mut used = BTreeSet::new();
    rewrite_strings(&mut doc, &mut |s| {
        for (from, to) in &by_length {
            if s.contains(from) {
                used.insert(*from);
                *s = s.replace(from, to);
            }
        }
    });
    for (from, _) in addresses {
        assert!(
            used.contains(from),
            "prometheus.yml no longer mentions {from}"
        );
    }
    for (job, target) in extra_targets {
        let jobs = doc["scrape_configs"]
            .as_sequence_mut()
            .expect("scrape_configs");
        let config = jobs
            .iter_mut()
            .find(|j| j["job_name"] == *job)
            .unwrap_or_else(|| panic!("no job {job}"));
        config["static_configs"][0]["targets"]
            .as_sequence_mut()
            .expect("static targets")
            .push(target.as_str().into());
    }
    serde_yaml::to_string(&doc).unwrap()
}

fn rewrite_strings(v: &mut serde_yaml::Value, f: &mut impl FnMut(&mut String)) {
    match v {
        serde_yaml::Value::String(s) => f(s),
        serde_yaml::Value::Sequence(list) => list.iter_mut().for_each(|x| rewrite_strings(x, f)),
        serde_yaml::Value::Mapping(map) => map.values_mut().for_each(|x| rewrite_strings(x, f)),
        _ => {}
    }
}

/// The shipped alertmanager.yml with each receiver replaced by a webhook to
/// the test's receiver of that name, and 1 s group waits and intervals;
/// routes, grouping, inhibitions and templates as shipped.
fn alertmanager_config(hooks: &BTreeMap<&str, WebhookReceiver>) -> String {
    let path = root().join("alertmanager/alertmanager.yml");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    fn faster(route: &mut serde_yaml::Value) {
        for key in ["group_wait", "group_interval"] {
            if route.get(key).is_some() {
                route[key] = "1s".into();
            }
        }
        if let Some(children) = route.get_mut("routes").and_then(|r| r.as_sequence_mut()) {
            children.iter_mut().for_each(faster);
        }
    }
    faster(&mut doc["route"]);
    let receivers = doc["receivers"].as_sequence_mut().expect("receivers");
    let names: BTreeSet<String> = receivers
        .iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    let want: BTreeSet<String> = hooks.keys().map(|k| k.to_string()).collect();
    assert_eq!(names, want, "the shipped receivers");
    for r in receivers.iter_mut() {
        let name = r["name"].as_str().unwrap().to_string();
        let webhook = serde_yaml::to_value(json!({
            "name": name,
            "webhook_configs": [{"url": hooks[name.as_str()].url(&name), "send_resolved": true}]
        }))
        .unwrap();
        *r = webhook;
    }
    serde_yaml::to_string(&doc).unwrap()
}

/// The shipped deploy/postgres/postgres_exporter.yml with the password file
/// and the allow-list on loopback.
fn postgres_exporter_config(password_file: &Path, target: &str) -> String {
    let path = root().join("deploy/postgres/postgres_exporter.yml");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let userpass = &mut doc["auth_modules"]["main"]["userpass"];
    assert!(
        userpass.get("password_file").is_some(),
        "auth module main reads a password file"
    );
    userpass["password_file"] = password_file.display().to_string().into();
    assert!(
        doc["probe"].get("allowed_targets").is_some(),
        "probe has an allow-list"
    );
    doc["probe"]["allowed_targets"] = vec![target.to_string()].into();
    serde_yaml::to_string(&doc).unwrap()
}

/// Two GPUs: GPU 0 hot (95 °C) with 97% of its memory used, throttling,
/// one XID, processes; GPU 1 cool and idle.
fn fake_gpus() -> Value {
    let hot = json!({
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-5e1a1b2c-0000-4a6b-9c1d-h100h100h100",
        "pci_bus_id": "00000000:07:00.0",
        "vbios_version": "96.00.30.00.01",
        "compute_mode": 0,
        "persistence_mode": true,
        "utilization": {"gpu": 98, "memory": 80},
        "encoder_utilization": 0,
        "decoder_utilization": 0,
        "memory": {"total": 85_899_345_920_u64, "used": 83_322_365_952_u64, "free": 2_576_979_968_u64, "reserved": 536_870_912},
        "temperature": 95,
        "memory_temperature": 90,
        "temperature_thresholds": {"shutdown": 100, "slowdown": 93, "memory_max": 95, "gpu_max": 90},
        "power_usage_mw": 690_000,
        "power_limit_mw": 700_000,
        "energy_mj": 987_654_321,
        "clocks_mhz": {"graphics": 1500, "sm": 1500, "memory": 2619, "video": 1400},
        "max_clocks_mhz": {"graphics": 1980, "sm": 1980, "memory": 2619, "video": 1755},
        "performance_state": 0,
        "throttle_reasons": 8 | 32,
        "ecc_mode": true,
        "ecc_errors": {"volatile_corrected": 3, "volatile_uncorrected": 0, "aggregate_corrected": 7, "aggregate_uncorrected": 0},
        "retired_pages": {"single_bit": 0, "double_bit": 0, "pending": 0},
        "remapped_rows": {"correctable": 1, "uncorrectable": 0, "pending": 0, "failure": 0},
        "xid_events": [79],
        "pcie": {"tx_kbps": 5000, "rx_kbps": 9000, "link_gen": 5, "max_link_gen": 5, "link_width": 16, "max_link_width": 16, "replay_counter": 2},
        "nvlinks": [true, true],
        "processes": [
            {"pid": 4242, "name": "python3", "used_memory": 60_000_000_000_u64, "kind": "compute"},
            {"pid": 4343, "name": "trainer", "used_memory": 20_000_000_000_u64, "kind": "compute"}
        ]
    });
    let mut cool = hot.clone();
    cool["uuid"] = "GPU-77f00d00-1111-4b2c-8d3e-h100h100cool".into();
    cool["pci_bus_id"] = "00000000:3B:00.0".into();
    cool["utilization"] = json!({"gpu": 2, "memory": 1});
    cool["memory"] = json!({"total": 85_899_345_920_u64, "used": 858_993_459, "free": 85_040_352_461_u64, "reserved": 536_870_912});
    cool["temperature"] = 41.into();
    cool["memory_temperature"] = 45.into();
    cool["power_usage_mw"] = 70_000.into();
    cool["throttle_reasons"] = 1.into();
    cool["xid_events"] = json!([]);
    cool["processes"] = json!([]);
    json!({"driver_version": "550.54.15", "cuda_driver_version": 12040, "devices": [hot, cool]})
}

/// The shipped rule files as loaded here (`for:` divided by
/// [`TIME_SCALE`], own group intervals [`OWN_INTERVAL_GROUPS`]) and what
/// they record.
struct LoadedRules {
    files: Vec<(String, String)>,
    /// (recorded name, expression) of every recording rule.
    records: Vec<(String, String)>,
    /// (file and rule name, expression) of every rule, alerts included.
    exprs: Vec<(String, String)>,
    /// The names rules/longterm.rules.yml records (what remote_write sends).
    longterm: Vec<String>,
    /// Rules of every kind.
    count: usize,
}

impl LoadedRules {
    fn load() -> LoadedRules {
        let mut loaded = LoadedRules {
            files: Vec::new(),
            records: Vec::new(),
            exprs: Vec::new(),
            longterm: Vec::new(),
            count: 0,
        };
        for path in files_with_ext(&root().join("prometheus/rules"), "yml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut doc: serde_yaml::Value = serde_yaml::from_str(&read(&path))
                .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
            for group in doc["groups"].as_sequence_mut().expect("groups") {
                if group.get("interval").is_some() {
                    group["interval"] = OWN_INTERVAL_GROUPS.into();
                }
                for rule in group["rules"].as_sequence_mut().expect("rules") {
                    loaded.count += 1;
                    if let Some(d) = rule.get("for").and_then(|d| d.as_str()) {
                        let secs = seconds(d).div_ceil(TIME_SCALE).max(1);
                        rule["for"] = format!("{secs}s").into();
                    }
                    let rule_name = rule["record"].as_str().or(rule["alert"].as_str());
                    if let (Some(r), Some(e)) = (rule_name, rule["expr"].as_str()) {
                        loaded.exprs.push((format!("{name}: {r}"), e.to_string()));
                    }
                    if let (Some(r), Some(e)) = (rule["record"].as_str(), rule["expr"].as_str()) {
                        loaded.records.push((r.to_string(), e.to_string()));
                        if name == "longterm.rules.yml" {
                            loaded.longterm.push(r.to_string());
                        }
                    }
                }
            }
            loaded.files.push((
                format!("rules/{name}"),
                serde_yaml::to_string(&doc).unwrap(),
            ));
        }
        loaded
    }

    fn files(&self) -> Vec<(&str, &str)> {
        self.files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect()
    }
}

/// The names without data here, each with why: [`NO_DATA_HERE`],
/// [`HOST_DEPENDENT`] where this host lacks them, the application's series
/// while the sidecar is missing, and every name recorded from one of those.
fn pending_names(
    prom: &Prometheus,
    rules: &LoadedRules,
    with_app: bool,
) -> BTreeMap<String, String> {
    let mut pending: BTreeMap<String, String> = NO_DATA_HERE
        .iter()
        .map(|(n, why)| (n.to_string(), why.to_string()))
        .collect();
    for (name, why, condition) in HOST_DEPENDENT {
        if !has_series(&prom.query(condition)) {
            pending.insert(name.to_string(), why.to_string());
        }
    }
    if !with_app {
        let mut used = BTreeSet::new();
        for d in dashboards() {
            for (_, expr) in d.queries() {
                used.extend(metric_names(&expr));
            }
        }
        for (_, expr) in &rules.records {
            used.extend(metric_names(expr));
        }
        for name in used {
            if APP_PREFIXES.iter().any(|p| name.starts_with(p)) {
                pending.insert(name, "oxmon-sidecar not built yet".to_string());
            }
        }
    }
    loop {
        let more: Vec<(String, String)> = rules
            .records
            .iter()
            .filter(|(r, _)| !pending.contains_key(r))
            .filter_map(|(r, e)| {
                let from = metric_names(e)
                    .into_iter()
                    .find(|n| pending.contains_key(n))?;
                Some((r.clone(), format!("recorded from {from}")))
            })
            .collect();
        if more.is_empty() {
            return pending;
        }
        pending.extend(more);
    }
}

/// Seconds of a Prometheus duration such as `90s`, `15m`, `1h30m`.
fn seconds(duration: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("duration {duration}"));
        number.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => panic!("duration {duration}: unit {c}"),
        };
    }
    assert!(number.is_empty(), "duration {duration}: no unit");
    total
}

// --- processes and files ---------------------------------------------------

/// The target dir's profile directory this test was built into, where
/// `cargo build --workspace` put the exporters and the fake NVML library.
struct BinDir {
    dir: PathBuf,
}

impl BinDir {
    fn find() -> BinDir {
        // target/<profile>/deps/stack-HASH
        let exe = std::env::current_exe().expect("current_exe");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in <target>/<profile>/deps")
            .to_path_buf();
        BinDir { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        assert!(
            path.is_file(),
            "{} missing: run cargo build --workspace",
            path.display()
        );
        path
    }
}

/// oxmon-sidecar in front of the demo app (deploy/demo-app/app.py), run as
/// deploy/docker-compose.yml runs them, on loopback.
struct App {
    sidecar: ExporterProcess,
    _demo: ExporterProcess,
    /// The tap's base URL, where clients reach the app.
    tap: String,
    /// The sidecar's StatsD port (UDP and TCP).
    statsd_port: u16,
    /// The log file the app writes and the sidecar tails.
    access_log: PathBuf,
}

impl App {
    /// `None` while oxmon-sidecar is not built.
    fn start(bins: &BinDir, scratch: &Scratch) -> Option<App> {
        let bin = bins.dir.join("oxmon-sidecar");
        if !bin.is_file() {
            return None;
        }
        let (app_port, tap_port, statsd_port) = (free_port(), free_port(), free_port());
        let logs = scratch.path.join("app-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let config = scratch.write("sidecar.yml", &sidecar_config(&logs));
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!("--health.url=http://127.0.0.1:{app_port}/health"),
            format!("--tap.listen-address=127.0.0.1:{tap_port}"),
            format!("--tap.upstream=http://127.0.0.1:{app_port}"),
            format!("--statsd.listen-udp=127.0.0.1:{statsd_port}"),
            format!("--statsd.listen-tcp=127.0.0.1:{statsd_port}"),
        ];
        args.extend(compose_tap_routes().map(|r| format!("--tap.route={r}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sidecar = ExporterProcess::start(&bin, &args, &[]);
        let demo = ExporterProcess::start_with(
            oxmon_testkit::require_program("python3", "python3"),
            &[root().join("deploy/demo-app/app.py").to_str().unwrap()],
            &[
                ("LISTEN", &format!("127.0.0.1:{app_port}")),
                ("LOG_PATH", &logs.join("access.log").display().to_string()),
                ("STATSD_ADDR", &format!("127.0.0.1:{statsd_port}")),
                ("TRAFFIC_URL", &format!("http://127.0.0.1:{tap_port}")),
                ("TRAFFIC_INTERVAL", "0.2"),
            ],
            StartOptions {
                port: Some(app_port),
                add_listen_address: false,
                ..StartOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("demo app: {e}"));
        Some(App {
            sidecar,
            _demo: demo,
            tap: format!("http://127.0.0.1:{tap_port}"),
            statsd_port,
            access_log: logs.join("access.log"),
        })
    }
}

/// deploy/sidecar.yml with its log section tailing `logs` (the compose
/// volume's path there).
fn sidecar_config(logs: &Path) -> String {
    let path = root().join("deploy/sidecar.yml");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    doc["logs"]["paths"] = vec![format!("{}/*.log", logs.display())].into();
    serde_yaml::to_string(&doc).unwrap()
}

/// The `--tap.route` patterns deploy/docker-compose.yml gives the sidecar.
fn compose_tap_routes() -> impl Iterator<Item = String> {
    let path = root().join("deploy/docker-compose.yml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    let command = doc["services"]["oxmon-sidecar"]["command"]
        .as_sequence()
        .expect("oxmon-sidecar command")
        .clone();
    let routes: Vec<String> = command
        .iter()
        .filter_map(|a| a.as_str()?.strip_prefix("--tap.route="))
        .map(str::to_string)
        .collect();
    assert!(!routes.is_empty(), "compose gives the tap its routes");
    routes.into_iter()
}

/// Files the test writes for the servers (fake NVML config, exporter
/// configs), under the target dir; removed at the end, kept after a
/// failure to read.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("stack-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Scratch { path }
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("[stack] generated files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Prints the time each phase took.
struct Clock {
    start: Instant,
    last: Instant,
}

impl Clock {
    fn new() -> Clock {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
        }
    }

    fn lap(&mut self, what: &str) {
        let now = Instant::now();
        println!(
            "[stack] {:6.1} s  (+{:5.1} s)  {what}",
            (now - self.start).as_secs_f64(),
            (now - self.last).as_secs_f64()
        );
        self.last = now;
    }
}

#[test]
fn helpers_do_what_they_say() {
    assert_eq!(seconds("30s"), 30);
    assert_eq!(seconds("15m"), 900);
    assert_eq!(seconds("1h30m"), 5400);
}
