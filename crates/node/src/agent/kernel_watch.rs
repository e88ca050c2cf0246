//! The kernel watch: rtnetlink notifications read on a thread of its own. Anything that may undo
//! the agent's work (a deleted route of its own, a link it depends on flapping, an address
//! change) kicks the loop; pods starting and stopping do not.

use cni::{Error, Result};
use kernel::{KernelEvent, Monitor};
use std::collections::HashSet;
use tokio::sync::mpsc;

/// A thread reading rtnetlink notifications in this netns; anything that may undo the agent's
/// work kicks the loop.
pub fn spawn(kick: mpsc::UnboundedSender<()>, watched: WatchedLinks) -> Result<()> {
    let mut mon = Monitor::new().map_err(|e| Error::io(e.to_string()))?;
    std::thread::Builder::new()
        .name("kernel-watch".into())
        .spawn(move || loop {
            let Ok(events) = mon.recv() else { return };
            let links = watched.get();
            if events.iter().any(|e| relevant(e, &links)) && kick.send(()).is_err() {
                return;
            }
        })
        .map_err(|e| Error::io(format!("start the kernel watch: {e}")))?;
    Ok(())
}

/// The links the last reconcile depended on (the underlay, podwire's VXLAN devices), shared
/// with the kernel-watch thread.
#[derive(Clone, Default)]
pub struct WatchedLinks(std::sync::Arc<std::sync::Mutex<HashSet<u32>>>);

impl WatchedLinks {
    pub fn set(&self, links: &[u32]) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = links.iter().copied().collect();
    }

    pub fn get(&self) -> HashSet<u32> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Whether a notification can mean the agent's work was undone. Pods starting and stopping
/// (their veths, their neighbour entries on the bridge) never do, so they cost no reconcile.
fn relevant(e: &KernelEvent, links: &HashSet<u32>) -> bool {
    match e {
        // A link that flapped loses its routes silently (IPv4 sends no RTM_DELROUTE for them).
        KernelEvent::Link { index, .. } => links.contains(index),
        // An address decides what is on-link and where VXLAN leaves from (a new uplink counts).
        KernelEvent::Address { .. } | KernelEvent::Overflow => true,
        KernelEvent::Route {
            protocol, deleted, ..
        } => *deleted && *protocol == crate::peers::ROUTE_PROTOCOL,
        KernelEvent::Neighbour { ifindex, deleted } => *deleted && links.contains(ifindex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_churn_is_not_a_reason_to_reconcile() {
        let links: HashSet<u32> = [2, 10].into_iter().collect(); // eth0, podwire.vxlan
        let link = |index, deleted| KernelEvent::Link { index, deleted };
        assert!(relevant(&link(2, false), &links), "the underlay flapped");
        assert!(!relevant(&link(57, false), &links), "a pod's veth came up");
        assert!(!relevant(&link(57, true), &links), "a pod's veth went");
        let neigh = |ifindex, deleted| KernelEvent::Neighbour { ifindex, deleted };
        assert!(
            relevant(&neigh(10, true), &links),
            "a VXLAN peer's entry was removed"
        );
        assert!(
            !relevant(&neigh(5, true), &links),
            "an entry on the pod bridge aged out"
        );
        let route = |protocol, deleted| KernelEvent::Route {
            dst: None,
            protocol,
            deleted,
        };
        assert!(relevant(&route(157, true), &links));
        assert!(!relevant(&route(2, true), &links));
        let addr = KernelEvent::Address {
            index: 99,
            deleted: false,
        };
        assert!(
            relevant(&addr, &links),
            "any address may change what is on-link"
        );
    }
}
