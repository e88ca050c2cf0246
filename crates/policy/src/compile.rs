//! Pods + Namespaces + NetworkPolicies + this node → the policy table this node wants. Pure.
//!
//! Semantics (networking.k8s.io/v1, as the upstream docs and e2e tests define them):
//! - a pod is isolated for a direction when a policy of its namespace selects it and has that
//!   direction in its policyTypes; then only what some such policy's rules allow passes
//!   (several policies: the union); a pod no policy selects is not isolated;
//! - in a rule, peers are ORed, a peer's podSelector and namespaceSelector are ANDed (a
//!   podSelector alone: the policy's namespace), no `from`/`to` = every peer, no `ports` = every
//!   port and protocol; a rule list that is empty allows nothing;
//! - ipBlock = its CIDR minus its excepts (addresses of pods included); named ports resolve
//!   against the destination pod's container ports (ingress: the selected pod's; egress: each
//!   peer pod's), endPort makes a range, protocol defaults to TCP;
//! - traffic between a pod and this node's own addresses is always allowed, and so are replies
//!   of allowed connections (conntrack: only original-direction packets are judged);
//! - hostNetwork pods are never selected, nor matched as peers (their address is a node's);
//!   terminated pods are ignored (their address may already be another pod's);
//! - pod-to-pod traffic passes when the sender's node allows it out (egress of the sender, on
//!   its node) and the receiver's node allows it in (ingress of the receiver, on its node):
//!   each node compiles only its own pods' isolation, for peers everywhere.
//!
//! An unclassified pod (known from its CNI ADD, labels not seen yet) is denied by default: it
//! is isolated in a direction when any policy of its namespace has that direction (any of them
//! could select it once its labels are known), and only policies selecting every pod of the
//! namespace (an empty podSelector) allow anything for it, their named ports resolving to
//! nothing (its ports are unknown). As a peer it matches only selectors that match every
//! label set. So nothing passes early that the policies, once the pod is classified, would deny.

use crate::ir::{
    names, Chain, ChainRole, Counter, Direction, Element, Family, Field, Log, Match, Rule, Ruleset,
    Set, SetKey, Verdict, VerdictMap,
};
use crate::model::{Namespace, Peer, Pod, Policy, PortMatch, Problem, Protocol};
use crate::ranges::{block_except, union, AddrRange};
use crate::selector::{Labels, Selector};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// How drops are logged (an nflog group, rate-limited so logging never slows the data path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    pub group: u16,
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// None: drops are counted, not logged.
    pub log: Option<LogOptions>,
}

/// The nflog group the agent reads drops from by default.
pub const DEFAULT_LOG_GROUP: u16 = 1024;

impl Default for Options {
    fn default() -> Self {
        Options {
            log: Some(LogOptions {
                group: DEFAULT_LOG_GROUP,
                per_second: 10,
                burst: 20,
            }),
        }
    }
}

/// This node: its name (pods' `spec.nodeName`) and its own addresses (every address of the
/// node's netns that may source traffic to a pod: its InternalIPs and the pod bridge's
/// gateway addresses, from which kubelet's probes come).
#[derive(Clone, Debug)]
pub struct ThisNode<'a> {
    pub name: &'a str,
    pub addresses: &'a [IpAddr],
}

/// What is in force for one local pod (for `node show`, `path`, logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    pub key: String,
    pub addresses: Vec<IpAddr>,
    pub classified: bool,
    /// None: not isolated for ingress. Some: the policies isolating it (those whose rules
    /// apply are the ones its chain jumps to).
    pub ingress: Option<Vec<String>>,
    pub egress: Option<Vec<String>>,
}

impl PodState {
    pub fn isolation(&self, d: Direction) -> Option<&Vec<String>> {
        match d {
            Direction::Ingress => self.ingress.as_ref(),
            Direction::Egress => self.egress.as_ref(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    pub ruleset: Ruleset,
    /// Local pods, by key.
    pub pods: Vec<PodState>,
    pub problems: Vec<Problem>,
}

/// The chain every address claimed by two local pods jumps to: it drops.
pub const CONFLICT_CHAIN: &str = "address-conflict";

/// Everything the compiler looks pods and namespaces up in.
struct Cluster<'a> {
    namespaces: HashMap<&'a str, &'a Labels>,
    /// Pods that can be peers (live, with addresses, not hostNetwork), by namespace.
    by_namespace: BTreeMap<&'a str, Vec<&'a Pod>>,
}

impl<'a> Cluster<'a> {
    fn new(pods: &'a [Pod], namespaces: &'a [Namespace]) -> Cluster<'a> {
        let mut by_namespace: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
        for p in pods
            .iter()
            .filter(|p| !p.terminated && !p.host_network && !p.ips.is_empty())
        {
            by_namespace.entry(&p.namespace).or_default().push(p);
        }
        Cluster {
            namespaces: namespaces
                .iter()
                .map(|n| (n.name.as_str(), &n.labels))
                .collect(),
            by_namespace,
        }
    }

    /// A namespace whose object is not known matches only a selector matching everything.
    fn namespace_matches(&self, ns: &str, s: &Selector) -> bool {
        match self.namespaces.get(ns) {
            Some(labels) => s.matches(labels),
            None => s.matches_everything(),
        }
    }

    /// Pods matched by a pod/namespace selector peer of a policy of `policy_ns`.
    fn peer_pods<'s>(
        &'s self,
        pods: &'s Selector,
        namespaces: Option<&'s Selector>,
        policy_ns: &'s str,
    ) -> impl Iterator<Item = &'a Pod> + 's {
        self.by_namespace
            .iter()
            .filter(move |(ns, _)| match namespaces {
                None => **ns == policy_ns,
                Some(s) => self.namespace_matches(ns, s),
            })
            .flat_map(|(_, list)| list.iter().copied())
            .filter(move |p| labels_match(pods, p))
    }

    fn all_pods(&self) -> impl Iterator<Item = &'a Pod> + '_ {
        self.by_namespace.values().flatten().copied()
    }
}

/// A selector matches an unclassified pod only if it matches every label set.
fn labels_match(s: &Selector, p: &Pod) -> bool {
    match &p.labels {
        Some(l) => s.matches(l),
        None => s.matches_everything(),
    }
}

/// Whether `policy` isolates `pod` in `d` (it may, for an unclassified pod).
fn isolates(policy: &Policy, pod: &Pod, d: Direction) -> bool {
    let has = match d {
        Direction::Ingress => policy.ingress.is_some(),
        Direction::Egress => policy.egress.is_some(),
    };
    has && match (&policy.pod_selector, &pod.labels) {
        (None, _) | (_, None) => true,
        (Some(s), Some(l)) => s.matches(l),
    }
}

/// Whether `policy`'s rules apply to `pod` (it certainly selects it).
fn applies(policy: &Policy, pod: &Pod) -> bool {
    policy
        .pod_selector
        .as_ref()
        .is_some_and(|s| labels_match(s, pod))
}

fn rules_of(policy: &Policy, d: Direction) -> &[crate::model::Rule] {
    match d {
        Direction::Ingress => policy.ingress.as_deref().unwrap_or(&[]),
        Direction::Egress => policy.egress.as_deref().unwrap_or(&[]),
    }
}

/// Compiles the table for `node`.
pub fn compile(
    pods: &[Pod],
    namespaces: &[Namespace],
    policies: &[Policy],
    node: &ThisNode,
    opts: &Options,
) -> Compiled {
    let cluster = Cluster::new(pods, namespaces);
    let mut out = Compiled::default();
    let mut policies_by_ns: BTreeMap<&str, Vec<&Policy>> = BTreeMap::new();
    for p in policies {
        policies_by_ns.entry(&p.namespace).or_default().push(p);
    }
    for list in policies_by_ns.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut local: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.node.as_deref() == Some(node.name)
                && !p.host_network
                && !p.terminated
                && !p.ips.is_empty()
        })
        .collect();
    local.sort_by_key(|p| p.key());

    // Which policies isolate / apply to which local pods, per direction.
    let mut applied: BTreeMap<(String, Direction), (&Policy, Vec<&Pod>)> = BTreeMap::new();
    for pod in &local {
        let mut state = PodState {
            key: pod.key(),
            addresses: pod.ips.clone(),
            classified: pod.is_classified(),
            ingress: None,
            egress: None,
        };
        for d in Direction::BOTH {
            let in_ns = policies_by_ns.get(pod.namespace.as_str());
            let isolating: Vec<&Policy> = in_ns
                .into_iter()
                .flatten()
                .copied()
                .filter(|p| isolates(p, pod, d))
                .collect();
            if isolating.is_empty() {
                continue;
            }
            for p in isolating.iter().filter(|p| applies(p, pod)) {
                applied
                    .entry((p.key(), d))
                    .or_insert_with(|| (p, Vec::new()))
                    .1
                    .push(pod);
            }
            let keys = isolating.iter().map(|p| p.key()).collect();
            match d {
                Direction::Ingress => state.ingress = Some(keys),
                Direction::Egress => state.egress = Some(keys),
            }
        }
        out.pods.push(state);
    }

    // One chain per policy and direction in force here, shared by its pods.
    let rs = &mut out.ruleset;
    for ((key, d), (policy, selected)) in &applied {
        let chain = policy_chain(&cluster, policy, key, *d, selected, rs);
        rs.chains.insert(chain.name.clone(), chain);
    }

    // One chain per isolated pod and direction; its addresses in the verdict maps.
    for f in Family::BOTH {
        for d in Direction::BOTH {
            let name = names::dispatch_map(d, f);
            rs.maps.insert(
                name.clone(),
                VerdictMap {
                    name,
                    family: f,
                    entries: BTreeMap::new(),
                },
            );
        }
    }
    let mut owners: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
    for (pod, state) in local.iter().zip(&out.pods) {
        for ip in &pod.ips {
            owners.entry(*ip).or_default().push(&state.key);
        }
        for d in Direction::BOTH {
            let Some(isolating) = state.isolation(d) else {
                continue;
            };
            let chain = pod_chain(pod, &state.key, d, isolating, &applied, opts, rs);
            for ip in &pod.ips {
                let map = rs
                    .maps
                    .get_mut(&names::dispatch_map(d, Family::of(ip)))
                    .expect("made above");
                map.entries.insert(*ip, chain.name.clone());
            }
            rs.chains.insert(chain.name.clone(), chain);
        }
    }
    let conflicts: Vec<(IpAddr, Vec<&str>)> =
        owners.into_iter().filter(|(_, o)| o.len() > 1).collect();
    if !conflicts.is_empty() {
        rs.chains.insert(
            CONFLICT_CHAIN.into(),
            Chain {
                name: CONFLICT_CHAIN.into(),
                role: ChainRole::Pod,
                rules: vec![Rule {
                    matches: vec![],
                    counter: Counter::Anonymous,
                    log: None,
                    verdict: Some(Verdict::Drop),
                }],
            },
        );
    }
    for (ip, claimants) in conflicts {
        out.problems.push(Problem {
            object: format!("address {ip}"),
            message: format!(
                "claimed by the local pods {}: every packet to or from it is dropped until one \
                 of them is gone",
                claimants.join(", ")
            ),
        });
        for d in Direction::BOTH {
            let map = rs
                .maps
                .get_mut(&names::dispatch_map(d, Family::of(&ip)))
                .expect("made above");
            map.entries.insert(ip, CONFLICT_CHAIN.into());
        }
    }

    for f in Family::BOTH {
        let name = names::node_set(f);
        let elements = node
            .addresses
            .iter()
            .filter(|a| Family::of(a) == f)
            .map(|a| Element::Addr(AddrRange::single(*a)))
            .collect();
        rs.sets.insert(
            name.clone(),
            Set {
                name,
                key: SetKey::Addr(f),
                elements,
            },
        );
    }
    for d in Direction::BOTH {
        let chain = dispatch_chain(d);
        rs.chains.insert(chain.name.clone(), chain);
    }
    out
}

/// What passes whatever the policies say, in this order: replies of allowed connections,
/// related packets, neighbour and router discovery, and traffic with this node's own addresses.
pub fn always_allowed(d: Direction) -> Vec<Rule> {
    let mut rules = vec![
        Rule::accept(vec![Match::CtReply]),
        Rule::accept(vec![Match::CtRelated]),
        Rule::accept(vec![Match::NeighbourDiscovery]),
    ];
    for f in Family::BOTH {
        rules.push(Rule::accept(vec![Match::AddrIn {
            field: d.peer_field(),
            family: f,
            set: names::node_set(f),
        }]));
    }
    rules
}

/// The entry of a direction: [`always_allowed`]; then the isolated pods' addresses lead to
/// their chains; every other packet passes.
fn dispatch_chain(d: Direction) -> Chain {
    let mut rules = always_allowed(d);
    for f in Family::BOTH {
        rules.push(Rule {
            matches: vec![],
            counter: Counter::None,
            log: None,
            verdict: Some(Verdict::Dispatch {
                field: d.local_field(),
                family: f,
                map: names::dispatch_map(d, f),
            }),
        });
    }
    Chain {
        name: names::dispatch_chain(d),
        role: ChainRole::Dispatch(d),
        rules,
    }
}

/// A pod's chain: a jump to each policy whose rules apply, then log and count and drop.
fn pod_chain(
    pod: &Pod,
    key: &str,
    d: Direction,
    isolating: &[String],
    applied: &BTreeMap<(String, Direction), (&Policy, Vec<&Pod>)>,
    opts: &Options,
    rs: &mut Ruleset,
) -> Chain {
    let mut rules: Vec<Rule> = isolating
        .iter()
        .filter(|k| {
            applied
                .get(&((*k).clone(), d))
                .is_some_and(|(_, pods)| pods.iter().any(|p| p.key() == pod.key()))
        })
        .map(|k| Rule {
            matches: vec![],
            counter: Counter::None,
            log: None,
            verdict: Some(Verdict::Jump(names::policy_chain(k, d))),
        })
        .collect();
    if let Some(log) = opts.log {
        rules.push(Rule {
            matches: vec![],
            counter: Counter::None,
            log: Some(Log {
                group: log.group,
                prefix: names::log_prefix(format!("podwire {} deny {key} ", d.as_str())),
                per_second: log.per_second,
                burst: log.burst,
            }),
            verdict: None,
        });
    }
    let counter = names::pod_drop_counter(key, d);
    rs.counters.insert(counter.clone());
    rules.push(Rule {
        matches: vec![],
        counter: Counter::Named(counter),
        log: None,
        verdict: Some(Verdict::Drop),
    });
    Chain {
        name: names::pod_chain(key, d),
        role: ChainRole::Pod,
        rules,
    }
}

/// The accept rules of one policy and direction, and their sets. The rules depend only on the
/// policy's spec (sets are made even when empty), so pod churn only changes set elements.
fn policy_chain(
    cluster: &Cluster,
    policy: &Policy,
    key: &str,
    d: Direction,
    selected: &[&Pod],
    rs: &mut Ruleset,
) -> Chain {
    let mut rules = Vec::new();
    for (i, rule) in rules_of(policy, d).iter().enumerate() {
        if !rule.allows_something() {
            continue;
        }
        let mut add_set = |what: String, key_type: SetKey, elements: BTreeSet<Element>| {
            let name = names::rule_set(key, d, i, &what);
            rs.sets.insert(
                name.clone(),
                Set {
                    name: name.clone(),
                    key: key_type,
                    elements,
                },
            );
            name
        };
        // Peers: per family, the union of pod addresses and blocks.
        let peer_ranges: Option<[Vec<AddrRange>; 2]> = rule.peers.as_ref().map(|peers| {
            let mut all = Vec::new();
            for p in peers {
                match p {
                    Peer::Pods { pods, namespaces } => {
                        for pod in cluster.peer_pods(pods, namespaces.as_ref(), &policy.namespace) {
                            all.extend(pod.ips.iter().map(|a| AddrRange::single(*a)));
                        }
                    }
                    Peer::Block { cidr, except } => all.extend(block_except(*cidr, except)),
                }
            }
            [union(all.clone(), false), union(all, true)]
        });
        let ports = rule.ports.as_deref();
        let numeric: BTreeSet<Element> = ports
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let ports = match p.port {
                    PortMatch::Any => (0, u16::MAX),
                    PortMatch::Range(lo, hi) => (lo, hi),
                    PortMatch::Named(_) => return None,
                };
                Some(Element::ProtoPort {
                    proto: p.protocol.number(),
                    ports,
                })
            })
            .collect();
        let named: Vec<(&str, Protocol)> = ports
            .into_iter()
            .flatten()
            .filter_map(|p| match &p.port {
                PortMatch::Named(n) => Some((n.as_str(), p.protocol)),
                _ => None,
            })
            .collect();
        let has_numeric = !numeric.is_empty();
        let ports_set = has_numeric.then(|| add_set("ports".into(), SetKey::ProtoPort, numeric));
        let port_match =
            |ports_set: &Option<String>| ports_set.clone().map(|set| Match::ProtoPortIn { set });

        match &peer_ranges {
            None => {
                // Every peer: family-independent unless named ports need addresses.
                if ports.is_none() {
                    rules.push(counted(vec![]));
                } else if let Some(m) = port_match(&ports_set) {
                    rules.push(counted(vec![m]));
                }
            }
            Some(ranges) => {
                for (f, r) in Family::BOTH.into_iter().zip(ranges) {
                    let set = add_set(
                        format!("peers-{}", f.suffix()),
                        SetKey::Addr(f),
                        r.iter().map(|r| Element::Addr(*r)).collect(),
                    );
                    let peer = Match::AddrIn {
                        field: d.peer_field(),
                        family: f,
                        set,
                    };
                    if ports.is_none() {
                        rules.push(counted(vec![peer]));
                    } else if let Some(m) = port_match(&ports_set) {
                        rules.push(counted(vec![peer, m]));
                    }
                }
            }
        }
        if named.is_empty() {
            continue;
        }
        // Named ports: (destination address, protocol, port) of each destination pod.
        let destinations: Vec<(&Pod, Vec<IpAddr>)> = match d {
            Direction::Ingress => selected.iter().map(|p| (*p, p.ips.clone())).collect(),
            Direction::Egress => cluster
                .all_pods()
                .filter_map(|p| {
                    let ips: Vec<IpAddr> = p
                        .ips
                        .iter()
                        .copied()
                        .filter(|a| match &peer_ranges {
                            None => true,
                            Some(r) => r[Family::of(a) as usize].iter().any(|r| r.contains(*a)),
                        })
                        .collect();
                    (!ips.is_empty()).then_some((p, ips))
                })
                .collect(),
        };
        for f in Family::BOTH {
            let mut elements = BTreeSet::new();
            for (pod, ips) in &destinations {
                for (name, proto) in &named {
                    let Some(port) = pod.named_port(name, *proto) else {
                        continue;
                    };
                    for a in ips.iter().filter(|a| Family::of(a) == f) {
                        elements.insert(Element::AddrProtoPort {
                            addr: *a,
                            proto: proto.number(),
                            ports: (port, port),
                        });
                    }
                }
            }
            let set = add_set(
                format!("named-{}", f.suffix()),
                SetKey::AddrProtoPort(f),
                elements,
            );
            let mut matches = Vec::new();
            if let (Direction::Ingress, Some(_)) = (d, &peer_ranges) {
                matches.push(Match::AddrIn {
                    field: Field::Saddr,
                    family: f,
                    set: names::rule_set(key, d, i, &format!("peers-{}", f.suffix())),
                });
            }
            matches.push(Match::AddrProtoPortIn {
                field: Field::Daddr,
                family: f,
                set,
            });
            rules.push(counted(matches));
        }
    }
    Chain {
        name: names::policy_chain(key, d),
        role: ChainRole::Policy,
        rules,
    }
}

/// An accept rule with its own counter (what `path` and `node show` read as "allowed by").
fn counted(matches: Vec<Match>) -> Rule {
    Rule {
        counter: Counter::Anonymous,
        ..Rule::accept(matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{policy, Layout, World};
    use serde_json::json;

    /// `peers` pods of namespace p on n2, one on n1, `policies` policies each allowing every pod
    /// of p on a port of its own.
    fn sized(peers: usize, policies: usize) -> Ruleset {
        let mut pods = Vec::new();
        for i in 0..=peers {
            let node = if i == 0 { "n1" } else { "n2" };
            let ip = std::net::Ipv4Addr::from(0x0a64_0000 + i as u32 * 2);
            let mut p = Pod::unclassified("p", format!("pod-{i}"), "", node, vec![ip.into()]);
            p.labels = Some([("app".to_string(), "web".to_string())].into());
            pods.push(p);
        }
        let ns = [Namespace {
            name: "p".into(),
            labels: Labels::new(),
        }];
        let pols: Vec<Policy> = (0..policies)
            .map(|i| {
                policy("p", &format!("pol-{i}"), json!({"podSelector": {}, "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 1000 + i}]}]}))
            })
            .collect();
        let node = ThisNode {
            name: "n1",
            addresses: &[],
        };
        let c = compile(&pods, &ns, &pols, &node, &Options::default());
        assert!(c.problems.is_empty());
        c.ruleset
    }

    #[test]
    fn the_table_grows_with_policies_plus_peers_not_their_product() {
        let (rules, elements) = sized(100, 10).size();
        let (rules_more_peers, elements_more_peers) = sized(1000, 10).size();
        assert_eq!(rules, rules_more_peers, "peers cost elements only");
        // Peers are not adjacent (every other address): one element each per policy's set.
        assert_eq!(elements_more_peers - elements, 900 * 10);
        let (rules_more_policies, _) = sized(100, 20).size();
        // Each policy: 2 rules (v4, v6) in its chain + 1 jump in the pod's chain.
        assert_eq!(rules_more_policies - rules, 10 * 3);
        let rs = sized(1000, 20);
        assert_eq!(
            rs.chains.len(),
            20 + 1 + 2,
            "policy chains + the pod's + dispatch"
        );
        assert_eq!(
            rs.maps["ingress-v4"].entries.len(),
            1,
            "only local pods are keys"
        );
    }

    /// `w` compiled for n1 (no node addresses), problems included.
    fn on_n1(w: &World, opts: Options) -> Compiled {
        let node = ThisNode {
            name: "n1",
            addresses: &[],
        };
        compile(&w.pods, &w.namespaces, &w.policies, &node, &opts)
    }

    #[test]
    fn an_address_claimed_by_two_local_pods_is_dropped_and_said() {
        let mut w = World::new(Layout::OneNode).with(policy(
            "x",
            "deny",
            json!({"podSelector": {"matchLabels": {"pod": "a"}}}),
        ));
        let stolen = w.pod("x/a").ips[0];
        w.pod_mut("y/b").ips[0] = stolen;
        let c = on_n1(&w, Options::default());
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert!(c.problems[0].message.contains("x/a, y/b"));
        for d in Direction::BOTH {
            assert_eq!(
                c.ruleset.maps[&names::dispatch_map(d, Family::V4)].entries[&stolen],
                CONFLICT_CHAIN
            );
        }
    }

    #[test]
    fn pods_of_other_nodes_and_unscheduled_pods_are_not_local() {
        let mut w =
            World::new(Layout::TwoNodes).with(policy("x", "deny", json!({"podSelector": {}})));
        w.pod_mut("x/c").node = None;
        w.recompile();
        let n1: Vec<&str> = w.nodes["n1"].pods.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(n1, ["x/a", "y/b", "z/a", "z/c"]);
        let n2: Vec<&str> = w.nodes["n2"].pods.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(n2, ["x/b", "y/a", "y/c", "z/b"]);
        let isolated = |n: &str| {
            w.nodes[n]
                .pods
                .iter()
                .filter(|p| p.ingress.is_some())
                .count()
        };
        assert_eq!(
            (isolated("n1"), isolated("n2")),
            (1, 1),
            "x/a on n1, x/b on n2"
        );
    }

    #[test]
    fn drops_are_counted_per_pod_and_logged_rate_limited() {
        let w = World::new(Layout::OneNode).with(policy(
            "x",
            "deny",
            json!({"podSelector": {"matchLabels": {"pod": "a"}}}),
        ));
        let rs = &w.nodes["n1"].ruleset;
        let chain = &rs.chains["pod/x/a/ingress"];
        let n = chain.rules.len();
        let log = chain.rules[n - 2].log.as_ref().unwrap();
        assert_eq!((log.group, log.per_second), (DEFAULT_LOG_GROUP, 10));
        assert_eq!(log.prefix, "podwire ingress deny x/a ");
        assert_eq!(
            chain.rules[n - 2].verdict,
            None,
            "the limit must not skip the drop"
        );
        assert_eq!(
            chain.rules[n - 1].counter,
            Counter::Named("drops/x/a/ingress".into())
        );
        assert!(rs.counters.contains("drops/x/a/ingress"));
        let state = w.nodes["n1"].pods.iter().find(|p| p.key == "x/a").unwrap();
        assert_eq!(
            state.ingress,
            Some(vec!["x/deny".to_string()]),
            "the drops' policies"
        );
        // Without logging: no log rule.
        let c = on_n1(&w, Options { log: None });
        assert!(c.ruleset.chains["pod/x/a/ingress"]
            .rules
            .iter()
            .all(|r| r.log.is_none()));
    }
}
