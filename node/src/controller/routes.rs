//! The controller's internal HTTP routes, merged into the node's router:
//! raft RPCs under `/internal/raft/...` and, under
//! `/internal/controller/...`, proposal forwarding and broker heartbeats.
//!
//! Raft handlers answer 200 with the JSON of openraft's
//! `Result<Response, RaftError>`; the client half decodes exactly that.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use super::Controller;
use super::metadata::Command;
use super::raft::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use super::raft::types::{NodeId, TypeConfig};
use super::wire::{HEARTBEAT_PATH, HeartbeatReply, HeartbeatRequest, PROPOSE_PATH, ProposeReply};

/// Largest request body on these routes: a snapshot chunk is at most
/// [`super::SNAPSHOT_CHUNK_BYTES`], and append batches are far smaller.
const BODY_BYTES_MAX: usize = 16 << 20;

pub fn router(controller: Arc<Controller>) -> Router {
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .route(PROPOSE_PATH, post(propose))
        .route(HEARTBEAT_PATH, post(heartbeat))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(controller)
}

async fn append(
    State(c): State<Arc<Controller>>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Json(c.raft.append_entries(req).await)
}

async fn vote(
    State(c): State<Arc<Controller>>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(c.raft.vote(req).await)
}

async fn snapshot(
    State(c): State<Arc<Controller>>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(c.raft.install_snapshot(req).await)
}

/// A proposal forwarded by another node. It is proposed here or refused
/// with the leader's id; never forwarded again, so requests cannot loop.
async fn propose(State(c): State<Arc<Controller>>, Json(cmd): Json<Command>) -> Json<ProposeReply> {
    Json(c.propose_here(cmd, Duration::from_millis(super::PROPOSE_TIMEOUT_MS)).await)
}

async fn heartbeat(State(c): State<Arc<Controller>>, Json(req): Json<HeartbeatRequest>) -> Json<HeartbeatReply> {
    Json(c.handle_heartbeat(req))
}
