//! What an operator sees of the agents in the simulated cluster (issue #25): `/readyz` before
//! and after the first pass, `/metrics` read with a real Prometheus text parser as Nodes come
//! and go and as the kernel is repaired, the Event for a Node whose pod CIDR lies outside the
//! cluster's, and `/healthz` failing once the kernel watch is gone.

use cluster::{pod_cidr_v4, Cluster};
use kubesim::Event;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);

/// The agent's `/metrics`, parsed.
fn scrape(c: &Cluster, i: usize) -> prometheus_parse::Scrape {
    let (code, body) = c
        .node(i)
        .http_get("/metrics")
        .expect("the listener answers");
    assert_eq!(code, 200, "{body}");
    let lines: Vec<std::io::Result<String>> = body.lines().map(|l| Ok(l.to_string())).collect();
    prometheus_parse::Scrape::parse(lines.into_iter()).expect("Prometheus text format")
}

/// The value of one sample (0 when absent), matching the labels given.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| {
            x.metric == name
                && labels
                    .iter()
                    .all(|(k, v)| x.labels.get(k).unwrap_or("") == *v)
        })
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn metric(c: &Cluster, i: usize, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(&scrape(c, i), name, labels)
}

const ROUTE_CHANGES: &str = "podwire_agent_changes_total";

#[test]
fn readiness_metrics_events_and_a_dead_kernel_watch_are_seen() {
    let mut c = Cluster::new([2, 1]);
    c.agent_args = vec!["--test-hooks".into()];
    // The API server hangs: the agent is up but has not seen a list, so it is not ready.
    c.api.pause();
    c.start_agent(0);
    c.wait_for("the listener", CONVERGE, || {
        c.node(0).http_get("/readyz").is_some()
    });
    let (code, body) = c.node(0).http_get("/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("not ready"), "{body}");
    assert_eq!(
        c.node(0).http_get("/healthz").unwrap().0,
        200,
        "alive meanwhile"
    );
    assert_eq!(metric(&c, 0, "podwire_agent_ready", &[]), 0.0);
    c.api.resume();
    c.start_agent(1);
    c.start_agent(2);
    c.wait_converged(CONVERGE);
    c.wait_for("ready after the first pass", CONVERGE, || {
        c.node(0).http_get("/readyz").map(|r| r.0) == Some(200)
    });

    // n1 (segment A) reaches n2 directly and n3 over VXLAN, both families.
    let s = scrape(&c, 0);
    assert_eq!(value(&s, "podwire_agent_ready", &[]), 1.0);
    assert_eq!(value(&s, "podwire_agent_nodes", &[]), 3.0);
    assert_eq!(value(&s, "podwire_agent_peers", &[("path", "direct")]), 2.0);
    assert_eq!(value(&s, "podwire_agent_peers", &[("path", "vxlan")]), 2.0);
    assert_eq!(
        value(&s, "podwire_agent_peers", &[("path", "unrouted")]),
        0.0
    );
    let ok = &[("controller", "routing"), ("result", "ok")];
    assert!(value(&s, "podwire_agent_reconciles_total", ok) >= 1.0);
    let routes = value(&s, ROUTE_CHANGES, &[("kind", "route")]);
    assert!(routes >= 4.0, "{routes}");
    assert!(
        value(&s, "podwire_agent_reconcile_duration_seconds_count", &[]) >= 1.0,
        "the histogram counts passes"
    );
    assert!(value(&s, "podwire_agent_last_success_timestamp_seconds", &[]) > 1.7e9);

    // A Node comes: its route is counted; it goes: its removal is.
    let extra = format!("{}-x", c.prefix);
    c.api
        .create_node(
            &kubesim::NodeBuilder::new(&extra)
                .pod_cidr("10.246.90.0/24")
                .internal_ip("10.247.1.90")
                .build(),
        )
        .unwrap();
    c.wait_for("the new Node counted", CONVERGE, || {
        metric(&c, 0, "podwire_agent_nodes", &[]) == 4.0
            && metric(&c, 0, ROUTE_CHANGES, &[("kind", "route")]) > routes
            && metric(&c, 0, "podwire_agent_peers", &[("path", "direct")]) == 3.0
    });
    c.api.delete_node(&extra).unwrap();
    c.wait_for("the removed Node counted", CONVERGE, || {
        metric(&c, 0, "podwire_agent_nodes", &[]) == 3.0
            && metric(&c, 0, ROUTE_CHANGES, &[("kind", "route_removed")]) >= 1.0
            && metric(&c, 0, "podwire_agent_peers", &[("path", "direct")]) == 2.0
    });

    // Someone deletes a route: put back, and counted as a repair.
    let repairs = "podwire_agent_kernel_repairs_total";
    assert_eq!(metric(&c, 0, repairs, &[]), 0.0, "nothing repaired yet");
    assert!(c
        .node(0)
        .ns
        .exec_ok(&["ip", "route", "del", &pod_cidr_v4(3)]));
    c.wait_for("the repair counted", CONVERGE, || {
        c.node(0).route_to(&pod_cidr_v4(3)).is_some()
            && metric(&c, 0, repairs, &[("kind", "route")]) >= 1.0
    });

    // A Node whose pod CIDR lies outside the cluster's: unrouted with its reason, and an Event
    // on each agent's own Node.
    let bad = format!("{}-bad", c.prefix);
    c.api
        .create_node(
            &kubesim::NodeBuilder::new(&bad)
                .pod_cidr("10.99.0.0/24")
                .internal_ip("10.247.1.91")
                .build(),
        )
        .unwrap();
    let outside = &[("path", "unrouted"), ("reason", "pod_cidr_outside_cluster")];
    c.wait_for("the unrouted peer counted", CONVERGE, || {
        metric(&c, 0, "podwire_agent_peers", outside) == 1.0
            && metric(
                &c,
                0,
                "podwire_agent_problems",
                &[("kind", "pod_cidr_outside_cluster")],
            ) == 1.0
    });
    let n1 = c.node(0).name.clone();
    let event_of = |node: &str| -> Option<Event> {
        c.api.list::<Event>(Some("default")).into_iter().find(|e| {
            e.reason.as_deref() == Some("PodCIDROutsideCluster")
                && e.involved_object.name.as_deref() == Some(node)
        })
    };
    c.wait_for("the Event on n1's Node", CONVERGE, || {
        event_of(&n1).is_some()
    });
    let e = event_of(&n1).unwrap();
    assert_eq!(e.involved_object.kind.as_deref(), Some("Node"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    let message = e.message.unwrap_or_default();
    assert!(
        message.contains(&bad) && message.contains("10.99.0.0/24: outside the cluster CIDR"),
        "{message}"
    );
    c.wait_for("every agent's Event, one each", CONVERGE, || {
        (0..3).all(|i| event_of(&c.node(i).name).is_some())
    });
    // Deduplicated: later passes see the same problem and post nothing new.
    std::thread::sleep(Duration::from_secs(6)); // more than a resync (5 s)
    let mine = c
        .api
        .list::<Event>(Some("default"))
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(n1.as_str())
                && e.reason.as_deref() == Some("PodCIDROutsideCluster")
        })
        .count();
    assert_eq!(mine, 1, "one Event for one problem");
    assert_eq!(
        metric(
            &c,
            0,
            "podwire_agent_events_total",
            &[("reason", "PodCIDROutsideCluster")]
        ),
        1.0
    );

    // The kernel watch stops (the test hook, then any notification in the node): /healthz
    // fails and says why, /readyz does not.
    assert_eq!(c.node(0).http_get("/healthz").unwrap().0, 200);
    c.node(0).signal_agent(libc::SIGUSR2);
    let dummy = testkit::unique("pwdm");
    c.wait_for("/healthz failing", CONVERGE, || {
        // Notifications until the watch thread has seen one after the signal.
        let n = &c.node(0).ns;
        n.exec_ok(&["ip", "link", "add", &dummy, "type", "dummy"]);
        n.exec_ok(&["ip", "link", "del", &dummy]);
        c.node(0).http_get("/healthz").map(|r| r.0) == Some(503)
    });
    let (_, body) = c.node(0).http_get("/healthz").unwrap();
    assert!(body.contains("kernel watch stopped"), "{body}");
    assert_eq!(c.node(0).http_get("/readyz").unwrap().0, 200);
    assert_eq!(
        c.node(1).http_get("/healthz").unwrap().0,
        200,
        "the others are fine"
    );
}
