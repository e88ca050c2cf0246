//! The kernel floor: the kernel work of one pod ADD/DEL done in-process through the `kernel`
//! crate, with no plugin logic (no process, no config, no IPAM files, no checks). ADD opens the
//! pod netns, creates the veth pair with its peer born in the netns as eth0 and the host end
//! attached to the bridge and up (one request), brings eth0 up, adds its address and the default
//! route; DEL deletes eth0 through the pod netns. The same kernel objects the plugins create.
//! The bridge and its gateway address are set up once, untimed (a plugin does that on its first
//! ADD only).

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use kernel::ipnet::{IpNet, Ipv4Net};
use kernel::{AddressOptions, BridgeSpec, Netlink, Netns, Route, VethSpec};

use crate::scene::Pod;
use crate::subjects::{nth_host, Sample, Subject, IFNAME};

pub struct KernelFloor {
    host: Netlink,
    bridge: u32,
    gateway: Ipv4Addr,
    subnet: Ipv4Net,
    /// Next host number to hand out (2, 3, ...: .1 is the gateway); never reused.
    next: Cell<u32>,
}

impl KernelFloor {
    /// Creates the bridge (up) with the gateway address, in the calling thread's netns.
    pub fn new(bridge: &str, subnet: &str) -> KernelFloor {
        let host = Netlink::new().expect("rtnetlink socket");
        let link = host
            .ensure_bridge(&BridgeSpec::new(bridge).up())
            .unwrap_or_else(|e| panic!("floor bridge {bridge}: {e}"));
        let net: Ipv4Net = subnet.parse().expect("valid subnet");
        let gateway = nth_host(subnet, 1);
        let gw = IpNet::new(IpAddr::V4(gateway), net.prefix_len()).expect("valid prefix");
        match host.address_add(link.index, gw) {
            Err(e) if !e.is_exists() => panic!("floor gateway {gw}: {e}"),
            _ => {}
        }
        KernelFloor {
            host,
            bridge: link.index,
            gateway,
            subnet: net,
            next: Cell::new(2),
        }
    }

    fn next_address(&self) -> Ipv4Addr {
        let n = self.next.get();
        self.next.set(n + 1);
        let ip = Ipv4Addr::from(u32::from(self.subnet.network()) + n);
        assert!(
            self.subnet.contains(&ip),
            "floor subnet {} is full",
            self.subnet
        );
        ip
    }

    fn host_veth(&self, n: u32) -> String {
        format!("vfl{:x}x{n}", self.bridge)
    }
}

impl Subject for KernelFloor {
    fn label(&self) -> &'static str {
        "kernel floor"
    }

    fn add(&self, pod: &Pod) -> Sample {
        crate::scene::check_interrupted();
        let ip = self.next_address();
        let addr = IpNet::new(IpAddr::V4(ip), self.subnet.prefix_len()).expect("valid prefix");
        let host_name = self.host_veth(self.next.get());
        let fail = |what: &str, e: kernel::Error| -> ! { panic!("floor {what} {}: {e}", pod.name) };
        let t = Instant::now();
        let c = thread_cpu();
        let ns = Netns::open(&pod.path).unwrap_or_else(|e| fail("open netns", e));
        let in_pod = Netlink::new_in(&ns).unwrap_or_else(|e| fail("pod socket", e));
        let spec = VethSpec::new(host_name, IFNAME)
            .peer_netns(&ns)
            .master(self.bridge)
            .up();
        let pair = self
            .host
            .veth_add(&spec)
            .unwrap_or_else(|e| fail("veth", e));
        let peer = pair.peer_index;
        in_pod
            .link_set_up(peer, true)
            .unwrap_or_else(|e| fail("eth0 up", e));
        let opts = AddressOptions {
            nodad: true,
            ..Default::default()
        };
        in_pod
            .address_add_with(peer, addr, opts)
            .unwrap_or_else(|e| fail("address", e));
        in_pod
            .route_add(&Route::default_via(IpAddr::V4(self.gateway)).dev(peer))
            .unwrap_or_else(|e| fail("route", e));
        Sample {
            elapsed: t.elapsed(),
            cpu: thread_cpu().saturating_sub(c),
            max_rss_kib: None,
        }
    }

    fn del(&self, pod: &Pod) -> Sample {
        crate::scene::check_interrupted();
        let fail = |what: &str, e: kernel::Error| -> ! { panic!("floor {what} {}: {e}", pod.name) };
        let t = Instant::now();
        let c = thread_cpu();
        let ns = Netns::open(&pod.path).unwrap_or_else(|e| fail("open netns", e));
        let in_pod = Netlink::new_in(&ns).unwrap_or_else(|e| fail("pod socket", e));
        in_pod
            .link_delete(IFNAME)
            .unwrap_or_else(|e| fail("delete eth0", e));
        Sample {
            elapsed: t.elapsed(),
            cpu: thread_cpu().saturating_sub(c),
            max_rss_kib: None,
        }
    }
}

/// CPU time of the calling thread so far (user + system).
fn thread_cpu() -> Duration {
    // SAFETY: an all-zero timespec is valid for the kernel to overwrite.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
