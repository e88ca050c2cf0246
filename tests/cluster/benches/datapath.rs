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

use cluster::{Cluster, Pod};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::TestNs;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// One end of a path: a network namespace and its address of each family.
#[derive(Clone)]
struct End {
    ns: String,
    v4: IpAddr,
    v6: IpAddr,
}

impl End {
    fn of_pod(p: &Pod) -> End {
        End {
            ns: p.ns.name.clone(),
            v4: p.v4,
            v6: p.v6,
        }
    }

    fn addr(&self, v6: bool) -> IpAddr {
        if v6 {
            self.v6
        } else {
            self.v4
        }
    }

    fn netns(&self) -> kernel::Netns {
        kernel::Netns::named(&self.ns).unwrap()
    }
}

fn listen(at: &End, v6: bool) -> TcpListener {
    let a = if v6 { "[::]:0" } else { "0.0.0.0:0" };
    at.netns().run(|| TcpListener::bind(a)).unwrap().unwrap()
}

fn connect(from: &End, to: SocketAddr) -> TcpStream {
    let s = from
        .netns()
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(3)))
        .unwrap()
        .unwrap_or_else(|e| panic!("connect {to} from {}: {e}", from.ns));
    s.set_nodelay(true).unwrap();
    s
}

/// Pins the calling thread to `cpu` (modulo the CPUs there are) and returns its mask before, for
/// `unpin`. Senders on one CPU, receivers on another: on a 2-core machine a single stream's
/// figure otherwise depends on where the scheduler happens to put the two (and the softirq work
/// that follows the sender), and runs differ by half.
fn pin(cpu: usize) -> libc::cpu_set_t {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: cpu_set_t is plain data; the calls get valid pointers and its size.
    unsafe {
        let mut before: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut before);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % n, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        before
    }
}

fn unpin(mask: libc::cpu_set_t) {
    // SAFETY: as in `pin`.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mask) };
}

/// Gbit/s of `streams` parallel TCP streams from `a` to `b` for `secs`.
fn bulk(a: &End, b: &End, v6: bool, streams: usize, secs: f64) -> f64 {
    let l = listen(b, v6);
    let to = SocketAddr::new(b.addr(v6), l.local_addr().unwrap().port());
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..streams {
        let c = connect(a, to);
        let (mut s, _) = l.accept().unwrap();
        readers.push(std::thread::spawn(move || {
            pin(1);
            let mut buf = vec![0u8; 1 << 17];
            let mut got = 0u64;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            got
        }));
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            pin(0);
            let mut c = c;
            let chunk = vec![7u8; 1 << 17];
            while !stop.load(Ordering::Relaxed) {
                if c.write_all(&chunk).is_err() {
                    break;
                }
            }
        }));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    let got: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    got as f64 * 8.0 / took / 1e9
}

/// Request/response transactions per second (1 byte each way) for `secs`.
fn rr(a: &End, b: &End, v6: bool, secs: f64) -> f64 {
    let l = listen(b, v6);
    let to = SocketAddr::new(b.addr(v6), l.local_addr().unwrap().port());
    let mut c = connect(a, to);
    let (mut s, _) = l.accept().unwrap();
    s.set_nodelay(true).unwrap();
    let server = std::thread::spawn(move || {
        pin(1);
        let mut b = [0u8; 1];
        while let Ok(1) = s.read(&mut b) {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut b = [1u8; 1];
    let mut n = 0u64;
    let mask = pin(0);
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    while start.elapsed() < end {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
        n += 1;
    }
    let took = start.elapsed().as_secs_f64();
    unpin(mask);
    drop(c);
    server.join().unwrap();
    n as f64 / took
}

/// Median and min–max of the runs.
#[derive(Clone, Copy, Default)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

#[derive(Clone, Copy, Default)]
struct Figures {
    one: Stat,
    four: Stat,
    rr: Stat,
}

/// Every run of each figure, kept so that runs taken side by side can be divided.
#[derive(Clone, Default)]
struct Runs {
    one: Vec<f64>,
    four: Vec<f64>,
    rr: Vec<f64>,
}

impl Runs {
    fn figures(&self) -> Figures {
        Figures {
            one: stat(self.one.clone()),
            four: stat(self.four.clone()),
            rr: stat(self.rr.clone()),
        }
    }

    /// Run by run, self / other (each pair taken side by side): what differs between the two
    /// paths, without the drift of a noisy machine between one path's runs and the other's.
    fn ratio(&self, other: &Runs) -> Figures {
        let div = |a: &[f64], b: &[f64]| stat(a.iter().zip(b).map(|(x, y)| x / y).collect());
        Figures {
            one: div(&self.one, &other.one),
            four: div(&self.four, &other.four),
            rr: div(&self.rr, &other.rr),
        }
    }
}

/// One side of a comparison: the ends, and what to set before measuring it (a route, an
/// offload), so that two settings of one path can be compared run by run too.
struct Side<'a> {
    a: &'a End,
    b: &'a End,
    set: &'a dyn Fn(),
}

fn same() {}

/// Each figure of two sides, `reps` times, in turns (first then second, then second then first)
/// so that whatever else the machine does falls on both alike.
fn measure_turns(sides: [Side; 2], v6: bool, reps: usize, secs: f64) -> [Runs; 2] {
    for s in &sides {
        (s.set)();
        bulk(s.a, s.b, v6, 1, 0.2); // warm-up: neighbours, slow start
    }
    let mut out = [Runs::default(), Runs::default()];
    for i in 0..reps {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let s = &sides[k];
            (s.set)();
            out[k].one.push(bulk(s.a, s.b, v6, 1, secs));
        }
        for k in order {
            let s = &sides[k];
            (s.set)();
            out[k].four.push(bulk(s.a, s.b, v6, 4, secs));
        }
        for k in order {
            let s = &sides[k];
            (s.set)();
            out[k].rr.push(rr(s.a, s.b, v6, secs / 2.0));
        }
    }
    out
}

fn measure(a: &End, b: &End, v6: bool, reps: usize, secs: f64) -> Figures {
    let (mut one, mut four, mut r) = (Vec::new(), Vec::new(), Vec::new());
    // Warm-up: neighbour entries, the first TCP connection's slow start.
    bulk(a, b, v6, 1, 0.2);
    for _ in 0..reps {
        one.push(bulk(a, b, v6, 1, secs));
        four.push(bulk(a, b, v6, 4, secs));
        r.push(rr(a, b, v6, secs / 2.0));
    }
    Figures {
        one: stat(one),
        four: stat(four),
        rr: stat(r),
    }
}

/// Runs a command; it must succeed.
fn sh(ns: &str, cmd: &str) {
    let mut full = vec!["netns", "exec", ns];
    full.extend(cmd.split_whitespace());
    let o = std::process::Command::new("ip")
        .args(&full)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ip netns exec {ns} {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A hand-built node network: on node `i` (its netns `node`), bridge `br` with 10.`net`.i.1/24
/// and fd00:`net`:0:i::1/64, and `pods` pods on it, MTU `mtu`; returns the pods' ends.
struct HandNet<'a> {
    br: &'a str,
    net: u8,
    mtu: u32,
}

fn hand_node(node: &str, i: u8, pods: u8, h: &HandNet, keep: &mut Vec<TestNs>) -> Vec<End> {
    let HandNet { br, net, mtu } = *h;
    sh(node, &format!("ip link add {br} type bridge"));
    sh(node, &format!("ip link set {br} mtu {mtu} up"));
    sh(node, &format!("ip addr add 10.{net}.{i}.1/24 dev {br}"));
    sh(
        node,
        &format!("ip addr add fd00:{net}:0:{i}::1/64 dev {br} nodad"),
    );
    let mut ends = Vec::new();
    for p in 0..pods {
        let ns = TestNs::new("pwhp");
        let host = format!("{br}v{i}{p}");
        sh(
            node,
            &format!(
                "ip link add {host} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {}",
                ns.name
            ),
        );
        sh(node, &format!("ip link set {host} master {br} up"));
        let (v4, v6) = (
            format!("10.{net}.{i}.{}", 10 + p),
            format!("fd00:{net}:0:{i}::{}", 10 + p),
        );
        sh(&ns.name, &format!("ip addr add {v4}/24 dev eth0"));
        sh(&ns.name, &format!("ip addr add {v6}/64 dev eth0 nodad"));
        sh(&ns.name, "ip link set eth0 up");
        sh(
            &ns.name,
            &format!("ip route add default via 10.{net}.{i}.1"),
        );
        sh(
            &ns.name,
            &format!("ip -6 route add default via fd00:{net}:0:{i}::1"),
        );
        ends.push(End {
            ns: ns.name.clone(),
            v4: v4.parse().unwrap(),
            v6: v6.parse().unwrap(),
        });
        keep.push(ns);
    }
    ends
}

/// One hand-built VXLAN device on node netns `ns` toward one peer, as podwire programs its own:
/// no learning, a static FDB entry for the peer's device address `peer_mac` at `peer` (its
/// underlay address), a permanent neighbour for the peer's gateway address `gw`. `extra`: more
/// `type vxlan` options (the checksum settings tried).
struct Vx<'a> {
    name: &'a str,
    id: u32,
    local: &'a str,
    over: &'a str,
    mtu: u32,
    mac: String,
    extra: &'a str,
}

fn vxlan_dev(ns: &str, vx: &Vx, peer_mac: &str, peer: &str, gw: &str) {
    let Vx {
        name,
        id,
        local,
        over,
        mtu,
        ..
    } = *vx;
    sh(
        ns,
        &format!(
            "ip link add {name} type vxlan id {id} dstport {} local {local} dev {over} nolearning {}",
            4700 + id,
            vx.extra
        ),
    );
    sh(
        ns,
        &format!("ip link set {name} address {} mtu {mtu} up", vx.mac),
    );
    sh(
        ns,
        &format!("bridge fdb append {peer_mac} dev {name} dst {peer}"),
    );
    sh(
        ns,
        &format!("ip neigh add {gw} lladdr {peer_mac} dev {name} nud permanent"),
    );
}

fn vx_mac(node: u8, id: u32) -> String {
    format!("0e:00:00:00:{id:02x}:{node:02x}")
}

/// The hand-built VXLAN devices between node netns `a` (index `ia`, underlay addresses `la`,
/// `la6`) and node `b`: one per family as podwire has them (`hbvx`, `hbvx6`), and the same with
/// the UDP checksum settings the offload experiment tries (`hbvc`: IPv4 with checksums,
/// `hbvz6`: IPv6 with zero checksums both ways); routes to `b`'s pods through the first two.
fn hand_vxlan(a: &str, ia: u8, la: &str, la6: &str, ib: u8, lb: &str, lb6: &str) {
    let (gw4, gw6) = (format!("10.240.{ib}.0"), format!("fd00:240:0:{ib}::"));
    for (name, id, v6, extra) in [
        ("hbvx", 42, false, ""),
        ("hbvx6", 43, true, ""),
        ("hbvc", 44, false, "udpcsum"),
        ("hbvz6", 45, true, "udp6zerocsumtx udp6zerocsumrx"),
    ] {
        let vx = Vx {
            name,
            id,
            local: if v6 { la6 } else { la },
            over: "eth0",
            mtu: if v6 { 1430 } else { 1450 },
            mac: vx_mac(ia, id),
            extra,
        };
        let (peer, gw) = if v6 { (lb6, &gw6) } else { (lb, &gw4) };
        vxlan_dev(a, &vx, &vx_mac(ib, id), peer, gw);
    }
    sh(
        a,
        &format!("ip route add {gw4}/24 via {gw4} dev hbvx onlink"),
    );
    sh(
        a,
        &format!("ip -6 route add {gw6}/64 via {gw6} dev hbvx6 onlink"),
    );
}

struct Row {
    path: &'static str,
    v6: bool,
    podwire: Figures,
    hand: Option<Figures>,
    /// podwire / hand, run by run (the two measured in turns).
    ratio: Option<Figures>,
}

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

/// The hand-built twin's node netns (n1, n2, n3) and its paths, for the experiments.
struct Hand<'a> {
    nodes: [&'a str; 3],
    one_node: (&'a End, &'a End),
    direct: (&'a End, &'a End),
    vxlan: (&'a End, &'a End),
}

/// `ip netns exec <ns> ethtool -K <dev> gro on|off` (apt install ethtool).
fn gro(ns: &str, dev: &str, on: bool) {
    let on = if on { "on" } else { "off" };
    testkit::run(&["ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", on]);
}

fn ratio_cells(f: Figures) -> String {
    format!(
        "{} / {} / {}",
        cell(f.one, 2),
        cell(f.four, 2),
        cell(f.rr, 2)
    )
}

/// The offloads that matter for these paths, each tried on the hand-built twin against the
/// same path without it, in turns: GRO on the pods' veths (both ends), UDP checksums on the
/// IPv4 VXLAN device (the kernel's default is none), zero UDP checksums on the IPv6 one (the
/// default computes them).
fn offloads(h: &Hand, reps: usize, secs: f64) -> String {
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
fn verdict(f: Figures) -> &'static str {
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
fn two_tunnels(
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

/// Where a path's CPU goes: `perf record -a` during one TCP stream, kernel symbols grouped by
/// what they do, as CPU milliseconds per gigabyte carried (so paths of different speed compare;
/// idle excluded).
fn profile(paths: &[(&str, &End, &End)], secs: f64) -> String {
    if std::process::Command::new("perf")
        .arg("--version")
        .output()
        .is_err()
    {
        return "\n### Where the cycles go\n\n(not measured: `perf` is not installed; apt install linux-perf)\n".into();
    }
    const HZ: f64 = 1999.0;
    let mut cols: Vec<(String, f64, std::collections::BTreeMap<&'static str, f64>)> = Vec::new();
    let mut tops: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for (name, a, b) in paths {
        eprintln!("profile: {name}");
        let data = std::env::temp_dir().join(format!("{}.perf", testkit::unique("pwprof")));
        let mut rec = std::process::Command::new("perf")
            .args(["record", "-a", "-F", "1999", "-q", "-o"])
            .arg(&data)
            .args(["--", "sleep"])
            .arg(format!("{secs}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let gbit = bulk(a, b, false, 1, secs + 0.5);
        rec.wait().unwrap();
        let out = std::process::Command::new("perf")
            .args([
                "report",
                "--stdio",
                "-n",
                "--no-children",
                "--sort",
                "sym",
                "-i",
            ])
            .arg(&data)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&data);
        let gb = gbit * secs / 8.0;
        let mut by = std::collections::BTreeMap::new();
        let mut other: Vec<(String, f64)> = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || !f[0].ends_with('%') {
                continue;
            }
            let Ok(samples) = f[1].parse::<f64>() else {
                continue;
            };
            let Some(what) = bucket(f[2] == "[k]", f[3]) else {
                continue;
            };
            let ms = samples / HZ * 1000.0 / gb;
            *by.entry(what).or_insert(0.0) += ms;
            if what == "other kernel" && other.len() < 5 {
                other.push((f[3].to_string(), ms));
            }
        }
        cols.push((name.to_string(), gbit, by));
        tops.push((name.to_string(), other));
    }
    let mut s = format!(
        "\n### Where the cycles go\n\n`perf record -a` ({HZ} Hz) during one TCP stream of {secs} s \
         per path (podwire's, IPv4), kernel symbols grouped by what they do: CPU milliseconds \
         per gigabyte carried, both ends together (idle excluded).\n\n| |"
    );
    for (name, _, _) in &cols {
        s += &format!(" {name} |");
    }
    s += "\n| --- |";
    s += &" ---: |".repeat(cols.len());
    s += "\n| Gbit/s (this run) |";
    for (_, g, _) in &cols {
        s += &format!(" {g:.2} |");
    }
    s += "\n";
    for what in BUCKETS
        .iter()
        .map(|(w, _)| *w)
        .chain(["other kernel", "user space"])
    {
        s += &format!("| {what} |");
        for (_, _, by) in &cols {
            s += &format!(" {:.0} |", by.get(what).copied().unwrap_or(0.0));
        }
        s += "\n";
    }
    s += "| **total** |";
    for (_, _, by) in &cols {
        s += &format!(" **{:.0}** |", by.values().sum::<f64>());
    }
    s += "\n\nThe largest of \"other kernel\", per path (ms per GB):\n\n";
    for (name, top) in tops {
        let list: Vec<String> = top.iter().map(|(f, ms)| format!("`{f}` {ms:.0}")).collect();
        s += &format!("- {name}: {}\n", list.join(", "));
    }
    s
}

/// Kernel symbol prefixes (or parts, with a leading `*`) by what they do, matched in order.
const BUCKETS: [(&str, &[&str]); 10] = [
    (
        "copy to and from user space",
        &[
            "*copy_user",
            "*copy_to_iter",
            "*copy_from_iter",
            "*rep_movs",
            "*memcpy",
            "*memmove",
            "skb_copy_datagram",
        ],
    ),
    ("checksums", &["*csum", "*checksum"]),
    (
        "netfilter: conntrack, nftables, br_netfilter",
        &[
            "nf_",
            "nft_",
            "__nf",
            "br_nf",
            "ipv4_conntrack",
            "ipv6_conntrack",
            "ipv4_confirm",
            "ipv6_confirm",
            "hash_conntrack",
            "*conntrack",
        ],
    ),
    (
        "VXLAN and UDP",
        &["vxlan", "udp", "__udp", "gro_cells", "*tunnel", "iptunnel"],
    ),
    ("bridge", &["br_", "__br_"]),
    ("veth", &["veth"]),
    ("segmentation (GSO/GRO)", &["*gso", "*gro", "skb_segment"]),
    (
        "IP: routing, neighbours",
        &[
            "ip_", "ip6_", "__ip", "ipv6_", "fib", "__fib", "rt6_", "dst_", "neigh", "__neigh",
            "inet6_", "icmp",
        ],
    ),
    ("TCP", &["tcp", "__tcp", "inet_", "__inet"]),
    (
        "sockets, buffers, devices",
        &[
            "sk_",
            "__sk",
            "skb_",
            "__skb",
            "kfree_skb",
            "__kfree_skb",
            "dev_",
            "__dev",
            "netif",
            "__netif",
            "napi",
            "__napi",
            "net_rx",
            "process_backlog",
            "*alloc_skb",
            "kmem_cache",
            "__kmalloc",
            "kmalloc",
            "kfree",
            "page_frag",
            "__alloc_pages",
            "get_page_from_freelist",
            "__free_pages",
            "free_unref",
            "sock_",
            "release_sock",
            "lock_sock",
        ],
    ),
];

/// What a sampled symbol does, or `None` for idle.
fn bucket(kernel: bool, sym: &str) -> Option<&'static str> {
    if !kernel {
        return Some("user space");
    }
    if ["idle", "halt", "mwait", "cpuidle"]
        .iter()
        .any(|w| sym.contains(w))
    {
        return None;
    }
    BUCKETS
        .iter()
        .find(|(_, pats)| {
            pats.iter().any(|p| match p.strip_prefix('*') {
                Some(part) => sym.contains(part),
                None => sym.starts_with(p),
            })
        })
        .map(|(w, _)| *w)
        .or(Some("other kernel"))
}

const HEADING: &str = "## Data path";

fn cell(s: Stat, digits: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
}

fn report(rows: &[Row], reps: usize, secs: f64, mtu: u32) -> String {
    let floor = |v6: bool| {
        rows.iter()
            .find(|r| r.v6 == v6 && r.hand.is_none())
            .unwrap()
            .podwire
    };
    let mut s = format!(
        "{HEADING}\n\n`cargo bench -p podwire-cluster-tests --bench datapath` (scripts/bench.sh runs it): \
         the simulated cluster's topology (node namespaces joined by veths to a router's bridges), \
         TCP between two network namespaces of this machine, {reps} runs of {secs} s each \
         (request/response: {} s); median (min–max). Pods' MTU {mtu} (found from the 1500-byte \
         underlay, less 70 for VXLAN over IPv6). \"hand\": the same path built with `ip` \
         commands (bridge, veths, routes, a VXLAN device with static FDB and neighbour entries), \
         what a perfect plugin would leave, measured in turns with podwire's (podwire, hand, \
         then hand, podwire, ...) so that a noisy machine's drift falls on both; podwire / hand, \
         run by run, is podwire's own cost (target ≥ 0.97): median (min–max) for one stream, four streams \
         and request/response. Senders pinned to one CPU, receivers to the other. / floor: against node to node over the same links (aim for pod to pod direct ≥ \
         0.9). ![chart](benchmarks-datapath.svg)\n\n",
        secs / 2.0
    );
    s += "| path | family | 1 stream, Gbit/s | 4 streams, Gbit/s | request/response, 1/s | podwire / hand (1 stream, 4, RR) | / floor (1 stream, 4, RR) |\n";
    s += "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
    for r in rows {
        let fam = if r.v6 { "IPv6" } else { "IPv4" };
        let f = r.podwire;
        let fl = floor(r.v6);
        let ratio = |a: Figures, b: Figures| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                a.one.median / b.one.median,
                a.four.median / b.four.median,
                a.rr.median / b.rr.median
            )
        };
        let (vs_hand, vs_floor) = match r.ratio {
            Some(paired) => (ratio_cells(paired), ratio(f, fl)),
            None => ("–".into(), "1".into()),
        };
        s += &format!(
            "| {} | {fam} | {} | {} | {} | {vs_hand} | {vs_floor} |\n",
            r.path,
            cell(f.one, 2),
            cell(f.four, 2),
            cell(f.rr, 0),
        );
        if let Some(h) = r.hand {
            s += &format!(
                "| {} (hand) | {fam} | {} | {} | {} | | {} |\n",
                r.path,
                cell(h.one, 2),
                cell(h.four, 2),
                cell(h.rr, 0),
                ratio(h, fl)
            );
        }
    }
    s
}

/// A bar chart of the one-stream medians: podwire beside its hand-built twin, per path.
fn chart(rows: &[Row]) -> String {
    let max = rows
        .iter()
        .flat_map(|r| [Some(r.podwire.one.median), r.hand.map(|h| h.one.median)])
        .flatten()
        .fold(0.0f64, f64::max)
        .max(0.1);
    let (w, bar, gap, left) = (720.0, 14.0, 10.0, 230.0);
    let mut y = 30.0;
    let mut body = String::new();
    for r in rows {
        let fam = if r.v6 { "IPv6" } else { "IPv4" };
        body += &format!(
            "<text x='5' y='{:.0}' font-size='12'>{} {fam}</text>\n",
            y + bar,
            r.path
        );
        for (v, color, label) in [
            (Some(r.podwire.one), "#2b6cb0", "podwire"),
            (r.hand.map(|h| h.one), "#a0aec0", "hand"),
        ] {
            let Some(v) = v else { continue };
            let len = (w - left - 90.0) * v.median / max;
            body += &format!(
                "<rect x='{left}' y='{y:.0}' width='{len:.0}' height='{bar}' fill='{color}'/>\
                 <text x='{:.0}' y='{:.0}' font-size='11'>{:.2} Gbit/s {label}</text>\n",
                left + len + 4.0,
                y + bar - 3.0,
                v.median
            );
            y += bar + 2.0;
        }
        y += gap;
    }
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{:.0}' \
         font-family='sans-serif'>\n<text x='5' y='18' font-size='13' font-weight='bold'>TCP, one \
         stream, median Gbit/s: podwire (blue) and the same path by hand (grey)</text>\n{body}</svg>\n",
        y + 10.0
    )
}
