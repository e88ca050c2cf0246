//! Running the tools the suites drive or read state back with. A missing tool is a failure with
//! the package to install, never a skip: CI installs them (scripts/setup-host.sh).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where `program` is on PATH, or a panic naming the Debian package that provides it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{program} is not installed: `apt-get install {package}` \
                 (scripts/setup-host.sh installs everything the runtime suites need)"
            )
        })
}

/// Runs `program args`, returning stdout; a non-zero exit is an `Err` with both streams.
pub fn try_run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// Runs `program args` and returns stdout; panics with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    try_run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `program args` exits 0 (output discarded).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends `signal` to one process we started; false when it is already gone.
pub fn signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) with a PID we own and a valid signal number has no memory effects.
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// Whether a process with this PID still exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// PIDs whose command line contains every one of `needles` (to find the shims and conmons a
/// private runtime started on its own socket or root, never anyone else's).
pub fn pids_with_cmdline(needles: &[&str]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            needles.iter().all(|n| cmdline.contains(n))
        })
        .collect()
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn terminate(pid: u32, grace: std::time::Duration) {
    if !signal(pid, libc::SIGTERM) {
        return;
    }
    let deadline = std::time::Instant::now() + grace;
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if alive(pid) {
        signal(pid, libc::SIGKILL);
    }
}

/// Unmounts everything mounted at or below `dir` (deepest first), lazily: a runtime killed
/// mid-test leaves rootfs and netns mounts behind, and `remove_dir_all` cannot pass them.
pub fn unmount_below(dir: &std::path::Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let c = std::ffi::CString::new(p).expect("mount point has no NUL");
        // SAFETY: umount2 on a NUL-terminated path; failure is reported by the return value only.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}
