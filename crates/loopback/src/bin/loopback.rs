//! `loopback`: the loopback plugin binary (config `"type": "loopback"`, which containerd's CRI
//! hard-codes for every sandbox).

#[global_allocator]
static ALLOC: cni::skel::PluginAllocator = cni::skel::PluginAllocator;

fn main() -> std::process::ExitCode {
    cni::skel::run(&loopback::LoopbackPlugin)
}
