//! What is wanted against what the kernel holds → the changes, in an order that never sends a
//! packet the kernel cannot resolve: FDB entries, then neighbours, then routes when adding; the
//! reverse when removing. Pure: a resync where nothing changed yields no change at all.

use super::desired::{Desired, Via};
use super::problem::{Problem, ProblemKind};
use super::ROUTE_PROTOCOL;
use ipnet::IpNet;
use kernel::MacAddr;
use kernel::{FdbEntry, Link, Neighbour, Route, TABLE_MAIN};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// What the kernel holds that the agent cares about.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// podwire's VXLAN devices present now.
    pub devices: Vec<Link>,
    /// The main table's routes, both families (the agent's are those with `ROUTE_PROTOCOL`).
    pub routes: Vec<Route>,
    /// Neighbour entries on podwire's VXLAN devices.
    pub neighbours: Vec<Neighbour>,
    /// FDB entries on podwire's VXLAN devices.
    pub fdb: Vec<FdbEntry>,
}

impl Observed {
    fn device_index(&self, v6: bool) -> Option<u32> {
        let name = super::vxlan_device(v6);
        self.devices
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
    }

    fn ours(&self) -> impl Iterator<Item = &Route> {
        self.routes
            .iter()
            .filter(|r| r.protocol == ROUTE_PROTOCOL && r.table == TABLE_MAIN)
    }
}

/// One kernel write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    AddFdb(FdbEntry),
    AddNeighbour(Neighbour),
    ReplaceRoute(Route),
    DeleteRoute(Route),
    DeleteNeighbour(Neighbour),
    DeleteFdb(FdbEntry),
}

impl Change {
    /// What it changes, as the agent's metrics count it.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::AddFdb(_) => "fdb",
            Change::AddNeighbour(_) => "neighbour",
            Change::ReplaceRoute(_) => "route",
            Change::DeleteRoute(_) => "route_removed",
            Change::DeleteNeighbour(_) => "neighbour_removed",
            Change::DeleteFdb(_) => "fdb_removed",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dst = |d: &Option<std::net::IpAddr>| d.map(|a| a.to_string()).unwrap_or_default();
        match self {
            Change::AddFdb(e) => write!(f, "fdb {} dst {} on #{}", e.mac, dst(&e.dst), e.ifindex),
            Change::AddNeighbour(n) => write!(
                f,
                "neighbour {} lladdr {} on #{}",
                n.ip,
                n.mac.map(|m| m.to_string()).unwrap_or_default(),
                n.ifindex
            ),
            Change::ReplaceRoute(r) => write!(f, "route {}", describe(r)),
            Change::DeleteRoute(r) => write!(f, "removed route {}", describe(r)),
            Change::DeleteNeighbour(n) => write!(f, "removed neighbour {} on #{}", n.ip, n.ifindex),
            Change::DeleteFdb(e) => write!(
                f,
                "removed fdb {} dst {} on #{}",
                e.mac,
                dst(&e.dst),
                e.ifindex
            ),
        }
    }
}

fn describe(r: &Route) -> String {
    let mut s = r.dst.to_string();
    if let Some(g) = r.gateway {
        s += &format!(" via {g}");
    }
    if let Some(o) = r.oif {
        s += &format!(" dev #{o}");
    }
    if r.onlink {
        s += " onlink";
    }
    s
}

/// The changes, plus what was left alone and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub skipped: Vec<Problem>,
    /// Peer pod CIDRs routed once the plan is applied, directly and over VXLAN.
    pub direct: usize,
    pub vxlan: usize,
}

impl Plan {
    /// Only what adds or replaces: nothing in place is removed (while this node's own Node
    /// object is unknown, the desired state cannot be trusted to be complete).
    pub fn without_removals(mut self) -> Plan {
        self.changes.retain(|c| {
            !matches!(
                c,
                Change::DeleteRoute(_) | Change::DeleteNeighbour(_) | Change::DeleteFdb(_)
            )
        });
        self
    }
}

/// The route the agent writes for a peer CIDR.
fn wanted_route(dst: IpNet, via: &Via, vxlan_index: Option<u32>) -> Option<Route> {
    let r = Route::new(dst).protocol(ROUTE_PROTOCOL);
    Some(match via {
        Via::Direct { gateway } => r.via(*gateway),
        Via::Vxlan { next_hop, .. } => r.via(*next_hop).dev(vxlan_index?).onlink(),
    })
}

/// Whether the kernel's route is the one wanted (the kernel fills in what was left out, e.g.
/// the output link of a direct route).
fn same_route(want: &Route, have: &Route) -> bool {
    want.gateway == have.gateway
        && want.onlink == have.onlink
        && (want.oif.is_none() || want.oif == have.oif)
}

/// Diffs `d` against `o`. VXLAN devices are expected to be in place already (created before
/// observing); a VXLAN route whose device is missing is skipped and said.
pub fn diff(d: &Desired, o: &Observed) -> Plan {
    let mut plan = Plan::default();
    let mut fdb_add = Vec::new();
    let mut neigh_add = Vec::new();
    let mut route_add = Vec::new();
    // Indexes of what the kernel holds: a diff is linear in peers, whatever their number.
    let fdb_have: HashSet<(u32, MacAddr, Option<IpAddr>)> =
        o.fdb.iter().map(|e| (e.ifindex, e.mac, e.dst)).collect();
    let neigh_have: HashSet<&Neighbour> = o.neighbours.iter().collect();
    let mut routes_have: HashMap<IpNet, Vec<&Route>> = HashMap::new();
    for r in o.routes.iter().filter(|r| r.table == TABLE_MAIN) {
        routes_have.entry(r.dst).or_default().push(r);
    }
    let mut want_routes: HashSet<IpNet> = HashSet::new();
    let mut want_neigh: HashSet<(u32, IpAddr)> = HashSet::new();
    let mut want_fdb: HashSet<(u32, MacAddr, Option<IpAddr>)> = HashSet::new();

    for pr in &d.routes {
        let dev = o.device_index(pr.is_v6());
        let Some(want) = wanted_route(pr.dst, &pr.via, dev) else {
            plan.skipped.push(Problem::peer(
                ProblemKind::VxlanDevice,
                format!("{} (node {}): its VXLAN device is missing", pr.dst, pr.node),
            ));
            continue;
        };
        want_routes.insert(pr.dst);
        if let (
            Via::Vxlan {
                vtep,
                mac,
                next_hop,
            },
            Some(dev),
        ) = (&pr.via, dev)
        {
            let key = (dev, *mac, Some(*vtep));
            if !fdb_have.contains(&key) {
                fdb_add.push(Change::AddFdb(FdbEntry {
                    ifindex: dev,
                    mac: *mac,
                    dst: Some(*vtep),
                    permanent: true,
                }));
            }
            want_fdb.insert(key);
            let n = Neighbour {
                ifindex: dev,
                ip: *next_hop,
                mac: Some(*mac),
                permanent: true,
            };
            want_neigh.insert((dev, *next_hop));
            if !neigh_have.contains(&n) {
                neigh_add.push(Change::AddNeighbour(n));
            }
        }
        let same_dst = routes_have.get(&pr.dst).map(Vec::as_slice).unwrap_or(&[]);
        let routed = match same_dst.iter().find(|r| r.protocol == ROUTE_PROTOCOL) {
            Some(have) if same_route(&want, have) => true,
            // IPv6 checks an onlink gateway against the table, where the route being replaced
            // (direct, through the underlay) still holds it: "device mismatch". It goes first.
            Some(have) if pr.is_v6() && want.onlink && !have.onlink => {
                route_add.push(Change::DeleteRoute((*have).clone()));
                route_add.push(Change::ReplaceRoute(want));
                true
            }
            Some(_) => {
                route_add.push(Change::ReplaceRoute(want));
                true
            }
            None => match same_dst.first() {
                Some(foreign) => {
                    plan.skipped.push(Problem::peer(
                        ProblemKind::ForeignRoute,
                        format!(
                            "{} (node {}): a route to it exists that podwire did not make \
                             (protocol {}): left alone",
                            pr.dst, pr.node, foreign.protocol
                        ),
                    ));
                    false
                }
                None => {
                    route_add.push(Change::ReplaceRoute(want));
                    true
                }
            },
        };
        match (&pr.via, routed) {
            (Via::Direct { .. }, true) => plan.direct += 1,
            (Via::Vxlan { .. }, true) => plan.vxlan += 1,
            (_, false) => {}
        }
    }

    let route_del: Vec<Change> = o
        .ours()
        .filter(|r| !want_routes.contains(&r.dst))
        .map(|r| Change::DeleteRoute(r.clone()))
        .collect();
    // Only permanent entries are the agent's; the kernel's own (IPv6 multicast, or any a user
    // added) are left alone. One whose MAC is wrong is replaced above, not deleted.
    let neigh_del: Vec<Change> = o
        .neighbours
        .iter()
        .filter(|n| n.permanent && !want_neigh.contains(&(n.ifindex, n.ip)))
        .map(|n| Change::DeleteNeighbour(n.clone()))
        .collect();
    let fdb_del: Vec<Change> = o
        .fdb
        .iter()
        .filter(|e| !want_fdb.contains(&(e.ifindex, e.mac, e.dst)))
        .map(|e| Change::DeleteFdb(e.clone()))
        .collect();

    plan.changes = fdb_add
        .into_iter()
        .chain(neigh_add)
        .chain(route_add)
        .chain(route_del)
        .chain(neigh_del)
        .chain(fdb_del)
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::desired::desired;
    use crate::peers::desired::tests::{cluster, local, node, opts};

    fn device(name: &str, index: u32) -> Link {
        Link {
            index,
            name: name.into(),
            mac: None,
            mtu: 1450,
            master: None,
            up: true,
            oper_state: kernel::OperState::Unknown,
            promisc: false,
            kind: Some("vxlan".into()),
            peer_index: None,
            peer_netnsid: None,
            hairpin: None,
            vlan_filtering: None,
            no_linklocal_learn: None,
            alias: None,
            vxlan: None,
        }
    }

    fn empty_kernel() -> Observed {
        Observed {
            devices: vec![device("podwire.vxlan", 10), device("podwire.vxlan6", 11)],
            ..Default::default()
        }
    }

    /// Applies a plan to an observed state the way the kernel would.
    fn apply(o: &mut Observed, plan: &Plan) {
        for c in &plan.changes {
            match c {
                Change::AddFdb(e) => {
                    o.fdb
                        .retain(|x| !(x.ifindex == e.ifindex && x.mac == e.mac));
                    o.fdb.push(e.clone());
                }
                Change::AddNeighbour(n) => {
                    o.neighbours
                        .retain(|x| !(x.ifindex == n.ifindex && x.ip == n.ip));
                    o.neighbours.push(n.clone());
                }
                Change::ReplaceRoute(r) => {
                    o.routes.retain(|x| x.dst != r.dst);
                    let mut r = r.clone();
                    if r.oif.is_none() {
                        r.oif = Some(2); // the kernel fills the output link in
                    }
                    o.routes.push(r);
                }
                Change::DeleteRoute(r) => o.routes.retain(|x| x != r),
                Change::DeleteNeighbour(n) => o.neighbours.retain(|x| x != n),
                Change::DeleteFdb(e) => o.fdb.retain(|x| x != e),
            }
        }
    }

    /// What a plan would write and what it leaves out (not what it counts as routed).
    fn quiet(p: Plan) -> (Vec<Change>, Vec<Problem>) {
        (p.changes, p.skipped)
    }

    fn position(plan: &Plan, f: impl Fn(&Change) -> bool) -> usize {
        plan.changes.iter().position(f).expect("change present")
    }

    #[test]
    fn from_nothing_fdb_then_neighbour_then_route_and_then_in_sync() {
        let d = desired(&cluster(), &local(), &opts());
        let mut o = empty_kernel();
        let plan = diff(&d, &o);
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        assert_eq!(
            plan.direct + plan.vxlan,
            d.routes.len(),
            "every peer routed"
        );
        assert!(plan.vxlan > 0 && plan.direct > 0);
        // 4 routes, 2 FDB + 2 neighbours (n3's two families over VXLAN).
        assert_eq!(plan.changes.len(), 8, "{:#?}", plan.changes);
        let fdb = position(&plan, |c| matches!(c, Change::AddFdb(e) if e.ifindex == 10));
        let neigh = position(
            &plan,
            |c| matches!(c, Change::AddNeighbour(n) if n.ifindex == 10),
        );
        let route = position(
            &plan,
            |c| matches!(c, Change::ReplaceRoute(r) if r.oif == Some(10) && r.onlink),
        );
        assert!(fdb < neigh && neigh < route, "{:#?}", plan.changes);
        apply(&mut o, &plan);
        assert_eq!(
            quiet(diff(&d, &o)),
            (vec![], vec![]),
            "a resync in sync writes nothing"
        );
    }

    /// Issue #23 part 2: an on-link IPv6 peer found filtered switches from direct to VXLAN: the
    /// direct route goes first (IPv6 refuses an onlink gateway another route already holds).
    #[test]
    fn an_ipv6_peer_switching_to_vxlan_loses_its_direct_route_first() {
        let mut o = empty_kernel();
        let first = diff(&desired(&cluster(), &local(), &opts()), &o);
        apply(&mut o, &first);
        let mut l = local();
        l.probes.insert("fd10::2".parse().unwrap(), false);
        l.probes.insert("192.168.10.2".parse().unwrap(), false);
        let plan = diff(&desired(&cluster(), &l, &opts()), &o);
        let del6 = position(
            &plan,
            |c| matches!(c, Change::DeleteRoute(r) if r.dst == "fd00:244:2::/64".parse::<IpNet>().unwrap()),
        );
        let add6 = position(
            &plan,
            |c| matches!(c, Change::ReplaceRoute(r) if r.dst == "fd00:244:2::/64".parse::<IpNet>().unwrap() && r.onlink),
        );
        assert!(del6 < add6, "{:#?}", plan.changes);
        assert!(
            !plan
                .changes
                .iter()
                .any(|c| matches!(c, Change::DeleteRoute(r) if r.dst.addr().is_ipv4())),
            "IPv4 replaces in place: {:#?}",
            plan.changes
        );
        apply(&mut o, &plan);
        assert_eq!(diff(&desired(&cluster(), &l, &opts()), &o).changes, vec![]);
    }

    /// Issue #23 part 3: while this node's address is changing, nothing in place is removed.
    #[test]
    fn an_own_address_in_flux_removes_nothing() {
        let mut o = empty_kernel();
        let first = diff(&desired(&cluster(), &local(), &opts()), &o);
        apply(&mut o, &first);
        let mut moved = local();
        moved.addresses[0].net = "192.168.10.11/24".parse().unwrap();
        let d = desired(&cluster(), &moved, &opts());
        assert_eq!(d.held, vec![false]);
        assert_eq!(diff(&d, &o).changes, vec![], "kept as it is");
    }

    #[test]
    fn a_deleted_node_loses_every_trace_routes_first() {
        let mut o = empty_kernel();
        let d = desired(&cluster(), &local(), &opts());
        let p = diff(&d, &o);
        apply(&mut o, &p);
        let without_n3: Vec<_> = cluster().into_iter().filter(|n| n.name != "n3").collect();
        let d2 = desired(&without_n3, &local(), &opts());
        let plan = diff(&d2, &o);
        assert_eq!(plan.changes.len(), 6, "{:#?}", plan.changes);
        let route = position(&plan, |c| matches!(c, Change::DeleteRoute(_)));
        let neigh = position(&plan, |c| matches!(c, Change::DeleteNeighbour(_)));
        let fdb = position(&plan, |c| matches!(c, Change::DeleteFdb(_)));
        assert!(route < neigh && neigh < fdb);
        apply(&mut o, &plan);
        assert_eq!(o.fdb.len(), 0);
        assert_eq!(o.neighbours.len(), 0);
        assert_eq!(o.routes.len(), 2);
    }

    #[test]
    fn a_moved_node_gets_its_route_and_fdb_replaced() {
        let mut o = empty_kernel();
        let d = desired(&cluster(), &local(), &opts());
        let p = diff(&d, &o);
        apply(&mut o, &p);
        let mut moved = cluster();
        moved[1].internal = vec!["192.168.10.22".parse().unwrap()]; // n2, still on-link
        moved[2].internal = vec!["192.168.20.33".parse().unwrap()]; // n3, still VXLAN
        let plan = diff(&desired(&moved, &local(), &opts()), &o);
        let fdb_dst: Vec<_> = plan
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::AddFdb(e) => e.dst,
                _ => None,
            })
            .collect();
        assert_eq!(
            fdb_dst,
            vec!["192.168.20.33".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(plan.changes.iter().any(|c| matches!(c,
            Change::ReplaceRoute(r) if r.gateway == Some("192.168.10.22".parse().unwrap()))));
        assert!(plan.changes.iter().any(|c| matches!(c,
            Change::DeleteFdb(e) if e.dst == Some("192.168.20.3".parse().unwrap()))));
        apply(&mut o, &plan);
        assert_eq!(
            quiet(diff(&desired(&moved, &local(), &opts()), &o)),
            (vec![], vec![])
        );
    }

    #[test]
    fn leftovers_of_nodes_gone_while_the_agent_was_down_are_swept() {
        let mut o = empty_kernel();
        let ghost = node("ghost", &["10.244.77.0/24"], &["192.168.20.77"]);
        let mut with_ghost = cluster();
        with_ghost.push(ghost);
        let d = desired(&with_ghost, &local(), &opts());
        let p = diff(&d, &o);
        apply(&mut o, &p);
        // Restart: the Node list no longer has the ghost.
        let plan = diff(&desired(&cluster(), &local(), &opts()), &o);
        assert_eq!(plan.changes.len(), 3, "{:#?}", plan.changes);
        assert!(plan.changes.iter().all(|c| matches!(
            c,
            Change::DeleteRoute(_) | Change::DeleteNeighbour(_) | Change::DeleteFdb(_)
        )));
    }

    #[test]
    fn routes_podwire_did_not_make_are_never_touched() {
        let mut o = empty_kernel();
        let mut manual =
            Route::new("10.244.2.0/24".parse().unwrap()).via("192.168.10.2".parse().unwrap());
        manual.oif = Some(2);
        let unrelated =
            Route::new("172.16.0.0/12".parse().unwrap()).via("192.168.10.254".parse().unwrap());
        o.routes = vec![manual.clone(), unrelated.clone()];
        let d = desired(&cluster(), &local(), &opts());
        let plan = diff(&d, &o);
        assert!(plan.skipped.iter().any(|s| s.text.contains("10.244.2.0/24")
            && s.text.contains("did not make")
            && s.kind == ProblemKind::ForeignRoute));
        assert!(!plan.changes.iter().any(|c| matches!(c,
            Change::ReplaceRoute(r) | Change::DeleteRoute(r) if r.dst == manual.dst || r.dst == unrelated.dst)));
    }

    #[test]
    fn a_missing_device_skips_its_routes() {
        let o = Observed::default();
        let d = desired(&cluster(), &local(), &opts());
        let plan = diff(&d, &o);
        assert_eq!(plan.skipped.len(), 2, "{:?}", plan.skipped);
        assert!(plan
            .skipped
            .iter()
            .all(|p| p.kind == ProblemKind::VxlanDevice));
        // Routed once applied: the direct peers only.
        assert_eq!((plan.direct, plan.vxlan), (d.routes.len() - 2, 0));
        assert!(plan
            .changes
            .iter()
            .all(|c| matches!(c, Change::ReplaceRoute(r) if !r.onlink)));
    }

    /// Issue #22 item 12: this node's own Node object deleted must not withdraw its VXLAN peers.
    #[test]
    fn this_nodes_own_node_object_gone_changes_nothing_in_place() {
        use crate::peers::{Local, OwnNode};
        let mut o = empty_kernel();
        let all = cluster();
        let listed = OwnNode::find(&all, "n1", None);
        assert!(matches!(listed, OwnNode::Listed(_)) && listed.problem().is_none());
        let p = diff(&desired(&all, &local(), &opts()), &o);
        apply(&mut o, &p);
        let in_place = o.clone();

        // Deleted from the API: the last Node seen stands in, and nothing changes.
        let without_me: Vec<_> = all.iter().filter(|n| n.name != "n1").cloned().collect();
        let own = OwnNode::find(&without_me, "n1", Some(listed.node()));
        assert!(matches!(own, OwnNode::Remembered(_)));
        assert!(own.problem().unwrap().contains("is gone"));
        let l = Local {
            node: own.node().clone(),
            ..local()
        };
        assert_eq!(
            quiet(diff(&desired(&without_me, &l, &opts()), &o)),
            (vec![], vec![])
        );

        // Never seen (the agent restarted meanwhile): nothing is removed either, though a desired
        // state without this node's addresses would withdraw every VXLAN peer.
        let own = OwnNode::find(&without_me, "n1", None);
        assert!(!own.may_remove());
        assert!(own.problem().unwrap().contains("no Node object"));
        let l = Local {
            node: own.node().clone(),
            ..local()
        };
        let raw = diff(&desired(&without_me, &l, &opts()), &o);
        assert!(
            raw.changes
                .iter()
                .any(|c| matches!(c, Change::DeleteRoute(_))),
            "the guard is what keeps them: {raw:#?}"
        );
        let kept = raw.without_removals();
        apply(&mut o, &kept);
        assert_eq!(o.routes, in_place.routes);
        assert_eq!(o.fdb, in_place.fdb);
        assert_eq!(o.neighbours, in_place.neighbours);
    }
}
