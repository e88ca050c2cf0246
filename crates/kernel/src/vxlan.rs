//! VXLAN devices: the overlay a multi-node agent uses between nodes that share no L2 segment.
//! Learning is off: every remote VTEP is programmed (FDB + neighbour), never flooded for.

use std::net::IpAddr;

use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo};

use crate::error::Result;
use crate::mac::MacAddr;
use crate::netlink::Netlink;

/// What a VXLAN device is, as created and as read back (`Link::vxlan`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    /// Destination UDP port (flannel's and the kernel's Linux default: 8472).
    pub port: u16,
    /// Source address of the encapsulated packets (this node's address).
    pub local: Option<IpAddr>,
    /// Underlay device the packets leave through.
    pub underlay: Option<u32>,
    pub learning: bool,
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
}

impl VxlanSpec {
    pub fn new(name: impl Into<String>, vni: u32, port: u16) -> Self {
        VxlanSpec {
            name: name.into(),
            vni,
            port,
            local: None,
            underlay: None,
            learning: false,
            mtu: None,
            mac: None,
        }
    }

    fn message(&self) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(self.name.clone()));
        if let Some(mtu) = self.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = self.mac {
            msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        let mut data = vec![
            InfoVxlan::Id(self.vni),
            InfoVxlan::Port(self.port),
            InfoVxlan::Learning(self.learning),
        ];
        match self.local {
            Some(IpAddr::V4(a)) => data.push(InfoVxlan::Local(a)),
            Some(IpAddr::V6(a)) => data.push(InfoVxlan::Local6(a)),
            None => {}
        }
        if let Some(dev) = self.underlay {
            data.push(InfoVxlan::Link(dev));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(data)),
        ]));
        msg
    }

    /// Reads the VXLAN part of a link message (`None` for other kinds).
    pub(crate) fn from_info(name: &str, data: &[InfoVxlan]) -> VxlanSpec {
        let mut s = VxlanSpec::new(name, 0, 0);
        for d in data {
            match d {
                InfoVxlan::Id(v) => s.vni = *v,
                InfoVxlan::Port(p) => s.port = *p,
                InfoVxlan::Learning(l) => s.learning = *l,
                InfoVxlan::Local(a) => s.local = Some((*a).into()),
                InfoVxlan::Local6(a) => s.local = Some((*a).into()),
                InfoVxlan::Link(l) if *l != 0 => s.underlay = Some(*l),
                _ => {}
            }
        }
        s
    }

    /// Whether an existing device (read back) does what `self` asks: the tunnel parameters the
    /// kernel cannot change in place (VNI, port, local address, underlay, learning).
    pub fn tunnel_matches(&self, existing: &VxlanSpec) -> bool {
        self.vni == existing.vni
            && self.port == existing.port
            && self.local == existing.local
            && self.underlay == existing.underlay
            && self.learning == existing.learning
    }
}

impl Netlink {
    /// Creates a VXLAN device (down); EEXIST if the name is taken.
    pub fn vxlan_add(&self, spec: &VxlanSpec) -> Result<()> {
        self.link_add_raw(
            spec.message(),
            &format!("create vxlan {} (vni {})", spec.name, spec.vni),
        )
    }
}
