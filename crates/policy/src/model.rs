//! What the compiler needs of Pods, Namespaces and NetworkPolicies, converted from the API's
//! types. Converting never panics; what cannot be understood is said as a [`Problem`] and
//! FAILS CLOSED: it may deny more than the policy meant, never allow more.
//!
//! - a policy whose `podSelector` cannot be parsed selects every pod of its namespace and
//!   allows nothing (it still isolates: we cannot tell which pods it meant to isolate);
//! - an unknown `policyTypes` value isolates both directions;
//! - a rule with an unknown field allows nothing; a peer or a port that cannot be parsed (bad
//!   CIDR, bad except, unknown protocol, endPort with a named port, bad selector, an unknown
//!   field) is left out of its rule, and a rule whose every peer (or port) was left out allows
//!   nothing, never everything;
//! - an object that does not even decode (see [`Policy::from_json`]) becomes a policy of its
//!   namespace selecting every pod there, isolating both directions, allowing nothing.
//!
//! A pod may be known only from the CNI ADD on this node (namespace, name, uid, addresses) before
//! its Pod object arrives: it is [`Pod::unclassified`] (`labels: None`). See `compile` for how
//! it is treated (denied by default where any policy of its namespace could select it).

use crate::selector::{Labels, Selector};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{
    Container, Namespace as K8sNamespace, Pod as K8sPod, PodSpec, PodStatus,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

/// The label the API server puts on every namespace (its name).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Something that could not be understood, and what was done instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `NetworkPolicy x/allow-b`, `Pod x/a`, `Namespace x`.
    pub object: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The API's spelling (exact, as the API server validates it).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// IPPROTO_* (what `meta l4proto` compares).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u8) -> Option<Protocol> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .find(|p| p.number() == n)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// A named container port (only named ones matter to policy: numbers are matched as given).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamedPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// A Pod as policy needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.nodeName`; None while unscheduled.
    pub node: Option<String>,
    /// None: unclassified (known from a CNI ADD only, its Pod object not seen yet).
    pub labels: Option<Labels>,
    pub host_network: bool,
    /// Succeeded or Failed: its addresses may already belong to another pod, so it is ignored.
    pub terminated: bool,
    pub ports: Vec<NamedPort>,
    /// `status.podIPs` (v4, v6 or both).
    pub ips: Vec<IpAddr>,
}

impl Pod {
    /// A pod known from the CNI ADD on `node` only: no labels, no ports yet.
    pub fn unclassified(
        namespace: impl Into<String>,
        name: impl Into<String>,
        uid: impl Into<String>,
        node: impl Into<String>,
        ips: Vec<IpAddr>,
    ) -> Pod {
        Pod {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            node: Some(node.into()),
            labels: None,
            host_network: false,
            terminated: false,
            ports: Vec::new(),
            ips,
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn is_classified(&self) -> bool {
        self.labels.is_some()
    }

    /// The port `name` resolves to for `protocol` on this pod, if any.
    pub fn named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port)
    }

    /// Converts; None (and a problem) when it has no name or namespace.
    pub fn from_k8s(pod: &K8sPod, problems: &mut Vec<Problem>) -> Option<Pod> {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let object = format!("Pod {namespace}/{name}");
        if namespace.is_empty() || name.is_empty() {
            problems.push(Problem {
                object,
                message: "no namespace or name: ignored".into(),
            });
            return None;
        }
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let mut out = Pod {
            uid: meta.uid.clone().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            labels: Some(meta.labels.clone().unwrap_or_default()),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            terminated: status
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Succeeded" || p == "Failed"),
            ports: spec
                .map(|s| named_ports(s, &object, problems))
                .unwrap_or_default(),
            ips: status
                .map(|s| pod_ips(s, &object, problems))
                .unwrap_or_default(),
            namespace,
            name,
        };
        out.ports.sort();
        out.ports.dedup();
        Some(out)
    }
}

fn named_ports(spec: &PodSpec, object: &str, problems: &mut Vec<Problem>) -> Vec<NamedPort> {
    // Sidecars (init containers that keep running) serve ports too.
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    let containers = spec.containers.iter().chain(sidecars);
    let mut out = Vec::new();
    for c in containers {
        for p in c.ports.iter().flatten() {
            let Some(name) = p.name.clone().filter(|n| !n.is_empty()) else {
                continue;
            };
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let (Some(protocol), Ok(port @ 1..)) =
                (Protocol::parse(proto), u16::try_from(p.container_port))
            else {
                problems.push(Problem {
                    object: object.into(),
                    message: format!(
                        "container {}: port {name} ({} {proto}) is not a valid port: named \
                         ports of that name do not resolve to it",
                        container_name(c),
                        p.container_port
                    ),
                });
                continue;
            };
            out.push(NamedPort {
                name,
                protocol,
                port,
            });
        }
    }
    out
}

fn container_name(c: &Container) -> &str {
    &c.name
}

fn pod_ips(status: &PodStatus, object: &str, problems: &mut Vec<Problem>) -> Vec<IpAddr> {
    let listed: Vec<&str> = match status.pod_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(|p| p.ip.as_str()).collect(),
        _ => status.pod_ip.as_deref().into_iter().collect(),
    };
    let mut out = Vec::new();
    for ip in listed {
        match ip.parse::<IpAddr>() {
            Ok(a) if !out.contains(&a) => out.push(a),
            Ok(_) => {}
            Err(_) => problems.push(Problem {
                object: object.into(),
                message: format!("pod IP {ip:?} is not an address: ignored"),
            }),
        }
    }
    out
}

/// A Namespace: its name and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

impl Namespace {
    pub fn from_k8s(ns: &K8sNamespace) -> Option<Namespace> {
        let name = ns.metadata.name.clone().filter(|n| !n.is_empty())?;
        let mut labels = ns.metadata.labels.clone().unwrap_or_default();
        // The API server always sets it; an object without it (an old server) gets it here.
        labels
            .entry(NAMESPACE_NAME_LABEL.into())
            .or_insert_with(|| name.clone());
        Some(Namespace { name, labels })
    }
}

/// What a port of a rule matches.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortMatch {
    /// Every port of the protocol (`port` unset).
    Any,
    /// `port`..=`endPort` (`endPort` unset: one port).
    Range(u16, u16),
    /// A container port name, resolved against the destination pod.
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port {
    pub protocol: Protocol,
    pub port: PortMatch,
}

/// One peer of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Pods matching `pods` in namespaces matching `namespaces` (None: the policy's own).
    Pods {
        pods: Selector,
        namespaces: Option<Selector>,
    },
    /// Addresses in `cidr` but not in any of `except`.
    Block { cidr: IpNet, except: Vec<IpNet> },
}

/// One ingress or egress rule. `None` means "every peer" / "every port"; `Some(empty)` means
/// none (every one given was left out as unparseable): the rule then allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub peers: Option<Vec<Peer>>,
    pub ports: Option<Vec<Port>>,
}

impl Rule {
    /// Whether it can allow anything at all.
    pub fn allows_something(&self) -> bool {
        !matches!(&self.peers, Some(p) if p.is_empty())
            && !matches!(&self.ports, Some(p) if p.is_empty())
    }
}

/// A NetworkPolicy as enforced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    /// None: unparseable; selects every pod of the namespace and allows nothing.
    pub pod_selector: Option<Selector>,
    /// None: does not isolate ingress. Some(rules): isolates; the rules allow.
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Converts a typed object. Unknown fields cannot be seen in one (serde dropped them): use
    /// [`Policy::from_json`] where the raw object is at hand.
    pub fn from_k8s(np: &NetworkPolicy, problems: &mut Vec<Problem>) -> Option<Policy> {
        convert(np, &Unknown::default(), problems)
    }

    /// Converts the object as the API server sent it, also failing closed on fields this
    /// version does not know (a future API field could narrow what a policy allows).
    pub fn from_json(v: &Value, problems: &mut Vec<Problem>) -> Option<Policy> {
        let unknown = Unknown::find(v);
        match serde_json::from_value::<NetworkPolicy>(v.clone()) {
            Ok(np) => convert(&np, &unknown, problems),
            Err(e) => {
                let ns = v.pointer("/metadata/namespace").and_then(Value::as_str);
                let name = v.pointer("/metadata/name").and_then(Value::as_str);
                let (ns, name) = (ns.filter(|s| !s.is_empty())?, name.unwrap_or(""));
                problems.push(Problem {
                    object: format!("NetworkPolicy {ns}/{name}"),
                    message: format!(
                        "does not decode ({e}): every pod of {ns} is isolated both ways by it, \
                         and it allows nothing"
                    ),
                });
                Some(Policy {
                    namespace: ns.into(),
                    name: name.into(),
                    pod_selector: None,
                    ingress: Some(vec![]),
                    egress: Some(vec![]),
                })
            }
        }
    }
}

/// The JSON paths of objects holding a field this version does not know.
#[derive(Default)]
struct Unknown(HashSet<String>);

const SPEC_FIELDS: &[&str] = &["podSelector", "policyTypes", "ingress", "egress"];
const PEER_FIELDS: &[&str] = &["podSelector", "namespaceSelector", "ipBlock"];
const PORT_FIELDS: &[&str] = &["protocol", "port", "endPort"];
const BLOCK_FIELDS: &[&str] = &["cidr", "except"];
const SELECTOR_FIELDS: &[&str] = &["matchLabels", "matchExpressions"];
const EXPRESSION_FIELDS: &[&str] = &["key", "operator", "values"];

impl Unknown {
    fn find(v: &Value) -> Unknown {
        let mut u = Unknown::default();
        let Some(spec) = v.get("spec") else {
            return u;
        };
        u.check("spec", spec, SPEC_FIELDS);
        u.selector("spec.podSelector", spec.get("podSelector"));
        for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
            for (i, rule) in items(spec.get(dir)) {
                let at = format!("spec.{dir}[{i}]");
                u.check(&at, rule, &[peers, "ports"]);
                for (j, peer) in items(rule.get(peers)) {
                    let p = format!("{at}.{peers}[{j}]");
                    u.check(&p, peer, PEER_FIELDS);
                    u.selector(&p, peer.get("podSelector"));
                    u.selector(&p, peer.get("namespaceSelector"));
                    if let Some(b) = peer.get("ipBlock") {
                        u.check_as(&p, b, BLOCK_FIELDS);
                    }
                }
                for (j, port) in items(rule.get("ports")) {
                    u.check(&format!("{at}.ports[{j}]"), port, PORT_FIELDS);
                }
            }
        }
        u
    }

    fn check(&mut self, at: &str, v: &Value, known: &[&str]) {
        self.check_as(at, v, known)
    }

    /// Marks `at` when `v` has a field outside `known`.
    fn check_as(&mut self, at: &str, v: &Value, known: &[&str]) {
        if let Some(map) = v.as_object() {
            if map.keys().any(|k| !known.contains(&k.as_str())) {
                self.0.insert(at.to_string());
            }
        }
    }

    /// A selector with an unknown field marks its owner `at`.
    fn selector(&mut self, at: &str, s: Option<&Value>) {
        let Some(s) = s else { return };
        self.check_as(at, s, SELECTOR_FIELDS);
        for (_, e) in items(s.get("matchExpressions")) {
            self.check_as(at, e, EXPRESSION_FIELDS);
        }
    }

    fn has(&self, at: &str) -> bool {
        self.0.contains(at)
    }
}

fn items(v: Option<&Value>) -> impl Iterator<Item = (usize, &Value)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// A rule as the API has it: its peers (`from` or `to`) and ports.
type RawRule = (
    Option<Vec<NetworkPolicyPeer>>,
    Option<Vec<NetworkPolicyPort>>,
);

fn convert(np: &NetworkPolicy, unknown: &Unknown, problems: &mut Vec<Problem>) -> Option<Policy> {
    let namespace = np.metadata.namespace.clone().filter(|s| !s.is_empty())?;
    let name = np.metadata.name.clone().unwrap_or_default();
    let object = format!("NetworkPolicy {namespace}/{name}");
    let mut problem = |message: String| {
        problems.push(Problem {
            object: object.clone(),
            message,
        })
    };
    let spec = np.spec.clone().unwrap_or_default();
    let pod_selector = match spec.pod_selector.as_ref() {
        None => Some(Selector::everything()),
        Some(_) if unknown.has("spec.podSelector") => {
            problem("podSelector has a field this version does not know: it selects every pod of the namespace and allows nothing".into());
            None
        }
        Some(s) => match Selector::from_k8s(s) {
            Ok(s) => Some(s),
            Err(e) => {
                problem(format!(
                    "podSelector: {e}: it selects every pod of the namespace and allows nothing"
                ));
                None
            }
        },
    };
    let ingress_rules = spec.ingress.clone().unwrap_or_default();
    let egress_rules = spec.egress.clone().unwrap_or_default();
    let (mut isolate_in, mut isolate_out) = (true, !egress_rules.is_empty());
    if let Some(types) = spec.policy_types.as_ref().filter(|t| !t.is_empty()) {
        isolate_in = false;
        isolate_out = false;
        for t in types {
            match t.as_str() {
                "Ingress" => isolate_in = true,
                "Egress" => isolate_out = true,
                other => {
                    problem(format!(
                        "policyTypes {other:?} is unknown: the policy isolates both directions"
                    ));
                    isolate_in = true;
                    isolate_out = true;
                }
            }
        }
    }
    let spec_unknown = unknown.has("spec");
    if spec_unknown {
        problem("spec has a field this version does not know: the policy isolates both directions and allows nothing".into());
        isolate_in = true;
        isolate_out = true;
    }
    let allows = pod_selector.is_some() && !spec_unknown;
    let mut rules = |dir: &str, list: Vec<RawRule>| {
        if !allows {
            return vec![];
        }
        let peers_field = if dir == "ingress" { "from" } else { "to" };
        let mut out = Vec::new();
        for (i, (peers, ports)) in list.into_iter().enumerate() {
            let at = format!("spec.{dir}[{i}]");
            if unknown.has(&at) {
                problem(format!(
                    "{dir}[{i}] has a field this version does not know: the rule allows nothing"
                ));
                continue;
            }
            let rule = Rule {
                peers: non_empty(peers).map(|peers| {
                    peers
                        .iter()
                        .enumerate()
                        .filter_map(|(j, p)| {
                            let at = format!("{at}.{peers_field}[{j}]");
                            let parsed = if unknown.has(&at) {
                                Err("has a field this version does not know".to_string())
                            } else {
                                peer(p)
                            };
                            parsed
                                .map_err(|e| {
                                    problem(format!(
                                        "{dir}[{i}].{peers_field}[{j}]: {e}: this peer is left out"
                                    ))
                                })
                                .ok()
                        })
                        .collect()
                }),
                ports: non_empty(ports).map(|ports| {
                    ports
                        .iter()
                        .enumerate()
                        .filter_map(|(j, p)| {
                            let parsed = if unknown.has(&format!("{at}.ports[{j}]")) {
                                Err("has a field this version does not know".to_string())
                            } else {
                                port(p)
                            };
                            parsed
                                .map_err(|e| {
                                    problem(format!(
                                        "{dir}[{i}].ports[{j}]: {e}: this port is left out"
                                    ))
                                })
                                .ok()
                        })
                        .collect()
                }),
            };
            if !rule.allows_something() {
                problem(format!(
                    "{dir}[{i}]: nothing of it could be understood: it allows nothing"
                ));
            }
            out.push(rule);
        }
        out
    };
    let ingress = isolate_in.then(|| {
        rules(
            "ingress",
            ingress_rules
                .into_iter()
                .map(|r| (r.from, r.ports))
                .collect(),
        )
    });
    let egress = isolate_out.then(|| {
        rules(
            "egress",
            egress_rules.into_iter().map(|r| (r.to, r.ports)).collect(),
        )
    });
    Some(Policy {
        namespace,
        name,
        pod_selector,
        ingress,
        egress,
    })
}

fn non_empty<T>(v: Option<Vec<T>>) -> Option<Vec<T>> {
    v.filter(|v| !v.is_empty())
}

fn selector(s: &LabelSelector, what: &str) -> Result<Selector, String> {
    Selector::from_k8s(s).map_err(|e| format!("{what}: {e}"))
}

fn peer(p: &NetworkPolicyPeer) -> Result<Peer, String> {
    match (&p.ip_block, &p.pod_selector, &p.namespace_selector) {
        (Some(b), None, None) => block(b),
        (Some(_), _, _) => Err("ipBlock together with a selector".into()),
        (None, None, None) => Err("no podSelector, namespaceSelector or ipBlock".into()),
        (None, pods, namespaces) => Ok(Peer::Pods {
            pods: match pods {
                Some(s) => selector(s, "podSelector")?,
                None => Selector::everything(),
            },
            namespaces: namespaces
                .as_ref()
                .map(|s| selector(s, "namespaceSelector"))
                .transpose()?,
        }),
    }
}

fn cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| format!("{s:?} is not a CIDR"))
}

fn block(b: &IPBlock) -> Result<Peer, String> {
    let net = cidr(&b.cidr)?;
    let mut except = Vec::new();
    for e in b.except.iter().flatten() {
        // A bad except would widen the block: the whole peer goes.
        let e = cidr(e).map_err(|m| format!("except {m}"))?;
        if e.addr().is_ipv6() != net.addr().is_ipv6() {
            return Err(format!("except {e} is not of the family of {net}"));
        }
        except.push(e);
    }
    Ok(Peer::Block { cidr: net, except })
}

fn port(p: &NetworkPolicyPort) -> Result<Port, String> {
    let proto = p.protocol.as_deref().unwrap_or("TCP");
    let protocol =
        Protocol::parse(proto).ok_or_else(|| format!("protocol {proto:?} is unknown"))?;
    let number = |n: i32| match u16::try_from(n) {
        Ok(n @ 1..) => Ok(n),
        _ => Err(format!("port {n} is out of 1-65535")),
    };
    let port = match (&p.port, p.end_port) {
        (None, None) => PortMatch::Any,
        (None, Some(_)) => return Err("endPort without port".into()),
        (Some(IntOrString::Int(n)), None) => {
            let n = number(*n)?;
            PortMatch::Range(n, n)
        }
        (Some(IntOrString::Int(n)), Some(end)) => {
            let (n, end) = (number(*n)?, number(end)?);
            if end < n {
                return Err(format!("endPort {end} is below port {n}"));
            }
            PortMatch::Range(n, end)
        }
        (Some(IntOrString::String(_)), Some(_)) => return Err("endPort with a named port".into()),
        (Some(IntOrString::String(s)), None) if s.is_empty() => {
            return Err("empty port name".into())
        }
        // A name the API server would refuse (all digits, say) matches no container port:
        // kept as a name, it allows nothing, which is what it can mean.
        (Some(IntOrString::String(s)), None) => PortMatch::Named(s.clone()),
    };
    Ok(Port { protocol, port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> (Option<Policy>, Vec<Problem>) {
        let mut problems = vec![];
        let p = Policy::from_json(&v, &mut problems);
        (p, problems)
    }

    fn np(spec: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"namespace": "x", "name": "p"}, "spec": spec})
    }

    #[test]
    fn policy_types_default_to_ingress_and_egress_when_it_has_egress_rules() {
        let (p, pr) = policy(np(json!({"podSelector": {}})));
        let p = p.unwrap();
        assert!(pr.is_empty(), "{pr:?}");
        assert_eq!((p.ingress, p.egress), (Some(vec![]), None));
        let p = policy(np(json!({"podSelector": {}, "egress": [{}]})))
            .0
            .unwrap();
        assert_eq!(p.ingress, Some(vec![]), "Ingress is always implied");
        assert_eq!(p.egress, Some(vec![Rule::default()]));
        let p = policy(np(
            json!({"podSelector": {}, "egress": [{}], "policyTypes": ["Ingress"]}),
        ))
        .0
        .unwrap();
        assert_eq!(p.egress, None, "explicit types win over rules present");
        let p = policy(np(
            json!({"podSelector": {}, "ingress": [{}], "policyTypes": ["Egress"]}),
        ))
        .0
        .unwrap();
        assert_eq!((p.ingress, p.egress), (None, Some(vec![])));
    }

    #[test]
    fn ports_parse_with_tcp_default_ranges_and_names() {
        let p = policy(np(json!({"ingress": [{"ports": [
            {"port": 80}, {"protocol": "UDP", "port": 81, "endPort": 90},
            {"port": "serve-80-tcp"}, {"protocol": "SCTP"}, {"port": "8080"}
        ]}]})))
        .0
        .unwrap();
        let ports = p.ingress.unwrap()[0].ports.clone().unwrap();
        assert_eq!(
            ports,
            vec![
                Port {
                    protocol: Protocol::Tcp,
                    port: PortMatch::Range(80, 80)
                },
                Port {
                    protocol: Protocol::Udp,
                    port: PortMatch::Range(81, 90)
                },
                Port {
                    protocol: Protocol::Tcp,
                    port: PortMatch::Named("serve-80-tcp".into())
                },
                Port {
                    protocol: Protocol::Sctp,
                    port: PortMatch::Any
                },
                Port {
                    protocol: Protocol::Tcp,
                    port: PortMatch::Named("8080".into())
                },
            ]
        );
    }

    #[test]
    fn bad_ports_and_peers_are_left_out_and_a_rule_left_empty_allows_nothing() {
        let (p, pr) = policy(np(json!({"ingress": [
            {"ports": [{"protocol": "ICMP", "port": 1}, {"port": 80}]},
            {"ports": [{"protocol": "QUIC"}]},
            {"ports": [{"port": 90, "endPort": 80}, {"port": "http", "endPort": 90},
                       {"port": 0}, {"port": 70000}, {"endPort": 5}]},
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]},
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["nonsense"]}}]},
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/8"]}}]},
            {"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]},
            {"from": [{}]},
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]},
        ]})));
        let rules = p.unwrap().ingress.unwrap();
        assert_eq!(
            rules.len(),
            9,
            "every rule stays: the policy still isolates"
        );
        assert_eq!(rules[0].ports.as_ref().unwrap().len(), 1, "80 is kept");
        assert!(rules[0].allows_something());
        for (i, r) in rules.iter().enumerate().skip(1) {
            assert!(!r.allows_something(), "rule {i} must allow nothing: {r:?}");
        }
        assert!(pr.len() >= 8 + 12, "each left-out part is said: {pr:#?}");
        assert!(pr.iter().all(|p| p.object == "NetworkPolicy x/p"));
    }

    #[test]
    fn an_unparseable_pod_selector_selects_all_and_allows_nothing() {
        let (p, pr) = policy(np(json!({
            "podSelector": {"matchExpressions": [{"key": "pod", "operator": "Like", "values": ["a"]}]},
            "ingress": [{}]
        })));
        let p = p.unwrap();
        assert_eq!(p.pod_selector, None);
        assert_eq!(p.ingress, Some(vec![]), "isolates, allows nothing");
        assert!(pr[0].message.contains("unknown operator"), "{pr:?}");
    }

    #[test]
    fn unknown_policy_type_isolates_both_ways() {
        let (p, pr) = policy(np(
            json!({"policyTypes": ["Ingress", "Sideways"], "ingress": [{}]}),
        ));
        let p = p.unwrap();
        assert_eq!(p.ingress, Some(vec![Rule::default()]));
        assert_eq!(p.egress, Some(vec![]));
        assert_eq!(pr.len(), 1);
    }

    #[test]
    fn future_fields_fail_closed_at_their_level() {
        // In a port: that port goes.
        let p = policy(np(
            json!({"ingress": [{"ports": [{"port": 80, "future": 1}]}]}),
        ))
        .0
        .unwrap();
        assert!(!p.ingress.unwrap()[0].allows_something());
        // In a peer, its selector or its ipBlock: that peer goes.
        for peer in [
            json!({"podSelector": {}, "future": 1}),
            json!({"podSelector": {"matchLabels": {}, "future": 1}}),
            json!({"namespaceSelector": {"matchExpressions": [{"key": "k", "operator": "Exists", "future": 1}]}}),
            json!({"ipBlock": {"cidr": "10.0.0.0/8", "future": 1}}),
        ] {
            let p = policy(np(json!({"egress": [{"to": [peer.clone(), {"podSelector": {"matchLabels": {"pod": "b"}}}]}]})))
                .0
                .unwrap();
            let rule = &p.egress.unwrap()[0];
            assert_eq!(rule.peers.as_ref().unwrap().len(), 1, "{peer}");
        }
        // In a rule: the rule allows nothing.
        let p = policy(np(json!({"ingress": [{"action": "Deny"}, {}]})))
            .0
            .unwrap();
        let rules = p.ingress.unwrap();
        assert_eq!(
            rules.len(),
            1,
            "the unknown rule is gone, the plain one stays"
        );
        // In the spec: isolates both ways, allows nothing.
        let p = policy(np(json!({"ingress": [{}], "priority": 5})))
            .0
            .unwrap();
        assert_eq!((p.ingress, p.egress), (Some(vec![]), Some(vec![])));
        // In the pod selector: selects all, allows nothing.
        let p = policy(np(
            json!({"podSelector": {"matchLabels": {"a": "b"}, "future": 1}, "ingress": [{}]}),
        ))
        .0
        .unwrap();
        assert_eq!((p.pod_selector, p.ingress), (None, Some(vec![])));
    }

    #[test]
    fn an_object_that_does_not_decode_isolates_its_namespace() {
        let (p, pr) = policy(json!({"metadata": {"namespace": "x", "name": "bad"},
                                    "spec": {"ingress": "not a list"}}));
        let p = p.unwrap();
        assert_eq!(p.pod_selector, None);
        assert_eq!((p.ingress, p.egress), (Some(vec![]), Some(vec![])));
        assert!(pr[0].message.contains("does not decode"), "{pr:?}");
        assert!(
            policy(json!({"spec": 5})).0.is_none(),
            "no namespace: nothing to isolate"
        );
    }

    #[test]
    fn peers_parse_selectors_and_blocks() {
        let p = policy(np(json!({"egress": [{"to": [
            {"podSelector": {"matchLabels": {"pod": "a"}}},
            {"namespaceSelector": {}},
            {"podSelector": {}, "namespaceSelector": {"matchLabels": {"ns": "y"}}},
            {"ipBlock": {"cidr": "10.0.0.7/24", "except": ["10.0.0.8/30"]}},
        ]}]})))
        .0
        .unwrap();
        let peers = p.egress.unwrap()[0].peers.clone().unwrap();
        assert!(matches!(
            &peers[0],
            Peer::Pods {
                namespaces: None,
                ..
            }
        ));
        assert!(
            matches!(&peers[1], Peer::Pods { pods, namespaces: Some(n) } if pods.matches_everything() && n.matches_everything())
        );
        assert!(
            matches!(&peers[2], Peer::Pods { namespaces: Some(n), .. } if !n.matches_everything())
        );
        assert_eq!(
            peers[3],
            Peer::Block {
                cidr: "10.0.0.0/24".parse().unwrap(),
                except: vec!["10.0.0.8/30".parse().unwrap()]
            },
            "host bits are cleared as the API server's ParseCIDR does"
        );
    }

    #[test]
    fn pods_convert_named_ports_ips_and_phase() {
        let pod: K8sPod = serde_json::from_value(json!({
            "metadata": {"namespace": "x", "name": "a", "uid": "u1", "labels": {"pod": "a"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                {"name": "serve-80-tcp", "containerPort": 80},
                {"name": "serve-80-udp", "containerPort": 80, "protocol": "UDP"},
                {"containerPort": 81},
                {"name": "bad", "containerPort": 0}
            ]}], "initContainers": [
                {"name": "side", "restartPolicy": "Always", "ports": [{"name": "metrics", "containerPort": 9090}]},
                {"name": "init", "ports": [{"name": "gone", "containerPort": 1}]}
            ]},
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                       "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}, {"ip": "nonsense"}]}
        }))
        .unwrap();
        let mut pr = vec![];
        let p = Pod::from_k8s(&pod, &mut pr).unwrap();
        assert_eq!(
            p.ips,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert_eq!(p.named_port("serve-80-udp", Protocol::Udp), Some(80));
        assert_eq!(p.named_port("serve-80-udp", Protocol::Tcp), None);
        assert_eq!(
            p.named_port("metrics", Protocol::Tcp),
            Some(9090),
            "sidecars count"
        );
        assert_eq!(
            p.named_port("gone", Protocol::Tcp),
            None,
            "plain init containers do not"
        );
        assert_eq!(p.ports.len(), 3);
        assert_eq!(pr.len(), 2, "bad port and bad IP said: {pr:?}");
        assert!(p.is_classified() && !p.terminated && !p.host_network);
        let mut done = pod.clone();
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(Pod::from_k8s(&done, &mut pr).unwrap().terminated);
        assert!(Pod::from_k8s(&K8sPod::default(), &mut pr).is_none());
    }

    #[test]
    fn namespaces_always_carry_their_name_label() {
        let ns: K8sNamespace =
            serde_json::from_value(json!({"metadata": {"name": "x", "labels": {"ns": "x"}}}))
                .unwrap();
        let n = Namespace::from_k8s(&ns).unwrap();
        assert_eq!(
            n.labels.get(NAMESPACE_NAME_LABEL).map(String::as_str),
            Some("x")
        );
        assert_eq!(n.labels.get("ns").map(String::as_str), Some("x"));
    }
}
