//! Consumer groups: their offsets and their membership, stored durably in
//! the internal `__consumer_offsets` topic as Kafka does, by the group's
//! coordinator (the leader of the offsets partition that owns the group).
//!
//! A commit appends one batch (one record per committed partition) with
//! acks=all semantics, after the group's fencing rules let it through
//! (`classic.rs`), and updates the in-memory view. Membership (JoinGroup
//! and the rest, `membership.rs`) is in memory and stored at each completed
//! rebalance. A new leader of an offsets partition rebuilds both by
//! replaying its log (`stored.rs`), so offsets and generations survive
//! restarts and failover.

mod classic;
mod membership;
mod stored;

pub use membership::TICK_INTERVAL;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use std::time::Instant;

use faultline_client::api::{
    CreateTopicRequest, ErrorCode, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchResponse,
};
use parking_lot::Mutex;

use self::stored::{Loaded, StoredCommit};
use crate::broker::{Broker, OFFSETS_TOPIC, Partition, Role};
use crate::bugs::Bug;
use crate::error::ApiError;
use crate::log::batch::{self, NewRecord, ProducerFields};
use crate::log::partition_log::AppendInfo;

/// Kafka's `offsets.commit.timeout.ms`: how long a commit waits for the
/// offsets partition's replicas.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;
/// Bound on partitions in one commit request.
pub const COMMIT_ENTRIES_MAX: usize = 10_000;
/// Kafka has no limit on group ids; ours keeps keys and log lines bounded.
pub const GROUP_ID_LEN_MAX: usize = 255;
/// Bound on the free-form metadata string of a commit.
pub const COMMIT_METADATA_LEN_MAX: usize = 4096;

/// The groups one `__consumer_offsets` partition owns, as loaded by its
/// leader in `epoch`.
struct PartitionCache {
    epoch: i32,
    loaded: Loaded,
}

/// How long a request waits for a freshly created offsets topic to get a
/// local leader before answering `COORDINATOR_NOT_AVAILABLE`.
const COORDINATOR_WAIT_MS: u64 = 5_000;

#[derive(Default)]
pub struct Groups {
    /// Member ids handed out, part of the next one.
    members_made: std::sync::atomic::AtomicU64,
    /// Per offsets partition. Held across append-then-update, so the
    /// in-memory order of commits is the log's order and a reload by a new
    /// leader gives the same view.
    caches: Mutex<HashMap<u32, PartitionCache>>,
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
    pub async fn commit(
        &self,
        broker: &Broker,
        group: &str,
        req: &OffsetCommitRequest,
    ) -> Result<OffsetCommitResponse, ApiError> {
        validate_group(group)?;
        if req.member_id.len() > GROUP_ID_LEN_MAX {
            return Err(ApiError::invalid(format!("member_id must be at most {GROUP_ID_LEN_MAX} bytes")));
        }
        if req.offsets.is_empty() || req.offsets.len() > COMMIT_ENTRIES_MAX {
            return Err(ApiError::invalid(format!("offsets must hold 1 to {COMMIT_ENTRIES_MAX} entries")));
        }
        let image = broker.image();
        for (i, c) in req.offsets.iter().enumerate() {
            if image.topics.get(&c.topic).is_none_or(|t| c.partition as usize >= t.partitions.len()) {
                return Err(ApiError::unknown_partition(&c.topic, c.partition));
            }
            if c.offset < 0 {
                return Err(ApiError::invalid(format!("offsets[{i}].offset must be ≥ 0, got {}", c.offset)));
            }
            if c.metadata.as_ref().is_some_and(|m| m.len() > COMMIT_METADATA_LEN_MAX) {
                return Err(ApiError::invalid(format!(
                    "offsets[{i}].metadata is longer than {COMMIT_METADATA_LEN_MAX} bytes"
                )));
            }
        }
        let partition = self.coordinator(broker, group).await?;
        let values: Vec<String> = req
            .offsets
            .iter()
            .map(|c| {
                let stored = StoredCommit {
                    group: group.into(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                    offset: c.offset,
                    metadata: c.metadata.clone(),
                };
                serde_json::to_string(&stored).expect("a commit serializes")
            })
            .collect();
        // Encoded before the lock: a commit may hold 10,000 records.
        let mut encoded = encode_values(group, &values);
        let (info, epoch) = {
            let mut caches = self.caches.lock();
            let cache = Self::loaded(&mut caches, &partition)?;
            if !broker.config.bugs.on(Bug::AcceptStaleGenerationCommit) || req.generation < 0 {
                fence(&mut cache.loaded, group, req)?;
            }
            let (info, epoch) = append_encoded(&partition, &mut encoded)?;
            let entry = cache.loaded.offsets.entry(group.to_string()).or_default();
            for c in &req.offsets {
                entry.insert((c.topic.clone(), c.partition), c.clone());
            }
            (info, epoch)
        };
        broker.data_arrived.notify_waiters();
        let committed = partition
            .wait_for_commit(info.last_offset + 1, epoch, Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS))
            .await
            .map_err(as_coordinator_error)?;
        if !committed {
            return Err(ApiError::new(
                ErrorCode::RequestTimedOut,
                "the offset commit was not replicated in time; it may or may not have taken effect",
            ));
        }
        Ok(OffsetCommitResponse { committed: req.offsets.len() })
    }

    pub async fn fetch(&self, broker: &Broker, group: &str) -> Result<OffsetFetchResponse, ApiError> {
        validate_group(group)?;
        if !broker.image().topics.contains_key(OFFSETS_TOPIC) {
            return Ok(OffsetFetchResponse { group: group.to_string(), offsets: Vec::new() });
        }
        let partition = self.coordinator(broker, group).await?;
        let mut caches = self.caches.lock();
        let cache = Self::loaded(&mut caches, &partition)?;
        let offsets = cache.loaded.offsets.get(group).map(|g| g.values().cloned().collect()).unwrap_or_default();
        Ok(OffsetFetchResponse { group: group.to_string(), offsets })
    }

    /// The cache of `p`, reloaded from its log when `p`'s leader epoch
    /// changed since it was loaded (a new coordinator takes over).
    fn loaded<'a>(
        caches: &'a mut HashMap<u32, PartitionCache>,
        p: &Partition,
    ) -> Result<&'a mut PartitionCache, ApiError> {
        let epoch = p.view().leader_epoch;
        if caches.get(&p.index).is_none_or(|c| c.epoch != epoch) {
            let loaded = stored::load(p, Instant::now())?;
            caches.insert(p.index, PartitionCache { epoch, loaded });
        }
        Ok(caches.get_mut(&p.index).expect("inserted above"))
    }

    /// The id of the group's coordinator: the leader of its offsets
    /// partition in the metadata (Kafka's FindCoordinator). Creates
    /// `__consumer_offsets` on first use and waits, bounded, for a leader.
    pub async fn coordinator_id(&self, broker: &Broker, group: &str) -> Result<i32, ApiError> {
        validate_group(group)?;
        ensure_offsets_topic(broker).await?;
        let deadline = std::time::Instant::now() + Duration::from_millis(COORDINATOR_WAIT_MS);
        // Bounded by the deadline: a just-created partition needs an election.
        loop {
            let image = broker.image();
            let partitions = image.topics.get(OFFSETS_TOPIC).map(|t| &t.partitions);
            let leader = partitions.and_then(|ps| ps.get(offsets_partition_of(group, ps.len()))?.leader);
            match leader {
                Some(id) => return Ok(id),
                None if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                None => {
                    return Err(ApiError::new(
                        ErrorCode::CoordinatorNotAvailable,
                        "the group's offsets partition has no leader",
                    ));
                }
            }
        }
    }

    /// The local leader of the group's offsets partition: this node must be
    /// the group's coordinator. Creates `__consumer_offsets` on first use.
    async fn coordinator(&self, broker: &Broker, group: &str) -> Result<std::sync::Arc<Partition>, ApiError> {
        ensure_offsets_topic(broker).await?;
        let n = broker.image().topics.get(OFFSETS_TOPIC).map_or(1, |t| t.partitions.len());
        let index = offsets_partition_of(group, n) as i64;
        let deadline = std::time::Instant::now() + Duration::from_millis(COORDINATOR_WAIT_MS);
        // Bounded by the deadline: a just-created partition needs the
        // metadata to reach this node's replica manager.
        loop {
            let leads = broker.partition(OFFSETS_TOPIC, index).map(|p| (p.view().is_leader, p));
            match leads {
                Ok((true, p)) => return Ok(p),
                Err(e) if e.leader_id.is_some_and(|l| l != broker.config.node_id) => {
                    return Err(as_coordinator_error(e));
                }
                Ok((false, p)) if p.read_state(|st| matches!(st.role(), Role::Follower { .. })) => {
                    return Err(as_coordinator_error(p.read_state(|st| match st.role() {
                        Role::Follower { leader, leader_address, .. } => {
                            let mut e = ApiError::new(ErrorCode::NotCoordinator, "");
                            e.leader_id = Some(*leader);
                            e.leader_address = Some(leader_address.clone());
                            e
                        }
                        _ => unreachable!("matched above"),
                    })));
                }
                _ if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::CoordinatorNotAvailable,
                        format!("{OFFSETS_TOPIC}/{index} has no leader on this node yet"),
                    ));
                }
            }
        }
    }
}

/// Kafka's fencing of a commit (see `ClassicGroup::validate_commit`); a
/// group this coordinator never saw is empty.
fn fence(loaded: &mut Loaded, group: &str, req: &OffsetCommitRequest) -> Result<(), ApiError> {
    let now = Instant::now();
    match loaded.groups.get_mut(group) {
        Some(g) => g.validate_commit(&req.member_id, req.generation, now),
        None => classic::ClassicGroup::new(group).validate_commit(&req.member_id, req.generation, now),
    }
}

/// One batch of JSON values keyed by `group`, encoded for the group's
/// offsets partition.
fn encode_values(group: &str, values: &[String]) -> Vec<u8> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let records: Vec<NewRecord<'_>> = values
        .iter()
        .map(|v| NewRecord { key: Some(group.as_bytes()), value: v.as_bytes(), timestamp_ms: now })
        .collect();
    batch::encode(&records, ProducerFields::NONE)
}

/// Appends an encoded batch to the offsets partition; called under the
/// caches' lock, so the log's order is the order of the changes.
fn append_encoded(p: &Partition, encoded: &mut [u8]) -> Result<(AppendInfo, i32), ApiError> {
    p.append(encoded, true).map_err(as_coordinator_error)
}

/// Creates `__consumer_offsets` unless it exists, as Kafka does on a
/// group's first use.
async fn ensure_offsets_topic(broker: &Broker) -> Result<(), ApiError> {
    if broker.image().topics.contains_key(OFFSETS_TOPIC) {
        return Ok(());
    }
    let live = broker.image().brokers.values().filter(|b| !b.fenced).count().max(1) as i64;
    let req = CreateTopicRequest {
        name: OFFSETS_TOPIC.into(),
        partitions: Some(broker.config.offsets_topic_partitions),
        replication_factor: Some(broker.config.offsets_topic_replication_factor.min(live)),
        configs: BTreeMap::new(),
    };
    match broker.create_topic_unchecked(&req).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == ErrorCode::TopicAlreadyExists => Ok(()),
        Err(e) => {
            Err(ApiError::new(ErrorCode::CoordinatorNotAvailable, format!("creating {OFFSETS_TOPIC}: {}", e.message)))
        }
    }
}

/// A commit or fetch at a node that does not lead the group's offsets
/// partition is `NOT_COORDINATOR`, with the coordinator's address.
fn as_coordinator_error(e: ApiError) -> ApiError {
    if matches!(e.code, ErrorCode::NotLeaderOrFollower | ErrorCode::NotCoordinator) {
        ApiError {
            code: ErrorCode::NotCoordinator,
            message: format!("this node is not the group's coordinator; {}", e.message),
            ..e
        }
    } else {
        e
    }
}
