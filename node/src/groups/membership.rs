//! The group membership API at a group's coordinator: JoinGroup and
//! SyncGroup (which wait for the rest of the group), Heartbeat, LeaveGroup,
//! DescribeGroup, and the tick that expires sessions and ends rebalances
//! whose timeout passed. The rules are `classic.rs`'s; this module finds the
//! group, holds the caches' lock while it changes and stores it, and waits,
//! bounded, for the answer outside the lock.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use faultline_client::api::{
    ErrorCode, GroupDescription, JoinGroupRequest, JoinGroupResponse, MemberRequest, MemberResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use tokio::sync::oneshot;

use super::classic::ClassicGroup;
use super::stored::StoredGroup;
use super::{
    GROUP_ID_LEN_MAX, Groups, OFFSETS_COMMIT_TIMEOUT_MS, append_encoded, as_coordinator_error, encode_values,
    validate_group,
};
use crate::broker::{Broker, OFFSETS_TOPIC, Partition};
use crate::error::ApiError;

/// Bound on a group's stored membership (every member's protocols and
/// assignment), about Kafka's default `message.max.bytes`.
pub const MEMBERSHIP_RECORD_MAX_BYTES: usize = 1 << 20;
/// Bound on one protocol's metadata or one member's assignment.
pub const MEMBER_BYTES_MAX: usize = 1 << 20;
/// Bound on the protocols one member offers.
pub const PROTOCOLS_MAX: usize = 16;
/// Members of one group; Kafka's `group.max.size` is unbounded by default.
pub const MEMBERS_MAX: usize = 1_000;
/// How much longer than its own bound a waiting request waits for the
/// coordinator's answer before giving up on it.
const ANSWER_SLACK: Duration = Duration::from_secs(5);
/// How often [`Groups::tick`] runs.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);

impl Groups {
    pub async fn join(
        &self,
        broker: &Broker,
        group: &str,
        req: &JoinGroupRequest,
    ) -> Result<JoinGroupResponse, ApiError> {
        validate_group(group)?;
        validate_join(broker, req)?;
        let partition = self.coordinator(broker, group).await?;
        let delay = Duration::from_millis(broker.config.group_initial_rebalance_delay_ms);
        let (tx, rx) = oneshot::channel();
        self.with_group(&partition, group, true, |g, now| {
            if req.member_id.is_empty() && g.member_count() >= MEMBERS_MAX {
                return Err(ApiError::invalid(format!("the group has {MEMBERS_MAX} members, the most it may have")));
            }
            g.join(req, now, delay, || self.new_member_id(broker), tx)
        })?;
        answer(rx, Duration::from_millis(req.rebalance_timeout_ms).max(delay)).await
    }

    pub async fn sync(
        &self,
        broker: &Broker,
        group: &str,
        req: &SyncGroupRequest,
    ) -> Result<SyncGroupResponse, ApiError> {
        validate_group(group)?;
        validate_member(&req.member_id)?;
        if let Some(i) = req.assignments.iter().position(|a| a.assignment.len() > MEMBER_BYTES_MAX) {
            return Err(ApiError::new(
                ErrorCode::MessageTooLarge,
                format!("assignments[{i}].assignment is longer than {MEMBER_BYTES_MAX} bytes"),
            ));
        }
        let partition = self.coordinator(broker, group).await?;
        let (tx, rx) = oneshot::channel();
        let stored = self.with_group(&partition, group, false, |g, now| {
            if !g.sync(&req.member_id, req.generation, &req.assignments, now, tx)? {
                return Ok(None);
            }
            let Some(m) = g.take_dirty() else { return Ok(None) };
            let value = membership_value(group, m);
            if value.len() > MEMBERSHIP_RECORD_MAX_BYTES {
                let message = format!("the group's assignment is larger than {MEMBERSHIP_RECORD_MAX_BYTES} bytes");
                g.refuse_sync(ApiError::new(ErrorCode::MessageTooLarge, message), now);
                return Ok(None);
            }
            match append_encoded(&partition, &mut encode_values(group, &[value])) {
                Ok(appended) => Ok(Some((appended, g.generation()))),
                Err(e) => {
                    // Not stored: the leader hears why and the group rebalances.
                    g.refuse_sync(e, now);
                    Ok(None)
                }
            }
        });
        match stored {
            Ok(Some(((info, epoch), generation))) => {
                let replicated = partition
                    .wait_for_commit(info.last_offset + 1, epoch, Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS))
                    .await
                    .map_err(as_coordinator_error)
                    .and_then(|done| done.then_some(()).ok_or_else(not_replicated));
                self.with_group(&partition, group, false, |g, now| {
                    g.finish_sync(generation, replicated, now);
                    Ok(())
                })?;
            }
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        // Bounded by the leader's session: if it never syncs it is removed
        // and every waiting member is told to rejoin.
        answer(rx, Duration::from_millis(broker.config.group_max_session_timeout_ms)).await
    }

    pub async fn heartbeat(
        &self,
        broker: &Broker,
        group: &str,
        req: &MemberRequest,
    ) -> Result<MemberResponse, ApiError> {
        validate_group(group)?;
        validate_member(&req.member_id)?;
        let partition = self.coordinator(broker, group).await?;
        let generation =
            self.with_group(&partition, group, false, |g, now| g.heartbeat(&req.member_id, req.generation, now))?;
        Ok(MemberResponse { generation })
    }

    pub async fn leave(&self, broker: &Broker, group: &str, req: &MemberRequest) -> Result<MemberResponse, ApiError> {
        validate_group(group)?;
        validate_member(&req.member_id)?;
        let partition = self.coordinator(broker, group).await?;
        let generation = self.with_group(&partition, group, false, |g, now| g.leave(&req.member_id, now))?;
        Ok(MemberResponse { generation })
    }

    /// The group as its coordinator holds it; a group it never saw is
    /// described as empty, and not created.
    pub async fn describe(&self, broker: &Broker, group: &str) -> Result<GroupDescription, ApiError> {
        validate_group(group)?;
        let partition = self.coordinator(broker, group).await?;
        let mut caches = self.caches.lock();
        let cache = Self::loaded(&mut caches, &partition)?;
        Ok(cache.loaded.groups.get(group).map_or_else(|| ClassicGroup::new(group).describe(), ClassicGroup::describe))
    }

    /// Expires sessions and completes rebalances whose time came, in every
    /// group this node coordinates; forgets offsets partitions it no longer
    /// leads (their waiting requests are answered `NOT_COORDINATOR`).
    pub fn tick(&self, broker: &Broker) {
        let mut caches = self.caches.lock();
        let now = Instant::now();
        caches.retain(|index, cache| {
            let Ok(p) = broker.partition(OFFSETS_TOPIC, i64::from(*index)) else { return false };
            let view = p.view();
            if !view.is_leader || view.leader_epoch != cache.epoch {
                return false;
            }
            for (id, g) in cache.loaded.groups.iter_mut() {
                g.expire(now);
                store(&p, id, g);
            }
            true
        });
    }

    /// Runs `f` on the group under the caches' lock and stores what it
    /// changed. A group this coordinator does not know is created only if
    /// `create`; otherwise it is `UNKNOWN_MEMBER_ID`, as every member is.
    fn with_group<T>(
        &self,
        partition: &Partition,
        group: &str,
        create: bool,
        f: impl FnOnce(&mut ClassicGroup, Instant) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut caches = self.caches.lock();
        let cache = Self::loaded(&mut caches, partition)?;
        let groups = &mut cache.loaded.groups;
        if create && !groups.contains_key(group) {
            groups.insert(group.to_string(), ClassicGroup::new(group));
        }
        let Some(g) = groups.get_mut(group) else {
            return Err(ApiError::new(ErrorCode::UnknownMemberId, "the group has no members"));
        };
        let out = f(g, Instant::now());
        store(partition, group, g);
        if g.is_unused() {
            // A refused first join leaves nothing behind.
            groups.remove(group);
        }
        out
    }

    fn new_member_id(&self, broker: &Broker) -> String {
        let n = self.members_made.fetch_add(1, Ordering::Relaxed);
        // The clock's nanoseconds tell this process's ids from those a
        // restarted node hands out with the same counter.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        format!("member-{}-{n}-{nanos:08x}", broker.config.node_id)
    }
}

/// The JSON value of a group's membership record.
fn membership_value(group: &str, membership: super::stored::StoredMembership) -> String {
    serde_json::to_string(&StoredGroup { group: group.to_string(), membership }).expect("a membership serializes")
}

/// Appends the group's membership if it changed in a way Kafka stores
/// without anyone waiting on it (a group that became empty).
fn store(partition: &Partition, group: &str, g: &mut ClassicGroup) {
    if let Some(m) = g.take_dirty()
        && let Err(e) = append_encoded(partition, &mut encode_values(group, &[membership_value(group, m)]))
    {
        tracing::warn!(group, error = %e.message, "could not store the group's membership");
    }
}

fn not_replicated() -> ApiError {
    ApiError::new(ErrorCode::RequestTimedOut, "the group's assignment was not replicated in time")
}

/// Waits for a waiting request's answer, bounded by `bound` plus a slack.
async fn answer<T>(rx: oneshot::Receiver<Result<T, ApiError>>, bound: Duration) -> Result<T, ApiError> {
    match tokio::time::timeout(bound + ANSWER_SLACK, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(ApiError::new(ErrorCode::NotCoordinator, "this node stopped coordinating the group")),
        Err(_) => Err(ApiError::new(ErrorCode::RebalanceInProgress, "the rebalance did not complete in time; rejoin")),
    }
}

fn validate_member(member_id: &str) -> Result<(), ApiError> {
    if member_id.is_empty() || member_id.len() > GROUP_ID_LEN_MAX {
        return Err(ApiError::invalid(format!("member_id must be 1 to {GROUP_ID_LEN_MAX} bytes")));
    }
    Ok(())
}

/// A join's own bounds: session timeout within the broker's, the rebalance
/// timeout no longer than the longest session, names and metadata bounded.
fn validate_join(broker: &Broker, req: &JoinGroupRequest) -> Result<(), ApiError> {
    let (min, max) = (broker.config.group_min_session_timeout_ms, broker.config.group_max_session_timeout_ms);
    if !(min..=max).contains(&req.session_timeout_ms) {
        return Err(ApiError::new(
            ErrorCode::InvalidSessionTimeout,
            format!("session_timeout_ms must be between {min} and {max}, got {}", req.session_timeout_ms),
        ));
    }
    if !(1..=max).contains(&req.rebalance_timeout_ms) {
        return Err(ApiError::invalid(format!(
            "rebalance_timeout_ms must be between 1 and {max}, got {}",
            req.rebalance_timeout_ms
        )));
    }
    if req.member_id.len() > GROUP_ID_LEN_MAX || req.protocol_type.len() > GROUP_ID_LEN_MAX {
        return Err(ApiError::invalid(format!("member_id and protocol_type must be at most {GROUP_ID_LEN_MAX} bytes")));
    }
    if req.protocols.len() > PROTOCOLS_MAX {
        return Err(ApiError::invalid(format!("protocols must hold at most {PROTOCOLS_MAX} entries")));
    }
    for (i, p) in req.protocols.iter().enumerate() {
        if p.name.is_empty() || p.name.len() > GROUP_ID_LEN_MAX || p.metadata.len() > MEMBER_BYTES_MAX {
            return Err(ApiError::invalid(format!(
                "protocols[{i}]: the name must be 1 to {GROUP_ID_LEN_MAX} bytes, the metadata at most \
                 {MEMBER_BYTES_MAX}"
            )));
        }
    }
    Ok(())
}
