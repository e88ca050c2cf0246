//! The second controller: routes to every other node's pod CIDR ([`crate::peers`]: pure desired
//! state and diff, one kernel module).

use super::kernel_watch::WatchedLinks;
use super::{log, AgentConfig, Controller, Pass};
use crate::peers::kernel_io::{reconcile, Report};
use crate::peers::probe::ProbeBook;
use crate::peers::{Options, OwnNode, PeerNode, Via};
use cni::{Error, Result};
use ipnet::IpNet;
use kernel::Netlink;
use std::collections::HashMap;
use std::path::PathBuf;
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
    /// What the direct-path probes found (issue #23).
    probes: ProbeBook,
    /// Each peer CIDR's way as last said in the log: said again only when it changes.
    paths: HashMap<IpNet, String>,
    /// Where /proc/sys is (rp_filter of the VXLAN device).
    sysctl_dir: PathBuf,
    /// When the last pass ran: a probe that could not run (no gateway yet, this node's Node
    /// object gone) is not due again at once, or the loop would spin.
    last_pass: Instant,
    /// Where the peers this pass could not route are written for `podwirectl node show`
    /// (issue #22 item 10: the kernel cannot say what was refused), and what was written last.
    state_file: PathBuf,
    written: Option<String>,
}

impl Routing {
    pub fn new(cfg: &AgentConfig, watched: WatchedLinks) -> Result<Routing> {
        Ok(Routing {
            nl: Netlink::new().map_err(|e| Error::io(e.to_string()))?,
            opts: cfg.routing.clone(),
            skip: vec![cfg.setup.bridge.clone()],
            watched,
            last_own: None,
            probes: ProbeBook::default(),
            paths: HashMap::new(),
            sysctl_dir: cfg.setup.sysctl_dir.clone(),
            last_pass: Instant::now(),
            state_file: cfg.setup.state_dir.join(STATE_FILE),
            written: None,
        })
    }
}

impl Controller for Routing {
    /// The next direct-path probe (issue #23) needs a pass even when nothing else happens.
    fn wake_at(&self) -> Option<Instant> {
        let soonest = self.last_pass + Duration::from_secs(1);
        self.probes.next_due().map(|t| t.max(soonest))
    }

    fn reconcile(&mut self, pass: &Pass<'_>) {
        let start = Instant::now();
        self.last_pass = start;
        let nodes = pass.nodes.all();
        let own = OwnNode::find(&nodes, pass.node, self.last_own.as_ref());
        if let OwnNode::Listed(n) = &own {
            self.last_own = Some(n.clone());
        }
        match reconcile(
            &self.nl,
            &own,
            &nodes,
            &self.opts,
            &self.skip,
            &mut self.probes,
        ) {
            Ok(r) => {
                self.watched.set(&r.links);
                self.say_paths(&r);
                self.loose_rp_filter(&r);
                self.write_state(pass.node, &r);
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

/// The file in the agent's state directory that `podwirectl node show` reads the peers it could
/// not route from (inspect::routing::STATE_FILE: keep in step).
pub const STATE_FILE: &str = "routing.json";

/// `{"node": …, "problems": [{"kind", "reason", "text", "unrouted"}]}`.
pub fn state_json(node: &str, problems: &[crate::peers::Problem]) -> serde_json::Value {
    serde_json::json!({
        "node": node,
        "problems": problems.iter().map(|p| serde_json::json!({
            "kind": p.kind.label(),
            "reason": p.kind.reason(),
            "text": p.text,
            "unrouted": p.unrouted,
        })).collect::<Vec<_>>(),
    })
}

impl Routing {
    /// Writes the problems of the last pass (if they changed) for `podwirectl node show`.
    fn write_state(&mut self, node: &str, r: &Report) {
        let text = state_json(node, &r.problems).to_string();
        if self.written.as_deref() == Some(text.as_str()) {
            return;
        }
        match crate::files::write_atomic(&self.state_file, text.as_bytes(), 0o644) {
            Ok(_) => self.written = Some(text),
            Err(e) => log(&format!(
                "routing: write {}: {}",
                self.state_file.display(),
                e.msg
            )),
        }
    }

    /// Each peer's way and why, when it is new or changed.
    fn say_paths(&mut self, r: &Report) {
        let mut now = HashMap::new();
        for pr in &r.desired.routes {
            let line = match &pr.via {
                Via::Direct { gateway } => format!("direct via {gateway}"),
                Via::Vxlan { vtep, .. } => format!("VXLAN to {vtep}"),
            };
            let line = format!("{line} ({})", pr.why.describe());
            if self.paths.get(&pr.dst) != Some(&line) {
                log(&format!("path to node {} {}: {line}", pr.node, pr.dst));
            }
            now.insert(pr.dst, line);
        }
        self.paths = now;
    }

    /// A peer may reach this node over VXLAN while this node routes it directly (their probes
    /// disagreed for a moment, or the fabric filters one way only): its packets then arrive on
    /// podwire.vxlan while the way back is the underlay, which strict reverse-path filtering
    /// drops. Loose (2) still drops sources with no route at all.
    fn loose_rp_filter(&self, r: &Report) {
        if !r
            .desired
            .devices
            .iter()
            .any(|d| d.name == crate::peers::VXLAN_DEVICE_V4)
        {
            return;
        }
        let key = kernel::sysctl::ipv4_conf(crate::peers::VXLAN_DEVICE_V4, "rp_filter");
        if crate::forwarding::read(&self.sysctl_dir, &key).is_ok_and(|v| v.trim() != "2") {
            match crate::forwarding::write(&self.sysctl_dir, &key, "2") {
                Ok(()) => log(&format!("{key} = 2 (loose: asymmetric peer paths pass)")),
                Err(e) => log(&format!("{key}: {}", e.msg)),
            }
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
