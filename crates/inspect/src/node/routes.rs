//! The routes that leave the node and the tunnels that carry pod traffic to other nodes.

use super::network::{addresses, is_link_local};
use super::view::*;
use kernel::{IpFamily, Link, Netlink};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

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

pub(super) fn routes(
    host: &Netlink,
    links: &[Link],
    bridges: &BTreeSet<u32>,
) -> crate::Result<Vec<RouteView>> {
    let protos = protocol_names();
    let mut out = Vec::new();
    for fam in [IpFamily::V4, IpFamily::V6] {
        for r in &host.routes(fam).map_err(|e| e.to_string())? {
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
pub(super) fn peer_paths(
    host: &Netlink,
    links: &[Link],
    routes: &[RouteView],
) -> Vec<PeerPathView> {
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

pub(super) fn tunnels(host: &Netlink, links: &[Link]) -> Vec<TunnelView> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_route_protocol_has_a_name_and_unknown_numbers_stay_numbers() {
        assert_eq!(protocol_name(2), "kernel");
        assert_eq!(protocol_name(4), "static");
        // iproute2's own files could name 157; podwire's name is the default.
        let ours = protocol_name(kernel::owned::ROUTE_PROTOCOL);
        assert!(!ours.is_empty() && ours != "157", "{ours}");
        let unnamed = (0..=u8::MAX)
            .find(|n| !protocol_names().contains_key(n))
            .expect("some number has no name");
        assert_eq!(protocol_name(unnamed), unnamed.to_string());
    }
}
