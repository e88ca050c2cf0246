//! The plugin binaries the suites exec: the release build `scripts/test.sh` makes before
//! `cargo test`, found in the workspace's target dir; and a fault-injection build of `podwire`
//! that the crash suite makes into a target dir of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn workspace() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// `CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace().join(p)
            }
        })
        .unwrap_or_else(|| workspace().join("target"))
}

/// `<target>/release/<name>`, or a panic that says how to build it.
pub fn release(name: &str) -> PathBuf {
    let p = target_dir().join("release").join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --release -p podwire-bridge -p podwire-ipam -p podwire-portmap \
         -p podwire-loopback` first \
         (scripts/test.sh does), with the same CARGO_TARGET_DIR as the tests",
        p.display()
    );
    p
}

/// `podwire` built with `--features fault-injection` into `<target>/fault-injection` (once per
/// test process), with the `quick` profile (unoptimised): it is a test tool, and its dependencies
/// compile in seconds where the plugin profile takes most of a minute.
pub fn fault_injection_podwire() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_dir().join("fault-injection");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(workspace())
                .args([
                    "build",
                    "--profile",
                    "quick",
                    "--quiet",
                    "-p",
                    "podwire-bridge",
                ])
                .args(["--features", "fault-injection", "--target-dir"])
                .arg(&dir)
                .status()
                .expect("run cargo to build podwire with fault injection");
            assert!(
                status.success(),
                "building podwire --features fault-injection failed"
            );
            let bin = dir.join("quick").join("podwire");
            assert!(bin.is_file(), "{} missing after build", bin.display());
            bin
        })
        .clone()
}
