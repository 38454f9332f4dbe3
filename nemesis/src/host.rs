//! One machine of a cluster, as the harness and the nemesis see it.
//!
//! A [`Host`] is named and has one IPv4 address, the one its node listens on
//! and the one partitions are expressed in. Every operation is async (tokio),
//! bounded by the backend, and fails only with a [`HostError`]: a harness
//! failure that aborts the run. Outcomes of the system under test (a node
//! that crashed, a command that exited non-zero) are data, never errors:
//! [`Host::run`] returns the exit status, [`Host::process`] returns `None` for
//! a process that is gone.
//!
//! Backends: network namespaces on this machine (`faultline-harness`'s
//! `hosts::netns`), and machines over SSH (`hosts::ssh`). Callers are generic over `H: Host`, so a
//! new backend plugs in without changing them. Paths are paths *on the host*;
//! for a local namespace that is the local file system.

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What went wrong talking to a host. Every variant aborts the run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A program the backend needs is not installed.
    #[error("`{program}` not found in PATH; install the `{package}` package")]
    MissingTool { program: String, package: String },
    /// The backend needs privileges it does not have.
    #[error("{0}")]
    Privilege(String),
    /// The host could not be reached or refused the login.
    #[error("cannot connect to host {host} ({address}): {reason}")]
    Connect { host: String, address: String, reason: String },
    /// A command could not be started at all (not: it exited non-zero).
    #[error("could not start `{command}` on {host}: {source}")]
    Spawn { host: String, command: String, source: std::io::Error },
    /// A command did not finish within its bound; it was killed.
    #[error("`{command}` on {host} did not finish within {timeout_ms} ms")]
    Timeout { host: String, command: String, timeout_ms: u64 },
    /// A command the backend relies on failed.
    #[error("`{command}` on {host} failed ({status}): {stderr}")]
    CommandFailed { host: String, command: String, status: String, stderr: String },
    /// Reading or writing a file on either side failed.
    #[error("{action} {path} on {host}: {source}")]
    Io { host: String, action: &'static str, path: PathBuf, source: std::io::Error },
    /// Signalling a process failed for a reason other than its being gone.
    #[error("sending {signal:?} to pid {pid} on {host}: {reason}")]
    Signal { host: String, pid: u32, signal: Signal, reason: String },
}

/// The signals the harness and the nemesis send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Crash: no chance to flush or clean up.
    Kill,
    /// Pause: the process stays in memory, its sockets stay open.
    Stop,
    /// Resume a paused process.
    Cont,
    /// Polite shutdown.
    Term,
}

/// Whether a process runs, as far as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running or sleeping: it will make progress.
    Running,
    /// Stopped by SIGSTOP (or traced): it makes no progress until SIGCONT.
    Stopped,
}

/// A live process on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub state: ProcState,
    /// Its command line, so that a caller can check that a pid recorded
    /// earlier still names the same program (pids are reused).
    pub argv: Vec<String>,
}

/// How to start a daemon: a process that outlives the command that started
/// it and is found again through its pid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Program and arguments; the program is looked up in the host's PATH
    /// unless it is a path.
    pub argv: Vec<String>,
    /// Where the pid is written once the process runs.
    pub pid_file: PathBuf,
    /// Where stdout and stderr go (appended to).
    pub log_file: PathBuf,
    /// Working directory; the host's default when `None`.
    pub cwd: Option<PathBuf>,
}

/// The result of [`Host::run`]: a non-zero exit is an outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; `None` when a signal ended the command.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// One machine of a cluster. See the module docs.
pub trait Host: Send + Sync {
    /// A short name, unique in its cluster, used in messages (`n1`).
    fn name(&self) -> &str;

    /// The address the host's node listens on and peers reach it at.
    fn ip(&self) -> Ipv4Addr;

    /// The TCP port the harness controls this host through (SSH), if any.
    /// A partition that cuts the host from the control host spares it: the
    /// clients lose the node, the harness keeps its hands on the machine.
    fn management_port(&self) -> Option<u16> {
        None
    }

    /// How the host's `iptables` is invoked: its name in PATH, or a path.
    fn iptables(&self) -> String {
        "iptables".into()
    }

    /// Starts a daemon (see [`DaemonSpec`]), writes its pid file and returns
    /// its pid. The daemon is detached from the caller's process group, so a
    /// Ctrl-C of the caller does not reach it; it is stopped only by
    /// [`Host::signal`].
    fn start_daemon(&self, spec: &DaemonSpec) -> impl Future<Output = Result<u32, HostError>> + Send;

    /// Sends `signal` to `pid`. Returns `false` when there is no such process
    /// (already gone is not an error).
    fn signal(&self, pid: u32, signal: Signal) -> impl Future<Output = Result<bool, HostError>> + Send;

    /// The process `pid`, or `None` when it is gone (zombies count as gone).
    fn process(&self, pid: u32) -> impl Future<Output = Result<Option<ProcessInfo>, HostError>> + Send;

    /// Runs `argv` on the host to completion, killing it after `timeout`.
    fn run(&self, argv: &[String], timeout: Duration) -> impl Future<Output = Result<CommandOutput, HostError>> + Send;

    /// Copies the local file `from` to `to` on the host, creating `to`'s
    /// parent directories.
    fn copy_to(&self, from: &Path, to: &Path) -> impl Future<Output = Result<(), HostError>> + Send;

    /// Fetches at most the last `max_bytes` of the file `path` on the host
    /// (logs can be large); `None` when the file does not exist.
    fn read_file(&self, path: &Path, max_bytes: u64)
    -> impl Future<Output = Result<Option<Vec<u8>>, HostError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The missing-tool message names the package to install, which is what
    /// a user needs to fix it.
    #[test]
    fn missing_tool_names_the_package() {
        let e = HostError::MissingTool { program: "iptables".into(), package: "iptables".into() };
        assert_eq!(e.to_string(), "`iptables` not found in PATH; install the `iptables` package");
        let ok = CommandOutput { code: Some(0), stdout: vec![], stderr: vec![] };
        assert!(ok.success());
        assert!(!CommandOutput { code: None, ..ok }.success());
    }
}
