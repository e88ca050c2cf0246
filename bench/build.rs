//! Builds the static process launcher (spawner/spawn.c) the bench measures plugins through.

fn main() {
    println!("cargo:rerun-if-changed=spawner/spawn.c");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("spawn");
    let status = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg("spawner/spawn.c")
        .status()
        .expect("run cc (Debian's build-essential) to build the bench's launcher");
    assert!(
        status.success(),
        "cc failed to build bench/spawner/spawn.c (needs libc6-dev's static libc)"
    );
}
