//! The multi-node agent at scale: one real node namespace running podwire's agent against the
//! stand-in API server holding 1,000 and 5,000 Node objects (fake nodes off-link, so every peer
//! is a VXLAN peer: a route, an FDB entry and a neighbour entry each, the most work per peer).
//!
//!   cargo bench -p podwire-cluster-tests --bench scale [-- --nodes 1000,5000 --adds 50]
//!
//! Measures, per fleet size: time to program every peer at agent start; time from a Node added
//! to the API server until its route is in the node's kernel (p50/p99 over `--adds`, seen through
//! rtnetlink notifications, so it includes the watch's delivery); kernel writes during resyncs
//! with nothing to change; the agent's RSS; its CPU while idle. Prints a Markdown table.
//!
//! Then what the health and metrics listener costs (`--listener-nodes 1000 --listener-reps 5`):
//! the same agent restarted in turn with `--metrics-addr ""` (no listener), with the listener
//! unscraped, and scraped once a second; RSS and idle CPU of each, median and range over the
//! repetitions, and how long one `/metrics` scrape takes.
//! No packet is sent: the fake nodes' addresses (198.18.0.0/15) are never routed.

use cluster::kubesim::Fleet;
use cluster::Cluster;
use kernel::{KernelEvent, Monitor, Netlink};
use std::time::{Duration, Instant};
use testkit::bench_page::arg;

struct Figures {
    nodes: u32,
    start: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    resync_writes: usize,
    rss_kib: u64,
    hwm_kib: u64,
    idle_cpu: f64,
}

fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn podwire_routes(nl: &Netlink) -> usize {
    nl.routes(kernel::IpFamily::V4)
        .unwrap()
        .iter()
        .filter(|r| r.protocol == 157)
        .count()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The fake fleet's pod CIDRs (10.100.0.0/24 on) lie outside the simulated cluster's: the
/// agent is given this one too, or it would route none of them.
const FLEET_CLUSTER_CIDR: &str = "10.96.0.0/11";

fn run(nodes: u32, adds: u32) -> Figures {
    let mut c = Cluster::new([1, 0]);
    c.agent_args = vec![
        "--resync".into(),
        "2".into(),
        "--cluster-cidr".into(),
        FLEET_CLUSTER_CIDR.into(),
    ];
    let fleet = Fleet::default();
    c.api.add_nodes(fleet.nodes(0..nodes)).unwrap();
    let ns = kernel::Netns::open(c.node(0).ns.path()).unwrap();
    let nl = Netlink::new_in(&ns).unwrap();

    // Start: every peer programmed.
    let t = Instant::now();
    c.start_agent(0);
    let want = nodes as usize;
    while podwire_routes(&nl) < want {
        let alive = c.nodes[0].agent_running();
        assert!(alive, "the agent exited:\n{}", c.node(0).agent_log());
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "start did not converge"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = t.elapsed();
    let pid = c.node(0).agent_pid().unwrap();

    // Convergence: one Node at a time, timed until its route's notification.
    let mut mon = ns.run(Monitor::new).unwrap().unwrap();
    let mut lat = Vec::new();
    for i in nodes..nodes + adds {
        let node = fleet.node(i);
        let dst: kernel::ipnet::IpNet = node.spec.as_ref().unwrap().pod_cidrs.as_ref().unwrap()[0]
            .parse()
            .unwrap();
        let t = Instant::now();
        c.api.create_node(&node).unwrap();
        'wait: loop {
            for e in mon.recv().unwrap() {
                if let KernelEvent::Route {
                    dst: Some(d),
                    protocol: 157,
                    deleted: false,
                } = e
                {
                    if d == dst {
                        break 'wait;
                    }
                }
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{dst} never routed");
        }
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    lat.sort();

    // Resyncs with nothing to change (--resync 2): count podwire's writes over 5 s, i.e. the
    // notifications of routes with its protocol and of permanent neighbour/FDB changes.
    let writes = {
        let mut mon = ns.run(Monitor::new).unwrap().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || loop {
            match mon.recv() {
                Ok(evs) => {
                    if tx.send(evs).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        });
        let end = Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Ok(evs) = rx.recv_timeout(left) {
                n += evs
                    .iter()
                    .filter(|e| {
                        matches!(
                            e,
                            KernelEvent::Route { protocol: 157, .. }
                                | KernelEvent::Neighbour { .. }
                        )
                    })
                    .count();
            }
        }
        n
    };

    // Idle CPU over 10 s (resyncs included), and memory.
    let t0 = cpu_ticks(pid);
    let w = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let ticks = (cpu_ticks(pid) - t0) as f64;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let idle_cpu = ticks / hz / w.elapsed().as_secs_f64() * 100.0;
    Figures {
        nodes,
        start,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        max: *lat.last().unwrap(),
        resync_writes: writes,
        rss_kib: proc_status(pid, "VmRSS:"),
        hwm_kib: proc_status(pid, "VmHWM:"),
        idle_cpu,
    }
}

/// One way of running the agent for the listener's cost.
#[derive(Clone, Copy, PartialEq)]
enum Listener {
    Off,
    On,
    Scraped,
}

impl Listener {
    fn label(self) -> &'static str {
        match self {
            Listener::Off => "no listener (`--metrics-addr \"\"`)",
            Listener::On => "listener, not scraped",
            Listener::Scraped => "listener, `/metrics` scraped every 1 s",
        }
    }
}

struct ListenerFigures {
    nodes: u32,
    reps: usize,
    /// Per mode: RSS (KiB) and idle CPU (%) of each repetition.
    runs: Vec<(Listener, Vec<u64>, Vec<f64>)>,
    /// How long one scrape took, and its size.
    scrape: Vec<Duration>,
    scrape_bytes: usize,
}

/// The listener's cost: one cluster, the agent restarted in each mode in turn (`reps` rounds,
/// modes interleaved so drift hits them alike), 3 s to settle, then 10 s measured.
fn listener_cost(nodes: u32, reps: usize) -> ListenerFigures {
    let mut c = Cluster::new([1, 0]);
    c.api.add_nodes(Fleet::default().nodes(0..nodes)).unwrap();
    let ns = kernel::Netns::open(c.node(0).ns.path()).unwrap();
    let nl = Netlink::new_in(&ns).unwrap();
    let modes = [Listener::Off, Listener::On, Listener::Scraped];
    let mut runs: Vec<(Listener, Vec<u64>, Vec<f64>)> =
        modes.iter().map(|m| (*m, vec![], vec![])).collect();
    let mut scrape = Vec::new();
    let mut scrape_bytes = 0;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    for _ in 0..reps {
        for (i, mode) in modes.iter().enumerate() {
            c.agent_args = vec![
                "--resync".into(),
                "2".into(),
                "--cluster-cidr".into(),
                FLEET_CLUSTER_CIDR.into(),
            ];
            if *mode == Listener::Off {
                c.agent_args
                    .extend(["--metrics-addr".into(), String::new()]);
            }
            c.start_agent(0);
            let t = Instant::now();
            while podwire_routes(&nl) < nodes as usize {
                assert!(t.elapsed() < Duration::from_secs(60), "peers not routed");
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_secs(3));
            let pid = c.node(0).agent_pid().unwrap();
            let t0 = cpu_ticks(pid);
            let w = Instant::now();
            while w.elapsed() < Duration::from_secs(10) {
                if *mode == Listener::Scraped {
                    let t = Instant::now();
                    let (code, body) = c.node(0).http_get("/metrics").expect("/metrics");
                    scrape.push(t.elapsed());
                    assert_eq!(code, 200);
                    scrape_bytes = body.len();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            let cpu = (cpu_ticks(pid) - t0) as f64 / hz / w.elapsed().as_secs_f64() * 100.0;
            runs[i].1.push(proc_status(pid, "VmRSS:"));
            runs[i].2.push(cpu);
            c.nodes[0].stop_agent();
        }
    }
    scrape.sort();
    ListenerFigures {
        nodes,
        reps,
        runs,
        scrape,
        scrape_bytes,
    }
}

fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

fn range<T: Copy + PartialOrd>(v: &[T]) -> (T, T) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (s[0], s[s.len() - 1])
}

fn listener_report(f: &ListenerFigures) -> String {
    let mut s = format!(
        "\n### The health and metrics listener\n\nThe agent at {} Nodes (resync every 2 s), \
         restarted in turn with each setting, {} rounds interleaved; 10 s measured after 3 s \
         to settle. Median (min–max).\n\n| agent | RSS | CPU, idle |\n| --- | ---: | ---: |\n",
        f.nodes, f.reps
    );
    for (mode, rss, cpu) in &f.runs {
        let (rlo, rhi) = range(rss);
        let (clo, chi) = range(cpu);
        s += &format!(
            "| {} | {:.2} MiB ({:.2}–{:.2}) | {:.2} % ({:.2}–{:.2}) |\n",
            mode.label(),
            median(rss) as f64 / 1024.0,
            rlo as f64 / 1024.0,
            rhi as f64 / 1024.0,
            median(cpu),
            clo,
            chi
        );
    }
    if !f.scrape.is_empty() {
        s += &format!(
            "\nOne `/metrics` scrape ({:.1} KiB): p50 {:.2} ms, max {:.2} ms (a fresh TCP \
             connection each, from the node's namespace).\n",
            f.scrape_bytes as f64 / 1024.0,
            percentile(&f.scrape, 0.5).as_secs_f64() * 1e3,
            f.scrape.last().unwrap().as_secs_f64() * 1e3
        );
    }
    s
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` / `--list`: nothing to run quickly.
    }
    let sizes: Vec<u32> = arg("--nodes", "1000,5000")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let adds: u32 = arg("--adds", "50").parse().unwrap();
    let figures: Vec<Figures> = if sizes.is_empty() {
        Vec::new()
    } else {
        sizes.iter().map(|n| run(*n, adds)).collect()
    };
    let mut section = report(&figures, adds);
    let listener_nodes: u32 = arg("--listener-nodes", "1000").parse().unwrap();
    let reps: usize = arg("--listener-reps", "5").parse().unwrap();
    if reps > 0 {
        section += &listener_report(&listener_cost(listener_nodes, reps));
    }
    println!("{section}");
    let out = arg("--write", "");
    if !out.is_empty() {
        // cargo runs a bench from its package's directory: a relative path is the workspace's.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        testkit::bench_page::write_section(&root.join(&out), HEADING, &section);
        println!("written to {out}");
    }
}

const HEADING: &str = "## Multi-node agent";

fn report(figures: &[Figures], adds: u32) -> String {
    let mut s = format!(
        "{HEADING}\n\n`cargo bench -p podwire-cluster-tests --bench scale` (scripts/bench.sh runs \
         it): one real node namespace running the agent against the stand-in API server \
         (tests/kubesim) holding N Node objects; every peer is a VXLAN peer (a route, an FDB \
         entry and a neighbour entry). Targets: p99 ≤ 100 ms, start ≤ 2 s at 5,000, 0 writes \
         when in sync, RSS ≤ 30 MiB at 5,000.\n\n"
    );
    s += &format!(
        "| Nodes | all peers programmed at start | Node added → route in kernel, p50 / p99 / max \
         ({adds} adds) | kernel writes in 5 s of resyncs (every 2 s) | agent RSS / peak | agent \
         CPU, idle |\n"
    );
    s += "| ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for f in figures {
        s += &format!(
            "| {} | {:.0} ms | {:.1} / {:.1} / {:.1} ms | {} | {:.1} / {:.1} MiB | {:.2} % |\n",
            f.nodes,
            f.start.as_secs_f64() * 1e3,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.max.as_secs_f64() * 1e3,
            f.resync_writes,
            f.rss_kib as f64 / 1024.0,
            f.hwm_kib as f64 / 1024.0,
            f.idle_cpu
        );
    }
    s += "\nFor comparison, kindnet-style polling every 10 s: a change waits for the next poll, \
          uniformly 0–10 s, so p50 ≈ 5,000 ms and p99 ≈ 9,900 ms (plus the poll's own work). \
          Latency runs from the Node's creation in the API server to the route's notification \
          in the node's netns, so it includes the watch's delivery.\n";
    s
}
