//! One podwire network: its bridge, its IPAM use, the pods and the issues behind it.

use super::plugin_config;
use super::pods::pod_view;
use super::view::*;
use bridge::config::Config;
use bridge::names;
use ipam::store::Owner;
use kernel::{Link, Netlink};
use runtime::{CacheEntry, NetworkConfigList};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub(super) fn mac(m: Option<kernel::MacAddr>) -> Option<String> {
    m.map(|m| m.to_string())
}

pub(super) fn addresses(nl: &Netlink, index: u32) -> Vec<String> {
    nl.addresses(Some(index), None)
        .unwrap_or_default()
        .iter()
        .filter(|a| !is_link_local(a.net.addr()))
        .map(|a| a.net.to_string())
        .collect()
}

pub(super) fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

pub(super) fn network(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ipv6_link_local_addresses_are_link_local() {
        assert!(is_link_local("fe80::1".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
        assert!(!is_link_local("169.254.1.1".parse().unwrap()));
    }

    #[test]
    fn host_local_layouts_are_read_and_others_are_not() {
        assert!(reads_like_host_local("host-local"));
        assert!(reads_like_host_local(bridge::config::IN_PROCESS_IPAM));
        assert!(!reads_like_host_local("dhcp"));
        assert_eq!(
            join(&["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()]),
            "10.0.0.1, fd00::1"
        );
    }
}
