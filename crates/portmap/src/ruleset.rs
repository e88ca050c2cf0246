//! podwire-portmap's nftables table, `inet podwire-portmap`, shared by every pod of the node
//! (netns): a mapping is one map element, keyed by what a packet carries, tagged with its
//! attachment. This module makes the elements; [`crate::structure`] the table's chains and
//! rules around them.
//!
//! ```text
//! map hostport4 { type inet_proto . inet_service : ipv4_addr . inet_service }  # any host IP
//! map hostip4   { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//! map hostport6, hostip6 (the same for IPv6);  set bridges { type ifname }
//! ```
//!
//! A lookup is one hash probe whatever the number of pods, and ADD, DEL and CHECK touch only
//! their own keys (a get by key each; one dump per map for a port range).

use crate::mapping::{Mapping, Protocol};
use kernel::nft::{datatype, Element, Nftables, SetSpec, Table};
use std::collections::HashMap;
use std::net::IpAddr;

pub const TABLE: &str = kernel::owned::PORTMAP_TABLE;
pub const BRIDGES: &str = "bridges";

pub fn table() -> Table {
    kernel::owned::portmap_table()
}

/// The map holding a mapping: by family, and whether it is bound to a host IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapKind {
    pub v6: bool,
    pub host_ip: bool,
}

impl MapKind {
    pub const ALL: [MapKind; 4] = [
        MapKind {
            v6: false,
            host_ip: true,
        },
        MapKind {
            v6: false,
            host_ip: false,
        },
        MapKind {
            v6: true,
            host_ip: true,
        },
        MapKind {
            v6: true,
            host_ip: false,
        },
    ];

    pub fn name(self) -> &'static str {
        match (self.v6, self.host_ip) {
            (false, false) => "hostport4",
            (false, true) => "hostip4",
            (true, false) => "hostport6",
            (true, true) => "hostip6",
        }
    }

    pub(crate) fn id(self) -> u32 {
        1 + self.v6 as u32 * 2 + self.host_ip as u32
    }

    pub(crate) fn addr_len(self) -> u32 {
        if self.v6 {
            16
        } else {
            4
        }
    }

    pub(crate) fn spec(self) -> SetSpec<'static> {
        let addr = if self.v6 {
            datatype::IP6ADDR
        } else {
            datatype::IPADDR
        };
        let (proto, port) = (datatype::INET_PROTOCOL, datatype::INET_SERVICE);
        let (key_type, key_len) = if self.host_ip {
            (datatype::concat(&[addr, proto, port]), self.addr_len() + 8)
        } else {
            (datatype::concat(&[proto, port]), 8)
        };
        SetSpec {
            name: self.name(),
            id: self.id(),
            key_type,
            key_len,
            data: Some((datatype::concat(&[addr, port]), self.addr_len() + 4)),
        }
    }
}

pub(crate) const BRIDGES_ID: u32 = 5;

/// One map element to be: which map, its key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub map: MapKind,
    pub key: Vec<u8>,
    pub data: Vec<u8>,
    pub mapping: Mapping,
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A port as a concatenation part: big-endian, zero-padded to 4 bytes.
fn port_part(port: u16) -> [u8; 4] {
    let p = port.to_be_bytes();
    [p[0], p[1], 0, 0]
}

fn proto_part(p: Protocol) -> [u8; 4] {
    [p.number(), 0, 0, 0]
}

/// The key a mapping is stored under in the map of `v6` (no pod address needed: DEL works
/// without a prevResult).
pub fn key(m: &Mapping, v6: bool) -> (MapKind, Vec<u8>) {
    let map = MapKind {
        v6,
        host_ip: m.host_ip.is_some(),
    };
    let mut key = Vec::with_capacity(24);
    if let Some(ip) = m.host_ip {
        key.extend(octets(ip));
    }
    key.extend(proto_part(m.protocol));
    key.extend(port_part(m.host_port));
    (map, key)
}

/// The families a mapping applies to: its host IP's, else both.
pub fn families(m: &Mapping) -> &'static [bool] {
    match m.host_ip {
        Some(IpAddr::V4(_)) => &[false],
        Some(IpAddr::V6(_)) => &[true],
        None => &[false, true],
    }
}

/// The elements for `mappings` to a pod at `v4`/`v6`; a mapping for a family the pod lacks is
/// skipped (as the reference does for a host IP of the other family).
pub fn entries(mappings: &[Mapping], v4: Option<IpAddr>, v6: Option<IpAddr>) -> Vec<Entry> {
    let mut out = Vec::new();
    for m in mappings {
        for &is_v6 in families(m) {
            let Some(pod) = (if is_v6 { v6 } else { v4 }) else {
                continue;
            };
            let (map, key) = key(m, is_v6);
            let mut data = octets(pod);
            data.extend(port_part(m.container_port));
            out.push(Entry {
                map,
                key,
                data,
                mapping: m.clone(),
            });
        }
    }
    out
}

/// A map element read back: what `node show` prints of a host port mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// `None`: every address of the node.
    pub host_ip: Option<IpAddr>,
    /// IP protocol number (6 tcp, 17 udp, 132 sctp).
    pub protocol: u8,
    pub host_port: u16,
    pub pod_ip: IpAddr,
    pub container_port: u16,
    /// The owner tag, `podwire-portmap/<net>/<ctr>/<if>`.
    pub tag: Option<String>,
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// Decodes an element of `map` (the inverse of [`entries`] + [`element`]); `None` for bytes
/// that are not one of ours.
pub fn decode(map: MapKind, el: &Element) -> Option<HostPort> {
    let alen = map.addr_len() as usize;
    let key = &el.key[..];
    let (host_ip, rest) = if map.host_ip {
        (Some(ip_from(key.get(..alen)?)?), &key[alen..])
    } else {
        (None, key)
    };
    let data = el.data.as_deref()?;
    if rest.len() != 8 || data.len() != alen + 4 {
        return None;
    }
    Some(HostPort {
        host_ip,
        protocol: rest[0],
        host_port: u16::from_be_bytes([rest[4], rest[5]]),
        pod_ip: ip_from(&data[..alen])?,
        container_port: u16::from_be_bytes([data[alen], data[alen + 1]]),
        tag: el.tag.clone(),
    })
}

/// Above this many keys, one dump of each map costs less than a request per key.
const DUMP_ABOVE: usize = 16;

/// The elements held under `keys` (`None`: free), in their order: a get by key each when they
/// are few, one dump per map when they are many (a port range).
pub fn held(nft: &Nftables, keys: &[(MapKind, &[u8])]) -> kernel::Result<Vec<Option<Element>>> {
    let table = table();
    if keys.len() <= DUMP_ABOVE {
        return keys
            .iter()
            .map(|(map, key)| nft.element(&table, map.name(), key))
            .collect();
    }
    let mut all: HashMap<(MapKind, Vec<u8>), Element> = HashMap::new();
    for map in MapKind::ALL {
        if keys.iter().any(|(m, _)| *m == map) {
            for el in nft.elements(&table, map.name())? {
                all.insert((map, el.key.clone()), el);
            }
        }
    }
    Ok(keys
        .iter()
        .map(|(map, key)| all.remove(&(*map, key.to_vec())))
        .collect())
}

/// An interface name as a key of the `bridges` set (IFNAMSIZ bytes, NUL-padded).
pub fn ifname_key(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.resize(16, 0);
    k
}

pub fn element(e: &Entry, tag: &str) -> Element {
    Element {
        key: e.key.clone(),
        data: Some(e.data.clone()),
        tag: Some(tag.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host_ip: Option<&str>, proto: Protocol) -> Mapping {
        Mapping {
            host_port: 8080,
            container_port: 80,
            protocol: proto,
            host_ip: host_ip.map(|s| s.parse().unwrap()),
        }
    }

    #[test]
    fn keys_and_values_are_nft_concatenations() {
        let v4: IpAddr = "10.1.0.5".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        let e = entries(&[m(None, Protocol::Tcp)], Some(v4), Some(v6));
        assert_eq!(e.len(), 2, "dual-stack pod: both families");
        assert_eq!(e[0].map.name(), "hostport4");
        // tcp . 8080 : 10.1.0.5 . 80, as `nft --debug=netlink` shows it
        assert_eq!(e[0].key, [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(e[0].data, [10, 1, 0, 5, 0, 80, 0, 0]);
        assert_eq!(e[1].map.name(), "hostport6");
        assert_eq!(e[1].data.len(), 20);

        let e = entries(&[m(Some("192.0.2.1"), Protocol::Udp)], Some(v4), Some(v6));
        assert_eq!(e.len(), 1, "a host IP picks its family");
        assert_eq!(e[0].map.name(), "hostip4");
        assert_eq!(e[0].key, [192, 0, 2, 1, 17, 0, 0, 0, 0x1f, 0x90, 0, 0]);

        let e = entries(&[m(Some("2001:db8::1"), Protocol::Tcp)], Some(v4), None);
        assert!(
            e.is_empty(),
            "an IPv6 host IP for an IPv4-only pod is skipped"
        );
    }

    #[test]
    fn map_specs_match_their_keys() {
        for map in MapKind::ALL {
            let s = map.spec();
            let mapping = m(
                map.host_ip
                    .then_some(if map.v6 { "2001:db8::1" } else { "192.0.2.1" }),
                Protocol::Tcp,
            );
            let (k, key) = key(&mapping, map.v6);
            assert_eq!(k, map);
            assert_eq!(key.len() as u32, s.key_len, "{}", s.name);
        }
    }

    #[test]
    fn elements_decode_back_to_their_mappings() {
        let mappings = [
            m(None, Protocol::Tcp),
            m(Some("192.0.2.7"), Protocol::Udp),
            m(Some("2001:db8::7"), Protocol::Tcp),
        ];
        let (v4, v6) = ("10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap());
        let entries = entries(&mappings, Some(v4), Some(v6));
        assert_eq!(
            entries.len(),
            4,
            "any-IP TCP twice (both families), two bound"
        );
        for e in &entries {
            let hp = decode(e.map, &element(e, "podwire-portmap/n/c/eth0")).expect("decodes");
            assert_eq!(hp.host_ip, e.mapping.host_ip);
            assert_eq!(hp.protocol, e.mapping.protocol.number());
            assert_eq!((hp.host_port, hp.container_port), (8080, 80));
            assert_eq!(hp.pod_ip, if e.map.v6 { v6 } else { v4 });
            assert_eq!(hp.tag.as_deref(), Some("podwire-portmap/n/c/eth0"));
        }
        let junk = Element {
            key: vec![1, 2, 3],
            data: Some(vec![]),
            tag: None,
        };
        assert_eq!(decode(MapKind::ALL[0], &junk), None);
    }
}
