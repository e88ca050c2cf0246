//! The `/kubesim/…` admin endpoints: the library's test controls over HTTP, for the binary.

mod common;

use common::{http, TestServer};
use kubesim::Options;
use serde_json::Value;

#[test]
fn admin_endpoints_drive_the_server() {
    let t = TestServer::start(Options::default());
    let addr = t.server.local_addr();
    let stats = |field: &str| -> u64 {
        let (code, body) = http(addr, "GET", "/kubesim/stats");
        assert_eq!(code, 200);
        serde_json::from_str::<Value>(&body).unwrap()[field]
            .as_u64()
            .unwrap()
    };

    assert_eq!(
        http(addr, "POST", "/kubesim/fake-nodes?count=3&start=10").0,
        200
    );
    assert_eq!(t.server.node_count(), 3);
    assert!(t.server.node("fake-00012").is_some());
    assert_eq!(stats("nodes"), 3);

    let (code, body) = http(addr, "GET", "/api/v1/nodes");
    assert_eq!(code, 200);
    assert_eq!(stats("lists"), 1);
    let rv: u64 = serde_json::from_str::<Value>(&body).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Expired history: a watch from that version gets the 410 in the stream, or as the
    // HTTP status once switched.
    assert_eq!(http(addr, "POST", "/kubesim/expire-history").0, 200);
    let watch = format!("/api/v1/nodes?watch=1&resourceVersion={}", rv - 1);
    let (code, body) = http(addr, "GET", &watch);
    assert_eq!(code, 200);
    assert!(
        body.contains("\"type\":\"ERROR\"") && body.contains("\"code\":410"),
        "{body}"
    );
    assert_eq!(http(addr, "POST", "/kubesim/gone?form=status").0, 200);
    assert_eq!(http(addr, "GET", &watch).0, 410);
    assert_eq!(stats("expired"), 2);

    assert_eq!(http(addr, "POST", "/kubesim/history-limit?events=0").0, 200);
    assert_eq!(
        http(addr, "POST", "/kubesim/bookmark-interval?ms=100").0,
        200
    );
    assert_eq!(http(addr, "POST", "/kubesim/close-watches").0, 200);
    assert_eq!(http(addr, "POST", "/kubesim/pause").0, 200);
    assert_eq!(http(addr, "POST", "/kubesim/resume").0, 200);
    assert_eq!(http(addr, "GET", "/healthz"), (200, "ok".to_string()));
    assert_eq!(http(addr, "POST", "/kubesim/nonsense").0, 404);
    assert_eq!(http(addr, "POST", "/kubesim/gone?form=maybe").0, 400);
}
