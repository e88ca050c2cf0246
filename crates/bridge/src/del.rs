//! DEL: idempotent and never needs the netns. The spoofCheck elements go first, then the link and
//! the pod's addresses with it, then the masquerade rule, and only then is the address released:
//! released any earlier, a concurrent ADD could be handed it while the old pod's interface still
//! holds it (deleting a veth takes ~20 ms). The release is still unconditional (a leaked IP is the worst outcome): each
//! step runs even when an earlier one failed; the first failure is reported.

use crate::config::Config;
use crate::{antispoof, ipam, masq, names};
use cni::{trace, CmdArgs, Result};
use kernel::{Netlink, Netns};

pub fn del(a: &CmdArgs) -> Result<()> {
    let config = trace::timed("config", || Config::from_netconf(&a.conf))?;
    let tag = names::attachment_tag(&a.conf.name, &a.container_id, &a.ifname);
    let gated = crate::unclassified::tag(a).is_some();
    // One nftables socket for every table DEL touches, when it touches any. spoofCheck's
    // elements go first, and the socket stays open while the link is deleted: closing it right
    // after the removal would wait ~10 ms for the elements to be freed. (The pod's end goes down
    // one request later; the pod is already stopped when a runtime DELs.)
    let wants_nft = config.bridge.spoof_check || config.bridge.ip_masq || gated;
    let nft = wants_nft.then(antispoof::socket);
    let on_nft = |f: &mut dyn FnMut(&kernel::nft::Nftables) -> Result<()>| match &nft {
        Some(Ok(nft)) => f(nft),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(()),
    };
    let unguarded = if config.bridge.spoof_check {
        on_nft(&mut |nft| {
            let mut s = trace::step("antispoof");
            antispoof::delete_on(nft, |t| t == tag).map(|n| {
                s.detail(format_args!(
                    "removed {n} element(s) from bridge {} (tag {tag})",
                    antispoof::TABLE
                ))
            })
        })
    } else {
        Ok(())
    };
    let mut s = trace::step("link");
    let unlinked = delete_link(a, &config, &tag).map(|what| s.detail(what));
    s.end();
    let unmasked = if config.bridge.ip_masq {
        on_nft(&mut |nft| {
            let mut s = trace::step("nftables");
            masq::delete_handles_on(nft, &tag).map(|handles| {
                s.detail(format_args!(
                    "removed {} masquerade rule(s) {handles:?} from inet {} (comment {tag})",
                    handles.len(),
                    masq::table().name
                ))
            })
        })
    } else {
        Ok(())
    };
    // The policy gate's elements (normally the agent removed them long ago): before the
    // release, so a reused address is never gated under the old pod's name.
    let ungated = if gated {
        on_nft(&mut |nft| {
            let mut s = trace::step("policy-gate");
            crate::unclassified::withdraw_on(nft, &a.container_id)
                .map(|n| s.detail(format_args!("removed {n} unclassified address(es)")))
        })
    } else {
        Ok(())
    };
    drop(nft);
    let released = ipam::del(a, &config);
    unlinked
        .and(unmasked)
        .and(unguarded)
        .and(ungated)
        .and(released)
}

/// Deleting either end of a veth pair deletes both. Through the pod's netns when it is still
/// there (that finds the pair whatever the host end is called); else by the host end's hashed name,
/// checked against its alias so we never delete a veth that is not this attachment's. An ADD
/// killed between creating the pair and tagging it leaves the hashed name untagged: a veth of
/// that name on our bridge with no alias is that remnant, and is ours to delete.
/// Returns what it removed (or why nothing), for the trace.
fn delete_link(a: &CmdArgs, config: &Config, tag: &str) -> Result<String> {
    if !a.netns.is_empty() {
        if let Ok(ns) = Netns::open(&a.netns) {
            let pod = Netlink::new_in(&ns)?;
            return match pod.link_delete(a.ifname.as_str()) {
                Err(e) if !e.is_not_found() => Err(cni::Error::from(e)),
                Err(_) => Ok(format!("no {} in {}", a.ifname, a.netns)),
                Ok(()) => Ok(format!(
                    "deleted {} in {} (and its host end)",
                    a.ifname, a.netns
                )),
            };
        }
    }
    let host = Netlink::new()?;
    let name = names::host_veth(&a.conf.name, &a.container_id, &a.ifname);
    let untagged_on_our_bridge = |link: &kernel::Link| {
        link.alias.is_none()
            && link.kind.as_deref() == Some("veth")
            && link.master.is_some()
            && host
                .link(config.bridge.bridge.as_str())
                .is_ok_and(|br| link.master == Some(br.index))
    };
    match host.link(name.as_str()) {
        Ok(link) if link.alias.as_deref() == Some(tag) || untagged_on_our_bridge(&link) => {
            match host.link_delete(link.index) {
                Err(e) if !e.is_not_found() => Err(cni::Error::from(e)),
                _ => Ok(format!("deleted host veth {name} #{}", link.index)),
            }
        }
        // A clash: the attachment used a random name, which GC will find by alias.
        Ok(_) => Ok(format!("{name} belongs to another attachment: left alone")),
        Err(e) if e.is_not_found() => Ok(format!("no netns, no host veth {name}")),
        Err(e) => Err(cni::Error::from(e)),
    }
}
