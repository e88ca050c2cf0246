//! The CNI error: a spec code, a message and details, printed as the spec's error JSON.

use std::fmt;

/// The error codes of the CNI specification (section "Error").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion,
    UnsupportedField,
    UnknownContainer,
    InvalidEnvironment,
    Io,
    Decode,
    InvalidConfig,
    TryAgainLater,
    /// STATUS: the plugin is not available (e.g. no free address).
    NotAvailable,
    /// STATUS: the plugin is available but not ready for new ADDs in a limited way.
    LimitedConnectivity,
    /// 100 and above: plugin-specific.
    Plugin(u32),
}

impl Code {
    pub fn number(self) -> u32 {
        match self {
            Code::IncompatibleVersion => 1,
            Code::UnsupportedField => 2,
            Code::UnknownContainer => 3,
            Code::InvalidEnvironment => 4,
            Code::Io => 5,
            Code::Decode => 6,
            Code::InvalidConfig => 7,
            Code::TryAgainLater => 11,
            Code::NotAvailable => 50,
            Code::LimitedConnectivity => 51,
            Code::Plugin(n) => n,
        }
    }

    pub fn from_number(n: u32) -> Code {
        match n {
            1 => Code::IncompatibleVersion,
            2 => Code::UnsupportedField,
            3 => Code::UnknownContainer,
            4 => Code::InvalidEnvironment,
            5 => Code::Io,
            6 => Code::Decode,
            7 => Code::InvalidConfig,
            11 => Code::TryAgainLater,
            50 => Code::NotAvailable,
            51 => Code::LimitedConnectivity,
            n => Code::Plugin(n),
        }
    }
}

/// Plugin-specific codes used by podwire (the spec reserves 100+ for plugins).
pub mod plugin_code {
    /// A kernel (netlink) operation failed.
    pub const KERNEL: u32 = 100;
    /// IPAM: the range has no free address.
    pub const RANGE_EXHAUSTED: u32 = 101;
    /// A delegated plugin failed.
    pub const DELEGATE: u32 = 102;
    /// ADD found the interface it was asked to create already in the container.
    pub const INTERFACE_EXISTS: u32 = 103;
    /// CHECK found the kernel state differing from the previous result.
    pub const CHECK_MISMATCH: u32 = 104;
    /// podwire-portmap: the host port/protocol/host IP is already mapped to another pod.
    pub const PORT_CONFLICT: u32 = 105;
    /// The plugin panicked (a bug): the message says where.
    pub const INTERNAL: u32 = 199;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub msg: String,
    pub details: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }
    pub fn incompatible_version(msg: impl Into<String>) -> Self {
        Self::new(Code::IncompatibleVersion, msg)
    }
    pub fn unsupported_field(msg: impl Into<String>) -> Self {
        Self::new(Code::UnsupportedField, msg)
    }
    pub fn unknown_container(msg: impl Into<String>) -> Self {
        Self::new(Code::UnknownContainer, msg)
    }
    pub fn invalid_env(msg: impl Into<String>) -> Self {
        Self::new(Code::InvalidEnvironment, msg)
    }
    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(Code::Io, msg)
    }
    pub fn decode(msg: impl Into<String>) -> Self {
        Self::new(Code::Decode, msg)
    }
    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Self::new(Code::InvalidConfig, msg)
    }
    pub fn try_again_later(msg: impl Into<String>) -> Self {
        Self::new(Code::TryAgainLater, msg)
    }
    pub fn not_available(msg: impl Into<String>) -> Self {
        Self::new(Code::NotAvailable, msg)
    }
    pub fn plugin(code: u32, msg: impl Into<String>) -> Self {
        Self::new(Code::Plugin(code), msg)
    }

    /// The spec's error object, stamped with the version of the request.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "cniVersion": cni_version,
            "code": self.code.number(),
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            v["details"] = self.details.clone().into();
        }
        v
    }

    /// Parses a plugin's error JSON (as printed on stdout with a non-zero exit).
    pub fn from_json(bytes: &[u8]) -> Option<Error> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let code = v.get("code")?.as_u64()?;
        Some(Error {
            code: Code::from_number(u32::try_from(code).ok()?),
            msg: v
                .get("msg")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string(),
            details: v
                .get("details")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string(),
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.msg)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        write!(f, " (CNI code {})", self.code.number())
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::decode(format!("cannot decode JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_number() {
        for n in [1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 150] {
            assert_eq!(Code::from_number(n).number(), n);
        }
    }

    #[test]
    fn error_json_has_the_spec_fields() {
        let e = Error::invalid_config("bad subnet").with_details("10.0.0.0/33");
        let v = e.to_json("1.1.0");
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["code"], 7);
        assert_eq!(v["msg"], "bad subnet");
        assert_eq!(v["details"], "10.0.0.0/33");
        assert_eq!(Error::from_json(v.to_string().as_bytes()), Some(e));
    }

    #[test]
    fn empty_details_are_omitted() {
        let v = Error::io("disk").to_json("0.4.0");
        assert!(v.get("details").is_none());
    }

    #[test]
    fn display_names_the_code() {
        assert_eq!(
            Error::decode("oops").to_string(),
            "oops (CNI code 6)".to_string()
        );
    }
}
