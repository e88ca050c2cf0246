//! Pods and Namespaces as a test makes them: a Pod as the scheduler and kubelet fill it in
//! (node, labels, named container ports, hostNetwork, phase and podIPs).

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Namespace, Pod, PodIP, PodSpec, PodStatus,
};
use std::fmt::Display;

/// A Namespace `name` with `labels` (the server adds `kubernetes.io/metadata.name`).
pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.into());
    if !labels.is_empty() {
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    ns
}

/// Builds a [`Pod`]: `PodBuilder::new("x", "a").node("n1").label("pod", "a").port("serve-80-tcp", 80, "TCP").ip("10.244.1.5").build()`.
#[derive(Clone, Debug)]
pub struct PodBuilder {
    pod: Pod,
}

impl PodBuilder {
    /// A pod with one container "c" and no ports yet.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> PodBuilder {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some(namespace.into());
        pod.metadata.name = Some(name.into());
        pod.spec = Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        PodBuilder { pod }
    }

    fn spec(&mut self) -> &mut PodSpec {
        self.pod.spec.get_or_insert_with(Default::default)
    }

    fn status(&mut self) -> &mut PodStatus {
        self.pod.status.get_or_insert_with(Default::default)
    }

    /// `spec.nodeName` (what the scheduler binds).
    pub fn node(mut self, node: impl Into<String>) -> PodBuilder {
        self.spec().node_name = Some(node.into());
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> PodBuilder {
        let labels = self
            .pod
            .metadata
            .labels
            .get_or_insert_with(Default::default);
        labels.insert(key.into(), value.into());
        self
    }

    /// A named container port of the first container (`protocol`: TCP, UDP, SCTP).
    pub fn port(mut self, name: &str, port: i32, protocol: &str) -> PodBuilder {
        let c = &mut self.spec().containers[0];
        c.ports.get_or_insert_with(Vec::new).push(ContainerPort {
            name: Some(name.into()),
            container_port: port,
            protocol: Some(protocol.into()),
            ..Default::default()
        });
        self
    }

    pub fn host_network(mut self) -> PodBuilder {
        self.spec().host_network = Some(true);
        self
    }

    /// `status.phase` (Pending, Running, Succeeded, Failed).
    pub fn phase(mut self, phase: &str) -> PodBuilder {
        self.status().phase = Some(phase.into());
        self
    }

    /// Adds an address to `status.podIPs` (the first is also `status.podIP`), as kubelet posts
    /// them; the phase becomes Running unless set.
    pub fn ip(mut self, ip: impl Display) -> PodBuilder {
        let ip = ip.to_string();
        let status = self.status();
        status.pod_ip.get_or_insert_with(|| ip.clone());
        status
            .pod_ips
            .get_or_insert_with(Vec::new)
            .push(PodIP { ip });
        status.phase.get_or_insert_with(|| "Running".into());
        self
    }

    pub fn build(self) -> Pod {
        self.pod
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_scheduled_dual_stack_pod() {
        let pod = PodBuilder::new("x", "a")
            .node("n1")
            .label("pod", "a")
            .port("serve-80-tcp", 80, "TCP")
            .ip("10.244.1.5")
            .ip("fd00::5")
            .build();
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["namespace"], "x");
        assert_eq!(v["spec"]["nodeName"], "n1");
        assert_eq!(
            v["spec"]["containers"][0]["ports"][0]["name"],
            "serve-80-tcp"
        );
        assert_eq!(v["status"]["podIP"], "10.244.1.5");
        assert_eq!(v["status"]["podIPs"][1]["ip"], "fd00::5");
        assert_eq!(v["status"]["phase"], "Running");
        let ns = serde_json::to_value(namespace("x", &[("ns", "x")])).unwrap();
        assert_eq!(ns["metadata"]["labels"]["ns"], "x");
    }
}
