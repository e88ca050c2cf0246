//! podwire's release binaries (`cargo build --release` puts them in `<target>/release/`) and the
//! private CNI bin dir a runtime under test is pointed at.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugins a podwire node execs, all podwire's own: the network's `podwire` (with
/// `podwire-ipam`) and `podwire-portmap`, and the `loopback` containerd's CRI execs for every
/// sandbox. Nothing from containernetworking-plugins.
pub const PLUGINS: [&str; 4] = ["podwire", "podwire-ipam", "podwire-portmap", "loopback"];

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace dir")
}

/// The cargo target dir: `CARGO_TARGET_DIR` when set, else the one this executable was built in
/// (it holds cargo's `CACHEDIR.TAG`), else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_dir().join(dir)
        };
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|a| a.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| workspace_dir().join("target"))
}

/// `<target>/release`, holding podwire's plugins. Builds them (with the cargo that runs the tests)
/// when they are missing; fails with the command to run if that does not work.
pub fn release_dir() -> PathBuf {
    let target = target_dir();
    let release = target.join("release");
    let missing = || PLUGINS.iter().any(|p| !release.join(p).is_file());
    if missing() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!(
            "podwire's release binaries are not in {}: building them",
            release.display()
        );
        let status = Command::new(&cargo)
            .current_dir(workspace_dir())
            .args([
                "build",
                "--release",
                "-p",
                "podwire-bridge",
                "-p",
                "podwire-ipam",
                "-p",
                "podwire-portmap",
                "-p",
                "podwire-loopback",
            ])
            .arg("--target-dir")
            .arg(&target)
            .status();
        if !matches!(status, Ok(s) if s.success()) || missing() {
            panic!(
                "podwire's plugins {PLUGINS:?} are missing from {} and building them failed \
                 ({status:?}): run `cargo build --release` in {} first",
                release.display(),
                workspace_dir().display()
            );
        }
    }
    release
}

/// Fills `dir` with copies of podwire's plugins, as `podwirectl node install-cni` would install
/// them into `/opt/cni/bin` (copies, so a rebuild mid-run cannot swap them under a runtime).
pub fn install_cni_bin_dir(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create CNI bin dir");
    let release = release_dir();
    for src in PLUGINS.iter().map(|p| release.join(p)) {
        let dst = dir.join(src.file_name().expect("plugin file name"));
        std::fs::copy(&src, &dst)
            .unwrap_or_else(|e| panic!("copy {} → {}: {e}", src.display(), dst.display()));
    }
}

/// podwire's binaries in the node image (deploy/Dockerfile's `/opt/podwire/bin`), as
/// (package, binary): podwirectl and every plugin its `node install-cni` copies (a plugin added
/// there and not here makes the DaemonSet test's init container fail, naming it).
pub const IMAGE_BINARIES: [(&str, &str); 5] = [
    ("podwire-bridge", "podwire"),
    ("podwire-ipam", "podwire-ipam"),
    ("podwire-portmap", "podwire-portmap"),
    ("podwire-loopback", "loopback"),
    ("podwirectl", "podwirectl"),
];

/// Why the ELF file at `path` is not a static executable (it names an interpreter, or a
/// shared library it needs), or `None` when it is static.
pub fn dynamic_linking(path: &Path) -> Option<String> {
    crate::cmd::require("readelf", "binutils");
    let p = path.to_str().expect("UTF-8 path");
    let headers = crate::cmd::run("readelf", &["-lW", p]);
    if let Some(l) = headers.lines().find(|l| l.contains("program interpreter")) {
        return Some(l.trim().to_string());
    }
    let dynamic = crate::cmd::run("readelf", &["-dW", p]);
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .map(str::trim)
        .collect();
    (!needed.is_empty()).then(|| needed.join("; "))
}

/// The node image's binaries, each built from the current sources and static (a distroless image
/// has no libc) by scripts/setup-host.sh's own `link_plugins_static` (into `<target>/release`:
/// musl where the target is installed, as deploy/Dockerfile builds them, else glibc static; the
/// same builds the suites, the install and the benchmarks use, so this never swaps them for
/// others) and `link_podwirectl_static` (`<target>/quick/podwirectl`: unoptimised, quick to
/// build, glibc static). Then checked.
pub fn static_image_binaries() -> Vec<PathBuf> {
    let target = target_dir();
    let (release, quick) = (target.join("release"), target.join("quick"));
    let script = "source scripts/setup-host.sh && link_plugins_static && link_podwirectl_static";
    // The cargo that runs the tests, first on PATH for the script's own `cargo` calls.
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = cargo.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        path = std::env::join_paths(dirs).expect("PATH entries");
    }
    let status = Command::new("bash")
        .current_dir(workspace_dir())
        .args(["-c", script])
        .env("CARGO_TARGET_DIR", &target)
        .env("PATH", path)
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "linking the image's binaries statically failed ({status:?}): run `bash -c '{script}'` \
         in {}",
        workspace_dir().display()
    );
    IMAGE_BINARIES
        .iter()
        .map(|(_, bin)| {
            let dir = if *bin == "podwirectl" {
                &quick
            } else {
                &release
            };
            let path = dir.join(bin);
            if let Some(why) = dynamic_linking(&path) {
                panic!("{} is not static: {why}", path.display());
            }
            path
        })
        .collect()
}
