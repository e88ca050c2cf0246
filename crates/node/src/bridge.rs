//! The node's bridge and its gateway address(es): created (or adopted) by setup, with only what we
//! added taken away by teardown.

use crate::config::Plan;
use crate::state::BridgeState;
use crate::Changes;
use cni::{Error, Result};
use ipnet::IpNet;
use kernel::{AddressOptions, BridgeSpec, Netlink, ResultExt};

/// Brings the bridge to the plan: exists, is up, has the MTU and the gateways; addresses we added
/// for an older plan are removed. `state` is updated as things change; `save` persists it.
pub fn apply(
    nl: &Netlink,
    plan: &Plan,
    state: &mut Option<BridgeState>,
    changes: &mut Changes,
    save: &mut dyn FnMut(&Option<BridgeState>) -> Result<()>,
) -> Result<()> {
    let c = &plan.config;
    if state.as_ref().is_some_and(|s| s.name != c.bridge) {
        remove(nl, state.as_ref().expect("checked"), changes)?;
        *state = None;
        save(state)?;
    }

    let link = match nl.link(c.bridge.as_str()).ok_if_not_found()? {
        Some(link) => {
            if link.kind.as_deref() != Some("bridge") {
                return Err(Error::invalid_config(format!(
                    "link {} exists and is a {}, not a bridge: pick another --bridge",
                    c.bridge,
                    link.kind.as_deref().unwrap_or("device")
                )));
            }
            if state.is_none() {
                // Someone else's bridge: adopt it, but never delete it on teardown.
                *state = Some(BridgeState {
                    name: c.bridge.clone(),
                    created: false,
                    addresses: Vec::new(),
                });
                save(state)?;
            }
            link
        }
        None => {
            let mut spec = BridgeSpec::new(&c.bridge).up().no_linklocal_learn();
            if let Some(mtu) = c.mtu {
                spec = spec.mtu(mtu);
            }
            nl.bridge_add(&spec)?;
            // Recorded before anything else, so a failure below still lets teardown delete it.
            *state = Some(BridgeState {
                name: c.bridge.clone(),
                created: true,
                addresses: Vec::new(),
            });
            save(state)?;
            changes.push(format!("created bridge {}", c.bridge));
            nl.link(c.bridge.as_str())?
        }
    };
    if let Some(mtu) = c.mtu.filter(|&m| m != link.mtu) {
        nl.link_set_mtu(link.index, mtu)?;
        changes.push(format!("set MTU of {} to {mtu}", c.bridge));
    }
    // As the plugin does: a pod's forged LLDP frame must not move another pod's MAC.
    if link.no_linklocal_learn == Some(false) {
        nl.bridge_set_no_linklocal_learn(link.index, true)?;
        changes.push(format!("set no_linklocal_learn on {}", c.bridge));
    }
    if !link.up {
        nl.link_set_up(link.index, true)?;
        changes.push(format!("brought {} up", c.bridge));
    }
    // CVE-2020-10749: no pod's router advertisement may configure the node (no IPv6: no key).
    let _ = crate::forwarding::write(
        &c.sysctl_dir,
        &kernel::sysctl::ipv6_conf(&c.bridge, "accept_ra"),
        "0",
    );

    let wanted = plan.gateways();
    for old in ours(state)
        .clone()
        .into_iter()
        .filter(|a| !wanted.contains(a))
    {
        nl.address_delete(link.index, old).ok_if_not_found()?;
        ours(state).retain(|a| *a != old);
        save(state)?;
        changes.push(format!("removed address {old} from {}", c.bridge));
    }
    let present: Vec<IpNet> = nl
        .addresses(Some(link.index), None)?
        .into_iter()
        .map(|a| a.net)
        .collect();
    for gw in wanted {
        if present.contains(&gw) {
            continue;
        }
        // The plugin would refuse a second address in the subnet (the bridge would answer for
        // the wrong gateway); say so now rather than at the first pod.
        if let Some(other) = present
            .iter()
            .find(|a| a.contains(&gw.addr()) || gw.contains(&a.addr()))
        {
            return Err(Error::invalid_config(format!(
                "bridge {} has address {other}, which podwire did not set, in the pod CIDR {}: \
                 remove it (the gateway is {gw})",
                c.bridge,
                gw.trunc()
            )));
        }
        // No DAD: the gateway must answer the moment the first pod starts.
        let opts = AddressOptions {
            nodad: gw.addr().is_ipv6(),
            ..Default::default()
        };
        nl.address_add_with(link.index, gw, opts)?;
        ours(state).push(gw);
        save(state)?;
        changes.push(format!("added gateway {gw} to {}", c.bridge));
    }
    Ok(())
}

fn ours(state: &mut Option<BridgeState>) -> &mut Vec<IpNet> {
    &mut state.as_mut().expect("recorded before use").addresses
}

/// Names of the links enslaved to the bridge (pods still attached).
pub fn ports(nl: &Netlink, name: &str) -> Result<Vec<String>> {
    let Some(link) = nl.link(name).ok_if_not_found()? else {
        return Ok(Vec::new());
    };
    Ok(nl
        .links()?
        .into_iter()
        .filter(|l| l.master == Some(link.index))
        .map(|l| l.name)
        .collect())
}

/// Undoes `apply`: deletes the bridge if we created it (its ports go with it), else removes the
/// addresses we added.
pub fn remove(nl: &Netlink, st: &BridgeState, changes: &mut Changes) -> Result<()> {
    let Some(link) = nl.link(st.name.as_str()).ok_if_not_found()? else {
        return Ok(());
    };
    if st.created {
        nl.link_delete(link.index).ok_if_not_found()?;
        changes.push(format!("deleted bridge {}", st.name));
        return Ok(());
    }
    for a in &st.addresses {
        let gone = nl.address_delete(link.index, *a).ok_if_not_found()?;
        if gone.is_some() {
            changes.push(format!("removed address {a} from {}", st.name));
        }
    }
    Ok(())
}
