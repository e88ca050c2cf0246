//! veth pairs, created in one request with the peer born inside the pod
//! netns under its final name: no move, no rename, no window where a
//! half-configured interface is visible under a temporary name.

use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::NLM_F_ECHO;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::link::Link;
use crate::mac::MacAddr;
use crate::netlink::Netlink;
use crate::netns::Netns;

/// What veth pair to create. The host end is created in the handle's
/// netns; the peer in `peer_netns` (or beside the host end if `None`).
#[derive(Clone, Debug)]
pub struct VethSpec<'a> {
    pub name: String,
    pub peer_name: String,
    pub peer_netns: Option<&'a Netns>,
    /// MTU of both ends.
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
    pub peer_mac: Option<MacAddr>,
    /// Bridge to enslave the host end to, in the same request.
    pub master: Option<u32>,
    /// Bring the host end up in the same request. (The peer cannot be:
    /// the kernel opens it before the pair is tied, veth_open -> ENOTCONN.)
    pub up: bool,
    /// IFLA_IFALIAS of the host end (an owner tag). The kernel ignores
    /// it on creation, so it costs one SETLINK after the create; with
    /// `up`, the host end then comes up in a third request (see
    /// `Netlink::veth_add`).
    pub alias: Option<String>,
}

impl<'a> VethSpec<'a> {
    pub fn new(name: impl Into<String>, peer_name: impl Into<String>) -> Self {
        VethSpec {
            name: name.into(),
            peer_name: peer_name.into(),
            peer_netns: None,
            mtu: None,
            mac: None,
            peer_mac: None,
            master: None,
            up: false,
            alias: None,
        }
    }
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.alias = Some(alias.into());
        self
    }
    pub fn peer_netns(mut self, ns: &'a Netns) -> Self {
        self.peer_netns = Some(ns);
        self
    }
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }
    pub fn peer_mac(mut self, mac: MacAddr) -> Self {
        self.peer_mac = Some(mac);
        self
    }
    pub fn master(mut self, bridge_index: u32) -> Self {
        self.master = Some(bridge_index);
        self
    }
    pub fn up(mut self) -> Self {
        self.up = true;
        self
    }

    fn message(&self, up: bool) -> LinkMessage {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(self.peer_name.clone()));
        push_single_queue(&mut peer.attributes);
        if let Some(mtu) = self.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = self.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(ns) = self.peer_netns {
            // The fd only needs to stay open for the request; `ns` outlives it.
            peer.attributes
                .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        }

        let mut msg = LinkMessage::default();
        if up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        msg.attributes
            .push(LinkAttribute::IfName(self.name.clone()));
        push_single_queue(&mut msg.attributes);
        if let Some(mtu) = self.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = self.mac {
            msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(master) = self.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        msg
    }
}

/// One TX and one RX queue per end. A veth gets one queue per CPU by default, and setting each up
/// and tearing it down again costs expedited RCU waits under the RTNL lock, serialising concurrent
/// ADDs; a pod's veth gains nothing from more queues (the reference plugins' veths are
/// multi-queue only because netlink's default is).
fn push_single_queue(attrs: &mut Vec<LinkAttribute>) {
    attrs.push(LinkAttribute::NumTxQueues(1));
    attrs.push(LinkAttribute::NumRxQueues(1));
}

/// The two ends of a new veth pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VethPair {
    /// The host end as the kernel reported it on creation (name, index,
    /// kernel-chosen MAC, up state, master).
    pub host: Link,
    /// ifindex of the peer, in its own netns.
    pub peer_index: u32,
}

impl Netlink {
    /// Creates the pair in one request. The kernel echoes the new host
    /// end (NLM_F_ECHO), whose IFLA_LINK is the peer's ifindex, so no
    /// further round trip is needed on kernels that support the echo
    /// (6.1+); older ones cost one extra GETLINK.
    ///
    /// With an alias, the host end is created down, tagged, then brought
    /// up. Changing an alias of an up device notifies NETDEV_CHANGE, and
    /// while the new end has no carrier yet IPv6 answers that by walking
    /// the netns's whole IPv6 routing table (rt6_sync_down_dev): O(every
    /// interface on the node), ~2.5 µs per interface here. A down device
    /// gets no notification, and coming up with no carrier costs no walk.
    pub fn veth_add(&self, spec: &VethSpec<'_>) -> Result<VethPair> {
        let op = format!("create veth {}", spec.name);
        let up_later = spec.up && spec.alias.is_some();
        let replies = self.request_collect(
            RouteNetlinkMessage::NewLink(spec.message(spec.up && !up_later)),
            netlink_packet_core::NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL | NLM_F_ECHO,
            &op,
        )?;
        let echoed = replies.iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => {
                let link = Link::from_message(l);
                (link.name == spec.name && link.peer_index.is_some()).then_some(link)
            }
            _ => None,
        });
        let mut host = match echoed {
            Some(l) => l,
            None => self
                .link(spec.name.as_str())
                .map_err(|e| e.with_op(op.clone()))?,
        };
        // The echo is sent before the kernel applies IFLA_MASTER, within
        // the same (successful, hence complete) request.
        if spec.master.is_some() {
            host.master = spec.master;
        }
        if let Some(alias) = &spec.alias {
            if let Err(e) = self.link_set_alias(host.index, alias) {
                // Do not leave an untagged pair behind for the caller to leak.
                let _ = self.link_delete(host.index);
                return Err(e.with_op(format!("{op}: set alias")));
            }
            host.alias = Some(alias.clone());
        }
        if up_later {
            if let Err(e) = self.link_set_up(host.index, true) {
                let _ = self.link_delete(host.index);
                return Err(e.with_op(format!("{op}: set up")));
            }
            host.up = true;
        }
        let peer_index = host.peer_index.ok_or_else(|| {
            crate::error::Error::protocol(op, "kernel did not report the veth peer index")
        })?;
        Ok(VethPair { host, peer_index })
    }
}
