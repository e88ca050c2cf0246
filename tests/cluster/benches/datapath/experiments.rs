//! The experiments on the hand-built twin: offloads tried, and two tunnels (a pod VXLAN inside
//! a cloud's).

use super::*;

/// The hand-built twin's node netns (n1, n2, n3) and its paths, for the experiments.
pub struct Hand<'a> {
    pub nodes: [&'a str; 3],
    pub one_node: (&'a End, &'a End),
    pub direct: (&'a End, &'a End),
    pub vxlan: (&'a End, &'a End),
}

/// `ip netns exec <ns> ethtool -K <dev> gro on|off` (apt install ethtool).
pub fn gro(ns: &str, dev: &str, on: bool) {
    let on = if on { "on" } else { "off" };
    testkit::run(&["ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", on]);
}

/// The offloads that matter for these paths, each tried on the hand-built twin against the
/// same path without it, in turns: GRO on the pods' veths (both ends), UDP checksums on the
/// IPv4 VXLAN device (the kernel's default is none), zero UDP checksums on the IPv6 one (the
/// default computes them).
pub fn offloads(h: &Hand, reps: usize, secs: f64) -> String {
    let [n1, n2, n3] = h.nodes;
    // The veths of the three hand-built paths: (node netns, host end), (pod netns, eth0).
    let veths = [
        (n1, "hb0v10", &h.one_node.0.ns),
        (n1, "hb0v11", &h.one_node.1.ns),
        (n2, "hb0v20", &h.direct.1.ns),
        (n3, "hb0v30", &h.vxlan.1.ns),
    ];
    let set_gro = |on: bool| {
        for (node, host, pod) in veths {
            gro(node, host, on);
            gro(pod, "eth0", on);
        }
    };
    let gro_off = || set_gro(false);
    let gro_on = || set_gro(true);
    let via = |dev4: &'static str, dev6: &'static str| {
        move || {
            for (node, ib) in [(n1, 3), (n3, 1)] {
                sh(
                    node,
                    &format!(
                        "ip route replace 10.240.{ib}.0/24 via 10.240.{ib}.0 dev {dev4} onlink"
                    ),
                );
                // IPv6 refuses to replace an onlink route whose gateway the old route covers
                // through another device ("device mismatch"): delete, then add.
                sh(node, &format!("ip -6 route del fd00:240:0:{ib}::/64"));
                sh(
                    node,
                    &format!(
                        "ip -6 route add fd00:240:0:{ib}::/64 via fd00:240:0:{ib}:: dev {dev6} onlink"
                    ),
                );
            }
        }
    };
    let plain = via("hbvx", "hbvx6");
    let checksummed = via("hbvc", "hbvz6");
    let mut s = String::from(
        "\n### Offloads tried\n\nEach on the hand-built twin, against the same path without it, \
         measured in turns; with / without, run by run: median (min–max) for one stream, four \
         streams and request/response. \"This run says\": better or worse only where every pair \
         of runs agrees.\n\n\
         | setting | path | family | without, 1 stream, Gbit/s | with, 1 stream, Gbit/s | with / without (1 stream, 4, RR) | this run says |\n\
         | --- | --- | --- | ---: | ---: | ---: | --- |\n",
    );
    let mut row = |setting: &str, path: &str, v6: bool, sides: [Side; 2]| {
        eprintln!("offload: {setting}, {path}, v6={v6}");
        let [without, with] = measure_turns(sides, v6, reps, secs);
        let ratio = with.ratio(&without);
        s += &format!(
            "| {setting} | {path} | {} | {} | {} | {} | {} |\n",
            if v6 { "IPv6" } else { "IPv4" },
            cell(without.figures().one, 2),
            cell(with.figures().one, 2),
            ratio_cells(ratio),
            verdict(ratio),
        );
    };
    for (path, (a, b)) in [
        ("pod to pod, one node", h.one_node),
        ("pod to pod, direct", h.direct),
        ("pod to pod, VXLAN", h.vxlan),
    ] {
        row(
            "GRO on the pods' veths",
            path,
            false,
            [
                Side {
                    a,
                    b,
                    set: &gro_off,
                },
                Side { a, b, set: &gro_on },
            ],
        );
    }
    gro_off();
    let (a, b) = h.vxlan;
    row(
        "UDP checksums on the VXLAN device",
        "pod to pod, VXLAN",
        false,
        [
            Side { a, b, set: &plain },
            Side {
                a,
                b,
                set: &checksummed,
            },
        ],
    );
    row(
        "zero UDP checksums (udp6zerocsumtx/rx)",
        "pod to pod, VXLAN",
        true,
        [
            Side { a, b, set: &plain },
            Side {
                a,
                b,
                set: &checksummed,
            },
        ],
    );
    plain();
    // The tunnel's own UDP packets kept out of conntrack (a raw-priority `notrack` for the VXLAN
    // ports), on both nodes: the profile below shows conntrack busy with them.
    let notrack = |on: bool| {
        for node in [n1, n3] {
            testkit::run_ok(&[
                "ip",
                "netns",
                "exec",
                node,
                "nft",
                "delete",
                "table",
                "inet",
                "pwbnotrack",
            ]);
            if !on {
                continue;
            }
            for cmd in [
                "nft add table inet pwbnotrack",
                "nft add chain inet pwbnotrack pre { type filter hook prerouting priority raw ; }",
                "nft add chain inet pwbnotrack out { type filter hook output priority raw ; }",
                "nft add rule inet pwbnotrack pre udp dport { 4742, 4743 } notrack",
                "nft add rule inet pwbnotrack out udp dport { 4742, 4743 } notrack",
            ] {
                sh(node, cmd);
            }
        }
    };
    let tracked = || notrack(false);
    let untracked = || notrack(true);
    for v6 in [false, true] {
        row(
            "no conntrack for the tunnel's UDP (notrack)",
            "pod to pod, VXLAN",
            v6,
            [
                Side {
                    a,
                    b,
                    set: &tracked,
                },
                Side {
                    a,
                    b,
                    set: &untracked,
                },
            ],
        );
    }
    tracked();
    s
}

/// What a with / without ratio says: a figure is better (or worse) only when every pair of
/// runs says so (a sign test: with 5 pairs, 1 in 16 by chance).
pub fn verdict(f: Figures) -> &'static str {
    let up = |s: Stat| s.min > 1.0;
    let down = |s: Stat| s.max < 1.0;
    let better = up(f.one) || up(f.four) || up(f.rr);
    let worse = down(f.one) || down(f.four) || down(f.rr);
    match (better, worse) {
        (true, false) => "better",
        (true, true) => "better in one figure, worse in another",
        (false, true) => "worse",
        (false, false) => "no difference every run agrees on",
    }
}

/// Double tunneling, as on OpenStack over VXLAN: the "cloud" is a VXLAN between n1 and n3
/// (underlay MTU 1450, addresses 10.238.0.0/24), and two hand-built pods (MTU 1400: the cloud's
/// 1450 less podwire's 50) talk over it once directly routed (one tunnel: the cloud's) and once
/// through a VXLAN device of their own on top (two tunnels), in turns. IPv4.
pub fn two_tunnels(
    h: &Hand,
    (la, n1): (String, End),
    (lb, n3): (String, End),
    reps: usize,
    secs: f64,
    keep: &mut Vec<TestNs>,
) -> String {
    let (ns1, ns3) = (h.nodes[0], h.nodes[2]);
    let cloud = |i: u8| -> End {
        End {
            ns: if i == 1 { ns1 } else { ns3 }.to_string(),
            v4: format!("10.238.0.{i}").parse().unwrap(),
            v6: "::1".parse().unwrap(),
        }
    };
    for (ns, i, local, peer, ip) in [(ns1, 1u8, &la, &lb, 3u8), (ns3, 3, &lb, &la, 1)] {
        let vx = Vx {
            name: "cloudvx",
            id: 50,
            local,
            over: "eth0",
            mtu: 1450,
            mac: vx_mac(i, 50),
            extra: "",
        };
        vxlan_dev(ns, &vx, &vx_mac(ip, 50), peer, &format!("10.238.0.{ip}"));
        sh(ns, &format!("ip addr add 10.238.0.{i}/24 dev cloudvx"));
    }
    let net = HandNet {
        br: "hbc0",
        net: 241,
        mtu: 1400,
    };
    let pa = hand_node(ns1, 1, 1, &net, keep).remove(0);
    let pb = hand_node(ns3, 3, 1, &net, keep).remove(0);
    for (ns, i, ip) in [(ns1, 1u8, 3u8), (ns3, 3, 1)] {
        let local = format!("10.238.0.{i}");
        let vx = Vx {
            name: "dtvx",
            id: 51,
            local: &local,
            over: "cloudvx",
            mtu: 1400,
            mac: vx_mac(i, 51),
            extra: "",
        };
        vxlan_dev(
            ns,
            &vx,
            &vx_mac(ip, 51),
            &format!("10.238.0.{ip}"),
            &format!("10.241.{ip}.0"),
        );
    }
    let route = |double: bool| {
        for (ns, ip) in [(ns1, 3), (ns3, 1)] {
            let via = if double {
                format!("10.241.{ip}.0 dev dtvx onlink")
            } else {
                format!("10.238.0.{ip} dev cloudvx")
            };
            sh(ns, &format!("ip route replace 10.241.{ip}.0/24 via {via}"));
        }
    };
    let one = || route(false);
    let two = || route(true);
    eprintln!("two tunnels");
    let plain = measure(&n1, &n3, false, reps, secs);
    let over_cloud = measure(&cloud(1), &cloud(3), false, reps, secs);
    let [single, double] = measure_turns(
        [
            Side {
                a: &pa,
                b: &pb,
                set: &one,
            },
            Side {
                a: &pa,
                b: &pb,
                set: &two,
            },
        ],
        false,
        reps,
        secs,
    );
    let (single_f, double_f) = (single.figures(), double.figures());
    let vs = |f: Figures| {
        format!(
            "{:.2} / {:.2} / {:.2}",
            f.one.median / plain.one.median,
            f.four.median / plain.four.median,
            f.rr.median / plain.rr.median
        )
    };
    let mut s = String::from(
        "\n### Two tunnels: a pod network's VXLAN inside a cloud's\n\nThe talk's closing case \
         (flannel's VXLAN inside OpenStack's): the cloud is a VXLAN between two nodes (n1 and \
         n3, through the router; underlay MTU 1450), the pods' MTU 1400 (1450 less 50). Built by \
         hand (podwire's own cost is the table above); IPv4; the last two measured in turns.\n\n\
         | path | 1 stream, Gbit/s | 4 streams, Gbit/s | request/response, 1/s | / plain node to node (1 stream, 4, RR) |\n\
         | --- | ---: | ---: | ---: | ---: |\n",
    );
    for (path, f) in [
        ("node to node, plain underlay", plain),
        ("node to node over the cloud's VXLAN", over_cloud),
        ("pod to pod routed directly over it (one tunnel)", single_f),
        ("pod to pod over VXLAN inside it (two tunnels)", double_f),
    ] {
        s += &format!(
            "| {path} | {} | {} | {} | {} |\n",
            cell(f.one, 2),
            cell(f.four, 2),
            cell(f.rr, 0),
            vs(f)
        );
    }
    s += &format!(
        "\nTwo tunnels / one, run by run: {}.\n",
        ratio_cells(double.ratio(&single))
    );
    s
}
