//! After ADD: tell the pod's neighbours (the gateway, other pods) that its addresses are now at
//! its MAC. An address a deleted pod had is otherwise sent to the dead MAC by every neighbour
//! whose entry is still REACHABLE, for up to the kernel's reachable time (15–45 s).
//!
//! The kernel sends the announcements itself: with `arp_notify` and `ndisc_notify` on the pod's
//! interface, a change of its MAC makes it send a gratuitous ARP request for each IPv4 address
//! and an unsolicited neighbour advertisement, override flag set, for each IPv6 address that is
//! not tentative (ours are added without DAD, so all of them). Setting the MAC to itself counts
//! as a change. That is one SETLINK; an AF_PACKET socket of our own would cost an RCU grace
//! period on close (~12 ms measured here, most of an ADD).
//!
//! Only once the link can carry them: until the kernel's linkwatch has seen the carrier come up,
//! the veth has no queue (a packet is dropped silently) and the bridge port does not forward. A
//! GETLINK of a device runs its pending linkwatch work (Linux 6.7+), so asking for both ends'
//! operstate is what makes them ready; older kernels are polled a little. Best effort: a failure
//! is logged, the ADD stands.

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
            "pod interface not up within {READY_WITHIN:?}: addresses not announced"
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
    let mut keys = Vec::new();
    if ips.iter().any(IpAddr::is_ipv4) {
        keys.push(sysctl::ipv4_conf(ends.pod_ifname, "arp_notify"));
    }
    if ips.iter().any(IpAddr::is_ipv6) {
        keys.push(sysctl::ipv6_conf(ends.pod_ifname, "ndisc_notify"));
    }
    ends.pod_ns
        .run(|| keys.iter().try_for_each(|k| sysctl::write(k, "1")))??;
    ends.pod.link_set_mac(ends.pod_index, mac)
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
