//! NetworkPolicy's pod-start gate in the plugin: with the policy table present, ADD of a
//! Kubernetes pod puts its addresses in the unclassified sets (comment ns/name/uid/container);
//! DEL and GC take them out; with no table (policy off) nothing happens and ADD succeeds.

mod common;

use common::Node;
use serde_json::{json, Value};

const K8S_ARGS: &str =
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=gate1;K8S_POD_UID=7f3c";

fn conf(node: &Node) -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": "gatenet",
        "type": "podwire",
        "bridge": "pwg0",
        "isGateway": true,
        "ipam": {"type": "podwire-ipam", "ranges": [[{"subnet": "10.249.1.0/24"}], [{"subnet": "fd00:249::/64"}]],
                 "dataDir": node.data_dir},
    })
}

fn elements(node: &Node, set: &str) -> String {
    node.node_exec(&["nft", "list", "set", "inet", "podwire-policy", set])
}

fn policy_table(node: &Node) {
    node.node_exec(&["nft", "add", "table", "inet", "podwire-policy"]);
    for (set, ty) in [
        ("unclassified-v4", "ipv4_addr"),
        ("unclassified-v6", "ipv6_addr"),
    ] {
        node.node_exec(&[
            "nft",
            "add",
            "set",
            "inet",
            "podwire-policy",
            set,
            &format!("{{ type {ty}; }}"),
        ]);
    }
}

#[test]
fn policy_off_adds_nothing_and_never_fails() {
    let mut node = Node::new();
    let c = conf(&node);
    let p = node.pod();
    let r = node.exec(common::PODWIRE, "ADD", &c, "gate1", &p, K8S_ARGS);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    assert!(!node.nft().contains("podwire-policy"), "{}", node.nft());
    let d = node.exec(common::PODWIRE, "DEL", &c, "gate1", &p, K8S_ARGS);
    assert_eq!(d.code, 0, "{} {}", d.json, d.stderr);
}

#[test]
fn add_gates_a_kubernetes_pod_and_del_and_gc_ungate_it() {
    let mut node = Node::new();
    policy_table(&node);
    let c = conf(&node);
    let (p1, p2, p3) = (node.pod(), node.pod(), node.pod());
    let r = node.exec(common::PODWIRE, "ADD", &c, "gate1", &p1, K8S_ARGS);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    let ips: Vec<String> = r.json["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ips.len(), 2);
    let v4 = elements(&node, "unclassified-v4");
    let v6 = elements(&node, "unclassified-v6");
    assert!(v4.contains(&ips[0]), "{v4}");
    assert!(v6.contains(&ips[1]), "{v6}");
    assert!(v4.contains("comment \"x/web-0/7f3c/gate1\""), "{v4}");

    // Not a Kubernetes pod (no K8S_POD_NAME): not gated.
    let r2 = node.exec(common::PODWIRE, "ADD", &c, "plain", &p2, "");
    assert_eq!(r2.code, 0, "{} {}", r2.json, r2.stderr);
    let other = r2.json["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(!elements(&node, "unclassified-v4").contains(&other));

    let d = node.exec(common::PODWIRE, "DEL", &c, "gate1", &p1, K8S_ARGS);
    assert_eq!(d.code, 0, "{} {}", d.json, d.stderr);
    assert!(!elements(&node, "unclassified-v4").contains(&ips[0]));
    assert!(!elements(&node, "unclassified-v6").contains(&ips[1]));

    // GC: an element whose container the runtime no longer knows goes.
    let args3 = K8S_ARGS.replace("web-0", "web-1");
    let r3 = node.exec(common::PODWIRE, "ADD", &c, "gate3", &p3, &args3);
    assert_eq!(r3.code, 0, "{} {}", r3.json, r3.stderr);
    assert!(elements(&node, "unclassified-v4").contains("web-1"));
    let mut g = c.clone();
    g["cni.dev/valid-attachments"] = json!([{"containerID": "plain", "ifname": "eth0"}]);
    let gc = node.exec(common::PODWIRE, "GC", &g, "", "", "");
    assert_eq!(gc.code, 0, "{} {}", gc.json, gc.stderr);
    assert!(
        !elements(&node, "unclassified-v4").contains("web-1"),
        "{}",
        node.nft()
    );
}
