//! nflog in a throwaway netns: a rule logs to a group, the reader gets the packet with the
//! rule's prefix, addresses, protocol and ports.

mod common;

use common::TestNs;
use kernel::nflog::Nflog;
use std::time::{Duration, Instant};

#[test]
fn a_logged_packet_is_read_with_its_prefix_addresses_and_ports() {
    let ns = TestNs::new();
    assert!(ns.exec(&["ip", "link", "set", "lo", "up"]));
    for cmd in [
        "add table inet pwlogtest",
        "add chain inet pwlogtest out { type filter hook output priority 0 ; }",
        "add rule inet pwlogtest out udp dport 9 log group 77 prefix \"podwire ingress deny x/a \"",
    ] {
        assert!(ns.exec(&["nft", cmd]), "nft {cmd}");
    }
    let log = ns
        .ns
        .run(|| Nflog::bind(77))
        .unwrap()
        .expect("bind group 77");
    ns.ns
        .run(|| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.send_to(b"hello", "127.0.0.1:9").unwrap();
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        let l = log.next(Some(Duration::from_millis(500))).unwrap();
        if !l.is_empty() {
            break l;
        }
        assert!(Instant::now() < deadline, "nothing logged");
    };
    let p = &got[0];
    assert_eq!(p.prefix, "podwire ingress deny x/a ");
    assert_eq!(p.dst, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!((p.proto, p.dport), (17, Some(9)));
    assert!(p.sport.is_some());
}
