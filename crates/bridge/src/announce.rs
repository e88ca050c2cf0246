//! After ADD: tell the pod's neighbours (the gateway, other pods) that its addresses are now at
//! its MAC. An address a deleted pod had is otherwise sent to the dead MAC by every neighbour
//! whose entry is still REACHABLE, for up to the kernel's reachable time (15–45 s).
//!
//! A packet sent before the link can carry it is dropped silently (the veth's queue is only
//! attached, and the bridge port only forwards, once the kernel's linkwatch has seen the
//! carrier come up: asynchronously, right after the pod end is set up). So the announcement
//! waits until both ends report operstate UP; by the end of ADD they nearly always do, and the
//! wait is then one GETLINK each. Best effort: a failure is logged, the ADD stands.

use kernel::{MacAddr, Netlink, Netns, OperState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long to wait for the link at most (linkwatch runs within microseconds normally).
const READY_WITHIN: Duration = Duration::from_millis(50);

pub struct Ends<'a> {
    pub host: &'a Netlink,
    pub host_index: u32,
    pub pod: &'a Netlink,
    pub pod_ns: &'a Netns,
    pub pod_index: u32,
}

pub fn announce(ends: &Ends, mac: MacAddr, ips: &[IpAddr]) {
    if !ready(ends) {
        cni::log::warn(&format!(
            "pod interface not up within {READY_WITHIN:?}: addresses not announced"
        ));
        return;
    }
    if let Err(e) = kernel::announce(ends.pod_ns, ends.pod_index, mac, ips) {
        cni::log::warn(&format!(
            "{e}: neighbours keep their cached MAC until it expires"
        ));
    }
}

fn ready(ends: &Ends) -> bool {
    let up = |nl: &Netlink, index: u32| nl.link(index).is_ok_and(|l| l.oper_state == OperState::Up);
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if up(ends.pod, ends.pod_index) && up(ends.host, ends.host_index) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
