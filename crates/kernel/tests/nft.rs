//! nftables over netlink, inside throwaway namespaces, cross-checked
//! with `nft -j list ruleset`.

mod common;

use common::TestNs;
use kernel::nft::{Family, Nftables, Table, FORWARD_CHAIN, NAT_CHAIN};

fn rules_json(ns: &TestNs) -> Vec<serde_json::Value> {
    ns.nft_json()["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule").cloned())
        .collect()
}

#[test]
fn masquerade_add_list_delete() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let table = Table::new(Family::Inet, "podwire");
    let tag4 = "podwire:net1:0123456789abcdef:eth0";
    let tag6 = "podwire:net1:0123456789abcdef:eth0:v6";

    nft.add_masquerade(
        &table,
        "10.251.3.7/32".parse().unwrap(),
        Some("10.251.0.0/16".parse().unwrap()),
        tag4,
    )
    .unwrap();
    nft.add_masquerade(
        &table,
        "fd00:251::7/128".parse().unwrap(),
        Some("fd00:251::/64".parse().unwrap()),
        tag6,
    )
    .unwrap();
    // A second pod: deleting the first must leave it alone.
    nft.add_masquerade(
        &table,
        "10.251.3.8/32".parse().unwrap(),
        Some("10.251.0.0/16".parse().unwrap()),
        "podwire:net1:other:eth0",
    )
    .unwrap();

    let rules = nft.rules(&table).unwrap();
    assert_eq!(rules.len(), 3, "{rules:?}");
    assert!(rules.iter().all(|r| r.chain == NAT_CHAIN));
    assert!(rules.iter().any(|r| r.tag.as_deref() == Some(tag4)));

    // nft sees exactly what we meant.
    let j = rules_json(&ns);
    let mine = j
        .iter()
        .find(|r| r["comment"] == tag4)
        .expect("rule with our comment");
    let text = mine["expr"].to_string();
    assert!(text.contains("\"masquerade\""), "{text}");
    assert!(text.contains("10.251.3.7"), "{text}");
    assert!(text.contains("\"!=\""), "{text}");
    assert!(text.contains("10.251.0.0"), "{text}");
    let chain = ns.nft_json()["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("chain").filter(|c| c["name"] == NAT_CHAIN).cloned())
        .unwrap();
    assert_eq!(chain["type"], "nat");
    assert_eq!(chain["hook"], "postrouting");
    assert_eq!(chain["prio"], 100);
    let mine6 = j.iter().find(|r| r["comment"] == tag6).unwrap().to_string();
    assert!(mine6.contains("fd00:251::7"), "{mine6}");

    assert_eq!(nft.delete_by_tag(&table, tag4).unwrap(), 1);
    assert_eq!(nft.delete_by_tag(&table, tag4).unwrap(), 0, "idempotent");
    assert_eq!(nft.delete_by_tag(&table, tag6).unwrap(), 1);
    let left = nft.rules(&table).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].tag.as_deref(), Some("podwire:net1:other:eth0"));
    assert!(!rules_json(&ns)
        .iter()
        .any(|r| r["comment"] == tag4 || r["comment"] == tag6));

    assert_eq!(
        nft.delete_by_tag_prefix(&table, "podwire:net1:").unwrap(),
        1
    );
    assert!(nft.rules(&table).unwrap().is_empty());
    assert!(rules_json(&ns).is_empty());

    nft.delete_table(&table).unwrap();
    assert!(nft.delete_table(&table).unwrap_err().is_not_found());
    assert!(
        nft.rules(&table).unwrap().is_empty(),
        "absent table lists no rules"
    );
    assert_eq!(nft.delete_by_tag(&table, tag4).unwrap(), 0);
}

#[test]
fn forward_accept_and_odd_prefix() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let table = Table::new(Family::Ip, "podwire");
    nft.ensure_table(&table).unwrap();
    nft.ensure_table(&table).unwrap();
    nft.add_forward_accept(&table, "10.251.16.0/20".parse().unwrap(), "podwire:fw")
        .unwrap();
    let rules = nft.rules(&table).unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules
        .iter()
        .all(|r| r.chain == FORWARD_CHAIN && r.tag.as_deref() == Some("podwire:fw")));
    let text = rules_json(&ns)
        .iter()
        .map(|r| r.to_string())
        .collect::<String>();
    assert!(text.contains("\"accept\""), "{text}");
    assert!(
        text.contains("\"saddr\"") && text.contains("\"daddr\""),
        "{text}"
    );
    // nft decodes our payload+bitwise+cmp back to the prefix.
    assert!(text.contains("\"len\":20"), "{text}");

    // An IPv6 rule cannot go into an `ip` table.
    let e = nft
        .add_forward_accept(&table, "fd00:251::/64".parse().unwrap(), "podwire:fw6")
        .unwrap_err();
    assert!(matches!(e, kernel::Error::Invalid { .. }), "{e}");
    assert_eq!(nft.delete_by_tag(&table, "podwire:fw").unwrap(), 2);
    nft.delete_table(&table).unwrap();
}

#[test]
fn kernel_errors_carry_errno() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let e = nft
        .delete_table(&Table::new(Family::Inet, "pw-never-created"))
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string()
            .starts_with("delete table inet pw-never-created: "),
        "{e}"
    );
}

/// The kernel echoes a new rule with its handle; deleting by tag names the handles it removed.
#[test]
fn handles_come_back_on_add_and_delete() {
    let ns = TestNs::new();
    let nft = Nftables::new_in(&ns.ns).unwrap();
    let table = Table::new(Family::Inet, "podwire");
    let mut made = Vec::new();
    for (i, tag) in ["pw:a", "pw:b"].iter().enumerate() {
        let src = format!("10.251.4.{}/32", i + 2).parse().unwrap();
        let h = nft
            .add_masquerade_handle(&table, src, Some("10.251.0.0/16".parse().unwrap()), tag)
            .unwrap()
            .expect("the kernel echoes the rule");
        made.push(h);
    }
    let listed: Vec<(u64, String)> = rules_json(&ns)
        .iter()
        .map(|r| {
            (
                r["handle"].as_u64().unwrap(),
                r["comment"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![(made[0], "pw:a".to_string()), (made[1], "pw:b".to_string())]
    );
    assert_eq!(
        nft.delete_by_tag_handles(&table, "pw:b").unwrap(),
        vec![made[1]]
    );
    assert!(nft
        .delete_by_tag_handles(&table, "pw:b")
        .unwrap()
        .is_empty());
}
