//! Helpers shared by the integration tests: run a plugin binary as a runtime would, in a
//! private temporary dataDir.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const PODWIRE: &str = env!("CARGO_BIN_EXE_podwire-ipam");
pub const HOST_LOCAL: &str = "/usr/lib/cni/host-local";

/// A unique dataDir, removed when dropped (even when the test fails).
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new(tag: &str) -> DataDir {
        let p = std::env::temp_dir().join(format!(
            "podwire-ipam-it-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        DataDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The `<ip>` files of a network: the addresses allocated, sorted.
    pub fn allocated(&self, net: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.join(net))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn owner_of(&self, net: &str, ip: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(net).join(ip)).ok()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network config whose ipam section is `ipam` plus `"dataDir"`.
pub fn conf(version: &str, net: &str, dir: &DataDir, mut ipam: Value) -> Value {
    ipam["dataDir"] = json!(dir.path());
    if ipam.get("type").is_none() {
        ipam["type"] = json!("podwire-ipam");
    }
    json!({"cniVersion": version, "name": net, "type": "podwire", "ipam": ipam})
}

/// One call: what the runtime sets for a plugin.
pub struct Call<'a> {
    pub bin: &'a str,
    pub command: &'a str,
    pub container: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
}

impl<'a> Call<'a> {
    pub fn new(bin: &'a str, command: &'a str, container: &'a str) -> Call<'a> {
        Call {
            bin,
            command,
            container,
            ifname: "eth0",
            args: "",
        }
    }

    pub fn spawn(&self, stdin: &Value) -> Child {
        let mut c = Command::new(self.bin);
        c.env_clear()
            .env("CNI_COMMAND", self.command)
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if matches!(self.command, "ADD" | "DEL" | "CHECK") {
            c.env("CNI_CONTAINERID", self.container)
                .env("CNI_IFNAME", self.ifname)
                .env("CNI_NETNS", "/var/run/netns/podwire-ipam-test-none")
                .env("CNI_ARGS", self.args);
        }
        let mut child = c.spawn().expect("spawn plugin");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.to_string().as_bytes())
            .unwrap();
        child
    }

    /// Runs to completion: exit code and the JSON printed (Null when nothing was).
    pub fn run(&self, stdin: &Value) -> (i32, Value) {
        finish(self.spawn(stdin))
    }
}

pub fn finish(child: Child) -> (i32, Value) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"))
    };
    (out.status.code().unwrap_or(-1), v)
}

/// ADD that must succeed: the addresses it returned (without prefix).
pub fn add_ok(bin: &str, container: &str, stdin: &Value) -> Vec<String> {
    let (code, v) = Call::new(bin, "ADD", container).run(stdin);
    assert_eq!(code, 0, "{bin} ADD {container}: {v}");
    addresses(&v)
}

pub fn addresses(result: &Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .unwrap_or(&vec![])
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
        .collect()
}

pub fn del_ok(bin: &str, container: &str, stdin: &Value) {
    let (code, v) = Call::new(bin, "DEL", container).run(stdin);
    assert_eq!(code, 0, "{bin} DEL {container}: {v}");
}
