//! Label selectors (metav1.LabelSelector) as the API server evaluates them: `matchLabels` and
//! `matchExpressions` (In, NotIn, Exists, DoesNotExist) ANDed; an empty selector matches every
//! label set. A selector that cannot be understood is an error, never a guess: the caller
//! decides what failing closed means where it is used.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet};

/// Labels of a pod or a namespace.
pub type Labels = BTreeMap<String, String>;

/// One `matchExpressions` requirement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            // As upstream: a missing key satisfies NotIn.
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed, valid label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    pub labels: Labels,
    pub requirements: Vec<Requirement>,
}

impl Selector {
    /// The empty selector: matches everything.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Parses `s`; the error says what is wrong (an unknown operator, values where none are
    /// allowed or none where some are needed).
    pub fn from_k8s(s: &LabelSelector) -> Result<Selector, String> {
        let mut out = Selector {
            labels: s.match_labels.clone().unwrap_or_default(),
            requirements: Vec::new(),
        };
        for (i, e) in s.match_expressions.iter().flatten().enumerate() {
            let values: BTreeSet<String> = e.values.iter().flatten().cloned().collect();
            let key = e.key.clone();
            if key.is_empty() {
                return Err(format!("matchExpressions[{i}]: empty key"));
            }
            let needs_values = |r: Requirement| {
                if values.is_empty() {
                    Err(format!(
                        "matchExpressions[{i}]: operator {} needs values",
                        e.operator
                    ))
                } else {
                    Ok(r)
                }
            };
            let no_values = |r: Requirement| {
                if values.is_empty() {
                    Ok(r)
                } else {
                    Err(format!(
                        "matchExpressions[{i}]: operator {} takes no values",
                        e.operator
                    ))
                }
            };
            out.requirements.push(match e.operator.as_str() {
                "In" => needs_values(Requirement::In(key, values.clone()))?,
                "NotIn" => needs_values(Requirement::NotIn(key, values.clone()))?,
                "Exists" => no_values(Requirement::Exists(key))?,
                "DoesNotExist" => no_values(Requirement::DoesNotExist(key))?,
                other => return Err(format!("matchExpressions[{i}]: unknown operator {other:?}")),
            });
        }
        Ok(out)
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether it matches every label set (so also labels not known yet).
    pub fn matches_everything(&self) -> bool {
        self.labels.is_empty() && self.requirements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn sel(match_labels: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> Selector {
        Selector::from_k8s(&LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        })
        .unwrap()
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = Selector::from_k8s(&LabelSelector::default()).unwrap();
        assert!(s.matches_everything());
        assert!(s.matches(&Labels::new()));
        assert!(s.matches(&labels(&[("pod", "a")])));
        let empty_map = Selector::from_k8s(&LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        })
        .unwrap();
        assert!(empty_map.matches_everything());
    }

    #[test]
    fn match_labels_need_every_pair() {
        let s = sel(&[("pod", "b"), ("pod2", "updated")], vec![]);
        assert!(!s.matches_everything());
        assert!(!s.matches(&labels(&[("pod", "b")])));
        assert!(s.matches(&labels(&[("pod", "b"), ("pod2", "updated"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("pod", "c"), ("pod2", "updated")])));
    }

    #[test]
    fn operators_follow_upstream() {
        let a = labels(&[("pod", "a")]);
        let b = labels(&[("pod", "b")]);
        let none = Labels::new();
        let s = sel(&[], vec![expr("pod", "In", &["b", "c"])]);
        assert!((s.matches(&b), s.matches(&a), s.matches(&none)) == (true, false, false));
        let s = sel(&[], vec![expr("pod", "NotIn", &["b"])]);
        assert!(
            (s.matches(&b), s.matches(&a), s.matches(&none)) == (false, true, true),
            "a missing key satisfies NotIn"
        );
        let s = sel(&[], vec![expr("pod", "Exists", &[])]);
        assert!((s.matches(&b), s.matches(&none)) == (true, false));
        let s = sel(&[], vec![expr("pod", "DoesNotExist", &[])]);
        assert!((s.matches(&b), s.matches(&none)) == (false, true));
        // ANDed with matchLabels.
        let s = sel(&[("ns", "x")], vec![expr("pod", "In", &["a"])]);
        assert!(!s.matches(&a));
        assert!(s.matches(&labels(&[("pod", "a"), ("ns", "x")])));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for (op, values) in [
            ("Matches", &["a"][..]),
            ("In", &[][..]),
            ("NotIn", &[][..]),
            ("Exists", &["a"][..]),
            ("DoesNotExist", &["a"][..]),
            ("in", &["a"][..]),
        ] {
            let s = LabelSelector {
                match_expressions: Some(vec![expr("pod", op, values)]),
                ..Default::default()
            };
            assert!(Selector::from_k8s(&s).is_err(), "{op} {values:?}");
        }
        let s = LabelSelector {
            match_expressions: Some(vec![expr("", "Exists", &[])]),
            ..Default::default()
        };
        assert!(Selector::from_k8s(&s).unwrap_err().contains("empty key"));
    }
}
