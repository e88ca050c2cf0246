//! Linux bridges: create, and "ensure" for idempotent plugin ADDs.

use netlink_packet_route::link::{
    BridgeBooleanOptionFlags, BridgeBooleanOptions, InfoBridge, InfoData, InfoKind, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};

use crate::error::{Error, Result};
use crate::link::Link;
use crate::mac::MacAddr;
use crate::netlink::Netlink;

/// What bridge to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
    /// `None` leaves the kernel default (off).
    pub vlan_filtering: Option<bool>,
    /// Bring it up in the creating request.
    pub up: bool,
    /// Learn no source MAC from link-local frames (see [`Link::no_linklocal_learn`]).
    pub no_linklocal_learn: bool,
}

impl BridgeSpec {
    pub fn new(name: impl Into<String>) -> Self {
        BridgeSpec {
            name: name.into(),
            ..Default::default()
        }
    }
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.mac = Some(mac);
        self
    }
    pub fn vlan_filtering(mut self, on: bool) -> Self {
        self.vlan_filtering = Some(on);
        self
    }
    pub fn up(mut self) -> Self {
        self.up = true;
        self
    }
    pub fn no_linklocal_learn(mut self) -> Self {
        self.no_linklocal_learn = true;
        self
    }

    fn message(&self) -> LinkMessage {
        let mut msg = LinkMessage::default();
        if self.up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        msg.attributes
            .push(LinkAttribute::IfName(self.name.clone()));
        if let Some(mtu) = self.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = self.mac {
            msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        let mut info = vec![LinkInfo::Kind(InfoKind::Bridge)];
        let mut data = Vec::new();
        if let Some(v) = self.vlan_filtering {
            data.push(InfoBridge::VlanFiltering(v));
        }
        if self.no_linklocal_learn {
            data.push(no_ll_learn(true));
        }
        if !data.is_empty() {
            info.push(LinkInfo::Data(InfoData::Bridge(data)));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(info));
        msg
    }
}

fn no_ll_learn(on: bool) -> InfoBridge {
    let flag = BridgeBooleanOptionFlags::NoLinkLocalLearn;
    InfoBridge::MultiBoolOpt(BridgeBooleanOptions {
        value: if on {
            flag
        } else {
            BridgeBooleanOptionFlags::empty()
        },
        mask: flag,
    })
}

impl Netlink {
    /// Turns the bridge's learning from link-local frames off (`on`) or back on.
    pub fn bridge_set_no_linklocal_learn(&self, index: u32, on: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![no_ll_learn(on)])),
        ]));
        // RTM_NEWLINK without NLM_F_CREATE: the kernel's changelink (RTM_SETLINK ignores
        // IFLA_LINKINFO).
        self.request(
            netlink_packet_route::RouteNetlinkMessage::NewLink(msg),
            0,
            &format!("set no_linklocal_learn {} on bridge #{index}", on as u8),
        )
    }

    /// Creates a bridge; EEXIST if the name is taken.
    pub fn bridge_add(&self, spec: &BridgeSpec) -> Result<()> {
        self.link_add_raw(spec.message(), &format!("create bridge {}", spec.name))
    }

    /// Creates the bridge unless it exists, and returns it. An existing
    /// bridge is used as it is (only brought up if `spec.up`); an existing
    /// link of another kind with that name is an error.
    pub fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<Link> {
        let op = format!("ensure bridge {}", spec.name);
        let existed = match self.bridge_add(spec) {
            Ok(()) => false,
            Err(e) if e.is_exists() => true,
            Err(e) => return Err(e),
        };
        let link = self
            .link(spec.name.as_str())
            .map_err(|e| e.with_op(op.clone()))?;
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::invalid(
                op,
                format!(
                    "a link of kind {} already has that name",
                    link.kind.as_deref().unwrap_or("device")
                ),
            ));
        }
        if existed && spec.up && !link.up {
            self.link_set_up(link.index, true)?;
            return self.link(link.index);
        }
        Ok(link)
    }
}
