//! [`SshHost`]: a [`Host`] that is a machine reached over SSH.
//!
//! Built on the `openssh` crate, which drives the system's `ssh` client: one
//! ControlMaster connection per host, opened once, and every command a new
//! channel on it. A fault therefore costs one channel round trip, not a TCP
//! and key exchange, and the user's `ssh` configuration, agent and known
//! hosts handling are the ones they already trust. (`russh` would avoid the
//! `ssh` binary but reimplement all of that.)
//!
//! Every remote command is a small `sh` script with its arguments passed as
//! positional parameters (so no value is ever spliced into shell text), run
//! under the remote `timeout` with a local bound as a backstop, and at most
//! [`SESSIONS_MAX`] at once per host, below sshd's `MaxSessions` (10). With
//! `sudo = true` every command runs under `sudo -n`. Commands run in kept
//! shells ([`super::ssh_shell`]): one line there and back on an open channel,
//! not a new session with the login shell's startup files each time; only
//! copying a file in and reading a large tail get channels of their own.

use std::net::Ipv4Addr;
use std::num::NonZeroUsize;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use faultline_nemesis::{CommandOutput, DaemonSpec, Host, HostError, ProcessInfo, Signal};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::hosts_file::SshTarget;

/// Channels open at once per host; sshd's `MaxSessions` defaults to 10.
const SESSIONS_MAX: usize = 8;
/// How long connecting (TCP, key exchange, authentication) may take.
const CONNECT_TIMEOUT_S: usize = 10;
/// A master connection nobody uses for this long exits by itself, so one
/// left by a SIGKILLed harness does not linger.
const MASTER_IDLE_S: usize = 60;
/// The bound of the harness's own small commands (signal, process, files).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Copying a binary may take longer than a command.
const COPY_TIMEOUT: Duration = Duration::from_secs(120);
/// Added to a remote `timeout` for the local backstop.
const BACKSTOP_SLACK: Duration = Duration::from_secs(5);
/// Exit code of a script for "no such process" or "no such file".
const ABSENT: i32 = 3;
/// Largest file tail read through a kept shell; larger ones get a channel.
const KEPT_SHELL_READ_MAX: u64 = 1 << 20;
/// Exit code of coreutils' `timeout` when the command timed out.
const TIMED_OUT: i32 = 124;

/// One machine over one SSH master connection.
pub struct SshHost {
    target: SshTarget,
    session: Arc<Session>,
    permits: Semaphore,
    /// Kept shells: the path of every command without stdin.
    shells: super::ssh_shell::Shells,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost").field("target", &self.target).finish_non_exhaustive()
    }
}

impl SshHost {
    /// Opens the master connection. `control_dir` holds its socket (short:
    /// a Unix socket path is limited to 108 bytes); `known_hosts` is the
    /// file host keys are checked against and added to on first contact.
    pub async fn connect(
        target: &SshTarget,
        control_dir: &Path,
        known_hosts: &Path,
    ) -> Result<Arc<SshHost>, HostError> {
        let mut b = SessionBuilder::default();
        b.user(target.user.clone())
            .port(target.port)
            .known_hosts_check(KnownHosts::Add)
            .user_known_hosts_file(known_hosts)
            .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_S as u64))
            .server_alive_interval(Duration::from_secs(5))
            .control_directory(control_dir)
            .control_persist(ControlPersist::IdleFor(NonZeroUsize::new(MASTER_IDLE_S).expect("non-zero")));
        if let Some(key) = &target.key {
            b.keyfile(key);
        }
        let session = b.connect_mux(target.ssh_address.to_string()).await.map_err(|e| HostError::Connect {
            host: target.name.clone(),
            address: format!("{}@{}:{}", target.user, target.ssh_address, target.port),
            reason: connect_reason(&e),
        })?;
        Ok(Arc::new(SshHost {
            target: target.clone(),
            session: Arc::new(session),
            permits: Semaphore::new(SESSIONS_MAX),
            shells: Default::default(),
        }))
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The harness's address as this host sees it: the first field of
    /// `SSH_CONNECTION` (asked without `sudo`, which clears it).
    pub async fn client_ip(&self) -> Result<Ipv4Addr, HostError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let shown = "echo $SSH_CONNECTION";
        let mut cmd = self.session.command("sh");
        cmd.args(["-c", shown]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .map_err(|_| self.timeout(shown, COMMAND_TIMEOUT))?
            .map_err(|e| self.spawn_error(shown, e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace().next().and_then(|ip| ip.parse().ok()).ok_or_else(|| HostError::CommandFailed {
            host: self.target.name.clone(),
            command: shown.into(),
            status: format!("{:?}", out.status.code()),
            stderr: format!("expected SSH_CONNECTION with an IPv4 client address, got {:?}", text.trim()),
        })
    }

    /// The remote command for `script` with `args` as `$1...`, killed
    /// remotely after `timeout` (exit [`TIMED_OUT`]), and how to name it.
    fn remote_argv(&self, script: &str, args: &[String], timeout: Duration) -> (Vec<String>, String) {
        let secs = timeout.as_secs().max(1).to_string();
        let mut argv: Vec<String> = Vec::new();
        argv.extend(["timeout", "-k", "2", &secs, "sh", "-c", script, "faultline"].map(String::from));
        argv.extend_from_slice(args);
        (argv, describe(script, args))
    }

    /// `sudo -n` when the user is not root.
    fn prefix(&self) -> Vec<String> {
        if self.target.sudo { vec!["sudo".into(), "-n".into()] } else { Vec::new() }
    }

    /// Runs `script` with `sh -c` and `args` as `$1...` in a kept shell,
    /// bounded by `timeout`.
    async fn sh(&self, script: &str, args: &[String], timeout: Duration) -> Result<CommandOutput, HostError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let (argv, shown) = self.remote_argv(script, args, timeout);
        let out = self
            .shells
            .run(&self.session, &self.prefix(), &argv, timeout + BACKSTOP_SLACK)
            .await
            .map_err(|why| self.spawn_error(&shown, why))?;
        if out.code == Some(TIMED_OUT) {
            return Err(self.timeout(&shown, timeout));
        }
        Ok(out)
    }

    /// [`SshHost::sh`] over a channel of its own: for input streamed to the
    /// script, and for large outputs.
    async fn sh_channel(
        &self,
        script: &str,
        args: &[String],
        timeout: Duration,
        stdin: Option<&Path>,
    ) -> Result<CommandOutput, HostError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let (remote, shown) = self.remote_argv(script, args, timeout);
        let argv: Vec<String> = self.prefix().into_iter().chain(remote).collect();
        let run = async {
            let mut cmd = self.session.command(&argv[0]);
            cmd.args(&argv[1..]).stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
            let mut child = cmd.spawn().await.map_err(|e| self.spawn_error(&shown, e))?;
            if let Some(path) = stdin {
                self.stream(path, child.stdin().take().expect("piped")).await?;
            }
            child.wait_with_output().await.map_err(|e| self.spawn_error(&shown, e))
        };
        let out =
            tokio::time::timeout(timeout + BACKSTOP_SLACK, run).await.map_err(|_| self.timeout(&shown, timeout))??;
        if out.status.code() == Some(TIMED_OUT) {
            return Err(self.timeout(&shown, timeout));
        }
        Ok(CommandOutput { code: out.status.code(), stdout: out.stdout, stderr: out.stderr })
    }

    async fn stream(&self, path: &Path, mut to: openssh::ChildStdin) -> Result<(), HostError> {
        let mut file = tokio::fs::File::open(path).await.map_err(|e| self.io("reading", path, e))?;
        tokio::io::copy(&mut file, &mut to).await.map_err(|e| self.io("sending", path, e))?;
        to.shutdown().await.map_err(|e| self.io("sending", path, e))
    }

    /// [`SshHost::sh`], and a non-zero exit is an error naming the host, the
    /// command and its stderr.
    async fn sh_ok(&self, script: &str, args: &[String], timeout: Duration) -> Result<CommandOutput, HostError> {
        let out = self.sh(script, args, timeout).await?;
        if out.success() { Ok(out) } else { Err(self.failed(script, args, &out)) }
    }

    fn failed(&self, script: &str, args: &[String], out: &CommandOutput) -> HostError {
        HostError::CommandFailed {
            host: self.target.name.clone(),
            command: describe(script, args),
            status: out.code.map_or("killed by a signal".into(), |c| format!("exit {c}")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
    }

    fn spawn_error(&self, command: &str, e: impl std::fmt::Display) -> HostError {
        HostError::Spawn {
            host: self.target.name.clone(),
            command: command.into(),
            source: std::io::Error::other(e.to_string()),
        }
    }

    fn timeout(&self, command: &str, timeout: Duration) -> HostError {
        HostError::Timeout {
            host: self.target.name.clone(),
            command: command.into(),
            timeout_ms: timeout.as_millis() as u64,
        }
    }

    fn io(&self, action: &'static str, path: &Path, source: std::io::Error) -> HostError {
        HostError::Io { host: self.target.name.clone(), action, path: path.to_path_buf(), source }
    }
}

/// A command for messages: the script's first line and its arguments.
fn describe(script: &str, args: &[String]) -> String {
    let first = script.trim().lines().next().unwrap_or_default();
    format!("sh -c '{first} …' {}", args.join(" "))
}

/// What `ssh` said, without the crate's wrapping.
fn connect_reason(e: &openssh::Error) -> String {
    let text = e.to_string();
    let source = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
    if source.is_empty() { text } else { format!("{text}: {source}") }
}

/// Starts the daemon detached (`setsid`, no terminal, output to its log),
/// writes its pid file atomically and prints the pid.
const START_DAEMON: &str = r#"pid_file=$1; log=$2; cwd=$3; shift 3
mkdir -p "$(dirname "$pid_file")" "$(dirname "$log")" || exit 1
if [ -n "$cwd" ]; then cd "$cwd" || exit 1; fi
setsid "$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pid_file.tmp" && mv "$pid_file.tmp" "$pid_file" && echo "$pid""#;

/// `kill -s SIG PID`; exit [`ABSENT`] when there is no such process or it
/// is a zombie (gone, as [`Host::process`] sees it, but not yet reaped).
const SIGNAL: &str = r#"stat=$(cat "/proc/$2/stat" 2>/dev/null) || exit 3
case "${stat##*) }" in Z*|X*|x*) exit 3;; esac
kill -s "$1" "$2""#;

/// `/proc/PID/stat`, a NUL, then `/proc/PID/cmdline`; exit [`ABSENT`] when gone.
const PROCESS: &str = r#"stat=$(cat "/proc/$1/stat" 2>/dev/null) || exit 3
printf '%s\n' "$stat"
cat "/proc/$1/cmdline" 2>/dev/null || exit 3"#;

/// Runs the command given as arguments.
const RUN: &str = r#"exec "$@""#;

/// Writes stdin to `$1` atomically with mode `$2`.
const WRITE_FILE: &str = r#"mkdir -p "$(dirname "$1")" && cat >"$1.tmp" && chmod "$2" "$1.tmp" && mv "$1.tmp" "$1""#;

/// The last `$2` bytes of `$1`; exit [`ABSENT`] when it does not exist.
const READ_FILE: &str = r#"[ -e "$1" ] || exit 3
tail -c "$2" "$1""#;

fn signal_name(s: Signal) -> &'static str {
    match s {
        Signal::Kill => "KILL",
        Signal::Stop => "STOP",
        Signal::Cont => "CONT",
        Signal::Term => "TERM",
    }
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

impl Host for SshHost {
    fn name(&self) -> &str {
        &self.target.name
    }

    fn ip(&self) -> Ipv4Addr {
        self.target.address
    }

    fn management_port(&self) -> Option<u16> {
        Some(self.target.port)
    }

    fn iptables(&self) -> String {
        self.target.iptables.as_deref().map_or_else(|| "iptables".into(), path_arg)
    }

    async fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, HostError> {
        assert!(!spec.argv.is_empty(), "a daemon needs a program");
        let cwd = spec.cwd.as_deref().map(path_arg).unwrap_or_default();
        let mut args = vec![path_arg(&spec.pid_file), path_arg(&spec.log_file), cwd];
        args.extend_from_slice(&spec.argv);
        let out = self.sh_ok(START_DAEMON, &args, COMMAND_TIMEOUT).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().map_err(|_| self.failed(START_DAEMON, &args, &out))
    }

    async fn signal(&self, pid: u32, signal: Signal) -> Result<bool, HostError> {
        let args = [signal_name(signal).to_string(), pid.to_string()];
        let out = self.sh(SIGNAL, &args, COMMAND_TIMEOUT).await?;
        match out.code {
            Some(0) => Ok(true),
            Some(ABSENT) => Ok(false),
            _ => Err(HostError::Signal {
                host: self.target.name.clone(),
                pid,
                signal,
                reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    async fn process(&self, pid: u32) -> Result<Option<ProcessInfo>, HostError> {
        let args = [pid.to_string()];
        let out = self.sh(PROCESS, &args, COMMAND_TIMEOUT).await?;
        match out.code {
            Some(0) => {
                let split = out.stdout.iter().position(|b| *b == b'\n').unwrap_or(out.stdout.len());
                let stat = String::from_utf8_lossy(&out.stdout[..split]);
                let cmdline = out.stdout.get(split + 1..).unwrap_or_default();
                Ok(super::netns::parse_proc(pid, &stat, cmdline))
            }
            Some(ABSENT) => Ok(None),
            _ => Err(self.failed(PROCESS, &args, &out)),
        }
    }

    async fn run(&self, argv: &[String], timeout: Duration) -> Result<CommandOutput, HostError> {
        assert!(!argv.is_empty(), "a command needs a program");
        self.sh(RUN, argv, timeout).await
    }

    async fn copy_to(&self, from: &Path, to: &Path) -> Result<(), HostError> {
        let meta = tokio::fs::metadata(from).await.map_err(|e| self.io("reading", from, e))?;
        let args = [path_arg(to), format!("{:o}", meta.permissions().mode() & 0o7777)];
        let out = self.sh_channel(WRITE_FILE, &args, COPY_TIMEOUT, Some(from)).await?;
        if out.success() { Ok(()) } else { Err(self.failed(WRITE_FILE, &args, &out)) }
    }

    async fn read_file(&self, path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, HostError> {
        let args = [path_arg(path), max_bytes.to_string()];
        // A large tail (a node's log) streams over its own channel; a small
        // one (a pid file, a token) is one more line of a kept shell.
        let out = if max_bytes <= KEPT_SHELL_READ_MAX {
            self.sh(READ_FILE, &args, COPY_TIMEOUT).await?
        } else {
            self.sh_channel(READ_FILE, &args, COPY_TIMEOUT, None).await?
        };
        match out.code {
            Some(0) => Ok(Some(out.stdout)),
            Some(ABSENT) => Ok(None),
            _ => Err(self.failed(READ_FILE, &args, &out)),
        }
    }
}
