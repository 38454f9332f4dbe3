//! One consumer group under Kafka's classic protocol, eager rebalancing, as
//! its coordinator holds it: members, the generation, the state and every
//! rule of JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the fencing of
//! offset commits. No I/O: time comes in as an argument, answers to waiting
//! requests go out through the channels they left, and what must be stored
//! is handed to the caller ([`ClassicGroup::take_dirty`]).
//!
//! States, as Kafka's: `Empty` (no members), `PreparingRebalance`
//! (collecting joins until every member rejoined or the rebalance timeout
//! passed), `CompletingRebalance` (a new generation waits for the leader's
//! assignment), `Stable`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use faultline_client::api::{
    DescribedMember, ErrorCode, GroupDescription, GroupProtocol, JoinGroupRequest, JoinGroupResponse, JoinedMember,
    MemberAssignment, SyncGroupResponse,
};
use tokio::sync::oneshot;

use super::stored::{StoredMember, StoredMembership};
use crate::error::ApiError;

pub type JoinReply = oneshot::Sender<Result<JoinGroupResponse, ApiError>>;
pub type SyncReply = oneshot::Sender<Result<SyncGroupResponse, ApiError>>;

/// Kafka's group states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        })
    }
}

struct Member {
    protocols: Vec<GroupProtocol>,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    assignment: String,
    /// Removed when no heartbeat (or join, sync, commit) arrives by then.
    deadline: Instant,
    join: Option<JoinReply>,
    sync: Option<SyncReply>,
}

impl Member {
    fn touch(&mut self, now: Instant) {
        self.deadline = now + Duration::from_millis(self.session_timeout_ms);
    }
}

/// Why a group's rebalance started, which decides when its join completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// From an empty group: wait `group.initial.rebalance.delay.ms` for more
    /// members, as Kafka's initial delayed join does.
    Initial,
    /// Until every member rejoined, or the rebalance timeout.
    Rejoin,
}

pub struct ClassicGroup {
    id: String,
    state: GroupState,
    generation: i32,
    protocol_type: String,
    protocol: String,
    leader: String,
    members: BTreeMap<String, Member>,
    rebalance: Option<(Wait, Instant)>,
    /// The membership changed in a way the log must record.
    dirty: bool,
}

fn err(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

impl ClassicGroup {
    pub fn new(id: &str) -> ClassicGroup {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: String::new(),
            protocol: String::new(),
            leader: String::new(),
            members: BTreeMap::new(),
            rebalance: None,
            dirty: false,
        }
    }

    #[cfg(test)]
    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Never had a member: a group only a refused request created.
    pub fn is_unused(&self) -> bool {
        self.members.is_empty() && self.generation == 0
    }

    /// A JoinGroup. The answer goes to `reply`, now or when the rebalance
    /// completes (this join may complete it); an `Err` is answered by the
    /// caller.
    pub fn join(
        &mut self,
        req: &JoinGroupRequest,
        now: Instant,
        initial_delay: Duration,
        new_id: impl FnOnce() -> String,
        reply: JoinReply,
    ) -> Result<(), ApiError> {
        self.check_protocols(req)?;
        if req.member_id.is_empty() {
            let id = new_id();
            let mut m = Member {
                protocols: req.protocols.clone(),
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                assignment: String::new(),
                deadline: now,
                join: Some(reply),
                sync: None,
            };
            m.touch(now);
            self.members.insert(id, m);
            self.protocol_type = req.protocol_type.clone();
            self.start_rebalance(now, initial_delay);
            self.maybe_complete_join(now);
            return Ok(());
        }
        let leader = self.leader == req.member_id;
        let Some(m) = self.members.get_mut(&req.member_id) else {
            return Err(err(ErrorCode::UnknownMemberId, format!("{} is not a member of the group", req.member_id)));
        };
        let changed = m.protocols != req.protocols;
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.touch(now);
        let settled = matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance);
        if settled && !changed && !(leader && self.state == GroupState::Stable) {
            // Kafka answers a member that rejoins unchanged with the
            // current generation, without a rebalance.
            let _ = reply.send(Ok(self.join_response(&req.member_id)));
            return Ok(());
        }
        self.members.get_mut(&req.member_id).expect("found above").join = Some(reply);
        self.start_rebalance(now, initial_delay);
        self.maybe_complete_join(now);
        Ok(())
    }

    /// A join names a protocol type and protocols the group can use: the
    /// type of the current members, and a protocol every member supports.
    fn check_protocols(&self, req: &JoinGroupRequest) -> Result<(), ApiError> {
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(err(ErrorCode::InconsistentGroupProtocol, "a join needs a protocol type and protocols"));
        }
        let others: Vec<&Member> =
            self.members.iter().filter(|(id, _)| **id != req.member_id).map(|(_, m)| m).collect();
        if others.is_empty() {
            return Ok(());
        }
        if req.protocol_type != self.protocol_type {
            return Err(err(
                ErrorCode::InconsistentGroupProtocol,
                format!("the group's protocol type is {}, not {}", self.protocol_type, req.protocol_type),
            ));
        }
        let common = req.protocols.iter().any(|p| others.iter().all(|m| m.protocols.iter().any(|q| q.name == p.name)));
        if !common {
            return Err(err(
                ErrorCode::InconsistentGroupProtocol,
                "no protocol that every member of the group supports",
            ));
        }
        Ok(())
    }

    /// Enters `PreparingRebalance` unless already there.
    fn start_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        match self.state {
            GroupState::PreparingRebalance => return,
            GroupState::Empty => self.rebalance = Some((Wait::Initial, now + initial_delay)),
            GroupState::CompletingRebalance | GroupState::Stable => {
                let timeout = self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
                self.rebalance = Some((Wait::Rejoin, now + Duration::from_millis(timeout)));
            }
        }
        for m in self.members.values_mut() {
            if let Some(s) = m.sync.take() {
                let _ = s.send(Err(rebalancing()));
            }
        }
        self.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase when every member rejoined (or, from an
    /// empty group, the initial delay passed), or at the rebalance deadline,
    /// dropping members that did not rejoin.
    pub fn maybe_complete_join(&mut self, now: Instant) {
        let Some((wait, deadline)) = self.rebalance else { return };
        // A member whose join request was abandoned (its client timed out
        // and gave up the connection) is not waiting: it would be handed
        // partitions it never learns of.
        self.members.retain(|_, m| !m.join.as_ref().is_some_and(|j| j.is_closed()));
        let all_joined = self.members.values().all(|m| m.join.is_some());
        let ready = now >= deadline || (wait == Wait::Rejoin && all_joined);
        if self.state != GroupState::PreparingRebalance || !ready {
            return;
        }
        self.members.retain(|_, m| m.join.is_some());
        self.rebalance = None;
        self.generation += 1;
        if self.members.is_empty() {
            // Kafka stores an emptied group; a new generation is stored
            // only with its assignment, at the leader's sync.
            self.dirty = true;
            self.state = GroupState::Empty;
            (self.protocol, self.leader) = (String::new(), String::new());
            return;
        }
        self.state = GroupState::CompletingRebalance;
        self.protocol = self.choose_protocol();
        if !self.members.contains_key(&self.leader) {
            self.leader = self.members.keys().next().expect("not empty").clone();
        }
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            let m = self.members.get_mut(&id).expect("listed");
            m.assignment.clear();
            m.touch(now);
            let _ = m.join.take().expect("every member rejoined").send(Ok(response));
        }
    }

    /// Kafka's vote: among the protocols every member supports, the one most
    /// members prefer (the first of their list), ties to the first member's
    /// order.
    fn choose_protocol(&self) -> String {
        let supported = |name: &str| self.members.values().all(|m| m.protocols.iter().any(|p| p.name == name));
        let first = self.members.values().next().expect("not empty");
        let candidates: Vec<&str> = first.protocols.iter().map(|p| p.name.as_str()).filter(|n| supported(n)).collect();
        let votes = |name: &str| self.members.values().filter(|m| vote(m, &candidates) == Some(name)).count();
        let best = candidates.iter().copied().rev().max_by_key(|n| votes(n));
        best.unwrap_or_default().to_string()
    }

    fn join_response(&self, member: &str) -> JoinGroupResponse {
        let members = if member == self.leader {
            let metadata = |m: &Member| {
                m.protocols.iter().find(|p| p.name == self.protocol).map(|p| p.metadata.clone()).unwrap_or_default()
            };
            self.members.iter().map(|(id, m)| JoinedMember { member_id: id.clone(), metadata: metadata(m) }).collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            member_id: member.to_string(),
            members,
        }
    }

    /// Checks that `member` belongs to the current generation.
    fn current(&self, member: &str, generation: i32) -> Result<(), ApiError> {
        if !self.members.contains_key(member) {
            return Err(err(ErrorCode::UnknownMemberId, format!("{member} is not a member of the group")));
        }
        if generation != self.generation {
            return Err(err(
                ErrorCode::IllegalGeneration,
                format!("generation {generation} is not the group's current generation {}", self.generation),
            ));
        }
        Ok(())
    }

    /// A SyncGroup. `Ok(true)` when the leader's assignment arrived: the
    /// caller stores the group ([`ClassicGroup::take_dirty`]) and then calls
    /// [`ClassicGroup::finish_sync`]. The answer goes to `reply`.
    pub fn sync(
        &mut self,
        member: &str,
        generation: i32,
        assignments: &[MemberAssignment],
        now: Instant,
        reply: SyncReply,
    ) -> Result<bool, ApiError> {
        self.current(member, generation)?;
        let m = self.members.get_mut(member).expect("checked");
        m.touch(now);
        match self.state {
            GroupState::PreparingRebalance => Err(rebalancing()),
            GroupState::Empty => Err(err(ErrorCode::UnknownMemberId, "the group is empty")),
            GroupState::Stable => {
                let _ = reply.send(Ok(SyncGroupResponse { assignment: m.assignment.clone() }));
                Ok(false)
            }
            GroupState::CompletingRebalance => {
                m.sync = Some(reply);
                if member != self.leader {
                    return Ok(false);
                }
                for a in assignments {
                    if let Some(m) = self.members.get_mut(&a.member_id) {
                        m.assignment = a.assignment.clone();
                    }
                }
                self.dirty = true;
                Ok(true)
            }
        }
    }

    /// After the leader's assignment was stored (`stored`) or not: the group
    /// becomes `Stable` and every waiting member gets its assignment, or
    /// the group rebalances again. Nothing happens if the generation moved
    /// on meanwhile.
    pub fn finish_sync(&mut self, generation: i32, stored: Result<(), ApiError>, now: Instant) {
        if self.generation != generation || self.state != GroupState::CompletingRebalance {
            return;
        }
        match stored {
            Ok(()) => {
                self.state = GroupState::Stable;
                for m in self.members.values_mut() {
                    if let Some(s) = m.sync.take() {
                        let _ = s.send(Ok(SyncGroupResponse { assignment: m.assignment.clone() }));
                    }
                }
            }
            Err(e) => {
                if let Some(s) = self.members.get_mut(&self.leader).and_then(|m| m.sync.take()) {
                    let _ = s.send(Err(e));
                }
                self.start_rebalance(now, Duration::ZERO);
            }
        }
    }

    /// The leader's sync could not be stored for a reason of its own (an
    /// oversized assignment): it is refused and the group rebalances.
    pub fn refuse_sync(&mut self, e: ApiError, now: Instant) {
        let generation = self.generation;
        self.finish_sync(generation, Err(e), now);
    }

    /// A Heartbeat: the generation on success.
    pub fn heartbeat(&mut self, member: &str, generation: i32, now: Instant) -> Result<i32, ApiError> {
        self.current(member, generation)?;
        self.members.get_mut(member).expect("checked").touch(now);
        match self.state {
            GroupState::PreparingRebalance => Err(rebalancing()),
            _ => Ok(self.generation),
        }
    }

    /// A LeaveGroup: the member is gone and the others rebalance.
    pub fn leave(&mut self, member: &str, now: Instant) -> Result<i32, ApiError> {
        let Some(m) = self.members.remove(member) else {
            return Err(err(ErrorCode::UnknownMemberId, format!("{member} is not a member of the group")));
        };
        answer_gone(m);
        self.start_rebalance(now, Duration::ZERO);
        self.maybe_complete_join(now);
        Ok(self.generation)
    }

    /// Removes members whose session expired; the others rebalance. Members
    /// waiting in a join or a sync are exempt, as in Kafka: the rebalance
    /// timeout bounds a join, and a sync waits for a leader that is not
    /// exempt (it expires, and the waiting members are told to rejoin).
    pub fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.deadline <= now && m.join.is_none() && m.sync.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            answer_gone(self.members.remove(id).expect("listed"));
        }
        if !expired.is_empty() {
            self.start_rebalance(now, Duration::ZERO);
        }
        self.maybe_complete_join(now);
    }

    /// Kafka's fencing of an offset commit. A simple consumer (generation
    /// -1, no member id) may commit only while the group is empty; a member
    /// must be known and of the current generation, and no commit is taken
    /// while the group waits for its new assignment. A commit of the current
    /// generation during `PreparingRebalance` is accepted: that is how a
    /// member commits when its partitions are revoked.
    pub fn validate_commit(&mut self, member: &str, generation: i32, now: Instant) -> Result<(), ApiError> {
        if generation < 0 && member.is_empty() {
            return match self.state {
                GroupState::Empty => Ok(()),
                _ => Err(err(ErrorCode::UnknownMemberId, "the group has members; a commit must name one")),
            };
        }
        self.current(member, generation)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(rebalancing());
        }
        self.members.get_mut(member).expect("checked").touch(now);
        Ok(())
    }

    pub fn describe(&self) -> GroupDescription {
        GroupDescription {
            group: self.id.clone(),
            state: self.state.to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|(id, m)| DescribedMember { member_id: id.clone(), assignment: m.assignment.clone() })
                .collect(),
        }
    }

    /// What the log must record, once, after a change that Kafka stores (a
    /// completed sync, a group that became empty).
    pub fn take_dirty(&mut self) -> Option<StoredMembership> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let members = self
            .members
            .iter()
            .map(|(id, m)| StoredMember {
                member_id: id.clone(),
                protocols: m.protocols.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                assignment: m.assignment.clone(),
            })
            .collect();
        Some(StoredMembership {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members,
        })
    }

    /// A group as a new coordinator loads it from the log: stable (or
    /// empty) at its stored generation, each member's session restarted.
    pub fn from_stored(id: &str, s: StoredMembership, now: Instant) -> ClassicGroup {
        let mut g = ClassicGroup::new(id);
        g.generation = s.generation;
        g.protocol_type = s.protocol_type;
        g.protocol = s.protocol;
        g.leader = s.leader;
        for m in s.members {
            let mut member = Member {
                protocols: m.protocols,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                assignment: m.assignment,
                deadline: now,
                join: None,
                sync: None,
            };
            member.touch(now);
            g.members.insert(m.member_id, member);
        }
        g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        g
    }
}

/// A member's vote: the first of its protocols among the candidates.
fn vote<'a>(m: &'a Member, candidates: &[&str]) -> Option<&'a str> {
    m.protocols.iter().map(|p| p.name.as_str()).find(|n| candidates.contains(n))
}

fn rebalancing() -> ApiError {
    err(ErrorCode::RebalanceInProgress, "the group is rebalancing; rejoin")
}

/// Answers a removed member's waiting requests.
fn answer_gone(m: Member) {
    let gone = || err(ErrorCode::UnknownMemberId, "the member left the group or its session expired");
    if let Some(j) = m.join {
        let _ = j.send(Err(gone()));
    }
    if let Some(s) = m.sync {
        let _ = s.send(Err(gone()));
    }
}

#[cfg(test)]
mod tests;
