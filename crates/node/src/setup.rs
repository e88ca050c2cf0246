//! `setup` and `teardown`: the talk's configure.sh, made safe to run twice and undoable. Both act
//! on the calling thread's network namespace.
//!
//! Setup order: bridge, forwarding, nftables, then the conflist last, because a runtime starts
//! pods as soon as it sees a conflist and they should find the node ready. Teardown goes the
//! other way: the conflist first, so no new pod starts on a network being taken down.

use crate::config::{NodeConfig, Plan};
use crate::state::{State, Store};
use crate::{bridge, conflist, files, forwarding, rules, Changes};
use cni::{Error, Result};
use kernel::nft::Nftables;
use kernel::Netlink;
use std::path::{Path, PathBuf};

/// What a run did: one line per change (empty when everything was already in place).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub changes: Changes,
    /// One line: what the node is now set up for (or that it was torn down).
    pub headline: String,
}

impl Outcome {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The headline, then the changes indented (or "nothing changed").
    pub fn summary(&self) -> String {
        let mut s = self.headline.clone();
        if self.changes.is_empty() {
            s.push_str("\n  nothing changed");
        }
        for c in &self.changes {
            s.push_str("\n  ");
            s.push_str(c);
        }
        s
    }
}

fn kernel_err(e: kernel::Error) -> Error {
    Error::io(e.to_string())
}

/// Brings this netns and the config directory to `config`: bridge with gateway(s), forwarding,
/// the nftables table, the conflist. A second run with the same config changes nothing; another
/// pod CIDR replaces what the previous run set.
pub fn setup(config: NodeConfig) -> Result<Outcome> {
    let plan = Plan::new(config)?;
    let c = &plan.config;
    let store = Store::lock(&c.state_dir)?;
    let mut state = store.load()?;
    let nl = Netlink::new().map_err(kernel_err)?;
    let nft = Nftables::new().map_err(kernel_err)?;
    let mut changes = Changes::new();

    let mut br = state.bridge.take();
    bridge::apply(&nl, &plan, &mut br, &mut changes, &mut |b| {
        store.save(&State {
            bridge: b.clone(),
            ..state.clone()
        })
    })?;
    state.bridge = br;

    let keys: Vec<&str> = plan
        .families
        .iter()
        .map(|f| forwarding::key(f.is_v6()))
        .collect();
    let mut fw = std::mem::take(&mut state.forwarding);
    forwarding::apply(&c.sysctl_dir, &keys, &mut fw, &mut changes, &mut |f| {
        store.save(&State {
            forwarding: f.clone(),
            ..state.clone()
        })
    })?;
    state.forwarding = fw;

    state.nft_table = Some(rules::table_label());
    store.save(&state)?;
    rules::apply(&nft, &plan, &mut changes)?;

    let path = plan.conf_path();
    let old = state.conflist.replace(path.clone());
    store.save(&state)?;
    if files::write_atomic(&path, &conflist::render_bytes(&plan), 0o644)? {
        changes.push(format!("wrote {}", path.display()));
    }
    if let Some(old) = old.filter(|o| *o != path) {
        if files::remove(&old)? {
            changes.push(format!("removed {}", old.display()));
        }
    }

    state.pod_cidrs = plan.families.iter().map(|f| f.pod_cidr).collect();
    state.cluster_cidrs = plan.families.iter().map(|f| f.cluster_cidr).collect();
    store.save(&state)?;
    Ok(Outcome {
        changes,
        headline: headline(&plan),
    })
}

fn headline(plan: &Plan) -> String {
    let c = &plan.config;
    let list = |v: Vec<String>| v.join(", ");
    format!(
        "podwire node: pod CIDR {} in cluster CIDR {}, bridge {} with gateway {}, {} ({})",
        list(
            plan.families
                .iter()
                .map(|f| f.pod_cidr.to_string())
                .collect()
        ),
        list(
            plan.families
                .iter()
                .map(|f| f.cluster_cidr.to_string())
                .collect()
        ),
        c.bridge,
        list(plan.gateways().iter().map(ToString::to_string).collect()),
        plan.conf_path().display(),
        if conflist::portmap_installed(plan) {
            "chaining podwire-portmap".to_string()
        } else {
            format!(
                "chaining podwire-portmap (not yet in {}: run node install-cni)",
                c.cni_bin_dir.display()
            )
        },
    )
}

/// Where teardown finds what setup recorded.
#[derive(Clone, Debug)]
pub struct TeardownOptions {
    pub state_dir: PathBuf,
    pub sysctl_dir: PathBuf,
    /// Delete the bridge even with pods still attached to it.
    pub force: bool,
    /// The conf dir and bridge the caller says setup was given: checked against the state
    /// before anything is removed, so a teardown meant for another setup changes nothing.
    pub conf_dir: Option<PathBuf>,
    pub bridge: Option<String>,
}

impl Default for TeardownOptions {
    fn default() -> Self {
        TeardownOptions {
            state_dir: crate::config::DEFAULT_STATE_DIR.into(),
            sysctl_dir: crate::config::DEFAULT_SYSCTL_DIR.into(),
            force: false,
            conf_dir: None,
            bridge: None,
        }
    }
}

/// `--conf-dir`/`--bridge` given to teardown must be the ones setup recorded.
fn check_same_setup(opts: &TeardownOptions, state: &State, file: &Path) -> Result<()> {
    let mismatch = |flag: &str, given: &dyn std::fmt::Display, recorded: String| {
        Err(Error::invalid_config(format!(
            "{flag} {given} is not what setup was given: {} records {recorded}; \
             give setup's own values, or leave {flag} out",
            file.display()
        )))
    };
    if state.is_empty() {
        return Ok(()); // nothing set up here: nothing to remove, nothing to mismatch
    }
    if let Some(given) = &opts.bridge {
        match &state.bridge {
            Some(b) if &b.name == given => {}
            Some(b) => return mismatch("--bridge", given, format!("bridge {}", b.name)),
            None => return mismatch("--bridge", given, "no bridge".into()),
        }
    }
    if let Some(given) = &opts.conf_dir {
        let recorded = state.conflist.as_deref().and_then(Path::parent);
        let same = |r: &Path| {
            r == given.as_path()
                || matches!((r.canonicalize(), given.canonicalize()), (Ok(a), Ok(b)) if a == b)
        };
        match recorded {
            Some(r) if same(r) => {}
            Some(r) => {
                return mismatch(
                    "--conf-dir",
                    &given.display(),
                    format!("conf dir {}", r.display()),
                )
            }
            None => return mismatch("--conf-dir", &given.display(), "no conflist".into()),
        }
    }
    Ok(())
}

/// Removes what setup recorded: the conflist, the nftables table, the bridge (or only our
/// addresses on a bridge that was there before), and puts the forwarding values back. The table
/// is deleted even without a state file: nothing but podwire's node setup owns it.
pub fn teardown(opts: &TeardownOptions) -> Result<Outcome> {
    let store = Store::lock(&opts.state_dir)?;
    let mut state = store.load()?;
    check_same_setup(opts, &state, &store.path())?;
    let nl = Netlink::new().map_err(kernel_err)?;
    let nft = Nftables::new().map_err(kernel_err)?;
    let mut changes = Changes::new();

    // Refuse before changing anything, not half-way.
    if let Some(b) = state.bridge.as_ref().filter(|b| b.created && !opts.force) {
        let ports = bridge::ports(&nl, &b.name)?;
        if !ports.is_empty() {
            return Err(Error::try_again_later(format!(
                "bridge {} still has {} pod interface(s) ({}): drain the node first, or --force",
                b.name,
                ports.len(),
                ports.join(", ")
            )));
        }
    }

    if let Some(path) = state.conflist.take() {
        if files::remove(&path)? {
            changes.push(format!("removed {}", path.display()));
        }
        store.save(&state)?;
    }
    // Routes to other nodes and the VXLAN devices (with their FDB and neighbour entries): found
    // by their tags, so this holds whether the agent ever ran or not.
    crate::peers::kernel_io::remove_all(&nl, &mut changes)?;
    rules::remove(&nft, &mut changes)?;
    state.nft_table = None;
    store.save(&state)?;
    if let Some(b) = state.bridge.take() {
        bridge::remove(&nl, &b, &mut changes)?;
        store.save(&state)?;
    }
    // The plugins' node-wide tables (masquerade, anti-spoofing, hostPorts) outlive every pod; the
    // node is drained (or --force said so), so an uninstall leaves none of them behind.
    rules::remove_plugin_tables(&nft, &mut changes)?;
    // The agent's NetworkPolicy table: its pod-start gate must not outlive podwire.
    rules::remove_policy_table(&nft, &mut changes)?;
    forwarding::restore(&opts.sysctl_dir, &mut state.forwarding, &mut changes)?;
    store.save(&State::default())?;
    Ok(Outcome {
        changes,
        headline: "podwire node: torn down".into(),
    })
}
