//! The follower side of replication: one loop per leader broker that
//! fetches every partition this node copies from it, truncates where the
//! leader reports divergence, appends what it receives, and takes the
//! leader's high watermark (R2.1, R2.2, R2.12).

use std::sync::Arc;
use std::time::Duration;

use faultline_client::api::ErrorCode;

use super::manager::ReplicaManager;
use super::protocol::{
    Batches, FETCH_PATH, FetchRequest, FetchResponseHeader, PartitionFetch, PartitionResult, decode_response,
};
use crate::broker::Partition;

/// Pause after a failed or fruitless round, so an unreachable leader or a
/// persistent error does not spin.
const BACKOFF_MIN_MS: u64 = 20;
const BACKOFF_MAX_MS: u64 = 500;

pub async fn run(mgr: Arc<ReplicaManager>, leader: i32) {
    let mut backoff_ms = BACKOFF_MIN_MS;
    let wait_ms = mgr.broker.config.replica_fetch_wait_max_ms;
    // Bounded by shutdown and by "nothing follows this leader any more".
    while !mgr.stopped() {
        if mgr.fetchers_paused.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(BACKOFF_MIN_MS)).await;
            continue;
        }
        let parts = mgr.followed_from(leader);
        if parts.is_empty() {
            return;
        }
        let address = parts[0].read_state(|st| st.leader_address().unwrap_or_default().to_string());
        // Captured before the request goes out: an answer is applied only
        // under the epoch it was asked for, so a leader change in flight
        // makes the partition ignore a stale answer.
        let epochs: Vec<i32> = parts.iter().map(|p| p.fetch_position().current_leader_epoch).collect();
        let req = fetch_request(&mgr, &parts, wait_ms);
        let Some((header, batches)) = send_fetch(&mgr, leader, &address, &req, wait_ms).await else {
            back_off(&mut backoff_ms).await;
            continue;
        };
        let progress = apply_response(&header, batches, &parts, epochs);
        if progress {
            backoff_ms = BACKOFF_MIN_MS;
        } else if header.partitions.iter().any(|r| r.error.is_some()) {
            back_off(&mut backoff_ms).await;
        }
    }
}

/// One backoff step, shared by a failed round and a round that only got
/// errors, so both slow down alike.
async fn back_off(backoff_ms: &mut u64) {
    tokio::time::sleep(Duration::from_millis(*backoff_ms)).await;
    *backoff_ms = (*backoff_ms * 2).min(BACKOFF_MAX_MS);
}

/// One request for every partition followed from this leader, each asking
/// from its own fetch position.
fn fetch_request(mgr: &ReplicaManager, parts: &[Arc<Partition>], wait_ms: u64) -> FetchRequest {
    FetchRequest {
        replica_id: mgr.broker.config.node_id,
        broker_epoch: mgr.broker.control().broker_epoch().unwrap_or(-1),
        max_wait_ms: wait_ms,
        partitions: parts
            .iter()
            .map(|p| {
                let pos = p.fetch_position();
                PartitionFetch {
                    topic: p.topic.clone(),
                    partition: p.index,
                    fetch_offset: pos.fetch_offset,
                    last_fetched_epoch: pos.last_fetched_epoch,
                    current_leader_epoch: pos.current_leader_epoch,
                    max_bytes: mgr.broker.config.replica_fetch_max_bytes,
                }
            })
            .collect(),
    }
}

/// Sends one fetch and decodes the answer. `None` covers every way the round
/// can fail (unreachable, refused, undecodable); the caller treats them all
/// alike by backing off, so they are only logged here.
async fn send_fetch(
    mgr: &ReplicaManager,
    leader: i32,
    address: &str,
    req: &FetchRequest,
    wait_ms: u64,
) -> Option<(FetchResponseHeader, Vec<Batches>)> {
    // The leader may hold the request for up to `wait_ms`; the extra slack
    // keeps a long poll from being mistaken for a dead leader.
    let sent = mgr
        .http
        .post(format!("{address}{FETCH_PATH}"))
        .json(req)
        .timeout(Duration::from_millis(wait_ms + 2_000))
        .send()
        .await;
    let body = match sent {
        Ok(r) if r.status().is_success() => r.bytes().await.ok().map(|b| b.to_vec()),
        Ok(r) => {
            tracing::debug!(leader, status = %r.status(), "fetch refused");
            None
        }
        Err(e) => {
            tracing::debug!(leader, error = %e, "fetch failed");
            None
        }
    };
    body.and_then(|b| decode_response(&b).map_err(|e| tracing::warn!(leader, error = %e, "bad fetch response")).ok())
}

/// Applies one answer partition by partition, in request order. Returns
/// whether any partition moved (truncated or received data), which is what
/// resets the backoff.
fn apply_response(
    header: &FetchResponseHeader,
    batches: Vec<Batches>,
    parts: &[Arc<Partition>],
    epochs: Vec<i32>,
) -> bool {
    let mut progress = false;
    for ((result, batches), (part, epoch)) in header.partitions.iter().zip(batches).zip(parts.iter().zip(epochs)) {
        debug_assert_eq!((&result.topic, result.partition), (&part.topic, part.index));
        if apply_partition(result, batches, part, epoch) {
            progress = true;
        }
    }
    progress
}

/// Applies one partition's share of an answer; returns whether it moved.
fn apply_partition(result: &PartitionResult, batches: Batches, part: &Partition, epoch: i32) -> bool {
    match result.error {
        None => {}
        // Expected while leadership moves, so not worth a warning.
        Some(ErrorCode::UnknownLeaderEpoch | ErrorCode::FencedLeaderEpoch | ErrorCode::NotLeaderOrFollower) => {
            return false;
        }
        Some(other) => {
            tracing::warn!(partition = %part.name(), error = %other, "follower fetch error");
            return false;
        }
    }
    if let Some(d) = result.diverging() {
        if let Err(e) = part.truncate_on_divergence(epoch, d) {
            tracing::error!(partition = %part.name(), error = %e, "truncation failed");
        }
        return true;
    }
    let progress = !batches.is_empty();
    if let Err(e) = part.append_as_follower(epoch, &batches, result.high_watermark) {
        tracing::error!(partition = %part.name(), error = %e, "follower append failed");
    }
    progress
}
