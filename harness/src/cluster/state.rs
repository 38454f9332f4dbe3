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
use crate::hosts::hosts_file::SshTarget;

/// Bumped when the format changes incompatibly (2: `placement`, and each
/// node's `host` and `binary`).
pub const STATE_VERSION: u32 = 2;

/// Where a cluster's nodes run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Placement {
    /// One network namespace per node on this machine (the default).
    Netns(ClusterNet),
    /// One machine per node, reached over SSH (`--hosts hosts.toml`).
    Ssh(SshPlacement),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SshPlacement {
    /// The `hosts.toml` the cluster was built from, for messages.
    pub hosts_file: PathBuf,
    /// Its hosts, with every default applied, in node order.
    pub hosts: Vec<SshTarget>,
    /// The harness's address as the hosts see it: the hosts file's
    /// `control-address`, else what `SSH_CONNECTION` says (learnt at
    /// deploy, unspecified until then): what a partition that cuts clients
    /// drops.
    pub control_ip: std::net::Ipv4Addr,
}

impl Placement {
    /// The address the hosts see the harness (and its clients) at.
    pub fn control_ip(&self) -> std::net::Ipv4Addr {
        match self {
            Placement::Netns(net) => net.control_ip,
            Placement::Ssh(ssh) => ssh.control_ip,
        }
    }

    /// The network, when the nodes are namespaces on this machine.
    pub fn net(&self) -> Option<&ClusterNet> {
        match self {
            Placement::Netns(net) => Some(net),
            Placement::Ssh(_) => None,
        }
    }

    /// Each node's address, where it listens and its peers reach it.
    pub fn node_ips(&self) -> Vec<std::net::Ipv4Addr> {
        match self {
            Placement::Netns(net) => net.nodes.iter().map(|n| n.ip).collect(),
            Placement::Ssh(ssh) => ssh.hosts.iter().map(|h| h.address).collect(),
        }
    }

    /// One line for `status` and `list`: the subnet, or the hosts file.
    pub fn describe(&self) -> String {
        match self {
            Placement::Netns(net) => format!("namespaces on {}", net.subnet.network),
            Placement::Ssh(ssh) => format!("{} SSH hosts from {}", ssh.hosts.len(), ssh.hosts_file.display()),
        }
    }
}

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
    pub placement: Placement,
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
    /// `n<id>`, or the host's name in `hosts.toml`.
    pub name: String,
    /// Where it runs: its namespace, or `user@address:port`.
    pub host: String,
    pub url: String,
    /// The `faultline-node` binary, a path on its host.
    pub binary: PathBuf,
    /// This and the paths below are paths on the node's host.
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub pid_file: PathBuf,
    /// Set as soon as the process runs.
    pub pid: Option<u32>,
    /// An external system's node (`--system`): how to start, stop and find
    /// it. `None` for faultline-node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<crate::system::file::ExternalNode>,
    /// What its data directory lives on.
    #[serde(default)]
    pub disk: super::lazy_disk::Disk,
}

impl NodeState {
    /// Where Kafka clients reach this node: its URL's host, the Kafka port
    /// (an external node's URL is its Kafka address).
    pub fn kafka_address(&self) -> String {
        if let Some(addr) = self.url.strip_prefix("kafka://") {
            return addr.to_string();
        }
        let host = self.url.trim_start_matches("http://").rsplit_once(':').map_or("", |(h, _)| h);
        format!("{host}:{}", super::placement::KAFKA_PORT)
    }
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
