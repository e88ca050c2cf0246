//! The podwire-ipam binary driven as a runtime drives it: ADD, DEL, CHECK, STATUS, errors.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

fn small(dir: &DataDir) -> Value {
    conf(
        "1.1.0",
        "net1",
        dir,
        json!({"ranges": [[{"subnet": "10.77.0.0/29"}], [{"subnet": "fd77::/125"}]],
               "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd77::1"}]}),
    )
}

#[test]
fn add_returns_dual_stack_result_with_routes() {
    let dir = DataDir::new("add");
    let c = small(&dir);
    let (code, v) = Call::new(PODWIRE, "ADD", "c1").run(&c);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["cniVersion"], "1.1.0");
    assert_eq!(v["ips"][0]["address"], "10.77.0.2/29");
    assert_eq!(v["ips"][0]["gateway"], "10.77.0.1");
    assert_eq!(v["ips"][1]["address"], "fd77::2/125");
    assert!(
        v["ips"][0].get("interface").is_none(),
        "IPAM sets no interface"
    );
    assert_eq!(v["routes"][1]["gw"], "fd77::1");
    assert_eq!(dir.owner_of("net1", "10.77.0.2").unwrap(), "c1\r\neth0");
    assert_eq!(dir.owner_of("net1", "fd77::2").unwrap(), "c1\r\neth0");
    // Older result versions are converted by the skeleton.
    let mut old = c.clone();
    old["cniVersion"] = json!("0.3.1");
    let (_, v) = Call::new(PODWIRE, "ADD", "c2").run(&old);
    assert_eq!(v["ips"][0]["version"], "4");
    assert_eq!(v["ips"][0]["address"], "10.77.0.3/29");
}

#[test]
fn a_second_add_returns_the_same_addresses() {
    let dir = DataDir::new("twice");
    let c = small(&dir);
    let first = add_ok(PODWIRE, "c1", &c);
    let again = add_ok(PODWIRE, "c1", &c);
    assert_eq!(first, again);
    assert_eq!(dir.allocated("net1").len(), 2, "no second address");
    // Another interface of the same container is another attachment.
    let mut call = Call::new(PODWIRE, "ADD", "c1");
    call.ifname = "net1";
    let (code, v) = call.run(&c);
    assert_eq!(code, 0, "{v}");
    assert_eq!(addresses(&v), ["10.77.0.3", "fd77::3"]);
}

#[test]
fn del_releases_only_that_attachment_and_is_idempotent() {
    let dir = DataDir::new("del");
    let c = small(&dir);
    add_ok(PODWIRE, "c1", &c);
    add_ok(PODWIRE, "c2", &c);
    del_ok(PODWIRE, "c1", &c);
    assert_eq!(dir.allocated("net1"), ["10.77.0.3", "fd77::3"]);
    del_ok(PODWIRE, "c1", &c);
    del_ok(PODWIRE, "never-added", &c);
    assert_eq!(dir.allocated("net1"), ["10.77.0.3", "fd77::3"]);
    // DEL works even when the ranges are now broken: it only needs the state location.
    let mut broken = c.clone();
    broken["ipam"]["ranges"] = json!("garbage");
    del_ok(PODWIRE, "c2", &broken);
    assert!(dir.allocated("net1").is_empty());
}

#[test]
fn check_confirms_the_allocation() {
    let dir = DataDir::new("check");
    let c = small(&dir);
    add_ok(PODWIRE, "c1", &c);
    assert_eq!(Call::new(PODWIRE, "CHECK", "c1").run(&c).0, 0);
    let (code, v) = Call::new(PODWIRE, "CHECK", "c2").run(&c);
    assert_eq!(code, 1);
    assert_eq!(v["code"], cni::error::plugin_code::CHECK_MISMATCH);
    assert!(v["msg"].as_str().unwrap().contains("c2"), "{v}");
    // A file taken over by someone else no longer counts.
    std::fs::write(dir.path().join("net1/fd77::2"), "other\r\neth0").unwrap();
    let (code, v) = Call::new(PODWIRE, "CHECK", "c1").run(&c);
    assert_eq!(code, 1, "{v}");
    assert!(v["msg"].as_str().unwrap().contains("range set 1"), "{v}");
}

#[test]
fn exhaustion_and_status() {
    let dir = DataDir::new("exhaust");
    let c = conf(
        "1.1.0",
        "net1",
        &dir,
        json!({"subnet": "10.78.0.0/29", "rangeStart": "10.78.0.3", "rangeEnd": "10.78.0.5"}),
    );
    assert_eq!(Call::new(PODWIRE, "STATUS", "").run(&c), (0, Value::Null));
    let got: Vec<_> = (0..3)
        .map(|i| add_ok(PODWIRE, &format!("c{i}"), &c)[0].clone())
        .collect();
    assert_eq!(got, ["10.78.0.3", "10.78.0.4", "10.78.0.5"]);
    let (code, v) = Call::new(PODWIRE, "ADD", "c9").run(&c);
    assert_eq!(code, 1);
    assert_eq!(v["code"], cni::error::plugin_code::RANGE_EXHAUSTED);
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.contains("10.78.0.0/29") && msg.contains("all 3 addresses"),
        "{msg}"
    );
    let (code, v) = Call::new(PODWIRE, "STATUS", "").run(&c);
    assert_eq!(code, 1);
    assert_eq!(v["code"], 50);
    assert!(v["msg"].as_str().unwrap().contains("10.78.0.0/29"), "{v}");
    del_ok(PODWIRE, "c1", &c);
    assert_eq!(Call::new(PODWIRE, "STATUS", "").run(&c).0, 0);
    assert_eq!(add_ok(PODWIRE, "c9", &c), ["10.78.0.4"]);
}

#[test]
fn a_failed_dual_stack_add_keeps_nothing() {
    let dir = DataDir::new("rollback");
    let c = conf(
        "1.0.0",
        "net1",
        &dir,
        json!({"ranges": [[{"subnet": "10.79.0.0/24"}], [{"subnet": "fd79::/126"}]]}),
    );
    add_ok(PODWIRE, "c1", &c);
    add_ok(PODWIRE, "c2", &c);
    let (code, v) = Call::new(PODWIRE, "ADD", "c3").run(&c);
    assert_eq!((code, v["code"].clone()), (1, json!(101)), "{v}");
    assert_eq!(
        dir.allocated("net1").len(),
        4,
        "the IPv4 address of c3 was given back"
    );
}

#[test]
fn requested_addresses_from_every_source() {
    let dir = DataDir::new("requested");
    let c = small(&dir);
    let mut call = Call::new(PODWIRE, "ADD", "c1");
    call.args = "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.77.0.5,fd77::6";
    let (code, v) = call.run(&c);
    assert_eq!(code, 0, "{v}");
    assert_eq!(addresses(&v), ["10.77.0.5", "fd77::6"]);
    let mut with_args = c.clone();
    with_args["args"] = json!({"cni": {"ips": ["10.77.0.4"]}});
    assert_eq!(add_ok(PODWIRE, "c2", &with_args)[0], "10.77.0.4");
    let mut with_rt = c.clone();
    with_rt["runtimeConfig"] = json!({"ips": ["10.77.0.3/29"]});
    assert_eq!(add_ok(PODWIRE, "c3", &with_rt)[0], "10.77.0.3");
    // Taken, outside, gateway: code 7 with the address in the message, nothing kept.
    for (ip, needle) in [
        ("10.77.0.5", "already allocated"),
        ("10.99.0.1", "outside every range"),
        ("10.77.0.1", "gateway"),
    ] {
        let mut call = Call::new(PODWIRE, "ADD", "c4");
        let args = format!("IP={ip}");
        call.args = &args;
        let (code, v) = call.run(&c);
        assert_eq!((code, v["code"].clone()), (1, json!(7)), "{v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains(ip) && msg.contains(needle), "{msg}");
    }
    assert_eq!(
        dir.allocated("net1").len(),
        6,
        "three attachments, no leftovers of c4"
    );
}

#[test]
fn config_errors_are_code_7_naming_the_value() {
    let dir = DataDir::new("badconf");
    for (ipam, needle) in [
        (json!({"subnet": "10.0.0.0/31"}), "too small"),
        (json!({"subnet": "10.0.0.1/24"}), "host bits"),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]]}),
            "overlaps",
        ),
        (json!({}), "no IP ranges"),
    ] {
        let (code, v) = Call::new(PODWIRE, "ADD", "c1").run(&conf("1.0.0", "n", &dir, ipam));
        assert_eq!((code, v["code"].clone()), (1, json!(7)), "{v}");
        assert!(v["msg"].as_str().unwrap().contains(needle), "{v}");
    }
    let mut no_ipam = conf("1.0.0", "n", &dir, json!({}));
    no_ipam.as_object_mut().unwrap().remove("ipam");
    let (_, v) = Call::new(PODWIRE, "ADD", "c1").run(&no_ipam);
    assert_eq!(v["code"], 7);
}

#[test]
fn state_is_private_and_corrupt_files_are_never_handed_out() {
    let dir = DataDir::new("perm");
    let c = conf("1.0.0", "net1", &dir, json!({"subnet": "10.80.0.0/29"}));
    add_ok(PODWIRE, "c1", &c);
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("net1"), 0o700);
    assert_eq!(mode("net1/10.80.0.2"), 0o600);
    assert_eq!(mode("net1/last_reserved_ip.0"), 0o600);
    assert_eq!(mode("net1/.podwire/by-attachment"), 0o700);
    // A garbage file and a directory where an allocation file should be: both stay taken.
    std::fs::write(dir.path().join("net1/10.80.0.3"), "\0\0garbage").unwrap();
    std::fs::create_dir(dir.path().join("net1/10.80.0.4")).unwrap();
    assert_eq!(add_ok(PODWIRE, "c2", &c), ["10.80.0.5"]);
    // A symlink in place of the network directory is refused (code 5).
    let other = DataDir::new("perm-link");
    std::fs::create_dir_all(other.path()).unwrap();
    std::os::unix::fs::symlink(dir.path().join("net1"), other.path().join("net1")).unwrap();
    let (code, v) = Call::new(PODWIRE, "ADD", "c3").run(&conf(
        "1.0.0",
        "net1",
        &other,
        json!({"subnet": "10.80.0.0/29"}),
    ));
    assert_eq!((code, v["code"].clone()), (1, json!(5)), "{v}");
}

#[test]
fn resolv_conf_fills_dns() {
    let dir = DataDir::new("dns");
    std::fs::create_dir_all(dir.path()).unwrap();
    let rc = dir.path().join("resolv.conf");
    std::fs::write(
        &rc,
        "nameserver 10.96.0.10\nsearch svc.cluster.local\noptions ndots:5\n",
    )
    .unwrap();
    let c = conf(
        "1.0.0",
        "net1",
        &dir,
        json!({"subnet": "10.81.0.0/24", "resolvConf": rc}),
    );
    let (code, v) = Call::new(PODWIRE, "ADD", "c1").run(&c);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["dns"]["nameservers"][0], "10.96.0.10");
    assert_eq!(v["dns"]["search"][0], "svc.cluster.local");
    assert_eq!(v["dns"]["options"][0], "ndots:5");
}

#[test]
fn version_lists_gc_and_status_capable_versions() {
    let (code, v) = Call::new(PODWIRE, "VERSION", "").run(&json!({"cniVersion": "1.1.0"}));
    assert_eq!(code, 0);
    assert!(v["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("1.1.0")));
}
