//! The resources kubesim serves and what differs between them: URL group and name, kind,
//! namespaced or not, status subresource, what a body must decode as, and the field selectors
//! the API server supports on them.

use serde_json::Value;

#[derive(Debug)]
pub struct Kind {
    /// The URL's plural name: `nodes`, `pods`.
    pub resource: &'static str,
    /// As error messages name it: `pods`, `networkpolicies.networking.k8s.io`.
    pub qualified: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    /// "" for the core group.
    pub group: &'static str,
    /// `v1`, `networking.k8s.io/v1`.
    pub api_version: &'static str,
    pub namespaced: bool,
    /// Has a status subresource: updates of the object keep its status, and the reverse.
    pub status: bool,
    pub short_names: &'static [&'static str],
    /// Field selectors beyond metadata.name / metadata.namespace.
    pub fields: &'static [&'static str],
    decodes: fn(&Value) -> Result<(), String>,
}

fn decodes<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(v.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub static NODES: Kind = Kind {
    resource: "nodes",
    qualified: "nodes",
    singular: "node",
    kind: "Node",
    group: "",
    api_version: "v1",
    namespaced: false,
    status: true,
    short_names: &["no"],
    fields: &["spec.unschedulable"],
    decodes: decodes::<k8s_openapi::api::core::v1::Node>,
};

pub static NAMESPACES: Kind = Kind {
    resource: "namespaces",
    qualified: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    group: "",
    api_version: "v1",
    namespaced: false,
    status: true,
    short_names: &["ns"],
    fields: &["status.phase"],
    decodes: decodes::<k8s_openapi::api::core::v1::Namespace>,
};

pub static PODS: Kind = Kind {
    resource: "pods",
    qualified: "pods",
    singular: "pod",
    kind: "Pod",
    group: "",
    api_version: "v1",
    namespaced: true,
    status: true,
    short_names: &["po"],
    fields: &[
        "spec.nodeName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
    ],
    decodes: decodes::<k8s_openapi::api::core::v1::Pod>,
};

pub static NETWORK_POLICIES: Kind = Kind {
    resource: "networkpolicies",
    qualified: "networkpolicies.networking.k8s.io",
    singular: "networkpolicy",
    kind: "NetworkPolicy",
    group: "networking.k8s.io",
    api_version: "networking.k8s.io/v1",
    namespaced: true,
    status: false,
    short_names: &["netpol"],
    fields: &[],
    decodes: decodes::<k8s_openapi::api::networking::v1::NetworkPolicy>,
};

/// core/v1 Events, as kubelet and podwire's agent write them about a Node (`kubectl describe
/// node` lists them by these field selectors). events.k8s.io/v1 is not served.
pub static EVENTS: Kind = Kind {
    resource: "events",
    qualified: "events",
    singular: "event",
    kind: "Event",
    group: "",
    api_version: "v1",
    namespaced: true,
    status: false,
    short_names: &["ev"],
    fields: &[
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.uid",
        "reason",
        "type",
    ],
    decodes: decodes::<k8s_openapi::api::core::v1::Event>,
};

impl PartialEq for Kind {
    fn eq(&self, other: &Kind) -> bool {
        (self.group, self.resource) == (other.group, other.resource)
    }
}

impl Eq for Kind {}

pub static ALL: [&Kind; 5] = [&NODES, &NAMESPACES, &PODS, &NETWORK_POLICIES, &EVENTS];

impl Kind {
    /// The kind serving `resource` of `group`.
    pub fn find(group: &str, resource: &str) -> Option<&'static Kind> {
        ALL.iter()
            .copied()
            .find(|k| k.group == group && k.resource == resource)
    }

    /// The store key of an object: `pods/ns/name`, `nodes//name`. Keys of one resource (and of
    /// one namespace) are one range, in namespace then name order, as etcd's.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        format!("{}/{namespace}/{name}", self.resource)
    }

    /// The key prefix of every object of this resource, or of one namespace's.
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!("{}/{ns}/", self.resource),
            None => format!("{}/", self.resource),
        }
    }

    /// Whether `v` decodes as this kind (the error says why not).
    pub fn check(&self, v: &Value) -> Result<(), String> {
        (self.decodes)(v)
    }

    /// The value of a selectable field of an object ("" when unset, as the API server's).
    pub fn field(&self, obj: &Value, field: &str) -> Option<String> {
        let pointer = match field {
            "metadata.name" => "/metadata/name".to_string(),
            "metadata.namespace" => "/metadata/namespace".to_string(),
            f if self.fields.contains(&f) => format!("/{}", f.replace('.', "/")),
            _ => return None,
        };
        Some(match obj.pointer(&pointer) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
    }
}

/// A parsed `fieldSelector`: `a=b,c!=d` (`==` too), every term ANDed.
#[derive(Clone, Debug, Default)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses for `kind`; the error is the API server's message for an unsupported field.
    pub fn parse(kind: &Kind, raw: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in raw.split(',').filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{raw}'; can't understand '{term}'"
                ));
            };
            let field = field.trim();
            if kind.field(&Value::Null, field).is_none() {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, kind: &Kind, obj: &Value) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let have = kind.field(obj, field).unwrap_or_default();
            (have == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors_match_as_the_api_server() {
        let pod = json!({"metadata": {"name": "a", "namespace": "x"}, "spec": {"nodeName": "n1"}});
        let s = FieldSelector::parse(&PODS, "spec.nodeName=n1").unwrap();
        assert!(s.matches(&PODS, &pod));
        let s = FieldSelector::parse(&PODS, "spec.nodeName!=n1,metadata.namespace==x").unwrap();
        assert!(!s.matches(&PODS, &pod));
        let unscheduled = json!({"metadata": {"name": "b"}, "spec": {}});
        let s = FieldSelector::parse(&PODS, "spec.nodeName=").unwrap();
        assert!(s.matches(&PODS, &unscheduled));
        assert_eq!(
            FieldSelector::parse(&NETWORK_POLICIES, "spec.nodeName=n1").unwrap_err(),
            "field label not supported: spec.nodeName"
        );
        assert!(FieldSelector::parse(&PODS, "nonsense").is_err());
    }

    #[test]
    fn keys_sort_by_resource_namespace_name() {
        assert_eq!(PODS.key("x", "a"), "pods/x/a");
        assert!(PODS.key("x", "a").starts_with(&PODS.prefix(Some("x"))));
        assert!(!PODS.key("xy", "a").starts_with(&PODS.prefix(Some("x"))));
        assert_eq!(NODES.key("", "n1"), "nodes//n1");
        assert_eq!(
            Kind::find("networking.k8s.io", "networkpolicies"),
            Some(&NETWORK_POLICIES)
        );
        assert_eq!(Kind::find("", "networkpolicies"), None);
    }
}
