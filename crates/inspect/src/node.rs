//! The node at a glance: each podwire network's bridge and its ports, the pods behind them,
//! IPAM use per range, the routes that leave the node, podwire's nftables rules, and what does
//! not add up (an allocation with no interface, a veth with no allocation, a cached
//! attachment with no pod). Everything is read on the spot from the kernel, the IPAM state
//! directory and the result cache; the configs (through `NETCONFPATH`) say where to look.

use bridge::config::Config;
use bridge::names;
use ipam::store::Owner;
use kernel::nft::{Nftables, Table};
use kernel::{IpFamily, Link, Netlink, Netns};
use runtime::{Cache, CacheEntry, NetworkConfigList};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The plugin type whose attachments this view understands.
pub const PLUGIN: &str = "podwire";

/// Where to read from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub netconfpath: PathBuf,
    pub cache_dir: PathBuf,
    /// Only this network (it must be a podwire network).
    pub network: Option<String>,
}

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

/// podwire-portmap's mappings, read from its maps (none when the table does not exist).
fn port_mappings(nft: &Nftables) -> Vec<PortMappingView> {
    let table = portmap::ruleset::table();
    let mut out = Vec::new();
    for map in portmap::ruleset::MapKind::ALL {
        let Ok(elements) = nft.elements(&table, map.name()) else {
            continue;
        };
        for el in &elements {
            let Some(hp) = portmap::ruleset::decode(map, el) else {
                continue;
            };
            let owner = hp.tag.as_deref().and_then(portmap::parse_tag);
            out.push(PortMappingView {
                host_ip: hp.host_ip,
                protocol: match hp.protocol {
                    6 => "tcp".into(),
                    17 => "udp".into(),
                    132 => "sctp".into(),
                    n => n.to_string(),
                },
                host_port: hp.host_port,
                pod_ip: hp.pod_ip,
                container_port: hp.container_port,
                network: owner.map(|o| o.0.to_string()),
                container_id: owner.map(|o| o.1.to_string()),
                ifname: owner.map(|o| o.2.to_string()),
            });
        }
    }
    out.sort_by_key(|m| (m.host_port, m.protocol.clone(), m.pod_ip));
    out
}

/// podwire's nftables tables.
pub fn nft_tables() -> [Table; 3] {
    [
        bridge::masq::table(),
        kernel::owned::node_table(),
        portmap::ruleset::table(),
    ]
}

fn mac(m: Option<kernel::MacAddr>) -> Option<String> {
    m.map(|m| m.to_string())
}

fn kernel_err(e: kernel::Error) -> String {
    e.to_string()
}

/// The podwire networks under `netconfpath` (one named network, or all).
pub fn podwire_networks(
    netconfpath: &Path,
    only: Option<&str>,
) -> crate::Result<(Vec<NetworkConfigList>, Vec<String>)> {
    if let Some(name) = only {
        let list = runtime::load_network(netconfpath, name).map_err(|e| e.to_string())?;
        if !list.plugins.iter().any(|p| p.kind == PLUGIN) {
            return Err(format!(
                "network {name:?} has no {PLUGIN:?} plugin: nothing of it to show"
            ));
        }
        return Ok((vec![list], Vec::new()));
    }
    let mut lists = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for l in runtime::conf::list_networks(netconfpath).map_err(|e| e.to_string())? {
        match l {
            // The first file of a name wins, as in libcni.
            Ok(l) if l.plugins.iter().any(|p| p.kind == PLUGIN) && seen.insert(l.name.clone()) => {
                lists.push(l)
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    Ok((lists, errors))
}

/// The podwire plugin's config as the plugin sees it (name and cniVersion from the list).
pub fn plugin_config(list: &NetworkConfigList) -> crate::Result<(cni::NetConf, Config)> {
    let plugin = list
        .plugins
        .iter()
        .find(|p| p.kind == PLUGIN)
        .ok_or_else(|| format!("network {:?} has no {PLUGIN:?} plugin", list.name))?;
    let bytes = runtime::build_plugin_config(list, plugin, None, None);
    let conf = cni::NetConf::parse(&bytes).map_err(|e| e.to_string())?;
    let config = Config::from_netconf(&conf).map_err(|e| e.to_string())?;
    Ok((conf, config))
}

/// Reads the node.
pub fn show(src: &Sources) -> crate::Result<NodeView> {
    let (lists, mut errors) = podwire_networks(&src.netconfpath, src.network.as_deref())?;
    let host = Netlink::new().map_err(kernel_err)?;
    let links = host.links().map_err(kernel_err)?;
    let cache = Cache::new(&src.cache_dir);
    let cached = cache.attachments(None).unwrap_or_else(|e| {
        errors.push(format!("result cache {}: {e}", src.cache_dir.display()));
        Vec::new()
    });
    let mut networks = Vec::new();
    for list in &lists {
        match network(list, &host, &links, &cached) {
            Ok(n) => networks.push(n),
            Err(e) => errors.push(format!("network {:?}: {e}", list.name)),
        }
    }
    let bridges: BTreeSet<u32> = networks.iter().filter_map(|n| n.bridge.index).collect();
    let routes = routes(&host, &links, &bridges)?;
    let tunnels = tunnels(&host, &links);
    let peer_paths = peer_paths(&host, &links, &routes);
    let nft = Nftables::new();
    let port_mappings = nft.as_ref().map(port_mappings).unwrap_or_default();
    let nftables = match nft {
        Ok(nft) => nft_tables()
            .iter()
            .filter_map(|t| {
                let rules = nft.rules(t).ok()?;
                Some(NftTableView {
                    family: t.family.to_string(),
                    name: t.name.clone(),
                    rules: rules
                        .into_iter()
                        .map(|r| NftRuleView {
                            chain: r.chain,
                            handle: r.handle,
                            comment: r.tag,
                        })
                        .collect(),
                })
            })
            .filter(|t| !t.rules.is_empty())
            .collect(),
        Err(e) => {
            errors.push(format!("nftables: {e}"));
            Vec::new()
        }
    };
    Ok(NodeView {
        networks,
        routes,
        tunnels,
        peer_paths,
        nftables,
        port_mappings,
        errors,
    })
}

fn addresses(nl: &Netlink, index: u32) -> Vec<String> {
    nl.addresses(Some(index), None)
        .unwrap_or_default()
        .iter()
        .filter(|a| !is_link_local(a.net.addr()))
        .map(|a| a.net.to_string())
        .collect()
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

fn network(
    list: &NetworkConfigList,
    host: &Netlink,
    links: &[Link],
    cached: &[CacheEntry],
) -> crate::Result<NetworkView> {
    let (conf, config) = plugin_config(list)?;
    let net = &list.name;
    let br = links.iter().find(|l| l.name == config.bridge.bridge);
    let bridge = BridgeView {
        name: config.bridge.bridge.clone(),
        present: br.is_some(),
        index: br.map(|b| b.index),
        mac: br.and_then(|b| mac(b.mac)),
        mtu: br.map(|b| b.mtu),
        up: br.is_some_and(|b| b.up),
        addresses: br.map(|b| addresses(host, b.index)).unwrap_or_default(),
        ports: br
            .map(|b| links.iter().filter(|l| l.master == Some(b.index)).count())
            .unwrap_or(0),
        mtu_source: br
            .and_then(|b| b.alias.as_deref())
            .and_then(|a| a.strip_prefix(kernel::owned::MTU_ALIAS_PREFIX))
            .map(str::to_string),
    };
    let ipam = ipam_view(&conf, &config)?;
    let cached: Vec<&CacheEntry> = cached.iter().filter(|c| c.network_name == *net).collect();
    let mut pods = Vec::new();
    let mut issues = Vec::new();
    for link in links {
        let Some((cid, ifname)) = link.alias.as_deref().and_then(|a| names::parse_tag(a, net))
        else {
            continue;
        };
        let entry = cached
            .iter()
            .find(|c| c.container_id == cid && c.ifname == ifname);
        let pod = pod_view(link, cid, ifname, entry.copied(), &ipam);
        if pod.pod_index.is_none() {
            issues.push(Issue {
                kind: IssueKind::VethWithoutPod,
                container_id: cid.into(),
                ifname: ifname.into(),
                detail: format!("host veth {} has no pod end that could be found", link.name),
            });
        }
        pods.push(pod);
    }
    pods.sort_by(|a, b| (&a.container_id, &a.ifname).cmp(&(&b.container_id, &b.ifname)));
    if let Some(b) = br {
        for l in links
            .iter()
            .filter(|l| l.master == Some(b.index) && l.kind.as_deref() == Some("veth"))
            .filter(|l| l.alias.is_none())
        {
            issues.push(Issue {
                kind: IssueKind::UntaggedPort,
                container_id: String::new(),
                ifname: String::new(),
                detail: format!(
                    "veth {} on {} carries no podwire tag (an interrupted ADD leaves one; DEL of its attachment removes it)",
                    l.name, b.name
                ),
            });
        }
    }
    let has_pod = |cid: &str, ifname: &str| {
        pods.iter()
            .any(|p| p.container_id == cid && (ifname.is_empty() || p.ifname == ifname))
    };
    // Allocations by holder.
    let mut held: BTreeMap<(String, String), Vec<IpAddr>> = BTreeMap::new();
    for a in &ipam.allocations {
        match (&a.container_id, &a.ifname) {
            (Some(c), Some(i)) => held.entry((c.clone(), i.clone())).or_default().push(a.ip),
            _ => issues.push(Issue {
                kind: IssueKind::CorruptAllocation,
                container_id: String::new(),
                ifname: String::new(),
                detail: format!("{} is taken by a file naming no valid holder", a.ip),
            }),
        }
    }
    for ((cid, ifname), ips) in &held {
        if !has_pod(cid, ifname) {
            issues.push(Issue {
                kind: IssueKind::AllocationWithoutInterface,
                container_id: cid.clone(),
                ifname: ifname.clone(),
                detail: format!(
                    "{} held with no interface on the node (GC releases it once the runtime no longer lists the attachment)",
                    join(ips)
                ),
            });
        }
    }
    if ipam.kind_is_readable() {
        for p in &pods {
            if p.allocated.is_empty() {
                issues.push(Issue {
                    kind: IssueKind::VethWithoutAllocation,
                    container_id: p.container_id.clone(),
                    ifname: p.ifname.clone(),
                    detail: format!(
                        "host veth {} has no address allocated in {} (pod addresses: {})",
                        p.host_veth,
                        ipam.data_dir
                            .as_deref()
                            .map(|d| d.join(net).display().to_string())
                            .unwrap_or_default(),
                        if p.ips.is_empty() {
                            "none".into()
                        } else {
                            p.ips.join(", ")
                        }
                    ),
                });
            }
        }
    }
    for c in &cached {
        if !has_pod(&c.container_id, &c.ifname) {
            issues.push(Issue {
                kind: IssueKind::CacheWithoutPod,
                container_id: c.container_id.clone(),
                ifname: c.ifname.clone(),
                detail: format!(
                    "the result cache lists it (netns {}) but the node has no interface for it (GC would DEL it)",
                    if c.netns.is_empty() { "?" } else { &c.netns }
                ),
            });
        }
    }
    if !bridge.present && !pods.is_empty() {
        issues.push(Issue {
            kind: IssueKind::BridgeMissing,
            container_id: String::new(),
            ifname: String::new(),
            detail: format!("bridge {} is missing", bridge.name),
        });
    }
    Ok(NetworkView {
        name: net.clone(),
        file: list.file.clone(),
        bridge,
        ipam,
        pods,
        issues,
    })
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl IpamView {
    /// Whether the allocations were read (IPAM types with host-local's layout).
    pub fn kind_is_readable(&self) -> bool {
        self.data_dir.is_some()
    }
}

/// IPAM types whose state is host-local's directory layout.
fn reads_like_host_local(kind: &str) -> bool {
    kind == bridge::config::IN_PROCESS_IPAM || kind == "host-local"
}

fn ipam_view(conf: &cni::NetConf, config: &Config) -> crate::Result<IpamView> {
    let kind = config.ipam.kind.clone();
    if !reads_like_host_local(&kind) {
        return Ok(IpamView {
            kind,
            data_dir: None,
            ranges: Vec::new(),
            allocations: Vec::new(),
        });
    }
    let cfg =
        ipam::config::load(&config.ipam, conf, &Default::default()).map_err(|e| e.to_string())?;
    let allocations = ipam::store::read_allocations(&cfg.store).map_err(|e| e.to_string())?;
    let ranges = cfg
        .range_sets
        .iter()
        .flat_map(|set| set.ranges.iter())
        .map(|r| RangeUse {
            subnet: r.subnet.to_string(),
            start: r.start,
            end: r.end,
            gateway: r.gateway,
            used: allocations.iter().filter(|(ip, _)| r.contains(*ip)).count() as u128,
            size: r.size(),
        })
        .collect();
    Ok(IpamView {
        kind,
        data_dir: Some(cfg.store.data_dir.clone()),
        ranges,
        allocations: allocations
            .into_iter()
            .map(|(ip, owner)| Allocation {
                ip,
                container_id: owner.as_ref().map(|o| o.container_id.clone()),
                ifname: owner.map(|o: Owner| o.ifname),
            })
            .collect(),
    })
}

/// The pod's netns as the cache recorded it: the entry's netns, else the result's sandbox.
fn cached_netns(entry: &CacheEntry) -> Option<String> {
    if !entry.netns.is_empty() {
        return Some(entry.netns.clone());
    }
    let ifaces = entry.result.as_ref()?.get("interfaces")?.as_array()?;
    ifaces.iter().find_map(|i| {
        let sandbox = i.get("sandbox")?.as_str()?;
        (i.get("name")?.as_str()? == entry.ifname && !sandbox.is_empty())
            .then(|| sandbox.to_string())
    })
}

/// The pod end of `host` in `ns`, if it is there: a veth whose peer is `host`.
fn pod_end(ns: &Netns, host: &Link, ifname: Option<&str>) -> Option<(Netlink, Link)> {
    let nl = Netlink::new_in(ns).ok()?;
    let link = match ifname {
        Some(n) => nl.link(n).ok()?,
        None => nl.link(host.peer_index?).ok()?,
    };
    (link.kind.as_deref() == Some("veth") && link.peer_index == Some(host.index))
        .then_some((nl, link))
}

/// Finds the pod end: through the cached netns first, else by trying the named namespaces.
fn find_pod(
    host: &Link,
    ifname: &str,
    entry: Option<&CacheEntry>,
) -> Option<(String, Netlink, Link)> {
    if let Some(path) = entry.and_then(cached_netns) {
        if let Ok(ns) = Netns::open(&path) {
            if let Some((nl, l)) = pod_end(&ns, host, Some(ifname)) {
                return Some((path, nl, l));
            }
        }
    }
    host.peer_netnsid?;
    for name in Netns::list().unwrap_or_default() {
        let path = Path::new(kernel::netns::NETNS_RUN_DIR).join(&name);
        let Ok(ns) = Netns::open(&path) else { continue };
        if let Some((nl, l)) = pod_end(&ns, host, None) {
            return Some((path.display().to_string(), nl, l));
        }
    }
    None
}

fn pod_view(
    host: &Link,
    cid: &str,
    ifname: &str,
    entry: Option<&CacheEntry>,
    ipam: &IpamView,
) -> PodView {
    let found = find_pod(host, ifname, entry);
    let (netns, pod_index, pod_mac, mtu, ips, routes) = match &found {
        Some((path, nl, l)) => (
            Some(path.clone()),
            Some(l.index),
            mac(l.mac),
            Some(l.mtu),
            addresses(nl, l.index),
            pod_routes(nl, l),
        ),
        None => (None, None, None, None, Vec::new(), Vec::new()),
    };
    PodView {
        container_id: cid.into(),
        ifname: found
            .as_ref()
            .map(|(_, _, l)| l.name.clone())
            .unwrap_or_else(|| ifname.to_string()),
        host_veth: host.name.clone(),
        host_index: host.index,
        host_mac: mac(host.mac),
        netns,
        pod_index,
        mac: pod_mac,
        mtu,
        ips,
        routes,
        allocated: ipam
            .allocations
            .iter()
            .filter(|a| {
                a.container_id.as_deref() == Some(cid) && a.ifname.as_deref() == Some(ifname)
            })
            .map(|a| a.ip)
            .collect(),
    }
}

fn pod_routes(nl: &Netlink, l: &Link) -> Vec<String> {
    let mut out = Vec::new();
    for fam in [IpFamily::V4, IpFamily::V6] {
        for r in nl.routes(fam).unwrap_or_default() {
            if r.table != kernel::TABLE_MAIN || r.kind != kernel::route_type::UNICAST {
                continue;
            }
            if r.oif != Some(l.index) || is_link_local(r.dst.addr()) {
                continue;
            }
            out.push(match r.gateway {
                Some(gw) => format!("{} via {gw}", r.dst),
                None => format!("{} dev {}", r.dst, l.name),
            });
        }
    }
    out
}

/// Protocol names as iproute2 knows them (`/etc/iproute2/rt_protos` and `rt_protos.d`), so a
/// custom number (e.g. the one multi-node routes carry) shows by its name.
fn protocol_names() -> BTreeMap<u8, String> {
    let mut names: BTreeMap<u8, String> = [
        (0, "unspec"),
        (1, "redirect"),
        (2, "kernel"),
        (3, "boot"),
        (4, "static"),
        (16, "dhcp"),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.to_string()))
    .collect();
    // The multi-node agent's routes, unless iproute2 has a name of its own for the number.
    names.insert(kernel::owned::ROUTE_PROTOCOL, "podwire".into());
    let mut files = Vec::new();
    for dir in ["/usr/share/iproute2", "/usr/lib/iproute2", "/etc/iproute2"] {
        files.push(Path::new(dir).join("rt_protos"));
        if let Ok(d) = std::fs::read_dir(Path::new(dir).join("rt_protos.d")) {
            files.extend(d.flatten().map(|e| e.path()));
        }
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let mut it = line.split_whitespace();
            if let (Some(n), Some(name)) = (it.next(), it.next()) {
                if let Ok(n) = n.parse::<u8>() {
                    names.insert(n, name.to_string());
                }
            }
        }
    }
    names
}

fn routes(
    host: &Netlink,
    links: &[Link],
    bridges: &BTreeSet<u32>,
) -> crate::Result<Vec<RouteView>> {
    let protos = protocol_names();
    let mut out = Vec::new();
    for fam in [IpFamily::V4, IpFamily::V6] {
        for r in &host.routes(fam).map_err(kernel_err)? {
            if r.table != kernel::TABLE_MAIN || r.kind != kernel::route_type::UNICAST {
                continue;
            }
            let dev = r.oif.and_then(|i| links.iter().find(|l| l.index == i));
            if dev.is_some_and(|d| d.name == "lo") || is_link_local(r.dst.addr()) {
                continue;
            }
            let to_pods = r.oif.is_some_and(|i| bridges.contains(&i));
            out.push(RouteView {
                dst: if r.dst.prefix_len() == 0 {
                    "default".into()
                } else {
                    r.dst.to_string()
                },
                gateway: r.gateway,
                dev: dev.map(|d| d.name.clone()),
                dev_kind: dev.and_then(|d| d.kind.clone()),
                protocol: protos
                    .get(&r.protocol)
                    .cloned()
                    .unwrap_or_else(|| r.protocol.to_string()),
                metric: r.metric,
                to_pods,
            });
        }
    }
    Ok(out)
}

/// FDB entries (`MAC dst REMOTE`) and neighbours (`IP lladdr MAC`) of a tunnel device.
fn peers(host: &Netlink, index: u32) -> Vec<String> {
    let mut out: Vec<String> = host
        .fdb_entries(index)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.dst.map(|d| format!("{} dst {d}", f.mac)))
        .collect();
    for fam in [IpFamily::V4, IpFamily::V6] {
        for n in host.neighbours(fam, Some(index)).unwrap_or_default() {
            if n.ip.is_multicast() || is_link_local(n.ip) {
                continue;
            }
            if let Some(m) = n.mac {
                out.push(format!("{} lladdr {m}", n.ip));
            }
        }
    }
    out
}

/// A route protocol's name (`kernel`, `boot`, a custom name from iproute2's files), else its
/// number.
pub fn protocol_name(n: u8) -> String {
    protocol_names().remove(&n).unwrap_or_else(|| n.to_string())
}

/// The node agent's routes (its protocol) to other nodes' pod CIDRs, which way and why: a
/// VXLAN route's VTEP is found through its next hop's neighbour entry and the FDB; whether a
/// peer is on-link, from this node's addresses (podwire's own devices and bridges left out).
fn peer_paths(host: &Netlink, links: &[Link], routes: &[RouteView]) -> Vec<PeerPathView> {
    let ours = protocol_name(kernel::owned::ROUTE_PROTOCOL);
    let own_nets: Vec<ipnet::IpNet> = host
        .addresses(None, None)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| {
            links.iter().any(|l| {
                l.index == a.index
                    && l.kind.as_deref() != Some("vxlan")
                    && l.kind.as_deref() != Some("bridge")
                    && l.name != "lo"
            })
        })
        .map(|a| a.net)
        .collect();
    let onlink = |ip: IpAddr| own_nets.iter().any(|n| n.contains(&ip) && n.addr() != ip);
    routes
        .iter()
        .filter(|r| r.protocol == ours)
        .map(|r| {
            let vxlan = r.dev_kind.as_deref() == Some("vxlan");
            let vtep = if vxlan { vtep_of(host, links, r) } else { None };
            let (way, why) = match (vxlan, r.gateway, vtep) {
                (false, Some(g), _) => (
                    format!("direct via {g}"),
                    if onlink(g) { "on-link" } else { "direct" }.to_string(),
                ),
                (true, _, Some(v)) if onlink(v) => (
                    format!("VXLAN to {v}"),
                    "on-link, but over VXLAN: its direct path was filtered (a probe from this \
                     node's pod gateway was not answered), or --backend vxlan"
                        .to_string(),
                ),
                (true, _, Some(v)) => (format!("VXLAN to {v}"), "not on-link".to_string()),
                _ => (r.describe(false), "?".to_string()),
            };
            PeerPathView {
                dst: r.dst.clone(),
                way,
                why,
            }
        })
        .collect()
}

fn vtep_of(host: &Netlink, links: &[Link], r: &RouteView) -> Option<IpAddr> {
    let dev = links.iter().find(|l| Some(&l.name) == r.dev.as_ref())?;
    let hop = r.gateway?;
    let fam = if hop.is_ipv6() {
        IpFamily::V6
    } else {
        IpFamily::V4
    };
    let mac = host
        .neighbours(fam, Some(dev.index))
        .ok()?
        .into_iter()
        .find(|n| n.ip == hop)?
        .mac?;
    host.fdb_entries(dev.index)
        .ok()?
        .into_iter()
        .find(|e| e.mac == mac)?
        .dst
}

/// Kinds of device that carry pod traffic to other nodes.
const TUNNEL_KINDS: &[&str] = &["vxlan", "geneve", "wireguard", "ipip", "gre", "sit"];

fn tunnels(host: &Netlink, links: &[Link]) -> Vec<TunnelView> {
    links
        .iter()
        .filter(|l| l.kind.as_deref().is_some_and(|k| TUNNEL_KINDS.contains(&k)))
        .map(|l| TunnelView {
            name: l.name.clone(),
            kind: l.kind.clone().unwrap_or_default(),
            index: l.index,
            up: l.up,
            mtu: l.mtu,
            addresses: addresses(host, l.index),
            vxlan: l.vxlan.as_ref().map(|v| {
                format!(
                    "vni {} port {}{}",
                    v.vni,
                    v.port,
                    v.local.map(|a| format!(" local {a}")).unwrap_or_default()
                )
            }),
            peers: peers(host, l.index),
        })
        .collect()
}

/// The node as text: the way out, then each network's bridge, IPAM use, pods and issues.
pub fn render(v: &NodeView) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let outs: Vec<&RouteView> = v.routes.iter().filter(|r| !r.to_pods).collect();
    s.push_str("way out of the node:\n");
    if outs.is_empty() {
        s.push_str("  (no route leaves the node)\n");
    }
    for r in outs {
        let _ = writeln!(s, "  {}", r.describe(true));
    }
    for t in &v.tunnels {
        let _ = writeln!(s, "  tunnel {}", t.describe());
        for p in &t.peers {
            let _ = writeln!(s, "    peer {p}");
        }
    }
    if !v.peer_paths.is_empty() {
        s.push_str("other nodes' pods:\n");
        for p in &v.peer_paths {
            let _ = writeln!(s, "  {} {} ({})", p.dst, p.way, p.why);
        }
    }
    for n in &v.networks {
        let b = &n.bridge;
        let _ = writeln!(
            s,
            "\nnetwork {}{}",
            n.name,
            n.file
                .as_ref()
                .map(|f| format!(" ({})", f.display()))
                .unwrap_or_default()
        );
        if b.present {
            let _ = writeln!(
                s,
                "  bridge {} #{} {} mtu {} {} port(s) {}{}",
                b.name,
                b.index.unwrap_or(0),
                b.mac.as_deref().unwrap_or("-"),
                b.mtu.unwrap_or(0),
                b.ports,
                b.addresses.join(" "),
                if b.up { "" } else { " DOWN" }
            );
            if let Some(m) = &b.mtu_source {
                let _ = writeln!(s, "    pods' {m}");
            }
        } else {
            let _ = writeln!(s, "  bridge {} (missing)", b.name);
        }
        let _ = write!(s, "  ipam {}", n.ipam.kind);
        if let Some(d) = &n.ipam.data_dir {
            let _ = write!(s, " in {}", d.join(&n.name).display());
        }
        s.push('\n');
        for r in &n.ipam.ranges {
            let _ = writeln!(
                s,
                "    {} ({}-{}, gateway {}): {}/{} used",
                r.subnet, r.start, r.end, r.gateway, r.used, r.size
            );
        }
        if n.pods.is_empty() {
            s.push_str("  no pods\n");
        }
        for p in &n.pods {
            let _ = writeln!(
                s,
                "  pod {} {}  {}  mac {}  via {} #{}  in {}",
                crate::short_id(&p.container_id),
                p.ifname,
                if p.ips.is_empty() {
                    "no address".into()
                } else {
                    p.ips.join(" ")
                },
                p.mac.as_deref().unwrap_or("?"),
                p.host_veth,
                p.host_index,
                p.netns.as_deref().unwrap_or("netns not found")
            );
        }
        for i in &n.issues {
            let who = if i.container_id.is_empty() {
                String::new()
            } else {
                format!(" {}/{}", crate::short_id(&i.container_id), i.ifname)
            };
            let _ = writeln!(s, "  ! {}{who}: {}", i.kind.as_str(), i.detail);
        }
    }
    for t in &v.nftables {
        let _ = writeln!(s, "\nnftables {} {}:", t.family, t.name);
        for r in &t.rules {
            let _ = writeln!(
                s,
                "  chain {} handle {}  {}",
                r.chain,
                r.handle,
                r.comment.as_deref().unwrap_or("")
            );
        }
    }
    if !v.port_mappings.is_empty() {
        let _ = writeln!(s, "\nhost ports (podwire-portmap):");
        for m in &v.port_mappings {
            let _ = writeln!(s, "  {}", m.describe());
        }
    }
    for e in &v.errors {
        let _ = writeln!(s, "\nerror: {e}");
    }
    s
}
