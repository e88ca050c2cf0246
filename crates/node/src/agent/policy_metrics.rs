//! The NetworkPolicy controller's own metrics (issue #25's "as NetworkPolicy lands"): what is in
//! force after each pass (policies, isolated pods, rules and set elements) and the packets each
//! isolated pod's chain dropped, read from the table's named counters (`drops/<ns>/<pod>/<dir>`).
//! Drops are counted per pod and direction in the kernel, not per policy: a pod isolated by
//! several policies drops what none of them allows, so the pod is the honest label; the
//! `podwire_agent_policy_isolating` gauge says which policies isolate which pod.

use super::metrics::Metrics;
use policy::{Compiled, Direction};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{BTreeMap, BTreeSet};

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Default)]
pub struct PolicyMetrics {
    policies: Gauge,
    isolated: Family<Labels, Gauge>,
    rules: Gauge,
    elements: Gauge,
    drops: Family<Labels, Gauge>,
    isolating: Family<Labels, Gauge>,
}

impl PolicyMetrics {
    /// Made and registered once, when the controller starts.
    pub fn register(m: &Metrics) -> PolicyMetrics {
        let p = PolicyMetrics::default();
        m.register(
            "policy_policies",
            "NetworkPolicies in force on this node (isolating at least one of its pods)",
            p.policies.clone(),
        );
        m.register(
            "policy_isolated_pods",
            "This node's pods isolated by a NetworkPolicy, by direction",
            p.isolated.clone(),
        );
        m.register(
            "policy_rules",
            "Rules in the policy table (grows with policies and pods, never their product)",
            p.rules.clone(),
        );
        m.register(
            "policy_set_elements",
            "Set and verdict-map elements in the policy table (pod addresses, ports)",
            p.elements.clone(),
        );
        m.register(
            "policy_dropped_packets",
            "Packets an isolated pod's chain dropped (no policy allowed them), by pod and direction",
            p.drops.clone(),
        );
        m.register(
            "policy_isolating",
            "1 for each policy isolating each pod of this node, by direction",
            p.isolating.clone(),
        );
        p
    }

    /// After a pass: `compiled` is what is in force, `counters` the table's named counters.
    pub fn update(&self, compiled: &Compiled, counters: &BTreeMap<String, (u64, u64)>) {
        let (rules, elements) = compiled.ruleset.size();
        self.rules.set(rules as i64);
        self.elements.set(elements as i64);
        self.isolated.clear();
        self.isolating.clear();
        self.drops.clear();
        let mut policies = BTreeSet::new();
        for d in Direction::BOTH {
            let mut n = 0;
            for pod in &compiled.pods {
                let Some(by) = pod.isolation(d) else {
                    continue;
                };
                n += 1;
                for p in by {
                    policies.insert(p.clone());
                    self.isolating
                        .get_or_create(&labels(&pod.key, d, Some(p)))
                        .set(1);
                }
                let counter = policy::names::pod_drop_counter(&pod.key, d);
                let packets = counters.get(&counter).map_or(0, |c| c.0);
                self.drops
                    .get_or_create(&labels(&pod.key, d, None))
                    .set(i64::try_from(packets).unwrap_or(i64::MAX));
            }
            self.isolated
                .get_or_create(&vec![("direction", d.as_str().to_string())])
                .set(n);
        }
        self.policies.set(policies.len() as i64);
    }
}

fn labels(pod: &str, d: Direction, policy: Option<&String>) -> Labels {
    let mut l = vec![
        ("pod", pod.to_string()),
        ("direction", d.as_str().to_string()),
    ];
    if let Some(p) = policy {
        l.push(("policy", p.clone()));
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::PodState;

    #[test]
    fn in_force_isolation_and_drops_read_as_prometheus_sees_them() {
        let m = Metrics::new();
        let p = PolicyMetrics::register(&m);
        let mut c = Compiled {
            pods: vec![
                PodState {
                    key: "x/a".into(),
                    addresses: vec![],
                    classified: true,
                    ingress: Some(vec!["x/deny".into(), "x/allow-b".into()]),
                    egress: None,
                },
                PodState {
                    key: "x/b".into(),
                    addresses: vec![],
                    classified: true,
                    ingress: None,
                    egress: None,
                },
            ],
            ..Compiled::default()
        };
        let mut counters = BTreeMap::new();
        counters.insert(
            policy::names::pod_drop_counter("x/a", Direction::Ingress),
            (7, 420),
        );
        p.update(&c, &counters);
        let text = m.encode();
        assert!(text.contains("podwire_agent_policy_policies 2"), "{text}");
        assert!(
            text.contains(r#"podwire_agent_policy_isolated_pods{direction="ingress"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"podwire_agent_policy_dropped_packets{pod="x/a",direction="ingress"} 7"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"podwire_agent_policy_isolating{pod="x/a",direction="ingress",policy="x/deny"} 1"#
            ),
            "{text}"
        );
        // A pod no longer isolated disappears from the families.
        c.pods[0].ingress = None;
        p.update(&c, &counters);
        assert!(!m.encode().contains(r#"pod="x/a""#));
    }
}
