//! The smallest plugin built on `cni::skel` (binary `cni-noop-plugin`): ADD answers an empty result,
//! everything else succeeds. The entry-point tests exec it to see exactly what a runtime would see.

use cni::{CmdArgs, CniResult, Plugin, Result};

struct Noop;

impl Plugin for Noop {
    fn add(&self, a: &CmdArgs) -> Result<CniResult> {
        Ok(CniResult {
            interfaces: vec![cni::Interface {
                name: a.ifname.clone(),
                sandbox: a.netns.clone(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }
    fn del(&self, _: &CmdArgs) -> Result<()> {
        Ok(())
    }
    fn check(&self, _: &CmdArgs) -> Result<()> {
        Ok(())
    }
}

#[global_allocator]
static ALLOC: cni::skel::PluginAllocator = cni::skel::PluginAllocator;

fn main() -> std::process::ExitCode {
    cni::skel::run(&Noop)
}
