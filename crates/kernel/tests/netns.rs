//! Namespace handling: detection, comparison, scoped entering, sockets
//! created inside a netns, create/list/delete, sysctl per netns.

mod common;

use common::TestNs;
use kernel::{sysctl, Netlink, Netns};

#[test]
fn not_a_netns_is_detected() {
    // A regular file.
    let file = std::env::temp_dir().join(format!("pwk-notns-{}", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    let e = Netns::open(&file).unwrap_err();
    std::fs::remove_file(&file).unwrap();
    assert!(e.is_not_netns(), "{e}");
    assert!(e.to_string().contains("is not a network namespace"), "{e}");

    // Another kind of namespace: nsfs, but not a netns.
    let e = Netns::open("/proc/self/ns/mnt").unwrap_err();
    assert!(e.is_not_netns(), "{e}");

    // A directory (procfs), and a missing path.
    assert!(Netns::open("/proc").unwrap_err().is_not_netns());
    let e = Netns::open("/run/netns/pwk-does-not-exist").unwrap_err();
    assert!(e.is_not_found() && !e.is_not_netns(), "{e}");
}

#[test]
fn same_netns_comparison() {
    let here = Netns::current().unwrap();
    assert!(here.is_current().unwrap());
    assert!(
        here.is_same(&Netns::open("/proc/self/task/".to_string() + &tid() + "/ns/net").unwrap())
    );
    let t = TestNs::new();
    assert!(!t.ns.is_current().unwrap());
    assert!(!t.ns.is_same(&here));
    assert!(t.ns.is_same(&Netns::named(&t.name).unwrap()));
}

fn tid() -> String {
    unsafe { libc::gettid() }.to_string()
}

#[test]
fn enter_guard_restores_thread_netns() {
    let t = TestNs::new();
    let before = Netns::current().unwrap();
    {
        let _g = t.ns.enter().unwrap();
        assert!(t.ns.is_current().unwrap());
        assert!(!before.is_current().unwrap());
    }
    assert!(before.is_current().unwrap());
    let inside = t.ns.run(|| Netns::current().unwrap()).unwrap();
    assert!(inside.is_same(&t.ns));
    assert!(before.is_current().unwrap());
}

#[test]
fn socket_created_inside_stays_there() {
    let t = TestNs::new();
    let before = Netns::current().unwrap();
    let nl = Netlink::new_in(&t.ns).unwrap();
    // The thread came back...
    assert!(before.is_current().unwrap());
    // ...but the socket sees the namespace's links: only lo.
    let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["lo"]);
}

#[test]
fn add_list_delete() {
    let t = TestNs::new();
    assert!(Netns::list().unwrap().contains(&t.name));
    let j = common::run_json("ip", &["-j", "netns", "list"]);
    assert!(j.to_string().contains(&t.name), "iproute2 sees it: {j}");
    assert!(Netns::add(&t.name).unwrap_err().is_exists());
    assert!(Netns::add("bad/name").is_err());

    let name = t.name.clone();
    drop(t);
    assert!(!Netns::list().unwrap().contains(&name));
    assert!(Netns::delete(&name).unwrap_err().is_not_found());
}

#[test]
fn sysctl_per_netns() {
    let a = TestNs::new();
    let b = TestNs::new();
    // New namespaces inherit IPv4 settings from the host: set both.
    sysctl::write_in(&a.ns, sysctl::IPV4_FORWARD, "1").unwrap();
    sysctl::write_in(&b.ns, sysctl::IPV4_FORWARD, "0").unwrap();
    assert_eq!(sysctl::read_in(&a.ns, sysctl::IPV4_FORWARD).unwrap(), "1");
    assert_eq!(sysctl::read_in(&b.ns, "net.ipv4.ip_forward").unwrap(), "0");
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &a.name,
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");

    let key = sysctl::ipv6_conf("lo", "disable_ipv6");
    sysctl::write_in(&b.ns, &key, "1").unwrap();
    assert_eq!(sysctl::read_in(&b.ns, &key).unwrap(), "1");
    assert_eq!(sysctl::read_in(&a.ns, &key).unwrap(), "0");

    let e = sysctl::read_in(&a.ns, "net/ipv4/conf/pwk-nope/arp_notify").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string()
            .contains("read sysctl net/ipv4/conf/pwk-nope/arp_notify"),
        "{e}"
    );
}
