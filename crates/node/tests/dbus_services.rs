//! The systemd and logind collectors against fake `org.freedesktop.systemd1`
//! and `org.freedesktop.login1` services on a private `dbus-daemon` (Debian
//! package `dbus`), served by zbus from this test; the real binary is
//! pointed at that bus with `DBUS_SYSTEM_BUS_ADDRESS`.
//!
//! - well-formed services: the exposition matches `tests/golden/dbus.txt`
//!   (unit filter, per-type properties, missing properties skipped, the
//!   logind cross product, a vanished session skipped), and node_exporter
//!   (Debian's `prometheus-node-exporter` 1.5) on the same services writes
//!   the same lines but for the family it does not have yet;
//! - services answering with the wrong D-Bus types: both collectors fail
//!   and say which call, the process keeps serving;
//! - a service that never answers: the collector fails at the scrape
//!   deadline, the next scrape answers too, and the process stays healthy;
//! - 400 units under the system bus's limit of 128 pending calls per
//!   connection: every unit's properties are read;
//! - a restarted bus: the kept connection is dropped and redialled;
//! - no bus at all: both collectors fail at once, nothing else breaks.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxmon_testkit::{require_program, ExporterProcess, Readiness, StartOptions};
use zbus::interface;
use zbus::zvariant::OwnedObjectPath;

mod common;
use common::success;

/// A `dbus-daemon` on a unix socket in a temp dir, allowing everything;
/// killed on drop. `address` names the socket only (no `guid=`), so a
/// restarted daemon on the same socket is the same address.
struct PrivateBus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("bus");
        std::fs::write(
            dir.path().join("bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <!-- The system bus's limit on calls waiting for replies, per connection. -->
  <limit name="max_replies_per_connection">128</limit>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let child = Self::spawn(dir.path());
        PrivateBus {
            child,
            address: format!("unix:path={}", socket.display()),
            dir,
        }
    }

    /// Starts the daemon on `dir/bus.conf` and waits until it listens.
    fn spawn(dir: &Path) -> Child {
        let daemon = require_program("dbus-daemon", "dbus");
        // Its stderr goes to a file (it complains that it may not raise its
        // fd limit), shown only when it fails to start.
        let log = dir.join("dbus-daemon.log");
        let mut child = Command::new(daemon)
            .arg(format!("--config-file={}", dir.join("bus.conf").display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn dbus-daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("unix:"),
            "dbus-daemon printed no address: {line:?}; its log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        child
    }

    /// Kills the daemon and starts a new one on the same socket, as a
    /// restart of the system bus does.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("bus"));
        self.child = Self::spawn(self.dir.path());
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p).unwrap()
}

/// `org.freedesktop.systemd1.Manager` with a fixed unit list.
struct Manager {
    /// Name, object path under `/org/freedesktop/systemd1/unit/`, load
    /// state, active state.
    units: Vec<[String; 4]>,
    system_state: &'static str,
}

/// Owned rows for [`Manager::units`].
fn unit_rows(rows: &[[&str; 4]]) -> Vec<[String; 4]> {
    rows.iter().map(|r| r.map(str::to_string)).collect()
}

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    #[allow(clippy::type_complexity)]
    fn list_units(
        &self,
    ) -> Vec<(
        String,
        String,
        String,
        String,
        String,
        String,
        OwnedObjectPath,
        u32,
        String,
        OwnedObjectPath,
    )> {
        self.units
            .iter()
            .map(|[name, obj, load, active]| {
                (
                    name.to_string(),
                    format!("{name} description"),
                    load.to_string(),
                    active.to_string(),
                    "running".to_string(),
                    String::new(),
                    path(&format!("/org/freedesktop/systemd1/unit/{obj}")),
                    0,
                    String::new(),
                    path("/"),
                )
            })
            .collect()
    }

    #[zbus(property, name = "Version")]
    fn version(&self) -> String {
        "252.22-1~deb12u1".into()
    }

    #[zbus(property, name = "Virtualization")]
    fn virtualization(&self) -> String {
        "kvm".into()
    }

    #[zbus(property, name = "SystemState")]
    fn system_state(&self) -> String {
        self.system_state.into()
    }
}

/// A `ListUnits` answering `a(su)` instead of `a(ssssssouso)`.
struct BrokenManager;

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl BrokenManager {
    fn list_units(&self) -> Vec<(String, u32)> {
        vec![("sshd.service".into(), 1)]
    }

    #[zbus(property, name = "Version")]
    fn version(&self) -> String {
        "255".into()
    }
}

/// A manager whose `ListUnits` answers after a minute.
struct SilentManager;

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl SilentManager {
    async fn list_units(&self) -> Vec<(String, u32)> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Vec::new()
    }

    #[zbus(property, name = "Version")]
    fn version(&self) -> String {
        "255".into()
    }
}

struct Unit {
    active_enter_usec: u64,
}

#[interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property, name = "ActiveEnterTimestamp")]
    fn active_enter_timestamp(&self) -> u64 {
        self.active_enter_usec
    }
}

struct Service {
    kind: &'static str,
    restarts: u32,
    tasks: (u64, u64),
}

#[interface(name = "org.freedesktop.systemd1.Service")]
impl Service {
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.kind.into()
    }
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> u32 {
        self.restarts
    }
    #[zbus(property, name = "TasksCurrent")]
    fn tasks_current(&self) -> u64 {
        self.tasks.0
    }
    #[zbus(property, name = "TasksMax")]
    fn tasks_max(&self) -> u64 {
        self.tasks.1
    }
}

struct Timer;

#[interface(name = "org.freedesktop.systemd1.Timer")]
impl Timer {
    #[zbus(property, name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> u64 {
        1_699_990_000_500_000
    }
}

/// A socket unit of a systemd older than 239: no `NRefused`.
struct Socket;

#[interface(name = "org.freedesktop.systemd1.Socket")]
impl Socket {
    #[zbus(property, name = "NAccepted")]
    fn n_accepted(&self) -> u32 {
        10
    }
    #[zbus(property, name = "NConnections")]
    fn n_connections(&self) -> u32 {
        2
    }
}

/// `org.freedesktop.login1.Manager`.
struct LoginManager {
    sessions: Vec<(&'static str, &'static str)>,
}

#[interface(name = "org.freedesktop.login1.Manager")]
impl LoginManager {
    fn list_seats(&self) -> Vec<(String, OwnedObjectPath)> {
        vec![("seat0".into(), path("/org/freedesktop/login1/seat/seat0"))]
    }

    fn list_sessions(&self) -> Vec<(String, u32, String, String, OwnedObjectPath)> {
        self.sessions
            .iter()
            .enumerate()
            .map(|(i, (id, seat))| {
                (
                    id.to_string(),
                    1000 + i as u32,
                    format!("user{i}"),
                    seat.to_string(),
                    path(&format!("/org/freedesktop/login1/session/_3{id}")),
                )
            })
            .collect()
    }
}

struct Session {
    remote: bool,
    kind: &'static str,
    class: &'static str,
}

#[interface(name = "org.freedesktop.login1.Session")]
impl Session {
    #[zbus(property, name = "Remote")]
    fn remote(&self) -> bool {
        self.remote
    }
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.kind.into()
    }
    #[zbus(property, name = "Class")]
    fn class(&self) -> String {
        self.class.into()
    }
}

/// A session whose `Remote` is the string "yes" instead of a boolean.
struct BrokenSession;

#[interface(name = "org.freedesktop.login1.Session")]
impl BrokenSession {
    #[zbus(property, name = "Remote")]
    fn remote(&self) -> String {
        "yes".into()
    }
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        "tty".into()
    }
    #[zbus(property, name = "Class")]
    fn class(&self) -> String {
        "user".into()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(address: &str, name: &str) -> zbus::Connection {
    zbus::connection::Builder::address(address)
        .unwrap()
        .name(name)
        .unwrap()
        .build()
        .await
        .unwrap_or_else(|e| panic!("owning {name} on {address}: {e}"))
}

/// The well-formed services: the units and sessions the golden file shows.
async fn serve_well_formed(address: &str) -> Vec<zbus::Connection> {
    let systemd = connect(address, "org.freedesktop.systemd1").await;
    let srv = systemd.object_server();
    srv.at(
        "/org/freedesktop/systemd1",
        Manager {
            units: unit_rows(&[
                ["sshd.service", "sshd_2eservice", "loaded", "active"],
                ["cron.service", "cron_2eservice", "loaded", "failed"],
                ["logrotate.timer", "logrotate_2etimer", "loaded", "inactive"],
                ["dbus.socket", "dbus_2esocket", "loaded", "active"],
                ["home.mount", "home_2emount", "loaded", "active"],
                ["gone.service", "gone_2eservice", "not-found", "inactive"],
                ["apt.service", "apt_2eservice", "loaded", "reloading"],
            ]),
            system_state: "degraded",
        },
    )
    .await
    .unwrap();
    let unit = |o: &str| format!("/org/freedesktop/systemd1/unit/{o}");
    srv.at(
        unit("sshd_2eservice"),
        Unit {
            active_enter_usec: 1_700_000_000_123_456,
        },
    )
    .await
    .unwrap();
    srv.at(
        unit("sshd_2eservice"),
        Service {
            kind: "notify",
            restarts: 3,
            tasks: (5, 4915),
        },
    )
    .await
    .unwrap();
    srv.at(
        unit("cron_2eservice"),
        Service {
            kind: "forking",
            restarts: 0,
            tasks: (u64::MAX, u64::MAX),
        },
    )
    .await
    .unwrap();
    // apt.service has no Service interface at all: its type is empty and
    // its restart and task series are missing, as on a systemd without them.
    srv.at(unit("logrotate_2etimer"), Timer).await.unwrap();
    srv.at(unit("dbus_2esocket"), Socket).await.unwrap();
    srv.at(
        unit("dbus_2esocket"),
        Unit {
            active_enter_usec: 1_600_000_000_000_000,
        },
    )
    .await
    .unwrap();

    let logind = connect(address, "org.freedesktop.login1").await;
    let srv = logind.object_server();
    srv.at(
        "/org/freedesktop/login1",
        LoginManager {
            sessions: vec![("1", "seat0"), ("2", ""), ("3", ""), ("4", ""), ("5", "")],
        },
    )
    .await
    .unwrap();
    let session = |n: &str| format!("/org/freedesktop/login1/session/_3{n}");
    for (n, remote, kind, class) in [
        ("1", false, "wayland", "user"),
        ("2", true, "tty", "user"),
        ("3", true, "tty", "user"),
        ("4", false, "unspecified", "manager"),
    ] {
        srv.at(
            session(n),
            Session {
                remote,
                kind,
                class,
            },
        )
        .await
        .unwrap();
    }
    // Session 5 is listed but has no object: it ended meanwhile.
    vec![systemd, logind]
}

fn start_exporter(address: &str) -> ExporterProcess {
    ExporterProcess::start(
        env!("CARGO_BIN_EXE_oxmon-node"),
        &[
            "--collector.disable-defaults",
            "--collector.systemd",
            "--collector.logind",
            "--collector.systemd.enable-task-metrics",
            "--collector.systemd.enable-restarts-metrics",
            "--collector.systemd.enable-start-time-metrics",
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", address)],
    )
}

/// The lines of `body` about systemd and logind, scrape results included.
fn dbus_lines(body: &str) -> String {
    body.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            name.starts_with("node_systemd_")
                || name.starts_with("node_logind_")
                || (name.starts_with("node_scrape_collector_success")
                    && (name.contains("systemd") || name.contains("logind")))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn services_on_a_private_bus_match_the_golden_output() {
    let bus = PrivateBus::start();
    let rt = runtime();
    let _services = rt.block_on(serve_well_formed(&bus.address));
    let exporter = start_exporter(&bus.address);
    let resp = exporter.get("/metrics");
    assert_eq!(resp.status, 200);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/dbus.txt");
    oxmon_testkit::assert_golden(golden, &dbus_lines(&resp.body));
    // The kept connection serves the next scrape too.
    let again = exporter.get("/metrics").body;
    assert_eq!(success(&again, "systemd"), Some(1.0), "{}", exporter.log());
    assert_eq!(success(&again, "logind"), Some(1.0), "{}", exporter.log());
}

#[test]
fn wrong_reply_types_fail_the_collectors_without_harm() {
    let bus = PrivateBus::start();
    let rt = runtime();
    let _services = rt.block_on(async {
        let systemd = connect(&bus.address, "org.freedesktop.systemd1").await;
        systemd
            .object_server()
            .at("/org/freedesktop/systemd1", BrokenManager)
            .await
            .unwrap();
        let logind = connect(&bus.address, "org.freedesktop.login1").await;
        let srv = logind.object_server();
        srv.at(
            "/org/freedesktop/login1",
            LoginManager {
                sessions: vec![("1", "seat0")],
            },
        )
        .await
        .unwrap();
        srv.at("/org/freedesktop/login1/session/_31", BrokenSession)
            .await
            .unwrap();
        vec![systemd, logind]
    });
    let exporter = start_exporter(&bus.address);
    for _ in 0..2 {
        let resp = exporter.get("/metrics");
        assert_eq!(resp.status, 200);
        assert_eq!(success(&resp.body, "systemd"), Some(0.0));
        assert_eq!(success(&resp.body, "logind"), Some(0.0));
        assert!(
            !resp.body.contains("node_logind_sessions{"),
            "{}",
            resp.body
        );
    }
    let log = exporter.log();
    assert!(
        log.contains("ListUnits"),
        "the failing call is named: {log}"
    );
    assert!(
        log.contains("Session.Remote"),
        "the failing property is named: {log}"
    );
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn no_bus_fails_both_collectors_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("no-bus").display());
    let exporter = start_exporter(&address);
    let started = Instant::now();
    let resp = exporter.get("/metrics");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(resp.status, 200);
    assert_eq!(success(&resp.body, "systemd"), Some(0.0));
    assert_eq!(success(&resp.body, "logind"), Some(0.0));
    assert!(exporter.log().contains("system bus"), "{}", exporter.log());
}

#[test]
fn a_silent_service_fails_at_the_deadline() {
    let bus = PrivateBus::start();
    let rt = runtime();
    let _service = rt.block_on(async {
        let systemd = connect(&bus.address, "org.freedesktop.systemd1").await;
        systemd
            .object_server()
            .at("/org/freedesktop/systemd1", SilentManager)
            .await
            .unwrap();
        systemd
    });
    let exporter = start_exporter(&bus.address);
    for _ in 0..2 {
        let started = Instant::now();
        let resp = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
        let took = started.elapsed();
        assert_eq!(resp.status, 200);
        assert!(took < Duration::from_secs(3), "scrape took {took:?}");
        assert_eq!(success(&resp.body, "systemd"), Some(0.0), "{}", resp.body);
        assert_eq!(exporter.get("/-/healthy").status, 200);
    }
}

#[test]
fn a_restarted_bus_is_redialled() {
    let mut bus = PrivateBus::start();
    let rt = runtime();
    let services = rt.block_on(serve_well_formed(&bus.address));
    let exporter = start_exporter(&bus.address);
    let body = exporter.get("/metrics").body;
    assert_eq!(success(&body, "systemd"), Some(1.0), "{}", exporter.log());
    drop(services);
    bus.restart();
    let _services = rt.block_on(serve_well_formed(&bus.address));
    // The first scrape after the restart may still find the old connection
    // broken; the one after it has redialled.
    let _ = exporter.get("/metrics");
    let body = exporter.get("/metrics").body;
    assert_eq!(success(&body, "systemd"), Some(1.0), "{}", exporter.log());
    assert_eq!(success(&body, "logind"), Some(1.0), "{}", exporter.log());
}

#[test]
fn many_units_stay_under_the_pending_call_limit() {
    const UNITS: usize = 400;
    let bus = PrivateBus::start();
    let rt = runtime();
    let _service = rt.block_on(async {
        let systemd = connect(&bus.address, "org.freedesktop.systemd1").await;
        let srv = systemd.object_server();
        let rows: Vec<[String; 4]> = (0..UNITS)
            .map(|i| {
                [
                    format!("svc{i}.service"),
                    format!("svc{i}"),
                    "loaded".into(),
                    "active".into(),
                ]
            })
            .collect();
        srv.at(
            "/org/freedesktop/systemd1",
            Manager {
                units: rows,
                system_state: "running",
            },
        )
        .await
        .unwrap();
        for i in 0..UNITS {
            let p = format!("/org/freedesktop/systemd1/unit/svc{i}");
            srv.at(
                p.clone(),
                Unit {
                    active_enter_usec: 1_000_000,
                },
            )
            .await
            .unwrap();
            srv.at(
                p,
                Service {
                    kind: "simple",
                    restarts: 1,
                    tasks: (2, 100),
                },
            )
            .await
            .unwrap();
        }
        systemd
    });
    let exporter = start_exporter(&bus.address);
    let body = exporter.get("/metrics?collect[]=systemd").body;
    assert_eq!(success(&body, "systemd"), Some(1.0), "{}", exporter.log());
    for family in [
        "node_systemd_unit_tasks_current{",
        "node_systemd_unit_tasks_max{",
        "node_systemd_service_restart_total{",
        "node_systemd_unit_start_time_seconds{",
    ] {
        let n = body.lines().filter(|l| l.starts_with(family)).count();
        assert_eq!(n, UNITS, "{family}");
    }
    let typed = body
        .lines()
        .filter(|l| l.starts_with("node_systemd_unit_state{") && l.contains("type=\"simple\""))
        .count();
    assert_eq!(typed, UNITS * 5);
    println!(
        "{UNITS} units: {}",
        body.lines()
            .find(|l| l.starts_with("node_scrape_collector_duration_seconds{collector=\"systemd\"}"))
            .unwrap()
    );
}

#[test]
fn node_exporter_reads_the_same_services_the_same_way() {
    let node_exporter = require_program("prometheus-node-exporter", "prometheus-node-exporter");
    let bus = PrivateBus::start();
    let rt = runtime();
    let _services = rt.block_on(serve_well_formed(&bus.address));
    let ours = start_exporter(&bus.address).get("/metrics").body;
    let go = ExporterProcess::start_with(
        node_exporter,
        &[
            "--collector.disable-defaults",
            "--collector.systemd",
            "--collector.logind",
            "--collector.systemd.enable-task-metrics",
            "--collector.systemd.enable-restarts-metrics",
            "--collector.systemd.enable-start-time-metrics",
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)],
        StartOptions {
            readiness: Readiness::TcpConnect,
            ..StartOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let theirs = go.get("/metrics").body;
    // node_systemd_virtualization_info came with node_exporter 1.6.
    let ours: String = dbus_lines(&ours)
        .lines()
        .filter(|l| !l.contains("node_systemd_virtualization_info"))
        .map(|l| format!("{l}\n"))
        .collect();
    let theirs = dbus_lines(&theirs);
    assert!(theirs.contains("node_logind_sessions{"), "{}", go.log());
    assert!(
        ours == theirs,
        "- node_exporter, + oxmon-node:\n{}",
        oxmon_testkit::line_diff(&theirs, &ours)
    );
}
