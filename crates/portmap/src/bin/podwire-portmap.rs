//! `podwire-portmap`: hostPort mappings (config `"type": "podwire-portmap"`, chained after the
//! main plugin with `"capabilities": {"portMappings": true}`).

#[global_allocator]
static ALLOC: cni::skel::PluginAllocator = cni::skel::PluginAllocator;

fn main() -> std::process::ExitCode {
    cni::skel::run(&portmap::PortmapPlugin)
}
