//! Plugin logging. Never stdout (that is the result channel): warnings and errors go to stderr,
//! which runtimes capture; with `"logFile"` in the config every line at or above `"logLevel"`
//! (`debug`, `info`, `warn`, `error`; default `info`) is appended there too.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Where a plugin logs: the config's `"logFile"` and `"logLevel"` (unset: stderr only, `info`),
/// and the prefix of every line (who the operation is for).
pub struct Target<'a> {
    pub file: &'a str,
    pub level: &'a str,
    pub prefix: String,
}

/// Opens the log file, if any. Failing to open it is not fatal.
pub fn init(t: Target) {
    let path = t.file;
    let file = (!path.is_empty())
        .then(|| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        })
        .and_then(|r| {
            r.map_err(|e| eprintln!("podwire: cannot open log file {path}: {e}"))
                .ok()
        });
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Sink {
        file,
        level: Level::parse(t.level),
        prefix: t.prefix,
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
                let _ = writeln!(
                    f,
                    "{} {} {prefix}: {msg}",
                    rfc3339_ms(SystemTime::now()),
                    level.as_str()
                );
            }
        }
    }
}

/// Appends one line as is to the log file, whatever the level (the operation's trace).
pub fn write_line(line: &str) {
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = guard.as_mut().and_then(|s| s.file.as_mut()) {
        // One write(2) of the whole line: concurrent plugins appending to the same file
        // (O_APPEND) never interleave inside it.
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let _ = f.write_all(&buf);
    }
}

/// Whether a log file is open (the trace is only built when it will be written).
pub fn has_file() -> bool {
    SINK.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.file.is_some())
}

/// `2026-12-01T21:17:16.123Z`: RFC 3339 in UTC with milliseconds.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_matches_known_instants() {
        let at = |s: u64, ms: u64| rfc3339_ms(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_796_160_436, 123), "2026-12-01T21:27:16.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
