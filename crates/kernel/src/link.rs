//! Links: read, list, delete, and change the common settings (up, master,
//! MTU, MAC, promisc, name, netns). Bridges, veths and bridge-port
//! options have their own modules.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet, AfSpecUnspec, BridgeBooleanOptionFlags, InetDevConf, InfoBridge, InfoBridgePort,
    InfoData, InfoPortData, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, State,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{Error, Result};
use crate::mac::MacAddr;
use crate::netlink::Netlink;
use crate::netns::Netns;
use crate::vxlan::VxlanSpec;

use std::os::fd::{AsFd, AsRawFd};

/// Names a link in a request: by index or by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkId<'a> {
    Index(u32),
    Name(&'a str),
}

impl From<u32> for LinkId<'_> {
    fn from(i: u32) -> Self {
        LinkId::Index(i)
    }
}

impl<'a> From<&'a str> for LinkId<'a> {
    fn from(n: &'a str) -> Self {
        LinkId::Name(n)
    }
}

impl<'a> From<&'a String> for LinkId<'a> {
    fn from(n: &'a String) -> Self {
        LinkId::Name(n)
    }
}

impl std::fmt::Display for LinkId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkId::Index(i) => write!(f, "link #{i}"),
            LinkId::Name(n) => write!(f, "link {n}"),
        }
    }
}

/// Operational state (RFC 2863), as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperState {
    Up,
    Down,
    LowerLayerDown,
    Dormant,
    Unknown,
    Other,
}

/// A snapshot of a link's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Ethernet address; `None` for links without a 6-byte address.
    pub mac: Option<MacAddr>,
    pub mtu: u32,
    /// Index of the bridge (or bond...) this link is enslaved to.
    pub master: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    pub oper_state: OperState,
    /// Promiscuous mode explicitly requested by userspace.
    pub promisc: bool,
    /// IFLA_INFO_KIND: "veth", "bridge", ... `None` for physical devices.
    pub kind: Option<String>,
    /// IFLA_LINK: for a veth, the peer's ifindex (possibly in another netns).
    pub peer_index: Option<u32>,
    /// IFLA_LINK_NETNSID: the netns id `peer_index` lives in, when not ours.
    pub peer_netnsid: Option<i32>,
    /// For a bridge port: hairpin mode.
    pub hairpin: Option<bool>,
    /// For a bridge: whether VLAN filtering is on.
    pub vlan_filtering: Option<bool>,
    /// For a bridge: whether it refuses to learn source MACs from link-local frames
    /// (01:80:c2:00:00:0X, e.g. LLDP), which it would otherwise do before any netfilter hook.
    pub no_linklocal_learn: Option<bool>,
    /// IFLA_IFALIAS: free text a plugin can tag its links with.
    pub alias: Option<String>,
    /// For a VXLAN device: its tunnel parameters.
    pub vxlan: Option<VxlanSpec>,
}

impl Link {
    pub(crate) fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: None,
            mtu: 0,
            master: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            oper_state: OperState::Unknown,
            promisc: msg.header.flags.contains(LinkFlags::Promisc),
            kind: None,
            peer_index: None,
            peer_netnsid: None,
            hairpin: None,
            vlan_filtering: None,
            no_linklocal_learn: None,
            alias: None,
            vxlan: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
                LinkAttribute::Address(a) => link.mac = MacAddr::from_slice(a),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Controller(m) if *m != 0 => link.master = Some(*m),
                LinkAttribute::Link(l) => link.peer_index = Some(*l),
                LinkAttribute::LinkNetNsId(id) => link.peer_netnsid = Some(*id),
                LinkAttribute::OperState(s) => {
                    link.oper_state = match s {
                        State::Up => OperState::Up,
                        State::Down => OperState::Down,
                        State::LowerLayerDown => OperState::LowerLayerDown,
                        State::Dormant => OperState::Dormant,
                        State::Unknown => OperState::Unknown,
                        _ => OperState::Other,
                    }
                }
                LinkAttribute::LinkInfo(infos) => read_link_info(&mut link, infos),
                _ => {}
            }
        }
        if let Some(v) = &mut link.vxlan {
            (v.name, v.mtu, v.mac) = (link.name.clone(), Some(link.mtu), link.mac);
        }
        link
    }
}

fn read_link_info(link: &mut Link, infos: &[LinkInfo]) {
    for info in infos {
        match info {
            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
            LinkInfo::Data(InfoData::Vxlan(data)) => {
                link.vxlan = Some(VxlanSpec::from_info(&link.name, data));
            }
            LinkInfo::Data(InfoData::Bridge(opts)) => {
                for o in opts {
                    match o {
                        InfoBridge::VlanFiltering(v) => link.vlan_filtering = Some(*v),
                        InfoBridge::MultiBoolOpt(b) => {
                            link.no_linklocal_learn =
                                Some(b.value.contains(BridgeBooleanOptionFlags::NoLinkLocalLearn))
                        }
                        _ => {}
                    }
                }
            }
            LinkInfo::PortData(InfoPortData::BridgePort(opts)) => {
                for o in opts {
                    if let InfoBridgePort::HairpinMode(v) = o {
                        link.hairpin = Some(*v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A link message addressing `id`: by index in the header, or by name
/// through IFLA_IFNAME with index 0 (the kernel resolves it).
pub(crate) fn addressed(id: LinkId<'_>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    match id {
        LinkId::Index(i) => msg.header.index = i,
        LinkId::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.to_string())),
    }
    msg
}

impl Netlink {
    /// Reads one link.
    pub fn link<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<Link> {
        let id = id.into();
        let op = format!("get {id}");
        let mut msg = addressed(id);
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let replies = self.request_collect(RouteNetlinkMessage::GetLink(msg), 0, &op)?;
        replies
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .ok_or_else(|| Error::protocol(op, "no link in reply"))
    }

    /// Resolves a link to its index (no round trip when given an index).
    pub fn link_index<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<u32> {
        match id.into() {
            LinkId::Index(i) => Ok(i),
            id => Ok(self.link(id)?.index),
        }
    }

    /// All links of this handle's netns.
    pub fn links(&self) -> Result<Vec<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let replies = self.dump(RouteNetlinkMessage::GetLink(msg), "list links")?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }

    /// Deletes a link (for a veth, both ends go). Fails with
    /// `is_not_found()` when it is already gone; see `ResultExt`.
    pub fn link_delete<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<()> {
        let id = id.into();
        self.request(
            RouteNetlinkMessage::DelLink(addressed(id)),
            0,
            &format!("delete {id}"),
        )
    }

    fn set_link(&self, msg: LinkMessage, op: &str) -> Result<()> {
        self.request(RouteNetlinkMessage::SetLink(msg), 0, op)
    }

    /// Sets the link administratively up or down.
    pub fn link_set_up<'a>(&self, id: impl Into<LinkId<'a>>, up: bool) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        let what = if up { "up" } else { "down" };
        self.set_link(msg, &format!("set {id} {what}"))
    }

    /// Brings the link up with `net.ipv4.conf.<link>.arp_notify` on, in the same request: from
    /// then on the kernel sends a gratuitous ARP for each of the link's IPv4 addresses whenever
    /// its MAC is set (even to itself, see [`Netlink::link_set_mac`]) or it comes up again.
    pub fn link_set_up_arp_notify<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.header.change_mask = LinkFlags::Up;
        msg.header.flags = LinkFlags::Up;
        let mut conf = InetDevConf::default();
        conf.arp_notify = 1;
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                AfSpecInet::DevConfRequest(conf),
            ])]));
        self.set_link(msg, &format!("set {id} up arp_notify"))
    }

    /// Enslaves the link to `master` (a bridge index), or frees it with `None`.
    pub fn link_set_master<'a>(
        &self,
        id: impl Into<LinkId<'a>>,
        master: Option<u32>,
    ) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.attributes
            .push(LinkAttribute::Controller(master.unwrap_or(0)));
        let op = match master {
            Some(m) => format!("set {id} master #{m}"),
            None => format!("set {id} nomaster"),
        };
        self.set_link(msg, &op)
    }

    pub fn link_set_mtu<'a>(&self, id: impl Into<LinkId<'a>>, mtu: u32) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(msg, &format!("set {id} mtu {mtu}"))
    }

    pub fn link_set_mac<'a>(&self, id: impl Into<LinkId<'a>>, mac: MacAddr) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        self.set_link(msg, &format!("set {id} address {mac}"))
    }

    pub fn link_set_promisc<'a>(&self, id: impl Into<LinkId<'a>>, on: bool) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.header.change_mask = LinkFlags::Promisc;
        if on {
            msg.header.flags = LinkFlags::Promisc;
        }
        let what = if on { "on" } else { "off" };
        self.set_link(msg, &format!("set {id} promisc {what}"))
    }

    /// Sets IFLA_IFALIAS, free text shown by `ip link` (an owner tag).
    pub fn link_set_alias<'a>(&self, id: impl Into<LinkId<'a>>, alias: &str) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.attributes
            .push(LinkAttribute::IfAlias(alias.to_string()));
        self.set_link(msg, &format!("set {id} alias {alias:?}"))
    }

    /// Renames a link. The kernel refuses (EBUSY) while it is up.
    pub fn link_rename<'a>(&self, id: impl Into<LinkId<'a>>, new_name: &str) -> Result<()> {
        let id = id.into();
        let op = format!("rename {id} to {new_name}");
        let index = self.link_index(id).map_err(|e| e.with_op(op.clone()))?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        self.set_link(msg, &op)
    }

    /// Moves the link into another netns (it leaves this handle's view).
    pub fn link_set_netns<'a>(&self, id: impl Into<LinkId<'a>>, ns: &Netns) -> Result<()> {
        let id = id.into();
        let mut msg = addressed(id);
        msg.attributes
            .push(LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd()));
        self.set_link(msg, &format!("move {id} to netns {}", ns.path().display()))
    }

    /// Creates a link from a raw message (NLM_F_CREATE|NLM_F_EXCL), for
    /// kinds this crate has no helper for.
    pub fn link_add_raw(&self, msg: LinkMessage, op: &str) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            op,
        )
    }
}
