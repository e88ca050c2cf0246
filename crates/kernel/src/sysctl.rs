//! Reading and writing /proc/sys values without a shell. Keys are given
//! in slash form (`net/ipv4/ip_forward`) so interface names containing
//! dots (`eth0.100`) stay unambiguous; dotted keys without a slash are
//! accepted too (`net.ipv4.ip_forward`).
//!
//! /proc/sys/net shows the netns of the thread that opens the file, so
//! to reach a pod's values use `write_in`/`read_in` (or `Netns::enter`).

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::netns::Netns;

fn path_of(key: &str) -> Result<PathBuf> {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let bad = rel.is_empty()
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::invalid("sysctl", format!("invalid key {key:?}")));
    }
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Reads a value, trailing newline removed.
pub fn read(key: &str) -> Result<String> {
    let path = path_of(key)?;
    let s =
        std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read sysctl {key}"), e))?;
    Ok(s.trim_end_matches('\n').to_string())
}

/// Writes a value.
pub fn write(key: &str, value: &str) -> Result<()> {
    let path = path_of(key)?;
    std::fs::write(&path, value).map_err(|e| Error::io(format!("write sysctl {key}={value}"), e))
}

/// Reads a value as seen from inside `ns`.
pub fn read_in(ns: &Netns, key: &str) -> Result<String> {
    ns.run(|| read(key))?
}

/// Writes a value inside `ns`; the thread returns to its netns after.
pub fn write_in(ns: &Netns, key: &str, value: &str) -> Result<()> {
    ns.run(|| write(key, value))?
}

/// Key of a per-interface IPv4 setting: `net/ipv4/conf/<ifname>/<name>`.
pub fn ipv4_conf(ifname: &str, name: &str) -> String {
    format!("net/ipv4/conf/{ifname}/{name}")
}

/// Key of a per-interface IPv6 setting: `net/ipv6/conf/<ifname>/<name>`.
pub fn ipv6_conf(ifname: &str, name: &str) -> String {
    format!("net/ipv6/conf/{ifname}/{name}")
}

/// net.ipv4.ip_forward
pub const IPV4_FORWARD: &str = "net/ipv4/ip_forward";
/// net.ipv6.conf.all.forwarding
pub const IPV6_FORWARD: &str = "net/ipv6/conf/all/forwarding";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of(&ipv4_conf("eth0.100", "arp_notify")).unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/arp_notify")
        );
        assert!(path_of("net/../../etc/passwd").is_err());
        assert!(path_of("/etc/passwd").is_err());
        assert!(path_of("").is_err());
    }
}
