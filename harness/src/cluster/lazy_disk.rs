//! The lazyfs disk: a node's `log.dirs` on a `faultline-lazyfs` mount, so
//! that the `power-loss` fault can make the node's disk forget what it
//! never fsynced.
//!
//! Each node gets its own daemon (`faultline lazyfs serve`), started on the
//! control side before the node: a mount made there is copied into the
//! mount namespace `ip netns exec` gives the node. The daemon keeps its
//! data in `<node dir>/disk`, mounts it over the node's data directory and
//! answers on `<node dir>/lazyfs.sock`. Teardown stops the daemons by
//! their pid files and detaches every `faultline-lazyfs` mount under the
//! cluster's directory, whatever state a crashed harness left.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use faultline_lazyfs::control::{self, Command, LossReply};
use serde::{Deserialize, Serialize};

use super::state::{ClusterState, NodeState};

/// How long a daemon may take to mount and answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a control command may take (a loss rewrites files).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd daemon may take to unmount and exit.
const STOP_GRACE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(50);

/// What a node's data directory lives on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Disk {
    /// A plain directory: a killed node loses nothing it wrote (the page cache survives).
    #[default]
    Plain,
    /// A faultline-lazyfs mount: `power-loss` drops what was never fsynced.
    Lazyfs,
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Disk::Plain => "plain",
            Disk::Lazyfs => "lazyfs",
        })
    }
}

impl FromStr for Disk {
    type Err = String;

    fn from_str(s: &str) -> Result<Disk, String> {
        match s {
            "plain" => Ok(Disk::Plain),
            "lazyfs" => Ok(Disk::Lazyfs),
            other => Err(format!("unknown disk `{other}`: expected plain or lazyfs")),
        }
    }
}

/// A node's lazyfs paths, all in its directory.
pub(crate) struct LazyPaths {
    pub backing: PathBuf,
    pub control: PathBuf,
    pub pid_file: PathBuf,
    pub log_file: PathBuf,
}

impl NodeState {
    /// Where this node's lazyfs daemon keeps its things; `None` on a plain disk.
    pub(crate) fn lazyfs(&self) -> Option<LazyPaths> {
        (self.disk == Disk::Lazyfs).then(|| {
            let dir = self.config_file.parent().unwrap_or(Path::new("."));
            LazyPaths {
                backing: dir.join("disk"),
                control: dir.join("lazyfs.sock"),
                pid_file: dir.join("lazyfs.pid"),
                log_file: dir.join("lazyfs.log"),
            }
        })
    }
}

/// Starts every lazyfs node's daemon and waits until each has mounted.
pub(crate) async fn mount_all(state: &ClusterState) -> anyhow::Result<()> {
    for node in &state.nodes {
        if let Some(paths) = node.lazyfs() {
            start(node, &paths).await.with_context(|| format!("{}: the lazyfs disk", node.name))?;
        }
    }
    Ok(())
}

async fn start(node: &NodeState, paths: &LazyPaths) -> anyhow::Result<()> {
    if let Some(dir) = paths.pid_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let exe = std::env::current_exe().context("finding the faultline binary")?;
    let log = std::fs::File::create(&paths.log_file).with_context(|| format!("{}", paths.log_file.display()))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("lazyfs").arg("serve");
    cmd.arg("--backing").arg(&paths.backing).arg("--mount").arg(&node.data_dir).arg("--control").arg(&paths.control);
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own session: a Ctrl-C to the harness must not unmount a disk
    // under a running node; teardown stops it.
    cmd.process_group(0);
    let mut child = cmd.spawn().context("starting faultline lazyfs serve")?;
    let pid = child.id().context("the lazyfs daemon exited at once")?;
    std::fs::write(&paths.pid_file, format!("{pid}\n"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    // Bounded: READY_TIMEOUT in POLL steps.
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&paths.log_file).unwrap_or_default();
            bail!("faultline lazyfs serve exited ({status}) before mounting: {}", log.trim());
        }
        if send(&paths.control, Command::Pending).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the lazyfs daemon did not answer on {} within {READY_TIMEOUT:?}", paths.control.display());
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn send(socket: &Path, command: Command) -> anyhow::Result<control::Reply> {
    let socket = socket.to_path_buf();
    let reply = tokio::task::spawn_blocking(move || control::send(&socket, command, COMMAND_TIMEOUT)).await??;
    anyhow::ensure!(reply.ok, "{}", reply.error.unwrap_or_default());
    Ok(reply)
}

/// The node's disk loses everything it never synced (`torn`: each file
/// keeps a seeded prefix of its unsynced writes).
pub(crate) async fn lose_unsynced(node: &NodeState, torn: Option<u64>) -> anyhow::Result<LossReply> {
    let paths = node.lazyfs().with_context(|| format!("{} is not on the lazyfs disk", node.name))?;
    let command = torn.map_or(Command::LoseUnsynced, Command::LoseUnsyncedTorn);
    let reply = send(&paths.control, command).await.with_context(|| format!("{}: {command}", node.name))?;
    reply.loss.context("a loss reply without its figures")
}

/// Stops every daemon and detaches every lazyfs mount under the cluster's
/// directory; returns what failed. The nodes must be stopped first.
pub(crate) async fn unmount_all(state: &ClusterState) -> Vec<String> {
    let mut failures = Vec::new();
    for node in &state.nodes {
        if let Some(paths) = node.lazyfs()
            && let Err(e) = stop_daemon(&paths).await
        {
            failures.push(format!("{}: stopping its lazyfs daemon: {e:#}", node.name));
        }
    }
    failures.extend(detach_under(&state.dir));
    failures
}

/// Every `faultline-lazyfs` mount under `dir` detached; returns the failures.
pub(crate) fn detach_under(dir: &Path) -> Vec<String> {
    let mounts = match faultline_lazyfs::mounts() {
        Ok(m) => m,
        Err(e) => return vec![format!("reading the mount table: {e}")],
    };
    // The mount table shows real paths: a store reached through a symlink
    // must still match.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .filter_map(|m| faultline_lazyfs::unmount(&m).err().map(|e| format!("unmounting {}: {e}", m.display())))
        .collect()
}

/// SIGTERM to the daemon of the pid file (if it is still ours), SIGKILL
/// after [`STOP_GRACE`].
async fn stop_daemon(paths: &LazyPaths) -> anyhow::Result<()> {
    let Some(pid) = std::fs::read_to_string(&paths.pid_file).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
        return Ok(());
    };
    let ours = || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*paths.control.to_string_lossy()))
            .unwrap_or(false)
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
        if !ours() {
            return Ok(());
        }
        let _ = nix::sys::signal::kill(pid, signal);
        let deadline = Instant::now() + STOP_GRACE;
        // A dead daemon that is our unreaped child is a zombie: its cmdline is empty.
        while ours() && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
    }
    if ours() {
        bail!("process {pid} survived SIGKILL");
    }
    Ok(())
}
