//! podwire-portmap under the conditions of issue #22 (hostPorts): a port range, a flushed or
//! stale table, the conntrack flush's scope, 127.0.0.1 and ::1. See common/mod.rs for the
//! topology; attackers are the pod and client netns.

mod common;

use common::*;
use serde_json::{json, Value};

/// `count` UDP mappings from `first`, host port = container port, as Podman publishes a range.
fn udp_range(first: u16, count: u16) -> Value {
    (first..first + count)
        .map(|p| json!({"hostPort": p, "containerPort": p, "protocol": "udp"}))
        .collect()
}

#[test]
fn a_5000_port_range_is_added_whole_or_not_at_all() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    udp_server(&n.pods[p1].ns.ns, "0.0.0.0:20000", "first");
    udp_server(&n.pods[p1].ns.ns, "0.0.0.0:24999", "last");
    let range = n.conf(p1, udp_range(20000, 5000));

    // The range's last port is held: nothing of the range goes in, and the runtime's DEL of the
    // refused pod leaves the holder's mapping.
    let holder = n.conf(
        p2,
        json!([{"hostPort": 24999, "containerPort": 9, "protocol": "udp"}]),
    );
    n.ok("ADD", p2, &holder);
    let refused = n.call("ADD", p1, &range);
    assert_eq!(refused.json["code"], 105, "{}", refused.json);
    assert_eq!(n.elements("hostport4").len(), 1, "all or nothing");
    n.ok("DEL", p1, &range);
    assert_eq!(n.elements("hostport4").len(), 1, "the holder's stays");
    n.ok("DEL", p2, &holder);

    n.ok("ADD", p1, &range);
    assert_eq!(n.elements("hostport4").len(), 5000);
    assert_eq!(n.elements("hostport6").len(), 5000);
    for (port, want) in [(20000, "first"), (24999, "last")] {
        let c = udp_client(&n.client.ns, &format!("{NODE_UPLINK_V4}:{port}"));
        assert_eq!(udp_ask(&c).as_deref(), Some(want), "port {port}");
    }
    n.ok("ADD", p1, &range); // repeated: everything in place
    n.ok("CHECK", p1, &range);
    n.ok("DEL", p1, &range);
    assert!(n.elements("hostport4").is_empty() && n.elements("hostport6").is_empty());
}
