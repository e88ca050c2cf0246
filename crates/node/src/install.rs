//! Copying the plugin binaries into the node's CNI bin directory (the DaemonSet's init container;
//! its image has no shell or `cp`). Each binary goes in by temp file + rename: a runtime exec'ing
//! the plugin at that moment runs the old file or the new one, never a half-written one, and never
//! hits ETXTBSY (the old inode is replaced, not written to).

use crate::files;
use cni::{Error, Result};
use std::path::Path;

/// The binaries a podwire node needs in /opt/cni/bin.
/// `loopback` is ours too: containerd's CRI execs that name for every sandbox's `lo`.
pub const BINARIES: &[&str] = &["podwire", "podwire-ipam", "podwire-portmap", "loopback"];

/// Copies `names` from `from` to `to` (0755); an identical file is left alone. Returns the
/// names it copied.
pub fn install_binaries(from: &Path, to: &Path, names: &[&str]) -> Result<Vec<String>> {
    let mut copied = Vec::new();
    for name in names {
        let src = from.join(name);
        let bytes = std::fs::read(&src).map_err(|e| {
            Error::io(format!(
                "read {}: {e} (is --from the directory holding the podwire binaries?)",
                src.display()
            ))
        })?;
        if files::write_atomic(&to.join(name), &bytes, 0o755)? {
            copied.push(name.to_string());
        }
    }
    Ok(copied)
}

/// Removes `names` from `to`; returns the names that were there.
pub fn remove_binaries(to: &Path, names: &[&str]) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in names {
        if files::remove(&to.join(name))? {
            removed.push(name.to_string());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_executables_once() {
        let base = std::env::temp_dir().join(format!("podwire-node-inst-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        std::fs::create_dir_all(&from).unwrap();
        for n in BINARIES {
            std::fs::write(from.join(n), n.as_bytes()).unwrap();
        }
        assert_eq!(install_binaries(&from, &to, BINARIES).unwrap(), BINARIES);
        let mode = std::fs::metadata(to.join("podwire"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(install_binaries(&from, &to, BINARIES).unwrap().is_empty());
        assert_eq!(remove_binaries(&to, BINARIES).unwrap(), BINARIES);
        assert!(remove_binaries(&to, BINARIES).unwrap().is_empty());
        let e = install_binaries(&from, &to, &["nope"]).unwrap_err();
        assert!(e.msg.contains("nope"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
