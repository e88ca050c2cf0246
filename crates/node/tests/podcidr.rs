//! The node → podCIDR logic on Node objects in the shape the API server returns them (as
//! `kubectl get node -o json` shows), without an API server.
#![cfg(feature = "kubernetes")]

use k8s_openapi::api::core::v1::Node;
use node::kubernetes::pod_cidrs_of;
use node::{NodeConfig, Plan};
use serde_json::{json, Value};

/// A kind worker as the API server returns it, with `spec` replaced.
fn node(spec: Value) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "kind-worker",
            "uid": "3f0d0c9e-6a5e-4a43-9d0e-6a1f1b0c8d11",
            "resourceVersion": "5123",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {
                "kubernetes.io/hostname": "kind-worker",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/exclude-from-external-load-balancers": ""
            },
            "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0"
            }
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.3"},
                {"type": "Hostname", "address": "kind-worker"}
            ],
            "conditions": [{
                "type": "Ready", "status": "False", "reason": "KubeletNotReady",
                "message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
                "lastHeartbeatTime": "2024-05-01T10:01:00Z",
                "lastTransitionTime": "2024-05-01T10:00:00Z"
            }],
            "nodeInfo": {
                "architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://1.7.15",
                "kernelVersion": "6.1.0-21-amd64", "kubeProxyVersion": "v1.30.0",
                "kubeletVersion": "v1.30.0", "machineID": "m", "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": "s"
            }
        }
    }))
    .expect("a Node as the API server returns it")
}

fn strings(cidrs: &[ipnet::IpNet]) -> Vec<String> {
    cidrs.iter().map(ToString::to_string).collect()
}

#[test]
fn single_stack_node() {
    let n = node(json!({
        "podCIDR": "10.244.1.0/24",
        "podCIDRs": ["10.244.1.0/24"],
        "providerID": "kind://docker/kind/kind-worker"
    }));
    let cidrs = pod_cidrs_of(&n).unwrap().unwrap();
    assert_eq!(strings(&cidrs), vec!["10.244.1.0/24"]);
    let plan = Plan::new(NodeConfig::new(
        cidrs,
        vec!["10.244.0.0/16".parse().unwrap()],
    ))
    .unwrap();
    assert_eq!(plan.gateways()[0].to_string(), "10.244.1.1/24");
}

#[test]
fn dual_stack_node_either_family_first() {
    for list in [
        json!(["10.244.2.0/24", "fd00:10:244:2::/64"]),
        json!(["fd00:10:244:2::/64", "10.244.2.0/24"]),
    ] {
        let primary = list[0].clone();
        let n = node(json!({ "podCIDR": primary, "podCIDRs": list }));
        let cidrs = pod_cidrs_of(&n).unwrap().unwrap();
        assert_eq!(cidrs.len(), 2, "{list}");
        let plan = Plan::new(NodeConfig::new(
            cidrs,
            vec![
                "10.244.0.0/16".parse().unwrap(),
                "fd00:10:244::/56".parse().unwrap(),
            ],
        ))
        .unwrap();
        // The conflist and the bridge always list IPv4 first.
        let gws: Vec<String> = plan.gateways().iter().map(ToString::to_string).collect();
        assert_eq!(gws, vec!["10.244.2.1/24", "fd00:10:244:2::1/64"], "{list}");
    }
}

#[test]
fn no_pod_cidr_yet() {
    // Just registered: the controller-manager has not allocated a range.
    for spec in [
        json!({}),
        json!({"providerID": "kind://docker/kind/kind-worker",
               "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}),
        json!({"podCIDRs": []}),
        json!({"podCIDR": ""}),
    ] {
        assert_eq!(pod_cidrs_of(&node(spec.clone())).unwrap(), None, "{spec}");
    }
    let mut n = node(json!({}));
    n.spec = None;
    assert_eq!(pod_cidrs_of(&n).unwrap(), None);
}

#[test]
fn an_older_api_server_with_only_pod_cidr() {
    let n = node(json!({ "podCIDR": "10.244.3.0/24" }));
    assert_eq!(
        strings(&pod_cidrs_of(&n).unwrap().unwrap()),
        vec!["10.244.3.0/24"]
    );
}

#[test]
fn a_malformed_pod_cidr_names_the_node_and_the_value() {
    let n = node(json!({ "podCIDR": "10.244.3.0", "podCIDRs": ["10.244.3.0"] }));
    let e = pod_cidrs_of(&n).unwrap_err();
    assert_eq!(e.code.number(), 7);
    assert!(
        e.msg.contains("kind-worker") && e.msg.contains("\"10.244.3.0\""),
        "{e}"
    );
}
