//! Command-line options for `podwirectl node setup|agent|teardown|install-cni`, as `clap::Args`
//! structs the CLI flattens into its subcommands, and the functions that turn them into the typed
//! configs ([`NodeConfig`], [`AgentConfig`]), run them and return what to print. Nothing below
//! this module sees a flag.

#[cfg(feature = "kubernetes")]
use crate::agent::AgentConfig;
use crate::config::{self, NodeConfig};
use crate::peers::{self, Backend};
use crate::setup::{self, TeardownOptions};
use clap::{Args, ValueEnum};
use cni::{Error, Result};
use ipnet::IpNet;
use std::path::PathBuf;

/// What this node's setup is given, whoever runs it (`node setup` once, or the agent).
#[derive(Args, Clone, Debug)]
pub struct NodeFlags {
    /// The cluster's pod network the pod CIDRs are cut from (kube-controller-manager's
    /// --cluster-cidr), one per family: forwarded freely, not masqueraded.
    #[arg(
        long = "cluster-cidr",
        value_name = "CIDR",
        value_delimiter = ',',
        env = "PODWIRE_CLUSTER_CIDR",
        required = true
    )]
    pub cluster_cidr: Vec<String>,
    /// Bridge the pods are attached to.
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_BRIDGE)]
    pub bridge: String,
    /// The network's name in the conflist.
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_NETWORK)]
    pub network: String,
    /// Directory the runtime reads network configs from.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_CONF_DIR)]
    pub conf_dir: PathBuf,
    /// File name of the conflist (runtimes take the first name in sort order).
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_CONF_FILE)]
    pub conf_file: String,
    /// MTU of the bridge and the pods' interfaces (default: the smallest MTU of the links holding
    /// the default routes and the node's addresses, less 50 for VXLAN over IPv4 or 70 over IPv6).
    #[arg(long, value_name = "N")]
    pub mtu: Option<u32>,
    /// Where setup records what it did, for teardown.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Where the node's /proc/sys is (a container mounts the host's writable elsewhere).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_SYSCTL_DIR)]
    pub sysctl_dir: PathBuf,
    /// The node's CNI plugin directory (checked for podwire-portmap, which the conflist chains).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_CNI_BIN_DIR)]
    pub cni_bin_dir: PathBuf,
    /// IPAM state directory written into the conflist (default: host-local's /var/lib/cni/networks).
    #[arg(long, value_name = "DIR")]
    pub ipam_data_dir: Option<String>,
}

/// Which Node this is and how to reach the API server.
#[derive(Args, Clone, Debug)]
pub struct KubeFlags {
    /// The node's name in Kubernetes (default: the hostname in lower case, as kubelet's).
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node: Option<String>,
    /// kubeconfig to use instead of the in-cluster service account, $KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// The agent's own settings (`node agent`, or `node setup --watch`).
#[derive(Args, Clone, Debug)]
pub struct AgentFlags {
    /// Seconds between two full resyncs of the agent (node setup re-applied, every peer route
    /// checked against the kernel); Node changes and kernel changes are acted on at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub resync: u64,
    /// How the agent reaches other nodes' pod CIDRs: auto = a direct route where the node's
    /// address is on-link, VXLAN elsewhere; direct = direct routes only; vxlan = VXLAN for
    /// every node.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// VXLAN network identifier of the overlay.
    #[arg(long, value_name = "VNI", default_value_t = peers::DEFAULT_VNI)]
    pub vxlan_vni: u32,
    /// UDP port of the overlay (flannel's 8472 by default, so firewall rules made for it work).
    #[arg(long, value_name = "PORT", default_value_t = peers::DEFAULT_VXLAN_PORT)]
    pub vxlan_port: u16,
    /// Seconds the API server keeps one Node watch open before the agent renews it.
    #[arg(long, value_name = "SECONDS", default_value_t = 290)]
    pub watch_timeout: u32,
    /// libcni's cache directory (holding results/): the agent puts hostPort mappings recorded
    /// there back into podwire-portmap's table when a firewall reload flushed it.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_CNI_CACHE_DIR)]
    pub cni_cache_dir: PathBuf,
    /// Where the agent serves /healthz, /readyz and /metrics (Prometheus), as ADDRESS:PORT;
    /// "" serves nothing. The default is the node's loopback, so nothing new is exposed.
    #[arg(long, value_name = "ADDR", default_value = config::DEFAULT_METRICS_ADDR)]
    pub metrics_addr: String,
    /// Tests only: SIGUSR2 stops the agent's kernel watch, so /healthz can be seen to fail.
    #[arg(long, hide = true)]
    pub test_hooks: bool,
    /// Enforce Kubernetes NetworkPolicy on this node (watching Pods, Namespaces and
    /// NetworkPolicies). `--network-policy=false` removes the policy table: every pod can
    /// reach every pod.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub network_policy: bool,
}

/// `--backend`, as the command line spells it ([`Backend`] is the routing model's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Direct routes where the peer is on-link, VXLAN elsewhere.
    #[default]
    Auto,
    /// Direct routes only: a peer that is not on-link is left unrouted (and said so).
    Direct,
    /// VXLAN for every peer, on-link or not.
    Vxlan,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Auto => Backend::Auto,
            BackendArg::Direct => Backend::Direct,
            BackendArg::Vxlan => Backend::Vxlan,
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct SetupArgs {
    /// This node's pod CIDR; give it twice (or comma-separated) for dual-stack: one IPv4, one IPv6.
    #[arg(long = "pod-cidr", value_name = "CIDR", value_delimiter = ',')]
    pub pod_cidr: Vec<String>,
    #[command(flatten)]
    pub setup: NodeFlags,
    /// Read the pod CIDR(s) from this node's spec.podCIDRs in the Kubernetes API, waiting until
    /// the controller-manager has assigned them.
    #[arg(long, conflicts_with = "pod_cidr")]
    pub from_kubernetes: bool,
    #[command(flatten)]
    pub kube: KubeFlags,
    /// Give up waiting for a podCIDR after this many seconds (default: wait as long as it takes).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
    /// Keep running as the node agent, as `node agent` does (the DaemonSet's mode): watch every
    /// Node, set this node up for its podCIDR whenever it changes, route to every other node's
    /// podCIDR (direct or VXLAN, see --backend), and resync every --resync seconds. Stops on
    /// SIGTERM/SIGINT.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub agent: AgentFlags,
}

/// `node agent`: the DaemonSet's main container (what `node setup --from-kubernetes --watch`
/// runs too).
#[derive(Args, Clone, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    pub setup: NodeFlags,
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(flatten)]
    pub agent: AgentFlags,
}

#[derive(Args, Clone, Debug)]
pub struct TeardownArgs {
    /// Where setup recorded what it did.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// The --conf-dir setup was given; refused if the state records another.
    #[arg(long, value_name = "DIR")]
    pub conf_dir: Option<PathBuf>,
    /// The --bridge setup was given; refused if the state records another.
    #[arg(long, value_name = "NAME")]
    pub bridge: Option<String>,
    /// Where the node's /proc/sys is.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_SYSCTL_DIR)]
    pub sysctl_dir: PathBuf,
    /// Delete the bridge even with pods still attached (they lose their network).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Clone, Debug)]
pub struct InstallArgs {
    /// Directory holding the podwire binaries (default: the one this program runs from).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// The node's CNI plugin directory.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_CNI_BIN_DIR)]
    pub to: PathBuf,
    /// Remove the podwire binaries from the directory instead (uninstall).
    #[arg(long, conflicts_with = "from")]
    pub remove: bool,
}

impl NodeFlags {
    /// The node config with the pod CIDRs given (from the flags, or from Kubernetes).
    pub fn node_config(&self, pod_cidrs: Vec<IpNet>) -> Result<NodeConfig> {
        let mut c = NodeConfig::new(pod_cidrs, parse_cidrs("cluster CIDR", &self.cluster_cidr)?);
        c.bridge = self.bridge.clone();
        c.network = self.network.clone();
        c.conf_dir = self.conf_dir.clone();
        c.conf_file = self.conf_file.clone();
        c.mtu = self.mtu;
        c.state_dir = self.state_dir.clone();
        c.sysctl_dir = self.sysctl_dir.clone();
        c.cni_bin_dir = self.cni_bin_dir.clone();
        c.ipam_data_dir = self.ipam_data_dir.clone();
        Ok(c)
    }
}

fn parse_cidrs(what: &str, v: &[String]) -> Result<Vec<IpNet>> {
    v.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| config::parse_cidr(what, s))
        .collect()
}

impl AgentArgs {
    /// The agent's typed config: everything checked that can be before it starts.
    #[cfg(feature = "kubernetes")]
    pub fn config(&self) -> Result<AgentConfig> {
        agent_config(&self.setup, &self.kube, &self.agent)
    }
}

#[cfg(feature = "kubernetes")]
fn agent_config(setup: &NodeFlags, kube: &KubeFlags, a: &AgentFlags) -> Result<AgentConfig> {
    let mut c = AgentConfig::new(setup.node_config(Vec::new())?);
    if c.setup.cluster_cidrs.is_empty() {
        return Err(Error::invalid_config(
            "the agent routes only pod CIDRs inside the cluster's: give --cluster-cidr",
        ));
    }
    c.node = kube.node.clone();
    c.kubeconfig = kube.kubeconfig.clone();
    c.routing = peers::Options {
        backend: a.backend.into(),
        vni: a.vxlan_vni,
        port: a.vxlan_port,
        cluster_cidrs: c.setup.cluster_cidrs.clone(),
    };
    // The pods' MTU leaves room for VXLAN unless no peer can ever be reached over it.
    c.setup.vxlan = c.routing.backend != peers::Backend::Direct;
    c.resync = std::time::Duration::from_secs(a.resync);
    c.watch_timeout = std::time::Duration::from_secs(a.watch_timeout.into());
    c.cni_cache_dir = a.cni_cache_dir.clone();
    c.metrics_addr = match a.metrics_addr.trim() {
        "" => None,
        s => Some(s.parse().map_err(|e| {
            Error::invalid_config(format!(
                "--metrics-addr {s:?}: {e} (an ADDRESS:PORT such as 127.0.0.1:9799, or \"\")"
            ))
        })?),
    };
    c.test_hooks = a.test_hooks;
    c.network_policy = a.network_policy;
    Ok(c)
}

impl SetupArgs {
    /// `--watch` follows the Node objects: it needs `--from-kubernetes`.
    fn pod_cidrs_check(&self) -> Result<()> {
        if self.watch && !self.from_kubernetes {
            return Err(Error::invalid_config(
                "--watch follows the Node objects in Kubernetes: it needs --from-kubernetes",
            ));
        }
        Ok(())
    }

    fn pod_cidrs(&self) -> Result<Vec<IpNet>> {
        self.pod_cidrs_check()?;
        if !self.from_kubernetes {
            if self.pod_cidr.is_empty() {
                return Err(Error::invalid_config(
                    "give --pod-cidr CIDR (twice for dual-stack), or --from-kubernetes",
                ));
            }
            return parse_cidrs("pod CIDR", &self.pod_cidr);
        }
        from_kubernetes(self)
    }
}

#[cfg(feature = "kubernetes")]
fn from_kubernetes(a: &SetupArgs) -> Result<Vec<IpNet>> {
    use crate::kubernetes::{default_node_name, fetch_pod_cidrs, Fetch};
    let node = match &a.kube.node {
        Some(n) if !n.is_empty() => n.clone(),
        _ => default_node_name()?,
    };
    let mut f = Fetch::new(node);
    f.kubeconfig = a.kube.kubeconfig.clone();
    f.wait = a.wait.map(std::time::Duration::from_secs);
    fetch_pod_cidrs(&f, &mut |m| eprintln!("podwire node: {m}"))
}

#[cfg(not(feature = "kubernetes"))]
fn from_kubernetes(_: &SetupArgs) -> Result<Vec<IpNet>> {
    from_kubernetes_unavailable()
}

#[cfg(not(feature = "kubernetes"))]
fn from_kubernetes_unavailable<T>() -> Result<T> {
    Err(Error::invalid_config(
        "--from-kubernetes: this build has no Kubernetes client (feature \"kubernetes\" of podwire-node)",
    ))
}

/// `node setup`: applies once and returns the summary. With `--watch` it is `node agent`.
pub fn run_setup(a: &SetupArgs) -> Result<String> {
    if a.watch {
        a.pod_cidrs_check()?;
        return run_agent_with(&a.setup, &a.kube, &a.agent);
    }
    if a.from_kubernetes {
        // As a container's PID 1 a default SIGTERM would be ignored: stop on it while waiting.
        stop::install();
    }
    let config = a.setup.node_config(a.pod_cidrs()?)?;
    let _busy = stop::Busy::enter();
    Ok(setup::setup(config)?.summary())
}

/// `node agent`: runs until SIGTERM/SIGINT.
pub fn run_agent(a: &AgentArgs) -> Result<String> {
    run_agent_with(&a.setup, &a.kube, &a.agent)
}

#[cfg(feature = "kubernetes")]
fn run_agent_with(setup: &NodeFlags, kube: &KubeFlags, a: &AgentFlags) -> Result<String> {
    crate::agent::run(&agent_config(setup, kube, a)?)
}

#[cfg(not(feature = "kubernetes"))]
fn run_agent_with(_: &NodeFlags, _: &KubeFlags, _: &AgentFlags) -> Result<String> {
    from_kubernetes_unavailable()
}

/// `node teardown`: removes what setup recorded; returns the summary.
pub fn run_teardown(a: &TeardownArgs) -> Result<String> {
    let o = setup::teardown(&TeardownOptions {
        state_dir: a.state_dir.clone(),
        sysctl_dir: a.sysctl_dir.clone(),
        force: a.force,
        conf_dir: a.conf_dir.clone(),
        bridge: a.bridge.clone(),
    })?;
    Ok(o.summary())
}

/// `node install-cni`: copies the plugin binaries into the CNI bin directory (or removes them).
pub fn run_install(a: &InstallArgs) -> Result<String> {
    if a.remove {
        let removed = crate::install::remove_binaries(&a.to, crate::install::BINARIES)?;
        return Ok(if removed.is_empty() {
            format!("no podwire binaries in {}: nothing changed", a.to.display())
        } else {
            format!("removed {} from {}", removed.join(", "), a.to.display())
        });
    }
    let from = match &a.from {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(PathBuf::from))
            .ok_or_else(|| Error::io("cannot tell where this program runs from: give --from"))?,
    };
    let copied = crate::install::install_binaries(&from, &a.to, crate::install::BINARIES)?;
    Ok(if copied.is_empty() {
        format!(
            "podwire binaries in {} are up to date: nothing changed",
            a.to.display()
        )
    } else {
        format!("installed {} into {}", copied.join(", "), a.to.display())
    })
}

/// SIGTERM/SIGINT during a one-shot `node setup`: exit at once while waiting for the podCIDR
/// (nothing half-done); while the setup runs, let it finish (its steps are recorded one by one,
/// but a bridge made and not yet recorded would be adopted as someone else's by the next run)
/// and end as it would have anyway. The agent handles its signals in its own loop.
mod stop {
    use std::sync::atomic::{AtomicBool, Ordering};

    static BUSY: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        if !BUSY.load(Ordering::SeqCst) {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(0) };
        }
    }

    pub fn install() {
        for sig in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: the handler only reads an atomic and calls _exit.
            unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
        }
    }

    pub struct Busy;

    impl Busy {
        pub fn enter() -> Busy {
            BUSY.store(true, Ordering::SeqCst);
            Busy
        }
    }

    impl Drop for Busy {
        fn drop(&mut self) {
            BUSY.store(false, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Setup {
        #[command(flatten)]
        a: SetupArgs,
    }

    #[derive(Parser)]
    struct Teardown {
        #[command(flatten)]
        a: TeardownArgs,
    }

    fn parse(args: &[&str]) -> std::result::Result<SetupArgs, clap::Error> {
        Setup::try_parse_from(std::iter::once("setup").chain(args.iter().copied())).map(|s| s.a)
    }

    #[derive(Parser)]
    struct Agent {
        #[command(flatten)]
        a: AgentArgs,
    }

    #[derive(Parser)]
    struct Install {
        #[command(flatten)]
        a: InstallArgs,
    }

    #[test]
    fn the_commands_are_well_formed() {
        Setup::command().debug_assert();
        Agent::command().debug_assert();
        Teardown::command().debug_assert();
        Install::command().debug_assert();
    }

    #[test]
    fn install_and_remove_through_the_options() {
        let base = std::env::temp_dir().join(format!("podwire-node-cli-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(&from).unwrap();
        for n in crate::install::BINARIES {
            std::fs::write(from.join(n), b"x").unwrap();
        }
        let (f, t) = (from.display().to_string(), to.display().to_string());
        let a = Install::parse_from(["i", "--from", &f, "--to", &t]).a;
        assert!(run_install(&a)
            .unwrap()
            .starts_with("installed podwire, podwire-ipam"));
        assert!(run_install(&a).unwrap().contains("nothing changed"));
        let r = Install::parse_from(["i", "--to", &t, "--remove"]).a;
        assert!(run_install(&r)
            .unwrap()
            .starts_with("removed podwire, podwire-ipam"));
        assert!(!to.join("podwire").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn flags_become_the_node_config() {
        let a = parse(&[
            "--pod-cidr",
            "10.244.1.0/24,fd00:1::/64",
            "--cluster-cidr",
            "10.244.0.0/16",
            "--cluster-cidr",
            "fd00::/48",
            "--bridge",
            "br9",
            "--mtu",
            "1400",
        ])
        .unwrap();
        let c = a.setup.node_config(a.pod_cidrs().unwrap()).unwrap();
        assert_eq!(c.pod_cidrs.len(), 2);
        assert_eq!(c.cluster_cidrs.len(), 2);
        assert_eq!((c.bridge.as_str(), c.mtu), ("br9", Some(1400)));
        assert_eq!(c.conf_dir, PathBuf::from("/etc/cni/net.d"));
    }

    #[test]
    fn usage_mistakes_are_refused() {
        // --watch only makes sense with a podCIDR that can change.
        let a = parse(&[
            "--pod-cidr",
            "10.1.0.0/24",
            "--cluster-cidr",
            "10.0.0.0/8",
            "--watch",
        ]);
        assert!(a
            .unwrap()
            .pod_cidrs()
            .unwrap_err()
            .msg
            .contains("--from-kubernetes"));
        assert!(parse(&[
            "--pod-cidr",
            "10.1.0.0/24",
            "--cluster-cidr",
            "10.0.0.0/8",
            "--from-kubernetes"
        ])
        .is_err());
        let a = parse(&["--cluster-cidr", "10.0.0.0/8"]).unwrap();
        assert!(a.pod_cidrs().unwrap_err().msg.contains("--pod-cidr"));
        let a = parse(&["--pod-cidr", "10.1.0.0/33", "--cluster-cidr", "10.0.0.0/8"]).unwrap();
        let e = a.pod_cidrs().unwrap_err();
        assert_eq!(e.code.number(), 7);
        assert!(e.msg.contains("10.1.0.0/33"), "{e}");
    }

    /// `node agent` takes the flags `node setup --from-kubernetes --watch` takes for the agent,
    /// and they become its typed config (cluster CIDRs parsed, the backend the model's own).
    #[cfg(feature = "kubernetes")]
    #[test]
    fn agent_flags_become_the_agent_config() {
        let args = [
            "--node",
            "n1",
            "--cluster-cidr",
            "10.244.0.0/16,fd00::/48",
            "--bridge",
            "br9",
            "--conf-dir",
            "/x/net.d",
            "--state-dir",
            "/x/state",
            "--ipam-data-dir",
            "/x/ipam",
            "--cni-bin-dir",
            "/x/bin",
            "--resync",
            "5",
            "--backend",
            "vxlan",
            "--vxlan-port",
            "4789",
        ];
        let a = Agent::try_parse_from(std::iter::once("agent").chain(args)).unwrap();
        let c = a.a.config().unwrap();
        assert_eq!(c.node.as_deref(), Some("n1"));
        assert_eq!(
            c.setup.cluster_cidrs,
            vec![
                "10.244.0.0/16".parse::<IpNet>().unwrap(),
                "fd00::/48".parse().unwrap()
            ]
        );
        assert!(c.setup.pod_cidrs.is_empty(), "they come from the Node");
        assert_eq!(c.setup.bridge, "br9");
        assert_eq!(c.setup.ipam_data_dir.as_deref(), Some("/x/ipam"));
        assert_eq!(c.routing.backend, Backend::Vxlan);
        assert_eq!((c.routing.vni, c.routing.port), (1, 4789));
        assert_eq!(c.routing.cluster_cidrs, c.setup.cluster_cidrs);
        assert_eq!(c.resync, std::time::Duration::from_secs(5));
        assert!(c.network_policy, "enforced by default");
        let off = Agent::try_parse_from([
            "agent",
            "--cluster-cidr",
            "10.0.0.0/8",
            "--network-policy=false",
        ])
        .unwrap();
        assert!(!off.a.config().unwrap().network_policy);
        // The same flags after `node setup --from-kubernetes --watch` give the same config.
        let s = parse(
            &["--from-kubernetes", "--watch"]
                .into_iter()
                .chain(args)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let c2 = agent_config(&s.setup, &s.kube, &s.agent).unwrap();
        assert_eq!(format!("{c:?}"), format!("{c2:?}"));
        let bad = Agent::try_parse_from(["agent", "--cluster-cidr", "10.244.0.0/33"]).unwrap();
        let e = bad.a.config().unwrap_err();
        assert_eq!(e.code.number(), 7);
        assert!(e.msg.contains("10.244.0.0/33"), "{e}");
        // The listener: on the node's loopback unless told, off with "".
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9799".parse().unwrap()));
        assert!(!c.test_hooks);
        let with = |v: &str| {
            Agent::try_parse_from(["agent", "--cluster-cidr", "10.0.0.0/8", "--metrics-addr", v])
                .unwrap()
                .a
                .config()
        };
        assert_eq!(
            with("0.0.0.0:9100").unwrap().metrics_addr,
            Some("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(with("").unwrap().metrics_addr, None);
        let e = with("localhost").unwrap_err();
        assert!(e.msg.contains("--metrics-addr"), "{e}");
        // Flags the one-shot setup has and the agent has not.
        for f in [
            &["--pod-cidr", "10.244.1.0/24"][..],
            &["--wait", "1"],
            &["--watch"],
            &["--from-kubernetes"],
        ] {
            let argv = ["agent", "--cluster-cidr", "10.0.0.0/8"]
                .into_iter()
                .chain(f.iter().copied());
            let e = Agent::try_parse_from(argv).err().expect("refused");
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{f:?}");
        }
    }
}
