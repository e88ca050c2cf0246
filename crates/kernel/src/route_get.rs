//! Route lookups (RTM_GETROUTE for one destination, as `ip route get`) and route listing with
//! the protocol that installed each route: what the kernel would do with a packet, asked
//! rather than guessed.

use std::net::IpAddr;

use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::address::IpFamily;
use crate::error::{Error, Result};
use crate::netlink::Netlink;
use crate::route::{route_addr, Route};

/// RTN_* route types that say where a lookup ends.
pub mod route_type {
    pub const UNICAST: u8 = 1;
    pub const LOCAL: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const BLACKHOLE: u8 = 6;
    pub const UNREACHABLE: u8 = 7;
    pub const PROHIBIT: u8 = 8;
}

/// RTPROT_KERNEL: routes the kernel made itself (an address's subnet).
pub const PROTO_KERNEL: u8 = 2;

/// A route as listed or as a lookup answered it, with the protocol that installed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    pub route: Route,
    /// RTPROT_*: 2 kernel, 3 boot (podwire's pod routes), 4 static, or a custom number.
    pub protocol: u8,
}

/// What a lookup asks: the destination, and optionally where the packet came from (an input
/// lookup, as for a packet being forwarded) and its source address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteQuery {
    pub dst: Option<IpAddr>,
    pub src: Option<IpAddr>,
    /// The input interface's index: the kernel then routes as for a received packet.
    pub iif: Option<u32>,
}

impl RouteQuery {
    pub fn to(dst: IpAddr) -> RouteQuery {
        RouteQuery {
            dst: Some(dst),
            ..Default::default()
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

impl Netlink {
    /// Asks the kernel how it would route a packet (`ip route get`). The answer's `dst` is
    /// the queried address as a host prefix; `oif`, `gateway`, `src` and `kind` say where it
    /// goes (`kind` 2: delivered locally). An unreachable destination is an error with the
    /// kernel's errno (ENETUNREACH, EHOSTUNREACH...).
    pub fn route_get(&self, q: RouteQuery) -> Result<RouteEntry> {
        let dst = q
            .dst
            .ok_or_else(|| Error::invalid("route get", "no destination"))?;
        let op = format!("route get {dst}");
        let mut msg = RouteMessage::default();
        msg.header.address_family = IpFamily::of(dst).af();
        msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(dst)));
        if let Some(src) = q.src {
            msg.header.source_prefix_length = if src.is_ipv4() { 32 } else { 128 };
            msg.attributes.push(RouteAttribute::Source(route_addr(src)));
        }
        if let Some(iif) = q.iif {
            msg.attributes.push(RouteAttribute::Iif(iif));
        }
        let replies = self.request_collect(RouteNetlinkMessage::GetRoute(msg), 0, &op)?;
        replies
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => entry_of(r),
                _ => None,
            })
            .ok_or_else(|| Error::protocol(op, "no route in reply"))
    }

    /// Every route of one family in every table, with its protocol (cached clones skipped).
    pub fn route_entries(&self, family: IpFamily) -> Result<Vec<RouteEntry>> {
        let mut req = RouteMessage::default();
        req.header.address_family = family.af();
        let replies = self.dump(RouteNetlinkMessage::GetRoute(req), "list routes")?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r)
                    if !r.header.flags.contains(RouteFlags::Cloned) =>
                {
                    entry_of(r)
                }
                _ => None,
            })
            .collect())
    }
}

fn entry_of(r: &RouteMessage) -> Option<RouteEntry> {
    Some(RouteEntry {
        route: Route::from_message(r)?,
        protocol: u8::from(r.header.protocol),
    })
}
