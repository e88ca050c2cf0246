//! Route lookups with a source and an input interface (RTM_GETROUTE, as `ip route get DST from
//! SRC iif DEV`): what the kernel would do with a packet, asked rather than guessed.

use std::net::IpAddr;

use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::address::IpFamily;
use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::route::{route_addr, Route};

/// RTN_* route types that say where a lookup ends (`Route::kind`).
pub mod route_type {
    pub const UNICAST: u8 = 1;
    pub const LOCAL: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const BLACKHOLE: u8 = 6;
    pub const UNREACHABLE: u8 = 7;
    pub const PROHIBIT: u8 = 8;
}

/// What a lookup asks: the destination, and optionally the packet's source and the interface
/// it came in on (an input lookup, as for a packet being forwarded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteQuery {
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    /// The input interface's index: the kernel then routes as for a received packet
    /// (forwarding, reverse-path filtering and policy rules all count).
    pub iif: Option<u32>,
}

impl RouteQuery {
    pub fn to(dst: IpAddr) -> RouteQuery {
        RouteQuery {
            dst,
            src: None,
            iif: None,
        }
    }
    pub fn from(mut self, src: IpAddr) -> Self {
        self.src = Some(src);
        self
    }
    pub fn iif(mut self, index: u32) -> Self {
        self.iif = Some(index);
        self
    }
}

fn host_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

impl Netlink {
    /// Asks the kernel how it would route the packet. The answer's `dst` is the queried
    /// address as a host prefix; `oif`, `gateway`, `src`, `kind` (2: delivered locally) and
    /// `protocol` say where it goes and who made the route. No route is an error with the
    /// kernel's errno (ENETUNREACH, EHOSTUNREACH...).
    pub fn route_lookup(&self, q: RouteQuery) -> Result<Route> {
        let mut op = format!("get route to {}", q.dst);
        let mut msg = RouteMessage::default();
        msg.header.address_family = IpFamily::of(q.dst).af();
        msg.header.destination_prefix_length = host_prefix(q.dst);
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(q.dst)));
        if let Some(src) = q.src {
            op += &format!(" from {src}");
            msg.header.source_prefix_length = host_prefix(src);
            msg.attributes.push(RouteAttribute::Source(route_addr(src)));
        }
        if let Some(iif) = q.iif {
            op += &format!(" iif #{iif}");
            msg.attributes.push(RouteAttribute::Iif(iif));
        }
        let replies = self.request_collect(RouteNetlinkMessage::GetRoute(msg), 0, &op)?;
        replies
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Route::from_message(r),
                _ => None,
            })
            .ok_or_else(|| Error::protocol(op, "no route in reply"))
    }
}
