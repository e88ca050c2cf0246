//! GC and STATUS. GC removes what belongs to attachments of this network that the runtime no
//! longer knows (`cni.dev/valid-attachments`): host veths (found by their alias tag), masquerade
//! rules and spoofCheck set elements (by their comment tag), and addresses (forwarded to the IPAM). Errors on one entry do not
//! stop the others.

use crate::config::Config;
use crate::{antispoof, errors, ipam, masq, names};
use cni::{trace, CmdArgs, Error, Result};
use kernel::Netlink;

pub fn gc(a: &CmdArgs) -> Result<()> {
    let config = trace::timed("config", || Config::from_netconf(&a.conf))?;
    let valid = a.conf.valid_attachments()?;
    let is_stale = |tag: &str| match names::parse_tag(tag, &a.conf.name) {
        Some((c, i)) => !valid.contains(&(c.to_string(), i.to_string())),
        None => false,
    };
    let mut first_error: Option<Error> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            cni::log::warn(&format!("GC: {e}"));
            first_error.get_or_insert(e);
        }
    };

    let host = Netlink::new().map_err(errors::kernel)?;
    let mut s = trace::step("links");
    match host.links() {
        Ok(links) => {
            s.ok();
            for link in links
                .iter()
                .filter(|l| l.alias.as_deref().is_some_and(&is_stale))
            {
                let r = host
                    .link_delete(link.index)
                    .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
                    .map_err(errors::kernel);
                if r.is_ok() {
                    s.detail(format_args!(
                        "deleted {} ({})",
                        link.name,
                        link.alias.as_deref().unwrap_or("")
                    ));
                }
                note(r);
            }
        }
        Err(e) => note(Err(errors::kernel(e))),
    }
    s.end();
    let mut s = trace::step("nftables");
    match masq::tags() {
        Ok(tags) => {
            s.ok();
            for tag in tags.iter().filter(|t| is_stale(t)) {
                let r = masq::delete(tag);
                if r.is_ok() {
                    s.detail(format_args!("deleted rules {tag}"));
                }
                note(r);
            }
        }
        Err(e) => note(Err(e)),
    }
    s.end();
    // Whatever the config says now: elements of an ADD made while spoofCheck was on.
    let mut s = trace::step("antispoof");
    match antispoof::delete_where(is_stale) {
        Ok(n) => s.detail(format_args!("removed {n} stale element(s)")),
        Err(e) => note(Err(e)),
    }
    s.end();
    let mut s = trace::step("policy-gate");
    let containers: Vec<String> = valid.iter().map(|(c, _)| c.clone()).collect();
    match crate::unclassified::withdraw_stale(&containers) {
        Ok(n) => s.detail(format_args!("removed {n} stale unclassified address(es)")),
        Err(e) => note(Err(e)),
    }
    s.end();
    note(ipam::gc(a, &config));
    first_error.map_or(Ok(()), Err)
}

pub fn status(a: &CmdArgs) -> Result<()> {
    let config = Config::from_netconf(&a.conf)?;
    ipam::status(a, &config)
}
