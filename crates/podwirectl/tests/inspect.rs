//! `trace`, `node show` and `path` on a node built in a throwaway netns: three pods on a podwire
//! bridge, one of them broken (its veth deleted behind podwire's back), a leftover allocation,
//! and an uplink with a default route standing in for the way out. Everything read back is
//! compared with what `ip -j` and `nft -j` say.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};
use testkit::{unique, TestNs};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const NET: &str = "inspectnet";
const SUBNET: &str = "10.252.91.0/24";
/// The other node's VTEP MAC.
const PEER_MAC: &str = "02:00:0a:fc:5c:00";

struct Node {
    ns: TestNs,
    pods: Vec<(String, TestNs)>,
    dir: Dir,
    bridge: String,
    plugin_dir: PathBuf,
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Node {
    fn new() -> Node {
        let ns = TestNs::new("pwi");
        let dir = Dir(std::env::temp_dir().join(unique("pwinsp-")));
        std::fs::create_dir_all(dir.0.join("net.d")).unwrap();
        let bridge = unique("pwib");
        let plugin = testkit::workspace_binary("podwire-bridge", "podwire");
        let conf = json!({"cniVersion": "1.0.0", "name": NET, "plugins": [{
            "type": "podwire", "bridge": bridge, "isDefaultGateway": true, "ipMasq": true,
            "logFile": dir.0.join("podwire.log"), "logLevel": "info",
            "ipam": {"type": "podwire-ipam", "ranges": [[{"subnet": SUBNET}]],
                     "dataDir": dir.0.join("ipam")}}]});
        std::fs::write(dir.0.join("net.d/10-inspect.conflist"), conf.to_string()).unwrap();
        // The way out: an uplink (a veth whose far end stays in the node: no packet leaves)
        // with the default route.
        ns.exec(&[
            "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p",
        ]);
        ns.exec(&["ip", "link", "set", "up0p", "up"]);
        ns.exec(&["ip", "link", "set", "up0", "up"]);
        ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "up0"]);
        ns.exec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            "192.0.2.254",
            "dev",
            "up0",
        ]);
        ns.exec(&["ip", "route", "add", "unreachable", "203.0.113.0/24"]);
        // Another node's pods behind a VXLAN device, as multi-node routing sets it up: an FDB
        // entry to the peer's VTEP, a permanent neighbour, an onlink route of its own protocol.
        let vx = [
            "ip",
            "link",
            "add",
            "podwire.vxlan",
            "type",
            "vxlan",
            "id",
            "42",
        ];
        ns.exec(
            &[
                &vx[..],
                &[
                    "dstport",
                    "8472",
                    "local",
                    "192.0.2.1",
                    "nolearning",
                    "dev",
                    "up0",
                ],
            ]
            .concat(),
        );
        ns.exec(&["ip", "link", "set", "podwire.vxlan", "up"]);
        ns.exec(&[
            "bridge",
            "fdb",
            "append",
            PEER_MAC,
            "dev",
            "podwire.vxlan",
            "dst",
            "192.0.2.2",
        ]);
        ns.exec(&[
            "ip",
            "neigh",
            "replace",
            "10.252.92.0",
            "lladdr",
            PEER_MAC,
            "dev",
            "podwire.vxlan",
            "nud",
            "permanent",
        ]);
        ns.exec(&[
            "ip",
            "route",
            "add",
            "10.252.92.0/24",
            "via",
            "10.252.92.0",
            "dev",
            "podwire.vxlan",
            "onlink",
            "proto",
            // A number iproute2 has no name for.
            "177",
        ]);
        // One as the multi-node agent makes them: its protocol shows by name.
        let proto = node::peers::ROUTE_PROTOCOL.to_string();
        ns.exec(&[
            "ip",
            "route",
            "add",
            "10.252.94.0/24",
            "via",
            "10.252.92.0",
            "dev",
            "podwire.vxlan",
            "onlink",
            "proto",
            &proto,
        ]);
        Node {
            ns,
            pods: Vec::new(),
            dir,
            bridge,
            plugin_dir: plugin.parent().unwrap().to_path_buf(),
        }
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns.name,
                env!("CARGO_BIN_EXE_podwirectl"),
            ])
            .args(args)
            .env("NETCONFPATH", self.dir.0.join("net.d"))
            // podwire's, then the reference plugins (host-local, for an exec'd IPAM).
            .env(
                "CNI_PATH",
                format!("{}:/usr/lib/cni", self.plugin_dir.display()),
            )
            .env("CNI_CACHE_DIR", self.dir.0.join("cache"))
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .env_remove("CNI_IFNAME")
            .output()
            .unwrap()
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(out.status.success(), "podwirectl {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ctl_ok(&a)).unwrap()
    }

    /// ADDs a pod; returns its container ID.
    fn add_pod(&mut self, tag: &str) -> String {
        let pod = TestNs::new("pwip");
        let cid = format!("{}{tag}", unique("c"));
        let out = self.ctl_ok(&["add", NET, &pod.path(), "--container-id", &cid]);
        assert!(out.contains("plugins:") && out.contains("podwire"), "{out}");
        self.pods.push((cid.clone(), pod));
        cid
    }

    fn pod_ns(&self, cid: &str) -> &TestNs {
        &self.pods.iter().find(|(c, _)| c == cid).unwrap().1
    }

    fn pod_of<'a>(&self, view: &'a Value, cid: &str) -> &'a Value {
        view["networks"][0]["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["containerID"] == cid)
            .unwrap_or_else(|| panic!("no pod {cid} in {view}"))
    }
}

fn global_addrs(ip_addr_json: &Value) -> Vec<String> {
    let mut v: Vec<String> = ip_addr_json[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    v.sort();
    v
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The route `node show --json` lists for `dst`.
fn route_to<'a>(view: &'a Value, dst: &str) -> &'a Value {
    view["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dst"] == dst)
        .unwrap_or_else(|| panic!("no route to {dst} in {view}"))
}

/// A rule as `nft -j` and `node show --json` both list it.
fn handle_and_comment(r: &Value) -> (u64, String) {
    (
        r["handle"].as_u64().unwrap(),
        r["comment"].as_str().unwrap().to_string(),
    )
}

fn step_names(op: &Value) -> Vec<String> {
    op["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

/// Steps are flat and in order: their durations add up to at most the operation's.
fn assert_steps_fit(op: &Value) {
    let total = op["durationUs"].as_u64().unwrap();
    let mut end = 0;
    let mut sum = 0;
    for s in op["steps"].as_array().unwrap() {
        let (start, dur) = (
            s["startUs"].as_u64().unwrap(),
            s["durationUs"].as_u64().unwrap(),
        );
        assert!(start >= end, "steps overlap in {op}");
        end = start + dur;
        sum += dur;
    }
    assert!(sum <= total, "steps take {sum} µs of {total} µs: {op}");
    assert!(end <= total, "a step ends after the operation: {op}");
}

fn ops_of<'a>(ops: &'a Value, command: &str) -> Vec<&'a Value> {
    ops.as_array()
        .unwrap()
        .iter()
        .filter(|o| o["command"] == command)
        .collect()
}

#[test]
fn node_show_trace_and_path_read_the_kernel() {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let mut n = Node::new();
    let a = n.add_pod("a");
    let b = n.add_pod("b");
    let c = n.add_pod("c");

    // --- trace of an ADD: every step, timed, within the operation's wall time.
    let ops = n.json(&["trace", &a]);
    let adds = ops_of(&ops, "ADD");
    assert_eq!(adds.len(), 1, "{ops}");
    let add = adds[0];
    assert_eq!(add["result"], "ok");
    assert_eq!(add["containerID"], a.as_str());
    assert_eq!(add["ifname"], "eth0");
    assert_eq!(
        step_names(add),
        [
            "parse",
            "config",
            "netns",
            "ipam.config",
            "ipam.lock",
            // The first ADD makes the state directory, whose index is then built.
            "ipam.scan",
            "ipam.reserve",
            "ipam.write",
            "bridge",
            "gateway",
            "sysctl",
            "veth",
            // spoofCheck (on by default) guards the port before the pod's end comes up.
            "antispoof",
            "link-up",
            "addresses",
            "routes",
            "nftables",
            "announce",
            "result"
        ],
        "{add}"
    );
    assert_steps_fit(add);
    let veth_step = &add["steps"][11];
    assert!(
        veth_step["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("alias podwire/{NET}/{a}/eth0")),
        "{veth_step}"
    );
    let human = n.ctl_ok(&["trace", &a]);
    assert!(human.contains("ADD podwire network inspectnet"), "{human}");
    assert!(human.contains("veth") && human.contains('█'), "{human}");
    // Human log lines carry RFC 3339 timestamps too.
    let log = std::fs::read_to_string(n.dir.0.join("podwire.log")).unwrap();
    let added = log
        .lines()
        .find(|l| l.contains(" info ") && l.contains("added"))
        .unwrap();
    let ts = added.split(' ').next().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
        "{added}"
    );

    // --- break pod c (its veth deleted behind podwire's back) and leave an allocation behind.
    let view = n.json(&["node", "show"]);
    let c_veth = n.pod_of(&view, &c)["hostVeth"]
        .as_str()
        .unwrap()
        .to_string();
    n.ns.exec(&["ip", "link", "del", &c_veth]);
    let ghost_dir = n.dir.0.join("ipam").join(NET);
    std::fs::write(ghost_dir.join("10.252.91.200"), "ghost0123\r\neth0").unwrap();

    // --- node show --json: exactly what the kernel, IPAM and cache say.
    let view = n.json(&["node", "show"]);
    let net = &view["networks"][0];
    assert_eq!(net["name"], NET);
    let br = &net["bridge"];
    let link = n.ns.ip_json(&["link", "show", &n.bridge]);
    assert_eq!(br["name"], n.bridge.as_str());
    assert_eq!(br["present"], true);
    assert_eq!(br["mtu"], link[0]["mtu"]);
    assert_eq!(br["mac"], link[0]["address"]);
    assert_eq!(br["index"], link[0]["ifindex"]);
    assert_eq!(
        sorted(&br["addresses"]),
        global_addrs(&n.ns.ip_json(&["addr", "show", &n.bridge]))
    );
    let ports = n.ns.ip_json(&["link", "show", "master", &n.bridge]);
    assert_eq!(br["ports"], ports.as_array().unwrap().len());
    let pods: Vec<&str> = net["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerID"].as_str().unwrap())
        .collect();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(pods, want, "c has no veth any more");
    for cid in [&a, &b] {
        let p = n.pod_of(&view, cid);
        let host =
            n.ns.ip_json(&["link", "show", p["hostVeth"].as_str().unwrap()]);
        assert_eq!(p["hostIndex"], host[0]["ifindex"]);
        assert_eq!(p["hostMac"], host[0]["address"]);
        assert_eq!(host[0]["ifalias"], format!("podwire/{NET}/{cid}/eth0"));
        let pod = n.pod_ns(cid);
        assert_eq!(p["netns"], pod.path());
        let eth0 = pod.ip_json(&["link", "show", "eth0"]);
        assert_eq!(p["mac"], eth0[0]["address"]);
        assert_eq!(p["mtu"], eth0[0]["mtu"]);
        assert_eq!(p["podIndex"], eth0[0]["ifindex"]);
        assert_eq!(
            sorted(&p["ips"]),
            global_addrs(&pod.ip_json(&["addr", "show", "eth0"]))
        );
        let allocated: Vec<String> = sorted(&p["allocated"]);
        let ips: Vec<String> = sorted(&p["ips"])
            .iter()
            .map(|s| s.split('/').next().unwrap().to_string())
            .collect();
        assert_eq!(allocated, ips);
    }
    let range = &net["ipam"]["ranges"][0];
    assert_eq!(range["subnet"], SUBNET);
    let files = testkit::allocations(&n.dir.0.join("ipam"), NET);
    assert_eq!(files.len(), 4, "a, b, c and the ghost: {files:?}");
    assert_eq!(range["used"], 4);
    assert_eq!(range["size"], 253);
    let issues: Vec<(String, String)> = net["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["containerID"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |k: &str, cid: &str| issues.contains(&(k.to_string(), cid.to_string()));
    assert!(has("allocation-without-interface", &c), "{issues:?}");
    assert!(
        has("allocation-without-interface", "ghost0123"),
        "{issues:?}"
    );
    assert!(has("cache-without-pod", &c), "{issues:?}");
    assert_eq!(issues.len(), 3, "nothing else is wrong: {issues:?}");
    // nftables: the plugin's rules, handle for handle.
    let nft: Value = serde_json::from_str(
        &n.ns
            .exec(&["nft", "-j", "list", "table", "inet", "podwire"]),
    )
    .unwrap();
    let mut kernel_rules: Vec<(u64, String)> = nft["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .map(handle_and_comment)
        .collect();
    kernel_rules.sort();
    let table = view["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "podwire")
        .unwrap();
    let mut shown: Vec<(u64, String)> = table["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(handle_and_comment)
        .collect();
    shown.sort();
    assert_eq!(shown, kernel_rules);
    assert_eq!(shown.len(), 3);
    // The ADD's trace named the rule it made by its handle.
    let a_rule = shown
        .iter()
        .find(|(_, c)| *c == format!("podwire/{NET}/{a}/eth0"))
        .unwrap()
        .0;
    let nft_step = &add["steps"][step_names(add)
        .iter()
        .position(|s| s == "nftables")
        .unwrap()];
    assert!(
        nft_step["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("masquerade rule handle {a_rule} for ")),
        "{nft_step}"
    );
    // The way out.
    let default = route_to(&view, "default");
    assert_eq!(default["dev"], "up0");
    assert_eq!(default["devKind"], "veth");
    assert_eq!(default["gateway"], "192.0.2.254");
    let remote = route_to(&view, "10.252.92.0/24");
    assert_eq!(remote["dev"], "podwire.vxlan");
    assert_eq!(remote["devKind"], "vxlan");
    assert_eq!(remote["protocol"], "177");
    assert_eq!(remote["toPods"], false);
    let agents = route_to(&view, "10.252.94.0/24");
    assert_eq!(agents["protocol"], "podwire");
    let tunnel = &view["tunnels"][0];
    assert_eq!(tunnel["name"], "podwire.vxlan");
    assert_eq!(tunnel["vxlan"], "vni 42 port 8472 local 192.0.2.1");
    let peers = sorted(&tunnel["peers"]);
    assert!(
        peers.contains(&format!("{PEER_MAC} dst 192.0.2.2")),
        "{peers:?}"
    );
    assert!(
        peers.contains(&format!("10.252.92.0 lladdr {PEER_MAC}")),
        "{peers:?}"
    );

    // --- the picture: well-formed SVG naming every pod.
    let svg_file = n.dir.0.join("node.svg");
    let human = n.ctl_ok(&["node", "show", "--svg", svg_file.to_str().unwrap()]);
    assert!(human.contains("allocation-without-interface"), "{human}");
    let svg = std::fs::read_to_string(&svg_file).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|d| d.has_tag_name("text"))
        .filter_map(|d| d.text())
        .collect();
    for cid in [&a, &b] {
        let short: String = cid.chars().take(12).collect();
        assert!(
            texts.iter().any(|t| t.contains(&short)),
            "{short} not drawn"
        );
        let veth = n.pod_of(&view, cid)["hostVeth"].as_str().unwrap();
        assert!(texts.contains(&veth), "{veth} not drawn");
    }
    assert!(texts.iter().any(|t| t.contains(&n.bridge)));
    // The broken attachment and the leftover allocation are drawn too.
    let short_c: String = c.chars().take(12).collect();
    assert!(
        texts.iter().any(|t| t.contains(&short_c)),
        "{short_c} not drawn"
    );
    assert!(texts.iter().any(|t| t.contains("holds 10.252.91.200")));

    // --- path: same bridge, the node, outside, and a break.
    let a_ip = n.pod_of(&view, &a)["ips"][0]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let b_ip = n.pod_of(&view, &b)["ips"][0]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let a_veth = n.pod_of(&view, &a)["hostVeth"]
        .as_str()
        .unwrap()
        .to_string();
    let b_veth = n.pod_of(&view, &b)["hostVeth"]
        .as_str()
        .unwrap()
        .to_string();
    let kinds = |p: &Value| -> Vec<String> {
        p["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let names = |p: &Value| -> Vec<String> {
        p["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap().to_string())
            .collect()
    };
    let p = n.json(&["path", &a, &b]);
    assert_eq!(kinds(&p), ["pod", "veth", "bridge", "veth", "pod"], "{p}");
    assert_eq!(names(&p)[1], a_veth);
    assert_eq!(names(&p)[2], n.bridge);
    assert_eq!(names(&p)[3], b_veth);
    assert_eq!(p["dst"]["ip"], b_ip.as_str());
    assert_eq!(p["complete"], true);
    assert!(p["masquerade"].is_null(), "{p}");
    // By address works the same.
    assert_eq!(kinds(&n.json(&["path", &a_ip, &b_ip])), kinds(&p));

    let p = n.json(&["path", &a, "192.0.2.1"]);
    assert_eq!(kinds(&p), ["pod", "veth", "bridge", "node"], "{p}");
    assert_eq!(p["complete"], true);

    let p = n.json(&["path", &a, "198.51.100.7"]);
    assert_eq!(
        kinds(&p),
        ["pod", "veth", "bridge", "node", "device"],
        "{p}"
    );
    assert_eq!(names(&p)[4], "up0");
    assert!(
        p["hops"][4]["detail"]
            .as_str()
            .unwrap()
            .contains("next hop 192.0.2.254"),
        "{p}"
    );
    let masq = p["masquerade"]
        .as_str()
        .expect("masqueraded on the way out");
    assert!(
        masq.contains("inet podwire") && masq.contains(&format!("podwire/{NET}/{a}/eth0")),
        "{masq}"
    );
    let human = n.ctl_ok(&["path", &a, "198.51.100.7"]);
    assert!(human.contains("masqueraded by"), "{human}");

    let p = n.json(&["path", &a, "10.252.92.5"]);
    assert_eq!(
        kinds(&p),
        ["pod", "veth", "bridge", "node", "device"],
        "{p}"
    );
    assert_eq!(names(&p)[4], "podwire.vxlan");
    let out = p["hops"][4]["detail"].as_str().unwrap();
    assert!(
        out.contains("vxlan podwire.vxlan") && out.contains("next hop 10.252.92.0"),
        "{p}"
    );
    assert!(
        p["hops"][3]["detail"]
            .as_str()
            .unwrap()
            .contains("by route 10.252.92.0/24 proto 177"),
        "{p}"
    );

    let p = n.json(&["path", &a, "203.0.113.9"]);
    assert_eq!(p["complete"], false, "{p}");
    assert!(p["breaks"].as_str().unwrap().contains("the node"), "{p}");

    // --- trace of a CHECK.
    n.ctl_ok(&["check", NET, &n.pod_ns(&a).path(), "--container-id", &a]);
    let ops = n.json(&["trace", &a]);
    let check = ops_of(&ops, "CHECK")[0];
    assert_eq!(
        step_names(check),
        // The ghost file written behind the IPAM's back makes it rebuild its index first.
        [
            "parse",
            "config",
            "ipam.lock",
            "ipam.scan",
            "ipam.check",
            "interface",
            "addresses",
            "routes",
            "host-end",
            // The port's spoofCheck elements are there.
            "antispoof"
        ],
        "{check}"
    );
    assert_steps_fit(check);

    // --- a failed ADD: the error and the step it failed in.
    let d_ns = TestNs::new("pwip");
    let out = n.ctl(&[
        "add",
        NET,
        &d_ns.path(),
        "--container-id",
        "failing0",
        "--cni-args",
        "IP=10.9.9.9",
    ]);
    assert!(!out.status.success());
    let ops = n.json(&["trace", "failing0"]);
    let failed = ops_of(&ops, "ADD")[0];
    assert_eq!(failed["result"], "error", "{failed}");
    assert_eq!(failed["code"], 7, "{failed}");
    let last = failed["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(last["step"], "ipam.config", "{failed}");
    assert_eq!(last["failed"], true, "{failed}");
    assert_steps_fit(failed);

    // --- trace of a DEL: every removal, timed.
    let b_rule = table["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["comment"] == format!("podwire/{NET}/{b}/eth0"))
        .unwrap()["handle"]
        .as_u64()
        .unwrap();
    let out = n.ctl_ok(&["del", NET, &n.pod_ns(&b).path(), "--container-id", &b]);
    assert!(out.contains("plugins:"), "{out}");
    let ops = n.json(&["trace", &b]);
    let dels = ops_of(&ops, "DEL");
    assert_eq!(dels.len(), 1, "{ops}");
    let del = dels[0];
    assert_eq!(
        step_names(del),
        // The port's spoofCheck elements, then the link: the address is released only once no
        // interface holds it.
        [
            "parse",
            "config",
            "antispoof",
            "link",
            "nftables",
            "ipam.lock",
            "ipam.release"
        ],
        "{del}"
    );
    assert_steps_fit(del);
    let detail = |step: &str| {
        del["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .and_then(|s| s["detail"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        detail("ipam.release").contains(&format!("released {b_ip}")),
        "{del}"
    );
    assert!(
        detail("nftables").contains(&format!("removed 1 masquerade rule(s) [{b_rule}]")),
        "{del}"
    );
    assert!(detail("link").contains("deleted eth0"), "{del}");
    // --last keeps the newest.
    let last = n.json(&["trace", &b, "--last", "1"]);
    assert_eq!(last.as_array().unwrap().len(), 1);
    assert_eq!(last[0]["command"], "DEL");

    // --- an ADD that fails once the veth exists: the rollback says what it undid.
    let bad = json!({"cniVersion": "1.0.0", "name": "inspectbad", "plugins": [{
        "type": "podwire", "bridge": n.bridge, "isGateway": true,
        "logFile": n.dir.0.join("podwire.log"),
        "ipam": {"type": "podwire-ipam", "ranges": [[{"subnet": "10.252.93.0/24"}]],
                 "routes": [{"dst": "10.99.0.0/16", "gw": "10.98.0.1"}],
                 "dataDir": n.dir.0.join("ipam")}}]});
    std::fs::write(n.dir.0.join("net.d/20-bad.conflist"), bad.to_string()).unwrap();
    let e_ns = TestNs::new("pwip");
    let out = n.ctl(&[
        "add",
        "inspectbad",
        &e_ns.path(),
        "--container-id",
        "rolledback0",
    ]);
    assert!(!out.status.success());
    let ops = n.json(&["trace", "rolledback0", "--network", "inspectbad"]);
    let failed = ops_of(&ops, "ADD")[0];
    let steps = step_names(failed);
    let at = |name: &str| steps.iter().position(|s| s == name).unwrap();
    assert!(failed["steps"][at("routes")]["failed"] == true, "{failed}");
    // Undone in reverse: the port's spoofCheck elements, the veth, then the address.
    let rollbacks: Vec<&str> = failed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "rollback")
        .filter_map(|s| s["detail"].as_str())
        .collect();
    assert!(
        rollbacks[0].starts_with("removed spoofCheck elements")
            && rollbacks[1].starts_with("deleted veth"),
        "{failed}"
    );
    assert!(at("ipam.release") > at("rollback"), "{failed}");
    let released = &failed["steps"][at("ipam.release")]["detail"];
    assert_eq!(released, "released 10.252.93.2", "{failed}");
    assert_steps_fit(failed);
    assert!(testkit::allocations(&n.dir.0.join("ipam"), "inspectbad").is_empty());

    // --- an exec'd IPAM (the reference host-local) is one step naming the binary and the address.
    if std::path::Path::new("/usr/lib/cni/host-local").exists() {
        let hl = json!({"cniVersion": "1.0.0", "name": "inspecthl", "plugins": [{
            "type": "podwire", "bridge": n.bridge, "isGateway": true,
            "logFile": n.dir.0.join("podwire.log"),
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.252.95.0/24"}]],
                     "dataDir": n.dir.0.join("ipam")}}]});
        std::fs::write(n.dir.0.join("net.d/30-hl.conflist"), hl.to_string()).unwrap();
        let f_ns = TestNs::new("pwip");
        n.ctl_ok(&["add", "inspecthl", &f_ns.path(), "--container-id", "execd0"]);
        let ops = n.json(&["trace", "execd0", "--network", "inspecthl"]);
        let add = ops_of(&ops, "ADD")[0];
        let steps = step_names(add);
        assert!(!steps.iter().any(|s| s.starts_with("ipam.")), "{add}");
        let ipam = &add["steps"][steps.iter().position(|s| s == "ipam").unwrap()];
        assert_eq!(
            ipam["detail"], "exec /usr/lib/cni/host-local ADD; got 10.252.95.2/24",
            "{add}"
        );
        assert_steps_fit(add);
        n.ctl_ok(&["del", "inspecthl", &f_ns.path(), "--container-id", "execd0"]);
    }
}

#[test]
fn node_show_lists_host_port_mappings_with_their_pods() {
    if !is_root() {
        return;
    }
    let mut node = Node::new();
    testkit::workspace_binary("podwire-portmap", "podwire-portmap");
    // The same network with podwire-portmap chained, as node setup writes it.
    let path = node.dir.0.join("net.d/10-inspect.conflist");
    let mut conf: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let log = node.dir.0.join("podwire.log");
    conf["plugins"].as_array_mut().unwrap().push(json!({
        "type": "podwire-portmap", "capabilities": {"portMappings": true}, "logFile": log
    }));
    std::fs::write(&path, conf.to_string()).unwrap();
    let pod = TestNs::new("pwip");
    let cid = format!("{}hp", unique("c"));
    let caps = r#"{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"},
                                   {"hostPort":18053,"containerPort":53,"protocol":"udp"}]}"#;
    node.ctl_ok(&[
        "add",
        NET,
        &pod.path(),
        "--container-id",
        &cid,
        "--cap-args",
        caps,
    ]);
    node.pods.push((cid.clone(), pod));
    let view = node.json(&["node", "show"]);
    let pod_ip = node.pod_of(&view, &cid)["ips"][0]
        .as_str()
        .unwrap()
        .to_string();
    let maps = view["portMappings"].as_array().unwrap();
    assert_eq!(maps.len(), 2, "{maps:#?}");
    for (m, (port, proto, cport)) in maps.iter().zip([(18053, "udp", 53), (18080, "tcp", 80)]) {
        assert_eq!(m["hostPort"], port);
        assert_eq!(m["protocol"], proto);
        assert_eq!(m["containerPort"], cport);
        assert_eq!(m["hostIp"], Value::Null);
        assert_eq!(m["containerId"], cid.as_str());
        assert_eq!(
            m["podIp"].as_str().unwrap(),
            pod_ip.split('/').next().unwrap()
        );
    }
    let text = node.ctl_ok(&["node", "show"]);
    assert!(text.contains("host ports (podwire-portmap):"), "{text}");
    // podwire-portmap's own steps are in the trace.
    let ops = node.json(&["trace", &cid]);
    let pm = ops
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["plugin"] == "podwire-portmap" && o["command"] == "ADD")
        .expect("podwire-portmap's ADD is traced");
    assert_eq!(
        step_names(pm),
        [
            "parse",
            "mappings",
            "nftables",
            "sysctl",
            "conntrack",
            "result"
        ]
    );
    assert_steps_fit(pm);
    assert!(text.contains(":18080/tcp -> "), "{text}");
    // DEL takes them away, and the view says so.
    node.ctl_ok(&[
        "del",
        NET,
        &node.pods[0].1.path(),
        "--container-id",
        &cid,
        "--cap-args",
        caps,
    ]);
    let view = node.json(&["node", "show"]);
    assert_eq!(view["portMappings"].as_array().unwrap().len(), 0);
}
