//! The loopback plugin against the real kernel: the plugin runs inside a throwaway "node" netns,
//! each pod is another throwaway netns.

use serde_json::{json, Value};
use testkit::{PluginCall, PluginOutput, TestNs};

const LOOPBACK: &str = env!("CARGO_BIN_EXE_loopback");

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "lo-test", "type": "loopback"})
}

fn call(node: &TestNs, command: &str, netns: &str, conf: &Value) -> PluginOutput {
    let c = PluginCall {
        command,
        container: "ctr-lo",
        netns,
        args: "",
        cni_path: "",
    };
    node.run_plugin(LOOPBACK, &c, conf)
}

fn lo_up(ns: &TestNs) -> bool {
    let links = ns.ip_json(&["link", "show", "lo"]);
    let flags = links[0]["flags"].as_array().unwrap();
    flags.iter().any(|f| f == "UP")
}

fn pod_with_lo_down() -> TestNs {
    let pod = TestNs::new("pwlp");
    pod.exec(&["ip", "link", "set", "lo", "down"]);
    assert!(!lo_up(&pod));
    pod
}

#[test]
fn add_brings_lo_up_and_reports_it_like_the_reference() {
    let node = TestNs::new("pwln");
    let pod = pod_with_lo_down();
    let out = call(&node, "ADD", &pod.path(), &conf("1.0.0"));
    assert_eq!(out.code, 0, "{} {}", out.json, out.stderr);
    assert!(lo_up(&pod));
    assert_eq!(out.json["cniVersion"], "1.0.0");
    assert_eq!(
        out.json["interfaces"],
        json!([{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": pod.path()}])
    );
    let ips = out.json["ips"].as_array().unwrap();
    assert_eq!(ips[0], json!({"address": "127.0.0.1/8", "interface": 0}));
    assert!(ips
        .iter()
        .all(|ip| ip["address"] != "::1/128" || ip["interface"] == 0));

    // CHECK passes while lo is up, fails once something took it down.
    let mut c = conf("1.0.0");
    c["prevResult"] = out.json.clone();
    assert_eq!(call(&node, "CHECK", &pod.path(), &c).code, 0);
    pod.exec(&["ip", "link", "set", "lo", "down"]);
    let bad = call(&node, "CHECK", &pod.path(), &c);
    assert_eq!(bad.code, 1);
    assert_eq!(bad.json["code"], 104, "{}", bad.json);
    assert!(bad.json["msg"].as_str().unwrap().contains("down"));
}

#[test]
fn chained_add_passes_prev_result_through() {
    let node = TestNs::new("pwln");
    let pod = pod_with_lo_down();
    let prev = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": pod.path()}],
        "ips": [{"address": "10.9.0.5/24", "interface": 0}]
    });
    let mut c = conf("1.0.0");
    c["prevResult"] = prev.clone();
    let out = call(&node, "ADD", &pod.path(), &c);
    assert_eq!(out.code, 0, "{} {}", out.json, out.stderr);
    for key in ["cniVersion", "interfaces", "ips"] {
        assert_eq!(out.json[key], prev[key], "{key}");
    }
    assert!(lo_up(&pod));
}

#[test]
fn del_takes_lo_down_and_tolerates_a_missing_netns() {
    let node = TestNs::new("pwln");
    let pod = TestNs::new("pwlp");
    let path = pod.path();
    assert_eq!(call(&node, "ADD", &path, &conf("0.4.0")).code, 0);
    let del = call(&node, "DEL", &path, &conf("0.4.0"));
    assert_eq!(del.code, 0, "{}", del.json);
    assert!(!lo_up(&pod));
    assert_eq!(call(&node, "DEL", &path, &conf("0.4.0")).code, 0, "again");
    drop(pod);
    let gone = call(&node, "DEL", &path, &conf("0.4.0"));
    assert_eq!(gone.code, 0, "netns gone: {}", gone.json);
    assert_eq!(call(&node, "DEL", "", &conf("0.4.0")).code, 0, "no netns");
}

#[test]
fn never_touches_its_own_namespaces_lo() {
    let node = TestNs::new("pwln");
    for command in ["DEL", "ADD"] {
        let out = call(&node, command, &node.path(), &conf("1.0.0"));
        assert_eq!(
            out.code, 1,
            "{command} on the plugin's own netns must be refused"
        );
        assert_eq!(out.json["code"], 4, "{}", out.json);
        assert!(lo_up(&node), "{command} left the node's lo alone");
    }
}

#[test]
fn add_on_a_missing_netns_is_an_environment_error() {
    let node = TestNs::new("pwln");
    let out = call(&node, "ADD", "/run/netns/pw-no-such-ns", &conf("1.0.0"));
    assert_eq!(out.code, 1);
    assert_eq!(out.json["code"], 4, "{}", out.json);
}
