//! A cluster of an external system (`--system system.toml`) on SSH hosts:
//! faultline deploys nothing and writes no broker configuration. It starts
//! each node with the user's command, finds its pid, waits until the
//! cluster's Metadata lists every broker, and matches each broker to its
//! host (by address, or by `broker-id`). Teardown runs the stop commands.
//! The hosts' `base-dir/<cluster>` holds only what faultline itself writes
//! there (the run's control marks).

use std::time::Duration;

use anyhow::{Context, bail};
use faultline_nemesis::Host;

use super::state::{ClusterState, NodeState};
use crate::hosts::AnyHost;
use crate::hosts::hosts_file::SshTarget;
use crate::system::file::ExternalNode;
use crate::system::kafka_admin::KafkaAdmin;
use crate::system::{AnySystem, System, external};

/// Per-request bound of the health checks.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two health checks.
const HEALTH_POLL: Duration = Duration::from_millis(250);

/// The nodes of an external cluster on `hosts`; ids are the brokers', set
/// once Metadata names them.
pub(crate) fn plan_nodes(name: &str, hosts: &[SshTarget], system: &[ExternalNode]) -> Vec<NodeState> {
    hosts
        .iter()
        .zip(system)
        .enumerate()
        .map(|(i, (h, ext))| {
            let dir = h.base_dir.join(name).join(&h.name);
            NodeState {
                id: i as u32 + 1,
                name: h.name.clone(),
                host: format!("{}@{}:{}", h.user, h.ssh_address, h.port),
                url: format!("kafka://{}:{}", h.client_address, ext.kafka_port),
                binary: Default::default(),
                config_file: Default::default(),
                data_dir: dir.join("data"),
                // Where its log is, the system says (`System::log_file`).
                log_file: Default::default(),
                pid_file: Default::default(),
                pid: None,
                external: Some(ext.clone()),
                disk: Default::default(),
            }
        })
        .collect()
}

/// Starts every node, then waits (bounded) for Metadata to list them all.
pub(crate) async fn build(state: &mut ClusterState, hosts: &[AnyHost], timeout: Duration) -> anyhow::Result<()> {
    for (node, host) in state.nodes.iter().zip(hosts) {
        let mkdir = ["mkdir", "-p"].iter().map(|s| s.to_string()).chain([node.data_dir.display().to_string()]);
        let out = host.run(&mkdir.collect::<Vec<_>>(), timeout).await?;
        anyhow::ensure!(out.success(), "host {}: mkdir {}", node.name, node.data_dir.display());
    }
    let starts = state.nodes.iter().zip(hosts).map(|(n, h)| external::start(h, n.external.as_ref().expect("external")));
    let pids = futures_util::future::join_all(starts).await;
    for (node, pid) in state.nodes.iter_mut().zip(&pids) {
        node.pid = pid.as_ref().ok().copied();
    }
    state.save()?;
    pids.into_iter().collect::<anyhow::Result<Vec<u32>>>()?;
    wait_brokers(state, timeout).await?;
    state.save()
}

/// Waits until Metadata lists a broker for every node, and takes each
/// node's broker id from it.
async fn wait_brokers(state: &mut ClusterState, timeout: Duration) -> anyhow::Result<()> {
    let admin = KafkaAdmin::new(state.nodes.iter().map(|n| n.kafka_address()).collect(), METADATA_TIMEOUT);
    let deadline = tokio::time::Instant::now() + timeout;
    // Bounded by the timeout.
    let brokers = loop {
        let last = match admin.metadata("__faultline_probe").await {
            Ok(m) if m.brokers.len() >= state.nodes.len() => break m.brokers,
            Ok(m) => format!("Metadata lists {} of {} brokers: {:?}", m.brokers.len(), state.nodes.len(), m.brokers),
            Err(e) => e,
        };
        if tokio::time::Instant::now() > deadline {
            bail!("the cluster did not list every broker within {timeout:?}: {last}");
        }
        tokio::time::sleep(HEALTH_POLL).await;
    };
    for node in &mut state.nodes {
        let ext = node.external.as_ref().expect("external");
        let addr = node.kafka_address();
        let found = match ext.broker_id {
            Some(id) => brokers.iter().find(|b| b.0 == id),
            None => brokers.iter().find(|b| format!("{}:{}", b.1, b.2) == addr),
        };
        let Some(b) = found else {
            bail!(
                "host {} ({addr}): no broker of the cluster's Metadata matches it; brokers: {brokers:?}; \
                 set `broker-id` in [hosts.{}] of the system file",
                node.name,
                node.name
            );
        };
        node.id = u32::try_from(b.0).with_context(|| format!("broker id {}", b.0))?;
    }
    Ok(())
}

/// Stops every node by its system's own means (an external node's stop
/// command); returns the failures.
pub(crate) async fn stop(state: &ClusterState, hosts: &[AnyHost]) -> Vec<String> {
    let stops = state.nodes.iter().zip(hosts).map(|(n, h)| async move { AnySystem::of(n).stop(h, n).await });
    futures_util::future::join_all(stops).await.into_iter().flatten().collect()
}
