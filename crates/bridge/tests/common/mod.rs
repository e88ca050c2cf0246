//! Test harness: a throwaway "node" network namespace in which the plugin runs (so bridges, nft
//! tables and sysctls never touch the real host), throwaway pod namespaces, a private IPAM data
//! dir, and a Drop that removes them all even when the test fails.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub const PODWIRE: &str = env!("CARGO_BIN_EXE_podwire");
/// Debian's reference plugins (containernetworking-plugins).
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

pub struct Node {
    pub name: String,
    pub data_dir: PathBuf,
    pods: Vec<String>,
}

pub struct Output {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn run(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn run_ok(cmd: &[&str]) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `ip -j -n NS ...` parsed.
fn ip_json_in(ns: &str, args: &[&str]) -> Value {
    let mut cmd = vec!["ip", "-j", "-n", ns];
    cmd.extend_from_slice(args);
    let text = run(&cmd);
    if text.trim().is_empty() {
        Value::Array(vec![])
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

impl Node {
    pub fn new() -> Node {
        let name = unique("pwn");
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        let data_dir = std::env::temp_dir().join(format!("podwire-test-{name}"));
        Node {
            name,
            data_dir,
            pods: Vec::new(),
        }
    }

    /// A pod network namespace; returns its path (what a runtime passes as CNI_NETNS).
    pub fn pod(&mut self) -> String {
        let name = unique("pwp");
        run(&["ip", "netns", "add", &name]);
        self.pods.push(name.clone());
        format!("/run/netns/{name}")
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
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, plugin])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", args)
            .env(
                "CNI_PATH",
                format!(
                    "{}:{REFERENCE_DIR}",
                    PathBuf::from(PODWIRE).parent().unwrap().display()
                ),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("plugin printed non-JSON ({e}): {text}"))
        };
        Output {
            code: out.status.code().unwrap_or(-1),
            json,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn podwire(&self, command: &str, conf: &Value, container: &str, netns: &str) -> Output {
        self.exec(PODWIRE, command, conf, container, netns, "")
    }

    /// `ip -j` output inside the node namespace.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        ip_json_in(&self.name, args)
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

    /// The node's nftables ruleset as text.
    pub fn nft(&self) -> String {
        run(&["ip", "netns", "exec", &self.name, "nft", "list", "ruleset"])
    }

    /// Allocation files in the IPAM data dir of `network` (host-local layout), excluding bookkeeping.
    pub fn allocations(&self, network: &str) -> Vec<String> {
        let dir = self.data_dir.join(network);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return vec![];
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect()
    }

    pub fn ping(&self, from_netns: &str, to: &str) -> bool {
        let ns = from_netns.trim_start_matches("/run/netns/");
        run_ok(&["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", to])
    }

    pub fn ping_from_node(&self, to: &str) -> bool {
        run_ok(&[
            "ip", "netns", "exec", &self.name, "ping", "-c", "1", "-W", "2", to,
        ])
    }

    /// `ip -j` output inside a pod namespace.
    pub fn pod_ip_json(&self, netns: &str, args: &[&str]) -> Value {
        ip_json_in(netns.trim_start_matches("/run/netns/"), args)
    }

    pub fn delete_pod_netns(&mut self, netns: &str) {
        let ns = netns.trim_start_matches("/run/netns/").to_string();
        run_ok(&["ip", "netns", "del", &ns]);
        self.pods.retain(|p| *p != ns);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for p in &self.pods {
            run_ok(&["ip", "netns", "del", p]);
        }
        run_ok(&["ip", "netns", "del", &self.name]);
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
