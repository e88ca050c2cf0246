//! `podwire-portmap`: hostPort mappings (config `"type": "podwire-portmap"`, chained after the
//! main plugin with `"capabilities": {"portMappings": true}`).

fn main() -> std::process::ExitCode {
    cni::skel::run(&portmap::PortmapPlugin)
}
