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
//!   [`crate::peers`]). A new one (NetworkPolicy) implements [`Controller`] and joins the list
//!   in [`run`].
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
pub mod routing;
pub mod telemetry;

pub use config::AgentConfig;
pub use nodes::NodeMap;
pub use telemetry::{Telemetry, Trigger};

use crate::kubernetes::{client, default_node_name, Fetch};
use cni::{Error, Result};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::watcher::{self, Event};
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
    Nodes(Box<Option<std::result::Result<Event<Node>, watcher::Error>>>),
    /// A kernel change was heard: look in a moment.
    KernelHeard,
    /// The moment has come.
    KernelDue,
    Resync,
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
    // Events go out over a client of their own: the Node watch renews its connection when an
    // address of this node goes away (nodes::rewatch).
    tel.events.connect(client(&f).await?, &name);

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
    let mut map = NodeMap::default();
    let mut resync = tokio::time::interval(cfg.resync.max(Duration::from_secs(1)));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    log(&format!(
        "agent for node {name}: watching Nodes ({:?} backend)",
        cfg.routing.backend
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
            e = events.next() => Wake::Nodes(Box::new(e)),
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
        match wake {
            Wake::Stop(why) => {
                log(&format!("{why}: stopping, the data path stays as it is"));
                return Ok("podwire node: stopped".into());
            }
            Wake::Nodes(e) => match *e {
                None => return Err(Error::io("the Node watch ended")),
                Some(e) => dirty |= take(&mut map, e, &tel),
            },
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
        while let Some(Some(e)) = futures_util::FutureExt::now_or_never(events.next()) {
            let changed = take(&mut map, e, &tel);
            dirty |= changed;
            kernel &= !changed;
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
