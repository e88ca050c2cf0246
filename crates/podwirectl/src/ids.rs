//! How cnitool names things: the netns path made absolute (lexically, like Go's
//! `filepath.Abs`), and the container ID `cnitool-` + the first 10 bytes of its SHA-512 in hex.

use sha2::{Digest, Sha512};
use std::path::{Component, Path, PathBuf};

/// `path` made absolute against `cwd` and cleaned without touching the filesystem.
pub fn absolute(path: &str, cwd: &Path) -> PathBuf {
    let joined = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// cnitool's container ID for a netns path (already absolute).
pub fn container_id(netns: &str) -> String {
    let digest = Sha512::digest(netns.as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("cnitool-{hex}")
}

/// A bare name that is not a path here but is a namespace under /run/netns means that one.
pub fn netns_path(arg: &str, cwd: &Path, run_dir: &Path) -> PathBuf {
    if !arg.is_empty() && !arg.contains('/') && !cwd.join(arg).exists() {
        let named = run_dir.join(arg);
        if named.exists() {
            return named;
        }
    }
    absolute(arg, cwd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_matches_cnitool() {
        // `printf %s /var/run/netns/testing | sha512sum`: cnitool keeps the first 10 bytes.
        assert_eq!(
            container_id("/var/run/netns/testing"),
            "cnitool-77383ca0a0715733ca6f"
        );
        assert_ne!(
            container_id("/var/run/netns/testing"),
            container_id("/var/run/netns/testing2")
        );
    }

    #[test]
    fn absolute_cleans_like_go() {
        let cwd = Path::new("/home/u");
        assert_eq!(absolute("ns", cwd), PathBuf::from("/home/u/ns"));
        assert_eq!(absolute("./a/../b//c/", cwd), PathBuf::from("/home/u/b/c"));
        assert_eq!(absolute("/run/netns/x", cwd), PathBuf::from("/run/netns/x"));
        assert_eq!(absolute("/../x", cwd), PathBuf::from("/x"));
    }
}
