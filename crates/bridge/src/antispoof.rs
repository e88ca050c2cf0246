//! `spoofCheck` (on unless the config says `false`): from a pod's port the bridge takes only
//! frames with the pod's MAC as source; IP packets from the pod's own addresses (IPv6 also from
//! link-local and from `::`, which duplicate address detection uses); ARP whose sender is the
//! pod's MAC and IPv4 address (or 0.0.0.0, a probe); neighbour advertisements whose target is
//! the pod's address or a link-local one; and no router advertisement or redirect. Everything
//! else is dropped, and counted by reason.
//!
//! One node-wide nftables table, `bridge podwire-antispoof`, hooked where frames enter a bridge
//! (before it learns their source MAC). Its rules never change: they look the frame's input
//! port up in sets keyed `iifname . <field>`, and a pod's ADD only adds elements (tagged with the
//! attachment, like the masquerade rules), DEL removes them, GC removes those of attachments
//! that are gone. Frames from a port that is not in the `ports` set (an uplink, a pod with
//! `spoofCheck: false`) pass untouched.

use cni::{Error, Result};
use kernel::nft::{
    concat_key, datatype, ifname_key, BaseChain, Cmp, Element, Field, Nftables, SetSpec, Table,
    Transaction,
};
use kernel::MacAddr;
use std::net::IpAddr;

pub const TABLE: &str = kernel::owned::ANTISPOOF_TABLE;

pub fn table() -> Table {
    kernel::owned::antispoof_table()
}

/// The sets: which ports are guarded, and what each may claim.
const PORTS: SetSpec = SetSpec {
    name: "ports",
    id: 1,
    key_type: datatype::IFNAME,
    key_len: 16,
    data: None,
};
const MACS: SetSpec = SetSpec {
    name: "pod-macs",
    id: 2,
    key_type: (datatype::IFNAME << 6) | datatype::ETHERADDR,
    key_len: 24,
    data: None,
};
const IPV4: SetSpec = SetSpec {
    name: "pod-ipv4",
    id: 3,
    key_type: (datatype::IFNAME << 6) | datatype::IPADDR,
    key_len: 20,
    data: None,
};
const IPV6: SetSpec = SetSpec {
    name: "pod-ipv6",
    id: 4,
    key_type: (datatype::IFNAME << 6) | datatype::IP6ADDR,
    key_len: 32,
    data: None,
};
const SETS: [SetSpec; 4] = [PORTS, MACS, IPV4, IPV6];

/// The named counters, one per reason a frame is dropped (`nft list counters table bridge
/// podwire-antispoof`).
pub const COUNTERS: [&str; 6] = [
    "spoofed-mac",
    "spoofed-arp",
    "spoofed-ipv4",
    "spoofed-ipv6",
    "spoofed-nd",
    "other-ethertype",
];

/// A pod's port: the host end of its veth pair, and what the pod may claim through it.
pub struct Port<'a> {
    pub name: &'a str,
    pub mac: MacAddr,
    pub ips: &'a [IpAddr],
}

/// Every element of one port, with the set it goes in.
fn elements(port: &Port, tag: &str) -> Vec<(&'static str, Element)> {
    let iif = ifname_key(port.name);
    let el = |key: Vec<u8>| Element {
        key,
        data: None,
        tag: Some(tag.to_string()),
    };
    let mut v = vec![
        (PORTS.name, el(iif.clone())),
        (MACS.name, el(concat_key(&[&iif, &port.mac.0]))),
    ];
    for ip in port.ips {
        match ip {
            IpAddr::V4(a) => v.push((IPV4.name, el(concat_key(&[&iif, &a.octets()])))),
            IpAddr::V6(a) => v.push((IPV6.name, el(concat_key(&[&iif, &a.octets()])))),
        }
    }
    v
}

/// Guards the port: its elements in one batch (with the table's setup in front the first time).
/// The port must not carry traffic before: ADD calls this while the pod's end is still down.
pub fn add(port: &Port, tag: &str) -> Result<()> {
    if tag.len() > kernel::nft::MAX_TAG_LEN {
        return Err(Error::invalid_config(format!(
            "attachment tag {tag:?} is longer than {} bytes: shorten the network name",
            kernel::nft::MAX_TAG_LEN
        )));
    }
    let nft = Nftables::new()?;
    let els = elements(port, tag);
    let op = format!("guard port {} against spoofing ({tag})", port.name);
    nft.commit_with_setup(&table(), &op, setup, |tx| {
        for set in SETS {
            let mine: Vec<Element> = els
                .iter()
                .filter(|(s, _)| *s == set.name)
                .map(|(_, e)| e.clone())
                .collect();
            tx.add_elements(set.name, &mine, false);
        }
    })
    .map_err(cni::Error::from)
}

/// Removes the attachment's elements; returns how many.
pub fn delete(tag: &str) -> Result<usize> {
    delete_where(|t| t == tag)
}

/// Removes the elements whose tag `doomed` says; returns how many. An absent table has none.
pub fn delete_where(doomed: impl Fn(&str) -> bool) -> Result<usize> {
    delete_on(&socket()?, doomed)
}

pub fn socket() -> Result<Nftables> {
    Nftables::new().map_err(cni::Error::from)
}

/// As `delete_where`, on `nft`. Removed elements are freed after an RCU grace period, and
/// closing a netfilter socket waits for that (~10 ms): a caller with other work to do keeps the
/// socket open through it.
pub fn delete_on(nft: &Nftables, doomed: impl Fn(&str) -> bool) -> Result<usize> {
    let table = table();
    let mut last = None;
    // An element removed meanwhile (a concurrent DEL or GC) fails the batch: list again.
    for _ in 0..3 {
        let mut keys = Vec::new();
        for set in SETS {
            for e in nft.elements(&table, set.name)? {
                if e.tag.as_deref().is_some_and(&doomed) {
                    keys.push((set.name, e.key));
                }
            }
        }
        // Begun only now: a batch takes its sequence numbers from the socket when it begins.
        let mut tx = nft.transaction(&table);
        for set in SETS {
            let mine: Vec<Vec<u8>> = keys
                .iter()
                .filter(|(s, _)| *s == set.name)
                .map(|(_, k)| k.clone())
                .collect();
            tx.delete_elements(set.name, &mine);
        }
        let n = keys.len();
        match tx.commit(&format!("remove spoofCheck elements from bridge {TABLE}")) {
            Ok(()) => return Ok(n),
            Err(e) if e.is_not_found() => last = Some(e),
            Err(e) => return Err(cni::Error::from(e)),
        }
    }
    Err(cni::Error::from(last.expect("the loop ran")))
}

/// The elements of `port` that are missing, described for a CHECK error.
pub fn missing(port: &Port, tag: &str) -> Result<Vec<String>> {
    let nft = Nftables::new()?;
    let table = table();
    let mut out = Vec::new();
    for (set, e) in elements(port, tag) {
        if nft.element(&table, set, &e.key)?.is_none() {
            out.push(format!("{set} {}", describe(port, set, &e.key)));
        }
    }
    Ok(out)
}

fn describe(port: &Port, set: &str, key: &[u8]) -> String {
    let rest = &key[16.min(key.len())..];
    let what = match (set, rest.len()) {
        (_, 0) => return port.name.to_string(),
        ("pod-macs", _) => port.mac.to_string(),
        (_, 4) => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(rest).expect("4")).to_string(),
        (_, 16) => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(rest).expect("16")).to_string(),
        _ => format!("{rest:02x?}"),
    };
    format!("{} . {what}", port.name)
}

/// The table's constant part: counters, sets, chains and rules (see the module comment).
fn setup(tx: &mut Transaction<'_>) {
    tx.add_table();
    for c in COUNTERS {
        tx.add_counter(c);
    }
    for set in &SETS {
        tx.add_set(set);
    }
    // Created exclusively: the one setup of two racing first ADDs that fails retries without.
    tx.add_chain("guard", true);
    for chain in [
        "guard-arp",
        "guard-ipv4",
        "guard-ipv6",
        "guard-nd",
        "guard-na",
    ] {
        tx.add_chain(chain, false);
    }
    tx.add_base_chain("prerouting", BaseChain::BridgePrerouting);
    tx.add_rule("prerouting", None, |e| {
        e.concat_lookup(&[Field::Iifname], PORTS.name, PORTS.id, false);
        e.goto("guard");
    });

    let drop_as = |tx: &mut Transaction<'_>, chain: &str, counter: &'static str| {
        tx.add_rule(chain, None, |e| {
            e.count(counter);
            e.discard();
        });
    };
    // Any frame: the pod's own MAC, then by protocol; nothing but ARP, IPv4 and IPv6.
    tx.add_rule("guard", None, |e| {
        e.concat_lookup(
            &[Field::Iifname, Field::EtherSaddr],
            MACS.name,
            MACS.id,
            true,
        );
        e.count("spoofed-mac");
        e.discard();
    });
    for (ethertype, chain) in [
        (0x0806u16, "guard-arp"),
        (0x0800, "guard-ipv4"),
        (0x86dd, "guard-ipv6"),
    ] {
        tx.add_rule("guard", None, |e| {
            e.field_cmp(Field::EtherType, Cmp::Eq, &ethertype.to_be_bytes());
            e.goto(chain);
        });
    }
    drop_as(tx, "guard", "other-ethertype");

    // ARP: Ethernet/IPv4 lengths (all the kernel reads), sender = the pod's MAC and IPv4 address.
    tx.add_rule("guard-arp", None, |e| {
        e.field_cmp(Field::ArpLens, Cmp::Neq, &[6, 4]);
        e.count("spoofed-arp");
        e.discard();
    });
    tx.add_rule("guard-arp", None, |e| {
        e.concat_lookup(
            &[Field::Iifname, Field::ArpSenderMac],
            MACS.name,
            MACS.id,
            true,
        );
        e.count("spoofed-arp");
        e.discard();
    });
    tx.add_rule("guard-arp", None, |e| {
        e.field_cmp(Field::ArpSenderIp, Cmp::Eq, &[0; 4]);
        e.accept();
    });
    tx.add_rule("guard-arp", None, |e| {
        e.concat_lookup(
            &[Field::Iifname, Field::ArpSenderIp],
            IPV4.name,
            IPV4.id,
            false,
        );
        e.accept();
    });
    drop_as(tx, "guard-arp", "spoofed-arp");

    tx.add_rule("guard-ipv4", None, |e| {
        e.concat_lookup(&[Field::Iifname, Field::IpSaddr], IPV4.name, IPV4.id, false);
        e.accept();
    });
    drop_as(tx, "guard-ipv4", "spoofed-ipv4");

    // IPv6: the pod's addresses, link-local, or :: (DAD); then neighbour discovery.
    tx.add_rule("guard-ipv6", None, |e| {
        e.concat_lookup(
            &[Field::Iifname, Field::Ip6Saddr],
            IPV6.name,
            IPV6.id,
            false,
        );
        e.goto("guard-nd");
    });
    tx.add_rule("guard-ipv6", None, |e| {
        e.field_in(Field::Ip6Saddr, link_local());
        e.goto("guard-nd");
    });
    tx.add_rule("guard-ipv6", None, |e| {
        e.field_cmp(Field::Ip6Saddr, Cmp::Eq, &[0; 16]);
        e.goto("guard-nd");
    });
    drop_as(tx, "guard-ipv6", "spoofed-ipv6");

    // A pod is no router (RA 134, redirect 137); a neighbour advertisement (136) must be for
    // the pod's own address or a link-local one.
    for (icmp_type, verdict) in [(134u8, None), (137, None), (136, Some("guard-na"))] {
        tx.add_rule("guard-nd", None, |e| {
            e.field_cmp(Field::L4Proto, Cmp::Eq, &[58]);
            e.field_cmp(Field::Icmpv6Type, Cmp::Eq, &[icmp_type]);
            match verdict {
                Some(chain) => e.goto(chain),
                None => {
                    e.count("spoofed-nd");
                    e.discard();
                }
            }
        });
    }
    tx.add_rule("guard-nd", None, |e| e.accept());
    tx.add_rule("guard-na", None, |e| {
        e.concat_lookup(
            &[Field::Iifname, Field::NaTarget],
            IPV6.name,
            IPV6.id,
            false,
        );
        e.accept();
    });
    tx.add_rule("guard-na", None, |e| {
        e.field_in(Field::NaTarget, link_local());
        e.accept();
    });
    drop_as(tx, "guard-na", "spoofed-nd");
}

fn link_local() -> ipnet::IpNet {
    "fe80::/10".parse().expect("a valid prefix")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dual_stack_port_has_one_element_per_claim() {
        let ips: Vec<IpAddr> = vec!["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let port = Port {
            name: "veth1234",
            mac: "0a:58:0a:01:00:05".parse().unwrap(),
            ips: &ips,
        };
        let els = elements(&port, "podwire/n/c/eth0");
        let sets: Vec<&str> = els.iter().map(|(s, _)| *s).collect();
        assert_eq!(sets, ["ports", "pod-macs", "pod-ipv4", "pod-ipv6"]);
        for (set, e) in &els {
            let spec = SETS.iter().find(|s| s.name == *set).unwrap();
            assert_eq!(e.key.len() as u32, spec.key_len, "{set}");
            assert_eq!(e.tag.as_deref(), Some("podwire/n/c/eth0"));
        }
        assert_eq!(
            describe(&port, "pod-ipv4", &els[2].1.key),
            "veth1234 . 10.1.0.5"
        );
        assert_eq!(
            describe(&port, "pod-macs", &els[1].1.key),
            "veth1234 . 0a:58:0a:01:00:05"
        );
    }
}
