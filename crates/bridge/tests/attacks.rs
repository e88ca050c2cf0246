//! A pod as an attacker (root in its netns, NET_RAW, as containerd gives by default) writes
//! crafted frames onto its interface; the node and the other pods must not believe them. Every
//! node and pod is a throwaway netns (see common/mod.rs).

mod common;

use common::Node;
use kernel::{MacAddr, Netns};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;
use testkit::frames;

fn conf(node: &Node, subnet: &str, extra: Value) -> Value {
    let mut c = json!({
        "cniVersion": "1.1.0",
        "name": "attacknet",
        "type": "podwire",
        "bridge": "pwa0",
        "isGateway": true,
        "ipam": {"type": "podwire-ipam", "subnet": subnet, "dataDir": node.data_dir},
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn mac_of(result: &Value, interface: usize) -> MacAddr {
    result["interfaces"][interface]["mac"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// CVE-2020-10749: a router advertisement from a pod reaches the bridge; with `accept_ra` on, the
/// node takes the pod as its IPv6 default router and autoconfigures an address from its prefix.
#[test]
fn a_pods_router_advertisement_configures_nothing_on_the_node() {
    let mut node = Node::new();
    let c = conf(&node, "10.250.20.0/24", json!({}));
    let p = node.pod();
    let r = node.podwire("ADD", &c, "ra", &p);
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    let bridge = "pwa0";
    let prefix: Ipv6Addr = "2001:db8:bad::".parse().unwrap();
    let ra = frames::router_advert(mac_of(&r.json, 2), "fe80::bad".parse().unwrap(), prefix);
    for _ in 0..3 {
        frames::send(&p, "eth0", &ra);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let routes = node.ip_json(&["-6", "route", "show", "default"]);
    assert_eq!(
        routes,
        json!([]),
        "the node took a pod as its default router"
    );
    let addrs = node.ip_json(&["-6", "addr", "show", "dev", bridge]);
    assert!(
        !addrs.to_string().contains("2001:db8:bad:"),
        "the node autoconfigured an address from a pod's prefix: {addrs}"
    );
    let sysctl = common::run(&[
        "ip",
        "netns",
        "exec",
        &node.name,
        "sysctl",
        "-n",
        &format!("net.ipv6.conf.{bridge}.accept_ra"),
    ]);
    assert_eq!(sysctl.trim(), "0");
}

// ---- spoofCheck (#22 item 2) ----

/// A dual-stack pod as the tests see it.
struct Pod {
    ns: String,
    ctr: String,
    mac: MacAddr,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    /// The host end of its veth pair: its bridge port.
    port: String,
}

/// A node with a bridge, its gateways, and dual-stack pods on it.
struct Lan {
    node: Node,
    conf: Value,
    pods: Vec<Pod>,
    gw4: Ipv4Addr,
    gw6: Ipv6Addr,
}

impl Lan {
    fn new(net: u8, extra: Value, pods: usize) -> Lan {
        let mut node = Node::new();
        let mut c = conf(&node, "unused", extra);
        c["ipam"] = json!({"type": "podwire-ipam", "dataDir": node.data_dir, "ranges": [
            [{"subnet": format!("10.250.{net}.0/24")}], [{"subnet": format!("fd00:250:{net}::/64")}]]});
        let mut lan_pods = Vec::new();
        for i in 0..pods {
            let ns = node.pod();
            let ctr = format!("pod{i}");
            let r = node.podwire("ADD", &c, &ctr, &ns);
            assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
            let ip = |n: usize| {
                r.json["ips"][n]["address"]
                    .as_str()
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap()
                    .to_string()
            };
            lan_pods.push(Pod {
                ns,
                ctr,
                mac: mac_of(&r.json, 2),
                v4: ip(0).parse().unwrap(),
                v6: ip(1).parse().unwrap(),
                port: r.json["interfaces"][1]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            });
        }
        Lan {
            node,
            conf: c,
            pods: lan_pods,
            gw4: format!("10.250.{net}.1").parse().unwrap(),
            gw6: format!("fd00:250:{net}::1").parse().unwrap(),
        }
    }

    /// The bridge's MAC now (a bridge takes the lowest of its ports' until one is set, so an
    /// ADD's result may name an older one).
    /// The bridge ports the FDB has `mac` on.
    fn fdb_ports(&self, mac: MacAddr) -> Vec<String> {
        let fdb = common::run(&[
            "bridge",
            "-n",
            &self.node.name,
            "-j",
            "fdb",
            "show",
            "br",
            "pwa0",
        ]);
        let fdb: Value = serde_json::from_str(&fdb).unwrap();
        fdb.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["mac"] == mac.to_string())
            .map(|e| e["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    fn bridge_mac(&self) -> MacAddr {
        let link = self.node.ip_json(&["link", "show", "pwa0"]);
        link[0]["address"].as_str().unwrap().parse().unwrap()
    }

    fn node_ns(&self) -> Netns {
        Netns::named(&self.node.name).unwrap()
    }

    /// The node's neighbour entry for `ip`: its MAC.
    fn node_neighbour(&self, ip: &str) -> String {
        let n = self.node.ip_json(&["neigh", "show", ip, "dev", "pwa0"]);
        n[0]["lladdr"].as_str().unwrap_or("").to_string()
    }

    /// A counter of the anti-spoofing table: packets dropped for that reason.
    fn dropped(&self, counter: &str) -> u64 {
        let text = common::run(&[
            "ip",
            "netns",
            "exec",
            &self.node.name,
            "nft",
            "-j",
            "list",
            "counter",
            "bridge",
            "podwire-antispoof",
            counter,
        ]);
        let v: Value = serde_json::from_str(&text).unwrap();
        v["nftables"][1]["counter"]["packets"].as_u64().unwrap()
    }
}

/// A UDP socket bound to `addr` inside `ns`.
fn listen(ns: &Netns, addr: SocketAddr) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind(addr)).unwrap().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

/// What `sock` received up to the marker datagram (sent after the attack, from the attacker's
/// own addresses: it takes the same path, so anything the attack got through arrived first).
fn received_before_marker(sock: &UdpSocket) -> Vec<(SocketAddr, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = sock
            .recv_from(&mut buf)
            .expect("the marker datagram never arrived");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text == "marker" {
            return got;
        }
        got.push((from, text));
    }
}

const PORT: u16 = 7777;

/// The attacker (pod 0) sends a UDP datagram "spoofed" to `dst` at `dst_mac` from `src` through
/// `src_mac`, then the marker from its own addresses; returns what the listener got before it.
fn spoof_udp(
    lan: &Lan,
    sock: &UdpSocket,
    dst: IpAddr,
    dst_mac: MacAddr,
    src: IpAddr,
    src_mac: MacAddr,
) -> Vec<(SocketAddr, String)> {
    let a = &lan.pods[0];
    let frame = |src: IpAddr, src_mac: MacAddr, data: &[u8]| match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            frames::udp4((src_mac, dst_mac), s, d, (4000, PORT), data)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            frames::udp6((src_mac, dst_mac), s, d, (4000, PORT), data)
        }
        _ => unreachable!(),
    };
    frames::send(&a.ns, "eth0", &frame(src, src_mac, b"spoofed"));
    frames::send(&a.ns, "eth0", &frame(a.ip(dst.is_ipv6()), a.mac, b"marker"));
    received_before_marker(sock)
}

impl Pod {
    fn ip(&self, v6: bool) -> IpAddr {
        if v6 {
            self.v6.into()
        } else {
            self.v4.into()
        }
    }
}

/// Pod 0 sends from pod 2's address of one family, to pod 1 and to the node: neither gets it.
fn forged_sources_never_arrive(net: u8, v6: bool) {
    let lan = Lan::new(net, json!({}), 3);
    let (victim, other) = (&lan.pods[1], &lan.pods[2]);
    let gw: IpAddr = if v6 { lan.gw6.into() } else { lan.gw4.into() };
    let ns = Netns::open(&victim.ns).unwrap();
    for (who, ns, dst, dst_mac) in [
        ("the victim pod", ns, victim.ip(v6), victim.mac),
        ("the node", lan.node_ns(), gw, lan.bridge_mac()),
    ] {
        let sock = listen(&ns, SocketAddr::new(dst, PORT));
        let got = spoof_udp(&lan, &sock, dst, dst_mac, other.ip(v6), lan.pods[0].mac);
        assert!(
            got.is_empty(),
            "{who} took a datagram from a forged source: {got:?}"
        );
    }
    let counter = if v6 { "spoofed-ipv6" } else { "spoofed-ipv4" };
    assert_eq!(lan.dropped(counter), 2);
}

#[test]
fn a_pod_cannot_send_from_another_pods_ipv4_address() {
    forged_sources_never_arrive(40, false);
}

#[test]
fn a_pod_cannot_send_from_another_pods_ipv6_address() {
    forged_sources_never_arrive(41, true);
}

/// A frame from another pod's MAC would also teach the bridge that this MAC is behind the
/// attacker's port: the victim's traffic then goes to the attacker.
#[test]
fn a_pod_cannot_send_from_another_pods_mac() {
    let lan = Lan::new(42, json!({}), 2);
    let (a, victim) = (&lan.pods[0], &lan.pods[1]);
    let sock = listen(&lan.node_ns(), SocketAddr::new(lan.gw4.into(), PORT));
    let got = spoof_udp(
        &lan,
        &sock,
        lan.gw4.into(),
        lan.bridge_mac(),
        a.v4.into(),
        victim.mac,
    );
    assert!(
        got.is_empty(),
        "the node took a frame from a forged MAC: {got:?}"
    );
    let ports = lan.fdb_ports(victim.mac);
    assert!(
        !ports.contains(&a.port),
        "the bridge learnt the victim's MAC on the attacker's port: {ports:?}"
    );
    assert_eq!(lan.dropped("spoofed-mac"), 1);
}

/// An LLDP frame (to the 802.1AB group 01:80:c2:00:00:0e) from pod 0 with pod 1's MAC as its
/// source: the bridge learns source MACs from link-local frames before any netfilter hook runs,
/// so without `no_linklocal_learn` it moved pod 1's MAC to the attacker's port until pod 1 sent
/// again. The bridge must not learn from such frames (and spoofCheck still drops the frame).
#[test]
fn a_link_local_frame_cannot_move_another_pods_mac() {
    let lan = Lan::new(48, json!({}), 2);
    let (a, victim) = (&lan.pods[0], &lan.pods[1]);
    let lldp_group = kernel::MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x0e]);
    // Chassis ID, port ID and TTL TLVs, then the end TLV: a well-formed LLDPDU.
    let mut lldpdu = vec![0x02, 0x07, 0x04];
    lldpdu.extend_from_slice(&victim.mac.0);
    lldpdu.extend_from_slice(&[0x04, 0x02, 0x07, b'1', 0x06, 0x02, 0x00, 0x78, 0x00, 0x00]);
    let frame = frames::ethernet(lldp_group, victim.mac, 0x88cc, &lldpdu);
    frames::send(&a.ns, "eth0", &frame);
    let ports = lan.fdb_ports(victim.mac);
    assert!(
        !ports.contains(&a.port),
        "the bridge learnt the victim's MAC on the attacker's port from an LLDP frame: {ports:?}"
    );
    let opts = common::run(&[
        "ip",
        "-n",
        &lan.node.name,
        "-d",
        "-j",
        "link",
        "show",
        "pwa0",
    ]);
    assert!(
        opts.contains("\"no_linklocal_learn\":1") || opts.contains("\"no_linklocal_learn\":true"),
        "the pod bridge has no_linklocal_learn: {opts}"
    );
}

/// Pod 0 tells the node that pod 1's address of one family is at pod 0's MAC (a gratuitous
/// ARP, or an unsolicited neighbour advertisement with override): the node's entry must keep
/// pod 1's MAC.
fn neighbour_claims_are_refused(net: u8, v6: bool) {
    let lan = Lan::new(net, json!({}), 2);
    let (a, victim) = (&lan.pods[0], &lan.pods[1]);
    let victim_ip = victim.ip(v6).to_string();
    assert!(lan.node.ping_from_node(&victim_ip));
    assert_eq!(lan.node_neighbour(&victim_ip), victim.mac.to_string());
    let gw: IpAddr = if v6 { lan.gw6.into() } else { lan.gw4.into() };
    let sock = listen(&lan.node_ns(), SocketAddr::new(gw, PORT));
    let claim = if v6 {
        frames::neighbour_advert(a.mac, a.v6, victim.v6, a.mac)
    } else {
        frames::gratuitous_arp(a.mac, a.mac, victim.v4)
    };
    frames::send(&a.ns, "eth0", &claim);
    let got = spoof_udp(&lan, &sock, gw, lan.bridge_mac(), a.ip(v6), a.mac);
    assert_eq!(got.len(), 1, "the attacker's own datagram: {got:?}");
    assert_eq!(
        lan.node_neighbour(&victim_ip),
        victim.mac.to_string(),
        "the node now sends the victim's traffic to the attacker"
    );
    let counter = if v6 { "spoofed-nd" } else { "spoofed-arp" };
    assert_eq!(lan.dropped(counter), 1);
}

#[test]
fn a_gratuitous_arp_cannot_claim_another_pods_ipv4_address() {
    neighbour_claims_are_refused(43, false);
}

#[test]
fn an_unsolicited_neighbour_advert_cannot_claim_another_pods_ipv6_address() {
    neighbour_claims_are_refused(44, true);
}

/// What pods legitimately send still passes: ping and TCP both ways over both families, to the
/// node, IPv6 link-local, and duplicate address detection (from ::) that finds a duplicate.
#[test]
fn legitimate_pod_traffic_still_flows() {
    let lan = Lan::new(45, json!({}), 2);
    let (a, b) = (&lan.pods[0], &lan.pods[1]);
    for ip in [
        b.v4.to_string(),
        b.v6.to_string(),
        lan.gw4.to_string(),
        lan.gw6.to_string(),
    ] {
        assert!(lan.node.ping(&a.ns, &ip), "A → {ip}");
    }
    assert!(lan.node.ping(&b.ns, &a.v4.to_string()), "B → A");
    for dst in [IpAddr::from(b.v4), IpAddr::from(b.v6)] {
        let listener = Netns::open(&b.ns)
            .unwrap()
            .run(|| TcpListener::bind(SocketAddr::new(dst, 8080)))
            .unwrap()
            .unwrap();
        let mut client = Netns::open(&a.ns)
            .unwrap()
            .run(|| TcpStream::connect_timeout(&SocketAddr::new(dst, 8080), Duration::from_secs(3)))
            .unwrap()
            .expect("TCP connect A → B");
        client.write_all(b"hello").unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }
    // IPv6 link-local: B's, once its DAD is over.
    let addrs = lan
        .node
        .pod_ip_json(&b.ns, &["-6", "addr", "show", "dev", "eth0"]);
    let ll = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scope"] == "link")
        .expect("B has a link-local address")["local"]
        .as_str()
        .unwrap()
        .to_string();
    let a_ns = a.ns.trim_start_matches("/run/netns/");
    let reached = (0..5).any(|_| {
        common::run_ok(&[
            "ip",
            "netns",
            "exec",
            a_ns,
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            &format!("{ll}%eth0"),
        ])
    });
    assert!(reached, "A → B's link-local {ll}");
    // DAD: B takes A's IPv6 address with DAD; its probe (from ::) reaches A, whose answer makes
    // B see the duplicate.
    let b_ns = b.ns.trim_start_matches("/run/netns/");
    common::run(&[
        "ip",
        "-n",
        b_ns,
        "addr",
        "add",
        &format!("{}/128", a.v6),
        "dev",
        "eth0",
    ]);
    let dadfailed = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        lan.node
            .pod_ip_json(&b.ns, &["-6", "addr", "show", "dev", "eth0"])
            .to_string()
            .contains("dadfailed")
    });
    assert!(dadfailed, "B's DAD probe for A's address got no answer");
    for c in antispoof_counters() {
        assert_eq!(lan.dropped(c), 0, "{c}");
    }
}

fn antispoof_counters() -> [&'static str; 6] {
    bridge::antispoof::COUNTERS
}

#[test]
fn spoof_check_false_lets_a_pod_send_as_others() {
    let lan = Lan::new(46, json!({"spoofCheck": false}), 3);
    let (victim, other) = (&lan.pods[1], &lan.pods[2]);
    let ns = Netns::open(&victim.ns).unwrap();
    let sock = listen(&ns, SocketAddr::new(victim.v4.into(), PORT));
    let got = spoof_udp(
        &lan,
        &sock,
        victim.v4.into(),
        victim.mac,
        other.v4.into(),
        lan.pods[0].mac,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.ip(), IpAddr::from(other.v4));
    assert!(
        !lan.node.nft().contains(&lan.pods[0].port),
        "no element for an unguarded port"
    );
}

#[test]
fn del_check_and_gc_keep_the_elements_in_step_with_the_pods() {
    let mut lan = Lan::new(47, json!({}), 3);
    let tag = |p: &Pod| format!("podwire/attacknet/{}/eth0", p.ctr);
    let ruleset = lan.node.nft();
    for p in &lan.pods {
        assert_eq!(
            ruleset.matches(&tag(p)).count(),
            4,
            "port, MAC, IPv4, IPv6 of {}",
            p.ctr
        );
    }
    // CHECK: fine as added, a mismatch once someone removes an element.
    let p = &lan.pods[0];
    let mut c = lan.conf.clone();
    c["prevResult"] = json!({"cniVersion": "1.1.0",
        "interfaces": [{"name": "pwa0"}, {"name": p.port}, {"name": "eth0", "mac": p.mac.to_string(), "sandbox": p.ns}],
        "ips": [{"address": format!("{}/24", p.v4), "interface": 2}, {"address": format!("{}/64", p.v6), "interface": 2}]});
    let ok = lan.node.podwire("CHECK", &c, &p.ctr, &p.ns);
    assert_eq!(ok.code, 0, "{} {}", ok.json, ok.stderr);
    let element = format!("{{ \"{}\" . {} }}", p.port, p.v4);
    common::run(&[
        "ip",
        "netns",
        "exec",
        &lan.node.name,
        "nft",
        "delete",
        "element",
        "bridge",
        "podwire-antispoof",
        "pod-ipv4",
        &element,
    ]);
    let bad = lan.node.podwire("CHECK", &c, &p.ctr, &p.ns);
    assert_eq!(bad.json["code"], 104, "{}", bad.json);
    let msg = bad.json["msg"].as_str().unwrap();
    assert!(
        msg.contains("pod-ipv4") && msg.contains(&p.v4.to_string()),
        "{msg}"
    );
    // DEL removes the pod's elements, and only those.
    let d = lan.node.podwire("DEL", &lan.conf, &p.ctr, &p.ns);
    assert_eq!(d.code, 0, "{}", d.json);
    let ruleset = lan.node.nft();
    assert!(!ruleset.contains(&tag(p)), "{ruleset}");
    assert_eq!(ruleset.matches(&tag(&lan.pods[1])).count(), 4);
    // GC: pod2's attachment is gone (its netns too, as after a node reboot), pod1's is valid.
    let gone = lan.pods.remove(2);
    lan.node.delete_pod_netns(&gone.ns);
    let mut g = lan.conf.clone();
    g["cni.dev/valid-attachments"] = json!([{"containerID": "pod1", "ifname": "eth0"}]);
    let r = lan.node.podwire("GC", &g, "", "");
    assert_eq!(r.code, 0, "{} {}", r.json, r.stderr);
    let ruleset = lan.node.nft();
    assert!(!ruleset.contains(&tag(&gone)), "{ruleset}");
    assert_eq!(ruleset.matches(&tag(&lan.pods[1])).count(), 4);
}
