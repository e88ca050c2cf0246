//! nftables over netlink (NETLINK_NETFILTER), hand-written.
//!
//! Why not a crate: `nftables` execs the `nft` binary (no exec in
//! library code); `rustables` is GPL-3.0-or-later, which cannot go into
//! this Apache-2.0 project, and pulls in more than we use. What podwire
//! needs is small: one table, two base chains, match-on-address rules
//! ending in masquerade or accept, found again by a comment tag; and for
//! podwire-portmap, maps whose elements are the port mappings (`set.rs`),
//! each found again by key. That is a few hundred lines of nf_tables
//! messages over our netlink socket.
//!
//! Every change is one nfnetlink batch (BEGIN ... END), which the kernel
//! applies atomically: a masquerade add creates table, chain and rule in
//! one transaction, so a concurrent reader never sees half of it.

mod counter;
pub mod decode;
mod expr;
mod l2;
pub(crate) mod msg;
pub mod objects;
mod set;
mod setup;
pub mod watch;

use ipnet::IpNet;
use netlink_sys::protocols::NETLINK_NETFILTER;

use crate::attr::{self, AttrWriter};
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::socket::NlSocket;
pub use decode::{DecodedRule, Expr};
pub use expr::{
    Cmp, Dir, Exprs, CT_DIR_REPLY, CT_STATE_ESTABLISHED, CT_STATE_NEW, CT_STATE_RELATED, REG32_00,
    REG_1,
};
pub use l2::{concat_key, ifname_key, Field};
use msg::*;
pub use objects::{ChainInfo, CounterValue, ElemData, SetDef, SetElem, SetInfo};
pub use set::{datatype, BaseChain, Element, SetSpec, Transaction};
pub use watch::{SetEvent, SetWatch};

/// nftables address family of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 and IPv6 together.
    Inet,
    Ip,
    Ip6,
    /// Frames crossing a Linux bridge (layer 2).
    Bridge,
}

impl Family {
    fn proto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Ip6 => 10,
            Family::Bridge => 7,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Bridge => "bridge",
        })
    }
}

/// A table of ours, e.g. `Table::new(Family::Inet, "podwire")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Table {
    pub family: Family,
    pub name: String,
}

impl Table {
    pub fn new(family: Family, name: impl Into<String>) -> Table {
        Table {
            family,
            name: name.into(),
        }
    }
}

/// Base chain holding the masquerade rules (type nat, hook postrouting,
/// priority srcnat).
pub const NAT_CHAIN: &str = "postrouting";
/// Base chain holding the forward accept rules (type filter, hook
/// forward, priority filter).
pub const FORWARD_CHAIN: &str = "forward";

/// Netfilter hooks of the ip, ip6 and inet families (NF_INET_*).
pub const NF_INET_PRE_ROUTING: u32 = 0;
pub const NF_INET_LOCAL_IN: u32 = 1;
pub const NF_INET_FORWARD: u32 = 2;
pub const NF_INET_LOCAL_OUT: u32 = 3;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_IP_PRI_FILTER: i32 = 0;
const NF_IP_PRI_NAT_SRC: i32 = 100;

/// Longest tag libnftnl can read back as a comment (u8 length incl. NUL).
pub const MAX_TAG_LEN: usize = 254;

/// A rule as listed: where it is, and its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub handle: u64,
    /// The rule's comment, which podwire uses as its identity.
    pub tag: Option<String>,
}

/// A handle on the nf_tables subsystem of one netns.
pub struct Nftables {
    sock: NlSocket,
}

impl Nftables {
    /// A socket in the calling thread's netns.
    pub fn new() -> Result<Self> {
        Ok(Nftables {
            sock: NlSocket::open(NETLINK_NETFILTER, "open nftables socket")?,
        })
    }

    /// A socket inside `ns`; the thread is back in its netns on return.
    pub fn new_in(ns: &Netns) -> Result<Self> {
        Ok(Nftables {
            sock: crate::netlink::open_in(ns, NETLINK_NETFILTER, "open nftables socket")?,
        })
    }

    fn commit(&self, batch: Batch, op: &str) -> Result<()> {
        self.commit_echo(batch, op).map(drop)
    }

    /// Commits, returning the handles of the rules the kernel echoed (those added with
    /// NLM_F_ECHO), in order.
    fn commit_echo(&self, batch: Batch, op: &str) -> Result<Vec<u64>> {
        let (bytes, acked, last) = batch.finish();
        // Keep our counter past the batch's sequence numbers.
        while self.sock.next_seq() != last {}
        self.sock.fit_send_buffer(bytes.len(), op)?;
        self.sock.fit_recv_buffer(acked.len(), op)?;
        self.sock.send(&bytes, op)?;
        let mut handles = Vec::new();
        self.sock.recv_batch_answers(&acked, op, |m| {
            if m.ty == nft_type(NFT_MSG_NEWRULE) {
                let a = m.payload().get(4..).unwrap_or_default(); // skip nfgenmsg
                if let Some(h) = attr::find(a, NFTA_RULE_HANDLE).and_then(attr::as_be64) {
                    handles.push(h);
                }
            }
        })?;
        Ok(handles)
    }

    fn batch(&self) -> Batch {
        Batch::new(self.sock.next_seq())
    }

    /// The ruleset's generation: it changes with every committed batch, in any table.
    pub fn generation(&self) -> Result<u32> {
        let op = "get the nftables generation";
        let seq = self.sock.next_seq();
        let mut req = Vec::new();
        put_msg(
            &mut req,
            nft_type(NFT_MSG_GETGEN),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            0,
            0,
            &[],
        );
        self.sock.send(&req, op)?;
        let mut genid = None;
        self.sock.recv_reply(seq, op, |raw| {
            if raw.ty == nft_type(NFT_MSG_NEWGEN) {
                let a = raw.payload().get(4..).unwrap_or_default();
                genid = attr::find(a, NFTA_GEN_ID).and_then(attr::as_be32);
            }
            Ok(())
        })?;
        genid.ok_or_else(|| Error::protocol(op, "no generation in the answer"))
    }

    /// Whether `table` exists, and its comment (libnftnl userdata, `nft list` shows it):
    /// `None` when there is no such table, `Some(None)` when it has no comment.
    pub fn table_comment(&self, table: &Table) -> Result<Option<Option<String>>> {
        let op = format!("get table {} {}", table.family, table.name);
        let seq = self.sock.next_seq();
        let mut a = AttrWriter::new();
        a.str(NFTA_TABLE_NAME, &table.name);
        let mut req = Vec::new();
        put_msg(
            &mut req,
            nft_type(NFT_MSG_GETTABLE),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            table.family.proto(),
            0,
            &a.buf,
        );
        self.sock.send(&req, &op)?;
        let mut comment = None;
        let got = self.sock.recv_reply(seq, &op, |raw| {
            if raw.ty == nft_type(NFT_MSG_NEWTABLE) {
                let a = raw.payload().get(4..).unwrap_or_default();
                comment = Some(attr::find(a, NFTA_TABLE_USERDATA).and_then(comment_of));
            }
            Ok(())
        });
        match got {
            Ok(_) => Ok(comment),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// As [`Nftables::transaction`], applied by the kernel only if the ruleset is still at
    /// `generation` (see [`Nftables::generation`]); else the commit fails with
    /// [`Error::is_generation_changed`].
    pub fn transaction_at<'a>(&'a self, table: &'a Table, generation: u32) -> Transaction<'a> {
        Transaction::at_generation(self, table, generation)
    }

    /// Deletes the conntrack entries of `proto` to destination port `dport` through this same
    /// socket (see [`crate::Conntrack::delete_by_dport`]).
    pub fn conntrack_delete_by_dport(&self, v6: bool, proto: u8, dport: u16) -> Result<usize> {
        crate::conntrack::delete_where(&self.sock, v6, proto, Some(dport), |_| true)
    }

    /// Deletes the conntrack entries of `proto` (to `dport` only, when given) for which
    /// `doomed` holds, read in one dump, through this same socket.
    pub fn conntrack_delete_where(
        &self,
        v6: bool,
        proto: u8,
        dport: Option<u16>,
        doomed: impl Fn(&crate::conntrack::Flow) -> bool,
    ) -> Result<usize> {
        crate::conntrack::delete_where(&self.sock, v6, proto, dport, doomed)
    }

    /// A batch of changes to `table`, applied atomically by `commit`.
    pub fn transaction<'a>(&'a self, table: &'a Table) -> Transaction<'a> {
        Transaction::new(self, table)
    }

    /// The element of `set` with exactly `key`: one request, whatever the
    /// set's size. `None` when the key (or the set, or table) is absent.
    pub fn element(&self, table: &Table, set: &str, key: &[u8]) -> Result<Option<Element>> {
        let op = format!("get element of {} {} {set}", table.family, table.name);
        let seq = self.sock.next_seq();
        let req = set::get_elements_request(table, set, Some(key), seq);
        let mut out = Vec::new();
        self.sock.send(&req, &op)?;
        let got = self.sock.recv_reply(seq, &op, |raw| {
            if raw.ty == nft_type(NFT_MSG_NEWSETELEM) {
                set::parse_elements(raw.payload(), &mut out);
            }
            Ok(())
        });
        match got {
            Ok(_) => Ok(out.into_iter().next()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every element of `set` (for garbage collection; an absent set has none).
    pub fn elements(&self, table: &Table, set: &str) -> Result<Vec<Element>> {
        let op = format!("list elements of {} {} {set}", table.family, table.name);
        let mut out = Vec::new();
        let result = self.sock.dump(
            &op,
            |seq| set::get_elements_request(table, set, None, seq),
            |raw| {
                match raw {
                    None => out.clear(),
                    Some(raw) if raw.ty == nft_type(NFT_MSG_NEWSETELEM) => {
                        set::parse_elements(raw.payload(), &mut out)
                    }
                    Some(_) => {}
                }
                Ok(())
            },
        );
        match result {
            Ok(()) => Ok(out),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Creates the table if it does not exist.
    pub fn ensure_table(&self, table: &Table) -> Result<()> {
        let mut b = self.batch();
        add_table(&mut b, table);
        self.commit(b, &format!("create table {} {}", table.family, table.name))
    }

    /// Deletes the table and everything in it; `is_not_found()` if absent.
    pub fn delete_table(&self, table: &Table) -> Result<()> {
        let mut b = self.batch();
        let mut a = AttrWriter::new();
        a.str(NFTA_TABLE_NAME, &table.name);
        b.add(NFT_MSG_DELTABLE, 0, table.family.proto(), &a);
        self.commit(b, &format!("delete table {} {}", table.family, table.name))
    }

    /// Adds `saddr == src and daddr != exclude → masquerade` to the nat
    /// chain, tagged with `tag`; table and chain are created on the way,
    /// all in one batch. `exclude` is usually the pod subnet.
    pub fn add_masquerade(
        &self,
        table: &Table,
        src: IpNet,
        exclude: Option<IpNet>,
        tag: &str,
    ) -> Result<()> {
        self.add_masquerade_handle(table, src, exclude, tag)
            .map(drop)
    }

    /// As `add_masquerade`, returning the new rule's handle (the kernel echoes the rule in
    /// the same exchange: no extra round trip). `None` if a kernel did not echo it.
    pub fn add_masquerade_handle(
        &self,
        table: &Table,
        src: IpNet,
        exclude: Option<IpNet>,
        tag: &str,
    ) -> Result<Option<u64>> {
        let op = format!("add masquerade for {src} ({tag})");
        self.check_rule_args(table, src, exclude, tag, &op)?;
        let mut b = self.batch();
        add_table(&mut b, table);
        add_base_chain(
            &mut b,
            table,
            NAT_CHAIN,
            "nat",
            NF_INET_POST_ROUTING,
            NF_IP_PRI_NAT_SRC,
        );
        add_rule(&mut b, table, NAT_CHAIN, Some(tag), NLM_F_ECHO, |e| {
            if table.family == Family::Inet {
                e.nfproto(matches!(src, IpNet::V6(_)));
            }
            e.addr(Dir::Src, Cmp::Eq, src);
            if let Some(ex) = exclude {
                e.addr(Dir::Dst, Cmp::Neq, ex);
            }
            e.masquerade();
        });
        Ok(self.commit_echo(b, &op)?.first().copied())
    }

    /// Accepts forwarded traffic from and to `cidr` (two rules with the
    /// same tag) in the forward chain, for hosts whose forward policy
    /// drops. One batch, table and chain included.
    pub fn add_forward_accept(&self, table: &Table, cidr: IpNet, tag: &str) -> Result<()> {
        let op = format!("add forward accept for {cidr} ({tag})");
        self.check_rule_args(table, cidr, None, tag, &op)?;
        let mut b = self.batch();
        add_table(&mut b, table);
        add_base_chain(
            &mut b,
            table,
            FORWARD_CHAIN,
            "filter",
            NF_INET_FORWARD,
            NF_IP_PRI_FILTER,
        );
        for dir in [Dir::Src, Dir::Dst] {
            add_rule(&mut b, table, FORWARD_CHAIN, Some(tag), 0, |e| {
                if table.family == Family::Inet {
                    e.nfproto(matches!(cidr, IpNet::V6(_)));
                }
                e.addr(dir, Cmp::Eq, cidr);
                e.accept();
            });
        }
        self.commit(b, &op)
    }

    fn check_rule_args(
        &self,
        table: &Table,
        a: IpNet,
        b: Option<IpNet>,
        tag: &str,
        op: &str,
    ) -> Result<()> {
        if tag.is_empty() || tag.len() > MAX_TAG_LEN || tag.contains('\0') {
            return Err(Error::invalid(
                op,
                format!("tag must be 1..={MAX_TAG_LEN} bytes without NUL"),
            ));
        }
        let v6 = matches!(a, IpNet::V6(_));
        if b.is_some_and(|b| matches!(b, IpNet::V6(_)) != v6) {
            return Err(Error::invalid(op, "mixed IPv4 and IPv6 addresses"));
        }
        let fits = match table.family {
            Family::Inet => true,
            Family::Ip => !v6,
            Family::Ip6 => v6,
            Family::Bridge => false,
        };
        if !fits {
            return Err(Error::invalid(
                op,
                format!("address family does not fit table family {}", table.family),
            ));
        }
        Ok(())
    }

    /// All rules of the table (every chain). An absent table has none.
    pub fn rules(&self, table: &Table) -> Result<Vec<Rule>> {
        let op = format!("list rules of {} {}", table.family, table.name);
        let mut out = Vec::new();
        let mut attrs = AttrWriter::new();
        attrs.str(NFTA_RULE_TABLE, &table.name);
        let family = table.family.proto();
        let result = self.sock.dump(
            &op,
            |seq| {
                let mut bytes = Vec::new();
                put_msg(
                    &mut bytes,
                    nft_type(NFT_MSG_GETRULE),
                    NLM_F_REQUEST | NLM_F_DUMP,
                    seq,
                    family,
                    0,
                    &attrs.buf,
                );
                bytes
            },
            |raw| {
                let Some(raw) = raw else {
                    out.clear(); // dump restarted
                    return Ok(());
                };
                if raw.ty != nft_type(NFT_MSG_NEWRULE) {
                    return Ok(());
                }
                let a = raw.payload().get(4..).unwrap_or_default(); // skip nfgenmsg
                if attr::find(a, NFTA_RULE_TABLE).map(attr::as_str).as_deref()
                    != Some(table.name.as_str())
                {
                    return Ok(());
                }
                out.push(Rule {
                    chain: attr::find(a, NFTA_RULE_CHAIN)
                        .map(attr::as_str)
                        .unwrap_or_default(),
                    handle: attr::find(a, NFTA_RULE_HANDLE)
                        .and_then(attr::as_be64)
                        .unwrap_or(0),
                    tag: attr::find(a, NFTA_RULE_USERDATA).and_then(comment_of),
                });
                Ok(())
            },
        );
        match result {
            Ok(()) => Ok(out),
            // Dumping a table that does not exist: nothing to list.
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Deletes every rule of the table tagged exactly `tag`. Idempotent:
    /// returns how many were deleted, 0 when none (or no table).
    pub fn delete_by_tag(&self, table: &Table, tag: &str) -> Result<usize> {
        self.delete_by_tag_handles(table, tag).map(|h| h.len())
    }

    /// As `delete_by_tag`, returning the handles of the rules it deleted.
    pub fn delete_by_tag_handles(&self, table: &Table, tag: &str) -> Result<Vec<u64>> {
        self.delete_where(table, &format!("delete rules tagged {tag}"), |t| t == tag)
    }

    /// Deletes every rule whose tag starts with `prefix` (e.g. all rules
    /// of one network, for garbage collection).
    pub fn delete_by_tag_prefix(&self, table: &Table, prefix: &str) -> Result<usize> {
        self.delete_where(table, &format!("delete rules tagged {prefix}*"), |t| {
            t.starts_with(prefix)
        })
        .map(|h| h.len())
    }

    fn delete_where(
        &self,
        table: &Table,
        op: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<Vec<u64>> {
        // A rule deleted concurrently makes the batch fail with ENOENT as
        // a whole; list again and retry.
        let mut last_err = None;
        for _ in 0..3 {
            let doomed: Vec<Rule> = self
                .rules(table)?
                .into_iter()
                .filter(|r| r.tag.as_deref().is_some_and(&matches))
                .collect();
            if doomed.is_empty() {
                return Ok(Vec::new());
            }
            let mut b = self.batch();
            for r in &doomed {
                let mut a = AttrWriter::new();
                a.str(NFTA_RULE_TABLE, &table.name)
                    .str(NFTA_RULE_CHAIN, &r.chain)
                    .be64(NFTA_RULE_HANDLE, r.handle);
                b.add(NFT_MSG_DELRULE, 0, table.family.proto(), &a);
            }
            match self.commit(b, op) {
                Ok(()) => return Ok(doomed.iter().map(|r| r.handle).collect()),
                Err(e) if e.is_not_found() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("loop ran"))
    }
}

fn add_table(b: &mut Batch, table: &Table) {
    let mut a = AttrWriter::new();
    a.str(NFTA_TABLE_NAME, &table.name);
    // NLM_F_CREATE without EXCL: an existing table is fine.
    b.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, table.family.proto(), &a);
}

fn add_base_chain(b: &mut Batch, table: &Table, name: &str, ty: &str, hook: u32, prio: i32) {
    let mut a = AttrWriter::new();
    a.str(NFTA_CHAIN_TABLE, &table.name)
        .str(NFTA_CHAIN_NAME, name)
        .nest(NFTA_CHAIN_HOOK, |h| {
            h.be32(NFTA_HOOK_HOOKNUM, hook)
                .be32(NFTA_HOOK_PRIORITY, prio as u32);
        })
        .str(NFTA_CHAIN_TYPE, ty);
    b.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, table.family.proto(), &a);
}

fn add_rule(
    b: &mut Batch,
    table: &Table,
    chain: &str,
    tag: Option<&str>,
    extra_flags: u16,
    exprs: impl FnOnce(&mut Exprs<'_>),
) {
    let mut a = AttrWriter::new();
    a.str(NFTA_RULE_TABLE, &table.name)
        .str(NFTA_RULE_CHAIN, chain)
        .nest(NFTA_RULE_EXPRESSIONS, |w| exprs(&mut Exprs::new(w)));
    if let Some(tag) = tag {
        a.bytes(NFTA_RULE_USERDATA, &comment_userdata(tag));
    }
    b.add(
        NFT_MSG_NEWRULE,
        NLM_F_CREATE | NLM_F_APPEND | extra_flags,
        table.family.proto(),
        &a,
    );
}
