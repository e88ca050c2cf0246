//! Bridge-port options set through AF_BRIDGE RTM_SETLINK: hairpin mode
//! (IFLA_PROTINFO/IFLA_BRPORT_MODE) and VLANs (IFLA_AF_SPEC /
//! IFLA_BRIDGE_VLAN_INFO). These need the port's ifindex: the AF_BRIDGE
//! handlers do not resolve names.

use netlink_packet_core::DefaultNla;
use netlink_packet_route::link::{
    AfSpecBridge, BridgeFlag, BridgeVlanInfo, BridgeVlanInfoFlags, LinkAttribute, LinkExtentMask,
    LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::link::LinkId;
use crate::netlink::Netlink;

const IFLA_BRPORT_MODE: u16 = 4;

/// A VLAN on a bridge port (or on the bridge itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BridgeVlan {
    pub vid: u16,
    /// Untagged ingress frames get this VLAN.
    pub pvid: bool,
    /// Egress frames of this VLAN leave untagged.
    pub untagged: bool,
}

impl BridgeVlan {
    /// A tagged-only VLAN.
    pub fn tagged(vid: u16) -> Self {
        BridgeVlan {
            vid,
            pvid: false,
            untagged: false,
        }
    }

    /// The port's native VLAN: PVID and egress untagged (a pod's access port).
    pub fn access(vid: u16) -> Self {
        BridgeVlan {
            vid,
            pvid: true,
            untagged: true,
        }
    }

    fn info(&self) -> BridgeVlanInfo {
        let mut flags = BridgeVlanInfoFlags::empty();
        if self.pvid {
            flags |= BridgeVlanInfoFlags::Pvid;
        }
        if self.untagged {
            flags |= BridgeVlanInfoFlags::Untagged;
        }
        BridgeVlanInfo {
            flags,
            vid: self.vid,
        }
    }
}

fn bridge_msg(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = index;
    msg
}

impl Netlink {
    /// Sets hairpin mode on a bridge port (reflect frames back out the
    /// port they came in, so a pod can reach itself through a service IP).
    pub fn bridge_port_set_hairpin<'a>(&self, port: impl Into<LinkId<'a>>, on: bool) -> Result<()> {
        let port = port.into();
        let op = format!("set hairpin {} on {port}", if on { "on" } else { "off" });
        let index = self.link_index(port).map_err(|e| e.with_op(op.clone()))?;
        let mut msg = bridge_msg(index);
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![on as u8])),
        ]));
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &op)
    }

    /// Adds a VLAN to a bridge port. Needs vlan_filtering on the bridge to
    /// have an effect on traffic.
    pub fn bridge_vlan_add<'a>(&self, port: impl Into<LinkId<'a>>, vlan: BridgeVlan) -> Result<()> {
        self.bridge_vlan_change(port.into(), vlan, false, true)
    }

    /// Removes a VLAN from a bridge port.
    pub fn bridge_vlan_delete<'a>(&self, port: impl Into<LinkId<'a>>, vid: u16) -> Result<()> {
        self.bridge_vlan_change(port.into(), BridgeVlan::tagged(vid), false, false)
    }

    /// Adds a VLAN to the bridge device itself ("self"), e.g. so the
    /// host can talk on it through the bridge.
    pub fn bridge_self_vlan_add<'a>(
        &self,
        bridge: impl Into<LinkId<'a>>,
        vlan: BridgeVlan,
    ) -> Result<()> {
        self.bridge_vlan_change(bridge.into(), vlan, true, true)
    }

    fn bridge_vlan_change(
        &self,
        id: LinkId<'_>,
        vlan: BridgeVlan,
        on_self: bool,
        add: bool,
    ) -> Result<()> {
        let op = format!(
            "{} vlan {} {} {id}",
            if add { "add" } else { "delete" },
            vlan.vid,
            if add { "to" } else { "from" }
        );
        let index = self.link_index(id).map_err(|e| e.with_op(op.clone()))?;
        let mut msg = bridge_msg(index);
        let mut spec = Vec::new();
        if on_self {
            spec.push(AfSpecBridge::Flags(BridgeFlag::LowerDev));
        }
        spec.push(AfSpecBridge::VlanInfo(vlan.info()));
        msg.attributes.push(LinkAttribute::AfSpecBridge(spec));
        let req = if add {
            RouteNetlinkMessage::SetLink(msg)
        } else {
            RouteNetlinkMessage::DelLink(msg)
        };
        self.request(req, 0, &op)
    }

    /// VLANs configured on a bridge port (or on a bridge, its "self" VLANs).
    pub fn bridge_vlans<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<Vec<BridgeVlan>> {
        let id = id.into();
        let op = format!("list vlans of {id}");
        let index = self.link_index(id).map_err(|e| e.with_op(op.clone()))?;
        let mut req = bridge_msg(0);
        req.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan]));
        let mut out = Vec::new();
        for m in self.dump(RouteNetlinkMessage::GetLink(req), &op)? {
            let RouteNetlinkMessage::NewLink(l) = m else {
                continue;
            };
            if l.header.index != index {
                continue;
            }
            for a in &l.attributes {
                let LinkAttribute::AfSpecBridge(spec) = a else {
                    continue;
                };
                for s in spec {
                    if let AfSpecBridge::VlanInfo(v) = s {
                        out.push(BridgeVlan {
                            vid: v.vid,
                            pvid: v.flags.contains(BridgeVlanInfoFlags::Pvid),
                            untagged: v.flags.contains(BridgeVlanInfoFlags::Untagged),
                        });
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    // This kernel may lack CONFIG_BRIDGE_VLAN_FILTERING, so pin the wire
    // format here: ifinfomsg(AF_BRIDGE, index) + IFLA_AF_SPEC {
    // IFLA_BRIDGE_VLAN_INFO { flags = PVID|UNTAGGED, vid } }, as iproute2's
    // `bridge vlan add dev X vid 42 pvid untagged` sends it.
    #[test]
    fn vlan_add_wire_format() {
        let mut msg = bridge_msg(7);
        msg.attributes
            .push(LinkAttribute::AfSpecBridge(vec![AfSpecBridge::VlanInfo(
                BridgeVlan::access(42).info(),
            )]));
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        assert_eq!(buf[0], libc::AF_BRIDGE as u8);
        assert_eq!(u32::from_ne_bytes(buf[4..8].try_into().unwrap()), 7);
        let attrs = &buf[16..];
        // IFLA_AF_SPEC = 26, containing one 8-byte IFLA_BRIDGE_VLAN_INFO (2).
        assert_eq!(u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff, 26);
        let inner = &attrs[4..];
        assert_eq!(u16::from_ne_bytes([inner[0], inner[1]]), 8);
        assert_eq!(u16::from_ne_bytes([inner[2], inner[3]]), 2);
        assert_eq!(u16::from_ne_bytes([inner[4], inner[5]]), 0x2 | 0x4);
        assert_eq!(u16::from_ne_bytes([inner[6], inner[7]]), 42);
    }

    #[test]
    fn hairpin_goes_in_nested_protinfo() {
        let mut msg = bridge_msg(3);
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![1])),
        ]));
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        let attrs = &buf[16..];
        // IFLA_PROTINFO = 12 with NLA_F_NESTED: br_setlink ignores the
        // non-nested (legacy port state) form.
        assert_eq!(u16::from_ne_bytes([attrs[2], attrs[3]]), 12 | 0x8000);
        assert_eq!(u16::from_ne_bytes([attrs[6], attrs[7]]), IFLA_BRPORT_MODE);
        assert_eq!(attrs[8], 1);
    }
}
