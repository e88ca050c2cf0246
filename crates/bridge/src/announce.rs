//! After ADD: tell the pod's neighbours (the gateway, other pods) that its addresses are now at
//! its MAC. An address a deleted pod had is otherwise sent to the dead MAC by every neighbour
//! whose entry is still REACHABLE, for up to the kernel's reachable time (15–45 s).
//!
//! The kernel sends the announcements itself: with `arp_notify` and `ndisc_notify` on the pod's
//! interface, a change of its MAC makes it send a gratuitous ARP request for each IPv4 address
//! and an unsolicited neighbour advertisement, override flag set, for each IPv6 address that is
//! not tentative (ours are added without DAD, so all of them). Setting the MAC to itself counts
//! as a change. `arp_notify` is set in the request that brings the pod end up (add.rs);
//! `ndisc_notify` has no netlink setter, so it is a sysctl write in the pod's netns, for pods
//! with an IPv6 address only. An AF_PACKET socket of our own would cost an RCU grace period on
//! close (~12 ms measured here, most of an ADD).
//!
//! Only once the link can carry them: the pod end's queue is attached when it comes up (its peer
//! is up already), but the bridge only forwards from the host end once the kernel's linkwatch has
//! seen that end's carrier come up. A GETLINK of a device runs its pending linkwatch work (Linux
//! 6.7+), so asking for the host end's operstate is what makes it ready; older kernels are polled
//! a little. Best effort: a failure is logged, the ADD stands.

use kernel::{sysctl, MacAddr, Netlink, Netns, OperState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long to wait for the link at most (on kernels that do not sync it on GETLINK).
const READY_WITHIN: Duration = Duration::from_millis(50);

pub struct Ends<'a> {
    pub host: &'a Netlink,
    pub host_index: u32,
    pub pod: &'a Netlink,
    pub pod_ns: &'a Netns,
    pub pod_index: u32,
    pub pod_ifname: &'a str,
}

pub fn announce(ends: &Ends, mac: MacAddr, ips: &[IpAddr]) {
    if ips.is_empty() {
        return;
    }
    if !ready(ends) {
        cni::log::warn(&format!(
            "bridge port not forwarding within {READY_WITHIN:?}: addresses not announced"
        ));
        return;
    }
    if let Err(e) = kernel_announces(ends, mac, ips) {
        cni::log::warn(&format!(
            "announcing the addresses: {e}: neighbours keep a cached MAC until it expires"
        ));
    }
}

fn kernel_announces(ends: &Ends, mac: MacAddr, ips: &[IpAddr]) -> kernel::Result<()> {
    if ips.iter().any(IpAddr::is_ipv6) {
        let key = sysctl::ipv6_conf(ends.pod_ifname, "ndisc_notify");
        sysctl::write_in(ends.pod_ns, &key, "1")?;
    }
    ends.pod.link_set_mac(ends.pod_index, mac)
}

fn ready(ends: &Ends) -> bool {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let up = ends.host.link(ends.host_index);
        if up.is_ok_and(|l| l.oper_state == OperState::Up) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
