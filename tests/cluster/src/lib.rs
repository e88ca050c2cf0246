//! A simulated cluster on one machine, for podwire's multi-node tests and benchmark:
//!
//! ```text
//!            segment A (bridge in the router)          segment B
//!   n1 10.247.1.1  n2 10.247.1.2   router .254 | .254   n3 10.247.2.3  n4 10.247.2.4
//! ```
//!
//! Every node is a network namespace with one underlay interface `eth0` on its segment
//! (IPv4 and IPv6), a default route through the router, and its own config, state, IPAM and
//! cache directories. Nodes on one segment are on-link (direct routes); across segments they
//! are not (VXLAN). One stand-in API server (`kubesim`) listens in the router namespace; each
//! node runs podwire's agent (`podwirectl node agent`) against it.
//! Pods are network namespaces added with `podwirectl add` and the conflist the node's setup
//! wrote. Everything is removed on drop, even when a test fails: agents are killed, namespaces
//! deleted, directories removed. No packet leaves these namespaces.

use kernel::{Netlink, Netns, VethSpec};
use kubesim::{Node, NodeBuilder, Server};
use serde_json::Value;
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{unique, workspace_binary, TestNs};

pub use kubesim;

/// The cluster CIDRs every node's setup gets (`--cluster-cidr`).
pub const CLUSTER_V4: &str = "10.246.0.0/16";
pub const CLUSTER_V6: &str = "fd00:246::/48";
/// Where every agent serves /healthz, /readyz and /metrics: its default, the node's loopback
/// (each node namespace has its own).
pub const METRICS_ADDR: &str = "127.0.0.1:9799";
/// podwire's route protocol (node::peers::ROUTE_PROTOCOL), as `ip -j route` prints it.
pub const ROUTE_PROTOCOL: &str = "157";

/// The DaemonSet's command for the agent.
pub const NODE_AGENT: &[&str] = &["node", "agent"];
/// The same agent through the one-shot command's flags (kept working as it was).
pub const NODE_SETUP_WATCH: &[&str] = &["node", "setup", "--from-kubernetes", "--watch"];

/// The binaries a node needs: the agent/CLI and the plugins (in one directory: CNI_PATH).
pub struct Binaries {
    pub podwirectl: PathBuf,
    pub cni_path: PathBuf,
}

impl Binaries {
    pub fn build() -> Binaries {
        let podwirectl = workspace_binary("podwirectl", "podwirectl");
        let podwire = workspace_binary("podwire-bridge", "podwire");
        workspace_binary("podwire-ipam", "podwire-ipam");
        // node setup's conflist chains podwire-portmap after podwire.
        workspace_binary("podwire-portmap", "podwire-portmap");
        Binaries {
            podwirectl,
            cni_path: podwire.parent().unwrap().to_path_buf(),
        }
    }
}

/// Node `i`'s addresses: segment `seg` (1 or 2), host `i`.
pub fn node_v4(seg: u8, i: u8) -> String {
    format!("10.247.{seg}.{i}")
}
pub fn node_v6(seg: u8, i: u8) -> String {
    format!("fd00:247:{seg}::{i}")
}
/// Node `i`'s pod CIDRs.
pub fn pod_cidr_v4(i: u8) -> String {
    format!("10.246.{i}.0/24")
}
pub fn pod_cidr_v6(i: u8) -> String {
    format!("fd00:246:0:{i}::/64")
}

/// The router: one bridge per segment, forwarding on, the API server listening on segment A.
pub struct Router {
    pub ns: TestNs,
    pub nl: Netlink,
    pub segments: [u32; 2],
}

/// A node: its namespace, its directories, its agent (when running).
pub struct SimNode {
    pub index: u8,
    pub segment: u8,
    pub name: String,
    pub ns: TestNs,
    pub dir: PathBuf,
    agent: Option<Child>,
}

/// A pod on a node: its namespace and addresses.
pub struct Pod {
    pub node: String,
    pub ns: TestNs,
    pub v4: IpAddr,
    pub v6: IpAddr,
}

pub struct Cluster {
    pub bin: Binaries,
    pub api: Server,
    pub kubeconfig: PathBuf,
    pub prefix: String,
    pub pods: Vec<Pod>,
    pub nodes: Vec<SimNode>,
    pub router: Router,
    /// How every agent is started: [`NODE_AGENT`] or [`NODE_SETUP_WATCH`].
    pub agent_command: &'static [&'static str],
    /// Extra agent flags for every agent.
    pub agent_args: Vec<String>,
}

fn sysctl(ns: &Netns, key: &str, value: &str) {
    kernel::sysctl::write_in(ns, key, value).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
}

impl Router {
    fn new() -> Router {
        let ns = TestNs::new("pwrt");
        let nl = Netlink::new_in(&ns.ns).unwrap();
        let mut segments = [0; 2];
        for seg in 1..=2u8 {
            let name = format!("seg{seg}");
            let br = nl
                .ensure_bridge(&kernel::BridgeSpec::new(name.as_str()).up())
                .unwrap();
            nl.address_add(br.index, format!("10.247.{seg}.254/24").parse().unwrap())
                .unwrap();
            nl.address_add_with(
                br.index,
                format!("fd00:247:{seg}::fe/64").parse().unwrap(),
                kernel::AddressOptions {
                    nodad: true,
                    ..Default::default()
                },
            )
            .unwrap();
            segments[seg as usize - 1] = br.index;
        }
        sysctl(&ns.ns, "net/ipv4/ip_forward", "1");
        sysctl(&ns.ns, "net/ipv6/conf/all/forwarding", "1");
        Router { ns, nl, segments }
    }
}

impl SimNode {
    fn new(router: &Router, prefix: &str, index: u8, segment: u8) -> SimNode {
        let ns = TestNs::new("pwcn");
        let name = format!("{prefix}-n{index}");
        let dir = std::env::temp_dir().join(format!("podwire-cluster-{}", ns.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // eth0 in the node, its peer on the segment's bridge in the router.
        let port = unique("pwcu");
        let master = router.segments[segment as usize - 1];
        router
            .nl
            .veth_add(
                &VethSpec::new(port.as_str(), "eth0")
                    .peer_netns(&ns.ns)
                    .master(master)
                    .up(),
            )
            .unwrap();
        let nl = Netlink::new_in(&ns.ns).unwrap();
        let eth0 = nl.link("eth0").unwrap();
        nl.address_add(
            eth0.index,
            format!("{}/24", node_v4(segment, index)).parse().unwrap(),
        )
        .unwrap();
        nl.address_add_with(
            eth0.index,
            format!("{}/64", node_v6(segment, index)).parse().unwrap(),
            kernel::AddressOptions {
                nodad: true,
                ..Default::default()
            },
        )
        .unwrap();
        // As a server's network config does: a link flap must not cost the node its address.
        sysctl(&ns.ns, "net/ipv6/conf/eth0/keep_addr_on_down", "1");
        nl.link_set_up(eth0.index, true).unwrap();
        nl.route_add(&kernel::Route::default_via(
            format!("10.247.{segment}.254").parse().unwrap(),
        ))
        .unwrap();
        nl.route_add(&kernel::Route::default_via(
            format!("fd00:247:{segment}::fe").parse().unwrap(),
        ))
        .unwrap();
        SimNode {
            index,
            segment,
            name,
            ns,
            dir,
            agent: None,
        }
    }

    pub fn v4(&self) -> String {
        node_v4(self.segment, self.index)
    }
    pub fn v6(&self) -> String {
        node_v6(self.segment, self.index)
    }

    /// Its Node object as kubelet and the controller-manager would fill it in.
    pub fn object(&self) -> Node {
        NodeBuilder::new(&self.name)
            .pod_cidr(pod_cidr_v4(self.index))
            .pod_cidr(pod_cidr_v6(self.index))
            .internal_ip(self.v4())
            .internal_ip(self.v6())
            .hostname(&self.name)
            .build()
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("net.d")
    }

    /// `ip -j -n NODE ARGS`.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        self.ns.ip_json(args)
    }

    /// podwire's routes (both families) as `ip -j` prints them.
    pub fn podwire_routes(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for fam in ["-4", "-6"] {
            let routes = self.ip_json(&[fam, "route", "show", "proto", ROUTE_PROTOCOL]);
            out.extend(routes.as_array().unwrap().iter().cloned());
        }
        out
    }

    /// The route to `dst` podwire made, if any.
    pub fn route_to(&self, dst: &str) -> Option<Value> {
        self.podwire_routes().into_iter().find(|r| r["dst"] == dst)
    }

    /// FDB entries of the VXLAN devices (`bridge -j fdb show dev ...`).
    pub fn fdb(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for dev in ["podwire.vxlan", "podwire.vxlan6"] {
            let o = Command::new("bridge")
                .args(["-n", &self.ns.name, "-j", "fdb", "show", "dev", dev])
                .output()
                .unwrap();
            if o.status.success() && !o.stdout.is_empty() {
                let v: Value = serde_json::from_slice(&o.stdout).unwrap();
                out.extend(v.as_array().unwrap().iter().cloned());
            }
        }
        out
    }

    /// Permanent neighbour entries on the VXLAN devices.
    pub fn vxlan_neighbours(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for dev in ["podwire.vxlan", "podwire.vxlan6"] {
            if self
                .ip_json(&["link", "show"])
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["ifname"] == dev)
            {
                let n = self.ip_json(&["neigh", "show", "dev", dev, "nud", "permanent"]);
                out.extend(n.as_array().unwrap().iter().cloned());
            }
        }
        out
    }

    /// Whether anything podwire programmed mentions `what` (a pod CIDR, an address).
    pub fn mentions(&self, what: &str) -> bool {
        let all = format!(
            "{:?}{:?}{:?}",
            self.podwire_routes(),
            self.fdb(),
            self.vxlan_neighbours()
        );
        all.contains(what)
    }

    /// The agent's pid (`ip netns exec` execs it in place).
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(|c| c.id())
    }

    pub fn agent_running(&mut self) -> bool {
        match &mut self.agent {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Stops the agent the way a kubelet does (SIGTERM), waiting for it.
    pub fn stop_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the agent at once (SIGKILL): a crash.
    pub fn kill_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `GET path` from the agent's listener inside the node (status and body); `None` while
    /// nothing listens.
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        self.http_get_at(METRICS_ADDR.parse().unwrap(), path)
    }

    /// `GET path` from `addr` inside the node (as kubelet's httpGet probe of a hostNetwork pod).
    pub fn http_get_at(&self, addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = self
            .ns
            .ns
            .run(|| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
            .unwrap()
            .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.get(9..12)?.parse().ok()?;
        let (_, body) = out.split_once("\r\n\r\n")?;
        Some((status, body.to_string()))
    }

    /// Sends `sig` to the agent.
    pub fn signal_agent(&self, sig: i32) {
        let pid = self.agent_pid().expect("agent running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, sig) };
    }

    /// The agent's log so far (stdout and stderr).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.kill_agent();
        if std::env::var_os("PODWIRE_KEEP_CLUSTER_LOGS").is_some() {
            eprintln!("--- agent log of {} ---\n{}", self.name, self.agent_log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    /// The router, `segments[i]` nodes per segment (segment A first), their Node objects in the
    /// API server; no agent running yet.
    pub fn new(per_segment: [u8; 2]) -> Cluster {
        Cluster::with_options(per_segment, kubesim::Options::default())
    }

    pub fn with_options(per_segment: [u8; 2], options: kubesim::Options) -> Cluster {
        let bin = Binaries::build();
        let router = Router::new();
        let prefix = unique("c");
        let mut nodes = Vec::new();
        let mut i = 1u8;
        for (seg, count) in per_segment.iter().enumerate() {
            for _ in 0..*count {
                nodes.push(SimNode::new(&router, &prefix, i, seg as u8 + 1));
                i += 1;
            }
        }
        // The API server listens on the router's segment A address, reachable from every node.
        let listener = router
            .ns
            .ns
            .run(|| TcpListener::bind("10.247.1.254:0"))
            .unwrap()
            .unwrap();
        let api = Server::start_with(listener, options).unwrap();
        let kubeconfig = std::env::temp_dir().join(format!("podwire-cluster-{prefix}.kubeconfig"));
        api.write_kubeconfig(&kubeconfig).unwrap();
        for n in &nodes {
            api.create_node(&n.object()).unwrap();
        }
        // Where the agents write their Events about Nodes, as in any cluster.
        api.create(&kubesim::namespace("default", &[])).unwrap();
        Cluster {
            bin,
            api,
            kubeconfig,
            prefix,
            pods: Vec::new(),
            nodes,
            router,
            agent_command: NODE_AGENT,
            agent_args: Vec::new(),
        }
    }

    pub fn node(&self, i: usize) -> &SimNode {
        &self.nodes[i]
    }

    /// Starts node `i`'s agent (its output goes to `<dir>/agent.log`).
    pub fn start_agent(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        assert!(n.agent.is_none(), "agent of {} already running", n.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.dir.join("agent.log"))
            .unwrap();
        let d = |s: &str| n.dir.join(s).display().to_string();
        let mut extra = self.agent_args.clone();
        if !extra.iter().any(|a| a == "--resync") {
            extra.extend(["--resync".to_string(), "5".to_string()]);
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &n.ns.name])
            .arg(&self.bin.podwirectl)
            .args(self.agent_command)
            .args(["--node", &n.name])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--cluster-cidr", &format!("{CLUSTER_V4},{CLUSTER_V6}")])
            .args(["--conf-dir", &d("net.d"), "--state-dir", &d("state")])
            .args(["--ipam-data-dir", &d("ipam"), "--cni-bin-dir", &d("bin")])
            .args(&extra)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        n.agent = Some(cmd.spawn().expect("start the agent"));
    }

    pub fn start_agents(&mut self) {
        for i in 0..self.nodes.len() {
            self.start_agent(i);
        }
    }

    /// Waits until `cond` holds (polling every 20 ms); panics with `what` after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if cond() {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- {} ---\n{}", n.name, n.agent_log()))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every node with a running agent routes to every other node in the API
    /// server (both families), and nothing else.
    pub fn wait_converged(&self, timeout: Duration) -> Duration {
        self.wait_for("every node routed to every other", timeout, || {
            self.converged()
        })
    }

    /// Whether each node's podwire routes are exactly the other Nodes' pod CIDRs.
    pub fn converged(&self) -> bool {
        let objects = self.api.nodes();
        self.nodes
            .iter()
            .filter(|n| n.agent.is_some())
            .all(|n| routes_to_all_others(n, &objects))
    }

    /// Waits for node `i`'s conflist (its setup ran), then adds a pod there.
    /// Every pod pings every pod on another node, both families; the pairs that got no answer
    /// (`a (node) -> b (node)`), none when the cluster is one pod network.
    pub fn unanswered_cross_node_pings(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for a in &self.pods {
            for b in self.pods.iter().filter(|b| b.node != a.node) {
                for to in [b.v4, b.v6] {
                    if !a.ping(to) {
                        failed.push(format!("{} ({}) -> {to} ({})", a.v4, a.node, b.node));
                    }
                }
            }
        }
        failed
    }

    pub fn add_pod(&mut self, i: usize) -> &Pod {
        self.add_pod_with(i, TestNs::new("pwcp"), "").0
    }

    /// Adds a pod in `ns` on node `i` with `CNI_ARGS` as a container runtime passes them (e.g.
    /// [`k8s_cni_args`]); also returns when the ADD returned (before IPv6 DAD is waited for).
    pub fn add_pod_with(&mut self, i: usize, ns: TestNs, cni_args: &str) -> (&Pod, Instant) {
        let conf = self.nodes[i].conf_dir();
        self.wait_for("the node's conflist", Duration::from_secs(20), || {
            conf.join("10-podwire.conflist").is_file()
        });
        let n = &self.nodes[i];
        let out = Command::new("ip")
            .args(["netns", "exec", &n.ns.name])
            .arg(&self.bin.podwirectl)
            .args(["add", "podwire", &ns.path(), "--json"])
            .arg("--netconfpath")
            .arg(n.conf_dir())
            .arg("--cni-path")
            .arg(&self.bin.cni_path)
            .arg("--cache-dir")
            .arg(n.dir.join("cache"))
            .args(["--cni-args", cni_args])
            .output()
            .unwrap();
        let added = Instant::now();
        assert!(
            out.status.success(),
            "podwirectl add on {}: {}{}",
            n.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ip = |v6: bool| -> IpAddr {
            result["ips"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    i["address"]
                        .as_str()
                        .unwrap()
                        .split('/')
                        .next()
                        .unwrap()
                        .parse::<IpAddr>()
                        .unwrap()
                })
                .find(|a| a.is_ipv6() == v6)
                .expect("an address of each family")
        };
        // IPv6 duplicate address detection: the address answers only once it is not tentative.
        let name = ns.name.clone();
        self.wait_for(
            "the pod's IPv6 address past DAD",
            Duration::from_secs(10),
            || {
                testkit::ip_json(&name, &["-6", "addr", "show", "tentative"])
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|l| l["addr_info"].as_array().is_none_or(|a| a.is_empty()))
            },
        );
        let pod = Pod {
            node: n.name.clone(),
            v4: ip(false),
            v6: ip(true),
            ns,
        };
        self.pods.push(pod);
        (self.pods.last().unwrap(), added)
    }
}

/// `CNI_ARGS` as containerd and CRI-O pass them for a Kubernetes pod.
pub fn k8s_cni_args(namespace: &str, name: &str, uid: &str, container_id: &str) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};\
         K8S_POD_INFRA_CONTAINER_ID={container_id};K8S_POD_UID={uid}"
    )
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Pods first (their veths live in the node namespaces), agents with the nodes.
        self.pods.clear();
        for n in &mut self.nodes {
            n.kill_agent();
        }
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

impl Pod {
    /// One ping from this pod; true when answered.
    pub fn ping(&self, to: IpAddr) -> bool {
        self.ns
            .exec_ok(&["ping", "-c", "1", "-W", "2", &to.to_string()])
    }

    /// Connects to `to:port` over TCP from inside this pod; the peer's view of the source is
    /// what `accept` returns on the other side.
    pub fn connect(&self, to: std::net::SocketAddr) -> std::io::Result<std::net::TcpStream> {
        self.ns
            .ns
            .run(|| std::net::TcpStream::connect_timeout(&to, Duration::from_secs(3)))
            .unwrap()
    }

    /// A TCP listener inside this pod on a port the kernel picks (any address of the family of
    /// `v6`); the caller reads it from `local_addr`. A fixed port could still be held by the
    /// previous check's closing sockets (CI saw EADDRINUSE).
    pub fn listen(&self, v6: bool) -> TcpListener {
        let addr = if v6 { "[::]:0" } else { "0.0.0.0:0" };
        self.ns.ns.run(|| TcpListener::bind(addr)).unwrap().unwrap()
    }
}

/// Whether `n`'s podwire routes are exactly the pod CIDRs of the other Nodes in `objects`
/// (whoever runs its agent: a direct process or a container).
pub fn routes_to_all_others(n: &SimNode, objects: &[Node]) -> bool {
    let mut want: Vec<String> = objects
        .iter()
        .filter(|o| o.metadata.name.as_deref() != Some(n.name.as_str()))
        .flat_map(|o| {
            o.spec
                .as_ref()
                .and_then(|s| s.pod_cidrs.clone())
                .unwrap_or_default()
        })
        .collect();
    let mut have: Vec<String> = n
        .podwire_routes()
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    have.sort();
    want == have
}

/// Reads a file that may not exist yet.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
