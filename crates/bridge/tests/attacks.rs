//! A pod as an attacker (root in its netns, NET_RAW, as containerd gives by default) writes
//! crafted frames onto its interface; the node and the other pods must not believe them. Every
//! node and pod is a throwaway netns (see common/mod.rs).

mod common;

use common::Node;
use kernel::MacAddr;
use serde_json::{json, Value};
use std::net::Ipv6Addr;
use testkit::frames;

fn conf(node: &Node, subnet: &str, extra: Value) -> Value {
    let mut c = json!({
        "cniVersion": "1.1.0",
        "name": "attacknet",
        "type": "podwire",
        "bridge": "pwa0",
        "isGateway": true,
        "ipam": {"type": "podwire-ipam", "subnet": subnet, "dataDir": node.data_dir},
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn mac_of(result: &Value, interface: usize) -> MacAddr {
    result["interfaces"][interface]["mac"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// CVE-2020-10749: a router advertisement from a pod reaches the bridge; with `accept_ra` on, the
/// node takes the pod as its IPv6 default router and autoconfigures an address from its prefix.
#[test]
fn a_pods_router_advertisement_configures_nothing_on_the_node() {
    let mut node = Node::new();
    let c = conf(&node, "10.250.20.0/24", json!({}));
    let p = node.pod();
    let r = node.podwire("ADD", &c, "ra", &p);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    let bridge = "pwa0";
    let prefix: Ipv6Addr = "2001:db8:bad::".parse().unwrap();
    let ra = frames::router_advert(mac_of(&r.json, 2), "fe80::bad".parse().unwrap(), prefix);
    for _ in 0..3 {
        frames::send(&p, "eth0", &ra);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let routes = node.ip_json(&["-6", "route", "show", "default"]);
    assert_eq!(
        routes,
        json!([]),
        "the node took a pod as its default router"
    );
    let addrs = node.ip_json(&["-6", "addr", "show", "dev", bridge]);
    assert!(
        !addrs.to_string().contains("2001:db8:bad:"),
        "the node autoconfigured an address from a pod's prefix: {addrs}"
    );
    let sysctl = common::run(&[
        "ip",
        "netns",
        "exec",
        &node.name,
        "sysctl",
        "-n",
        &format!("net.ipv6.conf.{bridge}.accept_ra"),
    ]);
    assert_eq!(sysctl.trim(), "0");
}
