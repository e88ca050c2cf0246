//! The machine a run was measured on, for the report (figures only compare within one run).

use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub memory: String,
    pub kernel: String,
    pub os: String,
    pub reference: String,
    pub podwire: String,
    pub rustc: String,
    pub containerd: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn or_unknown(s: String) -> String {
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

impl Machine {
    /// `podwire` names the build measured (e.g. a git commit), given by the caller.
    pub fn describe(podwire: &str) -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
            .unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        let reference = output(
            "dpkg-query",
            &["-W", "-f=${Version}", "containernetworking-plugins"],
        );
        let reference = if reference.is_empty() {
            reference
        } else {
            format!("containernetworking-plugins {reference} (Debian)")
        };
        Machine {
            cpu: or_unknown(cpu),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory: or_unknown(memory),
            kernel: or_unknown(read("/proc/sys/kernel/osrelease").trim().to_string()),
            os: or_unknown(os),
            reference: or_unknown(reference),
            podwire: or_unknown(podwire.to_string()),
            rustc: or_unknown(output("rustc", &["--version"])),
            containerd: or_unknown(output("containerd", &["--version"])),
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} × {}, {} RAM, Linux {}, {}",
            self.cpus, self.cpu, self.memory, self.kernel, self.os
        )
    }
}
