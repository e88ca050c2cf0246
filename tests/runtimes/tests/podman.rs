//! podwire under Podman 4.3 (CNI backend), a second real CNI client: `podman run --network`
//! gets a podwire address, containers ping each other, `podman rm` leaves nothing behind.

use podwire_runtime_tests::conflist::Network;
use podwire_runtime_tests::host;
use podwire_runtime_tests::image::BUSYBOX_IMAGE;
use podwire_runtime_tests::podman::Podman;
use std::sync::Mutex;

/// One Podman at a time: they share the host's side paths (libcni's cache dir, the blob-info
/// cache) and its baseline, which a finishing run restores.
static ONE_PODMAN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_PODMAN_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[test]
fn podman_containers_get_podwire_ips_ping_each_other_and_rm_leaves_nothing() {
    let _one = one_at_a_time();
    let pm = Podman::new(Network::new(
        "podwire-podman",
        "pwpod0",
        "10.253.1.0/24",
        "10.253.1.1",
    ));
    // Podman (CNI 1.0.0 at most) lists the podwire network from its private config dir.
    let nets = pm
        .podman(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"])
        .unwrap();
    assert!(
        nets.lines().any(|l| l == "podwire-podman podwire"),
        "{nets}"
    );

    let a = pm.run_sleeper("pw-a").unwrap_or_else(|e| panic!("{e}"));
    let b = pm.run_sleeper("pw-b").unwrap_or_else(|e| panic!("{e}"));
    let ip_a = pm.ip_of("pw-a").unwrap_or_else(|e| panic!("{e}"));
    let ip_b = pm.ip_of("pw-b").unwrap_or_else(|e| panic!("{e}"));
    for ip in [&ip_a, &ip_b] {
        assert!(
            ip.starts_with("10.253.1."),
            "Podman reports {ip:?}, not a podwire address"
        );
    }
    assert_ne!(ip_a, ip_b);
    // The container sees the address on its eth0, and a default route via podwire's gateway.
    let addrs = pm
        .podman(&["exec", "pw-a", "ip", "-4", "addr", "show", "eth0"])
        .unwrap();
    assert!(addrs.contains(&format!("inet {ip_a}/24")), "{addrs}");
    let routes = pm.podman(&["exec", "pw-a", "ip", "route"]).unwrap();
    assert!(routes.contains("default via 10.253.1.1"), "{routes}");

    pm.podman(&["exec", "pw-a", "ping", "-c", "1", "-W", "3", &ip_b])
        .unwrap_or_else(|e| panic!("pw-a → pw-b: {e}"));
    pm.podman(&["exec", "pw-b", "ping", "-c", "1", "-W", "3", &ip_a])
        .unwrap_or_else(|e| panic!("pw-b → pw-a: {e}"));
    host::ping_from_host(&ip_a).unwrap_or_else(|e| panic!("host → pw-a: {e}"));
    assert_eq!(host::bridge_ports("pwpod0").len(), 2);
    let mut allocated = host::allocations(&pm.ipam_dir(), "podwire-podman");
    allocated.sort();
    let mut expected = vec![ip_a.clone(), ip_b.clone()];
    expected.sort();
    assert_eq!(allocated, expected);

    for id in [&a, &b] {
        let entry = host::cache_entry("podwire-podman", id, "eth0");
        assert!(
            entry.is_file(),
            "Podman cached no result at {}",
            entry.display()
        );
    }
    pm.podman(&["rm", "--force", "--time", "0", "pw-a", "pw-b"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pm.leftovers(), Vec::<String>::new(), "after podman rm");
    let log = pm.plugin_log();
    for id in [&a, &b] {
        assert!(
            log.contains(&format!("ADD container={id} ")),
            "no ADD logged for {id}:\n{log}"
        );
        assert!(
            log.contains(&format!("DEL container={id} ")),
            "no DEL logged for {id}:\n{log}"
        );
    }
    assert!(
        !log.lines()
            .any(|l| l.contains(" error ") || l.contains(" warn ")),
        "podwire logged problems:\n{log}"
    );
}

#[test]
fn podman_publish_reaches_the_container_from_everywhere_and_rm_leaves_no_mapping() {
    let _one = one_at_a_time();
    let pm = Podman::new(Network::new(
        "podwire-podman-p",
        "pwpodp0",
        "10.253.2.0/24",
        "10.253.2.1",
    ));
    // `podman run -p <host>:80` (a host port of this run's own instead of 8080: the mapping lives
    // in the host's netns, where another run could hold 8080).
    let (port, local_port) = host::free_host_ports();
    let publish = format!("{port}:80");
    // And to the host alone (`-p 127.0.0.1:<port>:80`, issue #22 item 7).
    let publish_local = format!("127.0.0.1:{local_port}:80");
    let web = pm
        .podman(&[
            "run",
            "-d",
            "--name",
            "pw-web",
            "--network",
            &pm.network.name,
            "-p",
            &publish,
            "-p",
            &publish_local,
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            &host::httpd_serving("served-by-pw-web", 80),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    pm.run_sleeper("pw-client")
        .unwrap_or_else(|e| panic!("{e}"));
    let ip = pm.ip_of("pw-web").unwrap_or_else(|e| panic!("{e}"));
    let up = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        host::http_get(&format!("{ip}:80")).is_some()
    });
    assert!(up, "httpd in pw-web never answered on {ip}:80");

    let gateway = "10.253.2.1";
    for to in [format!("{gateway}:{port}"), format!("127.0.0.1:{port}")] {
        let body = host::http_get(&to).unwrap_or_default();
        assert!(
            body.contains("served-by-pw-web"),
            "the host via {to}: {body:?}"
        );
    }
    let local = host::http_get(&format!("127.0.0.1:{local_port}")).unwrap_or_default();
    assert!(
        local.contains("served-by-pw-web"),
        "the host via 127.0.0.1:{local_port}: {local:?}"
    );
    assert!(
        host::http_get(&format!("{gateway}:{local_port}")).is_none(),
        "a 127.0.0.1 mapping is not on the host's other addresses"
    );
    let get = host::http_get_with_nc(gateway, port);
    for (from, who) in [
        ("pw-client", "another container"),
        ("pw-web", "itself (hairpin)"),
    ] {
        let out = pm
            .podman(&["exec", from, "sh", "-c", &get])
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert!(out.contains("served-by-pw-web"), "{who}: {out}");
    }
    assert_eq!(
        host::portmap_elements_tagged(&pm.network.portmap_tag_prefix()).len(),
        2,
        "two mappings for {web}"
    );
    pm.podman(&["rm", "--force", "--time", "0", "pw-web", "pw-client"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pm.leftovers(), Vec::<String>::new(), "after podman rm");
    assert!(host::http_get(&format!("{gateway}:{port}")).is_none());
    assert!(host::http_get(&format!("127.0.0.1:{local_port}")).is_none());
}
