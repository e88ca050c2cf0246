//! What the NetworkPolicy controller knows, pure: the Pods, Namespaces and NetworkPolicies the
//! watchers delivered (converted at once to the small [`policy`] model, so 5,000 pods cost
//! little), and the pod addresses this node learned from CNI ADDs ([`Learned`]).
//!
//! - Each kind is a [`Mirror`]: nothing is ready before its first full list is in, a re-list
//!   replaces the whole map (no object deleted during a watch gap survives), and an event that
//!   changes nothing policy sees (a status heartbeat) is not a change.
//! - What cannot be understood is kept as the compiler's [`Problem`]s, per object, so they are
//!   logged once when they appear, never each pass.
//! - [`Learned`]: a pod's addresses as its CNI ADD announced them (the unclassified elements the
//!   plugin wrote), kept until the Pod object's `status.podIPs` carries them: kubelet posts
//!   them seconds after the ADD, and a pod whose addresses were forgotten meanwhile would lose
//!   its isolation. [`pods_for_compile`] merges both into the compiler's input.

use k8s_openapi::api::core::v1::{Namespace as K8sNamespace, Pod as K8sPod};
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use kube::Resource;
use policy::{Namespace, Pod, Policy, Problem};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One kind's objects as policy sees them, keyed `namespace/name` (`name` for namespaces).
#[derive(Debug)]
pub struct Mirror<T> {
    items: BTreeMap<String, Entry<T>>,
    /// Filled between `Init` and `InitDone` (a list in progress), then swapped in whole.
    listing: Option<BTreeMap<String, Entry<T>>>,
    /// A full list has been received.
    pub ready: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct Entry<T> {
    /// None: the object could not be used at all (its problems say why).
    value: Option<T>,
    problems: Vec<Problem>,
}

impl<T> Default for Mirror<T> {
    fn default() -> Self {
        Mirror {
            items: BTreeMap::new(),
            listing: None,
            ready: false,
        }
    }
}

/// `namespace/name` of an object (`name` alone for a cluster-scoped one).
pub fn key_of<K: Resource>(o: &K) -> String {
    let m = o.meta();
    let name = m.name.clone().unwrap_or_default();
    match m.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name,
    }
}

impl<T: PartialEq + Clone> Mirror<T> {
    /// Applies one watcher event, converting with `convert`; true when what policy sees
    /// changed (or a list completed). `deleted` is told the key and uid of each object gone.
    pub fn apply<K: Resource>(
        &mut self,
        e: Event<K>,
        convert: impl Fn(&K, &mut Vec<Problem>) -> Option<T>,
        mut deleted: impl FnMut(&str, &str),
    ) -> bool {
        let entry = |o: &K| {
            let mut problems = Vec::new();
            let value = convert(o, &mut problems);
            (key_of(o), Entry { value, problems })
        };
        match e {
            Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(o) => {
                let (k, v) = entry(&o);
                self.listing.get_or_insert_with(BTreeMap::new).insert(k, v);
                false
            }
            Event::InitDone => {
                let new = self.listing.take().unwrap_or_default();
                for k in self.items.keys().filter(|k| !new.contains_key(*k)) {
                    deleted(k, "");
                }
                self.items = new;
                self.ready = true;
                true
            }
            Event::Apply(o) => {
                let (k, v) = entry(&o);
                self.items.get(&k) != Some(&v) && {
                    self.items.insert(k, v);
                    true
                }
            }
            Event::Delete(o) => {
                let k = key_of(&o);
                deleted(&k, o.meta().uid.as_deref().unwrap_or(""));
                self.items.remove(&k).is_some()
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&T> {
        self.items.get(key).and_then(|e| e.value.as_ref())
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.values().filter_map(|e| e.value.as_ref())
    }

    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.items.values().flat_map(|e| &e.problems)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A pod this node's bridge plugin announced at its CNI ADD (from `CNI_ARGS`), denied until
/// the agent has classified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announced {
    pub addr: IpAddr,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Addresses learned from CNI ADDs, by pod key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    pods: BTreeMap<String, LearnedPod>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LearnedPod {
    uid: String,
    addrs: BTreeSet<IpAddr>,
}

impl Learned {
    /// Takes what ADDs announced. The newest ADD owns an address: another pod that had it (its
    /// sandbox is gone, IPAM gave the address again) loses it. A new uid for a key (the pod
    /// was recreated under its name) starts over.
    pub fn learn(&mut self, announced: &[Announced]) {
        for a in announced {
            for (k, p) in self.pods.iter_mut() {
                if *k != format!("{}/{}", a.namespace, a.name) || p.uid != a.uid {
                    p.addrs.remove(&a.addr);
                }
            }
            let p = self
                .pods
                .entry(format!("{}/{}", a.namespace, a.name))
                .or_default();
            if p.uid != a.uid {
                p.uid = a.uid.clone();
                p.addrs.clear();
            }
            p.addrs.insert(a.addr);
        }
        self.pods.retain(|_, p| !p.addrs.is_empty());
    }

    /// A Pod object was deleted (uid "" : it was missing from a re-list): what its ADD taught
    /// goes with it, unless it belongs to a newer pod of the same name.
    pub fn forget(&mut self, key: &str, uid: &str) {
        if self
            .pods
            .get(key)
            .is_some_and(|p| uid.is_empty() || p.uid.is_empty() || p.uid == uid)
        {
            self.pods.remove(key);
        }
    }

    /// Drops what the API now says itself: the pod's `status.podIPs` carry every learned
    /// address, for the same pod.
    pub fn settle(&mut self, pods: &Mirror<Pod>) {
        self.pods.retain(|k, l| match pods.get(k) {
            Some(p) if same_pod(&p.uid, &l.uid) => !l.addrs.iter().all(|a| p.ips.contains(a)),
            _ => true,
        });
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }
}

/// Two uids name the same pod (an empty one, as a plugin without `K8S_POD_UID` gives, matches).
fn same_pod(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a == b
}

/// The compiler's pods: every Pod object, with the addresses this node learned from ADDs added
/// to its own pods; a pod known only from its ADD (its object not seen yet, or the object seen
/// is an older pod of the same name) is [`Pod::unclassified`]: denied wherever a policy could
/// select it.
pub fn pods_for_compile(pods: &Mirror<Pod>, learned: &Learned, node: &str) -> Vec<Pod> {
    let mut out: Vec<Pod> = Vec::with_capacity(pods.len() + learned.len());
    for p in pods.values() {
        let key = p.key();
        match learned.pods.get(&key) {
            None => out.push(p.clone()),
            Some(l) if same_pod(&p.uid, &l.uid) => {
                let mut p = p.clone();
                // It was ADDed here, whatever the object says yet.
                p.node = Some(node.to_string());
                for a in &l.addrs {
                    if !p.ips.contains(a) {
                        p.ips.push(*a);
                    }
                }
                out.push(p);
            }
            // Handled below, as unclassified: the object is another pod's.
            Some(_) => {}
        }
    }
    for (key, l) in &learned.pods {
        let known = pods.get(key).is_some_and(|p| same_pod(&p.uid, &l.uid));
        if !known {
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            out.push(Pod::unclassified(
                ns,
                name,
                l.uid.clone(),
                node,
                l.addrs.iter().copied().collect(),
            ));
        }
    }
    out
}

/// Pods, Namespaces and NetworkPolicies as the watchers delivered them.
#[derive(Debug, Default)]
pub struct PolicyObjects {
    pub pods: Mirror<Pod>,
    pub namespaces: Mirror<Namespace>,
    pub policies: Mirror<Policy>,
    /// Pod objects deleted since the controller last looked (key, uid).
    gone: Vec<(String, String)>,
}

impl PolicyObjects {
    /// Every kind has had its first full list: nothing is reconciled before (a pod whose
    /// policies were not listed yet would be opened).
    pub fn ready(&self) -> bool {
        self.pods.ready && self.namespaces.ready && self.policies.ready
    }

    pub fn pod_event(&mut self, e: Event<K8sPod>) -> bool {
        let gone = &mut self.gone;
        self.pods
            .apply(e, Pod::from_k8s, |k, uid| gone.push((k.into(), uid.into())))
    }

    pub fn namespace_event(&mut self, e: Event<K8sNamespace>) -> bool {
        self.namespaces
            .apply(e, |n, _| Namespace::from_k8s(n), |_, _| {})
    }

    /// Policies come as raw objects: one that does not decode, or has a field this version
    /// does not know, still becomes a (closed) policy instead of breaking the whole list.
    pub fn policy_event(&mut self, e: Event<DynamicObject>) -> bool {
        self.policies.apply(
            e,
            |o, problems| {
                let v = serde_json::to_value(o).ok()?;
                Policy::from_json(&v, problems)
            },
            |_, _| {},
        )
    }

    /// Pod objects deleted since the last call.
    pub fn take_gone(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.gone)
    }

    /// Every problem of every object, each once.
    pub fn problems(&self) -> BTreeSet<String> {
        self.pods
            .problems()
            .chain(self.namespaces.problems())
            .chain(self.policies.problems())
            .map(|p| p.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodIP, PodSpec, PodStatus};
    use serde_json::json;

    fn k8s_pod(ns: &str, name: &str, uid: &str, node: &str, ips: &[&str]) -> K8sPod {
        let mut p = K8sPod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(uid.into());
        p.metadata.labels = Some([("app".to_string(), name.to_string())].into());
        p.spec = Some(PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        });
        if !ips.is_empty() {
            p.status = Some(PodStatus {
                phase: Some("Running".into()),
                pod_ips: Some(ips.iter().map(|i| PodIP { ip: i.to_string() }).collect()),
                ..Default::default()
            });
        }
        p
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn announced(ns: &str, name: &str, uid: &str, addr: &str) -> Announced {
        Announced {
            addr: ip(addr),
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn listed(objs: &mut PolicyObjects, pods: Vec<K8sPod>) {
        objs.pod_event(Event::Init);
        for p in pods {
            objs.pod_event(Event::InitApply(p));
        }
        objs.pod_event(Event::InitDone);
    }

    #[test]
    fn nothing_is_ready_before_every_kind_is_listed() {
        let mut o = PolicyObjects::default();
        listed(&mut o, vec![]);
        assert!(!o.ready());
        o.namespace_event(Event::Init);
        o.namespace_event(Event::InitDone);
        assert!(!o.ready(), "policies not listed yet");
        o.policy_event(Event::Init);
        assert!(!o.ready());
        o.policy_event(Event::InitDone);
        assert!(o.ready());
    }

    #[test]
    fn a_status_heartbeat_is_no_change_but_new_ips_or_labels_are() {
        let mut o = PolicyObjects::default();
        listed(&mut o, vec![k8s_pod("x", "a", "u1", "n1", &[])]);
        let mut p = k8s_pod("x", "a", "u1", "n1", &[]);
        p.status = Some(PodStatus {
            message: Some("heartbeat".into()),
            ..Default::default()
        });
        assert!(!o.pod_event(Event::Apply(p)));
        assert!(o.pod_event(Event::Apply(k8s_pod("x", "a", "u1", "n1", &["10.0.0.5"]))));
        let mut relabelled = k8s_pod("x", "a", "u1", "n1", &["10.0.0.5"]);
        relabelled.metadata.labels = Some([("app".to_string(), "b".to_string())].into());
        assert!(o.pod_event(Event::Apply(relabelled)));
        assert!(o.pod_event(Event::Delete(k8s_pod("x", "a", "u1", "n1", &[]))));
        assert_eq!(o.take_gone(), vec![("x/a".to_string(), "u1".to_string())]);
        assert!(o.pods.is_empty());
    }

    #[test]
    fn a_relist_drops_what_was_deleted_meanwhile_and_says_so() {
        let mut o = PolicyObjects::default();
        listed(
            &mut o,
            vec![
                k8s_pod("x", "a", "u1", "n1", &["10.0.0.5"]),
                k8s_pod("x", "b", "u2", "n2", &["10.0.1.5"]),
            ],
        );
        o.take_gone();
        o.pod_event(Event::Init);
        o.pod_event(Event::InitApply(k8s_pod(
            "x",
            "a",
            "u1",
            "n1",
            &["10.0.0.5"],
        )));
        assert!(
            o.pods.get("x/b").is_some(),
            "the old view holds until InitDone"
        );
        o.pod_event(Event::InitDone);
        assert!(o.pods.get("x/b").is_none());
        assert_eq!(o.take_gone(), vec![("x/b".to_string(), String::new())]);
    }

    #[test]
    fn a_policy_that_does_not_decode_still_closes_its_namespace() {
        let mut o = PolicyObjects::default();
        o.policy_event(Event::Init);
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": "x", "name": "broken"},
            "spec": {"podSelector": "not an object", "policyTypes": ["Ingress"]}
        }))
        .unwrap();
        o.policy_event(Event::InitApply(bad));
        o.policy_event(Event::InitDone);
        let p = o.policies.get("x/broken").expect("kept, closed");
        assert_eq!(p.pod_selector, None, "selects every pod of x");
        assert_eq!(p.ingress, Some(vec![]));
        assert_eq!(p.egress, Some(vec![]));
        assert!(o.problems().iter().any(|p| p.contains("x/broken")));
    }

    #[test]
    fn a_future_field_is_a_problem_not_an_opening() {
        let mut o = PolicyObjects::default();
        o.policy_event(Event::Init);
        let future: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": "x", "name": "future"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {}, "futureField": 1}]}]}
        }))
        .unwrap();
        o.policy_event(Event::InitApply(future));
        o.policy_event(Event::InitDone);
        let p = o.policies.get("x/future").unwrap();
        assert!(
            p.ingress
                .as_ref()
                .unwrap()
                .iter()
                .all(|r| !r.allows_something()),
            "{p:?}"
        );
        assert!(!o.problems().is_empty());
    }

    #[test]
    fn a_pod_known_only_from_its_add_is_unclassified_with_the_add_addresses() {
        let o = PolicyObjects::default();
        let mut l = Learned::default();
        l.learn(&[
            announced("x", "a", "u1", "10.0.0.5"),
            announced("x", "a", "u1", "fd00::5"),
        ]);
        let pods = pods_for_compile(&o.pods, &l, "n1");
        assert_eq!(pods.len(), 1);
        assert!(!pods[0].is_classified());
        assert_eq!(pods[0].node.as_deref(), Some("n1"));
        assert_eq!(pods[0].ips, vec![ip("10.0.0.5"), ip("fd00::5")]);
    }

    #[test]
    fn the_pod_object_classifies_it_before_its_ips_are_posted() {
        let mut o = PolicyObjects::default();
        // The object exists before its sandbox: no podIPs yet.
        listed(&mut o, vec![k8s_pod("x", "a", "u1", "n1", &[])]);
        let mut l = Learned::default();
        l.learn(&[announced("x", "a", "u1", "10.0.0.5")]);
        let pods = pods_for_compile(&o.pods, &l, "n1");
        assert_eq!(pods.len(), 1);
        assert!(pods[0].is_classified());
        assert_eq!(pods[0].ips, vec![ip("10.0.0.5")]);
        // Once kubelet posts them the learned addresses are no longer needed.
        l.settle(&o.pods);
        assert_eq!(l.len(), 1, "not posted yet: kept");
        o.pod_event(Event::Apply(k8s_pod("x", "a", "u1", "n1", &["10.0.0.5"])));
        l.settle(&o.pods);
        assert!(l.is_empty());
        let pods = pods_for_compile(&o.pods, &l, "n1");
        assert_eq!(pods[0].ips, vec![ip("10.0.0.5")]);
    }

    #[test]
    fn an_older_pod_of_the_same_name_does_not_classify_the_new_one() {
        let mut o = PolicyObjects::default();
        listed(&mut o, vec![k8s_pod("x", "a", "old", "n1", &["10.0.0.4"])]);
        let mut l = Learned::default();
        l.learn(&[announced("x", "a", "new", "10.0.0.5")]);
        let pods = pods_for_compile(&o.pods, &l, "n1");
        assert_eq!(pods.len(), 1, "one pod per key: {pods:?}");
        assert!(!pods[0].is_classified());
        assert_eq!(pods[0].uid, "new");
        assert_eq!(pods[0].ips, vec![ip("10.0.0.5")]);
        // The old object's deletion does not forget the new pod's addresses.
        l.forget("x/a", "old");
        assert_eq!(l.len(), 1);
        l.forget("x/a", "new");
        assert!(l.is_empty());
    }

    #[test]
    fn the_newest_add_owns_an_address() {
        let mut l = Learned::default();
        l.learn(&[announced("x", "a", "u1", "10.0.0.5")]);
        l.learn(&[announced("x", "b", "u2", "10.0.0.5")]);
        let pods = pods_for_compile(&Mirror::default(), &l, "n1");
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].name, "b");
        // A new sandbox of the same pod (same uid) adds to what it had; a new uid starts over.
        l.learn(&[announced("x", "b", "u2", "10.0.0.6")]);
        assert_eq!(
            pods_for_compile(&Mirror::default(), &l, "n1")[0].ips.len(),
            2
        );
        l.learn(&[announced("x", "b", "u3", "10.0.0.7")]);
        assert_eq!(
            pods_for_compile(&Mirror::default(), &l, "n1")[0].ips,
            vec![ip("10.0.0.7")]
        );
    }
}
