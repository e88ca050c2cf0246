//! The data path, measured against the floor (issue #23 part 4), on the simulated cluster's
//! topology (tests/cluster: node namespaces on two segments joined by a router, veths all the
//! way). For each path, IPv4 and IPv6: TCP bulk throughput (one stream, four streams) and TCP
//! request/response rate (1 byte each way), each `--reps` times; medians and min–max.
//!
//! Paths: node to node (the floor: the same links, no pod network); pod to pod on one node; pod
//! to pod across nodes over a direct route; and over VXLAN. Each pod path twice: podwire's, and
//! the same path built by hand with `ip` commands (bridge, veths, routes, a VXLAN device with
//! static FDB and neighbour entries: what a perfect plugin would leave), so podwire's own cost
//! is the ratio between the two. The hand-built pods get the same MTU as podwire's.
//!
//!   cargo bench -p podwire-cluster-tests --bench datapath [-- --reps 5 --secs 1 --write docs/benchmarks.md]

mod experiments;
mod hand;
mod measure;
mod profile;
mod report;

use cluster::{Cluster, Pod};
use experiments::*;
use hand::*;
use measure::*;
use profile::*;
use report::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::bench_page::arg;
use testkit::TestNs;

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let reps: usize = arg("--reps", "5").parse().unwrap();
    let secs: f64 = arg("--secs", "1").parse().unwrap();
    let mut c = Cluster::new([2, 2]);
    c.start_agents();
    c.wait_converged(Duration::from_secs(30));
    // podwire's pods: two on n1, one on n2 (direct), one on n3 (VXLAN).
    for i in [0, 0, 1, 2] {
        c.add_pod(i);
    }
    let mtu = testkit::ip_json(&c.pods[0].ns.name, &["link", "show", "eth0"])[0]["mtu"]
        .as_u64()
        .unwrap() as u32;
    let (n1, n2, n3) = (
        c.node(0).ns.name.clone(),
        c.node(1).ns.name.clone(),
        c.node(2).ns.name.clone(),
    );
    // The hand-built twins on the same nodes.
    let mut keep = Vec::new();
    let twin = HandNet {
        br: "hb0",
        net: 240,
        mtu,
    };
    let h1 = hand_node(&n1, 1, 2, &twin, &mut keep);
    let h2 = hand_node(&n2, 2, 1, &twin, &mut keep);
    let h3 = hand_node(&n3, 3, 1, &twin, &mut keep);
    sh(
        &n1,
        &format!("ip route add 10.240.2.0/24 via {}", c.node(1).v4()),
    );
    sh(
        &n1,
        &format!("ip -6 route add fd00:240:0:2::/64 via {}", c.node(1).v6()),
    );
    sh(
        &n2,
        &format!("ip route add 10.240.1.0/24 via {}", c.node(0).v4()),
    );
    sh(
        &n2,
        &format!("ip -6 route add fd00:240:0:1::/64 via {}", c.node(0).v6()),
    );
    let (v1, v3) = (c.node(0), c.node(2));
    hand_vxlan(&n1, 1, &v1.v4(), &v1.v6(), 3, &v3.v4(), &v3.v6());
    hand_vxlan(&n3, 3, &v3.v4(), &v3.v6(), 1, &v1.v4(), &v1.v6());

    let node_end = |i: usize| End {
        ns: c.node(i).ns.name.clone(),
        v4: c.node(i).v4().parse().unwrap(),
        v6: c.node(i).v6().parse().unwrap(),
    };
    let p: Vec<End> = c.pods.iter().map(End::of_pod).collect();
    let mut rows = Vec::new();
    // --experiments-only: the offloads, two tunnels and the profile, not the main table.
    let main_table = !std::env::args().any(|a| a == "--experiments-only");
    for v6 in [false, true].into_iter().filter(|_| main_table) {
        eprintln!("node to node, v6={v6}");
        rows.push(Row {
            path: "node to node (floor)",
            v6,
            podwire: measure(&node_end(0), &node_end(1), v6, reps, secs),
            hand: None,
            ratio: None,
        });
        for (path, a, b, ha, hb) in [
            ("pod to pod, one node", &p[0], &p[1], &h1[0], &h1[1]),
            ("pod to pod, direct", &p[0], &p[2], &h1[0], &h2[0]),
            ("pod to pod, VXLAN", &p[0], &p[3], &h1[0], &h3[0]),
        ] {
            eprintln!("{path}, v6={v6}");
            let [pw, hand] = measure_turns(
                [
                    Side { a, b, set: &same },
                    Side {
                        a: ha,
                        b: hb,
                        set: &same,
                    },
                ],
                v6,
                reps,
                secs,
            );
            rows.push(Row {
                path,
                v6,
                podwire: pw.figures(),
                hand: Some(hand.figures()),
                ratio: Some(pw.ratio(&hand)),
            });
        }
    }
    let mut section = String::new();
    if main_table {
        section = report(&rows, reps, secs, mtu);
        println!("{section}");
    }
    let hand = Hand {
        nodes: [&n1, &n2, &n3],
        one_node: (&h1[0], &h1[1]),
        direct: (&h1[0], &h2[0]),
        vxlan: (&h1[0], &h3[0]),
    };
    let mut more = |part: String| {
        println!("{part}");
        section += &part;
    };
    more(offloads(&hand, reps, secs));
    let underlay = |i: usize| (c.node(i).v4(), node_end(i));
    more(two_tunnels(
        &hand,
        underlay(0),
        underlay(2),
        reps,
        secs,
        &mut keep,
    ));
    more(profile(
        &[
            ("node to node", &node_end(0), &node_end(1)),
            ("pod to pod, one node", &p[0], &p[1]),
            ("pod to pod, direct", &p[0], &p[2]),
            ("pod to pod, VXLAN", &p[0], &p[3]),
        ],
        secs.max(2.0),
    ));
    let out = arg("--write", "");
    if !out.is_empty() && main_table {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        testkit::bench_page::write_section(&root.join(&out), HEADING, &section);
        let svg = root.join(&out).with_file_name("benchmarks-datapath.svg");
        std::fs::write(&svg, chart(&rows)).unwrap();
        println!("written to {out} and {}", svg.display());
    }
}
