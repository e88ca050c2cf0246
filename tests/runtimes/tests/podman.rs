//! podwire under Podman 4.3 (CNI backend), a second real CNI client: `podman run --network`
//! gets a podwire address, containers ping each other, `podman rm` leaves nothing behind.

use podwire_runtime_tests::conflist::Network;
use podwire_runtime_tests::host;
use podwire_runtime_tests::podman::Podman;

#[test]
fn podman_containers_get_podwire_ips_ping_each_other_and_rm_leaves_nothing() {
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
