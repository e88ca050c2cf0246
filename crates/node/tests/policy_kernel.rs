//! NetworkPolicy in a real kernel: a throwaway "node" netns with a bridge and pods on it
//! (veths), plus a "remote" pod one routed hop away. Policies are compiled with
//! `policy::compile`, put in with `PolicyTable` (read, diff, apply), and real TCP/UDP traffic
//! between the pods is compared with what `policy::evaluate` says of the same ruleset.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::policy::{PolicyTable, Unclassified};
use policy::model::NamedPort;
use policy::{Namespace, Options, Packet, Pod, Policy, Protocol, Ruleset, ThisNode};
use serde_json::{json, Value};
use testkit::{run, TestNs};

const TCP_PORTS: [u16; 3] = [80, 81, 8080];
const UDP_PORTS: [u16; 2] = [53, 80];
// Generous: the machine is shared; a denied probe costs this once per case (probes run in parallel).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1000);

/// A pod's netns and what the compiler knows of it.
struct PodNs {
    ns: TestNs,
    pod: Pod,
}

impl PodNs {
    fn v4(&self) -> IpAddr {
        self.pod.ips[0]
    }
    fn v6(&self) -> IpAddr {
        self.pod.ips[1]
    }
    fn key(&self) -> String {
        self.pod.key()
    }
}

struct Topo {
    node: TestNs,
    pods: Vec<PodNs>,
    node_addrs: Vec<IpAddr>,
    /// Node n3's netns (the VXLAN peer), kept alive with the topology.
    _n3: TestNs,
}

fn ip(ns: &str, args: &str) {
    let mut cmd = vec!["ip", "-n", ns];
    cmd.extend(args.split_whitespace());
    run(&cmd);
}

fn pod_model(ns: &str, name: &str, node: &str, labels: &[(&str, &str)], ips: [&str; 2]) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        uid: format!("uid-{ns}-{name}"),
        node: Some(node.into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        host_network: false,
        terminated: false,
        ports: vec![NamedPort {
            name: "serve-81".into(),
            protocol: Protocol::Tcp,
            port: 81,
        }],
        ips: ips.iter().map(|a| a.parse().unwrap()).collect(),
    }
}

/// Serves TCP echo on `TCP_PORTS` and UDP echo on `UDP_PORTS`, both families, in `ns`.
fn serve(ns: &TestNs) {
    let (tcp, udp) = ns
        .ns
        .run(|| {
            let tcp: Vec<TcpListener> = TCP_PORTS
                .iter()
                .map(|p| TcpListener::bind(("::", *p)).unwrap())
                .collect();
            let udp: Vec<UdpSocket> = UDP_PORTS
                .iter()
                .map(|p| UdpSocket::bind(("::", *p)).unwrap())
                .collect();
            (tcp, udp)
        })
        .unwrap();
    for l in tcp {
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 256];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }
    for u in udp {
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok((n, from)) = u.recv_from(&mut buf) {
                let _ = u.send_to(&buf[..n], from);
            }
        });
    }
}

impl Topo {
    /// Node "n1": bridge br0 (10.77.1.1/24, fd77:1::1/64) with pods x/a, x/b, y/a; a routed
    /// link vr (10.77.2.1/24, fd77:2::1/64) to the remote pod z/c of node "n2" (direct route);
    /// and node "n3" over VXLAN with pod z/d (10.77.3.21, fd77:3::21).
    fn new() -> Topo {
        let node = TestNs::new("pwpol");
        let n = node.name.clone();
        ip(&n, "link add br0 type bridge");
        ip(&n, "addr add 10.77.1.1/24 dev br0");
        ip(&n, "addr add fd77:1::1/64 dev br0 nodad");
        ip(&n, "link set br0 up");
        node.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        node.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        let specs = [
            ("x", "a", &[("pod", "a")][..], ["10.77.1.11", "fd77:1::11"]),
            ("x", "b", &[("pod", "b")][..], ["10.77.1.12", "fd77:1::12"]),
            ("y", "a", &[("pod", "a")][..], ["10.77.1.13", "fd77:1::13"]),
        ];
        let mut pods = Vec::new();
        for (i, (ns, name, labels, ips)) in specs.into_iter().enumerate() {
            let pns = TestNs::new("pwpod");
            let p = pns.name.clone();
            ip(
                &n,
                &format!("link add vp{i} type veth peer name eth0 netns {p}"),
            );
            ip(&n, &format!("link set vp{i} master br0 up"));
            ip(&p, &format!("addr add {}/24 dev eth0", ips[0]));
            ip(&p, &format!("addr add {}/64 dev eth0 nodad", ips[1]));
            ip(&p, "link set eth0 up");
            ip(&p, "route add default via 10.77.1.1");
            ip(&p, "-6 route add default via fd77:1::1");
            serve(&pns);
            pods.push(PodNs {
                ns: pns,
                pod: pod_model(ns, name, "n1", labels, ips),
            });
        }
        let rns = TestNs::new("pwrem");
        let r = rns.name.clone();
        ip(
            &n,
            &format!("link add vr type veth peer name eth0 netns {r}"),
        );
        ip(&n, "addr add 10.77.2.1/24 dev vr");
        ip(&n, "addr add fd77:2::1/64 dev vr nodad");
        ip(&n, "link set vr up");
        ip(&r, "addr add 10.77.2.21/24 dev eth0");
        ip(&r, "addr add fd77:2::21/64 dev eth0 nodad");
        ip(&r, "link set eth0 up");
        ip(&r, "route add default via 10.77.2.1");
        ip(&r, "-6 route add default via fd77:2::1");
        serve(&rns);
        pods.push(PodNs {
            ns: rns,
            pod: pod_model(
                "z",
                "c",
                "n2",
                &[("pod", "c")],
                ["10.77.2.21", "fd77:2::21"],
            ),
        });
        // Node "n3" over VXLAN (VNI 42, UDP 8472 over a veth underlay), with pod z/d behind it.
        let n3 = TestNs::new("pwn3");
        let r3 = n3.name.clone();
        ip(
            &n,
            &format!("link add ul type veth peer name ul netns {r3}"),
        );
        ip(&n, "addr add 192.0.2.1/30 dev ul");
        ip(&n, "link set ul up");
        ip(&r3, "addr add 192.0.2.2/30 dev ul");
        ip(&r3, "link set ul up");
        for (ns, local, remote, inner, inner6) in [
            (
                &n,
                "192.0.2.1",
                "192.0.2.2",
                "10.77.250.1/30",
                "fd77:250::1/64",
            ),
            (
                &r3,
                "192.0.2.2",
                "192.0.2.1",
                "10.77.250.2/30",
                "fd77:250::2/64",
            ),
        ] {
            ip(
                ns,
                &format!("link add vx0 type vxlan id 42 dstport 8472 local {local} remote {remote} dev ul"),
            );
            ip(ns, &format!("addr add {inner} dev vx0"));
            ip(ns, &format!("addr add {inner6} dev vx0 nodad"));
            ip(ns, "link set vx0 up");
        }
        ip(&n, "route add 10.77.3.0/24 via 10.77.250.2");
        ip(&n, "-6 route add fd77:3::/64 via fd77:250::2");
        ip(&r3, "route add 10.77.0.0/16 via 10.77.250.1");
        ip(&r3, "-6 route add fd77::/32 via fd77:250::1");
        n3.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        n3.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        let dns = TestNs::new("pwvxp");
        let d = dns.name.clone();
        ip(
            &r3,
            &format!("link add vd type veth peer name eth0 netns {d}"),
        );
        ip(&r3, "addr add 10.77.3.1/24 dev vd");
        ip(&r3, "addr add fd77:3::1/64 dev vd nodad");
        ip(&r3, "link set vd up");
        ip(&d, "addr add 10.77.3.21/24 dev eth0");
        ip(&d, "addr add fd77:3::21/64 dev eth0 nodad");
        ip(&d, "link set eth0 up");
        ip(&d, "route add default via 10.77.3.1");
        ip(&d, "-6 route add default via fd77:3::1");
        serve(&dns);
        pods.push(PodNs {
            ns: dns,
            pod: pod_model(
                "z",
                "d",
                "n3",
                &[("pod", "d")],
                ["10.77.3.21", "fd77:3::21"],
            ),
        });
        let node_addrs = [
            "10.77.1.1",
            "fd77:1::1",
            "10.77.2.1",
            "fd77:2::1",
            "10.77.250.1",
            "fd77:250::1",
            "192.0.2.1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        Topo {
            node,
            pods,
            node_addrs,
            _n3: n3,
        }
    }

    fn table(&self) -> PolicyTable {
        let t = PolicyTable::open_in(&self.node.ns).unwrap();
        self.node.ns.run(|| t.ensure_structure().unwrap()).unwrap();
        t
    }

    fn pod(&self, key: &str) -> &PodNs {
        self.pods.iter().find(|p| p.key() == key).unwrap()
    }

    fn compile(&self, policies: &[Policy]) -> Ruleset {
        let pods: Vec<Pod> = self.pods.iter().map(|p| p.pod.clone()).collect();
        let c = policy::compile(
            &pods,
            &namespaces(),
            policies,
            &ThisNode {
                name: "n1",
                addresses: &self.node_addrs,
            },
            &Options::default(),
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        c.ruleset
    }
}

fn namespaces() -> Vec<Namespace> {
    ["x", "y", "z"]
        .iter()
        .map(|n| Namespace {
            name: n.to_string(),
            labels: [
                ("ns".to_string(), n.to_string()),
                ("kubernetes.io/metadata.name".to_string(), n.to_string()),
            ]
            .into_iter()
            .collect(),
        })
        .collect()
}

fn np(ns: &str, name: &str, spec: Value) -> Policy {
    let mut problems = vec![];
    let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"namespace": ns, "name": name}, "spec": spec});
    let p = Policy::from_json(&v, &mut problems).expect("a policy");
    assert!(problems.is_empty(), "{problems:?}");
    p
}

/// Read, diff, apply; then the kernel must read back as wanted (an empty second plan).
fn enforce(t: &PolicyTable, want: &Ruleset) {
    let plan = policy::diff(want, &t.read().unwrap());
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    t.apply(&plan).unwrap();
    let again = policy::diff(want, &t.read().unwrap());
    assert!(again.is_empty(), "not idempotent: {again:#?}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
}

/// One connection attempt from `from`'s netns: a TCP echo or a UDP echo.
fn probe(from: &TestNs, to: IpAddr, proto: Proto, port: u16) -> bool {
    from.ns
        .run(|| {
            let addr = SocketAddr::new(to, port);
            match proto {
                Proto::Tcp => {
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
                        return false;
                    };
                    s.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
                    let mut b = [0u8; 1];
                    s.write_all(b"x").is_ok() && s.read_exact(&mut b).is_ok()
                }
                Proto::Udp => {
                    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let u = UdpSocket::bind(bind).unwrap();
                    u.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
                    let mut b = [0u8; 8];
                    // Two tries: the first datagram may wait on neighbour resolution.
                    (0..2).any(|_| u.send_to(b"x", addr).is_ok() && u.recv_from(&mut b).is_ok())
                }
            }
        })
        .unwrap()
}

type Key = (String, String, Proto, u16, bool);

/// IPv6 is probed except to and from the pod behind VXLAN (the test's IPv6-in-VXLAN path does
/// not carry traffic in this harness; IPv4 does, and the hook is the same forward hook).
fn v6_probed(a: &PodNs, b: &PodNs) -> bool {
    a.key() != "z/d" && b.key() != "z/d"
}

/// Every (from, to, protocol, port, v6) probe of the topology, in parallel: what passed.
fn reachability(topo: &Topo) -> BTreeMap<Key, bool> {
    let mut cases = Vec::new();
    for from in &topo.pods {
        for to in &topo.pods {
            if from.key() == to.key() {
                continue;
            }
            for port in TCP_PORTS {
                cases.push((from, to, Proto::Tcp, port, false));
            }
            for port in UDP_PORTS {
                cases.push((from, to, Proto::Udp, port, false));
            }
            if v6_probed(from, to) {
                cases.push((from, to, Proto::Tcp, 80, true));
            }
        }
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(from, to, proto, port, v6)| {
                let dst = if *v6 { to.v6() } else { to.v4() };
                let h = s.spawn(move || probe(&from.ns, dst, *proto, *port));
                ((from.key(), to.key(), *proto, *port, *v6), h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(k, h)| (k, h.join().unwrap()))
            .collect()
    })
}

/// What `policy::evaluate` says of the same probes on this node's ruleset.
fn expected(topo: &Topo, rs: &Ruleset) -> BTreeMap<Key, bool> {
    let mut out = BTreeMap::new();
    for from in &topo.pods {
        for to in &topo.pods {
            if from.key() == to.key() {
                continue;
            }
            let mut add = |proto: Proto, port: u16, v6: bool| {
                let (s, d) = if v6 {
                    (from.v6(), to.v6())
                } else {
                    (from.v4(), to.v4())
                };
                let p = match proto {
                    Proto::Tcp => Protocol::Tcp,
                    Proto::Udp => Protocol::Udp,
                };
                let ok = policy::evaluate(rs, &Packet::new(s, d, p, port)).allows();
                out.insert((from.key(), to.key(), proto, port, v6), ok);
            };
            for port in TCP_PORTS {
                add(Proto::Tcp, port, false);
            }
            for port in UDP_PORTS {
                add(Proto::Udp, port, false);
            }
            if v6_probed(from, to) {
                add(Proto::Tcp, 80, true);
            }
        }
    }
    out
}

fn check(topo: &Topo, case: &str, rs: &Ruleset) {
    let want = expected(topo, rs);
    let got = reachability(topo);
    let wrong: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k:?}: expected {v}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{case}: {} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The case must not be vacuous: something is denied (except the no-policy baseline).
    if case != "no policy" {
        assert!(want.values().any(|v| !v), "{case}: nothing denied");
    }
    assert!(want.values().any(|v| *v), "{case}: nothing allowed");
}

#[test]
fn upstream_cases_agree_with_the_evaluator() {
    let topo = Topo::new();
    let t = topo.table();
    let cases: Vec<(&str, Vec<Policy>)> = vec![
        ("no policy", vec![]),
        (
            "should-deny-ingress-to-all-pods-of-a-namespace (deny-all ingress)",
            vec![np(
                "x",
                "deny-all",
                json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            )],
        ),
        (
            "should-allow-ingress-from-namespace-by-label",
            vec![np(
                "x",
                "allow-ns-y",
                json!({"podSelector": {"matchLabels": {"pod": "a"}},
                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
            )],
        ),
        (
            "should-allow-ingress-from-pod-label-AND-namespace-label",
            vec![np(
                "x",
                "allow-ya",
                json!({"podSelector": {},
                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                              "podSelector": {"matchLabels": {"pod": "a"}}}]}]}),
            )],
        ),
        (
            "should-allow-ingress-from-ipBlock-with-except",
            vec![np(
                "x",
                "allow-block",
                json!({"podSelector": {"matchLabels": {"pod": "a"}},
                       "ingress": [{"from": [{"ipBlock": {"cidr": "10.77.0.0/16",
                                                           "except": ["10.77.1.12/32"]}}]}]}),
            )],
        ),
        (
            "ipBlock 0.0.0.0/0 and ::/0 with except (ranges that run to the last address)",
            vec![np(
                "x",
                "allow-world",
                json!({"podSelector": {},
                       "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.77.1.12/32"]}},
                                             {"ipBlock": {"cidr": "::/0", "except": ["fd77:1::13/128"]}}]}]}),
            )],
        ),
        (
            "should-allow-ingress-on-named-port",
            vec![np(
                "x",
                "allow-named",
                json!({"podSelector": {"matchLabels": {"pod": "a"}},
                       "ingress": [{"ports": [{"port": "serve-81", "protocol": "TCP"}]}]}),
            )],
        ),
        (
            "should-allow-ingress-on-port-range-with-endPort",
            vec![np(
                "x",
                "allow-range",
                json!({"podSelector": {},
                       "ingress": [{"ports": [{"port": 81, "endPort": 8080, "protocol": "TCP"}]}]}),
            )],
        ),
        (
            "should-deny-egress-except-dns (UDP 53)",
            vec![np(
                "x",
                "egress-dns",
                json!({"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
                       "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
            )],
        ),
        (
            "should-allow-ingress-from-one-remote-pod-only (VXLAN peer allowed, direct one not)",
            vec![np(
                "x",
                "from-zd",
                json!({"podSelector": {},
                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}},
                                              "podSelector": {"matchLabels": {"pod": "d"}}}]}]}),
            )],
        ),
        (
            "should-allow-egress-to-remote-pod-only (cross node, routed)",
            vec![np(
                "y",
                "egress-to-z",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]}),
            )],
        ),
    ];
    for (name, policies) in &cases {
        let rs = topo.compile(policies);
        topo.node.ns.run(|| enforce(&t, &rs)).unwrap();
        check(&topo, name, &rs);
    }
}

/// Starts an echo conversation from `from` to `to`:80 that sends a byte every 50 ms; the flag
/// says whether the last echo came back.
fn conversation(from: &TestNs, to: IpAddr) -> (Arc<AtomicBool>, Arc<AtomicBool>) {
    let mut s = from
        .ns
        .run(|| TcpStream::connect_timeout(&SocketAddr::new(to, 80), PROBE_TIMEOUT))
        .unwrap()
        .expect("the flow starts allowed");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let ok = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok2, stop2) = (ok.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while !stop2.load(Ordering::Relaxed) {
            let sent = s.write_all(b"x").is_ok();
            // Echoes held back by a drop arrive later, in a burst: any byte back counts.
            let got = matches!(s.read(&mut b), Ok(n) if n > 0);
            ok2.store(sent && got, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (ok, stop)
}

fn wait_for(flag: &AtomicBool, want: bool, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if flag.load(Ordering::Relaxed) == want {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn established_flow_stops_when_denied_and_resumes_when_allowed() {
    let topo = Topo::new();
    let t = topo.table();
    topo.node
        .ns
        .run(|| enforce(&t, &topo.compile(&[])))
        .unwrap();
    let (ya, xa) = (topo.pod("y/a"), topo.pod("x/a"));
    let (ok, stop) = conversation(&ya.ns, xa.v4());
    assert!(wait_for(&ok, true, Duration::from_secs(2)).is_some());

    let deny = [np(
        "x",
        "deny-all",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )];
    topo.node
        .ns
        .run(|| enforce(&t, &topo.compile(&deny)))
        .unwrap();
    let stopped = wait_for(&ok, false, Duration::from_secs(1));
    assert!(
        stopped.is_some(),
        "the established flow still passes 1 s after the deny"
    );

    // Drops are counted on the pod's named counter.
    let counters = t.counters().unwrap();
    let drops = counters.get("drops/x/a/ingress").expect("drop counter");
    assert!(drops.0 > 0, "{counters:?}");

    topo.node
        .ns
        .run(|| enforce(&t, &topo.compile(&[])))
        .unwrap();
    // A new connection passes at once; the old one as soon as TCP retransmits.
    assert!(probe(&ya.ns, xa.v4(), Proto::Tcp, 80));
    let resumed = wait_for(&ok, true, Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    assert!(resumed.is_some(), "the flow did not resume once allowed");
}

#[test]
fn unclassified_pod_is_denied_until_classified() {
    let topo = Topo::new();
    let t = topo.table();
    topo.node
        .ns
        .run(|| enforce(&t, &topo.compile(&[])))
        .unwrap();
    let (xb, xa) = (topo.pod("x/b"), topo.pod("x/a"));
    assert!(probe(&xb.ns, xa.v4(), Proto::Tcp, 80));

    let mut watch = topo
        .node
        .ns
        .run(node::policy::watch_unclassified)
        .unwrap()
        .unwrap();
    let tag = kernel::owned::UnclassifiedTag {
        namespace: "x".into(),
        name: "a".into(),
        uid: "uid-x-a".into(),
        container_id: "c0ffee".into(),
    };
    let nft = kernel::nft::Nftables::new_in(&topo.node.ns).unwrap();
    assert!(kernel::unclassified::announce(&nft, &xa.pod.ips, &tag).unwrap());
    let seen = watch.recv().unwrap();
    assert!(
        seen.iter().any(|u| u.addr == xa.v4() && u.name == "a"),
        "{seen:?}"
    );

    let listed = t.unclassified().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&Unclassified {
        addr: xa.v6(),
        namespace: "x".into(),
        name: "a".into(),
        uid: "uid-x-a".into(),
        container_id: "c0ffee".into(),
    }));
    // Denied both ways, both families; the node still reaches it.
    assert!(!probe(&xb.ns, xa.v4(), Proto::Tcp, 80));
    assert!(!probe(&xb.ns, xa.v6(), Proto::Tcp, 80));
    assert!(!probe(&xa.ns, xb.v4(), Proto::Udp, 53));
    assert!(probe(&topo.node, xa.v4(), Proto::Tcp, 80));
    // Routed too: to the remote pod, and from it.
    let remote = topo.pod("z/c");
    assert!(!probe(&xa.ns, remote.v4(), Proto::Tcp, 80));
    assert!(!probe(&remote.ns, xa.v6(), Proto::Tcp, 80));
    assert!(probe(&remote.ns, xb.v4(), Proto::Tcp, 80));
    // The other pods are untouched.
    assert!(probe(&xb.ns, topo.pod("y/a").v4(), Proto::Tcp, 80));

    t.mark_classified(&xa.pod.ips).unwrap();
    assert!(t.unclassified().unwrap().is_empty());
    assert!(probe(&xb.ns, xa.v4(), Proto::Tcp, 80));
    assert!(probe(&xa.ns, xb.v6(), Proto::Tcp, 80));
    // Absent addresses are fine.
    t.mark_classified(&xa.pod.ips).unwrap();
}

#[test]
fn read_back_is_idempotent_and_a_flushed_table_is_repaired() {
    let topo = Topo::new();
    // Same-node enforcement needs bridged frames on the forward hook: ensure_structure turns
    // it on in the table's netns, whichever thread calls it.
    let key = "net/bridge/bridge-nf-call-iptables";
    kernel::sysctl::write_in(&topo.node.ns, key, "0").unwrap();
    let here = kernel::sysctl::read(key).unwrap();
    let t = PolicyTable::open_in(&topo.node.ns).unwrap();
    assert!(!t.same_node_enforced());
    t.ensure_structure().unwrap();
    assert!(t.same_node_enforced());
    assert_eq!(
        kernel::sysctl::read_in(&topo.node.ns, key).unwrap().trim(),
        "1"
    );
    assert_eq!(
        kernel::sysctl::read(key).unwrap(),
        here,
        "the caller's netns is untouched"
    );
    let policies = [
        np(
            "x",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ),
        np(
            "x",
            "allow-named",
            json!({"podSelector": {"matchLabels": {"pod": "a"}},
                   "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "fd77::/32", "except": ["fd77:1::12/128"]}}],
                                "ports": [{"port": "serve-81"}, {"port": 53, "protocol": "UDP"}]}],
                   "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 80, "endPort": 90}]}]}),
        ),
    ];
    let rs = topo.compile(&policies);
    topo.node.ns.run(|| enforce(&t, &rs)).unwrap();
    let (rules, elements) = rs.size();
    assert!(rules > 10 && elements > 5, "{rules} {elements}");
    let before = reachability(&topo);

    // Structure again: nothing changes.
    topo.node.ns.run(|| t.ensure_structure().unwrap()).unwrap();
    assert!(policy::diff(&rs, &t.read().unwrap()).is_empty());

    // Someone flushes the table (every rule gone, sets and maps stay): repaired.
    topo.node
        .exec(&["nft", "flush", "table", "inet", "podwire-policy"]);
    assert!(!policy::diff(&rs, &t.read().unwrap()).is_empty());
    topo.node.ns.run(|| t.ensure_structure().unwrap()).unwrap();
    topo.node.ns.run(|| enforce(&t, &rs)).unwrap();
    assert_eq!(reachability(&topo), before);

    // Someone deletes a rule of a policy chain and an element: repaired.
    topo.node.exec(&[
        "nft",
        "flush",
        "chain",
        "inet",
        "podwire-policy",
        "policy/x/allow-named/ingress",
    ]);
    topo.node.ns.run(|| enforce(&t, &rs)).unwrap();

    // A map entry replaced by another chain (delete + add in one batch), and back.
    let xa = topo.pod("x/a").v4();
    let mut plan = policy::Plan::default();
    plan.isolate.push(policy::Change::SetMapEntry {
        map: "ingress-v4".into(),
        addr: xa,
        chain: "pod/x/b/ingress".into(),
    });
    t.apply(&plan).unwrap();
    assert_eq!(
        t.read().unwrap().maps["ingress-v4"].entries[&xa],
        "pod/x/b/ingress"
    );
    topo.node.ns.run(|| enforce(&t, &rs)).unwrap();
    assert_eq!(
        t.read().unwrap().maps["ingress-v4"].entries[&xa],
        "pod/x/a/ingress"
    );

    // Deleted whole: recreated.
    assert!(t.remove().unwrap());
    assert!(!t.remove().unwrap());
    topo.node.ns.run(|| t.ensure_structure().unwrap()).unwrap();
    topo.node.ns.run(|| enforce(&t, &rs)).unwrap();
    assert_eq!(reachability(&topo), before);
    assert!(t.remove().unwrap());
}
