//! Test support shared by the real-kernel suites: unique names, running commands, and throwaway
//! network namespaces that are deleted on drop, even when the test fails.

use kernel::{Netlink, Netns};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A short name unique to this process and call (fits an interface name, 15 bytes).
pub fn unique(prefix: &str) -> String {
    let s = format!(
        "{prefix}{:x}-{}",
        std::process::id() % 0x10000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    assert!(s.len() <= 15, "{s} is too long for an interface name");
    s
}

/// Runs a command that must succeed; returns its stdout.
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

/// Whether a command succeeds (its output is dropped).
pub fn run_ok(cmd: &[&str]) -> bool {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `ip -j -n NS ARGS`, parsed (an empty answer is an empty list).
pub fn ip_json(ns: &str, args: &[&str]) -> Value {
    let mut cmd = vec!["ip", "-j", "-n", ns];
    cmd.extend_from_slice(args);
    let text = run(&cmd);
    if text.trim().is_empty() {
        Value::Array(vec![])
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// A named netns under /run/netns with `lo` up, deleted on drop.
pub struct TestNs {
    pub name: String,
    pub ns: Netns,
}

impl TestNs {
    pub fn new(prefix: &str) -> TestNs {
        let name = unique(prefix);
        let ns = Netns::add(&name).expect("create netns");
        Netlink::new_in(&ns)
            .unwrap()
            .link_set_up("lo", true)
            .unwrap();
        TestNs { name, ns }
    }

    /// What a runtime passes as `CNI_NETNS`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    pub fn ip_json(&self, args: &[&str]) -> Value {
        ip_json(&self.name, args)
    }

    /// Runs a command inside the namespace; it must succeed.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut cmd = vec!["ip", "netns", "exec", &self.name];
        cmd.extend_from_slice(args);
        run(&cmd)
    }

    pub fn exec_ok(&self, args: &[&str]) -> bool {
        let mut cmd = vec!["ip", "netns", "exec", &self.name];
        cmd.extend_from_slice(args);
        run_ok(&cmd)
    }

    pub fn ping(&self, to: &str) -> bool {
        self.exec_ok(&["ping", "-c", "1", "-W", "2", to])
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Netns::delete(&self.name);
    }
}
