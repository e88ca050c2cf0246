//! `podwire`: the bridge main plugin binary (config `"type": "podwire"`).

fn main() -> std::process::ExitCode {
    cni::skel::run(&bridge::BridgePlugin)
}
