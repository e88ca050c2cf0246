//! The hand-built twin: bridges, veths, routes and VXLAN devices made with `ip` commands, what
//! a perfect plugin would leave.

use super::*;

/// Runs a command; it must succeed.
pub fn sh(ns: &str, cmd: &str) {
    let mut full = vec!["netns", "exec", ns];
    full.extend(cmd.split_whitespace());
    let o = std::process::Command::new("ip")
        .args(&full)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ip netns exec {ns} {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A hand-built node network: on node `i` (its netns `node`), bridge `br` with 10.`net`.i.1/24
/// and fd00:`net`:0:i::1/64, and `pods` pods on it, MTU `mtu`; returns the pods' ends.
pub struct HandNet<'a> {
    pub br: &'a str,
    pub net: u8,
    pub mtu: u32,
}

pub fn hand_node(node: &str, i: u8, pods: u8, h: &HandNet, keep: &mut Vec<TestNs>) -> Vec<End> {
    let HandNet { br, net, mtu } = *h;
    sh(node, &format!("ip link add {br} type bridge"));
    sh(node, &format!("ip link set {br} mtu {mtu} up"));
    sh(node, &format!("ip addr add 10.{net}.{i}.1/24 dev {br}"));
    sh(
        node,
        &format!("ip addr add fd00:{net}:0:{i}::1/64 dev {br} nodad"),
    );
    let mut ends = Vec::new();
    for p in 0..pods {
        let ns = TestNs::new("pwhp");
        let host = format!("{br}v{i}{p}");
        sh(
            node,
            &format!(
                "ip link add {host} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {}",
                ns.name
            ),
        );
        sh(node, &format!("ip link set {host} master {br} up"));
        let (v4, v6) = (
            format!("10.{net}.{i}.{}", 10 + p),
            format!("fd00:{net}:0:{i}::{}", 10 + p),
        );
        sh(&ns.name, &format!("ip addr add {v4}/24 dev eth0"));
        sh(&ns.name, &format!("ip addr add {v6}/64 dev eth0 nodad"));
        sh(&ns.name, "ip link set eth0 up");
        sh(
            &ns.name,
            &format!("ip route add default via 10.{net}.{i}.1"),
        );
        sh(
            &ns.name,
            &format!("ip -6 route add default via fd00:{net}:0:{i}::1"),
        );
        ends.push(End {
            ns: ns.name.clone(),
            v4: v4.parse().unwrap(),
            v6: v6.parse().unwrap(),
        });
        keep.push(ns);
    }
    ends
}

/// One hand-built VXLAN device on node netns `ns` toward one peer, as podwire programs its own:
/// no learning, a static FDB entry for the peer's device address `peer_mac` at `peer` (its
/// underlay address), a permanent neighbour for the peer's gateway address `gw`. `extra`: more
/// `type vxlan` options (the checksum settings tried).
pub struct Vx<'a> {
    pub name: &'a str,
    pub id: u32,
    pub local: &'a str,
    pub over: &'a str,
    pub mtu: u32,
    pub mac: String,
    pub extra: &'a str,
}

pub fn vxlan_dev(ns: &str, vx: &Vx, peer_mac: &str, peer: &str, gw: &str) {
    let Vx {
        name,
        id,
        local,
        over,
        mtu,
        ..
    } = *vx;
    sh(
        ns,
        &format!(
            "ip link add {name} type vxlan id {id} dstport {} local {local} dev {over} nolearning {}",
            4700 + id,
            vx.extra
        ),
    );
    sh(
        ns,
        &format!("ip link set {name} address {} mtu {mtu} up", vx.mac),
    );
    sh(
        ns,
        &format!("bridge fdb append {peer_mac} dev {name} dst {peer}"),
    );
    sh(
        ns,
        &format!("ip neigh add {gw} lladdr {peer_mac} dev {name} nud permanent"),
    );
}

pub fn vx_mac(node: u8, id: u32) -> String {
    format!("0e:00:00:00:{id:02x}:{node:02x}")
}

/// The hand-built VXLAN devices between node netns `a` (index `ia`, underlay addresses `la`,
/// `la6`) and node `b`: one per family as podwire has them (`hbvx`, `hbvx6`), and the same with
/// the UDP checksum settings the offload experiment tries (`hbvc`: IPv4 with checksums,
/// `hbvz6`: IPv6 with zero checksums both ways); routes to `b`'s pods through the first two.
pub fn hand_vxlan(a: &str, ia: u8, la: &str, la6: &str, ib: u8, lb: &str, lb6: &str) {
    let (gw4, gw6) = (format!("10.240.{ib}.0"), format!("fd00:240:0:{ib}::"));
    for (name, id, v6, extra) in [
        ("hbvx", 42, false, ""),
        ("hbvx6", 43, true, ""),
        ("hbvc", 44, false, "udpcsum"),
        ("hbvz6", 45, true, "udp6zerocsumtx udp6zerocsumrx"),
    ] {
        let vx = Vx {
            name,
            id,
            local: if v6 { la6 } else { la },
            over: "eth0",
            mtu: if v6 { 1430 } else { 1450 },
            mac: vx_mac(ia, id),
            extra,
        };
        let (peer, gw) = if v6 { (lb6, &gw6) } else { (lb, &gw4) };
        vxlan_dev(a, &vx, &vx_mac(ib, id), peer, gw);
    }
    sh(
        a,
        &format!("ip route add {gw4}/24 via {gw4} dev hbvx onlink"),
    );
    sh(
        a,
        &format!("ip -6 route add {gw6}/64 via {gw6} dev hbvx6 onlink"),
    );
}
