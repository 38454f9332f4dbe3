//! Every cluster of a store, and what became of it: `cluster list`,
//! `cluster down --all`, and the stale-cluster check `faultline run` makes
//! before it starts. A cluster is stale when the harness that owns it is
//! gone ([`super::owner`]).

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::state::{ClusterState, Liveness, state_path};
use super::{clusters_dir, our_process, tear_down};
use crate::exit::Failure;
use crate::hosts::exec;

/// Every cluster directory of a store with its state (or why it is unreadable).
pub(crate) fn clusters_in(store: &Path) -> Result<Vec<(PathBuf, anyhow::Result<ClusterState>)>, String> {
    let dir = clusters_dir(store)?;
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut out: Vec<(PathBuf, anyhow::Result<ClusterState>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| state_path(p).exists())
        .map(|p| {
            let state = ClusterState::load(&state_path(&p));
            (p, state)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The stale clusters of a store: nobody will tear them down.
pub(crate) fn stale_in(store: &Path) -> Result<Vec<ClusterState>, String> {
    Ok(clusters_in(store)?
        .into_iter()
        .filter_map(|(_, s)| s.ok())
        .filter(|s| s.liveness() == Liveness::Stale)
        .collect())
}

/// Tears these (stale) clusters down.
pub(crate) async fn down_all_of(clusters: Vec<ClusterState>) -> anyhow::Result<()> {
    for mut state in clusters {
        tear_down(&mut state).await?;
    }
    Ok(())
}

/// Marks a running cluster as kept on purpose: its owner is about to exit.
pub(crate) fn keep(state: &mut ClusterState) -> anyhow::Result<()> {
    state.owner = None;
    state.save()
}

pub(crate) fn list(store: &Path) -> Result<(), Failure> {
    let clusters = clusters_in(store).map_err(Failure::BadArgs)?;
    if clusters.is_empty() {
        println!("no clusters in {}", clusters_dir(store).map_err(Failure::BadArgs)?.display());
    }
    for (dir, state) in clusters {
        match state {
            Ok(s) => {
                let owner = s.owner.as_ref().map(|o| format!(", owner {} pid {}", o.command, o.pid));
                // Processes on SSH hosts are not looked up here: `status` does.
                let running = match s.placement.net() {
                    Some(_) => {
                        let n = s.nodes.iter().filter(|n| n.pid.and_then(|p| our_process(n, p)).is_some()).count();
                        format!("{n} running")
                    }
                    None => "see `cluster status`".into(),
                };
                println!(
                    "{} {}: {} nodes ({running}), {}{}; {}",
                    s.name,
                    s.liveness(),
                    s.nodes.len(),
                    s.placement.describe(),
                    owner.unwrap_or_default(),
                    dir.display()
                );
            }
            Err(e) => println!("{}: unreadable state: {e:#}", dir.display()),
        }
    }
    Ok(())
}

pub(crate) async fn down_all(store: &Path) -> Result<(), Failure> {
    exec::check_preconditions().map_err(|e| anyhow!(e))?;
    let stale = stale_in(store).map_err(Failure::BadArgs)?;
    let names: Vec<String> = stale.iter().map(|s| s.name.clone()).collect();
    down_all_of(stale).await?;
    if names.is_empty() {
        println!("no stale clusters in {}", clusters_dir(store).map_err(Failure::BadArgs)?.display());
    } else {
        println!("stale clusters down: {}", names.join(", "));
    }
    Ok(())
}
