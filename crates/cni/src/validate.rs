//! libcni's validation rules for container IDs, network names and interface names.

use crate::error::{Error, Result};

/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, as libcni's `ValidateContainerID`/`ValidateNetworkName`.
fn is_cni_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub fn container_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid_env("missing CNI_CONTAINERID"));
    }
    if !is_cni_name(id) {
        return Err(Error::invalid_env(format!(
            "invalid container ID {id:?}: must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        )));
    }
    Ok(())
}

pub fn network_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_config("network config has no \"name\""));
    }
    if !is_cni_name(name) {
        return Err(Error::invalid_config(format!(
            "invalid network name {name:?}: must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        )));
    }
    Ok(())
}

/// Linux's limit: IFNAMSIZ (16) less the trailing NUL.
pub const MAX_IFNAME_LEN: usize = 15;

pub fn interface_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid_env(format!(
            "invalid interface name {name:?}: {why}"
        )))
    };
    if name.is_empty() {
        return Err(Error::invalid_env("missing CNI_IFNAME"));
    }
    if name.len() > MAX_IFNAME_LEN {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("may not be '.' or '..'");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("may not contain '/', ':' or whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        for ok in [
            "a",
            "0",
            "abc-DEF_1.2",
            "130d9e7a9b5505372e1db478bbf95f5bb46977939833d2568a849a214e7414dc",
        ] {
            assert!(container_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-a", ".a", "_a", "a/b", "a b", "a:b", "ä", "a\n", "../x",
        ] {
            assert_eq!(container_id(bad).unwrap_err().code.number(), 4, "{bad:?}");
        }
    }

    #[test]
    fn network_names() {
        for ok in ["mynet", "k8s-pod-network", "n.1_2"] {
            assert!(network_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", "/etc", "a/b", "-x", "a b"] {
            assert_eq!(network_name(bad).unwrap_err().code.number(), 7, "{bad:?}");
        }
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "a", "net1.100", "123456789012345", "veth-x_y"] {
            assert!(interface_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "1234567890123456",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "eth\n",
        ] {
            assert_eq!(interface_name(bad).unwrap_err().code.number(), 4, "{bad:?}");
        }
    }
}
