//! The rtnetlink handle: a NETLINK_ROUTE socket bound to one netns, with
//! request/ack/dump helpers over the rust-netlink message types. The
//! typed operations (links, addresses, routes) live in their own modules
//! as `impl Netlink` blocks.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::socket::{NlSocket, RawMsg};

/// A NETLINK_ROUTE socket. It stays bound to the netns it was created in,
/// whatever the calling thread does afterwards, so one handle per netns
/// is all a plugin needs: no per-operation setns.
pub struct Netlink {
    sock: NlSocket,
}

impl Netlink {
    /// A socket in the calling thread's netns.
    pub fn new() -> Result<Self> {
        Ok(Netlink {
            sock: NlSocket::open(NETLINK_ROUTE, "open rtnetlink socket")?,
        })
    }

    /// A socket inside `ns`; the calling thread is back in its own netns
    /// when this returns.
    pub fn new_in(ns: &Netns) -> Result<Self> {
        Ok(Netlink {
            sock: open_in(ns, NETLINK_ROUTE, "open rtnetlink socket")?,
        })
    }

    /// Sends `msg` with `flags` (NLM_F_REQUEST|NLM_F_ACK are added) and
    /// waits for the ACK. `op` names the operation in errors.
    pub fn request(&self, msg: RouteNetlinkMessage, flags: u16, op: &str) -> Result<()> {
        let seq = self.sock.next_seq();
        let bytes = encode(msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
        self.sock.request_ack(&bytes, seq, op)
    }

    /// Like `request`, also returning the messages the kernel sent before
    /// the ACK (e.g. the echo of a new object with NLM_F_ECHO).
    pub fn request_collect(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.sock.next_seq();
        let bytes = encode(msg, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
        self.sock.send(&bytes, op)?;
        let mut out = Vec::new();
        self.sock.recv_reply(seq, op, |raw| {
            out.push(decode(&raw, op)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs a dump request and returns every message of the answer.
    /// Restarts transparently when the kernel flags the dump inconsistent.
    pub fn dump(&self, msg: RouteNetlinkMessage, op: &str) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        let mut err = None;
        self.sock.dump(
            op,
            |seq| encode(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP, seq),
            |raw| {
                match raw.map(|r| decode(&r, op)) {
                    None => out.clear(), // restarted
                    Some(Ok(m)) => out.push(m),
                    // Keep reading to the end of the dump so the socket stays
                    // in sync, then report.
                    Some(Err(e)) => {
                        err.get_or_insert(e);
                    }
                }
                Ok(())
            },
        )?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// Opens a netlink socket of `protocol` inside `ns`, then returns the
/// thread to where it was. A netlink socket keeps the netns it was
/// created in for life.
pub(crate) fn open_in(ns: &Netns, protocol: isize, op: &str) -> Result<NlSocket> {
    let guard = ns.enter()?;
    let sock = NlSocket::open(protocol, op);
    guard.restore()?;
    sock
}

fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

fn decode(raw: &RawMsg<'_>, op: &str) -> Result<RouteNetlinkMessage> {
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw.bytes)
        .map_err(|e| Error::protocol(op, format!("cannot decode kernel reply: {e}")))?;
    match msg.payload {
        NetlinkPayload::InnerMessage(m) => Ok(m),
        _ => Err(Error::protocol(op, "unexpected control message")),
    }
}
