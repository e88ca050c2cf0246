//! A throwaway node for podwire-portmap: a "node" netns with a bridge (10.77.0.1/24,
//! fd77::1/64) and an uplink to a "client" netns that stands for another host (10.78.0.2 →
//! node 10.78.0.1), pods as netns on the bridge. The plugin runs inside the node netns with the
//! prevResult a bridge plugin would have returned. Test servers and clients are sockets this
//! process opens inside those namespaces: no traffic leaves them.
#![allow(dead_code)]

use kernel::Netns;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;
pub use testkit::{run, PluginCall, PluginOutput, TestNs};

pub const PORTMAP: &str = env!("CARGO_BIN_EXE_podwire-portmap");
pub const BRIDGE: &str = "pwbr0";
pub const NODE_UPLINK_V4: &str = "10.78.0.1";
pub const NODE_UPLINK_V6: &str = "fd78::1";
pub const GATEWAY_V4: &str = "10.77.0.1";

pub struct Node {
    pub node: TestNs,
    pub client: TestNs,
    pub pods: Vec<Pod>,
}

pub struct Pod {
    pub ns: TestNs,
    pub container: String,
    pub v4: String,
    pub v6: String,
    pub host_veth: String,
}

impl Node {
    pub fn new() -> Node {
        let node = no_dad(TestNs::new("pwmn"));
        let client = no_dad(TestNs::new("pwmc"));
        for args in [
            vec!["ip", "link", "add", BRIDGE, "type", "bridge"],
            vec!["ip", "addr", "add", "10.77.0.1/24", "dev", BRIDGE],
            vec!["ip", "addr", "add", "fd77::1/64", "dev", BRIDGE, "nodad"],
            vec!["ip", "link", "set", BRIDGE, "up"],
            vec!["sysctl", "-qw", "net.ipv4.ip_forward=1"],
            vec!["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        ] {
            node.exec(&args);
        }
        let up = format!("pwu{}", &node.name[4..]);
        run(&[
            "ip",
            "-n",
            &node.name,
            "link",
            "add",
            &up,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &client.name,
        ]);
        for args in [
            vec!["ip", "addr", "add", "10.78.0.1/24", "dev", &up],
            vec!["ip", "addr", "add", "fd78::1/64", "dev", &up, "nodad"],
            vec!["ip", "link", "set", &up, "up"],
        ] {
            node.exec(&args);
        }
        for args in [
            vec!["ip", "addr", "add", "10.78.0.2/24", "dev", "eth0"],
            vec!["ip", "addr", "add", "fd78::2/64", "dev", "eth0", "nodad"],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ip", "route", "add", "default", "via", "10.78.0.1"],
            vec!["ip", "-6", "route", "add", "default", "via", "fd78::1"],
        ] {
            client.exec(&args);
        }
        Node {
            node,
            client,
            pods: Vec::new(),
        }
    }

    /// A pod on the bridge at 10.77.0.<n> and fd77::<n>; returns its index.
    pub fn pod(&mut self, n: u8) -> usize {
        let ns = no_dad(TestNs::new("pwmp"));
        let host_veth = format!("pwv{}", &ns.name[4..]);
        run(&[
            "ip",
            "-n",
            &self.node.name,
            "link",
            "add",
            &host_veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns.name,
        ]);
        // Hairpin mode, as the bridge plugin's `hairpinMode` sets it: with br_netfilter, a pod's
        // own hairpin traffic is bridged back out the port it came in on.
        self.node
            .exec(&["ip", "link", "set", &host_veth, "master", BRIDGE, "up"]);
        self.node.exec(&[
            "ip",
            "link",
            "set",
            &host_veth,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        let (v4, v6) = (format!("10.77.0.{n}"), format!("fd77::{n}"));
        for args in [
            vec!["ip", "addr", "add", &format!("{v4}/24"), "dev", "eth0"],
            vec![
                "ip",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ip", "route", "add", "default", "via", GATEWAY_V4],
            vec!["ip", "-6", "route", "add", "default", "via", "fd77::1"],
        ] {
            ns.exec(&args);
        }
        self.pods.push(Pod {
            container: format!("ctr-{}", ns.name),
            ns,
            v4,
            v6,
            host_veth,
        });
        self.pods.len() - 1
    }

    /// The result a bridge plugin returns for pod `i` (dual-stack).
    pub fn prev_result(&self, i: usize) -> Value {
        let p = &self.pods[i];
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": BRIDGE},
                {"name": p.host_veth},
                {"name": "eth0", "sandbox": p.ns.path()}
            ],
            "ips": [
                {"address": format!("{}/24", p.v4), "gateway": GATEWAY_V4, "interface": 2},
                {"address": format!("{}/64", p.v6), "gateway": "fd77::1", "interface": 2}
            ]
        })
    }

    pub fn conf(&self, i: usize, mappings: Value) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": "pmtest",
            "type": "podwire-portmap",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": mappings},
            "prevResult": self.prev_result(i),
        })
    }

    pub fn call(&self, command: &str, i: usize, conf: &Value) -> PluginOutput {
        let p = &self.pods[i];
        let netns = p.ns.path();
        let c = PluginCall {
            command,
            container: &p.container,
            netns: if command == "GC" || command == "STATUS" {
                ""
            } else {
                &netns
            },
            args: "",
            cni_path: "",
        };
        self.node.run_plugin(PORTMAP, &c, conf)
    }

    pub fn ok(&self, command: &str, i: usize, conf: &Value) -> Value {
        let out = self.call(command, i, conf);
        assert_eq!(out.code, 0, "{command}: {} {}", out.json, out.stderr);
        out.json
    }

    pub fn nft(&self) -> String {
        self.node.exec(&["nft", "list", "ruleset"])
    }

    /// Elements of one of our maps, as `nft -j` sees them.
    pub fn elements(&self, map: &str) -> Vec<Value> {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.node.name, "nft", "-j", "list", "map"])
            .args(["inet", "podwire-portmap", map])
            .output()
            .unwrap();
        if !out.status.success() {
            return vec![];
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.get("map"))
            .flat_map(|m| m["elem"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// IPv6 addresses usable at once (no duplicate address detection on new interfaces).
fn no_dad(ns: TestNs) -> TestNs {
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    ns
}

/// A TCP server in `ns` answering every connection with `reply`, on its own thread.
pub fn tcp_server(ns: &Netns, addr: &str, reply: &'static str) {
    let l = ns.run(|| TcpListener::bind(addr)).unwrap().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(reply.as_bytes());
        }
    });
}

/// A UDP server in `ns` answering every datagram with `reply`.
pub fn udp_server(ns: &Netns, addr: &str, reply: &'static str) {
    let s = ns.run(|| UdpSocket::bind(addr)).unwrap().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(reply.as_bytes(), from);
        }
    });
}

/// What a TCP server at `to` answers a client in `ns` (None: no connection).
pub fn tcp_get(ns: &Netns, to: &str) -> Option<String> {
    let to: SocketAddr = to.parse().unwrap();
    let stream = ns
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(2)))
        .unwrap()
        .ok()?;
    let mut stream = stream;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut s = String::new();
    stream.read_to_string(&mut s).ok()?;
    Some(s)
}

/// A UDP client socket in `ns`, connected to `to` (its source port stays the same).
pub fn udp_client(ns: &Netns, to: &str) -> UdpSocket {
    let s = ns
        .run(|| {
            let bind = if to.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            UdpSocket::bind(bind)
        })
        .unwrap()
        .unwrap();
    s.connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    s
}

/// Sends one datagram and returns the answer, if any.
pub fn udp_ask(s: &UdpSocket) -> Option<String> {
    for _ in 0..2 {
        let _ = s.send(b"ping");
        let mut buf = [0u8; 64];
        if let Ok(n) = s.recv(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}
