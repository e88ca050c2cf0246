//! The second controller: routes to every other node's pod CIDR ([`crate::peers`]: pure desired
//! state and diff, one kernel module).

use super::kernel_watch::WatchedLinks;
use super::{log, AgentConfig, Controller, Pass};
use crate::peers::kernel_io::{reconcile, Report};
use crate::peers::{Options, OwnNode, PeerNode};
use cni::{Error, Result};
use kernel::Netlink;
use std::time::{Duration, Instant};

pub struct Routing {
    nl: Netlink,
    opts: Options,
    /// Links whose addresses say nothing about the underlay (the pod bridge).
    skip: Vec<String>,
    /// Where the kernel watch learns which links this controller depends on.
    watched: WatchedLinks,
    /// This node's Node as last seen: it stands in while the object is gone.
    last_own: Option<PeerNode>,
}

impl Routing {
    pub fn new(cfg: &AgentConfig, watched: WatchedLinks) -> Result<Routing> {
        Ok(Routing {
            nl: Netlink::new().map_err(|e| Error::io(e.to_string()))?,
            opts: cfg.routing.clone(),
            skip: vec![cfg.setup.bridge.clone()],
            watched,
            last_own: None,
        })
    }
}

impl Controller for Routing {
    fn reconcile(&mut self, pass: &Pass<'_>) {
        let start = Instant::now();
        let nodes = pass.nodes.all();
        let own = OwnNode::find(&nodes, pass.node, self.last_own.as_ref());
        if let OwnNode::Listed(n) = &own {
            self.last_own = Some(n.clone());
        }
        match reconcile(&self.nl, &own, &nodes, &self.opts, &self.skip) {
            Ok(r) => {
                self.watched.set(&r.links);
                report(&r, pass.nodes.len(), start.elapsed(), pass.resync);
                let t = pass.telemetry;
                for (kind, n) in &r.kinds {
                    t.changed(NAME, kind, *n);
                }
                t.write_failures(NAME, "RouteProgrammingFailed", &r.failed);
                t.problems(NAME, &r.problems);
                t.metrics.set_peers(r.direct, r.vxlan, &r.problems);
            }
            Err(e) => {
                log(&format!("reconcile: {}", e.msg));
                pass.telemetry.failed("RoutingFailed", &e.msg);
            }
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

const NAME: &str = "routing";

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
