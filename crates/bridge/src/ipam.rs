//! The bridge's IPAM: `podwire-ipam` runs in-process (no second exec per pod); any other type
//! (`host-local`, `dhcp`, `static`, ...) is exec'd from `CNI_PATH` exactly as libcni would.
//! In-process calls pass the `ipam` section the bridge resolved (the talk's legacy `subnet`
//! becomes one) explicitly, so nothing of the call is copied.

use crate::config::Config;
use cni::args::CniArgs;
use cni::invoke::{self, Vars};
use cni::{CmdArgs, CniResult, Result};

/// Exec'd IPAM is one step here (the IPAM plugin traces its own steps if it can).
fn delegate(a: &CmdArgs, config: &Config, command: &str) -> Result<Vec<u8>> {
    let mut s = cni::trace::step("ipam");
    let plugin = invoke::find_in_path(&config.ipam.kind, &a.path)?;
    let args = CniArgs::join(&a.args.pairs);
    let path = invoke::join_path(&a.path)?;
    let vars = Vars {
        command,
        container_id: &a.container_id,
        netns: &a.netns,
        ifname: &a.ifname,
        args: &args,
        path: &path,
    };
    let out = invoke::exec(&plugin, &vars, &a.stdin)?;
    s.detail(format_args!("exec {} {command}", plugin.display()));
    // Parsed here only to name the addresses in the trace; the caller parses it for real.
    if command == "ADD" && s.recording() {
        if let Ok(r) = CniResult::parse(&out) {
            for ip in &r.ips {
                s.detail(format_args!("got {}", ip.address));
            }
        }
    }
    Ok(out)
}

pub fn add(a: &CmdArgs, config: &Config) -> Result<CniResult> {
    if config.in_process_ipam() {
        return ipam::add_with(&config.ipam, a);
    }
    let out = delegate(a, config, "ADD")?;
    CniResult::parse(&out)
}

pub fn del(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::del_with(&config.ipam, a);
    }
    delegate(a, config, "DEL").map(drop)
}

pub fn check(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::check_with(&config.ipam, a);
    }
    delegate(a, config, "CHECK").map(drop)
}

pub fn gc(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::gc_with(&config.ipam, a);
    }
    delegate(a, config, "GC").map(drop)
}

pub fn status(a: &CmdArgs, config: &Config) -> Result<()> {
    if config.in_process_ipam() {
        return ipam::status_with(&config.ipam, a);
    }
    delegate(a, config, "STATUS").map(drop)
}
