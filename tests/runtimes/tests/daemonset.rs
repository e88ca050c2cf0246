//! deploy/podwire.yaml's DaemonSet, run for real without a kubelet: its image is built from the
//! static binaries (no Docker), its pod spec is read from the manifest and run through
//! containerd's CRI the way kubelet runs it, by a containerd inside one node of a simulated
//! cluster (tests/cluster), against the stand-in API server over HTTPS with the service account
//! kubelet would mount and only the verbs the manifest's ClusterRole grants. The other nodes run
//! the agent directly; the DaemonSet's node must end up exactly as they do.

use cluster::{kubesim, routes_to_all_others, Cluster, SimNode, CLUSTER_V4, CLUSTER_V6};
use podwire_runtime_tests::containerd::NodeContainerd;
use podwire_runtime_tests::cri::{ContainerRun, Cri};
use podwire_runtime_tests::daemonset::{Manifest, Node, PodPlan, PolicyRule};
use podwire_runtime_tests::{binaries, cmd, image};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(40);

/// The manifest's ClusterRole: what the agent's watches need (list, watch) and the one-shot
/// `node setup --from-kubernetes` (get) on Nodes, and NetworkPolicy's read-only Pods,
/// Namespaces and NetworkPolicies; nothing else.
#[test]
fn the_cluster_role_grants_get_list_watch_on_nodes_and_policy_objects_and_nothing_more() {
    let rules = Manifest::podwire().service_account_rules();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let read = s(&["get", "list", "watch"]);
    assert_eq!(
        rules,
        vec![
            PolicyRule {
                api_groups: s(&[""]),
                resources: s(&["nodes"]),
                verbs: read.clone(),
            },
            PolicyRule {
                api_groups: s(&[""]),
                resources: s(&["pods", "namespaces"]),
                verbs: read.clone(),
            },
            PolicyRule {
                api_groups: s(&["networking.k8s.io"]),
                resources: s(&["networkpolicies"]),
                verbs: read,
            },
        ]
    );
}

/// The manifest's Role: Events about Nodes, created and patched in `default`; nothing else.
#[test]
fn the_role_grants_create_and_patch_on_events_in_default_and_nothing_more() {
    let rules = Manifest::podwire().service_account_role_rules();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rules,
        vec![(
            "default".to_string(),
            PolicyRule {
                api_groups: s(&[""]),
                resources: s(&["events"]),
                verbs: s(&["create", "patch"]),
            }
        )]
    );
}

/// What a node's agent programmed, with the names of `me` and `partner` (an on-link node)
/// replaced by SELF and PARTNER, so that two nodes of one segment compare equal when they
/// did the same thing.
fn snapshot(me: &SimNode, partner: &SimNode, conflist: &Path) -> Value {
    let own_ids = ids(me);
    let partner_ids = ids(partner);
    let rename = |v: Value| rename_values(v, &own_ids, &partner_ids);
    let vxlan: Vec<Value> = ["podwire.vxlan", "podwire.vxlan6"]
        .iter()
        .map(|dev| {
            let l = me.ip_json(&["-d", "link", "show", dev]);
            let d = &l[0]["linkinfo"]["info_data"];
            serde_json::json!({
                "mtu": l[0]["mtu"], "id": d["id"], "port": d["port"],
                "learning": d["learning"], "operstate": l[0]["operstate"],
            })
        })
        .collect();
    let mut conf: Value =
        serde_json::from_str(&std::fs::read_to_string(conflist).expect("the node's conflist"))
            .expect("conflist JSON");
    // IPAM's dataDir is a path of the test's (direct agents) or the default (the DaemonSet).
    for p in conf["plugins"].as_array_mut().expect("plugins") {
        if let Some(ipam) = p.get_mut("ipam").and_then(Value::as_object_mut) {
            ipam.remove("dataDir");
        }
    }
    let bridge = conf["plugins"][0]["bridge"]
        .as_str()
        .expect("bridge")
        .to_string();
    let addrs: Vec<Value> = me.ip_json(&["addr", "show", "dev", &bridge])[0]["addr_info"]
        .as_array()
        .expect("bridge addresses")
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| serde_json::json!([a["local"], a["prefixlen"]]))
        .collect();
    let sysctl = |k: &str| me.ns.exec(&["cat", &format!("/proc/sys/{k}")]);
    rename(serde_json::json!({
        "routes": sorted(me.podwire_routes()),
        "fdb": sorted(me.fdb()),
        "neighbours": sorted(me.vxlan_neighbours()),
        "vxlan": vxlan,
        "conflist": conf,
        "bridge": addrs,
        "forwarding": [sysctl("net/ipv4/ip_forward"), sysctl("net/ipv6/conf/all/forwarding")],
    }))
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|a| a.to_string());
    v
}

/// A node's own names: pod CIDRs, their gateways, its addresses.
fn ids(n: &SimNode) -> Vec<String> {
    let i = n.index;
    vec![
        cluster::pod_cidr_v4(i),
        cluster::pod_cidr_v6(i),
        format!("10.246.{i}.1"),
        format!("fd00:246:0:{i}::1"),
        format!("10.246.{i}.0"),
        format!("fd00:246:0:{i}::"),
        n.v4(),
        n.v6(),
        n.name.clone(),
    ]
}

fn rename_values(v: Value, own: &[String], partner: &[String]) -> Value {
    match v {
        Value::String(s) => {
            if let Some(i) = own.iter().position(|o| *o == s) {
                Value::String(format!("SELF{i}"))
            } else if let Some(i) = partner.iter().position(|o| *o == s) {
                Value::String(format!("PARTNER{i}"))
            } else {
                Value::String(s)
            }
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|v| rename_values(v, own, partner))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, rename_values(v, own, partner)))
                .collect(),
        ),
        other => other,
    }
}

/// Every log line the pod's containers wrote so far.
fn pod_logs(plan: &PodPlan) -> String {
    let dir = PathBuf::from(&plan.sandbox.log_directory);
    let mut out = String::new();
    for c in plan.init_containers.iter().chain(&plan.containers) {
        let path = dir.join(&c.log_path);
        out.push_str(&format!(
            "--- {} ---\n{}\n",
            path.display(),
            std::fs::read_to_string(&path).unwrap_or_default()
        ));
    }
    out
}

fn wait_exit(cri: &Cri, id: &str, timeout: Duration) -> ContainerRun {
    let start = Instant::now();
    loop {
        let state = cri.container_state(id).unwrap_or_else(|e| panic!("{e}"));
        if matches!(state, ContainerRun::Exited { .. }) || start.elapsed() > timeout {
            return state;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_daemonset_pod_spec_runs_under_cri_in_a_node_and_routes_as_the_agent_run_directly() {
    let t0 = Instant::now();
    let manifest = Manifest::podwire();
    let spec = manifest.pod_spec();
    let bins = binaries::static_image_binaries();

    // n1 (the DaemonSet's) and n2 on segment A, n3 on B. HTTPS, and RBAC from the first grant.
    let mut c = Cluster::with_options(
        [2, 1],
        kubesim::Options {
            tls: true,
            ..Default::default()
        },
    );
    let agents_token = testkit::unique("tka");
    for resource in ["nodes", "pods", "namespaces", "networkpolicies"] {
        c.api.grant(
            &agents_token,
            "direct-agents",
            resource,
            &["get", "list", "watch"],
        );
    }
    std::fs::write(&c.kubeconfig, c.api.kubeconfig_with_token(&agents_token)).unwrap();
    let sa_token = testkit::unique("tks");
    let role_rules = manifest
        .service_account_role_rules()
        .into_iter()
        .map(|(_, r)| r);
    for rule in manifest
        .service_account_rules()
        .into_iter()
        .chain(role_rules)
    {
        let verbs: Vec<&str> = rule.verbs.iter().map(String::as_str).collect();
        for resource in &rule.resources {
            c.api.grant(
                &sa_token,
                "system:serviceaccount:kube-system:podwire",
                resource,
                &verbs,
            );
        }
    }
    c.start_agent(1);
    c.start_agent(2);
    let built = t0.elapsed();

    // n1's own runtime: a containerd in its network namespace, its CNI dirs the node's
    // /opt/cni/bin and /etc/cni/net.d (empty: the node has no pod network yet).
    let n1 = &c.nodes[0];
    let ctrd = NodeContainerd::start(
        &podwire_runtime_tests::private_dir("podwire-ds"),
        Path::new(&n1.ns.path()),
    );
    let layout = &ctrd.layout;
    let cri = ctrd.cri();
    assert!(
        !cri.conditions().unwrap()["NetworkReady"].0,
        "no conflist yet: the runtime must not be network-ready"
    );

    // The image, as the manifest names it.
    let images: Vec<&str> = spec["initContainers"]
        .as_array()
        .into_iter()
        .chain(spec["containers"].as_array())
        .flatten()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert!(images.windows(2).all(|w| w[0] == w[1]), "{images:?}");
    let reference = image::normalized_reference(images[0]);
    let archive = image::podwire_archive(&layout.images(), images[0], &bins);
    layout
        .import_image(&archive, &reference)
        .unwrap_or_else(|e| panic!("{e}"));

    // What kubelet knows: the node's name, its hostPaths, the ConfigMap as the operator set
    // it (the manifest says to set cluster-cidr to the cluster's), the service account.
    let mut config_maps = manifest.config_maps();
    config_maps
        .get_mut("podwire-config")
        .expect("the podwire-config ConfigMap")
        .insert("cluster-cidr".into(), format!("{CLUSTER_V4},{CLUSTER_V6}"));
    let sa_dir = layout.dir.join("serviceaccount");
    c.api.write_service_account(&sa_dir, &sa_token).unwrap();
    let state_dir = n1.dir.join("state");
    let node = Node {
        name: n1.name.clone(),
        host_paths: BTreeMap::from([
            ("/opt/cni/bin".to_string(), layout.cni_bin()),
            ("/etc/cni/net.d".to_string(), layout.cni_conf()),
            ("/var/lib/podwire".to_string(), state_dir.clone()),
            // libcni's cache of the node's pods (the agent puts hostPorts and spoofCheck guards
            // back from it).
            ("/var/lib/cni".to_string(), n1.dir.join("cache")),
            // Per network namespace under net/: the node's, as the container has its network.
            ("/proc/sys".to_string(), PathBuf::from("/proc/sys")),
        ]),
        config_maps,
        service_account_dir: sa_dir,
        api: c.api.local_addr(),
        log_dir: layout.pod_logs(),
    };
    let pod_name = format!("podwire-{}", testkit::unique("x"));
    let plan = node
        .plan(spec, "kube-system", &pod_name)
        .unwrap_or_else(|e| panic!("{e}"));

    // kubelet: the sandbox, every init container to a zero exit, then the containers.
    let t = Instant::now();
    let pod = cri
        .run_pod_with(plan.sandbox.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    for init in &plan.init_containers {
        let id = cri
            .start_container_with(&pod, init.clone(), plan.sandbox.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let state = wait_exit(&cri, &id, Duration::from_secs(30));
        assert!(
            matches!(state, ContainerRun::Exited { code: 0, .. }),
            "init container: {state:?}\n{}",
            pod_logs(&plan)
        );
    }
    // install-cni put the image's plugins into the node's /opt/cni/bin.
    for bin in &bins[..2] {
        let name = bin.file_name().unwrap();
        assert_eq!(
            std::fs::read(layout.cni_bin().join(name)).ok(),
            std::fs::read(bin).ok(),
            "{name:?} in the node's CNI bin dir"
        );
    }
    let main = &plan.containers[0];
    let agent = cri
        .start_container_with(&pod, main.clone(), plan.sandbox.clone())
        .unwrap_or_else(|e| panic!("{e}"));

    // It sets the node up and routes to every other node; the others route to it.
    let conflist = layout.cni_conf().join("10-podwire.conflist");
    let waited = c.wait_for(
        "the DaemonSet's node and the direct agents",
        CONVERGE,
        || {
            if !matches!(cri.container_state(&agent), Ok(ContainerRun::Running)) {
                panic!("the agent container is not running\n{}", pod_logs(&plan));
            }
            conflist.is_file() && routes_to_all_others(&c.nodes[0], &c.api.nodes()) && c.converged()
        },
    );
    eprintln!(
        "static binaries, cluster and direct agents {built:?}; DaemonSet pod networked {:?} after RunPodSandbox \
         ({waited:?} of it waiting for routes)",
        t.elapsed()
    );
    // kubelet's probes, as the manifest gives them, from the node (hostNetwork): live, ready.
    assert_eq!(plan.probes.len(), 2, "{:?}", plan.probes);
    for p in &plan.probes {
        let answer = n1.http_get_at(p.addr, &p.path);
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(200),
            "{} {}{}: {answer:?}\n{}",
            p.kind,
            p.addr,
            p.path,
            pod_logs(&plan)
        );
    }
    let (code, metrics) = n1.http_get("/metrics").expect("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("podwire_agent_nodes 3"), "{metrics}");
    assert!(metrics.contains("podwire_agent_ready 1"), "{metrics}");

    // containerd itself now finds the node's network ready: the conflist is one it loads.
    layout
        .wait_condition("NetworkReady", &mut || ctrd.pid().is_some_and(cmd::alive))
        .unwrap_or_else(|e| panic!("{e}"));

    // Exactly what the direct agent on the same segment did, names swapped.
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let settled = Instant::now();
    let (ds, direct) = loop {
        let ds = snapshot(n1, n2, &conflist);
        let direct = snapshot(n2, n1, &n2.conf_dir().join("10-podwire.conflist"));
        if ds == direct || settled.elapsed() > Duration::from_secs(10) {
            break (ds, direct);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        ds,
        direct,
        "the DaemonSet's node differs from the direct agent's\n{}",
        pod_logs(&plan)
    );
    assert_eq!(ds["routes"].as_array().unwrap().len(), 4, "{ds:#}");
    assert_eq!(ds["fdb"].as_array().unwrap().len(), 2, "{ds:#}");
    assert!(
        state_dir.read_dir().is_ok_and(|mut d| d.next().is_some()),
        "setup recorded nothing in the node's /var/lib/podwire"
    );
    let log = pod_logs(&plan);
    assert!(log.contains("watching Nodes"), "{log}");
    // Nothing it asked the API server for was refused (the ClusterRole's verbs are enough).
    // (Words, not bare codes: "403" also turns up inside the log's nanosecond timestamps.)
    for refused in [
        "Forbidden",
        "Unauthorized",
        "code: 403",
        "code: 401",
        "HTTP 40",
    ] {
        assert!(!log.contains(refused), "{refused}:\n{log}");
    }
    // It could verify direct paths: the probe's raw sockets were allowed (NET_RAW).
    assert!(!log.contains("not verified yet (probe"), "{log}");
    // The agent process as the runtime made it: the node's netns, NET_ADMIN and NET_RAW alone,
    // a read-only root.
    let pids = cmd::pids_with_cmdline(&["podwirectl", &n1.name]);
    assert_eq!(pids.len(), 1, "one agent process in the pod: {pids:?}");
    let proc_file = |f: &str| std::fs::read_to_string(format!("/proc/{}/{f}", pids[0])).unwrap();
    let netns = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_eq!(
        netns(&format!("/proc/{}/ns/net", pids[0])).unwrap(),
        netns(&n1.ns.path()).unwrap(),
        "hostNetwork: the agent runs in the node's netns"
    );
    let status = proc_file("status");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        let line = status.lines().find(|l| l.starts_with(set)).unwrap();
        // CAP_NET_ADMIN is capability 12, CAP_NET_RAW 13.
        assert!(line.ends_with("0000000000003000"), "{line}");
    }
    assert!(
        status.lines().any(|l| l == "NoNewPrivs:\t1"),
        "allowPrivilegeEscalation: false"
    );
    // resources.limits.memory as its memory cgroup's limit (cgroup v1 here; v2 if present).
    let cgroup = proc_file("cgroup");
    let memory = cgroup
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            match controllers {
                "memory" => Some(format!("/sys/fs/cgroup/memory{path}")),
                "" => Some(format!("/sys/fs/cgroup{path}")),
                _ => None,
            }
        })
        .expect("a memory cgroup");
    let read = |f: &str| std::fs::read_to_string(format!("{memory}/{f}")).ok();
    let limit = read("memory.limit_in_bytes").or_else(|| read("memory.max"));
    assert_eq!(
        limit.as_deref().map(str::trim),
        Some("104857600"),
        "{memory}"
    );
    if let Some(peak) = read("memory.max_usage_in_bytes").or_else(|| read("memory.peak")) {
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or("");
        eprintln!(
            "agent container: cgroup peak {:.1} MiB of its 100 MiB limit; process {hwm}",
            peak.trim().parse::<f64>().unwrap_or(0.0) / 1048576.0
        );
    }
    let root = proc_file("mountinfo")
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .map(String::from)
        .unwrap();
    assert!(
        root.split(' ')
            .nth(5)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "readOnlyRootFilesystem: {root}"
    );

    // Pods on every node (n1's with the DaemonSet's conflist, its IPAM state in n1's dir
    // rather than the host's /var/lib/cni) reach each other, both families.
    let mut conf: Value =
        serde_json::from_str(&std::fs::read_to_string(&conflist).unwrap()).unwrap();
    conf["plugins"][0]["ipam"]["dataDir"] = n1.dir.join("ipam").display().to_string().into();
    std::fs::create_dir_all(n1.conf_dir()).unwrap();
    std::fs::write(
        n1.conf_dir().join("10-podwire.conflist"),
        serde_json::to_string_pretty(&conf).unwrap(),
    )
    .unwrap();
    for i in 0..3 {
        c.add_pod(i);
    }
    let failed = c.unanswered_cross_node_pings();
    assert!(failed.is_empty(), "no answer: {failed:#?}");

    // NetworkPolicy, with the manifest's RBAC: the DaemonSet's agent isolates its pod x/a.
    c.api
        .create(&kubesim::namespace("x", &[("ns", "x")]))
        .unwrap();
    for (i, name) in [(0, "a"), (1, "b")] {
        let p = &c.pods[i];
        let obj = kubesim::PodBuilder::new("x", name)
            .node(&c.nodes[i].name)
            .label("pod", name)
            .ip(p.v4)
            .ip(p.v6)
            .build();
        c.api.create(&obj).unwrap();
    }
    let deny: kubesim::NetworkPolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"namespace": "x", "name": "deny-a"},
        "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"]}
    }))
    .unwrap();
    c.api.create(&deny).unwrap();
    let (to_a, to_b) = (c.pods[0].v4, c.pods[1].v4);
    c.wait_for(
        "the DaemonSet's agent isolating x/a",
        Duration::from_secs(20),
        || !c.pods[2].ping(to_a),
    );
    assert!(c.pods[2].ping(to_b), "x/b is not selected");
    c.api
        .delete::<kubesim::NetworkPolicy>("x", "deny-a")
        .unwrap();
    c.wait_for("x/a open again", Duration::from_secs(20), || {
        c.pods[2].ping(to_a)
    });
    let log = pod_logs(&plan);
    assert!(log.contains("NetworkPolicy enforced"), "{log}");

    // kubelet stopping the pod: StopContainer with the grace period (SIGTERM), then
    // StopPodSandbox. The agent exits 0 at once, and leaves the node routed (no flush).
    let t = Instant::now();
    cri.stop_container(&agent, plan.grace_seconds)
        .unwrap_or_else(|e| panic!("{e}"));
    let stopped = t.elapsed();
    let state = cri.container_state(&agent).unwrap();
    assert!(
        matches!(state, ContainerRun::Exited { code: 0, .. }),
        "the agent on SIGTERM: {state:?}\n{}",
        pod_logs(&plan)
    );
    assert!(
        stopped < Duration::from_secs(plan.grace_seconds as u64),
        "the agent took {stopped:?}: killed after the grace period, not stopped by SIGTERM"
    );
    cri.stop_pod(&pod).unwrap_or_else(|e| panic!("{e}"));
    cri.remove_pod(&pod).unwrap_or_else(|e| panic!("{e}"));
    let left = cmd::pids_with_cmdline(&["podwirectl", &c.nodes[0].name]);
    assert!(left.is_empty(), "agent processes left: {left:?}");
    assert!(routes_to_all_others(&c.nodes[0], &c.api.nodes()));
    let failed = c.unanswered_cross_node_pings();
    assert!(
        failed.is_empty(),
        "traffic stopped with the agent: {failed:#?}"
    );
    eprintln!(
        "agent stopped in {stopped:?}; whole test {:?}",
        t0.elapsed()
    );
    drop(cri);
    drop(ctrd);
}

/// The image this suite builds is laid out as deploy/Dockerfile's: the binaries it copies, where
/// it puts them, its entrypoint.
#[test]
fn the_test_image_matches_the_dockerfile() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/Dockerfile");
    let dockerfile = std::fs::read_to_string(&path).unwrap();
    let copied: Vec<&str> = dockerfile
        .split_whitespace()
        // The plugins come from the `plugin` profile (as shipped and measured), podwirectl
        // from release.
        .filter_map(|w| {
            w.strip_prefix("target/release/")
                .or_else(|| w.strip_prefix("target/plugin/"))
        })
        .collect();
    let mut ours: Vec<&str> = binaries::IMAGE_BINARIES.iter().map(|(_, b)| *b).collect();
    let mut theirs = copied.clone();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "binaries the Dockerfile copies");
    for (package, _) in binaries::IMAGE_BINARIES {
        assert!(
            dockerfile.contains(&format!("-p {package} "))
                || dockerfile.contains(&format!("-p {package}\n")),
            "the Dockerfile builds {package}"
        );
    }
    let dir = format!("/{}/", image::PODWIRE_BIN_DIR);
    assert!(
        dockerfile
            .lines()
            .any(|l| l.starts_with("COPY --from=build /out/ ") && l.ends_with(&dir)),
        "the Dockerfile puts them in {dir}"
    );
    let entrypoint = format!("ENTRYPOINT [\"{dir}podwirectl\"]");
    assert!(dockerfile.contains(&entrypoint), "{entrypoint}");
}
