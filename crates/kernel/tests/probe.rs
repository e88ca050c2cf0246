//! ICMP echo probes from a chosen source (kernel::probe): a segment that drops packets sourced
//! from a pod network answers none of them, while the node's own address is answered.

mod common;

use common::{unique, TestNs};
use kernel::VethSpec;
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Two namespaces on a bridge in a third, whose forward hook drops 10.246.0.0/16 and
/// fd00:246::/48 sources (a fabric's source check). Returns (router, a, b).
fn segment() -> (TestNs, TestNs, TestNs) {
    let (r, a, b) = (TestNs::new(), TestNs::new(), TestNs::new());
    let br =
        r.nl.ensure_bridge(&kernel::BridgeSpec::new(unique("pwsg").as_str()).up())
            .unwrap();
    let mut ports = Vec::new();
    for (ns, v4, v6) in [
        (&a, "10.247.9.3/24", "fd00:247:9::3/64"),
        (&b, "10.247.9.4/24", "fd00:247:9::4/64"),
    ] {
        let port = unique("pwsp");
        r.nl.veth_add(
            &VethSpec::new(port.as_str(), "eth0")
                .peer_netns(&ns.ns)
                .master(br.index)
                .up(),
        )
        .unwrap();
        let eth0 = ns.nl.link("eth0").unwrap();
        ns.nl.address_add(eth0.index, v4.parse().unwrap()).unwrap();
        let nodad = kernel::AddressOptions {
            nodad: true,
            ..Default::default()
        };
        ns.nl
            .address_add_with(eth0.index, v6.parse().unwrap(), nodad)
            .unwrap();
        ns.nl.link_set_up(eth0.index, true).unwrap();
        ports.push(format!("\"{port}\""));
    }
    // The pod gateways on a (on lo: any local address does), and b's way back to them.
    let lo = a.nl.link("lo").unwrap().index;
    a.nl.address_add(lo, "10.246.3.1/24".parse().unwrap())
        .unwrap();
    a.nl.address_add_with(
        lo,
        "fd00:246:0:3::1/64".parse().unwrap(),
        kernel::AddressOptions {
            nodad: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(b.exec(&["ip", "route", "add", "10.246.3.0/24", "via", "10.247.9.3"]));
    assert!(b.exec(&[
        "ip",
        "route",
        "add",
        "fd00:246:0:3::/64",
        "via",
        "fd00:247:9::3"
    ]));
    let rules = format!(
        "table bridge pwfabric {{\n chain fabric {{\n type filter hook forward priority 0;\n \
         iifname {{ {p} }} ip saddr 10.246.0.0/16 drop\n iifname {{ {p} }} ip6 saddr fd00:246::/48 drop\n }}\n}}\n",
        p = ports.join(", ")
    );
    let f = std::env::temp_dir().join(format!("{}.nft", r.name));
    std::fs::write(&f, rules).unwrap();
    assert!(r.exec(&["nft", "-f", f.to_str().unwrap()]));
    let _ = std::fs::remove_file(&f);
    (r, a, b)
}

#[test]
fn a_pod_sourced_probe_is_dropped_by_the_fabric_and_a_node_sourced_one_answered() {
    let (r, a, _b) = segment();
    let t = Duration::from_millis(300);
    let echo = |src: &str, dst: &str| {
        a.ns.run(|| kernel::probe::echo(ip(src), &[ip(dst)], 3, t))
            .unwrap()
            .unwrap()
    };
    assert!(echo("10.247.9.3", "10.247.9.4").contains(&ip("10.247.9.4")));
    assert!(echo("fd00:247:9::3", "fd00:247:9::4").contains(&ip("fd00:247:9::4")));
    assert!(echo("10.246.3.1", "10.247.9.4").is_empty(), "filtered v4");
    assert!(
        echo("fd00:246:0:3::1", "fd00:247:9::4").is_empty(),
        "filtered v6"
    );
    // A node masquerading its pods' traffic to the node network (node setup's rule) rewrites
    // the pod source: the routed probe is fooled, the on-link frame is not.
    assert!(a.exec(&["nft", "add", "table", "ip", "pwmasq"]));
    assert!(a.exec(&[
        "nft",
        "add",
        "chain",
        "ip",
        "pwmasq",
        "post",
        "{ type nat hook postrouting priority 100; }"
    ]));
    assert!(a.exec(&[
        "nft",
        "add",
        "rule",
        "ip",
        "pwmasq",
        "post",
        "ip",
        "saddr",
        "10.246.0.0/16",
        "masquerade"
    ]));
    assert!(
        !echo("10.246.3.1", "10.247.9.4").is_empty(),
        "masqueraded: fooled"
    );
    let eth0 = a.nl.link("eth0").unwrap().index;
    let b_mac = _b.nl.link("eth0").unwrap().mac.unwrap();
    let on_link = |src: &str, dst: &str| {
        a.ns.run(|| kernel::probe::echo_on_link(ip(src), eth0, &[(ip(dst), b_mac)], 3, t))
            .unwrap()
            .unwrap()
    };
    assert!(
        on_link("10.246.3.1", "10.247.9.4").is_empty(),
        "filtered v4, on-link"
    );
    assert!(
        on_link("fd00:246:0:3::1", "fd00:247:9::4").is_empty(),
        "filtered v6, on-link"
    );
    // Without the fabric's rule the pod-sourced probe is answered.
    assert!(r.exec(&["nft", "delete", "table", "bridge", "pwfabric"]));
    assert!(echo("10.246.3.1", "10.247.9.4").contains(&ip("10.247.9.4")));
    assert!(echo("fd00:246:0:3::1", "fd00:247:9::4").contains(&ip("fd00:247:9::4")));
    assert!(on_link("10.246.3.1", "10.247.9.4").contains(&ip("10.247.9.4")));
    assert!(on_link("fd00:246:0:3::1", "fd00:247:9::4").contains(&ip("fd00:247:9::4")));
    // A target that does not exist: nothing, after the timeout.
    assert!(echo("10.247.9.3", "10.247.9.99").is_empty());
}
