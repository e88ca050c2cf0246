//! Where a path's CPU goes: `perf record -a` during one stream, kernel symbols grouped.

use super::*;

/// Where a path's CPU goes: `perf record -a` during one TCP stream, kernel symbols grouped by
/// what they do, as CPU milliseconds per gigabyte carried (so paths of different speed compare;
/// idle excluded).
pub fn profile(paths: &[(&str, &End, &End)], secs: f64) -> String {
    if std::process::Command::new("perf")
        .arg("--version")
        .output()
        .is_err()
    {
        return "\n### Where the cycles go\n\n(not measured: `perf` is not installed; apt install linux-perf)\n".into();
    }
    const HZ: f64 = 1999.0;
    let mut cols: Vec<(String, f64, std::collections::BTreeMap<&'static str, f64>)> = Vec::new();
    let mut tops: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for (name, a, b) in paths {
        eprintln!("profile: {name}");
        let data = std::env::temp_dir().join(format!("{}.perf", testkit::unique("pwprof")));
        let mut rec = std::process::Command::new("perf")
            .args(["record", "-a", "-F", "1999", "-q", "-o"])
            .arg(&data)
            .args(["--", "sleep"])
            .arg(format!("{secs}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let gbit = bulk(a, b, false, 1, secs + 0.5);
        rec.wait().unwrap();
        let out = std::process::Command::new("perf")
            .args([
                "report",
                "--stdio",
                "-n",
                "--no-children",
                "--sort",
                "sym",
                "-i",
            ])
            .arg(&data)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&data);
        let gb = gbit * secs / 8.0;
        let mut by = std::collections::BTreeMap::new();
        let mut other: Vec<(String, f64)> = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || !f[0].ends_with('%') {
                continue;
            }
            let Ok(samples) = f[1].parse::<f64>() else {
                continue;
            };
            let Some(what) = bucket(f[2] == "[k]", f[3]) else {
                continue;
            };
            let ms = samples / HZ * 1000.0 / gb;
            *by.entry(what).or_insert(0.0) += ms;
            if what == "other kernel" && other.len() < 5 {
                other.push((f[3].to_string(), ms));
            }
        }
        cols.push((name.to_string(), gbit, by));
        tops.push((name.to_string(), other));
    }
    let mut s = format!(
        "\n### Where the cycles go\n\n`perf record -a` ({HZ} Hz) during one TCP stream of {secs} s \
         per path (podwire's, IPv4), kernel symbols grouped by what they do: CPU milliseconds \
         per gigabyte carried, both ends together (idle excluded).\n\n| |"
    );
    for (name, _, _) in &cols {
        s += &format!(" {name} |");
    }
    s += "\n| --- |";
    s += &" ---: |".repeat(cols.len());
    s += "\n| Gbit/s (this run) |";
    for (_, g, _) in &cols {
        s += &format!(" {g:.2} |");
    }
    s += "\n";
    for what in BUCKETS
        .iter()
        .map(|(w, _)| *w)
        .chain(["other kernel", "user space"])
    {
        s += &format!("| {what} |");
        for (_, _, by) in &cols {
            s += &format!(" {:.0} |", by.get(what).copied().unwrap_or(0.0));
        }
        s += "\n";
    }
    s += "| **total** |";
    for (_, _, by) in &cols {
        s += &format!(" **{:.0}** |", by.values().sum::<f64>());
    }
    s += "\n\nThe largest of \"other kernel\", per path (ms per GB):\n\n";
    for (name, top) in tops {
        let list: Vec<String> = top.iter().map(|(f, ms)| format!("`{f}` {ms:.0}")).collect();
        s += &format!("- {name}: {}\n", list.join(", "));
    }
    s
}

/// Kernel symbol prefixes (or parts, with a leading `*`) by what they do, matched in order.
pub const BUCKETS: [(&str, &[&str]); 10] = [
    (
        "copy to and from user space",
        &[
            "*copy_user",
            "*copy_to_iter",
            "*copy_from_iter",
            "*rep_movs",
            "*memcpy",
            "*memmove",
            "skb_copy_datagram",
        ],
    ),
    ("checksums", &["*csum", "*checksum"]),
    (
        "netfilter: conntrack, nftables, br_netfilter",
        &[
            "nf_",
            "nft_",
            "__nf",
            "br_nf",
            "ipv4_conntrack",
            "ipv6_conntrack",
            "ipv4_confirm",
            "ipv6_confirm",
            "hash_conntrack",
            "*conntrack",
        ],
    ),
    (
        "VXLAN and UDP",
        &["vxlan", "udp", "__udp", "gro_cells", "*tunnel", "iptunnel"],
    ),
    ("bridge", &["br_", "__br_"]),
    ("veth", &["veth"]),
    ("segmentation (GSO/GRO)", &["*gso", "*gro", "skb_segment"]),
    (
        "IP: routing, neighbours",
        &[
            "ip_", "ip6_", "__ip", "ipv6_", "fib", "__fib", "rt6_", "dst_", "neigh", "__neigh",
            "inet6_", "icmp",
        ],
    ),
    ("TCP", &["tcp", "__tcp", "inet_", "__inet"]),
    (
        "sockets, buffers, devices",
        &[
            "sk_",
            "__sk",
            "skb_",
            "__skb",
            "kfree_skb",
            "__kfree_skb",
            "dev_",
            "__dev",
            "netif",
            "__netif",
            "napi",
            "__napi",
            "net_rx",
            "process_backlog",
            "*alloc_skb",
            "kmem_cache",
            "__kmalloc",
            "kmalloc",
            "kfree",
            "page_frag",
            "__alloc_pages",
            "get_page_from_freelist",
            "__free_pages",
            "free_unref",
            "sock_",
            "release_sock",
            "lock_sock",
        ],
    ),
];

/// What a sampled symbol does, or `None` for idle.
pub fn bucket(kernel: bool, sym: &str) -> Option<&'static str> {
    if !kernel {
        return Some("user space");
    }
    if ["idle", "halt", "mwait", "cpuidle"]
        .iter()
        .any(|w| sym.contains(w))
    {
        return None;
    }
    BUCKETS
        .iter()
        .find(|(_, pats)| {
            pats.iter().any(|p| match p.strip_prefix('*') {
                Some(part) => sym.contains(part),
                None => sym.starts_with(p),
            })
        })
        .map(|(w, _)| *w)
        .or(Some("other kernel"))
}
