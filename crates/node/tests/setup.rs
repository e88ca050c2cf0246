//! Node setup against the real kernel, inside a throwaway netns standing in for a node (root).

mod common;

use common::Node;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

const CLUSTER4: &str = "10.253.0.0/16";
const CLUSTER6: &str = "fd00:253::/56";

fn addrs_of(node: &Node, dev: &str) -> Vec<String> {
    node.ns.ip_json(&["addr", "show", "dev", dev])[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn dual_stack_setup_is_as_specified_a_second_run_is_a_no_op_and_teardown_restores() {
    let node = Node::new();
    // A new netns inherits the host's IPv4 forwarding: start from "off" to see it restored.
    node.forwarding_off();
    let before = node.snapshot();

    let mut c = node.config(
        &["10.253.1.0/24", "fd00:253:0:1::/64"],
        &[CLUSTER4, CLUSTER6],
    );
    c.mtu = Some(1400);
    let first = node.setup(c.clone());
    assert!(first.changed(), "{}", first.summary());
    assert!(
        first.summary().contains("created bridge cni0"),
        "{}",
        first.summary()
    );

    // The conflist: exactly the documented shape, 0644, under its priority name.
    let path = node.conf_dir().join("10-podwire.conflist");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    assert_eq!(
        read_json(&path),
        json!({"cniVersion": "1.0.0", "name": "podwire", "plugins": [{
            "type": "podwire", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true,
            "mtu": 1400, "hairpinMode": true,
            "ipam": {"type": "podwire-ipam", "dataDir": node.ipam_dir().display().to_string(),
                     "ranges": [[{"subnet": "10.253.1.0/24"}], [{"subnet": "fd00:253:0:1::/64"}]]}
        }, {"type": "podwire-portmap", "capabilities": {"portMappings": true}}]})
    );
    // Parses as a conflist the way the runtime library reads it.
    cni::NetConfList::parse(&std::fs::read(&path).unwrap()).unwrap();

    // The bridge: up, MTU, one gateway per family.
    let link = &node.ns.ip_json(&["-d", "link", "show", "cni0"])[0];
    assert_eq!(link["linkinfo"]["info_kind"], "bridge", "{link}");
    assert_eq!(link["mtu"], 1400);
    assert!(
        link["flags"].as_array().unwrap().contains(&json!("UP")),
        "{link}"
    );
    let mut addrs = addrs_of(&node, "cni0");
    addrs.sort();
    assert_eq!(addrs, vec!["10.253.1.1/24", "fd00:253:0:1::1/64"]);

    // Forwarding on for both families.
    assert_eq!(node.sysctl(node::forwarding::IPV4), "1");
    assert_eq!(node.sysctl(node::forwarding::IPV6), "1");

    // The nft table: forward accept both ways per cluster CIDR, masquerade per pod CIDR.
    let table = node.nft_table(false);
    for needle in [
        "type filter hook forward priority filter",
        "type nat hook postrouting priority srcnat",
        "ip saddr 10.253.0.0/16 accept",
        "ip daddr 10.253.0.0/16 accept",
        "ip6 saddr fd00:253::/56 accept",
        "ip6 daddr fd00:253::/56 accept",
        "ip saddr 10.253.1.0/24 ip daddr != 10.253.0.0/16 masquerade",
        "ip6 saddr fd00:253:0:1::/64 ip6 daddr != fd00:253::/56 masquerade",
        "comment \"podwire-node masquerade 10.253.1.0/24 to !10.253.0.0/16\"",
    ] {
        assert!(table.contains(needle), "{needle:?} missing in:\n{table}");
    }
    assert_eq!(table.matches(" accept comment").count(), 4, "{table}");
    assert_eq!(
        table.matches("masquerade").count(),
        4,
        "2 rules + 2 comments: {table}"
    );
    // The plugin's per-pod table is a different one.
    assert!(!node
        .ns
        .exec(&["nft", "list", "tables"])
        .contains("inet podwire\n"));

    // Second run: nothing changes, not even a file's inode or an nft handle.
    let conf_ino = std::fs::metadata(&path).unwrap().ino();
    let state_path = node.state_dir().join("node.json");
    let state_before = std::fs::read(&state_path).unwrap();
    let state_ino = std::fs::metadata(&state_path).unwrap().ino();
    let handles = node.nft_table(true);
    let after_first = node.snapshot();
    let second = node.setup(c);
    assert!(!second.changed(), "{}", second.summary());
    assert!(second.summary().contains("nothing changed"));
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), conf_ino);
    assert_eq!(std::fs::metadata(&state_path).unwrap().ino(), state_ino);
    assert_eq!(std::fs::read(&state_path).unwrap(), state_before);
    assert_eq!(node.nft_table(true), handles);
    assert_eq!(node.snapshot(), after_first);

    // The state says what teardown will undo.
    let state = read_json(&state_path);
    assert_eq!(state["bridge"]["created"], true, "{state}");
    assert_eq!(state["forwarding"][node::forwarding::IPV4], "0", "{state}");
    assert_eq!(state["forwarding"][node::forwarding::IPV6], "0", "{state}");

    // The agent's NetworkPolicy table (with its pod-start gate) goes with the node too.
    node.ns
        .exec(&["nft", "add", "table", "inet", kernel::owned::POLICY_TABLE]);
    let down = node.teardown();
    assert!(
        down.summary().contains("deleted bridge cni0"),
        "{}",
        down.summary()
    );
    assert!(
        down.summary()
            .contains("deleted nft table inet podwire-policy"),
        "{}",
        down.summary()
    );
    assert_eq!(node.snapshot(), before);
    // A second teardown has nothing left to do.
    assert!(!node.teardown().changed());
}

#[test]
fn a_new_pod_cidr_replaces_the_old_state() {
    let node = Node::new();
    node.forwarding_off();
    let before = node.snapshot();
    node.setup(node.config(&["10.253.2.0/24"], &[CLUSTER4]));
    let o = node.setup(node.config(&["10.253.3.0/24"], &[CLUSTER4]));
    let s = o.summary();
    assert!(s.contains("removed address 10.253.2.1/24 from cni0"), "{s}");
    assert!(s.contains("added gateway 10.253.3.1/24"), "{s}");
    assert!(!s.contains("created bridge"), "{s}");
    assert_eq!(addrs_of(&node, "cni0"), vec!["10.253.3.1/24"]);
    let table = node.nft_table(false);
    assert!(table.contains("ip saddr 10.253.3.0/24 ip daddr != 10.253.0.0/16 masquerade"));
    assert!(!table.contains("10.253.2."), "{table}");
    assert_eq!(table.matches(" accept comment").count(), 2, "{table}");
    let conf = read_json(&node.conf_dir().join("10-podwire.conflist"));
    assert_eq!(
        conf["plugins"][0]["ipam"]["ranges"],
        json!([[{"subnet": "10.253.3.0/24"}]])
    );

    // Dual-stack to single-stack and another file name: IPv6 forwarding goes back, the old
    // file goes away.
    node.setup(node.config(
        &["10.253.3.0/24", "fd00:253:0:3::/64"],
        &[CLUSTER4, CLUSTER6],
    ));
    assert_eq!(node.sysctl(node::forwarding::IPV6), "1");
    let mut c = node.config(&["10.253.3.0/24"], &[CLUSTER4]);
    c.conf_file = "05-podwire.conflist".into();
    let s = node.setup(c).summary();
    assert!(s.contains("restored net/ipv6/conf/all/forwarding=0"), "{s}");
    assert_eq!(node.sysctl(node::forwarding::IPV6), "0");
    assert_eq!(
        common::files_under(&node.conf_dir()),
        vec!["05-podwire.conflist"]
    );
    assert!(!node.nft_table(false).contains("ip6"));

    node.teardown();
    assert_eq!(node.snapshot(), before);
}

#[test]
fn an_existing_bridge_and_forwarding_are_left_as_they_were() {
    let node = Node::new();
    node.ns
        .exec(&["ip", "link", "add", "cni0", "type", "bridge"]);
    node.ns
        .exec(&["ip", "addr", "add", "192.168.77.1/24", "dev", "cni0"]);
    kernel::sysctl::write_in(&node.ns.ns, node::forwarding::IPV4, "1").unwrap();
    let before = node.snapshot();

    let o = node.setup(node.config(&["10.253.4.0/24"], &[CLUSTER4]));
    assert!(!o.summary().contains("created bridge"), "{}", o.summary());
    assert!(!o.summary().contains("ip_forward"), "{}", o.summary());
    let mut addrs = addrs_of(&node, "cni0");
    addrs.sort();
    assert_eq!(addrs, vec!["10.253.4.1/24", "192.168.77.1/24"]);

    let down = node.teardown().summary();
    assert!(
        down.contains("removed address 10.253.4.1/24 from cni0"),
        "{down}"
    );
    assert!(!down.contains("deleted bridge"), "{down}");
    // The bridge was brought up by setup; everything else is as before.
    node.ns.exec(&["ip", "link", "set", "cni0", "down"]);
    assert_eq!(node.snapshot(), before);
}

#[test]
fn refusals_name_the_problem_and_change_nothing() {
    let node = Node::new();
    // A link of another kind under the bridge's name.
    node.ns.exec(&[
        "ip", "link", "add", "cni0", "type", "veth", "peer", "name", "cni0p",
    ]);
    let before = node.snapshot();
    let c = node.config(&["10.253.5.0/24"], &[CLUSTER4]);
    let e = node.inside(|| node::setup(c)).unwrap_err();
    assert_eq!(e.code.number(), 7);
    assert!(e.msg.contains("cni0") && e.msg.contains("veth"), "{e}");
    assert_eq!(node.snapshot(), before);

    // Someone else's address in the pod CIDR on an existing bridge.
    let mut c = node.config(&["10.253.5.0/24"], &[CLUSTER4]);
    c.bridge = "br-other".into();
    node.ns
        .exec(&["ip", "link", "add", "br-other", "type", "bridge"]);
    node.ns
        .exec(&["ip", "addr", "add", "10.253.5.9/24", "dev", "br-other"]);
    let e = node.inside(|| node::setup(c)).unwrap_err();
    assert!(e.msg.contains("10.253.5.9/24"), "{e}");
    node.teardown();
}

#[test]
fn teardown_waits_for_pods_to_go_unless_forced() {
    let node = Node::new();
    node.forwarding_off();
    let before = node.snapshot();
    node.setup(node.config(&["10.253.6.0/24"], &[CLUSTER4]));
    // A pod's host-side veth on the bridge.
    node.ns.exec(&[
        "ip", "link", "add", "vethpod", "type", "veth", "peer", "name", "vethpeer",
    ]);
    node.ns
        .exec(&["ip", "link", "set", "vethpod", "master", "cni0"]);
    let opts = node.teardown_opts();
    let e = node.inside(|| node::teardown(&opts)).unwrap_err();
    assert_eq!(e.code.number(), 11, "{e}");
    assert!(e.msg.contains("vethpod"), "{e}");
    assert!(
        node.conf_dir().join("10-podwire.conflist").exists(),
        "refused, yet removed"
    );
    assert!(!node.nft_table(false).is_empty());

    let opts = node::TeardownOptions {
        force: true,
        ..node.teardown_opts()
    };
    node.inside(|| node::teardown(&opts)).unwrap();
    node.ns.exec(&["ip", "link", "del", "vethpod"]);
    assert_eq!(node.snapshot(), before);
}

#[test]
fn the_cli_options_drive_the_same_setup() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Setup(Box<node::cli::SetupArgs>),
        Teardown(node::cli::TeardownArgs),
    }
    let node = Node::new();
    let before = node.snapshot();
    let conf_dir = node.conf_dir().display().to_string();
    let state_dir = node.state_dir().display().to_string();
    let setup = Cli::parse_from([
        "x",
        "setup",
        "--pod-cidr",
        "10.253.7.0/24",
        "--cluster-cidr",
        CLUSTER4,
        "--conf-dir",
        &conf_dir,
        "--state-dir",
        &state_dir,
        "--network",
        "kubenet",
    ]);
    let Cmd::Setup(a) = setup.cmd else {
        unreachable!()
    };
    let summary = node.inside(|| node::cli::run_setup(&a)).unwrap();
    assert!(summary.contains("pod CIDR 10.253.7.0/24"), "{summary}");
    assert!(summary.contains("chaining podwire-portmap"), "{summary}");
    let conf = read_json(&node.conf_dir().join("10-podwire.conflist"));
    assert_eq!(conf["name"], "kubenet");
    assert_eq!(
        conf["plugins"][1],
        json!({"type": "podwire-portmap", "capabilities": {"portMappings": true}})
    );
    let again = node.inside(|| node::cli::run_setup(&a)).unwrap();
    assert!(again.contains("nothing changed"), "{again}");

    let down = Cli::parse_from(["x", "teardown", "--state-dir", &state_dir]);
    let Cmd::Teardown(t) = down.cmd else {
        unreachable!()
    };
    node.inside(|| node::cli::run_teardown(&t)).unwrap();
    assert_eq!(node.snapshot(), before);
}
