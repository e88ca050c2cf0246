//! The Nodes as the agent knows them: kube-runtime's watcher events folded into a small map of
//! [`PeerNode`]s, a reflector that keeps only what the controllers need, so 5,000 Nodes cost
//! little. Nothing is ready before the first full list is in (`InitDone`), and a re-list
//! replaces the whole map, so a list/watch gap can lose no node.

use crate::kubernetes::{client, peer_of, Fetch};
use crate::peers::PeerNode;
use cni::Result;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::collections::BTreeMap;

/// The Node watch: kube-runtime's watcher events, retried with backoff.
pub type Events = BoxStream<'static, std::result::Result<Event<Node>, watcher::Error>>;

/// Opens the Node watch over a client of its own (`timeout`: seconds the API server keeps one
/// watch request open).
pub async fn watch(f: &Fetch, timeout: u32) -> Result<Events> {
    let api: kube::Api<Node> = kube::Api::all(client(f).await?);
    let wc = watcher::Config::default().timeout(timeout);
    Ok(watcher::watcher(api, wc).default_backoff().boxed())
}

/// The watch again over a new client (a new connection, from an address this node still has),
/// after one of this node's addresses went away: the old connection may have left from it, and
/// would then hear nothing more until its timeout while looking alive. A re-list follows, which
/// [`NodeMap`] takes without losing anything. If no client can be made, the old watch stays.
pub async fn rewatch(f: &Fetch, timeout: u32, old: Events) -> Events {
    match watch(f, timeout).await {
        Ok(new) => {
            super::log(
                "an address of this node was removed: watching Nodes again over a new \
                 connection",
            );
            new
        }
        Err(e) => {
            super::log(&format!(
                "watch Nodes again: {}: keeping the watch as it is",
                e.msg
            ));
            old
        }
    }
}

/// The Nodes as the agent knows them, built from watcher events.
#[derive(Default)]
pub struct NodeMap {
    nodes: BTreeMap<String, PeerNode>,
    /// Filled between `Init` and `InitDone` (a list in progress), then swapped in whole.
    listing: Option<BTreeMap<String, PeerNode>>,
    /// A full list has been received.
    pub ready: bool,
}

impl NodeMap {
    /// Applies one event; true when the routing-relevant view changed (or a list completed).
    pub fn apply(&mut self, e: Event<Node>) -> bool {
        match e {
            Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(n) => {
                let p = peer_of(&n);
                self.listing
                    .get_or_insert_with(BTreeMap::new)
                    .insert(p.name.clone(), p);
                false
            }
            Event::InitDone => {
                self.nodes = self.listing.take().unwrap_or_default();
                self.ready = true;
                true
            }
            Event::Apply(n) => {
                let p = peer_of(&n);
                self.nodes.get(&p.name) != Some(&p) && {
                    self.nodes.insert(p.name.clone(), p);
                    true
                }
            }
            Event::Delete(n) => {
                let name = n.metadata.name.unwrap_or_default();
                self.nodes.remove(&name).is_some()
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&PeerNode> {
        self.nodes.get(name)
    }

    pub fn all(&self) -> Vec<PeerNode> {
        self.nodes.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};

    fn node(name: &str, cidr: &str, ip: &str) -> Node {
        Node {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidrs: Some(vec![cidr.into()]),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(vec![
                    NodeAddress {
                        type_: "Hostname".into(),
                        address: name.into(),
                    },
                    NodeAddress {
                        type_: "InternalIP".into(),
                        address: ip.into(),
                    },
                ]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn nothing_is_ready_before_the_first_full_list() {
        let mut m = NodeMap::default();
        assert!(!m.apply(Event::Init));
        assert!(!m.apply(Event::InitApply(node("a", "10.244.1.0/24", "192.168.1.1"))));
        assert!(!m.ready);
        assert!(m.apply(Event::InitDone));
        assert!(m.ready);
        assert_eq!(
            m.get("a").unwrap().internal,
            vec!["192.168.1.1".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn a_relist_replaces_the_whole_map_so_no_deleted_node_survives() {
        let mut m = NodeMap::default();
        m.apply(Event::Init);
        m.apply(Event::InitApply(node("a", "10.244.1.0/24", "192.168.1.1")));
        m.apply(Event::InitApply(node("b", "10.244.2.0/24", "192.168.1.2")));
        m.apply(Event::InitDone);
        // The watch broke (410 Gone); b was deleted and c added meanwhile.
        m.apply(Event::Init);
        m.apply(Event::InitApply(node("a", "10.244.1.0/24", "192.168.1.1")));
        m.apply(Event::InitApply(node("c", "10.244.3.0/24", "192.168.1.3")));
        assert!(
            m.get("b").is_some(),
            "the old view holds until the list is complete"
        );
        m.apply(Event::InitDone);
        let names: Vec<String> = m.all().into_iter().map(|n| n.name).collect();
        assert_eq!(names, vec!["a", "c"]);
    }

    #[test]
    fn only_routing_relevant_changes_count() {
        let mut m = NodeMap::default();
        m.apply(Event::Init);
        m.apply(Event::InitDone);
        assert!(m.apply(Event::Apply(node("a", "10.244.1.0/24", "192.168.1.1"))));
        // A status heartbeat: same CIDRs and addresses.
        assert!(!m.apply(Event::Apply(node("a", "10.244.1.0/24", "192.168.1.1"))));
        assert!(m.apply(Event::Apply(node("a", "10.244.1.0/24", "192.168.1.9"))));
        assert!(m.apply(Event::Delete(node("a", "10.244.1.0/24", "192.168.1.9"))));
        assert!(!m.apply(Event::Delete(node("a", "10.244.1.0/24", "192.168.1.9"))));
        assert!(m.is_empty());
    }
}
