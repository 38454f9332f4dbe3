//! The broker's HTTP API: every request and response body, shared by the
//! node and the client so that the wire format has one definition.
//!
//! All bodies are JSON. Record keys and values are UTF-8 strings. Errors are
//! always an [`ErrorBody`] whose `error` is Kafka's error name. Paths are
//! listed in [`paths`]; the node's `GET /openapi.json` documents them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod groups;
mod schema;

pub use groups::*;

/// The URL paths of the API, so that node routes, the client and the
/// OpenAPI document cannot drift apart.
pub mod paths {
    pub const HEALTH: &str = "/health";
    pub const METRICS: &str = "/metrics";
    pub const OPENAPI: &str = "/openapi.json";
    pub const CLUSTER: &str = "/v1/cluster";
    pub const TOPICS: &str = "/v1/topics";
    pub const TOPIC: &str = "/v1/topics/{topic}";
    pub const PRODUCE: &str = "/v1/topics/{topic}/partitions/{partition}/produce";
    pub const FETCH: &str = "/v1/topics/{topic}/partitions/{partition}/fetch";
    pub const GROUP_OFFSETS: &str = "/v1/groups/{group}/offsets";
    pub const GROUP: &str = "/v1/groups/{group}";
    pub const GROUP_JOIN: &str = "/v1/groups/{group}/join";
    pub const GROUP_SYNC: &str = "/v1/groups/{group}/sync";
    pub const GROUP_HEARTBEAT: &str = "/v1/groups/{group}/heartbeat";
    pub const GROUP_LEAVE: &str = "/v1/groups/{group}/leave";
    pub const INIT_PRODUCER_ID: &str = "/v1/producers/init";
    pub const ADMIN_FETCHERS: &str = "/v1/admin/fetchers";
    pub const DEBUG_REPLICA_LOG: &str = "/v1/debug/topics/{topic}/partitions/{partition}/log";
    pub const DEBUG_HISTORY: &str = "/v1/debug/topics/{topic}/partitions/{partition}/history";
}

/// Kafka's error names, used verbatim in [`ErrorBody::error`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    UnknownTopicOrPartition,
    TopicAlreadyExists,
    InvalidTopicException,
    InvalidPartitions,
    InvalidReplicationFactor,
    InvalidRequiredAcks,
    InvalidConfig,
    MessageTooLarge,
    RecordListTooLarge,
    OffsetOutOfRange,
    InvalidRequest,
    RequestTimedOut,
    NotLeaderOrFollower,
    FencedLeaderEpoch,
    UnknownLeaderEpoch,
    NotCoordinator,
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    KafkaStorageError,
    InvalidGroupId,
    CoordinatorNotAvailable,
    IllegalGeneration,
    InconsistentGroupProtocol,
    UnknownMemberId,
    InvalidSessionTimeout,
    RebalanceInProgress,
    UnknownServerError,
    /// A name this client version does not know; kept so that a newer node
    /// never makes an older client fail to decode an error.
    #[serde(other)]
    Unrecognized,
}

impl ErrorCode {
    /// Kafka's numeric code for the name (`-1`, UNKNOWN_SERVER_ERROR, for
    /// [`ErrorCode::Unrecognized`]): the one table.
    pub fn kafka_code(self) -> i16 {
        use ErrorCode::*;
        match self {
            OffsetOutOfRange => 1,
            UnknownTopicOrPartition => 3,
            NotLeaderOrFollower => 6,
            RequestTimedOut => 7,
            MessageTooLarge => 10,
            CoordinatorNotAvailable => 15,
            NotCoordinator => 16,
            InvalidTopicException => 17,
            RecordListTooLarge => 18,
            NotEnoughReplicas => 19,
            NotEnoughReplicasAfterAppend => 20,
            InvalidRequiredAcks => 21,
            IllegalGeneration => 22,
            InconsistentGroupProtocol => 23,
            InvalidGroupId => 24,
            UnknownMemberId => 25,
            InvalidSessionTimeout => 26,
            RebalanceInProgress => 27,
            TopicAlreadyExists => 36,
            InvalidPartitions => 37,
            InvalidReplicationFactor => 38,
            InvalidConfig => 40,
            InvalidRequest => 42,
            OutOfOrderSequenceNumber => 45,
            InvalidProducerEpoch => 47,
            KafkaStorageError => 56,
            UnknownProducerId => 59,
            FencedLeaderEpoch => 74,
            UnknownLeaderEpoch => 75,
            UnknownServerError | Unrecognized => -1,
        }
    }

    /// The name of Kafka's numeric code, if this client knows it.
    pub fn from_kafka_code(code: i16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|e| e.kafka_code() == code && *e != ErrorCode::Unrecognized)
    }

    /// The wire name, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
            InvalidPartitions => "INVALID_PARTITIONS",
            InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            InvalidRequiredAcks => "INVALID_REQUIRED_ACKS",
            InvalidConfig => "INVALID_CONFIG",
            MessageTooLarge => "MESSAGE_TOO_LARGE",
            RecordListTooLarge => "RECORD_LIST_TOO_LARGE",
            OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            InvalidRequest => "INVALID_REQUEST",
            RequestTimedOut => "REQUEST_TIMED_OUT",
            NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            NotCoordinator => "NOT_COORDINATOR",
            InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            UnknownProducerId => "UNKNOWN_PRODUCER_ID",
            NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            KafkaStorageError => "KAFKA_STORAGE_ERROR",
            InvalidGroupId => "INVALID_GROUP_ID",
            CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            IllegalGeneration => "ILLEGAL_GENERATION",
            InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            UnknownMemberId => "UNKNOWN_MEMBER_ID",
            InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            UnknownServerError => "UNKNOWN_SERVER_ERROR",
            Unrecognized => "UNRECOGNIZED",
        }
    }

    /// Every code the node can return, for the OpenAPI document and tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::UnknownTopicOrPartition,
        ErrorCode::TopicAlreadyExists,
        ErrorCode::InvalidTopicException,
        ErrorCode::InvalidPartitions,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::InvalidRequiredAcks,
        ErrorCode::InvalidConfig,
        ErrorCode::MessageTooLarge,
        ErrorCode::RecordListTooLarge,
        ErrorCode::OffsetOutOfRange,
        ErrorCode::InvalidRequest,
        ErrorCode::RequestTimedOut,
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::NotCoordinator,
        ErrorCode::InvalidProducerEpoch,
        ErrorCode::OutOfOrderSequenceNumber,
        ErrorCode::UnknownProducerId,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::NotEnoughReplicasAfterAppend,
        ErrorCode::KafkaStorageError,
        ErrorCode::InvalidGroupId,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::IllegalGeneration,
        ErrorCode::InconsistentGroupProtocol,
        ErrorCode::UnknownMemberId,
        ErrorCode::InvalidSessionTimeout,
        ErrorCode::RebalanceInProgress,
        ErrorCode::UnknownServerError,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of every error response.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// Human-readable detail; names the offending field, key or value.
    pub message: String,
    /// On `NOT_LEADER_OR_FOLLOWER`: the current leader's id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<i32>,
    /// On `NOT_LEADER_OR_FOLLOWER`: the current leader's base URL, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_address: Option<String>,
}

/// `GET /health`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Health {
    pub status: String,
    pub node_id: i32,
}

/// `POST /v1/topics`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicRequest {
    #[schema(pattern = r"^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$", min_length = 1, max_length = 249, example = "events")]
    pub name: String,
    /// Defaults to the broker's `num.partitions`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000, example = 3)]
    pub partitions: Option<i64>,
    /// Defaults to the broker's `default.replication.factor`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 32767, example = 1)]
    pub replication_factor: Option<i64>,
    /// Per-topic overrides with Kafka's topic-level names
    /// (`min.insync.replicas`, `flush.messages`, `segment.bytes`, ...).
    /// Values may be JSON strings, numbers or booleans.
    #[serde(default)]
    #[schema(schema_with = schema::topic_configs)]
    pub configs: BTreeMap<String, serde_json::Value>,
}

/// One partition of a [`TopicDescription`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct PartitionDescription {
    pub partition: u32,
    /// `None` while the partition is offline.
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// As seen by the answering node's replica.
    pub high_watermark: i64,
    pub log_end_offset: i64,
    pub log_start_offset: i64,
}

/// `GET /v1/topics/{topic}` and `POST /v1/topics`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicDescription {
    pub name: String,
    /// True for `__consumer_offsets`.
    pub internal: bool,
    pub partitions: Vec<PartitionDescription>,
    /// The topic's explicit overrides, as strings.
    pub configs: BTreeMap<String, String>,
}

/// `GET /v1/topics`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicList {
    pub topics: Vec<String>,
}

/// The producer's durability requirement, Kafka's `acks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Acks {
    /// `0`: answered as soon as queued; never acknowledged.
    None,
    /// `1`: answered after the leader's local append.
    Leader,
    /// `all` (`-1`): answered once the high watermark covers the batch.
    All,
}

impl Acks {
    /// Parses Kafka's spellings: `0`, `1`, `-1`, `all`.
    pub fn parse(text: &str) -> Option<Acks> {
        match text {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "-1" | "all" => Some(Acks::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Acks {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Acks::None => s.serialize_i64(0),
            Acks::Leader => s.serialize_i64(1),
            Acks::All => s.serialize_str("all"),
        }
    }
}

/// `acks` as it arrived on the wire, before validation. Kept apart from
/// [`Acks`] so that `acks: 2` is answered with `INVALID_REQUIRED_ACKS`, as
/// Kafka does, rather than with a generic decoding error.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum RawAcks {
    Number(i64),
    Text(String),
}

impl RawAcks {
    pub fn validate(&self) -> Option<Acks> {
        match self {
            RawAcks::Number(0) => Some(Acks::None),
            RawAcks::Number(1) => Some(Acks::Leader),
            RawAcks::Number(-1) => Some(Acks::All),
            RawAcks::Number(_) => None,
            RawAcks::Text(t) => Acks::parse(t),
        }
    }
}

impl From<Acks> for RawAcks {
    fn from(acks: Acks) -> RawAcks {
        match acks {
            Acks::None => RawAcks::Number(0),
            Acks::Leader => RawAcks::Number(1),
            Acks::All => RawAcks::Text("all".into()),
        }
    }
}

fn default_acks() -> RawAcks {
    RawAcks::Text("all".into())
}

/// One record of a [`ProduceRequest`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[schema(example = "v-1")]
    pub value: String,
    /// Milliseconds since the Unix epoch; the broker's clock when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// `POST /v1/topics/{topic}/partitions/{partition}/produce`: one batch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRequest {
    /// `0`, `1`, `-1` or `"all"`; Kafka's producer default is `all`.
    #[serde(default = "default_acks")]
    #[schema(schema_with = schema::acks)]
    pub acks: RawAcks,
    /// How long an `acks=all` request may wait for replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 300000, example = 30000)]
    pub timeout_ms: Option<u64>,
    /// Idempotent producer fields; all three or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    pub producer_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 32767)]
    pub producer_epoch: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2147483647)]
    pub base_sequence: Option<i32>,
    #[schema(min_items = 1)]
    pub records: Vec<ProduceRecord>,
}

/// The answer to a produce. `base_offset` is `None` for `acks=0`, which is
/// answered `202 Accepted` as soon as the batch is queued.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ProduceResponse {
    pub base_offset: Option<i64>,
    pub log_start_offset: Option<i64>,
}

/// `POST /v1/topics/{topic}/partitions/{partition}/fetch`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    #[schema(minimum = 0, maximum = 9223372036854775807_i64, example = 0)]
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100000, example = 500)]
    pub max_records: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 67108864, example = 1048576)]
    pub max_bytes: Option<u32>,
    /// Long poll: wait up to this long for records at `offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 60000, example = 0)]
    pub max_wait_ms: Option<u64>,
}

/// One record returned by a fetch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct FetchedRecord {
    pub offset: i64,
    /// The leader epoch of the batch that holds this record.
    pub leader_epoch: i32,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct FetchResponse {
    pub records: Vec<FetchedRecord>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Where the next fetch should start.
    pub next_offset: i64,
}

/// One entry of an [`OffsetCommitRequest`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetCommit {
    #[schema(pattern = r"^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$", min_length = 1, max_length = 249, example = "events")]
    pub topic: String,
    #[schema(minimum = 0, maximum = 2147483647, example = 0)]
    pub partition: u32,
    /// The next offset the group will consume, as in Kafka.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64, example = 1)]
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4096)]
    pub metadata: Option<String>,
}

/// `POST /v1/groups/{group}/offsets`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetCommitRequest {
    #[schema(min_items = 1, max_items = 10000)]
    pub offsets: Vec<OffsetCommit>,
    /// The committing member's generation; -1 (the default) for a simple
    /// consumer that only stores offsets in an empty group.
    #[serde(default = "no_generation", skip_serializing_if = "is_no_generation")]
    #[schema(minimum = -1, maximum = 2147483647, example = -1)]
    pub generation: i32,
    /// The committing member's id; empty (the default) for a simple consumer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(max_length = 255)]
    pub member_id: String,
}

fn no_generation() -> i32 {
    -1
}

fn is_no_generation(g: &i32) -> bool {
    *g == -1
}

impl OffsetCommitRequest {
    /// A simple consumer's commit: no member, no generation.
    pub fn simple(offsets: Vec<OffsetCommit>) -> OffsetCommitRequest {
        OffsetCommitRequest { offsets, generation: -1, member_id: String::new() }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct OffsetCommitResponse {
    pub committed: usize,
}

/// `GET /v1/groups/{group}/offsets`: every committed offset of the group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct OffsetFetchResponse {
    pub group: String,
    pub offsets: Vec<OffsetCommit>,
}

/// `GET /v1/cluster`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ClusterInfo {
    pub node_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub controller: Option<i32>,
    pub metadata_offset: i64,
    /// Active bug switches; never silently on.
    pub bugs: Vec<String>,
    /// Whether admin hooks (`/v1/admin/...`) are enabled on this node.
    #[serde(default)]
    pub admin_hooks: bool,
    pub version: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct BrokerInfo {
    pub id: i32,
    pub address: String,
    pub fenced: bool,
}

/// `GET /v1/debug/topics/{topic}/partitions/{partition}/log`: this node's
/// replica of a partition, record by record, for divergence checks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ReplicaLogDump {
    pub topic: String,
    pub partition: u32,
    pub node_id: i32,
    /// `leader`, `follower` or `offline`.
    #[schema(schema_with = schema::replica_role)]
    pub role: String,
    pub leader_epoch: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// `[offset, leader_epoch, value]` for every record.
    #[schema(schema_with = schema::record_triples)]
    pub records: Vec<(i64, i32, String)>,
    /// True when the dump stopped at its record bound before the log end.
    pub truncated: bool,
}

/// `GET /v1/debug/topics/{topic}/partitions/{partition}/history`: every
/// leader and ISR change of a partition, from this node's metadata.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct PartitionHistory {
    pub topic: String,
    pub partition: u32,
    /// Entries dropped to keep the history bounded (oldest first).
    pub dropped: u64,
    pub entries: Vec<HistoryEntry>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct HistoryEntry {
    /// Metadata offset of the change.
    pub metadata_offset: u64,
    /// `created`, `clean`, `unclean`, `offline` or `isr-change`.
    #[schema(schema_with = schema::change_kind)]
    pub kind: String,
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
}

/// `POST /v1/producers/init`: a cluster-unique producer id for an
/// idempotent producer, at epoch 0.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
pub struct InitProducerIdResponse {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// `POST /v1/admin/fetchers` (admin hooks only): stop or restart this
/// node's follower fetchers, so a recipe can hold a follower just behind.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetcherControl {
    pub paused: bool,
}
