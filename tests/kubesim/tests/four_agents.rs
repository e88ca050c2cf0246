//! An example of what the multi-node tests do: four agents' worth of watchers (four threads,
//! each with its own kube client and runtime) on one kubesim see the same events in the same
//! order, and the same state after the server drops their watches.

mod common;

use common::{expected, Mirror, TestServer};
use kube::runtime::watcher;
use kubesim::{NodeBuilder, Options};
use std::time::Duration;

#[test]
fn four_watchers_see_the_same_events() {
    let t = TestServer::start(Options::default());
    let node = |i: u32| {
        NodeBuilder::new(format!("node-{i}"))
            .pod_cidr(format!("10.244.{i}.0/24"))
            .pod_cidr(format!("fd00:10:244:{i:x}::/64"))
            .internal_ip(format!("192.168.{}.{}", i % 2, 10 + i))
            .build()
    };
    for i in 0..4 {
        t.server.create_node(&node(i)).unwrap();
    }
    let agents: Vec<Mirror> = (0..4)
        .map(|_| Mirror::start(&t.kubeconfig, watcher::Config::default()))
        .collect();
    for a in &agents {
        a.wait_for_nodes(&expected(&t.server));
    }
    assert!(t.server.wait_for_watches(4, Duration::from_secs(10)));

    // A node joins, one gets a new pod CIDR, one leaves.
    t.server.create_node(&node(4)).unwrap();
    t.server
        .modify_node("node-1", |n| {
            n.spec.as_mut().unwrap().pod_cidr = Some("10.244.101.0/24".into())
        })
        .unwrap();
    t.server.delete_node("node-2").unwrap();
    let want = [
        "init",
        "init-done",
        "apply node-4 10.244.4.0/24",
        "apply node-1 10.244.101.0/24",
        "delete node-2",
    ];
    for a in &agents {
        a.wait("the three events", Duration::from_secs(10), |s| {
            s.log.len() == want.len()
        });
        assert_eq!(a.log(), want);
    }

    // The server drops every watch; changes meanwhile reach all four.
    t.server.close_watches();
    t.server.delete_node("node-0").unwrap();
    t.server.create_node(&node(5)).unwrap();
    for a in &agents {
        a.wait_for_nodes(&expected(&t.server));
    }
    assert_eq!(t.server.stats().lists, 4, "re-watched, not re-listed");
}
