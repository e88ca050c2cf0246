//! The first controller: this node's own setup (bridge, forwarding, rules, conflist) for the pod
//! CIDRs its Node object holds, applied when they change, when the MTU found from the underlay
//! changes (then the pods already there follow in place), and on every resync.

use super::{log, Controller, Pass};
use crate::config::NodeConfig;
use ipnet::IpNet;

pub struct OwnSetup {
    /// The setup asked for, pod CIDRs left empty.
    template: NodeConfig,
    /// The pod CIDRs of the last setup that went through.
    applied: Option<Vec<IpNet>>,
    /// The pods' MTU of the last setup that went through (`None`: the kernel's default).
    applied_mtu: Option<u32>,
    /// Reads the underlay's MTU between setups (`None` if netlink could not be opened).
    nl: Option<kernel::Netlink>,
}

impl OwnSetup {
    pub fn new(template: NodeConfig) -> OwnSetup {
        OwnSetup {
            template,
            applied: None,
            applied_mtu: None,
            nl: kernel::Netlink::new().ok(),
        }
    }

    /// The pods' MTU a setup of `config` would choose now; `None` when it cannot be told (then
    /// only a CIDR change or a resync runs setup).
    fn mtu_now(&self, config: &NodeConfig) -> Option<Option<u32>> {
        let nl = self.nl.as_ref()?;
        crate::mtu::resolve(nl, config)
            .ok()
            .map(|c| c.map(|c| c.pod))
    }
}

impl Controller for OwnSetup {
    fn reconcile(&mut self, pass: &Pass<'_>) {
        let own = pass
            .nodes
            .get(pass.node)
            .filter(|n| !n.pod_cidrs.is_empty());
        // Waiting for a pod CIDR is a problem of this controller's, shown as a gauge.
        let waiting = self.applied.is_none() && own.is_none();
        pass.telemetry
            .metrics
            .set_problem(NAME, "no_pod_cidr", usize::from(waiting));
        let Some(own) = own else {
            if self.applied.is_none() {
                log(&format!(
                    "node {} has no podCIDR yet (or no Node object): waiting; peers are routed \
                     meanwhile",
                    pass.node
                ));
            }
            return;
        };
        let c = own.pod_cidrs.clone();
        let config = NodeConfig {
            pod_cidrs: c.clone(),
            node_addresses: own.internal.iter().chain(&own.external).copied().collect(),
            ..self.template.clone()
        };
        let mtu = self.mtu_now(&config);
        let mtu_moved = mtu.is_some_and(|m| self.applied.is_some() && m != self.applied_mtu);
        if !(pass.resync || self.applied.as_ref() != Some(&c) || mtu_moved) {
            return;
        }
        match crate::setup::setup(config) {
            Ok(o) => {
                if o.changed() {
                    println!("{}", o.summary());
                }
                pass.telemetry.changed(NAME, "node_setup", o.changes.len());
                if let (true, Some(Some(m))) = (mtu_moved, mtu) {
                    log(&format!(
                        "the underlay's MTU changed: pods now get mtu {m} (the pods already \
                         there too, in place)"
                    ));
                }
                self.applied = Some(c);
                self.applied_mtu = mtu.unwrap_or(self.applied_mtu);
            }
            Err(e) => {
                log(&e.msg);
                pass.telemetry.failed("NodeSetupFailed", &e.msg);
            }
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

const NAME: &str = "node_setup";
