//! The underlay as it really is (issue #23), in the simulated cluster (tests/cluster): this
//! node's own address changing under it, the MTU it has, a fabric that drops pod-sourced packets.
//! n1–n2 share segment A, n3–n4 segment B; A↔B pairs are VXLAN peers.

use cluster::{pod_cidr_v4, pod_cidr_v6, Cluster};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(20);
/// What a peer takes to follow a Node change: this node must follow its own as fast.
const FOLLOW: Duration = Duration::from_secs(5);

fn cluster(per_segment: [u8; 2]) -> Cluster {
    let mut c = Cluster::new(per_segment);
    c.start_agents();
    let took = c.wait_converged(CONVERGE);
    eprintln!("agents converged in {took:?}");
    c
}

/// The VXLAN device's local address on node `i` (`None` without the device).
fn vxlan_local(c: &Cluster, i: usize, v6: bool) -> Option<String> {
    let dev = if v6 {
        "podwire.vxlan6"
    } else {
        "podwire.vxlan"
    };
    let links = c.node(i).ip_json(&["-d", "link", "show"]);
    let l = links
        .as_array()?
        .iter()
        .find(|l| l["ifname"] == dev)?
        .clone();
    let d = &l["linkinfo"]["info_data"];
    d["local"]
        .as_str()
        .or(d["local6"].as_str())
        .map(str::to_string)
}

/// Sets node `i`'s Node object address of the family of `v6` to `addr`.
fn set_node_address(c: &Cluster, i: usize, v6: bool, addr: &str) {
    let name = c.node(i).name.clone();
    c.api
        .modify_node(&name, |n| {
            let a = n.status.as_mut().unwrap().addresses.as_mut().unwrap();
            let slot = a
                .iter_mut()
                .find(|a| a.type_ == "InternalIP" && a.address.contains(':') == v6)
                .unwrap();
            slot.address = addr.into();
        })
        .unwrap();
}

/// Moves node `i`'s kernel address of that family from `old` to `new` (same prefix), as a DHCP
/// renewal that hands out another lease does: the new one first, so the node never loses its
/// segment (and its API server).
fn move_kernel_address(c: &Cluster, i: usize, v6: bool, old: &str, new: &str) {
    let n = c.node(i);
    let len = if v6 { "64" } else { "24" };
    let mut add = vec!["ip", "addr", "add"];
    let new_net = format!("{new}/{len}");
    add.extend([new_net.as_str(), "dev", "eth0"]);
    if v6 {
        add.push("nodad");
    }
    assert!(n.ns.exec_ok(&add));
    let old_net = format!("{old}/{len}");
    assert!(n
        .ns
        .exec_ok(&["ip", "addr", "del", &old_net, "dev", "eth0"]));
}

/// Issue #23 part 3: n1's own address changes (IPv4, then IPv6; kernel first, then the Node
/// object first). Meanwhile n1 keeps what it has; once the two agree it re-creates its VXLAN
/// device on the new address and its VXLAN peers are routed again within the 5 s its peers take
/// to follow the Node; pods on n1 reach pods across the router again.
#[test]
fn this_nodes_own_address_change_is_followed_in_both_orders_and_families() {
    let mut c = cluster([2, 2]);
    // DHCP's way: deleting the primary address promotes the secondary (the new lease).
    kernel::sysctl::write_in(
        &c.node(0).ns.ns,
        "net/ipv4/conf/eth0/promote_secondaries",
        "1",
    )
    .unwrap();
    c.add_pod(0);
    c.add_pod(2);
    let mut current = [c.node(0).v4(), c.node(0).v6()];
    let steps = [
        (false, true, "10.247.1.11"),
        (false, false, "10.247.1.12"),
        (true, true, "fd00:247:1::11"),
        (true, false, "fd00:247:1::12"),
    ];
    for (v6, kernel_first, new) in steps {
        let what = format!(
            "{} {}",
            if v6 { "IPv6" } else { "IPv4" },
            if kernel_first {
                "kernel first"
            } else {
                "Node first"
            }
        );
        let old = current[v6 as usize].clone();
        let peer_cidr = if v6 { pod_cidr_v6(3) } else { pod_cidr_v4(3) };
        let before = c.node(0).route_to(&peer_cidr).expect("n1 routes n3");
        if kernel_first {
            move_kernel_address(&c, 0, v6, &old, new);
        } else {
            set_node_address(&c, 0, v6, new);
        }
        // In between, kernel and Node disagree: n1 keeps what it has (never disrupt).
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            c.node(0).route_to(&peer_cidr).as_ref(),
            Some(&before),
            "{what}: n1's VXLAN route withdrawn while kernel and Node disagree\n{}",
            c.node(0).agent_log()
        );
        assert_eq!(vxlan_local(&c, 0, v6).as_deref(), Some(old.as_str()));
        if kernel_first {
            set_node_address(&c, 0, v6, new);
        } else {
            move_kernel_address(&c, 0, v6, &old, new);
        }
        let took = c.wait_for(
            &format!("{what}: n1 and its peers on the new address"),
            FOLLOW,
            || {
                vxlan_local(&c, 0, v6).as_deref() == Some(new)
                    && c.converged()
                    && c.node(0)
                        .route_to(&peer_cidr)
                        .is_some_and(|r| r["dev"].as_str().unwrap_or("").contains("vxlan"))
                    && c.node(2).fdb().iter().any(|e| e["dst"] == new)
            },
        );
        eprintln!("{what}: converged {took:?} after kernel and Node agreed");
        // The data path, both families, across the router.
        let (a, b) = (&c.pods[0], &c.pods[1]);
        for to in [b.v4, b.v6] {
            let t = Instant::now();
            while !a.ping(to) {
                assert!(
                    t.elapsed() < FOLLOW,
                    "{what}: pod on n1 cannot reach {to} on n3\n{}",
                    c.node(0).agent_log()
                );
            }
        }
        current[v6 as usize] = new.to_string();
    }
}

/// The MTU of node `i`'s conflist.
fn conflist_mtu(c: &Cluster, i: usize) -> Option<u64> {
    let raw = cluster::read(&c.node(i).conf_dir().join("10-podwire.conflist"));
    let v: serde_json::Value = serde_json::from_str(&raw).ok()?;
    v["plugins"][0]["mtu"].as_u64()
}

fn link_mtu(ns: &str, dev: &str) -> Option<u64> {
    let v = testkit::ip_json(ns, &["link", "show", dev]);
    v.as_array()?.first()?["mtu"].as_u64()
}

/// Issue #23 part 1: without --mtu, pods get the underlay's MTU less VXLAN's room (70: the
/// nodes have IPv6 pods); the underlay shrinking (a node moved onto a 1450-byte OpenStack
/// network) is followed without a restart: conflist, bridge, VXLAN devices, and the pods already
/// there, both ends of their veths. `node show` says where the MTU comes from.
#[test]
fn the_pod_mtu_follows_the_underlay() {
    let mut c = cluster([2, 2]);
    c.add_pod(0);
    c.add_pod(2);
    for i in 0..4 {
        assert_eq!(conflist_mtu(&c, i), Some(1430), "node {i}");
        assert_eq!(link_mtu(&c.node(i).ns.name, "cni0"), Some(1430));
    }
    let pod = c.pods[0].ns.name.clone();
    assert_eq!(link_mtu(&pod, "eth0"), Some(1430));
    let alias = c.node(0).ip_json(&["link", "show", "cni0"])[0]["ifalias"].clone();
    assert_eq!(
        alias, "podwire: mtu 1430 = eth0 1500 (default route, holds 10.247.1.1, holds fd00:247:1::1) - 70 (VXLAN over IPv6)",
    );
    // A 1500-byte packet from a pod across the router: too big for the pod, not for the path.
    assert!(c.pods[0].ns.exec_ok(&[
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "-M",
        "do",
        "-s",
        "1402",
        &c.pods[1].v4.to_string()
    ]));

    // n1's underlay becomes 1450 (its side of the segment; the bigger router side is harmless).
    assert!(c
        .node(0)
        .ns
        .exec_ok(&["ip", "link", "set", "eth0", "mtu", "1450"]));
    let took = c.wait_for("n1's pods on the new MTU", FOLLOW, || {
        conflist_mtu(&c, 0) == Some(1380)
            && link_mtu(&c.node(0).ns.name, "cni0") == Some(1380)
            && link_mtu(&pod, "eth0") == Some(1380)
            && link_mtu(&c.node(0).ns.name, "podwire.vxlan") == Some(1400)
            && link_mtu(&c.node(0).ns.name, "podwire.vxlan6") == Some(1380)
    });
    eprintln!("MTU followed in {took:?}");
    // The host end of the pod's veth too, and nothing on the other nodes.
    let veths = c.node(0).ip_json(&["link", "show", "master", "cni0"]);
    assert!(
        veths.as_array().unwrap().iter().all(|l| l["mtu"] == 1380),
        "{veths}"
    );
    assert_eq!(conflist_mtu(&c, 2), Some(1430));
    // A new pod gets it from the conflist; the old one still reaches across.
    c.add_pod(0);
    assert_eq!(link_mtu(&c.pods[2].ns.name, "eth0"), Some(1380));
    assert!(c.pods[0].ping(c.pods[1].v4));
    assert!(c.pods[0].ping(c.pods[1].v6));
    assert!(
        c.node(0).agent_log().contains("pods now get mtu 1380"),
        "{}",
        c.node(0).agent_log()
    );
}

/// Issue #23 part 2: segment B drops every bridged packet whose source is in the cluster CIDR
/// (a cloud fabric's source/destination check); segment A carries them. The agents on n3/n4 find
/// it by probing each other from their pod gateways and use VXLAN between them; n1/n2 keep
/// direct routes. Pods everywhere still reach each other, and the logs say each path and why.
#[test]
fn a_segment_that_drops_pod_sources_gets_vxlan_and_the_other_keeps_direct_routes() {
    let mut c = Cluster::new([2, 2]);
    // Segment B's ports in the router (a bridge-family rule matches the port a frame came in on).
    let ports: Vec<String> = c
        .router
        .ns
        .ip_json(&["link", "show", "master", "seg2"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("\"{}\"", l["ifname"].as_str().unwrap()))
        .collect();
    assert_eq!(ports.len(), 2);
    let ports = ports.join(", ");
    let rules = format!(
        "table bridge pwfabric {{\n chain fabric {{\n type filter hook forward priority 0;\n \
         iifname {{ {ports} }} ip saddr {} drop\n iifname {{ {ports} }} ip6 saddr {} drop\n }}\n}}\n",
        cluster::CLUSTER_V4,
        cluster::CLUSTER_V6
    );
    let router = c.router.ns.name.clone();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &router, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write;
            ch.stdin.take().unwrap().write_all(rules.as_bytes())?;
            ch.wait()
        })
        .unwrap();
    assert!(out.success(), "nft in the router");
    eprintln!(
        "DEBUG {}",
        testkit::run(&["ip", "netns", "exec", &router, "nft", "list", "ruleset"])
    );
    assert!(c
        .node(2)
        .ns
        .exec_ok(&["ip", "addr", "add", "10.246.99.1/32", "dev", "lo"]));
    eprintln!(
        "DEBUG ping {}",
        c.node(2).ns.exec_ok(&[
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            "10.246.99.1",
            &c.node(3).v4()
        ])
    );
    c.start_agents();
    c.wait_converged(CONVERGE);
    let vxlan = |i: usize, dst: &str| {
        c.node(i).route_to(dst).is_some_and(|r| {
            r["dev"]
                .as_str()
                .is_some_and(|d| d.starts_with("podwire.vxlan"))
        })
    };
    let took = c.wait_for("n3 and n4 over VXLAN to each other", CONVERGE, || {
        vxlan(2, &pod_cidr_v4(4))
            && vxlan(2, &pod_cidr_v6(4))
            && vxlan(3, &pod_cidr_v4(3))
            && vxlan(3, &pod_cidr_v6(3))
    });
    eprintln!("filtered segment found in {took:?}");
    // Segment A: direct, both families.
    let d = c.node(0).route_to(&pod_cidr_v4(2)).unwrap();
    assert_eq!(d["gateway"], c.node(1).v4(), "{d}");
    let d6 = c.node(0).route_to(&pod_cidr_v6(2)).unwrap();
    assert_eq!(d6["gateway"], c.node(1).v6(), "{d6}");
    // n3's FDB sends n4's VTEP MAC to n4's own address on the segment.
    assert!(c.node(2).fdb().iter().any(|e| e["dst"] == c.node(3).v4()));
    for i in 0..4 {
        c.add_pod(i);
    }
    let failed = c.unanswered_cross_node_pings();
    assert!(failed.is_empty(), "no answer: {failed:#?}");
    let (n3log, n1log) = (c.node(2).agent_log(), c.node(0).agent_log());
    let n4 = &c.node(3).name;
    assert!(
        n3log.contains(&format!(
            "path to node {n4} {}: VXLAN to {} (on-link but filtered",
            pod_cidr_v4(4),
            c.node(3).v4()
        )),
        "{n3log}"
    );
    assert!(
        n1log.contains(&format!(
            "path to node {} {}: direct via {} (on-link and verified)",
            c.node(1).name,
            pod_cidr_v4(2),
            c.node(1).v4()
        )),
        "{n1log}"
    );
    assert!(n1log.contains(&format!(
        "path to node {} {}: VXLAN to {} (not on-link)",
        c.node(2).name,
        pod_cidr_v4(3),
        c.node(2).v4()
    )));
    // `node show` on n3 says each peer's way and why, and where the pods' MTU comes from.
    let n3 = c.node(2);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &n3.ns.name])
        .arg(&c.bin.podwirectl)
        .args(["node", "show", "--netconfpath"])
        .arg(n3.conf_dir())
        .arg("--cache-dir")
        .arg(n3.dir.join("cache"))
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{show}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        show.contains(&format!(
            "{} VXLAN to {} (on-link, but over VXLAN: its direct path was filtered",
            pod_cidr_v4(4),
            c.node(3).v4()
        )),
        "{show}"
    );
    assert!(
        show.contains(&format!(
            "{} VXLAN to {} (not on-link)",
            pod_cidr_v4(1),
            c.node(0).v4()
        )),
        "{show}"
    );
    assert!(show.contains("pods' mtu 1430 = eth0 1500"), "{show}");
    eprintln!("node show on n3:\n{show}");
    // A node that routes directly still takes VXLAN from a peer that chose it.
    let rp =
        kernel::sysctl::read_in(&c.node(0).ns.ns, "net/ipv4/conf/podwire.vxlan/rp_filter").unwrap();
    assert_eq!(rp.trim(), "2");
}
