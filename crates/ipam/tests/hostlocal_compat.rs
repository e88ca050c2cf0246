//! Switching a node between Debian's reference host-local and podwire-ipam, either way, on
//! the same state directory: no address is handed out twice, and each releases the other's.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;

fn pair(dir: &DataDir, ipam: Value) -> (Value, Value) {
    let ours = conf("1.0.0", "net1", dir, ipam.clone());
    let mut hl = ipam;
    hl["type"] = json!("host-local");
    (ours, conf("1.0.0", "net1", dir, hl))
}

#[test]
fn host_local_then_podwire_then_back() {
    let dir = DataDir::new("hl-first");
    // 10.92.0.2 - 10.92.0.14 and fd92::2 - fd92::f: 13 and 14 addresses.
    let (ours, hl) = pair(
        &dir,
        json!({"ranges": [[{"subnet": "10.92.0.0/28"}], [{"subnet": "fd92::/124"}]]}),
    );
    let mut seen = HashSet::new();
    for i in 0..10 {
        for ip in add_ok(HOST_LOCAL, &format!("hl{i}"), &hl) {
            assert!(seen.insert(ip));
        }
    }
    // podwire continues host-local's round-robin and never repeats an address.
    let p0 = add_ok(PODWIRE, "pw0", &ours);
    assert_eq!(p0, ["10.92.0.12", "fd92::c"]);
    for ip in p0 {
        assert!(seen.insert(ip));
    }
    // podwire releases an allocation host-local made.
    let hl3 = dir.owner_of("net1", "10.92.0.5");
    assert_eq!(hl3.as_deref(), Some("hl3\r\neth0"));
    del_ok(PODWIRE, "hl3", &ours);
    assert!(dir.owner_of("net1", "10.92.0.5").is_none());
    assert!(dir.owner_of("net1", "fd92::5").is_none());
    assert_eq!(
        Call::new(PODWIRE, "CHECK", "hl4").run(&ours).0,
        0,
        "host-local's allocations pass CHECK"
    );
    // Fill the IPv4 range: the freed 10.92.0.5 comes back last, nothing twice.
    let mut v4 = Vec::new();
    for i in 1..4 {
        v4.push(add_ok(PODWIRE, &format!("pw{i}"), &ours)[0].clone());
    }
    assert_eq!(v4, ["10.92.0.13", "10.92.0.14", "10.92.0.5"]);
    let (code, v) = Call::new(PODWIRE, "ADD", "pw9").run(&ours);
    assert_eq!((code, v["code"].clone()), (1, json!(101)), "{v}");
    // Back to host-local: it releases ours and allocates after our last one.
    del_ok(HOST_LOCAL, "pw1", &hl);
    assert!(dir.owner_of("net1", "10.92.0.13").is_none());
    let h = add_ok(HOST_LOCAL, "hl10", &hl);
    assert_eq!(h[0], "10.92.0.13");
    assert_eq!(
        Call::new(HOST_LOCAL, "CHECK", "pw2").run(&hl).0,
        0,
        "host-local sees ours"
    );
    // podwire notices what host-local did behind its back.
    assert_ne!(Call::new(PODWIRE, "CHECK", "pw1").run(&ours).0, 0);
    assert_eq!(Call::new(PODWIRE, "CHECK", "hl10").run(&ours).0, 0);
    del_ok(PODWIRE, "hl10", &ours);
    assert!(dir.owner_of("net1", "10.92.0.13").is_none());
}

#[test]
fn podwire_then_host_local() {
    let dir = DataDir::new("pw-first");
    let (ours, hl) = pair(&dir, json!({"subnet": "10.93.0.0/28"}));
    let mut seen = HashSet::new();
    for i in 0..6 {
        assert!(seen.insert(add_ok(PODWIRE, &format!("pw{i}"), &ours)[0].clone()));
    }
    for i in 0..7 {
        let ip = add_ok(HOST_LOCAL, &format!("hl{i}"), &hl)[0].clone();
        assert!(seen.insert(ip.clone()), "host-local repeated {ip}");
    }
    assert_eq!(seen.len(), 13, "the whole range, each address once");
    let (code, v) = Call::new(HOST_LOCAL, "ADD", "hl9").run(&hl);
    assert_ne!(code, 0, "host-local sees the range full: {v}");
    // host-local's duplicate check and DEL understand our files.
    let (code, v) = Call::new(HOST_LOCAL, "ADD", "pw2").run(&hl);
    assert_ne!(code, 0, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("duplicate"), "{v}");
    del_ok(HOST_LOCAL, "pw2", &hl);
    assert_eq!(dir.allocated("net1").len(), 12);
    // Our index entry for pw2 is now stale: podwire's DEL and ADD cope.
    del_ok(PODWIRE, "pw2", &ours);
    let back = add_ok(PODWIRE, "pw2", &ours);
    assert_eq!(back, ["10.93.0.4"]);
    assert_eq!(dir.allocated("net1").len(), 13);
}

#[test]
fn our_extra_state_does_not_confuse_host_local() {
    let dir = DataDir::new("extra");
    let (ours, hl) = pair(
        &dir,
        json!({"subnet": "10.94.0.0/24", "reclaimAfterReboot": true}),
    );
    add_ok(PODWIRE, "c1", &ours);
    assert!(dir
        .path()
        .join("net1/.podwire/by-attachment/c1:eth0")
        .exists());
    // host-local walks subdirectories on DEL; ours hold nothing it could take for an owner.
    del_ok(HOST_LOCAL, "c1", &hl);
    assert!(dir.allocated("net1").is_empty());
    assert!(dir.path().join("net1/.podwire/reclaimed-boot").exists());
    assert_eq!(add_ok(HOST_LOCAL, "c2", &hl), ["10.94.0.3"]);
}
