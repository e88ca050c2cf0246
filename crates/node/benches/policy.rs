//! NetworkPolicy in the kernel, at scale (issue #21's benchmark, the kernel side): a synthetic
//! cluster of 5,000 pods in 200 namespaces with 1,000 policies, 110 pods on the measured node,
//! compiled with `policy::compile` and put into a throwaway netns' `inet podwire-policy` by
//! `node::policy::PolicyTable`. Reports the full start-up (compile + read + diff + apply), the
//! table's size, one pod added (incremental compile + read + diff + apply), and what the bridge
//! plugin's pod-start gate adds to an ADD. As root:
//!
//!   cargo bench -p podwire-node --bench policy [-- --pods 5000 --policies 1000 --rounds 30]

use std::net::IpAddr;
use std::time::Instant;

use kernel::Netns;
use node::policy::PolicyTable;
use policy::model::NamedPort;
use policy::{Namespace, Options, Pod, Policy, Protocol, ThisNode};
use serde_json::json;

struct Args {
    pods: usize,
    policies: usize,
    namespaces: usize,
    per_node: usize,
    rounds: usize,
    startups: usize,
}

fn args() -> Args {
    let mut a = Args {
        pods: 5000,
        policies: 1000,
        namespaces: 200,
        per_node: 110,
        rounds: 30,
        startups: 5,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let n = || v.get(i + 1).and_then(|s| s.parse().ok()).expect("a number");
        match v[i].as_str() {
            "--pods" => a.pods = n(),
            "--policies" => a.policies = n(),
            "--namespaces" => a.namespaces = n(),
            "--per-node" => a.per_node = n(),
            "--rounds" => a.rounds = n(),
            "--startups" => a.startups = n(),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn pod(a: &Args, k: usize) -> Pod {
    let node = k / a.per_node;
    let i = k % a.per_node;
    let ns = k % a.namespaces;
    let v4: IpAddr = format!("10.{}.{}.{}", 64 + node / 250, node % 250, i + 2)
        .parse()
        .unwrap();
    let v6: IpAddr = format!("fd00:244:{node:x}::{:x}", i + 2).parse().unwrap();
    Pod {
        namespace: format!("ns-{ns}"),
        name: format!("pod-{k}"),
        uid: format!("uid-{k}"),
        node: Some(format!("n{node}")),
        labels: Some(
            [
                ("app".to_string(), format!("a{}", k % 5)),
                (
                    "tier".to_string(),
                    ["web", "db", "cache"][k % 3].to_string(),
                ),
            ]
            .into_iter()
            .collect(),
        ),
        host_network: false,
        terminated: false,
        ports: vec![NamedPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 8080 + (k % 3) as u16,
        }],
        ips: vec![v4, v6],
    }
}

fn namespaces(a: &Args) -> Vec<Namespace> {
    (0..a.namespaces)
        .map(|i| Namespace {
            name: format!("ns-{i}"),
            labels: [
                ("team".to_string(), format!("t{}", i % 20)),
                (
                    "env".to_string(),
                    ["prod", "dev", "test"][i % 3].to_string(),
                ),
                ("kubernetes.io/metadata.name".to_string(), format!("ns-{i}")),
            ]
            .into_iter()
            .collect(),
        })
        .collect()
}

fn policies(a: &Args) -> Vec<Policy> {
    (0..a.policies)
        .map(|p| {
            let ns = format!("ns-{}", p % a.namespaces);
            let spec = match (p / a.namespaces) % 5 {
                0 => json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
                1 => json!({"podSelector": {"matchLabels": {"app": "a0"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a1"}}}],
                                 "ports": [{"port": 80}]}]}),
                2 => json!({"podSelector": {"matchLabels": {"tier": "web"}},
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", p % 20)}}}],
                                 "ports": [{"port": "http"}]}]}),
                3 => json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a2", "a3"]}]},
                    "policyTypes": ["Egress"],
                    "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]},
                               {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.64.5.0/24"]}},
                                       {"namespaceSelector": {"matchLabels": {"env": "prod"}},
                                        "podSelector": {"matchLabels": {"tier": "db"}}}]}]}),
                _ => json!({"podSelector": {"matchLabels": {"tier": "db"}},
                    "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "a4"}}}],
                                 "ports": [{"port": 8000, "endPort": 8100}, {"port": 5432, "protocol": "TCP"}]}]}),
            };
            let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"namespace": ns, "name": format!("np-{p}")}, "spec": spec});
            Policy::from_json(&v, &mut vec![]).expect("a policy")
        })
        .collect()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<44} median {:>8.2} ms  p90 {:>8.2}  min {:>8.2}  max {:>8.2}  (n={})",
        q(0.5),
        q(0.9),
        v[0],
        v[v.len() - 1],
        v.len()
    );
}

struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = Netns::delete(&self.0);
    }
}

fn main() {
    let a = args();
    let name = format!("pwbench-pol-{}", std::process::id());
    let ns = Netns::add(&name).expect("create a netns (as root)");
    let _guard = NsGuard(name);
    let _in = ns.enter().expect("enter the netns");

    let mut pods: Vec<Pod> = (0..a.pods).map(|k| pod(&a, k)).collect();
    let nss = namespaces(&a);
    let pols = policies(&a);
    let node_addrs: Vec<IpAddr> =
        vec!["10.64.0.1".parse().unwrap(), "fd00:244::1".parse().unwrap()];
    let this = ThisNode {
        name: "n0",
        addresses: &node_addrs,
    };
    let opts = Options::default();
    println!(
        "policy benchmark: {} pods in {} namespaces, {} policies, {} pods on the measured node",
        a.pods, a.namespaces, a.policies, a.per_node
    );

    let t = PolicyTable::open().unwrap();
    // Start-up from an empty table, several times (each from scratch: table removed first).
    let (mut st_compile, mut st_read, mut st_diff, mut st_apply, mut st_total) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut compiled = None;
    let mut n_changes = 0;
    for _ in 0..a.startups.max(1) {
        t.remove().unwrap();
        t.ensure_structure().unwrap();
        let t0 = Instant::now();
        let c = policy::compile(&pods, &nss, &pols, &this, &opts);
        st_compile.push(ms(t0));
        let t1 = Instant::now();
        let have = t.read().unwrap();
        st_read.push(ms(t1));
        let t2 = Instant::now();
        let plan = policy::diff(&c.ruleset, &have);
        st_diff.push(ms(t2));
        let t3 = Instant::now();
        t.apply(&plan).unwrap();
        st_apply.push(ms(t3));
        st_total.push(ms(t0));
        n_changes = plan.changes().count();
        compiled = Some(c);
    }
    let compiled = compiled.expect("one start-up");
    println!("start-up into an empty table ({n_changes} changes):");
    summary("  compile", st_compile);
    summary("  read", st_read);
    summary("  diff", st_diff);
    summary("  apply (6 phases, one batch each)", st_apply);
    summary("  total", st_total);
    let (rules, elements) = compiled.ruleset.size();
    println!(
        "table: {} chains, {rules} rules, {} sets, {} maps, {elements} set/map elements, {} counters, {} problems",
        compiled.ruleset.chains.len(),
        compiled.ruleset.sets.len(),
        compiled.ruleset.maps.len(),
        compiled.ruleset.counters.len(),
        compiled.problems.len()
    );
    let t4 = Instant::now();
    let back = t.read().unwrap();
    let reread_ms = ms(t4);
    let again = policy::diff(&compiled.ruleset, &back);
    println!(
        "read back: {reread_ms:.1} ms, second diff empty: {}",
        again.is_empty()
    );
    assert!(again.is_empty(), "the table does not read back as written");

    // One pod added to this node (then removed again), each round a different pod. The event
    // path diffs against the ruleset last applied (the agent keeps it); a whole read of the
    // table (start-up, periodic resync, repair) is timed on its own, and must diff empty.
    let base = compiled.ruleset;
    let (mut comp, mut df, mut ap, mut total, mut rd) = (vec![], vec![], vec![], vec![], vec![]);
    let mut changes = vec![];
    for r in 0..a.rounds {
        let mut p = pod(&a, r % a.per_node);
        p.name = format!("new-{r}");
        p.uid = format!("uid-new-{r}");
        p.ips = vec![
            format!("10.64.0.{}", 200 + r % 50).parse().unwrap(),
            format!("fd00:244::{:x}", 0x200 + r).parse().unwrap(),
        ];
        pods.push(p);
        let s = Instant::now();
        let c = policy::compile(&pods, &nss, &pols, &this, &opts);
        comp.push(ms(s));
        let s2 = Instant::now();
        let plan = policy::diff(&c.ruleset, &base);
        df.push(ms(s2));
        let s3 = Instant::now();
        t.apply(&plan).unwrap();
        ap.push(ms(s3));
        total.push(ms(s));
        changes.push(plan.changes().count() as f64);
        let s4 = Instant::now();
        let have = t.read().unwrap();
        rd.push(ms(s4));
        assert!(policy::diff(&c.ruleset, &have).is_empty());
        pods.pop();
        t.apply(&policy::diff(&base, &c.ruleset)).unwrap();
    }
    println!("one pod added on this node ({} rounds):", a.rounds);
    summary("  compile", comp);
    summary("  diff (against the last applied)", df);
    summary("  apply", ap);
    summary("  total: compile + diff + apply", total);
    summary("  read of the whole table (resync)", rd);
    changes.sort_by(f64::total_cmp);
    println!("  changes per add: median {}", changes[changes.len() / 2]);

    // The bridge plugin's gate at ADD: one batch into the unclassified sets (socket included,
    // as the plugin opens one), then with the table absent (policy off).
    let tag = kernel::owned::UnclassifiedTag {
        namespace: "ns-0".into(),
        name: "web-0".into(),
        uid: "0a1b2c3d-0000-1111-2222-333344445555".into(),
        container_id: "c".repeat(64),
    };
    let rounds = a.rounds.max(200);
    let mut on = vec![];
    for r in 0..rounds {
        let ips: Vec<IpAddr> = vec![
            format!("10.64.1.{}", r % 250 + 1).parse().unwrap(),
            format!("fd00:244:1::{:x}", r + 1).parse().unwrap(),
        ];
        let s = Instant::now();
        let nft = kernel::nft::Nftables::new().unwrap();
        assert!(kernel::unclassified::announce(&nft, &ips, &tag).unwrap());
        on.push(ms(s));
        t.mark_classified(&ips).unwrap();
    }
    summary("plugin ADD gate, policy on (socket + batch)", on);
    t.remove().unwrap();
    let mut off = vec![];
    for _ in 0..rounds {
        let ips: Vec<IpAddr> = vec!["10.64.1.1".parse().unwrap()];
        let s = Instant::now();
        let nft = kernel::nft::Nftables::new().unwrap();
        assert!(!kernel::unclassified::announce(&nft, &ips, &tag).unwrap());
        off.push(ms(s));
    }
    summary("plugin ADD gate, policy off (no table)", off);
}
