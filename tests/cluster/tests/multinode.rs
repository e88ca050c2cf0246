//! Multi-node pod networking in a simulated cluster (tests/cluster): four node namespaces on two
//! L2 segments joined by a router, one stand-in API server, podwire's agent on every node.
//! n1–n2 and n3–n4 are on-link (direct routes); A↔B pairs are not (VXLAN).

use cluster::{pod_cidr_v4, pod_cidr_v6, Cluster, NODE_SETUP_WATCH};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(20);

fn four_nodes() -> Cluster {
    let t = Instant::now();
    let mut c = Cluster::new([2, 2]);
    eprintln!("cluster built in {:?}", t.elapsed());
    c.start_agents();
    let took = c.wait_converged(CONVERGE);
    eprintln!("agents converged in {took:?}");
    c
}

/// Every pod pings every pod on every other node, both families.
fn all_pairs_ping(c: &Cluster) {
    let failed = c.unanswered_cross_node_pings();
    assert!(failed.is_empty(), "no answer: {failed:#?}");
}

/// The source address a TCP server in `b` sees for a connection from `a`.
fn seen_source(c: &Cluster, a: usize, b: usize, v6: bool) -> IpAddr {
    let (pa, pb) = (&c.pods[a], &c.pods[b]);
    let listener = pb.listen(v6);
    let port = listener.local_addr().unwrap().port();
    let to = SocketAddr::new(if v6 { pb.v6 } else { pb.v4 }, port);
    let _client = pa.connect(to).expect("connect across nodes");
    listener.accept().unwrap().1.ip()
}

#[test]
fn pods_reach_every_pod_on_every_node_without_nat() {
    let mut c = four_nodes();
    // Direct between on-link nodes, VXLAN across the router, both families.
    let n1 = c.node(0);
    let direct = n1.route_to(&pod_cidr_v4(2)).expect("route to n2");
    assert_eq!(direct["gateway"], c.node(1).v4());
    assert!(direct["dev"] == "eth0", "{direct}");
    let direct6 = n1.route_to(&pod_cidr_v6(2)).expect("route6 to n2");
    assert_eq!(direct6["gateway"], c.node(1).v6());
    let vx = n1.route_to(&pod_cidr_v4(3)).expect("route to n3");
    assert_eq!(vx["dev"], "podwire.vxlan", "{vx}");
    assert!(vx["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "onlink"));
    let vx6 = n1.route_to(&pod_cidr_v6(4)).expect("route6 to n4");
    assert_eq!(vx6["dev"], "podwire.vxlan6", "{vx6}");
    // The VXLAN device: learning off, port 8472, MTU = underlay - 50 / - 70.
    let link = n1.ip_json(&["-d", "link", "show", "podwire.vxlan"]);
    assert_eq!(link[0]["mtu"], 1450);
    assert_eq!(link[0]["linkinfo"]["info_data"]["port"], 8472);
    assert_eq!(link[0]["linkinfo"]["info_data"]["learning"], false);
    let link6 = n1.ip_json(&["link", "show", "podwire.vxlan6"]);
    assert_eq!(link6[0]["mtu"], 1430);
    // Per VXLAN peer one FDB entry (v4 and v6 device) and one permanent neighbour.
    assert_eq!(n1.fdb().len(), 4, "{:?}", n1.fdb());
    assert_eq!(
        n1.vxlan_neighbours().len(),
        4,
        "{:?}",
        n1.vxlan_neighbours()
    );

    let t = Instant::now();
    for i in 0..4 {
        c.add_pod(i);
    }
    eprintln!("4 pods added in {:?}", t.elapsed());
    let t = Instant::now();
    all_pairs_ping(&c);
    eprintln!("24 pings in {:?}", t.elapsed());
    // The receiver sees the sender's own pod address, over a direct route and over VXLAN.
    for (a, b) in [(0, 1), (0, 2), (3, 1)] {
        for v6 in [false, true] {
            let want = if v6 { c.pods[a].v6 } else { c.pods[a].v4 };
            assert_eq!(
                seen_source(&c, a, b, v6),
                want,
                "pod {a} -> pod {b} v6={v6}: NATed"
            );
        }
    }
}

fn all_nodes_mention(c: &Cluster, what: &str) -> bool {
    c.nodes.iter().all(|n| n.mentions(what))
}

fn no_node_mentions(c: &Cluster, what: &str) -> bool {
    c.nodes.iter().all(|n| !n.mentions(what))
}

#[test]
fn node_objects_added_moved_and_deleted_are_followed_everywhere() {
    let c = four_nodes();
    // A fifth Node (no namespace behind it) on segment B: n3/n4 route to it directly, n1/n2
    // over VXLAN.
    let extra = kubesim::NodeBuilder::new(format!("{}-x", c.prefix))
        .pod_cidr("10.246.50.0/24")
        .pod_cidr("fd00:246:0:50::/64")
        .internal_ip("10.247.2.50")
        .internal_ip("fd00:247:2::50")
        .build();
    c.api.create_node(&extra).unwrap();
    c.wait_for("all agents route to the new node", CONVERGE, || {
        all_nodes_mention(&c, "10.246.50.0/24") && all_nodes_mention(&c, "fd00:246:0:50::/64")
    });
    assert_eq!(
        c.node(2).route_to("10.246.50.0/24").unwrap()["gateway"],
        "10.247.2.50"
    );
    assert!(c.node(0).fdb().iter().any(|e| e["dst"] == "10.247.2.50"));

    // Its address moves to segment A: n1/n2 now direct, n3/n4 over VXLAN, the old FDB gone.
    let name = extra.metadata.name.clone().unwrap();
    c.api
        .modify_node(&name, |n| {
            let a = n.status.as_mut().unwrap().addresses.as_mut().unwrap();
            a[0].address = "10.247.1.50".into();
            a[1].address = "fd00:247:1::50".into();
        })
        .unwrap();
    c.wait_for("the moved node's routes replaced", CONVERGE, || {
        c.node(0)
            .route_to("10.246.50.0/24")
            .is_some_and(|r| r["gateway"] == "10.247.1.50")
            && c.node(2)
                .route_to("10.246.50.0/24")
                .is_some_and(|r| r["dev"] == "podwire.vxlan")
            && no_node_mentions(&c, "10.247.2.50")
    });
    assert!(c.node(2).fdb().iter().any(|e| e["dst"] == "10.247.1.50"));

    // Deleted: every trace on every node goes.
    c.api.delete_node(&name).unwrap();
    c.wait_for("every trace of the deleted node gone", CONVERGE, || {
        no_node_mentions(&c, "10.246.50.0")
            && no_node_mentions(&c, "fd00:246:0:50::")
            && no_node_mentions(&c, "10.247.1.50")
    });
    assert!(c.converged());
}

#[test]
fn an_agent_down_while_a_node_is_deleted_sweeps_it_at_start_and_traffic_never_stops() {
    let mut c = four_nodes();
    for i in [0, 2] {
        c.add_pod(i);
    }
    // A ghost Node everyone routes to.
    let ghost = kubesim::NodeBuilder::new(format!("{}-ghost", c.prefix))
        .pod_cidr("10.246.60.0/24")
        .internal_ip("10.247.2.60")
        .build();
    c.api.create_node(&ghost).unwrap();
    c.wait_for("the ghost routed", CONVERGE, || {
        all_nodes_mention(&c, "10.246.60.0/24")
    });

    // Continuous ping pod(n1) -> pod(n3) over VXLAN while n1's and n3's agents restart.
    let (src, dst) = (&c.pods[0], c.pods[1].v4);
    let mut ping = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &src.ns.name,
            "ping",
            "-i",
            "0.05",
            "-c",
            "100",
            "-W",
            "1",
        ])
        .arg(dst.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.nodes[0].kill_agent();
    c.nodes[2].stop_agent();
    c.api
        .delete_node(ghost.metadata.name.as_deref().unwrap())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        c.node(0).mentions("10.246.60.0/24"),
        "a dead agent changes nothing"
    );
    c.start_agent(0);
    c.start_agent(2);
    c.wait_for("the restarted agents swept the ghost", CONVERGE, || {
        no_node_mentions(&c, "10.246.60.0/24")
    });
    let mut out = String::new();
    let status = ping.wait().unwrap();
    ping.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("100 received"),
        "packets lost while agents restarted:\n{out}"
    );
    assert!(c.converged());
}

#[test]
fn kernel_changes_are_repaired_and_watch_breaks_lose_nothing() {
    let c = Cluster::with_options(
        [2, 2],
        kubesim::Options {
            // A short history: a watch resumed after more changes than this gets 410 Gone.
            history_limit: 3,
            ..kubesim::Options::default()
        },
    );
    let mut c = c;
    // `node setup --from-kubernetes --watch` is the same agent as `node agent`: this test runs it.
    c.agent_command = NODE_SETUP_WATCH;
    c.start_agents();
    c.wait_converged(CONVERGE);

    // Someone deletes a route; someone flaps the underlay link.
    let n1 = c.node(0);
    assert!(n1.ns.exec_ok(&["ip", "route", "del", &pod_cidr_v4(3)]));
    let took = c.wait_for("the deleted route is back", Duration::from_secs(5), || {
        c.node(0).route_to(&pod_cidr_v4(3)).is_some()
    });
    eprintln!("route repaired in {took:?}");
    assert!(n1.ns.exec_ok(&["ip", "link", "set", "eth0", "down"]));
    assert!(n1.ns.exec_ok(&["ip", "link", "set", "eth0", "up"]));
    c.wait_for(
        "routes back after a link flap",
        Duration::from_secs(10),
        || c.converged(),
    );

    // The API server closes every watch while Nodes come and go: nothing is lost.
    let names: Vec<String> = (0..5).map(|i| format!("{}-w{i}", c.prefix)).collect();
    c.api.close_watches();
    for (i, name) in names.iter().enumerate() {
        let n = kubesim::NodeBuilder::new(name)
            .pod_cidr(format!("10.246.{}.0/24", 70 + i))
            .internal_ip(format!("10.247.2.{}", 70 + i))
            .build();
        c.api.create_node(&n).unwrap();
    }
    c.wait_converged(CONVERGE);
    // More changes than the history keeps while the watches are closed: 410, re-list.
    let before = c.api.stats().expired;
    c.api.pause();
    c.api.close_watches();
    for name in &names[..4] {
        c.api.delete_node(name).unwrap();
    }
    c.api.resume();
    c.wait_converged(CONVERGE);
    assert!(no_node_mentions(&c, "10.246.70.0/24"));
    assert!(all_nodes_mention(&c, "10.246.74.0/24"));
    eprintln!("410 answers: {}", c.api.stats().expired - before);
}

/// Pod-to-pod TCP throughput across nodes, direct and over VXLAN (reported, no target).
#[test]
fn tcp_throughput_direct_and_vxlan_is_measured() {
    let mut c = four_nodes();
    for i in [0, 1, 2] {
        c.add_pod(i);
    }
    for (label, a, b) in [("direct", 0, 1), ("vxlan", 0, 2)] {
        let listener = c.pods[b].listen(false);
        let to = SocketAddr::new(c.pods[b].v4, listener.local_addr().unwrap().port());
        let total: usize = 200 << 20;
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got
        });
        let mut s = c.pods[a].connect(to).unwrap();
        let chunk = vec![7u8; 1 << 16];
        let start = Instant::now();
        let mut sent = 0;
        while sent < total {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        drop(s);
        let got = reader.join().unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(got, total);
        eprintln!(
            "THROUGHPUT {label}: {:.0} Mbit/s ({} MiB in {:.2} s)",
            got as f64 * 8.0 / secs / 1e6,
            got >> 20,
            secs
        );
    }
}

/// How many times `needle` is in node `i`'s agent log.
fn said(c: &Cluster, i: usize, needle: &str) -> usize {
    c.node(i).agent_log().matches(needle).count()
}

/// Routes to `dst` in node `i`'s main table, whoever made them.
fn any_route(c: &Cluster, i: usize, dst: &str) -> Vec<serde_json::Value> {
    let fam = if dst.contains(':') { "-6" } else { "-4" };
    let r = c.node(i).ip_json(&[fam, "route", "show", "exact", dst]);
    r.as_array().unwrap().clone()
}

/// Issue #22 item 10: a Node whose podCIDR is outside the cluster CIDR (half of IPv4, the
/// underlay's own prefix) is routed nowhere and said in the log; a leftover route to it (an
/// older agent's) is removed and, once removed, stays removed.
#[test]
fn node_objects_outside_the_cluster_cidr_are_never_routed() {
    let c = four_nodes();
    let half = kubesim::NodeBuilder::new(format!("{}-half", c.prefix))
        .pod_cidr("128.0.0.0/1")
        .internal_ip("10.247.1.60")
        .build();
    let lan = kubesim::NodeBuilder::new(format!("{}-lan", c.prefix))
        .pod_cidr("10.247.2.0/24")
        .pod_cidr("fd00:247:2::/64")
        .internal_ip("10.247.1.61")
        .internal_ip("fd00:247:1::61")
        .build();
    let good = kubesim::NodeBuilder::new(format!("{}-good", c.prefix))
        .pod_cidr("10.246.80.0/24")
        .internal_ip("10.247.1.62")
        .build();
    for n in [&half, &lan, &good] {
        c.api.create_node(n).unwrap();
    }
    c.wait_for("the good node routed everywhere", CONVERGE, || {
        all_nodes_mention(&c, "10.246.80.0/24")
    });
    c.wait_for("every agent saying why it routes neither", CONVERGE, || {
        (0..4).all(|i| {
            said(&c, i, "128.0.0.0/1: outside the cluster CIDR 10.246.0.0/16") > 0
                && said(&c, i, "10.247.2.0/24: outside the cluster CIDR") > 0
                && said(
                    &c,
                    i,
                    "fd00:247:2::/64: outside the cluster CIDR fd00:246::/48",
                ) > 0
        })
    });
    for i in 0..4 {
        for dst in ["128.0.0.0/1", "10.247.2.0/24", "fd00:247:2::/64"] {
            let routes = any_route(&c, i, dst);
            assert!(
                routes.iter().all(|r| r["protocol"] != "157"),
                "{} routes {dst}: {routes:?}",
                c.node(i).name
            );
        }
        // The underlay and the default route are as they were.
        let default = c.node(i).ip_json(&["-4", "route", "show", "default"]);
        assert_eq!(default.as_array().unwrap().len(), 1, "{default}");
    }

    // node show says so too: the kernel cannot (a refused peer has no route), the agent's
    // state file does.
    let node = c.node(0);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &node.ns.name])
        .arg(&c.bin.podwirectl)
        .args(["node", "show", "--netconfpath"])
        .arg(node.dir.join("net.d"))
        .arg("--cache-dir")
        .arg(node.dir.join("cache"))
        .arg("--state-dir")
        .arg(node.dir.join("state"))
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{show}");
    assert!(
        show.contains("PodCIDROutsideCluster (pod_cidr_outside_cluster)")
            && show.contains("128.0.0.0/1: outside the cluster CIDR"),
        "node show: {show}"
    );

    // A leftover of an agent that did route it: removed, and once removed it stays removed.
    let n1 = c.node(0);
    assert!(n1.ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "128.0.0.0/1",
        "via",
        "10.247.1.60",
        "proto",
        "157"
    ]));
    c.wait_for("the leftover removed", CONVERGE, || {
        any_route(&c, 0, "128.0.0.0/1").is_empty()
    });
    let before = said(&c, 0, "128.0.0.0/1: outside");
    c.wait_for("one more resync", CONVERGE, || {
        said(&c, 0, "128.0.0.0/1: outside") > before
    });
    assert!(any_route(&c, 0, "128.0.0.0/1").is_empty());
    assert!(c.node(0).route_to("10.246.80.0/24").is_some());
}

/// Issue #22 item 12: this node's own Node object deleted (by mistake, or while the node is
/// re-registered) leaves its routes as they are, VXLAN peers included, until it comes back.
#[test]
fn this_nodes_own_node_object_deleted_disrupts_nothing() {
    let c = four_nodes();
    let n1 = c.node(0);
    let routes = |n: &cluster::SimNode| {
        let mut r: Vec<String> = n.podwire_routes().iter().map(|r| r.to_string()).collect();
        r.sort();
        r
    };
    let (before, fdb_before) = (routes(n1), n1.fdb().len());
    assert!(
        before.iter().any(|r| r.contains("podwire.vxlan")),
        "{before:?}"
    );
    let me = c
        .api
        .nodes()
        .into_iter()
        .find(|o| o.metadata.name.as_deref() == Some(n1.name.as_str()));
    c.api.delete_node(&n1.name).unwrap();
    let gone = "own Node object";
    c.wait_for("n1 saying its Node object is gone", CONVERGE, || {
        said(&c, 0, gone) > 0
    });
    let seen = said(&c, 0, gone);
    c.wait_for("one more resync on n1", CONVERGE, || {
        said(&c, 0, gone) > seen
    });
    assert_eq!(
        routes(n1),
        before,
        "n1's routes changed without its Node object"
    );
    assert_eq!(n1.fdb().len(), fdb_before);
    // The others withdraw theirs to n1 (its Node is gone for them).
    c.wait_for("the others no longer route to n1", CONVERGE, || {
        (1..4).all(|i| c.node(i).route_to(&pod_cidr_v4(1)).is_none())
    });
    // It comes back: everyone converges again.
    let mut me = me.expect("n1's Node object");
    me.metadata.resource_version = None;
    c.api.create_node(&me).unwrap();
    c.wait_converged(CONVERGE);
    assert_eq!(routes(c.node(0)), before);
}
