//! The end of a run's cluster: teardown (unless `--leave-running`), then
//! the nodes' logs, and their data directories when the run was not valid,
//! copied into the store. Runs after success, failure and signals alike.

use anyhow::Context;
use faultline_checker::Validity;

use super::RunDirs;
use super::plan::Plan;
use crate::cluster::{self, ClusterState};
use crate::exit::Failure;
use crate::hosts::AnyHost;
use crate::store::{self, RunLog};
use faultline_nemesis::Host;

use crate::system::{AnySystem, System};

pub async fn finish_cluster(plan: &Plan, dirs: &RunDirs, log: &RunLog, valid: Option<Validity>) -> anyhow::Result<()> {
    let path = dirs.cluster.join("state.json");
    let Ok(mut state) = ClusterState::load(&path) else { return Ok(()) };
    if state.dir != dirs.cluster {
        return Ok(());
    }
    if plan.harness.leave_running {
        // The run exits now: the cluster is the user's, not stale.
        cluster::inventory::keep(&mut state)?;
        let how = down_command(plan, &state.name);
        log.info(format!("leaving cluster {} running (--leave-running); remove it with `{how}`", state.name));
        return Ok(());
    }
    // A cluster whose `up` failed was torn down by it; its logs still count
    // (on this machine: an SSH host's are gone with its cluster directory).
    let keep_data = valid != Some(Validity::Valid);
    if state.phase == cluster::Phase::Down {
        collect_local_node_files(&state, dirs, keep_data)?;
    } else {
        log.info(format!("teardown of cluster {}", state.name));
        // The nodes stop first, so their logs are complete, and their files
        // are fetched before the hosts are cleaned.
        let stopped = cluster::stop_nodes(&state).await?;
        let collected = collect_node_files(&state, &stopped.hosts, dirs, keep_data).await;
        cluster::finish_tear_down(&mut state, stopped).await?;
        collected?;
    }
    std::fs::remove_dir_all(&dirs.cluster).with_context(|| format!("removing {}", dirs.cluster.display()))?;
    // `store/clusters` goes too once no cluster is left in it.
    if let Some(parent) = dirs.cluster.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// Each node's log into `nodes/<name>/`; for a namespace node its data
/// too when `keep_data`, for an SSH host's a listing of it (`data.txt`:
/// size and path of each file) always.
async fn collect_node_files(
    state: &ClusterState,
    hosts: &[AnyHost],
    dirs: &RunDirs,
    keep_data: bool,
) -> anyhow::Result<()> {
    if state.placement.net().is_some() {
        return collect_local_node_files(state, dirs, keep_data);
    }
    for (node, host) in state.nodes.iter().zip(hosts) {
        let dest = dirs.run.join("nodes").join(&node.name);
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        // An external node without `logs` in its system file has none we know of.
        let system = AnySystem::of(node);
        let log_file = system.log_file(node);
        if let Some(path) = log_file
            && let Some(log) = host.read_file(path, NODE_LOG_BYTES_MAX).await?
        {
            std::fs::write(dest.join("node.log"), log).with_context(|| format!("writing {}", dest.display()))?;
        }
        let find = ["find", &node.data_dir.display().to_string(), "-type", "f", "-printf", "%s %P\n"];
        let out = host.run(&find.map(String::from), LISTING_TIMEOUT).await?;
        std::fs::write(dest.join("data.txt"), out.stdout).with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(())
}

/// How much of an SSH host's node log is fetched (its end).
const NODE_LOG_BYTES_MAX: u64 = 64 << 20;
/// Bound on listing a node's data directory.
const LISTING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn collect_local_node_files(state: &ClusterState, dirs: &RunDirs, keep_data: bool) -> anyhow::Result<()> {
    if state.placement.net().is_none() {
        return Ok(());
    }
    for node in &state.nodes {
        let dest = dirs.run.join("nodes").join(&node.name);
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        if node.log_file.exists() {
            std::fs::copy(&node.log_file, dest.join("node.log"))
                .with_context(|| format!("copying {}", node.log_file.display()))?;
        }
        // On the lazyfs disk the data lives in its backing directory (the
        // mount over data_dir is gone by now).
        let data = node.lazyfs().map_or_else(|| node.data_dir.clone(), |p| p.backing);
        if keep_data && data.exists() {
            store::copy_tree(&data, &dest.join("data")).with_context(|| format!("copying {}", data.display()))?;
        }
    }
    Ok(())
}

/// A cluster directory left by an earlier run: removed when that cluster
/// is down (its data would go to the new nodes), an error when it is up.
pub fn clear_old_cluster(plan: &Plan, dirs: &RunDirs) -> anyhow::Result<()> {
    if !dirs.cluster.exists() {
        return Ok(());
    }
    match ClusterState::load(&dirs.cluster.join("state.json")) {
        Ok(s) if s.phase != cluster::Phase::Down => anyhow::bail!(
            "cluster {} is {} ({}); remove it with `{}`",
            plan.harness.cluster_name,
            s.liveness(),
            dirs.cluster.display(),
            down_command(plan, &plan.harness.cluster_name)
        ),
        _ => std::fs::remove_dir_all(&dirs.cluster)
            .with_context(|| format!("removing the old {}", dirs.cluster.display())),
    }
}

/// The command that removes cluster `name` of this run's store.
fn down_command(plan: &Plan, name: &str) -> String {
    let store = std::path::absolute(&plan.harness.store).unwrap_or_else(|_| plan.harness.store.clone());
    format!("faultline cluster down --name {name} --store {}", store.display())
}

/// Stale clusters of the run's store (their harness was killed) would hold
/// addresses, namespaces and data nobody removes: the run tears them down
/// with `--cleanup-stale`, and otherwise refuses (the user's decision, exit
/// 254), naming the command.
pub async fn handle_stale(plan: &Plan) -> Result<(), Failure> {
    let store = &plan.harness.store;
    let stale = cluster::inventory::stale_in(store).map_err(Failure::BadArgs)?;
    if stale.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = stale.iter().map(|s| s.name.clone()).collect();
    if plan.harness.cleanup_stale {
        return Ok(cluster::inventory::down_all_of(stale).await?);
    }
    let abs = std::path::absolute(store).unwrap_or_else(|_| store.clone());
    Err(Failure::BadArgs(format!(
        "stale clusters in {}: {} (left by a harness that is gone); remove them with \
         `faultline cluster down --all --store {}`, or pass --cleanup-stale",
        abs.join("clusters").display(),
        names.join(", "),
        abs.display()
    )))
}
