//! The multi-node part of scripts/demo.sh: three simulated nodes (two on one L2 segment, one
//! behind a router), the stand-in API server, podwire's agent on each, a pod on each; shows what
//! the agents programmed and pings across nodes, direct and over VXLAN. Everything is removed
//! when it ends.

use cluster::Cluster;
use std::time::Duration;

fn step(s: &str) {
    println!("\n== {s}");
}

fn show(node: &cluster::SimNode, args: &[&str]) {
    println!("$ ip netns exec {} {}", node.name, args.join(" "));
    print!("{}", node.ns.exec(args));
}

fn main() {
    step("9. Three nodes, one pod network: n1 and n2 on one L2 segment, n3 behind a router");
    let mut c = Cluster::new([2, 1]);
    for n in &c.nodes {
        println!(
            "node {}: {} / {}, pod CIDRs {} {}",
            n.name,
            n.v4(),
            n.v6(),
            cluster::pod_cidr_v4(n.index),
            cluster::pod_cidr_v6(n.index)
        );
    }
    println!("API server (stand-in, list/watch): {}", c.api.url());

    step("10. podwire's agent on every node: podwirectl node agent");
    c.start_agents();
    let took = c.wait_converged(Duration::from_secs(30));
    println!("every node routes to every other node's pod CIDRs after {took:?}");
    show(&c.nodes[0], &["ip", "route", "show", "proto", "157"]);
    show(&c.nodes[0], &["ip", "-6", "route", "show", "proto", "157"]);
    show(
        &c.nodes[0],
        &["bridge", "fdb", "show", "dev", "podwire.vxlan"],
    );
    show(
        &c.nodes[0],
        &["ip", "neigh", "show", "dev", "podwire.vxlan"],
    );

    step("11. A pod on each node (podwirectl add, with the conflist each node's setup wrote)");
    for i in 0..3 {
        let p = c.add_pod(i);
        println!("pod on {}: {} {}", p.node, p.v4, p.v6);
    }

    step("12. Pod on n1 to the pods on n2 (direct route) and n3 (VXLAN), IPv4 and IPv6");
    let src = &c.pods[0];
    for (dst, how) in [(&c.pods[1], "direct"), (&c.pods[2], "VXLAN")] {
        for to in [dst.v4, dst.v6] {
            println!(
                "$ ip netns exec {} ping -c 2 {to}    # {} ({how})",
                src.ns.name, dst.node
            );
            print!(
                "{}",
                src.ns
                    .exec(&["ping", "-c", "2", "-W", "2", &to.to_string()])
            );
        }
    }

    step("13. The agent's log on n1");
    print!("{}", c.nodes[0].agent_log());

    step("14. Removing the simulated cluster (agents, pods, nodes, router)");
    drop(c);
    println!("the simulated cluster is gone");
}
