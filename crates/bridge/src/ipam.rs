//! The bridge's IPAM: `podwire-ipam` runs in-process (no second exec per pod); any other type
//! (`host-local`, `dhcp`, `static`, ...) is exec'd from `CNI_PATH` exactly as libcni would.

use crate::config::Config;
use cni::invoke::{self, Call};
use cni::{CmdArgs, CniResult, Result};

/// The call as the IPAM sees it: the same config, with the `ipam` section the bridge resolved
/// (the talk's legacy `subnet` becomes one).
fn ipam_args(a: &CmdArgs, config: &Config) -> CmdArgs {
    let mut a = a.clone();
    a.conf.ipam = Some(config.ipam.clone());
    a
}

fn delegate(a: &CmdArgs, config: &Config, command: &str) -> Result<Vec<u8>> {
    let plugin = invoke::find_in_path(&config.ipam.kind, &a.path)?;
    let args = a
        .args
        .pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";");
    let call = Call {
        command,
        container_id: &a.container_id,
        netns: &a.netns,
        ifname: &a.ifname,
        args: &args,
        path: &a.path,
    };
    invoke::exec(&plugin, &call, &a.stdin)
}

pub fn add(a: &CmdArgs, config: &Config) -> Result<CniResult> {
    if config.in_process_ipam() {
        return ipam::add(&ipam_args(a, config));
    }
    let out = delegate(a, config, "ADD")?;
    CniResult::parse(&out)
}

pub fn del(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::del(&ipam_args(a, config));
    }
    delegate(a, config, "DEL").map(drop)
}

pub fn check(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::check(&ipam_args(a, config));
    }
    delegate(a, config, "CHECK").map(drop)
}

pub fn gc(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::gc(&ipam_args(a, config));
    }
    delegate(a, config, "GC").map(drop)
}

pub fn status(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::status(&ipam_args(a, config));
    }
    delegate(a, config, "STATUS").map(drop)
}
