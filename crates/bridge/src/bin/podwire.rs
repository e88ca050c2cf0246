//! `podwire`: the bridge main plugin binary (config `"type": "podwire"`).

#[global_allocator]
static ALLOC: cni::skel::PluginAllocator = cni::skel::PluginAllocator;

fn main() -> std::process::ExitCode {
    cni::skel::run(&bridge::BridgePlugin)
}
