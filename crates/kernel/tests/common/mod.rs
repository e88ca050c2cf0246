//! Shared fixtures: throwaway network namespaces with unique names that
//! are removed on drop (even when the test panics), and `ip`/`nft`
//! read-back helpers for cross-checking our own API.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use kernel::{Netlink, Netns};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique name with a given prefix, short enough for an ifname (15).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    let s = format!("{prefix}{pid:x}{n:x}");
    assert!(s.len() <= 15, "name too long: {s}");
    s
}

/// A throwaway netns `pwk-<pid>-<n>`, deleted on drop. Everything a test
/// creates lives inside such namespaces, so nothing leaks to the host.
pub struct TestNs {
    pub name: String,
    pub ns: Netns,
    pub nl: Netlink,
}

impl TestNs {
    pub fn new() -> TestNs {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("pwk-{}-{n}", std::process::id());
        let ns = Netns::add(&name).expect("create test netns");
        let nl = Netlink::new_in(&ns).expect("netlink in test netns");
        // Loopback up, so the namespace behaves like a pod's.
        nl.link_set_up("lo", true).expect("lo up");
        TestNs { name, ns, nl }
    }

    /// `ip -n <ns> -j <args>` parsed as JSON.
    pub fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["-n", &self.name, "-j"];
        full.extend_from_slice(args);
        run_json("ip", &full)
    }

    /// `nft -j list ruleset` inside the namespace.
    pub fn nft_json(&self) -> serde_json::Value {
        run_json(
            "ip",
            &["netns", "exec", &self.name, "nft", "-j", "list", "ruleset"],
        )
    }

    /// Runs a command inside the namespace; returns success.
    pub fn exec(&self, args: &[&str]) -> bool {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if let Err(e) = Netns::delete(&self.name) {
            eprintln!("cleanup of netns {}: {e}", self.name);
        }
    }
}

pub fn run_json(cmd: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(cmd).args(args).output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("json output")
}
