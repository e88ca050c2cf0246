//! End-to-end suites: podwire under containerd's CRI and Podman.
//!
//! The harness the suites (tests/*.rs) and the demo's CRI client (`podwire-cri`) share. Everything
//! is private to one directory per run: a containerd or Podman with its own root, state, socket and
//! CNI dirs; podwire's binaries copied into a private CNI bin dir; a podwire conflist on its own
//! bridge and test subnet. Guards stop what they started (by PID) and remove it, pass or fail.
//!
//! - [`cmd`]: running tools, failing (not skipping) with an install hint when one is missing
//! - [`binaries`]: podwire's release binaries and a private CNI bin dir
//! - [`conflist`]: the podwire network both runtimes load
//! - [`image`]: a static pause binary and busybox, packed as images without a registry
//! - [`containerd`]: a private containerd with the CRI plugin set up for these machines
//! - [`cri`]: a blocking CRI client over the containerd socket
//! - [`daemonset`]: deploy/podwire.yaml's DaemonSet turned into the CRI calls kubelet makes
//! - [`podman`]: Podman with a private config, storage and CNI network
//! - [`host`]: reading back kernel and disk state (links, addresses, nft rules, allocations, caches)

pub mod binaries;
pub mod cmd;
pub mod conflist;
pub mod containerd;
pub mod cri;
pub mod daemonset;
pub mod host;
pub mod image;
pub mod podman;

/// A fresh private directory for one run, removed by its owner's guard.
pub fn private_dir(prefix: &str) -> std::path::PathBuf {
    let base = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    ));
    std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("create {}: {e}", base.display()));
    base
}
