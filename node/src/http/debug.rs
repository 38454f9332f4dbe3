//! Debug endpoints for the harness: a replica's whole log, and a
//! partition's election history.

use axum::Json;
use axum::extract::State;
use faultline_client::api::{ErrorCode, HistoryEntry, PartitionHistory, ReplicaLogDump, paths};

use super::AppState;
use super::extract::PartitionPath;
use crate::broker::decode_records;
use crate::error::ApiError;

/// Bound on records in one dump, so a debug call cannot exhaust memory.
pub const DUMP_RECORDS_MAX: usize = 5_000_000;

/// This node's replica of a partition, record by record: [offset, leader_epoch, value].
#[utoipa::path(get, path = paths::DEBUG_REPLICA_LOG, operation_id = "debugReplicaLog", tag = "debug",
    params(PartitionPath),
    responses((status = 200, description = "the replica's records", body = ReplicaLogDump)),
)]
pub async fn replica_log(State(state): State<AppState>, path: PartitionPath) -> Result<Json<ReplicaLogDump>, ApiError> {
    let p = state.broker.partition(&path.topic, path.partition)?;
    let broker = state.broker.clone();
    tokio::task::spawn_blocking(move || {
        let (start, end, hw, epoch, role) = p.read_state(|st| {
            let log = st.log();
            (log.log_start_offset(), log.log_end_offset(), st.high_watermark(), st.leader_epoch(), st.role().name())
        });
        let mut records = Vec::new();
        let mut from = start;
        // Bounded: each round advances `from`, and the record bound ends it.
        while from < end && records.len() < DUMP_RECORDS_MAX {
            let batches = p
                .read_state(|st| st.log().read(from, end, 4 << 20))
                .map_err(|e| ApiError::new(ErrorCode::KafkaStorageError, e.to_string()))?;
            let mut epochs = Vec::with_capacity(batches.len());
            for b in &batches {
                let h = crate::log::batch::parse_header(b)
                    .map_err(|e| ApiError::new(ErrorCode::KafkaStorageError, e.to_string()))?;
                epochs.push((h.base_offset, h.last_offset(), h.leader_epoch));
            }
            let decoded = decode_records(&batches, from, end, DUMP_RECORDS_MAX - records.len())
                .map_err(|e| ApiError::new(ErrorCode::KafkaStorageError, e.to_string()))?;
            let Some(last) = decoded.last() else { break };
            from = last.offset + 1;
            for r in decoded {
                let epoch = epochs.iter().find(|(b, l, _)| *b <= r.offset && r.offset <= *l).map_or(-1, |e| e.2);
                records.push((r.offset, epoch, r.value));
            }
        }
        Ok(Json(ReplicaLogDump {
            topic: p.topic.clone(),
            partition: p.index,
            node_id: broker.config.node_id,
            role: role.into(),
            leader_epoch: epoch,
            log_start_offset: start,
            log_end_offset: end,
            high_watermark: hw,
            truncated: from < end,
            records,
        }))
    })
    .await
    .map_err(|e| ApiError::new(ErrorCode::UnknownServerError, e.to_string()))?
}

/// Every leader and ISR change of a partition: epoch, leader, ISR, clean or unclean.
#[utoipa::path(get, path = paths::DEBUG_HISTORY, operation_id = "debugHistory", tag = "debug",
    params(PartitionPath),
    responses((status = 200, description = "the partition's changes, oldest first", body = PartitionHistory)),
)]
pub async fn history(State(state): State<AppState>, path: PartitionPath) -> Result<Json<PartitionHistory>, ApiError> {
    let image = state.broker.image();
    let p = image
        .topics
        .get(&path.topic)
        .and_then(|t| usize::try_from(path.partition).ok().and_then(|i| t.partitions.get(i)))
        .ok_or_else(|| ApiError::unknown_partition(&path.topic, path.partition))?;
    let entries = p
        .history
        .iter()
        .map(|h| HistoryEntry {
            metadata_offset: h.offset,
            kind: serde_json::to_value(h.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            leader: h.leader,
            leader_epoch: h.leader_epoch,
            isr: h.isr.clone(),
        })
        .collect();
    Ok(Json(PartitionHistory {
        topic: path.topic,
        partition: path.partition as u32,
        dropped: p.history_dropped,
        entries,
    }))
}
