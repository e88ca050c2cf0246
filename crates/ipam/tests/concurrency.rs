//! Many plugin processes at once never hold the same address.

mod common;
use common::*;
use serde_json::json;
use std::collections::HashSet;

#[test]
fn fifty_processes_at_once_get_fifty_distinct_addresses() {
    let dir = DataDir::new("fifty");
    let c = conf("1.0.0", "net1", &dir, json!({"subnet": "10.90.0.0/24"}));
    // Every process is started before any is waited for.
    let children: Vec<_> = (0..50)
        .map(|i| Call::new(PODWIRE, "ADD", &format!("pod{i}")).spawn(&c))
        .collect();
    let mut got = HashSet::new();
    for (i, child) in children.into_iter().enumerate() {
        let (code, v) = finish(child);
        assert_eq!(code, 0, "pod{i}: {v}");
        let ips = addresses(&v);
        assert_eq!(ips.len(), 1);
        assert!(got.insert(ips[0].clone()), "{} handed out twice", ips[0]);
        assert_eq!(
            dir.owner_of("net1", &ips[0]).unwrap(),
            format!("pod{i}\r\neth0")
        );
    }
    assert_eq!(got.len(), 50);
    assert_eq!(dir.allocated("net1").len(), 50);
    // And 50 concurrent DELs release them all.
    let children: Vec<_> = (0..50)
        .map(|i| Call::new(PODWIRE, "DEL", &format!("pod{i}")).spawn(&c))
        .collect();
    for child in children {
        assert_eq!(finish(child).0, 0);
    }
    assert!(dir.allocated("net1").is_empty());
}

#[test]
fn podwire_and_host_local_at_once_share_the_lock() {
    let dir = DataDir::new("mixed");
    let ours = conf("1.0.0", "net1", &dir, json!({"subnet": "10.91.0.0/24"}));
    let theirs = conf(
        "1.0.0",
        "net1",
        &dir,
        json!({"type": "host-local", "subnet": "10.91.0.0/24"}),
    );
    let children: Vec<_> = (0..40)
        .map(|i| {
            let (bin, c) = if i % 2 == 0 {
                (PODWIRE, &ours)
            } else {
                (HOST_LOCAL, &theirs)
            };
            Call::new(bin, "ADD", &format!("pod{i}")).spawn(c)
        })
        .collect();
    let mut got = HashSet::new();
    for (i, child) in children.into_iter().enumerate() {
        let (code, v) = finish(child);
        assert_eq!(code, 0, "pod{i}: {v}");
        assert!(got.insert(addresses(&v)[0].clone()), "duplicate: {v}");
    }
    assert_eq!(dir.allocated("net1").len(), 40);
}
