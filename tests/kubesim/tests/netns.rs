//! The server on a listener bound inside a network namespace: the socket keeps that namespace,
//! so the server answers there only, whichever thread runs it.

mod common;

use common::{expected, Mirror};
use kube::runtime::watcher;
use kubesim::{NodeBuilder, Server};
use std::net::{TcpListener, TcpStream};
use testkit::TestNs;

#[test]
fn a_listener_bound_in_a_netns_serves_that_netns_only() {
    let ns = TestNs::new("ksim");
    let listener = ns
        .ns
        .run(|| TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let server = Server::start(listener).unwrap();
    let kubeconfig = std::env::temp_dir().join(format!("{}.kubeconfig", ns.name));
    server.write_kubeconfig(&kubeconfig).unwrap();
    server
        .create_node(&NodeBuilder::new("n1").pod_cidr("10.1.0.0/24").build())
        .unwrap();

    // Not on the root namespace's loopback (nothing listens on that port there).
    assert!(TcpStream::connect(server.local_addr()).is_err());

    let m = Mirror::start_in(
        Some(std::path::Path::new(&ns.path())),
        &kubeconfig,
        watcher::Config::default(),
    );
    m.wait_for_nodes(&expected(&server));
    server
        .create_node(&NodeBuilder::new("n2").pod_cidr("10.2.0.0/24").build())
        .unwrap();
    m.wait_for_nodes(&expected(&server));
    drop(m);
    drop(server);
    std::fs::remove_file(&kubeconfig).unwrap();
}

#[test]
fn one_server_serves_each_node_namespace_on_its_own_loopback() {
    let nodes = [TestNs::new("ksim"), TestNs::new("ksim")];
    let bind = |ns: &TestNs| {
        ns.ns
            .run(|| TcpListener::bind("127.0.0.1:6443"))
            .unwrap()
            .unwrap()
    };
    // The same fixed address in each: every namespace has a loopback of its own.
    let server = Server::start(bind(&nodes[0])).unwrap();
    let second = server.add_listener(bind(&nodes[1])).unwrap();
    assert_eq!(second, server.local_addr());
    server
        .create_node(&NodeBuilder::new("n1").pod_cidr("10.1.0.0/24").build())
        .unwrap();
    let mirrors: Vec<_> = nodes
        .iter()
        .map(|ns| {
            let kubeconfig = std::env::temp_dir().join(format!("{}.kubeconfig", ns.name));
            std::fs::write(&kubeconfig, server.kubeconfig_at(second)).unwrap();
            let m = Mirror::start_in(
                Some(std::path::Path::new(&ns.path())),
                &kubeconfig,
                watcher::Config::default(),
            );
            (m, kubeconfig)
        })
        .collect();
    server
        .create_node(&NodeBuilder::new("n2").pod_cidr("10.2.0.0/24").build())
        .unwrap();
    for (m, _) in &mirrors {
        m.wait_for_nodes(&expected(&server));
    }
    assert!(server.wait_for_watches(2, std::time::Duration::from_secs(5)));
    for (m, kubeconfig) in mirrors {
        drop(m);
        std::fs::remove_file(kubeconfig).unwrap();
    }
}
