//! [`NetnsHost`]: a [`Host`] that is one network namespace on this machine.
//!
//! Processes start inside the namespace through `ip netns exec <ns> argv...`,
//! which enters the namespace and then execs the program, so the pid we get
//! is the program's own. The file system and the pid space are this
//! machine's: files are copied and read locally, pids are signalled with
//! `kill(2)` and inspected through `/proc`.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use faultline_nemesis::{CommandOutput, DaemonSpec, Host, HostError, ProcState, ProcessInfo, Signal};
use nix::errno::Errno;
use nix::unistd::Pid;

use super::exec;

/// One node's namespace.
#[derive(Debug, Clone)]
pub struct NetnsHost {
    /// The node's name in messages (`n1`).
    name: String,
    /// The namespace, as `ip netns list` shows it.
    netns: String,
    ip: Ipv4Addr,
}

impl NetnsHost {
    pub fn new(name: impl Into<String>, netns: impl Into<String>, ip: Ipv4Addr) -> NetnsHost {
        NetnsHost { name: name.into(), netns: netns.into(), ip }
    }

    fn io_error(&self, action: &'static str, path: &Path, source: std::io::Error) -> HostError {
        HostError::Io { host: self.name.clone(), action, path: path.to_path_buf(), source }
    }

    /// `ip netns exec <ns> argv...`.
    fn in_netns(&self, argv: &[String]) -> Vec<String> {
        let mut a = exec::argv(&["ip", "netns", "exec", &self.netns]);
        a.extend_from_slice(argv);
        a
    }
}

impl Host for NetnsHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    async fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, HostError> {
        assert!(!spec.argv.is_empty(), "a daemon needs a program");
        let open_log = || std::fs::OpenOptions::new().create(true).append(true).open(&spec.log_file);
        let log = open_log().map_err(|e| self.io_error("opening", &spec.log_file, e))?;
        let log2 = log.try_clone().map_err(|e| self.io_error("opening", &spec.log_file, e))?;
        let argv = self.in_netns(&spec.argv);
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(log).stderr(log2);
        // Its own process group: a Ctrl-C at the terminal signals the
        // harness's group, not the daemon; teardown kills it by pid.
        cmd.process_group(0);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        // A std child is not kill-on-drop, which a daemon must not be; a
        // thread reaps it if it exits while the harness still runs, so it
        // never lingers as a zombie of ours.
        let mut child = cmd.spawn().map_err(|source| HostError::Spawn {
            host: self.name.clone(),
            command: argv.join(" "),
            source,
        })?;
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        let tmp = spec.pid_file.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{pid}\n")).map_err(|e| self.io_error("writing", &tmp, e))?;
        std::fs::rename(&tmp, &spec.pid_file).map_err(|e| self.io_error("writing", &spec.pid_file, e))?;
        Ok(pid)
    }

    async fn signal(&self, pid: u32, signal: Signal) -> Result<bool, HostError> {
        let sig = match signal {
            Signal::Kill => nix::sys::signal::Signal::SIGKILL,
            Signal::Stop => nix::sys::signal::Signal::SIGSTOP,
            Signal::Cont => nix::sys::signal::Signal::SIGCONT,
            Signal::Term => nix::sys::signal::Signal::SIGTERM,
        };
        let raw = i32::try_from(pid).ok().filter(|p| *p > 0);
        let Some(raw) = raw else {
            return Err(HostError::Signal { host: self.name.clone(), pid, signal, reason: "not a process id".into() });
        };
        match nix::sys::signal::kill(Pid::from_raw(raw), sig) {
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(e) => Err(HostError::Signal { host: self.name.clone(), pid, signal, reason: e.to_string() }),
        }
    }

    async fn process(&self, pid: u32) -> Result<Option<ProcessInfo>, HostError> {
        Ok(read_proc(pid))
    }

    async fn run(&self, argv: &[String], timeout: Duration) -> Result<CommandOutput, HostError> {
        exec::run(&self.name, &self.in_netns(argv), timeout).await
    }

    async fn copy_to(&self, from: &Path, to: &Path) -> Result<(), HostError> {
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| self.io_error("creating", parent, e))?;
        }
        tokio::fs::copy(from, to).await.map(drop).map_err(|e| self.io_error("copying to", to, e))
    }

    async fn read_file(&self, path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, HostError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("opening", path, e)),
        };
        let len = file.metadata().await.map_err(|e| self.io_error("reading", path, e))?.len();
        let start = len.saturating_sub(max_bytes);
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| self.io_error("reading", path, e))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        file.take(max_bytes).read_to_end(&mut buf).await.map_err(|e| self.io_error("reading", path, e))?;
        Ok(Some(buf))
    }
}

/// A process from `/proc`: `None` when it is gone or a zombie.
/// The fields of `/proc/PID/stat` after the command name, the state first
/// (field 3 of proc(5)): `pid (comm) S ...`, where comm may hold spaces and
/// parentheses, so fields are counted after the last `)`.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_string).collect())
}

pub fn read_proc(pid: u32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    parse_proc(pid, &stat, &cmdline)
}

/// A process from the text of `/proc/PID/stat` and the bytes of
/// `/proc/PID/cmdline`, wherever they were read: `None` for a zombie.
pub fn parse_proc(pid: u32, stat: &str, cmdline: &[u8]) -> Option<ProcessInfo> {
    let state = match stat.rsplit_once(')')?.1.split_whitespace().next()? {
        "Z" | "X" | "x" => return None,
        "T" | "t" => ProcState::Stopped,
        _ => ProcState::Running,
    };
    let argv =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Some(ProcessInfo { pid, state, argv })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own process is running and its argv is readable; pid 0 is not a process.
    #[test]
    fn reads_our_own_process() {
        let me = read_proc(std::process::id()).expect("we run");
        assert_eq!(me.state, ProcState::Running);
        assert!(!me.argv.is_empty());
        assert!(read_proc(0).is_none());
    }
}
