//! The nf_tables expressions podwire's rules are made of, written the
//! way `nft` itself linearizes the same rules (so `nft list` shows them
//! in their natural form; `nft --debug=netlink` prints the layout each
//! method mirrors).
//!
//! Registers: `REG_1` is the 16-byte register 1, which is also the first
//! of the 4-byte registers (`REG32_00`); a concatenation loads each part
//! into the next 4-byte register(s), zero-padded to 4 bytes.

use ipnet::IpNet;

use crate::attr::AttrWriter;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// 16-byte register 1: big enough for an IPv6 address.
pub const REG_1: u32 = 1;
/// The first 4-byte register: the same bytes as `REG_1`'s first four.
pub const REG32_00: u32 = 8;
const NFT_REG_1: u32 = REG_1;
const NFT_REG_VERDICT: u32 = 0;

const NFT_META_MARK: u32 = 3;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NF_ACCEPT: u32 = 1;
const IFNAMSIZ: usize = 16;
const NFT_JUMP: i32 = -3;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NFT_CT_STATUS: u32 = 2;
/// `fib ... type`: the route type (RTN_*) of the looked-up address.
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const RTN_LOCAL: u32 = 2;
const NFT_NAT_DNAT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq = 0,
    Neq = 1,
    Lt = 2,
    Lte = 3,
    Gt = 4,
    Gte = 5,
}

impl Cmp {
    pub fn from_u32(op: u32) -> Option<Cmp> {
        Some(match op {
            0 => Cmp::Eq,
            1 => Cmp::Neq,
            2 => Cmp::Lt,
            3 => Cmp::Lte,
            4 => Cmp::Gt,
            5 => Cmp::Gte,
            _ => return None,
        })
    }
}

/// `ct state` bits (NF_CT_STATE_BIT): what `ct state related` tests.
pub const CT_STATE_ESTABLISHED: u32 = 1 << 1;
pub const CT_STATE_RELATED: u32 = 1 << 2;
pub const CT_STATE_NEW: u32 = 1 << 3;
/// `ct direction reply` (IP_CT_DIR_REPLY).
pub const CT_DIR_REPLY: u8 = 1;
pub(crate) const NFT_CT_STATE: u32 = 0;
pub(crate) const NFT_CT_DIRECTION: u32 = 1;
/// `limit` unit: per second.
const NFT_LIMIT_PKTS: u32 = 0;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
}

/// Writes a rule's NFTA_RULE_EXPRESSIONS content.
pub struct Exprs<'a> {
    w: &'a mut AttrWriter,
}

impl<'a> Exprs<'a> {
    pub(crate) fn new(w: &'a mut AttrWriter) -> Self {
        Exprs { w }
    }

    pub(super) fn expr(&mut self, name: &str, data: impl FnOnce(&mut AttrWriter)) {
        self.w.nest(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, name);
            e.nest(NFTA_EXPR_DATA, data);
        });
    }

    /// `meta nfproto ipv4|ipv6`: needed in `inet` tables, which see both.
    pub fn nfproto(&mut self, v6: bool) {
        self.expr("meta", |d| {
            d.be32(2, NFT_META_NFPROTO); // NFTA_META_KEY
            d.be32(1, NFT_REG_1); // NFTA_META_DREG
        });
        self.cmp(Cmp::Eq, &[if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }]);
    }

    fn payload(&mut self, offset: u32, len: u32) {
        self.payload_to(NFT_PAYLOAD_NETWORK_HEADER, offset, len, NFT_REG_1);
    }

    pub(super) fn payload_to(&mut self, base: u32, offset: u32, len: u32, reg: u32) {
        self.expr("payload", |d| {
            d.be32(1, reg); // DREG
            d.be32(2, base); // BASE
            d.be32(3, offset); // OFFSET
            d.be32(4, len); // LEN
        });
    }

    pub(super) fn meta_load(&mut self, key: u32, reg: u32) {
        self.expr("meta", |d| {
            d.be32(2, key); // NFTA_META_KEY
            d.be32(1, reg); // NFTA_META_DREG
        });
    }

    pub(super) fn bitwise(&mut self, mask: &[u8]) {
        let zero = vec![0u8; mask.len()];
        self.bitwise_xor(mask, &zero);
    }

    /// `reg1 = (reg1 & mask) ^ xor`.
    fn bitwise_xor(&mut self, mask: &[u8], xor: &[u8]) {
        self.expr("bitwise", |d| {
            d.be32(1, NFT_REG_1); // SREG
            d.be32(2, NFT_REG_1); // DREG
            d.be32(3, mask.len() as u32); // LEN
            d.nest(4, |m| {
                m.bytes(NFTA_DATA_VALUE, mask);
            }); // MASK
            d.nest(5, |x| {
                x.bytes(NFTA_DATA_VALUE, xor);
            }); // XOR
        });
    }

    pub fn cmp(&mut self, op: Cmp, value: &[u8]) {
        self.expr("cmp", |d| {
            d.be32(1, NFT_REG_1); // SREG
            d.be32(2, op as u32); // OP
            d.nest(3, |v| {
                v.bytes(NFTA_DATA_VALUE, value);
            }); // DATA
        });
    }

    /// `fib daddr type local`: the destination is one of this host's addresses.
    pub fn daddr_is_local(&mut self) {
        self.expr("fib", |d| {
            d.be32(1, NFT_REG_1); // DREG
            d.be32(2, NFT_FIB_RESULT_ADDRTYPE); // RESULT
            d.be32(3, NFTA_FIB_F_DADDR); // FLAGS
        });
        // The route type is stored in host byte order.
        self.cmp(Cmp::Eq, &RTN_LOCAL.to_ne_bytes());
    }

    /// Loads `meta l4proto` (1 byte, zero-padded to 4) into `reg`.
    pub fn load_l4proto(&mut self, reg: u32) {
        self.meta_load(NFT_META_L4PROTO, reg);
    }

    /// Loads the transport header's destination port (`th dport`) into `reg`.
    pub fn load_th_dport(&mut self, reg: u32) {
        self.payload_to(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg);
    }

    /// Loads `ip daddr` (`v6`: `ip6 daddr`) into `reg`.
    pub fn load_daddr(&mut self, v6: bool, reg: u32) {
        let (offset, len) = if v6 { (24, 16) } else { (16, 4) };
        self.payload_to(NFT_PAYLOAD_NETWORK_HEADER, offset, len, reg);
    }

    /// `meta iifname @set`.
    pub fn iifname_in(&mut self, set: &str, set_id: u32) {
        self.meta_load(NFT_META_IIFNAME, NFT_REG_1);
        self.lookup(set, set_id, NFT_REG_1, None);
    }

    /// A set lookup on the key in `sreg`; with `dreg`, a map lookup whose
    /// value lands there. No match ends the rule.
    pub fn lookup(&mut self, set: &str, set_id: u32, sreg: u32, dreg: Option<u32>) {
        self.expr("lookup", |d| {
            d.be32(2, sreg); // SREG
            if let Some(dreg) = dreg {
                d.be32(3, dreg); // DREG
            }
            d.str(1, set); // SET
            d.be32(4, set_id); // SET_ID
        });
    }

    /// `dnat ip[6] to` the address in `addr_reg` and port in `port_reg`.
    pub fn dnat(&mut self, v6: bool, addr_reg: u32, port_reg: u32) {
        self.expr("nat", |d| {
            d.be32(1, NFT_NAT_DNAT); // TYPE
            d.be32(2, if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 } as u32); // FAMILY
            d.be32(3, addr_reg); // REG_ADDR_MIN
            d.be32(5, port_reg); // REG_PROTO_MIN
        });
    }

    /// `meta mark set meta mark or bits`.
    pub fn mark_or(&mut self, bits: u32) {
        self.meta_load(NFT_META_MARK, NFT_REG_1);
        self.bitwise_xor(&(!bits).to_ne_bytes(), &bits.to_ne_bytes());
        self.expr("meta", |d| {
            d.be32(2, NFT_META_MARK); // KEY
            d.be32(3, NFT_REG_1); // SREG
        });
    }

    /// `meta mark & bits == bits`.
    pub fn mark_has(&mut self, bits: u32) {
        self.meta_load(NFT_META_MARK, NFT_REG_1);
        self.bitwise(&bits.to_ne_bytes());
        self.cmp(Cmp::Eq, &bits.to_ne_bytes());
    }

    /// `ct status & bits != 0` (e.g. `ct status dnat`).
    pub fn ct_status_any(&mut self, bits: u32) {
        self.expr("ct", |d| {
            d.be32(2, NFT_CT_STATUS); // KEY
            d.be32(1, NFT_REG_1); // DREG
        });
        self.bitwise(&bits.to_ne_bytes());
        self.cmp(Cmp::Neq, &0u32.to_ne_bytes());
    }

    /// `ct direction reply`: the packet answers the connection's first packet.
    pub fn ct_direction_reply(&mut self) {
        self.expr("ct", |d| {
            d.be32(2, NFT_CT_DIRECTION); // KEY
            d.be32(1, NFT_REG_1); // DREG
        });
        self.cmp(Cmp::Eq, &[CT_DIR_REPLY]);
    }

    /// `ct state & bits != 0` (e.g. `ct state related` with [`CT_STATE_RELATED`]).
    pub fn ct_state_any(&mut self, bits: u32) {
        self.expr("ct", |d| {
            d.be32(2, NFT_CT_STATE); // KEY
            d.be32(1, NFT_REG_1); // DREG
        });
        self.bitwise(&bits.to_ne_bytes());
        self.cmp(Cmp::Neq, &0u32.to_ne_bytes());
    }

    /// `icmpv6 type lo-hi` (in an inet table: IPv6 only, ICMPv6 only), e.g. 133-137 for
    /// neighbour and router discovery and redirects.
    pub fn icmpv6_type_between(&mut self, lo: u8, hi: u8) {
        self.nfproto(true);
        self.meta_load(NFT_META_L4PROTO, NFT_REG_1);
        self.cmp(Cmp::Eq, &[58]);
        self.payload_to(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
        self.cmp(Cmp::Gte, &[lo]);
        self.cmp(Cmp::Lte, &[hi]);
    }

    /// `limit rate N/second burst B packets`: no match once over the rate.
    pub fn limit_per_second(&mut self, rate: u64, burst: u32) {
        self.expr("limit", |d| {
            d.be64(1, rate); // RATE
            d.be64(2, 1); // UNIT: seconds
            d.be32(3, burst); // BURST
            d.be32(4, NFT_LIMIT_PKTS); // TYPE
            d.be32(5, 0); // FLAGS
        });
    }

    /// `log prefix P group G`: to nflog group `group` (userspace reads it), not the kernel log.
    pub fn log_group(&mut self, group: u16, prefix: &str) {
        self.expr("log", |d| {
            d.bytes(1, &group.to_be_bytes()); // GROUP (be16)
            if !prefix.is_empty() {
                d.str(2, prefix); // PREFIX
            }
        });
    }

    /// `jump chain`.
    pub fn jump(&mut self, chain: &str) {
        self.expr("immediate", |d| {
            d.be32(1, NFT_REG_VERDICT); // DREG
            d.nest(2, |data| {
                data.nest(NFTA_DATA_VERDICT, |v| {
                    v.be32(NFTA_VERDICT_CODE, NFT_JUMP as u32);
                    v.str(NFTA_VERDICT_CHAIN, chain);
                });
            });
        });
    }

    /// `ip[6] saddr|daddr [!=] net`. Like nft: a byte-aligned prefix loads
    /// only its bytes; otherwise the whole address is loaded and masked.
    /// A /0 prefix matches everything and emits nothing.
    pub fn addr(&mut self, dir: Dir, op: Cmp, net: IpNet) {
        let (offset, octets): (u32, Vec<u8>) = match (net, dir) {
            (IpNet::V4(n), Dir::Src) => (12, n.network().octets().to_vec()),
            (IpNet::V4(n), Dir::Dst) => (16, n.network().octets().to_vec()),
            (IpNet::V6(n), Dir::Src) => (8, n.network().octets().to_vec()),
            (IpNet::V6(n), Dir::Dst) => (24, n.network().octets().to_vec()),
        };
        let plen = net.prefix_len() as usize;
        if plen == 0 {
            return;
        }
        if plen.is_multiple_of(8) {
            let n = plen / 8;
            self.payload(offset, n as u32);
            self.cmp(op, &octets[..n]);
        } else {
            let mask: Vec<u8> = (0..octets.len())
                .map(|i| match plen.saturating_sub(i * 8) {
                    0 => 0,
                    bits if bits >= 8 => 0xff,
                    bits => 0xffu8 << (8 - bits),
                })
                .collect();
            self.payload(offset, octets.len() as u32);
            self.bitwise(&mask);
            self.cmp(op, &octets);
        }
    }

    /// `iifname [!=] "name"`.
    pub fn iifname_is(&mut self, op: Cmp, name: &str) {
        self.meta_load(NFT_META_IIFNAME, NFT_REG_1);
        let mut padded = name.as_bytes().to_vec();
        padded.resize(IFNAMSIZ, 0);
        self.cmp(op, &padded);
    }

    /// `counter`: packets and bytes, shown by `nft list`.
    pub fn counter(&mut self) {
        self.w.nest(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, "counter");
        });
    }

    pub fn masquerade(&mut self) {
        self.w.nest(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, "masq");
        });
    }

    pub fn accept(&mut self) {
        self.verdict(NF_ACCEPT, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr;

    fn names(buf: &[u8]) -> Vec<String> {
        attr::iter(buf)
            .map(|(_, e)| attr::as_str(attr::find(e, NFTA_EXPR_NAME).unwrap()))
            .collect()
    }

    #[test]
    fn byte_aligned_prefix_skips_bitwise() {
        let mut w = AttrWriter::new();
        Exprs::new(&mut w).addr(Dir::Dst, Cmp::Neq, "10.251.0.0/16".parse().unwrap());
        assert_eq!(names(&w.buf), ["payload", "cmp"]);
    }

    #[test]
    fn odd_prefix_is_masked() {
        let mut w = AttrWriter::new();
        Exprs::new(&mut w).addr(Dir::Src, Cmp::Eq, "10.251.16.0/20".parse().unwrap());
        assert_eq!(names(&w.buf), ["payload", "bitwise", "cmp"]);
        let (_, bitwise) = attr::iter(&w.buf).nth(1).unwrap();
        let data = attr::find(bitwise, NFTA_EXPR_DATA).unwrap();
        let mask = attr::find(attr::find(data, 4).unwrap(), NFTA_DATA_VALUE).unwrap();
        assert_eq!(mask, &[0xff, 0xff, 0xf0, 0x00]);
    }

    #[test]
    fn zero_prefix_matches_all() {
        let mut w = AttrWriter::new();
        Exprs::new(&mut w).addr(Dir::Src, Cmp::Eq, "::/0".parse().unwrap());
        assert!(w.buf.is_empty());
    }
}
