//! Routes: add / replace / delete / list, with gateway, output link,
//! metric, table, scope and the MTU / advmss metrics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric,
    RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::address::IpFamily;
use crate::error::Result;
use crate::netlink::Netlink;

/// The main routing table, where routes go unless told otherwise.
pub const TABLE_MAIN: u32 = 254;

/// RTPROT_BOOT: the protocol of routes added by hand (`ip route add`'s default).
pub const RTPROT_BOOT: u8 = 3;

/// Route scope (how far the destination is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Reached through a gateway (RT_SCOPE_UNIVERSE).
    Universe,
    /// Directly on the link (RT_SCOPE_LINK).
    Link,
    /// This host (RT_SCOPE_HOST).
    Host,
    Other(u8),
}

impl From<Scope> for RouteScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Universe => RouteScope::Universe,
            Scope::Link => RouteScope::Link,
            Scope::Host => RouteScope::Host,
            Scope::Other(v) => RouteScope::from(v),
        }
    }
}

impl From<RouteScope> for Scope {
    fn from(s: RouteScope) -> Self {
        match s {
            RouteScope::Universe => Scope::Universe,
            RouteScope::Link => Scope::Link,
            RouteScope::Host => Scope::Host,
            other => Scope::Other(u8::from(other)),
        }
    }
}

/// A route. Build one with `Route::new(dst)` and the setters; `scope`
/// left `None` means link scope for a gateway-less IPv4 route with an
/// output link (as `ip route` does), universe otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// Preferred source address (RTA_PREFSRC).
    pub src: Option<IpAddr>,
    /// Metric / priority.
    pub metric: Option<u32>,
    pub table: u32,
    pub scope: Option<Scope>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    /// RTN_* type as the kernel reports it (1 = unicast, 2 = local...).
    /// Only unicast routes are created by this crate.
    pub kind: u8,
    /// RTPROT_* of who made it; created routes default to `boot` (3). An agent tags its routes
    /// with a number of its own so it finds (and only ever removes) those.
    pub protocol: u8,
    /// RTNH_F_ONLINK: the gateway is on the link even though no address of the link covers it
    /// (a VXLAN next hop).
    pub onlink: bool,
}

impl Route {
    pub fn new(dst: IpNet) -> Route {
        Route {
            dst: dst.trunc(),
            gateway: None,
            oif: None,
            src: None,
            metric: None,
            table: TABLE_MAIN,
            scope: None,
            mtu: None,
            advmss: None,
            kind: 1,
            protocol: RTPROT_BOOT,
            onlink: false,
        }
    }

    /// The default route (0.0.0.0/0 or ::/0) through `gateway`.
    pub fn default_via(gateway: IpAddr) -> Route {
        let dst = match gateway {
            IpAddr::V4(_) => IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            IpAddr::V6(_) => IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0),
        }
        .expect("prefix 0 is valid");
        Route::new(dst).via(gateway)
    }

    pub fn via(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }
    pub fn dev(mut self, oif: u32) -> Self {
        self.oif = Some(oif);
        self
    }
    pub fn src(mut self, src: IpAddr) -> Self {
        self.src = Some(src);
        self
    }
    pub fn metric(mut self, metric: u32) -> Self {
        self.metric = Some(metric);
        self
    }
    pub fn table(mut self, table: u32) -> Self {
        self.table = table;
        self
    }
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    pub fn advmss(mut self, advmss: u32) -> Self {
        self.advmss = Some(advmss);
        self
    }
    pub fn protocol(mut self, protocol: u8) -> Self {
        self.protocol = protocol;
        self
    }
    pub fn onlink(mut self) -> Self {
        self.onlink = true;
        self
    }

    pub fn family(&self) -> IpFamily {
        IpFamily::of(self.dst.addr())
    }

    fn effective_scope(&self) -> Scope {
        match self.scope {
            Some(s) => s,
            None if self.dst.addr().is_ipv4() && self.gateway.is_none() && self.oif.is_some() => {
                Scope::Link
            }
            None => Scope::Universe,
        }
    }

    /// The request message. For deletion the kernel matches on whatever
    /// is given, so scope/type/protocol are left as wildcards.
    fn message(&self, for_delete: bool) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = self.family().af();
        h.destination_prefix_length = self.dst.prefix_len();
        // Tables above 255 only fit in RTA_TABLE; the header gets RT_TABLE_COMPAT... or UNSPEC.
        h.table = if self.table < 256 {
            self.table as u8
        } else {
            RouteHeader::RT_TABLE_UNSPEC
        };
        if for_delete {
            h.scope = RouteScope::NoWhere;
            h.kind = RouteType::Unspec;
            h.protocol = RouteProtocol::Unspec;
        } else {
            h.scope = self.effective_scope().into();
            h.kind = RouteType::Unicast;
            h.protocol = RouteProtocol::from(self.protocol);
            if self.onlink {
                h.flags = RouteFlags::Onlink;
            }
        }
        let a = &mut msg.attributes;
        a.push(RouteAttribute::Table(self.table));
        if self.dst.prefix_len() > 0 || for_delete {
            a.push(RouteAttribute::Destination(route_addr(self.dst.addr())));
        }
        if let Some(gw) = self.gateway {
            a.push(RouteAttribute::Gateway(route_addr(gw)));
        }
        if let Some(oif) = self.oif {
            a.push(RouteAttribute::Oif(oif));
        }
        if let Some(src) = self.src {
            a.push(RouteAttribute::PrefSource(route_addr(src)));
        }
        if let Some(m) = self.metric {
            a.push(RouteAttribute::Priority(m));
        }
        let mut metrics = Vec::new();
        if let Some(mtu) = self.mtu {
            metrics.push(RouteMetric::Mtu(mtu));
        }
        if let Some(advmss) = self.advmss {
            metrics.push(RouteMetric::Advmss(advmss));
        }
        if !metrics.is_empty() && !for_delete {
            a.push(RouteAttribute::Metrics(metrics));
        }
        msg
    }

    pub(crate) fn from_message(msg: &RouteMessage) -> Option<Route> {
        let h = &msg.header;
        let mut dst = None;
        let mut route = Route::new(IpNet::default());
        route.table = u32::from(h.table);
        route.scope = Some(h.scope.into());
        route.kind = u8::from(h.kind);
        route.protocol = u8::from(h.protocol);
        route.onlink = h.flags.contains(RouteFlags::Onlink);
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst = ip_of(a),
                RouteAttribute::Gateway(a) => route.gateway = ip_of(a),
                RouteAttribute::PrefSource(a) => route.src = ip_of(a),
                RouteAttribute::Oif(i) => route.oif = Some(*i),
                RouteAttribute::Priority(p) => route.metric = Some(*p),
                RouteAttribute::Table(t) => route.table = *t,
                RouteAttribute::Metrics(ms) => {
                    for m in ms {
                        match m {
                            RouteMetric::Mtu(v) => route.mtu = Some(*v),
                            RouteMetric::Advmss(v) => route.advmss = Some(*v),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let dst = match (dst, h.address_family) {
            (Some(d), _) => d,
            (None, AddressFamily::Inet) => Ipv4Addr::UNSPECIFIED.into(),
            (None, AddressFamily::Inet6) => Ipv6Addr::UNSPECIFIED.into(),
            _ => return None,
        };
        route.dst = IpNet::new(dst, h.destination_prefix_length).ok()?;
        Some(route)
    }
}

pub(crate) fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some((*v).into()),
        RouteAddress::Inet6(v) => Some((*v).into()),
        _ => None,
    }
}

impl Netlink {
    /// Adds a route; `is_exists()` if an identical one is there.
    pub fn route_add(&self, route: &Route) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(route.message(false)),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add route {}", describe(route)),
        )
    }

    /// Adds the route or replaces the one with the same key (idempotent).
    pub fn route_replace(&self, route: &Route) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(route.message(false)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &format!("replace route {}", describe(route)),
        )
    }

    /// Deletes the route matching the given fields; `is_not_found()` if none.
    pub fn route_delete(&self, route: &Route) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelRoute(route.message(true)),
            0,
            &format!("delete route {}", describe(route)),
        )
    }

    /// Routes of one family, in every table (filter on `table` /
    /// `kind`; the local table's entries have `kind` 2). Cached clones
    /// are skipped.
    pub fn routes(&self, family: IpFamily) -> Result<Vec<Route>> {
        let mut req = RouteMessage::default();
        req.header.address_family = family.af();
        let replies = self.dump(RouteNetlinkMessage::GetRoute(req), "list routes")?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r)
                    if !r.header.flags.contains(RouteFlags::Cloned) =>
                {
                    Route::from_message(r)
                }
                _ => None,
            })
            .collect())
    }
}

impl Netlink {
    /// The route the kernel would use to reach `dst` from this netns (RTM_GETROUTE, as
    /// `ip route get`): its gateway (none when `dst` is on-link), output link and source.
    /// [`Netlink::route_lookup`] also takes a source and an input interface.
    pub fn route_get(&self, dst: IpAddr) -> Result<Route> {
        self.route_lookup(crate::RouteQuery::to(dst))
    }
}

fn describe(r: &Route) -> String {
    let mut s = r.dst.to_string();
    if let Some(gw) = r.gateway {
        s += &format!(" via {gw}");
    }
    if let Some(oif) = r.oif {
        s += &format!(" dev #{oif}");
    }
    if r.table != TABLE_MAIN {
        s += &format!(" table {}", r.table);
    }
    if let Some(m) = r.metric {
        s += &format!(" metric {m}");
    }
    s
}
