//! The `podwire-ipam` IPAM plugin: host-local compatible, see crates/ipam/README.md.

#[global_allocator]
static ALLOC: cni::skel::PluginAllocator = cni::skel::PluginAllocator;

fn main() -> std::process::ExitCode {
    cni::skel::run(&ipam::IpamPlugin)
}
