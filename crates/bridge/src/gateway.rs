//! The gateway address on the bridge, IP forwarding on the node, and the bridge's refusal of
//! pods' router advertisements.

use cni::{Error, Result};
use ipnet::IpNet;
use kernel::{AddressOptions, IpFamily, Link, Netlink};

/// Puts `gw` on the bridge once. Another address of the same subnet is an error (the bridge would
/// answer for the wrong gateway) unless `force` is set, which replaces it.
pub fn ensure(host: &Netlink, bridge: &Link, gw: IpNet, force: bool) -> Result<()> {
    let family = IpFamily::of(gw.addr());
    let present = host.addresses(Some(bridge.index), Some(family))?;
    if present.iter().any(|a| a.net == gw) {
        return Ok(());
    }
    for other in present
        .iter()
        .filter(|a| a.net.contains(&gw.addr()) || gw.contains(&a.net.addr()))
    {
        if !force {
            return Err(Error::invalid_config(format!(
                "bridge {} has address {} but the gateway is {gw}; set \"forceAddress\": true to replace it",
                bridge.name, other.net
            )));
        }
        host.address_delete(bridge.index, other.net)
            .or_else(ignore_missing)?;
    }
    let opts = AddressOptions {
        nodad: gw.addr().is_ipv6(),
        ..Default::default()
    };
    match host.address_add_with(bridge.index, gw, opts) {
        // A concurrent ADD put it there first.
        Err(e) if e.is_exists() => Ok(()),
        other => other.map_err(cni::Error::from),
    }
}

fn ignore_missing(e: kernel::Error) -> kernel::Result<()> {
    if e.is_not_found() || e.errno() == Some(99) {
        Ok(())
    } else {
        Err(e)
    }
}

/// A gateway must route: turn on IPv4 forwarding when it is off (one read when it is on).
pub fn enable_forwarding() -> Result<()> {
    const KEY: &str = "net/ipv4/ip_forward";
    let on = kernel::sysctl::read(KEY)
        .map(|v| v.trim() == "1")
        .unwrap_or(false);
    if !on {
        kernel::sysctl::write(KEY, "1")?;
    }
    Ok(())
}

/// A pod's router advertisement must never configure the node (CVE-2020-10749): with
/// `accept_ra` on the bridge, any pod could give the node an IPv6 default route and address
/// through itself. Set to 0 when it is not (one read when it is). A kernel without IPv6 has no
/// such key: nothing to refuse.
pub fn refuse_router_adverts(bridge: &str) -> Result<()> {
    let key = kernel::sysctl::ipv6_conf(bridge, "accept_ra");
    match kernel::sysctl::read(&key) {
        Ok(v) if v.trim() == "0" => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        _ => kernel::sysctl::write(&key, "0").map_err(cni::Error::from),
    }
}
