//! ADD: IPAM, bridge, veth pair (one request, pod end born in the netns as `CNI_IFNAME`), addresses,
//! routes, masquerade, then the addresses announced to the neighbours. Every step that creates something registers its undo first; a failure
//! part-way runs the undos in reverse before the error is returned.

use crate::config::Config;
use crate::{antispoof, ipam, mac, masq, names};
use cni::error::plugin_code;
use cni::trace;
use cni::{CmdArgs, CniResult, Error, Interface, Result, Route};
use ipnet::IpNet;
use kernel::{AddressOptions, BridgeSpec, Netlink, Netns, VethSpec};
use std::net::IpAddr;

/// What to take down again if a later step fails.
enum Undo {
    ReleaseIps,
    DeleteLink(String),
    DeleteMasq(String),
    DeleteAntispoof(String),
    WithdrawUnclassified,
}

impl Undo {
    fn describe(&self) -> String {
        match self {
            Undo::ReleaseIps => "released the addresses".into(),
            Undo::DeleteLink(name) => format!("deleted {name}"),
            Undo::DeleteMasq(tag) => format!("deleted masquerade rules {tag}"),
            Undo::DeleteAntispoof(tag) => format!("removed spoofCheck elements {tag}"),
            Undo::WithdrawUnclassified => "removed the pod from the policy gate".into(),
        }
    }
}

struct Rollback<'a> {
    a: &'a CmdArgs,
    config: &'a Config,
    host: &'a Netlink,
    undo: Vec<Undo>,
}

impl Rollback<'_> {
    /// Each undo is a `rollback` step of the trace; releasing the addresses shows as the
    /// IPAM's own steps (steps never nest).
    fn run(self) {
        for step in self.undo.into_iter().rev() {
            let mut s = (!matches!(step, Undo::ReleaseIps)).then(|| trace::step("rollback"));
            let outcome = match &step {
                Undo::ReleaseIps => ipam::del(self.a, self.config),
                Undo::DeleteLink(name) => self
                    .host
                    .link_delete(name.as_str())
                    .or_else(ignore_missing)
                    .map_err(cni::Error::from),
                Undo::DeleteMasq(tag) => masq::delete(tag),
                Undo::DeleteAntispoof(tag) => antispoof::delete(tag).map(drop),
                Undo::WithdrawUnclassified => {
                    crate::unclassified::withdraw(&self.a.container_id).map(drop)
                }
            };
            match (outcome, s.as_mut()) {
                (Ok(()), Some(s)) => s.detail(step.describe()),
                (Ok(()), None) => {}
                (Err(e), _) => cni::log::warn(&format!("rollback after failed ADD: {e}")),
            }
        }
    }
}

fn ignore_missing(e: kernel::Error) -> kernel::Result<()> {
    if e.is_not_found() {
        Ok(())
    } else {
        Err(e)
    }
}

pub fn add(a: &CmdArgs) -> Result<CniResult> {
    let config = trace::timed("config", || Config::from_netconf(&a.conf))?;
    let mut s = trace::step("netns");
    let pod_ns = Netns::open(&a.netns).map_err(|e| e.netns_open_error(&a.netns))?;
    let pod = Netlink::new_in(&pod_ns)?;
    let host = Netlink::new()?;
    match pod.link(a.ifname.as_str()) {
        Ok(_) => {
            return Err(Error::plugin(
                plugin_code::INTERFACE_EXISTS,
                format!("interface {:?} already exists in {}", a.ifname, a.netns),
            ))
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(cni::Error::from(e)),
    }
    let requested_mac = mac::requested(a)?;
    s.detail(format_args!("{} open, no {} yet", a.netns, a.ifname));
    s.end();

    let mut rollback = Rollback {
        a,
        config: &config,
        host: &host,
        undo: Vec::new(),
    };
    match configure(
        a,
        &config,
        &host,
        &pod,
        &pod_ns,
        requested_mac,
        &mut rollback.undo,
    ) {
        Ok(result) => {
            log_added(&result);
            Ok(result)
        }
        Err(e) => {
            rollback.run();
            Err(e)
        }
    }
}

fn configure(
    a: &CmdArgs,
    config: &Config,
    host: &Netlink,
    pod: &Netlink,
    pod_ns: &Netns,
    requested_mac: Option<kernel::MacAddr>,
    undo: &mut Vec<Undo>,
) -> Result<CniResult> {
    // IPAM first: a config it refuses, a full range or an unusable state directory then fails
    // the ADD before anything exists in the kernel (the bridge is never removed by a rollback:
    // other pods may already be on it) or on disk. A failed IPAM ADD has undone itself, so the
    // release is registered only once it succeeded.
    let mut result = ipam::add(a, config)?;
    undo.push(Undo::ReleaseIps);
    let mut s = trace::step("bridge");
    crate::fault::point("ipam");
    if result.ips.is_empty() {
        return Err(Error::invalid_config(format!(
            "IPAM plugin {:?} returned no IP address",
            config.ipam.kind
        )));
    }

    let b = &config.bridge;
    // A pod can forge link-local frames (LLDP) that the bridge learns MACs from before any
    // netfilter hook, spoofCheck's included: the bridge must not learn from them.
    let mut spec = BridgeSpec::new(&b.bridge).up().no_linklocal_learn();
    if let Some(mtu) = b.mtu {
        spec = spec.mtu(mtu);
    }
    if b.vlan.is_some() {
        spec = spec.vlan_filtering(true);
    }
    // Every ADD but the first finds the bridge up: one GETLINK then, instead of a create that
    // fails with EEXIST under the RTNL lock (contended by concurrent ADDs) plus a GETLINK.
    // Anything else (missing, down, another kind) goes through ensure_bridge, which creates it
    // (EEXIST is success: concurrent ADDs race to create it), brings it up, or refuses.
    let existing = host
        .link(b.bridge.as_str())
        .ok()
        .filter(|l| l.kind.as_deref() == Some("bridge") && l.up);
    let found = existing.is_some();
    let bridge = existing.map(Ok).unwrap_or_else(|| host.ensure_bridge(&spec)).map_err(|e| {
        if b.vlan.is_some() && e.errno() == Some(95) {
            Error::invalid_config(format!(
                "\"vlan\": {} needs bridge VLAN filtering, which this kernel lacks (CONFIG_BRIDGE_VLAN_FILTERING)",
                b.vlan.unwrap_or_default()
            ))
        } else {
            cni::Error::from(e)
        }
    })?;
    if bridge.no_linklocal_learn == Some(false) {
        host.bridge_set_no_linklocal_learn(bridge.index, true)?;
    }
    if b.promisc_mode && !bridge.promisc {
        host.link_set_promisc(bridge.index, true)?;
    }
    crate::gateway::refuse_router_adverts(&bridge.name)?;
    s.detail(format_args!(
        "{} {} #{}, accept_ra 0, no_linklocal_learn",
        if found { "found" } else { "ensured" },
        bridge.name,
        bridge.index
    ));
    s.end();
    crate::fault::point("bridge");
    if b.is_gateway {
        let mut s = trace::step("gateway");
        fill_gateways(&mut result);
        for ip in &result.ips {
            if let Some(gw) = ip.gateway {
                let gw_net =
                    IpNet::new(gw, ip.address.prefix_len()).expect("prefix of a valid address");
                crate::gateway::ensure(host, &bridge, gw_net, b.force_address)?;
                s.detail(format_args!("{gw_net} on {}", bridge.name));
            }
        }
        s.end();
        if result.ips.iter().any(|ip| ip.address.addr().is_ipv4()) {
            let mut s = trace::step("sysctl");
            crate::gateway::enable_forwarding()?;
            s.detail("net.ipv4.ip_forward = 1");
        }
    }
    crate::fault::point("gateway");

    let tag = names::attachment_tag(&a.conf.name, &a.container_id, &a.ifname);
    let mut s = trace::step("veth");
    let pod_mac = requested_mac.unwrap_or_else(mac::random);
    let mut veth_spec = VethSpec::new(
        names::host_veth(&a.conf.name, &a.container_id, &a.ifname),
        &a.ifname,
    )
    .peer_netns(pod_ns)
    .peer_mac(pod_mac)
    .master(bridge.index)
    .alias(&tag)
    .up();
    if let Some(mtu) = b.mtu {
        veth_spec = veth_spec.mtu(mtu);
    }
    let pair = match host.veth_add(&veth_spec) {
        Err(e) if e.is_exists() => {
            // The hashed name is taken (a clash, or a stale veth GC will find by its alias).
            veth_spec.name = names::random_host_veth();
            host.veth_add(&veth_spec)
        }
        other => other,
    }?;
    let host_name = veth_spec.name.clone();
    undo.push(Undo::DeleteLink(host_name.clone()));
    s.detail(format_args!(
        "{host_name} #{} on {} <-> {} #{} in the pod, mac {pod_mac}, alias {tag}",
        pair.host.index, bridge.name, a.ifname, pair.peer_index
    ));
    s.end();
    crate::fault::point("veth");

    if b.hairpin_mode || b.vlan.is_some() {
        let mut s = trace::step("port");
        if b.hairpin_mode {
            host.bridge_port_set_hairpin(pair.host.index, true)?;
            s.detail("hairpin on");
        }
        if let Some(vid) = b.vlan {
            host.bridge_vlan_add(pair.host.index, kernel::BridgeVlan::access(vid))?;
            s.detail(format_args!("vlan {vid} untagged pvid"));
        }
    }

    let ips: Vec<IpAddr> = result.ips.iter().map(|ip| ip.address.addr()).collect();
    if b.spoof_check {
        // Before the pod's end comes up: there is no moment it can send unguarded.
        let mut s = trace::step("antispoof");
        undo.push(Undo::DeleteAntispoof(tag.clone()));
        let port = antispoof::Port {
            name: &host_name,
            mac: pod_mac,
            ips: &ips,
        };
        antispoof::add(&port, &tag)?;
        s.detail(format_args!(
            "{host_name} takes only {pod_mac}, {} (bridge {})",
            join_ips(&ips),
            antispoof::TABLE
        ));
    }
    crate::fault::point("antispoof");
    if crate::unclassified::tag(a).is_some() {
        // Also before the pod's end comes up: when the node enforces NetworkPolicy, the pod is
        // denied until the agent has classified it (no table: policy off, nothing done).
        let mut s = trace::step("policy-gate");
        undo.push(Undo::WithdrawUnclassified);
        if crate::unclassified::announce(a, &ips)? {
            // Packets routed to these addresses before the announcement were judged while no
            // pod owned them, and wait in the node's neighbour queue for the pod's link to come
            // up: deleting the (incomplete) entries drops them; what comes next meets the gate.
            for ip in &ips {
                let n = kernel::Neighbour {
                    ifindex: bridge.index,
                    ip: *ip,
                    mac: None,
                    permanent: false,
                };
                match host.neighbour_delete(&n) {
                    Err(e) if !e.is_not_found() => return Err(e.into()),
                    _ => {}
                }
            }
            s.detail(format_args!(
                "{} unclassified in inet {}, queued packets dropped",
                join_ips(&ips),
                kernel::owned::POLICY_TABLE
            ));
        } else {
            s.detail("no policy table: policy off");
        }
        s.end();
    }

    let pod_index = pair.peer_index;
    // The pod end cannot come up in the create request (the pair is not joined yet). With an
    // IPv4 address, arp_notify goes in the same request: see crate::announce.
    let mut s = trace::step("link-up");
    let v4 = result.ips.iter().any(|ip| ip.address.addr().is_ipv4());
    if v4 {
        pod.link_set_up_arp_notify(pod_index)
    } else {
        pod.link_set_up(pod_index, true)
    }?;
    s.detail(format_args!(
        "{} up{}",
        a.ifname,
        if v4 { ", arp_notify on" } else { "" }
    ));
    s.end();
    crate::fault::point("link-up");
    let mut s = trace::step("addresses");
    for ip in &result.ips {
        // No DAD: the address is ours by allocation, and must work the moment ADD returns.
        let opts = AddressOptions {
            nodad: true,
            ..Default::default()
        };
        pod.address_add_with(pod_index, ip.address, opts)?;
        s.detail(format_args!("{} on {}", ip.address, a.ifname));
    }
    s.end();
    crate::fault::point("addresses");
    if b.is_default_gateway {
        add_default_routes(&mut result);
    }
    let mut s = trace::step("routes");
    for r in &result.routes {
        let k = to_kernel_route(r, &result, pod_index);
        pod.route_add(&k)?;
        match k.gateway {
            Some(gw) => s.detail(format_args!("{} via {gw}", k.dst)),
            None => s.detail(format_args!("{} dev {}", k.dst, a.ifname)),
        }
    }
    s.ok();
    s.end();
    crate::fault::point("routes");

    if b.ip_masq {
        let mut s = trace::step("nftables");
        undo.push(Undo::DeleteMasq(tag.clone()));
        for ip in &result.ips {
            let handle = masq::add(&tag, ip.address)?;
            s.detail(format_args!(
                "masquerade rule{} for {} in inet {} (comment {tag})",
                handle.map(|h| format!(" handle {h}")).unwrap_or_default(),
                ip.address.addr(),
                masq::table().name
            ));
        }
    }
    crate::fault::point("masq");

    let ends = crate::announce::Ends {
        host,
        host_index: pair.host.index,
        pod,
        pod_ns,
        pod_index,
        pod_ifname: &a.ifname,
    };
    let mut s = trace::step("announce");
    crate::announce::announce(&ends, pod_mac, &ips);
    // Best effort: a failure was logged, the ADD stands.
    s.detail(format_args!("{} at {pod_mac}", join_ips(&ips)));
    s.end();

    let is_11 = a.conf.cni_version == "1.1.0";
    result.interfaces = vec![
        Interface {
            name: bridge.name.clone(),
            mac: mac_string(bridge.mac),
            ..Default::default()
        },
        Interface {
            name: host_name,
            mac: mac_string(pair.host.mac),
            ..Default::default()
        },
        Interface {
            name: a.ifname.clone(),
            mac: pod_mac.to_string(),
            mtu: b.mtu.filter(|_| is_11),
            sandbox: a.netns.clone(),
            ..Default::default()
        },
    ];
    for ip in &mut result.ips {
        ip.interface = Some(2);
    }
    if result.dns.is_empty() {
        if let Some(dns) = &a.conf.dns {
            result.dns = dns.clone();
        }
    }
    crate::fault::point("result");
    Ok(result)
}

/// One line that tells the story of a successful ADD: what the pod got and where it is plugged.
fn log_added(result: &CniResult) {
    let ips: Vec<String> = result
        .ips
        .iter()
        .map(|ip| match ip.gateway {
            Some(gw) => format!("{} gw {gw}", ip.address),
            None => ip.address.to_string(),
        })
        .collect();
    let host = result
        .interfaces
        .get(1)
        .map(|i| i.name.as_str())
        .unwrap_or("?");
    let bridge = result
        .interfaces
        .first()
        .map(|i| i.name.as_str())
        .unwrap_or("?");
    cni::log::info(&format!(
        "added {}, host veth {host} on {bridge}",
        ips.join(", ")
    ));
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn mac_string(m: Option<kernel::MacAddr>) -> String {
    m.map(|m| m.to_string()).unwrap_or_default()
}

/// IPAMs that return no gateway get the subnet's first address, as the reference bridge does.
fn fill_gateways(result: &mut CniResult) {
    for ip in &mut result.ips {
        if ip.gateway.is_none() {
            ip.gateway = first_host(ip.address);
        }
    }
}

/// network + 1 (for IPv6 too: `hosts()` would start at the subnet-router anycast address).
fn first_host(net: IpNet) -> Option<IpAddr> {
    match net.trunc() {
        IpNet::V4(n) if n.prefix_len() < 31 => {
            Some(std::net::Ipv4Addr::from(u32::from(n.network()) + 1).into())
        }
        IpNet::V6(n) if n.prefix_len() < 127 => {
            Some(std::net::Ipv6Addr::from(u128::from(n.network()) + 1).into())
        }
        _ => None,
    }
}

/// `isDefaultGateway`: a default route per family through that family's gateway, unless IPAM
/// already gave one.
fn add_default_routes(result: &mut CniResult) {
    for ip in result.ips.clone() {
        let Some(gw) = ip.gateway else { continue };
        let default: IpNet = if gw.is_ipv4() {
            "0.0.0.0/0".parse().unwrap()
        } else {
            "::/0".parse().unwrap()
        };
        if !result.routes.iter().any(|r| r.dst == default) {
            result.routes.push(Route::new(default, Some(gw)));
        }
    }
}

/// A result route as the kernel route in the pod: through the given gateway, else through the
/// gateway of the pod's address of that family (as the reference's `ConfigureIface`).
fn to_kernel_route(r: &Route, result: &CniResult, pod_index: u32) -> kernel::Route {
    let gw = r.gw.or_else(|| {
        result
            .ips
            .iter()
            .find(|ip| ip.address.addr().is_ipv4() == r.dst.addr().is_ipv4())
            .and_then(|ip| ip.gateway)
    });
    let mut k = kernel::Route::new(r.dst).dev(pod_index);
    if let Some(gw) = gw {
        k = k.via(gw);
    }
    if let Some(m) = r.priority {
        k = k.metric(m);
    }
    if let Some(t) = r.table {
        k = k.table(t);
    }
    if let Some(m) = r.mtu {
        k = k.mtu(m);
    }
    if let Some(m) = r.adv_mss {
        k = k.advmss(m);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::IpConfig;

    fn result_with(addr: &str, gw: Option<&str>) -> CniResult {
        CniResult {
            ips: vec![IpConfig {
                address: addr.parse().unwrap(),
                gateway: gw.map(|g| g.parse().unwrap()),
                interface: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn missing_gateways_become_the_first_host() {
        let mut r = result_with("10.9.0.7/24", None);
        fill_gateways(&mut r);
        assert_eq!(r.ips[0].gateway, Some("10.9.0.1".parse().unwrap()));
        let mut r = result_with("fd00::7/64", None);
        fill_gateways(&mut r);
        assert_eq!(r.ips[0].gateway, Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn default_routes_are_added_once_per_family() {
        let mut r = result_with("10.9.0.7/24", Some("10.9.0.1"));
        r.ips.push(IpConfig {
            address: "fd00::7/64".parse().unwrap(),
            gateway: Some("fd00::1".parse().unwrap()),
            interface: None,
        });
        add_default_routes(&mut r);
        add_default_routes(&mut r);
        assert_eq!(r.routes.len(), 2);
        assert_eq!(r.routes[0].gw, Some("10.9.0.1".parse().unwrap()));
    }

    #[test]
    fn routes_without_gw_go_through_the_family_gateway() {
        let r = result_with("10.9.0.7/24", Some("10.9.0.1"));
        let k = to_kernel_route(&Route::new("10.10.0.0/16".parse().unwrap(), None), &r, 5);
        assert_eq!(k.gateway, Some("10.9.0.1".parse().unwrap()));
        assert_eq!(k.oif, Some(5));
    }
}
