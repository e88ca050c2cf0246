//! Links, bridges, veths and bridge-port options against the real kernel.

mod common;

use common::{unique, TestNs};
use kernel::{BridgeSpec, BridgeVlan, Error, LinkId, MacAddr, ResultExt, VethSpec};

#[test]
fn veth_into_pod_netns_in_one_request() {
    let host = TestNs::new();
    let pod = TestNs::new();
    let br = host
        .nl
        .ensure_bridge(&BridgeSpec::new(unique("pwb")).mtu(1400).up())
        .unwrap();
    let veth = unique("veth");
    let mac: MacAddr = "0a:58:0a:fb:00:05".parse().unwrap();

    let pair = host
        .nl
        .veth_add(
            &VethSpec::new(veth.as_str(), "eth0")
                .peer_netns(&pod.ns)
                .mtu(1400)
                .peer_mac(mac)
                .master(br.index)
                .alias("podwire:net1:abc:eth0")
                .up(),
        )
        .unwrap();

    // Host end: master, up, MTU, kind, peer index as reported.
    let h = host.nl.link(veth.as_str()).unwrap();
    assert_eq!(h.index, pair.host.index);
    assert_eq!(h.master, Some(br.index));
    assert!(h.up);
    assert_eq!(h.mtu, 1400);
    assert_eq!(h.kind.as_deref(), Some("veth"));
    assert_eq!(h.mac, pair.host.mac);
    assert_eq!(h.peer_index, Some(pair.peer_index));
    assert_eq!(pair.host.name, veth);
    assert_eq!(pair.host.master, Some(br.index));
    assert!(pair.host.up);
    assert_eq!(h.alias.as_deref(), Some("podwire:net1:abc:eth0"));
    // It is not in the pod namespace, and the peer is not on the host.
    assert!(pod.nl.link(veth.as_str()).unwrap_err().is_not_found());
    assert!(host.nl.link("eth0").unwrap_err().is_not_found());

    // Pod end: final name, MTU and MAC from birth.
    let p = pod.nl.link("eth0").unwrap();
    assert_eq!(p.index, pair.peer_index);
    assert_eq!(p.mtu, 1400);
    assert_eq!(p.mac, Some(mac));
    assert!(!p.up);

    // Cross-check with iproute2.
    let j = pod.ip_json(&["link", "show", "eth0"]);
    assert_eq!(j[0]["mtu"], 1400);
    assert_eq!(j[0]["address"], "0a:58:0a:fb:00:05");
    let j = host.ip_json(&["link", "show", &veth]);
    assert_eq!(j[0]["master"], br.name.as_str());
}

#[test]
fn errors_classify_exists_and_not_found() {
    let host = TestNs::new();
    let pod = TestNs::new();
    let veth = unique("veth");
    let spec = VethSpec::new(veth.as_str(), "eth0").peer_netns(&pod.ns);
    host.nl.veth_add(&spec).unwrap();

    let e = host.nl.veth_add(&spec).unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert_eq!(e.errno(), Some(libc::EEXIST));
    assert_eq!(
        e.to_string(),
        format!("create veth {veth}: File exists (os error 17)")
    );

    let missing = unique("nope");
    let e = host.nl.link(missing.as_str()).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = host.nl.link_delete(missing.as_str()).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains(&missing));
    let e = host.nl.link_delete(LinkId::Index(999_999)).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(
        host.nl
            .link_delete(missing.as_str())
            .ok_if_not_found()
            .unwrap(),
        None
    );

    // Deleting the host end takes the pod end with it.
    host.nl.link_delete(veth.as_str()).unwrap();
    assert!(pod.nl.link("eth0").unwrap_err().is_not_found());
}

#[test]
fn ensure_bridge_is_idempotent_and_refuses_other_kinds() {
    let ns = TestNs::new();
    let name = unique("pwb");
    let spec = BridgeSpec::new(name.as_str()).mtu(1450).up();
    let first = ns.nl.ensure_bridge(&spec).unwrap();
    let again = ns.nl.ensure_bridge(&spec).unwrap();
    assert_eq!(first.index, again.index);
    assert_eq!(again.kind.as_deref(), Some("bridge"));
    assert_eq!(again.vlan_filtering, Some(false));
    assert_eq!(again.mtu, 1450);
    assert!(again.up);
    assert!(ns.nl.bridge_add(&spec).unwrap_err().is_exists());

    // A veth squatting the name: "ensure" must not accept it.
    let squat = unique("sq");
    ns.nl
        .veth_add(&VethSpec::new(squat.as_str(), unique("sqp")))
        .unwrap();
    let e = ns
        .nl
        .ensure_bridge(&BridgeSpec::new(squat.as_str()))
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("veth"), "{e}");
}

#[test]
fn link_setters_read_back() {
    let ns = TestNs::new();
    let a = unique("pwa");
    let b = unique("pwp");
    let br = ns
        .nl
        .ensure_bridge(&BridgeSpec::new(unique("pwb")))
        .unwrap();
    let pair = ns
        .nl
        .veth_add(&VethSpec::new(a.as_str(), b.as_str()))
        .unwrap();

    ns.nl.link_set_mtu(a.as_str(), 1280).unwrap();
    let mac: MacAddr = "02:00:00:fb:00:01".parse().unwrap();
    ns.nl.link_set_mac(pair.host.index, mac).unwrap();
    ns.nl.link_set_promisc(a.as_str(), true).unwrap();
    ns.nl.link_set_master(a.as_str(), Some(br.index)).unwrap();
    ns.nl.link_set_up(a.as_str(), true).unwrap();
    let l = ns.nl.link(pair.host.index).unwrap();
    assert_eq!(
        (l.mtu, l.mac, l.promisc, l.master, l.up),
        (1280, Some(mac), true, Some(br.index), true)
    );
    let j = ns.ip_json(&["link", "show", &a]);
    assert!(j[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "PROMISC"));

    ns.nl.link_set_master(pair.host.index, None).unwrap();
    ns.nl.link_set_promisc(pair.host.index, false).unwrap();
    ns.nl.link_set_up(pair.host.index, false).unwrap();
    let renamed = unique("pwr");
    ns.nl.link_rename(a.as_str(), &renamed).unwrap();
    let l = ns.nl.link(pair.host.index).unwrap();
    assert_eq!(l.name, renamed);
    assert_eq!((l.master, l.promisc, l.up), (None, false, false));

    let names: Vec<String> = ns.nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert!(names.contains(&"lo".to_string()));
    assert!(names.contains(&renamed));
    assert!(names.contains(&b));
    assert!(!names.contains(&a));
}

#[test]
fn hairpin_read_back() {
    let ns = TestNs::new();
    let br = ns
        .nl
        .ensure_bridge(&BridgeSpec::new(unique("pwb")).up())
        .unwrap();
    let port = unique("pwh");
    let pair = ns
        .nl
        .veth_add(
            &VethSpec::new(port.as_str(), unique("pwq"))
                .master(br.index)
                .up(),
        )
        .unwrap();
    assert_eq!(ns.nl.link(pair.host.index).unwrap().hairpin, Some(false));

    ns.nl.bridge_port_set_hairpin(port.as_str(), true).unwrap();
    assert_eq!(ns.nl.link(pair.host.index).unwrap().hairpin, Some(true));
    let j = ns.ip_json(&["-d", "link", "show", &port]);
    assert_eq!(j[0]["linkinfo"]["info_slave_data"]["hairpin"], true);

    ns.nl
        .bridge_port_set_hairpin(pair.host.index, false)
        .unwrap();
    assert_eq!(ns.nl.link(pair.host.index).unwrap().hairpin, Some(false));

    // Not a bridge port: the kernel refuses, and we say what we tried.
    let lone = unique("pwl");
    ns.nl
        .veth_add(&VethSpec::new(lone.as_str(), unique("pwm")))
        .unwrap();
    let e = ns
        .nl
        .bridge_port_set_hairpin(lone.as_str(), true)
        .unwrap_err();
    assert!(e.errno().is_some(), "{e}");
    assert!(e.to_string().contains(&lone), "{e}");
}

#[test]
fn vlan_read_back() {
    let ns = TestNs::new();
    let spec = BridgeSpec::new(unique("pwb")).vlan_filtering(true).up();
    let br = match ns.nl.ensure_bridge(&spec) {
        Ok(br) => br,
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
            // Kernel built without CONFIG_BRIDGE_VLAN_FILTERING.
            eprintln!("skipping vlan test: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(br.vlan_filtering, Some(true));
    let port = unique("pwh");
    let pair = ns
        .nl
        .veth_add(
            &VethSpec::new(port.as_str(), unique("pwq"))
                .master(br.index)
                .up(),
        )
        .unwrap();

    ns.nl
        .bridge_vlan_add(pair.host.index, BridgeVlan::access(42))
        .unwrap();
    ns.nl
        .bridge_vlan_add(port.as_str(), BridgeVlan::tagged(7))
        .unwrap();
    let vlans = ns.nl.bridge_vlans(pair.host.index).unwrap();
    assert!(vlans.contains(&BridgeVlan::access(42)), "{vlans:?}");
    assert!(vlans.contains(&BridgeVlan::tagged(7)), "{vlans:?}");
    // Default VLAN 1 lost its PVID to 42.
    assert!(!vlans.iter().any(|v| v.vid == 1 && v.pvid), "{vlans:?}");
    let bv = common::run_json(
        "bridge",
        &["-n", &ns.name, "-j", "vlan", "show", "dev", &port],
    );
    let text = bv.to_string();
    assert!(text.contains("\"vlan\":42"), "{text}");
    assert!(text.contains("PVID"), "{text}");

    ns.nl.bridge_vlan_delete(pair.host.index, 7).unwrap();
    let vlans = ns.nl.bridge_vlans(pair.host.index).unwrap();
    assert!(!vlans.iter().any(|v| v.vid == 7), "{vlans:?}");

    ns.nl
        .bridge_self_vlan_add(br.index, BridgeVlan::tagged(42))
        .unwrap();
    assert!(ns
        .nl
        .bridge_vlans(br.index)
        .unwrap()
        .iter()
        .any(|v| v.vid == 42));
}

#[test]
fn move_link_to_other_netns() {
    let a = TestNs::new();
    let b = TestNs::new();
    let name = unique("pwn");
    a.nl.veth_add(&VethSpec::new(name.as_str(), unique("pwo")))
        .unwrap();
    a.nl.link_set_netns(name.as_str(), &b.ns).unwrap();
    assert!(a.nl.link(name.as_str()).unwrap_err().is_not_found());
    let moved = b.nl.link(name.as_str()).unwrap();
    assert_eq!(moved.kind.as_deref(), Some("veth"));
    // Its peer stayed behind: the index refers to the other namespace.
    assert!(moved.peer_netnsid.is_some());
}

/// Up with `arp_notify` in one request: the interface's sysctl reads 1 (and the other
/// IPv4 settings keep their values: only the one asked for is sent).
#[test]
fn link_up_with_arp_notify_sets_only_that() {
    let ns = TestNs::new();
    let (a, b) = (unique("pwa"), unique("pwp"));
    ns.nl
        .veth_add(&VethSpec::new(a.as_str(), b.as_str()))
        .unwrap();
    let conf =
        |name: &str| kernel::sysctl::read_in(&ns.ns, &kernel::sysctl::ipv4_conf(&a, name)).unwrap();
    let before = (
        conf("arp_notify"),
        conf("rp_filter"),
        conf("accept_redirects"),
    );
    assert_eq!(before.0, "0");
    ns.nl.link_set_up_arp_notify(a.as_str()).unwrap();
    assert!(ns.nl.link(a.as_str()).unwrap().up);
    assert_eq!(conf("arp_notify"), "1");
    assert_eq!(
        (conf("rp_filter"), conf("accept_redirects")),
        (before.1, before.2)
    );
}
