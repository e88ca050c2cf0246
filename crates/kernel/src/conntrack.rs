//! Connection tracking over NETLINK_NETFILTER (ctnetlink), for the one
//! thing podwire needs: forgetting the entries of a port whose mapping
//! changed, so a UDP client does not stay pinned to a conntrack entry made
//! before the mapping existed (or to a pod that is gone). Message layout
//! from <linux/netfilter/nfnetlink_conntrack.h>.

use std::net::IpAddr;

use netlink_sys::protocols::NETLINK_NETFILTER;

use crate::attr::{self, AttrWriter, NLA_F_NESTED};
use crate::error::Result;
use crate::netns::Netns;
use crate::nft::msg::{put_msg, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use crate::socket::NlSocket;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ZONE: u16 = 18;
const CTA_FILTER: u16 = 25;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
const CTA_FILTER_FLAG_PROTO_NUM: u32 = 1 << 3;
const CTA_FILTER_FLAG_PROTO_DST_PORT: u32 = 1 << 5;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_SCTP: u8 = 132;

fn ct_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg
}

/// A handle on the conntrack table of one netns.
pub struct Conntrack {
    sock: NlSocket,
}

/// An entry to delete: its original tuple and zone, as the kernel sent them.
struct Entry {
    tuple: Vec<u8>,
    zone: Option<Vec<u8>>,
}

/// The original direction of a conntrack entry: what a flush decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub proto: u8,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

impl Conntrack {
    /// A socket in the calling thread's netns.
    pub fn new() -> Result<Self> {
        Ok(Conntrack {
            sock: NlSocket::open(NETLINK_NETFILTER, "open conntrack socket")?,
        })
    }

    /// A socket inside `ns`; the thread is back in its netns on return.
    pub fn new_in(ns: &Netns) -> Result<Self> {
        Ok(Conntrack {
            sock: crate::netlink::open_in(ns, NETLINK_NETFILTER, "open conntrack socket")?,
        })
    }

    /// Deletes every entry of the family (`v6`) whose original direction
    /// is `proto` to destination port `dport`. The kernel filters the dump
    /// (CTA_FILTER), so only matching entries cross the socket; it still
    /// walks the whole conntrack hash (about 4 ms at 262144 buckets).
    /// Returns how many were deleted; an entry that expired meanwhile is
    /// not an error.
    pub fn delete_by_dport(&self, v6: bool, proto: u8, dport: u16) -> Result<usize> {
        delete_where(&self.sock, v6, proto, Some(dport), |_| true)
    }

    /// The flows of `proto` in the family (`v6`), by their original direction.
    pub fn flows(&self, v6: bool, proto: u8) -> Result<Vec<Flow>> {
        let mut out = Vec::new();
        walk(
            &self.sock,
            v6,
            proto,
            None,
            "list conntrack entries",
            |f, _| out.push(f),
        )?;
        Ok(out)
    }
}

/// Deletes the entries of `proto` in the family (`v6`) for which `doomed` holds, reading them
/// in one dump (filtered by the kernel on the protocol, and on `dport` when given), on any
/// NETLINK_NETFILTER socket (nfnetlink multiplexes its subsystems, so an nftables socket
/// serves too: one socket less to open and close). Returns how many were deleted; an entry
/// that expired meanwhile is not an error.
pub(crate) fn delete_where(
    sock: &NlSocket,
    v6: bool,
    proto: u8,
    dport: Option<u16>,
    doomed: impl Fn(&Flow) -> bool,
) -> Result<usize> {
    let op = match dport {
        Some(p) => format!("flush conntrack entries of port {p}/{proto}"),
        None => format!("flush conntrack entries of protocol {proto}"),
    };
    let mut entries = Vec::new();
    walk(sock, v6, proto, dport, &op, |flow, entry| {
        if doomed(&flow) {
            entries.push(entry);
        }
    })?;
    let family = family(v6);
    let mut deleted = 0;
    for e in &entries {
        let mut a = AttrWriter::new();
        a.bytes(CTA_TUPLE_ORIG | NLA_F_NESTED, &e.tuple);
        if let Some(zone) = &e.zone {
            a.bytes(CTA_ZONE, zone);
        }
        let seq = sock.next_seq();
        let mut req = Vec::new();
        put_msg(
            &mut req,
            ct_type(IPCTNL_MSG_CT_DELETE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family,
            0,
            &a.buf,
        );
        match sock.request_ack(&req, seq, &op) {
            Ok(()) => deleted += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

fn family(v6: bool) -> u8 {
    if v6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    }
}

/// Dumps the entries of `proto` (and `dport`), handing each to `each` with what deletes it.
fn walk(
    sock: &NlSocket,
    v6: bool,
    proto: u8,
    dport: Option<u16>,
    op: &str,
    mut each: impl FnMut(Flow, Entry),
) -> Result<()> {
    let mut found = Vec::new();
    sock.dump(
        op,
        |seq| dump_request(family(v6), proto, dport, seq),
        |raw| {
            let Some(raw) = raw else {
                found.clear();
                return Ok(());
            };
            if raw.ty != ct_type(IPCTNL_MSG_CT_NEW) {
                return Ok(());
            }
            let a = raw.payload().get(4..).unwrap_or_default();
            let Some(tuple) = attr::find(a, CTA_TUPLE_ORIG) else {
                return Ok(());
            };
            let flow = parse_flow(tuple);
            // Older kernels ignore CTA_FILTER: check here too.
            if flow.proto == proto && dport.is_none_or(|p| flow.dport == Some(p)) {
                let entry = Entry {
                    tuple: tuple.to_vec(),
                    zone: attr::find(a, CTA_ZONE).map(<[u8]>::to_vec),
                };
                found.push((flow, entry));
            }
            Ok(())
        },
    )?;
    for (flow, entry) in found {
        each(flow, entry);
    }
    Ok(())
}

/// Reads a CTA_TUPLE_ORIG nest.
fn parse_flow(tuple: &[u8]) -> Flow {
    let ip = attr::find(tuple, CTA_TUPLE_IP).unwrap_or_default();
    let addr = |kind: u16| {
        let b = attr::find(ip, kind)?;
        match b.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
            _ => None,
        }
    };
    let p = attr::find(tuple, CTA_TUPLE_PROTO).unwrap_or_default();
    let port = |kind: u16| {
        attr::find(p, kind).and_then(|v| Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?)))
    };
    Flow {
        proto: attr::find(p, CTA_PROTO_NUM)
            .and_then(|v| v.first().copied())
            .unwrap_or(0),
        src: addr(CTA_IP_V4_SRC).or_else(|| addr(CTA_IP_V6_SRC)),
        dst: addr(CTA_IP_V4_DST).or_else(|| addr(CTA_IP_V6_DST)),
        sport: port(CTA_PROTO_SRC_PORT),
        dport: port(CTA_PROTO_DST_PORT),
    }
}

fn dump_request(family: u8, proto: u8, dport: Option<u16>, seq: u32) -> Vec<u8> {
    let mut flags = CTA_FILTER_FLAG_PROTO_NUM;
    let mut a = AttrWriter::new();
    a.nest(CTA_TUPLE_ORIG, |t| {
        t.nest(CTA_TUPLE_PROTO, |p| {
            p.bytes(CTA_PROTO_NUM, &[proto]);
            if let Some(dport) = dport {
                p.bytes(CTA_PROTO_DST_PORT, &dport.to_be_bytes());
                flags |= CTA_FILTER_FLAG_PROTO_DST_PORT;
            }
        });
    })
    .nest(CTA_FILTER, |f| {
        // NLA_U32: host byte order.
        f.bytes(CTA_FILTER_ORIG_FLAGS, &flags.to_ne_bytes());
        f.bytes(CTA_FILTER_REPLY_FLAGS, &0u32.to_ne_bytes());
    });
    let mut bytes = Vec::new();
    put_msg(
        &mut bytes,
        ct_type(IPCTNL_MSG_CT_GET),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        family,
        0,
        &a.buf,
    );
    bytes
}
