//! An external system's node on its host: start it with the user's command
//! and find its pid, stop it with the user's command (then by signal if it
//! outlives the bound), read its log's tail. Kill, pause and resume are
//! signals to that pid, as for faultline-node. Every command runs under a
//! bound, and a command that fails names the host and its stderr.

use std::time::Duration;

use anyhow::{Context, bail};
use faultline_nemesis::{Host, Signal};

use super::file::{ExternalNode, PidSource};
use crate::hosts::AnyHost;

/// Bound on one stop command, and on the node exiting after it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one pid lookup.
const PID_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two pid lookups while a node starts.
const PID_POLL: Duration = Duration::from_millis(200);
/// The tail of a node's log kept with the run.
pub const LOG_TAIL_BYTES: u64 = 1 << 20;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Runs `script` on `host`; an error when it fails, naming host and stderr.
async fn run(host: &AnyHost, what: &str, script: &str, timeout: Duration) -> anyhow::Result<String> {
    let out = host.run(&sh(script), timeout).await.with_context(|| format!("host {}: {what}", host.name()))?;
    if !out.success() {
        bail!(
            "host {}: {what} `{script}` failed ({:?}): {}",
            host.name(),
            out.code,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The node's pid now, if it runs.
pub async fn find_pid(host: &AnyHost, node: &ExternalNode) -> anyhow::Result<Option<u32>> {
    let text = match &node.pid {
        PidSource::Command(cmd) => {
            // pgrep exits 1 when nothing matches: not running, not a failure.
            let out = host.run(&sh(cmd), PID_TIMEOUT).await.with_context(|| format!("host {}: pid", host.name()))?;
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
        PidSource::File(path) => match host.read_file(path, 64).await? {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => String::new(),
        },
    };
    let pids: Vec<u32> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    if pids.len() > 1 {
        bail!(
            "host {}: the pid command found {} processes ({pids:?}): make it match the node only",
            host.name(),
            pids.len()
        );
    }
    match pids.first() {
        Some(&pid) if host.process(pid).await?.is_some() => Ok(Some(pid)),
        _ => Ok(None),
    }
}

/// Starts the node and returns its pid once it shows, within the node's
/// start timeout.
pub async fn start(host: &AnyHost, node: &ExternalNode) -> anyhow::Result<u32> {
    let bound = Duration::from_secs(node.start_timeout_s);
    run(host, "start", &node.start, bound).await?;
    let deadline = tokio::time::Instant::now() + bound;
    // Bounded by the start timeout.
    loop {
        if let Some(pid) = find_pid(host, node).await? {
            return Ok(pid);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("host {}: no pid within {bound:?} of the start command (pid source {:?})", host.name(), node.pid);
        }
        tokio::time::sleep(PID_POLL).await;
    }
}

/// Stops the node with its stop command, then by SIGKILL if it still runs
/// after [`STOP_TIMEOUT`]. Returns what went wrong, if anything did.
pub async fn stop(host: &AnyHost, node: &ExternalNode, pid: Option<u32>) -> Option<String> {
    let pid = match pid {
        Some(p) => Some(p),
        None => find_pid(host, node).await.ok().flatten(),
    };
    let pid = pid?;
    // A paused node cannot act on the stop command's signal.
    let _ = host.signal(pid, Signal::Cont).await;
    let problem = run(host, "stop", &node.stop, STOP_TIMEOUT).await.err().map(|e| format!("{e:#}"));
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    // Bounded by STOP_TIMEOUT.
    while tokio::time::Instant::now() < deadline {
        if !matches!(host.process(pid).await, Ok(Some(_))) {
            return problem;
        }
        tokio::time::sleep(PID_POLL).await;
    }
    let _ = host.signal(pid, Signal::Kill).await;
    Some(format!(
        "host {}: pid {pid} outlived its stop command by {STOP_TIMEOUT:?}; SIGKILLed{}",
        host.name(),
        problem.map(|p| format!(" ({p})")).unwrap_or_default()
    ))
}
