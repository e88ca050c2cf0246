//! `loopback`: the loopback plugin binary (config `"type": "loopback"`, which containerd's CRI
//! hard-codes for every sandbox).

fn main() -> std::process::ExitCode {
    cni::skel::run(&loopback::LoopbackPlugin)
}
