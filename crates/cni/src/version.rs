//! CNI specification versions: which we speak, how they compare, how a `cniVersions` list is resolved.

use crate::error::{Error, Result};
use std::cmp::Ordering;

/// Every version podwire reads and writes, oldest first.
pub const SUPPORTED: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The newest version; what we answer in when nothing else is asked.
pub const CURRENT: &str = "1.1.0";

/// A parsed `major.minor.patch` (missing parts count as 0, as in libcni's semver parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Result<Version> {
        let bad = || {
            Error::incompatible_version(format!("invalid version {s:?}: want major.minor.patch"))
        };
        let mut parts = s.split('.');
        let mut next = |required: bool| -> Result<u32> {
            match parts.next() {
                Some(p)
                    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 9 =>
                {
                    p.parse().map_err(|_| bad())
                }
                None if !required => Ok(0),
                _ => Err(bad()),
            }
        };
        let v = Version(next(true)?, next(false)?, next(false)?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

/// Whether `v` is one of the versions we implement.
pub fn is_supported(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

/// Fails with code 1 unless `v` is a version we implement.
pub fn require_supported(v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::incompatible_version(
            "config has no cniVersion; podwire needs one of ".to_string() + &SUPPORTED.join(", "),
        ));
    }
    if is_supported(v) {
        Ok(())
    } else {
        Err(Error::incompatible_version(format!(
            "cniVersion {v:?} is not supported; podwire supports {}",
            SUPPORTED.join(", ")
        )))
    }
}

/// Compares two version strings numerically ("0.10.0" > "0.9.0").
pub fn compare(a: &str, b: &str) -> Result<Ordering> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// Picks the version a conflist runs at, as libcni does: the highest entry of `cniVersions`
/// that we support, else `cniVersion`. Entries that do not parse are an error.
pub fn select(cni_version: &str, cni_versions: &[String]) -> Result<String> {
    let mut best: Option<(Version, &str)> = None;
    for v in cni_versions {
        let parsed = Version::parse(v)?;
        if is_supported(v) && best.is_none_or(|(b, _)| parsed > b) {
            best = Some((parsed, v));
        }
    }
    match best {
        Some((_, v)) => Ok(v.to_string()),
        None => Ok(cni_version.to_string()),
    }
}

/// Answer to the VERSION command.
pub fn version_info(cni_version: &str) -> serde_json::Value {
    serde_json::json!({ "cniVersion": cni_version, "supportedVersions": SUPPORTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_numerically() {
        assert_eq!(Version::parse("1.1.0").unwrap(), Version(1, 1, 0));
        assert_eq!(Version::parse("1").unwrap(), Version(1, 0, 0));
        assert!(Version::parse("0.10.0").unwrap() > Version::parse("0.9.9").unwrap());
        for bad in [
            "",
            "a.b.c",
            "1.2.3.4",
            "1..2",
            "-1.0.0",
            "1.0.0-rc1",
            "99999999999.0.0",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn supported_list_is_ascending() {
        for w in SUPPORTED.windows(2) {
            assert_eq!(compare(w[0], w[1]).unwrap(), Ordering::Less);
        }
    }

    #[test]
    fn require_supported_rejects_unknown_and_empty() {
        assert!(require_supported("1.0.0").is_ok());
        assert_eq!(require_supported("").unwrap_err().code.number(), 1);
        assert_eq!(require_supported("0.5.0").unwrap_err().code.number(), 1);
        assert_eq!(require_supported("2.0.0").unwrap_err().code.number(), 1);
    }

    #[test]
    fn select_picks_highest_supported_from_cni_versions() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            select("0.4.0", &list(&["1.0.0", "1.1.0", "0.4.0"])).unwrap(),
            "1.1.0"
        );
        assert_eq!(
            select("0.4.0", &list(&["1.0.0", "9.9.9"])).unwrap(),
            "1.0.0"
        );
        assert_eq!(select("0.4.0", &list(&["9.9.9"])).unwrap(), "0.4.0");
        assert_eq!(select("0.3.1", &[]).unwrap(), "0.3.1");
        assert!(select("0.3.1", &list(&["x"])).is_err());
    }

    #[test]
    fn version_info_lists_all_seven() {
        let v = version_info("1.1.0");
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
    }
}
