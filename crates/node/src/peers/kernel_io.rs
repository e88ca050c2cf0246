//! The impure edge of multi-node routing: reads this netns (addresses, podwire's VXLAN devices,
//! routes, neighbours, FDB) and applies a [`Plan`] over netlink. One reconcile is
//! `local_facts` → `desired` → `ensure_devices` → `observe` → `diff` → `apply`.

use super::desired::{desired, Desired};
use super::diff::{diff, Change, Observed, Plan};
use super::model::{Local, LocalAddress, Options, OwnNode, PeerNode};
use super::probe::{self, ProbeBook};
use super::problem::{Problem, ProblemKind};
use super::{ROUTE_PROTOCOL, VXLAN_DEVICE_V4, VXLAN_DEVICE_V6};
use crate::Changes;
use cni::{Error, Result};
use kernel::{IpFamily, Netlink, ResultExt, VxlanSpec};
use std::collections::BTreeMap;

fn is_ours(name: &str) -> bool {
    name == VXLAN_DEVICE_V4 || name == VXLAN_DEVICE_V6
}

/// This node's facts: its Node and the addresses of this netns, except those on `skip` links
/// (the pod bridges) and on podwire's VXLAN devices, link-local IPv6 and host-scope ones.
pub fn local_facts(nl: &Netlink, node: PeerNode, skip: &[String]) -> Result<Local> {
    let links = nl.links()?;
    let addrs = nl.addresses(None, None)?;
    let mut addresses = Vec::new();
    for a in addrs {
        let Some(link) = links.iter().find(|l| l.index == a.index) else {
            continue;
        };
        if is_ours(&link.name) || skip.contains(&link.name) || link.name == "lo" {
            continue;
        }
        if let std::net::IpAddr::V6(v6) = a.net.addr() {
            if v6.is_unicast_link_local() {
                continue;
            }
        }
        addresses.push(LocalAddress {
            net: a.net,
            ifindex: a.index,
            mtu: link.mtu,
        });
    }
    Ok(Local {
        node,
        addresses,
        probes: Default::default(),
    })
}

/// Creates or fixes podwire's VXLAN devices as `specs` ask (an existing one whose tunnel differs,
/// e.g. this node's address changed, is made again), up. Devices no longer needed are kept: a
/// peer may come back, and an idle device costs nothing. A device that cannot be made right (a
/// link of another kind squatting its name, another VXLAN device on the same VNI and port, as
/// flannel's `flannel.1` during a migration) does not stop the others, nor the direct routes:
/// it is returned with the reason, and its peers are left unrouted.
/// (Its peers are counted unrouted where the diff skips them, the device being missing.)
pub fn ensure_devices(nl: &Netlink, specs: &[VxlanSpec], changes: &mut Changes) -> Vec<Problem> {
    specs
        .iter()
        .filter_map(|spec| {
            ensure_device(nl, spec, changes).err().map(|e| {
                Problem::new(
                    ProblemKind::VxlanDevice,
                    format!("{}: {}: its peers are not routed", spec.name, e.msg),
                    0,
                )
            })
        })
        .collect()
}

fn ensure_device(nl: &Netlink, spec: &VxlanSpec, changes: &mut Changes) -> Result<()> {
    let existing = nl.link(spec.name.as_str()).ok_if_not_found()?;
    let existing = match existing {
        Some(l) if l.kind.as_deref() != Some("vxlan") => {
            return Err(Error::io(format!(
                "a link named {} exists and is not a VXLAN device ({}): rename or remove it",
                spec.name,
                l.kind.as_deref().unwrap_or("device")
            )))
        }
        Some(l) if !l.vxlan.as_ref().is_some_and(|v| spec.tunnel_matches(v)) => {
            nl.link_delete(l.index).ok_if_not_found()?;
            changes.push(format!(
                "removed {} (its tunnel settings changed)",
                spec.name
            ));
            None
        }
        other => other,
    };
    let link = match existing {
        Some(l) => l,
        None => {
            nl.vxlan_add(spec).map_err(|e| {
                Error::io(format!(
                    "{e} (another VXLAN device on VNI {} and UDP port {}, such as flannel's \
                     flannel.1, takes the same packets: remove it, or give --vxlan-vni or \
                     --vxlan-port)",
                    spec.vni, spec.port
                ))
            })?;
            changes.push(format!(
                "created {} (vni {}, port {}, local {}, mtu {})",
                spec.name,
                spec.vni,
                spec.port,
                spec.local.map(|a| a.to_string()).unwrap_or_default(),
                spec.mtu.unwrap_or_default()
            ));
            nl.link(spec.name.as_str())?
        }
    };
    if let Some(mtu) = spec.mtu.filter(|m| *m != link.mtu) {
        nl.link_set_mtu(link.index, mtu)?;
        changes.push(format!("{} mtu {mtu}", spec.name));
    }
    if let Some(mac) = spec.mac.filter(|m| Some(*m) != link.mac) {
        nl.link_set_mac(link.index, mac)?;
        changes.push(format!("{} address {mac}", spec.name));
    }
    if !link.up {
        nl.link_set_up(link.index, true)?;
        changes.push(format!("{} up", spec.name));
    }
    Ok(())
}

/// podwire's VXLAN device of that name, if there is one: a link of another kind squatting the
/// name is never taken for it (nor its neighbours read, nor itself removed).
fn our_device(nl: &Netlink, name: &str) -> Result<Option<kernel::Link>> {
    let link = nl.link(name).ok_if_not_found()?;
    Ok(link.filter(|l| l.kind.as_deref() == Some("vxlan")))
}

/// What the kernel holds now.
pub fn observe(nl: &Netlink) -> Result<Observed> {
    let mut o = Observed::default();
    for name in [VXLAN_DEVICE_V4, VXLAN_DEVICE_V6] {
        o.devices.extend(our_device(nl, name)?);
    }
    for fam in [IpFamily::V4, IpFamily::V6] {
        o.routes.extend(
            nl.routes(fam)?
                .into_iter()
                .filter(|r| r.table == kernel::TABLE_MAIN && r.kind == 1),
        );
    }
    for d in &o.devices {
        let fam = if d.name == VXLAN_DEVICE_V6 {
            IpFamily::V6
        } else {
            IpFamily::V4
        };
        o.neighbours.extend(nl.neighbours(fam, Some(d.index))?);
        o.fdb.extend(nl.fdb_entries(d.index)?);
    }
    Ok(o)
}

/// Applies the changes in order. A failing change is reported and the rest still go in (the
/// next resync retries it); `Err` only lists the failures. `kinds` counts what went in by
/// [`Change::kind`].
pub fn apply(
    nl: &Netlink,
    plan: &Plan,
    done: &mut Changes,
    kinds: &mut BTreeMap<&'static str, usize>,
) -> std::result::Result<(), Vec<String>> {
    let mut failed = Vec::new();
    for c in &plan.changes {
        let r = match c {
            Change::AddFdb(e) => nl.fdb_replace(e),
            Change::AddNeighbour(n) => nl.neighbour_replace(n),
            Change::ReplaceRoute(r) => nl.route_replace(r),
            Change::DeleteRoute(r) => nl.route_delete(r).ok_if_not_found().map(drop),
            Change::DeleteNeighbour(n) => nl.neighbour_delete(n).ok_if_not_found().map(drop),
            Change::DeleteFdb(e) => nl.fdb_delete(e).ok_if_not_found().map(drop),
        };
        match r {
            Ok(_) => {
                done.push(c.to_string());
                *kinds.entry(c.kind()).or_default() += 1;
            }
            Err(e) => failed.push(format!("{c}: {e}")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

/// What one reconcile did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub changes: Changes,
    /// The changes made, counted by kind ([`Change::kind`], and `vxlan_device`).
    pub kinds: BTreeMap<&'static str, usize>,
    /// Peers or CIDRs left unrouted, and why (repeated on every reconcile while true).
    pub problems: Vec<Problem>,
    /// Peer pod CIDRs routed directly and over VXLAN.
    pub direct: usize,
    pub vxlan: usize,
    /// Kernel writes that failed (retried on the next reconcile).
    pub failed: Vec<String>,
    /// The desired state it worked from.
    pub desired: Desired,
    /// The links whose changes can undo this pass: those holding this node's addresses (the
    /// underlay) and podwire's VXLAN devices. Changes to any other link (a pod's veth) cannot.
    pub links: Vec<u32>,
}

/// Probes the on-link peers whose verdict is due (`--backend auto`) and gives `local` every
/// verdict known. Per peer: first an echo from this node's own address (it must answer that, or
/// its direct path says nothing: it is down or not there yet), which also resolves its MAC; then
/// an echo from this node's pod gateway, sent as a frame straight to that MAC (past the node's
/// masquerade rule, which would rewrite the pod source, and past its routes). A family whose
/// probe cannot be sent (the gateway not on the bridge yet) is tried again next pass; its peers
/// stay as they were meanwhile (direct when never probed).
pub fn probe(
    nl: &Netlink,
    local: &mut Local,
    nodes: &[PeerNode],
    opts: &Options,
    book: &mut ProbeBook,
    problems: &mut Vec<Problem>,
) {
    use std::net::IpAddr;
    let wanted = probe::wanted(nodes, local, opts);
    let addrs: Vec<IpAddr> = wanted.iter().map(|(a, _)| *a).collect();
    book.retain(&addrs);
    let due = book.due(&addrs, std::time::Instant::now());
    // By link and family: (link, own address on it, gateway) → targets.
    let mut groups: Vec<((u32, IpAddr, IpAddr), Vec<IpAddr>)> = Vec::new();
    for (t, src) in wanted.iter().filter(|(t, _)| due.contains(t)) {
        let Some(link) = local.onlink(*t) else {
            continue;
        };
        let key = (link.ifindex, link.net.addr(), *src);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(*t),
            None => groups.push((key, vec![*t])),
        }
    }
    for ((ifindex, own, src), targets) in groups {
        let (tries, timeout) = (probe::PROBE_TRIES, probe::PROBE_TIMEOUT);
        let result = kernel::probe::echo(own, &targets, tries, timeout).and_then(|alive| {
            let fam = if src.is_ipv6() {
                IpFamily::V6
            } else {
                IpFamily::V4
            };
            let neigh = nl.neighbours(fam, Some(ifindex))?;
            let with_mac: Vec<(IpAddr, kernel::MacAddr)> = targets
                .iter()
                .filter(|t| alive.contains(t))
                .filter_map(|t| {
                    neigh
                        .iter()
                        .find(|n| n.ip == *t && n.mac.is_some())
                        .map(|n| (*t, n.mac.expect("filtered")))
                })
                .collect();
            let answered = if with_mac.is_empty() {
                Default::default()
            } else {
                kernel::probe::echo_on_link(src, ifindex, &with_mac, tries, timeout)?
            };
            Ok((with_mac, answered))
        });
        let now = std::time::Instant::now();
        match result {
            Ok((probed, answered)) => {
                let probed: Vec<IpAddr> = probed.iter().map(|(a, _)| *a).collect();
                let answered: Vec<IpAddr> = answered.into_iter().collect();
                book.record(&probed, &answered, now);
                let silent: Vec<IpAddr> = targets
                    .iter()
                    .filter(|t| !probed.contains(t))
                    .copied()
                    .collect();
                book.unreachable(&silent, now);
            }
            // The gateway is not on the bridge yet (this node's setup has not run): nothing
            // to say, the next pass tries again.
            Err(kernel::Error::Os { errno, .. }) if errno == libc::EADDRNOTAVAIL => {}
            Err(e) => problems.push(Problem::new(
                ProblemKind::ProbeFailed,
                format!(
                    "direct paths not verified yet (probe from {src}: {e}): on-link peers stay \
                     as they are"
                ),
                0,
            )),
        }
    }
    local.probes = book.verdicts();
}

/// One full pass: `nodes` (every Node, this one included, or not: see [`OwnNode`]) → this netns.
pub fn reconcile(
    nl: &Netlink,
    own: &OwnNode,
    nodes: &[PeerNode],
    opts: &Options,
    skip_links: &[String],
    book: &mut ProbeBook,
) -> Result<Report> {
    let mut local = local_facts(nl, own.node().clone(), skip_links)?;
    let mut report = Report::default();
    if matches!(own, OwnNode::Listed(_)) {
        probe(nl, &mut local, nodes, opts, book, &mut report.problems);
    } else {
        // Without this node's Node object its peers withdraw their routes to it, so their
        // answers to a pod-sourced probe have nowhere to go: a probe now would call every
        // direct path filtered. The verdicts stand as they are (never disrupt).
        local.probes = book.verdicts();
    }
    let d = desired(nodes, &local, opts);
    let device_problems = ensure_devices(nl, &d.devices, &mut report.changes);
    if !report.changes.is_empty() {
        report.kinds.insert("vxlan_device", report.changes.len());
    }
    let observed = observe(nl)?;
    let mut plan = diff(&d, &observed);
    if !own.may_remove() {
        plan = plan.without_removals();
    }
    report.problems.extend(
        own.problem()
            .map(|p| Problem::new(ProblemKind::OwnNodeMissing, p, 0)),
    );
    report.problems.extend(d.problems.iter().cloned());
    report.problems.extend(device_problems);
    report.problems.extend(plan.skipped.iter().cloned());
    (report.direct, report.vxlan) = (plan.direct, plan.vxlan);
    if let Err(f) = apply(nl, &plan, &mut report.changes, &mut report.kinds) {
        report.failed = f;
    }
    report.links = local
        .addresses
        .iter()
        .map(|a| a.ifindex)
        .chain(observed.devices.iter().map(|l| l.index))
        .collect();
    report.desired = d;
    Ok(report)
}

/// Removes everything the agent ever programmed in this netns: its routes (by protocol) and its
/// VXLAN devices (their FDB and neighbour entries go with them). For `node teardown`.
pub fn remove_all(nl: &Netlink, changes: &mut Changes) -> Result<()> {
    for fam in [IpFamily::V4, IpFamily::V6] {
        for r in nl.routes(fam)? {
            if r.protocol == ROUTE_PROTOCOL {
                nl.route_delete(&r).ok_if_not_found()?;
                changes.push(format!("removed route {}", r.dst));
            }
        }
    }
    for name in [VXLAN_DEVICE_V4, VXLAN_DEVICE_V6] {
        if let Some(l) = our_device(nl, name)? {
            if nl.link_delete(l.index).ok_if_not_found()?.is_some() {
                changes.push(format!("removed {name}"));
            }
        }
    }
    Ok(())
}
