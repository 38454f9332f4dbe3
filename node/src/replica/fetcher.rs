//! The follower side of replication: one loop per leader broker that
//! fetches every partition this node copies from it, truncates where the
//! leader reports divergence, appends what it receives, and takes the
//! leader's high watermark (R2.1, R2.2, R2.12).

use std::sync::Arc;
use std::time::Duration;

use faultline_client::api::ErrorCode;

use super::manager::ReplicaManager;
use super::protocol::{FETCH_PATH, FetchRequest, PartitionFetch, decode_response};

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
        let epochs: Vec<i32> = parts.iter().map(|p| p.fetch_position().current_leader_epoch).collect();
        let req = FetchRequest {
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
        };
        let sent = mgr
            .http
            .post(format!("{address}{FETCH_PATH}"))
            .json(&req)
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
        let Some((header, batches)) = body.and_then(|b| {
            decode_response(&b).map_err(|e| tracing::warn!(leader, error = %e, "bad fetch response")).ok()
        }) else {
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            backoff_ms = (backoff_ms * 2).min(BACKOFF_MAX_MS);
            continue;
        };
        let mut progress = false;
        for ((result, batches), (part, epoch)) in header.partitions.iter().zip(batches).zip(parts.iter().zip(epochs)) {
            debug_assert_eq!((&result.topic, result.partition), (&part.topic, part.index));
            match result.error {
                None => {}
                Some(ErrorCode::UnknownLeaderEpoch | ErrorCode::FencedLeaderEpoch | ErrorCode::NotLeaderOrFollower) => {
                    continue;
                }
                Some(other) => {
                    tracing::warn!(partition = %part.name(), error = %other, "follower fetch error");
                    continue;
                }
            }
            if let Some(d) = result.diverging() {
                if let Err(e) = part.truncate_on_divergence(epoch, d) {
                    tracing::error!(partition = %part.name(), error = %e, "truncation failed");
                }
                progress = true;
                continue;
            }
            if !batches.is_empty() {
                progress = true;
            }
            if let Err(e) = part.append_as_follower(epoch, &batches, result.high_watermark) {
                tracing::error!(partition = %part.name(), error = %e, "follower append failed");
            }
        }
        if progress {
            backoff_ms = BACKOFF_MIN_MS;
        } else if header.partitions.iter().any(|r| r.error.is_some()) {
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            backoff_ms = (backoff_ms * 2).min(BACKOFF_MAX_MS);
        }
    }
}
