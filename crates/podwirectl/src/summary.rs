//! The human-readable view of a result: interfaces, addresses, routes, DNS.

use cni::CniResult;
use std::fmt::Write;

pub fn result(r: &CniResult) -> String {
    let mut s = String::new();
    let iface_name = |i: Option<usize>| {
        i.and_then(|i| r.interfaces.get(i))
            .map(|f| f.name.as_str())
            .unwrap_or("?")
    };
    if !r.interfaces.is_empty() {
        s.push_str("interfaces:\n");
        let width = r.interfaces.iter().map(|i| i.name.len()).max().unwrap_or(0);
        for (n, i) in r.interfaces.iter().enumerate() {
            let _ = write!(s, "  [{n}] {:width$}", i.name);
            if !i.mac.is_empty() {
                let _ = write!(s, "  {}", i.mac);
            }
            if let Some(mtu) = i.mtu {
                let _ = write!(s, "  mtu {mtu}");
            }
            if !i.sandbox.is_empty() {
                let _ = write!(s, "  in {}", i.sandbox);
            }
            s.push('\n');
        }
    }
    if !r.ips.is_empty() {
        s.push_str("ips:\n");
        for ip in &r.ips {
            let _ = write!(s, "  {}", ip.address);
            if let Some(gw) = ip.gateway {
                let _ = write!(s, "  gateway {gw}");
            }
            if ip.interface.is_some() {
                let _ = write!(s, "  on {}", iface_name(ip.interface));
            }
            s.push('\n');
        }
    }
    if !r.routes.is_empty() {
        s.push_str("routes:\n");
        for rt in &r.routes {
            let _ = write!(s, "  {}", rt.dst);
            if let Some(gw) = rt.gw {
                let _ = write!(s, "  via {gw}");
            }
            if let Some(mtu) = rt.mtu {
                let _ = write!(s, "  mtu {mtu}");
            }
            if let Some(t) = rt.table {
                let _ = write!(s, "  table {t}");
            }
            s.push('\n');
        }
    }
    let d = &r.dns;
    if !d.is_empty() {
        s.push_str("dns:\n");
        if !d.nameservers.is_empty() {
            let _ = writeln!(s, "  nameservers {}", d.nameservers.join(", "));
        }
        if !d.domain.is_empty() {
            let _ = writeln!(s, "  domain {}", d.domain);
        }
        if !d.search.is_empty() {
            let _ = writeln!(s, "  search {}", d.search.join(" "));
        }
        if !d.options.is_empty() {
            let _ = writeln!(s, "  options {}", d.options.join(" "));
        }
    }
    s
}

/// An error as one line: the runtime's message with any newlines (plugin stderr) folded.
pub fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each plugin of the chain with its exec time, in the order they ran.
pub fn plugin_runs(runs: &[runtime::PluginRun]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let mut s = String::from("plugins:\n");
    let width = runs.iter().map(|r| r.kind.len()).max().unwrap_or(0);
    for r in runs {
        let _ = writeln!(
            s,
            "  {:width$}  {:>8.3} ms  {}{}",
            r.kind,
            r.elapsed.as_secs_f64() * 1e3,
            r.binary.display(),
            if r.ok { "" } else { "  (failed)" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_interfaces_ips_routes_dns() {
        let r = CniResult::parse(
            br#"{"cniVersion":"1.0.0",
                "interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:01"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:02","sandbox":"/run/netns/p"}],
                "ips":[{"address":"10.252.0.5/24","gateway":"10.252.0.1","interface":1}],
                "routes":[{"dst":"0.0.0.0/0","gw":"10.252.0.1"}],
                "dns":{"nameservers":["10.252.0.53"],"search":["svc.local"]}}"#,
        )
        .unwrap();
        let s = result(&r);
        assert!(
            s.contains("[1] eth0  aa:bb:cc:dd:ee:02  in /run/netns/p"),
            "{s}"
        );
        assert!(
            s.contains("10.252.0.5/24  gateway 10.252.0.1  on eth0"),
            "{s}"
        );
        assert!(s.contains("0.0.0.0/0  via 10.252.0.1"), "{s}");
        assert!(
            s.contains("nameservers 10.252.0.53") && s.contains("search svc.local"),
            "{s}"
        );
    }

    #[test]
    fn one_line_folds_newlines() {
        assert_eq!(one_line("a\n  b\tc\n"), "a b c");
    }
}
