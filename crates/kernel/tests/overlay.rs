//! VXLAN devices, permanent neighbour and FDB entries, tagged onlink routes and route lookups:
//! what a multi-node agent programs, read back through our API and `ip -j` / `bridge -j`.

mod common;

use common::{run_json, unique, TestNs};
use kernel::ipnet::IpNet;
use kernel::{FdbEntry, IpFamily, MacAddr, Neighbour, Route, VethSpec, VxlanSpec};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A namespace with an "underlay" veth end holding 10.251.7.1/24 and fd00:251:7::1/64.
fn underlay() -> (TestNs, u32) {
    let ns = TestNs::new();
    let pair = ns
        .nl
        .veth_add(&VethSpec::new(unique("pwu"), unique("pwv")).up())
        .unwrap();
    ns.nl.link_set_up(pair.peer_index, true).unwrap();
    let i = pair.host.index;
    ns.nl.address_add(i, net("10.251.7.1/24")).unwrap();
    ns.nl
        .address_add_with(
            i,
            net("fd00:251:7::1/64"),
            kernel::AddressOptions {
                nodad: true,
                ..Default::default()
            },
        )
        .unwrap();
    (ns, i)
}

#[test]
fn vxlan_device_is_created_and_read_back() {
    let (ns, under) = underlay();
    let mut spec = VxlanSpec::new("podwire.vxlan", 42, 8472);
    spec.local = Some(ip("10.251.7.1"));
    spec.underlay = Some(under);
    spec.mtu = Some(1450);
    spec.mac = Some(MacAddr([0x0e, 1, 2, 3, 4, 5]));
    ns.nl.vxlan_add(&spec).unwrap();
    assert!(ns.nl.vxlan_add(&spec).unwrap_err().is_exists());
    let link = ns.nl.link("podwire.vxlan").unwrap();
    assert_eq!(link.kind.as_deref(), Some("vxlan"));
    let back = link.vxlan.clone().expect("vxlan info");
    assert!(spec.tunnel_matches(&back), "{back:?}");
    assert_eq!((back.mtu, back.mac), (spec.mtu, spec.mac));
    let mut other = spec.clone();
    other.vni = 43;
    assert!(!other.tunnel_matches(&back));

    let j = ns.ip_json(&["-d", "link", "show", "podwire.vxlan"]);
    let info = &j[0]["linkinfo"]["info_data"];
    assert_eq!(info["id"], 42);
    assert_eq!(info["port"], 8472);
    assert_eq!(info["local"], "10.251.7.1");
    assert_eq!(info["learning"], false);
    assert_eq!(j[0]["mtu"], 1450);
    assert_eq!(j[0]["address"], "0e:01:02:03:04:05");
}

#[test]
fn permanent_fdb_and_neighbour_entries_round_trip() {
    let (ns, under) = underlay();
    for (name, local) in [("pwx4", "10.251.7.1"), ("pwx6", "fd00:251:7::1")] {
        let mut spec = VxlanSpec::new(name, 7, 8472);
        spec.local = Some(ip(local));
        spec.underlay = Some(under);
        ns.nl.vxlan_add(&spec).unwrap();
    }
    let dev = ns.nl.link("pwx4").unwrap().index;
    let dev6 = ns.nl.link("pwx6").unwrap().index;
    ns.nl.link_set_up(dev, true).unwrap();
    ns.nl.link_set_up(dev6, true).unwrap();
    let mac = MacAddr([0x0e, 0xaa, 0, 0, 0, 1]);

    let fdb = FdbEntry {
        ifindex: dev,
        mac,
        dst: Some(ip("10.251.9.3")),
        permanent: true,
    };
    ns.nl.fdb_replace(&fdb).unwrap();
    ns.nl.fdb_replace(&fdb).unwrap(); // idempotent
    assert_eq!(ns.nl.fdb_entries(dev).unwrap(), vec![fdb.clone()]);
    // A VTEP that moved: the same MAC, another destination, replaced in place.
    let moved = FdbEntry {
        dst: Some(ip("10.251.9.4")),
        ..fdb.clone()
    };
    ns.nl.fdb_replace(&moved).unwrap();
    assert_eq!(ns.nl.fdb_entries(dev).unwrap(), vec![moved.clone()]);
    let b = run_json(
        "bridge",
        &["-n", &ns.name, "-j", "fdb", "show", "dev", "pwx4"],
    );
    assert_eq!(b[0]["mac"], "0e:aa:00:00:00:01");
    assert_eq!(b[0]["dst"], "10.251.9.4");
    let fdb6 = FdbEntry {
        ifindex: dev6,
        mac,
        dst: Some(ip("fd00:251:9::3")),
        permanent: true,
    };
    ns.nl.fdb_replace(&fdb6).unwrap();
    assert_eq!(ns.nl.fdb_entries(dev6).unwrap(), vec![fdb6.clone()]);

    let n4 = Neighbour {
        ifindex: dev,
        ip: ip("10.244.3.0"),
        mac: Some(mac),
        permanent: true,
    };
    let n6 = Neighbour {
        ifindex: dev6,
        ip: ip("fd00:244:3::"),
        mac: Some(mac),
        permanent: true,
    };
    ns.nl.neighbour_replace(&n4).unwrap();
    ns.nl.neighbour_replace(&n6).unwrap();
    // The kernel keeps NOARP entries of its own (IPv6 multicast): only permanent ones are ours.
    let permanent = |fam, dev| -> Vec<Neighbour> {
        let all = ns.nl.neighbours(fam, Some(dev)).unwrap();
        assert!(all.iter().all(|n| n.ifindex == dev), "filtered to one link");
        all.into_iter().filter(|n| n.permanent).collect()
    };
    assert_eq!(permanent(IpFamily::V4, dev), vec![n4.clone()]);
    assert_eq!(permanent(IpFamily::V6, dev6), vec![n6.clone()]);
    let j = ns.ip_json(&["neigh", "show", "dev", "pwx4"]);
    assert_eq!(j[0]["dst"], "10.244.3.0");
    assert_eq!(j[0]["state"][0], "PERMANENT");

    // The onlink route through the device, tagged, found again by its protocol.
    let r = Route::new(net("10.244.3.0/24"))
        .via(ip("10.244.3.0"))
        .dev(dev)
        .onlink()
        .protocol(157);
    ns.nl.route_replace(&r).unwrap();
    let r6 = Route::new(net("fd00:244:3::/64"))
        .via(ip("fd00:244:3::"))
        .dev(dev6)
        .onlink()
        .protocol(157);
    ns.nl.route_replace(&r6).unwrap();
    for fam in [IpFamily::V4, IpFamily::V6] {
        let ours: Vec<Route> = ns
            .nl
            .routes(fam)
            .unwrap()
            .into_iter()
            .filter(|r| r.protocol == 157)
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert!(ours[0].onlink);
    }
    let got = ns.nl.route_get(ip("10.244.3.9")).unwrap();
    assert_eq!(got.gateway, Some(ip("10.244.3.0")));
    assert_eq!(got.oif, Some(dev));
    let j = ns.ip_json(&["route", "show", "10.244.3.0/24"]);
    assert_eq!(j[0]["protocol"], "157");
    assert!(j[0]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "onlink"));

    // Removal, in the agent's order: route, neighbour, FDB; each gone, and not-found after.
    ns.nl.route_delete(&r).unwrap();
    ns.nl.neighbour_delete(&n4).unwrap();
    ns.nl.fdb_delete(&moved).unwrap();
    assert!(ns.nl.neighbour_delete(&n4).unwrap_err().is_not_found());
    assert!(ns.nl.fdb_delete(&moved).unwrap_err().is_not_found());
    assert!(ns.nl.fdb_entries(dev).unwrap().is_empty());
    assert!(permanent(IpFamily::V4, dev).is_empty());
}

#[test]
fn route_get_tells_on_link_from_routed() {
    let (ns, under) = underlay();
    let on = ns.nl.route_get(ip("10.251.7.2")).unwrap();
    assert_eq!((on.gateway, on.oif), (None, Some(under)));
    ns.nl
        .route_add(&Route::new(net("10.251.8.0/24")).via(ip("10.251.7.254")))
        .unwrap();
    let routed = ns.nl.route_get(ip("10.251.8.5")).unwrap();
    assert_eq!(routed.gateway, Some(ip("10.251.7.254")));
    assert!(
        ns.nl.route_get(ip("10.99.0.1")).is_err(),
        "no route: an error, not a guess"
    );
}
