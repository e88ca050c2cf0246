//! CNI 1.1 GC and reboot reclamation through the binary.

mod common;
use common::*;
use serde_json::{json, Value};

fn gc_conf(base: &Value, valid: &[(&str, &str)]) -> Value {
    let mut c = base.clone();
    c["cni.dev/valid-attachments"] = valid
        .iter()
        .map(|(id, ifname)| json!({"containerID": id, "ifname": ifname}))
        .collect();
    c
}

#[test]
fn gc_releases_exactly_the_stale_attachments() {
    let dir = DataDir::new("gc");
    let c = conf(
        "1.1.0",
        "net1",
        &dir,
        json!({"ranges": [[{"subnet": "10.95.0.0/24"}], [{"subnet": "fd95::/64"}]]}),
    );
    for id in ["a", "b", "c", "d"] {
        add_ok(PODWIRE, id, &c);
    }
    let mut second = Call::new(PODWIRE, "ADD", "a");
    second.ifname = "net1";
    assert_eq!(second.run(&c).0, 0);
    // One made by host-local, one in its legacy container-only format.
    let mut hl = c.clone();
    hl["cniVersion"] = json!("1.0.0");
    hl["ipam"]["type"] = json!("host-local");
    add_ok(HOST_LOCAL, "e", &hl);
    std::fs::write(dir.path().join("net1/10.95.0.200"), "f").unwrap();
    assert_eq!(dir.allocated("net1").len(), 13);

    let (code, v) = Call::new(PODWIRE, "GC", "").run(&gc_conf(
        &c,
        &[("a", "eth0"), ("c", "eth0"), ("e", "eth0"), ("zzz", "eth0")],
    ));
    assert_eq!(code, 0, "{v}");
    let left = dir.allocated("net1");
    assert_eq!(left.len(), 6, "{left:?}");
    for id in ["a", "c", "e"] {
        assert_eq!(
            Call::new(PODWIRE, "CHECK", id).run(&c).0,
            0,
            "{id} is still valid"
        );
    }
    for ip in &left {
        let owner = dir.owner_of("net1", ip).unwrap();
        assert!(
            ["a\r\neth0", "c\r\neth0", "e\r\neth0"].contains(&owner.as_str()),
            "{ip} kept for {owner:?}"
        );
    }
    // GC without the list is refused rather than releasing everything.
    let (code, v) = Call::new(PODWIRE, "GC", "").run(&c);
    assert_eq!((code, v["code"].clone()), (1, json!(7)), "{v}");
    assert_eq!(dir.allocated("net1").len(), 6);
    // An empty list releases everything.
    assert_eq!(Call::new(PODWIRE, "GC", "").run(&gc_conf(&c, &[])).0, 0);
    assert!(dir.allocated("net1").is_empty());
}

#[test]
fn gc_goes_on_past_an_entry_it_cannot_release() {
    let dir = DataDir::new("gc-err");
    let c = conf("1.1.0", "net1", &dir, json!({"subnet": "10.96.0.0/24"}));
    for id in ["a", "b", "c"] {
        add_ok(PODWIRE, id, &c);
    }
    // b's file is replaced by a directory: unreadable as an allocation file.
    let f = dir.path().join("net1/10.96.0.3");
    std::fs::remove_file(&f).unwrap();
    std::fs::create_dir(&f).unwrap();
    std::fs::write(
        dir.path().join("net1/.podwire/by-attachment/b:eth0"),
        "podwire-ipam attachment v1\nboot x\nip 10.96.0.3\n",
    )
    .unwrap();
    let (code, v) = Call::new(PODWIRE, "GC", "").run(&gc_conf(&c, &[]));
    assert_eq!((code, v["code"].clone()), (1, json!(5)), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("10.96.0.3"), "{v}");
    assert_eq!(
        dir.allocated("net1"),
        ["10.96.0.3"],
        "a and c released anyway"
    );
}

fn set_boot(dir: &DataDir, id: &str) {
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join("boot_id"), format!("{id}\n")).unwrap();
}

#[test]
fn reboot_reclamation_releases_the_previous_boots_allocations() {
    let dir = DataDir::new("reboot");
    set_boot(&dir, "11111111-aaaa");
    let ipam = json!({"subnet": "10.97.0.0/29", "reclaimAfterReboot": true,
                      "bootIdFile": dir.path().join("boot_id")});
    let c = conf("1.1.0", "net1", &dir, ipam.clone());
    let mut off = ipam.clone();
    off["reclaimAfterReboot"] = json!(false);
    let c_off = conf("1.1.0", "net1", &dir, off);
    for i in 0..5 {
        add_ok(PODWIRE, &format!("old{i}"), &c);
    }
    assert_eq!(Call::new(PODWIRE, "STATUS", "").run(&c).1["code"], 50);
    // The node reboots: its pods are gone, their files are not.
    set_boot(&dir, "22222222-bbbb");
    // Without the option nothing is reclaimed.
    assert_eq!(Call::new(PODWIRE, "STATUS", "").run(&c_off).1["code"], 50);
    assert_eq!(dir.allocated("net1").len(), 5);
    // With it, the first ADD of the new boot releases them all and gets an address.
    let got = add_ok(PODWIRE, "new0", &c);
    assert_eq!(dir.allocated("net1"), [got[0].clone()]);
    assert_eq!(dir.owner_of("net1", &got[0]).unwrap(), "new0\r\neth0");
    // Allocations of this boot survive later ADDs in the same boot.
    add_ok(PODWIRE, "new1", &c);
    assert_eq!(dir.allocated("net1").len(), 2);
    // A late DEL for a pod of the old boot does not touch the new owner of its address.
    del_ok(PODWIRE, "old0", &c);
    assert_eq!(dir.allocated("net1").len(), 2);
}

#[test]
fn status_reclaims_too_so_a_full_node_becomes_ready_after_reboot() {
    let dir = DataDir::new("reboot-status");
    set_boot(&dir, "aaaa");
    let c = conf(
        "1.1.0",
        "net1",
        &dir,
        json!({"subnet": "10.98.0.0/30", "reclaimAfterReboot": true,
               "bootIdFile": dir.path().join("boot_id")}),
    );
    add_ok(PODWIRE, "old", &c);
    assert_eq!(Call::new(PODWIRE, "STATUS", "").run(&c).1["code"], 50);
    set_boot(&dir, "bbbb");
    assert_eq!(Call::new(PODWIRE, "STATUS", "").run(&c), (0, Value::Null));
    assert!(dir.allocated("net1").is_empty());
}

#[test]
fn host_local_allocations_are_reclaimed_only_once_their_boot_is_known() {
    // An allocation host-local made is stamped with the boot podwire first sees it in: one seen
    // before the reboot is reclaimed after it; one first seen after the reboot might be from
    // either boot, so it is kept (GC releases it if it is stale).
    let dir = DataDir::new("reboot-hl");
    set_boot(&dir, "aaaa");
    let ipam = json!({"subnet": "10.99.0.0/28", "reclaimAfterReboot": true,
                      "bootIdFile": dir.path().join("boot_id")});
    let c = conf("1.1.0", "net1", &dir, ipam.clone());
    let mut hl = conf("1.0.0", "net1", &dir, ipam);
    hl["ipam"]["type"] = json!("host-local");
    add_ok(HOST_LOCAL, "seen", &hl);
    add_ok(PODWIRE, "p1", &c);
    add_ok(HOST_LOCAL, "unseen", &hl);
    set_boot(&dir, "bbbb");
    add_ok(PODWIRE, "p2", &c);
    let mut owners: Vec<String> = dir
        .allocated("net1")
        .iter()
        .map(|ip| dir.owner_of("net1", ip).unwrap())
        .collect();
    owners.sort();
    assert_eq!(owners, ["p2\r\neth0", "unseen\r\neth0"]);
}
