//! What podwire owns in the kernel, named once, low enough that every layer finds the same
//! objects: the plugins make them, node setup and the agent repair and remove them, `inspect`
//! reads them back.

use crate::nft::{Family, Table};

/// The route protocol on every route the node agent programs (`ip route ... proto 157`), so its
/// routes are told apart from anyone else's (a kernel monitor filters on it too).
pub const ROUTE_PROTOCOL: u8 = 157;

/// Node setup puts this, then where the pods' MTU comes from, as the pod bridge's alias
/// (`podwire: mtu 1430 = eth0 1500 (default route) - 70 (VXLAN over IPv6)`): `node show` reads it.
pub const MTU_ALIAS_PREFIX: &str = "podwire: ";

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
