//! Regression: `NetnsGuard::restore` forgot the whole guard and so leaked the fd of the original
//! netns: one fd per `Netlink::new_in`/`Nftables::new_in`/`Netns::run`. A long-lived user (the
//! churn suite's checker, a node agent) ran out of descriptors (EMFILE) after ~1,000 calls.

use podwire_reliability_tests::{is_root, node::Node};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn opening_sockets_in_another_netns_leaks_no_fd() {
    assert!(is_root(), "needs root (netns)");
    let node = Node::new();
    let _ = node.netlink();
    let before = open_fds();
    for _ in 0..200 {
        let nl = node.netlink();
        drop(nl);
        node.ns.run(|| ()).unwrap();
    }
    let after = open_fds();
    assert!(
        after <= before + 2,
        "fds: {before} before, {after} after 200 rounds"
    );
}
