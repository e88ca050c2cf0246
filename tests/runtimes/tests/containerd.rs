//! podwire under a real kubelet-facing runtime: a private containerd 1.6 driven through the CRI
//! gRPC API, as kubelet would. Each test starts its own containerd and tears it down (by PID) when
//! it ends, pass or fail; one at a time, as they share a bridge name and subnet.

use k8s_cri::v1::{PortMapping, Protocol};
use podwire_runtime_tests::conflist::Network;
use podwire_runtime_tests::containerd::Containerd;
use podwire_runtime_tests::{host, image};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

static ONE_CONTAINERD_AT_A_TIME: Mutex<()> = Mutex::new(());

fn network() -> Network {
    Network::new("podwire-e2e", "pwe2e0", "10.253.0.0/24", "10.253.0.1")
}

fn start() -> (std::sync::MutexGuard<'static, ()>, Containerd) {
    let lock = ONE_CONTAINERD_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    (lock, Containerd::start(network()))
}

fn addr(ip: &str) -> String {
    format!("{ip}/24")
}

#[test]
fn two_pods_get_podwire_ips_reach_each_other_and_the_host_and_leave_nothing() {
    let (_lock, ctrd) = start();
    let cri = ctrd.cri();
    let log_dir = ctrd.layout.pod_logs();

    let a = cri
        .run_pod("pod-a", &log_dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let b = cri
        .run_pod("pod-b", &log_dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let sa = cri.status(&a).unwrap();
    let sb = cri.status(&b).unwrap();
    for s in [&sa, &sb] {
        assert!(s.ready, "{} is not READY: {s:?}", s.name);
        assert!(
            s.ip.starts_with("10.253.0."),
            "{}: PodSandboxStatus IP {:?} is not from podwire's subnet",
            s.name,
            s.ip
        );
    }
    assert_ne!(sa.ip, sb.ip);

    // The IP CRI reports is the one podwire allocated and put on eth0 in the sandbox's netns.
    let allocated: HashSet<String> = host::allocations(&ctrd.layout.ipam_dir(), "podwire-e2e")
        .into_iter()
        .collect();
    assert_eq!(allocated, HashSet::from([sa.ip.clone(), sb.ip.clone()]));
    for s in [&sa, &sb] {
        // The netns containerd made (and passed to podwire as CNI_NETNS) is under its private state.
        let netns = s
            .netns
            .clone()
            .expect("PodSandboxStatus verbose info names the netns");
        assert!(
            std::path::Path::new(&netns).starts_with(ctrd.layout.state()),
            "{netns} is not under the private state dir"
        );
        assert_eq!(
            host::addresses_in(&netns, "eth0"),
            vec![addr(&s.ip)],
            "{}",
            s.name
        );
        let routes = host::ip_json_in(&netns, &["route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], "10.253.0.1", "{}: {routes}", s.name);
    }

    let na = format!("/proc/{}/ns/net", sa.pid.unwrap());
    let nb = format!("/proc/{}/ns/net", sb.pid.unwrap());
    host::ping_from(&na, &sb.ip).unwrap_or_else(|e| panic!("pod-a → pod-b: {e}"));
    host::ping_from(&nb, &sa.ip).unwrap_or_else(|e| panic!("pod-b → pod-a: {e}"));
    host::ping_from_host(&sa.ip).unwrap_or_else(|e| panic!("host → pod-a via the bridge: {e}"));

    // `kubectl run test --image=busybox`: a container in pod-a sees podwire's eth0 and reaches pod-b.
    let test = cri
        .start_container(
            &a,
            "pod-a",
            &log_dir,
            "test",
            image::BUSYBOX_IMAGE,
            &["sleep", "3600"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = cri
        .exec_sync(&test, &["ip", "-4", "addr", "show", "eth0"])
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("inet {}", addr(&sa.ip))), "{out}");
    let (code, out, err) = cri
        .exec_sync(&test, &["ping", "-c", "1", "-W", "3", &sb.ip])
        .unwrap();
    assert_eq!(code, 0, "ping pod-b from the busybox container: {out}{err}");

    assert_eq!(host::bridge_ports("pwe2e0").len(), 2);
    assert_eq!(host::nft_rules_tagged("podwire/podwire-e2e/").len(), 2);

    // containerd (libcni) cached podwire's result under the network's name.
    let entry = host::cache_entry("podwire-e2e", &a, "eth0");
    let raw = std::fs::read(&entry).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
    if let Some(copy) = std::env::var_os("PODWIRE_E2E_CACHE_SAMPLE") {
        std::fs::write(copy, &raw).expect("write the cache sample copy");
    }
    let cached: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["containerId"], a.as_str());
    assert_eq!(cached["networkName"], "podwire-e2e");
    assert_eq!(cached["ifName"], "eth0");
    assert_eq!(cached["result"]["ips"][0]["address"], addr(&sa.ip).as_str());

    stop_and_remove_leave_nothing(&ctrd, &cri, &[&a, &b]);
    assert!(cri.list_pods().unwrap().is_empty());
    assert_no_errors_logged(&ctrd);
    let log = ctrd.plugin_log();
    for id in [&a, &b] {
        let dels: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("DEL container={id} ")))
            .collect();
        assert!(!dels.is_empty(), "no DEL for {id}:\n{log}");
        assert!(
            dels.iter().any(|l| l.contains(" netns= ")),
            "containerd 1.6's second DEL (empty CNI_NETNS) not seen for {id}:\n{log}"
        );
    }
}

#[test]
fn host_ports_tcp_and_udp_reach_the_pod_from_everywhere_and_leave_no_mapping() {
    let (_lock, ctrd) = start();
    let cri = ctrd.cri();
    let log_dir = ctrd.layout.pod_logs();
    let (tcp, udp) = host::free_host_ports();
    let mapping = |proto: Protocol, host: u16, container: i32| PortMapping {
        protocol: proto as i32,
        container_port: container,
        host_port: i32::from(host),
        host_ip: String::new(),
    };
    let a = cri
        .run_pod_with_ports(
            "pod-a",
            &log_dir,
            &[
                mapping(Protocol::Tcp, tcp, 80),
                mapping(Protocol::Udp, udp, 53),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let b = cri
        .run_pod("pod-b", &log_dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let sa = cri.status(&a).unwrap();
    let gateway = network().gateway;

    // A busybox container in pod-a serves HTTP on the container port.
    let web = cri
        .start_container(
            &a,
            "pod-a",
            &log_dir,
            "web",
            image::BUSYBOX_IMAGE,
            &["sh", "-c", &host::httpd_serving("served-by-pod-a", 80)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let direct = format!("{}:80", sa.ip);
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        host::http_get(&direct).is_some()
    });
    assert!(up, "httpd in pod-a never answered on {direct}");
    // UDP: busybox has no UDP server; a socket of the test's own, in pod-a's netns, answers.
    let na = format!("/proc/{}/ns/net", sa.pid.unwrap());
    let server = kernel::Netns::open(&na)
        .unwrap()
        .run(|| std::net::UdpSocket::bind("0.0.0.0:53"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = server.recv_from(&mut buf) {
            let _ = server.send_to(b"udp-pod-a", from);
        }
    });

    for (to, who) in [
        (format!("{gateway}:{tcp}"), "the node (bridge address)"),
        (format!("127.0.0.1:{tcp}"), "the node's 127.0.0.1"),
    ] {
        let body = host::http_get(&to).unwrap_or_default();
        assert!(body.contains("served-by-pod-a"), "{who} via {to}: {body:?}");
    }
    // busybox-static's wget crashes in glibc's resolver; a raw request through nc does not.
    let get = host::http_get_with_nc(&gateway, tcp);
    let client = cri
        .start_container(
            &b,
            "pod-b",
            &log_dir,
            "client",
            image::BUSYBOX_IMAGE,
            &["sleep", "3600"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for (container, who) in [(&client, "another pod"), (&web, "the pod itself (hairpin)")] {
        let (code, out, err) = cri.exec_sync(container, &["sh", "-c", &get]).unwrap();
        assert_eq!(code, 0, "{who}: {get}: {out}{err}");
        assert!(out.contains("served-by-pod-a"), "{who}: {out}");
    }
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.connect(format!("{gateway}:{udp}")).unwrap();
    let answer = (0..3).find_map(|_| {
        sock.send(b"ping").ok()?;
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    assert_eq!(answer.as_deref(), Some("udp-pod-a"), "UDP host port {udp}");
    assert_eq!(
        host::portmap_elements_tagged(&network().portmap_tag_prefix()).len(),
        2,
        "one element per mapping (IPv4-only pod)"
    );

    stop_and_remove_leave_nothing(&ctrd, &cri, &[&a, &b]); // port mappings included
    assert!(
        host::http_get(&format!("{gateway}:{tcp}")).is_none(),
        "host port still open"
    );
    assert_no_errors_logged(&ctrd);
}

#[test]
fn twenty_sandboxes_at_once_get_distinct_ips_and_all_clean_up() {
    let (_lock, ctrd) = start();
    let cri = ctrd.cri();
    let names: Vec<String> = (0..20).map(|i| format!("burst-{i:02}")).collect();
    let started = std::time::Instant::now();
    let results = cri.run_pods_at_once(&names, &ctrd.layout.pod_logs());
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "RunPodSandbox failures: {failed:#?}");
    let ids: Vec<String> = results.into_iter().map(Result::unwrap).collect();
    eprintln!("20 RunPodSandbox at once: {:?}", started.elapsed());

    let mut ips = HashSet::new();
    for id in &ids {
        let s = cri.status(id).unwrap();
        assert!(s.ready, "{s:?}");
        assert!(s.ip.starts_with("10.253.0."), "{s:?}");
        let netns = format!("/proc/{}/ns/net", s.pid.expect("sandbox pid"));
        assert_eq!(
            host::addresses_in(&netns, "eth0"),
            vec![addr(&s.ip)],
            "{}",
            s.name
        );
        assert!(ips.insert(s.ip.clone()), "{} handed out twice", s.ip);
    }
    assert_eq!(ips.len(), 20);
    let allocated: HashSet<String> = host::allocations(&ctrd.layout.ipam_dir(), "podwire-e2e")
        .into_iter()
        .collect();
    assert_eq!(
        allocated, ips,
        "IPAM's allocations are exactly the pods' IPs"
    );
    assert_eq!(host::bridge_ports("pwe2e0").len(), 20);
    assert_eq!(host::cache_entries("podwire-e2e").len(), 20);

    // Tear them down concurrently too: kubelet deletes a node's pods in parallel.
    std::thread::scope(|s| {
        for chunk in ids.chunks(5) {
            let sock = ctrd.socket();
            s.spawn(move || {
                let cri = podwire_runtime_tests::cri::Cri::connect(&sock).unwrap();
                for id in chunk {
                    cri.stop_pod(id).unwrap_or_else(|e| panic!("{e}"));
                    cri.remove_pod(id).unwrap_or_else(|e| panic!("{e}"));
                }
            });
        }
    });
    assert_eq!(
        ctrd.leftovers(),
        Vec::<String>::new(),
        "after removing all 20"
    );
    assert!(cri.list_pods().unwrap().is_empty());
    assert_no_errors_logged(&ctrd);
}

/// podwire logged every call and no error; containerd 1.6 calls DEL twice per pod, the second
/// time without a netns, and both succeed.
/// StopPodSandbox + RemovePodSandbox for each pod, as kubelet does; nothing of the network is left.
fn stop_and_remove_leave_nothing(
    ctrd: &Containerd,
    cri: &podwire_runtime_tests::cri::Cri,
    ids: &[&String],
) {
    for id in ids {
        cri.stop_pod(id).unwrap_or_else(|e| panic!("{e}"));
        cri.remove_pod(id).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        ctrd.leftovers(),
        Vec::<String>::new(),
        "after StopPodSandbox + RemovePodSandbox"
    );
}

fn assert_no_errors_logged(ctrd: &Containerd) {
    let log = ctrd.plugin_log();
    assert!(log.contains(" ADD "), "podwire logged no ADD:\n{log}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|lvl| lvl == "error" || lvl == "warn")
        })
        .collect();
    assert!(
        errors.is_empty(),
        "podwire logged problems:\n{}",
        errors.join("\n")
    );
}
