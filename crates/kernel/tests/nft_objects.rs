//! Interval and concatenated sets, verdict maps, ct / icmpv6 / limit+log rules, named
//! counters, and reading all of it back, against the real kernel in a throwaway netns
//! (cross-checked with `nft list`).

mod common;

use common::TestNs;
use kernel::nft::objects::{range_elements, ranges_of};
use kernel::nft::{
    datatype, Cmp, ElemData, Expr, Field, Nftables, SetDef, SetElem, SetEvent, SetWatch, Table,
    CT_STATE_RELATED, NF_INET_FORWARD,
};

fn text(ns: &TestNs) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(nft: &Nftables, table: &Table) {
    let mut tx = nft.transaction(table);
    tx.add_table();
    tx.add_counter("drops/x/a/ingress");
    let a4 = SetDef {
        name: "peers-v4".into(),
        key_type: datatype::IPADDR,
        fields: vec![4],
        interval: true,
        verdict_map: false,
    };
    let pp = SetDef {
        name: "ports".into(),
        key_type: datatype::concat(&[datatype::INET_PROTOCOL, datatype::INET_SERVICE]),
        fields: vec![1, 2],
        interval: true,
        verdict_map: false,
    };
    let app6 = SetDef {
        name: "named-v6".into(),
        key_type: datatype::concat(&[
            datatype::IP6ADDR,
            datatype::INET_PROTOCOL,
            datatype::INET_SERVICE,
        ]),
        fields: vec![16, 1, 2],
        interval: true,
        verdict_map: false,
    };
    let m4 = SetDef {
        name: "ingress-v4".into(),
        key_type: datatype::IPADDR,
        fields: vec![4],
        interval: false,
        verdict_map: true,
    };
    for (i, d) in [&a4, &pp, &app6, &m4].into_iter().enumerate() {
        tx.add_set_def(d, i as u32 + 1);
    }
    let mut elems = range_elements(&[10, 0, 0, 1], &[10, 0, 0, 1], false);
    elems.extend(range_elements(&[10, 1, 0, 0], &[10, 1, 0, 255], false));
    tx.add_set_elems("peers-v4", &elems);
    tx.add_set_elems(
        "ports",
        &[
            range_elements(&[6, 0, 0, 0, 0, 80, 0, 0], &[6, 0, 0, 0, 0, 80, 0, 0], true),
            range_elements(
                &[17, 0, 0, 0, 0, 81, 0, 0],
                &[17, 0, 0, 0, 0, 90, 0, 0],
                true,
            ),
        ]
        .concat(),
    );
    let mut k6 = "fd00::5"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    k6.extend([132, 0, 0, 0, 0x1f, 0x90, 0, 0]);
    tx.add_set_elems("named-v6", &range_elements(&k6, &k6, true));
    tx.add_chain("policy/x/p/ingress", false);
    tx.add_rule("policy/x/p/ingress", None, |e| {
        e.nfproto(false);
        e.concat_lookup(&[Field::IpSaddr], "peers-v4", 0, false);
        e.concat_lookup(&[Field::L4Proto, Field::ThDport], "ports", 0, false);
        e.counter();
        e.accept();
    });
    tx.add_rule("policy/x/p/ingress", None, |e| {
        e.nfproto(true);
        e.concat_lookup(
            &[Field::Ip6Daddr, Field::L4Proto, Field::ThDport],
            "named-v6",
            0,
            false,
        );
        e.accept();
    });
    tx.add_chain("pod/x/a/ingress", false);
    tx.add_rule("pod/x/a/ingress", None, |e| e.jump("policy/x/p/ingress"));
    tx.add_rule("pod/x/a/ingress", None, |e| {
        e.limit_per_second(10, 20);
        e.log_group(1024, "podwire ingress deny x/a ");
    });
    tx.add_rule("pod/x/a/ingress", None, |e| {
        e.count("drops/x/a/ingress");
        e.discard();
    });
    tx.add_set_elems(
        "ingress-v4",
        &[SetElem {
            key: vec![10, 9, 0, 5],
            data: Some(ElemData::Jump("pod/x/a/ingress".into())),
            ..Default::default()
        }],
    );
    tx.add_chain("ingress", false);
    tx.add_rule("ingress", Some("dispatch"), |e| {
        e.ct_direction_reply();
        e.accept();
    });
    tx.add_rule("ingress", None, |e| {
        e.ct_state_any(CT_STATE_RELATED);
        e.accept();
    });
    tx.add_rule("ingress", None, |e| {
        e.icmpv6_type_between(133, 137);
        e.accept();
    });
    tx.add_rule("ingress", None, |e| {
        e.nfproto(false);
        e.concat_vmap(&[Field::IpDaddr], "ingress-v4");
    });
    tx.add_filter_chain("forward-ingress", NF_INET_FORWARD, 1);
    tx.add_rule("forward-ingress", None, |e| e.jump("ingress"));
    tx.commit("build a policy-like table").unwrap();
}

#[test]
fn interval_sets_vmaps_and_rules_round_trip() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let table = Table::new(kernel::nft::Family::Inet, "podwire-policy-t1");
    build(&nft, &table);

    let listing = text(&ns);
    for want in [
        "10.0.0.1",
        "10.1.0.0/24",
        "tcp . 80",
        "udp . 81-90",
        "fd00::5 . sctp . 8080",
        "10.9.0.5 : jump pod/x/a/ingress",
        "ct direction reply accept",
        "ct state related accept",
        "icmpv6 type 133-137 accept",
        "ip daddr vmap @ingress-v4",
        "limit rate 10/second burst 20 packets log prefix \"podwire ingress deny x/a \" group 1024",
        "counter name \"drops/x/a/ingress\" drop",
        "ip saddr @peers-v4 meta l4proto . th dport @ports counter",
        "ip6 daddr . meta l4proto . th dport @named-v6 accept",
        "type filter hook forward priority filter + 1",
    ] {
        assert!(listing.contains(want), "missing {want:?} in\n{listing}");
    }

    // Sets and their elements.
    let sets = nft.sets(&table).unwrap();
    assert_eq!(sets.len(), 4, "{sets:?}");
    let ports = sets.iter().find(|s| s.name == "ports").unwrap();
    assert!(ports.is_interval() && !ports.is_verdict_map());
    assert_eq!(ports.fields, vec![1, 2]);
    assert_eq!(ports.key_len, 8);
    assert!(sets
        .iter()
        .find(|s| s.name == "ingress-v4")
        .unwrap()
        .is_verdict_map());
    let peers = nft.set_elems(&table, "peers-v4").unwrap();
    assert_eq!(
        ranges_of(&peers),
        vec![
            (vec![10, 0, 0, 1], vec![10, 0, 0, 1]),
            (vec![10, 1, 0, 0], vec![10, 1, 0, 255])
        ]
    );
    let pe = nft.set_elems(&table, "ports").unwrap();
    let mut pr = ranges_of(&pe);
    pr.sort();
    assert_eq!(
        pr[1],
        (
            vec![17, 0, 0, 0, 0, 81, 0, 0],
            vec![17, 0, 0, 0, 0, 90, 0, 0]
        )
    );
    let map = nft.set_elems(&table, "ingress-v4").unwrap();
    assert_eq!(map[0].data, Some(ElemData::Jump("pod/x/a/ingress".into())));

    // Chains, counters, rules.
    let chains = nft.chains(&table).unwrap();
    assert_eq!(chains.len(), 4);
    assert!(chains.iter().any(|c| c.name == "forward-ingress" && c.base));
    let pod = chains.iter().find(|c| c.name == "pod/x/a/ingress").unwrap();
    assert!(!pod.base);
    assert!(pod.uses >= 1, "the map element refers to it");
    let counters = nft.counters(&table).unwrap();
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0].name, "drops/x/a/ingress");
    let rules = nft.rules_decoded(&table).unwrap();
    let ingress: Vec<_> = rules.iter().filter(|r| r.chain == "ingress").collect();
    assert_eq!(ingress.len(), 4);
    assert_eq!(ingress[0].comment().as_deref(), Some("dispatch"));
    assert_eq!(ingress[0].exprs[0], Expr::Ct { key: 1, dreg: 1 });
    assert!(ingress[3].exprs.iter().any(|x| matches!(x,
        Expr::Lookup { set, dreg: Some(0), .. } if set == "ingress-v4")));
    let pol: Vec<_> = rules
        .iter()
        .filter(|r| r.chain == "policy/x/p/ingress")
        .collect();
    assert!(pol[0]
        .exprs
        .iter()
        .any(|x| matches!(x, Expr::Counter { .. })));
    assert!(pol[1].exprs.iter().any(|x| matches!(x,
        Expr::Cmp { op: Cmp::Eq, data, .. } if data == &[10])));

    // Deleting a range and a map entry, flushing and rewriting a chain, in one batch.
    let mut tx = nft.transaction(&table);
    tx.delete_set_elems(
        "peers-v4",
        &range_elements(&[10, 0, 0, 1], &[10, 0, 0, 1], false),
    );
    tx.delete_set_elems("ingress-v4", &[SetElem::key(vec![10, 9, 0, 5])]);
    tx.flush_chain("pod/x/a/ingress");
    tx.add_rule("pod/x/a/ingress", None, |e| e.discard());
    tx.commit("change").unwrap();
    assert_eq!(
        ranges_of(&nft.set_elems(&table, "peers-v4").unwrap()).len(),
        1
    );
    assert!(nft.set_elems(&table, "ingress-v4").unwrap().is_empty());
    let rules = nft.rules_decoded(&table).unwrap();
    assert_eq!(
        rules
            .iter()
            .filter(|r| r.chain == "pod/x/a/ingress")
            .count(),
        1
    );

    // Then delete the objects, referrers first.
    let mut tx = nft.transaction(&table);
    tx.flush_chain("pod/x/a/ingress");
    tx.delete_chain("pod/x/a/ingress");
    tx.delete_counter("drops/x/a/ingress");
    tx.commit("delete").unwrap();
    assert_eq!(nft.chains(&table).unwrap().len(), 3);
    assert!(nft.counters(&table).unwrap().is_empty());
    // A set a rule uses cannot go; one no rule uses can.
    let mut tx = nft.transaction(&table);
    tx.delete_set("peers-v4");
    assert!(tx.commit("delete a used set").is_err());
    let mut tx = nft.transaction(&table);
    tx.flush_chain("policy/x/p/ingress");
    tx.delete_set("peers-v4");
    tx.commit("delete an unused set").unwrap();
    assert_eq!(nft.sets(&table).unwrap().len(), 3);
}

#[test]
fn absent_table_lists_nothing() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let table = Table::new(kernel::nft::Family::Inet, "podwire-policy-none");
    assert!(nft.sets(&table).unwrap().is_empty());
    assert!(nft.chains(&table).unwrap().is_empty());
    assert!(nft.counters(&table).unwrap().is_empty());
    assert!(nft.rules_decoded(&table).unwrap().is_empty());
    assert!(nft.set_elems(&table, "x").unwrap().is_empty());
}

#[test]
fn element_notifications_reach_a_watcher() {
    let ns = TestNs::new();
    let table = Table::new(kernel::nft::Family::Inet, "podwire-policy-w");
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let mut tx = nft.transaction(&table);
    tx.add_table();
    for name in ["watched", "other"] {
        tx.add_set_def(
            &SetDef {
                name: name.into(),
                key_type: datatype::IPADDR,
                fields: vec![4],
                interval: false,
                verdict_map: false,
            },
            1,
        );
    }
    tx.commit("sets").unwrap();
    let mut watch = ns
        .ns
        .run(|| SetWatch::new(table.clone(), vec!["watched".into()]))
        .unwrap()
        .unwrap();
    let mut tx = nft.transaction(&table);
    tx.add_set_elems("other", &[SetElem::key(vec![10, 0, 0, 1])]);
    tx.add_set_elems(
        "watched",
        &[SetElem {
            key: vec![10, 0, 0, 2],
            tag: Some("x/a/uid/cid".into()),
            ..Default::default()
        }],
    );
    tx.commit("add").unwrap();
    let events = watch.recv().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        SetEvent::Added { set, elem } => {
            assert_eq!(set, "watched");
            assert_eq!(elem.key, vec![10, 0, 0, 2]);
            assert_eq!(elem.tag.as_deref(), Some("x/a/uid/cid"));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn unclassified_announce_list_withdraw_with_the_longest_names() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let tag = kernel::owned::UnclassifiedTag {
        namespace: "n".repeat(63),
        name: "p".repeat(253),
        uid: "0a1b2c3d-0000-1111-2222-333344445555".into(),
        container_id: "c".repeat(64),
    };
    let addrs: Vec<std::net::IpAddr> =
        vec!["10.9.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
    // Policy off: no table, nothing done, no error.
    assert!(!kernel::unclassified::announce(&nft, &addrs, &tag).unwrap());
    let table = kernel::owned::policy_table();
    let mut tx = nft.transaction(&table);
    tx.add_table();
    for (name, ty, len) in [
        (kernel::owned::UNCLASSIFIED_V4, datatype::IPADDR, 4),
        (kernel::owned::UNCLASSIFIED_V6, datatype::IP6ADDR, 16),
    ] {
        tx.add_set_def(
            &SetDef {
                name: name.into(),
                key_type: ty,
                fields: vec![len],
                interval: false,
                verdict_map: false,
            },
            len,
        );
    }
    tx.commit("policy table").unwrap();
    assert!(kernel::unclassified::announce(&nft, &addrs, &tag).unwrap());
    let listed = kernel::unclassified::list(&nft).unwrap();
    assert_eq!(listed.len(), 2);
    let back = listed[0].1.clone().expect("our comment");
    assert_eq!(back.uid, tag.uid);
    assert_eq!(back.namespace, tag.namespace);
    assert!(tag.name.starts_with(&back.name));
    assert_eq!(
        kernel::unclassified::withdraw(&nft, &addrs[..1]).unwrap(),
        1
    );
    assert_eq!(
        kernel::unclassified::withdraw(&nft, &addrs[..1]).unwrap(),
        0
    );
    assert_eq!(kernel::unclassified::list(&nft).unwrap().len(), 1);
}
