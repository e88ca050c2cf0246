//! Running one plugin: environment, stdin, errors, ETXTBSY retry and timeout.

mod common;

use common::{script, TempDir};
use runtime::exec::{find_in_path, Args, Exec};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn args(cmd: &str) -> Args {
    Args {
        command: cmd.into(),
        container_id: "c1".into(),
        netns: "/run/netns/x".into(),
        plugin_args: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
        ifname: "eth0".into(),
        path: "/opt/a:/opt/b".into(),
    }
}

fn quiet() -> Exec {
    Exec {
        forward_stderr: false,
        ..Exec::default()
    }
}

#[test]
fn passes_env_and_stdin_and_captures_output() {
    let d = TempDir::new("exec");
    let p = d.join("echoer");
    script(
        &p,
        "echo \"$CNI_COMMAND|$CNI_CONTAINERID|$CNI_NETNS|$CNI_ARGS|$CNI_IFNAME|$CNI_PATH\"; cat; echo oops >&2",
    );
    let out = quiet().run(&p, b"{\"x\":1}", &args("ADD")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "ADD|c1|/run/netns/x|A=1;B=x=y|eth0|/opt/a:/opt/b\n{\"x\":1}"
    );
    assert_eq!(out.stderr, b"oops\n");
}

#[test]
fn find_in_path_takes_the_first_regular_file() {
    let a = TempDir::new("find");
    let b = TempDir::new("find");
    std::fs::create_dir(a.join("dirplugin")).unwrap();
    script(&b.join("dirplugin"), "true");
    script(&b.join("p"), "true");
    let paths = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    assert_eq!(find_in_path("p", &paths).unwrap(), b.join("p"));
    assert_eq!(
        find_in_path("dirplugin", &paths).unwrap(),
        b.join("dirplugin")
    );
    let e = find_in_path("absent", &paths).unwrap_err();
    assert!(
        e.to_string().contains("failed to find plugin \"absent\""),
        "{e}"
    );
    assert!(find_in_path("../p", &paths).is_err());
    assert!(find_in_path("", &paths).is_err());
    assert!(find_in_path("p", &[]).is_err());
}

#[test]
fn error_json_keeps_the_plugins_code() {
    let d = TempDir::new("exec");
    let p = d.join("failer");
    script(
        &p,
        r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"try later"}'; exit 1"#,
    );
    let e = quiet().run(&p, b"{}", &args("ADD")).unwrap_err();
    assert!(e.reported);
    assert_eq!(e.code().number(), 11);
    assert_eq!(e.cni.msg, "busy");
    assert_eq!(e.cni.details, "try later");
}

#[test]
fn failure_without_json_reports_stderr_or_status() {
    let d = TempDir::new("exec");
    let p = d.join("crasher");
    script(&p, "echo 'cannot frob' >&2; exit 3");
    let e = quiet().run(&p, b"{}", &args("DEL")).unwrap_err();
    assert!(!e.reported);
    assert!(
        e.cni.msg.contains("cannot frob") && e.cni.msg.contains("exit status 3"),
        "{e}"
    );
    script(&p, "exit 2");
    let e = quiet().run(&p, b"{}", &args("DEL")).unwrap_err();
    assert!(e.cni.msg.contains("no error message"), "{e}");
    script(&p, "echo not-json; exit 1");
    let e = quiet().run(&p, b"{}", &args("DEL")).unwrap_err();
    assert!(e.cni.msg.contains("not-json"), "{e}");
}

#[test]
fn a_plugin_that_ignores_stdin_is_fine() {
    let d = TempDir::new("exec");
    let p = d.join("deaf");
    script(&p, "echo '{}'");
    let big = vec![b' '; 1 << 20];
    assert_eq!(quiet().run(&p, &big, &args("ADD")).unwrap().stdout, b"{}\n");
}

/// A binary still open for writing cannot be executed (ETXTBSY): the run waits and retries.
#[test]
fn busy_binary_is_retried_until_written() {
    let d = TempDir::new("busy");
    let p = d.join("busy");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(b"#!/bin/sh\necho '{\"ok\":true}'\n").unwrap();
    f.flush().unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Still open for writing: without retries the exec fails with "Text file busy".
    let no_retry = Exec {
        busy_retries: 0,
        ..quiet()
    };
    let e = no_retry.run(&p, b"{}", &args("ADD")).unwrap_err();
    assert!(e.cni.msg.to_lowercase().contains("text file busy"), "{e}");

    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(f);
    });
    let retrying = Exec {
        busy_retries: 20,
        busy_wait: Duration::from_millis(50),
        ..quiet()
    };
    let start = Instant::now();
    let out = retrying.run(&p, b"{}", &args("ADD")).unwrap();
    assert_eq!(out.stdout, b"{\"ok\":true}\n");
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "must have waited for the writer"
    );
    closer.join().unwrap();
}

fn proc_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

/// A plugin that hangs is killed with everything it started, and reaped (no zombie).
#[test]
fn hanging_plugin_times_out_and_is_reaped() {
    let d = TempDir::new("hang");
    let p = d.join("hang");
    let pids = d.join("pids");
    script(
        &p,
        &format!(
            "echo $$ > {0}; sleep 60 & echo $! >> {0}; echo started >&2; wait",
            pids.display()
        ),
    );
    let exec = Exec {
        timeout: Some(Duration::from_millis(500)),
        ..quiet()
    };
    let start = Instant::now();
    let e = exec.run(&p, b"{}", &args("ADD")).unwrap_err();
    let took = start.elapsed();
    assert!(e.cni.msg.contains("timed out"), "{e}");
    assert!(e.cni.msg.contains("started"), "stderr is kept: {e}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    let mut lines = text.lines();
    let plugin_pid = lines.next().unwrap();
    let sleeper_pid = lines.next().unwrap();
    // Our child was reaped: not even a zombie entry is left.
    assert_eq!(
        proc_state(plugin_pid),
        None,
        "plugin {plugin_pid} left behind"
    );
    // Its own child was killed (init may not have reaped it yet).
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(proc_state(sleeper_pid), None | Some('Z')),
        "sleep {sleeper_pid} still running"
    );
}

#[test]
fn version_info_reads_supported_versions() {
    let d = TempDir::new("ver");
    let p = d.join("v");
    script(
        &p,
        r#"[ "$CNI_COMMAND" = VERSION ] && [ "$CNI_NETNS" = dummy ] && echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'"#,
    );
    assert_eq!(quiet().version_info(&p).unwrap(), vec!["0.4.0", "1.0.0"]);
}

/// A plugin that leaves a child holding its stdout open: the run returns soon after the plugin
/// itself exits, with what it printed, instead of waiting for the child.
#[test]
fn a_daemonised_child_holding_stdout_does_not_hold_the_run() {
    let d = TempDir::new("daemon");
    let p = d.join("forker");
    let pids = d.join("pids");
    script(
        &p,
        &format!(
            "sleep 30 & echo $! > {}; echo '{{\"ok\":true}}'",
            pids.display()
        ),
    );
    let start = Instant::now();
    let out = quiet().run(&p, b"{}", &args("ADD")).unwrap();
    let took = start.elapsed();
    let sleeper = std::fs::read_to_string(&pids).unwrap();
    // SAFETY: kill(2) on the sleep this test started.
    unsafe {
        libc::kill(sleeper.trim().parse().unwrap(), libc::SIGKILL);
    }
    assert_eq!(out.stdout, b"{\"ok\":true}\n");
    assert!(
        took < Duration::from_secs(10),
        "waited {took:?} for the child"
    );
}

/// Output larger than a pipe's buffer on both stdout and stderr, with a large stdin the plugin
/// reads: nothing is lost and nothing deadlocks.
#[test]
fn large_stdin_stdout_and_stderr_all_flow() {
    let d = TempDir::new("big");
    let p = d.join("copier");
    script(&p, "tee /dev/stderr");
    let big: Vec<u8> = (0..(1 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let out = quiet().run(&p, &big, &args("ADD")).unwrap();
    assert_eq!(out.stdout, big);
    assert_eq!(out.stderr, big);
}
