//! The final phase's waits and reads, against the cluster: every partition
//! settled (a leader, a full ISR, HW = LEO), consumers caught up with the
//! end offsets, and every replica's log dumped for `replicas.json`. Each
//! wait is bounded; not settling or not catching up is logged, not an
//! error, because the checker judges what happened.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_checker::Replicas;
use faultline_client::Client;
use faultline_client::api::{ErrorCode, TopicDescription};
use tokio::time::Instant;

use super::plan::{
    CONSUMER_CATCH_UP_TIMEOUT, GROUP, METADATA_POLL_INTERVAL, Plan, REQUEST_TIMEOUT_MS, SETTLE_TIMEOUT, TOPIC,
};
use crate::cluster::ClusterState;
use crate::store::RunLog;

fn client(url: &str) -> Client {
    Client::with_timeout(url.to_string(), Duration::from_millis(REQUEST_TIMEOUT_MS))
}

/// Step 3: every partition has a leader, a full ISR and HW = LEO (by its
/// leader's own description), bounded by [`SETTLE_TIMEOUT`]. Returns each
/// partition's end offset (the leader's HW) as the drain's target; when the
/// bound passes, logs what is unsettled and returns the best known targets.
pub async fn wait_settled(plan: &Plan, log: &RunLog, state: &ClusterState) -> Vec<(u32, i64)> {
    let nodes: Vec<(i32, Client)> = state.nodes.iter().map(|n| (n.id as i32, client(&n.url))).collect();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let partitions = plan.settings.topic_partitions;
    let mut best: BTreeMap<u32, i64> = BTreeMap::new();
    // Bounded by SETTLE_TIMEOUT.
    loop {
        let mut views = BTreeMap::new();
        for (id, c) in &nodes {
            if let Ok(d) = c.describe_topic(TOPIC).await {
                views.insert(*id, d);
            }
        }
        let unsettled: Vec<String> = (0..partitions).filter_map(|p| unsettled(&views, p, &mut best)).collect();
        if unsettled.is_empty() {
            log.info("final phase: every partition settled");
            return best.into_iter().collect();
        }
        if Instant::now() > deadline {
            log.warn(format!("final phase: not settled within {SETTLE_TIMEOUT:?}: {}", unsettled.join("; ")));
            return (0..partitions).map(|p| (p, best.get(&p).copied().unwrap_or(0))).collect();
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL).await;
    }
}

/// Why partition `p` is not settled in these views, if it is not; notes
/// its leader's HW in `best`.
fn unsettled(views: &BTreeMap<i32, TopicDescription>, p: u32, best: &mut BTreeMap<u32, i64>) -> Option<String> {
    // The leader according to any node, then the leader's own view.
    let leader = views.values().filter_map(|d| d.partitions.iter().find(|x| x.partition == p)).find_map(|x| x.leader);
    let own = leader.and_then(|l| views.get(&l)).and_then(|d| d.partitions.iter().find(|x| x.partition == p));
    match own {
        Some(x) if x.leader == leader => {
            best.insert(p, x.high_watermark);
            (x.isr.len() < x.replicas.len() || x.high_watermark != x.log_end_offset).then(|| {
                format!(
                    "{TOPIC}/{p}: isr {:?} of {:?}, hw {} leo {}",
                    x.isr, x.replicas, x.high_watermark, x.log_end_offset
                )
            })
        }
        _ => Some(format!("{TOPIC}/{p}: no leader")),
    }
}

/// Step 3b: lets the consumers read, process and commit up to the settled
/// end offsets before they are stopped, so that a fault-free run ends with
/// everything processed. Bounded by one auto-commit interval (at most
/// [`CONSUMER_CATCH_UP_TIMEOUT`]) plus [`CONSUMER_CATCH_UP_TIMEOUT`].
pub async fn wait_consumers_caught_up(plan: &Plan, log: &RunLog, urls: &[String], targets: &[(u32, i64)]) {
    let a = &plan.settings;
    if a.consumers == 0 {
        return;
    }
    // An auto-commit interval longer than the bound would only be waited
    // out in vain: such consumers commit when they close.
    let deadline = Instant::now()
        + CONSUMER_CATCH_UP_TIMEOUT
        + Duration::from_millis(plan.consumer.auto_commit_interval_ms).min(CONSUMER_CATCH_UP_TIMEOUT);
    let clients: Vec<Client> = urls.iter().map(|u| client(u)).collect();
    let mut last = String::new();
    // Bounded by the deadline.
    for round in 0usize.. {
        if let Ok(r) = clients[round % clients.len()].committed_offsets(GROUP).await {
            let at = |p: u32| r.offsets.iter().find(|o| o.topic == TOPIC && o.partition == p).map_or(0, |o| o.offset);
            let behind: Vec<String> = targets
                .iter()
                .filter(|(p, end)| at(*p) < *end)
                .map(|(p, end)| format!("{TOPIC}/{p} at {} of {end}", at(*p)))
                .collect();
            if behind.is_empty() {
                log.info("final phase: the consumers committed up to every end offset");
                return;
            }
            last = behind.join(", ");
        }
        if Instant::now() > deadline {
            log.warn(format!("final phase: the consumers did not catch up within the bound: {last}"));
            return;
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL * 2).await;
    }
}

/// Step 6: every replica's log, as `replicas.json` wants it.
pub async fn dump_replicas(plan: &Plan, log: &RunLog, state: &ClusterState) -> Replicas {
    let mut out = Replicas::new();
    for node in &state.nodes {
        let client = client(&node.url);
        for p in 0..plan.settings.topic_partitions {
            match client.replica_log(TOPIC, p).await {
                Ok(dump) => {
                    if dump.truncated {
                        log.warn(format!(
                            "replica dump of {TOPIC}/{p} on {} is truncated at its record bound",
                            node.name
                        ));
                    }
                    let records = dump
                        .records
                        .iter()
                        .map(|(o, e, v)| {
                            ((*o).max(0) as u64, (*e).max(0) as u64, faultline_checker::op::RecordValue::from_text(v))
                        })
                        .collect();
                    let replica = faultline_checker::replicas::ReplicaLog {
                        log_end_offset: dump.log_end_offset.max(0) as u64,
                        records,
                    };
                    out.entry(format!("{TOPIC}/{p}")).or_default().insert(node.name.clone(), replica);
                }
                Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {}
                Err(e) => log.warn(format!("replica dump of {TOPIC}/{p} on {} failed: {e}", node.name)),
            }
        }
    }
    out
}

/// Each node's `/metrics` at the end of the run, into
/// `nodes/<node>/metrics.txt`: the counters an operator would have looked
/// at (a node that does not answer is logged, not an error).
pub async fn save_metrics(log: &RunLog, state: &ClusterState, run_dir: &std::path::Path) -> anyhow::Result<()> {
    for node in &state.nodes {
        match client(&node.url).metrics().await {
            Ok(text) => {
                let dir = run_dir.join("nodes").join(&node.name);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("metrics.txt"), text)?;
            }
            Err(e) => log.warn(format!("metrics of {} not saved: {e}", node.name)),
        }
    }
    Ok(())
}
