//! Kernel change notifications (rtnetlink multicast): what lets a long-running agent repair
//! what someone else changed (a deleted route, a link that flapped) without polling.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

// Legacy RTMGRP_* bind masks (the groups below 32 can be joined at bind time).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// One notification, reduced to what a reconciler needs to decide whether to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// A link appeared, changed (up/down, carrier, MTU...) or went away.
    Link { index: u32, deleted: bool },
    /// An address was added to or removed from link `index`.
    Address {
        index: u32,
        deleted: bool,
        /// The address (IFA_LOCAL, else IFA_ADDRESS), when the message carries one.
        addr: Option<std::net::IpAddr>,
    },
    /// A route was added or removed; `protocol` is its RTPROT_*.
    Route {
        dst: Option<ipnet::IpNet>,
        protocol: u8,
        deleted: bool,
    },
    /// A neighbour or FDB entry changed on link `ifindex`.
    Neighbour { ifindex: u32, deleted: bool },
    /// The socket overflowed: notifications were lost, everything must be looked at again.
    Overflow,
}

/// A socket subscribed to link, address, neighbour and route notifications of the netns it was opened
/// in (the calling thread's).
pub struct Monitor {
    sock: Socket,
    buf: Vec<u8>,
}

impl Monitor {
    pub fn new() -> Result<Monitor> {
        let op = "open rtnetlink monitor";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(op, e))?;
        let groups = RTMGRP_LINK
            | RTMGRP_NEIGH
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_ROUTE;
        sock.bind(&SocketAddr::new(0, groups))
            .map_err(|e| Error::io(op, e))?;
        Ok(Monitor {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Blocks until notifications arrive and returns them (at least one).
    pub fn recv(&mut self) -> Result<Vec<KernelEvent>> {
        let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                return Ok(vec![KernelEvent::Overflow])
            }
            Err(e) => return Err(Error::io("read rtnetlink notifications", e)),
        };
        let mut out = Vec::new();
        let mut rest = &self.buf[..n];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            if len < 16 || len > rest.len() {
                break;
            }
            if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..len]) {
                if let NetlinkPayload::InnerMessage(m) = msg.payload {
                    if let Some(e) = event_of(&m) {
                        out.push(e);
                    }
                }
            }
            rest = &rest[(len + 3) & !3..];
        }
        if out.is_empty() {
            // Something we do not parse (e.g. an address change): still a change.
            out.push(KernelEvent::Overflow);
        }
        Ok(out)
    }
}

fn address_of(a: &netlink_packet_route::address::AddressMessage) -> Option<std::net::IpAddr> {
    use netlink_packet_route::address::AddressAttribute as A;
    let local = a.attributes.iter().find_map(|x| match x {
        A::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        a.attributes.iter().find_map(|x| match x {
            A::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

fn event_of(m: &RouteNetlinkMessage) -> Option<KernelEvent> {
    use RouteNetlinkMessage as M;
    Some(match m {
        M::NewLink(l) => KernelEvent::Link {
            index: l.header.index,
            deleted: false,
        },
        M::DelLink(l) => KernelEvent::Link {
            index: l.header.index,
            deleted: true,
        },
        M::NewAddress(a) => KernelEvent::Address {
            index: a.header.index,
            deleted: false,
            addr: address_of(a),
        },
        M::DelAddress(a) => KernelEvent::Address {
            index: a.header.index,
            deleted: true,
            addr: address_of(a),
        },
        M::NewRoute(r) => KernelEvent::Route {
            dst: crate::route::Route::from_message(r).map(|r| r.dst),
            protocol: r.header.protocol.into(),
            deleted: false,
        },
        M::DelRoute(r) => KernelEvent::Route {
            dst: crate::route::Route::from_message(r).map(|r| r.dst),
            protocol: r.header.protocol.into(),
            deleted: true,
        },
        M::NewNeighbour(n) => KernelEvent::Neighbour {
            ifindex: n.header.ifindex,
            deleted: false,
        },
        M::DelNeighbour(n) => KernelEvent::Neighbour {
            ifindex: n.header.ifindex,
            deleted: true,
        },
        _ => return None,
    })
}
