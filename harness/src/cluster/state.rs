//! The state file of one cluster: everything `cluster up` created or is about
//! to create, so that `cluster down` can remove it even after the harness was
//! killed half-way.
//!
//! It is written before the resources it names exist (the whole network plan
//! first, each pid as soon as its process runs) and replaced atomically
//! (temp file, fsync, rename), so a crash leaves either the old or the new
//! version, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::hosts::ClusterNet;

/// Bumped when the format changes incompatibly.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `up` is creating resources (or died doing so).
    Creating,
    /// Every node is healthy and a controller is elected.
    Up,
    /// `down` removed everything.
    Down,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    pub version: u32,
    pub name: String,
    pub phase: Phase,
    /// The cluster's directory: node configs, logs, data, this file.
    pub dir: PathBuf,
    pub net: ClusterNet,
    /// The rules we add, for the record (`iptables -S` syntax).
    pub iptables_rules: Vec<String>,
    pub nodes: Vec<NodeState>,
    /// The harness process responsible for tearing the cluster down, while
    /// there is one (see [`super::owner`]); absent in older state files.
    #[serde(default)]
    pub owner: Option<super::owner::Owner>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub id: u32,
    /// `n<id>`: the host's name.
    pub name: String,
    pub netns: String,
    pub url: String,
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub pid_file: PathBuf,
    /// Set as soon as the process runs.
    pub pid: Option<u32>,
}

pub fn state_path(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("state.json")
}

/// What became of a cluster, as `cluster list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Torn down; only its directory is left.
    Down,
    /// Its owner runs and will tear it down.
    Owned,
    /// Nobody will tear it down: its owner is gone.
    Stale,
    /// Kept on purpose (`cluster up`, `--leave-running`).
    Kept,
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Liveness::Down => "down",
            Liveness::Owned => "running (its harness is alive)",
            Liveness::Stale => "STALE (its harness is gone)",
            Liveness::Kept => "up (kept)",
        })
    }
}

impl ClusterState {
    pub fn liveness(&self) -> Liveness {
        match (self.phase, &self.owner) {
            (Phase::Down, _) => Liveness::Down,
            (_, Some(o)) if o.alive() => Liveness::Owned,
            (_, Some(_)) => Liveness::Stale,
            // `up` records its owner before it creates anything, so a
            // cluster still creating without one is from an older harness.
            (Phase::Creating, None) => Liveness::Stale,
            (Phase::Up, None) => Liveness::Kept,
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<ClusterState> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let state: ClusterState = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            state.version == STATE_VERSION,
            "{}: state version {} is not {STATE_VERSION}",
            path.display(),
            state.version
        );
        Ok(state)
    }

    /// Replaces the state file atomically.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = state_path(&self.dir);
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(serde_json::to_string_pretty(self).expect("serializable").as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().with_context(|| format!("writing {}", path.display()))
    }
}
