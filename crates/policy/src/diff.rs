//! What is wanted against what the table holds (the same IR, read back) → the changes, in an
//! order that never opens a window. Pure: a resync where nothing changed yields no change.
//!
//! The plan is meant to be applied as ONE nftables transaction (a netlink batch is atomic:
//! packets see the old table or the new one). Its order additionally keeps every boundary
//! between its phases safe, so a kernel layer that must split a big plan (batch size) splits
//! only there, and a failure half-way leaves the table closed, never open. At each boundary,
//! what passes ⊆ (what the old table passed ∪ what the new one passes), and after `restrict`,
//! for pods isolated before and after, ⊆ both:
//!
//! 1. `create`: objects nothing refers to yet (counters, sets with their elements, empty
//!    verdict maps, then chains with their rules: policy chains, pod chains, dispatch
//!    chains). No packet sees them.
//! 2. `isolate`: verdict map entries of newly isolated addresses (and of addresses whose pod
//!    changed), to chains complete since `create`: a pod's deny is in place before any allow
//!    is widened.
//! 3. `restrict`: elements the new state drops leave their sets; chains that change are
//!    rewritten to (their allow rules in both old and new) + (every deny rule of either).
//! 4. `open`: new elements join their sets; changed chains get their new rules.
//! 5. `unisolate`: entries of addresses no longer isolated leave the verdict maps.
//! 6. `delete`: what is no longer wanted, referrers first (dispatch, pod, policy chains, then
//!    maps, sets, counters).
//!
//! Assumed of the kernel layer: [`Change::WriteChain`] is a flush of the chain and its new
//! rules in the same transaction (atomic: never an empty chain in between, which for a pod
//! chain would be an open door); [`Change::SetMapEntry`] on an address already mapped
//! replaces its entry in the same transaction (delete + add). Interval elements are whole
//! merged ranges: a range that grows is deleted (restrict) and its larger self added (open),
//! so split at that boundary it is briefly denied, never opened.

use crate::ir::{Chain, ChainRole, Element, Family, Rule, Ruleset, Set, VerdictMap};
use std::collections::BTreeSet;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    AddCounter(String),
    /// A new set with its elements.
    AddSet(Set),
    /// A new, empty verdict map.
    AddMap {
        name: String,
        family: Family,
    },
    /// A new chain with its rules.
    AddChain(Chain),
    /// Maps `addr` to `chain` (replacing an entry it had).
    SetMapEntry {
        map: String,
        addr: IpAddr,
        chain: String,
    },
    DeleteElements {
        set: String,
        elements: Vec<Element>,
    },
    /// Replaces a chain's rules (flush + add, in one transaction).
    WriteChain(Chain),
    AddElements {
        set: String,
        elements: Vec<Element>,
    },
    DeleteMapEntry {
        map: String,
        addr: IpAddr,
    },
    DeleteChain(String),
    DeleteMap(String),
    DeleteSet(String),
    DeleteCounter(String),
}

/// The changes by phase (see the module doc), plus what was left alone and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<Change>,
    pub isolate: Vec<Change>,
    pub restrict: Vec<Change>,
    pub open: Vec<Change>,
    pub unisolate: Vec<Change>,
    pub delete: Vec<Change>,
    pub skipped: Vec<String>,
}

impl Plan {
    /// Every change, in order.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.create
            .iter()
            .chain(&self.isolate)
            .chain(&self.restrict)
            .chain(&self.open)
            .chain(&self.unisolate)
            .chain(&self.delete)
    }

    /// The phases in order, for a kernel layer that splits between them.
    pub fn phases(&self) -> [&[Change]; 6] {
        [
            &self.create,
            &self.isolate,
            &self.restrict,
            &self.open,
            &self.unisolate,
            &self.delete,
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.changes().next().is_none()
    }
}

/// Creation order of chains: what is jumped to before what jumps.
fn creation_rank(role: ChainRole) -> u8 {
    match role {
        ChainRole::Policy => 0,
        ChainRole::Pod => 1,
        ChainRole::Dispatch(_) => 2,
    }
}

/// The rules of a chain between its old and new content: the allow rules both have, then
/// every deny-side rule (drop, log, dispatch) of either, so it allows no more than either.
fn between(old: &Chain, new: &Chain) -> Vec<Rule> {
    let mut rules: Vec<Rule> = new
        .rules
        .iter()
        .filter(|r| r.only_allows() && old.rules.contains(r))
        .cloned()
        .collect();
    for r in new.rules.iter().chain(&old.rules) {
        if !r.only_allows() && !rules.contains(r) {
            rules.push(r.clone());
        }
    }
    rules
}

pub fn diff(want: &Ruleset, have: &Ruleset) -> Plan {
    let mut plan = Plan::default();

    for c in want.counters.difference(&have.counters) {
        plan.create.push(Change::AddCounter(c.clone()));
    }
    for (name, set) in &want.sets {
        match have.sets.get(name) {
            None => plan.create.push(Change::AddSet(set.clone())),
            Some(old) if old.key != set.key => plan.skipped.push(format!(
                "set {name} exists with another key type ({:?}, wanted {:?}): left alone",
                old.key, set.key
            )),
            Some(old) => {
                let gone: Vec<Element> = old.elements.difference(&set.elements).copied().collect();
                let added: Vec<Element> = set.elements.difference(&old.elements).copied().collect();
                if !gone.is_empty() {
                    plan.restrict.push(Change::DeleteElements {
                        set: name.clone(),
                        elements: gone,
                    });
                }
                if !added.is_empty() {
                    plan.open.push(Change::AddElements {
                        set: name.clone(),
                        elements: added,
                    });
                }
            }
        }
    }
    for (name, map) in &want.maps {
        map_changes(&mut plan, name, map, have.maps.get(name));
    }

    let mut new_chains: Vec<&Chain> = want
        .chains
        .values()
        .filter(|c| !have.chains.contains_key(&c.name))
        .collect();
    new_chains.sort_by_key(|c| creation_rank(c.role));
    plan.create
        .extend(new_chains.into_iter().map(|c| Change::AddChain(c.clone())));
    for (name, new) in &want.chains {
        let Some(old) = have.chains.get(name) else {
            continue;
        };
        if old.rules == new.rules {
            continue;
        }
        let mid = between(old, new);
        if mid != old.rules {
            plan.restrict.push(Change::WriteChain(Chain {
                rules: mid.clone(),
                ..new.clone()
            }));
        }
        if mid != new.rules {
            plan.open.push(Change::WriteChain(new.clone()));
        }
    }

    let mut old_chains: Vec<&Chain> = have
        .chains
        .values()
        .filter(|c| !want.chains.contains_key(&c.name))
        .collect();
    old_chains.sort_by_key(|c| std::cmp::Reverse(creation_rank(c.role)));
    plan.delete.extend(
        old_chains
            .into_iter()
            .map(|c| Change::DeleteChain(c.name.clone())),
    );
    for name in have.maps.keys().filter(|n| !want.maps.contains_key(*n)) {
        plan.delete.push(Change::DeleteMap(name.clone()));
    }
    for name in have.sets.keys().filter(|n| !want.sets.contains_key(*n)) {
        plan.delete.push(Change::DeleteSet(name.clone()));
    }
    for c in have.counters.difference(&want.counters) {
        plan.delete.push(Change::DeleteCounter(c.clone()));
    }
    plan
}

fn map_changes(plan: &mut Plan, name: &str, map: &VerdictMap, old: Option<&VerdictMap>) {
    let empty = VerdictMap {
        name: name.into(),
        family: map.family,
        entries: Default::default(),
    };
    let old = match old {
        None => {
            plan.create.push(Change::AddMap {
                name: name.into(),
                family: map.family,
            });
            &empty
        }
        Some(o) if o.family != map.family => {
            plan.skipped
                .push(format!("map {name} exists with another family: left alone"));
            return;
        }
        Some(o) => o,
    };
    for (addr, chain) in &map.entries {
        if old.entries.get(addr) != Some(chain) {
            plan.isolate.push(Change::SetMapEntry {
                map: name.into(),
                addr: *addr,
                chain: chain.clone(),
            });
        }
    }
    let gone: BTreeSet<&IpAddr> = old
        .entries
        .keys()
        .filter(|a| !map.entries.contains_key(a))
        .collect();
    for addr in gone {
        plan.unisolate.push(Change::DeleteMapEntry {
            map: name.into(),
            addr: *addr,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::ir::{Counter, Match, Verdict};
    use crate::model::Protocol::{Tcp, Udp};
    use serde_json::json;

    /// Whether `rs` refers to `name` as a set, map, chain or counter.
    fn referenced(rs: &Ruleset, name: &str) -> bool {
        let in_rule = |r: &Rule| {
            r.matches.iter().any(|m| match m {
                Match::AddrIn { set, .. }
                | Match::ProtoPortIn { set }
                | Match::AddrProtoPortIn { set, .. } => set == name,
                _ => false,
            }) || matches!(&r.verdict, Some(Verdict::Jump(c)) if c == name)
                || matches!(&r.verdict, Some(Verdict::Dispatch { map, .. }) if map == name)
                || matches!(&r.counter, Counter::Named(c) if c == name)
        };
        rs.chains.values().flat_map(|c| &c.rules).any(in_rule)
            || rs
                .maps
                .values()
                .any(|m| m.entries.values().any(|c| c == name))
    }

    /// Whether everything `rules` refers to exists (the kernel refuses a rule otherwise).
    fn check_refs(rs: &Ruleset, rules: &[Rule]) {
        for r in rules {
            for m in &r.matches {
                if let Match::AddrIn { set, .. }
                | Match::ProtoPortIn { set }
                | Match::AddrProtoPortIn { set, .. } = m
                {
                    assert!(
                        rs.sets.contains_key(set),
                        "rule refers to missing set {set}"
                    );
                }
            }
            match &r.verdict {
                Some(Verdict::Jump(c)) => assert!(rs.chains.contains_key(c), "jump to missing {c}"),
                Some(Verdict::Dispatch { map, .. }) => assert!(rs.maps.contains_key(map)),
                _ => {}
            }
            if let Counter::Named(c) = &r.counter {
                assert!(rs.counters.contains(c), "missing counter {c}");
            }
        }
    }

    /// Applies one change as the kernel would, refusing what it would refuse.
    fn apply(rs: &mut Ruleset, c: &Change) {
        match c.clone() {
            Change::AddCounter(n) => assert!(rs.counters.insert(n)),
            Change::AddSet(s) => assert!(rs.sets.insert(s.name.clone(), s).is_none()),
            Change::AddMap { name, family } => {
                let m = VerdictMap {
                    name: name.clone(),
                    family,
                    entries: Default::default(),
                };
                assert!(rs.maps.insert(name, m).is_none());
            }
            Change::AddChain(ch) => {
                assert!(!rs.chains.contains_key(&ch.name));
                // Added chains may jump to each other only in creation order.
                check_refs(rs, &ch.rules);
                rs.chains.insert(ch.name.clone(), ch);
            }
            Change::SetMapEntry { map, addr, chain } => {
                assert!(rs.chains.contains_key(&chain), "entry to missing {chain}");
                rs.maps.get_mut(&map).unwrap().entries.insert(addr, chain);
            }
            Change::DeleteElements { set, elements } => {
                let s = rs.sets.get_mut(&set).unwrap();
                for e in elements {
                    assert!(s.elements.remove(&e), "{e:?} not in {set}");
                }
            }
            Change::WriteChain(ch) => {
                check_refs(rs, &ch.rules);
                rs.chains.get_mut(&ch.name).expect("exists").rules = ch.rules;
            }
            Change::AddElements { set, elements } => {
                let s = rs.sets.get_mut(&set).unwrap();
                for e in elements {
                    assert!(s.elements.insert(e), "{e:?} already in {set}");
                }
            }
            Change::DeleteMapEntry { map, addr } => {
                assert!(rs
                    .maps
                    .get_mut(&map)
                    .unwrap()
                    .entries
                    .remove(&addr)
                    .is_some())
            }
            Change::DeleteChain(n) => {
                assert!(!referenced(rs, &n), "chain {n} deleted while referenced");
                assert!(rs.chains.remove(&n).is_some());
            }
            Change::DeleteMap(n) => {
                assert!(!referenced(rs, &n), "map {n} deleted while referenced");
                assert!(rs.maps.remove(&n).is_some());
            }
            Change::DeleteSet(n) => {
                assert!(!referenced(rs, &n), "set {n} deleted while referenced");
                assert!(rs.sets.remove(&n).is_some());
            }
            Change::DeleteCounter(n) => {
                assert!(!referenced(rs, &n), "counter {n} deleted while referenced");
                assert!(rs.counters.remove(&n));
            }
        }
    }

    /// Every probe (both ports, TCP and UDP, both families, every pair of `pods`) of a
    /// one-node world.
    fn allowed(w: &World, pods: &[String]) -> Vec<bool> {
        let mut out = Vec::new();
        for (port, proto) in [(80, Tcp), (81, Tcp), (80, Udp)] {
            for v6 in [false, true] {
                for from in pods {
                    for to in pods {
                        out.push(from == to || w.reaches(from, to, port, proto, v6));
                    }
                }
            }
        }
        out
    }

    fn subset(a: &[bool], b: &[bool]) -> bool {
        a.iter().zip(b).all(|(x, y)| !x || *y)
    }

    /// Moves `old` to `new` phase by phase, checking at each boundary that nothing passes that
    /// neither passes, that after `restrict` only what both pass passes (every closing done,
    /// no opening yet), and that the end is exactly `new` (and a second diff is empty).
    fn transition(old: &World, new: &World) -> Plan {
        let (want, have) = (&new.nodes["n1"].ruleset, &old.nodes["n1"].ruleset);
        let plan = diff(want, have);
        // The pods of both (a pod that comes or goes is checked by the plan's own asserts).
        let pods: Vec<String> = all_pods()
            .into_iter()
            .filter(|k| {
                [old, new]
                    .iter()
                    .all(|w| w.pods.iter().any(|p| &p.key() == k))
            })
            .collect();
        let (before, after) = (allowed(old, &pods), allowed(new, &pods));
        let union: Vec<bool> = before.iter().zip(&after).map(|(a, b)| *a || *b).collect();
        let both: Vec<bool> = before.iter().zip(&after).map(|(a, b)| *a && *b).collect();
        let mut mid = World::new(Layout::OneNode);
        mid.pods = new.pods.clone();
        mid.nodes = old.nodes.clone();
        for (i, phase) in plan.phases().into_iter().enumerate() {
            let rs = &mut mid.nodes.get_mut("n1").unwrap().ruleset;
            for c in phase {
                apply(rs, c);
            }
            let now = allowed(&mid, &pods);
            assert!(subset(&now, &union), "phase {i} opened a window");
            if i == 2 {
                assert!(
                    subset(&now, &both),
                    "after restrict, only what both allow passes"
                );
            }
        }
        assert_eq!(&mid.nodes["n1"].ruleset, want);
        assert!(diff(want, &mid.nodes["n1"].ruleset).is_empty());
        plan
    }

    fn deny_all() -> crate::Policy {
        policy(
            "x",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        )
    }

    fn from_ns(name: &str, from: &str, port: u16) -> crate::Policy {
        policy(
            "x",
            name,
            json!({"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {"ns": from}}}], "ports": [{"port": port}]}]}),
        )
    }

    #[test]
    fn nothing_changed_is_no_change() {
        let w = World::new(Layout::OneNode)
            .with(deny_all())
            .with(from_ns("p", "y", 80));
        let rs = &w.nodes["n1"].ruleset;
        assert!(diff(rs, rs).is_empty());
    }

    #[test]
    fn from_an_empty_table_everything_is_created_in_dependency_order() {
        let w = World::new(Layout::OneNode).with(from_ns("p", "y", 80));
        let plan = diff(&w.nodes["n1"].ruleset, &Ruleset::default());
        assert!(plan.restrict.is_empty() && plan.open.is_empty() && plan.delete.is_empty());
        let kinds: Vec<&str> = plan
            .create
            .iter()
            .map(|c| match c {
                Change::AddCounter(_) => "counter",
                Change::AddSet(_) => "set",
                Change::AddMap { .. } => "map",
                Change::AddChain(c) if c.role == ChainRole::Policy => "policy",
                Change::AddChain(c) if c.role == ChainRole::Pod => "pod",
                Change::AddChain(_) => "dispatch",
                other => panic!("{other:?}"),
            })
            .collect();
        let mut sorted = kinds.clone();
        let rank = ["counter", "set", "map", "policy", "pod", "dispatch"];
        sorted.sort_by_key(|k| rank.iter().position(|r| r == k));
        assert_eq!(kinds, sorted);
        assert_eq!(plan.isolate.len(), 2, "x/a's two addresses");
        transition(&World::new(Layout::OneNode), &w);
    }

    #[test]
    fn a_new_deny_is_in_place_before_anything_opens() {
        let old = World::new(Layout::OneNode);
        let new = old.clone_world().with(deny_all());
        let plan = transition(&old, &new);
        assert!(plan.open.is_empty() && plan.restrict.is_empty());
        assert_eq!(
            plan.isolate.len(),
            9 * 2 / 3 * 2,
            "x's 3 pods, 2 addresses, 2 ways"
        );
        // And back: the entries go last, then the chains.
        let plan = transition(&new, &old);
        assert_eq!(plan.unisolate.len(), 12);
        assert!(plan
            .delete
            .iter()
            .any(|c| matches!(c, Change::DeleteChain(n) if n == "pod/x/a/ingress")));
    }

    #[test]
    fn changed_policies_close_before_they_open() {
        let a = World::new(Layout::OneNode).with(from_ns("p", "y", 81));
        let b = a.clone_world().with(from_ns("p", "z", 80));
        let plan = transition(&a, &b);
        assert!(!plan.restrict.is_empty() && !plan.open.is_empty());
        // A rule added beside a kept one: its new sets exist before the chain uses them.
        let two_rules = a.clone_world().with(policy(
            "x",
            "p",
            json!({"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}], "ports": [{"port": 81}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}], "ports": [{"port": 80}]}]}),
        ));
        transition(&a, &two_rules);
        transition(&two_rules, &b);
        // Moving isolation from x/a to x/b (a selector change) and adding a second policy.
        let c = a
            .clone_world()
            .with(policy("x", "p", json!({"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [{"podSelector": {}}]}]})))
            .with(from_ns("q", "z", 81));
        transition(&a, &c);
        transition(&c, &a);
        transition(&b, &c);
        let d = c.clone_world().with(deny_all());
        transition(&c, &d);
        transition(&d, &a);
    }

    #[test]
    fn label_changes_and_pod_churn_only_touch_elements_and_entries() {
        let a = World::new(Layout::OneNode)
            .with(from_ns("p", "y", 80))
            .with(policy(
                "x",
                "from-b2",
                json!({"podSelector": {"matchLabels": {"pod": "c"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod2": "updated"}}}]}]}),
            ));
        let mut b = a.clone_world();
        b.pod_mut("x/b")
            .labels
            .as_mut()
            .unwrap()
            .insert("pod2".into(), "updated".into());
        b.namespaces[2].labels.insert("ns".into(), "y".into());
        b.recompile();
        let plan = transition(&a, &b);
        let writes = plan
            .changes()
            .filter(|c| {
                matches!(
                    c,
                    Change::WriteChain(_) | Change::AddChain(_) | Change::DeleteChain(_)
                )
            })
            .count();
        assert_eq!(writes, 0, "{plan:#?}");
        transition(&b, &a);
        // x/c goes, x/d comes with x/c's addresses: its entries are replaced in one step.
        let mut c = b.clone_world();
        let d = c.pod_mut("x/c");
        d.name = "d".into();
        c.recompile();
        let plan = transition(&b, &c);
        assert!(plan.isolate.iter().all(
            |ch| matches!(ch, Change::SetMapEntry { chain, .. } if chain.starts_with("pod/x/d/"))
        ));
        assert!(
            plan.unisolate.is_empty(),
            "the addresses never stop being isolated"
        );
    }
}
