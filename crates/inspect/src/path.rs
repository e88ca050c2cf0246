//! The path of a packet from a pod to an address, hop by hop, each hop asked of the kernel of
//! the namespace it is in (RTM_GETROUTE, as `ip route get`): the pod's route out of its
//! interface, the veth into the node, the bridge, then either the bridge again to a pod of the
//! same subnet, or the node's routing to another bridge, the node itself, or a device that
//! leaves the node (direct or a tunnel), with the masquerade rule it would match. When there is
//! no path the last hop says where it breaks.

use crate::node::{NetworkView, NodeView, PodView};
use kernel::{route_type, Netlink, Netns, Route, RouteQuery};
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PathView {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub hops: Vec<Hop>,
    /// The packet gets where it is going (on this node, or out of it).
    pub complete: bool,
    /// Where and why it stops, when it does.
    pub breaks: Option<String>,
    /// The masquerade rule the packet matches on its way out, if any.
    pub masquerade: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub ip: IpAddr,
    /// `container/ifname` when a pod of this node holds the address.
    pub pod: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// `pod`, `veth`, `bridge`, `node`, `device`.
    pub kind: &'static str,
    /// The interface, bridge or pod.
    pub name: String,
    /// What the kernel said there.
    pub detail: String,
}

fn hop(kind: &'static str, name: impl Into<String>, detail: impl Into<String>) -> Hop {
    Hop {
        kind,
        name: name.into(),
        detail: detail.into(),
    }
}

/// A pod of the node, with its network.
struct PodRef<'a> {
    net: &'a NetworkView,
    pod: &'a PodView,
}

impl PodRef<'_> {
    /// `container/ifname`, the whole ID (for JSON).
    fn id(&self) -> String {
        format!("{}/{}", self.pod.container_id, self.pod.ifname)
    }

    fn label(&self) -> String {
        format!(
            "{}/{}",
            crate::short_id(&self.pod.container_id),
            self.pod.ifname
        )
    }
}

fn pods(node: &NodeView) -> impl Iterator<Item = PodRef<'_>> {
    node.networks
        .iter()
        .flat_map(|net| net.pods.iter().map(move |pod| PodRef { net, pod }))
}

fn pod_by_ip(node: &NodeView, ip: IpAddr) -> Option<PodRef<'_>> {
    pods(node).find(|p| p.pod.addrs().any(|a| a == ip))
}

/// An address, or a container ID (or unique prefix) of a pod of this node.
fn resolve(
    node: &NodeView,
    what: &str,
    family: Option<bool>,
) -> crate::Result<(IpAddr, Option<String>)> {
    if let Ok(ip) = what.parse::<IpAddr>() {
        return Ok((ip, pod_by_ip(node, ip).map(|p| p.id())));
    }
    let matching: Vec<PodRef> = pods(node)
        .filter(|p| p.pod.container_id.starts_with(what))
        .collect();
    let p = match matching.as_slice() {
        [] => {
            return Err(format!(
                "{what:?} is neither an IP address nor a pod of this node"
            ))
        }
        [p] => p,
        _ => {
            return Err(format!(
                "{what:?} names {} attachments: give more of the container ID or an IP",
                matching.len()
            ))
        }
    };
    let ip = p
        .pod
        .addrs()
        .find(|a| family.is_none_or(|v4| a.is_ipv4() == v4))
        .ok_or_else(|| {
            format!(
                "pod {} has no address{}",
                p.label(),
                match family {
                    Some(true) => " of IPv4",
                    Some(false) => " of IPv6",
                    None => "",
                }
            )
        })?;
    Ok((ip, Some(p.id())))
}

fn lookup_err(where_: &str, dst: IpAddr, e: kernel::Error) -> String {
    format!("{where_} has no route to {dst}: {e}")
}

fn describe(r: &Route, dev: &str) -> String {
    match r.gateway {
        Some(gw) => format!("route to {} via {gw} dev {dev}", r.dst.addr()),
        None => format!("route to {} dev {dev} (on-link)", r.dst.addr()),
    }
}

/// Works the path out. `node` is the view of this node (`node::show`).
pub fn trace_path(node: &NodeView, src: &str, dst: &str) -> crate::Result<PathView> {
    let (src_ip, _) = resolve(node, src, None)?;
    let (dst_ip, dst_label) = resolve(node, dst, Some(src_ip.is_ipv4()))?;
    let (src_ip, src_label) = if src.parse::<IpAddr>().is_ok() {
        (src_ip, pod_by_ip(node, src_ip).map(|p| p.id()))
    } else {
        resolve(node, src, Some(dst_ip.is_ipv4()))?
    };
    let from = pod_by_ip(node, src_ip).ok_or_else(|| {
        format!("{src_ip} is not the address of a pod of this node: a path starts at a pod")
    })?;
    let mut view = PathView {
        src: Endpoint {
            ip: src_ip,
            pod: src_label,
        },
        dst: Endpoint {
            ip: dst_ip,
            pod: dst_label,
        },
        hops: Vec::new(),
        complete: false,
        breaks: None,
        masquerade: None,
    };
    if let Err(why) = walk(node, &from, src_ip, dst_ip, &mut view) {
        view.breaks = Some(why);
    }
    Ok(view)
}

fn walk(
    node: &NodeView,
    from: &PodRef,
    src: IpAddr,
    dst: IpAddr,
    view: &mut PathView,
) -> crate::Result<()> {
    let pod = from.pod;
    let netns = pod
        .netns
        .as_deref()
        .ok_or_else(|| format!("the netns of pod {} is unknown", from.label()))?;
    let ns = Netns::open(netns).map_err(|e| format!("cannot open {netns}: {e}"))?;
    let nl = Netlink::new_in(&ns).map_err(|e| e.to_string())?;
    let in_pod = nl
        .route_lookup(RouteQuery::to(dst).from(src))
        .map_err(|e| lookup_err(&format!("pod {}", from.label()), dst, e))?;
    if in_pod.kind == route_type::LOCAL {
        view.hops.push(hop(
            "pod",
            from.label(),
            format!("{dst} is the pod's own address"),
        ));
        view.complete = true;
        return Ok(());
    }
    let out_dev = in_pod
        .oif
        .and_then(|i| nl.link(i).ok())
        .map(|l| l.name)
        .unwrap_or_else(|| "?".into());
    view.hops.push(hop(
        "pod",
        from.label(),
        format!("{} in {netns}", describe(&in_pod, &out_dev)),
    ));
    if Some(in_pod.oif.unwrap_or(0)) != pod.pod_index {
        return Err(format!(
            "the pod sends it out of {out_dev}, not out of its podwire interface {}",
            pod.ifname
        ));
    }
    view.hops.push(hop(
        "veth",
        pod.host_veth.clone(),
        format!("host end of the pod's {}", pod.ifname),
    ));
    let br = &from.net.bridge;
    if !br.present {
        return Err(format!("bridge {} is missing", br.name));
    }
    let next = in_pod.gateway.unwrap_or(dst);
    // On-link: the bridge switches it to whichever port has the address.
    if in_pod.gateway.is_none() {
        if let Some(to) = from.net.pods.iter().find(|p| p.addrs().any(|a| a == dst)) {
            view.hops.push(hop(
                "bridge",
                br.name.clone(),
                "switched at layer 2 (same subnet)",
            ));
            return arrive(view, from.net, to);
        }
        if br
            .addresses
            .iter()
            .any(|a| a.starts_with(&format!("{dst}/")))
        {
            view.hops.push(hop(
                "bridge",
                br.name.clone(),
                format!("{dst} is the bridge's own address"),
            ));
            view.hops.push(hop("node", "node", "delivered to the node"));
            view.complete = true;
            return Ok(());
        }
        view.hops
            .push(hop("bridge", br.name.clone(), "switched at layer 2"));
        return Err(format!(
            "the pod takes {dst} to be on its link, but no port of {} has it",
            br.name
        ));
    }
    view.hops.push(hop(
        "bridge",
        br.name.clone(),
        format!("to the gateway {next} (the bridge's address): routed by the node"),
    ));
    route_in_node(node, src, dst, br.index.unwrap_or(0), view)
}

fn arrive(view: &mut PathView, net: &NetworkView, to: &PodView) -> crate::Result<()> {
    view.hops.push(hop(
        "veth",
        to.host_veth.clone(),
        format!("port of {} to the pod", net.bridge.name),
    ));
    view.hops.push(hop(
        "pod",
        format!("{}/{}", crate::short_id(&to.container_id), to.ifname),
        format!("delivered in {}", to.netns.as_deref().unwrap_or("?")),
    ));
    view.complete = true;
    Ok(())
}

fn route_in_node(
    node: &NodeView,
    src: IpAddr,
    dst: IpAddr,
    bridge_index: u32,
    view: &mut PathView,
) -> crate::Result<()> {
    let host = Netlink::new().map_err(|e| e.to_string())?;
    // As a packet received on the bridge: forwarding, reverse-path and policy routing all
    // count. A kernel refusing to forward answers with an error, which is the break.
    let found = host
        .route_lookup(RouteQuery::to(dst).from(src).iif(bridge_index))
        .map_err(|e| lookup_err("the node", dst, e))?;
    let r = &found;
    match r.kind {
        route_type::LOCAL => {
            view.hops.push(hop(
                "node",
                "node",
                format!("{dst} is an address of the node: delivered locally"),
            ));
            view.complete = true;
            return Ok(());
        }
        route_type::UNICAST => {}
        other => {
            return Err(format!(
                "the node's route to {dst} is of type {} (the packet is dropped)",
                type_name(other)
            ))
        }
    }
    let dev = r
        .oif
        .and_then(|i| host.link(i).ok())
        .ok_or_else(|| format!("the node's route to {dst} names no device"))?;
    // Into another (or the same) podwire bridge.
    if let Some(net) = node
        .networks
        .iter()
        .find(|n| n.bridge.index == Some(dev.index))
    {
        view.hops.push(hop(
            "node",
            "node",
            format!(
                "{} → bridge {}",
                describe(&found, &dev.name),
                net.bridge.name
            ),
        ));
        view.masquerade = masquerade(node, src, dst);
        return match net.pods.iter().find(|p| p.addrs().any(|a| a == dst)) {
            Some(to) => {
                view.hops.push(hop(
                    "bridge",
                    net.bridge.name.clone(),
                    "switched at layer 2",
                ));
                arrive(view, net, to)
            }
            None => Err(format!("no pod on {} has {dst}", net.bridge.name)),
        };
    }
    let kind = dev.kind.clone().unwrap_or_else(|| "device".into());
    view.hops.push(hop(
        "node",
        "node",
        format!(
            "{}{}",
            describe(&found, &dev.name),
            table_route(&host, &found)
                .map(|t| format!(
                    " (by route {} proto {})",
                    t.dst,
                    crate::node::protocol_name(t.protocol)
                ))
                .unwrap_or_default()
        ),
    ));
    view.hops.push(hop(
        "device",
        dev.name.clone(),
        format!(
            "leaves the node through {kind} {}{}",
            dev.name,
            r.gateway
                .map(|g| format!(" to next hop {g}"))
                .unwrap_or_default()
        ),
    ));
    view.masquerade = masquerade(node, src, dst);
    view.complete = true;
    Ok(())
}

/// The table route a lookup used (the answer itself carries neither its prefix nor its
/// protocol): the longest main-table prefix holding the address through the same device and
/// gateway.
fn table_route(host: &Netlink, found: &Route) -> Option<Route> {
    let dst = found.dst.addr();
    host.routes(kernel::IpFamily::of(dst))
        .ok()?
        .into_iter()
        .filter(|r| r.table == kernel::TABLE_MAIN && r.kind == route_type::UNICAST)
        .filter(|r| r.dst.contains(&dst) && r.oif == found.oif && r.gateway == found.gateway)
        .max_by_key(|r| r.dst.prefix_len())
}

fn type_name(t: u8) -> String {
    match t {
        route_type::BLACKHOLE => "blackhole".into(),
        route_type::UNREACHABLE => "unreachable".into(),
        route_type::PROHIBIT => "prohibit".into(),
        route_type::BROADCAST => "broadcast".into(),
        n => n.to_string(),
    }
}

/// The podwire masquerade rule a routed packet from `src` to `dst` matches: the plugin's
/// per-pod rule (`saddr == pod and daddr != pod subnet`, tagged with the attachment) or node
/// setup's (`saddr in podCIDR and daddr != clusterCIDR`, its tag says so).
pub fn masquerade(node: &NodeView, src: IpAddr, dst: IpAddr) -> Option<String> {
    let owner = pods(node).find(|p| p.pod.addrs().any(|a| a == src))?;
    let tag =
        bridge::names::attachment_tag(&owner.net.name, &owner.pod.container_id, &owner.pod.ifname);
    let subnet = owner
        .pod
        .ips
        .iter()
        .filter_map(|s| s.parse::<ipnet::IpNet>().ok())
        .find(|n| n.addr() == src)?
        .trunc();
    for t in &node.nftables {
        for r in &t.rules {
            let Some(c) = r.comment.as_deref() else {
                continue;
            };
            let hit = if c == tag {
                !subnet.contains(&dst)
            } else if let Some((pod, cluster)) = node_masquerade(c) {
                pod.contains(&src) && !cluster.contains(&dst)
            } else {
                false
            };
            if hit {
                return Some(format!(
                    "{} {} chain {} handle {} (\"{c}\")",
                    t.family, t.name, r.chain, r.handle
                ));
            }
        }
    }
    None
}

/// Node setup's masquerade tag: `podwire-node masquerade <pod> to !<cluster>`.
fn node_masquerade(tag: &str) -> Option<(ipnet::IpNet, ipnet::IpNet)> {
    let rest = tag.strip_prefix("podwire-node masquerade ")?;
    let (pod, cluster) = rest.split_once(" to !")?;
    Some((pod.parse().ok()?, cluster.parse().ok()?))
}

/// The path as text, one hop a line.
pub fn render(p: &PathView) -> String {
    use std::fmt::Write;
    let label = |e: &Endpoint| match &e.pod {
        Some(pod) => format!("{} (pod {})", e.ip, crate::short_id(pod)),
        None => e.ip.to_string(),
    };
    let mut s = format!("path {} → {}\n", label(&p.src), label(&p.dst));
    let width = p.hops.iter().map(|h| h.name.len()).max().unwrap_or(0);
    for (i, h) in p.hops.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>2}. {:6} {:width$}  {}",
            i + 1,
            h.kind,
            h.name,
            h.detail
        );
    }
    if let Some(why) = &p.breaks {
        let _ = writeln!(s, "  ✗ breaks here: {why}");
    } else if p.complete {
        let _ = writeln!(s, "  ✓ reaches {}", label(&p.dst));
    }
    match &p.masquerade {
        Some(m) => {
            let _ = writeln!(s, "  masqueraded by {m}");
        }
        None if p.hops.iter().any(|h| h.kind == "node") => {
            let _ = writeln!(s, "  not masqueraded (the destination sees {})", p.src.ip);
        }
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_setup_tags_parse_back() {
        let (pod, cluster) =
            node_masquerade("podwire-node masquerade 10.244.1.0/24 to !10.244.0.0/16").unwrap();
        assert_eq!(pod.to_string(), "10.244.1.0/24");
        assert_eq!(cluster.to_string(), "10.244.0.0/16");
        assert!(node_masquerade("podwire-node forward 10.244.0.0/16").is_none());
    }
}
