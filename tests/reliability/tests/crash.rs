//! Crash: ADD killed with SIGKILL part-way, 200 times: half at a named step (the plugin built with
//! `--features fault-injection`, `PODWIRE_FAULT=<step>`), half at a random moment. After each kill
//! the runtime does what containerd does: DEL for that attachment (with the netns, or without it as
//! after a sandbox is gone); every 20 kills, GC with the real set of live attachments. Then nothing
//! may belong to a dead attachment (host veth, allocation file, nft rule, cache entry), and no
//! address may be held twice. Live pods (added normally, or whose ADD finished before its kill)
//! must keep their address and links throughout.
//!
//! CI: 200 kills. `PODWIRE_LONG=1`: 2,000. `PODWIRE_CRASH_KILLS`, `PODWIRE_SEED` override.

use podwire_reliability_tests::node::{Node, Pod};
use podwire_reliability_tests::plugin::{self, Call};
use podwire_reliability_tests::report::Report;
use podwire_reliability_tests::rng::Rng;
use podwire_reliability_tests::{binaries, count, is_root, state};
use runtime::{CacheEntry, CniConfig, GcAttachment, NetworkConfigList, RuntimeConf};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const NET: &str = "crash";
const BRIDGE: &str = "pwcrash0";
/// Every named step of ADD, in order (crates/bridge/src/add.rs, crates/ipam/src/ops.rs).
const STEPS: [&str; 12] = [
    "ipam-file",
    "ipam-reserved",
    "ipam-indexed",
    "ipam",
    "bridge",
    "gateway",
    "veth",
    "link-up",
    "addresses",
    "routes",
    "masq",
    "result",
];

struct Live {
    pod: Pod,
    ip: IpAddr,
}

struct Suite {
    node: Node,
    list: NetworkConfigList,
    plugin_conf: Vec<u8>,
    cni: CniConfig,
    live: BTreeMap<String, Live>,
    problems: Vec<String>,
}

impl Suite {
    fn rt(cid: &str, netns: &str) -> RuntimeConf {
        RuntimeConf {
            container_id: cid.into(),
            netns: netns.into(),
            ifname: "eth0".into(),
            ..Default::default()
        }
    }

    fn del(&self, cid: &str, netns: &str) -> Result<(), String> {
        let _in_node = self.node.enter();
        self.cni
            .del_network_list(&self.list, &Self::rt(cid, netns))
            .map_err(|e| e.to_string())
    }

    fn gc(&self) -> Result<(), String> {
        let valid: Vec<GcAttachment> = self
            .live
            .keys()
            .map(|cid| GcAttachment {
                container_id: cid.clone(),
                ifname: "eth0".into(),
            })
            .collect();
        let _in_node = self.node.enter();
        self.cni
            .gc_network_list(&self.list, Some(&valid))
            .result
            .map_err(|e| e.to_string())
    }

    /// A finished ADD: the runtime caches its result, the pod is live.
    fn adopt(&mut self, cid: &str, pod: Pod, stdout: &str) {
        let result: Value = serde_json::from_str(stdout).expect("ADD result is JSON");
        let ip: IpAddr = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .expect("ADD result has an address");
        if let Some((other, _)) = self.live.iter().find(|(_, l)| l.ip == ip) {
            self.problems
                .push(format!("ADD of {cid} got {ip}, held by live {other}"));
        }
        self.cni
            .cache
            .write(&CacheEntry {
                container_id: cid.into(),
                network_name: NET.into(),
                ifname: "eth0".into(),
                netns: pod.path.clone(),
                config: self.list.bytes.clone(),
                result: Some(result),
                ..Default::default()
            })
            .expect("write cache entry");
        self.live.insert(cid.into(), Live { pod, ip });
    }

    /// Everything that belongs to `cid` (which is not live).
    fn leftovers_of(&self, cid: &str) -> Vec<String> {
        let tag = state::tag(NET, cid, "eth0");
        let mut out: Vec<String> = state::host_veths(&self.node)
            .into_iter()
            .filter(|l| {
                l.alias.as_deref() == Some(tag.as_str())
                    || (l.alias.is_none() && l.name == bridge::names::host_veth(NET, cid, "eth0"))
            })
            .map(|l| format!("host veth {} (alias {:?})", l.name, l.alias))
            .collect();
        out.extend(
            state::allocations(&self.node.data_dir(), NET)
                .into_iter()
                .filter(|(_, owner)| owner == cid)
                .map(|(ip, _)| format!("allocation {ip}")),
        );
        out.extend(
            state::nft_rules(&self.node)
                .into_iter()
                .filter(|t| *t == tag)
                .map(|t| format!("nft rule {t}")),
        );
        out.extend(
            state::guard_elements(&self.node)
                .into_iter()
                .filter(|t| *t == tag)
                .map(|t| format!("spoofCheck element {t}")),
        );
        out.extend(
            state::cache_entries(&self.node.cache_dir())
                .into_iter()
                .filter(|e| e.contains(&format!("/{cid}/")))
                .map(|e| format!("cache entry {e}")),
        );
        out
    }

    /// Whole-node check against the live set: returns the leaks; records double-held addresses
    /// and live pods that lost something as problems.
    fn check_all(&mut self) -> Vec<String> {
        let live_tags: HashSet<String> = self
            .live
            .keys()
            .map(|c| state::tag(NET, c, "eth0"))
            .collect();
        let mut leaks = Vec::new();
        let veths = state::host_veths(&self.node);
        for l in &veths {
            if !l.alias.as_ref().is_some_and(|a| live_tags.contains(a)) {
                leaks.push(format!("host veth {} (alias {:?})", l.name, l.alias));
            }
        }
        let allocations = state::allocations(&self.node.data_dir(), NET);
        for (ip, owner) in &allocations {
            match self.live.get(owner) {
                Some(l) if l.ip == *ip => {}
                _ => leaks.push(format!("allocation {ip} of {owner}")),
            }
        }
        for (name, _) in podwire_reliability_tests::node::Node::tree(&self.node.data_dir()) {
            if name
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".tmp."))
            {
                leaks.push(format!("temporary file {name}"));
            }
        }
        let rules = state::nft_rules(&self.node);
        for t in &rules {
            if !live_tags.contains(t) {
                leaks.push(format!("nft rule {t}"));
            }
        }
        for t in state::guard_elements(&self.node) {
            if !live_tags.contains(&t) {
                leaks.push(format!("spoofCheck element {t}"));
            }
        }
        for e in state::cache_entries(&self.node.cache_dir()) {
            let cid = e.split('/').nth(1).unwrap_or("");
            if !self.live.contains_key(cid) {
                leaks.push(format!("cache entry {e}"));
            }
        }
        let mut holders: HashMap<IpAddr, &str> = HashMap::new();
        let mut problems = Vec::new();
        for (cid, l) in &self.live {
            let addrs = state::pod_ipv4(&l.pod.ns);
            if addrs != vec![l.ip] {
                problems.push(format!(
                    "live {cid} has {addrs:?}, its ADD returned {}",
                    l.ip
                ));
            }
            for a in addrs {
                if let Some(other) = holders.insert(a, cid) {
                    problems.push(format!("{a} held by both {other} and {cid}"));
                }
            }
            if allocations.get(&l.ip).map(String::as_str) != Some(cid.as_str()) {
                problems.push(format!("live {cid} lost its allocation {}", l.ip));
            }
            let tag = state::tag(NET, cid, "eth0");
            if !veths
                .iter()
                .any(|v| v.alias.as_deref() == Some(tag.as_str()))
            {
                problems.push(format!("live {cid} lost its host veth"));
            }
            if !rules.contains(&tag) {
                problems.push(format!("live {cid} lost its nft rule"));
            }
        }
        self.problems.extend(problems);
        leaks
    }
}

#[test]
fn killed_adds_leak_nothing_after_del_and_gc() {
    assert!(
        is_root(),
        "the crash suite needs root (netns, bridges, nftables)"
    );
    let kills = count("PODWIRE_CRASH_KILLS", 200, 2000);
    let seed = Rng::seed_from_env();
    let mut rng = Rng::new(seed);
    let mut report = Report::new("crash");
    let podwire = binaries::release("podwire");
    let faulty = binaries::fault_injection_podwire();
    let node = Node::new();
    let conf = json!({"cniVersion": "1.1.0", "name": NET, "plugins": [{
        "type": "podwire", "bridge": BRIDGE, "isGateway": true, "isDefaultGateway": true,
        "ipMasq": true,
        "ipam": {"type": "podwire-ipam", "subnet": "10.78.0.0/24", "dataDir": node.data_dir()}
    }]});
    let list = NetworkConfigList::from_bytes(conf.to_string().as_bytes()).unwrap();
    let mut plugin_conf = conf["plugins"][0].clone();
    plugin_conf["name"] = NET.into();
    plugin_conf["cniVersion"] = "1.1.0".into();
    let cni = node.runtime(podwire.parent().unwrap(), Some(Duration::from_secs(60)));
    let mut s = Suite {
        node,
        list,
        plugin_conf: plugin_conf.to_string().into_bytes(),
        cni,
        live: BTreeMap::new(),
        problems: Vec::new(),
    };

    // Pods that stay up through the whole run, and how long an ADD takes (for random kills).
    let mut add_times = Vec::new();
    for i in 0..8 {
        let pod = s.node.pod();
        let cid = format!("steady{i}");
        let started = Instant::now();
        let out = plugin::run(
            &faulty,
            Some(&s.node.ns),
            &Call::attachment("ADD", &cid, &pod.path, &s.plugin_conf),
            None,
        );
        add_times.push(started.elapsed());
        assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
        s.adopt(&cid, pod, &out.stdout);
    }
    add_times.sort();
    let window = add_times[add_times.len() / 2] * 3 / 2;

    let mut per_step: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut random_kills, mut finished_first, mut dels, mut dels_no_netns, mut gcs) =
        (0, 0, 0, 0, 0);
    let mut leaks_after_del: Vec<String> = Vec::new();
    let mut leaks_after_gc: Vec<String> = Vec::new();
    let mut crashed_pods: Vec<Pod> = Vec::new();
    for i in 0..kills {
        let pod = s.node.pod();
        let cid = format!("crash{i}");
        let call = Call::attachment("ADD", &cid, &pod.path, &s.plugin_conf);
        let out = if i % 2 == 0 {
            let step = STEPS[(i / 2) % STEPS.len()];
            *per_step.entry(step).or_default() += 1;
            let out = plugin::run(
                &faulty,
                Some(&s.node.ns),
                &call.var(ipam::fault::ENV, Some(step)),
                None,
            );
            if !out.killed() {
                s.problems.push(format!(
                    "fault point {step} did not fire: exit {:?} {}",
                    out.code, out.stdout
                ));
            }
            out
        } else {
            random_kills += 1;
            let at = window.mul_f64(rng.below(1000) as f64 / 1000.0);
            plugin::run(&faulty, Some(&s.node.ns), &call, Some(at))
        };
        if out.code == Some(0) {
            finished_first += 1;
            s.adopt(&cid, pod, &out.stdout);
            // Now and then a live pod goes away normally.
            if rng.percent(50) {
                let victim = s.live.keys().nth(rng.below(s.live.len())).cloned().unwrap();
                if !victim.starts_with("steady") {
                    let l = s.live.remove(&victim).unwrap();
                    if let Err(e) = s.del(&victim, &l.pod.path) {
                        s.problems.push(format!("DEL of live {victim}: {e}"));
                    }
                    crashed_pods.push(l.pod);
                }
            }
        } else {
            if !out.killed() {
                s.problems.push(format!(
                    "ADD of {cid} failed without being killed: {:?} {}",
                    out.code, out.stdout
                ));
            }
            // What the runtime does after a failed ADD: DEL, with the netns or (sandbox gone) without.
            let with_netns = rng.percent(50);
            dels += 1;
            if !with_netns {
                dels_no_netns += 1;
            }
            if let Err(e) = s.del(&cid, if with_netns { &pod.path } else { "" }) {
                s.problems.push(format!("DEL of killed {cid}: {e}"));
            }
            for l in s.leftovers_of(&cid) {
                leaks_after_del.push(format!(
                    "{cid} ({}, DEL {}): {l}",
                    if i % 2 == 0 {
                        STEPS[(i / 2) % STEPS.len()]
                    } else {
                        "random"
                    },
                    if with_netns {
                        "with netns"
                    } else {
                        "without netns"
                    }
                ));
            }
            crashed_pods.push(pod);
        }
        if i % 20 == 19 || i + 1 == kills {
            gcs += 1;
            if let Err(e) = s.gc() {
                s.problems.push(format!("GC: {e}"));
            }
            leaks_after_gc.extend(s.check_all());
            // The runtime removes the dead sandboxes' netns last.
            for p in crashed_pods.drain(..) {
                s.node.delete_pod(p);
            }
        }
    }

    // Finally every live pod goes, then GC with nothing live: the node must be empty.
    let live: Vec<String> = s.live.keys().cloned().collect();
    for cid in &live {
        let l = s.live.remove(cid).unwrap();
        if let Err(e) = s.del(cid, &l.pod.path) {
            s.problems.push(format!("final DEL of {cid}: {e}"));
        }
    }
    if let Err(e) = s.gc() {
        s.problems.push(format!("final GC: {e}"));
    }
    let final_leaks = s.check_all();

    report.line(format!(
        "seed {seed}: {kills} killed ADDs: {} at named steps {per_step:?}, {random_kills} at random times within {window:.1?} (of which {finished_first} finished first and became live pods)",
        kills - random_kills
    ));
    report.line(format!(
        "runtime cleanup: {dels} DELs ({dels_no_netns} without netns), {gcs} GCs with the live set"
    ));
    report.line(format!(
        "leaks right after DEL alone: {} (GC must catch these)",
        leaks_after_del.len()
    ));
    for l in leaks_after_del.iter().take(5) {
        report.line(format!("  e.g. {l}"));
    }
    report.line(format!(
        "leaks after DEL + GC: {}; at the end (all deleted, GC): {}",
        leaks_after_gc.len(),
        final_leaks.len()
    ));
    report.line(format!(
        "addresses held twice / live pods damaged / unexpected errors: {}",
        s.problems.len()
    ));
    for p in s.problems.iter().take(5) {
        report.line(format!("  e.g. {p}"));
    }
    report.finish();

    assert!(s.problems.is_empty(), "{:#?}", s.problems);
    assert!(leaks_after_gc.is_empty(), "{leaks_after_gc:#?}");
    assert!(final_leaks.is_empty(), "{final_leaks:#?}");
}

/// Regression: an ADD killed between creating the veth pair and tagging its host end (the alias
/// costs a second request) left an untagged veth that a DEL without netns skipped as "not ours",
/// and GC cannot attribute: it stayed until the pod's netns went. DEL now deletes a veth with the
/// attachment's hashed name, no alias, on the network's bridge.
#[test]
fn del_without_netns_removes_the_untagged_veth_of_a_killed_add() {
    assert!(is_root(), "needs root (netns, bridges)");
    let podwire = binaries::release("podwire");
    let node = Node::new();
    let pod = node.pod();
    let nl = node.netlink();
    let br = nl
        .ensure_bridge(&kernel::BridgeSpec::new(BRIDGE).up())
        .unwrap();
    let name = bridge::names::host_veth(NET, "killed", "eth0");
    nl.veth_add(
        &kernel::VethSpec::new(&name, "eth0")
            .peer_netns(&pod.ns)
            .master(br.index),
    )
    .unwrap();
    // A foreign untagged veth of another name on the same bridge must survive.
    nl.veth_add(&kernel::VethSpec::new("vethforeign0", "vethforeign1").master(br.index))
        .unwrap();
    let conf = json!({"cniVersion": "1.1.0", "name": NET, "type": "podwire", "bridge": BRIDGE,
        "ipam": {"type": "podwire-ipam", "subnet": "10.78.1.0/24", "dataDir": node.data_dir()}});
    let out = plugin::run(
        &podwire,
        Some(&node.ns),
        &Call::attachment("DEL", "killed", "", conf.to_string().as_bytes()),
        None,
    );
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    let left: Vec<String> = state::host_veths(&node)
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert!(
        !left.contains(&name),
        "untagged remnant {name} survived DEL: {left:?}"
    );
    assert!(left.contains(&"vethforeign0".to_string()), "{left:?}");
}
