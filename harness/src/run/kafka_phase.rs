//! The run's steps against a cluster that speaks only Kafka's protocol
//! (`--system`): creating the topic, waiting in the final phase until every
//! partition has a leader and a full ISR, and until the consumers committed
//! up to the end offsets. The same steps as against faultline-node's HTTP
//! API (`workload.rs`, `final_phase.rs`), asked with Metadata, ListOffsets
//! and OffsetFetch; each wait is bounded. Such a cluster shows neither its
//! log end offsets nor its replicas' logs, so "settled" here is a leader and
//! a full ISR, and `replica-divergence` is not checked.

use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

use super::plan::{CONSUMER_CATCH_UP_TIMEOUT, METADATA_POLL_INTERVAL, Plan, SETTLE_TIMEOUT, TOPIC_READY_TIMEOUT};
use crate::store::RunLog;
use crate::system::kafka_admin::{KafkaAdmin, MetadataView};

/// Creates the run's topic and waits until every partition has a leader.
pub async fn create_topic(plan: &Plan, log: &RunLog, admin: &KafkaAdmin) -> anyhow::Result<()> {
    let a = &plan.settings;
    let configs = [
        ("min.insync.replicas", a.min_insync_replicas.to_string()),
        ("unclean.leader.election.enable", a.unclean_leader_election.to_string()),
    ];
    let topic = &plan.topic;
    admin
        .create_topic(topic, a.topic_partitions, a.replication_factor, &configs)
        .await
        .map_err(|e| anyhow::anyhow!("creating topic {topic}: {e}"))?;
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    // Bounded by the deadline.
    loop {
        if let Ok(m) = admin.metadata(topic).await
            && m.partitions.len() == a.topic_partitions as usize
            && m.partitions.iter().all(|p| p.leader.is_some())
        {
            log.info(format!(
                "topic {topic}: {} partitions, RF {}, every partition has a leader",
                a.topic_partitions, a.replication_factor
            ));
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no leader for every partition within {TOPIC_READY_TIMEOUT:?}");
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL).await;
    }
}

/// Why the partitions are not settled (a leader, ISR = replicas), if they are not.
fn unsettled(m: &MetadataView, topic: &str, partitions: u32) -> Option<String> {
    let why: Vec<String> = (0..partitions)
        .filter_map(|p| match m.partitions.iter().find(|x| x.partition == p) {
            Some(x) if x.leader.is_some() && x.isr.len() >= x.replicas.len() => None,
            Some(x) => Some(format!("{topic}/{p}: leader {:?}, isr {:?} of {:?}", x.leader, x.isr, x.replicas)),
            None => Some(format!("{topic}/{p}: unknown")),
        })
        .collect();
    (!why.is_empty()).then(|| why.join("; "))
}

/// Every partition with a leader and a full ISR (bounded by
/// [`SETTLE_TIMEOUT`]), then each partition's high watermark as the drain's
/// target; what is unsettled at the bound is logged.
pub async fn wait_settled(plan: &Plan, log: &RunLog, admin: &KafkaAdmin) -> Vec<(u32, i64)> {
    let (topic, partitions) = (&plan.topic, plan.settings.topic_partitions);
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut view = MetadataView::default();
    // Bounded by SETTLE_TIMEOUT.
    loop {
        match admin.metadata(topic).await {
            Ok(m) => {
                let why = unsettled(&m, topic, partitions);
                view = m;
                match why {
                    None => {
                        log.info("final phase: every partition settled");
                        break;
                    }
                    Some(w) if Instant::now() > deadline => {
                        log.warn(format!("final phase: not settled within {SETTLE_TIMEOUT:?}: {w}"));
                        break;
                    }
                    Some(_) => {}
                }
            }
            Err(e) if Instant::now() > deadline => {
                log.warn(format!("final phase: no metadata within {SETTLE_TIMEOUT:?}: {e}"));
                break;
            }
            Err(_) => {}
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL).await;
    }
    let hws = admin.high_watermarks(&view, topic).await;
    (0..partitions).map(|p| (p, hws.iter().find(|(x, _)| *x == p).map_or(0, |(_, o)| *o))).collect()
}

/// Lets the consumers commit up to the end offsets before they are
/// stopped, bounded as on faultline-node.
pub async fn wait_consumers_caught_up(plan: &Plan, log: &RunLog, admin: &KafkaAdmin, targets: &[(u32, i64)]) {
    if plan.settings.consumers == 0 {
        return;
    }
    let deadline = Instant::now()
        + CONSUMER_CATCH_UP_TIMEOUT
        + Duration::from_millis(plan.consumer.auto_commit_interval_ms).min(CONSUMER_CATCH_UP_TIMEOUT);
    // Bounded by the deadline.
    loop {
        let last = match admin.committed(&plan.group, &plan.topic, plan.settings.topic_partitions).await {
            Ok(c) => {
                let at = |p: u32| c.iter().find(|(x, _)| *x == p).map_or(0, |(_, o)| *o);
                let behind: Vec<String> = targets
                    .iter()
                    .filter(|(p, end)| at(*p) < *end)
                    .map(|(p, end)| format!("{p} at {} of {end}", at(*p)))
                    .collect();
                if behind.is_empty() {
                    log.info("final phase: the consumers committed up to every end offset");
                    return;
                }
                behind.join(", ")
            }
            Err(e) => e,
        };
        if Instant::now() > deadline {
            log.warn(format!("final phase: the consumers did not catch up within the bound: {last}"));
            return;
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL * 2).await;
    }
}
