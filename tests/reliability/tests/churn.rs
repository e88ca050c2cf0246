//! Churn: randomized ADD/DEL/CHECK from concurrent workers over many pods, through the runtime
//! library (as containerd would: result cache, cached DEL) and the node's whole chain (`podwire`,
//! `podwire-portmap` with a TCP and a UDP host port per pod, `loopback`), with an invariant checker
//! running beside them. At no observed moment may two live pods hold one address, by the
//! runtime's account or in the kernel (where a pod being deleted still counts while its interface
//! holds the address); after DEL of everything nothing may be left: no host veth, allocation file,
//! nft rule, port mapping or cache entry.
//!
//! Two runs: many pods on a /24 (CI: 1,000 operations, 16 workers, 200 pods), and a /28 with
//! about as many pods as addresses, so a released address is handed out again at once (CI: 600
//! operations, 8 workers, 12 pods). `PODWIRE_LONG=1`: twenty times more operations.
//! `PODWIRE_CHURN_OPS`, `PODWIRE_SEED` override.

use kernel::{IpFamily, Netlink};
use podwire_reliability_tests::node::{Node, Pod};
use podwire_reliability_tests::report::Report;
use podwire_reliability_tests::rng::Rng;
use podwire_reliability_tests::{binaries, count, is_root, state};
use runtime::{NetworkConfigList, RuntimeConf};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One churn run's shape.
struct Shape {
    name: &'static str,
    subnet: &'static str,
    workers: usize,
    pods: usize,
    ops: usize,
}

/// A pod's attachment as the runtime knows it.
#[derive(Default)]
struct Slot {
    /// (container ID, address) while attached.
    attached: Option<(String, IpAddr)>,
    generation: u64,
}

/// Shared bookkeeping: which pods are live (ADD returned, DEL not begun) and with what address.
#[derive(Default)]
struct Ledger {
    /// address → (pod, generation)
    by_ip: HashMap<IpAddr, (usize, u64)>,
    violations: Vec<String>,
}

#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, usize>,
    unexpected: Vec<String>,
}

/// Pod `p`'s attachment, with host ports of its own (30000 + p, TCP and UDP).
fn rt(container: &str, pod: &Pod, p: usize) -> RuntimeConf {
    let port = 30000 + p;
    let mappings = json!([{"hostPort": port, "containerPort": 80, "protocol": "tcp"},
                          {"hostPort": port, "containerPort": 53, "protocol": "udp"}]);
    RuntimeConf {
        container_id: container.into(),
        netns: pod.path.clone(),
        ifname: "eth0".into(),
        capability_args: serde_json::Map::from_iter([("portMappings".into(), mappings)]),
        ..Default::default()
    }
}

#[test]
fn churn_never_duplicates_an_address_and_leaves_nothing() {
    run(Shape {
        name: "churn",
        subnet: "10.77.0.0/24",
        workers: 16,
        pods: 200,
        ops: count("PODWIRE_CHURN_OPS", 1000, 20_000),
    });
}

/// 13 addresses (.2 to .14) for 12 pods: nearly every ADD takes an address a DEL has just
/// released, while that DEL may still be running. Before DEL released last, the kernel check
/// caught the old pod's eth0 still holding it.
#[test]
fn churn_with_immediate_reuse_never_puts_an_address_on_two_interfaces() {
    run(Shape {
        name: "churn-reuse",
        subnet: "10.78.0.0/28",
        workers: 8,
        pods: 12,
        ops: count("PODWIRE_CHURN_OPS", 600, 12_000),
    });
}

fn run(shape: Shape) {
    assert!(
        is_root(),
        "the churn suite needs root (netns, bridges, nftables)"
    );
    let Shape {
        name: net,
        subnet,
        workers,
        pods: pod_count,
        ops,
    } = shape;
    let bridge = format!("pw{}0", net.replace('-', ""));
    let seed = Rng::seed_from_env();
    let mut report = Report::new(net);
    let podwire = binaries::release("podwire");
    let node = Node::new();
    let list = NetworkConfigList::from_bytes(
        json!({"cniVersion": "1.1.0", "name": net, "plugins": [{
            "type": "podwire", "bridge": bridge, "isGateway": true, "isDefaultGateway": true,
            "ipMasq": true, "hairpinMode": true,
            "ipam": {"type": "podwire-ipam", "subnet": subnet, "dataDir": node.data_dir()}
        }, {"type": "podwire-portmap", "capabilities": {"portMappings": true}},
           {"type": "loopback"}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let cni = node.runtime(podwire.parent().unwrap(), Some(Duration::from_secs(60)));
    let pods: Vec<Pod> = (0..pod_count).map(|_| node.pod()).collect();
    let slots: Vec<Mutex<Slot>> = (0..pod_count).map(|_| Mutex::default()).collect();
    let ledger = Mutex::new(Ledger::default());
    let tally = Mutex::new(Tally::default());
    let next_op = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let observations = AtomicUsize::new(0);
    let observed_pods = AtomicUsize::new(0);
    let kernel_sweeps = AtomicUsize::new(0);

    std::thread::scope(|s| {
        // The invariant checker: pods live for a whole sample must show their own address in
        // the kernel and on disk, and no address twice.
        s.spawn(|| {
            // Who holds which address right now, keyed by (pod, generation).
            let snapshot = || -> HashMap<(usize, u64), IpAddr> {
                ledger
                    .lock()
                    .unwrap()
                    .by_ip
                    .iter()
                    .map(|(ip, k)| (*k, *ip))
                    .collect()
            };
            while !done.load(Ordering::SeqCst) {
                let before = snapshot();
                let mut seen: HashMap<IpAddr, usize> = HashMap::new();
                let kernel: Vec<((usize, u64), Vec<IpAddr>)> = before
                    .keys()
                    .map(|k| (*k, state::pod_ipv4(&pods[k.0].ns)))
                    .collect();
                let disk = state::allocations(&node.data_dir(), net);
                let after = snapshot();
                let mut found = Vec::new();
                for (k, addrs) in kernel {
                    let Some(ip) = after.get(&k).filter(|ip| before.get(&k) == Some(ip)) else {
                        continue; // not live for the whole sample
                    };
                    observed_pods.fetch_add(1, Ordering::Relaxed);
                    if addrs != vec![*ip] {
                        found.push(format!(
                            "pod {} holds {addrs:?} in the kernel, its ADD returned {ip}",
                            k.0
                        ));
                    }
                    if !disk.contains_key(ip) {
                        found.push(format!("pod {}'s address {ip} has no allocation file", k.0));
                    }
                    for a in addrs {
                        if let Some(other) = seen.insert(a, k.0) {
                            found.push(format!("live pods {other} and {} both hold {a}", k.0));
                        }
                    }
                }
                observations.fetch_add(1, Ordering::Relaxed);
                ledger.lock().unwrap().violations.extend(found);
                std::thread::sleep(Duration::from_millis(5));
            }
        });

        // The kernel's view alone, pods being deleted included: no address on two interfaces.
        s.spawn(|| {
            let sockets: Vec<Netlink> = pods
                .iter()
                .map(|p| Netlink::new_in(&p.ns).expect("netlink in pod"))
                .collect();
            while !done.load(Ordering::SeqCst) {
                let found = two_holders(&sockets);
                kernel_sweeps.fetch_add(1, Ordering::Relaxed);
                ledger.lock().unwrap().violations.extend(found);
            }
        });

        for w in 0..workers {
            let (cni, list, pods, slots, ledger, tally, next_op, node) =
                (&cni, &list, &pods, &slots, &ledger, &tally, &next_op, &node);
            s.spawn(move || {
                let _in_node = node.enter();
                let mut rng = Rng::new(seed ^ (w as u64).wrapping_mul(0x9e37_79b9));
                while next_op.fetch_add(1, Ordering::SeqCst) < ops {
                    let p = rng.below(pod_count);
                    let mut slot = slots[p].lock().unwrap();
                    let roll = rng.below(100);
                    let (name, outcome): (&'static str, Result<(), String>) =
                        match slot.attached.clone() {
                            None if roll < 85 => {
                                slot.generation += 1;
                                let cid = format!("churn-{p}-{}", slot.generation);
                                match cni.add_network_list(list, &rt(&cid, &pods[p], p)) {
                                    Ok(r) => {
                                        let ip = r.ips[0].address.addr();
                                        let mut l = ledger.lock().unwrap();
                                        if let Some((q, _)) = l.by_ip.get(&ip) {
                                            let v = format!(
                                                "ADD gave pod {p} {ip}, held by live pod {q}"
                                            );
                                            l.violations.push(v);
                                        }
                                        l.by_ip.insert(ip, (p, slot.generation));
                                        slot.attached = Some((cid, ip));
                                        ("ADD", Ok(()))
                                    }
                                    Err(e) => ("ADD", Err(format!("ADD {cid}: {e}"))),
                                }
                            }
                            None => {
                                // DEL of something never added (or already deleted): must succeed.
                                let cid = format!("churn-{p}-{}", slot.generation);
                                let r = cni.del_network_list(list, &rt(&cid, &pods[p], p));
                                (
                                    "DEL (not attached)",
                                    r.map_err(|e| format!("DEL {cid}: {e}")),
                                )
                            }
                            Some((cid, ip)) if roll < 45 => {
                                ledger.lock().unwrap().by_ip.remove(&ip);
                                slot.attached = None;
                                let r = cni.del_network_list(list, &rt(&cid, &pods[p], p));
                                ("DEL", r.map_err(|e| format!("DEL {cid}: {e}")))
                            }
                            Some((cid, _)) if roll < 85 => {
                                let r = cni.check_network_list(list, &rt(&cid, &pods[p], p));
                                ("CHECK", r.map_err(|e| format!("CHECK {cid}: {e}")))
                            }
                            Some((cid, _)) => {
                                // A repeated ADD must be refused (103) and change nothing.
                                match cni.add_network_list(list, &rt(&cid, &pods[p], p)) {
                                    Err(e) if e.code().number() == 103 => {
                                        ("ADD again (refused)", Ok(()))
                                    }
                                    Err(e) => (
                                        "ADD again (refused)",
                                        Err(format!("repeated ADD {cid}: want code 103, got {e}")),
                                    ),
                                    Ok(_) => (
                                        "ADD again (refused)",
                                        Err(format!("repeated ADD {cid} succeeded")),
                                    ),
                                }
                            }
                        };
                    let mut t = tally.lock().unwrap();
                    *t.ops.entry(name).or_default() += 1;
                    if let Err(e) = outcome {
                        t.unexpected.push(e);
                    }
                }
            });
        }
        // Every worker takes one number past the last op on its way out: then stop the checker.
        s.spawn(|| {
            while next_op.load(Ordering::SeqCst) < ops + workers {
                std::thread::sleep(Duration::from_millis(10));
            }
            done.store(true, Ordering::SeqCst);
        });
    });

    // DEL of everything still attached, then nothing may be left.
    let live_at_end = {
        let _in_node = node.enter();
        let mut n = 0;
        for (p, slot) in slots.iter().enumerate() {
            if let Some((cid, _)) = slot.lock().unwrap().attached.take() {
                n += 1;
                if let Err(e) = cni.del_network_list(&list, &rt(&cid, &pods[p], p)) {
                    tally
                        .lock()
                        .unwrap()
                        .unexpected
                        .push(format!("final DEL {cid}: {e}"));
                }
            }
        }
        n
    };
    let veths = state::bridge_ports(&node, &bridge);
    let all_veths = state::host_veths(&node);
    let files = state::allocations(&node.data_dir(), net);
    let rules = state::nft_rules(&node);
    let mappings = state::port_mappings(&node);
    let guards = state::guard_elements(&node);
    let cache = state::cache_entries(&node.cache_dir());
    let tally = tally.into_inner().unwrap();
    let ledger = ledger.into_inner().unwrap();

    report.line(format!(
        "seed {seed}: {ops} operations from {workers} workers over {pod_count} pod netns on {subnet} (PODWIRE_SEED={seed} replays the choices)"
    ));
    report.line(format!("operations: {:?}", tally.ops));
    report.line(format!(
        "invariant checker: {} observations, {} live-pod checks, {} kernel sweeps of every pod, {} violations",
        observations.load(Ordering::Relaxed),
        observed_pods.load(Ordering::Relaxed),
        kernel_sweeps.load(Ordering::Relaxed),
        ledger.violations.len()
    ));
    report.line(format!("unexpected errors: {}", tally.unexpected.len()));
    for e in tally.unexpected.iter().take(5) {
        report.line(format!("  e.g. {e}"));
    }
    for v in ledger.violations.iter().take(5) {
        report.line(format!("  violation: {v}"));
    }
    report.line(format!(
        "after DEL of the {live_at_end} pods still attached: host veths on the bridge {}, host veths in the node {}, allocation files {}, nft rules {}, port mappings {}, spoofCheck elements {}, cache entries {}",
        veths.len(), all_veths.len(), files.len(), rules.len(), mappings.len(), guards.len(), cache.len()
    ));
    report.finish();

    assert!(ledger.violations.is_empty(), "{:#?}", ledger.violations);
    assert!(tally.unexpected.is_empty(), "{:#?}", tally.unexpected);
    assert!(
        veths.is_empty() && all_veths.is_empty(),
        "leaked veths: {all_veths:?}"
    );
    assert!(files.is_empty(), "leaked allocations: {files:?}");
    assert!(rules.is_empty(), "leaked nft rules: {rules:?}");
    assert!(mappings.is_empty(), "leaked port mappings: {mappings:?}");
    assert!(guards.is_empty(), "leaked spoofCheck elements: {guards:?}");
    assert!(cache.is_empty(), "leaked cache entries: {cache:?}");
    assert!(
        tally.ops.get("ADD").copied().unwrap_or(0) > ops / 4,
        "too few ADDs ran"
    );
}

/// Two sweeps over every pod's addresses (by interface index), in the same order. An interface
/// that holds an address in both sweeps held it all the time between them (an address never
/// comes back to an interface: ADD makes a new one), and any other pod's reading of that
/// address in one of the sweeps falls inside that time. So a report is two interfaces holding
/// one address at the same moment, never two holders one after the other.
fn two_holders(sockets: &[Netlink]) -> Vec<String> {
    let sweep = || -> Vec<Vec<(u32, IpAddr)>> {
        sockets
            .iter()
            .map(|nl| {
                nl.addresses(None, Some(IpFamily::V4))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| !a.net.addr().is_loopback())
                    .map(|a| (a.index, a.net.addr()))
                    .collect()
            })
            .collect()
    };
    let (first, second) = (sweep(), sweep());
    let mut found = Vec::new();
    for (x, held) in first.iter().enumerate() {
        for (index, ip) in held.iter().filter(|h| second[x].contains(h)) {
            // Pods after x were read after x in the first sweep; pods before x before it in the second.
            let others = first[x + 1..]
                .iter()
                .enumerate()
                .map(|(i, h)| (x + 1 + i, h))
                .chain(second[..x].iter().enumerate());
            for (y, y_held) in others {
                if y_held.iter().any(|(_, a)| a == ip) {
                    found.push(format!(
                        "kernel: {ip} on pod {x}'s interface {index} and on pod {y}'s at once"
                    ));
                }
            }
        }
    }
    found
}
