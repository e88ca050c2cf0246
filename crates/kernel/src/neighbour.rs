//! Neighbour entries (ARP / NDP) and bridge FDB entries of a VXLAN device, both RTM_NEWNEIGH
//! messages: a multi-node agent programs one of each per remote VTEP, permanent, so the kernel
//! never has to resolve (or flood for) a peer.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::address::IpFamily;
use crate::error::Result;
use crate::mac::MacAddr;
use crate::netlink::Netlink;

/// A neighbour (IP → MAC on a link).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Neighbour {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub mac: Option<MacAddr>,
    /// NUD_PERMANENT: set by hand, never aged or probed.
    pub permanent: bool,
}

/// A bridge forwarding entry of a VXLAN device: frames for `mac` go to the VTEP at `dst`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FdbEntry {
    pub ifindex: u32,
    pub mac: MacAddr,
    pub dst: Option<IpAddr>,
    pub permanent: bool,
}

fn addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(v) => NeighbourAddress::Inet(v),
        IpAddr::V6(v) => NeighbourAddress::Inet6(v),
    }
}

/// An address attribute as the kernel sends it: typed for inet families, raw bytes under
/// AF_BRIDGE (an FDB's VTEP address, 4 or 16 bytes).
fn ip_of(a: &NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(v) => Some((*v).into()),
        NeighbourAddress::Inet6(v) => Some((*v).into()),
        NeighbourAddress::Other(b) => match b.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(&b[..]).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(&b[..]).ok()?)),
            _ => None,
        },
        _ => None,
    }
}

fn neighbour_message(n: &Neighbour) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = IpFamily::of(n.ip).af();
    msg.header.ifindex = n.ifindex;
    msg.header.state = if n.permanent {
        NeighbourState::Permanent
    } else {
        NeighbourState::Reachable
    };
    msg.attributes
        .push(NeighbourAttribute::Destination(addr(n.ip)));
    if let Some(mac) = n.mac {
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    }
    msg
}

fn fdb_message(f: &FdbEntry) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = f.ifindex;
    msg.header.state = if f.permanent {
        NeighbourState::Permanent
    } else {
        NeighbourState::Reachable
    };
    // NTF_SELF: the entry belongs to the VXLAN device's own table, not a bridge master's.
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(f.mac.0.to_vec()));
    if let Some(dst) = f.dst {
        msg.attributes
            .push(NeighbourAttribute::Destination(addr(dst)));
    }
    msg
}

fn state_is_permanent(s: NeighbourState) -> bool {
    s == NeighbourState::Permanent
}

impl Netlink {
    /// Adds or replaces a neighbour entry (idempotent).
    pub fn neighbour_replace(&self, n: &Neighbour) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewNeighbour(neighbour_message(n)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &format!("replace neighbour {} on link #{}", n.ip, n.ifindex),
        )
    }

    /// Deletes a neighbour entry; `is_not_found()` when there is none.
    pub fn neighbour_delete(&self, n: &Neighbour) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelNeighbour(neighbour_message(n)),
            0,
            &format!("delete neighbour {} on link #{}", n.ip, n.ifindex),
        )
    }

    /// The neighbour entries of one family on one link (or every link).
    pub fn neighbours(&self, family: IpFamily, ifindex: Option<u32>) -> Result<Vec<Neighbour>> {
        let mut req = NeighbourMessage::default();
        req.header.family = family.af();
        if let Some(i) = ifindex {
            // Under NETLINK_GET_STRICT_CHK the kernel filters on NDA_IFINDEX (a header index is
            // refused); older kernels ignore it and the filter below does the job.
            req.attributes.push(NeighbourAttribute::IfIndex(i));
        }
        let replies = self.dump(RouteNetlinkMessage::GetNeighbour(req), "list neighbours")?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .filter(|n| ifindex.is_none_or(|i| n.header.ifindex == i))
            .filter_map(|n| {
                let mut ip = None;
                let mut mac = None;
                for a in &n.attributes {
                    match a {
                        NeighbourAttribute::Destination(d) => ip = ip_of(d),
                        NeighbourAttribute::LinkLayerAddress(l) => mac = MacAddr::from_slice(l),
                        _ => {}
                    }
                }
                Some(Neighbour {
                    ifindex: n.header.ifindex,
                    ip: ip?,
                    mac,
                    permanent: state_is_permanent(n.header.state),
                })
            })
            .collect())
    }

    /// Adds an FDB entry, or replaces the one for the same MAC (a VTEP that moved).
    pub fn fdb_replace(&self, f: &FdbEntry) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewNeighbour(fdb_message(f)),
            NLM_F_CREATE | NLM_F_REPLACE,
            &format!("replace fdb {} on link #{}", f.mac, f.ifindex),
        )
    }

    /// Appends an FDB entry (several VTEPs for one MAC, e.g. the all-zero flood entry).
    pub fn fdb_append(&self, f: &FdbEntry) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewNeighbour(fdb_message(f)),
            NLM_F_CREATE | NLM_F_APPEND,
            &format!("append fdb {} on link #{}", f.mac, f.ifindex),
        )
    }

    /// Deletes an FDB entry; `is_not_found()` when there is none.
    pub fn fdb_delete(&self, f: &FdbEntry) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelNeighbour(fdb_message(f)),
            0,
            &format!("delete fdb {} on link #{}", f.mac, f.ifindex),
        )
    }

    /// The FDB entries of one device (its own table: NTF_SELF).
    pub fn fdb_entries(&self, ifindex: u32) -> Result<Vec<FdbEntry>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        req.header.ifindex = ifindex;
        let replies = self.dump(RouteNetlinkMessage::GetNeighbour(req), "list fdb")?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .filter(|n| n.header.ifindex == ifindex && n.header.flags.contains(NeighbourFlags::Own))
            .filter_map(|n| {
                let mut dst = None;
                let mut mac = None;
                for a in &n.attributes {
                    match a {
                        NeighbourAttribute::Destination(d) => dst = ip_of(d),
                        NeighbourAttribute::LinkLayerAddress(l) => mac = MacAddr::from_slice(l),
                        _ => {}
                    }
                }
                Some(FdbEntry {
                    ifindex,
                    mac: mac?,
                    dst,
                    permanent: state_is_permanent(n.header.state),
                })
            })
            .collect())
    }
}
