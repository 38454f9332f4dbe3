//! The openraft type configuration of the controller quorum, and the
//! conversions between our broker ids and openraft node ids.
//!
//! Log entries carry a [`Command`]; applying one yields an [`ApplyResponse`]
//! that wraps the [`CommandResult`] (blank and membership entries answer
//! with none). A node is an [`openraft::BasicNode`] whose `addr` is the base
//! URL of that voter's HTTP API.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::controller::metadata::{Command, CommandResult};

/// What applying one log entry produced: the command's result, or `None`
/// for blank and membership entries, which only advance the applied index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub result: Option<CommandResult>,
}

openraft::declare_raft_types!(
    /// The controller quorum's raft types.
    pub TypeConfig:
        D = Command,
        R = ApplyResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;

/// Broker ids are non-negative `i32`s (Kafka's `node.id`); raft ids are `u64`.
pub fn to_raft_id(id: i32) -> NodeId {
    debug_assert!(id >= 0, "broker ids are non-negative");
    id as NodeId
}

/// The inverse of [`to_raft_id`]; raft ids only ever come from broker ids.
pub fn from_raft_id(id: NodeId) -> i32 {
    debug_assert!(id <= i32::MAX as NodeId, "raft ids are broker ids");
    id as i32
}
