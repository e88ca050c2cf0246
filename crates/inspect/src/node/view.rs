//! What `node show` shows: plain data, serialized as its JSON.

use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub networks: Vec<NetworkView>,
    /// The main table's unicast routes (loopback and link-local left out): those into
    /// podwire's bridges are marked `to_pods`, the others are the ways out of the node.
    pub routes: Vec<RouteView>,
    /// Tunnel devices (VXLAN, ...) and their peers.
    pub tunnels: Vec<TunnelView>,
    /// Each other node's pod CIDR the node agent routes, which way and why.
    pub peer_paths: Vec<PeerPathView>,
    /// podwire's nftables tables: the plugin's `inet podwire`, node setup's `inet podwire-node`,
    /// podwire-portmap's `inet podwire-portmap` (its rules; the mappings are elements of its maps).
    pub nftables: Vec<NftTableView>,
    /// podwire-portmap's host port mappings (the elements of its maps), with their owners.
    pub port_mappings: Vec<PortMappingView>,
    /// Configs that could not be read (each one sentence).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkView {
    pub name: String,
    pub file: Option<PathBuf>,
    pub bridge: BridgeView,
    pub ipam: IpamView,
    pub pods: Vec<PodView>,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeView {
    pub name: String,
    pub present: bool,
    pub index: Option<u32>,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub addresses: Vec<String>,
    /// Every port of the bridge, podwire's or not.
    pub ports: usize,
    /// Where the pods' MTU comes from, as node setup wrote it on the bridge
    /// (`mtu 1430 = eth0 1500 (default route) - 70 (VXLAN over IPv6)`).
    pub mtu_source: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamView {
    #[serde(rename = "type")]
    pub kind: String,
    pub data_dir: Option<PathBuf>,
    pub ranges: Vec<RangeUse>,
    /// Every allocation: address and holder (`None`: the file names no valid holder).
    pub allocations: Vec<Allocation>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub ip: IpAddr,
    #[serde(rename = "containerID")]
    pub container_id: Option<String>,
    pub ifname: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeUse {
    pub subnet: String,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: IpAddr,
    pub used: u128,
    pub size: u128,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    pub host_veth: String,
    pub host_index: u32,
    pub host_mac: Option<String>,
    /// The pod's network namespace (from the result cache, else found by the veth's peer).
    pub netns: Option<String>,
    pub pod_index: Option<u32>,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// Addresses on the pod's interface (link-local IPv6 left out).
    pub ips: Vec<String>,
    /// Routes in the pod (main table).
    pub routes: Vec<String>,
    /// What IPAM holds for this attachment.
    pub allocated: Vec<IpAddr>,
}

impl PodView {
    /// The pod's addresses without prefix.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ips
            .iter()
            .filter_map(|s| s.parse::<ipnet::IpNet>().ok().map(|n| n.addr()))
    }
}

/// Something that does not add up, and what GC (or a DEL) would do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub kind: IssueKind,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueKind {
    /// IPAM holds addresses for an attachment that has no interface on the node.
    AllocationWithoutInterface,
    /// A podwire veth whose attachment holds no address.
    VethWithoutAllocation,
    /// The runtime's cache lists an attachment that has no interface on the node.
    CacheWithoutPod,
    /// A veth on the bridge without podwire's tag (a remnant of an interrupted ADD, or not ours).
    UntaggedPort,
    /// A podwire veth whose pod end was not found.
    VethWithoutPod,
    /// The bridge of a network that has attachments is missing.
    BridgeMissing,
    /// An allocation file naming no valid holder.
    CorruptAllocation,
}

impl IssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::AllocationWithoutInterface => "allocation-without-interface",
            IssueKind::VethWithoutAllocation => "veth-without-allocation",
            IssueKind::CacheWithoutPod => "cache-without-pod",
            IssueKind::UntaggedPort => "untagged-port",
            IssueKind::VethWithoutPod => "veth-without-pod",
            IssueKind::BridgeMissing => "bridge-missing",
            IssueKind::CorruptAllocation => "corrupt-allocation",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    pub dst: String,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    /// The device's kind: `bridge`, `vxlan`, `veth`, ... `None` for a physical device.
    pub dev_kind: Option<String>,
    /// The protocol that installed the route, by name when iproute2 knows it.
    pub protocol: String,
    pub metric: Option<u32>,
    /// The route leads into one of podwire's bridges.
    pub to_pods: bool,
}

impl RouteView {
    /// `10.0.0.0/8 via 192.0.2.1 dev eth0 (vxlan) proto 99`, as `ip route` would say it;
    /// without the common protocols unless `all_protocols`.
    pub fn describe(&self, all_protocols: bool) -> String {
        let mut s = self.dst.clone();
        if let Some(g) = self.gateway {
            s += &format!(" via {g}");
        }
        if let Some(d) = &self.dev {
            s += &format!(" dev {d}");
        }
        if let Some(k) = &self.dev_kind {
            s += &format!(" ({k})");
        }
        if all_protocols
            || !matches!(
                self.protocol.as_str(),
                "kernel" | "boot" | "static" | "dhcp"
            )
        {
            s += &format!(" proto {}", self.protocol);
        }
        s
    }
}

/// One route the node agent made to another node's pod CIDR.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerPathView {
    pub dst: String,
    /// `direct via 10.0.0.2` or `VXLAN to 10.0.0.2` (the peer's VTEP, from the FDB).
    pub way: String,
    /// `on-link`, `not on-link`, `on-link, but over VXLAN: its direct path was filtered (or
    /// --backend vxlan)`.
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelView {
    pub name: String,
    pub kind: String,
    pub index: u32,
    pub up: bool,
    pub mtu: u32,
    pub addresses: Vec<String>,
    /// VXLAN: VNI, UDP port, local address.
    pub vxlan: Option<String>,
    /// The peers as the kernel knows them: FDB entries (MAC → remote endpoint) and
    /// neighbours (address → MAC) on the device.
    pub peers: Vec<String>,
}

impl TunnelView {
    /// `vxlan podwire.vxlan mtu 1450 10.244.1.0/32`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} mtu {}", self.kind, self.name, self.mtu);
        if let Some(v) = &self.vxlan {
            s += &format!(" {v}");
        }
        if !self.up {
            s += " DOWN";
        }
        for a in &self.addresses {
            s += &format!(" {a}");
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NftTableView {
    pub family: String,
    pub name: String,
    pub rules: Vec<NftRuleView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NftRuleView {
    pub chain: String,
    pub handle: u64,
    pub comment: Option<String>,
}

/// One hostPort mapping: `host_ip:host_port/protocol -> pod_ip:container_port`, and its owner.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMappingView {
    /// `None`: every address of the node.
    pub host_ip: Option<IpAddr>,
    pub protocol: String,
    pub host_port: u16,
    pub pod_ip: IpAddr,
    pub container_port: u16,
    pub network: Option<String>,
    pub container_id: Option<String>,
    pub ifname: Option<String>,
}

impl PortMappingView {
    pub fn describe(&self) -> String {
        let host = match self.host_ip {
            Some(IpAddr::V6(a)) => format!("[{a}]"),
            Some(a) => a.to_string(),
            None => "*".into(),
        };
        let pod = match self.pod_ip {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        let owner = match (&self.container_id, &self.ifname) {
            (Some(c), Some(i)) => format!("  ({}/{i})", crate::short_id(c)),
            _ => String::new(),
        };
        format!(
            "{host}:{}/{} -> {pod}:{}{owner}",
            self.host_port, self.protocol, self.container_port
        )
    }
}

impl IpamView {
    /// Whether the allocations were read (IPAM types with host-local's layout).
    pub fn kind_is_readable(&self) -> bool {
        self.data_dir.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, protocol: &str) -> RouteView {
        RouteView {
            dst: dst.into(),
            gateway: Some("192.0.2.1".parse().unwrap()),
            dev: Some("eth0".into()),
            dev_kind: None,
            protocol: protocol.into(),
            metric: None,
            to_pods: false,
        }
    }

    #[test]
    fn a_route_reads_as_ip_route_says_it_and_hides_only_the_common_protocols() {
        assert_eq!(
            route("default", "boot").describe(false),
            "default via 192.0.2.1 dev eth0"
        );
        assert_eq!(
            route("default", "boot").describe(true),
            "default via 192.0.2.1 dev eth0 proto boot"
        );
        assert_eq!(
            route("10.244.2.0/24", "podwire").describe(false),
            "10.244.2.0/24 via 192.0.2.1 dev eth0 proto podwire"
        );
    }

    #[test]
    fn a_tunnel_says_its_vxlan_parameters_and_when_it_is_down() {
        let t = TunnelView {
            name: "podwire.vxlan".into(),
            kind: "vxlan".into(),
            index: 7,
            up: false,
            mtu: 1450,
            addresses: vec!["10.244.1.0/32".into()],
            vxlan: Some("vni 1 port 8472".into()),
            peers: vec![],
        };
        assert_eq!(
            t.describe(),
            "vxlan podwire.vxlan mtu 1450 vni 1 port 8472 DOWN 10.244.1.0/32"
        );
    }

    #[test]
    fn a_port_mapping_brackets_ipv6_and_names_its_owner_by_short_id() {
        let m = PortMappingView {
            host_ip: Some("fd00::1".parse().unwrap()),
            protocol: "udp".into(),
            host_port: 53,
            pod_ip: "fd00:244::5".parse().unwrap(),
            container_port: 5353,
            network: Some("podwire".into()),
            container_id: Some("0123456789abcdef0123".into()),
            ifname: Some("eth0".into()),
        };
        assert_eq!(
            m.describe(),
            "[fd00::1]:53/udp -> [fd00:244::5]:5353  (0123456789ab/eth0)"
        );
        let any = PortMappingView {
            host_ip: None,
            container_id: None,
            ..m
        };
        assert!(any.describe().starts_with("*:53/udp"), "{}", any.describe());
    }

    #[test]
    fn a_pods_addresses_are_its_prefixes_without_length_and_garbage_is_skipped() {
        let p = PodView {
            container_id: "c".into(),
            ifname: "eth0".into(),
            host_veth: "veth0".into(),
            host_index: 3,
            host_mac: None,
            netns: None,
            pod_index: None,
            mac: None,
            mtu: None,
            ips: vec![
                "10.244.1.5/24".into(),
                "nonsense".into(),
                "fd00::5/64".into(),
            ],
            routes: vec![],
            allocated: vec![],
        };
        let addrs: Vec<IpAddr> = p.addrs().collect();
        assert_eq!(
            addrs,
            vec![
                "10.244.1.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
    }
}
