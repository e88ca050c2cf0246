//! The five commands. Config, requested addresses, boot ID and resolv.conf are all read
//! before the lock is taken; the lock covers only the allocation itself.

use crate::allocator::{self, Reserve};
use crate::config::{self, IpamConfig};
use crate::range::Range;
use crate::store::{Owner, Store};
use crate::{boot, dns};
use cni::error::plugin_code;
use cni::{trace, CmdArgs, CniResult, Error, IpConfig, IpamConf, NetConf, Result};
use ipnet::IpNet;
use std::net::IpAddr;

/// Assigns each requested address to the first range set that holds it (one per set).
fn requested_per_set(cfg: &IpamConfig) -> Result<Vec<Option<IpAddr>>> {
    let mut per_set = vec![None; cfg.range_sets.len()];
    for ip in &cfg.requested {
        let Some(i) = cfg.range_sets.iter().position(|s| s.contains(*ip)) else {
            let sets: Vec<String> = cfg
                .range_sets
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{i}: {s}"))
                .collect();
            return Err(Error::invalid_config(format!(
                "requested IP {ip} is outside every range set ({})",
                sets.join("; ")
            )));
        };
        if let Some(first) = per_set[i] {
            return Err(Error::invalid_config(format!(
                "requested IPs {first} and {ip} are both in range set {i} ({}): one address per range set",
                cfg.range_sets[i]
            )));
        }
        per_set[i] = Some(*ip);
    }
    Ok(per_set)
}

fn ip_config(ip: IpAddr, range: &Range) -> IpConfig {
    IpConfig {
        address: IpNet::new(ip, range.subnet.prefix_len()).expect("prefix of a valid subnet"),
        gateway: Some(range.gateway),
        interface: None,
    }
}

/// Reserves for one owner, remembering what it made so a failure can undo it.
struct Reserver<'a> {
    store: &'a Store,
    owner: &'a Owner,
    made: Vec<IpAddr>,
}

impl Reserve for Reserver<'_> {
    fn try_reserve(&mut self, ip: IpAddr) -> Result<bool> {
        let ok = self.store.try_reserve(ip, self.owner)?;
        if ok {
            self.made.push(ip);
        }
        Ok(ok)
    }
}

fn ipam_of(a: &CmdArgs) -> Result<&IpamConf> {
    a.conf.ipam.as_ref().ok_or_else(|| {
        Error::invalid_config(format!("network {:?} has no \"ipam\" section", a.conf.name))
    })
}

pub fn add_with(ipam: &IpamConf, a: &CmdArgs) -> Result<CniResult> {
    let mut s = trace::step("ipam.config");
    let cfg = config::load(ipam, &a.conf, &a.args)?;
    let owner = Owner::new(&a.container_id, &a.ifname)?;
    let wanted = requested_per_set(&cfg)?;
    let dns = match &cfg.resolv_conf {
        Some(p) => dns::read(p)?,
        None => Default::default(),
    };
    let stamp = boot::stamp(&cfg.store.boot_id_file, cfg.store.reclaim_after_reboot)?;
    s.detail(format_args!("{} range set(s)", cfg.range_sets.len()));
    s.end();

    let store = Store::open(&cfg.store, &stamp)?;
    if cfg.store.reclaim_after_reboot {
        let mut s = trace::step("ipam.reclaim");
        let n = store.reclaim_other_boots()?;
        s.detail(format_args!("{n} from earlier boots"));
    }
    let mut s = trace::step("ipam.reserve");
    // A repeated ADD gets what it already holds: never a second address in a set.
    let held = store.owned_ips(&owner)?;
    let mut picked: Vec<Option<IpConfig>> = vec![None; cfg.range_sets.len()];
    for (i, set) in cfg.range_sets.iter().enumerate() {
        let Some(ip) = held.iter().copied().find(|ip| set.contains(*ip)) else {
            continue;
        };
        if let Some(w) = wanted[i].filter(|w| *w != ip) {
            store.finish();
            return Err(Error::invalid_config(format!(
                "{owner} already holds {ip} in range set {i}, not the requested {w}: DEL it first"
            )));
        }
        let range = set.range_for(ip).expect("contains");
        picked[i] = Some(ip_config(ip, range));
    }
    let mut reserver = Reserver {
        store: &store,
        owner: &owner,
        made: Vec::new(),
    };
    let mut fresh = Vec::new();
    let mut failure = None;
    for (i, set) in cfg.range_sets.iter().enumerate() {
        if picked[i].is_some() {
            continue;
        }
        let last = store.last_reserved(i);
        match allocator::allocate(set, i, last, wanted[i], &mut reserver) {
            Ok((ip, range)) => {
                picked[i] = Some(ip_config(ip, range));
                fresh.push((i, ip));
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let undo = |store: &Store, made: &[IpAddr]| {
        for ip in made {
            if let Err(e) = store.unreserve(*ip) {
                cni::log::warn(&e.to_string());
            }
        }
    };
    if let Some(e) = failure {
        undo(&store, &reserver.made);
        store.finish();
        return Err(e);
    }
    for c in picked.iter().flatten() {
        s.detail(format_args!("{}", c.address.addr()));
    }
    s.end();
    let mut s = trace::step("ipam.write");
    // The entry lists everything the attachment holds, including addresses in sets the
    // config no longer has (DEL must still release those).
    let mut ips: Vec<IpAddr> = picked.iter().flatten().map(|c| c.address.addr()).collect();
    ips.extend(
        held.iter()
            .filter(|ip| !ips.contains(ip))
            .copied()
            .collect::<Vec<_>>(),
    );
    crate::fault::point("ipam-reserved");
    let entry = crate::store::Entry {
        boot: store.boot().to_string(),
        ips,
    };
    // With nothing held before, every address is one this ADD created.
    let written = if held.is_empty() {
        store.put_new_entry(&owner, &entry)
    } else {
        store.put_entry(&owner, &entry)
    };
    if let Err(e) = written {
        undo(&store, &reserver.made);
        // No finish: the next call rebuilds the index from the files.
        return Err(e);
    }
    crate::fault::point("ipam-indexed");
    for (i, ip) in fresh {
        // Losing it costs round-robin once, never an address: not worth failing the ADD.
        if let Err(e) = store.set_last_reserved(i, ip) {
            cni::log::warn(&e.to_string());
        }
    }
    store.finish();
    s.detail(format_args!(
        "{}/{}",
        cfg.store.data_dir.display(),
        cfg.store.network
    ));
    s.end();
    Ok(CniResult {
        cni_version: a.conf.cni_version.clone(),
        interfaces: Vec::new(),
        ips: picked.into_iter().flatten().collect(),
        routes: cfg.routes,
        dns,
    })
}

fn open_for(ipam: &IpamConf, conf: &NetConf) -> Result<Store> {
    let sc = config::store_conf(ipam, conf)?;
    let stamp = boot::stamp(&sc.boot_id_file, false)?;
    Store::open(&sc, &stamp)
}

/// Releases by (container, ifname); nothing to release is not an error.
pub fn del_with(ipam: &IpamConf, a: &CmdArgs) -> Result<()> {
    let owner = Owner::new(&a.container_id, &a.ifname)?;
    let store = open_for(ipam, &a.conf)?;
    let mut s = trace::step("ipam.release");
    let released = store.release_attachment(&owner)?;
    cni::log::debug(&format!("released {released:?} of {owner}"));
    store.finish();
    if released.is_empty() {
        s.detail(format_args!("{owner} held nothing"));
    }
    for ip in &released {
        s.detail(format_args!("released {ip}"));
    }
    Ok(())
}

/// Every range set must have an address whose file names this attachment.
pub fn check_with(ipam: &IpamConf, a: &CmdArgs) -> Result<()> {
    let cfg = config::load(ipam, &a.conf, &a.args)?;
    let owner = Owner::new(&a.container_id, &a.ifname)?;
    let stamp = boot::stamp(&cfg.store.boot_id_file, false)?;
    let store = Store::open(&cfg.store, &stamp)?;
    let mut s = trace::step("ipam.check");
    let held = store.owned_ips(&owner);
    store.finish();
    let held = held?;
    for (i, set) in cfg.range_sets.iter().enumerate() {
        if !held.iter().any(|ip| set.contains(*ip)) {
            return Err(Error::plugin(
                plugin_code::CHECK_MISMATCH,
                format!(
                    "{owner} holds no address in range set {i} ({set}) of network {}",
                    a.conf.name
                ),
            ));
        }
    }
    s.detail(format_args!("{owner} holds {held:?}"));
    Ok(())
}

/// Releases every allocation whose attachment the runtime no longer lists; a failure on one
/// does not stop the others (they are reported together afterwards).
pub fn gc_with(ipam: &IpamConf, a: &CmdArgs) -> Result<()> {
    let valid = a.conf.valid_attachments()?;
    let store = open_for(ipam, &a.conf)?;
    let is_valid = |o: &Owner| {
        if o.is_legacy() {
            valid.iter().any(|(id, _)| *id == o.container_id)
        } else {
            valid.contains(&(o.container_id.clone(), o.ifname.clone()))
        }
    };
    let mut failures = Vec::new();
    let entries = match store.entries() {
        Ok(e) => e,
        Err(e) => {
            store.finish();
            return Err(e);
        }
    };
    let mut s = trace::step("ipam.gc");
    s.ok();
    for (owner, _) in entries.iter().filter(|(o, _)| !is_valid(o)) {
        match store.release(owner) {
            Ok(ips) => {
                cni::log::info(&format!("gc: released {ips:?} of {owner}"));
                s.detail(format_args!("released {ips:?} of {owner}"));
            }
            Err(e) => failures.push(format!("{owner}: {}", e.msg)),
        }
    }
    store.finish();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::io(format!(
            "gc could not release {} attachment(s): {}",
            failures.len(),
            failures.join("; ")
        )))
    }
}

/// Ready when every range set has a free address; else code 50 naming the full set.
pub fn status_with(ipam: &IpamConf, a: &CmdArgs) -> Result<()> {
    let cfg = config::load(ipam, &a.conf, &a.args)?;
    let stamp = boot::stamp(&cfg.store.boot_id_file, cfg.store.reclaim_after_reboot)?;
    let store = Store::open(&cfg.store, &stamp)?;
    let outcome = (|| {
        if cfg.store.reclaim_after_reboot {
            store.reclaim_other_boots()?;
        }
        for (i, set) in cfg.range_sets.iter().enumerate() {
            let mut free = false;
            for (ip, _) in set.candidates(store.last_reserved(i)) {
                if !store.is_taken(ip)? {
                    free = true;
                    break;
                }
            }
            if !free {
                let e = allocator::exhausted(set, i);
                return Err(Error::not_available(format!(
                    "network {}: {}",
                    a.conf.name, e.msg
                )));
            }
        }
        Ok(())
    })();
    store.finish();
    outcome
}

pub fn add(a: &CmdArgs) -> Result<CniResult> {
    add_with(ipam_of(a)?, a)
}
pub fn del(a: &CmdArgs) -> Result<()> {
    del_with(ipam_of(a)?, a)
}
pub fn check(a: &CmdArgs) -> Result<()> {
    check_with(ipam_of(a)?, a)
}
pub fn gc(a: &CmdArgs) -> Result<()> {
    gc_with(ipam_of(a)?, a)
}
pub fn status(a: &CmdArgs) -> Result<()> {
    status_with(ipam_of(a)?, a)
}
