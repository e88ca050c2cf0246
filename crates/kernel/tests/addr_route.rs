//! Addresses and routes, read back through our API and `ip -j`.

mod common;

use common::{unique, TestNs};
use kernel::ipnet::IpNet;
use kernel::{IpFamily, Route, Scope, VethSpec, TABLE_MAIN};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A namespace with a veth pair, `a` up; returns (ns, a's index).
fn with_link() -> (TestNs, u32, String) {
    let ns = TestNs::new();
    let a = unique("pwa");
    let pair = ns
        .nl
        .veth_add(&VethSpec::new(a.as_str(), unique("pwz")).up())
        .unwrap();
    ns.nl.link_set_up(pair.peer_index, true).unwrap();
    (ns, pair.host.index, a)
}

#[test]
fn addresses_v4_and_v6() {
    let (ns, idx, name) = with_link();
    let v4 = net("10.251.1.5/24");
    let v6 = net("fd00:251::5/64");
    ns.nl.address_add(idx, v4).unwrap();
    ns.nl
        .address_add_with(
            idx,
            v6,
            kernel::AddressOptions {
                nodad: true,
                ..Default::default()
            },
        )
        .unwrap();

    let e = ns.nl.address_add(idx, v4).unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert!(
        e.to_string()
            .starts_with("add address 10.251.1.5/24 to link #"),
        "{e}"
    );
    ns.nl.address_replace(idx, v4).unwrap();

    let mine = ns.nl.addresses(Some(idx), None).unwrap();
    let nets: Vec<IpNet> = mine.iter().map(|a| a.net).collect();
    assert!(nets.contains(&v4) && nets.contains(&v6), "{nets:?}");
    assert!(!mine.iter().find(|a| a.net == v6).unwrap().is_tentative());
    let only4 = ns.nl.addresses(Some(idx), Some(IpFamily::V4)).unwrap();
    assert_eq!(only4.len(), 1);
    assert_eq!(only4[0].net, v4);

    // iproute2 agrees, broadcast included.
    let j = ns.ip_json(&["addr", "show", "dev", &name]);
    let infos = j[0]["addr_info"].as_array().unwrap();
    let a4 = infos.iter().find(|i| i["local"] == "10.251.1.5").unwrap();
    assert_eq!(a4["prefixlen"], 24);
    assert_eq!(a4["broadcast"], "10.251.1.255");
    assert!(infos
        .iter()
        .any(|i| i["local"] == "fd00:251::5" && i["prefixlen"] == 64));

    ns.nl.address_delete(idx, v4).unwrap();
    assert!(ns.nl.address_delete(idx, v4).unwrap_err().is_not_found());
    ns.nl.address_delete(idx, v6).unwrap();
    let left: Vec<IpNet> = ns
        .nl
        .addresses(Some(idx), None)
        .unwrap()
        .iter()
        .map(|a| a.net)
        .collect();
    assert!(!left.contains(&v4) && !left.contains(&v6), "{left:?}");
}

#[test]
fn routes_with_metric_table_mtu() {
    let (ns, idx, name) = with_link();
    ns.nl.address_add(idx, net("10.251.2.1/24")).unwrap();
    ns.nl
        .address_add_with(
            idx,
            net("fd00:251:2::1/64"),
            kernel::AddressOptions {
                nodad: true,
                ..Default::default()
            },
        )
        .unwrap();

    let r = Route::new(net("10.251.50.0/24"))
        .via("10.251.2.254".parse().unwrap())
        .dev(idx)
        .metric(321)
        .mtu(1300)
        .advmss(1260);
    ns.nl.route_add(&r).unwrap();
    assert!(ns.nl.route_add(&r).unwrap_err().is_exists());

    let in_table = Route::new(net("10.251.60.0/24"))
        .dev(idx)
        .table(1234)
        .metric(5);
    ns.nl.route_add(&in_table).unwrap();
    let dflt = Route::default_via("10.251.2.254".parse().unwrap())
        .dev(idx)
        .table(1234);
    ns.nl.route_add(&dflt).unwrap();
    let r6 = Route::new(net("fd00:251:99::/64"))
        .via("fd00:251:2::fe".parse().unwrap())
        .dev(idx)
        .metric(77)
        .mtu(1400);
    ns.nl.route_add(&r6).unwrap();

    let v4 = ns.nl.routes(IpFamily::V4).unwrap();
    let got = v4.iter().find(|x| x.dst == r.dst).expect("route listed");
    assert_eq!(got.gateway, r.gateway);
    assert_eq!(
        (got.oif, got.metric, got.mtu, got.advmss, got.table),
        (Some(idx), Some(321), Some(1300), Some(1260), TABLE_MAIN)
    );
    assert_eq!(got.scope, Some(Scope::Universe));
    let got = v4.iter().find(|x| x.dst == in_table.dst).unwrap();
    assert_eq!(
        (got.table, got.metric, got.scope),
        (1234, Some(5), Some(Scope::Link))
    );
    assert!(v4
        .iter()
        .any(|x| x.table == 1234 && x.dst.prefix_len() == 0 && x.gateway == dflt.gateway));
    let v6 = ns.nl.routes(IpFamily::V6).unwrap();
    let got = v6.iter().find(|x| x.dst == r6.dst).unwrap();
    assert_eq!(
        (got.gateway, got.metric, got.mtu),
        (r6.gateway, Some(77), Some(1400))
    );

    // iproute2's view.
    let j = ns.ip_json(&["route", "show", "10.251.50.0/24"]);
    assert_eq!(j[0]["gateway"], "10.251.2.254");
    assert_eq!(j[0]["dev"], name.as_str());
    assert_eq!(j[0]["metric"], 321);
    assert!(j[0]["metrics"].to_string().contains("1300"), "{}", j[0]);
    let j = ns.ip_json(&["route", "show", "table", "1234"]);
    assert_eq!(j.as_array().unwrap().len(), 2, "{j}");

    // Replace changes the route in place.
    ns.nl.route_replace(&r.clone().mtu(1200)).unwrap();
    let got = ns
        .nl
        .routes(IpFamily::V4)
        .unwrap()
        .into_iter()
        .find(|x| x.dst == r.dst)
        .unwrap();
    assert_eq!(got.mtu, Some(1200));

    for x in [&r, &in_table, &dflt, &r6] {
        ns.nl.route_delete(x).unwrap();
        let e = ns.nl.route_delete(x).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }
    assert!(ns
        .ip_json(&["route", "show", "table", "1234"])
        .as_array()
        .is_none_or(|a| a.is_empty()));
}

/// One interface's addresses come back alone, with many other interfaces holding addresses of
/// the same family (the kernel filters the strict-checked dump; the request must be valid).
#[test]
fn addresses_of_one_interface_among_many() {
    let (ns, idx, _) = with_link();
    ns.nl.address_add(idx, net("10.251.9.1/24")).unwrap();
    let mut others = Vec::new();
    for k in 0..5u8 {
        let pair = ns
            .nl
            .veth_add(&VethSpec::new(unique("pwo"), unique("pwq")).up())
            .unwrap();
        ns.nl
            .address_add(pair.host.index, net(&format!("10.251.{}.1/24", 10 + k)))
            .unwrap();
        others.push(pair.host.index);
    }
    let mine = ns.nl.addresses(Some(idx), Some(IpFamily::V4)).unwrap();
    assert_eq!(
        mine.iter().map(|a| a.net).collect::<Vec<_>>(),
        vec![net("10.251.9.1/24")]
    );
    let theirs = ns.nl.addresses(Some(others[3]), None).unwrap();
    assert!(theirs.iter().any(|a| a.net == net("10.251.13.1/24")));
    assert!(theirs.iter().all(|a| a.net != net("10.251.9.1/24")));
    // Unfiltered, every one of them is there (and lo's).
    let all = ns.nl.addresses(None, Some(IpFamily::V4)).unwrap();
    let ours = all
        .iter()
        .filter(|a| a.net.addr() != net("127.0.0.1/8").addr());
    assert_eq!(ours.count(), 6, "{all:?}");
}
