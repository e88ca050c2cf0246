//! What the agent is asked to do, typed: the CLI builds it from its flags, the agent never sees
//! them.

use crate::config::NodeConfig;
use crate::peers::Options;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Enforce NetworkPolicy (watch Pods, Namespaces, NetworkPolicies; keep the policy table).
    /// Off: the table is removed and every pod can reach every pod.
    pub network_policy: bool,
    /// How the policy compiler logs drops.
    pub policy: policy::Options,
}

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
            network_policy: true,
            policy: policy::Options::default(),
        }
    }
}
