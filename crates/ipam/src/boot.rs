//! The ID of the running boot, which stamps allocations for reboot reclamation.

use crate::store::UNKNOWN_BOOT;
use cni::{Error, Result};
use std::path::Path;

/// Reads a boot ID: one token of letters, digits and '-'.
pub fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read boot ID from {}: {e}", path.display())))?;
    let id = text.trim();
    if id.is_empty()
        || id == UNKNOWN_BOOT
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::io(format!(
            "{} does not hold a boot ID: {id:?}",
            path.display()
        )));
    }
    Ok(id.to_string())
}

/// The stamp for new allocations: the boot ID, or "unknown" (never reclaimed) when it cannot
/// be read and reclamation is off. With reclamation on, an unreadable boot ID is an error.
pub fn stamp(path: &Path, reclaim: bool) -> Result<String> {
    match read(path) {
        Ok(id) => Ok(id),
        Err(e) if reclaim => Err(e),
        Err(e) => {
            cni::log::debug(&e.to_string());
            Ok(UNKNOWN_BOOT.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_boot_id() {
        let id = read(Path::new(crate::config::DEFAULT_BOOT_ID_FILE)).unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }

    #[test]
    fn unreadable_boot_id_is_fatal_only_with_reclamation() {
        let p = Path::new("/nonexistent/boot_id");
        assert_eq!(read(p).unwrap_err().code.number(), 5);
        assert_eq!(stamp(p, false).unwrap(), UNKNOWN_BOOT);
        assert!(stamp(p, true).is_err());
    }
}
