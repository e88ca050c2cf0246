//! The upstream e2e cases (kubernetes test/e2e/network/netpol/network_policy.go), each named
//! after the case it mirrors, on the full 9-pod model: the whole 9x9 matrix is compared, on one
//! node and spread over two, over IPv4 and IPv6. Upstream builds some cases on fewer pods; the
//! expected matrices here extend theirs to all nine pods by the same rule.

use crate::fixtures::*;
use crate::model::Protocol::{Sctp, Tcp, Udp};
use serde_json::json;

const LAYOUTS: [Layout; 2] = [Layout::OneNode, Layout::TwoNodes];

fn for_layouts(case: impl Fn(World)) {
    for l in LAYOUTS {
        case(World::new(l));
    }
}

fn deny_ingress_all() -> serde_json::Value {
    json!({"podSelector": {}, "policyTypes": ["Ingress"]})
}

fn pod_a() -> serde_json::Value {
    json!({"matchLabels": {"pod": "a"}})
}

fn ns_name(n: &str) -> serde_json::Value {
    json!({"matchLabels": {"kubernetes.io/metadata.name": n}})
}

fn default_deny_ingress(proto: crate::Protocol) {
    for_layouts(|w| {
        let w = w.with(policy("x", "deny-ingress", deny_ingress_all()));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false);
        w.validate(80, proto, &r);
    });
}

#[test]
fn should_support_a_default_deny_ingress_policy() {
    default_deny_ingress(Tcp)
}

#[test]
fn should_support_a_default_deny_ingress_policy_udp() {
    default_deny_ingress(Udp)
}

#[test]
fn should_support_a_default_deny_ingress_policy_sctp() {
    default_deny_ingress(Sctp)
}

#[test]
fn should_support_a_default_deny_all_policy() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false)
            .expect_peer(ns("x"), any(), false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_to_allow_traffic_from_pods_within_server_namespace_based_on_pod_selector()
{
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "x-a-allows-x-b",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false)
            .expect("x/b", "x/a", true);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_to_allow_ingress_traffic_for_a_target() {
    for_layouts(|w| {
        let w = w
            .with(policy("x", "deny-all", deny_ingress_all()))
            .with(policy(
                "x",
                "allow-all-to-a",
                json!({"podSelector": pod_a(), "ingress": [{"from": [{"podSelector": {}, "namespaceSelector": {}}]}]}),
            ));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false)
            .expect_all_ingress("x/a", true);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_to_allow_ingress_traffic_from_pods_in_all_namespaces() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-from-another-ns",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {}}}]}]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
    });
}

fn only_from_namespace_y(selector: serde_json::Value) {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-client-a-via-ns-selector",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": selector}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(ns("x"), pod("x", "a"), false)
            .expect_peer(ns("z"), pod("x", "a"), false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_to_allow_traffic_only_from_a_different_namespace_based_on_namespace_selector(
) {
    only_from_namespace_y(ns_name("y"))
}

#[test]
fn should_enforce_policy_based_on_namespace_selector_with_match_expressions() {
    only_from_namespace_y(json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["y"]}]}))
}

#[test]
fn should_enforce_policy_to_allow_traffic_based_on_namespace_selector_with_match_labels_using_default_ns_label(
) {
    only_from_namespace_y(json!({"matchLabels": {"ns": "y"}}));
    only_from_namespace_y(ns_name("y"))
}

#[test]
fn should_enforce_policy_based_on_pod_selector_with_match_expressions() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "x-a-allows-x-b",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                {"key": "pod", "operator": "In", "values": ["b"]}]}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false)
            .expect("x/b", "x/a", true);
        w.validate(80, Tcp, &r);
    });
}

fn not_in_x() -> serde_json::Value {
    json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["x"]}]})
}

#[test]
fn should_enforce_policy_based_on_pod_selector_or_namespace_selector() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ns-y-match-selector",
            json!({"podSelector": pod_a(), "ingress": [{"from": [
                {"namespaceSelector": not_in_x()},
                {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect("x/c", "x/a", false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_based_on_pod_selector_and_namespace_selector() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ns-y-podselector-and-nsselector",
            json!({"podSelector": pod_a(), "ingress": [{"from": [
                {"namespaceSelector": not_in_x(), "podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false)
            .expect("y/b", "x/a", true)
            .expect("z/b", "x/a", true);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_based_on_multiple_pod_selectors_and_namespace_selectors() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ns-y-z-pod-b-c",
            json!({"podSelector": pod_a(), "ingress": [{"from": [
                {"namespaceSelector": not_in_x(), "podSelector": {"matchExpressions": [
                    {"key": "pod", "operator": "In", "values": ["b", "c"]}]}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        for from in ["y/b", "y/c", "z/b", "z/c"] {
            r.expect(from, "x/a", true);
        }
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_policy_based_on_any_pod_selectors() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ns-x-pod-b-c",
            json!({"podSelector": pod_a(), "ingress": [{"from": [
                {"podSelector": {"matchLabels": {"pod": "b"}}},
                {"podSelector": {"matchLabels": {"pod": "c"}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false)
            .expect("x/b", "x/a", true)
            .expect("x/c", "x/a", true);
        w.validate(80, Tcp, &r);
    });
}

fn only_from_y_a(proto: crate::Protocol) {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ns-y-pod-a-via-namespace-pod-selector",
            json!({"podSelector": pod_a(), "ingress": [{"from": [
                {"namespaceSelector": ns_name("y"), "podSelector": pod_a()}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false)
            .expect("y/a", "x/a", true);
        w.validate(80, proto, &r);
    });
}

#[test]
fn should_enforce_policy_to_allow_traffic_only_from_a_pod_in_a_different_namespace_based_on_pod_selector_and_namespace_selector(
) {
    only_from_y_a(Tcp)
}

#[test]
fn should_enforce_policy_to_allow_traffic_only_from_a_pod_in_a_different_namespace_based_on_pod_selector_and_namespace_selector_udp(
) {
    only_from_y_a(Udp)
}

#[test]
fn should_enforce_policy_to_allow_traffic_only_from_a_pod_in_a_different_namespace_based_on_pod_selector_and_namespace_selector_sctp(
) {
    only_from_y_a(Sctp)
}

fn port_81_from_y(name: &str, port: u16, proto: &str) -> crate::Policy {
    policy(
        "x",
        name,
        json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": ns_name("y")}],
               "ports": [{"port": port, "protocol": proto}]}]}),
    )
}

fn y_only_to_x_a() -> Reachability {
    let mut r = Reachability::new(true);
    r.expect_peer(ns("x"), pod("x", "a"), false)
        .expect_peer(ns("z"), pod("x", "a"), false);
    r
}

fn enforce_ports(proto: crate::Protocol, spelled: &str) {
    for_layouts(|w| {
        let w = w.with(port_81_from_y("allow-ingress-on-port-81-ns-x", 81, spelled));
        w.validate(81, proto, &y_only_to_x_a());
        let mut closed = Reachability::new(true);
        closed.expect_all_ingress("x/a", false);
        w.validate(80, proto, &closed);
        // Another protocol on the allowed port is not allowed.
        let other = if proto == Tcp { Udp } else { Tcp };
        w.validate(81, other, &closed);
    });
}

#[test]
fn should_enforce_policy_based_on_ports() {
    enforce_ports(Tcp, "TCP")
}

#[test]
fn should_enforce_policy_based_on_ports_udp() {
    enforce_ports(Udp, "UDP")
}

#[test]
fn should_enforce_policy_based_on_ports_sctp() {
    enforce_ports(Sctp, "SCTP")
}

#[test]
fn should_enforce_multiple_stacked_policies_with_overlapping_pod_selectors() {
    for_layouts(|w| {
        let w = w.with(port_81_from_y("allow-client-a-via-ns-selector", 81, "TCP"));
        w.validate(81, Tcp, &y_only_to_x_a());
        let mut deny = Reachability::new(true);
        deny.expect_all_ingress("x/a", false);
        w.validate(80, Tcp, &deny);
        let w = w.with(port_81_from_y(
            "allow-client-a-via-ns-selector-80",
            80,
            "TCP",
        ));
        w.validate(80, Tcp, &y_only_to_x_a());
        w.validate(81, Tcp, &y_only_to_x_a());
    });
}

#[test]
fn should_support_allow_all_policy() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-all",
            json!({"podSelector": {}, "ingress": [{}]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
        w.validate(81, Tcp, &Reachability::new(true));
        w.validate(81, Udp, &Reachability::new(true));
    });
}

#[test]
fn should_allow_ingress_access_on_one_named_port() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-all",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}),
        ));
        w.validate(81, Tcp, &Reachability::new(true));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false);
        w.validate(80, Tcp, &r);
        w.validate(81, Udp, &r);
    });
}

#[test]
fn should_allow_ingress_access_from_namespace_on_one_named_port() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-client-a-via-ns-selector-80",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": ns_name("y")}],
                   "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}]}]}),
        ));
        w.validate(80, Tcp, &y_only_to_x_a());
        let mut fail = Reachability::new(true);
        fail.expect_all_ingress("x/a", false);
        w.validate(81, Tcp, &fail);
    });
}

#[test]
fn should_allow_egress_access_on_one_named_port() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-egress",
            json!({"policyTypes": ["Egress"], "podSelector": {}, "egress": [{"ports": [{"port": "serve-80-tcp"}]}]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
        let mut r = Reachability::new(true);
        r.expect_peer(ns("x"), any(), false);
        w.validate(81, Tcp, &r);
    });
}

#[test]
fn should_enforce_updated_policy() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-all-mutate-to-deny-all",
            json!({"podSelector": {}, "ingress": [{}]}),
        ));
        w.validate(81, Tcp, &Reachability::new(true));
        let w = w.with(policy(
            "x",
            "allow-all-mutate-to-deny-all",
            json!({"podSelector": {}, "ingress": []}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false);
        w.validate(81, Tcp, &r);
    });
}

#[test]
fn should_allow_ingress_access_from_updated_namespace() {
    for_layouts(|w| {
        let mut w = w.with(policy(
            "x",
            "allow-client-a-via-ns-selector",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns2": "updated"}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(80, Tcp, &r);
        w.namespaces[1]
            .labels
            .insert("ns2".into(), "updated".into());
        w.recompile();
        r.expect_peer(ns("y"), any(), true);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_allow_ingress_access_from_updated_pod() {
    for_layouts(|w| {
        let mut w = w.with(policy(
            "x",
            "allow-client-a-via-pod-selector",
            json!({"podSelector": pod_a(), "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b", "pod2": "updated"}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(80, Tcp, &r);
        let labels = w.pod_mut("x/b").labels.as_mut().unwrap();
        labels.insert("pod2".into(), "updated".into());
        w.recompile();
        r.expect("x/b", "x/a", true);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_deny_ingress_from_pods_on_other_namespaces() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "deny-empty-policy",
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {}}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(ns("y"), ns("x"), false)
            .expect_peer(ns("z"), ns("x"), false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_deny_ingress_access_to_updated_pod() {
    for_layouts(|w| {
        let mut w = w.with(policy(
            "x",
            "deny-ingress-via-label-selector",
            json!({"podSelector": {"matchLabels": {"target": "isolated"}}, "policyTypes": ["Ingress"]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
        let labels = w.pod_mut("x/a").labels.as_mut().unwrap();
        labels.insert("target".into(), "isolated".into());
        w.recompile();
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_deny_egress_from_pods_based_on_pod_selector() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "deny-egress-pod-a",
            json!({"podSelector": pod_a(), "policyTypes": ["Egress"]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_egress("x/a", false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_deny_egress_from_all_pods_in_a_namespace() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "deny-egress-ns-x",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(ns("x"), any(), false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_work_with_ingress_egress_specified_together() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-client-a-via-pod-selector",
            json!({"podSelector": pod_a(), "policyTypes": ["Egress", "Ingress"],
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
                   "egress": [{"ports": [{"port": 80}]}]}),
        ));
        let mut r80 = Reachability::new(true);
        r80.expect_all_ingress("x/a", false)
            .expect("x/b", "x/a", true);
        w.validate(80, Tcp, &r80);
        let mut r81 = Reachability::new(true);
        r81.expect_all_ingress("x/a", false)
            .expect_all_egress("x/a", false)
            .expect("x/b", "x/a", true);
        w.validate(81, Tcp, &r81);
    });
}

#[test]
fn should_support_denying_of_egress_traffic_on_the_client_side_even_if_the_server_explicitly_allows_this_traffic(
) {
    for_layouts(|w| {
        let from_x_a =
            json!([{"from": [{"namespaceSelector": ns_name("x"), "podSelector": pod_a()}]}]);
        let w = w
            .with(policy(
                "x",
                "allow-to-ns-y-pod-a",
                json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [
                    {"namespaceSelector": ns_name("y"), "podSelector": pod_a()}]}]}),
            ))
            .with(policy(
                "y",
                "allow-from-xa-on-ya-match-selector",
                json!({"podSelector": pod_a(), "ingress": from_x_a}),
            ))
            .with(policy(
                "y",
                "allow-from-xa-on-yb-match-selector",
                json!({"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": from_x_a}),
            ));
        let mut r = Reachability::new(true);
        r.expect_peer(pod("x", "a"), any(), false)
            .expect_peer(any(), pod("y", "a"), false)
            .expect_peer(pod("x", "a"), pod("y", "a"), true)
            .expect_peer(any(), pod("y", "b"), false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_egress_policy_allowing_traffic_to_a_server_in_a_different_namespace_based_on_pod_selector_and_namespace_selector(
) {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-to-ns-y-pod-a",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [
                {"namespaceSelector": ns_name("y"), "podSelector": pod_a()}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_egress("x/a", false).expect("x/a", "y/a", true);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_enforce_ingress_policy_allowing_any_port_traffic_to_a_server_on_a_specific_protocol() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ingress-by-proto",
            json!({"podSelector": pod_a(), "ingress": [{"ports": [{"protocol": "TCP"}]}]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
        w.validate(81, Tcp, &Reachability::new(true));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), pod("x", "a"), false);
        w.validate(80, Udp, &r);
    });
}

#[test]
fn should_enforce_multiple_ingress_policies_with_ingress_allow_all_policy_taking_precedence() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ingress-port-80",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false);
        w.validate(81, Tcp, &r);
        w.validate(80, Tcp, &Reachability::new(true));
        let w = w.with(policy(
            "x",
            "allow-ingress",
            json!({"podSelector": {}, "ingress": [{}]}),
        ));
        w.validate(81, Tcp, &Reachability::new(true));
    });
}

#[test]
fn should_enforce_multiple_egress_policies_with_egress_allow_all_policy_taking_precedence() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-egress-port-80",
            json!({"policyTypes": ["Egress"], "podSelector": {}, "egress": [{"ports": [{"port": 80}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(ns("x"), any(), false);
        w.validate(81, Tcp, &r);
        let w = w.with(policy(
            "x",
            "allow-egress",
            json!({"policyTypes": ["Egress"], "podSelector": {}, "egress": [{}]}),
        ));
        w.validate(81, Tcp, &Reachability::new(true));
    });
}

#[test]
fn should_stop_enforcing_policies_after_they_are_deleted() {
    for_layouts(|w| {
        let mut w = w.with(policy(
            "x",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(ns("x"), any(), false)
            .expect_peer(any(), ns("x"), false);
        w.validate(80, Tcp, &r);
        w.policies.clear();
        w.recompile();
        w.validate(80, Tcp, &Reachability::new(true));
    });
}

/// The address of `key` of the family `v6`, as a host CIDR.
fn host_cidr(w: &World, key: &str, v6: bool) -> String {
    let a = w.pod(key).ips.iter().find(|a| a.is_ipv6() == v6).unwrap();
    format!("{a}/{}", if v6 { 128 } else { 32 })
}

#[test]
fn should_allow_egress_access_to_server_in_cidr_block() {
    for v6 in [false, true] {
        for_layouts(|w| {
            let cidr = host_cidr(&w, "y/b", v6);
            let w = w.with(policy(
                "x",
                "allow-client-a-via-cidr-egress-rule",
                json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [{"ipBlock": {"cidr": cidr}}]}]}),
            ));
            let mut r = Reachability::new(true);
            r.expect_all_egress("x/a", false).expect("x/a", "y/b", true);
            w.validate_family(80, Tcp, v6, &r);
            // The other family's block says nothing of this one: all egress closed.
            let mut other = Reachability::new(true);
            other.expect_all_egress("x/a", false);
            w.validate_family(80, Tcp, !v6, &other);
        });
    }
}

/// upstream makeLargeCIDRForIP: a /4 (IPv4) or /64 (IPv6) around the address.
fn large_cidr(w: &World, key: &str, v6: bool) -> String {
    let a = w.pod(key).ips.iter().find(|a| a.is_ipv6() == v6).unwrap();
    format!("{a}/{}", if v6 { 64 } else { 4 })
}

#[test]
fn should_enforce_except_clause_while_egress_access_to_server_in_cidr_block() {
    for v6 in [false, true] {
        for_layouts(|w| {
            let (big, b) = (large_cidr(&w, "x/b", v6), host_cidr(&w, "x/b", v6));
            let w = w.with(policy(
                "x",
                "allow-client-a-via-cidr-egress-rule",
                json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [{"ipBlock": {"cidr": big, "except": [b]}}]}]}),
            ));
            let mut r = Reachability::new(true);
            if v6 {
                // A /64 holds one node's pods only: x/a reaches its own node's pods but x/b.
                let node_of_b = w.pod("x/b").node.clone();
                for to in all_pods() {
                    let same = w.pod(&to).node == node_of_b;
                    r.expect("x/a", &to, same && to != "x/b");
                }
            } else {
                r.expect("x/a", "x/b", false);
            }
            w.validate_family(80, Tcp, v6, &r);
        });
    }
}

#[test]
fn should_ensure_an_ip_overlapping_both_ip_block_cidr_and_ip_block_except_is_allowed() {
    for_layouts(|w| {
        let (big, b) = (large_cidr(&w, "x/b", false), host_cidr(&w, "x/b", false));
        let w = w.with(policy(
            "x",
            "allow-client-a-via-cidr-egress-rule",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [{"ipBlock": {"cidr": big, "except": [b.clone()]}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect("x/a", "x/b", false);
        w.validate_family(80, Tcp, false, &r);
        // Upstream updates the policy (same name) to allow exactly x/b.
        let w = w.with(policy(
            "x",
            "allow-client-a-via-cidr-egress-rule",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [{"ipBlock": {"cidr": b}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_egress("x/a", false).expect("x/a", "x/b", true);
        w.validate_family(80, Tcp, false, &r);
    });
}

#[test]
fn an_ip_in_one_block_s_except_but_in_another_peer_is_allowed() {
    // Excepts punch holes in their own block only: another peer of the rule re-adds it.
    for_layouts(|w| {
        let (big, b) = (large_cidr(&w, "x/b", false), host_cidr(&w, "x/b", false));
        let w = w.with(policy(
            "x",
            "two-peers",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [
                {"ipBlock": {"cidr": big, "except": [b]}},
                {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
        ));
        w.validate_family(80, Tcp, false, &Reachability::new(true));
    });
}

#[test]
fn should_enforce_policies_to_check_ingress_and_egress_policies_can_be_controlled_independently_based_on_pod_selector(
) {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-egress-for-target",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{}]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
        let w = w.with(policy(
            "x",
            "deny-ingress-via-label-selector",
            json!({"podSelector": pod_a(), "policyTypes": ["Ingress"]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn should_not_mistakenly_treat_protocol_sctp_as_protocol_tcp_even_if_the_plugin_doesnt_support_sctp(
) {
    for_layouts(|w| {
        let w = w
            .with(policy("x", "deny-ingress", deny_ingress_all()))
            .with(policy(
                "x",
                "allow-only-sctp-ingress-on-port-81",
                json!({"podSelector": pod_a(), "ingress": [{"ports": [{"port": 81, "protocol": "SCTP"}]}]}),
            ));
        let mut r = Reachability::new(true);
        r.expect_peer(any(), ns("x"), false);
        w.validate(81, Tcp, &r);
        // And SCTP itself is allowed to x/a.
        r.expect_all_ingress("x/a", true);
        w.validate(81, Sctp, &r);
    });
}

#[test]
fn should_properly_isolate_pods_that_are_selected_by_a_policy_allowing_sctp_even_if_the_plugin_doesnt_support_sctp(
) {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-only-sctp-ingress-on-port-80",
            json!({"podSelector": pod_a(), "ingress": [{"ports": [{"port": 80, "protocol": "SCTP"}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(81, Tcp, &r);
    });
}

#[test]
fn should_not_allow_access_by_tcp_when_a_policy_specifies_only_udp() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-only-udp-ingress-on-port-81",
            json!({"podSelector": pod_a(), "ingress": [{"ports": [{"port": 81, "protocol": "UDP"}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(81, Tcp, &r);
        w.validate(81, Udp, &Reachability::new(true));
    });
}

#[test]
fn should_enforce_policy_based_on_namespace_selector_with_match_expressions_using_default_ns_label()
{
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "allow-ns-y-match-selector-for-immutable-ns-label",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [{"namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["y"]}]}}]}]}),
        ));
        let mut r = Reachability::new(true);
        r.expect_peer(pod("x", "a"), ns("y"), false);
        w.validate(80, Tcp, &r);
    });
}

// ---- Beyond upstream's cases: the rest of the v1 semantics ----

#[test]
fn end_port_makes_a_range() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "range",
            json!({"podSelector": pod_a(), "ingress": [{"ports": [{"port": 79, "endPort": 80}]}]}),
        ));
        w.validate(80, Tcp, &Reachability::new(true));
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(81, Tcp, &r);
        w.validate(80, Udp, &r);
        for (port, open) in [(78, false), (79, true), (80, true), (81, false)] {
            assert_eq!(w.reaches("y/a", "x/a", port, Tcp, false), open, "{port}");
        }
    });
}

#[test]
fn named_egress_ports_resolve_per_destination_pod() {
    for_layouts(|mut w| {
        // y/b serves "serve-80-tcp" on 8080 instead: x/a may reach it there, not on 80.
        for p in &mut w.pod_mut("y/b").ports {
            if p.name == "serve-80-tcp" {
                p.port = 8080;
            }
        }
        let w = w.with(policy(
            "x",
            "egress-named",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [{"namespaceSelector": ns_name("y")}],
                   "ports": [{"port": "serve-80-tcp"}]}]}),
        ));
        for v6 in [false, true] {
            assert!(w.reaches("x/a", "y/a", 80, Tcp, v6));
            assert!(!w.reaches("x/a", "y/b", 80, Tcp, v6));
            assert!(w.reaches("x/a", "y/b", 8080, Tcp, v6));
            assert!(!w.reaches("x/a", "y/a", 8080, Tcp, v6));
            assert!(!w.reaches("x/a", "z/a", 80, Tcp, v6), "z is not a peer");
            assert!(!w.reaches("x/a", "y/a", 80, Udp, v6), "the name is TCP");
        }
    });
}

#[test]
fn named_ingress_ports_resolve_per_selected_pod() {
    for_layouts(|mut w| {
        for p in &mut w.pod_mut("x/b").ports {
            if p.name == "serve-81-tcp" {
                p.port = 9000;
            }
        }
        let w = w.with(policy(
            "x",
            "named",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}),
        ));
        assert!(w.reaches("y/a", "x/a", 81, Tcp, false));
        assert!(!w.reaches("y/a", "x/b", 81, Tcp, false));
        assert!(w.reaches("y/a", "x/b", 9000, Tcp, true));
        assert!(!w.reaches("y/a", "x/a", 9000, Tcp, true));
    });
}

#[test]
fn a_rule_with_peers_and_no_ports_allows_every_protocol() {
    use crate::eval::{evaluate, CtState, Packet};
    let w = World::new(Layout::OneNode).with(policy(
        "x",
        "from-y",
        json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": ns_name("y")}]}]}),
    ));
    let rs = &w.nodes["n1"].ruleset;
    let ping = |from: &str| Packet {
        saddr: w.pod(from).ips[0],
        daddr: w.pod("x/a").ips[0],
        proto: 1,
        dport: None,
        ct: CtState::Original,
        discovery: false,
    };
    assert!(evaluate(rs, &ping("y/c")).allows(), "ICMP from a peer");
    assert!(!evaluate(rs, &ping("z/c")).allows());
}

#[test]
fn pod_to_own_node_traffic_is_always_allowed_and_replies_pass() {
    use crate::eval::{evaluate, CtState, Packet};
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ));
        let a = w.pod("x/a").clone();
        let rs = &w.nodes[a.node.as_deref().unwrap()].ruleset;
        let node = node_addresses(a.node.as_deref().unwrap()[1..].parse().unwrap());
        for n in &node {
            let Some(p) = a.ips.iter().find(|p| p.is_ipv6() == n.is_ipv6()) else {
                continue;
            };
            // kubelet's probe in, and the pod to its node's DNS or API.
            assert!(
                evaluate(rs, &Packet::new(*n, *p, Tcp, 8080)).allows(),
                "{n} -> {p}"
            );
            assert!(
                evaluate(rs, &Packet::new(*p, *n, Udp, 53)).allows(),
                "{p} -> {n}"
            );
        }
        // The other node's address is not this node: denied.
        let other = if a.node.as_deref() == Some("n1") {
            2
        } else {
            1
        };
        let far = node_addresses(other)[0];
        assert!(!evaluate(rs, &Packet::new(far, a.ips[0], Tcp, 80)).allows());
        // A reply of a connection x/a opened before the policy passes; a new one does not.
        let y = w.pod("y/a").ips[0];
        let mut reply = Packet::new(y, a.ips[0], Tcp, 40000);
        reply.ct = CtState::Reply;
        assert!(evaluate(rs, &reply).allows());
        reply.ct = CtState::Related;
        assert!(evaluate(rs, &reply).allows());
        reply.ct = CtState::Original;
        assert!(!evaluate(rs, &reply).allows());
        // IPv6 neighbour discovery on the bridge passes whatever the policy.
        let v6 = |p: &crate::Pod| p.ips[1];
        let mut nd = Packet::new(v6(w.pod("y/a")), v6(&a), Tcp, 0);
        (nd.proto, nd.dport, nd.discovery) = (58, None, true);
        assert!(evaluate(rs, &nd).allows());
    });
}

#[test]
fn several_policies_selecting_one_pod_allow_their_union() {
    for_layouts(|w| {
        let w = w
            .with(policy(
                "x",
                "from-y-on-80",
                json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": ns_name("y")}], "ports": [{"port": 80}]}]}),
            ))
            .with(policy(
                "x",
                "from-z-on-81",
                json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": ns_name("z")}], "ports": [{"port": 81}]}]}),
            ));
        let mut r80 = Reachability::new(true);
        r80.expect_peer(any(), ns("x"), false)
            .expect_peer(ns("y"), pod("x", "a"), true);
        w.validate(80, Tcp, &r80);
        let mut r81 = Reachability::new(true);
        r81.expect_peer(any(), ns("x"), false)
            .expect_peer(ns("z"), ns("x"), true);
        w.validate(81, Tcp, &r81);
    });
}

#[test]
fn an_empty_peer_list_with_ports_allows_every_peer_on_those_ports() {
    for_layouts(|w| {
        let w = w.with(policy(
            "x",
            "ports-only",
            json!({"policyTypes": ["Egress"], "podSelector": pod_a(), "egress": [{"to": [], "ports": [{"port": 81, "protocol": "UDP"}]}]}),
        ));
        w.validate(81, Udp, &Reachability::new(true));
        let mut r = Reachability::new(true);
        r.expect_all_egress("x/a", false);
        w.validate(81, Tcp, &r);
    });
}

#[test]
fn host_network_pods_are_never_selected_nor_peers() {
    for_layouts(|mut w| {
        w.pod_mut("x/a").host_network = true;
        let w = w.with(policy(
            "x",
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ));
        for node in w.nodes.values() {
            assert!(node.pods.iter().all(|p| p.key != "x/a"), "not a local pod");
            assert!(node
                .ruleset
                .maps
                .values()
                .all(|m| !m.entries.contains_key(&w.pod("x/a").ips[0])));
        }
        let w = w.with(policy(
            "y",
            "from-x",
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": ns_name("x")}]}]}),
        ));
        let peers: Vec<_> = w
            .nodes
            .values()
            .flat_map(|n| n.ruleset.sets.values())
            .filter(|s| s.name.starts_with("policy/y/from-x/ingress/0/peers-v4"))
            .flat_map(|s| s.elements.iter().copied())
            .collect();
        assert!(!peers.is_empty());
        let a = w.pod("x/a").ips[0];
        assert!(
            peers
                .iter()
                .all(|e| !matches!(e, crate::ir::Element::Addr(r) if r.contains(a))),
            "the hostNetwork pod's address is not a peer"
        );
    });
}

#[test]
fn terminated_pods_are_ignored() {
    let mut w = World::new(Layout::OneNode).with(policy(
        "x",
        "from-y-a",
        json!({"podSelector": pod_a(), "ingress": [{"from": [{"namespaceSelector": ns_name("y"), "podSelector": pod_a()}]}]}),
    ));
    assert!(w.reaches("y/a", "x/a", 80, Tcp, false));
    w.pod_mut("y/a").terminated = true;
    w.recompile();
    let n1 = &w.nodes["n1"];
    assert!(n1.pods.iter().all(|p| p.key != "y/a"));
    assert!(
        !w.reaches("y/a", "x/a", 80, Tcp, false),
        "its address may be another pod's by now"
    );
}

#[test]
fn an_unclassified_pod_is_denied_where_a_policy_could_select_it() {
    use crate::eval::{evaluate, Packet};
    use crate::model::Pod;
    let mut w = World::new(Layout::OneNode).with(policy(
        "x",
        "only-b-isolated",
        json!({"podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Ingress"]}),
    ));
    let ip: std::net::IpAddr = "10.244.1.99".parse().unwrap();
    w.pods
        .push(Pod::unclassified("x", "new", "uid-new", "n1", vec![ip]));
    w.pods.push(Pod::unclassified(
        "y",
        "fresh",
        "uid-fresh",
        "n1",
        vec!["10.244.1.98".parse().unwrap()],
    ));
    w.recompile();
    let n1 = &w.nodes["n1"];
    let new = n1.pods.iter().find(|p| p.key == "x/new").unwrap();
    assert!(!new.classified);
    assert_eq!(new.ingress, Some(vec!["x/only-b-isolated".to_string()]));
    assert_eq!(new.egress, None, "no policy of x has egress");
    let from_y = w.pod("y/a").ips[0];
    assert!(!evaluate(&n1.ruleset, &Packet::new(from_y, ip, Tcp, 80)).allows());
    // A namespace without policies: nothing could select it, it is open.
    let fresh = n1.pods.iter().find(|p| p.key == "y/fresh").unwrap();
    assert_eq!((fresh.ingress.clone(), fresh.egress.clone()), (None, None));
    // A policy selecting every pod of x applies its rules at once; its named ports resolve to
    // nothing (the pod's ports are unknown).
    let mut w = w.with(policy(
        "x",
        "allow-80-and-named",
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}, {"port": "serve-81-tcp"}]}]}),
    ));
    w.recompile();
    let n1 = &w.nodes["n1"].ruleset;
    assert!(evaluate(n1, &Packet::new(from_y, ip, Tcp, 80)).allows());
    assert!(!evaluate(n1, &Packet::new(from_y, ip, Tcp, 81)).allows());
    // As a peer it matches only selectors matching every pod.
    let w = w.with(policy(
        "y",
        "from-x-a",
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": pod_a(), "namespaceSelector": ns_name("x")}]}]}),
    ));
    let y_b = w.pod("y/b").ips[0];
    assert!(!evaluate(&w.nodes["n1"].ruleset, &Packet::new(ip, y_b, Tcp, 80)).allows());
    assert!(w.reaches("x/a", "y/b", 80, Tcp, false));
}

#[test]
fn a_policy_that_cannot_be_understood_still_isolates_and_allows_nothing() {
    use crate::model::Policy;
    let mut problems = vec![];
    let broken = Policy::from_json(
        &json!({"metadata": {"namespace": "x", "name": "future"},
                "spec": {"podSelector": pod_a(), "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/99"}}]}]}}),
        &mut problems,
    )
    .unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    for_layouts(|w| {
        let w = w.with(broken.clone());
        let mut r = Reachability::new(true);
        r.expect_all_ingress("x/a", false);
        w.validate(80, Tcp, &r);
    });
}

#[test]
fn dual_stack_pods_are_isolated_on_both_families() {
    // Every validate() above probes IPv4 and IPv6 and requires them equal; here the maps.
    let w = World::new(Layout::OneNode).with(policy("x", "deny", deny_ingress_all()));
    let rs = &w.nodes["n1"].ruleset;
    let a = w.pod("x/a");
    assert_eq!(rs.maps["ingress-v4"].entries[&a.ips[0]], "pod/x/a/ingress");
    assert_eq!(rs.maps["ingress-v6"].entries[&a.ips[1]], "pod/x/a/ingress");
    assert!(rs.maps["egress-v4"].entries.is_empty());
}
