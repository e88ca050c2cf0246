//! A blocking client for the CRI RuntimeService (v1) over a containerd socket: the calls kubelet
//! makes to network a pod, each under a timeout so a hung runtime fails the test instead of hanging.

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, LinuxContainerConfig,
    LinuxPodSandboxConfig, ListPodSandboxRequest, PodSandboxConfig, PodSandboxMetadata,
    PodSandboxState, PodSandboxStatusRequest, PortMapping, RemovePodSandboxRequest,
    RunPodSandboxRequest, StartContainerRequest, StatusRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

/// Generous: RunPodSandbox is a container start plus a CNI ADD, on a 2-core machine, 20 at once.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

/// What PodSandboxStatus says about a sandbox, plus the PID of its pause process (verbose info).
#[derive(Debug, Clone)]
pub struct SandboxStatus {
    pub id: String,
    pub name: String,
    pub ready: bool,
    pub ip: String,
    pub pid: Option<u32>,
    /// The netns path containerd handed to CNI (from the runtime spec in the verbose info).
    pub netns: Option<String>,
}

/// A container's state as ContainerStatus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerRun {
    Running,
    Exited {
        code: i32,
        reason: String,
    },
    /// Created or unknown (CRI's state number).
    Other(i32),
}

/// The config kubelet would send for a pod `name` in namespace `default`.
pub fn sandbox_config(name: &str, log_dir: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.join(name).to_string_lossy().into_owned(),
        labels: HashMap::from([("app".into(), "podwire-e2e".into())]),
        linux: Some(LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

impl Cri {
    /// Connects to the CRI socket (containerd's gRPC address).
    pub fn connect(socket: &Path) -> Result<Cri, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let socket = socket.to_path_buf();
        let channel = rt
            .block_on(async move {
                let connector = tower::service_fn(move |_: Uri| {
                    let socket: PathBuf = socket.clone();
                    async move {
                        tokio::net::UnixStream::connect(socket)
                            .await
                            .map(hyper_util::rt::TokioIo::new)
                    }
                });
                // The URI is a placeholder: the connector always dials the socket.
                Endpoint::from_static("http://[::]:50051")
                    .connect_timeout(Duration::from_secs(5))
                    .connect_with_connector(connector)
                    .await
            })
            .map_err(|e| format!("connect to the CRI socket: {e}"))?;
        Ok(Cri {
            rt,
            client: RuntimeServiceClient::new(channel),
        })
    }

    fn call<T, F>(&self, what: &str, f: F) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rt.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, f).await {
                Ok(Ok(r)) => Ok(r.into_inner()),
                Ok(Err(s)) => Err(format!("{what}: {}: {}", s.code(), s.message())),
                Err(_) => Err(format!("{what}: no answer in {CALL_TIMEOUT:?}")),
            }
        })
    }

    /// Status: the runtime's conditions, e.g. `NetworkReady` → (true, "").
    pub fn conditions(&self) -> Result<HashMap<String, (bool, String)>, String> {
        let mut c = self.client.clone();
        let r = self.call("Status", c.status(StatusRequest { verbose: false }))?;
        Ok(r.status
            .map(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.r#type, (c.status, format!("{} {}", c.reason, c.message))))
            .collect())
    }

    /// RunPodSandbox: what kubelet does first for every pod. Returns the sandbox ID.
    pub fn run_pod(&self, name: &str, log_dir: &Path) -> Result<String, String> {
        self.run_pod_with_ports(name, log_dir, &[])
    }

    /// RunPodSandbox for a pod whose containers declare `hostPort`s: kubelet passes them as the
    /// sandbox's port mappings, which containerd hands to CNI as `portMappings`.
    pub fn run_pod_with_ports(
        &self,
        name: &str,
        log_dir: &Path,
        ports: &[PortMapping],
    ) -> Result<String, String> {
        let mut config = sandbox_config(name, log_dir);
        config.port_mappings = ports.to_vec();
        self.run_pod_with(config)
    }

    /// RunPodSandbox with a config of the caller's (host network, security context...).
    pub fn run_pod_with(&self, config: PodSandboxConfig) -> Result<String, String> {
        let mut c = self.client.clone();
        let name = config.metadata.as_ref().map(|m| m.name.clone());
        let req = RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        self.call(
            &format!("RunPodSandbox {}", name.unwrap_or_default()),
            c.run_pod_sandbox(req),
        )
        .map(|r| r.pod_sandbox_id)
    }

    /// Many RunPodSandbox calls in flight at once (kubelet starting a node's pods).
    pub fn run_pods_at_once(
        &self,
        names: &[String],
        log_dir: &Path,
    ) -> Vec<Result<String, String>> {
        self.rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for (i, name) in names.iter().enumerate() {
                let mut c = self.client.clone();
                let req = RunPodSandboxRequest {
                    config: Some(sandbox_config(name, log_dir)),
                    runtime_handler: String::new(),
                };
                let name = name.clone();
                set.spawn(async move {
                    let r = match tokio::time::timeout(CALL_TIMEOUT, c.run_pod_sandbox(req)).await {
                        Ok(Ok(r)) => Ok(r.into_inner().pod_sandbox_id),
                        Ok(Err(s)) => Err(format!(
                            "RunPodSandbox {name}: {}: {}",
                            s.code(),
                            s.message()
                        )),
                        Err(_) => Err(format!(
                            "RunPodSandbox {name}: no answer in {CALL_TIMEOUT:?}"
                        )),
                    };
                    (i, r)
                });
            }
            let mut out: Vec<Option<Result<String, String>>> = vec![None; names.len()];
            while let Some(joined) = set.join_next().await {
                let (i, r) = joined.expect("RunPodSandbox task panicked");
                out[i] = Some(r);
            }
            out.into_iter()
                .map(|r| r.expect("every task answered"))
                .collect()
        })
    }

    /// PodSandboxStatus (verbose, for the pause PID and the netns path).
    pub fn status(&self, id: &str) -> Result<SandboxStatus, String> {
        let mut c = self.client.clone();
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        let r = self.call(&format!("PodSandboxStatus {id}"), c.pod_sandbox_status(req))?;
        let s = r
            .status
            .ok_or_else(|| format!("PodSandboxStatus {id}: no status"))?;
        let info: serde_json::Value = r
            .info
            .get("info")
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_default();
        let netns = info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["type"] == "network"))
            .and_then(|n| n["path"].as_str())
            .map(String::from);
        Ok(SandboxStatus {
            id: s.id,
            name: s.metadata.map(|m| m.name).unwrap_or_default(),
            ready: s.state == PodSandboxState::SandboxReady as i32,
            ip: s.network.map(|n| n.ip).unwrap_or_default(),
            pid: info["pid"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
            netns,
        })
    }

    /// StopPodSandbox: tears the network down (CNI DEL).
    pub fn stop_pod(&self, id: &str) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call(&format!("StopPodSandbox {id}"), c.stop_pod_sandbox(req))
            .map(drop)
    }

    /// RemovePodSandbox (containerd 1.6 runs CNI DEL again here, without a netns).
    pub fn remove_pod(&self, id: &str) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call(&format!("RemovePodSandbox {id}"), c.remove_pod_sandbox(req))
            .map(drop)
    }

    /// CreateContainer + StartContainer: a container `name` of `image` running `command` in the
    /// sandbox `pod_id` (which was run as pod `pod_name`). Returns the container ID.
    pub fn start_container(
        &self,
        pod_id: &str,
        pod_name: &str,
        log_dir: &Path,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> Result<String, String> {
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig::default()),
            ..Default::default()
        };
        self.start_container_with(pod_id, config, sandbox_config(pod_name, log_dir))
    }

    /// CreateContainer + StartContainer with a config of the caller's, in the sandbox `pod_id`
    /// that was run with `sandbox`. Returns the container ID.
    pub fn start_container_with(
        &self,
        pod_id: &str,
        config: ContainerConfig,
        sandbox: PodSandboxConfig,
    ) -> Result<String, String> {
        let mut c = self.client.clone();
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox),
        };
        let id = self
            .call(&format!("CreateContainer {name}"), c.create_container(req))?
            .container_id;
        let req = StartContainerRequest {
            container_id: id.clone(),
        };
        self.call(&format!("StartContainer {name}"), c.start_container(req))?;
        Ok(id)
    }

    /// ContainerStatus: whether the container still runs, and its exit code once it exited.
    pub fn container_state(&self, id: &str) -> Result<ContainerRun, String> {
        let mut c = self.client.clone();
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        let s = self
            .call(&format!("ContainerStatus {id}"), c.container_status(req))?
            .status
            .ok_or_else(|| format!("ContainerStatus {id}: no status"))?;
        Ok(match ContainerState::try_from(s.state) {
            Ok(ContainerState::ContainerExited) => ContainerRun::Exited {
                code: s.exit_code,
                reason: s.reason,
            },
            Ok(ContainerState::ContainerRunning) => ContainerRun::Running,
            _ => ContainerRun::Other(s.state),
        })
    }

    /// StopContainer: SIGTERM, then SIGKILL after `grace` seconds (kubelet's
    /// terminationGracePeriodSeconds).
    pub fn stop_container(&self, id: &str, grace: i64) -> Result<(), String> {
        let mut c = self.client.clone();
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout: grace,
        };
        self.call(&format!("StopContainer {id}"), c.stop_container(req))
            .map(drop)
    }

    /// ExecSync: runs `cmd` in a container; (exit code, stdout, stderr).
    pub fn exec_sync(
        &self,
        container_id: &str,
        cmd: &[&str],
    ) -> Result<(i32, String, String), String> {
        let mut c = self.client.clone();
        let req = ExecSyncRequest {
            container_id: container_id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        };
        let r = self.call(&format!("ExecSync {cmd:?}"), c.exec_sync(req))?;
        Ok((
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        ))
    }

    /// Every sandbox the runtime knows: (ID, name).
    pub fn list_pods(&self) -> Result<Vec<(String, String)>, String> {
        let mut c = self.client.clone();
        let r = self.call(
            "ListPodSandbox",
            c.list_pod_sandbox(ListPodSandboxRequest { filter: None }),
        )?;
        Ok(r.items
            .into_iter()
            .map(|p| (p.id, p.metadata.map(|m| m.name).unwrap_or_default()))
            .collect())
    }
}
