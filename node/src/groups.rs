//! Consumer-group offsets, stored durably in the internal
//! `__consumer_offsets` topic as Kafka does.
//!
//! A commit appends one batch (one record per committed partition) to the
//! offsets partition that owns the group, with acks=all semantics, and only
//! then updates the in-memory view. At start-up the view is rebuilt by
//! replaying that topic, so committed offsets survive restarts and, once
//! partitions are replicated, failover.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use faultline_client::api::{
    CreateTopicRequest, ErrorCode, OffsetCommit, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchResponse,
};
use serde::{Deserialize, Serialize};

use crate::broker::{Broker, OFFSETS_TOPIC, decode_records};
use crate::error::ApiError;
use crate::log::batch::{self, NewRecord, ProducerFields};

/// Kafka's `offsets.commit.timeout.ms`: how long a commit waits for the
/// offsets partition's replicas.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;
/// Bound on partitions in one commit request.
pub const COMMIT_ENTRIES_MAX: usize = 10_000;
/// Kafka has no limit on group ids; ours keeps keys and log lines bounded.
pub const GROUP_ID_LEN_MAX: usize = 255;
/// Bound on the free-form metadata string of a commit.
pub const COMMIT_METADATA_LEN_MAX: usize = 4096;

/// The value of one record in `__consumer_offsets`.
#[derive(Serialize, Deserialize)]
struct StoredCommit {
    group: String,
    topic: String,
    partition: u32,
    offset: i64,
    #[serde(default)]
    metadata: Option<String>,
}

type GroupOffsets = BTreeMap<(String, u32), OffsetCommit>;

#[derive(Default)]
pub struct Groups {
    /// Held across append-then-update, so the in-memory order of commits is
    /// the log's order and a replay after restart gives the same view.
    offsets: Mutex<HashMap<String, GroupOffsets>>,
}

fn offsets_partition_of(group: &str, partitions: usize) -> usize {
    // A stable hash: the mapping must not change across restarts.
    crc32c::crc32c(group.as_bytes()) as usize % partitions
}

fn validate_group(group: &str) -> Result<(), ApiError> {
    if group.is_empty() || group.len() > GROUP_ID_LEN_MAX || group.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidGroupId,
            format!("group id must be 1 to {GROUP_ID_LEN_MAX} bytes with no control characters"),
        ));
    }
    Ok(())
}

impl Groups {
    /// Rebuilds the view from `__consumer_offsets`, if it exists.
    pub fn load(broker: &Broker) -> Result<Groups, String> {
        let groups = Groups::default();
        let Some(topic) = broker.topic(OFFSETS_TOPIC) else { return Ok(groups) };
        let mut map = groups.offsets.lock().unwrap();
        for p in &topic.partitions {
            let (mut from, end) = p.with_state(|st| (st.log.log_start_offset(), st.high_watermark));
            // Bounded: every round advances `from` by at least one batch.
            while from < end {
                let batches = p.with_state(|st| st.log.read(from, end, 1 << 20)).map_err(|e| e.to_string())?;
                let records = decode_records(&batches, from, end, usize::MAX).map_err(|e| e.to_string())?;
                let Some(last) = records.last() else { break };
                from = last.offset + 1;
                for r in records {
                    let c: StoredCommit = serde_json::from_str(&r.value)
                        .map_err(|e| format!("{OFFSETS_TOPIC}/{} offset {}: {e}", p.index, r.offset))?;
                    let entry = OffsetCommit { topic: c.topic.clone(), partition: c.partition, offset: c.offset, metadata: c.metadata };
                    map.entry(c.group).or_default().insert((c.topic, c.partition), entry);
                }
            }
        }
        drop(map);
        Ok(groups)
    }

    pub async fn commit(&self, broker: &Broker, group: &str, req: &OffsetCommitRequest) -> Result<OffsetCommitResponse, ApiError> {
        validate_group(group)?;
        if req.offsets.is_empty() || req.offsets.len() > COMMIT_ENTRIES_MAX {
            return Err(ApiError::invalid(format!("offsets must hold 1 to {COMMIT_ENTRIES_MAX} entries")));
        }
        for (i, c) in req.offsets.iter().enumerate() {
            broker.partition(&c.topic, i64::from(c.partition))?;
            if c.offset < 0 {
                return Err(ApiError::invalid(format!("offsets[{i}].offset must be ≥ 0, got {}", c.offset)));
            }
            if c.metadata.as_ref().is_some_and(|m| m.len() > COMMIT_METADATA_LEN_MAX) {
                return Err(ApiError::invalid(format!("offsets[{i}].metadata is longer than {COMMIT_METADATA_LEN_MAX} bytes")));
            }
        }
        let topic = self.offsets_topic(broker)?;
        let partition = topic.partitions[offsets_partition_of(group, topic.partitions.len())].clone();
        let values: Vec<String> = req
            .offsets
            .iter()
            .map(|c| {
                let stored = StoredCommit { group: group.into(), topic: c.topic.clone(), partition: c.partition, offset: c.offset, metadata: c.metadata.clone() };
                serde_json::to_string(&stored).expect("a commit serializes")
            })
            .collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let records: Vec<NewRecord<'_>> =
            values.iter().map(|v| NewRecord { key: Some(group.as_bytes()), value: v.as_bytes(), timestamp_ms: now }).collect();
        let mut encoded = batch::encode(&records, ProducerFields::NONE);
        let info = {
            let mut map = self.offsets.lock().unwrap();
            let info = partition.append(&mut encoded, true)?;
            let entry = map.entry(group.to_string()).or_default();
            for c in &req.offsets {
                entry.insert((c.topic.clone(), c.partition), c.clone());
            }
            info
        };
        if !partition.wait_for_high_watermark(info.last_offset + 1, Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS)).await {
            return Err(ApiError::new(ErrorCode::RequestTimedOut, "the offset commit was not replicated in time"));
        }
        Ok(OffsetCommitResponse { committed: req.offsets.len() })
    }

    pub fn fetch(&self, group: &str) -> Result<OffsetFetchResponse, ApiError> {
        validate_group(group)?;
        let map = self.offsets.lock().unwrap();
        let offsets = map.get(group).map(|g| g.values().cloned().collect()).unwrap_or_default();
        Ok(OffsetFetchResponse { group: group.to_string(), offsets })
    }

    /// `__consumer_offsets`, created on first use as in Kafka.
    fn offsets_topic(&self, broker: &Broker) -> Result<std::sync::Arc<crate::broker::Topic>, ApiError> {
        if let Some(t) = broker.topic(OFFSETS_TOPIC) {
            return Ok(t);
        }
        let req = CreateTopicRequest {
            name: OFFSETS_TOPIC.into(),
            partitions: Some(broker.config.offsets_topic_partitions),
            replication_factor: Some(broker.config.offsets_topic_replication_factor.min(1)),
            configs: BTreeMap::new(),
        };
        match broker.create_topic_unchecked(&req) {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
            Err(e) => return Err(ApiError::new(ErrorCode::CoordinatorNotAvailable, format!("creating {OFFSETS_TOPIC}: {}", e.message))),
        }
        broker.topic(OFFSETS_TOPIC).ok_or_else(|| ApiError::new(ErrorCode::CoordinatorNotAvailable, "offsets topic vanished"))
    }
}
