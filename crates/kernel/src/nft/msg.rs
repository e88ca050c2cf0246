//! nf_tables wire format: message headers, batches, and the table /
//! chain / rule messages podwire needs. Constants are from
//! <linux/netfilter/nf_tables.h> and <linux/netfilter/nfnetlink.h>.

use crate::attr::AttrWriter;

pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

pub const NFT_MSG_NEWTABLE: u16 = 0;
pub const NFT_MSG_DELTABLE: u16 = 2;
pub const NFT_MSG_NEWCHAIN: u16 = 3;
pub const NFT_MSG_NEWRULE: u16 = 6;
pub const NFT_MSG_GETRULE: u16 = 7;
pub const NFT_MSG_DELRULE: u16 = 8;
pub const NFT_MSG_NEWSET: u16 = 9;
pub const NFT_MSG_NEWSETELEM: u16 = 12;
pub const NFT_MSG_GETSETELEM: u16 = 13;
pub const NFT_MSG_DELSETELEM: u16 = 14;
pub const NFT_MSG_NEWGEN: u16 = 15;
pub const NFT_MSG_GETGEN: u16 = 16;
pub const NFT_MSG_GETTABLE: u16 = 1;

pub const NFTA_GEN_ID: u16 = 1;
/// BATCH_BEGIN's attribute: apply the batch only at this ruleset generation.
const NFNL_BATCH_GENID: u16 = 1;

pub const NFTA_SET_TABLE: u16 = 1;
pub const NFTA_SET_NAME: u16 = 2;
pub const NFTA_SET_FLAGS: u16 = 3;
pub const NFTA_SET_KEY_TYPE: u16 = 4;
pub const NFTA_SET_KEY_LEN: u16 = 5;
pub const NFTA_SET_DATA_TYPE: u16 = 6;
pub const NFTA_SET_DATA_LEN: u16 = 7;
pub const NFTA_SET_ID: u16 = 10;
pub const NFT_SET_MAP: u32 = 0x8;

pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
pub const NFTA_SET_ELEM_KEY: u16 = 1;
pub const NFTA_SET_ELEM_DATA: u16 = 2;
pub const NFTA_SET_ELEM_USERDATA: u16 = 6;
pub const NFTA_LIST_ELEM: u16 = 1;
pub const NFTA_DATA_VALUE: u16 = 1;

pub const NFTA_TABLE_NAME: u16 = 1;
/// A table's comment, encoded as a rule's ([`comment_userdata`]: libnftnl's TLV type 0 for both).
pub const NFTA_TABLE_USERDATA: u16 = 6;

pub const NFTA_CHAIN_TABLE: u16 = 1;
pub const NFTA_CHAIN_NAME: u16 = 3;
pub const NFTA_CHAIN_HOOK: u16 = 4;
pub const NFTA_CHAIN_TYPE: u16 = 7;
pub const NFTA_HOOK_HOOKNUM: u16 = 1;
pub const NFTA_HOOK_PRIORITY: u16 = 2;

pub const NFTA_RULE_TABLE: u16 = 1;
pub const NFTA_RULE_CHAIN: u16 = 2;
pub const NFTA_RULE_HANDLE: u16 = 3;
pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub const NFTA_RULE_USERDATA: u16 = 7;

/// libnftnl's userdata TLV type for a rule comment; using it makes our
/// tags show up as `comment "..."` in `nft list ruleset`.
pub const NFTNL_UDATA_RULE_COMMENT: u8 = 0;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
/// Send the new object back to us (with the handle the kernel gave it).
pub const NLM_F_ECHO: u16 = 0x8;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;

/// Appends one netlink message: nlmsghdr + nfgenmsg + attributes.
pub fn put_msg(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[u8],
) {
    let len = 16 + 4 + attrs.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: family, version (NFNETLINK_V0), res_id (big endian)
    out.push(family);
    out.push(0);
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
}

pub fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// A transaction: every message between BEGIN and END is applied
/// atomically by the kernel, or none is.
pub struct Batch {
    pub bytes: Vec<u8>,
    /// Sequence numbers of the messages that will be acknowledged.
    pub acked: Vec<u32>,
    next_seq: u32,
}

impl Batch {
    pub fn new(first_seq: u32) -> Batch {
        Batch::begin(first_seq, None)
    }

    /// A batch the kernel applies only if the ruleset is still at generation `genid` (else
    /// the whole batch fails with ERESTART): for a change computed from what was read.
    pub fn at_generation(first_seq: u32, genid: u32) -> Batch {
        Batch::begin(first_seq, Some(genid))
    }

    fn begin(first_seq: u32, genid: Option<u32>) -> Batch {
        let mut b = Batch {
            bytes: Vec::with_capacity(1024),
            acked: Vec::new(),
            next_seq: first_seq,
        };
        let seq = b.seq();
        let mut a = AttrWriter::new();
        if let Some(genid) = genid {
            a.be32(NFNL_BATCH_GENID, genid);
        }
        put_msg(
            &mut b.bytes,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            &a.buf,
        );
        b
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    pub fn add(&mut self, msg: u16, flags: u16, family: u8, attrs: &AttrWriter) {
        let seq = self.seq();
        self.acked.push(seq);
        put_msg(
            &mut self.bytes,
            nft_type(msg),
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            family,
            0,
            &attrs.buf,
        );
    }

    /// Closes the batch; returns the bytes and the last seq used.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u32>, u32) {
        let seq = self.seq();
        put_msg(
            &mut self.bytes,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        (self.bytes, self.acked, seq)
    }
}

/// Encodes a rule comment as libnftnl userdata.
pub fn comment_userdata(tag: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(tag.len() + 3);
    v.push(NFTNL_UDATA_RULE_COMMENT);
    v.push((tag.len() + 1) as u8);
    v.extend_from_slice(tag.as_bytes());
    v.push(0);
    v
}

/// Finds the comment in rule userdata.
pub fn comment_of(mut ud: &[u8]) -> Option<String> {
    while ud.len() >= 2 {
        let (ty, len) = (ud[0], ud[1] as usize);
        let value = ud.get(2..2 + len)?;
        if ty == NFTNL_UDATA_RULE_COMMENT {
            return Some(crate::attr::as_str(value));
        }
        ud = &ud[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_round_trip() {
        let ud = comment_userdata("podwire:net:abc:eth0");
        assert_eq!(ud[0], 0);
        assert_eq!(ud[1] as usize, "podwire:net:abc:eth0".len() + 1);
        assert_eq!(comment_of(&ud).as_deref(), Some("podwire:net:abc:eth0"));
        assert_eq!(comment_of(&[1, 2, 9, 9]), None);
    }

    #[test]
    fn batch_framing() {
        let mut b = Batch::new(100);
        let mut a = AttrWriter::new();
        a.str(NFTA_TABLE_NAME, "podwire");
        b.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, 1, &a);
        let (bytes, acked, last) = b.finish();
        assert_eq!(acked, vec![101]);
        assert_eq!(last, 102);
        // BEGIN: 20 bytes, type 0x10, res_id = subsys 10 big endian.
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 0x10);
        assert_eq!(&bytes[18..20], &[0, 10]);
        // NEWTABLE: type 10<<8, family inet.
        assert_eq!(u16::from_ne_bytes([bytes[24], bytes[25]]), 0x0a00);
        assert_eq!(bytes[36], 1);
    }
}
