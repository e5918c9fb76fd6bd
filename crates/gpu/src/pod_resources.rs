//! Kubernetes pod attribution: which container each GPU is allocated to,
//! from the kubelet's PodResources API (`v1.PodResourcesLister/List`, gRPC
//! on the kubelet's unix socket).
//!
//! With `--kubernetes.enable-pod-labels` (off by default) every per-GPU
//! series of a GPU that the kubelet has allocated to a container gets the
//! labels `namespace`, `pod` and `container` (dcgm-exporter's names), in the
//! native and the dcgm-compat output. Devices are those of the resources
//! `nvidia.com/gpu` and `nvidia.com/mig-*`; their IDs are matched against
//! the GPU's `uuid` (or a MIG instance's `mig_uuid`) with
//! `--kubernetes.gpu-id-type=uid` (the default, the NVIDIA device plugin's
//! default), or against the GPU's index (`gpu` label) with `device-name`.
//! A time-sliced GPU's replicas (`GPU-…::3`) count as the GPU itself; when
//! several containers share a GPU, the first by namespace, pod and container
//! name is shown, so a GPU keeps one series per metric.
//!
//! Flags: `--kubernetes.pod-resources-socket` (default
//! `/var/lib/kubelet/pod-resources/kubelet.sock`),
//! `--kubernetes.pod-resources-cache` (how long an answer is reused, 10 s).
//!
//! An answer is reused for the cache duration; then the next scrape starts
//! a new call and waits for it at most 1 s (and never past its deadline),
//! else it uses the previous answer while the call goes on. A missing
//! socket, a failing kubelet or an answer that is not a PodResources reply
//! mean no pod labels and one log line (again only when the reason changes,
//! and a line when it recovers), never a failed scrape.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use oxmon_core::logging::{FailureLog, FailureSubject};
use oxmon_core::sync::LockExt;
use oxmon_core::MetricFamily;
use tokio::sync::watch;
use tokio::time::Instant;

/// The kubelet's default socket for the PodResources API.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// Longest a scrape waits for a kubelet answer it started.
const SCRAPE_WAIT: Duration = Duration::from_secs(1);

/// Longest one call to the kubelet may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer accepted, as the kubelet's own clients allow.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The gRPC method: package `v1`, service `PodResourcesLister`, rpc `List`.
const LIST_METHOD: &str = "/v1.PodResourcesLister/List";

/// Command-line flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Add namespace, pod and container labels to the series of GPUs the
    /// kubelet has allocated to a container (kubelet PodResources API).
    #[arg(
        long = "kubernetes.enable-pod-labels",
        env = "OXMON_KUBERNETES_ENABLE_POD_LABELS"
    )]
    pub enabled: bool,

    /// The kubelet's PodResources socket.
    #[arg(
        long = "kubernetes.pod-resources-socket",
        env = "OXMON_KUBERNETES_POD_RESOURCES_SOCKET",
        default_value = DEFAULT_SOCKET
    )]
    pub socket: PathBuf,

    /// What the device plugin's device IDs are: GPU and MIG UUIDs (uid) or
    /// GPU indices (device-name).
    #[arg(
        long = "kubernetes.gpu-id-type",
        env = "OXMON_KUBERNETES_GPU_ID_TYPE",
        value_enum,
        default_value_t = GpuIdType::Uid
    )]
    pub id_type: GpuIdType,

    /// How long a kubelet answer is reused before the kubelet is asked again.
    #[arg(
        long = "kubernetes.pod-resources-cache",
        env = "OXMON_KUBERNETES_POD_RESOURCES_CACHE",
        default_value = "10s",
        value_parser = oxmon_core::flags::parse_duration
    )]
    pub cache: Duration,
}

/// How device IDs name GPUs.
#[derive(clap::ValueEnum, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum GpuIdType {
    /// GPU UUIDs (`GPU-…`) and MIG device UUIDs (`MIG-…`).
    #[default]
    Uid,
    /// GPU indices (`0`, `1`, …), the device plugin's `index` strategy.
    DeviceName,
}

/// `ListPodResourcesRequest`: empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodResourcesRequest {}

/// `ListPodResourcesResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodResourcesResponse {
    /// Every pod on the node with resources.
    #[prost(message, repeated, tag = "1")]
    pub pod_resources: Vec<PodResources>,
}

/// `PodResources`: one pod.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodResources {
    /// Pod name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Pod namespace.
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// Its containers.
    #[prost(message, repeated, tag = "3")]
    pub containers: Vec<ContainerResources>,
}

/// `ContainerResources`: one container (CPU, memory and dynamic resources,
/// tags 3 to 5, are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerResources {
    /// Container name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Devices from device plugins.
    #[prost(message, repeated, tag = "2")]
    pub devices: Vec<ContainerDevices>,
}

/// `ContainerDevices`: the devices of one resource (topology, tag 3, is
/// not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerDevices {
    /// Resource name (`nvidia.com/gpu`).
    #[prost(string, tag = "1")]
    pub resource_name: String,
    /// Device IDs as the device plugin named them.
    #[prost(string, repeated, tag = "2")]
    pub device_ids: Vec<String>,
}

/// The container a device is allocated to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
}

/// Whether a device plugin resource is an NVIDIA GPU or MIG device.
fn is_gpu_resource(name: &str) -> bool {
    name == "nvidia.com/gpu" || name.starts_with("nvidia.com/mig-")
}

/// The device a device ID stands for: a time-sliced GPU's replicas are
/// `<id>::<replica>`.
fn device_of(id: &str) -> &str {
    id.split_once("::").map_or(id, |(device, _)| device)
}

/// GPU devices and the container each is allocated to.
#[derive(Debug, Default, PartialEq)]
pub struct Owners {
    by_device: HashMap<String, Owner>,
    /// What the device IDs are.
    ids: GpuIdType,
}

impl Owners {
    /// Owners from a `List` answer. A device shared by several containers
    /// gets the first of them by (namespace, pod, container), so the choice
    /// does not depend on the kubelet's order.
    pub fn from_answer(answer: &ListPodResourcesResponse, ids: GpuIdType) -> Owners {
        let mut by_device: HashMap<String, Owner> = HashMap::new();
        for pod in &answer.pod_resources {
            for container in &pod.containers {
                let owner = Owner {
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    container: container.name.clone(),
                };
                let ids = container
                    .devices
                    .iter()
                    .filter(|d| is_gpu_resource(&d.resource_name))
                    .flat_map(|d| &d.device_ids);
                for id in ids {
                    let device = device_of(id);
                    match by_device.get_mut(device) {
                        Some(known) if *known <= owner => {}
                        Some(known) => *known = owner.clone(),
                        None => {
                            by_device.insert(device.to_string(), owner.clone());
                        }
                    }
                }
            }
        }
        Owners { by_device, ids }
    }

    /// The owner of the GPU or MIG device a series belongs to, found by its
    /// labels: `mig_uuid`, then `uuid` (`UUID` in dcgm-compat output) for
    /// UUIDs; `gpu` for indices, on series that name a GPU by UUID too (the
    /// per-GPU series).
    fn owner_of(
        &self,
        labels: &[(
            oxmon_core::metrics::LabelName,
            oxmon_core::metrics::LabelValue,
        )],
    ) -> Option<&Owner> {
        let get = |name: &str| {
            labels
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let gpu_uuid = get("uuid").or_else(|| get("UUID"))?;
        match self.ids {
            GpuIdType::Uid => get("mig_uuid")
                .and_then(|mig| self.by_device.get(mig))
                .or_else(|| self.by_device.get(gpu_uuid)),
            GpuIdType::DeviceName => get("gpu").and_then(|index| self.by_device.get(index)),
        }
    }

    /// Adds `namespace`, `pod` and `container` to every series of an
    /// allocated GPU or MIG device.
    pub fn label(&self, families: &mut [MetricFamily]) {
        if self.by_device.is_empty() {
            return;
        }
        for metric in families.iter_mut().flat_map(|f| f.metrics.iter_mut()) {
            if let Some(owner) = self.owner_of(&metric.labels) {
                let owner = owner.clone();
                metric.labels.extend([
                    ("namespace".into(), owner.namespace.into()),
                    ("pod".into(), owner.pod.into()),
                    ("container".into(), owner.container.into()),
                ]);
            }
        }
    }
}

/// Why asking the kubelet failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The socket could not be connected (missing, refused, no permission).
    #[error("connecting to the socket: {0}")]
    Connect(std::io::Error),
    /// No HTTP/2 connection could be set up on it.
    #[error("HTTP/2 handshake: {0}")]
    Handshake(hyper::Error),
    /// The kubelet answered with a gRPC error, or an answer that is not a
    /// PodResources reply.
    #[error("{LIST_METHOD}: {0}")]
    Call(String),
    /// The peer did not speak HTTP/2 gRPC or closed the connection. Which
    /// protocol error comes first varies from call to call, so the message
    /// leaves it out (it would log a new line each time); it is in the
    /// field, logged at debug.
    #[error("{LIST_METHOD}: no gRPC answer (HTTP/2 protocol error or connection closed)")]
    Protocol(String),
    /// No answer in time.
    #[error("{LIST_METHOD}: no answer within {0:?}")]
    TimedOut(Duration),
}

/// One HTTP/2 connection as the service tonic's client sends through.
struct Http2(SendRequest<tonic::body::Body>);

impl tower_service::Service<http::Request<tonic::body::Body>> for Http2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

/// A failed call as an error: a status with a source came from the
/// transport (the HTTP/2 connection), one without from the peer or the
/// decoding of its answer.
fn call_error(status: &tonic::Status) -> KubeletError {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let Some(mut cause) = std::error::Error::source(status) else {
        return KubeletError::Call(text);
    };
    // tonic's message for a transport failure is generic; the cause is below.
    loop {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        match cause.source() {
            Some(next) => cause = next,
            None => return KubeletError::Protocol(text),
        }
    }
}

/// Calls `List` on the kubelet at `socket`, on a connection of its own: the
/// call is rare (once per cache period), and a fresh connection follows a
/// kubelet that restarted and re-created its socket.
pub async fn list(socket: &Path) -> Result<ListPodResourcesResponse, KubeletError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(KubeletError::Connect)?;
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(KubeletError::Handshake)?;
    // Drives the connection; ends when `send` is dropped or the peer goes.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(err = %e, "kubelet pod-resources connection ended");
        }
    });
    let origin = http::Uri::from_static("http://localhost");
    let mut grpc = tonic::client::Grpc::with_origin(Http2(send), origin)
        .max_decoding_message_size(MAX_ANSWER_BYTES);
    grpc.ready()
        .await
        .map_err(|e| KubeletError::Protocol(e.to_string()))?;
    let answer = grpc
        .unary(
            tonic::Request::new(ListPodResourcesRequest {}),
            http::uri::PathAndQuery::from_static(LIST_METHOD),
            tonic::codec::ProstCodec::default(),
        )
        .await
        .map_err(|status| call_error(&status))?;
    Ok(answer.into_inner())
}

struct Cache {
    owners: Arc<Owners>,
    /// When `owners` was last replaced; `None` before the first answer.
    fetched: Option<Instant>,
    /// Set while a call is under way: its end is announced here.
    call: Option<watch::Receiver<bool>>,
}

/// The kubelet's answer, cached and refreshed in the background.
pub struct PodResourcesSource {
    socket: PathBuf,
    ids: GpuIdType,
    max_age: Duration,
    cache: Mutex<Cache>,
    failures: FailureLog,
    /// The subject of the log lines: `unix:<socket>`.
    key: String,
}

impl std::fmt::Debug for PodResourcesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodResourcesSource")
            .field("socket", &self.socket)
            .field("ids", &self.ids)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl PodResourcesSource {
    /// A source for `args`, or `None` when pod labels are off.
    pub fn new(args: &Args) -> Option<Arc<Self>> {
        args.enabled.then(|| {
            Arc::new(PodResourcesSource {
                socket: args.socket.clone(),
                ids: args.id_type,
                max_age: args.cache,
                cache: Mutex::new(Cache {
                    owners: Arc::default(),
                    fetched: None,
                    call: None,
                }),
                failures: FailureLog::new(FailureSubject::Target),
                key: format!("unix:{}", args.socket.display()),
            })
        })
    }

    /// The owners to label this scrape with: the cached answer while it is
    /// fresh, else a new one if the kubelet gives it within 1 s and before
    /// `deadline`, else the cached one while the call goes on.
    pub async fn owners(self: &Arc<Self>, deadline: Instant) -> Arc<Owners> {
        let mut call = {
            let mut cache = self.cache.lock_unpoisoned();
            if cache.fetched.is_some_and(|t| t.elapsed() < self.max_age) {
                return cache.owners.clone();
            }
            match &cache.call {
                Some(call) => call.clone(),
                None => {
                    let (done, call) = watch::channel(false);
                    cache.call = Some(call.clone());
                    tokio::spawn(self.clone().refresh(done));
                    call
                }
            }
        };
        let wait_until = deadline.min(Instant::now() + SCRAPE_WAIT);
        if tokio::time::timeout_at(wait_until, call.wait_for(|done| *done))
            .await
            .is_err()
        {
            tracing::debug!(socket = %self.socket.display(), "kubelet pod-resources answer late; using the previous one");
        }
        self.cache.lock_unpoisoned().owners.clone()
    }

    /// Asks the kubelet once and stores the outcome: its owners, or none
    /// when the call failed.
    async fn refresh(self: Arc<Self>, done: watch::Sender<bool>) {
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, list(&self.socket)).await {
            Ok(answer) => answer,
            Err(_) => Err(KubeletError::TimedOut(CALL_TIMEOUT)),
        };
        let owners = match outcome {
            Ok(answer) => {
                self.failures.succeeded(&self.key);
                Owners::from_answer(&answer, self.ids)
            }
            Err(e) => {
                if let KubeletError::Protocol(detail) = &e {
                    tracing::debug!(socket = %self.socket.display(), detail, "kubelet pod-resources call failed");
                }
                self.failures.failed(
                    &self.key,
                    &format!("kubelet pod-resources: {e}; GPUs get no pod labels"),
                );
                Owners {
                    ids: self.ids,
                    ..Owners::default()
                }
            }
        };
        {
            let mut cache = self.cache.lock_unpoisoned();
            cache.owners = Arc::new(owners);
            cache.fetched = Some(Instant::now());
            cache.call = None;
        }
        let _ = done.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxmon_core::MetricType;

    fn container(name: &str, devices: &[(&str, &[&str])]) -> ContainerResources {
        ContainerResources {
            name: name.into(),
            devices: devices
                .iter()
                .map(|(resource, ids)| ContainerDevices {
                    resource_name: (*resource).into(),
                    device_ids: ids.iter().map(|s| (*s).into()).collect(),
                })
                .collect(),
        }
    }

    fn pod(namespace: &str, name: &str, containers: Vec<ContainerResources>) -> PodResources {
        PodResources {
            name: name.into(),
            namespace: namespace.into(),
            containers,
        }
    }

    fn owner(namespace: &str, pod: &str, container: &str) -> Owner {
        Owner {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
        }
    }

    #[test]
    fn gpus_and_mig_devices_map_to_their_container_and_other_resources_do_not() {
        let answer = ListPodResourcesResponse {
            pod_resources: vec![
                pod(
                    "ml",
                    "trainer-0",
                    vec![
                        container("sidecar", &[]),
                        container(
                            "train",
                            &[
                                ("nvidia.com/gpu", &["GPU-a", "GPU-b"]),
                                ("example.com/nic", &["GPU-c"]),
                            ],
                        ),
                    ],
                ),
                pod(
                    "ml",
                    "infer",
                    vec![container(
                        "serve",
                        &[("nvidia.com/mig-1g.10gb", &["MIG-1"])],
                    )],
                ),
            ],
        };
        let owners = Owners::from_answer(&answer, GpuIdType::Uid);
        assert_eq!(owners.by_device.len(), 3, "{owners:?}");
        assert_eq!(owners.by_device["GPU-a"], owner("ml", "trainer-0", "train"));
        assert_eq!(owners.by_device["GPU-b"], owner("ml", "trainer-0", "train"));
        assert_eq!(owners.by_device["MIG-1"], owner("ml", "infer", "serve"));
        assert!(!owners.by_device.contains_key("GPU-c"));
    }

    #[test]
    fn a_shared_gpu_gets_the_first_container_whatever_the_kubelet_order() {
        let a = pod(
            "team-b",
            "p",
            vec![container("c", &[("nvidia.com/gpu", &["GPU-x::1"])])],
        );
        let b = pod(
            "team-a",
            "q",
            vec![container("z", &[("nvidia.com/gpu", &["GPU-x::0"])])],
        );
        let c = pod(
            "team-a",
            "q",
            vec![container("y", &[("nvidia.com/gpu", &["GPU-x::2"])])],
        );
        let orders = [
            vec![a.clone(), b.clone(), c.clone()],
            vec![c.clone(), b.clone(), a.clone()],
            vec![b, a, c],
        ];
        for pods in orders {
            let answer = ListPodResourcesResponse {
                pod_resources: pods,
            };
            let owners = Owners::from_answer(&answer, GpuIdType::Uid);
            assert_eq!(owners.by_device.len(), 1);
            assert_eq!(owners.by_device["GPU-x"], owner("team-a", "q", "y"));
        }
    }

    fn family(labels: &[&[(&'static str, &str)]]) -> MetricFamily {
        let mut f = MetricFamily::new("nvidia_gpu_x", "x", MetricType::Gauge);
        for l in labels {
            let l: oxmon_core::metrics::Labels =
                l.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            f.add_owned(l, 1.0);
        }
        f
    }

    fn labels_of(f: &MetricFamily, i: usize) -> Vec<(String, String)> {
        f.metrics[i]
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_go_on_the_allocated_gpu_and_mig_series_only() {
        let owners = Owners {
            by_device: HashMap::from([
                ("GPU-a".into(), owner("ml", "p", "c")),
                ("MIG-1".into(), owner("ml", "q", "d")),
            ]),
            ids: GpuIdType::Uid,
        };
        let mut fams = [
            family(&[
                &[("gpu", "0"), ("uuid", "GPU-a")],
                &[("gpu", "1"), ("uuid", "GPU-b")],
                &[],
            ]),
            family(&[
                &[("gpu", "1"), ("uuid", "GPU-b"), ("mig_uuid", "MIG-1")],
                &[("gpu", "1"), ("uuid", "GPU-b"), ("mig_uuid", "MIG-2")],
            ]),
            family(&[&[("gpu", "0"), ("UUID", "GPU-a"), ("Hostname", "h")]]),
        ];
        owners.label(&mut fams);
        let pod_of = |f: &MetricFamily, i: usize| {
            let l = labels_of(f, i);
            let get = |k: &str| l.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            (get("namespace"), get("pod"), get("container"))
        };
        let some = |n: &str, p: &str, c: &str| (Some(n.into()), Some(p.into()), Some(c.into()));
        assert_eq!(pod_of(&fams[0], 0), some("ml", "p", "c"));
        assert_eq!(pod_of(&fams[0], 1), (None, None, None));
        assert_eq!(pod_of(&fams[0], 2), (None, None, None));
        assert_eq!(pod_of(&fams[1], 0), some("ml", "q", "d"));
        assert_eq!(pod_of(&fams[1], 1), (None, None, None));
        assert_eq!(pod_of(&fams[2], 0), some("ml", "p", "c"));
    }

    #[test]
    fn device_name_ids_match_the_gpu_index_of_per_gpu_series() {
        let answer = ListPodResourcesResponse {
            pod_resources: vec![pod(
                "ml",
                "p",
                vec![container("c", &[("nvidia.com/gpu", &["1"])])],
            )],
        };
        let owners = Owners::from_answer(&answer, GpuIdType::DeviceName);
        let mut fams = [family(&[
            &[("gpu", "0"), ("uuid", "GPU-a")],
            &[("gpu", "1"), ("uuid", "GPU-b")],
            // Not a per-GPU series: no uuid.
            &[("gpu", "1")],
        ])];
        owners.label(&mut fams);
        assert_eq!(labels_of(&fams[0], 0).len(), 2);
        assert_eq!(labels_of(&fams[0], 1).len(), 5);
        assert_eq!(labels_of(&fams[0], 2).len(), 1);
        // The same answer read as UUIDs labels nothing.
        let owners = Owners::from_answer(&answer, GpuIdType::Uid);
        let mut fams = [family(&[&[("gpu", "1"), ("uuid", "GPU-b")]])];
        owners.label(&mut fams);
        assert_eq!(labels_of(&fams[0], 0).len(), 2);
    }

    #[test]
    fn answer_decodes_from_the_wire_and_garbage_is_an_error() {
        use prost::Message;
        let answer = ListPodResourcesResponse {
            pod_resources: vec![pod(
                "ns",
                "p",
                vec![container("c", &[("nvidia.com/gpu", &["GPU-a"])])],
            )],
        };
        let bytes = answer.encode_to_vec();
        // Field 1 (pod_resources), length-delimited.
        assert_eq!(bytes[0], 0x0a);
        assert_eq!(
            ListPodResourcesResponse::decode(&bytes[..]).unwrap(),
            answer
        );
        assert!(ListPodResourcesResponse::decode(&b"\x0a\xff\xff\xff"[..]).is_err());
    }

    #[tokio::test]
    async fn a_missing_socket_means_no_owners_and_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let args = Args {
            enabled: true,
            socket: dir.path().join("kubelet.sock"),
            id_type: GpuIdType::Uid,
            cache: Duration::from_secs(60),
        };
        let source = PodResourcesSource::new(&args).unwrap();
        let started = Instant::now();
        let owners = source.owners(Instant::now() + Duration::from_secs(5)).await;
        assert!(owners.by_device.is_empty());
        assert!(started.elapsed() < SCRAPE_WAIT, "{:?}", started.elapsed());
        let fetched = source.cache.lock_unpoisoned().fetched;
        assert!(fetched.is_some());
        // Within the cache period: no new call.
        let _ = source.owners(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(source.cache.lock_unpoisoned().fetched, fetched);
        let err = list(&args.socket).await.unwrap_err();
        assert!(matches!(err, KubeletError::Connect(_)), "{err}");
        assert!(PodResourcesSource::new(&Args {
            enabled: false,
            ..args
        })
        .is_none());
    }
}
