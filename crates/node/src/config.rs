//! What a node setup is asked for (`NodeConfig`) and its checked form (`Plan`): one pod CIDR and
//! one cluster CIDR per address family, the gateway each pod CIDR puts on the bridge.

use cni::{Error, Result};
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::PathBuf;

/// Where the agent serves /healthz, /readyz and /metrics by default: the node's loopback, so
/// nothing new is exposed unless asked (docs/kubernetes.md).
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9799";
pub const DEFAULT_BRIDGE: &str = "cni0";
pub const DEFAULT_NETWORK: &str = "podwire";
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// "10-" sorts before most other CNI configs, so a runtime that takes the first file picks ours.
pub const DEFAULT_CONF_FILE: &str = "10-podwire.conflist";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/podwire";
pub const DEFAULT_SYSCTL_DIR: &str = "/proc/sys";
pub const DEFAULT_CNI_BIN_DIR: &str = "/opt/cni/bin";
/// libcni's default cache directory (containerd's CRI and Podman use it).
pub const DEFAULT_CNI_CACHE_DIR: &str = "/var/lib/cni";

/// Everything `setup` needs; paths are configurable so tests use temporary directories.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's pod CIDRs: one, or one IPv4 and one IPv6 (dual-stack).
    pub pod_cidrs: Vec<IpNet>,
    /// The cluster's pod network(s), one per family of the pod CIDRs.
    pub cluster_cidrs: Vec<IpNet>,
    pub bridge: String,
    pub network: String,
    /// The pods' MTU (`--mtu`); `None`: found from the underlay ([`crate::mtu`]).
    pub mtu: Option<u32>,
    /// Whether pods may reach peers over VXLAN (`--backend` auto or vxlan): the MTU found from
    /// the underlay leaves room for it.
    pub vxlan: bool,
    /// This node's addresses (its Node object's): the links holding them are underlay.
    pub node_addresses: Vec<IpAddr>,
    pub conf_dir: PathBuf,
    pub conf_file: String,
    pub state_dir: PathBuf,
    /// Where /proc/sys is (a container mounts the host's elsewhere).
    pub sysctl_dir: PathBuf,
    /// Where the plugins are installed (checked for `podwire-portmap`, which the list chains).
    pub cni_bin_dir: PathBuf,
    /// `ipam.dataDir` in the conflist; `None` keeps host-local's default.
    pub ipam_data_dir: Option<String>,
}

impl NodeConfig {
    pub fn new(pod_cidrs: Vec<IpNet>, cluster_cidrs: Vec<IpNet>) -> NodeConfig {
        NodeConfig {
            pod_cidrs,
            cluster_cidrs,
            bridge: DEFAULT_BRIDGE.into(),
            network: DEFAULT_NETWORK.into(),
            mtu: None,
            vxlan: true,
            node_addresses: Vec::new(),
            conf_dir: DEFAULT_CONF_DIR.into(),
            conf_file: DEFAULT_CONF_FILE.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            sysctl_dir: DEFAULT_SYSCTL_DIR.into(),
            cni_bin_dir: DEFAULT_CNI_BIN_DIR.into(),
            ipam_data_dir: None,
        }
    }
}

/// One address family's part of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyPlan {
    pub pod_cidr: IpNet,
    pub cluster_cidr: IpNet,
    /// The first address of the pod CIDR with its prefix: host-local's default gateway, which
    /// the plugin's `isGateway` puts on the bridge too (so both agree).
    pub gateway: IpNet,
}

impl FamilyPlan {
    pub fn is_v6(&self) -> bool {
        self.pod_cidr.addr().is_ipv6()
    }
}

/// A checked `NodeConfig`: IPv4 first, then IPv6.
#[derive(Clone, Debug)]
pub struct Plan {
    pub config: NodeConfig,
    pub families: Vec<FamilyPlan>,
}

impl Plan {
    pub fn new(config: NodeConfig) -> Result<Plan> {
        cni::validate::interface_name(&config.bridge)
            .map_err(|e| Error::invalid_config(format!("bridge name: {}", e.msg)))?;
        cni::validate::network_name(&config.network)
            .map_err(|e| Error::invalid_config(format!("network name: {}", e.msg)))?;
        check_file_name(&config.conf_file)?;
        if let Some(mtu) = config.mtu {
            if !(68..=65535).contains(&mtu) {
                return Err(Error::invalid_config(format!(
                    "mtu {mtu} is outside 68..=65535"
                )));
            }
        }
        let pods = by_family("pod CIDR", &config.pod_cidrs)?;
        let clusters = by_family("cluster CIDR", &config.cluster_cidrs)?;
        if pods.iter().all(Option::is_none) {
            return Err(Error::invalid_config(
                "no pod CIDR: give one (or one IPv4 and one IPv6), or read it from Kubernetes",
            ));
        }
        let mut families = Vec::new();
        for (pod, cluster) in pods.into_iter().zip(clusters) {
            // A cluster CIDR of a family this node has no pod CIDR in: nothing to route for it
            // here (a dual-stack cluster's config on a single-stack node).
            let Some(pod) = pod else {
                continue;
            };
            let Some(cluster) = cluster else {
                return Err(Error::invalid_config(format!(
                    "pod CIDR {pod} has no cluster CIDR of its family: give --cluster-cidr for it"
                )));
            };
            if !cluster.contains(&pod) {
                return Err(Error::invalid_config(format!(
                    "pod CIDR {pod} is not inside cluster CIDR {cluster}"
                )));
            }
            families.push(FamilyPlan {
                pod_cidr: pod,
                cluster_cidr: cluster,
                gateway: gateway_of(pod)?,
            });
        }
        Ok(Plan { config, families })
    }

    pub fn conf_path(&self) -> PathBuf {
        self.config.conf_dir.join(&self.config.conf_file)
    }

    pub fn gateways(&self) -> Vec<IpNet> {
        self.families.iter().map(|f| f.gateway).collect()
    }
}

/// Splits CIDRs into [IPv4, IPv6]; refuses two of one family and host bits (a typo of the prefix).
fn by_family(what: &str, cidrs: &[IpNet]) -> Result<[Option<IpNet>; 2]> {
    let mut out = [None, None];
    for &c in cidrs {
        if c.trunc() != c {
            return Err(Error::invalid_config(format!(
                "{what} {c} has host bits set (did you mean {}?)",
                c.trunc()
            )));
        }
        let slot = &mut out[usize::from(c.addr().is_ipv6())];
        if let Some(prev) = slot {
            return Err(Error::invalid_config(format!(
                "two {what}s of one family: {prev} and {c} (give at most one IPv4 and one IPv6)"
            )));
        }
        *slot = Some(c);
    }
    Ok(out)
}

fn gateway_of(pod: IpNet) -> Result<IpNet> {
    // host-local refuses to allocate from IPv4 /31 and /32, IPv6 /127 and /128.
    if pod.prefix_len() + 1 >= pod.max_prefix_len() {
        return Err(Error::invalid_config(format!(
            "pod CIDR {pod} is too small to hold a gateway and pods"
        )));
    }
    let first = match pod.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
    };
    Ok(IpNet::new(first, pod.prefix_len()).expect("prefix of a valid CIDR"))
}

fn check_file_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.contains('/')
        && !name.starts_with('.')
        && (name.ends_with(".conflist") || name.ends_with(".conf"));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_config(format!(
            "config file name {name:?} must be a plain file name ending in .conflist"
        )))
    }
}

/// Parses a CIDR argument, naming it in the error.
pub fn parse_cidr(what: &str, s: &str) -> Result<IpNet> {
    cni::addr::parse_net(s.trim()).ok_or_else(|| {
        Error::invalid_config(format!(
            "{what} {s:?} is not a CIDR (want e.g. 10.244.1.0/24){}",
            cni::addr::hint(s)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn plan(pods: &[&str], clusters: &[&str]) -> Result<Plan> {
        Plan::new(NodeConfig::new(
            pods.iter().map(|s| net(s)).collect(),
            clusters.iter().map(|s| net(s)).collect(),
        ))
    }

    #[test]
    fn single_stack_gateway_is_the_first_address() {
        let p = plan(&["10.244.1.0/24"], &["10.244.0.0/16"]).unwrap();
        assert_eq!(p.gateways(), vec![net("10.244.1.1/24")]);
        assert_eq!(
            p.conf_path(),
            PathBuf::from("/etc/cni/net.d/10-podwire.conflist")
        );
    }

    #[test]
    fn dual_stack_is_ordered_v4_then_v6_whatever_the_input_order() {
        let p = plan(
            &["fd00:10:244:1::/64", "10.244.1.0/24"],
            &["10.244.0.0/16", "fd00:10:244::/56"],
        )
        .unwrap();
        assert_eq!(
            p.gateways(),
            vec![net("10.244.1.1/24"), net("fd00:10:244:1::1/64")]
        );
        assert!(!p.families[0].is_v6() && p.families[1].is_v6());
    }

    #[test]
    fn bad_input_is_code_7_naming_the_value() {
        for (pods, clusters, needle) in [
            (&["10.244.1.0/24"][..], &["10.245.0.0/16"][..], "not inside"),
            (
                &["10.244.1.5/24"],
                &["10.244.0.0/16"],
                "did you mean 10.244.1.0/24",
            ),
            (
                &["10.244.1.0/24", "10.244.2.0/24"],
                &["10.244.0.0/16"],
                "two pod CIDRs",
            ),
            (
                &["fd00::/64"],
                &["10.244.0.0/16"],
                "fd00::/64 has no cluster CIDR",
            ),
            (&[], &["10.244.0.0/16"], "no pod CIDR"),
            (&["10.244.1.0/31"], &["10.244.0.0/16"], "too small"),
        ] {
            let e = plan(pods, clusters).unwrap_err();
            assert_eq!(e.code.number(), 7, "{e}");
            assert!(e.msg.contains(needle), "{needle}: {e}");
        }
        // A cluster CIDR of a family without a pod CIDR is not routed here.
        let p = plan(&["10.244.1.0/24"], &["fd00::/56", "10.244.0.0/16"]).unwrap();
        assert_eq!(p.families.len(), 1);
        assert_eq!(p.families[0].cluster_cidr, net("10.244.0.0/16"));
        let mut c = NodeConfig::new(vec![net("10.1.0.0/24")], vec![net("10.0.0.0/8")]);
        c.bridge = "a-bridge-name-too-long".into();
        assert!(Plan::new(c.clone())
            .unwrap_err()
            .msg
            .contains("bridge name"));
        c.bridge = "cni0".into();
        c.mtu = Some(20);
        assert!(Plan::new(c.clone()).unwrap_err().msg.contains("mtu 20"));
        c.mtu = None;
        c.conf_file = "../x.conflist".into();
        assert!(Plan::new(c).unwrap_err().msg.contains("../x.conflist"));
        assert!(parse_cidr("pod CIDR", "10.1.0.0")
            .unwrap_err()
            .msg
            .contains("\"10.1.0.0\""));
    }

    /// Octal to other tools, refused by Go's parser: refused for --pod-cidr, --cluster-cidr and a
    /// node's podCIDR from the API alike (all read here).
    #[test]
    fn leading_zero_cidrs_are_refused() {
        for s in ["010.244.1.0/24", "10.244.01.0/24"] {
            let e = parse_cidr("pod CIDR", s).unwrap_err();
            assert_eq!(e.code.number(), 7, "{s}");
            assert!(e.msg.contains("leading zero"), "{e:?}");
        }
        assert!(parse_cidr("pod CIDR", "10.244.1.0/24").is_ok());
    }
}
