//! NetworkPolicy end to end in the simulated cluster (tests/cluster): the stand-in API server
//! holds Namespaces, Pods and NetworkPolicies; every node's agent enforces them in its kernel.
//!
//! Three nodes: n1 and n2 on one segment (direct routes), n3 across the router (VXLAN). Pods
//! are ADDed with the `CNI_ARGS` containerd passes (namespace, name, uid), their Pod objects
//! created before (as the API server has them before the sandbox), `status.podIPs` posted
//! after the ADD (as kubelet does). Every pod serves TCP and UDP on ports 80 and 81 (echo).

use cluster::kubesim::{namespace, NetworkPolicy, Pod as K8sPod, PodBuilder};
use cluster::{k8s_cni_args, Cluster, Pod};
use k8s_openapi::api::core::v1::PodIP;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::TestNs;

const CONVERGE: Duration = Duration::from_secs(30);
/// How long a probe waits for an answer: in-cluster round trips are microseconds.
const PROBE: Duration = Duration::from_millis(400);
/// How long a policy change may take to show in every probe (generous: CI is slow).
const APPLY: Duration = Duration::from_secs(8);

/// The cluster, its pods by `ns/name`.
struct Net {
    c: Cluster,
    pods: BTreeMap<String, usize>,
}

impl Net {
    fn new() -> Net {
        let mut c = Cluster::new([2, 1]);
        c.start_agents();
        c.wait_converged(CONVERGE);
        for (ns, label) in [("x", "x"), ("y", "y")] {
            c.api.create(&namespace(ns, &[("ns", label)])).unwrap();
        }
        Net {
            c,
            pods: BTreeMap::new(),
        }
    }

    /// Creates the Pod object, ADDs its sandbox on node `node`, starts its servers, posts its
    /// addresses; returns when the ADD returned.
    fn add(&mut self, node: usize, ns: &str, name: &str) -> Instant {
        self.add_in(node, ns, name, TestNs::new("pwnp"))
    }

    fn add_in(&mut self, node: usize, ns: &str, name: &str, netns: TestNs) -> Instant {
        let node_name = self.c.node(node).name.clone();
        let obj = PodBuilder::new(ns, name)
            .node(&node_name)
            .label("pod", name)
            .port("serve-80-tcp", 80, "TCP")
            .port("serve-81-tcp", 81, "TCP")
            .port("serve-80-udp", 80, "UDP")
            .port("serve-81-udp", 81, "UDP")
            .phase("Pending")
            .build();
        let obj = self.c.api.create(&obj).unwrap();
        let uid = obj.metadata.uid.clone().unwrap();
        serve(&netns);
        let args = k8s_cni_args(ns, name, &uid, &format!("sandbox-{name}"));
        let (pod, added) = self.c.add_pod_with(node, netns, &args);
        let ips = [pod.v4.to_string(), pod.v6.to_string()];
        self.c
            .api
            .modify::<K8sPod>(ns, name, |p| {
                let s = p.status.get_or_insert_with(Default::default);
                s.phase = Some("Running".into());
                s.pod_ip = Some(ips[0].clone());
                s.pod_ips = Some(ips.iter().map(|ip| pod_ip(ip)).collect());
            })
            .unwrap();
        self.pods
            .insert(format!("{ns}/{name}"), self.c.pods.len() - 1);
        added
    }

    fn pod(&self, key: &str) -> &Pod {
        &self.c.pods[self.pods[key]]
    }

    fn policy(&self, ns: &str, name: &str, spec: Value) {
        let np: NetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": name}, "spec": spec
        }))
        .unwrap();
        self.c.api.apply(&np).unwrap();
    }

    fn delete_policy(&self, ns: &str, name: &str) {
        self.c.api.delete::<NetworkPolicy>(ns, name).unwrap();
    }

    /// Waits until every probe gives its expected answer; panics with the ones that do not.
    fn expect(&self, what: &str, probes: &[Probe]) {
        let start = Instant::now();
        loop {
            let wrong = self.wrong(probes);
            if wrong.is_empty() {
                eprintln!("{what}: as expected after {:?}", start.elapsed());
                return;
            }
            if start.elapsed() > APPLY {
                let logs: Vec<String> = self
                    .c
                    .nodes
                    .iter()
                    .map(|n| format!("--- {} ---\n{}", n.name, n.agent_log()))
                    .collect();
                let table =
                    self.c.nodes[0]
                        .ns
                        .exec(&["nft", "list", "table", "inet", "podwire-policy"]);
                panic!(
                    "{what}: after {APPLY:?}, wrong: {wrong:#?}\n{}\n--- n1 table ---\n{table}",
                    logs.join("\n")
                );
            }
        }
    }

    /// The probes whose answer is not the expected one (run in parallel).
    fn wrong(&self, probes: &[Probe]) -> Vec<String> {
        let targets: Vec<(&kernel::Netns, SocketAddr)> =
            probes.iter().map(|p| self.target(p)).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = probes
                .iter()
                .zip(targets)
                .map(|(p, (netns, addr))| {
                    s.spawn(move || {
                        let ok = netns
                            .run(|| {
                                if p.udp {
                                    udp_echo(addr)
                                } else {
                                    tcp_echo(addr)
                                }
                            })
                            .unwrap();
                        (p, ok)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|(p, got)| *got != p.allowed)
                .map(|(p, got)| format!("{p:?}: got {}", if got { "allowed" } else { "denied" }))
                .collect()
        })
    }

    /// Where a probe runs and what it reaches.
    fn target(&self, p: &Probe) -> (&kernel::Netns, SocketAddr) {
        let to_pod = self.pod(p.to);
        let to = if p.v6 { to_pod.v6 } else { to_pod.v4 };
        let netns = match p.from {
            From::Pod(k) => &self.pod(k).ns.ns,
            From::Node(i) => &self.c.node(i).ns.ns,
        };
        (netns, SocketAddr::new(to, p.port))
    }
}

/// `podwirectl ARGS` in node `i`'s netns with its directories (the flags in `skip` left out:
/// not every command takes them); its stdout.
fn podwirectl(n: &Net, i: usize, args: &[&str], skip: &[&str]) -> String {
    let node = n.c.node(i);
    let mut flags: Vec<String> = Vec::new();
    for (flag, dir) in [
        ("--netconfpath", "net.d"),
        ("--cache-dir", "cache"),
        ("--state-dir", "state"),
    ] {
        if !skip.contains(&flag) {
            flags.push(flag.into());
            flags.push(node.dir.join(dir).display().to_string());
        }
    }
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &node.ns.name])
        .arg(&n.c.bin.podwirectl)
        .args(args)
        .args(&flags)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "podwirectl {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn pod_ip(ip: &str) -> PodIP {
    PodIP { ip: ip.to_string() }
}

#[derive(Clone, Copy, Debug)]
enum From {
    Pod(&'static str),
    Node(usize),
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    from: From,
    to: &'static str,
    port: u16,
    udp: bool,
    v6: bool,
    allowed: bool,
}

fn tcp(from: &'static str, to: &'static str, port: u16, allowed: bool) -> Probe {
    Probe {
        from: From::Pod(from),
        to,
        port,
        udp: false,
        v6: false,
        allowed,
    }
}

fn v6(p: Probe) -> Probe {
    Probe { v6: true, ..p }
}

fn udp(p: Probe) -> Probe {
    Probe { udp: true, ..p }
}

/// One TCP connection and one echoed byte.
fn tcp_echo(to: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&to, PROBE) else {
        return false;
    };
    s.set_read_timeout(Some(PROBE)).unwrap();
    let mut b = [0u8; 1];
    s.write_all(b"x").is_ok() && s.read_exact(&mut b).is_ok()
}

/// One UDP datagram echoed (three tries: a first packet may wait for neighbour resolution).
fn udp_echo(to: SocketAddr) -> bool {
    let any: SocketAddr = if to.is_ipv6() {
        "[::]:0".parse().unwrap()
    } else {
        "0.0.0.0:0".parse().unwrap()
    };
    let s = UdpSocket::bind(any).unwrap();
    s.set_read_timeout(Some(PROBE / 3)).unwrap();
    let mut b = [0u8; 16];
    (0..3).any(|_| s.send_to(b"x", to).is_ok() && s.recv_from(&mut b).is_ok())
}

/// TCP and UDP echo servers on ports 80 and 81, both families, in `netns` (bound before the
/// pod has any interface: a wildcard bind needs none).
fn serve(netns: &TestNs) {
    for port in [80u16, 81] {
        let l = netns
            .ns
            .run(|| TcpListener::bind(("::", port)))
            .unwrap()
            .unwrap();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let u = netns
            .ns
            .run(|| UdpSocket::bind(("::", port)))
            .unwrap()
            .unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 64];
            while let Ok((n, from)) = u.recv_from(&mut b) {
                let _ = u.send_to(&b[..n], from);
            }
        });
    }
}

/// x/a on n1; x/b on n2 (direct from n1); y/a on n3 (VXLAN from n1 and n2); y/b on n1.
fn four_pods() -> Net {
    let mut n = Net::new();
    n.add(0, "x", "a");
    n.add(1, "x", "b");
    n.add(2, "y", "a");
    n.add(0, "y", "b");
    n
}

#[test]
fn network_policy_semantics_across_nodes() {
    let n = four_pods();
    n.expect(
        "no policy: everything open",
        &[
            tcp("y/a", "x/a", 80, true),
            tcp("x/b", "x/a", 80, true),
            udp(tcp("y/a", "x/a", 81, true)),
            v6(tcp("x/b", "x/a", 80, true)),
            tcp("x/a", "y/a", 80, true),
        ],
    );

    // Upstream "should support a 'default-deny-ingress' policy".
    n.policy(
        "x",
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let own_node = Probe {
        from: From::Node(0),
        ..tcp("x/a", "x/a", 80, true)
    };
    n.expect(
        "default-deny-ingress in x",
        &[
            tcp("y/a", "x/a", 80, false),
            tcp("x/b", "x/a", 80, false),
            v6(tcp("x/b", "x/a", 80, false)),
            udp(tcp("y/b", "x/a", 80, false)),
            tcp("x/a", "x/b", 80, false),
            // Egress is not isolated, and replies pass.
            tcp("x/a", "y/a", 80, true),
            tcp("y/a", "y/b", 80, true),
            // Pod <-> its own node always passes (kubelet's probes).
            own_node,
            v6(own_node),
        ],
    );

    // Seeing why, on n1: the policies in force, the verdict of one flow, the drops.
    let show = podwirectl(&n, 0, &["node", "show"], &[]);
    assert!(show.contains("policy x/deny-ingress"), "{show}");
    let (yb, xa) = (n.pod("y/b").v4.to_string(), n.pod("x/a").v4.to_string());
    let path = podwirectl(&n, 0, &["path", &yb, &xa, "--port", "80/tcp"], &[]);
    assert!(
        path.contains("DENIED") && path.contains("x/deny-ingress"),
        "{path}"
    );
    let drops = podwirectl(&n, 0, &["drops"], &["--netconfpath", "--cache-dir"]);
    eprintln!("{path}{drops}");
    // The drops as the kernel logs them: which pod, which peer, which port.
    let node = n.c.node(0);
    let watch = std::process::Command::new("ip")
        .args(["netns", "exec", &node.ns.name])
        .arg(&n.c.bin.podwirectl)
        .args(["drops", "--watch", "3", "--state-dir"])
        .arg(node.dir.join("state"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(n.wrong(&[tcp("y/a", "x/a", 81, false)]).is_empty());
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "drop x/a <- {} tcp port 81: ingress denied",
        n.pod("y/a").v4
    );
    assert!(text.contains(&want), "{want:?} not in:\n{text}");
    assert!(
        drops.contains("x/a") && drops.contains("isolated by x/deny-ingress"),
        "{drops}"
    );

    // Upstream "should allow ingress access from namespace on one named port"-like: from
    // namespaces labelled ns=y (y/a over VXLAN, y/b on the same node).
    n.policy(
        "x",
        "from-y",
        json!({"podSelector": {"matchLabels": {"pod": "a"}},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
    );
    n.expect(
        "allow x/a from namespace ns=y",
        &[
            tcp("y/a", "x/a", 80, true),
            v6(tcp("y/a", "x/a", 81, true)),
            udp(tcp("y/b", "x/a", 80, true)),
            tcp("x/b", "x/a", 80, false),
        ],
    );
    n.delete_policy("x", "from-y");

    // Upstream "should enforce policy based on PodSelector": from pod=b of x, across nodes
    // (x/b on n2, direct).
    n.policy(
        "x",
        "from-b",
        json!({"podSelector": {"matchLabels": {"pod": "a"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
    );
    n.expect(
        "allow x/a from pod=b of x (direct)",
        &[
            tcp("x/b", "x/a", 80, true),
            v6(tcp("x/b", "x/a", 80, true)),
            tcp("y/a", "x/a", 80, false),
            tcp("y/b", "x/a", 80, false),
        ],
    );
    n.delete_policy("x", "from-b");

    // Upstream "should enforce policy based on PodSelector and NamespaceSelector" (AND), over
    // VXLAN: y/a on n3 accepts only x/a (n1), not x/b (n2).
    n.policy(
        "y",
        "from-x-a",
        json!({"podSelector": {"matchLabels": {"pod": "a"}},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "x"}},
                                       "podSelector": {"matchLabels": {"pod": "a"}}}]}]}),
    );
    n.expect(
        "allow y/a from x/a only (VXLAN)",
        &[
            tcp("x/a", "y/a", 80, true),
            v6(tcp("x/a", "y/a", 80, true)),
            tcp("x/b", "y/a", 80, false),
            tcp("y/b", "y/a", 80, false),
        ],
    );
    n.delete_policy("y", "from-x-a");

    // Upstream "should allow ingress access on one named port": serve-81-tcp only.
    n.policy(
        "x",
        "named-81",
        json!({"podSelector": {"matchLabels": {"pod": "a"}},
               "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}),
    );
    n.expect(
        "named port serve-81-tcp on x/a",
        &[
            tcp("y/a", "x/a", 81, true),
            tcp("x/b", "x/a", 81, true),
            tcp("y/a", "x/a", 80, false),
            udp(tcp("y/a", "x/a", 81, false)),
        ],
    );
    n.delete_policy("x", "named-81");
    n.delete_policy("x", "deny-ingress");

    // Upstream "should enforce egress policy allowing traffic to a server in a different
    // namespace based on PodSelector and NamespaceSelector"'s deny half: x/a may send nothing.
    n.policy(
        "x",
        "deny-egress",
        json!({"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"]}),
    );
    n.expect(
        "egress deny on x/a",
        &[
            tcp("x/a", "y/a", 80, false),
            tcp("x/a", "x/b", 80, false),
            udp(tcp("x/a", "y/b", 80, false)),
            // Its ingress is open, and the replies of those connections pass.
            tcp("y/a", "x/a", 80, true),
            tcp("x/b", "x/a", 80, true),
        ],
    );
    n.delete_policy("x", "deny-egress");
    n.expect(
        "every policy gone: everything open",
        &[
            tcp("x/a", "y/a", 80, true),
            tcp("y/a", "x/a", 80, true),
            tcp("x/b", "x/a", 80, true),
        ],
    );
}

/// An established flow x/b -> x/a (n2 -> n1) echoing a byte every 10 ms.
struct Flow {
    stop: Arc<AtomicBool>,
    /// Milliseconds since `start` of the last echo received.
    last_echo: Arc<AtomicU64>,
    start: Instant,
}

impl Flow {
    fn open(from: &Pod, to: SocketAddr) -> Flow {
        let mut s = from
            .ns
            .ns
            .run(|| TcpStream::connect_timeout(&to, PROBE))
            .unwrap()
            .expect("the flow connects");
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let f = Flow {
            stop: Arc::new(AtomicBool::new(false)),
            last_echo: Arc::new(AtomicU64::new(0)),
            start: Instant::now(),
        };
        let (stop, last, start) = (f.stop.clone(), f.last_echo.clone(), f.start);
        std::thread::spawn(move || {
            let mut b = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                let _ = s.write_all(b"x");
                if let Ok(n) = s.read(&mut b) {
                    if n > 0 {
                        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        f
    }

    fn last(&self) -> Duration {
        Duration::from_millis(self.last_echo.load(Ordering::Relaxed))
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_new_policy_cuts_an_established_flow_within_a_second_and_its_removal_restores_it() {
    let mut n = Net::new();
    n.add(0, "x", "a");
    n.add(1, "x", "b");
    let to = SocketAddr::new(n.pod("x/a").v4, 80);
    let flow = Flow::open(n.pod("x/b"), to);
    std::thread::sleep(Duration::from_millis(300));
    assert!(flow.last() > Duration::ZERO, "the flow echoes");

    let cut_at = flow.start.elapsed();
    n.policy(
        "x",
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    std::thread::sleep(Duration::from_millis(2000));
    let last = flow.last();
    let took = last.saturating_sub(cut_at);
    eprintln!("flow cut: last echo {took:?} after the policy was created");
    assert!(
        took < Duration::from_secs(1),
        "the established flow still echoed {took:?} after the policy was created"
    );
    // Still cut (nothing got through in the last second).
    assert!(flow.start.elapsed() - last > Duration::from_millis(900));

    let open_at = Instant::now();
    n.delete_policy("x", "deny-ingress");
    // Short attempts: a SYN the old table dropped is retransmitted only after a second.
    let quick = || TcpStream::connect_timeout(&to, Duration::from_millis(30)).is_ok();
    let new_conn = loop {
        let ok = n.pod("x/b").ns.ns.run(quick).unwrap();
        if ok {
            break open_at.elapsed();
        }
        assert!(open_at.elapsed() < Duration::from_secs(3), "never reopened");
    };
    eprintln!("policy removed: a new connection works after {new_conn:?}");
    // The old flow was never reset: it resumes once TCP retransmits (its backoff, not ours).
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = flow.last();
    while flow.last() == before {
        assert!(
            Instant::now() < deadline,
            "the established flow never resumed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "the established flow resumed {:?} after the removal",
        open_at.elapsed()
    );
}

/// Sends UDP datagrams to every address in `targets`, port 7, as fast as it can from `from`,
/// until stopped. One socket per target: datagrams waiting for an address that never resolves
/// hold their socket's send buffer, and must not throttle the others.
fn flood(
    from: &TestNs,
    targets: Vec<IpAddr>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let sockets: Vec<(UdpSocket, SocketAddr)> = targets
        .iter()
        .map(|t| {
            let s = from
                .ns
                .run(|| UdpSocket::bind("0.0.0.0:0"))
                .unwrap()
                .unwrap();
            s.set_nonblocking(true).unwrap();
            (s, SocketAddr::new(*t, 7))
        })
        .collect();
    std::thread::spawn(move || {
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for (s, t) in &sockets {
                if s.send_to(b"early", t).is_ok() {
                    sent += 1;
                }
            }
            std::thread::yield_now();
        }
        sent
    })
}

/// A UDP receiver on port 7 in `netns`, counting datagrams and the first one's arrival.
fn count(netns: &TestNs) -> (Arc<AtomicU64>, Arc<std::sync::Mutex<Option<Instant>>>) {
    let u = netns
        .ns
        .run(|| UdpSocket::bind(("0.0.0.0", 7)))
        .unwrap()
        .unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::Mutex::new(None));
    let (n2, f2) = (n.clone(), first.clone());
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while let Ok((_, from)) = u.recv_from(&mut b) {
            let first = *f2.lock().unwrap().get_or_insert_with(Instant::now);
            if n2.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("received from {from} at +{:?}", first.elapsed());
            }
        }
    });
    (n, first)
}

/// The next IPv4 addresses node `i`'s IPAM hands out (round robin after the last one given).
fn next_addresses(n: &Net, node: usize) -> Vec<IpAddr> {
    let name = &n.c.node(node).name;
    let last =
        n.c.pods
            .iter()
            .filter(|p| &p.node == name)
            .filter_map(|p| match p.v4 {
                IpAddr::V4(a) => Some(u32::from(a)),
                _ => None,
            })
            .max()
            .expect("a pod on the node already");
    (1..=3)
        .map(|k| IpAddr::V4(std::net::Ipv4Addr::from(last + k)))
        .collect()
}

/// x isolated for ingress (every pod) except pod=open; x/warm on n1 (so the next address n1's
/// IPAM gives is known), y/peer on n1, y/far on n3 (routed to n1 over VXLAN).
fn start_window_case() -> Net {
    let mut n = Net::new();
    n.add(0, "x", "warm");
    n.add(0, "y", "peer");
    n.add(2, "y", "far");
    n.policy(
        "x",
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    n.policy(
        "x",
        "open",
        json!({"podSelector": {"matchLabels": {"pod": "open"}}, "ingress": [{}]}),
    );
    n.expect("x isolated", &[tcp("y/peer", "x/warm", 80, false)]);
    n
}

/// A pod selected by deny-ingress, flooded from `senders` while it is ADDed: nothing may
/// arrive, ever.
fn denied_new_pod(n: &mut Net, senders: &[&str]) {
    let targets = next_addresses(n, 0);
    let netns = TestNs::new("pwnp");
    let (received, _) = count(&netns);
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = senders
        .iter()
        .map(|s| flood(&n.pod(s).ns, targets.clone(), stop.clone()))
        .collect();
    let started = Instant::now();
    let added = n.add_in(0, "x", "closed", netns);
    eprintln!("ADD took {:?}", added - started);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = floods.into_iter().map(|f| f.join().unwrap()).sum();
    let got = received.load(Ordering::Relaxed);
    eprintln!(
        "denied new pod {}: {sent} datagrams sent at it from {senders:?} during and 1.5 s after \
         its ADD, {got} received",
        n.pod("x/closed").v4
    );
    assert!(
        targets.contains(&n.pod("x/closed").v4),
        "the flood aimed at {targets:?}, the pod got {}",
        n.pod("x/closed").v4
    );
    assert!(sent > 1000, "the flood ran ({sent})");
    assert_eq!(got, 0, "datagrams reached a pod its policy isolates");
}

#[test]
fn a_new_pod_selected_by_a_deny_policy_gets_nothing_from_a_pod_of_its_node() {
    let mut n = start_window_case();
    denied_new_pod(&mut n, &["y/peer"]);
}

/// Packets routed to the node for an address no pod has yet are judged at the forward hook
/// while nothing isolates that address (accepted), then wait in the node's neighbour queue
/// (unres_qlen) for the pod's link. Before the gate dropped that queue (the plugin deletes the
/// node's incomplete neighbour entries for the pod's addresses right after announcing them),
/// 50-166 of 60,000-150,000 datagrams arrived in one burst when the link came up.
#[test]
fn a_new_pod_selected_by_a_deny_policy_gets_nothing_routed_to_it_from_another_node() {
    let mut n = start_window_case();
    denied_new_pod(&mut n, &["y/far"]);
}

#[test]
fn an_allowed_new_pod_is_reachable_within_250ms_of_its_add() {
    let mut n = start_window_case();
    // A pod the policies allow: reachable within 250 ms of its ADD returning.
    let targets = next_addresses(&n, 0);
    let netns = TestNs::new("pwnp");
    let (received, first) = count(&netns);
    let stop = Arc::new(AtomicBool::new(false));
    let near = flood(&n.pod("y/peer").ns, targets.clone(), stop.clone());
    let started = Instant::now();
    let added = n.add_in(0, "x", "open", netns);
    let deadline = Instant::now() + Duration::from_secs(3);
    while first.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    near.join().unwrap();
    let first = first
        .lock()
        .unwrap()
        .expect("the allowed pod was never reached");
    let after = first.saturating_duration_since(added);
    eprintln!(
        "allowed new pod {}: ADD took {:?}, first datagram {:?} after the ADD started, {after:?} \
         after it returned ({} received)",
        n.pod("x/open").v4,
        added - started,
        first - started,
        received.load(Ordering::Relaxed)
    );
    assert!(
        after <= Duration::from_millis(250),
        "first packet {after:?} after the ADD"
    );
    n.expect(
        "the new pod, classified",
        &[
            tcp("y/far", "x/open", 80, true),
            udp(tcp("y/peer", "x/open", 81, true)),
            tcp("y/far", "x/warm", 80, false),
        ],
    );
}

#[test]
fn network_policy_false_removes_the_table_and_opens_every_pod() {
    let mut n = Net::new();
    n.add(0, "x", "a");
    n.add(1, "x", "b");
    n.policy(
        "x",
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    n.expect("enforced by default", &[tcp("x/b", "x/a", 80, false)]);
    let has_table = |n: &Net| {
        n.c.node(0)
            .ns
            .exec_ok(&["nft", "list", "table", "inet", "podwire-policy"])
    };
    assert!(has_table(&n));

    // The same agent restarted with the flag off.
    n.c.nodes[0].stop_agent();
    n.c.agent_args = vec!["--network-policy=false".into()];
    n.c.start_agent(0);
    n.c.wait_for("n1's policy table removed", Duration::from_secs(20), || {
        !has_table(&n)
    });
    n.expect("not enforced", &[tcp("x/b", "x/a", 80, true)]);
    // The agent says so once its watches are set up, a moment after it removed the table.
    n.c.wait_for(
        "the agent saying policy is off",
        Duration::from_secs(20),
        || {
            n.c.node(0)
                .agent_log()
                .contains("NetworkPolicy not enforced")
        },
    );
}

/// The upstream e2e model: namespaces x, y, z with pods a, b, c each, spread over the three
/// nodes (each pair of nodes: direct n1-n2, VXLAN n1-n3 and n2-n3); each case probes the full
/// 9×9 TCP port 80 matrix and compares it with upstream's truth table (a pod always reaches
/// itself).
struct Model {
    n: Net,
    keys: Vec<&'static str>,
}

const MODEL_PODS: [(&str, usize); 9] = [
    ("x/a", 0),
    ("x/b", 1),
    ("x/c", 2),
    ("y/a", 1),
    ("y/b", 2),
    ("y/c", 0),
    ("z/a", 2),
    ("z/b", 0),
    ("z/c", 1),
];

impl Model {
    fn new() -> Model {
        let mut n = Net::new();
        n.c.api.create(&namespace("z", &[("ns", "z")])).unwrap();
        for (key, node) in MODEL_PODS {
            let (ns, name) = key.split_once('/').unwrap();
            n.add(node, ns, name);
        }
        Model {
            n,
            keys: MODEL_PODS.iter().map(|(k, _)| *k).collect(),
        }
    }

    /// Waits until the matrix is `expect(from, to)` for every pair (self always allowed).
    fn check(&self, case: &str, expect: impl Fn(&str, &str) -> bool) {
        let mut probes = Vec::new();
        for from in &self.keys {
            for to in &self.keys {
                let allowed = from == to || expect(from, to);
                probes.push(tcp(from, to, 80, allowed));
            }
        }
        self.n.expect(case, &probes);
    }
}

fn ns_of(key: &str) -> &str {
    key.split('/').next().unwrap()
}

#[test]
fn upstream_model_cases_over_the_full_9x9_matrix() {
    let m = Model::new();
    m.check("no policy: everything open", |_, _| true);

    // "should support a 'default-deny-ingress' policy"
    m.n.policy(
        "x",
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    m.check("default-deny-ingress", |_, to| ns_of(to) != "x");
    m.n.delete_policy("x", "deny-ingress");

    // "should enforce policy to allow traffic from pods within server namespace based on
    // PodSelector"
    m.n.policy(
        "x",
        "allow-client-a-via-pod-selector",
        json!({"podSelector": {"matchLabels": {"pod": "a"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
    );
    m.check("allow x/a from x/b only", |from, to| {
        to != "x/a" || from == "x/b"
    });
    m.n.delete_policy("x", "allow-client-a-via-pod-selector");

    // "should support a 'default-deny-all' policy"
    m.n.policy(
        "x",
        "deny-all",
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    );
    m.check("default-deny-all", |from, to| {
        ns_of(from) != "x" && ns_of(to) != "x"
    });
    m.n.delete_policy("x", "deny-all");

    // "should enforce egress policy allowing traffic to a server in a different namespace based
    // on PodSelector and NamespaceSelector"
    m.n.policy(
        "x",
        "allow-to-ns-y-pod-a",
        json!({"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
               "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                   "podSelector": {"matchLabels": {"pod": "a"}}}]}]}),
    );
    m.check("x/a may reach y/a only", |from, to| {
        from != "x/a" || to == "y/a"
    });
    m.n.delete_policy("x", "allow-to-ns-y-pod-a");

    // "should allow ingress access from namespace on one named port"
    m.n.policy(
        "x",
        "allow-named-80-from-ns-y",
        json!({"podSelector": {}, "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
            "ports": [{"port": "serve-80-tcp"}]}]}),
    );
    m.check("x open on serve-80-tcp to namespace y only", |from, to| {
        ns_of(to) != "x" || ns_of(from) == "y"
    });
    m.n.delete_policy("x", "allow-named-80-from-ns-y");
    m.check("every policy gone", |_, _| true);
}
