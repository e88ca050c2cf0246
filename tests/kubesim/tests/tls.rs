//! HTTPS and bearer tokens, for what runs as a pod: kube's in-cluster config is https:// only
//! and presents the service account's token; the ClusterRole decides what it may do.

mod common;

use common::{block_on, client, expected, Mirror};
use k8s_openapi::api::core::v1::Node;
use kube::api::{ListParams, PostParams};
use kube::runtime::watcher;
use kube::Api;
use kubesim::{NodeBuilder, Options, Server};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

struct Files(PathBuf);

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tls_server() -> (Server, Files) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let options = Options {
        tls: true,
        ..Options::default()
    };
    let server = Server::start_with(listener, options).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "kubesim-tls-{}-{}",
        std::process::id(),
        server.local_addr().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    (server, Files(dir))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn status_of(e: kube::Error) -> (u16, String) {
    let (code, _, message) = common::api_status(e);
    (code, message)
}

#[test]
fn https_with_a_token_allowed_to_get_list_and_watch_nodes() {
    let (server, files) = tls_server();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let user = "system:serviceaccount:kube-system:podwire";
    server.grant("agent-token", user, "nodes", &["get", "list", "watch"]);
    server
        .create_node(&NodeBuilder::new("n1").pod_cidr("10.1.0.0/24").build())
        .unwrap();

    // The service account files kubelet would mount, used the way the in-cluster config does
    // (the CA file and the token file), through a kubeconfig naming them.
    let sa = files.0.join("serviceaccount");
    server.write_service_account(&sa, "agent-token").unwrap();
    assert_eq!(
        std::fs::read_to_string(sa.join("namespace")).unwrap(),
        "kube-system"
    );
    let kubeconfig = write(
        &files.0,
        "in-cluster.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
             certificate-authority: {}\nusers:\n- name: u\n  user:\n    tokenFile: {}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
            server.url(),
            sa.join("ca.crt").display(),
            sa.join("token").display()
        ),
    );
    let m = Mirror::start(&kubeconfig, watcher::Config::default());
    m.wait_for_nodes(&expected(&server));
    server
        .create_node(&NodeBuilder::new("n2").pod_cidr("10.2.0.0/24").build())
        .unwrap();
    m.wait_for_nodes(&expected(&server));

    block_on(async {
        let api: Api<Node> = Api::all(client(&kubeconfig).await);
        assert_eq!(api.get("n2").await.unwrap().metadata.name.unwrap(), "n2");
        let (code, message) = status_of(
            api.create(&PostParams::default(), &NodeBuilder::new("n3").build())
                .await
                .unwrap_err(),
        );
        assert_eq!(code, 403);
        assert_eq!(
            message,
            format!(
                "nodes is forbidden: User \"{user}\" cannot create resource \"nodes\" in API \
                 group \"\" at the cluster scope"
            )
        );

        // The server's own kubeconfig (CA inline): no token is 401, a wrong one too.
        let anonymous = write(&files.0, "anonymous.kubeconfig", &server.kubeconfig());
        let api: Api<Node> = Api::all(client(&anonymous).await);
        let (code, _) = status_of(api.list(&ListParams::default()).await.unwrap_err());
        assert_eq!(code, 401);
        let wrong = write(
            &files.0,
            "wrong.kubeconfig",
            &server.kubeconfig_with_token("nope"),
        );
        let api: Api<Node> = Api::all(client(&wrong).await);
        assert_eq!(status_of(api.get("n1").await.unwrap_err()).0, 401);
    });
}

#[test]
fn a_client_that_does_not_trust_the_ca_is_refused() {
    let (server, files) = tls_server();
    let other = {
        let (other, _keep) = tls_server();
        other.ca_pem().unwrap().to_string()
    };
    let kubeconfig = server
        .kubeconfig()
        .replace(&base64_of(server.ca_pem().unwrap()), &base64_of(&other));
    let path = write(&files.0, "untrusted.kubeconfig", &kubeconfig);
    block_on(async {
        let api: Api<Node> = Api::all(client(&path).await);
        let e = api.list(&ListParams::default()).await.unwrap_err();
        assert!(!matches!(e, kube::Error::Api(_)), "{e}");
    });
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
