//! Failures as the API server reports them: an HTTP code and a `Status` object with the same
//! `reason` and message shape (kube's client turns it into `kube::Error::Api`).

use serde_json::json;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    /// metav1.StatusReason: NotFound, AlreadyExists, Conflict, Expired, BadRequest, Invalid…
    pub reason: &'static str,
    pub message: String,
    /// The object the failure is about (Status `details.name`).
    pub name: Option<String>,
    /// Its resource (Status `details.kind`: nodes, pods…).
    pub resource: Option<&'static str>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, name: Option<&str>) -> ApiError {
        ApiError {
            code,
            reason,
            message,
            name: name.map(str::to_string),
            resource: None,
        }
    }

    fn about(mut self, resource: &'static str) -> ApiError {
        self.resource = Some(resource);
        self
    }

    pub(crate) fn not_found(resource: &'static str, name: &str) -> ApiError {
        Self::new(
            404,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
            Some(name),
        )
        .about(resource)
    }

    pub(crate) fn already_exists(resource: &'static str, name: &str) -> ApiError {
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
            Some(name),
        )
        .about(resource)
    }

    pub(crate) fn conflict(resource: &'static str, name: &str) -> ApiError {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
            Some(name),
        )
        .about(resource)
    }

    pub(crate) fn expired(message: String) -> ApiError {
        Self::new(410, "Expired", message, None)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(400, "BadRequest", message.into(), None)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        Self::new(422, "Invalid", message.into(), None)
    }

    pub(crate) fn too_large_rv(asked: u64, current: u64) -> ApiError {
        Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {asked}, current: {current}"),
            None,
        )
    }

    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        Self::new(415, "UnsupportedMediaType", message.into(), None)
    }

    pub(crate) fn unauthorized() -> ApiError {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// `resource` may name a subresource (`nodes/status`), as the API server's message does.
    pub(crate) fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        group: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> ApiError {
        let plural = resource.split_once('/').map_or(resource, |(p, _)| p);
        let what = match name {
            Some(n) => format!("{plural} \"{n}\""),
            None => plural.to_string(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".into(),
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in \
                 API group \"{group}\" {scope}"
            ),
            name,
        )
    }

    pub(crate) fn method_not_allowed() -> ApiError {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            None,
        )
    }

    pub(crate) fn no_route() -> ApiError {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            None,
        )
    }

    /// The `Status` object, compact JSON.
    pub(crate) fn status_json(&self) -> String {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(name) = &self.name {
            status["details"] = json!({"name": name, "kind": self.resource.unwrap_or("nodes")});
        }
        status.to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}
