//! `faultline nemesis <fault>`: inject one fault into a running cluster
//! (from `faultline cluster up`) by hand, and heal it: partitions by shape,
//! kill/start and pause/resume of a node. Runs use the same primitives from
//! a schedule; this command is for exploring and for tests that prove each
//! fault takes effect and each heal undoes it.
//!
//! Prints what it did as one JSON line. Exit codes: 0 done, 254 bad
//! arguments, 255 harness failure (missing tool, no such cluster, a command
//! that failed).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use faultline_nemesis::partition::{self, CONTROL};
use faultline_nemesis::{Host, ProcState, Signal};

use crate::cluster::state::{ClusterState, state_path};
use crate::cluster::{Where, cluster_dir_of, connect_hosts, node_daemon};
use crate::exit::{Failure, report};

#[derive(Args, Debug)]
pub struct NemesisArgs {
    #[command(flatten)]
    at: Where,
    #[command(subcommand)]
    fault: Fault,
}

#[derive(Subcommand, Debug)]
enum Fault {
    /// Install a partition: one:<node>, isolate:<node> (clients cut too), halves, majorities-ring,
    /// bridge, or by role: isolate-leader (clients cut too), leader-from-followers, isolate-controller,
    /// mute-leader (its packets to the clients dropped: requests handled, answers lost).
    Partition {
        /// The shape: one:<node>, isolate:<node>, halves, majorities-ring,
        /// bridge, isolate-leader, leader-from-followers, isolate-controller
        /// or mute-leader.
        #[arg(long)]
        shape: String,
        /// The partition whose leader the role shapes aim at.
        #[arg(long, default_value = "events/0")]
        partition: String,
        /// Seed for the shape's random choices.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Remove every partition rule (flush our chain in every node).
    Heal,
    /// SIGKILL a node's process.
    Kill {
        /// The node, by name (n1, n2, …).
        #[arg(long)]
        node: String,
    },
    /// SIGKILL a node's process, then its disk loses what it never fsynced
    /// (a `--disk lazyfs` cluster).
    PowerLoss {
        /// The node, by name (n1, n2, …).
        #[arg(long)]
        node: String,
        /// Each file keeps a random prefix of its unsynced writes, from this seed.
        #[arg(long)]
        torn: Option<u64>,
    },
    /// Start a killed node again with its data and configuration.
    Start {
        /// The node, by name (n1, n2, …).
        #[arg(long)]
        node: String,
    },
    /// SIGSTOP a node's process.
    Pause {
        /// The node, by name (n1, n2, …).
        #[arg(long)]
        node: String,
    },
    /// SIGCONT a paused node's process.
    Resume {
        /// The node, by name (n1, n2, …).
        #[arg(long)]
        node: String,
    },
}

pub fn main(args: NemesisArgs) -> ExitCode {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("building the tokio runtime");
    report("nemesis", runtime.block_on(run(args)), |done| println!("{done}"))
}

async fn run(args: NemesisArgs) -> Result<serde_json::Value, Failure> {
    let dir = cluster_dir_of(&args.at).map_err(Failure::BadArgs)?;
    let path = state_path(&dir);
    let mut state =
        ClusterState::load(&path).with_context(|| format!("no cluster `{}` at {}", args.at.name, path.display()))?;
    if state.placement.net().is_some() {
        crate::hosts::exec::check_preconditions().map_err(|e| Failure::Harness(e.into()))?;
    }
    let hosts = connect_hosts(&state).await?;
    let names: Vec<String> = hosts.iter().map(|h| h.name().to_string()).collect();
    let index_of = |node: &str| {
        names
            .iter()
            .position(|n| n == node)
            .ok_or_else(|| Failure::BadArgs(format!("no node `{node}`; nodes: {}", names.join(", "))))
    };
    match args.fault {
        Fault::Partition { shape, seed, partition: aimed } => {
            let urls: Vec<String> = state.nodes.iter().map(|n| n.url.clone()).collect();
            let shape = match shape.as_str() {
                "isolate-leader" | "leader-from-followers" | "mute-leader" => {
                    let leader =
                        leader_of(&urls, &aimed).await.ok_or_else(|| anyhow!("{aimed} has no leader right now"))?;
                    // Node ids follow the hosts' order; names may be a hosts.toml's own.
                    let name = node_name(&names, leader)?;
                    match shape.as_str() {
                        "isolate-leader" => partition::Shape::IsolateWithClients(name),
                        "mute-leader" => partition::Shape::MuteToClients(name),
                        _ => partition::Shape::One(name),
                    }
                }
                "isolate-controller" => {
                    let c = controller(&urls).await.ok_or_else(|| anyhow!("no active controller right now"))?;
                    partition::Shape::One(node_name(&names, c)?)
                }
                other => partition::parse_shape(other).map_err(Failure::BadArgs)?,
            };
            if let partition::Shape::One(n)
            | partition::Shape::IsolateWithClients(n)
            | partition::Shape::MuteToClients(n) = &shape
            {
                index_of(n)?;
            }
            let grudge = partition::grudge(&shape, &names, seed);
            let mut addresses: BTreeMap<String, std::net::Ipv4Addr> =
                hosts.iter().map(|h| (h.name().to_string(), h.ip())).collect();
            addresses.insert(CONTROL.to_string(), state.placement.control_ip());
            partition::apply(&hosts, &grudge, &addresses).await.map_err(|e| Failure::Harness(e.into()))?;
            let isolated = match &shape {
                partition::Shape::One(n)
                | partition::Shape::IsolateWithClients(n)
                | partition::Shape::MuteToClients(n) => Some(n.clone()),
                _ => None,
            };
            Ok(serde_json::json!({ "fault": "partition", "isolated": isolated, "grudge": grudge }))
        }
        Fault::Heal => {
            partition::heal(&hosts).await.map_err(|e| Failure::Harness(e.into()))?;
            Ok(serde_json::json!({ "fault": "heal" }))
        }
        Fault::Start { node } => {
            let i = index_of(&node)?;
            if let Some(pid) = state.nodes[i].pid
                && hosts[i].process(pid).await.map_err(|e| Failure::Harness(e.into()))?.is_some()
            {
                return Err(Failure::BadArgs(format!("{node} is running (pid {pid}); kill it first")));
            }
            let pid =
                hosts[i].start_daemon(&node_daemon(&state.nodes[i])).await.map_err(|e| Failure::Harness(e.into()))?;
            state.nodes[i].pid = Some(pid);
            state.save()?;
            Ok(serde_json::json!({ "fault": "start", "node": node, "pid": pid }))
        }
        Fault::Kill { node } => signal(&state, &hosts, "kill", &node, index_of(&node)?, Signal::Kill).await,
        Fault::PowerLoss { node, torn } => {
            let i = index_of(&node)?;
            if state.nodes[i].lazyfs().is_none() {
                return Err(Failure::BadArgs(format!("{node} is not on the lazyfs disk (cluster up --disk lazyfs)")));
            }
            let killed = signal(&state, &hosts, "kill", &node, i, Signal::Kill).await?;
            if killed["state"] != "gone" {
                return Err(Failure::Harness(anyhow!("{node} survived SIGKILL: {killed}")));
            }
            let lost = crate::cluster::lazy_disk::lose_unsynced(&state.nodes[i], torn).await?;
            Ok(serde_json::json!({ "fault": "power-loss", "node": node, "pid": killed["pid"], "lost": lost }))
        }
        Fault::Pause { node } => signal(&state, &hosts, "pause", &node, index_of(&node)?, Signal::Stop).await,
        Fault::Resume { node } => signal(&state, &hosts, "resume", &node, index_of(&node)?, Signal::Cont).await,
    }
}

/// Timeout of one metadata request when aiming at a role.
const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1_500);

/// The current leader's node id of `topic/index`, from the first node that answers.
async fn leader_of(urls: &[String], partition: &str) -> Option<i32> {
    let (topic, index) = partition.rsplit_once('/')?;
    let index: usize = index.parse().ok()?;
    for url in urls {
        if let Ok(d) = faultline_client::Client::with_timeout(url, METADATA_TIMEOUT).describe_topic(topic).await {
            return d.partitions.get(index)?.leader;
        }
    }
    None
}

/// The active controller's node id, from the first node that answers.
async fn controller(urls: &[String]) -> Option<i32> {
    for url in urls {
        if let Ok(c) = faultline_client::Client::with_timeout(url, METADATA_TIMEOUT).cluster().await {
            return c.controller;
        }
    }
    None
}

/// The name of the node with id `id` (ids count the nodes from 1).
fn node_name(names: &[String], id: i32) -> Result<String, Failure> {
    usize::try_from(id - 1)
        .ok()
        .and_then(|i| names.get(i).cloned())
        .ok_or_else(|| Failure::Harness(anyhow!("node id {id} is not one of the {} nodes", names.len())))
}

/// How long a signalled process may take to show the effect.
const SIGNAL_EFFECT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends `signal` to node `i`'s process and waits (bounded) until it took
/// effect: gone after a kill, stopped after a pause, running after a resume.
async fn signal(
    state: &ClusterState,
    hosts: &[crate::hosts::AnyHost],
    name: &str,
    node: &str,
    i: usize,
    signal: Signal,
) -> Result<serde_json::Value, Failure> {
    let pid = state.nodes[i].pid.ok_or_else(|| anyhow!("{node} has no recorded pid"))?;
    let delivered = hosts[i].signal(pid, signal).await.map_err(|e| Failure::Harness(e.into()))?;
    let deadline = std::time::Instant::now() + SIGNAL_EFFECT_WAIT;
    // Bounded by the deadline.
    let observed = loop {
        let now = hosts[i].process(pid).await.map_err(|e| Failure::Harness(e.into()))?.map(|p| p.state);
        let done = match signal {
            Signal::Kill | Signal::Term => now.is_none(),
            Signal::Stop => now == Some(ProcState::Stopped),
            Signal::Cont => now == Some(ProcState::Running),
        };
        if done || !delivered || std::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let observed = match observed {
        None => "gone",
        Some(ProcState::Running) => "running",
        Some(ProcState::Stopped) => "stopped",
    };
    Ok(serde_json::json!({ "fault": name, "node": node, "pid": pid, "delivered": delivered, "state": observed }))
}
