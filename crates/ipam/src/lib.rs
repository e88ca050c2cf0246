//! podwire-ipam: a host-local compatible IPAM that never hands out an address twice, never
//! leaks one across reboots (when asked), and costs the same at the 4,000th allocation as at
//! the first. See README.md beside this crate for the config, the on-disk layout and the
//! concurrency model.
//!
//! - [`config`]: the `ipam` section, requested IPs, runtime ranges; defaults and validation
//! - [`range`]: ranges, range sets, round-robin iteration order
//! - [`allocator`]: choosing an address (requested, else next free), exhaustion
//! - [`store`]: host-local's on-disk layout, the lock, and our per-attachment index
//! - [`boot`], [`dns`]: boot ID stamps, `resolvConf`
//!
//! In-process use (the bridge plugin): [`add`], [`del`], [`check`], [`gc`], [`status`] read
//! `a.conf.ipam`; the `*_with` variants take the ipam section explicitly, e.g. one built by
//! [`subnet_conf`] for a config with a top-level `"subnet"` and no `ipam`.

pub mod allocator;
pub mod boot;
pub mod config;
pub mod dns;
#[doc(hidden)]
pub mod fault;
mod ops;
pub mod range;
pub mod store;

pub use config::{subnet_conf, DEFAULT_DATA_DIR};
pub use ops::{add, add_with, check, check_with, del, del_with, gc, gc_with, status, status_with};

/// The plugin, for `cni::skel::run` (the `podwire-ipam` binary) or for calling through
/// `cni::skel::dispatch` in tests.
pub struct IpamPlugin;

impl cni::Plugin for IpamPlugin {
    fn add(&self, a: &cni::CmdArgs) -> cni::Result<cni::CniResult> {
        add(a)
    }
    fn del(&self, a: &cni::CmdArgs) -> cni::Result<()> {
        del(a)
    }
    fn check(&self, a: &cni::CmdArgs) -> cni::Result<()> {
        check(a)
    }
    fn gc(&self, a: &cni::CmdArgs) -> cni::Result<()> {
        gc(a)
    }
    fn status(&self, a: &cni::CmdArgs) -> cni::Result<()> {
        status(a)
    }
}
