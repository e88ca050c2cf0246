//! After setup, pods added by the `podwire` plugin with the written conflist reach each other
//! (both families), reach outside the cluster CIDR only through the masquerade rule, and once
//! they are deleted teardown leaves the node netns as it was.

mod common;

use common::{exec_plugin, podwire_binary, Node, TestNs};
use serde_json::Value;

/// The first plugin's config as libcni passes it: name and cniVersion injected from the list.
fn plugin_conf(list: &Value) -> Value {
    let mut conf = list["plugins"][0].clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    conf
}

fn address_of(result: &Value, v6: bool) -> String {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].as_str().unwrap())
        .find(|a| a.contains(':') == v6)
        .unwrap_or_else(|| panic!("no {} address in {result}", if v6 { "v6" } else { "v4" }))
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn pods_on_the_written_conflist_reach_each_other_and_the_outside_masqueraded() {
    let podwire = podwire_binary();
    let node = Node::new();
    node.forwarding_off();

    // An "outside" host on the node's uplink: it has no route to the pod network, so a pod's
    // ping only comes back if the node masqueraded it.
    let outside = TestNs::new("pwout");
    node.ns.exec(&[
        "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p",
    ]);
    node.ns
        .exec(&["ip", "link", "set", "up0p", "netns", &outside.name]);
    node.ns
        .exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "up0"]);
    node.ns.exec(&["ip", "link", "set", "up0", "up"]);
    outside.exec(&["ip", "addr", "add", "192.0.2.2/24", "dev", "up0p"]);
    outside.exec(&["ip", "link", "set", "up0p", "up"]);
    assert!(node.ns.ping("192.0.2.2"), "uplink");
    let before = node.snapshot();

    node.setup(node.config(
        &["10.253.8.0/24", "fd00:253:0:8::/64"],
        &["10.253.0.0/16", "fd00:253::/56"],
    ));
    let list: Value = serde_json::from_slice(
        &std::fs::read(node.conf_dir().join("10-podwire.conflist")).unwrap(),
    )
    .unwrap();
    let conf = plugin_conf(&list);

    let pods = [TestNs::new("pwpod"), TestNs::new("pwpod")];
    let mut results = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let out = exec_plugin(
            &node,
            &podwire,
            "ADD",
            &conf,
            &format!("pod{i}"),
            &pod.path(),
        );
        assert_eq!(out.code, 0, "ADD pod{i}: {} {}", out.json, out.stderr);
        results.push(out.json);
    }
    let v4 = [
        address_of(&results[0], false),
        address_of(&results[1], false),
    ];
    let v6 = [address_of(&results[0], true), address_of(&results[1], true)];
    assert!(v4.iter().all(|a| a.starts_with("10.253.8.")), "{v4:?}");
    assert!(v6.iter().all(|a| a.starts_with("fd00:253:0:8:")), "{v6:?}");

    assert!(pods[0].ping(&v4[1]), "pod0 -> pod1 {}", v4[1]);
    assert!(pods[1].ping(&v4[0]), "pod1 -> pod0 {}", v4[0]);
    assert!(pods[0].ping(&v6[1]), "pod0 -> pod1 {}", v6[1]);
    assert!(pods[0].ping("10.253.8.1"), "pod0 -> its gateway");
    assert!(pods[0].ping("192.0.2.2"), "pod0 -> outside, masqueraded");
    assert!(
        !outside.ping(&v4[0]),
        "outside reached a pod directly: the test's outside is not outside"
    );

    for (i, pod) in pods.iter().enumerate() {
        let out = exec_plugin(
            &node,
            &podwire,
            "DEL",
            &conf,
            &format!("pod{i}"),
            &pod.path(),
        );
        assert_eq!(out.code, 0, "DEL pod{i}: {} {}", out.json, out.stderr);
    }
    node.teardown();
    // The IPAM data dir is the pods' (the plugin's), not setup's.
    let _ = std::fs::remove_dir_all(node.ipam_dir());
    assert_eq!(node.snapshot(), before);
}
