//! Test support shared by the real-kernel suites: unique names, running commands, and throwaway
//! network namespaces that are deleted on drop, even when the test fails.

pub mod bench_page;
pub mod frames;

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

/// The allocated addresses of `network` in a host-local layout data dir
/// (`<data_dir>/<network>/<ip>`), sorted; bookkeeping files (lock, last_reserved_ip.N) and our
/// own `.podwire` dir are left out. A missing dir holds none.
pub fn allocations(data_dir: &std::path::Path, network: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(network)) else {
        return vec![];
    };
    let mut ips: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    ips.sort();
    ips
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

/// The environment of one plugin call (`CNI_IFNAME` is always `eth0`).
pub struct PluginCall<'a> {
    pub command: &'a str,
    pub container: &'a str,
    pub netns: &'a str,
    pub args: &'a str,
    pub cni_path: &'a str,
}

/// What a plugin printed and how it exited.
pub struct PluginOutput {
    pub code: i32,
    /// stdout as JSON (`Null` when empty); a plugin printing anything else fails the test.
    pub json: Value,
    pub stderr: String,
}

impl TestNs {
    /// Runs `plugin` inside this namespace as a runtime would: only the CNI_* variables, the
    /// config on stdin.
    pub fn run_plugin(&self, plugin: &str, call: &PluginCall, conf: &Value) -> PluginOutput {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, plugin])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", call.command)
            .env("CNI_CONTAINERID", call.container)
            .env("CNI_NETNS", call.netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", call.args)
            .env("CNI_PATH", call.cni_path)
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
        PluginOutput {
            code: out.status.code().unwrap_or(-1),
            json,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A binary of another workspace package, built (once per call site's process) into the
/// running test's own target directory and profile: cargo gives `CARGO_BIN_EXE_*` only for the
/// test's own package.
pub fn workspace_binary(package: &str, bin: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // A test runs from <target>/<profile>/deps/<test>, a binary from <target>/<profile>/<bin>.
    let mut profile = exe.parent().unwrap().to_path_buf();
    if profile.file_name().unwrap() == "deps" {
        profile.pop();
    }
    let target = profile.parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", &target);
    // The profile's directory is named after it, but for `dev`'s (debug).
    match profile.file_name().unwrap().to_str().unwrap() {
        "debug" => {}
        name => {
            cmd.args(["--profile", name]);
        }
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building {bin} failed");
    let path = profile.join(bin);
    assert!(path.is_file(), "{} missing", path.display());
    path
}
