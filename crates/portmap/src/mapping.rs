//! `runtimeConfig.portMappings` as the runtimes send them, and the pod addresses they map to.
//!
//! Podman (and the CNI conventions doc) use lower-case keys: `hostPort`, `containerPort`,
//! `protocol`, `hostIP`. containerd's CRI passes its Go struct, which has no JSON tags, so the
//! same keys arrive capitalized (`HostPort`, ..., `HostIP`), with `HostIP: ""` for "unset". Both
//! are read; an unspecified host IP (`""`, `0.0.0.0`, `::`) means every address of the node.

use cni::{CniResult, Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// Transport protocols with ports, by IANA number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => kernel::conntrack::IPPROTO_TCP,
            Protocol::Udp => kernel::conntrack::IPPROTO_UDP,
            Protocol::Sctp => kernel::conntrack::IPPROTO_SCTP,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
    /// `None`: every address of the node.
    pub host_ip: Option<IpAddr>,
}

impl std::fmt::Display for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}/{} -> {}",
            self.host_port,
            self.protocol.name(),
            self.container_port
        )
    }
}

/// One mapping as a runtime sends it, in either spelling (null = absent).
#[derive(Deserialize)]
#[serde(expecting = "a port mapping object")]
struct Raw {
    #[serde(rename = "hostPort", alias = "HostPort")]
    host_port: Option<u64>,
    #[serde(rename = "containerPort", alias = "ContainerPort")]
    container_port: Option<u64>,
    #[serde(alias = "Protocol")]
    protocol: Option<String>,
    #[serde(rename = "hostIP", alias = "HostIP", alias = "hostIp")]
    host_ip: Option<String>,
}

/// The mappings in the config's `runtimeConfig.portMappings` (none when absent or empty).
pub fn from_conf(conf: &cni::NetConf) -> Result<Vec<Mapping>> {
    match conf.runtime("portMappings") {
        Some(list) => from_value(list),
        None => Ok(Vec::new()),
    }
}

/// The mappings in a `portMappings` value (as libcni caches a runtime's capability args).
pub fn from_value(list: &Value) -> Result<Vec<Mapping>> {
    if list.is_null() {
        return Ok(Vec::new());
    }
    let list = list.as_array().ok_or_else(|| {
        Error::invalid_config(format!(
            "runtimeConfig.portMappings: want a list, got {list}"
        ))
    })?;
    list.iter().map(parse_one).collect()
}

fn parse_one(m: &Value) -> Result<Mapping> {
    let bad = |what: String| Error::invalid_config(format!("port mapping {m}: {what}"));
    let raw = Raw::deserialize(m).map_err(|e| bad(e.to_string()))?;
    let port = |key: &str, v: Option<u64>| -> Result<u16> {
        let v = v.ok_or_else(|| bad(format!("{key} is missing")))?;
        u16::try_from(v)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("{key} {v} is not a port number (1-65535)")))
    };
    let protocol = match raw
        .protocol
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("tcp") | Some("") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some("sctp") => Protocol::Sctp,
        Some(other) => return Err(bad(format!("protocol {other:?}: want tcp, udp or sctp"))),
    };
    let host_ip = match raw.host_ip.as_deref() {
        None | Some("") => None,
        Some(s) => {
            let ip: IpAddr = s
                .parse()
                .map_err(|_| bad(format!("hostIP {s:?} is not an IP address")))?;
            if ip.is_ipv6() && ip.is_loopback() {
                return Err(bad(
                    "hostIP ::1 cannot be mapped: the kernel never routes ::1 off the node's lo, \
                     so no pod could answer it; use 127.0.0.1, or the node's IPv6 addresses"
                        .into(),
                ));
            }
            (!ip.is_unspecified()).then_some(ip)
        }
    };
    Ok(Mapping {
        host_port: port("hostPort", raw.host_port)?,
        container_port: port("containerPort", raw.container_port)?,
        protocol,
        host_ip,
    })
}

/// The pod's first IPv4 and first IPv6 address in `prevResult` (those on an interface inside
/// the sandbox, when the result says which interface an address is on).
pub fn pod_addresses(prev: &CniResult) -> (Option<IpAddr>, Option<IpAddr>) {
    let in_sandbox = |ip: &cni::IpConfig| match ip.interface {
        Some(i) => prev
            .interfaces
            .get(i)
            .is_some_and(|iface| !iface.sandbox.is_empty()),
        None => true,
    };
    let first = |v6: bool| {
        prev.ips
            .iter()
            .filter(|ip| in_sandbox(ip))
            .map(|ip| ip.address.addr())
            .find(|a| a.is_ipv6() == v6)
    };
    (first(false), first(true))
}

/// The host-side interface the pod hangs off (a bridge plugin lists it first, without a sandbox):
/// where hairpin traffic comes in, and where 127.0.0.1 must be routable.
pub fn host_interface(prev: &CniResult) -> Option<&str> {
    prev.interfaces
        .iter()
        .find(|i| i.sandbox.is_empty() && !i.name.is_empty())
        .map(|i| i.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(maps: Value) -> cni::NetConf {
        let c = json!({"cniVersion": "1.0.0", "name": "n", "type": "podwire-portmap",
                       "runtimeConfig": {"portMappings": maps}});
        cni::NetConf::parse(c.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn podman_and_containerd_spellings_read_the_same() {
        let podman = conf(json!([
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""},
            {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "10.0.0.1"}
        ]));
        let containerd = conf(json!([
            {"HostPort": 8080, "ContainerPort": 80, "Protocol": "TCP", "HostIP": ""},
            {"HostPort": 5353, "ContainerPort": 53, "Protocol": "UDP", "HostIP": "10.0.0.1"}
        ]));
        let a = from_conf(&podman).unwrap();
        assert_eq!(a, from_conf(&containerd).unwrap());
        assert_eq!(a[0].host_ip, None);
        assert_eq!(a[1].protocol, Protocol::Udp);
        assert_eq!(a[1].host_ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(a[1].to_string(), "10.0.0.1:5353/udp -> 53");
    }

    #[test]
    fn defaults_and_unspecified_host_ips() {
        let m = from_conf(&conf(json!([
            {"hostPort": 1, "containerPort": 2},
            {"hostPort": 3, "containerPort": 4, "protocol": "sctp", "hostIP": "::"},
            {"hostPort": 5, "containerPort": 6, "hostIP": "0.0.0.0"}
        ])))
        .unwrap();
        assert_eq!(m[0].protocol, Protocol::Tcp);
        assert_eq!(m[1].protocol, Protocol::Sctp);
        assert!(m.iter().all(|m| m.host_ip.is_none()));
        assert!(from_conf(&conf(json!([]))).unwrap().is_empty());
        assert!(from_conf(&conf(Value::Null)).unwrap().is_empty());
    }

    #[test]
    fn bad_mappings_are_config_errors() {
        for bad in [
            json!([{"hostPort": 0, "containerPort": 80}]),
            json!([{"hostPort": 70000, "containerPort": 80}]),
            json!([{"containerPort": 80}]),
            json!([{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]),
            json!([{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}]),
            json!({"hostPort": 80}),
            json!([8080]),
            json!([{"hostPort": "80", "containerPort": 80}]),
            json!([{"hostPort": 80, "containerPort": 80, "hostIP": 1}]),
            json!([{"hostPort": 80, "containerPort": 80, "hostIP": "::1"}]),
        ] {
            let e = from_conf(&conf(bad.clone())).unwrap_err();
            assert_eq!(e.code, cni::Code::InvalidConfig, "{bad}: {e}");
        }
    }

    #[test]
    fn pod_addresses_come_from_the_sandbox_interface() {
        let prev = CniResult::from_value(&json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "pw0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": "10.1.0.1/24", "interface": 0},
                    {"address": "10.1.0.5/24", "interface": 2},
                    {"address": "fd00::5/64", "interface": 2}]
        }))
        .unwrap();
        let (v4, v6) = pod_addresses(&prev);
        assert_eq!(v4, Some("10.1.0.5".parse().unwrap()));
        assert_eq!(v6, Some("fd00::5".parse().unwrap()));
        assert_eq!(host_interface(&prev), Some("pw0"));
    }
}
