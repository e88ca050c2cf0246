//! `node setup|agent|teardown|install-cni|show`: the node's own options and runners live in
//! `node::cli` (and `inspect` for `show`); this routes to them and prints their summary.

use super::inspect;
use crate::{print_json, Failure};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum NodeCmd {
    /// From the node's podCIDR to a conflist, a bridge, forwarding and masquerade.
    #[command(after_help = "Examples:\n  \
        podwirectl node setup --pod-cidr 10.244.1.0/24 --cluster-cidr 10.244.0.0/16\n  \
        podwirectl node setup --from-kubernetes --watch --cluster-cidr 10.244.0.0/16")]
    Setup(Box<node::cli::SetupArgs>),
    /// The node agent (the DaemonSet's main container): watches every Node, keeps this node set
    /// up for its podCIDR and routed to every other node's pod CIDR; stops on SIGTERM/SIGINT.
    #[command(after_help = "Example:\n  \
        podwirectl node agent --node worker-1 --kubeconfig /etc/kubernetes/kubelet.conf --cluster-cidr 10.244.0.0/16")]
    Agent(Box<node::cli::AgentArgs>),
    /// Remove exactly what setup created.
    #[command(after_help = "Examples:\n  \
        podwirectl node teardown\n  \
        podwirectl node teardown --bridge pw0 --conf-dir /etc/cni/net.d   # refused unless setup made these")]
    Teardown(node::cli::TeardownArgs),
    /// Copy the podwire plugin binaries into the CNI bin directory (or --remove them).
    #[command(after_help = "Examples:\n  \
        podwirectl node install-cni --from ./target/release --to /opt/cni/bin\n  \
        podwirectl node install-cni --remove")]
    InstallCni(node::cli::InstallArgs),
    /// What podwire built on this node: bridges, pods, IPAM use, routes out, rules, problems.
    #[command(after_help = "Examples:\n  \
        podwirectl node show\n  \
        podwirectl node show --network k8s-pod-network --svg node.svg")]
    Show(inspect::ShowArgs),
}

pub fn run(cmd: &NodeCmd, as_json: bool) -> Result<(), Failure> {
    let summary = match cmd {
        NodeCmd::Show(a) => return inspect::show(a, as_json),
        NodeCmd::Setup(a) => node::cli::run_setup(a),
        NodeCmd::Agent(a) => node::cli::run_agent(a),
        NodeCmd::Teardown(a) => node::cli::run_teardown(a),
        NodeCmd::InstallCni(a) => node::cli::run_install(a),
    }
    .map_err(runtime::Error::new)?;
    if as_json {
        print_json(&json!({ "summary": summary }));
    } else {
        println!("{summary}");
    }
    Ok(())
}
