//! Pod attribution end to end: the real oxmon-gpu binary on the fake NVML,
//! asking a fake kubelet (a tonic PodResourcesLister on a unix socket in a
//! temp dir, written here from api.proto independently of the exporter's
//! client) for the pods its GPUs are allocated to.

use std::convert::Infallible;
use std::future::Ready;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use oxmon_testkit::{wait_until, ExporterProcess, Exposition};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

mod common;

use common::{fake_lib, BIN};

const GPU0: &str = "GPU-0a0a0a0a-0000-4000-8000-000000000000";
const GPU1: &str = "GPU-1b1b1b1b-1111-4111-8111-111111111111";
const MIG_A: &str = "MIG-1b1b1b1b-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const MIG_B: &str = "MIG-1b1b1b1b-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

/// The kubelet's messages, server side.
mod kubelet {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListRequest {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListResponse {
        #[prost(message, repeated, tag = "1")]
        pub pod_resources: Vec<Pod>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Pod {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub namespace: String,
        #[prost(message, repeated, tag = "3")]
        pub containers: Vec<Container>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Container {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, repeated, tag = "2")]
        pub devices: Vec<Devices>,
        #[prost(int64, repeated, tag = "3")]
        pub cpu_ids: Vec<i64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Devices {
        #[prost(string, tag = "1")]
        pub resource_name: String,
        #[prost(string, repeated, tag = "2")]
        pub device_ids: Vec<String>,
    }
}

use kubelet::{Container, Devices, ListRequest, ListResponse, Pod};

fn pod(namespace: &str, name: &str, container: &str, resource: &str, ids: &[&str]) -> Pod {
    Pod {
        name: name.into(),
        namespace: namespace.into(),
        containers: vec![Container {
            name: container.into(),
            devices: vec![Devices {
                resource_name: resource.into(),
                device_ids: ids.iter().map(|s| (*s).into()).collect(),
            }],
            cpu_ids: vec![2, 3],
        }],
    }
}

/// GPU 0 whole to ml/trainer-0, MIG instance A of GPU 1 to ml/infer, and a
/// non-GPU device named like GPU 1 to a pod that must not get it.
fn allocations() -> ListResponse {
    ListResponse {
        pod_resources: vec![
            pod("ml", "trainer-0", "train", "nvidia.com/gpu", &[GPU0]),
            pod("ml", "infer", "serve", "nvidia.com/mig-1g.10gb", &[MIG_A]),
            pod("other", "nic-user", "app", "example.com/nic", &[GPU1]),
        ],
    }
}

/// Answers `List` with the current allocations.
#[derive(Clone)]
struct ListService(Arc<Mutex<ListResponse>>);

impl tower_service::Service<tonic::Request<ListRequest>> for ListService {
    type Response = tonic::Response<ListResponse>;
    type Error = tonic::Status;
    type Future = Ready<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::Request<ListRequest>) -> Self::Future {
        let answer = self.0.lock().unwrap().clone();
        std::future::ready(Ok(tonic::Response::new(answer)))
    }
}

/// A kubelet on a unix socket, on a runtime of its own.
struct Kubelet {
    runtime: tokio::runtime::Runtime,
    socket: PathBuf,
    answer: Arc<Mutex<ListResponse>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Kubelet {
    fn new(socket: &Path) -> Kubelet {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Kubelet {
            runtime,
            socket: socket.to_path_buf(),
            answer: Arc::new(Mutex::new(allocations())),
            server: None,
        }
    }

    /// A fresh socket at the kubelet's path.
    fn listen(&self) -> UnixListener {
        let _ = std::fs::remove_file(&self.socket);
        let _guard = self.runtime.enter();
        UnixListener::bind(&self.socket).unwrap()
    }

    /// Serves PodResourcesLister/List (anything else: UNIMPLEMENTED).
    fn start(&mut self) {
        let listener = self.listen();
        let answer = self.answer.clone();
        self.server = Some(self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<_>| {
                        let list = ListService(answer.clone());
                        async move {
                            if req.uri().path() != "/v1.PodResourcesLister/List" {
                                return Ok::<_, Infallible>(
                                    tonic::Status::unimplemented(req.uri().path()).into_http(),
                                );
                            }
                            let codec =
                                tonic::codec::ProstCodec::<ListResponse, ListRequest>::default();
                            Ok(tonic::server::Grpc::new(codec).unary(list, req).await)
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Stops serving and removes the socket, as a kubelet that goes down.
    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Serves bytes that are not HTTP/2 on every connection.
    fn start_garbage(&mut self) {
        let listener = self.listen();
        self.server = Some(self.runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n\x00\x00\x00garbage\xff\xfe")
                        .await;
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                });
            }
        }));
    }

    /// Accepts connections and never answers, as a hung kubelet.
    fn start_silent(&mut self) {
        let listener = self.listen();
        self.server = Some(self.runtime.spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        }));
    }
}

/// Two GPUs; GPU 1 in MIG mode with two instances.
fn nvml_config() -> serde_json::Value {
    let gpu = |index: u32, uuid: &str| {
        json!({
            "name": "NVIDIA A100-SXM4-40GB",
            "uuid": uuid,
            "pci_bus_id": format!("00000000:0{index}:00.0"),
            "temperature": 40 + index,
            "utilization": {"gpu": 50, "memory": 10},
            "memory": {"total": 42_949_672_960_u64, "used": 1_073_741_824, "free": 41_875_931_136_u64},
            "clocks_mhz": {"graphics": 1410, "sm": 1410, "memory": 1215, "video": 1275}
        })
    };
    let mut gpu1 = gpu(1, GPU1);
    gpu1["mig"] = json!({"current": true, "pending": true, "instances": [
        {"uuid": MIG_A, "name": "1g.10gb", "memory": {"total": 10_000_000_000_u64, "used": 1_000_000, "free": 9_999_000_000_u64}},
        {"uuid": MIG_B, "name": "1g.10gb", "memory": {"total": 10_000_000_000_u64, "used": 2_000_000, "free": 9_998_000_000_u64}}
    ]});
    json!({"driver_version": "550.54.15", "cuda_driver_version": 12040, "devices": [gpu(0, GPU0), gpu1]})
}

/// The exporter with pod labels on, asking the socket in `dir`, its answers
/// cached for 100 ms so the tests see changes quickly.
fn start_exporter(dir: &Path) -> ExporterProcess {
    let config = dir.join("nvml.json");
    std::fs::write(&config, nvml_config().to_string()).unwrap();
    let lib = format!("--nvml.library-path={}", fake_lib().display());
    let socket = format!(
        "--kubernetes.pod-resources-socket={}",
        dir.join("kubelet.sock").display()
    );
    ExporterProcess::start(
        BIN,
        &[
            &lib,
            "--log.level=debug",
            "--metrics.dcgm-compat",
            "--kubernetes.enable-pod-labels",
            &socket,
            "--kubernetes.pod-resources-cache=100ms",
        ],
        &[("FAKE_NVML_CONFIG", config.to_str().unwrap())],
    )
}

/// `(namespace, pod, container)` of a sample.
fn pod_of(sample: &oxmon_testkit::Sample) -> Option<(&str, &str, &str)> {
    let get = |k: &str| sample.labels.get(k).map(String::as_str);
    match (get("namespace"), get("pod"), get("container")) {
        (None, None, None) => None,
        (Some(n), Some(p), Some(c)) => Some((n, p, c)),
        partial => panic!("partial pod labels {partial:?} on {sample:?}"),
    }
}

fn has_pod_labels(m: &Exposition) -> bool {
    m.all_samples().any(|s| pod_of(s).is_some())
}

fn scrape_until(p: &ExporterProcess, what: &str, ok: impl Fn(&Exposition) -> bool) -> Exposition {
    wait_until(Duration::from_secs(20), || {
        let m = p.scrape();
        ok(&m).then_some(m)
    })
    .unwrap_or_else(|| panic!("timed out waiting for {what}; log:\n{}", p.log()))
}

/// Every per-GPU series has exactly the pod labels of its GPU or MIG
/// instance, in the native and the dcgm-compat output.
fn assert_labelled_as_allocated(m: &Exposition) {
    let trainer = Some(("ml", "trainer-0", "train"));
    let infer = Some(("ml", "infer", "serve"));
    let mut seen = (0, 0, 0);
    for s in m.all_samples() {
        let gpu_uuid = s.labels.get("uuid").or_else(|| s.labels.get("UUID"));
        let expected = match (gpu_uuid.map(String::as_str), s.labels.get("mig_uuid")) {
            (_, Some(mig)) if mig == MIG_A => {
                seen.1 += 1;
                infer
            }
            (Some(GPU0), _) => {
                seen.0 += 1;
                trainer
            }
            (Some(GPU1), _) => {
                seen.2 += 1;
                None
            }
            _ => None,
        };
        assert_eq!(pod_of(s), expected, "{s:?}");
    }
    // GPU 0's native and DCGM series, MIG A's three memory series, GPU 1's.
    assert!(seen.0 > 10 && seen.1 == 3 && seen.2 > 10, "{seen:?}");
    let temp = |gpu: &str| {
        m.all_samples()
            .find(|s| s.name == "DCGM_FI_DEV_GPU_TEMP" && s.labels["gpu"] == gpu)
            .map(pod_of)
            .expect("DCGM_FI_DEV_GPU_TEMP")
    };
    assert_eq!(temp("0"), trainer);
    assert_eq!(temp("1"), None);
}

#[test]
fn pod_labels_go_on_the_allocated_gpu_and_mig_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut kubelet = Kubelet::new(&dir.path().join("kubelet.sock"));
    kubelet.start();
    let p = start_exporter(dir.path());
    let m = scrape_until(&p, "pod labels", has_pod_labels);
    assert_eq!(m.value("nvidia_gpu_nvml_up", &[]), Some(1.0));
    assert_labelled_as_allocated(&m);
    kubelet.stop();
}

#[test]
fn missing_socket_serves_200_without_pod_labels_and_logs_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_exporter(dir.path());
    for _ in 0..5 {
        let m = p.scrape();
        assert_eq!(m.value("nvidia_gpu_nvml_up", &[]), Some(1.0));
        assert_eq!(
            m.value(
                "nvidia_gpu_scrape_collector_success",
                &[("collector", "nvml")]
            ),
            Some(1.0)
        );
        assert!(!has_pod_labels(&m));
        // Past the 100 ms cache: every scrape asks again.
        std::thread::sleep(Duration::from_millis(150));
    }
    let log = p.log();
    let failed: Vec<_> = log
        .lines()
        .filter(|l| l.contains("target failed") && l.contains("kubelet.sock"))
        .collect();
    assert_eq!(failed.len(), 1, "log:\n{log}");
    assert!(
        failed[0].contains("connecting to the socket"),
        "{}",
        failed[0]
    );
    let repeats = log
        .lines()
        .filter(|l| l.contains("target still failing"))
        .count();
    assert!(repeats >= 3, "each scrape should ask again; log:\n{log}");
}

#[test]
fn garbage_answer_serves_200_without_pod_labels_and_logs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut kubelet = Kubelet::new(&dir.path().join("kubelet.sock"));
    kubelet.start_garbage();
    let p = start_exporter(dir.path());
    for _ in 0..5 {
        let m = p.scrape();
        assert_eq!(m.value("nvidia_gpu_nvml_up", &[]), Some(1.0));
        assert!(!has_pod_labels(&m));
        std::thread::sleep(Duration::from_millis(150));
    }
    let log = p.log();
    let failed: Vec<_> = log
        .lines()
        .filter(|l| l.contains("target failed") && l.contains("kubelet.sock"))
        .collect();
    assert_eq!(failed.len(), 1, "log:\n{log}");
    assert!(failed[0].contains("no gRPC answer"), "{}", failed[0]);
    kubelet.stop();
}

#[test]
fn labels_go_when_the_kubelet_goes_and_return_when_it_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut kubelet = Kubelet::new(&dir.path().join("kubelet.sock"));
    kubelet.start();
    let p = start_exporter(dir.path());
    scrape_until(&p, "pod labels", has_pod_labels);

    kubelet.stop();
    let m = scrape_until(&p, "pod labels to go", |m| !has_pod_labels(m));
    assert_eq!(m.value("nvidia_gpu_nvml_up", &[]), Some(1.0));

    // The restarted kubelet has rescheduled GPU 0's pod.
    kubelet.answer.lock().unwrap().pod_resources[0].name = "trainer-1".into();
    kubelet.start();
    let m = scrape_until(&p, "pod labels to return", has_pod_labels);
    let temp = m
        .all_samples()
        .find(|s| s.name == "nvidia_gpu_temperature_celsius" && s.labels["gpu"] == "0")
        .expect("GPU 0 temperature");
    assert_eq!(pod_of(temp), Some(("ml", "trainer-1", "train")));
    assert!(p.log().contains("target recovered"), "log:\n{}", p.log());
    kubelet.stop();
}

#[test]
fn a_hung_kubelet_delays_a_scrape_by_at_most_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut kubelet = Kubelet::new(&dir.path().join("kubelet.sock"));
    kubelet.start_silent();
    let p = start_exporter(dir.path());
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let m = p.scrape();
        let took = started.elapsed();
        // Waited for the kubelet, but only for the 1 s bound.
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "scrape took {took:?}"
        );
        assert_eq!(m.value("nvidia_gpu_nvml_up", &[]), Some(1.0));
        assert!(!has_pod_labels(&m));
    }
    kubelet.stop();
}
