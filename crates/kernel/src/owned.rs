//! What podwire owns in the kernel, named once, low enough that every layer finds the same
//! objects: the plugins make them, node setup and the agent repair and remove them, `inspect`
//! reads them back.

use crate::nft::{Family, Table};

/// The route protocol on every route the node agent programs (`ip route ... proto 157`), so its
/// routes are told apart from anyone else's (a kernel monitor filters on it too).
pub const ROUTE_PROTOCOL: u8 = 157;

/// Node setup's forward-accept and masquerade rules.
pub const NODE_TABLE: &str = "podwire-node";
/// The bridge plugin's per-pod `ipMasq` rules.
pub const POD_MASQ_TABLE: &str = "podwire";
/// The bridge plugin's per-port anti-spoofing sets (bridge family).
pub const ANTISPOOF_TABLE: &str = "podwire-antispoof";
/// podwire-portmap's hostPort maps.
pub const PORTMAP_TABLE: &str = "podwire-portmap";

pub fn node_table() -> Table {
    Table::new(Family::Inet, NODE_TABLE)
}

pub fn pod_masq_table() -> Table {
    Table::new(Family::Inet, POD_MASQ_TABLE)
}

pub fn antispoof_table() -> Table {
    Table::new(Family::Bridge, ANTISPOOF_TABLE)
}

pub fn portmap_table() -> Table {
    Table::new(Family::Inet, PORTMAP_TABLE)
}

/// The tables the plugins create on first use and share between every pod of the node. They
/// outlive any one pod, so only an uninstall (`node teardown`) removes them, once no pod is left.
pub fn plugin_tables() -> [Table; 3] {
    [pod_masq_table(), antispoof_table(), portmap_table()]
}

/// The node agent's NetworkPolicy table (inet family: see docs/network-policy.md).
pub const POLICY_TABLE: &str = "podwire-policy";

pub fn policy_table() -> Table {
    Table::new(Family::Inet, POLICY_TABLE)
}

/// Pods the bridge plugin announced at ADD, whose policy the agent has not put in yet: traffic
/// from and to them is dropped (after the node exemption and conntrack replies) until the agent
/// removes them. Plain hash sets of addresses; each element's comment is
/// [`unclassified_comment`].
pub const UNCLASSIFIED_V4: &str = "unclassified-v4";
pub const UNCLASSIFIED_V6: &str = "unclassified-v6";

/// The unclassified set of an address's family.
pub fn unclassified_set(addr: &std::net::IpAddr) -> &'static str {
    if addr.is_ipv4() {
        UNCLASSIFIED_V4
    } else {
        UNCLASSIFIED_V6
    }
}

/// Longest element comment we write. The kernel takes an element's userdata length as a u8 (256
/// bytes silently stores none) and 6.18 refuses more than 251 bytes of text (EINVAL): a margin
/// below that.
const COMMENT_MAX: usize = 240;

/// Who an unclassified address belongs to, as its element comment says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnclassifiedTag {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub container_id: String,
}

/// `namespace/name/uid/containerid`, cut to what a comment holds: the container ID first (to
/// 12 characters, as `crictl` shows it), then the name (its head stays; the uid identifies the
/// pod exactly).
pub fn unclassified_comment(tag: &UnclassifiedTag) -> String {
    let fixed = tag.namespace.len() + tag.uid.len() + 3;
    let mut cid = tag.container_id.as_str();
    let mut name = tag.name.as_str();
    if fixed + name.len() + cid.len() > COMMENT_MAX {
        cid = &cid[..cid.len().min(12)];
    }
    if fixed + name.len() + cid.len() > COMMENT_MAX {
        let keep = COMMENT_MAX.saturating_sub(fixed + cid.len());
        let mut cut = keep.min(name.len());
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = &name[..cut];
    }
    format!("{}/{name}/{}/{cid}", tag.namespace, tag.uid)
}

/// Parses [`unclassified_comment`]'s format (Kubernetes names have no `/`).
pub fn parse_unclassified_comment(s: &str) -> Option<UnclassifiedTag> {
    let mut parts = s.splitn(4, '/');
    let namespace = parts.next()?.to_string();
    let name = parts.next()?.to_string();
    let uid = parts.next()?.to_string();
    let container_id = parts.next()?.to_string();
    (!namespace.is_empty() && !name.is_empty()).then_some(UnclassifiedTag {
        namespace,
        name,
        uid,
        container_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclassified_comments_round_trip_and_fit() {
        let t = UnclassifiedTag {
            namespace: "x".into(),
            name: "a".into(),
            uid: "0a1b2c3d-0000-1111-2222-333344445555".into(),
            container_id: "c".repeat(64),
        };
        let c = unclassified_comment(&t);
        assert_eq!(parse_unclassified_comment(&c), Some(t.clone()));
        let long = UnclassifiedTag {
            namespace: "n".repeat(63),
            name: "p".repeat(253),
            ..t
        };
        let c = unclassified_comment(&long);
        assert!(c.len() <= COMMENT_MAX, "{}", c.len());
        let back = parse_unclassified_comment(&c).unwrap();
        assert_eq!(back.uid, long.uid);
        assert_eq!(back.namespace, long.namespace);
        assert!(long.name.starts_with(&back.name) && !back.name.is_empty());
        assert!(long.container_id.starts_with(&back.container_id));
        assert_eq!(parse_unclassified_comment("no-slashes"), None);
    }
}
