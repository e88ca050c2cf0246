//! One error type for the whole crate. It keeps the errno so idempotent
//! callers can tell "already there" and "already gone" apart from real
//! failures, and it names the operation so a log line explains itself.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A syscall or a netlink request failed with an errno.
    /// `detail` carries the kernel's extended ack message, when it sent one.
    #[error("{op}: {}{}", io::Error::from_raw_os_error(*.errno), detail_suffix(.detail))]
    Os {
        op: String,
        errno: i32,
        detail: Option<String>,
    },
    /// The path exists but is not a network namespace (e.g. a plain file,
    /// or another kind of namespace).
    #[error("{op}: {} is not a network namespace", .path.display())]
    NotNetns { op: String, path: PathBuf },
    /// The caller asked for something the kernel state contradicts,
    /// e.g. "ensure bridge" over an existing non-bridge link.
    #[error("{op}: {msg}")]
    Invalid { op: String, msg: String },
    /// The kernel answered something we could not understand.
    #[error("{op}: {msg}")]
    Protocol { op: String, msg: String },
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    }
}

impl Error {
    pub(crate) fn os(op: impl Into<String>, errno: i32) -> Self {
        Error::Os {
            op: op.into(),
            errno: errno.abs(),
            detail: None,
        }
    }

    /// Wraps an `io::Error`, keeping its errno when it has one.
    pub(crate) fn io(op: impl Into<String>, err: io::Error) -> Self {
        match err.raw_os_error() {
            Some(errno) => Error::os(op, errno),
            None => Error::Protocol {
                op: op.into(),
                msg: err.to_string(),
            },
        }
    }

    pub(crate) fn invalid(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op: op.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn protocol(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Protocol {
            op: op.into(),
            msg: msg.into(),
        }
    }

    /// Replaces the operation description (used when a low-level helper
    /// fails on behalf of a higher-level operation).
    pub(crate) fn with_op(mut self, new_op: impl Into<String>) -> Self {
        match &mut self {
            Error::Os { op, .. }
            | Error::NotNetns { op, .. }
            | Error::Invalid { op, .. }
            | Error::Protocol { op, .. } => *op = new_op.into(),
        }
        self
    }

    /// The operation that failed, e.g. `create veth veth1a2b3c4d`.
    pub fn op(&self) -> &str {
        match self {
            Error::Os { op, .. }
            | Error::NotNetns { op, .. }
            | Error::Invalid { op, .. }
            | Error::Protocol { op, .. } => op,
        }
    }

    /// The positive errno, when the failure came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The object already exists (EEXIST).
    /// An nftables batch bound to a generation ([`crate::nft::Nftables::transaction_at`])
    /// found the ruleset changed since (ERESTART): read again and retry.
    pub fn is_generation_changed(&self) -> bool {
        self.errno() == Some(libc::ERESTART)
    }

    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object does not exist. Covers the errnos the kernel uses for
    /// that depending on the object: ENOENT (files, nft objects, netns),
    /// ENODEV (links), ESRCH (routes), EADDRNOTAVAIL (addresses).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    /// The path given as a network namespace is not one.
    pub fn is_not_netns(&self) -> bool {
        matches!(self, Error::NotNetns { .. })
    }

    /// What a plugin tells the runtime when opening its `CNI_NETNS` `path` failed this way.
    pub fn netns_open_message(&self, path: &str) -> String {
        if self.is_not_found() {
            format!("CNI_NETNS {path:?} does not exist")
        } else if self.is_not_netns() {
            format!("CNI_NETNS {path:?} is not a network namespace")
        } else {
            format!("cannot open CNI_NETNS {path:?}: {self}")
        }
    }
}

/// Turns the "already there" / "already gone" outcomes into success for
/// idempotent callers (CNI DEL must succeed when things are gone).
pub trait ResultExt<T> {
    /// `Ok(Some(v))` on success, `Ok(None)` when the error is "not found".
    fn ok_if_not_found(self) -> Result<Option<T>>;
    /// `Ok(Some(v))` on success, `Ok(None)` when the error is EEXIST.
    fn ok_if_exists(self) -> Result<Option<T>>;
}

impl<T> ResultExt<T> for Result<T> {
    fn ok_if_not_found(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn ok_if_exists(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_exists() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The one conversion of a kernel failure into a CNI error: plugin code 100
/// (`cni::error::plugin_code::KERNEL`), with the operation and the errno in the message, for the
/// plugins, node setup, the agent and podwirectl alike.
impl From<Error> for cni::Error {
    fn from(e: Error) -> cni::Error {
        cni::Error::plugin(cni::error::plugin_code::KERNEL, e.to_string())
    }
}

impl Error {
    /// Opening `CNI_NETNS` failed: a path that is missing or not a netns is the runtime's
    /// mistake (code 4, invalid environment), not the kernel's.
    pub fn netns_open_error(self, path: &str) -> cni::Error {
        cni::Error::invalid_env(self.netns_open_message(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_operation_and_errno() {
        let e = Error::os("create veth veth1a2b3c4d", libc::EEXIST);
        assert_eq!(
            e.to_string(),
            "create veth veth1a2b3c4d: File exists (os error 17)"
        );
        assert!(e.is_exists());
        assert!(!e.is_not_found());
    }

    #[test]
    fn not_found_covers_kernel_variants() {
        for errno in [libc::ENOENT, libc::ENODEV, libc::ESRCH, libc::EADDRNOTAVAIL] {
            assert!(Error::os("x", -errno).is_not_found());
        }
        assert!(!Error::os("x", libc::EPERM).is_not_found());
    }

    #[test]
    fn detail_is_appended() {
        let e = Error::Os {
            op: "add vlan".into(),
            errno: libc::EINVAL,
            detail: Some("bad vid".into()),
        };
        assert_eq!(
            e.to_string(),
            "add vlan: Invalid argument (os error 22) (bad vid)"
        );
    }

    #[test]
    fn ok_if_not_found() {
        let r: Result<()> = Err(Error::os("del", libc::ENODEV));
        assert_eq!(r.ok_if_not_found().unwrap(), None);
        let r: Result<()> = Err(Error::os("del", libc::EPERM));
        assert!(r.ok_if_not_found().is_err());
    }

    #[test]
    fn a_kernel_failure_is_cni_code_100_and_a_bad_netns_path_code_4() {
        let e: cni::Error = Error::os("add link podwire0", libc::EEXIST).into();
        assert_eq!(e.code.number(), 100, "{e:?}");
        assert!(e.msg.contains("add link podwire0"), "{e:?}");
        let e = Error::os("open netns", libc::ENOENT).netns_open_error("/run/netns/gone");
        assert_eq!(e.code.number(), 4, "{e:?}");
        assert!(e.msg.contains("/run/netns/gone"), "{e:?}");
    }
}
