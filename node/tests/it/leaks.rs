//! No node outlives the test process that started it, however that process
//! ends: `Drop` covers a panic, `die_with_parent` a SIGKILL or a timeout.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, raise};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::util::Node;

/// Set in the probe process: the directory it starts its node in.
const PROBE_DIR: &str = "FAULTLINE_LEAK_PROBE_DIR";

/// Whether the orphaned node `pid` has exited. This process is a child
/// subreaper, so the orphan is its child now and is reaped here, leaving no
/// zombie behind (a container's init may not reap).
fn exited(pid: i32) -> bool {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        // Not our child (yet): gone only if no such process exists.
        Err(_) => kill(Pid::from_raw(pid), None).is_err(),
    }
}

/// Runs this same test in a child process that starts a node and SIGKILLs
/// itself, so no destructor runs; the node must die with it.
#[test]
fn a_node_dies_with_a_test_process_that_is_killed_outright() {
    if let Ok(dir) = std::env::var(PROBE_DIR) {
        let node = Node::start(std::path::Path::new(&dir), &[]);
        std::fs::write(std::path::Path::new(&dir).join("pid"), node.pid().unwrap().to_string()).unwrap();
        raise(Signal::SIGKILL).unwrap();
        unreachable!("SIGKILL ends the probe");
    }
    let dir = tempfile::tempdir().unwrap();
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "leaks::a_node_dies_with_a_test_process_that_is_killed_outright", "--test-threads=1"])
        .env(PROBE_DIR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), None, "the probe was killed by a signal: {status}");
    let pid: i32 = std::fs::read_to_string(dir.path().join("pid")).expect("the probe started a node").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exited(pid) {
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            panic!("node {pid} outlived the test process that started it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
