//! Nodes + this node's facts → what the kernel should hold. Pure.

use super::model::{Backend, Local, Options, PeerNode};
use super::problem::{Problem, ProblemKind};
use super::vtep::vtep_mac;
use super::{vxlan_device, vxlan_overhead};
use ipnet::IpNet;
use kernel::{MacAddr, VxlanSpec};
use std::net::IpAddr;

/// How one peer pod CIDR is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// `dst via gateway`: the peer node's address is on one of our links.
    Direct { gateway: IpAddr },
    /// `dst via next_hop dev podwire.vxlan onlink`, `next_hop` resolved by a permanent neighbour
    /// entry to the peer's VTEP MAC, which a permanent FDB entry sends to the peer's address.
    Vxlan {
        vtep: IpAddr,
        mac: MacAddr,
        next_hop: IpAddr,
    },
}

/// Why a peer is reached the way it is (said in the log, per peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// On-link, and a pod-sourced probe over the direct path was answered.
    OnLinkVerified,
    /// On-link, not probed yet (or the probe could not be sent): direct, as before probing.
    OnLinkUnverified,
    /// On-link, but a pod-sourced probe was not answered: the fabric drops pod addresses.
    OnLinkFiltered,
    /// Its address is behind a router.
    NotOnLink,
    /// `--backend vxlan` or `--backend direct` says so.
    Forced,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::OnLinkVerified => "on-link and verified",
            Reason::OnLinkUnverified => "on-link, not verified yet",
            Reason::OnLinkFiltered => {
                "on-link but filtered (a probe from this node's pod gateway was not answered)"
            }
            Reason::NotOnLink => "not on-link",
            Reason::Forced => "as --backend says",
        }
    }
}

/// One peer pod CIDR and its way there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRoute {
    pub node: String,
    pub dst: IpNet,
    pub via: Via,
    pub why: Reason,
}

impl PeerRoute {
    pub fn is_v6(&self) -> bool {
        self.dst.addr().is_ipv6()
    }
}

/// Everything wanted, plus what cannot be routed and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Sorted by destination.
    pub routes: Vec<PeerRoute>,
    /// The VXLAN devices the routes need (at most one per family).
    pub devices: Vec<VxlanSpec>,
    /// One per peer CIDR left unrouted (one per family for VXLAN as a whole), and one per
    /// family whose VXLAN is held as it is.
    pub problems: Vec<Problem>,
    /// Families (`true`: IPv6) whose VXLAN device cannot be specified because this node's
    /// address in its Node object is not on its links (yet): the device in place, and the
    /// routes, FDB and neighbour entries through it, are kept; peers over VXLAN are still added
    /// through it.
    pub held: Vec<bool>,
}

/// The routes, devices and problems for `nodes` (which may include this node: it is skipped).
pub fn desired(nodes: &[PeerNode], local: &Local, opts: &Options) -> Desired {
    let mut d = Desired::default();
    let own = &local.node;
    for peer in nodes.iter().filter(|n| n.name != own.name) {
        for cidr in &peer.pod_cidrs {
            match route_for(peer, cidr, local, opts) {
                Ok(r) => d.routes.push(r),
                Err((kind, why)) => d.problems.push(Problem::peer(
                    kind,
                    format!("node {}: {cidr}: {why}", peer.name),
                )),
            }
        }
    }
    d.routes.sort_by_key(|r| r.dst);
    // Two nodes claiming one pod CIDR (a controller-manager mistake or a stale Node): routing
    // either would be a guess, so neither is routed.
    let mut i = 0;
    while i < d.routes.len() {
        let j = (i..d.routes.len())
            .find(|&j| d.routes[j].dst != d.routes[i].dst)
            .unwrap_or(d.routes.len());
        if j - i > 1 {
            let names: Vec<String> = d.routes[i..j].iter().map(|r| r.node.clone()).collect();
            d.problems.push(Problem::new(
                ProblemKind::PodCidrConflict,
                format!(
                    "pod CIDR {} is claimed by nodes {}: not routed",
                    d.routes[i].dst,
                    names.join(", ")
                ),
                j - i,
            ));
            d.routes.drain(i..j);
        } else {
            i = j;
        }
    }
    for v6 in [false, true] {
        if !d.routes.iter().any(|r| r.is_v6() == v6 && is_vxlan(r)) {
            continue;
        }
        let fam = if v6 { "IPv6" } else { "IPv4" };
        match device_for(local, opts, v6) {
            Ok(spec) => d.devices.push(spec),
            Err(DeviceProblem::Disagree(why)) => {
                // Kernel and Node disagree on this node's address (a DHCP renewal, a NIC
                // swapped, one of the two not updated yet): the device in place and its peers
                // are kept as they are, and made again once the two agree (never disrupt).
                d.problems.push(Problem::new(
                    ProblemKind::OwnAddressMismatch,
                    format!(
                        "VXLAN for {fam} pod CIDRs kept as it is: {why}; it follows once they agree"
                    ),
                    0,
                ));
                d.held.push(v6);
            }
            Err(DeviceProblem::Missing(why)) => {
                let before = d.routes.len();
                d.routes.retain(|r| r.is_v6() != v6 || !is_vxlan(r));
                d.problems.push(Problem::new(
                    ProblemKind::NoVxlan,
                    format!("no VXLAN for {fam} pod CIDRs: {why}: those peers are not routed"),
                    before - d.routes.len(),
                ));
            }
        }
    }
    d
}

fn is_vxlan(r: &PeerRoute) -> bool {
    matches!(r.via, Via::Vxlan { .. })
}

fn route_for(
    peer: &PeerNode,
    cidr: &IpNet,
    local: &Local,
    opts: &Options,
) -> Result<PeerRoute, (ProblemKind, String)> {
    use ProblemKind::*;
    // Checked first: a CIDR outside the cluster's (128.0.0.0/1, the underlay's prefix) would take
    // this node's egress or cut it from its peers, whatever else is right about it.
    opts.cluster_cidr_of(cidr)
        .map_err(|why| (PodCidrOutsideCluster, why))?;
    if let Some(a) = local
        .addresses
        .iter()
        .find(|a| overlaps(&a.net.trunc(), cidr))
    {
        return Err((
            PodCidrOverlap,
            format!(
                "overlaps this node's own network {} (link #{})",
                a.net.trunc(),
                a.ifindex
            ),
        ));
    }
    let addr = peer.address_for(cidr).ok_or_else(|| {
        let fam = if cidr.addr().is_ipv4() {
            "IPv4"
        } else {
            "IPv6"
        };
        (
            PeerNoAddress,
            format!("the node has no {fam} InternalIP or ExternalIP"),
        )
    })?;
    if let Some(own) = local.node.pod_cidr(cidr.addr().is_ipv6()) {
        if own.contains(cidr) || cidr.contains(&own) {
            return Err((
                PodCidrOverlap,
                format!("overlaps this node's pod CIDR {own}"),
            ));
        }
    }
    let onlink = local.onlink(addr).is_some();
    let (direct, why) = match opts.backend {
        Backend::Auto if onlink => match local.probes.get(&addr) {
            Some(true) => (true, Reason::OnLinkVerified),
            Some(false) => (false, Reason::OnLinkFiltered),
            None => (true, Reason::OnLinkUnverified),
        },
        Backend::Auto => (false, Reason::NotOnLink),
        Backend::Vxlan => (false, Reason::Forced),
        Backend::Direct if onlink => (true, Reason::Forced),
        Backend::Direct => {
            return Err((
                PeerNotOnLink,
                format!("its address {addr} is not on-link and --backend is direct"),
            ))
        }
    };
    let via = if direct {
        Via::Direct { gateway: addr }
    } else {
        Via::Vxlan {
            vtep: addr,
            mac: vtep_mac(*cidr),
            next_hop: cidr.network(),
        }
    };
    Ok(PeerRoute {
        node: peer.name.clone(),
        dst: cidr.trunc(),
        via,
        why,
    })
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// Why no VXLAN device can be specified for a family.
enum DeviceProblem {
    /// This node's Node object and its links disagree on its address: what is in place stays.
    Disagree(String),
    /// Nothing to build one from (no pod CIDR of the family, or the Node is not known yet).
    Missing(String),
}

fn device_for(local: &Local, opts: &Options, v6: bool) -> Result<VxlanSpec, DeviceProblem> {
    let own = local.node.pod_cidr(v6).ok_or_else(|| {
        DeviceProblem::Missing(format!(
            "this node ({}) has no pod CIDR of that family",
            local.node.name
        ))
    })?;
    let (ip, link) = local.underlay(v6).ok_or_else(|| {
        let probe: IpNet = if v6 {
            "::/0".parse().unwrap()
        } else {
            "0.0.0.0/0".parse().unwrap()
        };
        let why = match local.node.address_for(&probe) {
            Some(a) => format!(
                "this node's address {a} in its Node object ({}) is on none of its links",
                local.node.name
            ),
            None => format!(
                "this node's Node object ({}) has no address of that family",
                local.node.name
            ),
        };
        DeviceProblem::Disagree(why)
    })?;
    let mut spec = VxlanSpec::new(vxlan_device(v6), opts.vni, opts.port);
    spec.local = Some(ip);
    spec.underlay = Some(link.ifindex);
    spec.mtu = Some(link.mtu.saturating_sub(vxlan_overhead(ip.is_ipv6())));
    spec.mac = Some(vtep_mac(own));
    Ok(spec)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::peers::model::LocalAddress;

    pub fn node(name: &str, cidrs: &[&str], internal: &[&str]) -> PeerNode {
        PeerNode {
            name: name.into(),
            pod_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            internal: internal.iter().map(|a| a.parse().unwrap()).collect(),
            external: vec![],
        }
    }

    /// The agent's options for the fixtures' cluster: 10.244.0.0/16 and fd00:244::/32.
    pub fn opts() -> Options {
        Options {
            cluster_cidrs: vec![
                "10.244.0.0/16".parse().unwrap(),
                "fd00:244::/32".parse().unwrap(),
            ],
            ..Options::default()
        }
    }

    /// n1 on 192.168.10.0/24 (eth0, #2, MTU 1500) and fd10::/64.
    pub fn local() -> Local {
        Local {
            node: node(
                "n1",
                &["10.244.1.0/24", "fd00:244:1::/64"],
                &["192.168.10.1", "fd10::1"],
            ),
            addresses: vec![
                LocalAddress {
                    net: "192.168.10.1/24".parse().unwrap(),
                    ifindex: 2,
                    mtu: 1500,
                },
                LocalAddress {
                    net: "fd10::1/64".parse().unwrap(),
                    ifindex: 2,
                    mtu: 1500,
                },
            ],
            probes: Default::default(),
        }
    }

    pub fn cluster() -> Vec<PeerNode> {
        vec![
            local().node,
            node(
                "n2",
                &["10.244.2.0/24", "fd00:244:2::/64"],
                &["192.168.10.2", "fd10::2"],
            ),
            node(
                "n3",
                &["10.244.3.0/24", "fd00:244:3::/64"],
                &["192.168.20.3", "fd20::3"],
            ),
        ]
    }

    #[test]
    fn on_link_peers_get_direct_routes_others_vxlan() {
        let d = desired(&cluster(), &local(), &opts());
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let by_dst = |s: &str| {
            d.routes
                .iter()
                .find(|r| r.dst == s.parse::<IpNet>().unwrap())
                .unwrap()
                .via
                .clone()
        };
        assert_eq!(
            by_dst("10.244.2.0/24"),
            Via::Direct {
                gateway: "192.168.10.2".parse().unwrap()
            }
        );
        assert_eq!(
            by_dst("fd00:244:2::/64"),
            Via::Direct {
                gateway: "fd10::2".parse().unwrap()
            }
        );
        match by_dst("10.244.3.0/24") {
            Via::Vxlan {
                vtep,
                mac,
                next_hop,
            } => {
                assert_eq!(vtep, "192.168.20.3".parse::<IpAddr>().unwrap());
                assert_eq!(mac, vtep_mac("10.244.3.0/24".parse().unwrap()));
                assert_eq!(next_hop, "10.244.3.0".parse::<IpAddr>().unwrap());
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(by_dst("fd00:244:3::/64"), Via::Vxlan { .. }));
        assert_eq!(d.routes.len(), 4, "this node is never routed to");
        // One device per family, MTU = underlay - 50 / - 70, own MAC from own pod CIDR.
        assert_eq!(d.devices.len(), 2);
        let v4 = &d.devices[0];
        assert_eq!(v4.name, "podwire.vxlan");
        assert_eq!(v4.mtu, Some(1450));
        assert_eq!(v4.local, Some("192.168.10.1".parse().unwrap()));
        assert_eq!(v4.underlay, Some(2));
        assert!(!v4.learning);
        assert_eq!(v4.mac, Some(vtep_mac("10.244.1.0/24".parse().unwrap())));
        assert_eq!(
            (d.devices[1].name.as_str(), d.devices[1].mtu),
            ("podwire.vxlan6", Some(1430))
        );
    }

    /// Issue #23 part 2: an on-link peer whose probe went unanswered is reached over VXLAN;
    /// one that answered, or not probed yet, directly; each says why.
    #[test]
    fn on_link_peers_whose_probe_is_not_answered_go_over_vxlan() {
        let mut l = local();
        l.probes.insert("192.168.10.2".parse().unwrap(), false);
        l.probes.insert("fd10::2".parse().unwrap(), true);
        let d = desired(&cluster(), &l, &opts());
        let of = |dst: &str| {
            d.routes
                .iter()
                .find(|r| r.dst == dst.parse::<IpNet>().unwrap())
                .unwrap()
                .clone()
        };
        let v4 = of("10.244.2.0/24");
        assert!(is_vxlan(&v4), "{v4:?}");
        assert_eq!(v4.why, Reason::OnLinkFiltered);
        match v4.via {
            Via::Vxlan { vtep, .. } => assert_eq!(vtep, "192.168.10.2".parse::<IpAddr>().unwrap()),
            v => panic!("{v:?}"),
        }
        assert_eq!(of("fd00:244:2::/64").why, Reason::OnLinkVerified);
        assert!(!is_vxlan(&of("fd00:244:2::/64")));
        assert_eq!(of("10.244.3.0/24").why, Reason::NotOnLink);
        // Not probed: direct, as before.
        let d = desired(&cluster(), &local(), &opts());
        assert_eq!(d.routes[0].why, Reason::OnLinkUnverified);
        assert!(!is_vxlan(&d.routes[0]));
        // Forced backends ignore probes.
        let vx = Options {
            backend: Backend::Vxlan,
            ..opts()
        };
        let d = desired(&cluster(), &l, &vx);
        assert!(d.routes.iter().all(|r| r.why == Reason::Forced));
    }

    #[test]
    fn backends_force_one_way() {
        let o = |b| Options {
            backend: b,
            ..opts()
        };
        let d = desired(&cluster(), &local(), &o(Backend::Vxlan));
        assert!(d.routes.iter().all(is_vxlan));
        let d = desired(&cluster(), &local(), &o(Backend::Direct));
        assert!(d.routes.iter().all(|r| !is_vxlan(r)));
        assert_eq!(d.routes.len(), 2);
        assert_eq!(
            d.problems.len(),
            2,
            "n3's two CIDRs are said, not dropped silently"
        );
        assert!(
            d.problems[0].text.contains("not on-link"),
            "{:?}",
            d.problems
        );
        assert_eq!(d.problems[0].kind, ProblemKind::PeerNotOnLink);
        assert_eq!(d.problems[0].unrouted, 1);
        assert!(d.devices.is_empty(), "no device when nothing needs it");
    }

    #[test]
    fn address_family_follows_the_pod_cidr_and_external_ip_is_the_fallback() {
        let mut n = node(
            "n4",
            &["10.244.4.0/24", "fd00:244:4::/64"],
            &["192.168.10.4"],
        );
        n.external = vec!["fd10::4".parse().unwrap(), "192.168.10.99".parse().unwrap()];
        let d = desired(&[n], &local(), &opts());
        assert_eq!(d.routes.len(), 2);
        assert_eq!(
            d.routes[0].via,
            Via::Direct {
                gateway: "192.168.10.4".parse().unwrap()
            },
            "InternalIP before ExternalIP"
        );
        assert_eq!(
            d.routes[1].via,
            Via::Direct {
                gateway: "fd10::4".parse().unwrap()
            }
        );
        let no_v6 = node("n5", &["fd00:244:5::/64"], &["192.168.10.5"]);
        let d = desired(&[no_v6], &local(), &opts());
        assert!(d.routes.is_empty());
        assert!(d.problems[0].text.contains("no IPv6"), "{:?}", d.problems);
    }

    #[test]
    fn nodes_without_cidr_duplicates_and_overlaps_are_not_routed() {
        let nodes = vec![
            node("pending", &[], &["192.168.10.7"]),
            node("a", &["10.244.9.0/24"], &["192.168.10.8"]),
            node("b", &["10.244.9.0/24"], &["192.168.10.9"]),
            node("c", &["10.244.1.0/25"], &["192.168.10.10"]),
        ];
        let d = desired(&nodes, &local(), &opts());
        assert!(d.routes.is_empty(), "{:?}", d.routes);
        assert_eq!(d.problems.len(), 2, "{:?}", d.problems);
        assert!(d
            .problems
            .iter()
            .any(|p| p.text.contains("claimed by nodes a, b")
                && p.kind == ProblemKind::PodCidrConflict
                && p.unrouted == 2));
        assert!(d
            .problems
            .iter()
            .any(|p| p.text.contains("overlaps") && p.kind == ProblemKind::PodCidrOverlap));
    }

    #[test]
    fn no_own_pod_cidr_means_no_vxlan_and_a_reason() {
        let mut l = local();
        l.node.pod_cidrs.clear();
        let d = desired(&cluster(), &l, &opts());
        assert!(d.routes.iter().all(|r| !is_vxlan(r)), "{:?}", d.routes);
        assert!(d.devices.is_empty());
        assert!(d.held.is_empty());
        assert!(
            d.problems
                .iter()
                .any(|p| p.text.contains("no VXLAN for IPv4")
                    && p.kind == ProblemKind::NoVxlan
                    && p.unrouted == 1), // n3 (n2 is on-link: direct)
            "{:?}",
            d.problems
        );
    }

    /// Issue #23 part 3: kernel and Node disagree on this node's address (either changed
    /// first): the VXLAN peers stay wanted as they are, no device is specified (the one in place
    /// stays), and it says why. Once they agree the device is specified on the new address.
    #[test]
    fn an_own_address_change_holds_vxlan_until_kernel_and_node_agree() {
        // Kernel first: eth0 now holds .11, the Node still says .1.
        let mut l = local();
        l.addresses[0].net = "192.168.10.11/24".parse().unwrap();
        let d = desired(&cluster(), &l, &opts());
        assert_eq!(d.held, vec![false]);
        assert!(d
            .routes
            .iter()
            .any(|r| r.node == "n3" && !r.is_v6() && is_vxlan(r)));
        assert_eq!(d.devices.len(), 1, "IPv6 is unaffected");
        assert!(d.devices[0].name.ends_with("vxlan6"));
        assert!(
            d.problems.iter().any(|p| p.text.contains("kept as it is")
                && p.text.contains("192.168.10.1 ")
                && p.kind == ProblemKind::OwnAddressMismatch),
            "{:?}",
            d.problems
        );
        // Node first: the Node says fd10::11, the kernel still has fd10::1.
        let mut l = local();
        l.node.internal[1] = "fd10::11".parse().unwrap();
        let d = desired(&cluster(), &l, &opts());
        assert_eq!(d.held, vec![true]);
        assert_eq!(d.routes.len(), 4);
        // They agree: the device on the new address, nothing held.
        l.addresses[1].net = "fd10::11/64".parse().unwrap();
        let d = desired(&cluster(), &l, &opts());
        assert!(d.held.is_empty());
        assert_eq!(d.devices[1].local, Some("fd10::11".parse().unwrap()));
        // A Node without any address of the family holds too (never disrupt).
        let mut l = local();
        l.node.internal.truncate(1);
        let d = desired(&cluster(), &l, &opts());
        assert_eq!(d.held, vec![true]);
    }

    /// A wrong Node object (a CIDR taking all egress, the underlay's own prefix, another
    /// network) is reported and not routed; the others are.
    #[test]
    fn peer_cidrs_outside_the_cluster_cidr_or_over_the_underlay_are_not_routed() {
        let nodes = vec![
            local().node,
            node("half", &["128.0.0.0/1"], &["192.168.10.20"]),
            node("all", &["::/0"], &["fd10::21"]),
            node("lan", &["192.168.10.0/25"], &["192.168.10.22"]),
            node("other", &["10.99.0.0/24"], &["192.168.10.23"]),
            node("wide", &["10.0.0.0/8"], &["192.168.10.24"]),
            node("good", &["10.244.5.0/24"], &["192.168.10.25"]),
        ];
        let d = desired(&nodes, &local(), &opts());
        let dsts: Vec<String> = d.routes.iter().map(|r| r.dst.to_string()).collect();
        assert_eq!(dsts, vec!["10.244.5.0/24"], "{:?}", d.problems);
        assert_eq!(d.problems.len(), 5, "{:?}", d.problems);
        let said = |node: &str, what: &str| {
            d.problems
                .iter()
                .any(|p| p.text.starts_with(&format!("node {node}:")) && p.text.contains(what))
        };
        assert!(said("half", "outside the cluster CIDR 10.244.0.0/16"));
        assert!(said("all", "outside the cluster CIDR fd00:244::/32"));
        assert!(said("lan", "outside the cluster CIDR"));
        assert!(said("other", "outside the cluster CIDR"));
        assert!(said("wide", "outside the cluster CIDR"));
        assert!(d
            .problems
            .iter()
            .all(|p| p.kind == ProblemKind::PodCidrOutsideCluster));
        // Inside the cluster CIDR but over this node's own network: not routed either.
        let mut o = opts();
        o.cluster_cidrs.push("192.168.0.0/16".parse().unwrap());
        let d = desired(&nodes, &local(), &o);
        assert!(d.problems.iter().any(|p| p.text.starts_with("node lan:")
            && p.text
                .contains("overlaps this node's own network 192.168.10.0/24")));
        assert!(!d.routes.iter().any(|r| r.node == "lan"));
        // A family without a cluster CIDR routes nothing of that family, and says why.
        let v4_only = Options {
            cluster_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
            ..Options::default()
        };
        let d = desired(&cluster(), &local(), &v4_only);
        assert!(d.routes.iter().all(|r| !r.is_v6()));
        assert_eq!(d.routes.len(), 2);
        assert!(d.problems.iter().any(|p| p.text.contains("fd00:244:2::/64")
            && p.text.contains("no cluster CIDR of its family")));
    }
}
