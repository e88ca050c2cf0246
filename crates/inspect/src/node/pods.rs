//! The pods behind a bridge: each host veth's other end, found through the result cache.

use super::network::{addresses, is_link_local, mac};
use super::view::*;
use kernel::{IpFamily, Link, Netlink, Netns};
use runtime::CacheEntry;
use std::path::Path;

/// The pod's netns as the cache recorded it: the entry's netns, else the result's sandbox.
pub(super) fn cached_netns(entry: &CacheEntry) -> Option<String> {
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
pub(super) fn find_pod(
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

pub(super) fn pod_view(
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
