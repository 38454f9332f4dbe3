//! The leader side of replication: answers a follower's multi-partition
//! fetch, long-polling until some partition has records, a divergence or
//! an error to report, and proposes ISR expansions for followers that
//! caught up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_client::api::ErrorCode;

use super::manager::ReplicaManager;
use super::protocol::{
    FETCH_PARTITION_BYTES_MAX, FETCH_RESPONSE_BYTES_MAX, FetchRequest, FetchResponseHeader, PartitionResult,
    encode_response,
};
use crate::broker::{FetchPosition, ReplicaFetch};

/// Longest a follower fetch may wait, whatever it asks.
const FOLLOWER_WAIT_MS_MAX: u64 = 5_000;

pub async fn serve_fetch(mgr: &Arc<ReplicaManager>, req: FetchRequest) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.min(FOLLOWER_WAIT_MS_MAX));
    let broker = &mgr.broker;
    // Bounded by the deadline: each round waits for an append or returns.
    loop {
        let notified = broker.data_arrived.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = Instant::now();
        let mut budget = FETCH_RESPONSE_BYTES_MAX;
        let mut results = Vec::with_capacity(req.partitions.len());
        for pf in &req.partitions {
            let pos = FetchPosition {
                fetch_offset: pf.fetch_offset,
                last_fetched_epoch: pf.last_fetched_epoch,
                current_leader_epoch: pf.current_leader_epoch,
            };
            let fetched = match broker.partition(&pf.topic, i64::from(pf.partition)) {
                Ok(p) => {
                    let f = p.serve_follower(
                        req.replica_id,
                        req.broker_epoch,
                        pos,
                        budget.min(FETCH_PARTITION_BYTES_MAX).min(pf.max_bytes),
                        now,
                    );
                    if let Some(candidate) = f.expand_candidate {
                        let mut isr = p.read_state(|st| st.isr().to_vec());
                        isr.push(candidate);
                        mgr.propose_isr(p.clone(), isr);
                    }
                    f
                }
                Err(_) => ReplicaFetch { error: Some(ErrorCode::NotLeaderOrFollower), ..ReplicaFetch::default() },
            };
            budget = budget.saturating_sub(fetched.batches.iter().map(Vec::len).sum());
            results.push(fetched);
        }
        let newsworthy = results.iter().any(|r| !r.batches.is_empty() || r.diverging.is_some() || r.error.is_some());
        if newsworthy || now >= deadline {
            return encode(&req, results);
        }
        let _ = tokio::time::timeout(deadline - now, notified).await;
    }
}

fn encode(req: &FetchRequest, results: Vec<ReplicaFetch>) -> Vec<u8> {
    let mut header = FetchResponseHeader { partitions: Vec::with_capacity(results.len()) };
    let mut all = Vec::new();
    for (pf, r) in req.partitions.iter().zip(results) {
        header.partitions.push(PartitionResult {
            topic: pf.topic.clone(),
            partition: pf.partition,
            error: r.error,
            diverging_epoch: r.diverging.map(|d| d.epoch),
            diverging_end_offset: r.diverging.map(|d| d.end_offset),
            high_watermark: r.high_watermark,
            log_start_offset: r.log_start_offset,
            log_end_offset: r.log_end_offset,
            batch_sizes: r.batches.iter().map(|b| b.len() as u32).collect(),
        });
        all.extend(r.batches);
    }
    encode_response(&header, &all)
}
