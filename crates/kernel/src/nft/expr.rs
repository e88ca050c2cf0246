//! The few nf_tables expressions podwire's rules are made of, written
//! the way `nft` itself linearizes the same rules (so `nft list` shows
//! them in their natural form).

use ipnet::IpNet;

use crate::attr::AttrWriter;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// 16-byte register 1: big enough for an IPv6 address.
const NFT_REG_1: u32 = 1;
const NFT_REG_VERDICT: u32 = 0;

const NFT_META_NFPROTO: u32 = 15;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NF_ACCEPT: u32 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq = 0,
    Neq = 1,
}

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
    pub fn new(w: &'a mut AttrWriter) -> Self {
        Exprs { w }
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut AttrWriter)) {
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
        self.expr("payload", |d| {
            d.be32(1, NFT_REG_1); // DREG
            d.be32(2, NFT_PAYLOAD_NETWORK_HEADER); // BASE
            d.be32(3, offset); // OFFSET
            d.be32(4, len); // LEN
        });
    }

    fn bitwise(&mut self, mask: &[u8]) {
        let zero = vec![0u8; mask.len()];
        self.expr("bitwise", |d| {
            d.be32(1, NFT_REG_1); // SREG
            d.be32(2, NFT_REG_1); // DREG
            d.be32(3, mask.len() as u32); // LEN
            d.nest(4, |m| {
                m.bytes(NFTA_DATA_VALUE, mask);
            }); // MASK
            d.nest(5, |x| {
                x.bytes(NFTA_DATA_VALUE, &zero);
            }); // XOR
        });
    }

    fn cmp(&mut self, op: Cmp, value: &[u8]) {
        self.expr("cmp", |d| {
            d.be32(1, NFT_REG_1); // SREG
            d.be32(2, op as u32); // OP
            d.nest(3, |v| {
                v.bytes(NFTA_DATA_VALUE, value);
            }); // DATA
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

    pub fn masquerade(&mut self) {
        self.w.nest(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, "masq");
        });
    }

    pub fn accept(&mut self) {
        self.expr("immediate", |d| {
            d.be32(1, NFT_REG_VERDICT); // DREG
            d.nest(2, |data| {
                data.nest(NFTA_DATA_VERDICT, |v| {
                    v.be32(NFTA_VERDICT_CODE, NF_ACCEPT);
                });
            });
        });
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
