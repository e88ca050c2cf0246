//! Test harness: a throwaway network namespace standing in for a node (so bridges, nft tables and
//! sysctls never touch the real host), private config/state/IPAM directories, and a Drop that
//! removes them all even when the test fails. Subnets: 10.253.0.0/16, fd00:253::/56, 192.0.2.0/24.
#![allow(dead_code)]

use node::NodeConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[allow(unused_imports)] // each test binary uses its own part
pub use testkit::{run, run_ok, unique, PluginCall, PluginOutput, TestNs};

/// A node: its netns and its directories (/etc/cni/net.d, /var/lib/podwire, IPAM data,
/// /opt/cni/bin) under one temp directory.
pub struct Node {
    pub ns: TestNs,
    pub dir: PathBuf,
}

impl Node {
    pub fn new() -> Node {
        let ns = TestNs::new("pwnode");
        let dir = std::env::temp_dir().join(format!("podwire-node-test-{}", ns.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        Node { ns, dir }
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("net.d")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    /// A config for this node with everything under its temp directory.
    pub fn config(&self, pods: &[&str], clusters: &[&str]) -> NodeConfig {
        let mut c = NodeConfig::new(
            pods.iter().map(|s| s.parse().unwrap()).collect(),
            clusters.iter().map(|s| s.parse().unwrap()).collect(),
        );
        c.conf_dir = self.conf_dir();
        c.state_dir = self.state_dir();
        c.cni_bin_dir = self.dir.join("bin");
        c.ipam_data_dir = Some(self.ipam_dir().display().to_string());
        c
    }

    /// Runs `f` with this thread inside the node's netns.
    pub fn inside<T>(&self, f: impl FnOnce() -> T) -> T {
        self.ns.ns.run(f).expect("enter the node netns")
    }

    pub fn setup(&self, c: NodeConfig) -> node::Outcome {
        self.inside(|| node::setup(c)).expect("setup")
    }

    pub fn teardown_opts(&self) -> node::TeardownOptions {
        node::TeardownOptions {
            state_dir: self.state_dir(),
            ..Default::default()
        }
    }

    pub fn teardown(&self) -> node::Outcome {
        let o = self.teardown_opts();
        self.inside(|| node::teardown(&o)).expect("teardown")
    }

    /// `nft list table inet podwire-node` (empty when there is none).
    pub fn nft_table(&self, with_handles: bool) -> String {
        let mut cmd = vec!["nft"];
        if with_handles {
            cmd.push("-a");
        }
        cmd.extend(["list", "table", "inet", "podwire-node"]);
        let mut full = vec!["ip", "netns", "exec", &self.ns.name];
        full.extend(cmd);
        let out = Command::new(full[0]).args(&full[1..]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn sysctl(&self, key: &str) -> String {
        kernel::sysctl::read_in(&self.ns.ns, key).unwrap()
    }

    /// Forwarding off for both families, as on a host that never routed.
    pub fn forwarding_off(&self) {
        kernel::sysctl::write_in(&self.ns.ns, node::forwarding::IPV4, "0").unwrap();
        kernel::sysctl::write_in(&self.ns.ns, node::forwarding::IPV6, "0").unwrap();
    }

    /// Everything setup may touch in the netns: links, addresses, routes, the whole nft ruleset,
    /// forwarding; plus the files under the node's directories.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({
            "links": without_qdisc(self.ns.ip_json(&["link", "show"])),
            "addrs": without_qdisc(self.ns.ip_json(&["addr", "show"])),
            "routes4": self.ns.ip_json(&["-4", "route", "show", "table", "all"]),
            "routes6": self.ns.ip_json(&["-6", "route", "show", "table", "all"]),
            "nft": self.ns.exec(&["nft", "list", "ruleset"]),
            "fwd4": self.sysctl(node::forwarding::IPV4),
            "fwd6": self.sysctl(node::forwarding::IPV6),
            "files": files_under(&self.dir),
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The qdisc follows up/down (noop while a link was never up): not something setup manages.
fn without_qdisc(mut links: Value) -> Value {
    for l in links.as_array_mut().unwrap() {
        l.as_object_mut().unwrap().remove("qdisc");
    }
    links
}

/// Relative paths of the regular files under `dir` (sorted), except the state lock.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|p| p != "state/lock");
    out.sort();
    out
}

/// The `podwire` plugin binary, built into this test's target directory (the plugin lives in
/// another package, so cargo gives no CARGO_BIN_EXE_ for it here).
pub fn podwire_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| testkit::workspace_binary("podwire-bridge", "podwire"))
        .clone()
}

/// Runs a plugin in the node netns as a runtime would: CNI_* env, config on stdin.
pub fn exec_plugin(
    node: &Node,
    plugin: &Path,
    command: &str,
    conf: &Value,
    container: &str,
    netns: &str,
) -> PluginOutput {
    let cni_path = plugin.parent().unwrap().display().to_string();
    let call = PluginCall {
        command,
        container,
        netns,
        args: "",
        cni_path: &cni_path,
    };
    node.ns
        .run_plugin(&plugin.display().to_string(), &call, conf)
}
