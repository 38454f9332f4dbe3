//! The end of a run's cluster: teardown (unless `--leave-running`), then
//! the nodes' logs, and their data directories when the run was not valid,
//! copied into the store. Runs after success, failure and signals alike.

use anyhow::Context;
use faultline_checker::Validity;

use super::RunDirs;
use super::plan::Plan;
use crate::cluster::{self, ClusterState};
use crate::store::{self, RunLog};

pub async fn finish_cluster(plan: &Plan, dirs: &RunDirs, log: &RunLog, valid: Option<Validity>) -> anyhow::Result<()> {
    let path = dirs.cluster.join("state.json");
    let Ok(mut state) = ClusterState::load(&path) else { return Ok(()) };
    if state.dir != dirs.cluster {
        return Ok(());
    }
    if plan.harness.leave_running {
        let store = std::path::absolute(&plan.harness.store).unwrap_or_default();
        let how = match (store.file_name().and_then(|n| n.to_str()), store.parent()) {
            (Some("store"), Some(base)) => {
                format!("`faultline cluster down --name {} --dir {}`", state.name, base.display())
            }
            _ => format!("`faultline cluster down` with the state file {}", path.display()),
        };
        log.line(format!("leaving cluster {} running (--leave-running); remove it with {how}", state.name));
        return Ok(());
    }
    // A cluster whose `up` failed was torn down by it; its logs still count.
    let torn = if state.phase == cluster::Phase::Down {
        Ok(())
    } else {
        log.line(format!("teardown of cluster {}", state.name));
        cluster::stop(&mut state).await
    };
    collect_node_files(&state, dirs, valid != Some(Validity::Valid))?;
    torn?;
    std::fs::remove_dir_all(&dirs.cluster).with_context(|| format!("removing {}", dirs.cluster.display()))?;
    // `store/clusters` goes too once no cluster is left in it.
    if let Some(parent) = dirs.cluster.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// Each node's log into `nodes/<name>/`, and its data when `keep_data`.
fn collect_node_files(state: &ClusterState, dirs: &RunDirs, keep_data: bool) -> anyhow::Result<()> {
    for node in &state.nodes {
        let dest = dirs.run.join("nodes").join(&node.name);
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        if node.log_file.exists() {
            std::fs::copy(&node.log_file, dest.join("node.log"))
                .with_context(|| format!("copying {}", node.log_file.display()))?;
        }
        if keep_data && node.data_dir.exists() {
            store::copy_tree(&node.data_dir, &dest.join("data"))
                .with_context(|| format!("copying {}", node.data_dir.display()))?;
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
            "cluster {} from an earlier run is still up ({}); run `faultline cluster down` on it",
            plan.harness.cluster_name,
            dirs.cluster.display()
        ),
        _ => std::fs::remove_dir_all(&dirs.cluster)
            .with_context(|| format!("removing the old {}", dirs.cluster.display())),
    }
}
