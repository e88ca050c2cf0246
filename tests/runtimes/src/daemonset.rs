//! deploy/podwire.yaml's DaemonSet run the way kubelet runs it, without a kubelet: the manifest
//! parsed as it ships, its pod spec turned into the CRI calls kubelet makes (host network, init
//! containers to completion first, env resolved from `fieldRef` and `configMapKeyRef`, `$(VAR)`
//! expanded in the command, hostPath volumes, the service account mounted, the security context),
//! against a containerd of the node's own.
//!
//! What kubelet would do and this does not is refused rather than skipped: a manifest that grows
//! a volume type, an env source or a field this does not understand fails the test, so the test
//! never passes on a spec it did not really run.

use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where kubelet mounts a pod's service account token, CA and namespace.
pub const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The Kubernetes objects of a multi-document YAML manifest.
pub struct Manifest {
    pub docs: Vec<Value>,
}

/// One rule of a ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Manifest {
    pub fn parse(yaml: &str) -> Result<Manifest, String> {
        use serde::Deserialize;
        let mut docs = Vec::new();
        for doc in serde_norway::Deserializer::from_str(yaml) {
            let v = Value::deserialize(doc).map_err(|e| format!("YAML: {e}"))?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        Ok(Manifest { docs })
    }

    /// The repository's deploy/podwire.yaml.
    pub fn podwire() -> Manifest {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/podwire.yaml");
        let yaml =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Manifest::parse(&yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The only object of `kind` (panics when there is none or several).
    pub fn one(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self.docs.iter().filter(|d| d["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "the manifest has {} {kind}", found.len());
        found[0]
    }

    /// The DaemonSet's pod template spec.
    pub fn pod_spec(&self) -> &Value {
        &self.one("DaemonSet")["spec"]["template"]["spec"]
    }

    /// Every ConfigMap's data, by name.
    pub fn config_maps(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.docs
            .iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .map(|d| {
                let data = d["data"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    d["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    data,
                )
            })
            .collect()
    }

    /// The rules of the Roles bound to the DaemonSet's service account, with their namespace.
    pub fn service_account_role_rules(&self) -> Vec<(String, PolicyRule)> {
        let sa = self.pod_spec()["serviceAccountName"].as_str().unwrap_or("");
        let mut out = Vec::new();
        for b in self.docs.iter().filter(|d| {
            d["kind"] == "RoleBinding"
                && d["subjects"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["name"] == sa))
        }) {
            let ns = &b["metadata"]["namespace"];
            let role = self
                .docs
                .iter()
                .find(|d| {
                    d["kind"] == "Role"
                        && d["metadata"]["name"] == b["roleRef"]["name"]
                        && &d["metadata"]["namespace"] == ns
                })
                .unwrap_or_else(|| panic!("no Role {} in {ns}", b["roleRef"]["name"]));
            for r in role["rules"].as_array().into_iter().flatten() {
                out.push((
                    ns.as_str().unwrap_or("").to_string(),
                    PolicyRule {
                        api_groups: strings(&r["apiGroups"]),
                        resources: strings(&r["resources"]),
                        verbs: strings(&r["verbs"]),
                    },
                ));
            }
        }
        out
    }

    /// The rules of the ClusterRole bound to the DaemonSet's service account.
    pub fn service_account_rules(&self) -> Vec<PolicyRule> {
        let sa = self.pod_spec()["serviceAccountName"]
            .as_str()
            .expect("the DaemonSet names a service account");
        let binding = self
            .docs
            .iter()
            .find(|d| {
                d["kind"] == "ClusterRoleBinding"
                    && d["subjects"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["name"] == sa))
            })
            .unwrap_or_else(|| panic!("no ClusterRoleBinding for service account {sa}"));
        let role = &binding["roleRef"]["name"];
        let role = self
            .docs
            .iter()
            .find(|d| d["kind"] == "ClusterRole" && &d["metadata"]["name"] == role)
            .unwrap_or_else(|| panic!("no ClusterRole {role}"));
        role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| PolicyRule {
                api_groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                verbs: strings(&r["verbs"]),
            })
            .collect()
    }
}

/// What kubelet knows of the node it runs a pod on.
pub struct Node {
    pub name: String,
    /// hostPath `path` → the directory standing in for it on this node.
    pub host_paths: BTreeMap<String, PathBuf>,
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Holds the pod's service account `token`, `ca.crt`, `namespace`.
    pub service_account_dir: PathBuf,
    /// The API server as the `kubernetes` Service: KUBERNETES_SERVICE_HOST/PORT.
    pub api: SocketAddr,
    pub log_dir: PathBuf,
}

/// A pod spec turned into CRI requests.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub sandbox: PodSandboxConfig,
    /// Run one after the other, each to a zero exit, before `containers`.
    pub init_containers: Vec<ContainerConfig>,
    pub containers: Vec<ContainerConfig>,
    /// terminationGracePeriodSeconds (StopContainer's timeout).
    pub grace_seconds: i64,
    /// The containers' probes, for the test to run as kubelet would.
    pub probes: Vec<HttpProbe>,
}

/// A container's `httpGet` probe (the only handler this harness runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    pub container: String,
    /// `livenessProbe` or `readinessProbe`.
    pub kind: String,
    /// The address kubelet connects to: `host` and `port`.
    pub addr: SocketAddr,
    pub path: String,
}

/// The `livenessProbe` / `readinessProbe` of a container. Only `httpGet` with an explicit
/// `host` (an address) and a numeric `port` is run; anything else is refused.
fn probes(c: &Value) -> Result<Vec<HttpProbe>, String> {
    let name = text(&c["name"], "container name")?;
    let mut out = Vec::new();
    for kind in ["livenessProbe", "readinessProbe"] {
        let p = &c[kind];
        if p.is_null() {
            continue;
        }
        let what = format!("container {name}: {kind}");
        only_known(p, PROBE_FIELDS, &what)?;
        let get = &p["httpGet"];
        only_known(get, &["host", "port", "path", "scheme"], &what)?;
        if !get["scheme"].is_null() && get["scheme"] != "HTTP" {
            return Err(format!(
                "{what}: scheme {} is not implemented",
                get["scheme"]
            ));
        }
        let host: std::net::IpAddr = text(&get["host"], &format!("{what}: host"))?
            .parse()
            .map_err(|e| format!("{what}: host: {e} (an address is needed)"))?;
        let port = get["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("{what}: port: a number is needed, not {}", get["port"]))?;
        out.push(HttpProbe {
            container: name.into(),
            kind: kind.into(),
            addr: SocketAddr::new(host, port),
            path: get["path"].as_str().unwrap_or("/").into(),
        });
    }
    Ok(out)
}

fn text<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("{what}: not a string: {v}"))
}

/// The pod spec fields this understands; anything else in a pod spec is refused.
const POD_FIELDS: &[&str] = &[
    "serviceAccountName",
    "priorityClassName",
    "hostNetwork",
    "tolerations",
    "nodeSelector",
    "terminationGracePeriodSeconds",
    "initContainers",
    "containers",
    "volumes",
];
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "securityContext",
    "resources",
    "volumeMounts",
    "livenessProbe",
    "readinessProbe",
];
const PROBE_FIELDS: &[&str] = &[
    "httpGet",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "successThreshold",
];
const SECURITY_FIELDS: &[&str] = &[
    "runAsUser",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "capabilities",
    "privileged",
];

fn only_known(v: &Value, known: &[&str], what: &str) -> Result<(), String> {
    match v.as_object() {
        Some(m) => match m.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("{what}: {k:?} is not implemented by this harness")),
            None => Ok(()),
        },
        None => Err(format!("{what}: not an object")),
    }
}

impl Node {
    /// The CRI requests for `spec` as pod `pod_name` of namespace `namespace` on this node.
    pub fn plan(&self, spec: &Value, namespace: &str, pod_name: &str) -> Result<PodPlan, String> {
        only_known(spec, POD_FIELDS, "pod spec")?;
        let host_network = spec["hostNetwork"].as_bool().unwrap_or(false);
        let ns_options = NamespaceOption {
            network: if host_network {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            } as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        };
        let uid = format!("uid-{pod_name}");
        let sandbox = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: pod_name.into(),
                uid: uid.clone(),
                namespace: namespace.into(),
                attempt: 0,
            }),
            // With the host's network the pod shares the host's UTS namespace: kubelet sets
            // no hostname (runc refuses one without a private UTS namespace).
            hostname: if host_network {
                String::new()
            } else {
                pod_name.into()
            },
            log_directory: self
                .log_dir
                .join(format!("{namespace}_{pod_name}_{uid}"))
                .to_string_lossy()
                .into_owned(),
            labels: HashMap::from([
                ("io.kubernetes.pod.name".into(), pod_name.into()),
                ("io.kubernetes.pod.namespace".into(), namespace.into()),
            ]),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(ns_options.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let volumes = self.volumes(spec)?;
        let sa_mount = spec["serviceAccountName"].as_str().map(|_| Mount {
            container_path: SERVICE_ACCOUNT_MOUNT.into(),
            host_path: self.service_account_dir.to_string_lossy().into_owned(),
            readonly: true,
            ..Default::default()
        });
        let containers = |key: &str| -> Result<Vec<ContainerConfig>, String> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let mut config = self.container(c, spec, pod_name, namespace, &volumes)?;
                    config.mounts.extend(sa_mount.clone());
                    if let Some(l) = config.linux.as_mut() {
                        if let Some(sc) = l.security_context.as_mut() {
                            sc.namespace_options = Some(ns_options.clone());
                        }
                    }
                    Ok(config)
                })
                .collect()
        };
        let mut all_probes = Vec::new();
        for c in spec["containers"].as_array().into_iter().flatten() {
            all_probes.extend(probes(c)?);
        }
        for c in spec["initContainers"].as_array().into_iter().flatten() {
            if !probes(c)?.is_empty() {
                return Err("an init container with a probe (kubelet refuses it)".into());
            }
        }
        Ok(PodPlan {
            sandbox,
            init_containers: containers("initContainers")?,
            containers: containers("containers")?,
            grace_seconds: spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30),
            probes: all_probes,
        })
    }

    /// Volume name → (directory on this node, whether it may be missing and is made).
    fn volumes(&self, spec: &Value) -> Result<BTreeMap<String, PathBuf>, String> {
        let mut out = BTreeMap::new();
        for v in spec["volumes"].as_array().into_iter().flatten() {
            let name = text(&v["name"], "volume name")?;
            only_known(v, &["name", "hostPath"], &format!("volume {name}"))?;
            let path = text(&v["hostPath"]["path"], &format!("volume {name}: hostPath"))?;
            let dir = self.host_paths.get(path).ok_or_else(|| {
                format!("volume {name}: no stand-in for the node's {path} was given")
            })?;
            match v["hostPath"]["type"].as_str().unwrap_or("") {
                "DirectoryOrCreate" => std::fs::create_dir_all(dir)
                    .map_err(|e| format!("volume {name}: {}: {e}", dir.display()))?,
                "Directory" if !dir.is_dir() => {
                    return Err(format!(
                        "volume {name}: {} is not a directory",
                        dir.display()
                    ))
                }
                "Directory" | "" => {}
                other => return Err(format!("volume {name}: hostPath type {other}")),
            }
            out.insert(name.to_string(), dir.clone());
        }
        Ok(out)
    }

    fn container(
        &self,
        c: &Value,
        spec: &Value,
        pod_name: &str,
        namespace: &str,
        volumes: &BTreeMap<String, PathBuf>,
    ) -> Result<ContainerConfig, String> {
        let name = text(&c["name"], "container name")?;
        only_known(c, CONTAINER_FIELDS, &format!("container {name}"))?;
        let what = |s: &str| format!("container {name}: {s}");
        // Env in order, each able to use the ones before it; the Service's variables first.
        let mut env: Vec<(String, String)> = vec![
            ("KUBERNETES_SERVICE_HOST".into(), self.api.ip().to_string()),
            (
                "KUBERNETES_SERVICE_PORT".into(),
                self.api.port().to_string(),
            ),
        ];
        for e in c["env"].as_array().into_iter().flatten() {
            let key = text(&e["name"], &what("env name"))?.to_string();
            let value = if let Some(v) = e.get("value") {
                expand(text(v, &what(&key))?, &env)
            } else if let Some(f) = e["valueFrom"].get("fieldRef") {
                match text(&f["fieldPath"], &what(&key))? {
                    "spec.nodeName" => self.name.clone(),
                    "metadata.name" => pod_name.into(),
                    "metadata.namespace" => namespace.into(),
                    "spec.serviceAccountName" => {
                        spec["serviceAccountName"].as_str().unwrap_or("").into()
                    }
                    other => return Err(what(&format!("fieldRef {other}"))),
                }
            } else if let Some(r) = e["valueFrom"].get("configMapKeyRef") {
                let (cm, k) = (
                    text(&r["name"], &what(&key))?,
                    text(&r["key"], &what(&key))?,
                );
                self.config_maps
                    .get(cm)
                    .and_then(|d| d.get(k))
                    .cloned()
                    .ok_or_else(|| what(&format!("configMapKeyRef {cm}/{k}: no such key")))?
            } else {
                return Err(what(&format!("env {key}: unsupported source {e}")));
            };
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
        let expand_all = |key: &str| -> Result<Vec<String>, String> {
            c[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| text(a, &what(key)).map(|a| expand(a, &env)))
                .collect()
        };
        let mut mounts = Vec::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vol = text(&m["name"], &what("volumeMount"))?;
            only_known(m, &["name", "mountPath", "readOnly"], &what(vol))?;
            let dir = volumes
                .get(vol)
                .ok_or_else(|| what(&format!("volumeMount {vol}: no such volume")))?;
            mounts.push(Mount {
                container_path: text(&m["mountPath"], &what(vol))?.into(),
                host_path: dir.to_string_lossy().into_owned(),
                readonly: m["readOnly"].as_bool().unwrap_or(false),
                ..Default::default()
            });
        }
        let sc = &c["securityContext"];
        if !sc.is_null() {
            only_known(sc, SECURITY_FIELDS, &what("securityContext"))?;
        }
        let security = LinuxContainerSecurityContext {
            capabilities: Some(Capability {
                add_capabilities: strings(&sc["capabilities"]["add"]),
                drop_capabilities: strings(&sc["capabilities"]["drop"]),
                ..Default::default()
            }),
            privileged: sc["privileged"].as_bool().unwrap_or(false),
            run_as_user: sc["runAsUser"].as_i64().map(|value| Int64Value { value }),
            readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
            no_new_privs: sc["allowPrivilegeEscalation"] == false,
            ..Default::default()
        };
        Ok(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: text(&c["image"], &what("image"))?.into(),
                ..Default::default()
            }),
            command: expand_all("command")?,
            args: expand_all("args")?,
            envs: env
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            mounts,
            log_path: format!("{name}/0.log"),
            linux: Some(LinuxContainerConfig {
                security_context: Some(security),
                resources: Some(resources(&c["resources"]).map_err(|e| what(&e))?),
            }),
            ..Default::default()
        })
    }
}

/// A memory quantity in bytes: `100Mi`, `20M`, `1Gi`, `512`.
pub fn quantity(q: &str) -> Result<i64, String> {
    let units: [(&str, i64); 7] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("", 1),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(u, f)| q.strip_suffix(u).map(|n| (n, *f)))
        .expect("the empty suffix always matches");
    let n: i64 = number
        .parse()
        .map_err(|_| format!("resource quantity {q:?} is not understood"))?;
    Ok(n * unit)
}

/// kubelet's cgroup settings for a container's `resources`: the memory limit as is, CPU
/// shares from the CPU request (1024 per core, at least 2), the CPU limit as a CFS quota over
/// 100 ms.
fn resources(r: &Value) -> Result<LinuxContainerResources, String> {
    let get = |kind: &str, what: &str| -> Result<Option<i64>, String> {
        r[kind][what].as_str().map(quantity).transpose()
    };
    let millicores = |kind: &str| -> Result<Option<i64>, String> {
        Ok(r[kind]["cpu"].as_str().map(|c| match c.strip_suffix('m') {
            Some(m) => m.parse::<i64>().map_err(|_| format!("cpu {c:?}")),
            None => c
                .parse::<i64>()
                .map(|cores| cores * 1000)
                .map_err(|_| format!("cpu {c:?}")),
        }))
        .and_then(Option::transpose)
    };
    let mut out = LinuxContainerResources {
        cpu_shares: 2,
        ..Default::default()
    };
    if let Some(m) = millicores("requests")? {
        out.cpu_shares = (m * 1024 / 1000).max(2);
    }
    if let Some(m) = millicores("limits")? {
        out.cpu_period = 100_000;
        out.cpu_quota = (m * 100_000 / 1000).max(1_000);
    }
    if let Some(bytes) = get("limits", "memory")? {
        out.memory_limit_in_bytes = bytes;
    }
    Ok(out)
}

/// Kubernetes' `$(VAR)` expansion in command, args and env values: a defined variable is
/// replaced, an undefined one stays as written, `$$` is a literal `$`.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_expand_as_kubelet_does() {
        let e = env(&[("NODE_NAME", "n1"), ("X", "a$b")]);
        assert_eq!(expand("$(NODE_NAME)", &e), "n1");
        assert_eq!(expand("--node=$(NODE_NAME)!", &e), "--node=n1!");
        assert_eq!(expand("$(MISSING)", &e), "$(MISSING)");
        assert_eq!(expand("$$(NODE_NAME)", &e), "$(NODE_NAME)");
        assert_eq!(expand("$(X)", &e), "a$b");
        assert_eq!(expand("cost $5", &e), "cost $5");
    }

    fn node() -> Node {
        let base = std::env::temp_dir().join(format!("podwire-ds-unit-{}", std::process::id()));
        Node {
            name: "n1".into(),
            host_paths: [
                "/opt/cni/bin",
                "/etc/cni/net.d",
                "/var/lib/podwire",
                "/var/lib/cni",
                "/proc/sys",
            ]
            .iter()
            .map(|p| (p.to_string(), base.join(p.trim_start_matches('/'))))
            .collect(),
            config_maps: BTreeMap::from([(
                "podwire-config".to_string(),
                BTreeMap::from([("cluster-cidr".to_string(), "10.9.0.0/16".to_string())]),
            )]),
            service_account_dir: base.join("sa"),
            api: "10.0.0.1:6443".parse().unwrap(),
            log_dir: base.join("logs"),
        }
    }

    #[test]
    fn the_manifests_daemonset_becomes_kubelets_cri_requests() {
        let m = Manifest::podwire();
        let mut n = node();
        // /proc/sys is `type: Directory`: it must exist.
        n.host_paths.insert("/proc/sys".into(), "/proc/sys".into());
        let plan = n.plan(m.pod_spec(), "kube-system", "podwire-x").unwrap();
        let _ = std::fs::remove_dir_all(n.service_account_dir.parent().unwrap());
        let sec = plan
            .sandbox
            .linux
            .as_ref()
            .unwrap()
            .security_context
            .as_ref();
        assert_eq!(
            sec.unwrap().namespace_options.as_ref().unwrap().network,
            NamespaceMode::Node as i32
        );
        assert_eq!(plan.init_containers.len(), 1);
        assert_eq!(plan.containers.len(), 1);
        let main = &plan.containers[0];
        let i = main.command.iter().position(|a| a == "--node").unwrap();
        assert_eq!(main.command[i + 1], "n1");
        let i = main
            .command
            .iter()
            .position(|a| a == "--cluster-cidr")
            .unwrap();
        assert_eq!(main.command[i + 1], "10.9.0.0/16");
        let env: BTreeMap<_, _> = main
            .envs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.0.0.1");
        assert_eq!(env["KUBERNETES_SERVICE_PORT"], "6443");
        let sc = main
            .linux
            .as_ref()
            .unwrap()
            .security_context
            .as_ref()
            .unwrap();
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.add_capabilities, vec!["NET_ADMIN", "NET_RAW"]);
        assert_eq!(caps.drop_capabilities, vec!["ALL"]);
        assert!(sc.readonly_rootfs && sc.no_new_privs && !sc.privileged);
        assert_eq!(sc.run_as_user.as_ref().unwrap().value, 0);
        assert!(main
            .mounts
            .iter()
            .any(|m| m.container_path == SERVICE_ACCOUNT_MOUNT && m.readonly));
        let bin = main
            .mounts
            .iter()
            .find(|m| m.container_path == "/host/opt/cni/bin")
            .unwrap();
        assert!(bin.readonly);
        assert_eq!(plan.grace_seconds, 10);
        let r = main.linux.as_ref().unwrap().resources.as_ref().unwrap();
        assert_eq!(r.memory_limit_in_bytes, 100 << 20);
        assert_eq!(r.cpu_shares, 10);
        let probes: Vec<(&str, String, &str)> = plan
            .probes
            .iter()
            .map(|p| (p.kind.as_str(), p.addr.to_string(), p.path.as_str()))
            .collect();
        assert_eq!(
            probes,
            vec![
                ("livenessProbe", "127.0.0.1:9799".into(), "/healthz"),
                ("readinessProbe", "127.0.0.1:9799".into(), "/readyz"),
            ]
        );
    }

    #[test]
    fn quantities_read_as_the_api_does() {
        assert_eq!(quantity("100Mi").unwrap(), 100 << 20);
        assert_eq!(quantity("20M").unwrap(), 20_000_000);
        assert_eq!(quantity("1Gi").unwrap(), 1 << 30);
        assert_eq!(quantity("512").unwrap(), 512);
        assert!(quantity("lots").is_err());
    }

    #[test]
    fn what_the_harness_cannot_run_is_refused() {
        let n = node();
        let spec: Value = serde_json::json!({
            "containers": [{"name": "c", "image": "i", "envFrom": []}],
        });
        assert!(n.plan(&spec, "ns", "p").unwrap_err().contains("envFrom"));
        let spec: Value = serde_json::json!({
            "volumes": [{"name": "v", "emptyDir": {}}],
            "containers": [],
        });
        assert!(n.plan(&spec, "ns", "p").unwrap_err().contains("emptyDir"));
        let spec: Value = serde_json::json!({
            "containers": [{"name": "c", "image": "i",
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}]}],
        });
        assert!(n.plan(&spec, "ns", "p").unwrap_err().contains("x/y"));
        for probe in [
            serde_json::json!({"exec": {"command": ["true"]}}),
            serde_json::json!({"httpGet": {"port": 80}}),
            serde_json::json!({"httpGet": {"host": "127.0.0.1", "port": "http"}}),
            serde_json::json!({"httpGet": {"host": "127.0.0.1", "port": 80, "scheme": "HTTPS"}}),
        ] {
            let spec = serde_json::json!({
                "containers": [{"name": "c", "image": "i", "livenessProbe": probe}],
            });
            assert!(
                n.plan(&spec, "ns", "p")
                    .unwrap_err()
                    .contains("livenessProbe"),
                "{probe}"
            );
        }
    }
}
