//! podwire-portmap against the real kernel (see common/mod.rs for the topology).

mod common;

use common::*;
use serde_json::json;

fn web(host_port: u16) -> serde_json::Value {
    json!([{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}])
}

#[test]
fn tcp_mapping_is_reached_from_everywhere_and_del_removes_it() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    tcp_server(&n.pods[p1].ns.ns, "[::]:80", "pod1"); // dual-stack socket
                                                      // containerd's capitalized keys, HostIP "" = every address
    let c = n.conf(
        p1,
        json!([{"HostPort": 8080, "ContainerPort": 80, "Protocol": "TCP", "HostIP": ""}]),
    );
    let out = n.ok("ADD", p1, &c);
    assert_eq!(out["ips"], n.prev_result(p1)["ips"], "prevResult passed on");

    let to_uplink = format!("{NODE_UPLINK_V4}:8080");
    let to_gateway = format!("{GATEWAY_V4}:8080");
    let client = &n.client.ns;
    assert_eq!(
        tcp_get(client, &to_uplink).as_deref(),
        Some("pod1"),
        "another host"
    );
    assert_eq!(
        tcp_get(client, &format!("[{NODE_UPLINK_V6}]:8080")).as_deref(),
        Some("pod1"),
        "another host over IPv6"
    );
    assert_eq!(
        tcp_get(&n.pods[p2].ns.ns, &to_gateway).as_deref(),
        Some("pod1"),
        "another pod"
    );
    assert_eq!(
        tcp_get(&n.pods[p1].ns.ns, &to_gateway).as_deref(),
        Some("pod1"),
        "hairpin"
    );
    assert_eq!(
        tcp_get(&n.pods[p1].ns.ns, &to_uplink).as_deref(),
        Some("pod1"),
        "hairpin, uplink IP"
    );
    assert_eq!(
        tcp_get(&n.node.ns, "127.0.0.1:8080").as_deref(),
        Some("pod1"),
        "node's 127.0.0.1"
    );
    assert_eq!(
        tcp_get(&n.node.ns, &to_uplink).as_deref(),
        Some("pod1"),
        "node itself"
    );

    // Never transit traffic: a packet routed through the node to another address keeps it.
    n.client
        .exec(&["ip", "route", "add", "10.77.0.0/24", "via", NODE_UPLINK_V4]);
    assert_eq!(
        tcp_get(client, "10.77.0.99:8080"),
        None,
        "transit traffic is not translated"
    );

    n.ok("CHECK", p1, &c);
    assert_eq!(n.elements("hostport4").len(), 1);
    assert_eq!(n.elements("hostport6").len(), 1);

    n.ok("DEL", p1, &c);
    assert!(n.elements("hostport4").is_empty() && n.elements("hostport6").is_empty());
    assert_eq!(tcp_get(client, &to_uplink), None, "gone after DEL");
    n.ok("DEL", p1, &c); // idempotent
    let mut no_netns = c.clone();
    no_netns.as_object_mut().unwrap().remove("prevResult");
    n.ok("DEL", p1, &no_netns); // and needs no prevResult
    let check = n.call("CHECK", p1, &c);
    assert_eq!(check.json["code"], 104, "CHECK after DEL: {}", check.json);
}

#[test]
fn second_pod_on_the_same_port_is_refused_naming_the_holder() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    tcp_server(&n.pods[p1].ns.ns, "0.0.0.0:80", "pod1");
    let c1 = n.conf(p1, web(8080));
    n.ok("ADD", p1, &c1);
    n.ok("ADD", p1, &c1); // a repeated ADD of the same pod is fine

    let c2 = n.conf(p2, web(8080));
    let refused = n.call("ADD", p2, &c2);
    assert_eq!(refused.code, 1);
    assert_eq!(refused.json["code"], 105, "{}", refused.json);
    let msg = refused.json["msg"].as_str().unwrap();
    assert!(msg.contains("host port 8080/tcp"), "{msg}");
    assert!(
        msg.contains(&n.pods[p1].container),
        "names the holder: {msg}"
    );

    // The runtime cleans up the refused pod with the same config: pod1 keeps its port.
    n.ok("DEL", p2, &c2);
    assert_eq!(
        tcp_get(&n.client.ns, &format!("{NODE_UPLINK_V4}:8080")).as_deref(),
        Some("pod1")
    );

    // Another protocol, or a specific host IP, is another key.
    let other = n.conf(
        p2,
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "udp"},
               {"hostPort": 8080, "containerPort": 80, "hostIP": NODE_UPLINK_V4}]),
    );
    n.ok("ADD", p2, &other);
    assert_eq!(n.elements("hostip4").len(), 1);
    // and the host IP one wins on that address
    tcp_server(&n.pods[p2].ns.ns, "0.0.0.0:80", "pod2");
    assert_eq!(
        tcp_get(&n.client.ns, &format!("{NODE_UPLINK_V4}:8080")).as_deref(),
        Some("pod2")
    );
    assert_eq!(
        tcp_get(&n.node.ns, &format!("{GATEWAY_V4}:8080")).as_deref(),
        Some("pod1")
    );
}

#[test]
fn udp_conntrack_is_flushed_on_add_and_del() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p0 = n.pod(9);
    // Another pod's mapping first, so the nat chains exist: a conntrack entry made while no nat
    // hook exists gets its translation lazily, which would hide a missing flush.
    n.ok("ADD", p0, &n.conf(p0, web(8090)));
    udp_server(&n.pods[p1].ns.ns, "0.0.0.0:53", "pod1");
    let to = format!("{NODE_UPLINK_V4}:5353");
    let client = udp_client(&n.client.ns, &to);
    // Before the mapping: the client's flow gets a conntrack entry without translation.
    assert_eq!(udp_ask(&client), None);
    let c = n.conf(
        p1,
        json!([{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]),
    );
    n.ok("ADD", p1, &c);
    // Same socket, same source port: only a flushed entry lets the new mapping apply.
    assert_eq!(
        udp_ask(&client).as_deref(),
        Some("pod1"),
        "ADD flushed the old entry"
    );
    n.ok("DEL", p1, &c);
    // Without the flush on DEL, the entry would keep sending to the pod.
    assert_eq!(udp_ask(&client), None, "DEL flushed the translated entry");
}

#[test]
fn no_mappings_touch_nothing_and_bad_input_is_refused() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let c = n.conf(p1, json!([]));
    let out = n.ok("ADD", p1, &c);
    assert_eq!(out["interfaces"], n.prev_result(p1)["interfaces"]);
    n.ok("DEL", p1, &c);
    assert!(
        !n.nft().contains("podwire-portmap"),
        "no table made: {}",
        n.nft()
    );

    let bad = n.call(
        "ADD",
        p1,
        &n.conf(p1, json!([{"hostPort": 0, "containerPort": 80}])),
    );
    assert_eq!(bad.json["code"], 7, "{}", bad.json);
    let mut unchained = n.conf(p1, web(8080));
    unchained.as_object_mut().unwrap().remove("prevResult");
    let bad = n.call("ADD", p1, &unchained);
    assert_eq!(bad.json["code"], 7, "{}", bad.json);
}

#[test]
fn check_gc_and_status() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    let (c1, c2) = (n.conf(p1, web(8081)), n.conf(p2, web(8082)));
    n.ok("ADD", p1, &c1);
    n.ok("ADD", p2, &c2);
    n.ok("CHECK", p2, &c2);
    // Someone removed pod2's mapping behind our back: CHECK says so.
    n.node.exec(&[
        "nft",
        "delete",
        "element",
        "inet",
        "podwire-portmap",
        "hostport4",
        "{ tcp . 8082 }",
    ]);
    let bad = n.call("CHECK", p2, &c2);
    assert_eq!(bad.json["code"], 104, "{}", bad.json);
    assert!(
        bad.json["msg"].as_str().unwrap().contains("8082"),
        "{}",
        bad.json
    );

    n.ok("ADD", p2, &c2);
    let gc = json!({
        "cniVersion": "1.1.0", "name": "pmtest", "type": "podwire-portmap",
        "cni.dev/valid-attachments": [{"containerID": n.pods[p1].container, "ifname": "eth0"}],
    });
    n.ok("GC", p1, &gc);
    let left = n.elements("hostport4");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].to_string().contains("8081"),
        "pod1's stays: {left:?}"
    );
    assert!(n
        .elements("hostport6")
        .iter()
        .all(|e| !e.to_string().contains("8082")));
    let mut other_net = gc.clone();
    other_net["name"] = json!("othernet");
    other_net["cni.dev/valid-attachments"] = json!([]);
    n.ok("GC", p1, &other_net);
    assert_eq!(
        n.elements("hostport4").len(),
        1,
        "GC of another network leaves ours"
    );

    let status = json!({"cniVersion": "1.1.0", "name": "pmtest", "type": "podwire-portmap"});
    n.ok("STATUS", p1, &status);
}
