//! The policy controller on the kernel: its [`Table`] is the table `inet podwire-policy` the
//! kernel layer ([`crate::policy`]) writes, and the plugin's announcements of new pods are
//! heard on a thread of their own ([`crate::policy::watch_unclassified`]).

use super::metrics::Metrics;
use super::policy::{
    DropCounters, KernelAddresses, NodeAddresses, Policies, PolicyController, Table,
};
use super::policy_cache::Announced;
use super::policy_metrics::PolicyMetrics;
use super::{log, AgentConfig};
use crate::kubernetes::backoff;
use crate::policy::{watch_unclassified, PolicyTable, Unclassified};
use cni::{Error, Result};
use policy::{Plan, Ruleset};
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::mpsc;

impl Table for PolicyTable {
    fn ensure_structure(&self) -> Result<()> {
        PolicyTable::ensure_structure(self)
    }
    fn read(&self) -> Result<Ruleset> {
        PolicyTable::read(self)
    }
    fn apply(&self, plan: &Plan) -> Result<()> {
        PolicyTable::apply(self, plan)
    }
    fn unclassified(&self) -> Result<Vec<Announced>> {
        Ok(PolicyTable::unclassified(self)?
            .into_iter()
            .map(announced)
            .collect())
    }
    fn mark_classified(&self, addrs: &[IpAddr]) -> Result<()> {
        PolicyTable::mark_classified(self, addrs)
    }
}

fn announced(u: Unclassified) -> Announced {
    Announced {
        addr: u.addr,
        namespace: u.namespace,
        name: u.name,
        uid: u.uid,
    }
}

/// The controller, its table opened and set up, and the thread that kicks `announced` whenever
/// the bridge plugin announces a pod at its ADD.
impl DropCounters for PolicyTable {
    fn counters(&self) -> Result<std::collections::BTreeMap<String, (u64, u64)>> {
        PolicyTable::counters(self)
    }
}

pub fn start(
    cfg: &AgentConfig,
    announced: mpsc::UnboundedSender<()>,
    metrics: &Metrics,
) -> Result<Policies> {
    let table = PolicyTable::open()?;
    // Before the lists are in: the structure only (pods announced meanwhile stay denied).
    table.ensure_structure()?;
    if !table.same_node_enforced() {
        log(
            "NetworkPolicy: traffic between pods of this node is not judged: load br_netfilter \
             and set net.bridge.bridge-nf-call-iptables=1 and -ip6tables=1 on the node",
        );
    }
    spawn_watch(announced)?;
    let nl = kernel::Netlink::new().map_err(|e| Error::io(e.to_string()))?;
    let mut controller = PolicyController::new(
        Box::new(table) as Box<dyn Table>,
        Box::new(KernelAddresses(nl)) as Box<dyn NodeAddresses>,
        cfg.policy,
    );
    controller.state_file = Some(cfg.setup.state_dir.join(super::policy::STATE_FILE));
    // A handle of its own for the drop counters (the controller's is behind its trait).
    let counters = PolicyTable::open()?;
    Ok(Policies {
        controller,
        metrics: Some((
            PolicyMetrics::register(metrics),
            Box::new(counters) as Box<dyn DropCounters>,
        )),
    })
}

/// A thread blocking on the unclassified sets' notifications; each announcement kicks the loop
/// (the pass itself reads what is unclassified). A receive error reopens the watch (with
/// backoff) and kicks, since announcements may have been missed.
fn spawn_watch(kick: mpsc::UnboundedSender<()>) -> Result<()> {
    let mut w = watch_unclassified()?;
    std::thread::Builder::new()
        .name("unclassified-watch".into())
        .spawn(move || loop {
            match w.recv() {
                Ok(_) => {
                    if kick.send(()).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    log(&format!("unclassified watch: {}: reopening it", e.msg));
                    let mut delays = backoff(Duration::from_millis(100), Duration::from_secs(10));
                    w = loop {
                        if kick.is_closed() {
                            return;
                        }
                        match watch_unclassified() {
                            Ok(w) => break w,
                            Err(e) => {
                                log(&format!("unclassified watch: reopen: {}", e.msg));
                                std::thread::sleep(delays.next().expect("endless"));
                            }
                        }
                    };
                    if kick.send(()).is_err() {
                        return;
                    }
                }
            }
        })
        .map_err(|e| Error::io(format!("start the unclassified watch: {e}")))?;
    Ok(())
}

/// `--network-policy=false`: the table goes, and with it every verdict; true if it was there.
pub fn remove() -> Result<bool> {
    PolicyTable::open()?.remove()
}
