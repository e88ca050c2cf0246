//! The upstream e2e model (test/e2e/network/netpol): namespaces x, y, z; pods a, b, c in each,
//! labelled `pod: <name>`, serving ports 80 and 81 over TCP, UDP and SCTP with the container
//! port names `serve-<port>-<proto>`; namespaces labelled `ns: <name>` and with the API
//! server's `kubernetes.io/metadata.name`. Pods sit on two nodes (or one), dual-stack; a
//! reachability matrix is probed by running every packet through the compiled tables of the
//! sender's and the receiver's nodes.

use crate::compile::{compile, Compiled, Options, ThisNode};
use crate::eval::{evaluate, Packet};
use crate::model::{NamedPort, Namespace, Pod, Policy, Protocol};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];

/// Where the pods run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// All nine on n1.
    OneNode,
    /// Alternately on n1 and n2 (x/a n1, x/b n2, x/c n1, y/a n2…): same-node and cross-node pairs.
    TwoNodes,
}

pub fn ns_index(ns: &str) -> usize {
    NAMESPACES.iter().position(|n| *n == ns).unwrap()
}

pub fn pod_index(pod: &str) -> usize {
    PODS.iter().position(|n| *n == pod).unwrap()
}

fn node_of(layout: Layout, i: usize) -> usize {
    match layout {
        Layout::OneNode => 1,
        Layout::TwoNodes => 1 + i % 2,
    }
}

/// The addresses of pod number `i` (0..9) on node `node`.
pub fn pod_ips(node: usize, i: usize) -> Vec<IpAddr> {
    vec![
        format!("10.244.{node}.{}", 10 + i).parse().unwrap(),
        format!("fd00:244:{node}::{:x}", 0x10 + i).parse().unwrap(),
    ]
}

pub fn node_addresses(node: usize) -> Vec<IpAddr> {
    vec![
        format!("192.168.0.{node}").parse().unwrap(),
        format!("10.244.{node}.1").parse().unwrap(),
        format!("fd00:192:168::{node}").parse().unwrap(),
        format!("fd00:244:{node}::1").parse().unwrap(),
    ]
}

pub fn namespaces() -> Vec<Namespace> {
    NAMESPACES
        .iter()
        .map(|n| Namespace {
            name: n.to_string(),
            labels: [
                ("ns".to_string(), n.to_string()),
                (
                    crate::model::NAMESPACE_NAME_LABEL.to_string(),
                    n.to_string(),
                ),
            ]
            .into(),
        })
        .collect()
}

pub fn pods(layout: Layout) -> Vec<Pod> {
    let mut out = Vec::new();
    for (ni, ns) in NAMESPACES.iter().enumerate() {
        for (pi, name) in PODS.iter().enumerate() {
            let i = ni * 3 + pi;
            let node = node_of(layout, i);
            let mut ports = Vec::new();
            for port in [80, 81] {
                for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                    ports.push(NamedPort {
                        name: format!("serve-{port}-{protocol}"),
                        protocol,
                        port,
                    });
                }
            }
            out.push(Pod {
                namespace: ns.to_string(),
                name: name.to_string(),
                uid: format!("uid-{ns}-{name}"),
                node: Some(format!("n{node}")),
                labels: Some([("pod".to_string(), name.to_string())].into()),
                host_network: false,
                terminated: false,
                ports,
                ips: pod_ips(node, i),
            });
        }
    }
    out
}

/// A NetworkPolicy from its spec (JSON, as YAML would say it), in namespace `ns`.
pub fn policy(ns: &str, name: &str, spec: Value) -> Policy {
    let mut problems = vec![];
    let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"namespace": ns, "name": name}, "spec": spec});
    let p = Policy::from_json(&v, &mut problems).expect("a policy");
    assert!(problems.is_empty(), "{problems:?}");
    p
}

/// A cluster: pods, namespaces, policies, and each node's compiled table.
pub struct World {
    pub layout: Layout,
    pub pods: Vec<Pod>,
    pub namespaces: Vec<Namespace>,
    pub policies: Vec<Policy>,
    pub nodes: BTreeMap<String, Compiled>,
}

impl World {
    pub fn new(layout: Layout) -> World {
        World {
            layout,
            pods: pods(layout),
            namespaces: namespaces(),
            policies: vec![],
            nodes: BTreeMap::new(),
        }
        .compiled()
    }

    pub fn with(mut self, p: Policy) -> World {
        self.policies.retain(|q| q.key() != p.key());
        self.policies.push(p);
        self.compiled()
    }

    pub fn compiled(mut self) -> World {
        self.recompile();
        self
    }

    pub fn recompile(&mut self) {
        self.nodes.clear();
        for n in 1..=2 {
            let addrs = node_addresses(n);
            let name = format!("n{n}");
            let node = ThisNode {
                name: &name,
                addresses: &addrs,
            };
            let c = compile(
                &self.pods,
                &self.namespaces,
                &self.policies,
                &node,
                &Options::default(),
            );
            assert!(c.problems.is_empty(), "{:?}", c.problems);
            self.nodes.insert(name, c);
        }
    }

    pub fn pod(&self, key: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.key() == key)
            .unwrap_or_else(|| panic!("no pod {key}"))
    }

    pub fn pod_mut(&mut self, key: &str) -> &mut Pod {
        self.pods.iter_mut().find(|p| p.key() == key).unwrap()
    }

    /// Whether `from` reaches `to` on `port`/`proto` over IPv4 (`v6`: IPv6): allowed out by the
    /// sender's node and in by the receiver's.
    pub fn reaches(&self, from: &str, to: &str, port: u16, proto: Protocol, v6: bool) -> bool {
        let (src, dst) = (self.pod(from), self.pod(to));
        let pick = |p: &Pod| *p.ips.iter().find(|a| a.is_ipv6() == v6).unwrap();
        let packet = Packet::new(pick(src), pick(dst), proto, port);
        let on = |p: &Pod| &self.nodes[p.node.as_deref().unwrap()].ruleset;
        evaluate(on(src), &packet).allows() && evaluate(on(dst), &packet).allows()
    }

    /// The probed matrix for `port`/`proto`, both families (which must agree).
    pub fn probe(&self, port: u16, proto: Protocol) -> Reachability {
        let v4 = self.probe_family(port, proto, false);
        let v6 = self.probe_family(port, proto, true);
        assert_eq!(
            v4, v6,
            "IPv4 and IPv6 differ ({port}/{proto}):\nv4:\n{v4}\nv6:\n{v6}"
        );
        v4
    }

    pub fn probe_family(&self, port: u16, proto: Protocol, v6: bool) -> Reachability {
        let mut r = Reachability::new(true);
        for from in all_pods() {
            for to in all_pods() {
                r.set(&from, &to, self.reaches(&from, &to, port, proto, v6));
            }
        }
        r
    }

    /// Asserts the probe on `port`/`proto` equals `expected` (loopback ignored, as upstream).
    #[track_caller]
    pub fn validate(&self, port: u16, proto: Protocol, expected: &Reachability) {
        let got = self.probe(port, proto);
        assert!(
            got.same_as(expected),
            "{:?} {port}/{proto}: expected\n{expected}\ngot\n{got}",
            self.layout
        );
    }

    #[track_caller]
    pub fn validate_family(&self, port: u16, proto: Protocol, v6: bool, expected: &Reachability) {
        let got = self.probe_family(port, proto, v6);
        assert!(
            got.same_as(expected),
            "{:?} {port}/{proto} v6={v6}: expected\n{expected}\ngot\n{got}",
            self.layout
        );
    }
}

pub fn all_pods() -> Vec<String> {
    NAMESPACES
        .iter()
        .flat_map(|n| PODS.iter().map(move |p| format!("{n}/{p}")))
        .collect()
}

/// A peer pattern as upstream's `Peer{Namespace, Pod}`: None matches any.
#[derive(Clone, Copy, Default)]
pub struct P<'a> {
    pub ns: Option<&'a str>,
    pub pod: Option<&'a str>,
}

pub fn any<'a>() -> P<'a> {
    P::default()
}

pub fn ns(n: &str) -> P<'_> {
    P {
        ns: Some(n),
        pod: None,
    }
}

pub fn pod<'a>(n: &'a str, p: &'a str) -> P<'a> {
    P {
        ns: Some(n),
        pod: Some(p),
    }
}

impl P<'_> {
    fn matches(&self, key: &str) -> bool {
        let (n, p) = key.split_once('/').unwrap();
        self.ns.is_none_or(|x| x == n) && self.pod.is_none_or(|x| x == p)
    }
}

/// A 9x9 truth table (row: from, column: to), as upstream's Reachability.
#[derive(Clone, PartialEq, Eq)]
pub struct Reachability {
    cells: [[bool; 9]; 9],
}

fn index(key: &str) -> usize {
    let (n, p) = key.split_once('/').unwrap();
    ns_index(n) * 3 + pod_index(p)
}

impl Reachability {
    pub fn new(all: bool) -> Reachability {
        Reachability {
            cells: [[all; 9]; 9],
        }
    }

    pub fn set(&mut self, from: &str, to: &str, v: bool) {
        self.cells[index(from)][index(to)] = v;
    }

    /// upstream ExpectPeer.
    pub fn expect_peer(&mut self, from: P, to: P, v: bool) -> &mut Self {
        for f in all_pods() {
            for t in all_pods() {
                if from.matches(&f) && to.matches(&t) {
                    self.set(&f, &t, v);
                }
            }
        }
        self
    }

    /// upstream Expect.
    pub fn expect(&mut self, from: &str, to: &str, v: bool) -> &mut Self {
        self.set(from, to, v);
        self
    }

    /// upstream ExpectAllIngress: nothing (else) reaches `to`.
    pub fn expect_all_ingress(&mut self, to: &str, v: bool) -> &mut Self {
        for f in all_pods() {
            self.set(&f, to, v);
        }
        self
    }

    /// upstream ExpectAllEgress: `from` reaches nothing (else).
    pub fn expect_all_egress(&mut self, from: &str, v: bool) -> &mut Self {
        for t in all_pods() {
            self.set(from, &t, v);
        }
        self
    }

    /// Equal outside the diagonal (upstream ignores loopback).
    pub fn same_as(&self, other: &Reachability) -> bool {
        (0..9).all(|i| (0..9).all(|j| i == j || self.cells[i][j] == other.cells[i][j]))
    }
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pods = all_pods();
        writeln!(f, "      {}", pods.join(" "))?;
        for (i, from) in pods.iter().enumerate() {
            write!(f, "{from}  ")?;
            for j in 0..9 {
                let c = if i == j {
                    "  - "
                } else if self.cells[i][j] {
                    "  . "
                } else {
                    "  X "
                };
                write!(f, "{c}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{self}")
    }
}

impl World {
    /// A copy (the compiled tables included).
    pub fn clone_world(&self) -> World {
        World {
            layout: self.layout,
            pods: self.pods.clone(),
            namespaces: self.namespaces.clone(),
            policies: self.policies.clone(),
            nodes: self.nodes.clone(),
        }
    }
}
