//! Finding and stopping a cluster's node processes, through each node's
//! host, so that namespaces and SSH machines are handled alike.
//!
//! A pid counts as a node's only while its command line still names the
//! node's config file (pids are reused). `down` finds nodes by their
//! recorded pid, their pid file, and by command line on the host (a node
//! whose pid `up` had no time to record); in a namespace, whatever else
//! runs there goes too. Stopping is SIGTERM (with SIGCONT, so that a paused
//! node can act on it), then SIGKILL after a bounded grace, and returns
//! only when every process is gone or reports the survivors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use faultline_nemesis::{Host, HostError, ProcessInfo, Signal};

use super::state::{ClusterState, NodeState, Placement};
use crate::hosts::AnyHost;
use crate::hosts::exec::{self, CONTROL_HOST};
use crate::hosts::netns::read_proc;
use crate::hosts::network;

/// How long a SIGTERM'd node may take to shut down before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// How long a SIGKILL'd process may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Pause between two checks whether processes are gone.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Bound on `pgrep` on a host.
const PGREP_TIMEOUT: Duration = Duration::from_secs(10);

/// The process `pid` on this machine if it is still this node's.
pub(crate) fn our_process(node: &NodeState, pid: u32) -> Option<ProcessInfo> {
    let config = node.config_file.display().to_string();
    read_proc(pid).filter(|p| p.argv.contains(&config))
}

/// The process `pid` on the node's host if it is still this node's.
pub(crate) async fn node_process(node: &NodeState, host: &AnyHost, pid: u32) -> Result<Option<ProcessInfo>, HostError> {
    let config = node.config_file.display().to_string();
    let found = host.process(pid).await?;
    // An external node's pid came from its system file's pid source.
    Ok(found.filter(|p| node.external.is_some() || p.argv.contains(&config)))
}

/// The node's processes on its host: its recorded pid, its pid file, and
/// (on an SSH host) `pgrep` for its config file, each checked.
async fn pids_of(state: &ClusterState, node: &NodeState, host: &AnyHost) -> Result<Vec<u32>, HostError> {
    if let Some(ext) = &node.external {
        // Not ours to find by command line: the system file's pid source.
        let found = crate::system::external::find_pid(host, ext).await.map_err(|e| HostError::CommandFailed {
            host: node.name.clone(),
            command: format!("{:?}", ext.pid),
            status: "error".into(),
            stderr: format!("{e:#}"),
        })?;
        return Ok(found.into_iter().collect());
    }
    let from_file = host.read_file(&node.pid_file, 64).await?;
    let from_file = from_file.and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u32>().ok());
    let mut candidates: Vec<u32> = node.pid.into_iter().chain(from_file).collect();
    if let Placement::Ssh(_) = state.placement {
        candidates.extend(pgrep(host, &node.config_file.display().to_string()).await?);
    }
    candidates.sort_unstable();
    candidates.dedup();
    let mut pids = Vec::new();
    for pid in candidates {
        if node_process(node, host, pid).await?.is_some() {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Every process of the cluster, by the index of its node's host; the
/// hosts are asked at once.
pub(crate) async fn cluster_pids(state: &ClusterState, hosts: &[AnyHost]) -> anyhow::Result<BTreeSet<(usize, u32)>> {
    let per_node = state.nodes.iter().zip(hosts).map(|(node, host)| pids_of(state, node, host));
    let mut pids = BTreeSet::new();
    for (i, found) in futures_util::future::join_all(per_node).await.into_iter().enumerate() {
        pids.extend(found?.into_iter().map(|pid| (i, pid)));
    }
    if let Placement::Netns(net) = &state.placement {
        let namespaces = network::list_netns().await?;
        for (i, nn) in net.nodes.iter().enumerate().filter(|(_, n)| namespaces.contains(&n.netns)) {
            let out = exec::run_ok(CONTROL_HOST, &exec::argv(&["ip", "netns", "pids", &nn.netns])).await?;
            let found = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>();
            pids.extend(found.into_iter().map(|p| (i, p)));
        }
        // A node whose pid was never recorded and whose namespace is already
        // gone is still found by its command line.
        pids.extend(local_node_processes(state));
    }
    Ok(pids)
}

/// Pids on the host whose command line contains `pattern`.
async fn pgrep(host: &AnyHost, pattern: &str) -> Result<Vec<u32>, HostError> {
    let argv = ["pgrep", "-f", "--", pattern].map(String::from);
    let out = host.run(&argv, PGREP_TIMEOUT).await?;
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect())
}

/// Every live process on this machine that runs one of the cluster's node
/// configs, by node index.
fn local_node_processes(state: &ClusterState) -> Vec<(usize, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let pids: Vec<u32> = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).collect();
    let mut found = Vec::new();
    for (i, node) in state.nodes.iter().enumerate() {
        found.extend(pids.iter().filter(|&&pid| our_process(node, pid).is_some()).map(|&pid| (i, pid)));
    }
    found
}

/// Sends `signals` in order to every process, all hosts at once.
async fn signal_all(hosts: &[AnyHost], pids: &BTreeSet<(usize, u32)>, signals: &[Signal]) {
    let each = pids.iter().map(|&(i, pid)| async move {
        for s in signals {
            let _ = hosts[i].signal(pid, *s).await;
        }
    });
    futures_util::future::join_all(each).await;
}

/// SIGTERM, then SIGKILL after [`TERM_GRACE`]; returns the failures.
pub(crate) async fn stop(hosts: &[AnyHost], pids: &BTreeSet<(usize, u32)>) -> Option<String> {
    signal_all(hosts, pids, &[Signal::Term, Signal::Cont]).await;
    if wait_gone(hosts, pids, TERM_GRACE).await.is_empty() {
        return None;
    }
    signal_all(hosts, pids, &[Signal::Kill]).await;
    let left = wait_gone(hosts, pids, KILL_WAIT).await;
    (!left.is_empty()).then(|| format!("processes {left:?} survived SIGKILL for {KILL_WAIT:?}"))
}

/// Waits up to `timeout` for the processes to go; returns those left (as
/// `host:pid`). A host that cannot be asked counts its processes as left.
async fn wait_gone(hosts: &[AnyHost], pids: &BTreeSet<(usize, u32)>, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let asks = pids.iter().map(|&(i, pid)| async move { (i, pid, hosts[i].process(pid).await) });
        let answers = futures_util::future::join_all(asks).await;
        let left: Vec<String> = answers
            .into_iter()
            .filter(|(_, _, answer)| !matches!(answer, Ok(None)))
            .map(|(i, pid, _)| format!("{}:{pid}", hosts[i].name()))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(EXIT_POLL_INTERVAL).await;
    }
}
