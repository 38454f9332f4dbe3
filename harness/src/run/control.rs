//! Whether the harness still controls the cluster it tests. A verdict is
//! about the system, never about the harness: when the cluster was removed
//! or replaced under a run (a `cluster down` from outside, a data directory
//! wiped), what the run reads at the end describes nothing, and the verdict
//! must be unknown rather than "4,711 lost writes".
//!
//! At start each node's data directory gets an identity file with a token
//! of this run, written and fsynced together with its directory so a
//! power-loss fault cannot undo it. [`Marks::verify`] checks the tokens,
//! the state file and the namespaces. A final phase that does not converge
//! is *not* a loss of control: bugs cause exactly that.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::cluster::{ClusterState, Phase};
use crate::hosts::network;

/// The identity file in each node's data directory.
const ID_FILE: &str = "faultline.id";

/// What was marked at start.
pub struct Marks {
    state_path: PathBuf,
    /// Node name, its data directory and its token.
    nodes: Vec<(String, PathBuf, String)>,
    namespaces: Vec<String>,
}

impl Marks {
    /// Writes a token of this run into every node's data directory.
    pub fn mark(state: &ClusterState, run_token: &str) -> anyhow::Result<Marks> {
        let mut nodes = Vec::new();
        for node in &state.nodes {
            let token = format!("{run_token} {}", node.name);
            write_synced(&node.data_dir, &token)?;
            nodes.push((node.name.clone(), node.data_dir.clone(), token));
        }
        let namespaces =
            state.placement.net().map(|net| net.nodes.iter().map(|n| n.netns.clone()).collect()).unwrap_or_default();
        Ok(Marks { state_path: crate::cluster::state::state_path(&state.dir), nodes, namespaces })
    }

    /// Why the harness no longer controls the cluster, if it does not.
    pub async fn verify(&self) -> Option<String> {
        match ClusterState::load(&self.state_path) {
            Ok(s) if s.phase == Phase::Down => return Some("the cluster was torn down from outside".into()),
            Ok(_) => {}
            Err(e) => return Some(format!("the cluster's state file is gone or unreadable: {e:#}")),
        }
        for (name, dir, token) in &self.nodes {
            match std::fs::read_to_string(dir.join(ID_FILE)) {
                Ok(t) if t.trim() == token => {}
                Ok(_) => return Some(format!("node {name}'s data directory belongs to another run")),
                Err(_) => return Some(format!("node {name}'s data directory {} was replaced", dir.display())),
            }
        }
        let live = match network::list_netns().await {
            Ok(l) => l,
            Err(e) => return Some(format!("cannot list network namespaces: {e}")),
        };
        self.namespaces.iter().find(|n| !live.contains(n)).map(|n| format!("network namespace {n} vanished"))
    }
}

/// Writes `token` to `dir/faultline.id` and fsyncs the file and `dir`.
fn write_synced(dir: &std::path::Path, token: &str) -> anyhow::Result<()> {
    let path = dir.join(ID_FILE);
    let mut f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("fsyncing {}", dir.display()))
}

/// Records a loss of control where `faultline check` finds it again.
pub fn record(run_dir: &std::path::Path, reason: &str) -> anyhow::Result<()> {
    let doc = serde_json::json!({ "lost_control": reason });
    crate::store::write_json(&run_dir.join(faultline_checker::CONTROL_FILE), &doc)
}
