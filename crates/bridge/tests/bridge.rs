//! The bridge plugin against the real kernel: every pod in a throwaway netns, the plugin itself
//! run inside a throwaway "node" netns (see common/mod.rs).

mod common;

use common::{Node, PODWIRE, REFERENCE_DIR};
use serde_json::{json, Value};

fn conf(node: &Node, subnet: &str, extra: Value) -> Value {
    let mut c = json!({
        "cniVersion": "1.1.0",
        "name": "testnet",
        "type": "podwire",
        "bridge": "pw0",
        "isGateway": true,
        "ipam": {"type": "podwire-ipam", "subnet": subnet, "dataDir": node.data_dir},
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// The result's addresses without their prefix.
fn ips_of(result: &Value) -> Vec<String> {
    let ips = result["ips"].as_array().expect("result has ips");
    ips.iter()
        .map(|ip| {
            let addr = ip["address"].as_str().expect("ip has an address");
            addr.split('/').next().unwrap().to_string()
        })
        .collect()
}

fn ip_of(result: &Value) -> String {
    ips_of(result).swap_remove(0)
}

#[test]
fn two_pods_reach_each_other_and_del_leaves_nothing() {
    let mut node = Node::new();
    let c = conf(
        &node,
        "10.250.1.0/24",
        json!({"isDefaultGateway": true, "ipMasq": true}),
    );
    let (p1, p2) = (node.pod(), node.pod());
    let r1 = node.podwire("ADD", &c, "pod1", &p1);
    assert_eq!(r1.code, 0, "{} {}", r1.json, r1.stderr);
    let r2 = node.podwire("ADD", &c, "pod2", &p2);
    assert_eq!(r2.code, 0, "{} {}", r2.json, r2.stderr);
    let (ip1, ip2) = (ip_of(&r1.json), ip_of(&r2.json));
    assert_ne!(ip1, ip2);
    assert_eq!(r1.json["ips"][0]["gateway"], "10.250.1.1");

    // the result lists bridge, host veth, pod interface (with sandbox), in the reference's order
    let ifs = r1.json["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 3);
    assert_eq!(ifs[0]["name"], "pw0");
    assert!(ifs[1]["name"].as_str().unwrap().starts_with("veth"));
    assert_eq!(ifs[2]["name"], "eth0");
    assert_eq!(ifs[2]["sandbox"], p1.as_str());
    assert_eq!(r1.json["ips"][0]["interface"], 2);
    assert_eq!(node.bridge_ports("pw0").len(), 2);

    assert!(node.ping(&p1, &ip2), "pod1 → pod2");
    assert!(node.ping(&p2, &ip1), "pod2 → pod1");
    assert!(node.ping_from_node(&ip1), "node → pod1");
    assert!(node.ping(&p1, "10.250.1.1"), "pod1 → gateway");
    let routes = node.pod_ip_json(&p1, &["route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], "10.250.1.1");
    assert!(node.nft().contains("masquerade"), "ipMasq installs a rule");

    for (ctr, ns) in [("pod1", &p1), ("pod2", &p2)] {
        let d = node.podwire("DEL", &c, ctr, ns);
        assert_eq!(d.code, 0, "{} {}", d.json, d.stderr);
    }
    assert!(node.bridge_ports("pw0").is_empty(), "no veth left");
    assert!(node.allocations("testnet").is_empty(), "no allocation left");
    assert!(
        !node.nft().contains("masquerade"),
        "no nft rule left: {}",
        node.nft()
    );
}

#[test]
fn del_is_idempotent_and_needs_no_netns() {
    let mut node = Node::new();
    let c = conf(&node, "10.250.2.0/24", json!({"ipMasq": true}));
    let p = node.pod();
    assert_eq!(node.podwire("ADD", &c, "ctr", &p).code, 0);
    // containerd 1.6: DEL with the netns, then again with an empty CNI_NETNS and no prevResult
    assert_eq!(node.podwire("DEL", &c, "ctr", &p).code, 0);
    assert_eq!(node.podwire("DEL", &c, "ctr", "").code, 0);
    // a container never added, and a netns that is gone
    assert_eq!(node.podwire("DEL", &c, "never-added", "").code, 0);
    assert_eq!(node.podwire("ADD", &c, "ctr2", &p).code, 0);
    node.delete_pod_netns(&p);
    let d = node.podwire("DEL", &c, "ctr2", &p);
    assert_eq!(d.code, 0, "{}", d.json);
    assert!(node.allocations("testnet").is_empty());
    assert!(node.bridge_ports("pw0").is_empty());
    assert!(!node.nft().contains("masquerade"));
}

#[test]
fn config_fields_take_effect_in_the_kernel() {
    let mut node = Node::new();
    let c = conf(
        &node,
        "10.250.3.0/24",
        json!({"mtu": 1400, "hairpinMode": true, "promiscMode": true,
               "runtimeConfig": {"mac": "0a:58:0a:fa:03:99"}}),
    );
    let p = node.pod();
    let r = node.podwire("ADD", &c, "ctr", &p);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    let eth0 = &node.pod_ip_json(&p, &["-d", "link", "show", "eth0"])[0];
    assert_eq!(eth0["mtu"], 1400);
    assert_eq!(eth0["address"], "0a:58:0a:fa:03:99");
    assert_eq!(r.json["interfaces"][2]["mac"], "0a:58:0a:fa:03:99");
    let host = r.json["interfaces"][1]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let hv = &node.ip_json(&["-d", "link", "show", &host])[0];
    assert_eq!(hv["mtu"], 1400);
    assert_eq!(
        hv["num_tx_queues"], 1,
        "one queue: no per-CPU queue setup under RTNL"
    );
    assert_eq!(hv["linkinfo"]["info_slave_data"]["hairpin"], true, "{hv}");
    let br = &node.ip_json(&["-d", "link", "show", "pw0"])[0];
    assert!(
        br["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "PROMISC"),
        "{br}"
    );

    // MAC from CNI_ARGS wins for the second pod
    let p2 = node.pod();
    let c2 = conf(&node, "10.250.3.0/24", json!({}));
    let r2 = node.exec(
        PODWIRE,
        "ADD",
        &c2,
        "ctr2",
        &p2,
        "IgnoreUnknown=1;MAC=0a:58:0a:fa:03:98",
    );
    assert_eq!(r2.code, 0, "{}", r2.json);
    assert_eq!(
        node.pod_ip_json(&p2, &["link", "show", "eth0"])[0]["address"],
        "0a:58:0a:fa:03:98"
    );
    // and args.cni.mac
    let p3 = node.pod();
    let c3 = conf(
        &node,
        "10.250.3.0/24",
        json!({"args": {"cni": {"mac": "0a:58:0a:fa:03:97"}}}),
    );
    assert_eq!(node.podwire("ADD", &c3, "ctr3", &p3).code, 0);
    assert_eq!(
        node.pod_ip_json(&p3, &["link", "show", "eth0"])[0]["address"],
        "0a:58:0a:fa:03:97"
    );
}

/// `vlan` needs a kernel built with CONFIG_BRIDGE_VLAN_FILTERING. Where it has it, the port gets
/// the VLAN as its untagged PVID; where it has not, ADD fails with a message that says so and
/// leaves nothing behind.
#[test]
fn vlan_takes_effect_or_fails_cleanly() {
    let mut node = Node::new();
    let probe = format!("{}-vlanprobe", &node.name[..4]);
    let supported = common::run_ok(&[
        "ip",
        "-n",
        &node.name,
        "link",
        "add",
        &probe,
        "type",
        "bridge",
        "vlan_filtering",
        "1",
    ]);
    common::run_ok(&["ip", "-n", &node.name, "link", "del", &probe]);
    let c = conf(
        &node,
        "10.250.11.0/24",
        json!({"vlan": 100, "bridge": "pwv0"}),
    );
    let p = node.pod();
    let r = node.podwire("ADD", &c, "vlan", &p);
    if supported {
        assert_eq!(r.code, 0, "{}", r.json);
        let host = r.json["interfaces"][1]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let text = common::run(&[
            "bridge", "-n", &node.name, "-j", "vlan", "show", "dev", &host,
        ]);
        assert!(text.contains("100"), "{text}");
    } else {
        assert_ne!(r.code, 0);
        assert!(
            r.json["msg"].as_str().unwrap().contains("VLAN filtering"),
            "{}",
            r.json
        );
        assert!(node.allocations("testnet").is_empty());
        assert_eq!(
            node.pod_ip_json(&p, &["link", "show"])
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn the_talks_config_works_as_shown() {
    let mut node = Node::new();
    let log = node.data_dir.with_extension("log");
    let c = json!({"cniVersion": "0.3.1", "name": "mynet", "type": "podwire",
                   "network": "10.244.0.0/16", "subnet": "10.244.0.0/24",
                   "dataDir": node.data_dir, "logFile": log});
    // the talk's config has no ipam section: podwire-ipam's default data dir would be the host's,
    // so point it at the test dir through the same key the ipam section would use.
    let p = node.pod();
    let r = node.podwire("ADD", &c, "talk", &p);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    assert_eq!(r.json["cniVersion"], "0.3.1");
    assert_eq!(r.json["ips"][0]["version"], "4");
    assert_eq!(r.json["ips"][0]["gateway"], "10.244.0.1");
    assert_eq!(r.json["ips"][0]["address"], "10.244.0.2/24");
    let addrs = node.ip_json(&["addr", "show", "cni0"]);
    assert_eq!(addrs[0]["addr_info"][0]["local"], "10.244.0.1");
    let routes = node.pod_ip_json(&p, &["route", "show", "default"]);
    assert_eq!(routes[0]["gateway"], "10.244.0.1");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("added 10.244.0.2/24 gw 10.244.0.1, host veth veth"),
        "{logged}"
    );
    let _ = std::fs::remove_file(&log);
    assert_eq!(node.podwire("DEL", &c, "talk", &p).code, 0);
}

#[test]
fn every_result_version_is_produced_on_request() {
    let mut node = Node::new();
    for (i, v) in [
        "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
    ]
    .iter()
    .enumerate()
    {
        let mut c = conf(&node, "10.250.4.0/24", json!({}));
        c["cniVersion"] = json!(v);
        let p = node.pod();
        let ctr = format!("v{i}");
        let r = node.podwire("ADD", &c, &ctr, &p);
        assert_eq!(r.code, 0, "{v}: {}", r.json);
        assert_eq!(r.json["cniVersion"], *v);
        if v.starts_with("0.1") || v.starts_with("0.2") {
            assert!(
                r.json["ip4"]["ip"]
                    .as_str()
                    .unwrap()
                    .starts_with("10.250.4."),
                "{v}: {}",
                r.json
            );
        } else {
            assert_eq!(r.json["interfaces"].as_array().unwrap().len(), 3, "{v}");
            assert_eq!(
                r.json["ips"][0].get("version").is_some(),
                v.starts_with("0."),
                "{v}"
            );
        }
        assert_eq!(node.podwire("DEL", &c, &ctr, &p).code, 0);
    }
}

#[test]
fn a_failed_add_leaves_nothing_behind() {
    let mut node = Node::new();
    // 1. the interface already exists in the pod
    let c = conf(&node, "10.250.5.0/24", json!({"ipMasq": true}));
    let p = node.pod();
    common::run(&[
        "ip",
        "-n",
        p.trim_start_matches("/run/netns/"),
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0p",
    ]);
    let r = node.podwire("ADD", &c, "exists", &p);
    assert_ne!(r.code, 0);
    assert_eq!(
        node.pod_ip_json(&p, &["link", "show"])
            .as_array()
            .unwrap()
            .len(),
        3,
        "lo and the test's own pair"
    );
    assert_eq!(
        r.json["code"],
        cni::error::plugin_code::INTERFACE_EXISTS,
        "{}",
        r.json
    );
    assert!(r.json["msg"].as_str().unwrap().contains("eth0"));
    assert!(node.allocations("testnet").is_empty());
    assert!(node.bridge_ports("pw0").is_empty());
    assert!(!node.nft().contains("masquerade"));

    // 2. an exhausted range: a /30 has one address besides the gateway
    let small = conf(&node, "10.250.6.0/30", json!({"ipMasq": true}));
    let (a, b) = (node.pod(), node.pod());
    assert_eq!(node.podwire("ADD", &small, "first", &a).code, 0);
    let r = node.podwire("ADD", &small, "second", &b);
    assert_ne!(r.code, 0);
    assert!(
        r.json["msg"].as_str().unwrap().contains("10.250.6.0/30"),
        "{}",
        r.json
    );
    assert_eq!(
        node.bridge_ports("pw0").len(),
        1,
        "only the first pod's veth"
    );
    assert_eq!(
        node.pod_ip_json(&b, &["link", "show"])
            .as_array()
            .unwrap()
            .len(),
        1,
        "only lo in the failed pod"
    );
    assert_eq!(node.nft().matches("masquerade").count(), 1);
    assert_eq!(node.podwire("DEL", &small, "first", &a).code, 0);

    // 3. a delegated IPAM that fails
    let mut bad = conf(&node, "10.250.7.0/24", json!({}));
    bad["ipam"] = json!({"type": "host-local", "subnet": "not-a-cidr"});
    let p3 = node.pod();
    let r = node.podwire("ADD", &bad, "badipam", &p3);
    assert_ne!(r.code, 0);
    assert!(
        r.json["msg"].as_str().unwrap().contains("host-local"),
        "{}",
        r.json
    );
    assert!(node.bridge_ports("pw0").is_empty());
    assert_eq!(
        node.pod_ip_json(&p3, &["link", "show"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn check_compares_the_kernel_with_the_previous_result() {
    let mut node = Node::new();
    let mut c = conf(&node, "10.250.8.0/24", json!({"isDefaultGateway": true}));
    let p = node.pod();
    let r = node.podwire("ADD", &c, "ctr", &p);
    assert_eq!(r.code, 0);
    c["prevResult"] = r.json.clone();
    let ok = node.podwire("CHECK", &c, "ctr", &p);
    assert_eq!(ok.code, 0, "{} {}", ok.json, ok.stderr);
    let ns = p.trim_start_matches("/run/netns/");
    common::run(&["ip", "-n", ns, "link", "set", "eth0", "mtu", "1300"]);
    let bad = node.podwire("CHECK", &c, "ctr", &p);
    assert_ne!(bad.code, 0);
    assert!(
        bad.json["msg"].as_str().unwrap().contains("MTU"),
        "{}",
        bad.json
    );
    common::run(&["ip", "-n", ns, "link", "set", "eth0", "mtu", "1500"]);
    common::run(&["ip", "-n", ns, "route", "del", "default"]);
    let bad = node.podwire("CHECK", &c, "ctr", &p);
    assert!(
        bad.json["msg"].as_str().unwrap().contains("route"),
        "{}",
        bad.json
    );
}

#[test]
fn gc_removes_only_stale_attachments_and_status_reports_readiness() {
    let mut node = Node::new();
    let mut c = conf(&node, "10.250.9.0/29", json!({"ipMasq": true}));
    let pods: Vec<String> = (0..3).map(|_| node.pod()).collect();
    for (i, p) in pods.iter().enumerate() {
        assert_eq!(node.podwire("ADD", &c, &format!("gc{i}"), p).code, 0);
    }
    c["cni.dev/valid-attachments"] = json!([{"containerID": "gc1", "ifname": "eth0"}]);
    let r = node.podwire("GC", &c, "", "");
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    assert_eq!(node.allocations("testnet").len(), 1);
    assert_eq!(node.bridge_ports("pw0").len(), 1);
    assert_eq!(node.nft().matches("masquerade").count(), 1);

    let s = node.podwire("STATUS", &c, "", "");
    assert_eq!(s.code, 0, "{}", s.json);
    // fill the /29 (5 usable besides the gateway) and STATUS says code 50
    for i in 3..8 {
        let p = node.pod();
        node.podwire("ADD", &c, &format!("gc{i}"), &p);
    }
    let s = node.podwire("STATUS", &c, "", "");
    assert_eq!(s.json["code"], 50, "{}", s.json);
}

/// The same config through Debian's reference `bridge` + `host-local` and through podwire: same
/// result shape, same kernel state.
#[test]
fn matches_the_reference_bridge_plugin() {
    let mut node = Node::new();
    let base = json!({
        "cniVersion": "1.0.0", "name": "cmpnet", "bridge": "cmp0", "isGateway": true, "isDefaultGateway": true,
        "ipam": {"subnet": "10.250.10.0/24", "dataDir": node.data_dir.join("ref")}
    });
    let mut reference = base.clone();
    reference["type"] = json!("bridge");
    reference["ipam"]["type"] = json!("host-local");
    let mut ours = base.clone();
    ours["type"] = json!("podwire");
    ours["ipam"]["type"] = json!("podwire-ipam");
    ours["ipam"]["dataDir"] = json!(node.data_dir.join("ours"));
    let (pr, po) = (node.pod(), node.pod());
    let r = node.exec(
        &format!("{REFERENCE_DIR}/bridge"),
        "ADD",
        &reference,
        "ref",
        &pr,
        "",
    );
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    let o = node.podwire("ADD", &ours, "ours", &po);
    assert_eq!(o.code, 0, "{}", o.json);

    let shape = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        for k in ["interfaces", "ips", "routes"] {
            if let Some(first) = v[k].get(0) {
                keys.extend(
                    first
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(|x| format!("{k}.{x}")),
                );
            }
        }
        keys.sort();
        keys
    };
    assert_eq!(shape(&o.json), shape(&r.json));
    assert_eq!(
        o.json["interfaces"].as_array().unwrap().len(),
        r.json["interfaces"].as_array().unwrap().len()
    );
    assert_eq!(o.json["ips"][0]["gateway"], r.json["ips"][0]["gateway"]);
    assert_eq!(o.json["ips"][0]["address"], r.json["ips"][0]["address"]);

    let routes = |ns: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = node
            .pod_ip_json(ns, &["route", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["dst"].as_str().unwrap_or("").to_string(),
                    r["gateway"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(routes(&po), routes(&pr));
    let addrs = |v: Value| -> Vec<String> {
        v[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["family"] == "inet")
            .map(|a| format!("{}/{}", a["local"], a["prefixlen"]))
            .collect()
    };
    assert_eq!(
        addrs(node.ip_json(&["addr", "show", "cmp0"])),
        vec!["\"10.250.10.1\"/24".to_string()]
    );
    assert_eq!(node.bridge_ports("cmp0").len(), 2);
    assert_eq!(
        node.exec(
            &format!("{REFERENCE_DIR}/bridge"),
            "DEL",
            &reference,
            "ref",
            &pr,
            ""
        )
        .code,
        0
    );
    assert_eq!(node.podwire("DEL", &ours, "ours", &po).code, 0);
    assert!(node.bridge_ports("cmp0").is_empty());
}

/// Any IPAM other than podwire-ipam is exec'd from CNI_PATH, as libcni would: here Debian's
/// reference host-local (state on disk) and static (none).
#[test]
fn delegated_ipam_plugins_are_exec_d_from_cni_path() {
    let mut node = Node::new();
    let mut c = conf(&node, "unused", json!({"isDefaultGateway": true}));
    c["cniVersion"] = json!("1.0.0"); // Debian's reference plugins stop at 1.0.0
    c["ipam"] = json!({"type": "host-local", "subnet": "10.250.12.0/24", "dataDir": node.data_dir});
    let p = node.pod();
    let r = node.podwire("ADD", &c, "hl", &p);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    assert_eq!(r.json["ips"][0]["address"], "10.250.12.2/24");
    assert_eq!(node.allocations("testnet"), vec!["10.250.12.2".to_string()]);
    c["prevResult"] = r.json.clone();
    assert_eq!(node.podwire("CHECK", &c, "hl", &p).code, 0);
    assert_eq!(node.podwire("DEL", &c, "hl", &p).code, 0);
    assert!(
        node.allocations("testnet").is_empty(),
        "host-local released on DEL"
    );

    let mut s = conf(&node, "unused", json!({}));
    s["cniVersion"] = json!("1.0.0");
    s["ipam"] = json!({"type": "static", "addresses": [{"address": "10.250.13.7/24", "gateway": "10.250.13.1"}]});
    let p2 = node.pod();
    let r = node.podwire("ADD", &s, "st", &p2);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    assert_eq!(r.json["ips"][0]["address"], "10.250.13.7/24");
    let addrs = node.pod_ip_json(&p2, &["addr", "show", "eth0"]);
    assert_eq!(addrs[0]["addr_info"][0]["local"], "10.250.13.7");
    assert_eq!(node.podwire("DEL", &s, "st", &p2).code, 0);
}

/// A pod given a deleted pod's addresses (with a new MAC) is reachable at once: ADD announces
/// them (gratuitous ARP, unsolicited NA with override), so neighbours whose entry still holds
/// the old MAC, REACHABLE for 15–45 s, replace it instead of sending into the void.
#[test]
fn a_reused_address_is_reachable_at_once() {
    let mut node = Node::new();
    let mut c = conf(&node, "10.250.9.0/24", json!({}));
    c["ipam"] = json!({"type": "podwire-ipam", "dataDir": node.data_dir, "ranges": [
        [{"subnet": "10.250.9.0/24"}], [{"subnet": "fd00:250:9::/64"}]]});
    let (pa, pb, pc) = (node.pod(), node.pod(), node.pod());
    let ra = node.podwire("ADD", &c, "a", &pa);
    assert_eq!(ra.code, 0, "{} {}", ra.json, ra.stderr);
    let rb = node.podwire("ADD", &c, "b", &pb);
    assert_eq!(rb.code, 0, "{} {}", rb.json, rb.stderr);
    let b_ips = ips_of(&rb.json);
    assert_eq!(b_ips.len(), 2, "an IPv4 and an IPv6 address: {}", rb.json);
    // A and the node (the gateway) talk to B, so they hold neighbour entries with B's MAC (A's
    // stays REACHABLE: without the announcement, A is the one that cannot reach C).
    let a_ns = pa.trim_start_matches("/run/netns/");
    let ping_within_1s = |ns: &str, ip: &str| {
        common::run_ok(&["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip])
    };
    for ip in &b_ips {
        assert!(ping_within_1s(a_ns, ip), "A → B {ip}");
        assert!(ping_within_1s(&node.name, ip), "node → B {ip}");
    }
    let old_mac = rb.json["interfaces"][2]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    // Past the neighbour locktime (1 s), with those entries still REACHABLE.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let d = node.podwire("DEL", &c, "b", &pb);
    assert_eq!(d.code, 0, "{} {}", d.json, d.stderr);
    let rc = node.exec(
        PODWIRE,
        "ADD",
        &c,
        "c",
        &pc,
        &format!("IP={}", b_ips.join(",")),
    );
    assert_eq!(rc.code, 0, "{} {}", rc.json, rc.stderr);
    let new_mac = rc.json["interfaces"][2]["mac"].as_str().unwrap();
    assert_ne!(new_mac, old_mac, "C has a MAC of its own");
    let mut unreachable = Vec::new();
    for (who, ns) in [("A", a_ns), ("the node", node.name.as_str())] {
        for ip in b_ips.iter().filter(|ip| !ping_within_1s(ns, ip)) {
            let entry = testkit::ip_json(ns, &["neigh", "show", ip]);
            unreachable.push(format!("{who} → {ip}: neighbour entry {entry}"));
        }
    }
    assert!(
        unreachable.is_empty(),
        "C not reachable at B's old addresses within 1 s: {unreachable:?}"
    );
}
