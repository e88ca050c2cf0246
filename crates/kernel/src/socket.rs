//! A raw, synchronous netlink socket: sequence numbers, reading replies
//! until the ACK / DONE that ends them, and errno extraction (with the
//! kernel's extended-ack text). Protocol-specific layers (rtnetlink in
//! `netlink.rs`, nf_tables in `nft`) build on it and only see payloads.

use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;

use netlink_sys::{Socket, SocketAddr};

use crate::error::{Error, Result};

pub(crate) const NLMSG_HDR_LEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// How many times a dump interrupted by a concurrent change is retried.
const DUMP_RETRIES: usize = 5;

/// One message received from the kernel, header fields split out.
pub(crate) struct RawMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    /// The whole message, header included.
    pub bytes: &'a [u8],
}

impl RawMsg<'_> {
    pub fn payload(&self) -> &[u8] {
        &self.bytes[NLMSG_HDR_LEN..]
    }
}

pub(crate) struct NlSocket {
    sock: Socket,
    seq: Cell<u32>,
    buf: RefCell<Vec<u8>>,
    /// The receive buffer size we last set (0: the default).
    rcvbuf: Cell<usize>,
}

impl NlSocket {
    /// Opens a socket of `protocol` in the calling thread's netns.
    pub fn open(protocol: isize, op: &str) -> Result<Self> {
        let mut sock = Socket::new(protocol).map_err(|e| Error::io(op, e))?;
        sock.bind_auto().map_err(|e| Error::io(op, e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io(op, e))?;
        // Best effort: short errors without the echoed request, and the
        // kernel's human-readable reason. Old kernels lack them; fine.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        if protocol == netlink_sys::protocols::NETLINK_ROUTE {
            // Dump requests are then checked and their filters (an interface index, a
            // table) applied by the kernel: a dump of one interface's addresses costs one
            // interface, not every interface of the netns.
            let _ = sock.set_netlink_get_strict_chk(true);
        }
        Ok(NlSocket {
            sock,
            // Start from a per-process-random-ish point so replies to an
            // earlier socket with the same port can never be confused.
            seq: Cell::new(std::process::id().wrapping_mul(2654435761)),
            buf: RefCell::new(Vec::with_capacity(32 * 1024)),
            rcvbuf: Cell::new(0),
        })
    }

    pub fn next_seq(&self) -> u32 {
        let s = self.seq.get().wrapping_add(1);
        self.seq.set(s);
        s
    }

    /// Lets one datagram of `len` bytes through: netlink refuses a send larger than the socket's
    /// send buffer (EMSGSIZE), and an nfnetlink batch must be one datagram (the kernel applies
    /// what one send carries, from BATCH_BEGIN to BATCH_END, or none of it). As root the buffer
    /// may exceed `net.core.wmem_max` (SO_SNDBUFFORCE).
    pub fn fit_send_buffer(&self, len: usize, op: &str) -> Result<()> {
        // The kernel doubles the value it is given and keeps a little for itself.
        const DEFAULT_FITS: usize = 160 * 1024;
        if len <= DEFAULT_FITS {
            return Ok(());
        }
        let want = libc::c_int::try_from(len + 4096)
            .map_err(|_| Error::protocol(op, "netlink batch larger than 2 GiB"))?;
        for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
            // SAFETY: a valid socket and a c_int option value of the right size.
            let r = unsafe {
                libc::setsockopt(
                    self.sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&want as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                return Ok(());
            }
        }
        Err(Error::io(op, std::io::Error::last_os_error()))
    }

    /// Makes room for `acks` acknowledgements queued at once: the kernel answers every message
    /// of a batch during the send, before we read any, and a receive queue that overflows loses
    /// them (ENOBUFS). Each costs about a small skb's truesize; as root the buffer may exceed
    /// `net.core.rmem_max` (SO_RCVBUFFORCE). Never shrinks the buffer.
    pub fn fit_recv_buffer(&self, acks: usize, op: &str) -> Result<()> {
        const PER_ACK: usize = 1024;
        const DEFAULT_FITS: usize = 100;
        if acks <= DEFAULT_FITS || acks * PER_ACK <= self.rcvbuf.get() {
            return Ok(());
        }
        let len = acks * PER_ACK;
        let want = libc::c_int::try_from(len)
            .map_err(|_| Error::protocol(op, "netlink batch with too many messages"))?;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: a valid socket and a c_int option value of the right size.
            let r = unsafe {
                libc::setsockopt(
                    self.sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&want as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                self.rcvbuf.set(len);
                return Ok(());
            }
        }
        Err(Error::io(op, std::io::Error::last_os_error()))
    }

    pub fn send(&self, bytes: &[u8], op: &str) -> Result<()> {
        let n = self.sock.send(bytes, 0).map_err(|e| Error::io(op, e))?;
        if n != bytes.len() {
            return Err(Error::protocol(op, "short netlink send"));
        }
        Ok(())
    }

    /// Receives one datagram (possibly several messages) into the buffer.
    /// Returns false when `nonblocking` and nothing is queued.
    fn recv_datagram(&self, nonblocking: bool, op: &str) -> Result<bool> {
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        let mut buf = self.buf.borrow_mut();
        // Peek for the size first so a huge dump chunk is never truncated.
        let size = loop {
            let r = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_PEEK | libc::MSG_TRUNC | flags,
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) if nonblocking => return Ok(false),
                _ => return Err(Error::io(op, err)),
            }
        };
        buf.clear();
        buf.reserve(size);
        loop {
            match self.sock.recv(&mut *buf, 0) {
                Ok(_) => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Error::io(op, e)),
            }
        }
    }

    /// Reads replies to request `seq` until it is finished (ACK, error or
    /// end of dump), handing each data message to `on_msg`. Returns
    /// `Ok(true)` if a dump reported it was interrupted by a change.
    pub fn recv_reply(
        &self,
        seq: u32,
        op: &str,
        mut on_msg: impl FnMut(RawMsg<'_>) -> Result<()>,
    ) -> Result<bool> {
        let mut interrupted = false;
        loop {
            self.recv_datagram(false, op)?;
            let buf = self.buf.borrow();
            for msg in split_messages(&buf, op)? {
                if msg_seq(msg.bytes) != seq {
                    continue; // stale reply to an abandoned request
                }
                if msg.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.ty {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        return match parse_error(&msg, op)? {
                            None => Ok(interrupted),
                            Some(e) => Err(e),
                        }
                    }
                    NLMSG_DONE => {
                        // A dump can end with a negative errno in DONE.
                        let status = read_i32(msg.payload()).unwrap_or(0);
                        if status < 0 {
                            return Err(Error::os(op, status));
                        }
                        return Ok(interrupted);
                    }
                    _ => on_msg(msg)?,
                }
            }
        }
    }

    /// Sends a request and waits for its ACK.
    pub fn request_ack(&self, bytes: &[u8], seq: u32, op: &str) -> Result<()> {
        self.send(bytes, op)?;
        self.recv_reply(seq, op, |_| Ok(())).map(|_| ())
    }

    /// Runs a dump, restarting it when the kernel flags it as interrupted
    /// by a concurrent change. `build` makes the request for a given seq;
    /// `on_msg` gets `None` before each restart so it can drop what it has.
    pub fn dump(
        &self,
        op: &str,
        build: impl Fn(u32) -> Vec<u8>,
        mut on_msg: impl FnMut(Option<RawMsg<'_>>) -> Result<()>,
    ) -> Result<()> {
        for _ in 0..DUMP_RETRIES {
            let seq = self.next_seq();
            self.send(&build(seq), op)?;
            if !self.recv_reply(seq, op, |m| on_msg(Some(m)))? {
                return Ok(());
            }
            on_msg(None)?;
        }
        Err(Error::os(op, libc::EINTR))
    }

    /// Collects the answers to a batch of requests sent in one datagram.
    /// The kernel processes a send synchronously, so every answer is queued
    /// by the time `send` returns; reading non-blocking cannot hang even if
    /// the kernel stopped early. Returns the first error, after draining.
    /// Every other message (e.g. the echo of an object created with NLM_F_ECHO, which the
    /// kernel sends before the acks) goes to `on_msg`.
    pub fn recv_batch_answers(
        &self,
        seqs: &[u32],
        op: &str,
        mut on_msg: impl FnMut(&RawMsg<'_>),
    ) -> Result<()> {
        let mut pending: Vec<u32> = seqs.to_vec();
        let mut first_err: Option<Error> = None;
        while !pending.is_empty() {
            if !self.recv_datagram(true, op)? {
                break;
            }
            let buf = self.buf.borrow();
            for msg in split_messages(&buf, op)? {
                let seq = msg_seq(msg.bytes);
                if msg.ty != NLMSG_ERROR {
                    on_msg(&msg);
                    continue;
                }
                pending.retain(|s| *s != seq);
                if let Some(e) = parse_error(&msg, op)? {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None if pending.is_empty() => Ok(()),
            None => Err(Error::protocol(
                op,
                "kernel did not acknowledge the whole batch",
            )),
        }
    }
}

fn msg_seq(bytes: &[u8]) -> u32 {
    u32::from_ne_bytes(bytes[8..12].try_into().unwrap())
}

fn read_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// Splits a datagram into netlink messages.
fn split_messages<'a>(mut buf: &'a [u8], op: &str) -> Result<Vec<RawMsg<'a>>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDR_LEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDR_LEN || len > buf.len() {
            return Err(Error::protocol(op, "malformed netlink message length"));
        }
        let ty = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let flags = u16::from_ne_bytes(buf[6..8].try_into().unwrap());
        out.push(RawMsg {
            ty,
            flags,
            bytes: &buf[..len],
        });
        let aligned = (len + 3) & !3;
        buf = &buf[aligned.min(buf.len())..];
    }
    Ok(out)
}

/// Decodes NLMSG_ERROR: `None` for an ACK, the error otherwise.
fn parse_error(msg: &RawMsg<'_>, op: &str) -> Result<Option<Error>> {
    let p = msg.payload();
    let code = read_i32(p).ok_or_else(|| Error::protocol(op, "truncated netlink error"))?;
    if code == 0 {
        return Ok(None);
    }
    let mut detail = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 && p.len() >= 4 + NLMSG_HDR_LEN {
        // After the errno comes the request's header (and the whole
        // request unless capped), then the extended-ack attributes.
        let orig_len = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDR_LEN
        } else {
            u32::from_ne_bytes(p[4..8].try_into().unwrap()) as usize
        };
        let start = 4 + ((orig_len + 3) & !3);
        if let Some(tlvs) = p.get(start..) {
            for (kind, value) in crate::attr::iter(tlvs) {
                if kind == NLMSGERR_ATTR_MSG {
                    let s = value.split(|b| *b == 0).next().unwrap_or_default();
                    detail = Some(String::from_utf8_lossy(s).into_owned());
                }
            }
        }
    }
    Ok(Some(Error::Os {
        op: op.to_string(),
        errno: code.abs(),
        detail,
    }))
}
