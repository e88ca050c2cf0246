//! The agent's repair of the plugins' node-wide tables (issue #22 item 6): a pod added through
//! the conflist node setup writes, by the runtime library as containerd would (so libcni's cache
//! holds what it holds on a real node); a firewall reload (`nft flush ruleset`) kills its
//! hostPort and its anti-spoofing guard; the agent's pass puts both back from the cache, with no
//! pod restarted, and CHECK passes again.

mod common;

use common::{Node, TestNs};
use node::agent::plugin_tables::{put_back, put_back_guards};
use runtime::{Cache, CniConfig, RuntimeConf};
use serde_json::json;

#[test]
fn a_flushed_ruleset_gets_its_host_ports_back_from_libcnis_cache() {
    let bins = [
        testkit::workspace_binary("podwire-bridge", "podwire"),
        testkit::workspace_binary("podwire-portmap", "podwire-portmap"),
    ];
    let node = Node::new();
    node.setup(node.config(&["10.253.9.0/24"], &["10.253.0.0/16"]));
    let list = runtime::load_network(&node.conf_dir(), "podwire").unwrap();
    assert!(
        list.plugins.iter().any(|p| p.kind == "podwire-portmap"),
        "the conflist chains portmap"
    );
    let cache_dir = node.dir.join("cni-cache");
    let cni = CniConfig::new(
        bins.iter()
            .map(|b| b.parent().unwrap().to_path_buf())
            .collect(),
    )
    .with_cache_dir(&cache_dir);
    let pod = TestNs::new("pwhp");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "portMappings".into(),
        json!([{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let rt = RuntimeConf {
        container_id: "hostports-pod".into(),
        netns: pod.path(),
        ifname: "eth0".into(),
        args: Vec::new(),
        capability_args: caps,
    };
    node.inside(|| cni.add_network_list(&list, &rt)).unwrap();
    let mapped = || node.ns.exec(&["nft", "list", "ruleset"]).contains("18080");
    assert!(mapped(), "ADD mapped the port");

    node.ns.exec(&["nft", "flush", "ruleset"]);
    assert!(!mapped(), "the reload took the mapping");
    assert!(
        node.inside(|| cni.check_network_list(&list, &rt)).is_err(),
        "CHECK sees the mapping is gone"
    );

    let guarded = || {
        node.ns
            .exec(&["nft", "list", "ruleset"])
            .contains("10.253.9.")
    };
    assert!(!guarded(), "the reload took the spoofCheck elements");
    let said = node
        .inside(|| put_back_guards(&Cache::new(&cache_dir), "podwire"))
        .unwrap();
    assert!(
        said.contains("elements of 1 port(s) were missing"),
        "{said}"
    );
    assert!(guarded(), "the pass put the pod's guard back");
    let said = node
        .inside(|| put_back(&Cache::new(&cache_dir), "podwire"))
        .unwrap();
    assert!(said.contains("rebuilt, 1 attachment(s) put back"), "{said}");
    assert!(mapped(), "the pass put the mapping back");
    node.inside(|| cni.check_network_list(&list, &rt)).unwrap();

    let again = node
        .inside(|| put_back(&Cache::new(&cache_dir), "podwire"))
        .unwrap();
    assert_eq!(again, "", "an intact table: nothing done, nothing said");
    let again = node
        .inside(|| put_back_guards(&Cache::new(&cache_dir), "podwire"))
        .unwrap();
    assert_eq!(again, "", "guards in place: nothing done, nothing said");

    node.inside(|| cni.del_network_list(&list, &rt)).unwrap();
    node.teardown();
}
