//! JSON bodies of the controller's internal HTTP routes between nodes:
//! proposal forwarding and broker heartbeats. (Raft's own RPC bodies are
//! openraft's types; see [`super::raft::network`].)

use serde::{Deserialize, Serialize};

use super::metadata::CommandResult;

pub const PROPOSE_PATH: &str = "/internal/controller/propose";
pub const HEARTBEAT_PATH: &str = "/internal/controller/heartbeat";

/// The answer to a forwarded proposal (the request body is the `Command`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ProposeReply {
    /// Committed and applied on the leader at log `index`.
    Applied { index: u64, result: CommandResult },
    /// The receiver is not the leader; nothing was proposed.
    NotLeader { leader: Option<i32> },
    /// The outcome is unknown: the command may or may not commit.
    Failed { message: String },
}

/// A broker incarnation says it is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum HeartbeatReply {
    /// Recorded by the active controller. `registered` is false when the
    /// leader's image has no such incarnation (stale, or not yet applied).
    Ok { registered: bool },
    /// The receiver is not the active controller.
    NotLeader { leader: Option<i32> },
}
