//! CHECK: the kernel must still look like `prevResult` says: the pod interface with its MAC and
//! MTU, its addresses and routes, its host end attached to the bridge, and (spoofCheck) the
//! port's elements in the anti-spoofing sets.

use crate::config::Config;
use crate::{antispoof, ipam, names};
use cni::error::plugin_code;
use cni::{trace, CmdArgs, CniResult, Error, Result};
use kernel::{IpFamily, Netlink, Netns};

fn mismatch(msg: String) -> Error {
    Error::plugin(plugin_code::CHECK_MISMATCH, msg)
}

pub fn check(a: &CmdArgs) -> Result<()> {
    let config = trace::timed("config", || Config::from_netconf(&a.conf))?;
    let prev =
        a.conf.prev_result.as_ref().ok_or_else(|| {
            Error::invalid_config("CHECK needs prevResult: the result of the ADD")
        })?;
    let prev = CniResult::from_value(prev)?;
    ipam::check(a, &config)?;

    let mut s = trace::step("interface");
    let ns = Netns::open(&a.netns).map_err(|e| e.netns_open_error(&a.netns))?;
    let pod = Netlink::new_in(&ns)?;
    let link = pod.link(a.ifname.as_str()).map_err(|e| {
        if e.is_not_found() {
            mismatch(format!(
                "interface {} is missing from {}",
                a.ifname, a.netns
            ))
        } else {
            cni::Error::from(e)
        }
    })?;
    let want = prev
        .interfaces
        .iter()
        .position(|i| i.name == a.ifname && !i.sandbox.is_empty())
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "prevResult has no interface {} in a sandbox",
                a.ifname
            ))
        })?;
    let iface = &prev.interfaces[want];
    let have_mac = link.mac.map(|m| m.to_string()).unwrap_or_default();
    if !iface.mac.is_empty() && !iface.mac.eq_ignore_ascii_case(&have_mac) {
        return Err(mismatch(format!(
            "interface {} has MAC {have_mac}, prevResult says {}",
            a.ifname, iface.mac
        )));
    }
    let want_mtu = iface.mtu.or(config.bridge.mtu);
    if let Some(mtu) = want_mtu {
        if link.mtu != mtu {
            return Err(mismatch(format!(
                "interface {} has MTU {}, expected {mtu}",
                a.ifname, link.mtu
            )));
        }
    } else if link.mtu != 1500 && config.bridge.mtu.is_none() {
        // No MTU configured: the veth's default is the bridge's (1500 for a new bridge).
        let host = Netlink::new()?;
        let bridge = host.link(config.bridge.bridge.as_str())?;
        if link.mtu != bridge.mtu {
            return Err(mismatch(format!(
                "interface {} has MTU {}, the bridge has {}",
                a.ifname, link.mtu, bridge.mtu
            )));
        }
    }

    s.detail(format_args!(
        "{} #{} mac {have_mac} mtu {}",
        a.ifname, link.index, link.mtu
    ));
    s.end();
    let mut s = trace::step("addresses");
    let addrs = pod.addresses(Some(link.index), None)?;
    for ip in prev.ips.iter().filter(|ip| ip.interface == Some(want)) {
        if !addrs.iter().any(|x| x.net == ip.address) {
            return Err(mismatch(format!(
                "interface {} lacks address {}",
                a.ifname, ip.address
            )));
        }
    }
    s.detail(format_args!(
        "{} of prevResult present",
        prev.ips
            .iter()
            .filter(|ip| ip.interface == Some(want))
            .count()
    ));
    s.end();
    let mut s = trace::step("routes");
    for r in &prev.routes {
        let routes = pod.routes(IpFamily::of(r.dst.addr()))?;
        let found = routes
            .iter()
            .any(|k| k.dst == r.dst.trunc() && (r.gw.is_none() || k.gateway == r.gw));
        if !found {
            let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(mismatch(format!(
                "route {}{via} is missing in {}",
                r.dst, a.netns
            )));
        }
    }

    s.detail(format_args!("{} of prevResult present", prev.routes.len()));
    s.end();
    // The host end: the pod end's peer, in the node, must be a port of the bridge.
    let mut s = trace::step("host-end");
    let host = Netlink::new()?;
    let bridge = host.link(config.bridge.bridge.as_str()).map_err(|e| {
        if e.is_not_found() {
            mismatch(format!("bridge {} is missing", config.bridge.bridge))
        } else {
            cni::Error::from(e)
        }
    })?;
    let peer = link
        .peer_index
        .ok_or_else(|| mismatch(format!("interface {} is not a veth", a.ifname)))?;
    let host_end = host
        .link(peer)
        .map_err(|_| mismatch(format!("the host end of {} is missing", a.ifname)))?;
    if host_end.master != Some(bridge.index) {
        return Err(mismatch(format!(
            "host veth {} is not attached to bridge {}",
            host_end.name, bridge.name
        )));
    }
    s.detail(format_args!(
        "{} #{} on {}",
        host_end.name, host_end.index, bridge.name
    ));
    s.end();
    if config.bridge.spoof_check {
        let mut s = trace::step("antispoof");
        let ips: Vec<std::net::IpAddr> = prev
            .ips
            .iter()
            .filter(|ip| ip.interface == Some(want))
            .map(|ip| ip.address.addr())
            .collect();
        let port = antispoof::Port {
            name: &host_end.name,
            mac: link.mac.unwrap_or_default(),
            ips: &ips,
        };
        let tag = names::attachment_tag(&a.conf.name, &a.container_id, &a.ifname);
        let missing = antispoof::missing(&port, &tag)?;
        if !missing.is_empty() {
            return Err(mismatch(format!(
                "spoofCheck: {} missing from bridge {}: {}",
                if missing.len() == 1 {
                    "element"
                } else {
                    "elements"
                },
                antispoof::TABLE,
                missing.join(", ")
            )));
        }
        s.detail(format_args!("{} element(s) present", 2 + ips.len()));
    }
    Ok(())
}
