//! nftables change notifications (the NFNLGRP_NFTABLES multicast group): a long-running reader
//! learns of elements added to or removed from some sets of one table within the same
//! transaction's commit, without polling.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::msg::{nft_type, NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM};
use super::objects::{parse_elem_message, SetElem};
use super::Table;
use crate::error::{Error, Result};

const NFNLGRP_NFTABLES: u32 = 7;

/// What a [`SetWatch`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetEvent {
    Added {
        set: String,
        elem: SetElem,
    },
    Removed {
        set: String,
        elem: SetElem,
    },
    /// The socket overflowed: notifications were lost; read the sets again.
    Overflow,
}

/// A socket subscribed to nftables notifications of the calling thread's netns, reporting
/// element changes of the given sets of one table.
pub struct SetWatch {
    sock: Socket,
    table: Table,
    sets: Vec<String>,
    buf: Vec<u8>,
}

impl SetWatch {
    pub fn new(table: Table, sets: Vec<String>) -> Result<SetWatch> {
        let op = "open nftables monitor";
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io(op, e))?;
        sock.bind(&SocketAddr::new(0, 1 << (NFNLGRP_NFTABLES - 1)))
            .map_err(|e| Error::io(op, e))?;
        // A burst of pods (a node's first minutes) must not overflow the queue.
        let _ = sock.set_rx_buf_sz(4 << 20);
        Ok(SetWatch {
            sock,
            table,
            sets,
            buf: vec![0; 256 * 1024],
        })
    }

    /// Blocks until a notification about one of the sets arrives; returns what it says (at
    /// least one event).
    pub fn recv(&mut self) -> Result<Vec<SetEvent>> {
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Ok(vec![SetEvent::Overflow])
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Error::io("read nftables notifications", e)),
            };
            let events = self.parse(&self.buf[..n]);
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }

    fn parse(&self, mut rest: &[u8]) -> Vec<SetEvent> {
        let mut out = Vec::new();
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            if len < 16 || len > rest.len() {
                break;
            }
            let ty = u16::from_ne_bytes([rest[4], rest[5]]);
            let payload = &rest[16..len];
            let added = ty == nft_type(NFT_MSG_NEWSETELEM);
            let removed = ty == nft_type(NFT_MSG_DELSETELEM);
            if (added || removed) && payload.first() == Some(&self.table.family.proto()) {
                let (table, set, elems) = parse_elem_message(payload);
                if table == self.table.name && self.sets.contains(&set) {
                    for elem in elems {
                        out.push(if added {
                            SetEvent::Added {
                                set: set.clone(),
                                elem,
                            }
                        } else {
                            SetEvent::Removed {
                                set: set.clone(),
                                elem,
                            }
                        });
                    }
                }
            }
            rest = &rest[((len + 3) & !3).min(rest.len())..];
        }
        out
    }
}
