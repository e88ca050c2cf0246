//! NetworkPolicy on this node, for people: what the agent says is in force (its state file,
//! `policy.json` in its state directory), why a flow passes or not (a packet run through the
//! policy table read back, [`policy::evaluate`]), and the drop counters per pod.
//!
//! The table itself is read by the caller (podwirectl, through the kernel layer) and given
//! here as a [`policy::Ruleset`]; nothing here writes anything.

use policy::{names, Direction, Outcome, Packet, Protocol, Ruleset, Trace};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// The nflog group the agent's drop rules log to.
pub const LOG_GROUP: u16 = policy::compile::DEFAULT_LOG_GROUP;

/// The agent's state file name (node::agent::policy::STATE_FILE: keep in step).
pub const STATE_FILE: &str = "policy.json";

/// What the agent wrote: the policies in force with their pods, the local pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    pub node: String,
    pub policies: Vec<PolicyInForce>,
    pub pods: Vec<PodPolicy>,
    #[serde(default)]
    pub problems: Vec<String>,
}

/// A policy isolating pods of this node, and which (`ns/name`) per direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyInForce {
    pub policy: String,
    #[serde(default)]
    pub ingress: Vec<String>,
    #[serde(default)]
    pub egress: Vec<String>,
}

/// A pod of this node: its addresses and the policies isolating it (None: not isolated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodPolicy {
    pub pod: String,
    pub addresses: Vec<IpAddr>,
    pub classified: bool,
    pub ingress: Option<Vec<String>>,
    pub egress: Option<Vec<String>>,
}

impl PolicyState {
    pub fn pod_at(&self, addr: IpAddr) -> Option<&PodPolicy> {
        self.pods.iter().find(|p| p.addresses.contains(&addr))
    }

    fn pod(&self, key: &str) -> Option<&PodPolicy> {
        self.pods.iter().find(|p| p.pod == key)
    }
}

/// Reads the agent's state file; `Ok(None)` when there is none (no agent enforcing policy).
pub fn read_state(state_dir: &Path) -> crate::Result<Option<PolicyState>> {
    read_json(&state_dir.join(STATE_FILE))
}

/// One of the agent's JSON state files; `Ok(None)` when it is not there.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> crate::Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `node show`'s NetworkPolicy part.
pub fn render_state(s: &PolicyState) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let isolated = s
        .pods
        .iter()
        .filter(|p| p.ingress.is_some() || p.egress.is_some())
        .count();
    let _ = writeln!(
        out,
        "network policy on {}: {} policies in force, {isolated} of {} pods isolated",
        s.node,
        s.policies.len(),
        s.pods.len()
    );
    for p in &s.policies {
        let _ = writeln!(out, "  policy {}", p.policy);
        for (d, pods) in [("ingress", &p.ingress), ("egress", &p.egress)] {
            if !pods.is_empty() {
                let _ = writeln!(out, "    {d:<7} {}", pods.join(", "));
            }
        }
    }
    for p in s.pods.iter().filter(|p| !p.classified) {
        let _ = writeln!(
            out,
            "  pod {} is not classified yet (its Pod object is not seen): denied where a policy \
             could select it",
            p.pod
        );
    }
    for p in &s.problems {
        let _ = writeln!(out, "  problem (fails closed): {p}");
    }
    out
}

/// Why one flow passes or not on this node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVerdict {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub port: u16,
    pub protocol: String,
    pub allowed: bool,
    pub egress: String,
    pub ingress: String,
}

/// `PORT/PROTO` (`80/tcp`, `53/udp`; the protocol defaults to tcp).
pub fn parse_port(s: &str) -> crate::Result<(u16, Protocol)> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{s:?}: a port is 0-65535, as in 80/tcp"))?;
    let proto = Protocol::parse(&proto.to_ascii_uppercase())
        .ok_or_else(|| format!("{s:?}: the protocol is tcp, udp or sctp"))?;
    Ok((port, proto))
}

/// Runs a first packet `src` -> `dst:port/proto` through the table and says, per direction,
/// which policy allowed it or that none did.
pub fn explain(
    rs: &Ruleset,
    state: Option<&PolicyState>,
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    proto: Protocol,
) -> PolicyVerdict {
    let trace: Trace = policy::evaluate(rs, &Packet::new(src, dst, proto, port));
    let local = |a: IpAddr| state.and_then(|s| s.pod_at(a)).map(|p| p.pod.clone());
    let egress = describe(&trace.egress, Direction::Egress, local(src), state);
    let ingress = if !trace.egress.allows() {
        "not reached (denied on the way out)".to_string()
    } else if state.is_some() && local(dst).is_none() && matches!(trace.ingress, Outcome::Passed) {
        format!("{dst} is not a pod of this node: its ingress is judged on its own node")
    } else {
        describe(&trace.ingress, Direction::Ingress, local(dst), state)
    };
    PolicyVerdict {
        src,
        dst,
        port,
        protocol: proto.to_string(),
        allowed: trace.allows(),
        egress,
        ingress,
    }
}

fn describe(o: &Outcome, d: Direction, pod: Option<String>, state: Option<&PolicyState>) -> String {
    let who = pod.clone().unwrap_or_else(|| "the pod".into());
    match o {
        Outcome::Passed => format!("allowed: {who} is not isolated for {}", d.as_str()),
        Outcome::Accepted { chain, rule } => {
            if let Some(p) = policy_of_chain(chain, d) {
                format!("allowed by policy {p} (rule {rule} of its chain)")
            } else if *chain == names::dispatch_chain(d) {
                match rule {
                    0 => "allowed: a reply of an allowed connection".into(),
                    1 => "allowed: related to an allowed connection".into(),
                    2 => "allowed: neighbour/router discovery".into(),
                    _ => "allowed: traffic with this node's own addresses always passes".into(),
                }
            } else {
                format!("allowed by {chain} rule {rule}")
            }
        }
        Outcome::Dropped { chain, .. } => {
            let isolating = pod
                .as_deref()
                .and_then(|k| state.and_then(|s| s.pod(k)))
                .and_then(|p| match d {
                    Direction::Ingress => p.ingress.clone(),
                    Direction::Egress => p.egress.clone(),
                });
            if chain == "address-conflict" {
                "denied: the address is claimed by two pods of this node".into()
            } else {
                match isolating {
                    Some(ps) => format!(
                        "denied: {who} is isolated for {} by {}, and none of them allows this",
                        d.as_str(),
                        ps.join(", ")
                    ),
                    None => format!(
                        "denied by {chain}: {who} is isolated for {} and no policy allows this",
                        d.as_str()
                    ),
                }
            }
        }
    }
}

/// `policy/x/allow-b/ingress` -> `x/allow-b`.
fn policy_of_chain(chain: &str, d: Direction) -> Option<String> {
    chain
        .strip_prefix("policy/")?
        .strip_suffix(&format!("/{}", d.as_str()))
        .map(str::to_string)
}

pub fn render_verdict(v: &PolicyVerdict) -> String {
    format!(
        "network policy, {} -> {} port {}/{}: {}\n  egress:  {}\n  ingress: {}\n",
        v.src,
        v.dst,
        v.port,
        v.protocol,
        if v.allowed { "ALLOWED" } else { "DENIED" },
        v.egress,
        v.ingress
    )
}

/// One pod's drops in one direction (its chain's final counter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drops {
    pub pod: String,
    pub direction: String,
    pub packets: u64,
    pub bytes: u64,
    /// The policies isolating the pod in that direction (none of them allowed these).
    pub isolated_by: Vec<String>,
}

/// The drop counters (`drops/ns/pod/ingress`) among the table's named counters, most first.
pub fn drops(counters: &BTreeMap<String, (u64, u64)>, state: Option<&PolicyState>) -> Vec<Drops> {
    let mut out: Vec<Drops> = counters
        .iter()
        .filter_map(|(name, (packets, bytes))| {
            let rest = name.strip_prefix("drops/")?;
            let (pod, direction) = rest.rsplit_once('/')?;
            let isolated_by = state
                .and_then(|s| s.pod(pod))
                .and_then(|p| match direction {
                    "ingress" => p.ingress.clone(),
                    _ => p.egress.clone(),
                })
                .unwrap_or_default();
            Some(Drops {
                pod: pod.to_string(),
                direction: direction.to_string(),
                packets: *packets,
                bytes: *bytes,
                isolated_by,
            })
        })
        .collect();
    out.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.pod.cmp(&b.pod)));
    out
}

pub fn render_drops(d: &[Drops]) -> String {
    use std::fmt::Write;
    if d.is_empty() {
        return "no pod of this node is isolated: nothing is dropped by policy\n".into();
    }
    let mut out = String::from("packets dropped by network policy (no policy allowed them):\n");
    for x in d {
        let _ = writeln!(
            out,
            "  {:<40} {:<7} {:>10} packets {:>12} bytes{}",
            x.pod,
            x.direction,
            x.packets,
            x.bytes,
            if x.isolated_by.is_empty() {
                String::new()
            } else {
                format!("  (isolated by {})", x.isolated_by.join(", "))
            }
        );
    }
    out
}

/// One drop the kernel logged (nflog), as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedDrop {
    /// The pod of this node whose policies dropped it (`ns/name`), and the direction.
    pub pod: String,
    pub direction: String,
    /// The other end.
    pub peer: IpAddr,
    pub protocol: String,
    pub port: Option<u16>,
}

/// Reads a logged packet: its prefix is `podwire <direction> deny <ns/pod> ` (the compiler's
/// log prefix); packets of other prefixes are not podwire's (None).
pub fn logged_drop(l: &kernel::nflog::Logged) -> Option<LoggedDrop> {
    let mut words = l.prefix.split_whitespace();
    if words.next()? != "podwire" {
        return None;
    }
    let direction = words.next()?.to_string();
    if words.next()? != "deny" {
        return None;
    }
    let pod = words.next().unwrap_or("?").to_string();
    let peer = if direction == "egress" { l.dst } else { l.src };
    Some(LoggedDrop {
        pod,
        direction,
        peer,
        protocol: Protocol::from_number(l.proto)
            .map(|p| p.to_string())
            .unwrap_or_else(|| format!("proto {}", l.proto)),
        port: l.dport,
    })
}

pub fn render_logged(d: &LoggedDrop) -> String {
    let (arrow, port) = (
        if d.direction == "egress" { "->" } else { "<-" },
        d.port.map(|p| format!(" port {p}")).unwrap_or_default(),
    );
    format!(
        "drop {} {arrow} {} {}{port}: {} denied, no policy allows it\n",
        d.pod, d.peer, d.protocol, d.direction
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::{compile, Namespace, Options, Pod, Policy, ThisNode};
    use serde_json::json;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pod(ns: &str, name: &str, node: &str, addr: &str) -> Pod {
        let mut p = Pod::unclassified(ns, name, name, node, vec![ip(addr)]);
        p.labels = Some([("pod".to_string(), name.to_string())].into());
        p
    }

    fn policy(v: serde_json::Value) -> Policy {
        Policy::from_json(&v, &mut Vec::new()).unwrap()
    }

    fn state_of(c: &policy::Compiled) -> PolicyState {
        PolicyState {
            node: "n1".into(),
            policies: vec![],
            pods: c
                .pods
                .iter()
                .map(|p| PodPolicy {
                    pod: p.key.clone(),
                    addresses: p.addresses.clone(),
                    classified: p.classified,
                    ingress: p.ingress.clone(),
                    egress: p.egress.clone(),
                })
                .collect(),
            problems: vec![],
        }
    }

    #[test]
    fn path_names_the_policy_that_allows_and_the_ones_that_deny() {
        let pods = vec![
            pod("x", "a", "n1", "10.0.1.5"),
            pod("x", "b", "n2", "10.0.2.5"),
            pod("x", "c", "n2", "10.0.2.6"),
        ];
        let namespaces = vec![Namespace {
            name: "x".into(),
            labels: Default::default(),
        }];
        let policies = vec![
            policy(json!({"metadata": {"namespace": "x", "name": "deny"},
                          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})),
            policy(json!({"metadata": {"namespace": "x", "name": "from-b"},
                          "spec": {"podSelector": {"matchLabels": {"pod": "a"}},
                                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}],
                                                "ports": [{"port": 80}]}]}})),
        ];
        let own = [ip("192.168.0.1")];
        let c = compile(
            &pods,
            &namespaces,
            &policies,
            &ThisNode {
                name: "n1",
                addresses: &own,
            },
            &Options::default(),
        );
        let st = state_of(&c);
        let v = explain(
            &c.ruleset,
            Some(&st),
            ip("10.0.2.5"),
            ip("10.0.1.5"),
            80,
            Protocol::Tcp,
        );
        assert!(v.allowed, "{v:?}");
        assert!(v.ingress.contains("policy x/from-b"), "{v:?}");
        assert!(v.egress.contains("not isolated"), "{v:?}");
        let v = explain(
            &c.ruleset,
            Some(&st),
            ip("10.0.2.6"),
            ip("10.0.1.5"),
            80,
            Protocol::Tcp,
        );
        assert!(!v.allowed);
        assert!(
            v.ingress.contains("x/deny") && v.ingress.contains("x/from-b"),
            "{v:?}"
        );
        let v = explain(
            &c.ruleset,
            Some(&st),
            ip("192.168.0.1"),
            ip("10.0.1.5"),
            81,
            Protocol::Tcp,
        );
        assert!(v.allowed && v.ingress.contains("own addresses"), "{v:?}");
        let text = render_verdict(&v);
        assert!(text.contains("ALLOWED"));
    }

    #[test]
    fn drops_are_read_from_the_named_counters_most_first() {
        let counters: BTreeMap<String, (u64, u64)> = [
            ("drops/x/a/ingress".to_string(), (3, 180)),
            ("drops/x/b/egress".to_string(), (7, 420)),
            ("policy/x/p/ingress/0".to_string(), (9, 9)),
        ]
        .into();
        let st = PolicyState {
            pods: vec![PodPolicy {
                pod: "x/a".into(),
                ingress: Some(vec!["x/deny".into()]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let d = drops(&counters, Some(&st));
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].pod.as_str(), d[0].packets), ("x/b", 7));
        assert_eq!(d[1].isolated_by, vec!["x/deny"]);
        assert!(render_drops(&d).contains("isolated by x/deny"));
    }

    #[test]
    fn the_state_file_round_trips_and_renders() {
        let dir = std::env::temp_dir().join(format!("pwinspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_state(&dir).unwrap(), None);
        let written = json!({"node": "n1",
            "policies": [{"policy": "x/deny", "ingress": ["x/a"], "egress": []}],
            "pods": [{"pod": "x/a", "addresses": ["10.0.1.5"], "classified": true,
                      "ingress": ["x/deny"], "egress": null},
                     {"pod": "x/new", "addresses": ["10.0.1.6"], "classified": false,
                      "ingress": null, "egress": null}],
            "problems": ["NetworkPolicy x/bad: does not decode"]});
        std::fs::write(dir.join(STATE_FILE), written.to_string()).unwrap();
        let s = read_state(&dir).unwrap().unwrap();
        let text = render_state(&s);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            text.contains("1 policies in force, 1 of 2 pods isolated"),
            "{text}"
        );
        assert!(
            text.contains("policy x/deny") && text.contains("ingress x/a"),
            "{text}"
        );
        assert!(text.contains("x/new is not classified"), "{text}");
        assert!(text.contains("problem (fails closed)"), "{text}");
    }

    #[test]
    fn a_logged_packet_says_which_pod_which_peer_and_port() {
        let l = kernel::nflog::Logged {
            prefix: "podwire ingress deny x/a ".into(),
            src: ip("10.0.2.5"),
            dst: ip("10.0.1.5"),
            proto: 6,
            sport: Some(40000),
            dport: Some(80),
        };
        let d = logged_drop(&l).unwrap();
        assert_eq!(
            (d.pod.as_str(), d.peer, d.port),
            ("x/a", ip("10.0.2.5"), Some(80))
        );
        assert_eq!(
            render_logged(&d),
            "drop x/a <- 10.0.2.5 tcp port 80: ingress denied, no policy allows it\n"
        );
        let other = kernel::nflog::Logged {
            prefix: "someone else ".into(),
            ..l
        };
        assert_eq!(logged_drop(&other), None);
    }

    #[test]
    fn ports_parse_as_people_write_them() {
        assert_eq!(parse_port("80/tcp").unwrap(), (80, Protocol::Tcp));
        assert_eq!(parse_port("53/UDP").unwrap(), (53, Protocol::Udp));
        assert_eq!(parse_port("8080").unwrap(), (8080, Protocol::Tcp));
        assert!(parse_port("99999/tcp").is_err());
        assert!(parse_port("80/icmp").is_err());
    }
}
