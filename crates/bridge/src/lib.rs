//! The podwire bridge plugin: the talk's bash plugin made real. ADD creates the bridge (once), a
//! veth pair whose pod end is born in the pod's netns as `CNI_IFNAME`, the pod's addresses and
//! routes, and optionally a masquerade rule; DEL, CHECK, GC and STATUS undo and inspect that.
//!
//! - [`config`]: the reference bridge's keys plus the talk's legacy `subnet` form
//! - [`add`], [`del`], [`check`], [`gc`]: the operations
//! - [`ipam`]: in-process `podwire-ipam`, or any IPAM exec'd from `CNI_PATH`
//! - [`gateway`], [`masq`], [`antispoof`], [`mac`], [`names`]: the pieces ADD is made of

pub mod add;
mod announce;
pub mod antispoof;
pub mod check;
pub mod config;
pub mod del;
mod errors;
mod fault;
pub mod gateway;
pub mod gc;
pub mod ipam;
pub mod mac;
pub mod masq;
pub mod names;
mod random;
pub mod unclassified;

use cni::{CmdArgs, CniResult, Plugin, Result};

pub struct BridgePlugin;

impl Plugin for BridgePlugin {
    fn add(&self, a: &CmdArgs) -> Result<CniResult> {
        a.args.check_known(&["MAC", "IP"])?;
        add::add(a)
    }
    fn del(&self, a: &CmdArgs) -> Result<()> {
        del::del(a)
    }
    fn check(&self, a: &CmdArgs) -> Result<()> {
        check::check(a)
    }
    fn gc(&self, a: &CmdArgs) -> Result<()> {
        gc::gc(a)
    }
    fn status(&self, a: &CmdArgs) -> Result<()> {
        gc::status(a)
    }
}
