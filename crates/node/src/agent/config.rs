//! What the agent is asked to do, typed: the CLI builds it from its flags, the agent never sees
//! them.

use crate::config::NodeConfig;
use crate::peers::Options;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::DEFAULT_CNI_CACHE_DIR;

/// The node agent's settings.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// This node's name in Kubernetes; `None`: the hostname in lower case, as kubelet's.
    pub node: Option<String>,
    /// `None`: the in-cluster service account, else $KUBECONFIG or ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    /// This node's setup with its pod CIDRs left empty: they come from its Node object.
    pub setup: NodeConfig,
    /// How peers are routed.
    pub routing: Options,
    /// Between two full passes (node setup re-applied, every route checked against the kernel).
    pub resync: Duration,
    /// How long the API server keeps one Node watch open before the agent renews it.
    pub watch_timeout: Duration,
    /// libcni's cache directory (holding `results/`), where hostPort mappings are put back from.
    pub cni_cache_dir: PathBuf,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None`: nowhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Tests only: SIGUSR2 stops the kernel watch (so a test sees `/healthz` fail).
    pub test_hooks: bool,
    /// Enforce NetworkPolicy (watch Pods, Namespaces, NetworkPolicies; keep the policy table).
    /// Off: the table is removed and every pod can reach every pod.
    pub network_policy: bool,
    /// How the policy compiler logs drops.
    pub policy: policy::Options,
}

pub use crate::config::DEFAULT_METRICS_ADDR;

impl AgentConfig {
    /// Defaults for everything but the cluster's pod network(s).
    pub fn new(setup: NodeConfig) -> AgentConfig {
        AgentConfig {
            node: None,
            kubeconfig: None,
            setup,
            routing: Options::default(),
            resync: Duration::from_secs(60),
            watch_timeout: Duration::from_secs(290),
            cni_cache_dir: PathBuf::from(DEFAULT_CNI_CACHE_DIR),
            metrics_addr: DEFAULT_METRICS_ADDR.parse().ok(),
            test_hooks: false,
            network_policy: true,
            policy: policy::Options::default(),
        }
    }
}
