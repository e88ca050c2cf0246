//! The operations the plugins traced into their `logFile` (one JSON line each, see
//! `cni::trace`), found through the network configs and printed step by step.

use runtime::NetworkConfigList;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One traced operation, as the plugin wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub time: String,
    pub plugin: String,
    pub network: String,
    pub command: String,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    #[serde(default)]
    pub netns: String,
    pub duration_us: u64,
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub step: String,
    pub start_us: u64,
    pub duration_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

/// The `logFile` of every plugin of the lists (each once, in order).
pub fn log_files(lists: &[NetworkConfigList]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for list in lists {
        for p in &list.plugins {
            if let Some(f) = p.raw.get("logFile").and_then(|v| v.as_str()) {
                let f = PathBuf::from(f);
                if !f.as_os_str().is_empty() && !out.contains(&f) {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// Whether `id` names the container: exactly, or as a prefix (as `docker` takes short IDs).
fn names(container_id: &str, id: &str) -> bool {
    !id.is_empty() && container_id.starts_with(id)
}

/// The operations on `container` (ID or ID prefix), optionally of one network, oldest first.
/// Lines that are not trace JSON (the human log lines) are skipped; a missing file is empty.
pub fn read(
    files: &[PathBuf],
    container: &str,
    network: Option<&str>,
) -> crate::Result<Vec<Operation>> {
    let mut ops = Vec::new();
    for f in files {
        ops.extend(read_file(f)?.into_iter().filter(|op| {
            names(&op.container_id, container) && network.is_none_or(|n| op.network == n)
        }));
    }
    // RFC 3339 in UTC with fixed width sorts as text; the sort is stable, so operations of
    // the same millisecond keep the file's order.
    ops.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(ops)
}

fn read_file(path: &Path) -> crate::Result<Vec<Operation>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read log file {}: {e}", path.display())),
    };
    Ok(text
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// Width of the time bar of each step.
const BAR: usize = 24;

/// Where in the operation the step ran: `·····███········`.
fn bar(start: u64, dur: u64, total: u64) -> String {
    let total = total.max(1) as u128;
    let from = (start as u128 * BAR as u128 / total).min(BAR as u128 - 1) as usize;
    let len = ((dur as u128 * BAR as u128).div_ceil(total) as usize).clamp(1, BAR - from);
    let mut s = String::with_capacity(BAR * 3);
    for i in 0..BAR {
        s.push(if i >= from && i < from + len {
            '█'
        } else {
            '·'
        });
    }
    s
}

/// The operations step by step: offset, duration, where in the operation, and what was done.
pub fn render(ops: &[Operation]) -> String {
    let mut s = String::new();
    for op in ops {
        let outcome = match (&op.code, &op.msg) {
            (Some(c), Some(m)) => format!("error {c}: {m}"),
            _ => op.result.clone(),
        };
        let _ = writeln!(
            s,
            "{} {} {} network {} container {} {}{} — {outcome} in {} ms",
            op.time,
            op.command,
            op.plugin,
            op.network,
            crate::short_id(&op.container_id),
            op.ifname,
            if op.netns.is_empty() {
                String::new()
            } else {
                format!(" in {}", op.netns)
            },
            ms(op.duration_us)
        );
        let width = op
            .steps
            .iter()
            .map(|st| st.step.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "  {:>9} {:>9}  {:width$}  {:BAR$}  detail",
            "start ms", "took ms", "step", "",
        );
        for st in &op.steps {
            let line = format!(
                "  {:>9} {:>9}  {:width$}  {}  {}{}",
                ms(st.start_us),
                ms(st.duration_us),
                st.step,
                bar(st.start_us, st.duration_us, op.duration_us),
                if st.failed { "FAILED " } else { "" },
                st.detail.as_deref().unwrap_or("")
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_sit_where_the_step_ran() {
        assert_eq!(
            bar(0, 1000, 1000).chars().filter(|c| *c == '█').count(),
            BAR
        );
        let b: Vec<char> = bar(500, 1, 1000).chars().collect();
        assert_eq!(b.iter().filter(|c| **c == '█').count(), 1);
        assert_eq!(b[BAR / 2], '█');
        assert_eq!(bar(999, 0, 1000).chars().last(), Some('█'));
    }

    #[test]
    fn ids_match_exactly_or_by_prefix() {
        assert!(names("abc123", "abc"));
        assert!(names("abc123", "abc123"));
        assert!(!names("abc123", "abd"));
        assert!(!names("abc123", ""));
    }
}
