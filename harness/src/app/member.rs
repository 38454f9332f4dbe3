//! A subscribing consumer's group membership, as Kafka's classic consumer
//! keeps it: join and sync (the leader computes a range assignment), a
//! background heartbeat task, and `max.poll.interval.ms` enforced on the
//! client side. The poll loop asks [`Member::needs_rejoin`] before each poll
//! and [`Member::may_commit`] before each commit; the heartbeat task is what
//! learns that the group rebalances (`REBALANCE_IN_PROGRESS`) or that this
//! member was removed (`UNKNOWN_MEMBER_ID`, `ILLEGAL_GENERATION`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::{
    ErrorCode, GroupProtocol, JoinGroupRequest, JoinGroupResponse, MemberAssignment, MemberRequest, SyncGroupRequest,
};
use faultline_client::{ClientError, ClusterClient};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::coordinator::Coordinator;
use super::processing::RETRY_PAUSE;
use super::spec::SubscribeSpec;

/// Kafka's `retry.backoff.ms`: the pause before finding the coordinator
/// again after the local session ran out.
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(100);

/// What the member asks of the group: its topic.
#[derive(Serialize, Deserialize)]
struct Subscription {
    topics: Vec<String>,
}

/// What the leader gives each member: its partitions.
#[derive(Serialize, Deserialize)]
struct Assignment {
    partitions: Vec<u32>,
}

/// The membership both tasks see.
struct State {
    member_id: String,
    generation: i32,
    /// This member belongs to `generation` as far as it knows: it may commit.
    valid: bool,
    /// The poll loop must rejoin before its next poll.
    rejoin: bool,
    last_poll: Instant,
}

pub struct Member {
    state: Arc<Mutex<State>>,
    coordinator: Coordinator,
    spec: SubscribeSpec,
    topic: String,
    stop: Arc<AtomicBool>,
}

/// One generation's assignment.
pub struct Assigned {
    pub generation: i32,
    pub member_id: String,
    pub partitions: Vec<u32>,
}

impl Member {
    /// A member that has not joined yet; its heartbeat task runs until the
    /// member is dropped.
    pub fn new(bootstrap: &[String], timeout: Duration, group: String, topic: String, spec: SubscribeSpec) -> Member {
        let cluster = || ClusterClient::new(bootstrap.to_vec(), timeout);
        let state = Arc::new(Mutex::new(State {
            member_id: String::new(),
            generation: -1,
            valid: false,
            rejoin: true,
            last_poll: Instant::now(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let beat = Heartbeat {
            state: state.clone(),
            coordinator: Coordinator::new(cluster(), group.clone()),
            spec: spec.clone(),
            stop: stop.clone(),
        };
        tokio::spawn(beat.run());
        Member { state, coordinator: Coordinator::new(cluster(), group), spec, topic, stop }
    }

    /// The generation of the member's current assignment.
    pub fn generation(&self) -> i32 {
        self.state.lock().generation
    }

    pub fn needs_rejoin(&self) -> bool {
        self.state.lock().rejoin
    }

    /// The member id and generation a commit names, if this member still
    /// belongs to its generation; `None` as Kafka's `CommitFailedException`.
    pub fn may_commit(&self) -> Option<(String, i32)> {
        let st = self.state.lock();
        st.valid.then(|| (st.member_id.clone(), st.generation))
    }

    /// The poll loop polled: `max.poll.interval.ms` starts again.
    pub fn polled(&self) {
        self.state.lock().last_poll = Instant::now();
    }

    /// A commit was refused for a membership reason: rejoin.
    pub fn commit_refused(&self, code: Option<ErrorCode>) {
        let mut st = self.state.lock();
        match code {
            Some(ErrorCode::RebalanceInProgress) => st.rejoin = true,
            Some(ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId) => (st.valid, st.rejoin) = (false, true),
            _ => {}
        }
    }

    /// Joins and syncs until a generation gives this member its partitions
    /// (bounded by `stop`). `None` when stopped first.
    pub async fn rejoin(&mut self, stop: &AtomicBool) -> Option<Assigned> {
        self.state.lock().valid = false;
        while !stop.load(Ordering::SeqCst) {
            match self.join_and_sync().await {
                Ok(a) => {
                    let mut st = self.state.lock();
                    (st.member_id, st.generation, st.valid, st.rejoin) =
                        (a.member_id.clone(), a.generation, true, false);
                    st.last_poll = Instant::now();
                    return Some(a);
                }
                Err(e) => {
                    if matches!(e.code(), Some(ErrorCode::UnknownMemberId)) {
                        self.state.lock().member_id.clear();
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        None
    }

    async fn join_and_sync(&mut self) -> Result<Assigned, ClientError> {
        let member_id = self.state.lock().member_id.clone();
        let metadata = serde_json::to_string(&Subscription { topics: vec![self.topic.clone()] }).expect("serializes");
        let req = JoinGroupRequest {
            member_id,
            protocol_type: "consumer".into(),
            protocols: vec![GroupProtocol { name: "range".into(), metadata }],
            session_timeout_ms: self.spec.session_timeout_ms,
            rebalance_timeout_ms: self.spec.max_poll_interval_ms,
        };
        let joined = self.coordinator.join(&req).await?;
        let assignments = if joined.leader == joined.member_id { self.assign(&joined) } else { Vec::new() };
        let sync = SyncGroupRequest { member_id: joined.member_id.clone(), generation: joined.generation, assignments };
        let synced = self.coordinator.sync(&sync, Duration::from_millis(self.spec.session_timeout_ms)).await?;
        let partitions =
            serde_json::from_str::<Assignment>(&synced.assignment).map(|a| a.partitions).unwrap_or_default();
        Ok(Assigned { generation: joined.generation, member_id: joined.member_id, partitions })
    }

    /// The leader's range assignment: members in id order, each a
    /// contiguous run of partitions, the first ones one more when uneven.
    fn assign(&self, joined: &JoinGroupResponse) -> Vec<MemberAssignment> {
        let mut ids: Vec<&str> = joined.members.iter().map(|m| m.member_id.as_str()).collect();
        ids.sort_unstable();
        range(self.spec.partitions, ids.len())
            .into_iter()
            .zip(ids)
            .map(|(partitions, id)| MemberAssignment {
                member_id: id.to_string(),
                assignment: serde_json::to_string(&Assignment { partitions }).expect("serializes"),
            })
            .collect()
    }

    /// Leaves the group (a graceful close).
    pub async fn leave(&mut self) {
        let (member_id, generation) = {
            let mut st = self.state.lock();
            st.valid = false;
            (st.member_id.clone(), st.generation)
        };
        if !member_id.is_empty() {
            let _ = self.coordinator.leave(&MemberRequest { member_id, generation }).await;
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Kafka's range assignor for one topic: `partitions` split among `members`.
fn range(partitions: u32, members: usize) -> Vec<Vec<u32>> {
    let members = members.max(1) as u32;
    let (each, extra) = (partitions / members, partitions % members);
    let mut next = 0;
    (0..members)
        .map(|m| {
            let n = each + u32::from(m < extra);
            let run = (next..next + n).collect();
            next += n;
            run
        })
        .collect()
}

/// The background task that keeps the session and learns of rebalances.
struct Heartbeat {
    state: Arc<Mutex<State>>,
    coordinator: Coordinator,
    spec: SubscribeSpec,
    stop: Arc<AtomicBool>,
}

impl Heartbeat {
    /// Bounded by `stop`, set when the member is dropped.
    async fn run(mut self) {
        let interval = Duration::from_millis(self.spec.heartbeat_interval_ms);
        let session = Duration::from_millis(self.spec.session_timeout_ms);
        let mut last_ok = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(interval).await;
            let (member_id, generation, valid, last_poll) = {
                let st = self.state.lock();
                (st.member_id.clone(), st.generation, st.valid, st.last_poll)
            };
            if !valid {
                last_ok = Instant::now();
                continue;
            }
            if last_poll.elapsed() > Duration::from_millis(self.spec.max_poll_interval_ms) {
                // Kafka's client leaves the group itself when the
                // application stops polling for too long, and joins again
                // as a new member.
                self.set(|st| {
                    (st.valid, st.rejoin) = (false, true);
                    st.member_id.clear();
                });
                let _ = self.coordinator.leave(&MemberRequest { member_id, generation }).await;
                continue;
            }
            if last_ok.elapsed() > session {
                // As Kafka's heartbeat thread: the session ran out locally,
                // so the coordinator is unknown; find it again after a backoff.
                self.coordinator.forget();
                last_ok = Instant::now();
                tokio::time::sleep(COORDINATOR_BACKOFF).await;
                continue;
            }
            let answer = self.coordinator.heartbeat(&MemberRequest { member_id: member_id.clone(), generation }).await;
            let code = answer.as_ref().err().and_then(ClientError::code);
            if answer.is_ok() || code == Some(ErrorCode::RebalanceInProgress) {
                // Either way the coordinator answered: the session is alive.
                last_ok = Instant::now();
            }
            // An answer about a generation the member has left behind
            // (it rejoined meanwhile) says nothing about the current one.
            self.set(|st| {
                if st.member_id != member_id || st.generation != generation {
                    return;
                }
                match code {
                    Some(ErrorCode::RebalanceInProgress) => st.rejoin = true,
                    Some(ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId) => {
                        (st.valid, st.rejoin) = (false, true)
                    }
                    _ => {}
                }
            });
        }
    }

    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock());
    }
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn range_assigns_every_partition_once_in_contiguous_runs() {
        assert_eq!(range(3, 2), vec![vec![0, 1], vec![2]]);
        assert_eq!(range(2, 3), vec![vec![0], vec![1], vec![]]);
        assert_eq!(range(6, 3), vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
    }
}
