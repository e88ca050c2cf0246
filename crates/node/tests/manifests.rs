//! deploy/*.yaml parsed into the Kubernetes API types (k8s-openapi): a typo fails here, not in a
//! user's cluster. k8s-openapi ignores unknown fields, so every object is also serialised back
//! and compared with the YAML: a field that did not survive is a misspelt one. Then what the
//! DaemonSet must do is checked: its commands parse with podwirectl's own options, and every
//! path they use is on a hostPath volume.

use clap::Parser;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The documents of a manifest file as JSON values.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The first path at which `b` lacks or changes something `a` has.
fn lost(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.iter().find_map(|(k, v)| match y.get(k) {
            Some(w) => lost(v, w, &format!("{path}.{k}")),
            None => Some(format!("{path}.{k}")),
        }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| lost(v, w, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path} ({a} became {b})")),
    }
}

/// Parses a document as `T` and insists nothing was dropped on the way.
fn typed<T: DeserializeOwned + serde::Serialize>(doc: &Value) -> T {
    let name = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
    let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let back = serde_json::to_value(&t).unwrap();
    if let Some(path) = lost(doc, &back, "") {
        panic!("{name}: unknown or misspelt field at {path}");
    }
    t
}

#[derive(Default)]
struct Objects {
    daemonsets: Vec<DaemonSet>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
}

fn load(file: &str) -> Objects {
    let mut o = Objects::default();
    for doc in documents(file) {
        match doc["kind"].as_str().unwrap_or_default() {
            "DaemonSet" => o.daemonsets.push(typed(&doc)),
            "ServiceAccount" => o.service_accounts.push(typed(&doc)),
            "ClusterRole" => o.cluster_roles.push(typed(&doc)),
            "ClusterRoleBinding" => o.bindings.push(typed(&doc)),
            "Role" => o.roles.push(typed(&doc)),
            "RoleBinding" => o.role_bindings.push(typed(&doc)),
            "ConfigMap" => o.config_maps.push(typed(&doc)),
            other => panic!("{file}: unexpected kind {other:?}"),
        }
    }
    o
}

#[derive(Parser)]
#[command(name = "podwirectl")]
struct Podwirectl {
    #[command(subcommand)]
    cmd: Top,
}

#[derive(clap::Subcommand)]
enum Top {
    #[command(subcommand)]
    Node(NodeCmd),
}

#[derive(clap::Subcommand)]
enum NodeCmd {
    #[allow(dead_code)] // parsed so a manifest that runs it is understood
    Setup(Box<node::cli::SetupArgs>),
    Agent(Box<node::cli::AgentArgs>),
    Teardown(node::cli::TeardownArgs),
    InstallCni(node::cli::InstallArgs),
}

/// A container's command parsed as podwirectl would (the image's path to it stripped).
fn parse_command(c: &Container) -> NodeCmd {
    let cmd = c.command.clone().unwrap_or_default();
    assert_eq!(
        cmd.first().map(String::as_str),
        Some("/opt/podwire/bin/podwirectl"),
        "{}: the image puts podwirectl there",
        c.name
    );
    let args = ["podwirectl".to_string()]
        .into_iter()
        .chain(cmd[1..].iter().cloned());
    match Podwirectl::try_parse_from(args) {
        Ok(Podwirectl { cmd: Top::Node(n) }) => n,
        Err(e) => panic!("{}: {e}", c.name),
    }
}

/// mountPath → host path, for the container's hostPath mounts.
fn host_mounts(pod: &PodSpec, c: &Container) -> BTreeMap<PathBuf, PathBuf> {
    let volumes: BTreeMap<_, _> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.clone(), v))
        .collect();
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let v = volumes
                .get(&m.name)
                .unwrap_or_else(|| panic!("{}: no volume {}", c.name, m.name));
            let hp = v.host_path.as_ref().expect("only hostPath volumes");
            (PathBuf::from(&m.mount_path), PathBuf::from(&hp.path))
        })
        .collect()
}

/// The host path a container path lands on (through one of its hostPath mounts).
fn on_host(mounts: &BTreeMap<PathBuf, PathBuf>, p: &Path) -> PathBuf {
    mounts
        .iter()
        .find_map(|(m, h)| p.strip_prefix(m).ok().map(|rest| h.join(rest)))
        .unwrap_or_else(|| panic!("{} is on no hostPath mount", p.display()))
        .components()
        .collect()
}

/// What every podwire container may have: root (hostPath writes), NET_ADMIN and NET_RAW (the
/// direct-path probe's raw sockets) at most.
fn check_least_privilege(c: &Container) {
    let sc = c.security_context.as_ref().expect("securityContext");
    assert_ne!(sc.privileged, Some(true), "{}: privileged", c.name);
    assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(
        caps.drop.as_deref(),
        Some(&["ALL".to_string()][..]),
        "{}",
        c.name
    );
    for cap in caps.add.iter().flatten() {
        assert!(
            cap == "NET_ADMIN" || cap == "NET_RAW",
            "{}: {cap}, more than NET_ADMIN and NET_RAW",
            c.name
        );
    }
}

fn check_runs_on_every_node(pod: &PodSpec) {
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    let tolerates_all =
        pod.tolerations.iter().flatten().any(|t| {
            t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()
        });
    assert!(tolerates_all, "tolerations must let it run on every node");
}

#[test]
fn install_manifest() {
    let o = load("podwire.yaml");
    assert_eq!(o.daemonsets.len(), 1);
    let ds = &o.daemonsets[0];
    let ns = ds.metadata.namespace.as_deref().unwrap();
    let spec = ds.spec.as_ref().unwrap();
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    for (k, v) in spec.selector.match_labels.as_ref().unwrap() {
        assert_eq!(
            template_labels.get(k),
            Some(v),
            "selector must match the template"
        );
    }
    let pod = spec.template.spec.as_ref().unwrap();
    check_runs_on_every_node(pod);

    // RBAC: the pod's service account may get/list/watch nodes, pods, namespaces and
    // networkpolicies, and nothing else.
    let sa = &o.service_accounts[0];
    assert_eq!(pod.service_account_name.as_ref(), sa.metadata.name.as_ref());
    assert_eq!(sa.metadata.namespace.as_deref(), Some(ns));
    let role = &o.cluster_roles[0];
    let rules = role.rules.as_ref().unwrap();
    let mut granted: Vec<(String, String)> = Vec::new();
    for r in rules {
        let mut verbs = r.verbs.clone();
        verbs.sort();
        assert_eq!(verbs, vec!["get", "list", "watch"], "read-only: {r:?}");
        assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                granted.push((g.clone(), res.clone()));
            }
        }
    }
    granted.sort();
    let want = [
        ("", "namespaces"),
        ("", "nodes"),
        ("", "pods"),
        ("networking.k8s.io", "networkpolicies"),
    ];
    assert_eq!(
        granted,
        want.map(|(g, r)| (g.to_string(), r.to_string())).to_vec()
    );
    let b = &o.bindings[0];
    assert_eq!(b.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&b.role_ref.name), role.metadata.name.as_ref());
    let subject = &b.subjects.as_ref().unwrap()[0];
    assert_eq!(subject.kind, "ServiceAccount");
    assert_eq!(Some(&subject.name), sa.metadata.name.as_ref());
    assert_eq!(subject.namespace.as_deref(), Some(ns));
    // Events on Nodes: create and patch, in `default` (where Node events live), nothing more.
    assert_eq!(o.roles.len(), 1);
    let events = &o.roles[0];
    assert_eq!(events.metadata.namespace.as_deref(), Some("default"));
    let rules = events.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].api_groups.as_deref(), Some(&[String::new()][..]));
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["events".to_string()][..])
    );
    let mut verbs = rules[0].verbs.clone();
    verbs.sort();
    assert_eq!(verbs, vec!["create", "patch"]);
    let rb = &o.role_bindings[0];
    assert_eq!(rb.metadata.namespace, events.metadata.namespace);
    assert_eq!(
        (rb.role_ref.kind.as_str(), Some(&rb.role_ref.name)),
        ("Role", events.metadata.name.as_ref())
    );
    let subject = &rb.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (Some(&subject.name), subject.namespace.as_deref()),
        (sa.metadata.name.as_ref(), Some(ns))
    );

    // Init container: copies the binaries from where the image has them to the host's bin dir.
    let init = &pod.init_containers.as_ref().unwrap()[0];
    check_least_privilege(init);
    let NodeCmd::InstallCni(install) = parse_command(init) else {
        panic!("init container must run node install-cni")
    };
    assert!(!install.remove);
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let from = install.from.expect("--from");
    assert!(
        dockerfile.contains(&format!("COPY --from=build /out/ {}/", from.display())),
        "the image does not put the binaries in {}",
        from.display()
    );
    let mounts = host_mounts(pod, init);
    assert_eq!(on_host(&mounts, &install.to), PathBuf::from("/opt/cni/bin"));

    // Main container: the agent, setup from the node's podCIDR kept current, on the host's paths.
    let main = &pod.containers[0];
    check_least_privilege(main);
    let NodeCmd::Agent(agent) = parse_command(main) else {
        panic!("main container must run node agent")
    };
    let setup = &agent.setup;
    let mounts = host_mounts(pod, main);
    assert_eq!(
        on_host(&mounts, &setup.conf_dir),
        PathBuf::from("/etc/cni/net.d")
    );
    assert_eq!(
        on_host(&mounts, &setup.state_dir),
        PathBuf::from("/var/lib/podwire")
    );
    assert_eq!(
        on_host(&mounts, &setup.sysctl_dir),
        PathBuf::from("/proc/sys")
    );
    assert_eq!(
        on_host(&mounts, &setup.cni_bin_dir),
        PathBuf::from("/opt/cni/bin")
    );

    // $(NODE_NAME) and $(PODWIRE_CLUSTER_CIDR) come from the downward API and the ConfigMap.
    let env: BTreeMap<_, _> = main
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value_from.as_ref().unwrap()))
        .collect();
    assert_eq!(agent.kube.node.as_deref(), Some("$(NODE_NAME)"));
    assert_eq!(
        env["NODE_NAME"].field_ref.as_ref().unwrap().field_path,
        "spec.nodeName"
    );
    assert_eq!(setup.cluster_cidr, vec!["$(PODWIRE_CLUSTER_CIDR)"]);
    let key = env["PODWIRE_CLUSTER_CIDR"]
        .config_map_key_ref
        .as_ref()
        .unwrap();
    let cm = o
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(key.name.as_str()))
        .expect("the ConfigMap the env refers to");
    assert_eq!(cm.metadata.namespace.as_deref(), Some(ns));
    let cidrs = &cm.data.as_ref().unwrap()[&key.key];
    // What the kubelet substitutes must pass the agent's own parsing.
    let mut resolved = (*agent).clone();
    resolved.setup.cluster_cidr = cidrs.split(',').map(String::from).collect();
    resolved.config().unwrap();
    resolved
        .setup
        .node_config(vec!["10.244.1.0/24".parse().unwrap()])
        .unwrap();

    // The probes hit the agent's listener: where it listens (its flag, or its default), the
    // node's loopback (hostNetwork), the right paths; the scrape annotations name the port.
    let config = resolved.config().unwrap();
    let listen = config.metrics_addr.expect("the listener is on");
    assert!(listen.ip().is_loopback(), "nothing new exposed: {listen}");
    for (probe, path) in [
        (&main.liveness_probe, "/healthz"),
        (&main.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(listen.port().into())
        );
        assert_eq!(get.path.as_deref(), Some(path));
    }
    let annotations = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], listen.port().to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    // The memory limit stays.
    let limits = main.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["memory"].0, "100Mi");
}

#[test]
fn cleanup_manifest() {
    let o = load("podwire-cleanup.yaml");
    assert_eq!(o.daemonsets.len(), 1);
    let pod = o.daemonsets[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    check_runs_on_every_node(pod);
    let inits = pod.init_containers.as_ref().unwrap();
    let NodeCmd::Teardown(t) = parse_command(&inits[0]) else {
        panic!("first init container must run node teardown")
    };
    check_least_privilege(&inits[0]);
    let mounts = host_mounts(pod, &inits[0]);
    // The same container paths as the install's, so the recorded conflist path is found.
    assert_eq!(
        on_host(&mounts, &t.state_dir),
        PathBuf::from("/var/lib/podwire")
    );
    assert_eq!(on_host(&mounts, &t.sysctl_dir), PathBuf::from("/proc/sys"));
    assert_eq!(
        on_host(&mounts, Path::new("/host/etc/cni/net.d")),
        PathBuf::from("/etc/cni/net.d")
    );
    let NodeCmd::InstallCni(u) = parse_command(&inits[1]) else {
        panic!("second init container must remove the binaries")
    };
    assert!(u.remove);
    check_least_privilege(&inits[1]);
    assert_eq!(
        on_host(&host_mounts(pod, &inits[1]), &u.to),
        PathBuf::from("/opt/cni/bin")
    );
}

#[test]
fn a_misspelt_field_is_caught() {
    let doc: Value = serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "x", "namespcae": "kube-system"}
    });
    let r = std::panic::catch_unwind(|| typed::<ServiceAccount>(&doc));
    assert!(r.is_err(), "a misspelt metadata field went unnoticed");
}
