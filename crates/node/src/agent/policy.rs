//! The NetworkPolicy controller: the Pods, Namespaces and NetworkPolicies the agent watches
//! ([`super::policy_cache`]) compiled by [`policy`] into the table `inet podwire-policy`, kept
//! by diffing against the table read back (never a flush: packets see the old table or the
//! new one).
//!
//! A pass: (on a resync, repair the table's structure) → take the pods the bridge plugin
//! announced at their CNI ADD (denied until classified) → compile → read → diff → apply →
//! mark those pods classified. The fast path is the same pass run alone when the plugin's
//! announcement is heard, so a new pod gets its verdicts within milliseconds of its ADD and is
//! never open before. Nothing runs before every kind's first list is in.

use super::log;
use super::policy_cache::{pods_for_compile, Announced, Learned, PolicyObjects};
use cni::Result;
use policy::{Compiled, Options, Plan, Ruleset, ThisNode};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What the controller needs of the kernel (the table); the kernel layer implements it, tests
/// give a fake.
pub trait Table {
    /// The table, its base chains and hooks, the unclassified sets: created or repaired.
    fn ensure_structure(&self) -> Result<()>;
    fn read(&self) -> Result<Ruleset>;
    fn apply(&self, plan: &Plan) -> Result<()>;
    /// Pods the bridge plugin announced at ADD and the agent has not classified yet.
    fn unclassified(&self) -> Result<Vec<Announced>>;
    /// Their addresses leave the unclassified sets: the table's verdicts now apply to them.
    fn mark_classified(&self, addrs: &[IpAddr]) -> Result<()>;
}

/// Where this node's own addresses come from (pod <-> own node is always allowed).
pub trait NodeAddresses {
    fn addresses(&self) -> Result<Vec<IpAddr>>;
}

/// Every address of the agent's network namespace: the node's InternalIPs, the pod bridge's
/// gateways (kubelet's probes come from them), the overlay's.
pub struct KernelAddresses(pub kernel::Netlink);

impl NodeAddresses for KernelAddresses {
    fn addresses(&self) -> Result<Vec<IpAddr>> {
        let mut out: Vec<IpAddr> = self
            .0
            .addresses(None, None)
            .map_err(|e| cni::Error::io(e.to_string()))?
            .into_iter()
            .map(|a| a.net.addr())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// What one pass did, for the log and the tests.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub changes: usize,
    pub classified: Vec<IpAddr>,
    pub new_problems: Vec<String>,
    pub failed: Vec<String>,
}

pub struct PolicyController<T: Table, A: NodeAddresses> {
    table: T,
    addresses: A,
    opts: Options,
    learned: Learned,
    /// Problems already logged (each once, while it lasts).
    logged: BTreeSet<String>,
    /// The structure was ensured once (then again on every resync).
    structured: bool,
    /// The last compile, for `node show`.
    pub last: Option<Compiled>,
    /// Where what is in force is written for `podwirectl node show` (None: nowhere).
    pub state_file: Option<std::path::PathBuf>,
    /// What was written there last (rewritten only when it changes).
    written: Option<String>,
    /// The table's verdict maps were looked at for addresses a previous run learned.
    recovered: bool,
    /// The table holds `last`'s ruleset (its plan was applied): no need to read it back.
    in_sync: bool,
}

impl<T: Table, A: NodeAddresses> PolicyController<T, A> {
    pub fn new(table: T, addresses: A, opts: Options) -> Self {
        PolicyController {
            table,
            addresses,
            opts,
            learned: Learned::default(),
            logged: BTreeSet::new(),
            structured: false,
            last: None,
            state_file: None,
            written: None,
            recovered: false,
            in_sync: false,
        }
    }

    /// Writes what is in force (if it changed) for `podwirectl node show`.
    fn write_state(&mut self, node: &str, compiled: &Compiled, problems: &BTreeSet<String>) {
        let Some(path) = &self.state_file else {
            return;
        };
        let text = state_json(node, compiled, problems).to_string();
        if self.written.as_deref() == Some(text.as_str()) {
            return;
        }
        match crate::files::write_atomic(path, text.as_bytes(), 0o644) {
            Ok(_) => self.written = Some(text),
            Err(e) => log(&format!("policy: write {}: {}", path.display(), e.msg)),
        }
    }

    /// One pass. `objects` must be ready (every kind listed).
    pub fn reconcile(&mut self, node: &str, objects: &mut PolicyObjects, resync: bool) -> Outcome {
        let mut out = Outcome::default();
        let mut fail = |what: &str, e: cni::Error| out.failed.push(format!("{what}: {}", e.msg));
        if resync || !self.structured {
            match self.table.ensure_structure() {
                Ok(()) => self.structured = true,
                Err(e) => {
                    // Without its structure nothing can be applied: the pods announced stay
                    // denied, the next pass tries again.
                    fail("ensure the table", e);
                    return out;
                }
            }
        }
        for (key, uid) in objects.take_gone() {
            self.learned.forget(&key, &uid);
        }
        let announced = match self.table.unclassified() {
            Ok(a) => a,
            Err(e) => {
                fail("read the unclassified pods", e);
                Vec::new()
            }
        };
        self.learned.learn(&announced);
        self.learned.settle(&objects.pods);
        let own = match self.addresses.addresses() {
            Ok(a) => a,
            Err(e) => {
                fail("read this node's addresses", e);
                return out;
            }
        };
        // The kernel is read at start-up, on a resync and after a failed apply (a whole read
        // costs hundreds of ms at 5,000 pods); between, the last applied ruleset is what it holds.
        let read;
        let have: &Ruleset = match self.last.as_ref().filter(|_| self.in_sync && !resync) {
            Some(c) => &c.ruleset,
            None => match self.table.read() {
                Ok(h) => {
                    read = h;
                    &read
                }
                Err(e) => {
                    fail("read the table", e);
                    return out;
                }
            },
        };
        if !self.recovered {
            // A restarted agent has forgotten what ADDs taught it: what the table isolates for
            // a pod of this node whose podIPs are not posted yet is taken back from it.
            self.learned.learn(&recover(have, objects, node));
            self.recovered = true;
        }
        let pods = pods_for_compile(&objects.pods, &self.learned, node);
        let namespaces: Vec<_> = objects.namespaces.values().cloned().collect();
        let policies: Vec<_> = objects.policies.values().cloned().collect();
        let this = ThisNode {
            name: node,
            addresses: &own,
        };
        let compiled = policy::compile(&pods, &namespaces, &policies, &this, &self.opts);
        let plan = policy::diff(&compiled.ruleset, have);
        out.changes = plan.changes().count();
        if !plan.is_empty() {
            if let Err(e) = self.table.apply(&plan) {
                // The plan's order keeps a failed half closed; the announced pods stay denied.
                self.in_sync = false;
                fail("apply", e);
                return out;
            }
        }
        self.in_sync = true;
        let addrs: Vec<IpAddr> = announced.iter().map(|a| a.addr).collect();
        if !addrs.is_empty() {
            match self.table.mark_classified(&addrs) {
                Ok(()) => out.classified = addrs,
                Err(e) => fail("mark classified", e),
            }
        }
        let mut problems = objects.problems();
        problems.extend(compiled.problems.iter().map(|p| p.to_string()));
        out.new_problems = problems.difference(&self.logged).cloned().collect();
        self.write_state(node, &compiled, &problems);
        self.logged = problems;
        self.last = Some(compiled);
        out
    }

    pub fn learned(&self) -> &Learned {
        &self.learned
    }
}

/// Addresses the table maps to the chain of a pod of this node whose Pod object carries no
/// podIPs yet: what a previous run of the agent learned from its ADD.
fn recover(have: &Ruleset, objects: &PolicyObjects, node: &str) -> Vec<Announced> {
    let mut out = Vec::new();
    for p in objects.pods.values() {
        if p.node.as_deref() != Some(node) || !p.ips.is_empty() || p.terminated {
            continue;
        }
        let key = p.key();
        for d in policy::Direction::BOTH {
            let chain = policy::names::pod_chain(&key, d);
            for m in have.maps.values() {
                for (addr, c) in &m.entries {
                    if *c == chain && !out.iter().any(|a: &Announced| a.addr == *addr) {
                        out.push(Announced {
                            addr: *addr,
                            namespace: p.namespace.clone(),
                            name: p.name.clone(),
                            uid: p.uid.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The name of the file, in the agent's state directory, that says what policy is in force.
pub const STATE_FILE: &str = "policy.json";

/// What is in force on this node, as `podwirectl node show` reads it (crates/inspect parses
/// it: keep the two in step): every policy isolating a local pod with those pods per
/// direction, every local pod with its addresses and isolating policies (null: not isolated),
/// and the problems (each fails closed).
pub fn state_json(node: &str, c: &Compiled, problems: &BTreeSet<String>) -> serde_json::Value {
    use policy::Direction;
    use std::collections::BTreeMap;
    let mut policies: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for p in &c.pods {
        for d in Direction::BOTH {
            for k in p.isolation(d).into_iter().flatten() {
                policies
                    .entry(k.as_str())
                    .or_default()
                    .entry(d.as_str())
                    .or_default()
                    .push(&p.key);
            }
        }
    }
    serde_json::json!({
        "node": node,
        "policies": policies.iter().map(|(k, dirs)| serde_json::json!({
            "policy": k,
            "ingress": dirs.get("ingress").cloned().unwrap_or_default(),
            "egress": dirs.get("egress").cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "pods": c.pods.iter().map(|p| serde_json::json!({
            "pod": p.key,
            "addresses": p.addresses,
            "classified": p.classified,
            "ingress": p.ingress,
            "egress": p.egress,
        })).collect::<Vec<_>>(),
        "problems": problems,
    })
}

/// Logs what a pass did.
pub fn report(o: &Outcome, took: Duration, objects: &PolicyObjects, why: &str) {
    if o.changes > 0 || !o.classified.is_empty() {
        log(&format!(
            "policy ({why}): {} pods, {} policies: {} changes, {} addresses classified in {:.1} ms",
            objects.pods.len(),
            objects.policies.len(),
            o.changes,
            o.classified.len(),
            took.as_secs_f64() * 1e3
        ));
    }
    for p in &o.new_problems {
        log(&format!("policy problem (fails closed): {p}"));
    }
    for f in &o.failed {
        log(&format!("policy: failed (retried on the next pass): {f}"));
    }
}

/// The controller as the agent's loop runs it.
pub struct Policies {
    pub controller: PolicyController<Box<dyn Table>, Box<dyn NodeAddresses>>,
    /// What is in force and what was dropped, for /metrics: the gauges and where the drop
    /// counters are read from.
    pub metrics: Option<(super::policy_metrics::PolicyMetrics, Box<dyn DropCounters>)>,
}

/// The table's named counters (drops per pod and direction).
pub trait DropCounters {
    fn counters(&self) -> Result<std::collections::BTreeMap<String, (u64, u64)>>;
}

impl<T: Table + ?Sized> Table for Box<T> {
    fn ensure_structure(&self) -> Result<()> {
        (**self).ensure_structure()
    }
    fn read(&self) -> Result<Ruleset> {
        (**self).read()
    }
    fn apply(&self, plan: &Plan) -> Result<()> {
        (**self).apply(plan)
    }
    fn unclassified(&self) -> Result<Vec<Announced>> {
        (**self).unclassified()
    }
    fn mark_classified(&self, addrs: &[IpAddr]) -> Result<()> {
        (**self).mark_classified(addrs)
    }
}

impl<A: NodeAddresses + ?Sized> NodeAddresses for Box<A> {
    fn addresses(&self) -> Result<Vec<IpAddr>> {
        (**self).addresses()
    }
}

impl Policies {
    /// One pass, logged; `why` says what woke it.
    pub fn pass(&mut self, node: &str, resync: bool, objects: &mut PolicyObjects, why: &str) {
        let start = Instant::now();
        let o = self.controller.reconcile(node, objects, resync);
        report(&o, start.elapsed(), objects, why);
        if let (Some((m, table)), Some(last)) = (&self.metrics, &self.controller.last) {
            m.update(last, &table.counters().unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Namespace as K8sNamespace, Pod as K8sPod, PodSpec};
    use kube::api::DynamicObject;
    use kube::runtime::watcher::Event;
    use policy::Direction;
    use serde_json::json;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// The table in memory: applying a plan makes `have` what was wanted (the kernel layer's
    /// job), so a second pass must find nothing to do.
    #[derive(Clone, Default)]
    struct Fake(Rc<RefCell<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        have: Ruleset,
        unclassified: Vec<Announced>,
        ensured: usize,
        applied: usize,
        reads: usize,
        fail_apply: bool,
    }

    impl Table for Fake {
        fn ensure_structure(&self) -> Result<()> {
            self.0.borrow_mut().ensured += 1;
            Ok(())
        }
        fn read(&self) -> Result<Ruleset> {
            self.0.borrow_mut().reads += 1;
            Ok(self.0.borrow().have.clone())
        }
        fn apply(&self, _plan: &Plan) -> Result<()> {
            let mut s = self.0.borrow_mut();
            if s.fail_apply {
                return Err(cni::Error::io("EPERM"));
            }
            s.applied += 1;
            Ok(())
        }
        fn unclassified(&self) -> Result<Vec<Announced>> {
            Ok(self.0.borrow().unclassified.clone())
        }
        fn mark_classified(&self, addrs: &[IpAddr]) -> Result<()> {
            self.0
                .borrow_mut()
                .unclassified
                .retain(|u| !addrs.contains(&u.addr));
            Ok(())
        }
    }

    struct Addrs;
    impl NodeAddresses for Addrs {
        fn addresses(&self) -> Result<Vec<IpAddr>> {
            Ok(vec!["192.168.1.1".parse().unwrap()])
        }
    }

    fn ready_objects(pods: Vec<K8sPod>, policies: Vec<serde_json::Value>) -> PolicyObjects {
        let mut o = PolicyObjects::default();
        o.pod_event(Event::Init);
        for p in pods {
            o.pod_event(Event::InitApply(p));
        }
        o.pod_event(Event::InitDone);
        o.namespace_event(Event::Init);
        let mut ns = K8sNamespace::default();
        ns.metadata.name = Some("x".into());
        o.namespace_event(Event::InitApply(ns));
        o.namespace_event(Event::InitDone);
        o.policy_event(Event::Init);
        for p in policies {
            o.policy_event(Event::InitApply(
                serde_json::from_value::<DynamicObject>(p).unwrap(),
            ));
        }
        o.policy_event(Event::InitDone);
        o
    }

    fn pod(name: &str, uid: &str) -> K8sPod {
        let mut p = K8sPod::default();
        p.metadata.namespace = Some("x".into());
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(uid.into());
        p.metadata.labels = Some([("app".to_string(), name.to_string())].into());
        p.spec = Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        });
        p
    }

    fn deny_all_ingress() -> serde_json::Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"namespace": "x", "name": "deny"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    }

    fn announced(name: &str, uid: &str, addr: &str) -> Announced {
        Announced {
            addr: addr.parse().unwrap(),
            namespace: "x".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn controller(fake: &Fake) -> PolicyController<Fake, Addrs> {
        PolicyController::new(fake.clone(), Addrs, Options::default())
    }

    /// What the compiler wants for these inputs (the fake's `have` after an apply).
    fn converge(c: &mut PolicyController<Fake, Addrs>, fake: &Fake, o: &mut PolicyObjects) {
        let first = c.reconcile("n1", o, false);
        assert!(first.failed.is_empty(), "{first:?}");
        let want = c.last.as_ref().unwrap().ruleset.clone();
        fake.0.borrow_mut().have = want;
    }

    #[test]
    fn an_announced_pod_gets_its_verdicts_before_it_is_marked_classified() {
        let fake = Fake::default();
        let mut c = controller(&fake);
        let mut o = ready_objects(vec![pod("a", "u1")], vec![deny_all_ingress()]);
        fake.0.borrow_mut().unclassified = vec![announced("a", "u1", "10.246.1.5")];
        let out = c.reconcile("n1", &mut o, false);
        assert!(out.changes > 0);
        assert_eq!(
            out.classified,
            vec!["10.246.1.5".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(fake.0.borrow().applied, 1);
        assert!(fake.0.borrow().unclassified.is_empty());
        let compiled = c.last.as_ref().unwrap();
        let state = compiled.pods.iter().find(|p| p.key == "x/a").unwrap();
        assert!(state.classified, "the object was in the cache");
        assert_eq!(
            state.isolation(Direction::Ingress),
            Some(&vec!["x/deny".to_string()])
        );
        let map = &compiled.ruleset.maps["ingress-v4"];
        assert!(map.entries.contains_key(&"10.246.1.5".parse().unwrap()));
        // Its addresses outlive the unclassified element until status.podIPs carries them.
        fake.0.borrow_mut().have = compiled.ruleset.clone();
        let again = c.reconcile("n1", &mut o, false);
        assert_eq!(again.changes, 0, "nothing to do: {again:?}");
        assert!(c.last.as_ref().unwrap().ruleset.maps["ingress-v4"]
            .entries
            .contains_key(&"10.246.1.5".parse().unwrap()));
    }

    #[test]
    fn a_restarted_agent_keeps_isolating_a_pod_whose_ips_are_not_posted_yet() {
        let fake = Fake::default();
        let mut first = controller(&fake);
        let mut o = ready_objects(vec![pod("a", "u1")], vec![deny_all_ingress()]);
        fake.0.borrow_mut().unclassified = vec![announced("a", "u1", "10.246.1.5")];
        first.reconcile("n1", &mut o, false);
        fake.0.borrow_mut().have = first.last.as_ref().unwrap().ruleset.clone();
        // The agent restarts: the element was marked classified, podIPs still not posted.
        let mut second = controller(&fake);
        let mut o = ready_objects(vec![pod("a", "u1")], vec![deny_all_ingress()]);
        let out = second.reconcile("n1", &mut o, false);
        assert_eq!(out.changes, 0, "nothing unisolated: {out:?}");
        let rs = &second.last.as_ref().unwrap().ruleset;
        assert!(rs.maps["ingress-v4"]
            .entries
            .contains_key(&"10.246.1.5".parse().unwrap()));
    }

    #[test]
    fn a_failed_apply_leaves_the_pod_unclassified() {
        let fake = Fake::default();
        fake.0.borrow_mut().fail_apply = true;
        let mut c = controller(&fake);
        let mut o = ready_objects(vec![], vec![deny_all_ingress()]);
        fake.0.borrow_mut().unclassified = vec![announced("a", "u1", "10.246.1.5")];
        let out = c.reconcile("n1", &mut o, false);
        assert_eq!(out.failed.len(), 1, "{out:?}");
        assert!(out.classified.is_empty());
        assert_eq!(fake.0.borrow().unclassified.len(), 1, "still denied");
    }

    #[test]
    fn a_pod_not_in_the_cache_is_compiled_unclassified_and_denied() {
        let fake = Fake::default();
        let mut c = controller(&fake);
        let mut o = ready_objects(vec![], vec![deny_all_ingress()]);
        fake.0.borrow_mut().unclassified = vec![announced("late", "u9", "10.246.1.9")];
        c.reconcile("n1", &mut o, false);
        let compiled = c.last.as_ref().unwrap();
        let s = compiled.pods.iter().find(|p| p.key == "x/late").unwrap();
        assert!(!s.classified);
        assert!(s.ingress.is_some(), "isolated: {s:?}");
    }

    #[test]
    fn a_resync_repairs_the_structure_and_a_quiet_pass_writes_nothing() {
        let fake = Fake::default();
        let mut c = controller(&fake);
        let mut o = ready_objects(vec![], vec![deny_all_ingress()]);
        converge(&mut c, &fake, &mut o);
        assert_eq!(fake.0.borrow().ensured, 1);
        let applied = fake.0.borrow().applied;
        let quiet = c.reconcile("n1", &mut o, false);
        assert_eq!(quiet.changes, 0);
        assert_eq!(fake.0.borrow().applied, applied, "no write");
        assert_eq!(fake.0.borrow().ensured, 1, "not on every pass");
        c.reconcile("n1", &mut o, true);
        assert_eq!(fake.0.borrow().ensured, 2);
    }

    #[test]
    fn the_kernel_is_read_only_at_start_on_resync_and_after_a_failed_apply() {
        let fake = Fake::default();
        let mut c = controller(&fake);
        let mut o = ready_objects(vec![], vec![deny_all_ingress()]);
        converge(&mut c, &fake, &mut o);
        assert_eq!(fake.0.borrow().reads, 1);
        c.reconcile("n1", &mut o, false);
        assert_eq!(fake.0.borrow().reads, 1, "diffed against what it applied");
        // Someone flushed the table: the resync reads it and puts everything back.
        fake.0.borrow_mut().have = Ruleset::default();
        let out = c.reconcile("n1", &mut o, true);
        assert_eq!(fake.0.borrow().reads, 2);
        assert!(out.changes > 0, "repaired: {out:?}");
        fake.0.borrow_mut().fail_apply = true;
        fake.0.borrow_mut().have = Ruleset::default();
        c.reconcile("n1", &mut o, true);
        fake.0.borrow_mut().fail_apply = false;
        c.reconcile("n1", &mut o, false);
        assert_eq!(fake.0.borrow().reads, 4, "read again after the failure");
    }

    #[test]
    fn problems_are_logged_once() {
        let fake = Fake::default();
        let mut c = controller(&fake);
        let bad = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"namespace": "x", "name": "bad"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"ipBlock": {"cidr": "nonsense"}}]}]}});
        let mut o = ready_objects(vec![], vec![bad]);
        let first = c.reconcile("n1", &mut o, false);
        assert!(!first.new_problems.is_empty(), "{first:?}");
        assert!(first.new_problems.iter().all(|p| p.contains("x/bad")));
        let second = c.reconcile("n1", &mut o, false);
        assert!(second.new_problems.is_empty());
    }

    #[test]
    fn what_is_in_force_is_written_for_node_show_when_it_changes() {
        let dir = std::env::temp_dir().join(testkit::unique("pwps"));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = Fake::default();
        let mut c = controller(&fake);
        c.state_file = Some(dir.join(STATE_FILE));
        let mut o = ready_objects(vec![pod("a", "u1")], vec![deny_all_ingress()]);
        fake.0.borrow_mut().unclassified = vec![announced("a", "u1", "10.246.1.5")];
        c.reconcile("n1", &mut o, false);
        let read = || -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(STATE_FILE)).unwrap()).unwrap()
        };
        let v = read();
        assert_eq!(v["node"], "n1");
        assert_eq!(v["policies"][0]["policy"], "x/deny");
        assert_eq!(v["policies"][0]["ingress"], json!(["x/a"]));
        assert_eq!(v["pods"][0]["addresses"], json!(["10.246.1.5"]));
        assert_eq!(v["pods"][0]["egress"], serde_json::Value::Null);
        std::fs::write(dir.join(STATE_FILE), "touched").unwrap();
        c.reconcile("n1", &mut o, false);
        assert_eq!(
            std::fs::read_to_string(dir.join(STATE_FILE)).unwrap(),
            "touched",
            "unchanged: not rewritten"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_node_itself_is_in_the_node_set() {
        let fake = Fake::default();
        let mut c = controller(&fake);
        let mut o = ready_objects(vec![], vec![]);
        c.reconcile("n1", &mut o, false);
        let rs = &c.last.as_ref().unwrap().ruleset;
        assert_eq!(rs.sets["node-v4"].elements.len(), 1);
    }
}
