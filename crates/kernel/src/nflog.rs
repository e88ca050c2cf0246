//! Reading an nflog group (nfnetlink_log): the packets nftables rules `log group N` hand to
//! userspace, for `podwirectl drops --watch`. The rules rate-limit themselves in the kernel, so
//! a reader (or none) never slows the data path. Message layout from
//! <linux/netfilter/nfnetlink_log.h>; the calling thread's netns (groups are per netns).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// Enough of each packet for its IP and transport headers.
const COPY_RANGE: u32 = 96;

/// One logged packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The rule's `prefix`.
    pub prefix: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPPROTO_*.
    pub proto: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

/// A socket bound to one nflog group.
pub struct Nflog {
    fd: OwnedFd,
}

impl Nflog {
    /// Binds `group` in the calling thread's netns (EBUSY: someone else reads it).
    pub fn bind(group: u16) -> io::Result<Nflog> {
        // SAFETY: plain socket(2); the fd is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new, valid fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is valid; bind(2) with its exact size.
        let rc = unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let log = Nflog { fd };
        log.config(group, NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND], 1)?;
        let mut mode = COPY_RANGE.to_be_bytes().to_vec();
        mode.extend([NFULNL_COPY_PACKET, 0]);
        log.config(group, NFULA_CFG_MODE, &mode, 2)?;
        Ok(log)
    }

    fn config(&self, group: u16, attr: u16, value: &[u8], seq: u32) -> io::Result<()> {
        let mut m = Vec::with_capacity(32);
        let nla_len = 4 + value.len();
        let total = 16 + 4 + align(nla_len);
        m.extend((total as u32).to_ne_bytes());
        m.extend(((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG).to_ne_bytes());
        m.extend((NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend(seq.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        // nfgenmsg: family AF_UNSPEC, version 0, res_id = the group (big endian).
        m.extend([0u8, 0]);
        m.extend(group.to_be_bytes());
        m.extend((nla_len as u16).to_ne_bytes());
        m.extend(attr.to_ne_bytes());
        m.extend(value);
        m.resize(total, 0);
        // SAFETY: send(2) of an initialised buffer on our fd.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // The ack (an error message with code 0) or the error.
        let mut buf = vec![0u8; 4096];
        loop {
            let n = self.recv(&mut buf, Some(Duration::from_secs(2)))?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no ack from nfnetlink_log",
                ));
            }
            for (ty, payload) in messages(&buf[..n]) {
                if ty == NLMSG_ERROR && payload.len() >= 4 {
                    let code = i32::from_ne_bytes(payload[..4].try_into().unwrap());
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
            }
        }
    }

    /// Bytes received, waiting at most `timeout` (None: forever); 0 on timeout.
    fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: poll(2) on one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        if rc == 0 {
            return Ok(0);
        }
        // SAFETY: recv(2) into a buffer of the given length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The packets logged until `timeout` passes with none (at least one unless it timed out).
    pub fn next(&self, timeout: Option<Duration>) -> io::Result<Vec<Logged>> {
        let mut buf = vec![0u8; 65536];
        let n = self.recv(&mut buf, timeout)?;
        Ok(messages(&buf[..n])
            .filter(|(ty, _)| *ty == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)
            .filter_map(|(_, p)| parse_packet(p.get(4..)?))
            .collect())
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// (type, payload) of each netlink message in `buf`.
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let h = buf.get(at..at + 16)?;
        let len = u32::from_ne_bytes(h[..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(h[4..6].try_into().unwrap());
        if len < 16 || at + len > buf.len() {
            return None;
        }
        let payload = &buf[at + 16..at + len];
        at += align(len);
        Some((ty, payload))
    })
}

/// The attributes of one packet message (after its nfgenmsg).
fn parse_packet(attrs: &[u8]) -> Option<Logged> {
    let (mut prefix, mut payload) = (String::new(), None);
    let mut at = 0;
    while let Some(h) = attrs.get(at..at + 4) {
        let len = u16::from_ne_bytes([h[0], h[1]]) as usize;
        let ty = u16::from_ne_bytes([h[2], h[3]]) & 0x3fff;
        if len < 4 || at + len > attrs.len() {
            break;
        }
        let v = &attrs[at + 4..at + len];
        match ty {
            NFULA_PREFIX => {
                prefix =
                    String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(v)).into_owned()
            }
            NFULA_PAYLOAD => payload = Some(v),
            _ => {}
        }
        at += align(len);
    }
    parse_ip(prefix, payload?)
}

/// Addresses, protocol and ports of an IPv4 or IPv6 packet (IPv6 extension headers are not
/// walked: their ports are left out).
pub fn parse_ip(prefix: String, p: &[u8]) -> Option<Logged> {
    let ports = |t: Option<&[u8]>| match t {
        Some(t) if t.len() >= 4 => (
            Some(u16::from_be_bytes([t[0], t[1]])),
            Some(u16::from_be_bytes([t[2], t[3]])),
        ),
        _ => (None, None),
    };
    let (src, dst, proto, l4) = match p.first()? >> 4 {
        4 => {
            let ihl = ((p[0] & 0x0f) as usize) * 4;
            let a: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(a)),
                IpAddr::V4(Ipv4Addr::from(b)),
                *p.get(9)?,
                p.get(ihl..),
            )
        }
        6 => {
            let a: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(a)),
                IpAddr::V6(Ipv6Addr::from(b)),
                *p.get(6)?,
                p.get(40..),
            )
        }
        _ => return None,
    };
    let (sport, dport) = match proto {
        6 | 17 | 132 => ports(l4),
        _ => (None, None),
    };
    Some(Logged {
        prefix,
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_udp_packet_parses() {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend([0x30, 0x39, 0, 80, 0, 8, 0, 0]);
        let l = parse_ip("x ".into(), &p).unwrap();
        assert_eq!(l.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(l.dst, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((l.proto, l.sport, l.dport), (17, Some(12345), Some(80)));
    }

    #[test]
    fn an_ipv6_tcp_packet_parses_and_garbage_does_not() {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        p.extend("fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        p.extend("fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend([0x01, 0xbb, 0x1f, 0x90]);
        let l = parse_ip(String::new(), &p).unwrap();
        assert_eq!((l.proto, l.sport, l.dport), (6, Some(443), Some(8080)));
        assert_eq!(parse_ip(String::new(), &[0x45, 0]), None);
        assert_eq!(parse_ip(String::new(), &[]), None);
    }
}
