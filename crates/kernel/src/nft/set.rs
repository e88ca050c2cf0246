//! Named sets and maps, their elements, and transactions that build
//! tables, chains, sets and rules in one batch. An element carries a tag
//! (a libnftnl comment, shown by `nft list`), so its owner can be found
//! again by key in one request: no listing on the hot path.

use super::expr::Exprs;
use super::msg::*;
use super::{Nftables, Table};
use crate::attr::{self, AttrWriter};
use crate::error::Result;

/// A named set (`data: None`) or map of ours. Types are nft's datatype
/// ids (`type_concat` for concatenations): the kernel ignores them, `nft
/// list` prints keys by them.
#[derive(Clone, Copy, Debug)]
pub struct SetSpec<'a> {
    pub name: &'a str,
    /// Unique in the table: rules created in the same batch refer to the set by it.
    pub id: u32,
    pub key_type: u32,
    pub key_len: u32,
    /// A map's value: (type, length).
    pub data: Option<(u32, u32)>,
}

/// nft's datatype ids (src/datatype.h), for `SetSpec`.
pub mod datatype {
    pub const IPADDR: u32 = 7;
    pub const IP6ADDR: u32 = 8;
    pub const INET_PROTOCOL: u32 = 12;
    pub const INET_SERVICE: u32 = 13;
    pub const ETHERADDR: u32 = 9;
    pub const IFNAME: u32 = 41;

    /// The id of a concatenation of `parts`, as nft composes it.
    pub fn concat(parts: &[u32]) -> u32 {
        parts.iter().fold(0, |acc, t| (acc << 6) | t)
    }
}

const NFTA_SET_USERDATA: u16 = 13;
const NFTNL_UDATA_SET_KEYBYTEORDER: u8 = 0;
const BYTEORDER_HOST_ENDIAN: u32 = 1;

/// One set or map element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub key: Vec<u8>,
    pub data: Option<Vec<u8>>,
    /// The element's comment: podwire's owner tag.
    pub tag: Option<String>,
}

/// The base chains podwire hooks (nft's standard priorities).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseChain {
    /// type nat hook prerouting priority dstnat
    NatPrerouting,
    /// type nat hook output priority dstnat
    NatOutput,
    /// type nat hook postrouting priority srcnat
    NatPostrouting,
    /// type filter hook forward priority filter
    FilterForward,
    /// bridge family: type filter hook prerouting priority filter (-200), where frames enter
    /// the bridge from a port, before it learns their source MAC
    BridgePrerouting,
    /// type filter hook prerouting priority mangle (-150): before any dstnat rewrites a packet
    FilterPreroutingBeforeDnat,
}

impl BaseChain {
    fn spec(self) -> (&'static str, u32, i32) {
        match self {
            BaseChain::NatPrerouting => ("nat", 0, -100),
            BaseChain::NatOutput => ("nat", 3, -100),
            BaseChain::NatPostrouting => ("nat", 4, 100),
            BaseChain::FilterForward => ("filter", 2, 0),
            BaseChain::BridgePrerouting => ("filter", 0, -200),
            BaseChain::FilterPreroutingBeforeDnat => ("filter", 0, -150),
        }
    }
}

/// A batch being built for one table; nothing reaches the kernel until
/// `commit`, which applies all of it or none.
pub struct Transaction<'a> {
    nft: &'a Nftables,
    pub(super) table: &'a Table,
    pub(super) batch: Batch,
}

impl<'a> Transaction<'a> {
    pub(super) fn new(nft: &'a Nftables, table: &'a Table) -> Self {
        Transaction {
            nft,
            table,
            batch: nft.batch(),
        }
    }

    pub(super) fn at_generation(nft: &'a Nftables, table: &'a Table, genid: u32) -> Self {
        Transaction {
            nft,
            table,
            batch: Batch::at_generation(nft.sock.next_seq(), genid),
        }
    }

    fn family(&self) -> u8 {
        self.table.family.proto()
    }

    /// Creates the table unless it exists.
    pub fn add_table(&mut self) -> &mut Self {
        super::add_table(&mut self.batch, self.table);
        self
    }

    /// Creates the table with a comment (`nft list` shows it) unless it exists; an existing
    /// table keeps its own.
    pub fn add_table_commented(&mut self, comment: &str) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_TABLE_NAME, &self.table.name)
            .bytes(NFTA_TABLE_USERDATA, &comment_userdata(comment));
        self.batch
            .add(NFT_MSG_NEWTABLE, NLM_F_CREATE, self.family(), &a);
        self
    }

    /// Deletes the table and everything in it (fails the batch if it does not exist).
    pub fn delete_table(&mut self) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_TABLE_NAME, &self.table.name);
        self.batch.add(NFT_MSG_DELTABLE, 0, self.family(), &a);
        self
    }

    /// Creates a base chain unless it exists.
    pub fn add_base_chain(&mut self, name: &str, hook: BaseChain) -> &mut Self {
        let (ty, hooknum, prio) = hook.spec();
        super::add_base_chain(&mut self.batch, self.table, name, ty, hooknum, prio);
        self
    }

    /// Creates a regular chain; `exclusive`: fail (EEXIST) if it exists,
    /// which makes a one-time setup batch safe against a concurrent one.
    pub fn add_chain(&mut self, name: &str, exclusive: bool) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_CHAIN_TABLE, &self.table.name)
            .str(NFTA_CHAIN_NAME, name);
        let flags = NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 };
        self.batch.add(NFT_MSG_NEWCHAIN, flags, self.family(), &a);
        self
    }

    /// Creates a set or map unless it exists.
    pub fn add_set(&mut self, set: &SetSpec) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_SET_TABLE, &self.table.name)
            .str(NFTA_SET_NAME, set.name)
            .be32(NFTA_SET_KEY_TYPE, set.key_type)
            .be32(NFTA_SET_KEY_LEN, set.key_len)
            .be32(NFTA_SET_ID, set.id);
        if set.key_type == datatype::IFNAME {
            // nft prints a name key as a string only when told it is in host byte order.
            let mut ud = vec![NFTNL_UDATA_SET_KEYBYTEORDER, 4];
            ud.extend_from_slice(&BYTEORDER_HOST_ENDIAN.to_ne_bytes());
            a.bytes(NFTA_SET_USERDATA, &ud);
        }
        if let Some((ty, len)) = set.data {
            a.be32(NFTA_SET_FLAGS, NFT_SET_MAP)
                .be32(NFTA_SET_DATA_TYPE, ty)
                .be32(NFTA_SET_DATA_LEN, len);
        }
        self.batch
            .add(NFT_MSG_NEWSET, NLM_F_CREATE, self.family(), &a);
        self
    }

    /// Appends a rule (with an optional tag) to `chain`.
    pub fn add_rule(
        &mut self,
        chain: &str,
        tag: Option<&str>,
        exprs: impl FnOnce(&mut Exprs<'_>),
    ) -> &mut Self {
        super::add_rule(&mut self.batch, self.table, chain, tag, 0, exprs);
        self
    }

    /// Adds elements; `exclusive`: the whole batch fails with EEXIST if
    /// one of the keys is taken (else an identical element is fine). Any
    /// number: they go in as many messages as they need, all in this batch.
    pub fn add_elements(&mut self, set: &str, elems: &[Element], exclusive: bool) -> &mut Self {
        let flags = NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 };
        for chunk in message_chunks(elems, true) {
            let a = elements_attrs(&self.table.name, set, chunk.iter().map(|e| (e, true)));
            self.batch.add(NFT_MSG_NEWSETELEM, flags, self.family(), &a);
        }
        self
    }

    /// Deletes elements by key; an absent key fails the batch (ENOENT).
    pub fn delete_elements(&mut self, set: &str, keys: &[Vec<u8>]) -> &mut Self {
        let elems: Vec<Element> = keys
            .iter()
            .map(|k| Element {
                key: k.clone(),
                data: None,
                tag: None,
            })
            .collect();
        for chunk in message_chunks(&elems, false) {
            let a = elements_attrs(&self.table.name, set, chunk.iter().map(|e| (e, false)));
            self.batch.add(NFT_MSG_DELSETELEM, 0, self.family(), &a);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.batch.acked.is_empty()
    }

    /// Sends the batch; the kernel applies every message or none.
    pub fn commit(self, op: &str) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        self.nft.commit(self.batch, op)
    }
}

/// The most element bytes one message carries: the element list is one attribute, whose
/// length is a u16, so a message must stay well under 64 KiB.
const MAX_ELEMENTS_BYTES: usize = 32 * 1024;

/// Bytes `e` takes in an element list (`full`: with its value and tag), attribute headers and
/// padding included.
fn encoded_len(e: &Element, full: bool) -> usize {
    let attr = |len: usize| 4 + len.next_multiple_of(4);
    let mut n = attr(attr(e.key.len()));
    if full {
        n += e.data.as_ref().map_or(0, |d| attr(attr(d.len())));
        n += e.tag.as_ref().map_or(0, |t| attr(t.len() + 3));
    }
    attr(n)
}

/// `elems` cut into runs that each fit one message.
fn message_chunks(elems: &[Element], full: bool) -> Vec<&[Element]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in elems.iter().enumerate() {
        let n = encoded_len(e, full);
        if i > start && bytes + n > MAX_ELEMENTS_BYTES {
            out.push(&elems[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < elems.len() {
        out.push(&elems[start..]);
    }
    out
}

fn elements_attrs<'e>(
    table: &str,
    set: &str,
    elems: impl Iterator<Item = (&'e Element, bool)>,
) -> AttrWriter {
    let mut a = AttrWriter::new();
    a.str(NFTA_SET_ELEM_LIST_TABLE, table)
        .str(NFTA_SET_ELEM_LIST_SET, set)
        .nest(NFTA_SET_ELEM_LIST_ELEMENTS, |list| {
            for (e, full) in elems {
                list.nest(NFTA_LIST_ELEM, |w| {
                    w.nest(NFTA_SET_ELEM_KEY, |k| {
                        k.bytes(NFTA_DATA_VALUE, &e.key);
                    });
                    if !full {
                        return;
                    }
                    if let Some(data) = &e.data {
                        w.nest(NFTA_SET_ELEM_DATA, |d| {
                            d.bytes(NFTA_DATA_VALUE, data);
                        });
                    }
                    if let Some(tag) = &e.tag {
                        w.bytes(NFTA_SET_ELEM_USERDATA, &comment_userdata(tag));
                    }
                });
            }
        });
    a
}

/// Reads the elements of one NEWSETELEM message (a get or dump answer).
pub(super) fn parse_elements(payload: &[u8], out: &mut Vec<Element>) {
    let a = payload.get(4..).unwrap_or_default(); // skip nfgenmsg
    let Some(list) = attr::find(a, NFTA_SET_ELEM_LIST_ELEMENTS) else {
        return;
    };
    for (_, e) in attr::iter(list) {
        let value = |kind| {
            attr::find(e, kind)
                .and_then(|n| attr::find(n, NFTA_DATA_VALUE))
                .map(<[u8]>::to_vec)
        };
        let Some(key) = value(NFTA_SET_ELEM_KEY) else {
            continue;
        };
        out.push(Element {
            key,
            data: value(NFTA_SET_ELEM_DATA),
            tag: attr::find(e, NFTA_SET_ELEM_USERDATA).and_then(comment_of),
        });
    }
}

/// The request for one element by key (`dump`: every element).
pub(super) fn get_elements_request(
    table: &Table,
    set: &str,
    key: Option<&[u8]>,
    seq: u32,
) -> Vec<u8> {
    let mut a = AttrWriter::new();
    a.str(NFTA_SET_ELEM_LIST_TABLE, &table.name)
        .str(NFTA_SET_ELEM_LIST_SET, set);
    let flags = match key {
        Some(key) => {
            a.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |list| {
                list.nest(NFTA_LIST_ELEM, |w| {
                    w.nest(NFTA_SET_ELEM_KEY, |k| {
                        k.bytes(NFTA_DATA_VALUE, key);
                    });
                });
            });
            NLM_F_REQUEST | NLM_F_ACK
        }
        None => NLM_F_REQUEST | NLM_F_DUMP,
    };
    let mut bytes = Vec::new();
    put_msg(
        &mut bytes,
        nft_type(NFT_MSG_GETSETELEM),
        flags,
        seq,
        table.family.proto(),
        0,
        &a.buf,
    );
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(i: u32, tag: &str) -> Element {
        Element {
            key: i.to_be_bytes().to_vec(),
            data: Some(vec![0; 20]),
            tag: Some(tag.to_string()),
        }
    }

    #[test]
    fn encoded_length_is_what_the_writer_writes() {
        for (e, full) in [
            (el(1, "podwire-portmap/n/c/eth0"), true),
            (el(2, "x"), true),
            (el(3, "abc"), false),
        ] {
            let a = elements_attrs("t", "s", [(&e, full)].into_iter());
            let empty = elements_attrs("t", "s", std::iter::empty());
            assert_eq!(a.buf.len() - empty.buf.len(), encoded_len(&e, full));
        }
    }

    #[test]
    fn many_elements_go_in_several_messages_under_the_attribute_limit() {
        let tag = "podwire-portmap/network/".to_string() + &"c".repeat(64) + "/eth0";
        let elems: Vec<Element> = (0..10_000).map(|i| el(i, &tag)).collect();
        let chunks = message_chunks(&elems, true);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), elems.len());
        for c in &chunks {
            let a = elements_attrs("t", "s", c.iter().map(|e| (e, true)));
            assert!(a.buf.len() < u16::MAX as usize, "{}", a.buf.len());
        }
        assert!(message_chunks(&[], true).is_empty());
    }
}
