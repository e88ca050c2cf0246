//! podwire-portmap under the conditions of issue #22 (hostPorts): a port range, a flushed or
//! stale table, the conntrack flush's scope, 127.0.0.1 and ::1. See common/mod.rs for the
//! topology; attackers are the pod and client netns.

mod common;

use common::*;
use serde_json::{json, Value};

/// `count` UDP mappings from `first`, host port = container port, as Podman publishes a range.
fn udp_range(first: u16, count: u16) -> Value {
    (first..first + count)
        .map(|p| json!({"hostPort": p, "containerPort": p, "protocol": "udp"}))
        .collect()
}

#[test]
fn a_5000_port_range_is_added_whole_or_not_at_all() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    udp_server(&n.pods[p1].ns.ns, "0.0.0.0:20000", "first");
    udp_server(&n.pods[p1].ns.ns, "0.0.0.0:24999", "last");
    let range = n.conf(p1, udp_range(20000, 5000));

    // The range's last port is held: nothing of the range goes in, and the runtime's DEL of the
    // refused pod leaves the holder's mapping.
    let holder = n.conf(
        p2,
        json!([{"hostPort": 24999, "containerPort": 9, "protocol": "udp"}]),
    );
    n.ok("ADD", p2, &holder);
    let refused = n.call("ADD", p1, &range);
    assert_eq!(refused.json["code"], 105, "{}", refused.json);
    assert_eq!(n.elements("hostport4").len(), 1, "all or nothing");
    n.ok("DEL", p1, &range);
    assert_eq!(n.elements("hostport4").len(), 1, "the holder's stays");
    n.ok("DEL", p2, &holder);

    n.ok("ADD", p1, &range);
    assert_eq!(n.elements("hostport4").len(), 5000);
    assert_eq!(n.elements("hostport6").len(), 5000);
    for (port, want) in [(20000, "first"), (24999, "last")] {
        let c = udp_client(&n.client.ns, &format!("{NODE_UPLINK_V4}:{port}"));
        assert_eq!(udp_ask(&c).as_deref(), Some(want), "port {port}");
    }
    n.ok("ADD", p1, &range); // repeated: everything in place
    n.ok("CHECK", p1, &range);
    n.ok("DEL", p1, &range);
    assert!(n.elements("hostport4").is_empty() && n.elements("hostport6").is_empty());
}

fn web(host_port: u16) -> Value {
    json!([{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}])
}

fn uplink(port: u16) -> String {
    format!("{NODE_UPLINK_V4}:{port}")
}

#[test]
fn a_flushed_table_fails_check_and_the_next_add_restores_it() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    tcp_server(&n.pods[p1].ns.ns, "0.0.0.0:80", "pod1");
    tcp_server(&n.pods[p2].ns.ns, "0.0.0.0:80", "pod2");
    let (c1, c2) = (n.conf(p1, web(8080)), n.conf(p2, web(8081)));
    n.ok("ADD", p1, &c1);
    n.ok("ADD", p2, &c2);
    let client = &n.client.ns;
    assert_eq!(tcp_get(client, &uplink(8080)).as_deref(), Some("pod1"));

    // A firewall reload flushes the table's rules; the maps keep their elements.
    n.node
        .exec(&["nft", "flush", "table", "inet", "podwire-portmap"]);
    assert_eq!(tcp_get(client, &uplink(8080)), None, "dead without rules");
    let check = n.call("CHECK", p1, &c1);
    assert_eq!(check.json["code"], 104, "{}", check.json);
    let msg = check.json["msg"].as_str().unwrap();
    assert!(
        msg.contains("podwire-portmap") && msg.contains("gone"),
        "{msg}"
    );

    // Any ADD restores the structure, every pod's mapping with it.
    n.ok("ADD", p2, &c2);
    assert_eq!(tcp_get(client, &uplink(8080)).as_deref(), Some("pod1"));
    assert_eq!(tcp_get(client, &uplink(8081)).as_deref(), Some("pod2"));
    n.ok("CHECK", p1, &c1);
    n.ok("CHECK", p2, &c2);
    assert!(n.nft().contains(portmap::structure::VERSION), "{}", n.nft());

    // `nft flush ruleset` takes the elements too: CHECK says so, each pod's ADD puts its own back.
    n.node.exec(&["nft", "flush", "ruleset"]);
    let check = n.call("CHECK", p1, &c1);
    assert_eq!(check.json["code"], 104, "{}", check.json);
    n.ok("ADD", p2, &c2);
    assert_eq!(n.call("CHECK", p1, &c1).json["code"], 104, "pod1's is gone");
    n.ok("ADD", p1, &c1);
    n.ok("CHECK", p1, &c1);
    assert_eq!(tcp_get(client, &uplink(8080)).as_deref(), Some("pod1"));
}

#[test]
fn an_older_table_is_replaced_keeping_its_elements() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    tcp_server(&n.pods[p1].ns.ns, "0.0.0.0:80", "pod1");
    let c1 = n.conf(p1, web(8080));
    // The table as the release before made it (no version, no rule comments), holding pod1's
    // mapping, and a rule of that release that this one no longer has.
    let tag = portmap::tag("pmtest", &n.pods[p1].container, "eth0");
    let old = format!(
        "table inet podwire-portmap {{
           map hostport4 {{ type inet_proto . inet_service : ipv4_addr . inet_service;
                           elements = {{ tcp . 8080 comment \"{tag}\" : 10.77.0.2 . 80 }}; }}
           map hostip4 {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
           map hostport6 {{ type inet_proto . inet_service : ipv6_addr . inet_service;
                           elements = {{ tcp . 8080 comment \"{tag}\" : fd77::2 . 80 }}; }}
           map hostip6 {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }}
           set bridges {{ type ifname; }}
           chain hostports {{ dnat ip to meta l4proto . th dport map @hostport4; }}
           chain prerouting {{ type nat hook prerouting priority -100; fib daddr type local jump hostports; }}
           chain output {{ type nat hook output priority -100; tcp dport 9 drop; }}
         }}"
    );
    let path = std::env::temp_dir().join(format!("{}.nft", n.node.name));
    std::fs::write(&path, old).unwrap();
    n.node.exec(&["nft", "-f", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    let check = n.call("CHECK", p1, &c1);
    assert_eq!(check.json["code"], 104, "{}", check.json);
    assert!(
        check.json["msg"]
            .as_str()
            .unwrap()
            .contains("earlier version"),
        "{}",
        check.json
    );

    n.ok("ADD", p2, &n.conf(p2, web(8081)));
    let ruleset = n.nft();
    assert!(ruleset.contains(portmap::structure::VERSION), "{ruleset}");
    assert!(
        !ruleset.contains("dport 9 drop"),
        "old rules gone: {ruleset}"
    );
    n.ok("CHECK", p1, &c1);
    assert_eq!(
        tcp_get(&n.client.ns, &uplink(8080)).as_deref(),
        Some("pod1"),
        "pod1's mapping carried over"
    );
}

#[test]
fn a_batch_bound_to_a_generation_fails_once_the_ruleset_changed() {
    let n = Node::new();
    let nft = kernel::nft::Nftables::new_in(&n.node.ns).unwrap();
    let table = kernel::nft::Table::new(kernel::nft::Family::Inet, "pwgen");
    let before = nft.generation().unwrap();
    nft.ensure_table(&table).unwrap();
    assert_ne!(nft.generation().unwrap(), before);
    let mut tx = nft.transaction_at(&table, before);
    tx.delete_table();
    let e = tx.commit("stale delete").unwrap_err();
    assert!(e.is_generation_changed(), "{e}");
    let mut tx = nft.transaction_at(&table, nft.generation().unwrap());
    tx.delete_table();
    tx.commit("delete").unwrap();
    assert!(!n.nft().contains("pwgen"));
}

#[test]
fn restore_puts_back_what_a_flushed_ruleset_lost() {
    use portmap::restore::{restore, Attachment};
    use portmap::structure::Structure;
    let mut n = Node::new();
    let p1 = n.pod(2);
    tcp_server(&n.pods[p1].ns.ns, "0.0.0.0:80", "pod1");
    let c1 = n.conf(p1, web(8080));
    n.ok("ADD", p1, &c1);
    n.node.exec(&["nft", "flush", "ruleset"]);
    assert_eq!(tcp_get(&n.client.ns, &uplink(8080)), None);

    // What the agent reads from libcni's cache entry of the attachment.
    let att = Attachment::new(
        "pmtest",
        &n.pods[p1].container,
        "eth0",
        &web(8080),
        cni::CniResult::from_value(&n.prev_result(p1)).unwrap(),
    )
    .unwrap();
    let r = n
        .node
        .ns
        .run(|| restore(std::slice::from_ref(&att)))
        .unwrap()
        .unwrap();
    assert_eq!(r.found, Structure::Absent);
    assert_eq!((r.in_place, r.failed.len()), (1, 0));
    n.ok("CHECK", p1, &c1);
    assert_eq!(
        tcp_get(&n.client.ns, &uplink(8080)).as_deref(),
        Some("pod1")
    );

    let again = n.node.ns.run(|| restore(&[att])).unwrap().unwrap();
    assert_eq!(again.found, Structure::Intact);
    assert_eq!(again.in_place, 1);
}

/// The node's UDP conntrack entries to port `dport`, by original destination address.
fn udp_flows_to(n: &Node, dport: u16) -> Vec<String> {
    let ct = kernel::Conntrack::new_in(&n.node.ns).unwrap();
    let mut dsts: Vec<String> = ct
        .flows(false, 17)
        .unwrap()
        .into_iter()
        .filter(|f| f.dport == Some(dport))
        .filter_map(|f| f.dst.map(|d| d.to_string()))
        .collect();
    dsts.sort();
    dsts
}

/// One datagram from `ns` to `to` (a conntrack entry in every netns it crosses).
fn udp_send(ns: &kernel::Netns, to: &str) {
    let s = ns
        .run(|| std::net::UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    s.send_to(b"q", to).unwrap();
}

#[test]
fn the_udp_flush_spares_flows_to_other_hosts_and_other_addresses() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let p2 = n.pod(3);
    // Another pod's mapping first: conntrack tracks the node's flows once its nat hooks exist.
    n.ok("ADD", p2, &n.conf(p2, web(8090)));
    // Flows through the node to port 53 elsewhere: a pod asking the LAN's DNS server.
    udp_send(&n.pods[p2].ns.ns, "10.78.0.2:53");
    // And flows to the node's own addresses: the LAN host to the uplink, a pod to the gateway.
    udp_send(&n.client.ns, &format!("{NODE_UPLINK_V4}:53"));
    udp_send(&n.pods[p2].ns.ns, &format!("{GATEWAY_V4}:53"));
    assert_eq!(
        udp_flows_to(&n, 53),
        ["10.77.0.1", "10.78.0.1", "10.78.0.2"]
    );

    // A hostPort 53/udp bound to the uplink address: only the flow to that address goes.
    let bound = n.conf(
        p1,
        json!([{"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": NODE_UPLINK_V4}]),
    );
    n.ok("ADD", p1, &bound);
    assert_eq!(udp_flows_to(&n, 53), ["10.77.0.1", "10.78.0.2"]);
    n.ok("DEL", p1, &bound);

    // For every address of the node: the flows to the node's addresses go, the DNS flow through
    // it stays.
    udp_send(&n.client.ns, &format!("{NODE_UPLINK_V4}:53"));
    let any = n.conf(
        p1,
        json!([{"hostPort": 53, "containerPort": 53, "protocol": "udp"}]),
    );
    n.ok("ADD", p1, &any);
    assert_eq!(udp_flows_to(&n, 53), ["10.78.0.2"]);
    udp_send(&n.client.ns, &format!("{NODE_UPLINK_V4}:53"));
    n.ok("DEL", p1, &any);
    assert_eq!(udp_flows_to(&n, 53), ["10.78.0.2"], "DEL likewise");
}

/// Packets the `localnet` chain dropped (its counter), from `nft list`.
fn localnet_drops(n: &Node) -> u64 {
    let out = n.node.exec(&[
        "nft",
        "list",
        "chain",
        "inet",
        "podwire-portmap",
        "localnet",
    ]);
    out.split("packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {out}"))
}

/// An attacker's netns sends 127.0.0.1 out of its eth0 to `gateway` (the node): its own
/// loopback routes go, and its kernel lets a loopback destination leave eth0 (a raw-socket
/// attacker needs none of this).
fn route_loopback_via(ns: &TestNs, gateway: &str) {
    for local in ["127.0.0.1", "127.0.0.0/8"] {
        ns.exec_ok(&[
            "ip", "route", "del", "table", "local", "local", local, "dev", "lo",
        ]);
    }
    ns.exec(&["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"]);
    ns.exec(&["ip", "route", "add", "127.0.0.1/32", "via", gateway]);
}

/// A UDP socket in `ns` at `addr` that reports every datagram it receives: whether a packet
/// got to a service, whatever happens to the answer (an attacker with NET_RAW reads answers
/// its own kernel would drop as martians).
fn udp_sink(ns: &kernel::Netns, addr: &str) -> std::sync::mpsc::Receiver<String> {
    let s = ns.run(|| std::net::UdpSocket::bind(addr)).unwrap().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let what = String::from_utf8_lossy(&buf[..n]).into_owned();
            if tx.send(format!("{what} from {from}")).is_err() {
                return;
            }
        }
    });
    rx
}

fn received(rx: &std::sync::mpsc::Receiver<String>) -> Option<String> {
    rx.recv_timeout(std::time::Duration::from_millis(800)).ok()
}

#[test]
fn a_pod_cannot_reach_the_nodes_loopback_services() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    let attacker = n.pod(3);
    // A hostPort ADD: the bridge routes 127.0.0.0/8 from now on (route_localnet).
    n.ok("ADD", p1, &n.conf(p1, web(8080)));
    let secret = udp_sink(&n.node.ns, "127.0.0.1:9999");
    udp_send(&n.node.ns, "127.0.0.1:9999");
    assert!(received(&secret).is_some(), "the node's own client gets in");
    // CVE-2020-8558: the pod sends to 127.0.0.1 through the node.
    let pod = &n.pods[attacker].ns;
    route_loopback_via(pod, GATEWAY_V4);
    udp_send(&pod.ns, "127.0.0.1:9999");
    assert_eq!(received(&secret), None, "the pod's datagram is dropped");
    assert!(localnet_drops(&n) > 0, "and counted");
}

#[test]
fn a_mapping_on_127_0_0_1_is_the_nodes_alone_and_works_over_tcp_and_udp() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    tcp_server(&n.pods[p1].ns.ns, "0.0.0.0:80", "pod1");
    udp_server(&n.pods[p1].ns.ns, "0.0.0.0:53", "pod1");
    let sink = udp_sink(&n.pods[p1].ns.ns, "0.0.0.0:54");
    // Podman's `-p 127.0.0.1:8080:80`, `-p 127.0.0.1:5353:53/udp`, `-p 127.0.0.1:5354:54/udp`.
    let on_lo = |host: u16, ctr: u16, proto: &str| json!({"hostPort": host, "containerPort": ctr, "protocol": proto, "hostIP": "127.0.0.1"});
    let c = n.conf(
        p1,
        json!([
            on_lo(8080, 80, "tcp"),
            on_lo(5353, 53, "udp"),
            on_lo(5354, 54, "udp")
        ]),
    );
    n.ok("ADD", p1, &c);
    // Item 7: from the node itself.
    assert_eq!(
        tcp_get(&n.node.ns, "127.0.0.1:8080").as_deref(),
        Some("pod1")
    );
    let udp = udp_client(&n.node.ns, "127.0.0.1:5353");
    assert_eq!(udp_ask(&udp).as_deref(), Some("pod1"));
    udp_send(&n.node.ns, "127.0.0.1:5354");
    assert!(received(&sink).is_some());
    // Not on the node's other addresses.
    assert_eq!(tcp_get(&n.node.ns, &uplink(8080)), None);

    // Item 4: a LAN host that routes 127.0.0.1 to the node gets nothing to the pod.
    let lan = &n.client;
    route_loopback_via(lan, NODE_UPLINK_V4);
    udp_send(&lan.ns, "127.0.0.1:5354");
    assert_eq!(received(&sink), None, "the LAN host's datagram is dropped");
    assert_eq!(tcp_get(&lan.ns, "127.0.0.1:8080"), None);
    assert!(localnet_drops(&n) > 0, "and counted");
}

#[test]
fn ipv6_loopback_is_left_alone() {
    let mut n = Node::new();
    let p1 = n.pod(2);
    tcp_server(&n.pods[p1].ns.ns, "[::]:80", "pod1");
    n.ok("ADD", p1, &n.conf(p1, web(8080)));
    // A node service on [::1]:8080 keeps its port: the mapping does not take ::1.
    tcp_server(&n.node.ns, "[::1]:8080", "node");
    assert_eq!(tcp_get(&n.node.ns, "[::1]:8080").as_deref(), Some("node"));
    // The mapping itself answers on the node's IPv6 addresses.
    assert_eq!(
        tcp_get(&n.node.ns, &format!("[{NODE_UPLINK_V6}]:8080")).as_deref(),
        Some("pod1")
    );
    // A mapping bound to ::1 cannot work: refused, saying why.
    let p2 = n.pod(3);
    let v6lo = n.conf(
        p2,
        json!([{"hostPort": 8081, "containerPort": 80, "hostIP": "::1"}]),
    );
    let out = n.call("ADD", p2, &v6lo);
    assert_eq!(out.json["code"], 7, "{}", out.json);
    assert!(
        out.json["msg"].as_str().unwrap().contains("127.0.0.1"),
        "{}",
        out.json
    );
}
