//! End-to-end tests: the real oxmon-gpu binary, through the real
//! nvml-wrapper, against the fake libnvidia-ml (`crates/fake-nvml`) driven
//! by a JSON file the tests rewrite.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use oxmon_testkit::{parse, require_program, wait_until, ExporterProcess, Exposition};
use serde_json::{json, Value};

mod common;

use common::{fake_lib, BIN};

/// A fake NVML config file in a temp dir.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(config: &Value) -> Fake {
        let fake = Fake {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        fake.write(config);
        fake
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("nvml.json")
    }

    /// Replaces the config atomically (new inode: the fake sees the change
    /// even within one mtime tick).
    fn write(&self, config: &Value) {
        let tmp = self.dir.path().join("nvml.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        std::fs::rename(&tmp, self.path()).unwrap();
    }

    fn start(&self, args: &[&str]) -> ExporterProcess {
        let lib = format!("--nvml.library-path={}", fake_lib().display());
        let mut all = vec![lib.as_str(), "--log.level=debug"];
        all.extend_from_slice(args);
        let path = self.path();
        ExporterProcess::start(BIN, &all, &[("FAKE_NVML_CONFIG", path.to_str().unwrap())])
    }
}

const A100: &str = "GPU-5e1a1b2c-0000-4a6b-9c1d-a100a100a100";
const T4: &str = "GPU-77f00d00-1111-4b2c-8d3e-7474747474t4";

fn a100() -> Value {
    json!({
        "name": "NVIDIA A100-SXM4-40GB",
        "uuid": A100,
        "pci_bus_id": "00000000:07:00.0",
        "pci_device_id": 0x20B010DE_u32,
        "vbios_version": "92.00.36.00.01",
        "compute_mode": 3,
        "persistence_mode": true,
        "utilization": {"gpu": 87, "memory": 41},
        "encoder_utilization": 3,
        "decoder_utilization": 0,
        "memory": {"total": 42_949_672_960_u64, "used": 10_737_418_240_u64, "free": 32_212_254_720_u64, "reserved": 524_288_000},
        "temperature": 64,
        "memory_temperature": 71,
        "temperature_thresholds": {"shutdown": 92, "slowdown": 89, "memory_max": 95, "gpu_max": 87},
        "power_usage_mw": 285_123,
        "power_limit_mw": 400_000,
        "energy_mj": 123_456_789,
        "clocks_mhz": {"graphics": 1410, "sm": 1405, "memory": 1215, "video": 1275},
        "max_clocks_mhz": {"graphics": 1410, "sm": 1410, "memory": 1215, "video": 1290},
        "performance_state": 0,
        "throttle_reasons": 4 | 64,
        "ecc_mode": true,
        "ecc_errors": {"volatile_corrected": 2, "volatile_uncorrected": 0, "aggregate_corrected": 5, "aggregate_uncorrected": 1},
        "retired_pages": {"single_bit": 1, "double_bit": 2, "pending": 0},
        "remapped_rows": {"correctable": 3, "uncorrectable": 1, "pending": 1, "failure": 0},
        "xid_events": [],
        "pcie": {"tx_kbps": 1000, "rx_kbps": 2000, "link_gen": 3, "max_link_gen": 4, "link_width": 8, "max_link_width": 16, "replay_counter": 7},
        "nvlinks": [true, true, false],
        "mig": {"current": true, "pending": true, "instances": [
            {"uuid": "MIG-aaaa-0001", "name": "NVIDIA A100-SXM4-40GB MIG 3g.20gb",
             "memory": {"total": 20_000_000_000_u64, "used": 1_000_000, "free": 19_999_000_000_u64}},
            {"uuid": "MIG-aaaa-0002", "name": "NVIDIA A100-SXM4-40GB MIG 2g.10gb",
             "memory": {"total": 10_000_000_000_u64, "used": 2_000_000, "free": 9_998_000_000_u64}}
        ]},
        "processes": [
            {"pid": 4242, "name": "python3", "used_memory": 1_073_741_824, "kind": "compute"},
            {"pid": 4343, "name": "Xorg", "used_memory": 52_428_800, "kind": "graphics"},
            {"pid": 4444, "name": "trainer", "used_memory": 2_147_483_648_u64, "kind": "both"}
        ]
    })
}

/// A smaller, older GPU: fans, no ECC/MIG/NVLink/power/energy/memory temp.
fn t4() -> Value {
    json!({
        "name": "Tesla T4",
        "uuid": T4,
        "pci_bus_id": "00000000:3B:00.0",
        "vbios_version": "90.04.38.00.03",
        "compute_mode": 0,
        "persistence_mode": false,
        "utilization": {"gpu": 5, "memory": 1},
        "memory": {"total": 16_106_127_360_u64, "used": 104_857_600, "free": 16_001_269_760_u64},
        "temperature": 40,
        "temperature_thresholds": {"shutdown": 96, "slowdown": 93},
        "clocks_mhz": {"graphics": 300, "sm": 300, "memory": 405, "video": 540},
        "max_clocks_mhz": {"graphics": 1590, "sm": 1590, "memory": 5001, "video": 1470},
        "fans": [30, 35],
        "performance_state": 8,
        "throttle_reasons": 1,
        "xid_events": [],
        "pcie": {"tx_kbps": 0, "rx_kbps": 0, "link_gen": 1, "max_link_gen": 3, "link_width": 16, "max_link_width": 16, "replay_counter": 0}
    })
}

fn config(devices: Vec<Value>) -> Value {
    json!({"driver_version": "550.54.15", "cuda_driver_version": 12040, "devices": devices})
}

fn two_gpus() -> Value {
    config(vec![a100(), t4()])
}

fn val(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.value(name, labels)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

fn scrape_until(
    p: &ExporterProcess,
    what: &str,
    mut ok: impl FnMut(&Exposition) -> bool,
) -> Exposition {
    wait_until(Duration::from_secs(20), || {
        let m = p.scrape();
        ok(&m).then_some(m)
    })
    .unwrap_or_else(|| panic!("timed out waiting for {what}; log:\n{}", p.log()))
}

#[test]
fn two_gpus_all_families_and_labels() {
    let fake = Fake::new(&two_gpus());
    let p = fake.start(&["--collector.processes", "--collector.processes.max=2"]);
    let m = p.scrape();

    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 1.0);
    assert_eq!(val(&m, "nvidia_gpu_num_devices", &[]), 2.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_scrape_collector_success",
            &[("collector", "nvml")]
        ),
        1.0
    );

    // Every per-GPU series carries gpu, uuid and name, matching each other.
    for s in m
        .all_samples()
        .filter(|s| s.name.starts_with("nvidia_gpu_") && s.labels.contains_key("gpu"))
    {
        let (uuid, name) = match s.labels["gpu"].as_str() {
            "0" => (A100, "NVIDIA A100-SXM4-40GB"),
            "1" => (T4, "Tesla T4"),
            other => panic!("unexpected gpu label {other} on {}", s.name),
        };
        assert_eq!(
            s.labels.get("uuid").map(String::as_str),
            Some(uuid),
            "{} {:?}",
            s.name,
            s.labels
        );
        assert_eq!(
            s.labels.get("name").map(String::as_str),
            Some(name),
            "{} {:?}",
            s.name,
            s.labels
        );
    }

    let types = [
        ("nvidia_gpu_info", "gauge"),
        ("nvidia_gpu_lost", "gauge"),
        ("nvidia_gpu_utilization_ratio", "gauge"),
        ("nvidia_gpu_energy_consumed_joules_total", "counter"),
        ("nvidia_gpu_ecc_corrected_errors_total", "counter"),
        ("nvidia_gpu_pcie_replay_errors_total", "counter"),
    ];
    for (name, kind) in types {
        let f = m
            .family(name)
            .unwrap_or_else(|| panic!("family {name} missing"));
        assert_eq!(f.kind, kind, "{name}");
    }

    let info = m.samples("nvidia_gpu_info");
    assert_eq!(info.len(), 2);
    let a = [("gpu", "0")];
    let labels = &info.iter().find(|s| s.labels["gpu"] == "0").unwrap().labels;
    assert_eq!(labels["pci_bus_id"], "00000000:07:00.0");
    assert_eq!(labels["driver_version"], "550.54.15");
    assert_eq!(labels["cuda_version"], "12.4");
    assert_eq!(labels["vbios_version"], "92.00.36.00.01");
    assert_eq!(labels["compute_mode"], "exclusive_process");
    assert_eq!(labels["persistence_mode"], "enabled");
    let t4_info = &info.iter().find(|s| s.labels["gpu"] == "1").unwrap().labels;
    assert_eq!(t4_info["compute_mode"], "default");
    assert_eq!(t4_info["persistence_mode"], "disabled");

    assert_eq!(val(&m, "nvidia_gpu_lost", &a), 0.0);
    assert_eq!(val(&m, "nvidia_gpu_utilization_ratio", &a), 0.87);
    assert_eq!(val(&m, "nvidia_gpu_memory_utilization_ratio", &a), 0.41);
    assert_eq!(val(&m, "nvidia_gpu_encoder_utilization_ratio", &a), 0.03);
    assert_eq!(val(&m, "nvidia_gpu_decoder_utilization_ratio", &a), 0.0);
    assert_eq!(
        val(&m, "nvidia_gpu_memory_used_bytes", &a),
        10_737_418_240.0
    );
    assert_eq!(
        val(&m, "nvidia_gpu_memory_free_bytes", &a),
        32_212_254_720.0
    );
    assert_eq!(
        val(&m, "nvidia_gpu_memory_total_bytes", &a),
        42_949_672_960.0
    );
    assert_eq!(
        val(&m, "nvidia_gpu_memory_reserved_bytes", &a),
        524_288_000.0
    );
    assert_eq!(val(&m, "nvidia_gpu_temperature_celsius", &a), 64.0);
    assert_eq!(val(&m, "nvidia_gpu_memory_temperature_celsius", &a), 71.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_temperature_threshold_celsius",
            &[("gpu", "0"), ("threshold", "slowdown")]
        ),
        89.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_temperature_threshold_celsius",
            &[("gpu", "0"), ("threshold", "shutdown")]
        ),
        92.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_temperature_threshold_celsius",
            &[("gpu", "0"), ("threshold", "memory_max")]
        ),
        95.0
    );
    assert_eq!(val(&m, "nvidia_gpu_power_usage_watts", &a), 285.123);
    assert_eq!(val(&m, "nvidia_gpu_power_limit_watts", &a), 400.0);
    assert_eq!(
        val(&m, "nvidia_gpu_energy_consumed_joules_total", &a),
        123_456.789
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_hertz",
            &[("gpu", "0"), ("clock", "sm")]
        ),
        1.405e9
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_hertz",
            &[("gpu", "0"), ("clock", "memory")]
        ),
        1.215e9
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_hertz",
            &[("gpu", "0"), ("clock", "video")]
        ),
        1.275e9
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_max_hertz",
            &[("gpu", "0"), ("clock", "graphics")]
        ),
        1.41e9
    );
    assert_eq!(val(&m, "nvidia_gpu_performance_state", &a), 0.0);
    assert_eq!(
        m.samples("nvidia_gpu_clock_throttle_reason")
            .iter()
            .filter(|s| s.labels["gpu"] == "0")
            .count(),
        9
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_throttle_reason",
            &[("gpu", "0"), ("reason", "sw_power_cap")]
        ),
        1.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_throttle_reason",
            &[("gpu", "0"), ("reason", "hw_thermal_slowdown")]
        ),
        1.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_throttle_reason",
            &[("gpu", "0"), ("reason", "gpu_idle")]
        ),
        0.0
    );
    assert_eq!(val(&m, "nvidia_gpu_ecc_enabled", &a), 1.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_ecc_corrected_errors_total",
            &[("gpu", "0"), ("counter", "volatile")]
        ),
        2.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_ecc_corrected_errors_total",
            &[("gpu", "0"), ("counter", "aggregate")]
        ),
        5.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_ecc_uncorrected_errors_total",
            &[("gpu", "0"), ("counter", "aggregate")]
        ),
        1.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_retired_pages",
            &[("gpu", "0"), ("cause", "single_bit_ecc")]
        ),
        1.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_retired_pages",
            &[("gpu", "0"), ("cause", "double_bit_ecc")]
        ),
        2.0
    );
    assert_eq!(val(&m, "nvidia_gpu_retired_pages_pending", &a), 0.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_remapped_rows",
            &[("gpu", "0"), ("error", "correctable")]
        ),
        3.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_remapped_rows",
            &[("gpu", "0"), ("error", "uncorrectable")]
        ),
        1.0
    );
    assert_eq!(val(&m, "nvidia_gpu_remapped_rows_pending", &a), 1.0);
    assert_eq!(val(&m, "nvidia_gpu_remapped_rows_failed", &a), 0.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_pcie_throughput_bytes_per_second",
            &[("gpu", "0"), ("direction", "tx")]
        ),
        1_024_000.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_pcie_throughput_bytes_per_second",
            &[("gpu", "0"), ("direction", "rx")]
        ),
        2_048_000.0
    );
    assert_eq!(val(&m, "nvidia_gpu_pcie_link_generation", &a), 3.0);
    assert_eq!(val(&m, "nvidia_gpu_pcie_link_max_generation", &a), 4.0);
    assert_eq!(val(&m, "nvidia_gpu_pcie_link_width", &a), 8.0);
    assert_eq!(val(&m, "nvidia_gpu_pcie_link_max_width", &a), 16.0);
    assert_eq!(val(&m, "nvidia_gpu_pcie_replay_errors_total", &a), 7.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_nvlink_active",
            &[("gpu", "0"), ("link", "1")]
        ),
        1.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_nvlink_active",
            &[("gpu", "0"), ("link", "2")]
        ),
        0.0
    );
    assert_eq!(m.samples("nvidia_gpu_nvlink_active").len(), 3);
    assert_eq!(val(&m, "nvidia_gpu_mig_enabled", &a), 1.0);
    assert_eq!(val(&m, "nvidia_gpu_mig_pending_enabled", &a), 1.0);
    let mig = [
        ("gpu", "0"),
        ("mig_index", "1"),
        ("mig_uuid", "MIG-aaaa-0002"),
        ("mig_name", "NVIDIA A100-SXM4-40GB MIG 2g.10gb"),
    ];
    assert_eq!(
        val(&m, "nvidia_gpu_mig_memory_used_bytes", &mig),
        2_000_000.0
    );
    assert_eq!(
        val(&m, "nvidia_gpu_mig_memory_total_bytes", &mig),
        10_000_000_000.0
    );
    assert_eq!(
        val(&m, "nvidia_gpu_mig_memory_free_bytes", &mig),
        9_998_000_000.0
    );

    // Processes: all three counted, the two largest exported.
    assert_eq!(val(&m, "nvidia_gpu_processes", &a), 3.0);
    let procs = m.samples("nvidia_gpu_process_memory_bytes");
    assert_eq!(procs.len(), 2, "{procs:?}");
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_process_memory_bytes",
            &[("pid", "4444"), ("process_name", "trainer")]
        ),
        2_147_483_648.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_process_memory_bytes",
            &[("pid", "4242"), ("process_name", "python3")]
        ),
        1_073_741_824.0
    );

    // The T4: its own values, fans, no ECC/MIG/NVLink/power.
    let t = [("gpu", "1")];
    assert_eq!(val(&m, "nvidia_gpu_utilization_ratio", &t), 0.05);
    assert_eq!(val(&m, "nvidia_gpu_temperature_celsius", &t), 40.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_fan_speed_ratio",
            &[("gpu", "1"), ("fan", "0")]
        ),
        0.3
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_fan_speed_ratio",
            &[("gpu", "1"), ("fan", "1")]
        ),
        0.35
    );
    assert_eq!(val(&m, "nvidia_gpu_performance_state", &t), 8.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_throttle_reason",
            &[("gpu", "1"), ("reason", "gpu_idle")]
        ),
        1.0
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_clock_hertz",
            &[("gpu", "1"), ("clock", "memory")]
        ),
        405e6
    );

    // No DCGM names without the flag.
    assert!(
        !m.names().iter().any(|n| n.starts_with("DCGM_")),
        "{:?}",
        m.names()
    );
}

#[test]
fn unsupported_fields_are_absent_not_errors() {
    let mut a = a100();
    // Forced codes: NOT_SUPPORTED on one field, UNKNOWN on another.
    a["errors"] = json!({"nvmlDeviceGetTemperature": 3, "nvmlDeviceGetPowerUsage": 999});
    let fake = Fake::new(&config(vec![a, t4()]));
    let p = fake.start(&[]);
    let _ = p.scrape();
    let m = p.scrape();
    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 1.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_scrape_collector_success",
            &[("collector", "nvml")]
        ),
        1.0
    );
    let g0 = [("gpu", "0")];
    let g1 = [("gpu", "1")];
    assert_eq!(m.value("nvidia_gpu_temperature_celsius", &g0), None);
    assert_eq!(m.value("nvidia_gpu_temperature_celsius", &g1), Some(40.0));
    assert_eq!(m.value("nvidia_gpu_power_usage_watts", &g0), None);
    assert_eq!(m.value("nvidia_gpu_power_limit_watts", &g0), Some(400.0));
    // What the T4 config leaves out is absent for the T4 only.
    for name in [
        "nvidia_gpu_power_limit_watts",
        "nvidia_gpu_energy_consumed_joules_total",
        "nvidia_gpu_memory_temperature_celsius",
        "nvidia_gpu_ecc_enabled",
        "nvidia_gpu_ecc_corrected_errors_total",
        "nvidia_gpu_retired_pages",
        "nvidia_gpu_remapped_rows",
        "nvidia_gpu_nvlink_active",
        "nvidia_gpu_mig_enabled",
        "nvidia_gpu_encoder_utilization_ratio",
    ] {
        assert!(m.value(name, &g1).is_none(), "{name} present for the T4");
        assert!(m.value(name, &g0).is_some(), "{name} missing for the A100");
    }
    assert!(m.value("nvidia_gpu_fan_speed_ratio", &g0).is_none());
    // Unsupported: debug, once per GPU and field; other errors: warn, once.
    let log = p.log();
    let unsupported_temp = log
        .lines()
        .filter(|l| {
            l.contains("field not supported")
                && l.contains("field=temperature ")
                && l.contains("gpu=0")
        })
        .count();
    assert_eq!(unsupported_temp, 1, "{log}");
    let power_warn = log
        .lines()
        .filter(|l| l.contains("level=warn") && l.contains("field=power_usage"))
        .count();
    assert_eq!(power_warn, 1, "{log}");
}

#[test]
fn failed_init_serves_nvml_up_0_logs_once_and_recovers() {
    let mut cfg = two_gpus();
    cfg["init_error"] = json!(9); // NVML_ERROR_DRIVER_NOT_LOADED
    let fake = Fake::new(&cfg);
    let p = fake.start(&[]);
    for _ in 0..3 {
        let r = p.get("/metrics");
        assert_eq!(r.status, 200);
        let m = parse(&r.body);
        assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 0.0);
        assert!(m.value("nvidia_gpu_num_devices", &[]).is_none());
        assert!(m.samples("nvidia_gpu_info").is_empty());
    }
    let log = p.log();
    let down = log
        .lines()
        .filter(|l| l.contains("NVML unavailable"))
        .count();
    assert_eq!(
        down, 1,
        "one log line for the reason, not one per scrape:\n{log}"
    );
    assert!(log.contains("driver is not loaded"), "{log}");

    cfg["init_error"] = json!(0);
    fake.write(&cfg);
    let m = scrape_until(&p, "nvml_up 1 after init recovers", |m| {
        m.value("nvidia_gpu_nvml_up", &[]) == Some(1.0)
    });
    assert_eq!(val(&m, "nvidia_gpu_num_devices", &[]), 2.0);
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "1")]),
        40.0
    );
    assert!(p.log().contains("NVML available again"));
}

#[test]
fn missing_library_serves_nvml_up_0() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libnvidia-ml.so.1");
    let arg = format!("--nvml.library-path={}", lib.display());
    let p = ExporterProcess::start(BIN, &[arg.as_str()], &[]);
    let r = p.get("/metrics");
    assert_eq!(r.status, 200);
    let m = parse(&r.body);
    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 0.0);
    let _ = p.scrape();
    let log = p.log();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("NVML unavailable"))
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("loading") && log.contains("libnvidia-ml.so.1"),
        "{log}"
    );
}

#[test]
fn permission_error_is_named_in_the_log() {
    let mut cfg = two_gpus();
    cfg["init_error"] = json!(4); // NVML_ERROR_NO_PERMISSION
    let fake = Fake::new(&cfg);
    let p = fake.start(&[]);
    let m = p.scrape();
    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 0.0);
    assert!(
        p.log()
            .contains("no permission to talk to the NVIDIA driver"),
        "{}",
        p.log()
    );
}

#[test]
fn lost_gpu_serves_nvml_up_0_and_recovers() {
    let mut cfg = two_gpus();
    cfg["devices"][0]["xid_events"] = json!([31]);
    let fake = Fake::new(&cfg);
    let p = fake.start(&[]);
    let xid31 = [("gpu", "0"), ("xid", "31")];
    let m = scrape_until(&p, "XID 31 counted", |m| {
        m.value("nvidia_gpu_xid_errors_total", &xid31) == Some(1.0)
    });
    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 1.0);

    cfg["devices"][1]["lost"] = json!(true);
    fake.write(&cfg);
    let m = p.scrape();
    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 0.0);
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_lost",
            &[("gpu", "1"), ("uuid", T4), ("name", "Tesla T4")]
        ),
        1.0
    );
    assert_eq!(val(&m, "nvidia_gpu_lost", &[("gpu", "0")]), 0.0);
    // The healthy GPU is still reported; the lost one is not.
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "0")]),
        64.0
    );
    assert!(m
        .value("nvidia_gpu_temperature_celsius", &[("gpu", "1")])
        .is_none());
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_scrape_collector_success",
            &[("collector", "nvml")]
        ),
        1.0
    );
    let _ = p.scrape();
    let log = p.log();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("NVML unavailable") && l.contains("is lost"))
            .count(),
        1,
        "{log}"
    );

    cfg["devices"][1]["lost"] = json!(false);
    fake.write(&cfg);
    let m = scrape_until(&p, "recovery from a lost GPU", |m| {
        m.value("nvidia_gpu_nvml_up", &[]) == Some(1.0)
    });
    assert_eq!(val(&m, "nvidia_gpu_lost", &[("gpu", "1")]), 0.0);
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "1")]),
        40.0
    );
    // NVML was re-initialised: the XID counter carried over, neither reset
    // nor counted twice.
    assert!(p.log().contains("NVML available again"));
    assert_eq!(val(&m, "nvidia_gpu_xid_errors_total", &xid31), 1.0);
}

#[test]
fn xid_events_are_counted_per_code() {
    let mut cfg = two_gpus();
    let fake = Fake::new(&cfg);
    let p = fake.start(&["--metrics.dcgm-compat"]);
    let m = p.scrape();
    assert!(m.samples("nvidia_gpu_xid_errors_total").is_empty());
    assert_eq!(val(&m, "DCGM_FI_DEV_XID_ERRORS", &[("gpu", "0")]), 0.0);

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    cfg["devices"][0]["xid_events"] = json!([79]);
    fake.write(&cfg);
    let xid79 = [("gpu", "0"), ("uuid", A100), ("xid", "79")];
    let m = scrape_until(&p, "XID 79 counted", |m| {
        m.value("nvidia_gpu_xid_errors_total", &xid79) == Some(1.0)
    });
    assert_eq!(
        m.family("nvidia_gpu_xid_errors_total").unwrap().kind,
        "counter"
    );
    let ts = val(&m, "nvidia_gpu_last_xid_timestamp_seconds", &[("gpu", "0")]);
    assert!(ts >= before - 1.0 && ts < before + 60.0, "{ts} vs {before}");

    cfg["devices"][0]["xid_events"] = json!([79, 79, 13]);
    cfg["devices"][1]["xid_events"] = json!([48]);
    fake.write(&cfg);
    let m = scrape_until(&p, "more XIDs counted", |m| {
        m.value(
            "nvidia_gpu_xid_errors_total",
            &[("gpu", "0"), ("xid", "13")],
        ) == Some(1.0)
            && m.value(
                "nvidia_gpu_xid_errors_total",
                &[("gpu", "1"), ("xid", "48")],
            ) == Some(1.0)
    });
    assert_eq!(val(&m, "nvidia_gpu_xid_errors_total", &xid79), 2.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_XID_ERRORS", &[("gpu", "0")]), 13.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_XID_ERRORS", &[("gpu", "1")]), 48.0);
    assert_eq!(m.samples("nvidia_gpu_xid_errors_total").len(), 3);
}

#[test]
fn dcgm_compat_names_labels_and_units() {
    let fake = Fake::new(&two_gpus());
    let p = fake.start(&["--metrics.dcgm-compat"]);
    let m = p.scrape();
    let g0 = [
        ("gpu", "0"),
        ("UUID", A100),
        ("device", "nvidia0"),
        ("modelName", "NVIDIA A100-SXM4-40GB"),
        ("pci_bus_id", "00000000:07:00.0"),
    ];
    assert_eq!(val(&m, "DCGM_FI_DEV_GPU_UTIL", &g0), 87.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_MEM_COPY_UTIL", &g0), 41.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_ENC_UTIL", &g0), 3.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_DEC_UTIL", &g0), 0.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_FB_USED", &g0), 10240.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_FB_FREE", &g0), 30720.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_GPU_TEMP", &g0), 64.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_MEMORY_TEMP", &g0), 71.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_POWER_USAGE", &g0), 285.123);
    assert_eq!(val(&m, "DCGM_FI_DEV_SM_CLOCK", &g0), 1405.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_MEM_CLOCK", &g0), 1215.0);
    assert_eq!(
        val(&m, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", &g0),
        123_456_789.0
    );
    assert_eq!(val(&m, "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", &g0), 7.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", &g0), 3.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", &g0), 1.0);
    assert_eq!(val(&m, "DCGM_FI_DEV_ROW_REMAP_FAILURE", &g0), 0.0);
    assert_eq!(
        m.family("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
            .unwrap()
            .kind,
        "counter"
    );
    assert_eq!(m.family("DCGM_FI_DEV_GPU_TEMP").unwrap().kind, "gauge");
    let host = m.samples("DCGM_FI_DEV_GPU_TEMP")[0]
        .labels
        .get("Hostname")
        .cloned();
    assert!(host.is_some_and(|h| !h.is_empty()), "Hostname label");
    // The T4 has no power reading: absent, not zero.
    assert!(m
        .value("DCGM_FI_DEV_POWER_USAGE", &[("gpu", "1")])
        .is_none());
    assert_eq!(
        val(
            &m,
            "DCGM_FI_DEV_GPU_TEMP",
            &[("gpu", "1"), ("device", "nvidia1")]
        ),
        40.0
    );
    // The native names are still there.
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "0")]),
        64.0
    );
}

#[test]
fn dcgm_hostname_follows_node_name() {
    let fake = Fake::new(&two_gpus());
    let lib = format!("--nvml.library-path={}", fake_lib().display());
    let path = fake.path();
    let p = ExporterProcess::start(
        BIN,
        &[lib.as_str(), "--metrics.dcgm-compat"],
        &[
            ("FAKE_NVML_CONFIG", path.to_str().unwrap()),
            ("NODE_NAME", "gpu-node-7"),
        ],
    );
    let m = p.scrape();
    assert_eq!(
        val(
            &m,
            "DCGM_FI_DEV_GPU_UTIL",
            &[("gpu", "0"), ("Hostname", "gpu-node-7")]
        ),
        87.0
    );
}

#[test]
fn slow_gpu_does_not_hold_back_the_others() {
    let mut slow = t4();
    slow["delay_ms"] = json!(400);
    let fake = Fake::new(&config(vec![a100(), slow]));
    let p = fake.start(&[]);
    let started = Instant::now();
    // Prometheus' 1.5 s timeout minus the default 0.5 s offset: 1 s.
    let r = p.get_with(
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let took = started.elapsed();
    assert_eq!(r.status, 200);
    let m = parse(&r.body);
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "0")]),
        64.0
    );
    // Each of the slow GPU's ~40 calls takes 0.4 s: it cannot finish in time.
    assert!(m
        .value("nvidia_gpu_temperature_celsius", &[("gpu", "1")])
        .is_none());
    assert!(took < Duration::from_secs(5), "scrape took {took:?}");
    assert!(
        p.log()
            .contains("did not answer before the scrape deadline"),
        "{}",
        p.log()
    );
}

#[test]
fn hung_gpu_leaves_health_checks_and_other_gpus_alone() {
    let mut hung = t4();
    // Every call on this GPU takes a minute: a driver call that hangs.
    hung["delay_ms"] = json!(60_000);
    let fake = Fake::new(&config(vec![a100(), hung]));
    let mut p = fake.start(&[]);
    let scrape = || {
        let started = Instant::now();
        // Prometheus' 2 s timeout minus the default 0.5 s offset: 1.5 s.
        let r = p.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
        (r, started.elapsed())
    };
    let (first, probes) = std::thread::scope(|s| {
        let scraping = s.spawn(scrape);
        std::thread::sleep(Duration::from_millis(300));
        let probes: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(p.get("/-/healthy").status, 200);
                let took = t.elapsed();
                std::thread::sleep(Duration::from_millis(100));
                took
            })
            .collect();
        (scraping.join().unwrap(), probes)
    });
    let slowest = probes.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_millis(100),
        "/-/healthy during a scrape: {probes:?}"
    );
    let (r, took) = first;
    assert_eq!(r.status, 200);
    assert!(took < Duration::from_secs(4), "scrape took {took:?}");
    let m = parse(&r.body);
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "0")]),
        64.0
    );
    assert!(m
        .value("nvidia_gpu_temperature_celsius", &[("gpu", "1")])
        .is_none());

    // The hung read still holds GPU 1's lane: the next scrape skips that
    // GPU at once instead of starting another read behind it.
    let (r, took) = scrape();
    assert!(took < Duration::from_secs(1), "second scrape took {took:?}");
    let m = parse(&r.body);
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "0")]),
        64.0
    );
    assert!(p
        .log()
        .contains("the previous read of this GPU has not returned"));
    // The stuck thread does not keep the exporter from exiting.
    let stopping = Instant::now();
    let status = p.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

#[test]
fn promtool_accepts_the_output() {
    let promtool = require_program("promtool", "prometheus");
    let mut cfg = two_gpus();
    cfg["devices"][0]["xid_events"] = json!([79]);
    let fake = Fake::new(&cfg);
    let p = fake.start(&["--collector.processes"]);
    let body = wait_until(Duration::from_secs(10), || {
        let r = p.get("/metrics");
        r.body
            .contains("nvidia_gpu_xid_errors_total{")
            .then_some(r.body)
    })
    .expect("XID counter in the output");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs against the real driver: `cargo test -p oxmon-gpu -- --ignored`
/// on a machine with an NVIDIA GPU. `OXMON_GPU_BIN` names the exporter
/// when the test binary runs away from the tree it was built in
/// (`scripts/real-gpu-check`).
#[test]
#[ignore = "needs an NVIDIA GPU and driver"]
fn real_driver() {
    let bin = std::env::var("OXMON_GPU_BIN").unwrap_or_else(|_| BIN.to_string());
    let p = ExporterProcess::start(
        &bin,
        &["--metrics.dcgm-compat", "--collector.processes"],
        &[],
    );
    let r = p.get("/metrics");
    println!("{}", r.body);
    let m = parse(&r.body);
    assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 1.0, "{}", p.log());
    let n = val(&m, "nvidia_gpu_num_devices", &[]);
    assert!(n >= 1.0);
    assert_eq!(m.samples("nvidia_gpu_info").len() as f64, n);
    for s in m.samples("nvidia_gpu_info") {
        assert!(s.labels["driver_version"].contains('.'), "{:?}", s.labels);
        let gpu = s.labels["gpu"].as_str();
        assert!(m
            .value("nvidia_gpu_memory_total_bytes", &[("gpu", gpu)])
            .is_some_and(|v| v > 0.0));
        assert!(m
            .value("nvidia_gpu_temperature_celsius", &[("gpu", gpu)])
            .is_some());
        assert!(m.value("DCGM_FI_DEV_GPU_TEMP", &[("gpu", gpu)]).is_some());
    }
}

#[test]
fn sixty_four_slow_gpus_each_report_their_state_within_the_deadline() {
    // Every call on every GPU takes 30 ms: one GPU's ~40 calls take over a
    // second, and two GPUs are read at a time, so most GPUs cannot answer
    // within a 1.5 s deadline.
    let devices: Vec<Value> = (0..64)
        .map(|i| {
            let mut g = t4();
            g["uuid"] = json!(format!("GPU-slow-{i:04}"));
            g["pci_bus_id"] = json!(format!("00000000:{i:02X}:00.0"));
            g["delay_ms"] = json!(30);
            g
        })
        .collect();
    let fake = Fake::new(&config(devices));
    let p = fake.start(&[]);
    for round in 0..2 {
        let started = Instant::now();
        // Prometheus' 2 s timeout minus the default 0.5 s offset: 1.5 s.
        let r = p.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
        let took = started.elapsed();
        assert_eq!(r.status, 200);
        assert!(
            took < Duration::from_millis(2500),
            "scrape {round} took {took:?}"
        );
        let m = parse(&r.body);
        assert_eq!(val(&m, "nvidia_gpu_num_devices", &[]), 64.0);
        let states = &m
            .family("nvidia_gpu_scrape_success")
            .unwrap_or_else(|| panic!("no nvidia_gpu_scrape_success:\n{}", r.body))
            .samples;
        let gpus: std::collections::BTreeSet<&str> =
            states.iter().map(|s| s.labels["gpu"].as_str()).collect();
        assert_eq!(gpus.len(), 64, "one state per GPU: {gpus:?}");
        let answered = states.iter().filter(|s| s.value == 1.0).count();
        assert!(answered < 64, "round {round}: all 64 slow GPUs answered?");
        // A GPU reported as answering has its readings; the others none.
        for s in states {
            let temp = m.value(
                "nvidia_gpu_temperature_celsius",
                &[("gpu", &s.labels["gpu"])],
            );
            assert_eq!(temp.is_some(), s.value == 1.0, "{s:?}");
        }
        // Not every GPU answered: NVML is not "up" as the README defines it.
        assert_eq!(val(&m, "nvidia_gpu_nvml_up", &[]), 0.0);
    }
    // Each GPU that missed the deadline is logged once, not every scrape.
    let log = p.log();
    let gpu9 = log
        .lines()
        .filter(|l| l.contains("GPU 9") && !l.contains("level=debug"))
        .count();
    assert!(gpu9 <= 1, "{log}");
    assert_eq!(p.get("/-/healthy").status, 200);
}

const H100: &str = "GPU-9a9a9a9a-2222-4c3d-9e4f-h100h100h100";

/// GPM values in NVML's units (percent, MiB/s).
fn gpm(scale: f64) -> Value {
    json!({
        "sm_util": 80.0 * scale, "sm_occupancy": 40.0 * scale,
        "any_tensor_util": 60.0 * scale, "hmma_tensor_util": 50.0 * scale,
        "imma_tensor_util": 0.0, "dfma_tensor_util": 10.0 * scale,
        "dram_bw_util": 30.0 * scale, "fp64_util": 2.0 * scale,
        "fp32_util": 20.0 * scale, "fp16_util": 12.0 * scale,
        "pcie_tx_per_sec": 100.0 * scale, "pcie_rx_per_sec": 200.0 * scale,
        "nvlink_total_tx_per_sec": 1024.0 * scale, "nvlink_total_rx_per_sec": 2048.0 * scale
    })
}

/// A Hopper GPU with GPM; MIG on with two GPU instances, one with GPM.
fn h100(scale: f64) -> Value {
    let mut g = a100();
    g["name"] = json!("NVIDIA H100 80GB HBM3");
    g["uuid"] = json!(H100);
    g["gpm"] = gpm(scale);
    g["mig"]["instances"][0]["name"] = json!("NVIDIA H100 80GB HBM3 MIG 3g.40gb");
    g["mig"]["instances"][0]["gpu_instance_id"] = json!(2);
    g["mig"]["instances"][0]["gpm"] = json!({"sm_util": 25.0 * scale, "fp32_util": 5.0});
    g["mig"]["instances"][1]["gpu_instance_id"] = json!(5);
    g
}

/// The value of a whole GPU's series (not one of its MIG instances').
fn gpu_val(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.samples(name)
        .into_iter()
        .find(|s| {
            s.has_labels(labels)
                && !s.labels.contains_key("mig_uuid")
                && !s.labels.contains_key("GPU_I_ID")
        })
        .unwrap_or_else(|| panic!("no whole-GPU sample {name}{labels:?}"))
        .value
}

#[test]
fn gpm_metrics_come_from_two_samples_and_only_from_gpus_with_gpm() {
    let mut cfg = config(vec![h100(1.0), t4()]);
    let fake = Fake::new(&cfg);
    let p = fake.start(&["--metrics.dcgm-compat"]);
    // First scrape: one sample per GPU, nothing to compare it with.
    let m = p.scrape();
    assert_eq!(gpu_val(&m, "nvidia_gpu_nvml_up", &[]), 1.0);
    for name in [
        "nvidia_gpu_sm_active_ratio",
        "nvidia_gpu_tensor_pipe_active_ratio",
        "nvidia_gpu_pcie_tx_bytes_per_second",
        "DCGM_FI_PROF_SM_ACTIVE",
    ] {
        assert!(m.samples(name).is_empty(), "{name} on the first scrape");
    }
    // MIG instances carry their GPU instance ID from the start.
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_mig_memory_used_bytes",
            &[("gpu", "0"), ("mig_index", "1"), ("gpu_instance_id", "5")]
        ),
        2_000_000.0
    );

    // The next scrape compares the two samples: the second one's activity.
    cfg["devices"][0] = h100(0.5);
    fake.write(&cfg);
    let m = p.scrape();
    let g0 = [("gpu", "0"), ("uuid", H100)];
    let gpu = |extra: (&'static str, &'static str)| [("gpu", "0"), extra];
    assert_eq!(gpu_val(&m, "nvidia_gpu_sm_active_ratio", &g0), 0.4);
    assert_eq!(gpu_val(&m, "nvidia_gpu_sm_occupancy_ratio", &g0), 0.2);
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_tensor_pipe_active_ratio",
            &gpu(("pipe", "any"))
        ),
        0.3
    );
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_tensor_pipe_active_ratio",
            &gpu(("pipe", "hmma"))
        ),
        0.25
    );
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_tensor_pipe_active_ratio",
            &gpu(("pipe", "imma"))
        ),
        0.0
    );
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_tensor_pipe_active_ratio",
            &gpu(("pipe", "dfma"))
        ),
        0.05
    );
    assert_eq!(gpu_val(&m, "nvidia_gpu_dram_active_ratio", &g0), 0.15);
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_fp_pipe_active_ratio",
            &gpu(("precision", "fp64"))
        ),
        0.01
    );
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_fp_pipe_active_ratio",
            &gpu(("precision", "fp32"))
        ),
        0.1
    );
    assert_eq!(
        gpu_val(
            &m,
            "nvidia_gpu_fp_pipe_active_ratio",
            &gpu(("precision", "fp16"))
        ),
        0.06
    );
    let mib = 1024.0 * 1024.0;
    assert_eq!(
        gpu_val(&m, "nvidia_gpu_pcie_tx_bytes_per_second", &g0),
        50.0 * mib
    );
    assert_eq!(
        gpu_val(&m, "nvidia_gpu_pcie_rx_bytes_per_second", &g0),
        100.0 * mib
    );
    assert_eq!(
        gpu_val(&m, "nvidia_gpu_nvlink_tx_bytes_per_second", &g0),
        512.0 * mib
    );
    assert_eq!(
        gpu_val(&m, "nvidia_gpu_nvlink_rx_bytes_per_second", &g0),
        1024.0 * mib
    );
    // Per GPU instance, where NVML has GPM for it.
    let gi2 = [
        ("gpu", "0"),
        ("mig_uuid", "MIG-aaaa-0001"),
        ("gpu_instance_id", "2"),
    ];
    assert_eq!(val(&m, "nvidia_gpu_sm_active_ratio", &gi2), 0.125);
    assert_eq!(
        m.samples("nvidia_gpu_sm_active_ratio").len(),
        2,
        "the GPU and one GPU instance"
    );
    // The T4 has no GPM: no series, no failure.
    assert!(m
        .value("nvidia_gpu_sm_active_ratio", &[("gpu", "1")])
        .is_none());
    assert_eq!(val(&m, "nvidia_gpu_scrape_success", &[("gpu", "1")]), 1.0);

    // dcgm-exporter's names, units and labels.
    let d0 = [("gpu", "0"), ("UUID", H100), ("device", "nvidia0")];
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_SM_ACTIVE", &d0), 0.4);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_SM_OCCUPANCY", &d0), 0.2);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", &d0), 0.3);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_DRAM_ACTIVE", &d0), 0.15);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_PIPE_FP64_ACTIVE", &d0), 0.01);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_PIPE_FP32_ACTIVE", &d0), 0.1);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_PIPE_FP16_ACTIVE", &d0), 0.06);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_PCIE_TX_BYTES", &d0), 50.0 * mib);
    assert_eq!(gpu_val(&m, "DCGM_FI_PROF_PCIE_RX_BYTES", &d0), 100.0 * mib);
    assert_eq!(
        gpu_val(&m, "DCGM_FI_PROF_NVLINK_TX_BYTES", &d0),
        512.0 * mib
    );
    assert_eq!(
        gpu_val(&m, "DCGM_FI_PROF_NVLINK_RX_BYTES", &d0),
        1024.0 * mib
    );
    assert_eq!(
        val(
            &m,
            "DCGM_FI_PROF_SM_ACTIVE",
            &[
                ("gpu", "0"),
                ("GPU_I_ID", "2"),
                ("GPU_I_PROFILE", "3g.40gb")
            ]
        ),
        0.125
    );
    assert!(m.value("DCGM_FI_PROF_SM_ACTIVE", &[("gpu", "1")]).is_none());

    // A scrape the H100 misses (too slow) starts its comparison over: the
    // first scrape in which it answers again has no GPM series.
    cfg["devices"][0]["delay_ms"] = json!(400);
    fake.write(&cfg);
    let r = p.get_with(
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let missed = parse(&r.body);
    assert_eq!(
        val(&missed, "nvidia_gpu_scrape_success", &[("gpu", "0")]),
        0.0
    );
    cfg["devices"][0]["delay_ms"] = json!(0);
    fake.write(&cfg);
    let back = scrape_until(&p, "the H100 answering again", |m| {
        m.value("nvidia_gpu_scrape_success", &[("gpu", "0")]) == Some(1.0)
    });
    assert!(
        back.value("nvidia_gpu_sm_active_ratio", &[("gpu", "0")])
            .is_none(),
        "GPM on the first scrape after the GPU came back"
    );
    let m = p.scrape();
    assert_eq!(gpu_val(&m, "nvidia_gpu_sm_active_ratio", &g0), 0.4);
}

#[test]
fn per_process_utilization_is_capped_and_follows_the_last_sample() {
    let mut a = a100();
    a["processes"] = json!([
        {"pid": 4242, "name": "python3", "used_memory": 1_073_741_824, "kind": "compute",
         "utilization": {"sm": 70, "memory": 20, "encoder": 0, "decoder": 5}},
        {"pid": 4343, "name": "Xorg", "used_memory": 52_428_800, "kind": "graphics",
         "utilization": {"sm": 3, "memory": 1, "encoder": 9, "decoder": 0}},
        {"pid": 4444, "name": "trainer", "used_memory": 2_147_483_648_u64, "kind": "both",
         "utilization": {"sm": 90, "memory": 60, "encoder": 0, "decoder": 0, "timestamp_us": 1000}}
    ]);
    let fake = Fake::new(&config(vec![a, t4()]));
    let p = fake.start(&["--collector.processes", "--collector.processes.max=2"]);
    let m = p.scrape();
    let trainer = [("gpu", "0"), ("pid", "4444"), ("process_name", "trainer")];
    let python = [("gpu", "0"), ("pid", "4242"), ("process_name", "python3")];
    // The two busiest processes, with the names of the memory series.
    assert_eq!(
        val(&m, "nvidia_gpu_process_sm_utilization_ratio", &trainer),
        0.9
    );
    assert_eq!(
        val(&m, "nvidia_gpu_process_memory_utilization_ratio", &trainer),
        0.6
    );
    assert_eq!(
        val(&m, "nvidia_gpu_process_sm_utilization_ratio", &python),
        0.7
    );
    assert_eq!(
        val(&m, "nvidia_gpu_process_memory_utilization_ratio", &python),
        0.2
    );
    assert_eq!(
        val(&m, "nvidia_gpu_process_encoder_utilization_ratio", &python),
        0.0
    );
    assert_eq!(
        val(&m, "nvidia_gpu_process_decoder_utilization_ratio", &python),
        0.05
    );
    assert_eq!(
        m.samples("nvidia_gpu_process_sm_utilization_ratio").len(),
        2
    );
    assert!(m
        .value(
            "nvidia_gpu_process_sm_utilization_ratio",
            &[("pid", "4343")]
        )
        .is_none());
    assert!(m
        .value("nvidia_gpu_process_memory_bytes", &trainer)
        .is_some());
    // The trainer's sample is from time 1000 µs: once seen, NVML has no
    // newer one for it, so the next scrape lists only the live samples.
    let m = p.scrape();
    assert!(m
        .value("nvidia_gpu_process_sm_utilization_ratio", &trainer)
        .is_none());
    assert_eq!(
        val(&m, "nvidia_gpu_process_sm_utilization_ratio", &python),
        0.7
    );
    assert_eq!(
        val(
            &m,
            "nvidia_gpu_process_encoder_utilization_ratio",
            &[("pid", "4343"), ("process_name", "Xorg")]
        ),
        0.09
    );

    // Without --collector.processes: none.
    let q = fake.start(&[]);
    assert!(q
        .scrape()
        .samples("nvidia_gpu_process_sm_utilization_ratio")
        .is_empty());
}

#[test]
fn two_gpus_hung_at_once_do_not_starve_a_third() {
    let mut first = t4();
    first["uuid"] = json!("GPU-hung-0000");
    first["delay_ms"] = json!(60_000);
    let mut second = t4();
    second["uuid"] = json!("GPU-hung-0001");
    second["delay_ms"] = json!(60_000);
    // GPUs 0 and 1 take both reading slots first; GPU 2 is read after them.
    let fake = Fake::new(&config(vec![first, second, a100()]));
    let p = fake.start(&[]);
    for round in 0..3 {
        let started = Instant::now();
        // Prometheus' 2.5 s timeout minus the default 0.5 s offset: 2 s.
        let r = p.get_with(
            "/metrics",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "2.5")],
        );
        let took = started.elapsed();
        assert_eq!(r.status, 200);
        let m = parse(&r.body);
        assert_eq!(
            val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "2")]),
            64.0,
            "round {round}: GPU 2 not reported:\n{}",
            r.body
        );
        assert_eq!(val(&m, "nvidia_gpu_scrape_success", &[("gpu", "0")]), 0.0);
        assert_eq!(val(&m, "nvidia_gpu_scrape_success", &[("gpu", "1")]), 0.0);
        assert_eq!(val(&m, "nvidia_gpu_scrape_success", &[("gpu", "2")]), 1.0);
        if round > 0 {
            // The hung GPUs are skipped at once, holding no slot.
            assert!(
                took < Duration::from_millis(800),
                "round {round} took {took:?}"
            );
        }
    }
}

#[test]
fn a_gpu_hot_plugged_after_start_gets_xid_counting() {
    let mut cfg = config(vec![a100()]);
    let fake = Fake::new(&cfg);
    let p = fake.start(&[]);
    assert_eq!(val(&p.scrape(), "nvidia_gpu_num_devices", &[]), 1.0);

    let mut plugged = t4();
    plugged["xid_events"] = json!([94]);
    cfg["devices"] = json!([a100(), plugged]);
    fake.write(&cfg);
    let xid94 = [("gpu", "1"), ("uuid", T4), ("xid", "94")];
    let m = scrape_until(&p, "XID 94 of the hot-plugged GPU counted", |m| {
        m.value("nvidia_gpu_xid_errors_total", &xid94) == Some(1.0)
    });
    assert_eq!(val(&m, "nvidia_gpu_num_devices", &[]), 2.0);
    assert_eq!(
        val(&m, "nvidia_gpu_temperature_celsius", &[("gpu", "1")]),
        40.0
    );
}

/// Runs `scripts/real-gpu-check` against the fake library, idle only.
fn real_gpu_check(cfg: &Value) -> (std::process::Output, String) {
    let fake = Fake::new(cfg);
    let out = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/real-gpu-check");
    let lib = fake_lib().display().to_string();
    let run = Command::new(require_program("python3", "python3"))
        .arg(script)
        .args(["--nvml-library", &lib, "--no-load", "--cpu-scrapes", "5"])
        .env("OXMON_GPU_BIN", BIN)
        .env("FAKE_NVML_CONFIG", fake.path())
        .env("OUT", out.path())
        .env_remove("NVML_TEST_BIN")
        .output()
        .expect("running scripts/real-gpu-check");
    let table = std::fs::read_to_string(out.path().join("real-gpu.txt")).unwrap_or_default();
    (run, table)
}

#[test]
fn real_gpu_check_script_passes_a_sane_hopper_and_fails_an_insane_one() {
    let (run, table) = real_gpu_check(&config(vec![h100(1.0), t4_with_power()]));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(row("nvidia_gpu_sm_active_ratio")[1], "0.8");
    assert_eq!(row("nvidia_gpu_temperature_celsius")[1], "64");
    assert_eq!(row("nvidia_gpu_temperature_celsius")[2], "-");
    assert!(table.contains("CPU per scrape"), "{table}");
    assert!(table.contains("checks failed: 0"), "{table}");

    // Too hot, and a Hopper GPU without GPM: both reported, exit 1.
    let mut hot = h100(1.0);
    hot["temperature"] = json!(150);
    hot.as_object_mut().unwrap().remove("gpm");
    let (run, table) = real_gpu_check(&config(vec![hot, t4_with_power()]));
    assert_eq!(run.status.code(), Some(1), "{table}");
    assert!(
        table.contains("FAIL idle: GPU 0 temperature 150.0 within 10..110"),
        "{table}"
    );
    assert!(
        table.contains("FAIL idle: GPU 0 GPM nvidia_gpu_sm_active_ratio"),
        "{table}"
    );
}

/// The T4 with the power and energy readings every real GPU has.
fn t4_with_power() -> Value {
    let mut t = t4();
    t["power_usage_mw"] = json!(27_000);
    t["power_limit_mw"] = json!(70_000);
    t["energy_mj"] = json!(5_000_000);
    t
}
