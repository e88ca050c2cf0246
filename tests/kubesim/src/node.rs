//! Node objects as kubelet and the controller-manager fill them in: name, pod CIDRs
//! (`spec.podCIDRs`, `spec.podCIDR` = the first), addresses, labels, annotations.

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus};
use std::fmt::Display;

/// Builds a [`Node`]: `NodeBuilder::new("n1").pod_cidr("10.244.1.0/24").internal_ip("192.168.0.11").build()`.
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    node: Node,
}

impl NodeBuilder {
    pub fn new(name: impl Into<String>) -> NodeBuilder {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        NodeBuilder { node }
    }

    fn spec(&mut self) -> &mut NodeSpec {
        self.node.spec.get_or_insert_with(Default::default)
    }

    fn addresses(&mut self) -> &mut Vec<NodeAddress> {
        let status = self.node.status.get_or_insert_with(NodeStatus::default);
        status.addresses.get_or_insert_with(Vec::new)
    }

    /// Adds a pod CIDR (call twice for dual-stack, in the cluster's family order).
    pub fn pod_cidr(mut self, cidr: impl Display) -> NodeBuilder {
        let cidr = cidr.to_string();
        let spec = self.spec();
        spec.pod_cidr.get_or_insert_with(|| cidr.clone());
        spec.pod_cidrs.get_or_insert_with(Vec::new).push(cidr);
        self
    }

    /// Adds a `status.addresses` entry of `kind` (InternalIP, ExternalIP, Hostname, …).
    pub fn address(mut self, kind: &str, address: impl Display) -> NodeBuilder {
        self.addresses().push(NodeAddress {
            type_: kind.to_string(),
            address: address.to_string(),
        });
        self
    }

    pub fn internal_ip(self, ip: impl Display) -> NodeBuilder {
        self.address("InternalIP", ip)
    }

    pub fn external_ip(self, ip: impl Display) -> NodeBuilder {
        self.address("ExternalIP", ip)
    }

    /// The Hostname address kubelet adds (its node name unless overridden).
    pub fn hostname(self, name: impl Display) -> NodeBuilder {
        self.address("Hostname", name)
    }

    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> NodeBuilder {
        let map = self
            .node
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        map.insert(key.into(), value.into());
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> NodeBuilder {
        let map = self
            .node
            .metadata
            .labels
            .get_or_insert_with(Default::default);
        map.insert(key.into(), value.into());
        self
    }

    pub fn build(self) -> Node {
        self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_dual_stack_node() {
        let node = NodeBuilder::new("n1")
            .pod_cidr("10.244.1.0/24")
            .pod_cidr("fd00:10:244:1::/64")
            .internal_ip("192.168.0.11")
            .internal_ip("fd00::11")
            .external_ip("203.0.113.11")
            .annotation("podwire.io/x", "y")
            .label("kubernetes.io/hostname", "n1")
            .build();
        let v = serde_json::to_value(&node).unwrap();
        assert_eq!(v["metadata"]["name"], "n1");
        assert_eq!(v["spec"]["podCIDR"], "10.244.1.0/24");
        assert_eq!(v["spec"]["podCIDRs"][1], "fd00:10:244:1::/64");
        assert_eq!(v["status"]["addresses"][1]["type"], "InternalIP");
        assert_eq!(v["status"]["addresses"][2]["address"], "203.0.113.11");
        assert_eq!(v["metadata"]["annotations"]["podwire.io/x"], "y");
        assert_eq!(v["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
    }
}
