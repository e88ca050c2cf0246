//! What rules of a `bridge` family table look at: the frame's input port, Ethernet and ARP
//! fields, the IPv4/IPv6 source, ICMPv6 type and neighbour-advertisement target; lookups of
//! concatenated keys (`iifname . ether saddr`) in sets, with or without negation; named counters;
//! drop and goto. Laid out as `nft --debug=netlink` shows nft's own rules.

use ipnet::IpNet;

use super::expr::{Cmp, Exprs, REG32_00, REG_1};

const NFT_PAYLOAD_LL_HEADER: u32 = 0;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_L4PROTO: u32 = 16;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFT_OBJECT_COUNTER: u32 = 1;
const NF_DROP: u32 = 0;
const NFT_GOTO: i32 = -4;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
/// Interface names are matched as IFNAMSIZ bytes, NUL-padded.
const IFNAMSIZ: usize = 16;

/// A field of a bridged frame that a rule loads into a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `iifname`: the bridge port the frame came in through (16 bytes).
    Iifname,
    /// `ether saddr`
    EtherSaddr,
    /// `ether type` (as on the wire: a VLAN-tagged frame is 0x8100)
    EtherType,
    /// ARP hardware and protocol address lengths (`arp hlen . arp plen`, 2 bytes)
    ArpLens,
    /// `arp saddr ether`: the sender hardware address
    ArpSenderMac,
    /// `arp saddr ip`: the sender protocol address
    ArpSenderIp,
    /// `ip saddr`
    IpSaddr,
    /// `ip6 saddr`
    Ip6Saddr,
    /// `meta l4proto` (1 byte; IPv6 extension headers skipped)
    L4Proto,
    /// `icmpv6 type` (the first byte of the transport header)
    Icmpv6Type,
    /// A neighbour advertisement's target address (`@th,64,128`)
    NaTarget,
    /// `ip daddr`
    IpDaddr,
    /// `ip6 daddr`
    Ip6Daddr,
    /// `th dport`: the transport header's destination port (TCP, UDP, SCTP, DCCP, UDP-Lite)
    ThDport,
}

impl Field {
    /// Its length in bytes.
    pub fn byte_len(self) -> u32 {
        match self {
            Field::Iifname => IFNAMSIZ as u32,
            Field::EtherSaddr | Field::ArpSenderMac => 6,
            Field::EtherType | Field::ArpLens => 2,
            Field::ArpSenderIp | Field::IpSaddr | Field::IpDaddr => 4,
            Field::Ip6Saddr | Field::NaTarget | Field::Ip6Daddr => 16,
            Field::ThDport => 2,
            Field::L4Proto | Field::Icmpv6Type => 1,
        }
    }

    /// (payload base, offset) for the fields read from the frame; `None` for meta keys.
    fn payload(self) -> Option<(u32, u32)> {
        Some(match self {
            Field::Iifname | Field::L4Proto => return None,
            Field::EtherSaddr => (NFT_PAYLOAD_LL_HEADER, 6),
            Field::EtherType => (NFT_PAYLOAD_LL_HEADER, 12),
            Field::ArpLens => (NFT_PAYLOAD_NETWORK_HEADER, 4),
            Field::ArpSenderMac => (NFT_PAYLOAD_NETWORK_HEADER, 8),
            Field::ArpSenderIp => (NFT_PAYLOAD_NETWORK_HEADER, 14),
            Field::IpSaddr => (NFT_PAYLOAD_NETWORK_HEADER, 12),
            Field::Ip6Saddr => (NFT_PAYLOAD_NETWORK_HEADER, 8),
            Field::Icmpv6Type => (NFT_PAYLOAD_TRANSPORT_HEADER, 0),
            Field::NaTarget => (NFT_PAYLOAD_TRANSPORT_HEADER, 8),
            Field::IpDaddr => (NFT_PAYLOAD_NETWORK_HEADER, 16),
            Field::Ip6Daddr => (NFT_PAYLOAD_NETWORK_HEADER, 24),
            Field::ThDport => (NFT_PAYLOAD_TRANSPORT_HEADER, 2),
        })
    }
}

/// Length of a concatenation part in a register or key: padded to 4 bytes.
fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// An interface name as a key part: IFNAMSIZ bytes, NUL-padded.
pub fn ifname_key(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.resize(IFNAMSIZ, 0);
    k
}

/// The key of a concatenated set element, e.g. `[&ifname_key(port), &mac]`: each part padded
/// to 4 bytes, as the registers hold it.
pub fn concat_key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::new();
    for p in parts {
        k.extend_from_slice(p);
        k.resize(padded(k.len()), 0);
    }
    k
}

impl Exprs<'_> {
    /// Loads `field` into `reg`.
    pub fn load(&mut self, field: Field, reg: u32) {
        match field.payload() {
            Some((base, offset)) => self.payload_to(base, offset, field.byte_len(), reg),
            None if field == Field::Iifname => self.meta_load(NFT_META_IIFNAME, reg),
            None => self.meta_load(NFT_META_L4PROTO, reg),
        }
    }

    /// `field op value` (`value` as the field's bytes on the wire).
    pub fn field_cmp(&mut self, field: Field, op: Cmp, value: &[u8]) {
        self.load(field, REG_1);
        self.cmp(op, value);
    }

    /// `field` (an address) inside `net`, e.g. `ip6 saddr fe80::/10`.
    pub fn field_in(&mut self, field: Field, net: IpNet) {
        let addr = match net.network() {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mask = match net.netmask() {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        self.load(field, REG_1);
        self.bitwise(&mask);
        self.cmp(Cmp::Eq, &addr);
    }

    /// `parts[0] . parts[1] ... [!=] @set`: each part loaded into the next 4-byte registers.
    pub fn concat_lookup(&mut self, parts: &[Field], set: &str, set_id: u32, negate: bool) {
        let mut reg = REG32_00;
        for &p in parts {
            self.load(p, reg);
            reg += padded(p.byte_len() as usize) as u32 / 4;
        }
        self.expr("lookup", |d| {
            d.str(1, set); // SET
            d.be32(2, REG32_00); // SREG
            d.be32(4, set_id); // SET_ID
            if negate {
                d.be32(5, NFT_LOOKUP_F_INV); // FLAGS
            }
        });
    }

    /// `parts... vmap @map`: the map's verdict for the concatenated key (no element: on).
    pub fn concat_vmap(&mut self, parts: &[Field], map: &str) {
        let mut reg = REG32_00;
        for &p in parts {
            self.load(p, reg);
            reg += padded(p.byte_len() as usize) as u32 / 4;
        }
        self.expr("lookup", |d| {
            d.str(1, map); // SET
            d.be32(2, REG32_00); // SREG
            d.be32(3, 0); // DREG: the verdict register
        });
    }

    /// `counter name "..."`: adds the packet to a named counter of the table.
    pub fn count(&mut self, counter: &str) {
        self.expr("objref", |d| {
            d.be32(1, NFT_OBJECT_COUNTER); // IMM_TYPE
            d.str(2, counter); // IMM_NAME
        });
    }

    /// `drop`.
    pub fn discard(&mut self) {
        self.verdict(NF_DROP, None);
    }

    /// `goto chain`: on, without coming back.
    pub fn goto(&mut self, chain: &str) {
        self.verdict(NFT_GOTO as u32, Some(chain));
    }

    pub(super) fn verdict(&mut self, code: u32, chain: Option<&str>) {
        self.expr("immediate", |d| {
            d.be32(1, 0); // DREG: the verdict register
            d.nest(2, |data| {
                data.nest(NFTA_DATA_VERDICT, |v| {
                    v.be32(NFTA_VERDICT_CODE, code);
                    if let Some(chain) = chain {
                        v.str(NFTA_VERDICT_CHAIN, chain);
                    }
                });
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::{self, AttrWriter};

    #[test]
    fn concatenated_keys_pad_each_part_to_4_bytes() {
        let mac = [2, 0, 0, 0, 0, 1];
        let k = concat_key(&[&ifname_key("veth1"), &mac]);
        assert_eq!(k.len(), 24);
        assert_eq!(&k[..5], b"veth1");
        assert_eq!(&k[16..22], &mac);
        assert_eq!(concat_key(&[&ifname_key("v"), &[10, 0, 0, 1]]).len(), 20);
    }

    #[test]
    fn concat_lookup_fills_consecutive_registers() {
        let mut w = AttrWriter::new();
        Exprs::new(&mut w).concat_lookup(&[Field::Iifname, Field::EtherSaddr], "s", 1, true);
        let regs: Vec<u32> = attr::iter(&w.buf)
            .filter_map(|(_, e)| {
                let data = attr::find(e, 2)?;
                // meta DREG is attribute 1, payload DREG too; lookup has SREG 2.
                attr::find(data, 1).and_then(|r| r.try_into().ok().map(u32::from_be_bytes))
            })
            .collect();
        assert_eq!(&regs[..2], &[REG32_00, REG32_00 + 4]);
    }
}
