//! Announcing an address that has just moved to a new interface (a new MAC): a gratuitous ARP
//! request for IPv4, an unsolicited neighbour advertisement with the override flag for IPv6, so
//! the neighbours that cached the address' previous MAC replace it at once instead of sending to
//! a dead MAC until their entry expires. One packet each, over sockets made in the interface's
//! netns (AF_PACKET for ARP, a raw ICMPv6 socket for the NA: the kernel adds the IPv6 header
//! and the checksum).

use crate::error::{Error, Result};
use crate::{MacAddr, Netns};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ARP: u16 = 0x0806;
const ARPOP_REQUEST: u16 = 1;
/// ICMPv6 neighbour advertisement; its override flag; the target link-layer address option.
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// Receivers drop neighbour discovery that did not come with the link-local hop limit.
const ND_HOP_LIMIT: libc::c_int = 255;

/// Announces each address of `ips` as now at `mac` on interface `index` of `ns`. The address
/// must be usable (IPv6: not tentative, e.g. added with `nodad`) and the link able to send.
pub fn announce(ns: &Netns, index: u32, mac: MacAddr, ips: &[IpAddr]) -> Result<()> {
    if ips.is_empty() {
        return Ok(());
    }
    let op = "announce address";
    // Sockets belong to the netns they are made in; they are used after switching back.
    let (v4, v6) = ns.run(|| {
        let v4 = ips
            .iter()
            .any(IpAddr::is_ipv4)
            .then(|| socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0))
            .transpose();
        let v6 = ips
            .iter()
            .any(IpAddr::is_ipv6)
            .then(|| socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6))
            .transpose();
        (v4, v6)
    })?;
    let (v4, v6) = (
        v4.map_err(|e| Error::io(op, e))?,
        v6.map_err(|e| Error::io(op, e))?,
    );
    for ip in ips {
        let sent = match (ip, &v4, &v6) {
            (IpAddr::V4(a), Some(fd), _) => gratuitous_arp(fd, index, mac, *a),
            (IpAddr::V6(a), _, Some(fd)) => unsolicited_na(fd, index, mac, *a),
            _ => unreachable!("a socket is made for every family in ips"),
        };
        sent.map_err(|e| Error::io(format!("announce {ip}"), e))?;
    }
    Ok(())
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned from here on.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(n: libc::c_int) -> std::io::Result<()> {
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The ARP request Linux itself sends with `arp_notify`: sender and target address both `ip`,
/// broadcast. Receivers take it as gratuitous and override their entry even within locktime.
fn arp_payload(mac: MacAddr, ip: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    p[8..14].copy_from_slice(&mac.0);
    p[14..18].copy_from_slice(&ip.octets());
    // target hardware address: zero, as in arp_notify's request
    p[24..28].copy_from_slice(&ip.octets());
    p
}

fn gratuitous_arp(fd: &OwnedFd, index: u32, mac: MacAddr, ip: Ipv4Addr) -> std::io::Result<()> {
    let payload = arp_payload(mac, ip);
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = ETH_P_ARP.to_be();
    to.sll_ifindex = index as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: payload and address are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr().cast(),
            payload.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    check(n as libc::c_int)
}

/// ICMPv6 NA (RFC 4861 4.4) for `ip`, override set, solicited not, with the target link-layer
/// address; the checksum is left to the kernel.
fn na_payload(mac: MacAddr, ip: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = ND_NEIGHBOR_ADVERT;
    p[4] = ND_NA_FLAG_OVERRIDE;
    p[8..24].copy_from_slice(&ip.octets());
    p[24] = ND_OPT_TARGET_LINKADDR;
    p[25] = 1; // in units of 8 bytes
    p[26..32].copy_from_slice(&mac.0);
    p
}

fn unsolicited_na(fd: &OwnedFd, index: u32, mac: MacAddr, ip: Ipv6Addr) -> std::io::Result<()> {
    let raw = fd.as_raw_fd();
    let int = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let hops = ND_HOP_LIMIT;
    let ifindex = index as libc::c_int;
    // SAFETY: setsockopt/bind with pointers to live locals of the sizes given.
    unsafe {
        check(libc::setsockopt(
            raw,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_HOPS,
            (&hops as *const libc::c_int).cast(),
            int,
        ))?;
        check(libc::setsockopt(
            raw,
            libc::IPPROTO_IPV6,
            libc::IPV6_MULTICAST_IF,
            (&ifindex as *const libc::c_int).cast(),
            int,
        ))?;
    }
    // From the announced address itself (it is on this interface and, without DAD, usable).
    let from = sockaddr_in6(ip, if is_link_local(ip) { index } else { 0 });
    // SAFETY: as above.
    check(unsafe {
        libc::bind(
            raw,
            (&from as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    })?;
    let all_nodes = sockaddr_in6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), index);
    let payload = na_payload(mac, ip);
    // SAFETY: as above.
    let n = unsafe {
        libc::sendto(
            raw,
            payload.as_ptr().cast(),
            payload.len(),
            0,
            (&all_nodes as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    check(n as libc::c_int)
}

fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

fn sockaddr_in6(ip: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data; zero is a valid start.
    let mut a: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    a.sin6_family = libc::AF_INET6 as u16;
    a.sin6_addr.s6_addr = ip.octets();
    a.sin6_scope_id = scope;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_is_a_gratuitous_request() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let p = arp_payload(mac, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &mac.0);
        assert_eq!(
            &p[14..18],
            &p[24..28],
            "sender and target address are the same"
        );
        assert_eq!(&p[18..24], &[0; 6]);
    }

    #[test]
    fn na_overrides_and_carries_the_mac() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let ip: Ipv6Addr = "fd00::5".parse().unwrap();
        let p = na_payload(mac, ip);
        assert_eq!(
            (p[0], p[1], p[4]),
            (136, 0, 0x20),
            "NA, code 0, override only"
        );
        assert_eq!(&p[8..24], &ip.octets());
        assert_eq!(&p[24..26], &[2, 1]);
        assert_eq!(&p[26..32], &mac.0);
    }
}
