//! Test harness: a throwaway "node" network namespace in which the plugin runs (so bridges, nft
//! tables and sysctls never touch the real host), throwaway pod namespaces, a private IPAM data
//! dir, and a Drop that removes them all even when the test fails.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
#[allow(unused_imports)] // each test binary uses its own part
pub use testkit::{run, run_ok, PluginCall, TestNs};

pub const PODWIRE: &str = env!("CARGO_BIN_EXE_podwire");
/// Debian's reference plugins (containernetworking-plugins).
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

pub struct Node {
    /// The node netns' name (`ip -n NAME`).
    pub name: String,
    pub data_dir: PathBuf,
    node: TestNs,
    pods: Vec<TestNs>,
}

pub type Output = testkit::PluginOutput;

impl Node {
    pub fn new() -> Node {
        let node = TestNs::new("pwn");
        let data_dir = std::env::temp_dir().join(format!("podwire-test-{}", node.name));
        Node {
            name: node.name.clone(),
            data_dir,
            node,
            pods: Vec::new(),
        }
    }

    /// A pod network namespace; returns its path (what a runtime passes as CNI_NETNS).
    pub fn pod(&mut self) -> String {
        let pod = TestNs::new("pwp");
        let path = pod.path();
        self.pods.push(pod);
        path
    }

    /// Runs a plugin binary inside the node namespace, as a runtime would, for interface eth0.
    pub fn exec(
        &self,
        plugin: &str,
        command: &str,
        conf: &Value,
        container: &str,
        netns: &str,
        args: &str,
    ) -> Output {
        let cni_path = format!(
            "{}:{REFERENCE_DIR}",
            PathBuf::from(PODWIRE).parent().unwrap().display()
        );
        let call = PluginCall {
            command,
            container,
            netns,
            args,
            cni_path: &cni_path,
        };
        self.node.run_plugin(plugin, &call, conf)
    }

    pub fn podwire(&self, command: &str, conf: &Value, container: &str, netns: &str) -> Output {
        self.exec(PODWIRE, command, conf, container, netns, "")
    }

    /// `ip -j` output inside the node namespace.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        self.node.ip_json(args)
    }

    /// Names of the links enslaved to `bridge` in the node.
    pub fn bridge_ports(&self, bridge: &str) -> Vec<String> {
        if !run_ok(&["ip", "-n", &self.name, "link", "show", bridge]) {
            return vec![];
        }
        let links = self.ip_json(&["link", "show", "master", bridge]);
        links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// Runs a command inside the node namespace (it must succeed); returns its stdout.
    pub fn node_exec(&self, args: &[&str]) -> String {
        self.node.exec(args)
    }

    /// The node's nftables ruleset as text.
    pub fn nft(&self) -> String {
        self.node.exec(&["nft", "list", "ruleset"])
    }

    /// Allocation files in the IPAM data dir of `network` (host-local layout), excluding bookkeeping.
    pub fn allocations(&self, network: &str) -> Vec<String> {
        testkit::allocations(&self.data_dir, network)
    }

    pub fn ping(&self, from_netns: &str, to: &str) -> bool {
        self.pods
            .iter()
            .find(|p| p.path() == from_netns)
            .is_some_and(|p| p.ping(to))
    }

    pub fn ping_from_node(&self, to: &str) -> bool {
        self.node.ping(to)
    }

    /// `ip -j` output inside a pod namespace.
    pub fn pod_ip_json(&self, netns: &str, args: &[&str]) -> Value {
        testkit::ip_json(netns.trim_start_matches("/run/netns/"), args)
    }

    /// Deletes a pod's netns now (as a runtime does before a late DEL).
    pub fn delete_pod_netns(&mut self, netns: &str) {
        self.pods.retain(|p| p.path() != netns);
    }
}

impl Drop for Node {
    // The namespaces go with their TestNs fields; the data dir is ours to remove.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
