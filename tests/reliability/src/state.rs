//! Reading back what the plugin left behind, from the kernel (through the kernel crate, in the
//! node's and pods' netns) and from disk: host veths and their owner tags, allocation files and
//! who they name, nft rules and their tags, runtime cache entries.

use crate::node::Node;
use kernel::nft::{Family, Nftables, Table};
use kernel::{IpFamily, Link, Netlink, Netns};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// The attachment tag podwire puts on host veths (alias) and nft rules (comment).
pub fn tag(network: &str, container: &str, ifname: &str) -> String {
    format!("podwire/{network}/{container}/{ifname}")
}

/// Every veth in the node (host ends: pods' ends live in the pods).
pub fn host_veths(node: &Node) -> Vec<Link> {
    node.netlink()
        .links()
        .expect("list node links")
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth"))
        .collect()
}

/// Links enslaved to `bridge` in the node (none if the bridge does not exist).
pub fn bridge_ports(node: &Node, bridge: &str) -> Vec<Link> {
    let nl = node.netlink();
    let Ok(br) = nl.link(bridge) else {
        return Vec::new();
    };
    nl.links()
        .expect("list node links")
        .into_iter()
        .filter(|l| l.master == Some(br.index))
        .collect()
}

/// `<dataDir>/<network>/<ip>` files: address → the container ID they name.
pub fn allocations(data_dir: &Path, network: &str) -> BTreeMap<IpAddr, String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(network)) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let ip: IpAddr = e.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let owner = text.split("\r\n").next().unwrap_or("").trim().to_string();
            Some((ip, owner))
        })
        .collect()
}

/// Tags of the rules in podwire's nft table in the node (empty if there is no table); an
/// untagged rule shows as `<untagged>`.
pub fn nft_rules(node: &Node) -> Vec<String> {
    let nft = Nftables::new_in(&node.ns).expect("nftables socket in node");
    match nft.rules(&Table::new(Family::Inet, "podwire")) {
        Ok(rules) => rules
            .into_iter()
            .map(|r| r.tag.unwrap_or_else(|| "<untagged>".into()))
            .collect(),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => panic!("list nft rules in node: {e}"),
    }
}

/// Owner tags of the port mappings (`inet podwire-portmap` map elements) in the node; empty if
/// there is no table.
pub fn port_mappings(node: &Node) -> Vec<String> {
    let nft = Nftables::new_in(&node.ns).expect("nftables socket in node");
    let table = Table::new(Family::Inet, portmap::ruleset::TABLE);
    portmap::ruleset::MapKind::ALL
        .iter()
        .flat_map(|m| nft.elements(&table, m.name()).expect("list port mappings"))
        .map(|e| e.tag.unwrap_or_else(|| "<untagged>".into()))
        .collect()
}

/// Owner tags of the spoofCheck elements (`bridge podwire-antispoof` set elements) in the node,
/// one per element (a guarded port has several: the port, its MAC, each address); empty if there
/// is no table.
pub fn guard_elements(node: &Node) -> Vec<String> {
    let nft = Nftables::new_in(&node.ns).expect("nftables socket in node");
    let table = kernel::owned::antispoof_table();
    let mut out = Vec::new();
    for set in ["ports", "pod-macs", "pod-ipv4", "pod-ipv6"] {
        match nft.elements(&table, set) {
            Ok(els) => out.extend(
                els.into_iter()
                    .map(|e| e.tag.unwrap_or_else(|| "<untagged>".into())),
            ),
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("list spoofCheck elements in node: {e}"),
        }
    }
    out
}

/// Runtime cache entries as `network/container/ifname`.
pub fn cache_entries(cache_dir: &Path) -> Vec<String> {
    runtime::Cache::new(cache_dir)
        .attachments(None)
        .expect("list cache")
        .into_iter()
        .map(|e| format!("{}/{}/{}", e.network_name, e.container_id, e.ifname))
        .collect()
}

/// The IPv4 addresses (not loopback) inside a pod's netns.
pub fn pod_ipv4(ns: &Netns) -> Vec<IpAddr> {
    let Ok(nl) = Netlink::new_in(ns) else {
        return Vec::new();
    };
    nl.addresses(None, Some(IpFamily::V4))
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.net.addr())
        .filter(|a| !a.is_loopback())
        .collect()
}

/// Everything that must not change when a bad input is refused: the node's links (name,
/// kind, master, alias, up), its addresses, nft rules, port mappings and spoofCheck elements.
pub fn kernel_fingerprint(node: &Node) -> String {
    let nl = node.netlink();
    let mut links: Vec<String> = nl
        .links()
        .expect("list node links")
        .into_iter()
        .map(|l| {
            format!(
                "{} {:?} master={:?} alias={:?} up={}",
                l.name, l.kind, l.master, l.alias, l.up
            )
        })
        .collect();
    links.sort();
    let mut addrs: Vec<String> = nl
        .addresses(None, None)
        .expect("list node addresses")
        .into_iter()
        .map(|a| format!("{} on {}", a.net, a.index))
        .collect();
    addrs.sort();
    format!(
        "links: {links:?}\naddresses: {addrs:?}\nnft: {:?}\nport mappings: {:?}\nspoofCheck elements: {:?}",
        nft_rules(node),
        port_mappings(node),
        guard_elements(node)
    )
}
