//! The first controller: this node's own setup (bridge, forwarding, rules, conflist) for the pod
//! CIDRs its Node object holds, applied when they change and on every resync.

use super::{log, Controller, Pass};
use crate::config::NodeConfig;
use ipnet::IpNet;

pub struct OwnSetup {
    /// The setup asked for, pod CIDRs left empty.
    template: NodeConfig,
    /// The pod CIDRs of the last setup that went through.
    applied: Option<Vec<IpNet>>,
}

impl OwnSetup {
    pub fn new(template: NodeConfig) -> OwnSetup {
        OwnSetup {
            template,
            applied: None,
        }
    }
}

impl Controller for OwnSetup {
    fn reconcile(&mut self, pass: &Pass<'_>) {
        let cidrs = pass
            .nodes
            .get(pass.node)
            .filter(|n| !n.pod_cidrs.is_empty())
            .map(|n| n.pod_cidrs.clone());
        match cidrs {
            None if self.applied.is_none() => log(&format!(
                "node {} has no podCIDR yet (or no Node object): waiting; peers are routed meanwhile",
                pass.node
            )),
            Some(c) if pass.resync || self.applied.as_ref() != Some(&c) => {
                let config = NodeConfig {
                    pod_cidrs: c.clone(),
                    ..self.template.clone()
                };
                match crate::setup::setup(config) {
                    Ok(o) => {
                        if o.changed() {
                            println!("{}", o.summary());
                        }
                        pass.telemetry.changed(NAME, "node_setup", o.changes.len());
                        self.applied = Some(c);
                    }
                    Err(e) => {
                        log(&e.msg);
                        pass.telemetry.failed("NodeSetupFailed", &e.msg);
                    }
                }
            }
            _ => {}
        }
        // Waiting for a pod CIDR is a problem of this controller's, shown as a gauge.
        let waiting = self.applied.is_none()
            && pass
                .nodes
                .get(pass.node)
                .is_none_or(|n| n.pod_cidrs.is_empty());
        pass.telemetry
            .metrics
            .set_problem(NAME, "no_pod_cidr", usize::from(waiting));
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

const NAME: &str = "node_setup";
