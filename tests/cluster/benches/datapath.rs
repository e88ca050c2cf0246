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
        let mut b = [0u8; 1];
        while let Ok(1) = s.read(&mut b) {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut b = [1u8; 1];
    let mut n = 0u64;
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    while start.elapsed() < end {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
        n += 1;
    }
    let took = start.elapsed().as_secs_f64();
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

/// The hand-built twin on node `i` (its netns `node`): bridge `hb0` with 10.240.i.1/24 and
/// fd00:240:0:i::1/64, and `pods` pods on it, MTU `mtu`; returns the pods' ends.
fn hand_node(node: &str, i: u8, pods: u8, mtu: u32, keep: &mut Vec<TestNs>) -> Vec<End> {
    sh(node, "ip link add hb0 type bridge");
    sh(node, &format!("ip link set hb0 mtu {mtu} up"));
    sh(node, &format!("ip addr add 10.240.{i}.1/24 dev hb0"));
    sh(
        node,
        &format!("ip addr add fd00:240:0:{i}::1/64 dev hb0 nodad"),
    );
    let mut ends = Vec::new();
    for p in 0..pods {
        let ns = TestNs::new("pwhp");
        let host = format!("hbv{i}{p}");
        sh(
            node,
            &format!(
                "ip link add {host} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {}",
                ns.name
            ),
        );
        sh(node, &format!("ip link set {host} master hb0 up"));
        let (v4, v6) = (
            format!("10.240.{i}.{}", 10 + p),
            format!("fd00:240:0:{i}::{}", 10 + p),
        );
        sh(&ns.name, &format!("ip addr add {v4}/24 dev eth0"));
        sh(&ns.name, &format!("ip addr add {v6}/64 dev eth0 nodad"));
        sh(&ns.name, "ip link set eth0 up");
        sh(&ns.name, &format!("ip route add default via 10.240.{i}.1"));
        sh(
            &ns.name,
            &format!("ip -6 route add default via fd00:240:0:{i}::1"),
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

/// The hand-built VXLAN between node `a` (index `ia`, address `la`/`la6`) and node `b`: one
/// device per family, no learning, a static FDB entry, a permanent neighbour, an onlink route:
/// what podwire programs, by hand.
fn hand_vxlan(a: &str, ia: u8, la: &str, la6: &str, ib: u8, lb: &str, lb6: &str) {
    let mac = |i: u8, f: u8| format!("0e:00:00:00:{f:02x}:{i:02x}");
    sh(
        a,
        &format!("ip link add hbvx type vxlan id 42 dstport 4790 local {la} dev eth0 nolearning"),
    );
    sh(
        a,
        &format!("ip link add hbvx6 type vxlan id 43 dstport 4791 local {la6} dev eth0 nolearning"),
    );
    sh(
        a,
        &format!("ip link set hbvx address {} mtu 1450 up", mac(ia, 4)),
    );
    sh(
        a,
        &format!("ip link set hbvx6 address {} mtu 1430 up", mac(ia, 6)),
    );
    sh(
        a,
        &format!("bridge fdb append {} dev hbvx dst {lb}", mac(ib, 4)),
    );
    sh(
        a,
        &format!("bridge fdb append {} dev hbvx6 dst {lb6}", mac(ib, 6)),
    );
    sh(
        a,
        &format!(
            "ip neigh add 10.240.{ib}.0 lladdr {} dev hbvx nud permanent",
            mac(ib, 4)
        ),
    );
    sh(
        a,
        &format!(
            "ip neigh add fd00:240:0:{ib}:: lladdr {} dev hbvx6 nud permanent",
            mac(ib, 6)
        ),
    );
    sh(
        a,
        &format!("ip route add 10.240.{ib}.0/24 via 10.240.{ib}.0 dev hbvx onlink"),
    );
    sh(
        a,
        &format!("ip -6 route add fd00:240:0:{ib}::/64 via fd00:240:0:{ib}:: dev hbvx6 onlink"),
    );
}

struct Row {
    path: &'static str,
    v6: bool,
    podwire: Figures,
    hand: Option<Figures>,
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
    let h1 = hand_node(&n1, 1, 2, mtu, &mut keep);
    let h2 = hand_node(&n2, 2, 1, mtu, &mut keep);
    let h3 = hand_node(&n3, 3, 1, mtu, &mut keep);
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
    for v6 in [false, true] {
        eprintln!("node to node, v6={v6}");
        rows.push(Row {
            path: "node to node (floor)",
            v6,
            podwire: measure(&node_end(0), &node_end(1), v6, reps, secs),
            hand: None,
        });
        for (path, a, b, ha, hb) in [
            ("pod to pod, one node", &p[0], &p[1], &h1[0], &h1[1]),
            ("pod to pod, direct", &p[0], &p[2], &h1[0], &h2[0]),
            ("pod to pod, VXLAN", &p[0], &p[3], &h1[0], &h3[0]),
        ] {
            eprintln!("{path}, v6={v6}");
            rows.push(Row {
                path,
                v6,
                podwire: measure(a, b, v6, reps, secs),
                hand: Some(measure(ha, hb, v6, reps, secs)),
            });
        }
    }
    let section = report(&rows, reps, secs, mtu);
    println!("{section}");
    let out = arg("--write", "");
    if !out.is_empty() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        testkit::bench_page::write_section(&root.join(&out), HEADING, &section);
        let svg = root.join(&out).with_file_name("benchmarks-datapath.svg");
        std::fs::write(&svg, chart(&rows)).unwrap();
        println!("written to {out} and {}", svg.display());
    }
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
         what a perfect plugin would leave; podwire / hand is podwire's own cost (target ≥ \
         0.97). / floor: against node to node over the same links (aim for pod to pod direct ≥ \
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
        let (vs_hand, vs_floor) = match r.hand {
            Some(h) => (ratio(f, h), ratio(f, fl)),
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
