//! The system under test, what Jepsen calls a `db`: how its nodes are set up,
//! started, killed, paused and resumed on their hosts, where their logs are,
//! and how the harness finds partition leaders and the active controller.
//!
//! Two systems exist: `faultline-node`, built in (the harness deploys its
//! binary, writes its `server.properties` and reads its HTTP API), and
//! `external-kafka`, any Kafka-protocol cluster on `hosts.toml` hosts, driven
//! by the commands of a `system.toml` (`file.rs`, `external.rs`) and read
//! over Kafka's protocol (`kafka_admin.rs`), which works for the built-in
//! node too. [`System`] is what the nemesis and the teardown do to one node;
//! `roles.rs` finds the nodes that role targets name.

pub mod external;
pub mod file;
pub mod kafka_admin;
pub mod roles;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use faultline_nemesis::{Host, HostError, Signal};

use crate::cluster::state::NodeState;
use crate::hosts::AnyHost;
use file::ExternalNode;

/// Polls of a killed process until it is gone.
const KILL_WAIT_POLLS: u32 = 100;
/// Pause between two of them.
const KILL_WAIT_POLL: Duration = Duration::from_millis(50);

/// One node of the system under test, as the nemesis and the teardown act
/// on it. Kill, pause and resume are signals to the node's pid for every
/// system; starting and a graceful stop are the system's own.
pub trait System {
    /// The system's name, as `test.json` records it.
    fn name(&self) -> &'static str;

    /// Starts the node on its host; its pid once it runs.
    fn start(&self, host: &AnyHost, node: &NodeState) -> impl Future<Output = anyhow::Result<u32>> + Send;

    /// The node's log file on its host, if the system says where it is.
    fn log_file<'a>(&'a self, node: &'a NodeState) -> Option<&'a Path>;

    /// A crash: SIGKILL (after SIGCONT, so a paused node dies too), then a
    /// bounded wait until the process is gone.
    fn kill(&self, host: &AnyHost, pid: u32) -> impl Future<Output = Result<(), HostError>> + Send {
        async move {
            host.signal(pid, Signal::Cont).await?;
            host.signal(pid, Signal::Kill).await?;
            for _ in 0..KILL_WAIT_POLLS {
                if host.process(pid).await?.is_none() {
                    break;
                }
                tokio::time::sleep(KILL_WAIT_POLL).await;
            }
            Ok(())
        }
    }

    /// A pause: SIGSTOP; the process keeps its memory and sockets.
    fn pause(&self, host: &AnyHost, pid: u32) -> impl Future<Output = Result<(), HostError>> + Send {
        async move { host.signal(pid, Signal::Stop).await.map(|_| ()) }
    }

    fn resume(&self, host: &AnyHost, pid: u32) -> impl Future<Output = Result<(), HostError>> + Send {
        async move { host.signal(pid, Signal::Cont).await.map(|_| ()) }
    }

    /// A graceful stop by the system's own means, before the teardown's
    /// signals; what went wrong, if anything. By default the signals alone
    /// stop the node.
    fn stop(&self, _host: &AnyHost, _node: &NodeState) -> impl Future<Output = Option<String>> + Send {
        async { None }
    }
}

/// The built-in system: the harness's own `faultline-node` daemon.
pub struct FaultlineNode;

impl System for FaultlineNode {
    fn name(&self) -> &'static str {
        "faultline-node"
    }

    async fn start(&self, host: &AnyHost, node: &NodeState) -> anyhow::Result<u32> {
        Ok(host.start_daemon(&crate::cluster::node_daemon(node)).await?)
    }

    fn log_file<'a>(&'a self, node: &'a NodeState) -> Option<&'a Path> {
        Some(&node.log_file)
    }
}

/// An external system's node: its `system.toml` commands.
impl System for ExternalNode {
    fn name(&self) -> &'static str {
        "external-kafka"
    }

    async fn start(&self, host: &AnyHost, _node: &NodeState) -> anyhow::Result<u32> {
        external::start(host, self).await
    }

    fn log_file<'a>(&'a self, _node: &'a NodeState) -> Option<&'a Path> {
        self.logs.as_deref()
    }

    async fn stop(&self, host: &AnyHost, node: &NodeState) -> Option<String> {
        external::stop(host, self, node.pid).await
    }
}

/// A node's system, as its state records it.
pub enum AnySystem<'a> {
    FaultlineNode(FaultlineNode),
    External(&'a ExternalNode),
}

impl AnySystem<'_> {
    pub fn of(node: &NodeState) -> AnySystem<'_> {
        match &node.external {
            Some(ext) => AnySystem::External(ext),
            None => AnySystem::FaultlineNode(FaultlineNode),
        }
    }
}

impl System for AnySystem<'_> {
    fn name(&self) -> &'static str {
        match self {
            AnySystem::FaultlineNode(s) => s.name(),
            AnySystem::External(s) => s.name(),
        }
    }

    async fn start(&self, host: &AnyHost, node: &NodeState) -> anyhow::Result<u32> {
        match self {
            AnySystem::FaultlineNode(s) => s.start(host, node).await,
            AnySystem::External(s) => s.start(host, node).await,
        }
    }

    fn log_file<'a>(&'a self, node: &'a NodeState) -> Option<&'a Path> {
        match self {
            AnySystem::FaultlineNode(s) => s.log_file(node),
            AnySystem::External(s) => s.log_file(node),
        }
    }

    async fn stop(&self, host: &AnyHost, node: &NodeState) -> Option<String> {
        match self {
            AnySystem::FaultlineNode(s) => s.stop(host, node).await,
            AnySystem::External(s) => s.stop(host, node).await,
        }
    }
}
