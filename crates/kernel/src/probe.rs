//! ICMP echo probes from a chosen source address: how the node agent checks that the underlay
//! carries packets whose source is a pod address (cloud fabrics with source/destination checks
//! drop them) before it routes a peer directly. The peers' kernels answer; nothing listens.

use crate::error::{Error, Result};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

fn io(op: &str) -> Error {
    Error::io(op, std::io::Error::last_os_error())
}

fn sockaddr(a: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let sa: socket2_like::Raw = SocketAddr::new(a, 0).into();
    (sa.storage, sa.len)
}

/// Minimal std::net::SocketAddr → sockaddr conversion (no extra crate).
mod socket2_like {
    use std::net::SocketAddr;

    pub struct Raw {
        pub storage: libc::sockaddr_storage,
        pub len: libc::socklen_t,
    }

    impl From<SocketAddr> for Raw {
        fn from(a: SocketAddr) -> Raw {
            // SAFETY: all-zero is a valid sockaddr_storage.
            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = match a {
                SocketAddr::V4(v4) => {
                    let sin = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: 0,
                        sin_addr: libc::in_addr {
                            s_addr: u32::from_ne_bytes(v4.ip().octets()),
                        },
                        sin_zero: [0; 8],
                    };
                    // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
                    unsafe {
                        std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin)
                    };
                    std::mem::size_of::<libc::sockaddr_in>()
                }
                SocketAddr::V6(v6) => {
                    let sin6 = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: 0,
                        sin6_flowinfo: 0,
                        sin6_addr: libc::in6_addr {
                            s6_addr: v6.ip().octets(),
                        },
                        sin6_scope_id: 0,
                    };
                    // SAFETY: as above, for sockaddr_in6.
                    unsafe {
                        std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6)
                    };
                    std::mem::size_of::<libc::sockaddr_in6>()
                }
            };
            Raw {
                storage,
                len: len as libc::socklen_t,
            }
        }
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP(v6) echo request: type, code 0, checksum, id, seq, 8 bytes of payload.
fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend(id.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend(b"podwire!");
    if !v6 {
        // ICMPv6's checksum covers a pseudo-header: the kernel fills it in on raw sockets.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// A raw ICMP(v6) socket bound to `src`: it sends from `src` and hears the answers to it.
fn icmp_socket(src: IpAddr) -> Result<OwnedFd> {
    let (domain, proto) = if src.is_ipv6() {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: plain socket(2); the fd is owned right after.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io("open an ICMP socket"));
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let (sa, len) = sockaddr(src);
    // SAFETY: sa/len describe a valid sockaddr of the socket's family.
    if unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    } < 0
    {
        return Err(io(&format!("bind an ICMP socket to {src}")));
    }
    Ok(sock)
}

fn probe_id() -> u16 {
    (std::process::id() as u16) ^ 0x5057
}

/// Sends ICMP echo requests from `src` (a local address) to each of `targets` (all of `src`'s
/// family) through the kernel's routing, `tries` times spread over `timeout`, and returns those
/// that answered.
pub fn echo(
    src: IpAddr,
    targets: &[IpAddr],
    tries: u32,
    timeout: Duration,
) -> Result<HashSet<IpAddr>> {
    let sock = icmp_socket(src)?;
    let v6 = src.is_ipv6();
    let id = probe_id();
    let send = |seq: usize, t: IpAddr| {
        let p = echo_request(v6, id, seq as u16);
        let (da, dlen) = sockaddr(t);
        send_to(&sock, &p, &da, dlen);
    };
    collect(&sock, v6, id, targets, tries, timeout, send)
}

/// The same, but each request leaves as a frame on link `ifindex` straight to the target's MAC
/// (AF_PACKET): past routing and netfilter, so a node's own masquerade rule cannot rewrite the
/// pod source, and the route this node has to the peer (direct or VXLAN) does not matter. The
/// answers come back however the peer routes them, to `src`. `targets`: address and MAC.
pub fn echo_on_link(
    src: IpAddr,
    ifindex: u32,
    targets: &[(IpAddr, crate::MacAddr)],
    tries: u32,
    timeout: Duration,
) -> Result<HashSet<IpAddr>> {
    let sock = icmp_socket(src)?;
    let v6 = src.is_ipv6();
    let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
    // SAFETY: plain socket(2); owned right after.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            i32::from(ethertype.to_be()),
        )
    };
    if fd < 0 {
        return Err(io("open a packet socket"));
    }
    // SAFETY: fresh, valid, unowned descriptor.
    let pkt = unsafe { OwnedFd::from_raw_fd(fd) };
    let id = probe_id();
    let addrs: Vec<IpAddr> = targets.iter().map(|(a, _)| *a).collect();
    let send = |seq: usize, t: IpAddr| {
        let Some((_, mac)) = targets.iter().find(|(a, _)| *a == t) else {
            return;
        };
        let icmp = echo_request(v6, id, seq as u16);
        let packet = ip_packet(src, t, icmp);
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut ll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ethertype.to_be();
        ll.sll_ifindex = ifindex as i32;
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&mac.0);
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        send_to(&pkt, &packet, &ll, len);
    };
    collect(&sock, v6, id, &addrs, tries, timeout, send)
}

/// An IPv4 or IPv6 packet around an ICMP(v6) message (whose checksum it completes for IPv6).
fn ip_packet(src: IpAddr, dst: IpAddr, mut icmp: Vec<u8>) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + icmp.len()) as u16;
            let mut h = vec![0x45, 0];
            h.extend(total.to_be_bytes());
            h.extend([0, 0, 0x40, 0, 64, 1, 0, 0]); // id 0, DF, TTL 64, ICMP, checksum 0
            h.extend(s.octets());
            h.extend(d.octets());
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend(icmp);
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = icmp.len() as u32;
            let mut pseudo = Vec::new();
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend(len.to_be_bytes());
            pseudo.extend([0, 0, 0, 58]);
            pseudo.extend(&icmp);
            let c = checksum(&pseudo);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut h = vec![0x60, 0, 0, 0];
            h.extend((len as u16).to_be_bytes());
            h.extend([58, 64]);
            h.extend(s.octets());
            h.extend(d.octets());
            h.extend(icmp);
            h
        }
        _ => icmp,
    }
}

/// One datagram to `addr` (any sockaddr type, `len` bytes of it), without blocking; a failed
/// send is an unanswered probe, so its result is not looked at.
fn send_to<A>(sock: &OwnedFd, data: &[u8], addr: &A, len: libc::socklen_t) {
    // SAFETY: data is a valid buffer; addr points at a sockaddr of `len` bytes.
    unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
            (addr as *const A).cast::<libc::sockaddr>(),
            len,
        )
    };
}

/// Sends rounds with `send(seq, target)` and gathers the echo replies `sock` hears.
fn collect(
    sock: &OwnedFd,
    v6: bool,
    id: u16,
    targets: &[IpAddr],
    tries: u32,
    timeout: Duration,
    send: impl Fn(usize, IpAddr),
) -> Result<HashSet<IpAddr>> {
    let mut answered = HashSet::new();
    let start = Instant::now();
    let tries = tries.max(1);
    let mut sent = 0;
    let mut buf = [0u8; 1500];
    while start.elapsed() < timeout && answered.len() < targets.len() {
        // Send the next round when its time has come (rounds spread over the timeout).
        if sent < tries && start.elapsed() >= timeout * sent / tries {
            for (seq, t) in targets.iter().enumerate() {
                if !answered.contains(t) && t.is_ipv6() == v6 {
                    send(seq, *t);
                }
            }
            sent += 1;
        }
        let next_round = if sent < tries {
            timeout * sent / tries
        } else {
            timeout
        };
        let wait = next_round
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1));
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis().min(i32::MAX as u128) as i32) };
        if n <= 0 {
            continue;
        }
        loop {
            // SAFETY: all-zero is a valid sockaddr_storage; buf is writable.
            let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut flen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: buf/from are valid for the lengths given.
            let r = unsafe {
                libc::recvfrom(
                    sock.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut from as *mut _ as *mut libc::sockaddr,
                    &mut flen,
                )
            };
            if r <= 0 {
                break;
            }
            let pkt = &buf[..r as usize];
            // IPv4 raw sockets get the IP header too; IPv6 ones only the ICMPv6 message.
            let icmp = if v6 {
                pkt
            } else {
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                if pkt.len() < ihl + 8 {
                    continue;
                }
                &pkt[ihl..]
            };
            let reply = if v6 { 129 } else { 0 };
            if icmp.len() < 8 || icmp[0] != reply || u16::from_be_bytes([icmp[4], icmp[5]]) != id {
                continue;
            }
            let seq = usize::from(u16::from_be_bytes([icmp[6], icmp[7]]));
            if let Some(t) = targets.get(seq) {
                if from_addr(&from) == Some(*t) {
                    answered.insert(*t);
                }
            }
        }
    }
    Ok(answered)
}

fn from_addr(sa: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(sa.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let sin = unsafe { &*(sa as *const _ as *const libc::sockaddr_in) };
            Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let sin6 = unsafe { &*(sa as *const _ as *const libc::sockaddr_in6) };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_checks_out() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0, "a correct checksum sums to zero");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(echo_request(true, 1, 1)[0], 128);
        let v4 = ip_packet(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            p.clone(),
        );
        assert_eq!(checksum(&v4[..20]), 0, "IPv4 header checksum");
        assert_eq!(v4.len(), 20 + p.len());
        let v6 = ip_packet(
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            echo_request(true, 1, 1),
        );
        assert_eq!((v6[0], v6[6], v6.len()), (0x60, 58, 40 + 16));
    }
}
