//! Plugin logging. Never stdout (that is the result channel): warnings and errors go to stderr,
//! which runtimes capture; with `"logFile"` in the config every line at or above `"logLevel"`
//! (`debug`, `info`, `warn`, `error`; default `info`) is appended there too.

use crate::skel::CmdArgs;
use std::io::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn parse(s: &str) -> Level {
        match s {
            "debug" => Level::Debug,
            "warn" | "warning" => Level::Warn,
            "error" => Level::Error,
            _ => Level::Info,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

struct Sink {
    file: Option<std::fs::File>,
    level: Level,
    prefix: String,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Opens the log file named by the config, if any. Failing to open it is not fatal.
pub fn init(args: &CmdArgs) {
    let get = |k: &str| {
        args.conf
            .extra
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let path = get("logFile");
    let file = (!path.is_empty())
        .then(|| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        .and_then(|r| {
            r.map_err(|e| eprintln!("podwire: cannot open log file {path}: {e}"))
                .ok()
        });
    let prefix = format!(
        "{} {} {}/{}",
        args.conf.kind,
        args.command.as_str(),
        args.container_id,
        args.ifname
    );
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Sink {
        file,
        level: Level::parse(&get("logLevel")),
        prefix,
    });
}

pub fn log(level: Level, msg: &str) {
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = guard.as_ref().map(|s| s.prefix.clone()).unwrap_or_default();
    if level >= Level::Warn {
        eprintln!("{prefix}: {}: {msg}", level.as_str());
    }
    if let Some(sink) = guard.as_mut() {
        if level >= sink.level {
            if let Some(f) = sink.file.as_mut() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let _ = writeln!(
                    f,
                    "{}.{:03} {} {prefix}: {msg}",
                    now.as_secs(),
                    now.subsec_millis(),
                    level.as_str()
                );
            }
        }
    }
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}
pub fn info(msg: &str) {
    log(Level::Info, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn error(msg: &str) {
    log(Level::Error, msg)
}
