//! End to end: two pod namespaces wired to a bridge that lives in a
//! third namespace, the way the bridge plugin wires pods to the host.
//! Traffic stays between these throwaway namespaces.

mod common;

use common::{unique, TestNs};
use kernel::ipnet::IpNet;
use kernel::{sysctl, AddressOptions, BridgeSpec, Route, VethSpec};

fn wire_pod(host: &TestNs, bridge: u32, pod: &TestNs, v4: &str, v6: &str) {
    let veth = unique("veth");
    let pair = host
        .nl
        .veth_add(
            &VethSpec::new(veth.as_str(), "eth0")
                .peer_netns(&pod.ns)
                .mtu(1400)
                .master(bridge)
                .up(),
        )
        .unwrap();
    host.nl
        .bridge_port_set_hairpin(pair.host.index, true)
        .unwrap();
    sysctl::write_in(&pod.ns, &sysctl::ipv6_conf("eth0", "accept_dad"), "0").unwrap();
    sysctl::write_in(&pod.ns, &sysctl::ipv4_conf("eth0", "arp_notify"), "1").unwrap();
    pod.nl
        .address_add(pair.peer_index, v4.parse::<IpNet>().unwrap())
        .unwrap();
    pod.nl
        .address_add_with(
            pair.peer_index,
            v6.parse::<IpNet>().unwrap(),
            AddressOptions {
                nodad: true,
                ..Default::default()
            },
        )
        .unwrap();
    pod.nl.link_set_up(pair.peer_index, true).unwrap();
    pod.nl
        .route_add(&Route::default_via("10.251.9.1".parse().unwrap()).dev(pair.peer_index))
        .unwrap();
}

#[test]
fn pods_on_a_bridge_ping_each_other() {
    let host = TestNs::new();
    let pod1 = TestNs::new();
    let pod2 = TestNs::new();
    let br = host
        .nl
        .ensure_bridge(&BridgeSpec::new(unique("pwb")).mtu(1400).up())
        .unwrap();
    host.nl
        .address_add(br.index, "10.251.9.1/24".parse().unwrap())
        .unwrap();
    wire_pod(&host, br.index, &pod1, "10.251.9.11/24", "fd00:251::11/64");
    wire_pod(&host, br.index, &pod2, "10.251.9.12/24", "fd00:251::12/64");

    // Bridge ports forward after STP's forward delay is skipped: a fresh
    // bridge without STP forwards at once; retry briefly for carrier.
    let ok = (0..20).any(|_| {
        let r = pod1.exec(&["ping", "-c", "1", "-W", "1", "10.251.9.12"]);
        if !r {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        r
    });
    assert!(ok, "pod1 cannot ping pod2 over IPv4");
    assert!(
        pod2.exec(&["ping", "-c", "1", "-W", "2", "fd00:251::11"]),
        "pod2 cannot ping pod1 over IPv6"
    );
    assert!(
        pod1.exec(&["ping", "-c", "1", "-W", "2", "10.251.9.1"]),
        "pod1 cannot reach its gateway"
    );
}
