//! Reading the podCIDR through kube's client against a stand-in API server (plain HTTP on
//! localhost, a kubeconfig pointing at it): it waits while the node has none, stops at once on
//! errors waiting cannot fix.
#![cfg(feature = "kubernetes")]

use node::kubernetes::{fetch_pod_cidrs, Fetch};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serves `answers` in turn (status, body) to GETs, the last one forever; records the paths.
fn api_server(answers: Vec<(u16, Value)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            log.lock()
                .unwrap()
                .push(request_line.split(' ').nth(1).unwrap_or("").to_string());
            let (status, body) = &answers[i.min(answers.len() - 1)];
            let body = body.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

fn kubeconfig(url: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "podwire-node-kubeconfig-{}-{}",
        std::process::id(),
        url.rsplit(':').next().unwrap()
    ));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {url}\n\
         users:\n- name: t\n  user:\n    token: test\ncontexts:\n- name: t\n  context:\n    \
         cluster: t\n    user: t\ncurrent-context: t\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn node(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1"}, "spec": spec})
}

fn fetch(url: &str) -> Fetch {
    let mut f = Fetch::new("w1");
    f.kubeconfig = Some(kubeconfig(url));
    f.first_delay = Duration::from_millis(10);
    f.max_delay = Duration::from_millis(40);
    f.wait = Some(Duration::from_secs(20));
    f
}

#[test]
fn waits_until_the_pod_cidr_is_assigned() {
    let (url, seen) = api_server(vec![
        (200, node(json!({}))),
        (
            500,
            json!({"kind": "Status", "code": 500, "message": "etcd is busy"}),
        ),
        (200, node(json!({"providerID": "x"}))),
        (
            200,
            node(json!({"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24", "fd00:7::/64"]})),
        ),
    ]);
    let mut waits = Vec::new();
    let cidrs = fetch_pod_cidrs(&fetch(&url), &mut |m| waits.push(m.to_string())).unwrap();
    let cidrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
    assert_eq!(cidrs, vec!["10.244.7.0/24", "fd00:7::/64"]);
    assert_eq!(waits.len(), 3, "{waits:?}");
    assert!(waits[0].contains("no podCIDR yet"), "{waits:?}");
    assert!(waits[1].contains("cannot read node w1 yet"), "{waits:?}");
    assert!(seen.lock().unwrap().iter().all(|p| p == "/api/v1/nodes/w1"));
}

#[test]
fn gives_up_at_the_deadline_and_at_once_when_waiting_cannot_help() {
    let (url, _) = api_server(vec![(200, node(json!({})))]);
    let mut f = fetch(&url);
    f.wait = Some(Duration::from_millis(100));
    let e = fetch_pod_cidrs(&f, &mut |_| {}).unwrap_err();
    assert_eq!(e.code.number(), 11, "{e}");
    assert!(
        e.msg.contains("no podCIDR yet") && e.msg.contains("gave up"),
        "{e}"
    );

    for (code, needle) in [(404, "kubectl get nodes"), (403, "ClusterRole")] {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": code, "message": "nope", "reason": "X"});
        let (url, seen) = api_server(vec![(code, status)]);
        let mut f = fetch(&url);
        f.wait = None;
        let e = fetch_pod_cidrs(&f, &mut |_| {}).unwrap_err();
        assert!(e.msg.contains(needle), "{code}: {e}");
        assert_eq!(seen.lock().unwrap().len(), 1, "{code} was retried");
    }
}
