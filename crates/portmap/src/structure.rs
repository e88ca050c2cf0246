//! The table around the maps: its chains and rules, set up by the first ADD on a node, checked
//! by every ADD and CHECK (one dump of a dozen rules), and rebuilt by ADD when they are gone (a
//! firewall reload's `nft flush table`) or from another podwire version.
//!
//! ```text
//! table inet podwire-portmap { comment "podwire-portmap structure 2"
//!   (the maps and set of crate::ruleset)
//!   chain prerouting  (nat, dstnat): fib daddr type local iifname @bridges meta mark set mark or 0x2000
//!                                    fib daddr type local jump hostports
//!   chain output      (nat, dstnat): fib daddr type local ip saddr 127.0.0.0/8 meta mark set mark or 0x2000
//!                                    fib daddr type local meta nfproto ipv4 jump hostports
//!                                    fib daddr type local meta nfproto ipv6 ip6 daddr != ::1 jump hostports
//!   chain localnet (filter, prerouting, priority -150):
//!                    iifname != "lo" meta nfproto ipv4 ip daddr 127.0.0.0/8 counter drop
//!   chain hostports: dnat ip to ip daddr . meta l4proto . th dport map @hostip4
//!                    dnat ip to meta l4proto . th dport map @hostport4   (and the ip6 pair)
//!   chain postrouting (nat, srcnat): meta mark & 0x2000 == 0x2000 ct status dnat masquerade
//! }
//! ```
//!
//! Every rule carries the version as its comment, so one rule dump tells whether the structure is
//! this version's and whole.
//!
//! - Only traffic addressed to the node itself is translated (`fib daddr type local`), never
//!   traffic routed through it (the reference's GHSA-jv3w-x3r3-g6rm).
//! - Hairpin and pod-to-pod-via-node traffic (in from a pod bridge) and 127.0.0.1 traffic are
//!   masqueraded once translated, so replies come back through the node's conntrack.
//! - Map lookups come before the generic ones: a mapping bound to a host IP wins over one for
//!   every address of the node.

use crate::ruleset::{self, MapKind, BRIDGES, BRIDGES_ID};
use kernel::nft::{
    datatype, BaseChain, Cmp, Dir, Element, Exprs, Nftables, SetSpec, Transaction, REG32_00, REG_1,
};

/// The structure's version: the table's comment and every rule's. Bump it whenever a chain or
/// rule changes: ADD then replaces an older table's structure, keeping its elements.
pub const VERSION: &str = "podwire-portmap structure 2";
/// The mark bit asking for masquerade (the reference's default `markMasqBit` 13).
pub const MASQ_MARK: u32 = 1 << 13;
const IPS_DST_NAT: u32 = 1 << 5;
const HOSTPORTS: &str = "hostports";
/// The filter chain dropping 127.0.0.0/8 from outside.
const LOCALNET: &str = "localnet";

type Build = Box<dyn Fn(&mut Exprs<'_>)>;

/// Every rule of the table, in order: (chain, expressions).
fn rules() -> Vec<(&'static str, Build)> {
    let mut v: Vec<(&'static str, Build)> = vec![
        (
            "prerouting",
            Box::new(|e| {
                e.daddr_is_local();
                e.iifname_in(BRIDGES, BRIDGES_ID);
                e.mark_or(MASQ_MARK);
            }),
        ),
        (
            "prerouting",
            Box::new(|e| {
                e.daddr_is_local();
                e.jump(HOSTPORTS);
            }),
        ),
        (
            "output",
            Box::new(|e| {
                e.daddr_is_local();
                e.nfproto(false);
                e.addr(Dir::Src, Cmp::Eq, "127.0.0.0/8".parse().expect("valid"));
                e.mark_or(MASQ_MARK);
            }),
        ),
        (
            "output",
            Box::new(|e| {
                e.daddr_is_local();
                e.nfproto(false);
                e.jump(HOSTPORTS);
            }),
        ),
        // ::1 is left alone: the kernel never lets a packet from ::1 off lo (IPv6 has no
        // route_localnet), so a DNAT of it to a pod would go nowhere; a node service on
        // [::1]:port keeps it.
        (
            "output",
            Box::new(|e| {
                e.daddr_is_local();
                e.nfproto(true);
                e.addr(Dir::Dst, Cmp::Neq, "::1/128".parse().expect("valid"));
                e.jump(HOSTPORTS);
            }),
        ),
        // CVE-2020-8558 and moby #45610: 127.0.0.0/8 arriving from outside (a pod, a LAN host
        // routing it to the node) is dropped before any DNAT, so neither the node's loopback
        // services nor mappings on 127.0.0.1 answer it, whatever route_localnet says. (IPv6's
        // ::1 from outside the kernel drops itself.) Replies to the node's own 127.0.0.1 flows
        // to pods arrive addressed to the bridge (masqueraded) and pass.
        (
            LOCALNET,
            Box::new(|e| {
                e.iifname_is(Cmp::Neq, "lo");
                e.nfproto(false);
                e.addr(Dir::Dst, Cmp::Eq, "127.0.0.0/8".parse().expect("valid"));
                e.counter();
                e.discard();
            }),
        ),
    ];
    for map in MapKind::ALL {
        v.push((HOSTPORTS, Box::new(move |e| dnat_by(e, map))));
    }
    v.push((
        "postrouting",
        Box::new(|e| {
            e.mark_has(MASQ_MARK);
            e.ct_status_any(IPS_DST_NAT);
            e.masquerade();
        }),
    ));
    v
}

/// `dnat to <key> map @map`: the key registers hold [daddr .] l4proto . dport, each part from a
/// 4-byte boundary; the value lands as address . port, the port after the address.
fn dnat_by(e: &mut Exprs<'_>, map: MapKind) {
    e.nfproto(map.v6);
    let mut reg = REG32_00;
    if map.host_ip {
        e.load_daddr(map.v6, reg);
        reg += map.addr_len() / 4;
    }
    e.load_l4proto(reg);
    e.load_th_dport(reg + 1);
    e.lookup(map.name(), map.id(), REG32_00, Some(REG_1));
    e.dnat(map.v6, REG_1, REG32_00 + map.addr_len() / 4);
}

/// Adds the table, its maps, chains and rules to a transaction. The `hostports` chain is created
/// exclusively: of two concurrent first ADDs, one sets up and the other's batch fails (EEXIST)
/// and is retried without the setup, so the rules exist exactly once.
pub fn setup(tx: &mut Transaction<'_>) {
    tx.add_table_commented(VERSION);
    for map in MapKind::ALL {
        tx.add_set(&map.spec());
    }
    tx.add_set(&SetSpec {
        name: BRIDGES,
        id: BRIDGES_ID,
        key_type: datatype::IFNAME,
        key_len: 16,
        data: None,
    });
    tx.add_chain(HOSTPORTS, true)
        .add_base_chain("prerouting", BaseChain::NatPrerouting)
        .add_base_chain("output", BaseChain::NatOutput)
        .add_base_chain("postrouting", BaseChain::NatPostrouting)
        .add_base_chain(LOCALNET, BaseChain::FilterPreroutingBeforeDnat);
    for (chain, build) in rules() {
        tx.add_rule(chain, Some(VERSION), |e| build(e));
    }
}

/// What the table's chains and rules look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Structure {
    /// This version's rules, all of them, and no other.
    Intact,
    /// No table: no ADD since the node started, or `nft flush ruleset`.
    Absent,
    /// A table whose rules are not this version's complete set: why, for people.
    Broken(String),
}

/// Reads the table's rules (one dump) and compares them with [`rules`].
pub fn structure(nft: &Nftables) -> kernel::Result<Structure> {
    let table = ruleset::table();
    let found = nft.rules(&table)?;
    let mut want: Vec<&str> = rules().iter().map(|r| r.0).collect();
    want.sort_unstable();
    let mut ours: Vec<&str> = found
        .iter()
        .filter(|r| r.tag.as_deref() == Some(VERSION))
        .map(|r| r.chain.as_str())
        .collect();
    ours.sort_unstable();
    if ours == want && found.len() == want.len() {
        return Ok(Structure::Intact);
    }
    let comment = if found.is_empty() || ours.is_empty() {
        match nft.table_comment(&table)? {
            None => return Ok(Structure::Absent),
            Some(c) => c,
        }
    } else {
        None
    };
    let why = if found.is_empty() {
        "its rules are gone (flushed?)".to_string()
    } else if ours.is_empty() {
        match comment {
            Some(c) => format!("its rules are from another version ({c:?}, this is {VERSION:?})"),
            None => format!("its rules are from an earlier version (this is {VERSION:?})"),
        }
    } else {
        format!(
            "it has {} of its {} rules, and {} other(s)",
            ours.len(),
            want.len(),
            found.len() - ours.len()
        )
    };
    Ok(Structure::Broken(why))
}

/// Every element of the table, by set or map name (what a rebuild carries over).
pub fn all_elements(nft: &Nftables) -> kernel::Result<Vec<(&'static str, Vec<Element>)>> {
    let table = ruleset::table();
    let names = MapKind::ALL.map(MapKind::name);
    names
        .iter()
        .chain([&BRIDGES])
        .map(|&name| Ok((name, nft.elements(&table, name)?)))
        .collect()
}

/// Replaces the table with this version's structure holding `keep` and what `build` adds, in
/// one batch that the kernel applies only if the ruleset is still at `generation` (read before
/// `keep` was): nothing another ADD or DEL did in between is lost, the batch fails instead
/// ([`kernel::Error::is_generation_changed`]).
pub fn rebuild(
    nft: &Nftables,
    generation: u32,
    op: &str,
    keep: &[(&str, Vec<Element>)],
    build: impl Fn(&mut Transaction<'_>),
) -> kernel::Result<()> {
    let table = ruleset::table();
    let mut tx = nft.transaction_at(&table, generation);
    tx.delete_table();
    setup(&mut tx);
    for (set, elements) in keep {
        tx.add_elements(set, elements, false);
    }
    build(&mut tx);
    tx.commit(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_map_has_its_dnat_rule_and_each_chain_its_rules() {
        let r = rules();
        assert_eq!(r.iter().filter(|r| r.0 == HOSTPORTS).count(), 4);
        for chain in ["prerouting", "output", "postrouting"] {
            assert!(r.iter().any(|r| r.0 == chain), "{chain}");
        }
    }
}
