//! Group membership over Kafka's protocol: JoinGroup, SyncGroup, Heartbeat
//! and LeaveGroup, answered by the same classic group as the HTTP API
//! (`crate::groups`), so librdkafka's `subscribe` and faultline's own
//! client meet the same rules, fencing and stored state.
//!
//! A member's protocol metadata and assignment are opaque bytes to the
//! coordinator. The group holds them as text, so bytes from this listener
//! are held base64-encoded: the members of one group use one API (an HTTP
//! member would read a Kafka member's subscription as base64).
//! Static membership (`group.instance.id`) is not implemented; a request
//! that names one is refused with `INVALID_REQUEST`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use faultline_client::api::{
    ErrorCode, GroupProtocol, JoinGroupRequest as Join, MemberAssignment, MemberRequest, SyncGroupRequest as Sync,
};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Node;
use crate::error::ApiError;

fn text(bytes: &Bytes) -> String {
    STANDARD.encode(bytes)
}

/// Held text back to bytes; text an HTTP member wrote is passed as is.
fn bytes(text: &str) -> Bytes {
    STANDARD.decode(text).map_or_else(|_| Bytes::copy_from_slice(text.as_bytes()), Bytes::from)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn code(e: &ApiError) -> i16 {
    e.code.kafka_code()
}

/// An error about the coordinator, not the member: the request as a whole
/// went to the wrong node, or too early.
fn coordinator_error(code: i16) -> bool {
    [ErrorCode::NotCoordinator, ErrorCode::CoordinatorNotAvailable].iter().any(|c| c.kafka_code() == code)
}

/// Static membership is not implemented: a named instance is refused.
fn static_member(instance: &Option<StrBytes>) -> Option<i16> {
    instance.as_ref().filter(|i| !i.is_empty()).map(|_| ErrorCode::InvalidRequest.kafka_code())
}

/// A timeout from the wire: negative values are the client's mistake, and
/// the group's own bounds refuse them as `INVALID_SESSION_TIMEOUT`.
fn ms(value: i32) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub async fn join_group(req: &JoinGroupRequest, version: i16, node: &Node) -> JoinGroupResponse {
    let failed = |error: i16| {
        JoinGroupResponse::default().with_error_code(error).with_generation_id(-1).with_member_id(req.member_id.clone())
    };
    if let Some(error) = static_member(&req.group_instance_id) {
        return failed(error);
    }
    let join = Join {
        member_id: req.member_id.to_string(),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| GroupProtocol { name: p.name.to_string(), metadata: text(&p.metadata) })
            .collect(),
        session_timeout_ms: ms(req.session_timeout_ms),
        // v0 has no rebalance timeout: Kafka takes the session timeout.
        rebalance_timeout_ms: if version >= 1 { ms(req.rebalance_timeout_ms) } else { ms(req.session_timeout_ms) },
    };
    let joined = match node.groups.join(&node.broker, &req.group_id.0, &join).await {
        Ok(j) => j,
        Err(e) => return failed(code(&e)),
    };
    let members = joined
        .members
        .iter()
        .map(|m| {
            JoinGroupResponseMember::default().with_member_id(str_bytes(&m.member_id)).with_metadata(bytes(&m.metadata))
        })
        .collect();
    JoinGroupResponse::default()
        .with_generation_id(joined.generation)
        .with_protocol_type(Some(req.protocol_type.clone()))
        .with_protocol_name(Some(str_bytes(&joined.protocol)))
        .with_leader(str_bytes(&joined.leader))
        .with_member_id(str_bytes(&joined.member_id))
        .with_members(members)
}

pub async fn sync_group(req: &SyncGroupRequest, node: &Node) -> SyncGroupResponse {
    let failed = |error: i16| SyncGroupResponse::default().with_error_code(error);
    if let Some(error) = static_member(&req.group_instance_id) {
        return failed(error);
    }
    let sync = Sync {
        member_id: req.member_id.to_string(),
        generation: req.generation_id,
        assignments: req
            .assignments
            .iter()
            .map(|a| MemberAssignment { member_id: a.member_id.to_string(), assignment: text(&a.assignment) })
            .collect(),
    };
    match node.groups.sync(&node.broker, &req.group_id.0, &sync).await {
        Ok(synced) => SyncGroupResponse::default()
            .with_protocol_type(req.protocol_type.clone())
            .with_protocol_name(req.protocol_name.clone())
            .with_assignment(bytes(&synced.assignment)),
        Err(e) => failed(code(&e)),
    }
}

pub async fn heartbeat(req: &HeartbeatRequest, node: &Node) -> HeartbeatResponse {
    if let Some(error) = static_member(&req.group_instance_id) {
        return HeartbeatResponse::default().with_error_code(error);
    }
    let member = MemberRequest { member_id: req.member_id.to_string(), generation: req.generation_id };
    let error = node.groups.heartbeat(&node.broker, &req.group_id.0, &member).await.err();
    HeartbeatResponse::default().with_error_code(error.map_or(0, |e| code(&e)))
}

/// v0–2 name one member; v3+ a batch, answered member by member.
pub async fn leave_group(req: &LeaveGroupRequest, version: i16, node: &Node) -> LeaveGroupResponse {
    let leave = |member_id: String| async move {
        // A leave names no generation: any current one will do.
        let member = MemberRequest { member_id, generation: -1 };
        node.groups.leave(&node.broker, &req.group_id.0, &member).await.err().map_or(0, |e| code(&e))
    };
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(leave(req.member_id.to_string()).await);
    }
    let mut members = Vec::with_capacity(req.members.len());
    for m in &req.members {
        let error = match static_member(&m.group_instance_id) {
            Some(error) => error,
            None => leave(m.member_id.to_string()).await,
        };
        // Kafka puts coordinator errors at the top, where clients look.
        if coordinator_error(error) {
            return LeaveGroupResponse::default().with_error_code(error);
        }
        members.push(MemberResponse::default().with_member_id(m.member_id.clone()).with_error_code(error));
    }
    LeaveGroupResponse::default().with_members(members)
}
