//! `CNI_ARGS`: `K=V;K2=V2`, as libcni's `LoadArgs`. `IgnoreUnknown=true` (or `1`) lets a plugin
//! skip keys it does not know instead of failing.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub pairs: Vec<(String, String)>,
}

impl CniArgs {
    pub fn parse(s: &str) -> Result<CniArgs> {
        let mut pairs = Vec::new();
        for item in s.split(';').filter(|i| !i.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                Error::invalid_env(format!("invalid CNI_ARGS pair {item:?}: want KEY=VALUE"))
            })?;
            if k.is_empty() {
                return Err(Error::invalid_env(format!(
                    "invalid CNI_ARGS pair {item:?}: empty key"
                )));
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(CniArgs { pairs })
    }

    /// The pairs as `CNI_ARGS` carries them: `K=V;K=V`.
    pub fn join(pairs: &[(String, String)]) -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn ignore_unknown(&self) -> bool {
        matches!(
            self.get("IgnoreUnknown")
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("true" | "1")
        )
    }

    /// Fails with code 2 on a key outside `known`, unless `IgnoreUnknown` is set.
    /// Kubernetes' `K8S_POD_*` keys are always accepted: every runtime sends them.
    pub fn check_known(&self, known: &[&str]) -> Result<()> {
        if self.ignore_unknown() {
            return Ok(());
        }
        for (k, _) in &self.pairs {
            if k != "IgnoreUnknown" && !k.starts_with("K8S_POD_") && !known.contains(&k.as_str()) {
                return Err(Error::unsupported_field(format!(
                    "unknown CNI_ARGS key {k:?} (set IgnoreUnknown=1 to skip unknown keys)"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_pairs_parse_back_to_themselves() {
        let text = "IgnoreUnknown=1;K8S_POD_NAME=web;MAC=";
        let a = CniArgs::parse(text).unwrap();
        assert_eq!(CniArgs::join(&a.pairs), text);
        assert_eq!(CniArgs::join(&[]), "");
    }

    #[test]
    fn parses_pairs() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.5;MAC=").unwrap();
        assert_eq!(a.get("K8S_POD_NAME"), Some("web"));
        assert_eq!(a.get("IP"), Some("10.0.0.5"));
        assert_eq!(a.get("MAC"), Some(""));
        assert_eq!(a.get("nope"), None);
        assert!(a.ignore_unknown());
        assert_eq!(CniArgs::parse("").unwrap().pairs.len(), 0);
        assert_eq!(CniArgs::parse("A=b=c;").unwrap().get("A"), Some("b=c"));
    }

    #[test]
    fn bad_pairs_are_code_4() {
        for bad in ["novalue", "A=1;B", "=x"] {
            assert_eq!(CniArgs::parse(bad).unwrap_err().code.number(), 4, "{bad}");
        }
    }

    #[test]
    fn unknown_keys_fail_unless_ignored() {
        let a = CniArgs::parse("FOO=1").unwrap();
        assert_eq!(a.check_known(&["IP"]).unwrap_err().code.number(), 2);
        assert!(CniArgs::parse("FOO=1;IgnoreUnknown=true")
            .unwrap()
            .check_known(&["IP"])
            .is_ok());
        assert!(CniArgs::parse("IP=1;K8S_POD_NAMESPACE=x")
            .unwrap()
            .check_known(&["IP"])
            .is_ok());
        assert!(!CniArgs::parse("IgnoreUnknown=false")
            .unwrap()
            .ignore_unknown());
    }
}
