//! The node view as text.

use super::view::*;

/// The node as text: the way out, then each network's bridge, IPAM use, pods and issues.
pub fn render(v: &NodeView) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let outs: Vec<&RouteView> = v.routes.iter().filter(|r| !r.to_pods).collect();
    s.push_str("way out of the node:\n");
    if outs.is_empty() {
        s.push_str("  (no route leaves the node)\n");
    }
    for r in outs {
        let _ = writeln!(s, "  {}", r.describe(true));
    }
    for t in &v.tunnels {
        let _ = writeln!(s, "  tunnel {}", t.describe());
        for p in &t.peers {
            let _ = writeln!(s, "    peer {p}");
        }
    }
    if !v.peer_paths.is_empty() {
        s.push_str("other nodes' pods:\n");
        for p in &v.peer_paths {
            let _ = writeln!(s, "  {} {} ({})", p.dst, p.way, p.why);
        }
    }
    for n in &v.networks {
        let b = &n.bridge;
        let _ = writeln!(
            s,
            "\nnetwork {}{}",
            n.name,
            n.file
                .as_ref()
                .map(|f| format!(" ({})", f.display()))
                .unwrap_or_default()
        );
        if b.present {
            let _ = writeln!(
                s,
                "  bridge {} #{} {} mtu {} {} port(s) {}{}",
                b.name,
                b.index.unwrap_or(0),
                b.mac.as_deref().unwrap_or("-"),
                b.mtu.unwrap_or(0),
                b.ports,
                b.addresses.join(" "),
                if b.up { "" } else { " DOWN" }
            );
            if let Some(m) = &b.mtu_source {
                let _ = writeln!(s, "    pods' {m}");
            }
        } else {
            let _ = writeln!(s, "  bridge {} (missing)", b.name);
        }
        let _ = write!(s, "  ipam {}", n.ipam.kind);
        if let Some(d) = &n.ipam.data_dir {
            let _ = write!(s, " in {}", d.join(&n.name).display());
        }
        s.push('\n');
        for r in &n.ipam.ranges {
            let _ = writeln!(
                s,
                "    {} ({}-{}, gateway {}): {}/{} used",
                r.subnet, r.start, r.end, r.gateway, r.used, r.size
            );
        }
        if n.pods.is_empty() {
            s.push_str("  no pods\n");
        }
        for p in &n.pods {
            let _ = writeln!(
                s,
                "  pod {} {}  {}  mac {}  via {} #{}  in {}",
                crate::short_id(&p.container_id),
                p.ifname,
                if p.ips.is_empty() {
                    "no address".into()
                } else {
                    p.ips.join(" ")
                },
                p.mac.as_deref().unwrap_or("?"),
                p.host_veth,
                p.host_index,
                p.netns.as_deref().unwrap_or("netns not found")
            );
        }
        for i in &n.issues {
            let who = if i.container_id.is_empty() {
                String::new()
            } else {
                format!(" {}/{}", crate::short_id(&i.container_id), i.ifname)
            };
            let _ = writeln!(s, "  ! {}{who}: {}", i.kind.as_str(), i.detail);
        }
    }
    for t in &v.nftables {
        let _ = writeln!(s, "\nnftables {} {}:", t.family, t.name);
        for r in &t.rules {
            let _ = writeln!(
                s,
                "  chain {} handle {}  {}",
                r.chain,
                r.handle,
                r.comment.as_deref().unwrap_or("")
            );
        }
    }
    if !v.port_mappings.is_empty() {
        let _ = writeln!(s, "\nhost ports (podwire-portmap):");
        for m in &v.port_mappings {
            let _ = writeln!(s, "  {}", m.describe());
        }
    }
    for e in &v.errors {
        let _ = writeln!(s, "\nerror: {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pods: Vec<PodView>, issues: Vec<Issue>) -> NodeView {
        NodeView {
            networks: vec![NetworkView {
                name: "podwire".into(),
                file: Some("/etc/cni/net.d/10-podwire.conflist".into()),
                bridge: BridgeView {
                    name: "cni0".into(),
                    present: false,
                    index: None,
                    mac: None,
                    mtu: None,
                    up: false,
                    addresses: vec![],
                    ports: 0,
                    mtu_source: None,
                },
                ipam: IpamView {
                    kind: "podwire-ipam".into(),
                    data_dir: None,
                    ranges: vec![],
                    allocations: vec![],
                },
                pods,
                issues,
            }],
            routes: vec![],
            tunnels: vec![],
            peer_paths: vec![],
            nftables: vec![],
            port_mappings: vec![],
            errors: vec!["result cache /var/lib/cni/results: permission denied".into()],
        }
    }

    #[test]
    fn an_empty_node_says_what_is_missing_rather_than_printing_nothing() {
        let text = render(&node(vec![], vec![]));
        assert!(text.contains("(no route leaves the node)"), "{text}");
        assert!(text.contains("network podwire (/etc/cni/net.d/10-podwire.conflist)"));
        assert!(text.contains("bridge cni0 (missing)"), "{text}");
        assert!(text.contains("  no pods\n"), "{text}");
        assert!(text.contains("error: result cache"), "{text}");
    }

    #[test]
    fn pods_and_issues_are_one_line_each_with_a_short_container_id() {
        let pod = PodView {
            container_id: "abcdef0123456789abcdef".into(),
            ifname: "eth0".into(),
            host_veth: "veth1234".into(),
            host_index: 9,
            host_mac: None,
            netns: None,
            pod_index: None,
            mac: None,
            mtu: None,
            ips: vec![],
            routes: vec![],
            allocated: vec![],
        };
        let issue = Issue {
            kind: IssueKind::CacheWithoutPod,
            container_id: "abcdef0123456789abcdef".into(),
            ifname: "eth0".into(),
            detail: "cached, no interface".into(),
        };
        let text = render(&node(vec![pod], vec![issue]));
        assert!(
            text.contains(
                "  pod abcdef012345 eth0  no address  mac ?  via veth1234 #9  in netns not found\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  ! {} abcdef012345/eth0: cached, no interface",
                IssueKind::CacheWithoutPod.as_str()
            )),
            "{text}"
        );
    }
}
