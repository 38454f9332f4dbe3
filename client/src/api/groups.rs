//! The consumer-group membership API: Kafka's classic group protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) over HTTP, and a group's
//! description. Member metadata and assignments are opaque to the
//! coordinator, as in Kafka; faultline's client puts JSON in them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One protocol a joining member supports, with its metadata (for a
/// consumer: what it subscribes to).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupProtocol {
    #[schema(min_length = 1, max_length = 255, example = "range")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 1048576, example = "{\"topics\":[\"events\"]}")]
    pub metadata: String,
}

/// `POST /v1/groups/{group}/join`. The answer waits until the rebalance
/// completes (every member rejoined, or the rebalance timeout passed).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinGroupRequest {
    /// Empty for a new member: the coordinator assigns an id.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub member_id: String,
    /// `consumer` for consumers; every member of a group uses the same.
    #[schema(min_length = 1, max_length = 255, example = "consumer")]
    pub protocol_type: String,
    /// In the member's order of preference; at least one.
    #[schema(min_items = 1, max_items = 16)]
    pub protocols: Vec<GroupProtocol>,
    /// `session.timeout.ms`: the member is removed when no heartbeat
    /// arrives for this long. Between `group.min.session.timeout.ms` and
    /// `group.max.session.timeout.ms`.
    #[schema(minimum = 1, example = 10000)]
    pub session_timeout_ms: u64,
    /// `max.poll.interval.ms`: how long the coordinator waits for this
    /// member to rejoin during a rebalance. At most
    /// `group.max.session.timeout.ms`.
    #[schema(minimum = 1, example = 30000)]
    pub rebalance_timeout_ms: u64,
}

/// One member as the leader sees it in [`JoinGroupResponse::members`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct JoinedMember {
    pub member_id: String,
    pub metadata: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct JoinGroupResponse {
    pub generation: i32,
    /// The protocol every member supports that the group chose.
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata, for the leader only (it computes the
    /// assignment); empty for the others.
    pub members: Vec<JoinedMember>,
}

/// One member's assignment, from the leader's [`SyncGroupRequest`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAssignment {
    #[schema(min_length = 1, max_length = 255)]
    pub member_id: String,
    #[schema(max_length = 1048576, example = "{\"partitions\":[0,1]}")]
    pub assignment: String,
}

/// `POST /v1/groups/{group}/sync`. The leader sends every member's
/// assignment; the others send none and wait for theirs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncGroupRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub member_id: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub generation: i32,
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub assignments: Vec<MemberAssignment>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct SyncGroupResponse {
    /// This member's assignment (empty when the leader gave it none).
    pub assignment: String,
}

/// `POST /v1/groups/{group}/heartbeat` and `/leave` (where the generation
/// is ignored).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub member_id: String,
    #[serde(default)]
    #[schema(minimum = -1, maximum = 2147483647)]
    pub generation: i32,
}

/// The answer of a heartbeat or a leave: the group's generation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct MemberResponse {
    pub generation: i32,
}

/// One member of a [`GroupDescription`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct DescribedMember {
    pub member_id: String,
    pub assignment: String,
}

/// `GET /v1/groups/{group}`: the group as its coordinator holds it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct GroupDescription {
    pub group: String,
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance` or `Stable`.
    pub state: String,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub members: Vec<DescribedMember>,
}
