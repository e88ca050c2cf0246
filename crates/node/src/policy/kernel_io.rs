//! The policy IR in and out of the kernel: each IR object has one nftables encoding, and the
//! rules read back are decoded expression by expression into the same IR (what the kernel
//! really holds, so a table someone changed diffs as changed). See the module doc of
//! [`crate::policy`] for the hooks.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cni::Result;
use kernel::nft::objects::{range_elements, ranges_of};
use kernel::nft::{
    datatype, Cmp, ElemData, Expr, Exprs, Field as NftField, Nftables, SetDef, SetElem, SetEvent,
    SetInfo, SetWatch, Table, Transaction, CT_STATE_RELATED, NF_INET_FORWARD,
};
use kernel::owned::{self, UnclassifiedTag, UNCLASSIFIED_V4, UNCLASSIFIED_V6};
use policy::diff::Change;
use policy::ir::{
    names, Chain, ChainRole, Counter, Direction, Element, Family, Field, Log, Match, Rule, Set,
    SetKey, Verdict, VerdictMap,
};
use policy::ranges::AddrRange;
use policy::{Plan, Ruleset};

/// The base chain judging one direction on the forward hook.
pub fn base_chain(d: Direction) -> String {
    format!("forward-{}", d.as_str())
}

/// The forward hook's priority of a direction's base chain: egress first.
fn base_priority(d: Direction) -> i32 {
    match d {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

/// The neighbour/router discovery and redirect ICMPv6 types (133-137).
const ND_TYPES: (u8, u8) = (133, 137);

/// A counter's (packets, bytes).
pub type PacketsBytes = (u64, u64);

/// Netlink handles on the policy table of the netns they were opened in.
pub struct PolicyTable {
    nft: Nftables,
    table: Table,
    /// The netns the handles act on (for its sysctls, whichever thread calls).
    ns: kernel::Netns,
}

/// A pod the bridge plugin announced at ADD (an element of the unclassified sets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unclassified {
    pub addr: IpAddr,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub container_id: String,
}

impl Unclassified {
    fn of(addr: IpAddr, tag: Option<UnclassifiedTag>) -> Unclassified {
        let t = tag.unwrap_or(UnclassifiedTag {
            namespace: String::new(),
            name: String::new(),
            uid: String::new(),
            container_id: String::new(),
        });
        Unclassified {
            addr,
            namespace: t.namespace,
            name: t.name,
            uid: t.uid,
            container_id: t.container_id,
        }
    }
}

fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn addr_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn addr_field(field: Field, family: Family) -> NftField {
    match (field, family) {
        (Field::Saddr, Family::V4) => NftField::IpSaddr,
        (Field::Daddr, Family::V4) => NftField::IpDaddr,
        (Field::Saddr, Family::V6) => NftField::Ip6Saddr,
        (Field::Daddr, Family::V6) => NftField::Ip6Daddr,
    }
}

fn addr_len(f: Family) -> u32 {
    match f {
        Family::V4 => 4,
        Family::V6 => 16,
    }
}

fn addr_type(f: Family) -> u32 {
    match f {
        Family::V4 => datatype::IPADDR,
        Family::V6 => datatype::IP6ADDR,
    }
}

/// The kernel definition of an IR set.
pub fn set_def(name: &str, key: SetKey) -> SetDef {
    let (key_type, fields) = match key {
        SetKey::Addr(f) => (addr_type(f), vec![addr_len(f)]),
        SetKey::ProtoPort => (
            datatype::concat(&[datatype::INET_PROTOCOL, datatype::INET_SERVICE]),
            vec![1, 2],
        ),
        SetKey::AddrProtoPort(f) => (
            datatype::concat(&[
                addr_type(f),
                datatype::INET_PROTOCOL,
                datatype::INET_SERVICE,
            ]),
            vec![addr_len(f), 1, 2],
        ),
    };
    SetDef {
        name: name.to_string(),
        key_type,
        fields,
        interval: true,
        verdict_map: false,
    }
}

fn map_def(name: &str, f: Family) -> SetDef {
    SetDef {
        name: name.to_string(),
        key_type: addr_type(f),
        fields: vec![addr_len(f)],
        interval: false,
        verdict_map: true,
    }
}

/// The IR key of a set as listed; None: not one of ours.
fn set_key_of(s: &SetInfo) -> Option<SetKey> {
    if s.is_verdict_map() || !s.is_interval() {
        return None;
    }
    match (s.fields.as_slice(), s.key_len) {
        ([] | [4], 4) => Some(SetKey::Addr(Family::V4)),
        ([] | [16], 16) => Some(SetKey::Addr(Family::V6)),
        ([1, 2], 8) => Some(SetKey::ProtoPort),
        ([4, 1, 2], 12) => Some(SetKey::AddrProtoPort(Family::V4)),
        ([16, 1, 2], 24) => Some(SetKey::AddrProtoPort(Family::V6)),
        _ => None,
    }
}

fn proto_port(proto: u8, port: u16) -> [u8; 8] {
    let p = port.to_be_bytes();
    [proto, 0, 0, 0, p[0], p[1], 0, 0]
}

/// The kernel elements of an IR element.
pub fn elements_of(e: &Element) -> Vec<SetElem> {
    match e {
        Element::Addr(r) => range_elements(&addr_bytes(&r.start), &addr_bytes(&r.end), false),
        Element::ProtoPort { proto, ports } => range_elements(
            &proto_port(*proto, ports.0),
            &proto_port(*proto, ports.1),
            true,
        ),
        Element::AddrProtoPort { addr, proto, ports } => {
            let a = addr_bytes(addr);
            range_elements(
                &[&a[..], &proto_port(*proto, ports.0)].concat(),
                &[&a[..], &proto_port(*proto, ports.1)].concat(),
                true,
            )
        }
    }
}

/// The IR elements of a set's listed kernel elements.
fn ir_elements(key: SetKey, elems: &[SetElem]) -> Vec<Element> {
    let pp = |b: &[u8]| -> Option<(u8, u16)> {
        (b.len() == 8).then(|| (b[0], u16::from_be_bytes([b[4], b[5]])))
    };
    ranges_of(elems)
        .into_iter()
        .filter_map(|(start, end)| match key {
            SetKey::Addr(_) => Some(Element::Addr(AddrRange {
                start: addr_of(&start)?,
                end: addr_of(&end)?,
            })),
            SetKey::ProtoPort => {
                let ((proto, lo), (_, hi)) = (pp(&start)?, pp(&end)?);
                Some(Element::ProtoPort {
                    proto,
                    ports: (lo, hi),
                })
            }
            SetKey::AddrProtoPort(f) => {
                let n = addr_len(f) as usize;
                if start.len() != n + 8 || end.len() != n + 8 {
                    return None;
                }
                let ((proto, lo), (_, hi)) = (pp(&start[n..])?, pp(&end[n..])?);
                Some(Element::AddrProtoPort {
                    addr: addr_of(&start[..n])?,
                    proto,
                    ports: (lo, hi),
                })
            }
        })
        .collect()
}

/// Writes one IR rule's expressions.
pub fn encode_rule(e: &mut Exprs<'_>, r: &Rule) {
    let mut family_checked: Option<Family> = None;
    let mut family = |e: &mut Exprs<'_>, f: Family| {
        if family_checked != Some(f) {
            e.nfproto(f == Family::V6);
            family_checked = Some(f);
        }
    };
    for m in &r.matches {
        match m {
            Match::CtReply => e.ct_direction_reply(),
            Match::CtRelated => e.ct_state_any(CT_STATE_RELATED),
            Match::NeighbourDiscovery => e.icmpv6_type_between(ND_TYPES.0, ND_TYPES.1),
            Match::AddrIn {
                field,
                family: f,
                set,
            } => {
                family(e, *f);
                e.concat_lookup(&[addr_field(*field, *f)], set, 0, false);
            }
            Match::ProtoPortIn { set } => {
                e.concat_lookup(&[NftField::L4Proto, NftField::ThDport], set, 0, false)
            }
            Match::AddrProtoPortIn {
                field,
                family: f,
                set,
            } => {
                family(e, *f);
                e.concat_lookup(
                    &[addr_field(*field, *f), NftField::L4Proto, NftField::ThDport],
                    set,
                    0,
                    false,
                );
            }
        }
    }
    if let Some(log) = &r.log {
        e.limit_per_second(log.per_second as u64, log.burst);
        e.log_group(log.group, &log.prefix);
    }
    match &r.counter {
        Counter::None => {}
        Counter::Anonymous => e.counter(),
        Counter::Named(n) => e.count(n),
    }
    match &r.verdict {
        None => {}
        Some(Verdict::Accept) => e.accept(),
        Some(Verdict::Drop) => e.discard(),
        Some(Verdict::Jump(c)) => e.jump(c),
        Some(Verdict::Dispatch {
            field,
            family: f,
            map,
        }) => {
            family(e, *f);
            e.concat_vmap(&[addr_field(*field, *f)], map);
        }
    }
}

/// What a register was loaded with, while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Nfproto,
    L4Proto,
    Addr(Field, Family),
    ThDport,
    IcmpType,
    CtDirection,
    CtState,
}

/// A rule read back as IR; None when it is not one podwire writes (someone else's, or changed).
pub fn decode_rule(exprs: &[Expr]) -> Option<Rule> {
    let mut rule = Rule {
        matches: Vec::new(),
        counter: Counter::None,
        log: None,
        verdict: None,
    };
    let mut loads: Vec<Load> = Vec::new();
    let mut ct_mask: Option<Vec<u8>> = None;
    let mut nd_lo = false;
    let mut limit: Option<(u64, u32)> = None;
    let take = |loads: &mut Vec<Load>| std::mem::take(loads);
    for x in exprs {
        if rule.verdict.is_some() {
            return None; // nothing follows a verdict in our rules
        }
        match x {
            Expr::Meta { key: 15, .. } => loads.push(Load::Nfproto),
            Expr::Meta { key: 16, .. } => loads.push(Load::L4Proto),
            Expr::Payload {
                base, offset, len, ..
            } => loads.push(match (base, offset, len) {
                (1, 12, 4) => Load::Addr(Field::Saddr, Family::V4),
                (1, 16, 4) => Load::Addr(Field::Daddr, Family::V4),
                (1, 8, 16) => Load::Addr(Field::Saddr, Family::V6),
                (1, 24, 16) => Load::Addr(Field::Daddr, Family::V6),
                (2, 2, 2) => Load::ThDport,
                (2, 0, 1) => Load::IcmpType,
                _ => return None,
            }),
            Expr::Ct { key: 1, .. } => loads.push(Load::CtDirection),
            Expr::Ct { key: 0, .. } => loads.push(Load::CtState),
            Expr::Bitwise { mask, .. } if loads.last() == Some(&Load::CtState) => {
                ct_mask = Some(mask.clone())
            }
            Expr::Cmp { op, data, .. } => match (loads.last()?, op, data.as_slice()) {
                (Load::Nfproto, Cmp::Eq, [2 | 10]) => {
                    take(&mut loads);
                }
                (Load::L4Proto, Cmp::Eq, [58]) => {}
                (Load::IcmpType, Cmp::Gte, [lo]) if *lo == ND_TYPES.0 => nd_lo = true,
                (Load::IcmpType, Cmp::Lte, [hi]) if *hi == ND_TYPES.1 && nd_lo => {
                    // nfproto ipv6, l4proto 58, type range: the whole discovery match.
                    let seen = take(&mut loads);
                    if !seen.contains(&Load::L4Proto) {
                        return None;
                    }
                    rule.matches.push(Match::NeighbourDiscovery);
                    nd_lo = false;
                }
                (Load::CtDirection, Cmp::Eq, [1]) => {
                    take(&mut loads);
                    rule.matches.push(Match::CtReply);
                }
                (Load::CtState, Cmp::Neq, _)
                    if ct_mask.as_deref() == Some(&CT_STATE_RELATED.to_ne_bytes()[..])
                        && data.iter().all(|b| *b == 0) =>
                {
                    take(&mut loads);
                    ct_mask = None;
                    rule.matches.push(Match::CtRelated);
                }
                _ => return None,
            },
            Expr::Lookup {
                set,
                dreg,
                inverted: false,
                ..
            } => {
                let seen: Vec<Load> = take(&mut loads)
                    .into_iter()
                    .filter(|l| *l != Load::Nfproto)
                    .collect();
                match (seen.as_slice(), dreg) {
                    ([Load::Addr(field, family)], None) => rule.matches.push(Match::AddrIn {
                        field: *field,
                        family: *family,
                        set: set.clone(),
                    }),
                    ([Load::L4Proto, Load::ThDport], None) => {
                        rule.matches.push(Match::ProtoPortIn { set: set.clone() })
                    }
                    ([Load::Addr(field, family), Load::L4Proto, Load::ThDport], None) => {
                        rule.matches.push(Match::AddrProtoPortIn {
                            field: *field,
                            family: *family,
                            set: set.clone(),
                        })
                    }
                    ([Load::Addr(field, family)], Some(0)) => {
                        rule.verdict = Some(Verdict::Dispatch {
                            field: *field,
                            family: *family,
                            map: set.clone(),
                        })
                    }
                    _ => return None,
                }
            }
            Expr::Limit {
                rate,
                unit: 1,
                burst,
                ty: 0,
            } => limit = Some((*rate, *burst)),
            Expr::Log {
                group: Some(group),
                prefix,
            } => {
                let (rate, burst) = limit.take()?;
                rule.log = Some(Log {
                    group: *group,
                    prefix: prefix.clone().unwrap_or_default(),
                    per_second: u32::try_from(rate).ok()?,
                    burst,
                });
            }
            Expr::Counter { .. } => rule.counter = Counter::Anonymous,
            Expr::Objref { ty: 1, name } => rule.counter = Counter::Named(name.clone()),
            Expr::Verdict { code: 1, .. } => rule.verdict = Some(Verdict::Accept),
            Expr::Verdict { code: 0, .. } => rule.verdict = Some(Verdict::Drop),
            Expr::Verdict {
                code: -3,
                chain: Some(c),
            } => rule.verdict = Some(Verdict::Jump(c.clone())),
            _ => return None,
        }
    }
    if limit.is_some() || !loads.is_empty() {
        return None;
    }
    Some(rule)
}

/// A rule that could not be decoded, as IR: an allow-only placeholder (a jump to a chain that
/// cannot exist), so the diff rewrites its chain and never keeps or re-writes it.
fn foreign_rule(handle: u64) -> Rule {
    Rule {
        matches: Vec::new(),
        counter: Counter::None,
        log: None,
        verdict: Some(Verdict::Jump(format!("?foreign rule {handle}"))),
    }
}

fn role_of(name: &str) -> ChainRole {
    if name == names::dispatch_chain(Direction::Ingress) {
        ChainRole::Dispatch(Direction::Ingress)
    } else if name == names::dispatch_chain(Direction::Egress) {
        ChainRole::Dispatch(Direction::Egress)
    } else if name.starts_with("policy/") {
        ChainRole::Policy
    } else {
        ChainRole::Pod
    }
}

fn is_structure_set(name: &str) -> bool {
    name == UNCLASSIFIED_V4 || name == UNCLASSIFIED_V6
}

/// Set ids unique within one batch.
struct Ids(u32);

impl Ids {
    fn next(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

impl PolicyTable {
    /// Handles on the calling thread's netns.
    pub fn open() -> Result<PolicyTable> {
        Ok(PolicyTable {
            nft: Nftables::new()?,
            table: owned::policy_table(),
            ns: kernel::Netns::current()?,
        })
    }

    /// Handles on `ns` (tests, tools acting on another netns).
    pub fn open_in(ns: &kernel::Netns) -> Result<PolicyTable> {
        Ok(PolicyTable {
            nft: Nftables::new_in(ns)?,
            table: owned::policy_table(),
            ns: kernel::Netns::open(ns.path())?,
        })
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Table `inet podwire-policy`, its base chains on forward (rewritten each time: flush +
    /// rules in the same batch, so never empty), the dispatch chains' existence, the node and
    /// unclassified sets; one batch. Idempotent; repairs a flushed or deleted table's
    /// structure (the compiled content is repaired by read + diff + apply). Turns on
    /// `bridge-nf-call-ip(6)tables` in this netns when br_netfilter is there.
    pub fn ensure_structure(&self) -> Result<()> {
        let mut tx = self.nft.transaction(&self.table);
        let mut ids = Ids(0);
        tx.add_table_commented("podwire NetworkPolicy: see docs/network-policy.md");
        for f in Family::BOTH {
            let unclassified = if f == Family::V4 {
                UNCLASSIFIED_V4
            } else {
                UNCLASSIFIED_V6
            };
            tx.add_set_def(
                &SetDef {
                    name: unclassified.into(),
                    key_type: addr_type(f),
                    fields: vec![addr_len(f)],
                    interval: false,
                    verdict_map: false,
                },
                ids.next(),
            );
            tx.add_set_def(&set_def(&names::node_set(f), SetKey::Addr(f)), ids.next());
        }
        for d in Direction::BOTH {
            tx.add_chain(&names::dispatch_chain(d), false);
        }
        for d in Direction::BOTH {
            let base = base_chain(d);
            tx.add_filter_chain(&base, NF_INET_FORWARD, base_priority(d));
            tx.flush_chain(&base);
            for r in structure_rules(d) {
                tx.add_rule(&base, None, |e| encode_rule(e, &r));
            }
            tx.add_rule(&base, None, |e| e.jump(&names::dispatch_chain(d)));
        }
        tx.commit("set up the policy table")?;
        for key in [
            "net/bridge/bridge-nf-call-iptables",
            "net/bridge/bridge-nf-call-ip6tables",
        ] {
            // Best effort: /proc/sys is read-only in the DaemonSet's container (the per-netns
            // default is 1 anyway); the agent says when same-node traffic is not judged
            // (`same_node_enforced`), and routed traffic is judged either way.
            if kernel::sysctl::read_in(&self.ns, key).is_ok_and(|v| v.trim() != "1") {
                let _ = kernel::sysctl::write_in(&self.ns, key, "1");
            }
        }
        Ok(())
    }

    /// Whether bridged (same-node) pod traffic passes the forward hook here (br_netfilter
    /// loaded and `bridge-nf-call-iptables` on); when not, only routed traffic is judged.
    pub fn same_node_enforced(&self) -> bool {
        kernel::sysctl::read_in(&self.ns, "net/bridge/bridge-nf-call-iptables")
            .is_ok_and(|v| v.trim() == "1")
    }

    /// Whether the table exists.
    pub fn exists(&self) -> Result<bool> {
        Ok(self.nft.table_comment(&self.table)?.is_some())
    }

    /// What the kernel holds, as IR (structure objects left out). An absent table is empty.
    pub fn read(&self) -> Result<Ruleset> {
        let mut rs = Ruleset::default();
        for s in self.nft.sets(&self.table)? {
            if is_structure_set(&s.name) {
                continue;
            }
            let elems = self.nft.set_elems(&self.table, &s.name)?;
            if s.is_verdict_map() {
                let family = match s.key_len {
                    4 => Family::V4,
                    16 => Family::V6,
                    _ => continue,
                };
                let entries = elems
                    .iter()
                    .filter_map(|e| match (&e.data, addr_of(&e.key)) {
                        (Some(ElemData::Jump(c)), Some(a)) => Some((a, c.clone())),
                        _ => None,
                    })
                    .collect();
                rs.maps.insert(
                    s.name.clone(),
                    VerdictMap {
                        name: s.name,
                        family,
                        entries,
                    },
                );
            } else if let Some(key) = set_key_of(&s) {
                rs.sets.insert(
                    s.name.clone(),
                    Set {
                        name: s.name,
                        key,
                        elements: ir_elements(key, &elems).into_iter().collect(),
                    },
                );
            }
        }
        rs.counters = self
            .nft
            .counters(&self.table)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        for c in self.nft.chains(&self.table)? {
            if c.base {
                continue;
            }
            rs.chains.insert(
                c.name.clone(),
                Chain {
                    role: role_of(&c.name),
                    name: c.name,
                    rules: Vec::new(),
                },
            );
        }
        for r in self.nft.rules_decoded(&self.table)? {
            if let Some(chain) = rs.chains.get_mut(&r.chain) {
                chain
                    .rules
                    .push(decode_rule(&r.exprs).unwrap_or_else(|| foreign_rule(r.handle)));
            }
        }
        Ok(rs)
    }

    /// Applies a plan: each phase one atomic batch, in order (see [`policy::diff`]); stops at
    /// the first failing phase (the table is then between two safe states).
    pub fn apply(&self, plan: &Plan) -> Result<()> {
        // Map entries that SetMapEntry replaces must be deleted first, in the same batch.
        let mut mapped: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        if plan
            .changes()
            .any(|c| matches!(c, Change::SetMapEntry { .. }))
        {
            let maps: std::collections::BTreeSet<&str> = plan
                .changes()
                .filter_map(|c| match c {
                    Change::SetMapEntry { map, .. } => Some(map.as_str()),
                    _ => None,
                })
                .collect();
            for m in maps {
                let elems = self.nft.set_elems(&self.table, m)?;
                mapped.insert(
                    m.to_string(),
                    elems.iter().filter_map(|e| addr_of(&e.key)).collect(),
                );
            }
        }
        let names = [
            "create",
            "isolate",
            "restrict",
            "open",
            "unisolate",
            "delete",
        ];
        for (i, phase) in plan.phases().into_iter().enumerate() {
            if phase.is_empty() {
                continue;
            }
            let mut tx = self.nft.transaction(&self.table);
            if i == 0 {
                tx.add_table();
            }
            let mut ids = Ids(0);
            for c in phase {
                self.encode_change(&mut tx, c, &mut ids, &mapped);
            }
            tx.commit(&format!("apply the policy plan ({} phase)", names[i]))?;
        }
        Ok(())
    }

    fn encode_change(
        &self,
        tx: &mut Transaction<'_>,
        c: &Change,
        ids: &mut Ids,
        mapped: &BTreeMap<String, Vec<IpAddr>>,
    ) {
        match c {
            Change::AddCounter(n) => {
                tx.add_counter(n);
            }
            Change::AddSet(s) => {
                tx.add_set_def(&set_def(&s.name, s.key), ids.next());
                let elems: Vec<SetElem> = s.elements.iter().flat_map(elements_of).collect();
                if !elems.is_empty() {
                    tx.add_set_elems(&s.name, &elems);
                }
            }
            Change::AddMap { name, family } => {
                tx.add_set_def(&map_def(name, *family), ids.next());
            }
            Change::AddChain(ch) => {
                tx.add_chain(&ch.name, false);
                // An existing chain of that name (not in what was read) is replaced whole.
                tx.flush_chain(&ch.name);
                for r in &ch.rules {
                    tx.add_rule(&ch.name, None, |e| encode_rule(e, r));
                }
            }
            Change::WriteChain(ch) => {
                tx.flush_chain(&ch.name);
                for r in &ch.rules {
                    tx.add_rule(&ch.name, None, |e| encode_rule(e, r));
                }
            }
            Change::SetMapEntry { map, addr, chain } => {
                let key = addr_bytes(addr);
                if mapped.get(map).is_some_and(|m| m.contains(addr)) {
                    tx.delete_set_elems(map, &[SetElem::key(key.clone())]);
                }
                tx.add_set_elems(
                    map,
                    &[SetElem {
                        key,
                        data: Some(ElemData::Jump(chain.clone())),
                        ..Default::default()
                    }],
                );
            }
            Change::DeleteElements { set, elements } => {
                let elems: Vec<SetElem> = elements.iter().flat_map(elements_of).collect();
                tx.delete_set_elems(set, &elems);
            }
            Change::AddElements { set, elements } => {
                let elems: Vec<SetElem> = elements.iter().flat_map(elements_of).collect();
                tx.add_set_elems(set, &elems);
            }
            Change::DeleteMapEntry { map, addr } => {
                tx.delete_set_elems(map, &[SetElem::key(addr_bytes(addr))]);
            }
            Change::DeleteChain(n) => {
                tx.flush_chain(n);
                tx.delete_chain(n);
            }
            Change::DeleteMap(n) | Change::DeleteSet(n) => {
                tx.delete_set(n);
            }
            Change::DeleteCounter(n) => {
                tx.delete_counter(n);
            }
        }
    }

    /// Pods the bridge plugin announced at ADD and the agent has not classified yet.
    pub fn unclassified(&self) -> Result<Vec<Unclassified>> {
        Ok(kernel::unclassified::list(&self.nft)?
            .into_iter()
            .map(|(a, t)| Unclassified::of(a, t))
            .collect())
    }

    /// Removes addresses from the unclassified sets (absent ones are fine): call once their
    /// verdict-map entries are in.
    pub fn mark_classified(&self, addrs: &[IpAddr]) -> Result<()> {
        kernel::unclassified::withdraw(&self.nft, addrs)
            .map(drop)
            .map_err(cni::Error::from)
    }

    /// Named counters (drops per pod and direction): name → (packets, bytes).
    pub fn counters(&self) -> Result<BTreeMap<String, (u64, u64)>> {
        Ok(self
            .nft
            .counters(&self.table)?
            .into_iter()
            .map(|c| (c.name, (c.packets, c.bytes)))
            .collect())
    }

    /// The anonymous counters of each chain's rules, in rule order (None for a rule without
    /// one): what "allowed by" figures come from.
    pub fn rule_counters(&self) -> Result<BTreeMap<String, Vec<Option<PacketsBytes>>>> {
        let mut out: BTreeMap<String, Vec<Option<PacketsBytes>>> = BTreeMap::new();
        for r in self.nft.rules_decoded(&self.table)? {
            let c = r.exprs.iter().find_map(|x| match x {
                Expr::Counter { packets, bytes } => Some((*packets, *bytes)),
                _ => None,
            });
            out.entry(r.chain).or_default().push(c);
        }
        Ok(out)
    }

    /// Deletes the whole table (policy turned off, node teardown). Ok(false): there was none.
    pub fn remove(&self) -> Result<bool> {
        match self.nft.delete_table(&self.table) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(cni::Error::from(e)),
        }
    }
}

/// The rules a base chain runs before jumping to its dispatch chain: conntrack replies and
/// related, discovery and the node pass; unclassified local pods are dropped.
fn structure_rules(d: Direction) -> Vec<Rule> {
    let mut rules = policy::compile::always_allowed(d);
    for (f, set) in [(Family::V4, UNCLASSIFIED_V4), (Family::V6, UNCLASSIFIED_V6)] {
        rules.push(Rule {
            matches: vec![Match::AddrIn {
                field: d.local_field(),
                family: f,
                set: set.into(),
            }],
            counter: Counter::Anonymous,
            log: None,
            verdict: Some(Verdict::Drop),
        });
    }
    rules
}

/// New announcements in the unclassified sets, as they are committed.
pub struct UnclassifiedWatch {
    watch: SetWatch,
    table: PolicyTable,
}

/// Starts watching the unclassified sets of the calling thread's netns. Call
/// [`PolicyTable::unclassified`] after this, not before, to miss nothing.
pub fn watch_unclassified() -> Result<UnclassifiedWatch> {
    Ok(UnclassifiedWatch {
        watch: SetWatch::new(
            owned::policy_table(),
            vec![UNCLASSIFIED_V4.into(), UNCLASSIFIED_V6.into()],
        )?,
        table: PolicyTable::open()?,
    })
}

impl UnclassifiedWatch {
    /// Blocks until pods are announced; returns them (at least one). When notifications were
    /// lost (socket overflow), returns every unclassified pod instead.
    pub fn recv(&mut self) -> Result<Vec<Unclassified>> {
        loop {
            let events = self.watch.recv()?;
            if events.contains(&SetEvent::Overflow) {
                let all = self.table.unclassified()?;
                if all.is_empty() {
                    continue;
                }
                return Ok(all);
            }
            let added: Vec<Unclassified> = events
                .into_iter()
                .filter_map(|e| match e {
                    SetEvent::Added { elem, .. } => addr_of(&elem.key).map(|a| {
                        Unclassified::of(
                            a,
                            elem.tag
                                .as_deref()
                                .and_then(owned::parse_unclassified_comment),
                        )
                    }),
                    _ => None,
                })
                .collect();
            if !added.is_empty() {
                return Ok(added);
            }
        }
    }
}

impl Iterator for UnclassifiedWatch {
    type Item = Result<Vec<Unclassified>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.recv())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(r: &Rule) -> Option<Rule> {
        let exprs = kernel::nft::decode::encode_for_test(|e| encode_rule(e, r));
        decode_rule(&exprs)
    }

    #[test]
    fn every_rule_shape_round_trips() {
        let rules = vec![
            Rule::accept(vec![Match::CtReply]),
            Rule::accept(vec![Match::CtRelated]),
            Rule::accept(vec![Match::NeighbourDiscovery]),
            Rule::accept(vec![Match::AddrIn {
                field: Field::Daddr,
                family: Family::V6,
                set: "node-v6".into(),
            }]),
            Rule {
                matches: vec![
                    Match::AddrIn {
                        field: Field::Saddr,
                        family: Family::V4,
                        set: "policy/x/p/ingress/0/peers-v4".into(),
                    },
                    Match::ProtoPortIn {
                        set: "policy/x/p/ingress/0/ports".into(),
                    },
                ],
                counter: Counter::Anonymous,
                log: None,
                verdict: Some(Verdict::Accept),
            },
            Rule {
                matches: vec![
                    Match::AddrIn {
                        field: Field::Saddr,
                        family: Family::V6,
                        set: "a".into(),
                    },
                    Match::AddrProtoPortIn {
                        field: Field::Daddr,
                        family: Family::V6,
                        set: "b".into(),
                    },
                ],
                counter: Counter::Anonymous,
                log: None,
                verdict: Some(Verdict::Accept),
            },
            Rule {
                matches: vec![],
                counter: Counter::None,
                log: None,
                verdict: Some(Verdict::Dispatch {
                    field: Field::Daddr,
                    family: Family::V4,
                    map: "ingress-v4".into(),
                }),
            },
            Rule {
                matches: vec![],
                counter: Counter::None,
                log: None,
                verdict: Some(Verdict::Jump("policy/x/p/ingress".into())),
            },
            Rule {
                matches: vec![],
                counter: Counter::None,
                log: Some(Log {
                    group: 1024,
                    prefix: "podwire ingress deny x/a ".into(),
                    per_second: 10,
                    burst: 20,
                }),
                verdict: None,
            },
            Rule {
                matches: vec![],
                counter: Counter::Named("drops/x/a/ingress".into()),
                log: None,
                verdict: Some(Verdict::Drop),
            },
            Rule {
                matches: vec![],
                counter: Counter::Anonymous,
                log: None,
                verdict: Some(Verdict::Accept),
            },
        ];
        for r in rules {
            assert_eq!(decoded(&r).as_ref(), Some(&r), "{r:?}");
        }
    }

    #[test]
    fn unknown_expressions_are_foreign() {
        assert_eq!(decode_rule(&[Expr::Other("masq".into())]), None);
        // A verdict followed by more is not ours.
        assert_eq!(
            decode_rule(&[
                Expr::Verdict {
                    code: 1,
                    chain: None
                },
                Expr::Counter {
                    packets: 0,
                    bytes: 0
                }
            ]),
            None
        );
        assert!(foreign_rule(7).only_allows());
    }

    #[test]
    fn elements_round_trip() {
        let cases = [
            (
                SetKey::Addr(Family::V4),
                Element::Addr(AddrRange {
                    start: "10.0.0.0".parse().unwrap(),
                    end: "10.0.0.255".parse().unwrap(),
                }),
            ),
            (
                SetKey::Addr(Family::V6),
                Element::Addr(AddrRange::single("fd00::1".parse().unwrap())),
            ),
            (
                SetKey::ProtoPort,
                Element::ProtoPort {
                    proto: 17,
                    ports: (53, 53),
                },
            ),
            (
                SetKey::AddrProtoPort(Family::V6),
                Element::AddrProtoPort {
                    addr: "fd00::5".parse().unwrap(),
                    proto: 132,
                    ports: (8080, 8090),
                },
            ),
        ];
        for (key, e) in cases {
            assert_eq!(ir_elements(key, &elements_of(&e)), vec![e]);
        }
    }

    #[test]
    fn set_types_are_recognised() {
        for key in [
            SetKey::Addr(Family::V4),
            SetKey::Addr(Family::V6),
            SetKey::ProtoPort,
            SetKey::AddrProtoPort(Family::V4),
            SetKey::AddrProtoPort(Family::V6),
        ] {
            let d = set_def("s", key);
            let info = SetInfo {
                name: "s".into(),
                flags: kernel::nft::objects::NFT_SET_INTERVAL
                    | if d.concat() {
                        kernel::nft::objects::NFT_SET_CONCAT
                    } else {
                        0
                    },
                key_type: d.key_type,
                key_len: d.key_len(),
                data_type: None,
                fields: if d.concat() { d.fields.clone() } else { vec![] },
            };
            assert_eq!(set_key_of(&info), Some(key));
        }
    }
}
