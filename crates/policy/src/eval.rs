//! Runs a packet through a [`Ruleset`] as nftables would: the egress dispatch chain, then the
//! ingress one (each an accept of its own: accepting in one does not skip the other; a drop
//! is final). For tests (whole reachability matrices against the compiled IR) and for
//! `podwirectl path` (which policy allowed, or that none did).

use crate::ir::{Chain, Direction, Element, Family, Field, Match, Ruleset, SetKey, Verdict};
use crate::names;
use std::net::IpAddr;

/// What conntrack says of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtState {
    /// The original direction (new or established: judged every time).
    Original,
    Reply,
    Related,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    /// IPPROTO_*.
    pub proto: u8,
    /// TCP/UDP/SCTP destination port.
    pub dport: Option<u16>,
    pub ct: CtState,
    /// An ICMPv6 neighbour or router discovery message.
    pub discovery: bool,
}

impl Packet {
    /// A first packet from `saddr` to `daddr`'s port of `proto`.
    pub fn new(saddr: IpAddr, daddr: IpAddr, proto: crate::Protocol, dport: u16) -> Packet {
        Packet {
            saddr,
            daddr,
            proto: proto.number(),
            dport: Some(dport),
            ct: CtState::Original,
            discovery: false,
        }
    }

    fn addr(&self, f: Field) -> IpAddr {
        match f {
            Field::Saddr => self.saddr,
            Field::Daddr => self.daddr,
        }
    }
}

/// How one direction's chain ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by rule `rule` (0-based) of `chain`.
    Accepted { chain: String, rule: usize },
    /// Dropped by rule `rule` of `chain`.
    Dropped { chain: String, rule: usize },
    /// No rule decided: the base chain's policy (accept).
    Passed,
}

impl Outcome {
    pub fn allows(&self) -> bool {
        !matches!(self, Outcome::Dropped { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub egress: Outcome,
    pub ingress: Outcome,
}

impl Trace {
    pub fn allows(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

/// Runs `p` through `rs`'s two dispatch chains.
pub fn evaluate(rs: &Ruleset, p: &Packet) -> Trace {
    let run = |d: Direction| match rs.chains.get(&names::dispatch_chain(d)) {
        Some(c) => run_chain(rs, c, p, 0).unwrap_or(Outcome::Passed),
        None => Outcome::Passed,
    };
    let egress = run(Direction::Egress);
    let ingress = if egress.allows() {
        run(Direction::Ingress)
    } else {
        Outcome::Passed
    };
    Trace { egress, ingress }
}

/// None: the chain ended without a verdict (back to the caller).
fn run_chain(rs: &Ruleset, chain: &Chain, p: &Packet, depth: usize) -> Option<Outcome> {
    // nftables refuses jump loops deeper than this; the IR never nests more than three.
    if depth > 16 {
        return Some(Outcome::Dropped {
            chain: chain.name.clone(),
            rule: 0,
        });
    }
    for (i, rule) in chain.rules.iter().enumerate() {
        if !rule.matches.iter().all(|m| matches(rs, m, p)) {
            continue;
        }
        let jump = |name: &str| {
            rs.chains
                .get(name)
                .and_then(|c| run_chain(rs, c, p, depth + 1))
        };
        let decided = match &rule.verdict {
            None => None,
            Some(Verdict::Accept) => Some(Outcome::Accepted {
                chain: chain.name.clone(),
                rule: i,
            }),
            Some(Verdict::Drop) => Some(Outcome::Dropped {
                chain: chain.name.clone(),
                rule: i,
            }),
            Some(Verdict::Jump(to)) => jump(to),
            Some(Verdict::Dispatch { field, family, map }) => {
                let a = p.addr(*field);
                if Family::of(&a) != *family {
                    None
                } else {
                    rs.maps
                        .get(map)
                        .and_then(|m| m.entries.get(&a))
                        .and_then(|to| jump(to))
                }
            }
        };
        if decided.is_some() {
            return decided;
        }
    }
    None
}

fn in_range(v: u16, r: (u16, u16)) -> bool {
    r.0 <= v && v <= r.1
}

fn matches(rs: &Ruleset, m: &Match, p: &Packet) -> bool {
    let set_has = |name: &str, key: SetKey, f: &dyn Fn(&Element) -> bool| {
        rs.sets
            .get(name)
            .is_some_and(|s| s.key == key && s.elements.iter().any(f))
    };
    let transport = matches!(p.proto, 6 | 17 | 132);
    match m {
        Match::CtReply => p.ct == CtState::Reply,
        Match::CtRelated => p.ct == CtState::Related,
        Match::NeighbourDiscovery => p.discovery && p.proto == 58 && p.saddr.is_ipv6(),
        Match::AddrIn { field, family, set } => {
            let a = p.addr(*field);
            Family::of(&a) == *family
                && set_has(
                    set,
                    SetKey::Addr(*family),
                    &|e| matches!(e, Element::Addr(r) if r.contains(a)),
                )
        }
        Match::ProtoPortIn { set } => match p.dport {
            Some(port) if transport => set_has(
                set,
                SetKey::ProtoPort,
                &|e| matches!(e, Element::ProtoPort { proto, ports } if *proto == p.proto && in_range(port, *ports)),
            ),
            _ => false,
        },
        Match::AddrProtoPortIn { field, family, set } => {
            let a = p.addr(*field);
            match p.dport {
                Some(port) if transport && Family::of(&a) == *family => {
                    set_has(set, SetKey::AddrProtoPort(*family), &|e| {
                        matches!(e, Element::AddrProtoPort { addr, proto, ports }
                            if *addr == a && *proto == p.proto && in_range(port, *ports))
                    })
                }
                _ => false,
            }
        }
    }
}
