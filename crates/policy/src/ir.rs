//! The nftables objects of one node's policy table, as data: what `compile` wants and what the
//! kernel layer reads back, so `diff` compares like with like. Independent of the hook: the
//! two dispatch chains become base chains (or are jumped to from base chains) wherever the
//! kernel layer hooks pod traffic. Names are stable (derived from namespaces and names, never
//! from an order or a counter), so a change updates objects in place.

use crate::ranges::AddrRange;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// nftables' limit on table, chain, set and object names (NFT_NAME_MAXLEN, NUL included).
pub const NAME_MAX: usize = 255;
/// nftables' limit on a log prefix (NF_LOG_PREFIXLEN, NUL included).
pub const LOG_PREFIX_MAX: usize = 127;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(a: &IpAddr) -> Family {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// The field holding the selected (local) pod's address.
    pub fn local_field(self) -> Field {
        match self {
            Direction::Ingress => Field::Daddr,
            Direction::Egress => Field::Saddr,
        }
    }

    /// The field holding the peer's address.
    pub fn peer_field(self) -> Field {
        match self {
            Direction::Ingress => Field::Saddr,
            Direction::Egress => Field::Daddr,
        }
    }
}

/// `ip saddr` / `ip6 saddr` or `… daddr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Saddr,
    Daddr,
}

/// The key type of a set (every set is an interval set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetKey {
    /// `ipv4_addr` / `ipv6_addr`.
    Addr(Family),
    /// `inet_proto . inet_service`: protocol and a port range.
    ProtoPort,
    /// `ipv4_addr . inet_proto . inet_service`: one address, its protocol and a port range.
    AddrProtoPort(Family),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Addr(AddrRange),
    ProtoPort {
        proto: u8,
        ports: (u16, u16),
    },
    AddrProtoPort {
        addr: IpAddr,
        proto: u8,
        ports: (u16, u16),
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    pub key: SetKey,
    pub elements: BTreeSet<Element>,
}

/// A verdict map from an address to the chain that decides for it (`ip daddr vmap @m`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictMap {
    pub name: String,
    pub family: Family,
    /// address → chain jumped to.
    pub entries: BTreeMap<IpAddr, String>,
}

/// What a rule matches; all of them must hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Match {
    /// `ct direction reply`: a packet answering a connection whose first packet was allowed
    /// (the kernel layer needs conntrack where it hooks: nf_conntrack_bridge in the bridge
    /// family). Only original-direction packets are judged, each of them, so a policy change
    /// applies to established connections at once, with no conntrack flush.
    CtReply,
    /// `ct state related` (ICMP errors, expectations of an allowed connection).
    CtRelated,
    /// ICMPv6 neighbour and router discovery, which bridged IPv6 needs whatever the policy.
    NeighbourDiscovery,
    /// `ip saddr @set` (family V4) / `ip6 daddr @set`…
    AddrIn {
        field: Field,
        family: Family,
        set: String,
    },
    /// `meta l4proto . th dport @set`.
    ProtoPortIn { set: String },
    /// `ip daddr . meta l4proto . th dport @set`.
    AddrProtoPortIn {
        field: Field,
        family: Family,
        set: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    Jump(String),
    /// `ip daddr vmap @map` (family of the map): jumps to the entry's chain, no entry: on.
    Dispatch {
        field: Field,
        family: Family,
        map: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    None,
    /// A `counter` statement of the rule (reset when the rule is replaced).
    Anonymous,
    /// A named counter object (survives rule replacement: drop figures per pod).
    Named(String),
}

/// `limit rate N/second burst B packets log group G prefix P`: a rule of its own (no verdict),
/// since a limit that does not match would otherwise skip the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Log {
    pub group: u16,
    pub prefix: String,
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub counter: Counter,
    pub log: Option<Log>,
    /// None: the rule only logs or counts.
    pub verdict: Option<Verdict>,
}

impl Rule {
    pub fn accept(matches: Vec<Match>) -> Rule {
        Rule {
            matches,
            counter: Counter::None,
            log: None,
            verdict: Some(Verdict::Accept),
        }
    }

    /// Whether the rule can only let packets through (accept, or jump to a policy chain that
    /// only accepts): removing it closes, adding it opens.
    pub fn only_allows(&self) -> bool {
        matches!(self.verdict, Some(Verdict::Accept) | Some(Verdict::Jump(_)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainRole {
    /// Accept rules of one policy and direction, shared by every pod it selects here.
    Policy,
    /// One isolated pod and direction: a jump per policy in force, then log and drop.
    Pod,
    /// The entry of a direction: conntrack, node, discovery, then the verdict maps.
    Dispatch(Direction),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub role: ChainRole,
    pub rules: Vec<Rule>,
}

/// Everything in the policy table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub sets: BTreeMap<String, Set>,
    pub maps: BTreeMap<String, VerdictMap>,
    /// Named counter objects.
    pub counters: BTreeSet<String>,
    pub chains: BTreeMap<String, Chain>,
}

impl Ruleset {
    /// Rules plus set and map elements: the size the benchmark reports.
    pub fn size(&self) -> (usize, usize) {
        let rules = self.chains.values().map(|c| c.rules.len()).sum();
        let elements = self.sets.values().map(|s| s.elements.len()).sum::<usize>()
            + self.maps.values().map(|m| m.entries.len()).sum::<usize>();
        (rules, elements)
    }
}

/// Stable object names. Kubernetes names are DNS labels and subdomains (`[a-z0-9.-]`),
/// namespaces have no `.` and neither has `/`, so `ns/name` is unambiguous and a valid nft
/// identifier; names longer than nftables allows are cut and end in a hash of the whole.
pub mod names {
    use super::{Direction, Family, NAME_MAX};

    pub const TABLE: &str = "podwire-policy";

    pub fn dispatch_chain(d: Direction) -> String {
        d.as_str().to_string()
    }

    /// The verdict map of a direction and family: keyed by the local pod's address.
    pub fn dispatch_map(d: Direction, f: Family) -> String {
        format!("{}-{}", d.as_str(), f.suffix())
    }

    /// The node's own addresses (traffic with them is always allowed).
    pub fn node_set(f: Family) -> String {
        format!("node-{}", f.suffix())
    }

    pub fn pod_chain(pod_key: &str, d: Direction) -> String {
        bounded(format!("pod/{pod_key}/{}", d.as_str()))
    }

    pub fn pod_drop_counter(pod_key: &str, d: Direction) -> String {
        bounded(format!("drops/{pod_key}/{}", d.as_str()))
    }

    pub fn policy_chain(policy_key: &str, d: Direction) -> String {
        bounded(format!("policy/{policy_key}/{}", d.as_str()))
    }

    /// A set of rule `rule` of a policy: `what` is peers-v4, ports, named-v6…
    pub fn rule_set(policy_key: &str, d: Direction, rule: usize, what: &str) -> String {
        // The suffix stays readable even when the policy part is cut.
        let suffix = format!("/{}/{rule}/{what}", d.as_str());
        let head = bounded_to(format!("policy/{policy_key}"), NAME_MAX - suffix.len());
        head + &suffix
    }

    fn bounded(s: String) -> String {
        bounded_to(s, NAME_MAX)
    }

    /// `s` if it fits in `max` bytes, else its head and `~` and 16 hex digits of its FNV-1a.
    pub fn bounded_to(s: String, max: usize) -> String {
        if s.len() <= max {
            return s;
        }
        let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let mut cut = max - 17;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}~{hash:016x}", &s[..cut])
    }

    /// `s` cut to fit a log prefix.
    pub fn log_prefix(s: String) -> String {
        let mut s = s;
        let mut cut = super::LOG_PREFIX_MAX.min(s.len());
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::names::*;
    use super::*;

    #[test]
    fn names_are_stable_readable_and_bounded() {
        assert_eq!(pod_chain("x/a", Direction::Ingress), "pod/x/a/ingress");
        assert_eq!(
            rule_set("x/allow", Direction::Egress, 2, "named-v6"),
            "policy/x/allow/egress/2/named-v6"
        );
        let long = format!("{}/{}", "n".repeat(63), "p".repeat(253));
        let a = pod_chain(&long, Direction::Ingress);
        let b = pod_chain(&format!("{long}x"), Direction::Ingress);
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX, "{}", a.len());
        assert_ne!(a, b, "the hash keeps cut names apart");
        assert_eq!(a, pod_chain(&long, Direction::Ingress), "deterministic");
        let s = rule_set(&long, Direction::Ingress, 12, "peers-v4");
        assert!(
            s.len() <= NAME_MAX && s.ends_with("/ingress/12/peers-v4"),
            "{s}"
        );
        assert_eq!(
            log_prefix("é".repeat(100)).len(),
            126,
            "cut on a char boundary"
        );
    }
}
