//! The pods' MTU when `--mtu` is not given: the underlay's, less room for the encapsulation in
//! use (issue #23). podwire lowers the pods' MTU, as Calico and flannel do, rather than the MTU of
//! the pods' routes, as Cilium does: see docs/multi-node.md#mtu for why.
//!
//! [`choose`] is pure; [`candidates`] reads the kernel (the links carrying this node's default
//! routes and its addresses).

use cni::{Error, Result};
use kernel::{IpFamily, Netlink};
use std::net::IpAddr;

/// VXLAN's encapsulation overhead: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
pub const VXLAN_V4_OVERHEAD: u32 = 50;
/// The same over IPv6 (outer header 40).
pub const VXLAN_V6_OVERHEAD: u32 = 70;

/// A link the node's traffic leaves through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    /// Why it counts: "default route", "holds 10.0.0.1".
    pub why: String,
}

/// What the pods' MTU is, and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The pods' (and the bridge's) MTU.
    pub pod: u32,
    /// `None`: given with `--mtu`.
    pub underlay: Option<Candidate>,
    /// Bytes left for encapsulation.
    pub overhead: u32,
    /// What the overhead is for ("VXLAN over IPv6", "no encapsulation").
    pub encap: &'static str,
}

impl Choice {
    /// One line for the log, the headline and the bridge's alias:
    /// `mtu 1430 = eth0 1500 (default route) - 70 (VXLAN over IPv6)`.
    pub fn describe(&self) -> String {
        match &self.underlay {
            None => format!("mtu {} (--mtu)", self.pod),
            Some(u) => format!(
                "mtu {} = {} {} ({}) - {} ({})",
                self.pod, u.name, u.mtu, u.why, self.overhead, self.encap
            ),
        }
    }
}

/// The room to leave: VXLAN over IPv6 when the node has IPv6 pods (their peers over VXLAN go
/// over the IPv6 underlay), over IPv4 otherwise; nothing when only direct routes are used
/// (`--backend direct`). One interface carries both families, so the larger one counts.
pub fn overhead(vxlan: bool, v6_pods: bool) -> (u32, &'static str) {
    match (vxlan, v6_pods) {
        (false, _) => (0, "no encapsulation"),
        (true, true) => (VXLAN_V6_OVERHEAD, "VXLAN over IPv6"),
        (true, false) => (VXLAN_V4_OVERHEAD, "VXLAN over IPv4"),
    }
}

/// The smallest of the candidates, less the overhead; `None` without a candidate (a node with
/// no default route and no known address: the kernel's default stays).
pub fn choose(candidates: &[Candidate], vxlan: bool, v6_pods: bool) -> Option<Choice> {
    let smallest = candidates.iter().min_by_key(|c| (c.mtu, c.index))?;
    let (overhead, encap) = overhead(vxlan, v6_pods);
    let mut pod = smallest.mtu.saturating_sub(overhead).max(68);
    if v6_pods {
        pod = pod.max(1280.min(smallest.mtu));
    }
    Some(Choice {
        pod,
        underlay: Some(smallest.clone()),
        overhead,
        encap,
    })
}

/// The pods' MTU for `c`: `--mtu` if given, else found from the underlay (`None`: nothing
/// found, the kernel's default stays).
pub fn resolve(nl: &Netlink, c: &crate::config::NodeConfig) -> Result<Option<Choice>> {
    if let Some(m) = c.mtu {
        return Ok(Some(given(m)));
    }
    let v6 = c.pod_cidrs.iter().any(|p| p.addr().is_ipv6());
    let found = candidates(nl, &c.node_addresses, &[c.bridge.as_str()])?;
    Ok(choose(&found, c.vxlan, v6))
}

/// Brings every podwire pod on `bridge` to `mtu` in place: the host end of its veth and the
/// pod's end (in the pod's netns, reached by its id without entering it). A pod that cannot be
/// changed is said and skipped; the next pass retries it.
pub fn follow(nl: &Netlink, bridge: &str, mtu: u32, changes: &mut crate::Changes) -> Vec<String> {
    let mut failed = Vec::new();
    let Ok(links) = nl.links() else {
        return vec!["list links".into()];
    };
    let Some(br) = links.iter().find(|l| l.name == bridge) else {
        return failed;
    };
    // A pod whose host end has the MTU has it on both ends (the plugin makes them alike, and
    // this changes the pod's end first).
    let stale: Vec<&kernel::Link> = links
        .iter()
        .filter(|l| {
            l.master == Some(br.index)
                && l.mtu != mtu
                && l.kind.as_deref() == Some("veth")
                && l.alias
                    .as_deref()
                    .is_some_and(|a| a.starts_with("podwire/"))
        })
        .collect();
    if stale.is_empty() {
        return failed;
    }
    let namespaces = pod_namespaces();
    for l in stale {
        // The pod's end first: lowering, the pod never sends what its host end would drop.
        if l.peer_netnsid.is_some() {
            match pod_end(&namespaces, l) {
                Some((pnl, pod)) => {
                    if let Err(e) = pnl.link_set_mtu(pod.index, mtu) {
                        failed.push(format!("{}: pod side: {e}", l.name));
                        continue;
                    }
                }
                None => {
                    failed.push(format!("{}: its pod's network namespace not found", l.name));
                    continue;
                }
            }
        }
        match nl.link_set_mtu(l.index, mtu) {
            Ok(()) => changes.push(format!("pod veth {} and its pod's end: mtu {mtu}", l.name)),
            Err(e) => failed.push(format!("{}: {e}", l.name)),
        }
    }
    failed
}

/// The network namespaces pods may be in: the named ones (containerd's and CRI-O's cni-*),
/// then every process's (Docker's), each once.
fn pod_namespaces() -> Vec<kernel::Netns> {
    use std::os::unix::fs::MetadataExt;
    let mut paths: Vec<std::path::PathBuf> = kernel::Netns::list()
        .unwrap_or_default()
        .into_iter()
        .map(|n| std::path::Path::new(kernel::netns::NETNS_RUN_DIR).join(n))
        .collect();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                paths.push(e.path().join("ns/net"));
            }
        }
    }
    let here = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok();
    let mut seen = std::collections::HashSet::new();
    paths
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| Some(m.ino()) != here && seen.insert(m.ino()))
                .unwrap_or(false)
        })
        .filter_map(|p| kernel::Netns::open(&p).ok())
        .collect()
}

/// The pod's end of host veth `host`: in one of `namespaces`, a veth whose peer is `host`'s
/// index, with `host`'s MTU (indexes repeat across namespaces: both must match).
fn pod_end(namespaces: &[kernel::Netns], host: &kernel::Link) -> Option<(Netlink, kernel::Link)> {
    namespaces.iter().find_map(|ns| {
        let nl = Netlink::new_in(ns).ok()?;
        let l = nl.link(host.peer_index?).ok()?;
        (l.kind.as_deref() == Some("veth")
            && l.peer_index == Some(host.index)
            && l.peer_netnsid.is_some()
            && l.mtu == host.mtu)
            .then_some((nl, l))
    })
}

/// The given MTU as a choice.
pub fn given(mtu: u32) -> Choice {
    Choice {
        pod: mtu,
        underlay: None,
        overhead: 0,
        encap: "given",
    }
}

/// The links carrying this node's default routes (both families) and those holding
/// `node_addresses` (its Node object's), except `skip` (the pod bridge) and podwire's own.
pub fn candidates(
    nl: &Netlink,
    node_addresses: &[IpAddr],
    skip: &[&str],
) -> Result<Vec<Candidate>> {
    let kerr = |e: kernel::Error| Error::io(e.to_string());
    let links = nl.links().map_err(kerr)?;
    let mut out: Vec<Candidate> = Vec::new();
    let mut add = |index: u32, why: String| {
        let Some(l) = links.iter().find(|l| l.index == index) else {
            return;
        };
        if skip.contains(&l.name.as_str()) || l.name.starts_with("podwire.") || l.name == "lo" {
            return;
        }
        match out.iter_mut().find(|c| c.index == index) {
            Some(c) => {
                if !c.why.contains(&why) {
                    c.why = format!("{}, {why}", c.why);
                }
            }
            None => out.push(Candidate {
                name: l.name.clone(),
                index,
                mtu: l.mtu,
                why,
            }),
        }
    };
    for fam in [IpFamily::V4, IpFamily::V6] {
        for r in nl.routes(fam).map_err(kerr)? {
            if r.table == kernel::TABLE_MAIN && r.dst.prefix_len() == 0 {
                if let Some(oif) = r.oif {
                    add(oif, "default route".into());
                }
            }
        }
    }
    for a in nl.addresses(None, None).map_err(kerr)? {
        if node_addresses.contains(&a.net.addr()) {
            add(a.index, format!("holds {}", a.net.addr()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, index: u32, mtu: u32) -> Candidate {
        Candidate {
            name: name.into(),
            index,
            mtu,
            why: "default route".into(),
        }
    }

    #[test]
    fn the_smallest_underlay_less_the_encapsulation() {
        // OpenStack over VXLAN: 1450; a second uplink at 9000 does not raise it.
        let c = choose(&[cand("eth1", 3, 9000), cand("eth0", 2, 1450)], true, false).unwrap();
        assert_eq!(c.pod, 1400);
        assert_eq!(c.underlay.as_ref().unwrap().name, "eth0");
        assert_eq!(
            c.describe(),
            "mtu 1400 = eth0 1450 (default route) - 50 (VXLAN over IPv4)"
        );
        // GCE's 1460 with dual-stack pods: IPv6 VXLAN needs 70.
        assert_eq!(
            choose(&[cand("ens4", 2, 1460)], true, true).unwrap().pod,
            1390
        );
        // --backend direct: nothing to leave room for.
        assert_eq!(
            choose(&[cand("ens4", 2, 1460)], false, true).unwrap().pod,
            1460
        );
        // Jumbo frames: 8950.
        assert_eq!(
            choose(&[cand("eth0", 2, 9000)], true, false).unwrap().pod,
            8950
        );
        // Nothing found: the kernel's default stays.
        assert_eq!(choose(&[], true, true), None);
        assert_eq!(given(1400).describe(), "mtu 1400 (--mtu)");
    }

    #[test]
    fn ipv6_pods_never_get_below_the_ipv6_minimum() {
        // 1300 - 70 would be 1230, below IPv6's 1280: the pods keep 1280 (their packets to VXLAN
        // peers then need PMTU discovery, as today).
        assert_eq!(
            choose(&[cand("wg0", 5, 1300)], true, true).unwrap().pod,
            1280
        );
    }
}
