//! The consumer-group membership endpoints: Kafka's classic JoinGroup,
//! SyncGroup, Heartbeat and LeaveGroup, and a group's description. Each
//! must reach the group's coordinator (`NOT_COORDINATOR` names it).

use axum::Json;
use axum::extract::State;
use faultline_client::api::{
    GroupDescription, JoinGroupRequest, JoinGroupResponse, MemberRequest, MemberResponse, SyncGroupRequest,
    SyncGroupResponse, paths,
};

use super::AppState;
use super::extract::{GroupParam, JsonBody};
use crate::error::ApiError;

/// Join the group (JoinGroup). The answer waits until the rebalance
/// completes: every member rejoined, or the rebalance timeout passed.
#[utoipa::path(post, path = paths::GROUP_JOIN, operation_id = "joinGroup", tag = "groups",
    params(GroupParam),
    request_body = JoinGroupRequest,
    responses((status = 200, description = "the new generation; the leader also gets every member", body = JoinGroupResponse)),
)]
pub async fn join(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
    JsonBody(req): JsonBody<JoinGroupRequest>,
) -> Result<Json<JoinGroupResponse>, ApiError> {
    Ok(Json(state.groups.join(&state.broker, &group, &req).await?))
}

/// Send (leader) or wait for (others) the generation's assignment (SyncGroup).
#[utoipa::path(post, path = paths::GROUP_SYNC, operation_id = "syncGroup", tag = "groups",
    params(GroupParam),
    request_body = SyncGroupRequest,
    responses((status = 200, description = "this member's assignment", body = SyncGroupResponse)),
)]
pub async fn sync(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
    JsonBody(req): JsonBody<SyncGroupRequest>,
) -> Result<Json<SyncGroupResponse>, ApiError> {
    Ok(Json(state.groups.sync(&state.broker, &group, &req).await?))
}

/// Keep the member's session alive (Heartbeat); `REBALANCE_IN_PROGRESS`
/// tells it to rejoin.
#[utoipa::path(post, path = paths::GROUP_HEARTBEAT, operation_id = "heartbeat", tag = "groups",
    params(GroupParam),
    request_body = MemberRequest,
    responses((status = 200, description = "the member is in the current generation", body = MemberResponse)),
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
    JsonBody(req): JsonBody<MemberRequest>,
) -> Result<Json<MemberResponse>, ApiError> {
    Ok(Json(state.groups.heartbeat(&state.broker, &group, &req).await?))
}

/// Leave the group (LeaveGroup); the others rebalance.
#[utoipa::path(post, path = paths::GROUP_LEAVE, operation_id = "leaveGroup", tag = "groups",
    params(GroupParam),
    request_body = MemberRequest,
    responses((status = 200, description = "the member left", body = MemberResponse)),
)]
pub async fn leave(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
    JsonBody(req): JsonBody<MemberRequest>,
) -> Result<Json<MemberResponse>, ApiError> {
    Ok(Json(state.groups.leave(&state.broker, &group, &req).await?))
}

/// The group as its coordinator holds it: state, generation, members and
/// their assignments.
#[utoipa::path(get, path = paths::GROUP, operation_id = "describeGroup", tag = "groups",
    params(GroupParam),
    responses((status = 200, description = "the group", body = GroupDescription)),
)]
pub async fn describe(
    State(state): State<AppState>,
    GroupParam { group }: GroupParam,
) -> Result<Json<GroupDescription>, ApiError> {
    Ok(Json(state.groups.describe(&state.broker, &group).await?))
}
