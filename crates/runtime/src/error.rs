//! The runtime's error: a CNI error (code + message) with what was being done when it happened:
//! which config file, which plugin and command. `Display` is one line a person can act on.

use cni::Code;
use std::fmt;
use std::path::PathBuf;

/// The operation a plugin was running when it failed, named as libcni names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Check,
    Del,
    Gc,
    Status,
    Version,
}

impl Op {
    /// The `CNI_COMMAND` value.
    pub fn command(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Check => "CHECK",
            Op::Del => "DEL",
            Op::Gc => "GC",
            Op::Status => "STATUS",
            Op::Version => "VERSION",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Check => "check",
            Op::Del => "delete",
            Op::Gc => "gc",
            Op::Status => "status",
            Op::Version => "version",
        }
    }
}

/// Which plugin of a list failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// The plugin's `type` (its binary name).
    pub kind: String,
    /// The network the plugin ran for.
    pub network: String,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The code and message. When `reported` is true they are the plugin's own error JSON.
    pub cni: cni::Error,
    /// True when the plugin printed the spec's error JSON (so `cni.code` is the plugin's).
    pub reported: bool,
    pub plugin: Option<Box<PluginRef>>,
    /// The config file that could not be used.
    pub file: Option<PathBuf>,
    /// Further errors joined with this one (GC collects them all, as libcni does).
    pub more: Vec<Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(cni: cni::Error) -> Error {
        Error {
            cni,
            reported: false,
            plugin: None,
            file: None,
            more: Vec::new(),
        }
    }

    pub fn code(&self) -> Code {
        self.cni.code
    }

    pub(crate) fn in_file(mut self, file: impl Into<PathBuf>) -> Error {
        self.file.get_or_insert(file.into());
        self
    }

    pub(crate) fn for_plugin(mut self, kind: &str, network: &str, op: Op) -> Error {
        self.plugin.get_or_insert_with(|| {
            Box::new(PluginRef {
                kind: kind.to_string(),
                network: network.to_string(),
                op,
            })
        });
        self
    }

    /// Joins several errors into one (the first leads); `None` when there are none.
    pub(crate) fn join(mut errs: Vec<Error>) -> Option<Error> {
        if errs.is_empty() {
            return None;
        }
        let mut first = errs.remove(0);
        first.more.extend(errs);
        Some(first)
    }

    /// This error and the ones joined to it.
    pub fn all(&self) -> impl Iterator<Item = &Error> {
        std::iter::once(self).chain(self.more.iter())
    }
}

impl From<cni::Error> for Error {
    fn from(e: cni::Error) -> Self {
        Error::new(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.plugin {
            write!(
                f,
                "plugin type={:?} name={:?} failed ({}): ",
                p.kind,
                p.network,
                p.op.verb()
            )?;
        }
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "{}", self.cni)?;
        for e in &self.more {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_plugin_file_and_code() {
        let e = Error::new(cni::Error::invalid_config("bad subnet")).for_plugin(
            "bridge",
            "net1",
            Op::Add,
        );
        assert_eq!(
            e.to_string(),
            r#"plugin type="bridge" name="net1" failed (add): bad subnet (CNI code 7)"#
        );
        let f = Error::new(cni::Error::decode("oops")).in_file("/etc/cni/net.d/10.conflist");
        assert_eq!(
            f.to_string(),
            "/etc/cni/net.d/10.conflist: oops (CNI code 6)"
        );
    }

    #[test]
    fn join_keeps_every_error() {
        assert!(Error::join(vec![]).is_none());
        let j = Error::join(vec![cni::Error::io("a").into(), cni::Error::io("b").into()]).unwrap();
        assert_eq!(j.all().count(), 2);
        assert!(j.to_string().contains("a (CNI code 5); b (CNI code 5)"));
    }
}
