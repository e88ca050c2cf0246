//! This node's pod CIDR(s) from the API server, as configure.sh reads `spec.podCIDR`: through the
//! in-cluster service account or a kubeconfig, retrying with backoff while the controller-manager
//! has not assigned one yet (a node is registered before it gets a podCIDR).
//!
//! kube's client is async; it runs on a current-thread tokio runtime made for the call, so the
//! rest of podwire (and every plugin) stays free of async.

use cni::{Error, Result};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The pod CIDRs of a Node object as the API server returns it: `spec.podCIDRs` (dual-stack,
/// IPv4 or IPv6 first as the cluster is configured), else the older single `spec.podCIDR`.
/// `Ok(None)` while none is assigned.
pub fn pod_cidrs_of(node: &Node) -> Result<Option<Vec<IpNet>>> {
    let name = node.metadata.name.as_deref().unwrap_or("(unnamed)");
    let Some(spec) = &node.spec else {
        return Ok(None);
    };
    let listed: Vec<&str> = match &spec.pod_cidrs {
        Some(list) if list.iter().any(|s| !s.is_empty()) => {
            list.iter().map(String::as_str).collect()
        }
        _ => spec.pod_cidr.as_deref().into_iter().collect(),
    };
    let listed: Vec<&str> = listed.into_iter().filter(|s| !s.is_empty()).collect();
    if listed.is_empty() {
        return Ok(None);
    }
    let cidrs = listed
        .iter()
        .map(|s| crate::config::parse_cidr(&format!("node {name}: podCIDR"), s))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(cidrs))
}

/// A Node as the multi-node agent sees it: name, pod CIDRs (none while unassigned, or when
/// unreadable: such a node is not routed), InternalIP and ExternalIP addresses.
pub fn peer_of(node: &Node) -> crate::peers::PeerNode {
    let mut peer = crate::peers::PeerNode {
        name: node.metadata.name.clone().unwrap_or_default(),
        pod_cidrs: pod_cidrs_of(node).ok().flatten().unwrap_or_default(),
        internal: vec![],
        external: vec![],
    };
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    for a in addresses.into_iter().flatten() {
        let Ok(ip) = a.address.parse::<std::net::IpAddr>() else {
            continue;
        };
        match a.type_.as_str() {
            "InternalIP" => peer.internal.push(ip),
            "ExternalIP" => peer.external.push(ip),
            _ => {}
        }
    }
    peer
}

/// How to reach the API server and how long to wait for a podCIDR.
#[derive(Clone, Debug)]
pub struct Fetch {
    pub node: String,
    /// `None`: in-cluster service account, else $KUBECONFIG or ~/.kube/config (kube's inference).
    pub kubeconfig: Option<PathBuf>,
    /// Give up after this long without a podCIDR; `None` waits as long as it takes.
    pub wait: Option<Duration>,
    /// First retry delay; doubled up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Fetch {
    pub fn new(node: impl Into<String>) -> Fetch {
        Fetch {
            node: node.into(),
            kubeconfig: None,
            wait: None,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// The retry delays: `first`, doubled each time, capped at `max`.
pub fn backoff(first: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(first), move |d| Some((*d * 2).min(max)))
}

/// This machine's node name as kubelet registers it by default: the hostname in lower case.
pub fn default_node_name() -> Result<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| Error::io(format!("read the hostname for the node name: {e}")))?;
    Ok(raw.trim().to_lowercase())
}

/// Reads the node's pod CIDRs, waiting (with backoff) until one is assigned. Failures that
/// waiting cannot fix (no such node, no permission, no config) end it at once; others (API
/// server unreachable) are retried like a missing podCIDR. `log` hears about each wait.
pub fn fetch_pod_cidrs(f: &Fetch, log: &mut dyn FnMut(&str)) -> Result<Vec<IpNet>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("start the Kubernetes client: {e}")))?;
    rt.block_on(fetch_async(f, log))
}

async fn fetch_async(f: &Fetch, log: &mut dyn FnMut(&str)) -> Result<Vec<IpNet>> {
    let client = client(f).await?;
    let api: kube::Api<Node> = kube::Api::all(client);
    let start = Instant::now();
    let mut delays = backoff(f.first_delay, f.max_delay);
    loop {
        let why = match api.get(&f.node).await {
            Ok(node) => match pod_cidrs_of(&node)? {
                Some(cidrs) => return Ok(cidrs),
                None => format!(
                    "node {} has no podCIDR yet (the controller-manager assigns it when it runs \
                     with --allocate-node-cidrs)",
                    f.node
                ),
            },
            Err(kube::Error::Api(s)) if matches!(s.code, 401 | 403 | 404) => {
                return Err(api_error(&f.node, s.code, &s.message))
            }
            Err(e) => format!("cannot read node {} yet: {e}", f.node),
        };
        if f.wait.is_some_and(|w| start.elapsed() >= w) {
            return Err(Error::try_again_later(format!(
                "{why}; gave up after {}s",
                start.elapsed().as_secs()
            )));
        }
        let delay = delays.next().expect("endless");
        log(&format!("{why}; retrying in {}s", delay.as_secs_f32()));
        tokio::time::sleep(delay).await;
    }
}

pub(crate) async fn client(f: &Fetch) -> Result<kube::Client> {
    let config = match &f.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                Error::invalid_config(format!("kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| Error::invalid_config(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            Error::invalid_config(format!(
                "no Kubernetes API config (not in a pod with a service account, no $KUBECONFIG \
                 or ~/.kube/config; or pass --kubeconfig): {e}"
            ))
        })?,
    };
    kube::Client::try_from(config)
        .map_err(|e| Error::invalid_config(format!("Kubernetes client: {e}")))
}

fn api_error(node: &str, code: u16, message: &str) -> Error {
    match code {
        404 => Error::invalid_config(format!(
            "node {node:?} does not exist in the API server (--node must be the name `kubectl get \
             nodes` shows): {message}"
        )),
        _ => Error::invalid_config(format!(
            "not allowed to read node {node:?} (HTTP {code}): the service account needs `get` on \
             nodes, as the ClusterRole in deploy/podwire.yaml grants: {message}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d: Vec<u64> = backoff(Duration::from_secs(1), Duration::from_secs(30))
            .take(7)
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn api_errors_say_what_to_fix() {
        assert!(api_error("n1", 404, "x").msg.contains("kubectl get nodes"));
        assert!(api_error("n1", 403, "x").msg.contains("ClusterRole"));
    }
}
