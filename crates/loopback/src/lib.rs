//! The loopback plugin, with the reference plugin's behaviour:
//!
//! - ADD brings `lo` up in `CNI_NETNS` and returns `prevResult` untouched when chained, else a
//!   result naming `lo` (MAC 00:00:00:00:00:00, the sandbox) with its loopback addresses. `lo`
//!   holding a non-loopback address is an error, as in the reference.
//! - DEL brings `lo` down; an empty or vanished netns is success (the runtime may call DEL twice
//!   or after the sandbox is gone). `CNI_IFNAME` is ignored: this plugin only ever acts on `lo`.
//! - CHECK: `lo` must be up.
//!
//! The plugin's own namespace is never touched: `cni::skel` refuses an ADD or DEL whose
//! `CNI_NETNS` is the namespace the plugin runs in (a DEL pointed at the host would otherwise take
//! the host's `lo` down), and every operation goes through a netlink socket opened inside
//! `CNI_NETNS`, never through the calling thread's namespace.

use cni::error::plugin_code;
use cni::{CmdArgs, CniResult, Error, Interface, IpConfig, Plugin, Result};
use ipnet::IpNet;
use kernel::{Netlink, Netns};

pub const LO: &str = "lo";
/// The kernel gives every netns's loopback device index 1 (`LOOPBACK_IFINDEX`, asserted when
/// it registers the device).
const LO_INDEX: u32 = 1;

pub struct LoopbackPlugin;

impl Plugin for LoopbackPlugin {
    fn add(&self, a: &CmdArgs) -> Result<CniResult> {
        add(a)
    }
    fn del(&self, a: &CmdArgs) -> Result<()> {
        del(a)
    }
    fn check(&self, a: &CmdArgs) -> Result<()> {
        check(a)
    }
}

/// Opening `CNI_NETNS`: missing or not a netns is the runtime's mistake (code 4).
fn open_netns(path: &str) -> Result<Netns> {
    Netns::open(path).map_err(|e| e.netns_open_error(path))
}

pub fn add(a: &CmdArgs) -> Result<CniResult> {
    let ns = cni::trace::timed("netns", || open_netns(&a.netns))?;
    let mut s = cni::trace::step("link-up");
    let nl = Netlink::new_in(&ns)?;
    // By name, in one request: no lookup first.
    nl.link_set_up(LO, true)?;
    s.detail(format_args!("lo #{LO_INDEX} up"));
    s.end();
    if let Some(prev) = &a.conf.prev_result {
        return CniResult::from_value(prev);
    }
    let addrs = nl.addresses(Some(LO_INDEX), None)?;
    if let Some(odd) = addrs.iter().find(|x| !x.net.addr().is_loopback()) {
        return Err(Error::plugin(
            plugin_code::KERNEL,
            format!(
                "loopback interface in {} has a non-loopback address {}",
                a.netns, odd.net
            ),
        ));
    }
    // The reference reports the first address of each family.
    let first = |v6: bool| {
        addrs
            .iter()
            .map(|x| x.net)
            .find(|n| matches!(n, IpNet::V6(_)) == v6)
    };
    let ips = [first(false), first(true)]
        .into_iter()
        .flatten()
        .map(|address| IpConfig {
            address,
            gateway: None,
            interface: Some(0),
        })
        .collect();
    Ok(CniResult {
        cni_version: a.conf.cni_version.clone(),
        interfaces: vec![Interface {
            name: LO.into(),
            mac: "00:00:00:00:00:00".into(),
            sandbox: a.netns.clone(),
            ..Default::default()
        }],
        ips,
        ..Default::default()
    })
}

pub fn del(a: &CmdArgs) -> Result<()> {
    if a.netns.is_empty() {
        return Ok(());
    }
    let ns = match Netns::open(&a.netns) {
        Ok(ns) => ns,
        // Gone already (DEL after the sandbox was torn down, or called twice).
        Err(e) if e.is_not_found() || e.is_not_netns() => return Ok(()),
        Err(e) => return Err(cni::Error::from(e)),
    };
    let mut s = cni::trace::step("link-down");
    let nl = Netlink::new_in(&ns)?;
    match nl.link_set_up(LO, false) {
        Err(e) if !e.is_not_found() => Err(cni::Error::from(e)),
        _ => {
            s.detail("lo down");
            Ok(())
        }
    }
}

pub fn check(a: &CmdArgs) -> Result<()> {
    let ns = open_netns(&a.netns)?;
    let nl = Netlink::new_in(&ns)?;
    let lo = nl.link(LO)?;
    if !lo.up {
        return Err(Error::plugin(
            plugin_code::CHECK_MISMATCH,
            format!("loopback interface in {} is down", a.netns),
        ));
    }
    Ok(())
}
