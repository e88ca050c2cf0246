//! Reading state back from the kernel and the disk, to cross-check what a runtime and podwire did
//! (tests may use `ip`, `nft` and `nsenter`; podwire itself never does).

use crate::cmd::{run, succeeds, try_run};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// libcni's result cache; containerd 1.6 cannot move it (no cache dir setting), so suites only
/// ever touch entries named after their own network.
pub const CNI_CACHE_DIR: &str = "/var/lib/cni";

fn ip_json(args: &[&str]) -> Value {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let text = run("ip", &full);
    if text.trim().is_empty() {
        Value::Array(vec![])
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("ip {args:?}: not JSON ({e}): {text}"))
    }
}

/// Whether a host link of this name exists.
pub fn link_exists(name: &str) -> bool {
    succeeds("ip", &["link", "show", "dev", name])
}

/// Names of the links enslaved to `bridge` (empty when the bridge does not exist).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    if !link_exists(bridge) {
        return vec![];
    }
    names(&ip_json(&["link", "show", "master", bridge]))
}

fn names(links: &Value) -> Vec<String> {
    links
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["ifname"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Host links whose alias starts with `prefix` (podwire tags each host veth with its attachment).
pub fn links_tagged(prefix: &str) -> Vec<String> {
    let links = ip_json(&["-d", "link", "show"]);
    links
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| l["ifalias"].as_str().is_some_and(|t| t.starts_with(prefix)))
                .filter_map(|l| l["ifname"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Comments of the rules in podwire's nft table (`inet podwire`) that start with `prefix`.
pub fn nft_rules_tagged(prefix: &str) -> Vec<String> {
    let Ok(text) = try_run("nft", &["-j", "list", "table", "inet", "podwire"]) else {
        return vec![]; // no table: no rule
    };
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("nft -j: {e}: {text}"));
    v["nftables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["rule"]["comment"].as_str())
                .filter(|c| c.starts_with(prefix))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The table of `podwire-portmap` (one per node, shared by every network).
const PORTMAP_TABLE: &str = "podwire-portmap";

/// Comments of the port mapping elements in `inet podwire-portmap` that start with `prefix`.
pub fn portmap_elements_tagged(prefix: &str) -> Vec<String> {
    let Ok(text) = try_run("nft", &["-j", "list", "table", "inet", PORTMAP_TABLE]) else {
        return vec![]; // no table: no mapping
    };
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("nft -j: {e}: {text}"));
    let mut out = Vec::new();
    comments(&v, prefix, &mut out);
    out
}

/// Every `"comment"` string below `v` that starts with `prefix`.
fn comments(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match x.as_str() {
                    Some(c) if k == "comment" && c.starts_with(prefix) => out.push(c.into()),
                    _ => comments(x, prefix, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| comments(x, prefix, out)),
        _ => {}
    }
}

/// Deletes leftover rules of ours (by handle), for cleanup after a failed run.
pub fn delete_nft_rules_tagged(prefix: &str) {
    let Ok(text) = try_run("nft", &["-j", "-a", "list", "table", "inet", "podwire"]) else {
        return;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return;
    };
    for rule in v["nftables"].as_array().into_iter().flatten() {
        let r = &rule["rule"];
        if r["comment"].as_str().is_some_and(|c| c.starts_with(prefix)) {
            if let (Some(chain), Some(handle)) = (r["chain"].as_str(), r["handle"].as_u64()) {
                let handle = handle.to_string();
                let _ = try_run(
                    "nft",
                    &[
                        "delete", "rule", "inet", "podwire", chain, "handle", &handle,
                    ],
                );
            }
        }
    }
}

/// Allocated addresses in a host-local layout data dir (`<data_dir>/<network>/<ip>`).
pub use testkit::allocations;

/// libcni's cached results for `network` (`<cache>/results/<network>-<container>-<ifname>`).
pub fn cache_entries(network: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(Path::new(CNI_CACHE_DIR).join("results")) else {
        return vec![];
    };
    let prefix = format!("{network}-");
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// The cache entry libcni wrote for one attachment.
pub fn cache_entry(network: &str, container: &str, ifname: &str) -> PathBuf {
    Path::new(CNI_CACHE_DIR)
        .join("results")
        .join(format!("{network}-{container}-{ifname}"))
}

/// Runs a command in a network namespace given by path (`/proc/<pid>/ns/net` or a bind mount).
pub fn in_netns(netns: &str, cmd: &[&str]) -> Result<String, String> {
    let net = format!("--net={netns}");
    let mut args = vec![net.as_str()];
    args.extend_from_slice(cmd);
    try_run("nsenter", &args)
}

/// `ip -j <args>` inside a network namespace, parsed.
pub fn ip_json_in(netns: &str, args: &[&str]) -> Value {
    let mut cmd = vec!["ip", "-j"];
    cmd.extend_from_slice(args);
    let text = in_netns(netns, &cmd).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {text}"))
}

/// The IPv4 addresses (with prefix) of `ifname` in a network namespace.
pub fn addresses_in(netns: &str, ifname: &str) -> Vec<String> {
    let v = ip_json_in(netns, &["-4", "addr", "show", "dev", ifname]);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| {
            Some(format!(
                "{}/{}",
                a["local"].as_str()?,
                a["prefixlen"].as_u64()?
            ))
        })
        .collect()
}

/// One ICMP echo from inside a network namespace.
pub fn ping_from(netns: &str, to: &str) -> Result<String, String> {
    in_netns(netns, &["ping", "-c", "1", "-W", "3", to])
}

/// One ICMP echo from the host.
pub fn ping_from_host(to: &str) -> Result<String, String> {
    try_run("ping", &["-c", "1", "-W", "3", to])
}

/// Everything of `network` left on the host: veths, allocations, nft rules, cache entries.
/// Empty when a teardown was complete.
pub fn leftovers(network: &str, bridge: &str, data_dir: &Path) -> Vec<String> {
    let prefix = format!("podwire/{network}/");
    let mut left = Vec::new();
    left.extend(
        bridge_ports(bridge)
            .into_iter()
            .map(|l| format!("veth on {bridge}: {l}")),
    );
    left.extend(
        links_tagged(&prefix)
            .into_iter()
            .map(|l| format!("tagged link: {l}")),
    );
    left.extend(
        allocations(data_dir, network)
            .into_iter()
            .map(|a| format!("allocation: {a}")),
    );
    left.extend(
        nft_rules_tagged(&prefix)
            .into_iter()
            .map(|r| format!("nft rule: {r}")),
    );
    left.extend(
        portmap_elements_tagged(&format!("podwire-portmap/{network}/"))
            .into_iter()
            .map(|r| format!("port mapping: {r}")),
    );
    left.extend(
        cache_entries(network)
            .into_iter()
            .map(|c| format!("cache entry: {}", c.display())),
    );
    left.sort();
    left.dedup();
    left
}

/// Removes what a failed run of `network` may have left on the host (its bridge, tagged links,
/// nft rules and cache entries); private dirs go with their owner's guard.
pub fn scrub(network: &str, bridge: &str) {
    let prefix = format!("podwire/{network}/");
    for l in links_tagged(&prefix) {
        let _ = try_run("ip", &["link", "del", "dev", &l]);
    }
    if link_exists(bridge) {
        let _ = try_run("ip", &["link", "del", "dev", bridge]);
    }
    delete_nft_rules_tagged(&prefix);
    gc_port_mappings(network);
    for c in cache_entries(network) {
        let _ = std::fs::remove_file(c);
    }
}

/// Deletes the network's leftover port mappings with podwire-portmap's own GC (no attachment
/// of the network is valid any more).
fn gc_port_mappings(network: &str) {
    use std::io::Write;
    if portmap_elements_tagged(&format!("podwire-portmap/{network}/")).is_empty() {
        return;
    }
    let conf = serde_json::json!({"cniVersion": "1.1.0", "name": network,
        "type": "podwire-portmap", "cni.dev/valid-attachments": []});
    let plugin = crate::binaries::release_dir().join("podwire-portmap");
    let Ok(mut child) = std::process::Command::new(plugin)
        .env_clear()
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(conf.to_string().as_bytes());
    }
    let _ = child.wait();
}

/// Host-wide things a run may create as a side effect (containerd's shim socket dir, libcni's
/// cache dir, podwire's nft table): noted before a run, removed after it only when the run
/// created them and left them empty, so nothing of anyone else's is ever touched.
#[derive(Debug)]
pub struct Baseline {
    paths: Vec<(PathBuf, bool)>,
    nft_table: bool,
    portmap_table: bool,
}

/// What a runtime creates outside its private dirs, deepest first: containerd's shim socket dir,
/// libcni's cache dir, and the blob-info cache `podman import` writes (neither has a setting).
const SIDE_PATHS: [&str; 7] = [
    "/run/containerd/s",
    "/run/containerd",
    "/var/lib/cni/results",
    "/var/lib/cni",
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    "/var/lib/containers/cache",
    "/var/lib/containers",
];

impl Baseline {
    pub fn capture() -> Baseline {
        Baseline {
            paths: SIDE_PATHS
                .iter()
                .map(|d| (PathBuf::from(d), Path::new(d).exists()))
                .collect(),
            nft_table: nft_table_exists(),
            portmap_table: succeeds("nft", &["list", "table", "inet", PORTMAP_TABLE]),
        }
    }

    /// One line per path: `<existed 0|1> <path>`, then `nft <0|1>`.
    pub fn save(&self, file: &Path) {
        let mut text: String = self
            .paths
            .iter()
            .map(|(p, existed)| format!("{} {}\n", u8::from(*existed), p.display()))
            .collect();
        text.push_str(&format!("nft {}\n", u8::from(self.nft_table)));
        text.push_str(&format!("nft-portmap {}\n", u8::from(self.portmap_table)));
        std::fs::write(file, text).expect("write the host baseline");
    }

    pub fn load(file: &Path) -> Option<Baseline> {
        let text = std::fs::read_to_string(file).ok()?;
        let mut b = Baseline {
            paths: vec![],
            nft_table: true,
            portmap_table: true,
        };
        for line in text.lines() {
            match line.split_once(' ')? {
                ("nft", v) => b.nft_table = v == "1",
                ("nft-portmap", v) => b.portmap_table = v == "1",
                (v, path) => b.paths.push((PathBuf::from(path), v == "1")),
            }
        }
        Some(b)
    }

    pub fn restore(&self) {
        for (path, existed) in &self.paths {
            if !existed {
                if path.is_dir() {
                    let _ = std::fs::remove_dir(path); // only succeeds when empty
                } else {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        if !self.nft_table && nft_table_exists() && nft_rule_count() == 0 {
            let _ = try_run("nft", &["delete", "table", "inet", "podwire"]);
        }
        // podwire-portmap's table holds no mapping of anyone's: ours to remove if we made it.
        if !self.portmap_table && portmap_elements_tagged("").is_empty() {
            let _ = try_run("nft", &["delete", "table", "inet", PORTMAP_TABLE]);
        }
    }
}

/// Rules in podwire's table, tagged or not.
fn nft_rule_count() -> usize {
    try_run("nft", &["-j", "list", "table", "inet", "podwire"])
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v["nftables"]
                .as_array()
                .map(|a| a.iter().filter(|o| o.get("rule").is_some()).count())
        })
        .unwrap_or(usize::MAX)
}

fn nft_table_exists() -> bool {
    succeeds("nft", &["list", "table", "inet", "podwire"])
}

/// Two host ports unique to this process, so a concurrent run elsewhere on the machine cannot
/// hold them (port mappings live in the host's netns).
pub fn free_host_ports() -> (u16, u16) {
    let base = 20000 + (std::process::id() % 20000) as u16 * 2;
    (base, base + 1)
}

/// An HTTP GET over a plain TCP connection from the host; the whole answer when one came back.
pub fn http_get(to: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = to.parse().ok()?;
    let timeout = std::time::Duration::from_secs(3);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The shell command that does the same GET inside a busybox container (its static `wget`
/// crashes in glibc's resolver; `nc` does not resolve a literal address).
pub fn http_get_with_nc(ip: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} {port}")
}

/// The busybox shell command serving `body` over HTTP on `port` (in the foreground).
pub fn httpd_serving(body: &str, port: u16) -> String {
    format!(
        "mkdir -p /tmp/w && echo {body} > /tmp/w/index.html && exec httpd -f -p {port} -h /tmp/w"
    )
}
