//! What a whole compiled ruleset needs beyond single rules: interval sets (single keys in the
//! kernel's rbtree, concatenated keys in pipapo with `key_end`), verdict maps whose elements
//! jump to chains, deleting and flushing objects, and reading everything back (sets with their
//! elements, chains, counters with their values, rules as decoded expressions) so a caller can
//! compare what the kernel holds with what it wants.

use super::msg::*;
use super::set::Transaction;
use super::{Nftables, Table};
use crate::attr::{self, AttrWriter};
use crate::error::Result;

pub const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWOBJ: u16 = 18;
const NFT_MSG_GETOBJ: u16 = 19;
const NFT_MSG_DELOBJ: u16 = 20;

const NFTA_CHAIN_USE: u16 = 6;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_DESC_CONCAT: u16 = 2;
const NFTA_SET_FIELD_LEN: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_JUMP: i32 = -3;
const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
const NFT_OBJECT_COUNTER: u32 = 1;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;

pub const NFT_SET_INTERVAL: u32 = 0x4;
pub const NFT_SET_MAP: u32 = 0x8;
pub const NFT_SET_CONCAT: u32 = 0x80;
/// A map's data type when its values are verdicts.
pub const NFT_DATA_VERDICT: u32 = 0xffff_ff00;

/// A set or map to create. `fields` are the unpadded lengths of a concatenation's parts (one
/// part: not a concatenation); the key length is their sum, each padded to 4 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDef {
    pub name: String,
    pub key_type: u32,
    pub fields: Vec<u32>,
    pub interval: bool,
    /// A verdict map (`type K : verdict`).
    pub verdict_map: bool,
}

impl SetDef {
    pub fn key_len(&self) -> u32 {
        self.fields.iter().map(|l| l.div_ceil(4) * 4).sum()
    }

    /// A concatenated interval set keeps `key .. key_end` per element (pipapo); a single-key
    /// interval set keeps start and end elements (rbtree).
    pub fn concat(&self) -> bool {
        self.fields.len() > 1
    }
}

/// A set or map as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetInfo {
    pub name: String,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    pub data_type: Option<u32>,
    /// Field lengths of a concatenation (empty when not one).
    pub fields: Vec<u32>,
}

impl SetInfo {
    pub fn is_verdict_map(&self) -> bool {
        self.flags & NFT_SET_MAP != 0 && self.data_type == Some(NFT_DATA_VERDICT)
    }
    pub fn is_interval(&self) -> bool {
        self.flags & NFT_SET_INTERVAL != 0
    }
}

/// What an element maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElemData {
    Value(Vec<u8>),
    /// `jump chain` (a verdict map).
    Jump(String),
    /// Any other verdict (code as in NF_*/NFT_*).
    Verdict(i32),
}

/// One element as the kernel keeps it (written and listed).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SetElem {
    pub key: Vec<u8>,
    /// The last key of a range (concatenated interval sets).
    pub key_end: Option<Vec<u8>>,
    /// An rbtree interval's end marker (its key is one past the range).
    pub interval_end: bool,
    pub data: Option<ElemData>,
    pub tag: Option<String>,
}

impl SetElem {
    pub fn key(key: Vec<u8>) -> SetElem {
        SetElem {
            key,
            ..Default::default()
        }
    }
}

/// The elements an interval set keeps for the inclusive range `start..=end` (big-endian keys of
/// equal length): concatenated sets one element with `key_end`; single-key sets a start and,
/// unless the range runs to the last key, an end marker one past it.
pub fn range_elements(start: &[u8], end: &[u8], concat: bool) -> Vec<SetElem> {
    if concat {
        return vec![SetElem {
            key: start.to_vec(),
            key_end: Some(end.to_vec()),
            ..Default::default()
        }];
    }
    let mut out = vec![SetElem::key(start.to_vec())];
    if let Some(past) = be_increment(end) {
        out.push(SetElem {
            key: past,
            interval_end: true,
            ..Default::default()
        });
    }
    out
}

/// The inclusive ranges of a single-key interval set's listed elements (start elements and end
/// markers, in any order; an end marker without a start, such as the `0.0.0.0` one nft adds, is
/// ignored).
pub fn ranges_of(elems: &[SetElem]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut sorted: Vec<&SetElem> = elems.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key).then(b.interval_end.cmp(&a.interval_end)));
    let mut out = Vec::new();
    let mut open: Option<&[u8]> = None;
    for e in sorted {
        if let Some(end) = &e.key_end {
            out.push((e.key.clone(), end.clone()));
            continue;
        }
        match (e.interval_end, open) {
            (true, Some(start)) => {
                let last = be_decrement(&e.key).unwrap_or_else(|| e.key.clone());
                out.push((start.to_vec(), last));
                open = None;
            }
            (true, None) => {}
            (false, Some(start)) => {
                // Two starts in a row: the first covers up to just before the second.
                let last = be_decrement(&e.key).unwrap_or_else(|| e.key.clone());
                out.push((start.to_vec(), last));
                open = Some(&e.key);
            }
            (false, None) => open = Some(&e.key),
        }
    }
    if let Some(start) = open {
        out.push((start.to_vec(), vec![0xff; start.len()]));
    }
    out
}

/// `bytes + 1` as a big-endian number; None when it overflows.
pub fn be_increment(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = bytes.to_vec();
    for b in v.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(v);
        }
    }
    None
}

/// `bytes - 1` as a big-endian number; None when it underflows.
pub fn be_decrement(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = bytes.to_vec();
    for b in v.iter_mut().rev() {
        if *b == 0 {
            *b = 0xff;
        } else {
            *b -= 1;
            return Some(v);
        }
    }
    None
}

/// A chain as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    pub name: String,
    /// Hooked (a base chain).
    pub base: bool,
    /// How many rules and elements jump to it.
    pub uses: u32,
}

/// A named counter and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterValue {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The most element bytes one message carries (the element list attribute's length is a u16).
const MAX_ELEMENTS_BYTES: usize = 32 * 1024;

fn encode_elem(e: &SetElem, full: bool) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.nest(NFTA_LIST_ELEM, |w| {
        w.nest(NFTA_SET_ELEM_KEY, |k| {
            k.bytes(NFTA_DATA_VALUE, &e.key);
        });
        if let Some(end) = &e.key_end {
            w.nest(NFTA_SET_ELEM_KEY_END, |k| {
                k.bytes(NFTA_DATA_VALUE, end);
            });
        }
        if e.interval_end {
            w.be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        if !full {
            return;
        }
        match &e.data {
            None => {}
            Some(ElemData::Value(v)) => {
                w.nest(NFTA_SET_ELEM_DATA, |d| {
                    d.bytes(NFTA_DATA_VALUE, v);
                });
            }
            Some(ElemData::Jump(chain)) => {
                w.nest(NFTA_SET_ELEM_DATA, |d| {
                    d.nest(NFTA_DATA_VERDICT, |v| {
                        v.be32(NFTA_VERDICT_CODE, NFT_JUMP as u32)
                            .str(NFTA_VERDICT_CHAIN, chain);
                    });
                });
            }
            Some(ElemData::Verdict(code)) => {
                w.nest(NFTA_SET_ELEM_DATA, |d| {
                    d.nest(NFTA_DATA_VERDICT, |v| {
                        v.be32(NFTA_VERDICT_CODE, *code as u32);
                    });
                });
            }
        }
        if let Some(tag) = &e.tag {
            w.bytes(NFTA_SET_ELEM_USERDATA, &comment_userdata(tag));
        }
    });
    w.buf
}

/// Element list attributes, each under the message size limit.
fn element_messages(table: &str, set: &str, elems: &[SetElem], full: bool) -> Vec<AttrWriter> {
    let mut out = Vec::new();
    let mut chunk: Vec<u8> = Vec::new();
    let flush = |chunk: &mut Vec<u8>, out: &mut Vec<AttrWriter>| {
        if chunk.is_empty() {
            return;
        }
        let mut a = AttrWriter::new();
        a.str(NFTA_SET_ELEM_LIST_TABLE, table)
            .str(NFTA_SET_ELEM_LIST_SET, set)
            .nest(NFTA_SET_ELEM_LIST_ELEMENTS, |l| {
                l.buf.extend_from_slice(chunk);
            });
        out.push(a);
        chunk.clear();
    };
    for e in elems {
        let bytes = encode_elem(e, full);
        if chunk.len() + bytes.len() > MAX_ELEMENTS_BYTES {
            flush(&mut chunk, &mut out);
        }
        chunk.extend_from_slice(&bytes);
    }
    flush(&mut chunk, &mut out);
    out
}

impl Transaction<'_> {
    /// Creates a set or map unless it exists (an existing one is left as it is).
    pub fn add_set_def(&mut self, def: &SetDef, id: u32) -> &mut Self {
        let mut flags = 0;
        if def.interval {
            flags |= NFT_SET_INTERVAL;
            if def.concat() {
                flags |= NFT_SET_CONCAT;
            }
        }
        if def.verdict_map {
            flags |= NFT_SET_MAP;
        }
        let mut a = AttrWriter::new();
        a.str(NFTA_SET_TABLE, &self.table.name)
            .str(NFTA_SET_NAME, &def.name)
            .be32(NFTA_SET_FLAGS, flags)
            .be32(NFTA_SET_KEY_TYPE, def.key_type)
            .be32(NFTA_SET_KEY_LEN, def.key_len());
        if def.verdict_map {
            a.be32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT)
                .be32(NFTA_SET_DATA_LEN, 0);
        }
        a.be32(NFTA_SET_ID, id);
        if def.concat() {
            a.nest(NFTA_SET_DESC, |d| {
                d.nest(NFTA_SET_DESC_CONCAT, |c| {
                    for len in &def.fields {
                        c.nest(NFTA_LIST_ELEM, |f| {
                            f.be32(NFTA_SET_FIELD_LEN, *len);
                        });
                    }
                });
            });
        }
        let family = self.table.family.proto();
        self.batch.add(NFT_MSG_NEWSET, NLM_F_CREATE, family, &a);
        self
    }

    /// Adds elements (an identical existing element is fine; an overlapping interval fails the
    /// batch with EEXIST).
    pub fn add_set_elems(&mut self, set: &str, elems: &[SetElem]) -> &mut Self {
        let family = self.table.family.proto();
        for a in element_messages(&self.table.name, set, elems, true) {
            self.batch.add(NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, &a);
        }
        self
    }

    /// Deletes elements (key, key_end and end-marker flag identify them); an absent one fails
    /// the batch with ENOENT.
    pub fn delete_set_elems(&mut self, set: &str, elems: &[SetElem]) -> &mut Self {
        let family = self.table.family.proto();
        for a in element_messages(&self.table.name, set, elems, false) {
            self.batch.add(NFT_MSG_DELSETELEM, 0, family, &a);
        }
        self
    }

    /// Deletes a set or map (EBUSY while a rule refers to it).
    pub fn delete_set(&mut self, name: &str) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_SET_TABLE, &self.table.name)
            .str(NFTA_SET_NAME, name);
        let family = self.table.family.proto();
        self.batch.add(NFT_MSG_DELSET, 0, family, &a);
        self
    }

    /// Deletes a chain (it must be empty and nothing may jump to it).
    pub fn delete_chain(&mut self, name: &str) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_CHAIN_TABLE, &self.table.name)
            .str(NFTA_CHAIN_NAME, name);
        let family = self.table.family.proto();
        self.batch.add(NFT_MSG_DELCHAIN, 0, family, &a);
        self
    }

    /// Deletes every rule of a chain; rules added after it in the same batch stay, so
    /// flush + add replaces a chain's content atomically.
    pub fn flush_chain(&mut self, name: &str) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_RULE_TABLE, &self.table.name)
            .str(NFTA_RULE_CHAIN, name);
        let family = self.table.family.proto();
        self.batch.add(NFT_MSG_DELRULE, 0, family, &a);
        self
    }

    /// Deletes a named counter (EBUSY while a rule refers to it).
    pub fn delete_counter(&mut self, name: &str) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_OBJ_TABLE, &self.table.name)
            .str(NFTA_OBJ_NAME, name)
            .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        let family = self.table.family.proto();
        self.batch.add(NFT_MSG_DELOBJ, 0, family, &a);
        self
    }

    /// Creates a filter base chain on `hook` (NF_INET_*/NF_BR_*) at `priority` unless it exists.
    pub fn add_filter_chain(&mut self, name: &str, hook: u32, priority: i32) -> &mut Self {
        super::add_base_chain(&mut self.batch, self.table, name, "filter", hook, priority);
        self
    }

    /// Appends a rule whose userdata is exactly `userdata` (not a comment TLV).
    pub fn add_rule_userdata(
        &mut self,
        chain: &str,
        userdata: Option<&[u8]>,
        exprs: impl FnOnce(&mut super::Exprs<'_>),
    ) -> &mut Self {
        let mut a = AttrWriter::new();
        a.str(NFTA_RULE_TABLE, &self.table.name)
            .str(NFTA_RULE_CHAIN, chain)
            .nest(NFTA_RULE_EXPRESSIONS, |w| exprs(&mut super::Exprs::new(w)));
        if let Some(ud) = userdata {
            a.bytes(NFTA_RULE_USERDATA, ud);
        }
        let family = self.table.family.proto();
        self.batch
            .add(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family, &a);
        self
    }

    /// How many messages the batch holds so far.
    pub fn len(&self) -> usize {
        self.batch.acked.len()
    }
}

fn dump_request(msg: u16, family: u8, attrs: &AttrWriter, seq: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    put_msg(
        &mut bytes,
        nft_type(msg),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        family,
        0,
        &attrs.buf,
    );
    bytes
}

fn not_found_is_empty<T: Default>(r: Result<T>) -> Result<T> {
    match r {
        Err(e) if e.is_not_found() => Ok(T::default()),
        other => other,
    }
}

fn parse_set(a: &[u8]) -> SetInfo {
    let fields = attr::find(a, NFTA_SET_DESC)
        .and_then(|d| attr::find(d, NFTA_SET_DESC_CONCAT))
        .map(|c| {
            attr::iter(c)
                .filter_map(|(_, f)| attr::find(f, NFTA_SET_FIELD_LEN).and_then(attr::as_be32))
                .collect()
        })
        .unwrap_or_default();
    SetInfo {
        name: attr::find(a, NFTA_SET_NAME)
            .map(attr::as_str)
            .unwrap_or_default(),
        flags: attr::find(a, NFTA_SET_FLAGS)
            .and_then(attr::as_be32)
            .unwrap_or(0),
        key_type: attr::find(a, NFTA_SET_KEY_TYPE)
            .and_then(attr::as_be32)
            .unwrap_or(0),
        key_len: attr::find(a, NFTA_SET_KEY_LEN)
            .and_then(attr::as_be32)
            .unwrap_or(0),
        data_type: attr::find(a, NFTA_SET_DATA_TYPE).and_then(attr::as_be32),
        fields,
    }
}

/// Reads one element of a NEWSETELEM message's list.
fn parse_elem(e: &[u8]) -> Option<SetElem> {
    let value = |kind| {
        attr::find(e, kind)
            .and_then(|n| attr::find(n, NFTA_DATA_VALUE))
            .map(<[u8]>::to_vec)
    };
    let data = attr::find(e, NFTA_SET_ELEM_DATA).and_then(|d| {
        if let Some(v) = attr::find(d, NFTA_DATA_VALUE) {
            return Some(ElemData::Value(v.to_vec()));
        }
        let v = attr::find(d, NFTA_DATA_VERDICT)?;
        let code = attr::find(v, NFTA_VERDICT_CODE).and_then(attr::as_be32)? as i32;
        Some(match attr::find(v, NFTA_VERDICT_CHAIN) {
            Some(c) if code == NFT_JUMP => ElemData::Jump(attr::as_str(c)),
            _ => ElemData::Verdict(code),
        })
    });
    Some(SetElem {
        key: value(NFTA_SET_ELEM_KEY)?,
        key_end: value(NFTA_SET_ELEM_KEY_END),
        interval_end: attr::find(e, NFTA_SET_ELEM_FLAGS)
            .and_then(attr::as_be32)
            .is_some_and(|f| f & NFT_SET_ELEM_INTERVAL_END != 0),
        data,
        tag: attr::find(e, NFTA_SET_ELEM_USERDATA).and_then(comment_of),
    })
}

/// The table and set a NEWSETELEM / DELSETELEM message is about, and its elements.
pub(crate) fn parse_elem_message(payload: &[u8]) -> (String, String, Vec<SetElem>) {
    let a = payload.get(4..).unwrap_or_default(); // skip nfgenmsg
    let name = |k| attr::find(a, k).map(attr::as_str).unwrap_or_default();
    let elems = attr::find(a, NFTA_SET_ELEM_LIST_ELEMENTS)
        .map(|l| attr::iter(l).filter_map(|(_, e)| parse_elem(e)).collect())
        .unwrap_or_default();
    (
        name(NFTA_SET_ELEM_LIST_TABLE),
        name(NFTA_SET_ELEM_LIST_SET),
        elems,
    )
}

impl Nftables {
    /// Every set and map of the table (none when it does not exist).
    pub fn sets(&self, table: &Table) -> Result<Vec<SetInfo>> {
        let op = format!("list sets of {} {}", table.family, table.name);
        let mut attrs = AttrWriter::new();
        attrs.str(NFTA_SET_TABLE, &table.name);
        let mut out = Vec::new();
        not_found_is_empty(self.sock.dump(
            &op,
            |seq| dump_request(NFT_MSG_GETSET, table.family.proto(), &attrs, seq),
            |raw| {
                match raw {
                    None => out.clear(),
                    Some(raw) if raw.ty == nft_type(NFT_MSG_NEWSET) => {
                        let a = raw.payload().get(4..).unwrap_or_default();
                        if attr::find(a, NFTA_SET_TABLE).map(attr::as_str).as_deref()
                            == Some(table.name.as_str())
                        {
                            out.push(parse_set(a));
                        }
                    }
                    Some(_) => {}
                }
                Ok(())
            },
        ))?;
        Ok(out)
    }

    /// Every element of a set or map, as the kernel keeps them (an absent set has none).
    pub fn set_elems(&self, table: &Table, set: &str) -> Result<Vec<SetElem>> {
        let op = format!("list elements of {} {} {set}", table.family, table.name);
        let mut out = Vec::new();
        not_found_is_empty(self.sock.dump(
            &op,
            |seq| super::set::get_elements_request(table, set, None, seq),
            |raw| {
                match raw {
                    None => out.clear(),
                    Some(raw) if raw.ty == nft_type(NFT_MSG_NEWSETELEM) => {
                        out.extend(parse_elem_message(raw.payload()).2)
                    }
                    Some(_) => {}
                }
                Ok(())
            },
        ))?;
        Ok(out)
    }

    /// Every chain of the table.
    pub fn chains(&self, table: &Table) -> Result<Vec<ChainInfo>> {
        let op = format!("list chains of {} {}", table.family, table.name);
        let mut attrs = AttrWriter::new();
        attrs.str(NFTA_CHAIN_TABLE, &table.name);
        let mut out = Vec::new();
        not_found_is_empty(self.sock.dump(
            &op,
            |seq| dump_request(NFT_MSG_GETCHAIN, table.family.proto(), &attrs, seq),
            |raw| {
                match raw {
                    None => out.clear(),
                    Some(raw) if raw.ty == nft_type(NFT_MSG_NEWCHAIN) => {
                        let a = raw.payload().get(4..).unwrap_or_default();
                        if attr::find(a, NFTA_CHAIN_TABLE).map(attr::as_str).as_deref()
                            == Some(table.name.as_str())
                        {
                            out.push(ChainInfo {
                                name: attr::find(a, NFTA_CHAIN_NAME)
                                    .map(attr::as_str)
                                    .unwrap_or_default(),
                                base: attr::find(a, NFTA_CHAIN_HOOK).is_some(),
                                uses: attr::find(a, NFTA_CHAIN_USE)
                                    .and_then(attr::as_be32)
                                    .unwrap_or(0),
                            });
                        }
                    }
                    Some(_) => {}
                }
                Ok(())
            },
        ))?;
        Ok(out)
    }

    /// Every named counter of the table with its values.
    pub fn counters(&self, table: &Table) -> Result<Vec<CounterValue>> {
        let op = format!("list counters of {} {}", table.family, table.name);
        let mut attrs = AttrWriter::new();
        attrs
            .str(NFTA_OBJ_TABLE, &table.name)
            .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        let mut out = Vec::new();
        not_found_is_empty(self.sock.dump(
            &op,
            |seq| dump_request(NFT_MSG_GETOBJ, table.family.proto(), &attrs, seq),
            |raw| {
                match raw {
                    None => out.clear(),
                    Some(raw) if raw.ty == nft_type(NFT_MSG_NEWOBJ) => {
                        let a = raw.payload().get(4..).unwrap_or_default();
                        let of_table = attr::find(a, NFTA_OBJ_TABLE).map(attr::as_str).as_deref()
                            == Some(table.name.as_str());
                        let counter = attr::find(a, NFTA_OBJ_TYPE).and_then(attr::as_be32)
                            == Some(NFT_OBJECT_COUNTER);
                        if of_table && counter {
                            let data = attr::find(a, NFTA_OBJ_DATA).unwrap_or_default();
                            let num = |k| attr::find(data, k).and_then(attr::as_be64).unwrap_or(0);
                            out.push(CounterValue {
                                name: attr::find(a, NFTA_OBJ_NAME)
                                    .map(attr::as_str)
                                    .unwrap_or_default(),
                                packets: num(NFTA_COUNTER_PACKETS),
                                bytes: num(NFTA_COUNTER_BYTES),
                            });
                        }
                    }
                    Some(_) => {}
                }
                Ok(())
            },
        ))?;
        Ok(out)
    }

    /// Every rule of the table with its expressions decoded, in each chain's order.
    pub fn rules_decoded(&self, table: &Table) -> Result<Vec<super::decode::DecodedRule>> {
        let op = format!("list rules of {} {}", table.family, table.name);
        let mut attrs = AttrWriter::new();
        attrs.str(NFTA_RULE_TABLE, &table.name);
        let mut out = Vec::new();
        not_found_is_empty(self.sock.dump(
            &op,
            |seq| dump_request(NFT_MSG_GETRULE, table.family.proto(), &attrs, seq),
            |raw| {
                match raw {
                    None => out.clear(),
                    Some(raw) if raw.ty == nft_type(NFT_MSG_NEWRULE) => {
                        let a = raw.payload().get(4..).unwrap_or_default();
                        if attr::find(a, NFTA_RULE_TABLE).map(attr::as_str).as_deref()
                            == Some(table.name.as_str())
                        {
                            out.push(super::decode::decode_rule(a));
                        }
                    }
                    Some(_) => {}
                }
                Ok(())
            },
        ))?;
        Ok(out)
    }

    /// Commits a transaction built elsewhere and returns nothing but success; for callers
    /// that build one batch per phase.
    pub fn commit_transaction(&self, tx: Transaction<'_>, op: &str) -> Result<()> {
        tx.commit(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_key_ranges_round_trip_through_rbtree_elements() {
        let a = [10, 0, 0, 1];
        let elems = range_elements(&a, &a, false);
        assert_eq!(elems.len(), 2);
        assert_eq!(elems[1].key, vec![10, 0, 0, 2]);
        assert!(elems[1].interval_end);
        let mut all = elems;
        all.extend(range_elements(&[10, 1, 0, 0], &[10, 1, 0, 255], false));
        // The last range of the key space has no end marker.
        let top = range_elements(&[255, 0, 0, 0], &[255; 4], false);
        assert_eq!(top.len(), 1);
        all.extend(top);
        // nft's initial end marker is ignored.
        all.push(SetElem {
            key: vec![0; 4],
            interval_end: true,
            ..Default::default()
        });
        all.reverse(); // the kernel lists an rbtree backwards
        assert_eq!(
            ranges_of(&all),
            vec![
                (a.to_vec(), a.to_vec()),
                (vec![10, 1, 0, 0], vec![10, 1, 0, 255]),
                (vec![255, 0, 0, 0], vec![255; 4]),
            ]
        );
    }

    #[test]
    fn concatenated_ranges_are_one_element() {
        let e = range_elements(&[6, 0, 0, 0, 0, 80, 0, 0], &[6, 0, 0, 0, 0, 90, 0, 0], true);
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].key_end.as_deref(),
            Some(&[6, 0, 0, 0, 0, 90, 0, 0][..])
        );
        assert_eq!(ranges_of(&e)[0].1, vec![6, 0, 0, 0, 0, 90, 0, 0]);
    }

    #[test]
    fn big_endian_steps() {
        assert_eq!(be_increment(&[0, 0xff]), Some(vec![1, 0]));
        assert_eq!(be_increment(&[0xff, 0xff]), None);
        assert_eq!(be_decrement(&[1, 0]), Some(vec![0, 0xff]));
        assert_eq!(be_decrement(&[0, 0]), None);
    }

    #[test]
    fn element_encoding_layout() {
        let e = SetElem {
            key: vec![10, 0, 0, 5],
            data: Some(ElemData::Jump("pod/x/a/ingress".into())),
            tag: Some("t".into()),
            ..Default::default()
        };
        let bytes = encode_elem(&e, true);
        let (ty, inner) = attr::iter(&bytes).next().unwrap();
        assert_eq!(ty, NFTA_LIST_ELEM);
        let parsed = parse_elem(inner).unwrap();
        assert_eq!(parsed, e);
        // Deletion messages carry only the identity.
        let (_, inner) = attr::iter(&encode_elem(&e, false))
            .next()
            .map(|(t, v)| (t, v.to_vec()))
            .unwrap();
        assert!(attr::find(&inner, NFTA_SET_ELEM_DATA).is_none());
        let end = SetElem {
            key: vec![6, 0, 0, 0, 0, 80, 0, 0],
            key_end: Some(vec![6, 0, 0, 0, 0, 81, 0, 0]),
            ..Default::default()
        };
        let bytes = encode_elem(&end, false);
        let (_, inner) = attr::iter(&bytes).next().unwrap();
        assert_eq!(parse_elem(inner).unwrap(), end);
    }

    #[test]
    fn many_elements_split_under_the_attribute_limit() {
        let elems: Vec<SetElem> = (0..20_000u32)
            .map(|i| SetElem::key(i.to_be_bytes().to_vec()))
            .collect();
        let msgs = element_messages("t", "s", &elems, true);
        assert!(msgs.len() > 1);
        let mut n = 0;
        for m in &msgs {
            assert!(m.buf.len() < u16::MAX as usize);
            let list = attr::find(&m.buf, NFTA_SET_ELEM_LIST_ELEMENTS).unwrap();
            n += attr::iter(list).count();
        }
        assert_eq!(n, elems.len());
    }

    #[test]
    fn set_definition_key_lengths() {
        let pp = SetDef {
            name: "p".into(),
            key_type: 0,
            fields: vec![1, 2],
            interval: true,
            verdict_map: false,
        };
        assert_eq!(pp.key_len(), 8);
        assert!(pp.concat());
        let app6 = SetDef {
            fields: vec![16, 1, 2],
            ..pp.clone()
        };
        assert_eq!(app6.key_len(), 24);
    }
}
