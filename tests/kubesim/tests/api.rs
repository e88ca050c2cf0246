//! kube's client (`kube::Api<Node>`, from a kubeconfig) against kubesim: reads, writes, the
//! API server's error answers, paged lists.

mod common;

use common::{block_on, client, TestServer};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use kubesim::{NodeBuilder, Options};
use serde_json::json;

fn api_status(e: kube::Error) -> (u16, String) {
    let (code, reason, _) = common::api_status(e);
    (code, reason)
}

#[test]
fn get_list_create_replace_patch_delete_through_kube() {
    let t = TestServer::start(Options::default());
    t.server
        .create_node(
            &NodeBuilder::new("n1")
                .pod_cidr("10.244.1.0/24")
                .pod_cidr("fd00:1::/64")
                .internal_ip("192.168.0.11")
                .build(),
        )
        .unwrap();
    block_on(async {
        let api: Api<Node> = Api::all(client(&t.kubeconfig).await);

        let n1 = api.get("n1").await.unwrap();
        let spec = n1.spec.clone().unwrap();
        assert_eq!(spec.pod_cidrs.unwrap(), ["10.244.1.0/24", "fd00:1::/64"]);
        assert!(n1.metadata.uid.is_some() && n1.metadata.creation_timestamp.is_some());
        let rv1 = n1.metadata.resource_version.clone().unwrap();

        let created = api
            .create(
                &PostParams::default(),
                &NodeBuilder::new("n2").pod_cidr("10.244.2.0/24").build(),
            )
            .await
            .unwrap();
        let rv2 = created.metadata.resource_version.clone().unwrap();
        assert!(rv2.parse::<u64>().unwrap() > rv1.parse::<u64>().unwrap());
        let dup = api
            .create(&PostParams::default(), &created)
            .await
            .unwrap_err();
        assert_eq!(api_status(dup), (409, "AlreadyExists".into()));

        let list = api.list(&ListParams::default()).await.unwrap();
        let names: Vec<_> = list
            .items
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["n1", "n2"]);
        assert_eq!(
            list.metadata.resource_version.as_deref(),
            Some(rv2.as_str())
        );

        // Replace with a stale resourceVersion: 409 Conflict, as the API server.
        let mut stale = n1.clone();
        stale.spec.as_mut().unwrap().pod_cidr = Some("10.9.9.0/24".into());
        let mut fresh = api.get("n1").await.unwrap();
        fresh.spec.as_mut().unwrap().pod_cidrs = Some(vec!["10.244.11.0/24".into()]);
        api.replace("n1", &PostParams::default(), &fresh)
            .await
            .unwrap();
        let conflict = api
            .replace("n1", &PostParams::default(), &stale)
            .await
            .unwrap_err();
        assert_eq!(api_status(conflict), (409, "Conflict".into()));

        // A merge patch on the Node leaves its status alone; on /status it changes it.
        let patch = json!({"metadata": {"annotations": {"a": "b"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.99"}]}});
        let main = api
            .patch("n1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(main.metadata.annotations.as_ref().unwrap()["a"], "b");
        let address = |n: &Node| {
            n.status.as_ref().unwrap().addresses.as_ref().unwrap()[0]
                .address
                .clone()
        };
        assert_eq!(address(&main), "192.168.0.11");
        let status = api
            .patch_status("n1", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(address(&status), "192.168.0.99");
        let strategic = api
            .patch("n1", &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .unwrap_err();
        assert_eq!(api_status(strategic).0, 415);

        let deleted = api.delete("n2", &DeleteParams::default()).await.unwrap();
        let status = deleted
            .right()
            .expect("a Status, as the API server answers for Nodes");
        assert_eq!(status.details.unwrap().name, "n2");
        let gone = api.get("n2").await.unwrap_err();
        assert_eq!(api_status(gone), (404, "NotFound".into()));
        assert_eq!(
            api_status(
                api.delete("n2", &DeleteParams::default())
                    .await
                    .unwrap_err()
            )
            .0,
            404
        );
    });
    assert_eq!(t.server.node_count(), 1);
    let stats = t.server.stats();
    // Every request counted once: 3 GETs, 1 list, 9 writes (failed ones too).
    assert_eq!(
        (stats.gets, stats.lists, stats.writes),
        (3, 1, 9),
        "{stats:?}"
    );
}

#[test]
fn paged_lists_are_one_consistent_snapshot() {
    let t = TestServer::start(Options::default());
    for i in 0..5 {
        t.server
            .create_node(
                &NodeBuilder::new(format!("n{i}"))
                    .pod_cidr(format!("10.1.{i}.0/24"))
                    .build(),
            )
            .unwrap();
    }
    block_on(async {
        let api: Api<Node> = Api::all(client(&t.kubeconfig).await);
        let first = api.list(&ListParams::default().limit(2)).await.unwrap();
        assert_eq!(first.items.len(), 2);
        let token = first.metadata.continue_.clone().expect("more pages");
        assert_eq!(first.metadata.remaining_item_count, Some(3));

        // Changes between pages do not show: the rest is served at the first page's version.
        t.server.delete_node("n3").unwrap();
        t.server
            .modify_node("n4", |n| {
                n.spec.as_mut().unwrap().pod_cidr = Some("10.9.0.0/24".into())
            })
            .unwrap();
        let rest = api
            .list(&ListParams::default().limit(10).continue_token(&token))
            .await
            .unwrap();
        let names: Vec<_> = rest
            .items
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["n2", "n3", "n4"]);
        assert_eq!(
            rest.items[2].spec.as_ref().unwrap().pod_cidr.as_deref(),
            Some("10.1.4.0/24")
        );
        assert_eq!(
            rest.metadata.resource_version,
            first.metadata.resource_version
        );
        assert!(rest.metadata.continue_.is_none());

        // Once that version is compacted away, the token is refused 410 Expired.
        t.server.expire_history();
        let expired = api
            .list(&ListParams::default().limit(2).continue_token(&token))
            .await
            .unwrap_err();
        assert_eq!(api_status(expired), (410, "Expired".into()));
    });
}

#[test]
fn discovery_answers_version_and_unknown_paths_404() {
    let t = TestServer::start(Options::default());
    block_on(async {
        let client = client(&t.kubeconfig).await;
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(
            (version.major.as_str(), version.minor.as_str()),
            ("1", "33")
        );
        // A resource kubesim does not serve (Pods it now does: tests/kubesim/tests/policy.rs).
        let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(client.clone(), "default");
        assert_eq!(
            api_status(maps.list(&ListParams::default()).await.unwrap_err()).0,
            404
        );
        let nodes: Api<Node> = Api::all(client);
        let selected = nodes
            .list(&ListParams::default().labels("a=b"))
            .await
            .unwrap_err();
        assert_eq!(api_status(selected).0, 400);
    });
}
