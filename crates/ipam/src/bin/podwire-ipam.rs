//! The `podwire-ipam` IPAM plugin: host-local compatible, see crates/ipam/README.md.

fn main() -> std::process::ExitCode {
    cni::skel::run(&ipam::IpamPlugin)
}
