//! core/v1 Events: written as kubelet and podwire's agent write them about a Node (create, then
//! a merge patch of `count`), found as `kubectl describe node` finds them (field selectors on
//! the involved object), and refused beyond what the agent's Role grants.

mod common;

use common::{api_status, block_on, client, TestServer};
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Api;
use kubesim::{namespace, Options};
use serde_json::json;

fn event(name: &str, node: &str, reason: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            uid: Some(node.into()),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some("node x: 10.99.0.0/24: outside the cluster CIDR 10.244.0.0/16".into()),
        type_: Some("Warning".into()),
        count: Some(1),
        ..Default::default()
    }
}

#[test]
fn node_events_are_created_counted_and_found_by_their_involved_object() {
    let t = TestServer::start(Options::default());
    t.server.create(&namespace("default", &[])).unwrap();
    block_on(async {
        let events: Api<Event> = Api::namespaced(client(&t.kubeconfig).await, "default");
        let pp = PostParams::default();
        events
            .create(&pp, &event("n1.1", "n1", "PodCIDROutsideCluster"))
            .await
            .unwrap();
        events
            .create(&pp, &event("n2.1", "n2", "PeerNotRoutable"))
            .await
            .unwrap();
        let patch = json!({"count": 2, "lastTimestamp": "2026-01-01T00:00:00Z"});
        let e = events
            .patch("n1.1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(e.count, Some(2));
        assert_eq!(e.reason.as_deref(), Some("PodCIDROutsideCluster"));
        // kubectl describe node n1.
        let lp = ListParams::default().fields(
            "involvedObject.kind=Node,involvedObject.name=n1,involvedObject.uid=n1,\
             involvedObject.namespace=",
        );
        let found = events.list(&lp).await.unwrap().items;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].count, Some(2));
        let lp = ListParams::default().fields("reason=PeerNotRoutable");
        let found = events.list(&lp).await.unwrap().items;
        assert_eq!(found[0].involved_object.name.as_deref(), Some("n2"));
        // A second Event of the same name is refused, as the API server does.
        let e = events
            .create(&pp, &event("n1.1", "n1", "x"))
            .await
            .unwrap_err();
        assert_eq!(api_status(e).0, 409);
        events
            .create(&pp, &event("n1.2", "n1", "PodCIDRConflict"))
            .await
            .unwrap();
    });
    // The library sees them too.
    let all: Vec<Event> = t.server.list(Some("default"));
    assert_eq!(all.len(), 3);
}

#[test]
fn the_agent_may_create_and_patch_events_and_nothing_more() {
    let t = TestServer::start(Options::default());
    t.server.create(&namespace("default", &[])).unwrap();
    t.server.grant(
        "agent",
        "system:serviceaccount:kube-system:podwire",
        "events",
        &["create", "patch"],
    );
    let kubeconfig = t.kubeconfig.with_extension("agent");
    std::fs::write(&kubeconfig, t.server.kubeconfig_with_token("agent")).unwrap();
    block_on(async {
        let events: Api<Event> = Api::namespaced(client(&kubeconfig).await, "default");
        events
            .create(
                &PostParams::default(),
                &event("n1.1", "n1", "PodCIDRConflict"),
            )
            .await
            .unwrap();
        events
            .patch(
                "n1.1",
                &PatchParams::default(),
                &Patch::Merge(&json!({"count": 2})),
            )
            .await
            .unwrap();
        let e = events.list(&ListParams::default()).await.unwrap_err();
        let (code, _, message) = api_status(e);
        assert_eq!(code, 403);
        assert!(
            message.contains("cannot list resource \"events\""),
            "{message}"
        );
        let e = events
            .delete("n1.1", &Default::default())
            .await
            .unwrap_err();
        assert_eq!(api_status(e).0, 403);
    });
    let _ = std::fs::remove_file(&kubeconfig);
}
