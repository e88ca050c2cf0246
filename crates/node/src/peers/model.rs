//! What the agent knows: the other nodes (from Node objects) and this node (from its own Node
//! object and the kernel's addresses), and how it is asked to route.

use ipnet::IpNet;
use std::net::IpAddr;

/// A Node as the agent needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerNode {
    pub name: String,
    /// `spec.podCIDRs` (or `spec.podCIDR`); empty while none is assigned.
    pub pod_cidrs: Vec<IpNet>,
    /// `status.addresses` of type InternalIP, in the API's order.
    pub internal: Vec<IpAddr>,
    /// `status.addresses` of type ExternalIP.
    pub external: Vec<IpAddr>,
}

impl PeerNode {
    /// The node's address that carries pod traffic of `cidr`'s family: its first InternalIP of
    /// that family, else its first ExternalIP of that family.
    pub fn address_for(&self, cidr: &IpNet) -> Option<IpAddr> {
        let fam = |a: &&IpAddr| a.is_ipv4() == cidr.addr().is_ipv4();
        self.internal
            .iter()
            .find(fam)
            .or_else(|| self.external.iter().find(fam))
            .copied()
    }

    /// The pod CIDR of one family.
    pub fn pod_cidr(&self, v6: bool) -> Option<IpNet> {
        self.pod_cidrs
            .iter()
            .find(|c| c.addr().is_ipv6() == v6)
            .copied()
    }
}

/// This node as routing sees it. Its own Node object gives the VTEP's address and MAC: without
/// it no VXLAN peer can be routed, so losing it (deleted by mistake, or while the node is being
/// re-registered) must not withdraw what is in place: never disrupt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnNode {
    /// Its Node object is in the list.
    Listed(PeerNode),
    /// Its Node object is gone: the last one seen stands in until it comes back.
    Remembered(PeerNode),
    /// Not seen since the agent started (only its name is known): nothing already programmed is
    /// removed until it appears.
    Unknown(PeerNode),
}

impl OwnNode {
    /// `name`'s Node in `nodes`, else the one `last` seen, else only its name.
    pub fn find(nodes: &[PeerNode], name: &str, last: Option<&PeerNode>) -> OwnNode {
        match (nodes.iter().find(|n| n.name == name), last) {
            (Some(n), _) => OwnNode::Listed(n.clone()),
            (None, Some(l)) => OwnNode::Remembered(l.clone()),
            (None, None) => OwnNode::Unknown(PeerNode {
                name: name.to_string(),
                pod_cidrs: vec![],
                internal: vec![],
                external: vec![],
            }),
        }
    }

    pub fn node(&self) -> &PeerNode {
        match self {
            OwnNode::Listed(n) | OwnNode::Remembered(n) | OwnNode::Unknown(n) => n,
        }
    }

    /// Whether a pass may remove what is programmed (it may not while this node is unknown).
    pub fn may_remove(&self) -> bool {
        !matches!(self, OwnNode::Unknown(_))
    }

    /// What to say while the Node object is missing.
    pub fn problem(&self) -> Option<String> {
        match self {
            OwnNode::Listed(_) => None,
            OwnNode::Remembered(n) => Some(format!(
                "this node's own Node object ({}) is gone: peers stay routed as when it was last \
                 seen, until it comes back",
                n.name
            )),
            OwnNode::Unknown(n) => Some(format!(
                "this node has no Node object ({}) yet: nothing already routed is removed until \
                 it appears",
                n.name
            )),
        }
    }
}

/// An address of this node's netns with its prefix and link: what decides on-link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddress {
    pub net: IpNet,
    pub ifindex: u32,
    /// The link's MTU (the VXLAN device's MTU follows the underlay's).
    pub mtu: u32,
}

/// This node as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    /// This node's own Node object (its pod CIDRs give the VTEP MACs, its addresses the VTEP's
    /// source address).
    pub node: PeerNode,
    /// The addresses of this netns, except those on podwire's own devices (the pod bridge, the
    /// VXLAN devices): a peer is on-link when one of these prefixes holds its address.
    pub addresses: Vec<LocalAddress>,
    /// What the direct-path probes found, by peer node address: answered or not (`--backend
    /// auto`; an on-link peer not probed yet is routed directly, as before probing existed).
    pub probes: std::collections::HashMap<IpAddr, bool>,
}

impl Local {
    /// The local address whose prefix holds `ip` (the peer is on that link).
    pub fn onlink(&self, ip: IpAddr) -> Option<&LocalAddress> {
        self.addresses
            .iter()
            .filter(|a| a.net.contains(&ip) && a.net.addr() != ip)
            .max_by_key(|a| a.net.prefix_len())
    }

    /// This node's own address of one family and the link that holds it (the VXLAN underlay).
    pub fn underlay(&self, v6: bool) -> Option<(IpAddr, &LocalAddress)> {
        let probe: IpNet = if v6 {
            "::/0".parse().unwrap()
        } else {
            "0.0.0.0/0".parse().unwrap()
        };
        let ip = self.node.address_for(&probe)?;
        let link = self.addresses.iter().find(|a| a.net.addr() == ip)?;
        Some((ip, link))
    }
}

/// How to reach peers (`--backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Direct routes where the peer is on-link, VXLAN elsewhere.
    #[default]
    Auto,
    /// Direct routes only: a peer that is not on-link is left unrouted (and said so).
    Direct,
    /// VXLAN for every peer, on-link or not.
    Vxlan,
}

/// The agent's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub backend: Backend,
    pub vni: u32,
    pub port: u16,
    /// The cluster's pod network(s) (`--cluster-cidr`): only peer pod CIDRs inside one of these
    /// are routed. A family without one routes nothing, so a wrong Node object can never take
    /// the node's egress or underlay.
    pub cluster_cidrs: Vec<IpNet>,
}

impl Options {
    /// The cluster CIDR holding `cidr`, or why there is none.
    pub fn cluster_cidr_of(&self, cidr: &IpNet) -> Result<IpNet, String> {
        let same_family: Vec<&IpNet> = self
            .cluster_cidrs
            .iter()
            .filter(|c| c.addr().is_ipv6() == cidr.addr().is_ipv6())
            .collect();
        if let Some(c) = same_family.iter().find(|c| c.contains(cidr)) {
            return Ok(**c);
        }
        if same_family.is_empty() {
            return Err("no cluster CIDR of its family is configured (--cluster-cidr)".into());
        }
        let list: Vec<String> = same_family.iter().map(ToString::to_string).collect();
        Err(format!("outside the cluster CIDR {}", list.join(", ")))
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Auto,
            vni: super::DEFAULT_VNI,
            port: super::DEFAULT_VXLAN_PORT,
            cluster_cidrs: Vec::new(),
        }
    }
}
