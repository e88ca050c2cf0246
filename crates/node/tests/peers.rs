//! Routing to peers against a real kernel (a throwaway netns standing in for a node): what one
//! device that cannot be made right leaves routed. Issue #22 item 11.

mod common;

use common::Node;
use kernel::Netlink;
use node::peers::kernel_io::{reconcile, Report};
use node::peers::{Options, OwnNode, PeerNode, ProblemKind};

/// The node's underlay: `eth0` (a veth whose peer stays in the netns, so it has a carrier) with
/// 192.168.77.1/24 and fd77::1/64.
fn underlay(n: &Node) {
    for cmd in [
        &[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
        ][..],
        &["ip", "link", "set", "eth0p", "up"],
        &["ip", "addr", "add", "192.168.77.1/24", "dev", "eth0"],
        &["ip", "addr", "add", "fd77::1/64", "dev", "eth0", "nodad"],
        &["ip", "link", "set", "eth0", "up"],
    ] {
        assert!(n.ns.exec_ok(cmd), "{cmd:?}");
    }
}

fn peer(name: &str, cidrs: &[&str], internal: &[&str]) -> PeerNode {
    PeerNode {
        name: name.into(),
        pod_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        internal: internal.iter().map(|a| a.parse().unwrap()).collect(),
        external: vec![],
    }
}

/// n1 (this node), n2 on-link (direct), n3 behind a router (VXLAN), both families.
fn nodes() -> Vec<PeerNode> {
    vec![
        peer(
            "n1",
            &["10.253.1.0/24", "fd00:253:1::/64"],
            &["192.168.77.1", "fd77::1"],
        ),
        peer(
            "n2",
            &["10.253.2.0/24", "fd00:253:2::/64"],
            &["192.168.77.2", "fd77::2"],
        ),
        peer(
            "n3",
            &["10.253.3.0/24", "fd00:253:3::/64"],
            &["192.168.78.3", "fd78::3"],
        ),
    ]
}

fn pass(n: &Node) -> Report {
    let opts = Options {
        cluster_cidrs: vec![
            "10.253.0.0/16".parse().unwrap(),
            "fd00:253::/32".parse().unwrap(),
        ],
        ..Options::default()
    };
    let nl = Netlink::new_in(&n.ns.ns).unwrap();
    let own = OwnNode::find(&nodes(), "n1", None);
    reconcile(&nl, &own, &nodes(), &opts, &[], &mut Default::default())
        .expect("a pass runs whatever a device does")
}

fn routes(n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for fam in ["-4", "-6"] {
        for r in
            n.ns.ip_json(&[fam, "route", "show", "proto", "157"])
                .as_array()
                .unwrap()
        {
            out.push(format!(
                "{} {}",
                r["dst"].as_str().unwrap(),
                r["dev"].as_str().unwrap()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_link_squatting_the_vxlan_name_costs_only_the_vxlan_peers_of_its_family() {
    let n = Node::new();
    underlay(&n);
    assert!(n
        .ns
        .exec_ok(&["ip", "link", "add", "podwire.vxlan", "type", "bridge"]));
    let r = pass(&n);
    assert_eq!(
        routes(&n),
        vec![
            "10.253.2.0/24 eth0",
            "fd00:253:2::/64 eth0",
            "fd00:253:3::/64 podwire.vxlan6"
        ],
        "direct routes and the other family's VXLAN still go in: {:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.text.starts_with("podwire.vxlan: ")
                && p.text.contains("not a VXLAN device (bridge)")
                && p.text.contains("its peers are not routed")),
        "{:?}",
        r.problems
    );
    assert!(r.problems.iter().any(|p| p.text.contains("10.253.3.0/24")));
    // What the agent's metrics see: one IPv4 peer unrouted for its device, the rest routed.
    let unrouted: usize = r
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::VxlanDevice)
        .map(|p| p.unrouted)
        .sum();
    assert_eq!((r.direct, r.vxlan, unrouted), (2, 1, 1), "{:?}", r.problems);
    assert_eq!(r.kinds.get("route"), Some(&3), "{:?}", r.kinds);
    // The squatter is left as it was: still a bridge, nothing put on it.
    let link = n.ns.ip_json(&["-d", "link", "show", "podwire.vxlan"]);
    assert_eq!(link[0]["linkinfo"]["info_kind"], "bridge");
    assert!(n
        .ns
        .ip_json(&["neigh", "show", "dev", "podwire.vxlan"])
        .as_array()
        .unwrap()
        .is_empty());
    // Once it is gone, the next pass routes everyone.
    assert!(n.ns.exec_ok(&["ip", "link", "del", "podwire.vxlan"]));
    let r = pass(&n);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(routes(&n).contains(&"10.253.3.0/24 podwire.vxlan".to_string()));
}

/// flannel's `flannel.1` on podwire's VNI and port (a migration): the kernel refuses a second
/// device for the same packets; the direct routes still go in and the reason names the clash.
#[test]
fn another_vxlan_device_on_the_same_vni_and_port_is_reported_not_fatal() {
    let n = Node::new();
    underlay(&n);
    let flannel = "flannel.1"; // in this netns only
    assert!(n.ns.exec_ok(&[
        "ip",
        "link",
        "add",
        flannel,
        "type",
        "vxlan",
        "id",
        "1",
        "dstport",
        "8472",
        "local",
        "192.168.77.1",
        "dev",
        "eth0",
        "nolearning"
    ]));
    let r = pass(&n);
    let have = routes(&n);
    assert!(
        have.contains(&"10.253.2.0/24 eth0".to_string()),
        "{have:?} {r:?}"
    );
    assert!(
        have.contains(&"fd00:253:2::/64 eth0".to_string()),
        "{have:?}"
    );
    assert!(
        !have.iter().any(|r| r.starts_with("10.253.3.0/24")),
        "{have:?}"
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.text.starts_with("podwire.vxlan: ")
                && p.text.contains("VNI 1 and UDP port 8472")),
        "{:?}",
        r.problems
    );
    let link = n.ns.ip_json(&["-d", "link", "show", flannel]);
    assert_eq!(
        link[0]["linkinfo"]["info_data"]["id"], 1,
        "flannel's device untouched"
    );
}
