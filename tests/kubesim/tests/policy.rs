//! What a NetworkPolicy agent watches: Pods (of its node, by field selector), Namespaces and
//! NetworkPolicies, through kube's client and `kube::runtime::watcher`, unmodified.

mod common;

use common::{api_status, block_on, client, Mirror, TestServer};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use kubesim::{namespace, Options, PodBuilder, Server};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn key<K: Resource>(o: &K) -> String {
    format!(
        "{}/{}",
        o.meta().namespace.clone().unwrap_or_default(),
        o.meta().name.clone().unwrap_or_default()
    )
}

/// Mirrors every K with `config`, keyed `ns/name`, summarized by `summary`.
fn watch<K>(
    kubeconfig: &std::path::Path,
    config: watcher::Config,
    describe: fn(&K) -> (String, String),
) -> Mirror
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    Mirror::of::<K>(None, kubeconfig, config, describe)
}

/// Waits until the mirror holds exactly `want` (key -> summary).
fn wait_for(m: &Mirror, want: &[(&str, &str)]) {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.wait("the objects", Duration::from_secs(10), |s| s.nodes == want);
}

/// The log without the summaries: "apply KEY", "delete KEY"…
fn events(m: &Mirror) -> Vec<String> {
    m.log()
        .iter()
        .map(|l| l.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn pod_summary(p: &Pod) -> (String, String) {
    let ips: Vec<String> = p
        .status
        .iter()
        .flat_map(|s| s.pod_ips.iter().flatten())
        .map(|i| i.ip.clone())
        .collect();
    let labels: Vec<String> = p.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
    (key(p), format!("{} [{}]", ips.join(","), labels.join(",")))
}

fn pod(ns: &str, name: &str, node: &str, ip: &str) -> Pod {
    PodBuilder::new(ns, name)
        .node(node)
        .label("pod", name)
        .port("serve-80-tcp", 80, "TCP")
        .ip(ip)
        .build()
}

fn namespaces(server: &Server, names: &[&str]) {
    for n in names {
        server.create(&namespace(n, &[("ns", n)])).unwrap();
    }
}

fn wait_for_watches(server: &Server, n: u64) {
    assert!(server.wait_for_watches(n, Duration::from_secs(5)));
}

#[test]
fn a_node_watches_its_own_pods_by_field_selector() {
    let t = TestServer::start(Options::default());
    namespaces(&t.server, &["x", "y"]);
    t.server.create(&pod("x", "a", "n1", "10.244.1.5")).unwrap();
    t.server.create(&pod("y", "a", "n2", "10.244.2.5")).unwrap();
    let w = watch(
        &t.kubeconfig,
        watcher::Config::default().fields("spec.nodeName=n1"),
        pod_summary,
    );
    wait_for(&w, &[("x/a", "10.244.1.5 [pod=a]")]);
    wait_for_watches(&t.server, 1);

    // New pods of n1 and of n2, a label change, a pod scheduled later, a deletion.
    t.server.create(&pod("y", "b", "n1", "10.244.1.6")).unwrap();
    t.server.create(&pod("x", "b", "n2", "10.244.2.6")).unwrap();
    t.server
        .modify::<Pod>("x", "a", |p| {
            p.labels_mut().insert("role".into(), "web".into());
        })
        .unwrap();
    let pending = PodBuilder::new("x", "c").label("pod", "c").build();
    t.server.create(&pending).unwrap();
    t.server
        .modify::<Pod>("x", "c", |p| {
            p.spec.as_mut().unwrap().node_name = Some("n1".into());
        })
        .unwrap();
    t.server.delete::<Pod>("y", "b").unwrap();
    wait_for(
        &w,
        &[("x/a", "10.244.1.5 [pod=a,role=web]"), ("x/c", " [pod=c]")],
    );
    assert_eq!(
        events(&w),
        [
            "init",
            "init-done",
            "apply y/b",
            "apply x/a",
            "apply x/c",
            "delete y/b"
        ],
        "n2's pods never show; x/c shows once bound to n1"
    );
    // kubelet posts the pod's addresses through the status subresource.
    block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&t.kubeconfig).await, "x");
        let status = json!({"status": {"podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}]}});
        pods.patch_status("c", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        // An update of the pod keeps the status (the status subresource owns it).
        let mut c = pods.get("c").await.unwrap();
        c.status = None;
        c.labels_mut().insert("ready".into(), "yes".into());
        let c = pods.replace("c", &PostParams::default(), &c).await.unwrap();
        assert_eq!(c.status.unwrap().pod_ip.as_deref(), Some("10.244.1.7"));
    });
    wait_for(
        &w,
        &[
            ("x/a", "10.244.1.5 [pod=a,role=web]"),
            ("x/c", "10.244.1.7,fd00::7 [pod=c,ready=yes]"),
        ],
    );
    let requests = t.server.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /api/v1/pods?")
            && r.contains("fieldSelector=spec.nodeName%3Dn1")
            && r.contains("watch=true")),
        "{requests:?}"
    );
}

#[test]
fn namespaces_are_watched_with_their_name_label_and_take_their_objects_when_deleted() {
    let t = TestServer::start(Options::default());
    namespaces(&t.server, &["x"]);
    let summary = |n: &Namespace| {
        let labels: Vec<String> = n.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
        (key(n), labels.join(","))
    };
    let ns_watch = watch(&t.kubeconfig, watcher::Config::default(), summary);
    let pod_watch = watch(&t.kubeconfig, watcher::Config::default(), pod_summary);
    wait_for(&ns_watch, &[("/x", "kubernetes.io/metadata.name=x,ns=x")]);
    wait_for_watches(&t.server, 2);
    namespaces(&t.server, &["y"]);
    t.server.create(&pod("y", "a", "n1", "10.244.1.5")).unwrap();
    // The name label cannot be taken away or changed.
    t.server
        .modify::<Namespace>("", "y", |n| {
            let labels = n.labels_mut();
            labels.insert("kubernetes.io/metadata.name".into(), "other".into());
            labels.insert("team".into(), "blue".into());
        })
        .unwrap();
    wait_for(
        &ns_watch,
        &[
            ("/x", "kubernetes.io/metadata.name=x,ns=x"),
            ("/y", "kubernetes.io/metadata.name=y,ns=y,team=blue"),
        ],
    );
    wait_for(&pod_watch, &[("y/a", "10.244.1.5 [pod=a]")]);
    t.server.delete::<Namespace>("", "y").unwrap();
    wait_for(&ns_watch, &[("/x", "kubernetes.io/metadata.name=x,ns=x")]);
    wait_for(&pod_watch, &[]);
    // A pod in a namespace that does not exist is refused, as the API server does.
    let e = t
        .server
        .create(&pod("gone", "a", "n1", "10.244.1.9"))
        .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"gone\" not found")
    );
}

fn policy(ns: &str, name: &str, spec: serde_json::Value) -> NetworkPolicy {
    serde_json::from_value(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"namespace": ns, "name": name}, "spec": spec}),
    )
    .unwrap()
}

#[test]
fn network_policies_are_listed_and_watched_in_every_namespace() {
    let t = TestServer::start(Options::default());
    namespaces(&t.server, &["x", "y"]);
    t.server
        .create(&policy("x", "deny", json!({"podSelector": {}})))
        .unwrap();
    let summary = |p: &NetworkPolicy| {
        let ingress = serde_json::to_string(&p.spec.as_ref().unwrap().ingress).unwrap();
        (key(p), ingress)
    };
    let w = watch(&t.kubeconfig, watcher::Config::default(), summary);
    wait_for(&w, &[("x/deny", "null")]);
    wait_for_watches(&t.server, 1);
    block_on(async {
        let c = client(&t.kubeconfig).await;
        let in_y: Api<NetworkPolicy> = Api::namespaced(c.clone(), "y");
        let allow = policy(
            "y",
            "allow-80",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}),
        );
        let created = in_y.create(&PostParams::default(), &allow).await.unwrap();
        assert_eq!(created.metadata.namespace.as_deref(), Some("y"));
        assert!(created.metadata.uid.is_some());
        // Created in the wrong namespace's URL: refused.
        let in_x: Api<NetworkPolicy> = Api::namespaced(c.clone(), "x");
        let e = in_x
            .create(&PostParams::default(), &allow)
            .await
            .unwrap_err();
        assert_eq!(api_status(e).0, 400);
        // Replaced, patched, listed per namespace and across them, deleted.
        let mut p = in_y.get("allow-80").await.unwrap();
        p.spec.as_mut().unwrap().ingress = Some(vec![]);
        in_y.replace("allow-80", &PostParams::default(), &p)
            .await
            .unwrap();
        let patch = json!({"spec": {"policyTypes": ["Ingress", "Egress"]}});
        in_x.patch("deny", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let names = |l: kube::core::ObjectList<NetworkPolicy>| -> Vec<String> {
            l.items.iter().map(key).collect()
        };
        let all: Api<NetworkPolicy> = Api::all(c.clone());
        assert_eq!(
            names(all.list(&ListParams::default()).await.unwrap()),
            ["x/deny", "y/allow-80"]
        );
        assert_eq!(
            names(in_y.list(&ListParams::default()).await.unwrap()),
            ["y/allow-80"]
        );
        let list = all.list(&ListParams::default().limit(1)).await.unwrap();
        assert_eq!(names(list.clone()), ["x/deny"]);
        let token = list.metadata.continue_.unwrap();
        let rest = all
            .list(&ListParams::default().limit(1).continue_token(&token))
            .await
            .unwrap();
        assert_eq!(names(rest), ["y/allow-80"]);
        in_x.delete("deny", &DeleteParams::default()).await.unwrap();
        let e = in_x.get("deny").await.unwrap_err();
        let (code, _, message) = api_status(e);
        assert_eq!(
            (code, message.as_str()),
            (404, "networkpolicies.networking.k8s.io \"deny\" not found")
        );
    });
    wait_for(&w, &[("y/allow-80", "[]")]);
    assert_eq!(
        events(&w),
        [
            "init",
            "init-done",
            "apply y/allow-80",
            "apply y/allow-80",
            "apply x/deny",
            "delete x/deny"
        ]
    );
    let requests = t.server.requests();
    assert!(
        requests.contains(&"GET /apis/networking.k8s.io/v1/networkpolicies?&limit=500".to_string()),
        "{requests:?}"
    );
}

#[test]
fn the_agent_role_may_watch_pods_namespaces_and_policies_and_nothing_more() {
    let t = TestServer::start(Options::default());
    namespaces(&t.server, &["x"]);
    for resource in ["pods", "namespaces", "networkpolicies"] {
        t.server.grant(
            "agent",
            "system:serviceaccount:kube-system:podwire",
            resource,
            &["get", "list", "watch"],
        );
    }
    let kubeconfig = t.kubeconfig.with_extension("agent");
    std::fs::write(&kubeconfig, t.server.kubeconfig_with_token("agent")).unwrap();
    let w = watch(&kubeconfig, watcher::Config::default(), pod_summary);
    t.server.create(&pod("x", "a", "n1", "10.244.1.5")).unwrap();
    wait_for(&w, &[("x/a", "10.244.1.5 [pod=a]")]);
    block_on(async {
        let c = client(&kubeconfig).await;
        let policies: Api<NetworkPolicy> = Api::namespaced(c.clone(), "x");
        assert!(policies
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty());
        let e = policies
            .create(&PostParams::default(), &policy("x", "p", json!({})))
            .await
            .unwrap_err();
        let (code, _, message) = api_status(e);
        assert_eq!(code, 403);
        assert_eq!(
            message,
            "networkpolicies is forbidden: User \"system:serviceaccount:kube-system:podwire\" \
             cannot create resource \"networkpolicies\" in API group \"networking.k8s.io\" in \
             the namespace \"x\""
        );
        let pods: Api<Pod> = Api::namespaced(c, "x");
        let e = pods
            .patch_status("a", &PatchParams::default(), &Patch::Merge(&json!({})))
            .await
            .unwrap_err();
        assert_eq!(api_status(e).0, 403);
    });
    let _ = std::fs::remove_file(&kubeconfig);
}
