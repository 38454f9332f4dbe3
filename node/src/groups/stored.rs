//! The records of `__consumer_offsets`, as JSON values keyed by group id:
//! an offset commit, or a group's membership (generation, protocol, leader,
//! members and their assignments), written when a rebalance completes or
//! the group empties, as Kafka's `GroupMetadata` record. Replaying an
//! offsets partition gives each group's last committed offsets and last
//! stored membership, which is what a new coordinator loads.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use faultline_client::api::{ErrorCode, GroupProtocol, OffsetCommit};
use serde::{Deserialize, Serialize};

use super::classic::ClassicGroup;
use crate::broker::{OFFSETS_TOPIC, Partition, decode_records};
use crate::error::ApiError;

/// An offset commit of one partition.
#[derive(Serialize, Deserialize)]
pub struct StoredCommit {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
    #[serde(default)]
    pub metadata: Option<String>,
}

/// A group's membership record.
#[derive(Serialize, Deserialize)]
pub struct StoredGroup {
    pub group: String,
    pub membership: StoredMembership,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredMembership {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub members: Vec<StoredMember>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub protocols: Vec<GroupProtocol>,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub assignment: String,
}

/// One record: the membership form is tried first (it alone has
/// `membership`), so records written before groups existed still read.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Group(StoredGroup),
    Commit(StoredCommit),
}

pub type GroupOffsets = BTreeMap<(String, u32), OffsetCommit>;

/// What one offsets partition holds for its groups.
#[derive(Default)]
pub struct Loaded {
    pub offsets: HashMap<String, GroupOffsets>,
    pub groups: HashMap<String, ClassicGroup>,
}

/// Replays one offsets partition's log.
pub fn load(p: &Partition, now: Instant) -> Result<Loaded, ApiError> {
    let mut offsets: HashMap<String, GroupOffsets> = HashMap::new();
    let mut memberships: HashMap<String, StoredMembership> = HashMap::new();
    let (mut from, end) = p.read_state(|st| (st.log().log_start_offset(), st.log().log_end_offset()));
    let storage = |e: String| {
        ApiError::new(ErrorCode::CoordinatorNotAvailable, format!("loading {OFFSETS_TOPIC}/{}: {e}", p.index))
    };
    // Bounded: every round advances `from` by at least one record.
    while from < end {
        let batches = p.read_state(|st| st.log().read(from, end, 1 << 20)).map_err(|e| storage(e.to_string()))?;
        let records = decode_records(&batches, from, end, usize::MAX).map_err(|e| storage(e.to_string()))?;
        let Some(last) = records.last() else { break };
        from = last.offset + 1;
        for r in records {
            match serde_json::from_str(&r.value).map_err(|e| storage(format!("offset {}: {e}", r.offset)))? {
                Stored::Commit(c) => {
                    let entry = OffsetCommit {
                        topic: c.topic.clone(),
                        partition: c.partition,
                        offset: c.offset,
                        metadata: c.metadata,
                    };
                    offsets.entry(c.group).or_default().insert((c.topic, c.partition), entry);
                }
                Stored::Group(g) => {
                    memberships.insert(g.group, g.membership);
                }
            }
        }
    }
    let groups = memberships.into_iter().map(|(id, m)| (id.clone(), ClassicGroup::from_stored(&id, m, now))).collect();
    Ok(Loaded { offsets, groups })
}
