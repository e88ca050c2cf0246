//! Hand-built Ethernet frames, sent as an attacker pod would: root in its netns (NET_RAW) writes
//! whatever it likes onto its interface through an AF_PACKET socket. Only what the security
//! tests need: IPv4/UDP, IPv6/UDP, ICMPv6 (router advertisement, neighbour advertisement) and ARP,
//! with correct checksums so the receiver's stack would accept them.

use kernel::{MacAddr, Netns};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
/// ff02::1 (all nodes) as a multicast MAC.
pub const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

pub fn ethernet(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum of `data` (odd length padded with a zero byte).
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(parts: &[&[u8]]) -> u32 {
    parts
        .iter()
        .flat_map(|p| p.chunks(2))
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum()
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop_limit]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// A UDP datagram with its checksum (over the IPv4 or IPv6 pseudo-header).
fn udp(src: &[u8], dst: &[u8], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = (8 + data.len()) as u16;
    let mut u = Vec::with_capacity(len as usize);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    let sum = pseudo_sum(&[src, dst, &[0, 17], &len.to_be_bytes()]);
    let c = match checksum(&u, sum) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// An Ethernet frame carrying a UDP datagram over IPv4 from `src` to `dst`.
pub fn udp4(
    macs: (MacAddr, MacAddr),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ports: (u16, u16),
    data: &[u8],
) -> Vec<u8> {
    let u = udp(&src.octets(), &dst.octets(), ports.0, ports.1, data);
    ethernet(macs.1, macs.0, ETH_P_IP, &ipv4(src, dst, 17, &u))
}

/// An Ethernet frame carrying a UDP datagram over IPv6 from `src` to `dst`.
pub fn udp6(
    macs: (MacAddr, MacAddr),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ports: (u16, u16),
    data: &[u8],
) -> Vec<u8> {
    let u = udp(&src.octets(), &dst.octets(), ports.0, ports.1, data);
    ethernet(macs.1, macs.0, ETH_P_IPV6, &ipv6(src, dst, 17, 64, &u))
}

/// An ICMPv6 message (type, code, body after the checksum) in an IPv6 packet with hop limit 255,
/// as neighbour discovery requires.
pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(body);
    let len = m.len() as u32;
    let sum = pseudo_sum(&[
        &src.octets(),
        &dst.octets(),
        &len.to_be_bytes(),
        &[0, 0, 0, 58],
    ]);
    let c = checksum(&m, sum);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, 58, 255, &m)
}

/// A router advertisement to all nodes: "I am a default router for 30 minutes, and `prefix`/64 is
/// on-link and for autoconfiguration". `from` should be a link-local address.
pub fn router_advert(src_mac: MacAddr, from: Ipv6Addr, prefix: Ipv6Addr) -> Vec<u8> {
    let mut b = vec![64, 0]; // cur hop limit, flags
    b.extend_from_slice(&1800u16.to_be_bytes()); // router lifetime
    b.extend_from_slice(&[0; 8]); // reachable time, retrans timer
                                  // Prefix information: type 3, 4×8 bytes, /64, on-link + autonomous, lifetimes, prefix.
    b.extend_from_slice(&[3, 4, 64, 0xc0]);
    b.extend_from_slice(&86400u32.to_be_bytes());
    b.extend_from_slice(&14400u32.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&prefix.octets());
    // Source link-layer address.
    b.extend_from_slice(&[1, 1]);
    b.extend_from_slice(&src_mac.0);
    let p = icmpv6(from, ALL_NODES, 134, 0, &b);
    ethernet(ALL_NODES_MAC, src_mac, ETH_P_IPV6, &p)
}

/// An unsolicited neighbour advertisement with the override flag, to all nodes: "`target` is at
/// `target_mac`".
pub fn neighbour_advert(
    src_mac: MacAddr,
    from: Ipv6Addr,
    target: Ipv6Addr,
    target_mac: MacAddr,
) -> Vec<u8> {
    let mut b = vec![0x20, 0, 0, 0]; // flags: override
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[2, 1]); // target link-layer address
    b.extend_from_slice(&target_mac.0);
    let p = icmpv6(from, ALL_NODES, 136, 0, &b);
    ethernet(ALL_NODES_MAC, src_mac, ETH_P_IPV6, &p)
}

/// A gratuitous ARP request, broadcast: "`ip` is at `sender_mac`". `src_mac` is the frame's source.
pub fn gratuitous_arp(src_mac: MacAddr, sender_mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&sender_mac.0);
    a.extend_from_slice(&ip.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&ip.octets());
    ethernet(BROADCAST, src_mac, ETH_P_ARP, &a)
}

/// Writes `frame` as it is onto `ifname` inside the netns at `netns` (AF_PACKET, SOCK_RAW): what
/// root in a pod can do. Panics on failure (test helper).
pub fn send(netns: &str, ifname: &str, frame: &[u8]) {
    let ns = Netns::open(netns).expect("open netns");
    ns.run(|| {
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: plain libc calls on a socket we own; the address struct is fully initialised.
        unsafe {
            let index = libc::if_nametoindex(name.as_ptr());
            assert!(index != 0, "no {ifname} in {netns}");
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = index as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&frame[..6]);
            let sent = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            assert_eq!(sent, frame.len() as isize, "send on {ifname}: {err}");
        }
    })
    .expect("enter netns");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies_to_zero() {
        let p = ipv4(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            17,
            &[],
        );
        assert_eq!(checksum(&p[..20], 0), 0);
    }

    #[test]
    fn icmpv6_checksum_verifies_to_zero() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let p = icmpv6(src, ALL_NODES, 136, 0, &[1, 2, 3]);
        let m = &p[40..];
        let sum = pseudo_sum(&[
            &src.octets(),
            &ALL_NODES.octets(),
            &(m.len() as u32).to_be_bytes(),
            &[0, 0, 0, 58],
        ]);
        assert_eq!(checksum(m, sum), 0);
    }
}
