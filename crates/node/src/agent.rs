//! The node agent (`podwirectl node setup --from-kubernetes --watch`, the DaemonSet's mode): one
//! watch over all Nodes keeps this node set up for its own pod CIDR and routed to every other
//! node's.
//!
//! - Nodes come from kube-runtime's `watcher` (list, then watch from the list's resourceVersion;
//!   re-list on 410 Gone or a closed watch, with backoff), folded into a small map of
//!   [`PeerNode`]s: a reflector that keeps only what routing needs, so 5,000 Nodes cost little.
//!   Nothing is reconciled before the first full list is in (`InitDone`): an agent that restarts
//!   must not remove routes of nodes it has not heard of yet; after it, every reconcile is a
//!   full diff, so nodes deleted while the agent was down are swept, and a list/watch gap can
//!   lose no node (the re-list's `InitDone` replaces the whole map).
//! - The kernel is watched too (rtnetlink notifications on a thread of its own): a deleted route
//!   or a flapped link triggers a reconcile, and a periodic resync (`--resync`) catches anything
//!   else.
//! - Reconciling never flushes: it diffs, so a restart or upgrade that finds everything in place
//!   writes nothing and pod traffic never stops.

use crate::cli::SetupArgs;
use crate::kubernetes::{client, default_node_name, peer_of, Fetch};
use crate::peers::kernel_io::{reconcile, Report};
use crate::peers::{Options, PeerNode};
use cni::{Error, Result};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kernel::{KernelEvent, Monitor, Netlink};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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

/// Why the loop woke up.
enum Wake {
    Nodes(Box<Option<std::result::Result<Event<Node>, watcher::Error>>>),
    /// A kernel change was heard: look in a moment.
    KernelHeard,
    /// The moment has come.
    KernelDue,
    Resync,
}

/// How long kernel notifications are gathered before one look: a burst (the agent's own writes
/// echo back too) costs one reconcile, and Node events are never held up meanwhile.
const KERNEL_SETTLE: Duration = Duration::from_millis(50);

/// Runs until SIGTERM/SIGINT (the caller installed the handlers) or a fatal error.
pub fn run(a: &SetupArgs) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("start the Kubernetes client: {e}")))?;
    rt.block_on(run_async(a))
}

async fn run_async(a: &SetupArgs) -> Result<String> {
    let name = match &a.node {
        Some(n) if !n.is_empty() => n.clone(),
        _ => default_node_name()?,
    };
    let mut f = Fetch::new(name.clone());
    f.kubeconfig = a.kubeconfig.clone();
    let api: kube::Api<Node> = kube::Api::all(client(&f).await?);
    let opts = Options {
        backend: a.backend,
        vni: a.vxlan_vni,
        port: a.vxlan_port,
    };
    let skip = vec![a.bridge.clone()];
    let nl = Netlink::new().map_err(|e| Error::io(e.to_string()))?;

    let (kick_tx, mut kick_rx) = mpsc::unbounded_channel::<()>();
    let watched = WatchedLinks::default();
    spawn_kernel_watch(kick_tx, watched.clone())?;

    let wc = watcher::Config::default().timeout(a.watch_timeout);
    let mut events = watcher::watcher(api, wc).default_backoff().boxed();
    let mut map = NodeMap::default();
    let mut own_cidrs: Option<Vec<String>> = None;
    let mut resync = tokio::time::interval(Duration::from_secs(a.resync.max(1)));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    log(&format!(
        "agent for node {name}: watching Nodes ({:?} backend)",
        opts.backend
    ));

    let mut kernel_due: Option<tokio::time::Instant> = None;
    loop {
        let due = kernel_due;
        let wake = tokio::select! {
            e = events.next() => Wake::Nodes(Box::new(e)),
            _ = kick_rx.recv() => Wake::KernelHeard,
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                if due.is_some() => Wake::KernelDue,
            _ = resync.tick() => Wake::Resync,
        };
        let mut dirty = false;
        let mut full = false;
        match wake {
            Wake::Nodes(e) => match *e {
                None => return Err(Error::io("the Node watch ended")),
                Some(e) => dirty |= take(&mut map, e),
            },
            Wake::KernelHeard => {
                kernel_due.get_or_insert_with(|| tokio::time::Instant::now() + KERNEL_SETTLE);
                continue;
            }
            Wake::KernelDue => {
                kernel_due = None;
                dirty = true;
            }
            Wake::Resync => full = true,
        }
        // Everything already waiting (a list page, a burst of changes) goes into one reconcile.
        while let Some(Some(e)) = futures_util::FutureExt::now_or_never(events.next()) {
            dirty |= take(&mut map, e);
        }
        if !map.ready || !(dirty || full) {
            continue;
        }
        if crate::cli::stop_requested() {
            return Ok("podwire node: stopped".into());
        }
        let _busy = crate::cli::busy();
        // This node: (re)apply node setup when its pod CIDRs change, and on every resync.
        let cidrs: Option<Vec<String>> = map
            .get(&name)
            .filter(|n| !n.pod_cidrs.is_empty())
            .map(|n| n.pod_cidrs.iter().map(ToString::to_string).collect());
        match &cidrs {
            None if own_cidrs.is_none() => log(&format!(
                "node {name} has no podCIDR yet (or no Node object): waiting; peers are routed meanwhile"
            )),
            Some(c) if full || own_cidrs.as_ref() != Some(c) => match a
                .node_config(c)
                .and_then(crate::setup::setup)
            {
                Ok(o) => {
                    if o.changed() {
                        println!("{}", o.summary());
                    }
                    own_cidrs = cidrs.clone();
                }
                Err(e) => log(&e.msg),
            },
            _ => {}
        }
        let start = Instant::now();
        match reconcile(&nl, &name, &map.all(), &opts, &skip) {
            Ok(r) => {
                watched.set(&r.links);
                report(&r, map.len(), start.elapsed(), full)
            }
            Err(e) => log(&format!("reconcile: {}", e.msg)),
        }
    }
}

fn take(map: &mut NodeMap, e: std::result::Result<Event<Node>, watcher::Error>) -> bool {
    match e {
        Ok(e) => map.apply(e),
        Err(e) => {
            // The watcher retries with backoff (410 Gone means re-list): say it, keep going.
            log(&format!("Node watch: {e}"));
            false
        }
    }
}

fn report(r: &Report, nodes: usize, took: Duration, resync: bool) {
    if !r.changes.is_empty() {
        log(&format!(
            "{} nodes, {} peer routes: {} changes in {:.1} ms",
            nodes,
            r.desired.routes.len(),
            r.changes.len(),
            took.as_secs_f64() * 1e3
        ));
        for c in &r.changes {
            println!("  {c}");
        }
    }
    // Problems are said when something changed or on a resync, not on every kernel echo.
    if !r.changes.is_empty() || resync {
        for p in &r.problems {
            log(&format!("not routed: {p}"));
        }
    }
    for f in &r.failed {
        log(&format!("failed (retried on the next resync): {f}"));
    }
}

fn log(m: &str) {
    eprintln!("podwire node: {m}");
}

/// A thread reading rtnetlink notifications in this netns; anything that may undo the agent's
/// work kicks the loop.
fn spawn_kernel_watch(kick: mpsc::UnboundedSender<()>, watched: WatchedLinks) -> Result<()> {
    let mut mon = Monitor::new().map_err(|e| Error::io(e.to_string()))?;
    std::thread::Builder::new()
        .name("kernel-watch".into())
        .spawn(move || loop {
            let Ok(events) = mon.recv() else { return };
            let links = watched.get();
            if events.iter().any(|e| relevant(e, &links)) && kick.send(()).is_err() {
                return;
            }
        })
        .map_err(|e| Error::io(format!("start the kernel watch: {e}")))?;
    Ok(())
}

/// The links the last reconcile depended on (the underlay, podwire's VXLAN devices), shared
/// with the kernel-watch thread.
#[derive(Clone, Default)]
struct WatchedLinks(std::sync::Arc<std::sync::Mutex<HashSet<u32>>>);

impl WatchedLinks {
    fn set(&self, links: &[u32]) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = links.iter().copied().collect();
    }

    fn get(&self) -> HashSet<u32> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Whether a notification can mean the agent's work was undone. Pods starting and stopping
/// (their veths, their neighbour entries on the bridge) never do, so they cost no reconcile.
fn relevant(e: &KernelEvent, links: &HashSet<u32>) -> bool {
    match e {
        // A link that flapped loses its routes silently (IPv4 sends no RTM_DELROUTE for them).
        KernelEvent::Link { index, .. } => links.contains(index),
        // An address decides what is on-link and where VXLAN leaves from (a new uplink counts).
        KernelEvent::Address { .. } | KernelEvent::Overflow => true,
        KernelEvent::Route {
            protocol, deleted, ..
        } => *deleted && *protocol == crate::peers::ROUTE_PROTOCOL,
        KernelEvent::Neighbour { ifindex, deleted } => *deleted && links.contains(ifindex),
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
    fn pod_churn_is_not_a_reason_to_reconcile() {
        let links: HashSet<u32> = [2, 10].into_iter().collect(); // eth0, podwire.vxlan
        let link = |index, deleted| KernelEvent::Link { index, deleted };
        assert!(relevant(&link(2, false), &links), "the underlay flapped");
        assert!(!relevant(&link(57, false), &links), "a pod's veth came up");
        assert!(!relevant(&link(57, true), &links), "a pod's veth went");
        let neigh = |ifindex, deleted| KernelEvent::Neighbour { ifindex, deleted };
        assert!(
            relevant(&neigh(10, true), &links),
            "a VXLAN peer's entry was removed"
        );
        assert!(
            !relevant(&neigh(5, true), &links),
            "an entry on the pod bridge aged out"
        );
        let route = |protocol, deleted| KernelEvent::Route {
            dst: None,
            protocol,
            deleted,
        };
        assert!(relevant(&route(157, true), &links));
        assert!(!relevant(&route(2, true), &links));
        let addr = KernelEvent::Address {
            index: 99,
            deleted: false,
        };
        assert!(
            relevant(&addr, &links),
            "any address may change what is on-link"
        );
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
