//! The node agent (`podwirectl node agent`, the DaemonSet's main container): one watch over all
//! Nodes keeps this node set up for its own pod CIDR and routed to every other node's.
//!
//! - [`config`]: what it is asked to do ([`AgentConfig`], built by the CLI from its flags).
//! - [`nodes`]: the Nodes it knows (kube-runtime's `watcher`: list, then watch from the list's
//!   resourceVersion; re-list on 410 Gone or a closed watch, with backoff). Nothing is
//!   reconciled before the first full list is in: an agent that restarts must not remove routes
//!   of nodes it has not heard of yet; after it, every pass is a full diff, so nodes deleted
//!   while the agent was down are swept.
//! - [`kernel_watch`]: rtnetlink notifications on a thread of their own: a deleted route or a
//!   flapped link triggers a pass, and a periodic resync (`resync`) catches anything else.
//! - The controllers, each keeping one part of the node as the cluster says, each a pure
//!   desired-state + diff module and one impure kernel module: [`own_setup`] (this node's
//!   bridge, rules and conflist: [`crate::setup`]) and [`routing`] (routes to the peers:
//!   [`crate::peers`]).
//! - NetworkPolicy ([`policy`], [`policy_cache`], [`policy_kernel`]; on unless
//!   `--network-policy=false`): three more watches (Pods, Namespaces, NetworkPolicies) feed a
//!   cache; a policy pass runs when they change (once every kind is listed), on each resync, and
//!   at once, before anything else, when the bridge plugin announces a pod at its ADD (a thread
//!   on the policy table's unclassified sets kicks the loop).
//! - The loop: Node events, kernel notifications, the resync tick and SIGTERM/SIGINT in one
//!   `select!`. A stop asked during a pass is taken once the pass is over (the select sees it
//!   first thing next); a stopped agent leaves the data path as it is, so pods keep their
//!   traffic while it restarts or is upgraded.
//! - Reconciling never flushes: it diffs, so a restart that finds everything in place writes
//!   nothing.
//! - What operators see ([`telemetry`]): `/healthz`, `/readyz` and `/metrics` on one listener
//!   ([`http`], `--metrics-addr`), problems as Events on this node's Node ([`events`]). Every
//!   controller reports through the [`Telemetry`] in its [`Pass`].

pub mod config;
pub mod events;
pub mod health;
pub mod http;
pub mod kernel_watch;
pub mod metrics;
pub mod nodes;
pub mod own_setup;
pub mod plugin_tables;
pub mod policy;
pub mod policy_cache;
pub mod policy_kernel;
pub mod policy_metrics;
pub mod routing;
pub mod telemetry;

pub use config::AgentConfig;
pub use nodes::NodeMap;
pub use telemetry::{Telemetry, Trigger};

use crate::kubernetes::{client, default_node_name, Fetch};
use cni::{Error, Result};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use policy_cache::PolicyObjects;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// One part of the node the agent keeps as the cluster says. Every pass calls each controller
/// in turn; a controller logs what it changed and what it could not do, and never stops the
/// others.
pub trait Controller {
    fn reconcile(&mut self, pass: &Pass<'_>);

    /// Its name in metrics (`controller` label) and logs.
    fn name(&self) -> &'static str {
        "controller"
    }

    /// When this controller needs a pass again without any event (a probe to repeat).
    fn wake_at(&self) -> Option<std::time::Instant> {
        None
    }
}

/// What one pass gives every controller.
pub struct Pass<'a> {
    /// This node's name.
    pub node: &'a str,
    /// Every Node, this one included (a full list has been received).
    pub nodes: &'a NodeMap,
    /// A periodic full pass: re-apply what is only applied on change, repeat what is wrong.
    pub resync: bool,
    /// Where the controller reports what it did and what is wrong (metrics, Events, health).
    pub telemetry: &'a Telemetry,
}

/// Why the loop woke up.
enum Wake {
    Stop(&'static str),
    Nodes(Box<Option<Watched<Node>>>),
    Pods(Box<Option<Watched<Pod>>>),
    Namespaces(Box<Option<Watched<Namespace>>>),
    Policies(Box<Option<Watched<DynamicObject>>>),
    /// The bridge plugin announced a pod at its CNI ADD: classify it now.
    Announced,
    /// A kernel change was heard: look in a moment.
    KernelHeard,
    /// The moment has come.
    KernelDue,
    Resync,
}

type Watched<K> = std::result::Result<Event<K>, watcher::Error>;
type Events<K> = BoxStream<'static, Watched<K>>;

/// A watch of every `K` (all namespaces), renewed every `timeout` seconds, with backoff.
fn watch_all<K>(api: kube::Api<K>, timeout: u32) -> Events<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Clone + Default + Eq + std::hash::Hash,
{
    let wc = watcher::Config::default().timeout(timeout);
    watcher::watcher(api, wc).default_backoff().boxed()
}

/// The same for raw NetworkPolicies.
fn watch_policies(client: kube::Client, timeout: u32) -> Events<DynamicObject> {
    let np = ApiResource::erase::<NetworkPolicy>(&());
    let api = kube::Api::<DynamicObject>::all_with(client, &np);
    let wc = watcher::Config::default().timeout(timeout);
    watcher::watcher(api, wc).default_backoff().boxed()
}

fn never<K: Send + 'static>() -> Events<K> {
    futures_util::stream::pending().boxed()
}

/// How long kernel notifications are gathered before one look: a burst (the agent's own writes
/// echo back too) costs one pass, and Node events are never held up meanwhile.
const KERNEL_SETTLE: Duration = Duration::from_millis(50);

/// Runs until SIGTERM/SIGINT (then `Ok`) or a fatal error.
pub fn run(cfg: &AgentConfig) -> Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(format!("start the Kubernetes client: {e}")))?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: &AgentConfig) -> Result<String> {
    // First: as a container's PID 1 a default SIGTERM would be ignored.
    let sig = |k: SignalKind| signal(k).map_err(|e| Error::io(format!("catch signals: {e}")));
    let (mut term, mut int) = (sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?);
    let tel = Telemetry::start(cfg)?;
    if cfg.test_hooks {
        // Tests only: SIGUSR2 stops the kernel watch, as a crash of its thread would.
        let mut usr2 = sig(SignalKind::user_defined2())?;
        let health = tel.health.clone();
        tokio::spawn(async move {
            usr2.recv().await;
            health.stop_kernel_watch();
        });
    }
    let name = match &cfg.node {
        Some(n) if !n.is_empty() => n.clone(),
        _ => default_node_name()?,
    };
    let mut f = Fetch::new(name.clone());
    f.kubeconfig = cfg.kubeconfig.clone();
    // Events and the policy watches share one client; the Node watch has its own, renewed when
    // an address of this node goes away (nodes::rewatch).
    let kube = client(&f).await?;
    tel.events.connect(kube.clone(), &name);

    let (kick_tx, mut kick_rx) = mpsc::unbounded_channel::<()>();
    let watched = kernel_watch::WatchedLinks::default();
    kernel_watch::spawn(kick_tx, watched.clone(), &tel)?;
    // The controllers, in the order a pass runs them: this node first, then its peers.
    let mut controllers: Vec<Box<dyn Controller>> = vec![
        Box::new(own_setup::OwnSetup::new(cfg.setup.clone())),
        Box::new(routing::Routing::new(cfg, watched.clone())?),
        Box::new(plugin_tables::PluginTables::new(
            cfg.cni_cache_dir.clone(),
            cfg.setup.network.clone(),
        )),
    ];

    let timeout = u32::try_from(cfg.watch_timeout.as_secs()).unwrap_or(u32::MAX);
    let mut events = nodes::watch(&f, timeout).await?;

    // NetworkPolicy: Pods everywhere (peers anywhere matter), Namespaces, NetworkPolicies (raw:
    // one that does not decode must close, not break the list).
    let (ann_tx, mut ann_rx) = mpsc::unbounded_channel::<()>();
    let mut policies = if cfg.network_policy {
        match policy_kernel::start(cfg, ann_tx, &tel.metrics) {
            Ok(p) => Some(p),
            Err(e) => {
                // Routing must go on; pods the plugin announces stay denied (never classified).
                log(&format!("NetworkPolicy NOT ENFORCED: {}", e.msg));
                None
            }
        }
    } else {
        match policy_kernel::remove() {
            Ok(true) => log("--network-policy=false: the policy table is removed"),
            Ok(false) => {}
            Err(e) => log(&format!(
                "--network-policy=false: remove the policy table: {}",
                e.msg
            )),
        }
        None
    };
    let mut objects = PolicyObjects::default();
    let (mut pods, mut namespaces, mut netpols): (
        Events<Pod>,
        Events<Namespace>,
        Events<DynamicObject>,
    ) = if policies.is_some() {
        (
            watch_all(kube::Api::all(kube.clone()), timeout),
            watch_all(kube::Api::all(kube.clone()), timeout),
            watch_policies(kube.clone(), timeout),
        )
    } else {
        (never(), never(), never())
    };
    let mut map = NodeMap::default();
    let mut resync = tokio::time::interval(cfg.resync.max(Duration::from_secs(1)));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    log(&format!(
        "agent for node {name}: watching Nodes ({:?} backend){}",
        cfg.routing.backend,
        if policies.is_some() {
            ", Pods, Namespaces and NetworkPolicies (NetworkPolicy enforced)"
        } else {
            " (NetworkPolicy not enforced)"
        }
    ));

    let mut kernel_due: Option<tokio::time::Instant> = None;
    loop {
        let due = kernel_due;
        let asked = controllers.iter().filter_map(|c| c.wake_at()).min();
        let wake = tokio::select! {
            // A stop comes before anything else that is waiting.
            biased;
            _ = term.recv() => Wake::Stop("SIGTERM"),
            _ = int.recv() => Wake::Stop("SIGINT"),
            // A pod waiting at its start comes before the API's news.
            Some(()) = ann_rx.recv() => Wake::Announced,
            e = events.next() => Wake::Nodes(Box::new(e)),
            e = pods.next() => Wake::Pods(Box::new(e)),
            e = namespaces.next() => Wake::Namespaces(Box::new(e)),
            e = netpols.next() => Wake::Policies(Box::new(e)),
            _ = kick_rx.recv() => Wake::KernelHeard,
            _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                if due.is_some() => Wake::KernelDue,
            _ = tokio::time::sleep_until(asked.map_or_else(tokio::time::Instant::now, Into::into)),
                if asked.is_some() => Wake::KernelDue,
            _ = resync.tick() => Wake::Resync,
        };
        tel.health.woke();
        let mut dirty = false;
        let mut full = false;
        let mut kernel = false;
        let mut policy_dirty = false;
        let mut announced = false;
        match wake {
            Wake::Stop(why) => {
                log(&format!("{why}: stopping, the data path stays as it is"));
                return Ok("podwire node: stopped".into());
            }
            Wake::Nodes(e) => match *e {
                None => return Err(Error::io("the Node watch ended")),
                Some(e) => dirty |= take(&mut map, e, &tel),
            },
            Wake::Pods(e) => match *e {
                None => return Err(Error::io("the Pod watch ended")),
                Some(e) => policy_dirty |= policy_event("Pod", e, |e| objects.pod_event(e)),
            },
            Wake::Namespaces(e) => match *e {
                None => return Err(Error::io("the Namespace watch ended")),
                Some(e) => {
                    policy_dirty |= policy_event("Namespace", e, |e| objects.namespace_event(e))
                }
            },
            Wake::Policies(e) => match *e {
                None => return Err(Error::io("the NetworkPolicy watch ended")),
                Some(e) => {
                    policy_dirty |= policy_event("NetworkPolicy", e, |e| objects.policy_event(e))
                }
            },
            Wake::Announced => announced = true,
            Wake::KernelHeard => {
                kernel_due.get_or_insert_with(|| tokio::time::Instant::now() + KERNEL_SETTLE);
                continue;
            }
            Wake::KernelDue => {
                kernel_due = None;
                dirty = true;
                kernel = true;
                if watched.take_address_removed() {
                    events = nodes::rewatch(&f, timeout, events).await;
                }
            }
            Wake::Resync => full = true,
        }
        // Everything already waiting (a list page, a burst of changes) goes into one pass.
        use futures_util::FutureExt;
        while let Some(Some(e)) = events.next().now_or_never() {
            let changed = take(&mut map, e, &tel);
            dirty |= changed;
            kernel &= !changed;
        }
        while let Some(Some(e)) = pods.next().now_or_never() {
            policy_dirty |= policy_event("Pod", e, |e| objects.pod_event(e));
        }
        while let Some(Some(e)) = namespaces.next().now_or_never() {
            policy_dirty |= policy_event("Namespace", e, |e| objects.namespace_event(e));
        }
        while let Some(Some(e)) = netpols.next().now_or_never() {
            policy_dirty |= policy_event("NetworkPolicy", e, |e| objects.policy_event(e));
        }
        while let Ok(()) = ann_rx.try_recv() {
            announced = true;
        }
        // A pod announced at its ADD first: its verdicts go in before anything else is done.
        if let Some(p) = policies.as_mut().filter(|_| objects.ready()) {
            if announced || policy_dirty || full {
                let why = match (announced, full) {
                    (true, _) => "pod added",
                    (_, true) => "resync",
                    _ => "API change",
                };
                p.pass(&name, full, &mut objects, why);
            }
        }
        if !map.ready || !(dirty || full) {
            continue;
        }
        let pass = Pass {
            node: &name,
            nodes: &map,
            resync: full,
            telemetry: &tel,
        };
        let trigger = match (full, kernel) {
            (true, _) => Trigger::Resync,
            (false, true) => Trigger::Kernel,
            (false, false) => Trigger::Nodes,
        };
        tel.pass(trigger, &mut controllers, &pass);
    }
}

/// Takes one event of a policy watch; true when what policy sees changed.
fn policy_event<K>(kind: &str, e: Watched<K>, apply: impl FnOnce(Event<K>) -> bool) -> bool {
    match e {
        Ok(e) => apply(e),
        Err(e) => {
            // Retried with backoff; meanwhile the table stays as it is (never opened).
            log(&format!("{kind} watch: {e}"));
            false
        }
    }
}

fn take(
    map: &mut NodeMap,
    e: std::result::Result<Event<Node>, watcher::Error>,
    tel: &Telemetry,
) -> bool {
    match e {
        Ok(e) => {
            if matches!(e, Event::Init) && map.ready {
                tel.metrics.relist("nodes");
            }
            map.apply(e)
        }
        Err(e) => {
            // The watcher retries with backoff (410 Gone means re-list): say it, keep going.
            log(&format!("Node watch: {e}"));
            let op = match e {
                watcher::Error::InitialListFailed(_) | watcher::Error::NoResourceVersion => "list",
                _ => "watch",
            };
            tel.metrics.api_error(op);
            tel.metrics.watch_restart("nodes");
            false
        }
    }
}

/// The agent's log line (stderr; what it changed goes to stdout).
pub(crate) fn log(m: &str) {
    eprintln!("podwire node: {m}");
}
