//! Waiting for a new cluster: every node answers `/health` and knows an
//! elected controller, within a bound; a node that exits on the way fails
//! the wait at once, with the end of its log.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use faultline_nemesis::Host;

use super::state::{ClusterState, NodeState};
use crate::hosts::AnyHost;

/// Timeout of one health or cluster request while waiting for the nodes.
pub(crate) const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two rounds of health checks.
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How much of a node's log is shown when it fails to come up.
const LOG_TAIL_BYTES: u64 = 4096;

/// Waits until every node answers `/health` with 200 and reports a
/// controller; fails early when a node exits, with its log tail.
pub(crate) async fn wait_healthy(state: &ClusterState, hosts: &[AnyHost], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let clients: Vec<_> = state
        .nodes
        .iter()
        .map(|n| faultline_client::Client::with_timeout(n.url.clone(), HEALTH_REQUEST_TIMEOUT))
        .collect();
    let mut pending: BTreeSet<usize> = (0..state.nodes.len()).collect();
    while !pending.is_empty() {
        for i in pending.clone() {
            let node = &state.nodes[i];
            if hosts[i].process(node.pid.expect("started")).await?.is_none() {
                bail!(
                    "node {} exited during start-up; log {} on {}:\n{}",
                    node.name,
                    node.log_file.display(),
                    node.host,
                    log_tail(&hosts[i], node).await
                );
            }
            let healthy = clients[i].health().await.is_ok();
            if healthy && clients[i].cluster().await.is_ok_and(|c| c.controller.is_some()) {
                pending.remove(&i);
            }
        }
        if !pending.is_empty() && Instant::now() > deadline {
            let mut msg = format!("nodes not healthy with a controller within {} ms:", timeout.as_millis());
            for &i in &pending {
                let node = &state.nodes[i];
                msg.push_str(&format!(
                    "\n--- {} ({}), log {} on {}:\n{}",
                    node.name,
                    node.url,
                    node.log_file.display(),
                    node.host,
                    log_tail(&hosts[i], node).await
                ));
            }
            bail!(msg);
        }
        tokio::time::sleep(HEALTH_POLL_INTERVAL).await;
    }
    Ok(())
}

async fn log_tail(host: &AnyHost, node: &NodeState) -> String {
    match host.read_file(&node.log_file, LOG_TAIL_BYTES).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => "(no log)".into(),
        Err(e) => format!("(unreadable: {e})"),
    }
}
