use std::time::{Duration, Instant};

use faultline_client::api::{ErrorCode, GroupProtocol, JoinGroupRequest, JoinGroupResponse, MemberAssignment};
use tokio::sync::oneshot;

use super::{ClassicGroup, GroupState, JoinReply};

const DELAY: Duration = Duration::from_millis(100);

fn request(member: &str, protocols: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest {
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| GroupProtocol { name: p.to_string(), metadata: format!("m-{p}") })
            .collect(),
        session_timeout_ms: 1_000,
        rebalance_timeout_ms: 2_000,
    }
}

type JoinRx = oneshot::Receiver<Result<JoinGroupResponse, crate::error::ApiError>>;

fn join(g: &mut ClassicGroup, member: &str, id: &str, now: Instant) -> JoinRx {
    let (tx, rx): (JoinReply, _) = oneshot::channel();
    g.join(&request(member, &["range"]), now, DELAY, || id.to_string(), tx).unwrap();
    rx
}

/// Three new members, the initial delay, the leader's assignment: a
/// stable generation 1 in which each member got its own assignment.
fn stable_group(t0: Instant) -> ClassicGroup {
    let mut g = ClassicGroup::new("g");
    let mut rx: Vec<JoinRx> = ["a", "b", "c"].iter().map(|id| join(&mut g, "", id, t0)).collect();
    g.maybe_complete_join(t0);
    assert_eq!(g.state(), GroupState::PreparingRebalance, "the initial delay holds the join");
    g.maybe_complete_join(t0 + DELAY);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let joined: Vec<JoinGroupResponse> = rx.iter_mut().map(|r| r.try_recv().unwrap().unwrap()).collect();
    assert!(joined.iter().all(|j| j.generation == 1 && j.leader == "a" && j.protocol == "range"));
    assert_eq!(joined[0].members.len(), 3, "the leader sees every member");
    assert!(joined[1].members.is_empty());
    let (tx_b, mut rx_b) = oneshot::channel();
    assert!(!g.sync("b", 1, &[], t0 + DELAY, tx_b).unwrap(), "a follower's sync waits");
    let assignments: Vec<MemberAssignment> = ["a", "b", "c"]
        .iter()
        .map(|m| MemberAssignment { member_id: m.to_string(), assignment: format!("to-{m}") })
        .collect();
    let (tx_a, mut rx_a) = oneshot::channel();
    assert!(g.sync("a", 1, &assignments, t0 + DELAY, tx_a).unwrap(), "the leader's sync is stored");
    assert!(g.take_dirty().is_some_and(|m| m.generation == 1 && m.members.len() == 3));
    g.finish_sync(1, Ok(()), t0 + DELAY);
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(rx_a.try_recv().unwrap().unwrap().assignment, "to-a");
    assert_eq!(rx_b.try_recv().unwrap().unwrap().assignment, "to-b");
    g
}

#[test]
fn three_members_join_and_sync_into_one_generation() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    let (tx, mut rx) = oneshot::channel();
    assert!(!g.sync("c", 1, &[], t0 + DELAY, tx).unwrap());
    assert_eq!(rx.try_recv().unwrap().unwrap().assignment, "to-c", "a late sync in Stable gets its assignment");
    assert_eq!(g.heartbeat("b", 1, t0 + DELAY).unwrap(), 1);
}

#[test]
fn commits_are_fenced_by_member_and_generation() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    assert!(g.validate_commit("b", 1, t0).is_ok());
    let code = |r: Result<(), crate::error::ApiError>| r.unwrap_err().code;
    assert_eq!(code(g.validate_commit("b", 0, t0)), ErrorCode::IllegalGeneration);
    assert_eq!(code(g.validate_commit("zombie", 1, t0)), ErrorCode::UnknownMemberId);
    assert_eq!(code(g.validate_commit("", -1, t0)), ErrorCode::UnknownMemberId, "simple commits need an empty group");
    // c leaves: a rebalance is being prepared; generation 1 may still commit
    // (a member commits when its partitions are revoked).
    g.leave("c", t0).unwrap();
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert!(g.validate_commit("a", 1, t0).is_ok());
    assert_eq!(code(g.heartbeat("a", 1, t0).map(|_| ())), ErrorCode::RebalanceInProgress);
    let (mut ra, mut rb) = (join(&mut g, "a", "-", t0), join(&mut g, "b", "-", t0));
    assert_eq!(g.state(), GroupState::CompletingRebalance, "every member rejoined");
    assert_eq!(ra.try_recv().unwrap().unwrap().generation, 2);
    assert_eq!(rb.try_recv().unwrap().unwrap().generation, 2);
    assert_eq!(code(g.validate_commit("a", 2, t0)), ErrorCode::RebalanceInProgress, "waiting for the assignment");
    assert_eq!(code(g.validate_commit("a", 1, t0)), ErrorCode::IllegalGeneration, "generation 1 ended");
    assert_eq!(code(g.validate_commit("c", 1, t0)), ErrorCode::UnknownMemberId, "c left");
}

#[test]
fn an_expired_session_rebalances_the_others_and_an_absent_member_is_dropped() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    let t1 = t0 + Duration::from_millis(800);
    g.heartbeat("a", 1, t1).unwrap();
    g.heartbeat("b", 1, t1).unwrap();
    g.expire(t0 + Duration::from_millis(1_200));
    assert_eq!(g.member_count(), 2, "c's session expired");
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let mut ra = join(&mut g, "a", "-", t1);
    // b never rejoins: at the rebalance timeout it is dropped.
    g.expire(t1 + Duration::from_millis(500));
    assert_eq!(g.state(), GroupState::PreparingRebalance, "b's session still runs");
    g.maybe_complete_join(t1 + Duration::from_millis(2_500));
    assert_eq!(g.member_count(), 1);
    let j = ra.try_recv().unwrap().unwrap();
    assert_eq!((j.generation, j.leader.as_str(), j.members.len()), (2, "a", 1));
}

#[test]
fn the_last_member_leaving_empties_and_stores_the_group() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    for m in ["a", "b", "c"] {
        g.leave(m, t0).unwrap();
    }
    assert_eq!((g.state(), g.generation()), (GroupState::Empty, 2));
    let stored = g.take_dirty().expect("an emptied group is stored");
    assert!(stored.members.is_empty());
    assert!(g.validate_commit("", -1, t0).is_ok(), "simple commits work in an empty group");
    assert_eq!(g.validate_commit("a", 1, t0).unwrap_err().code, ErrorCode::UnknownMemberId);
}

#[test]
fn a_new_coordinator_loads_the_stored_generation() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    g.leave("c", t0).unwrap();
    let (_a, _b) = (join(&mut g, "a", "-", t0), join(&mut g, "b", "-", t0));
    let (tx, _rx) = oneshot::channel();
    let assignment = [MemberAssignment { member_id: "a".into(), assignment: "all".into() }];
    assert!(g.sync("a", 2, &assignment, t0, tx).unwrap());
    let stored = g.take_dirty().unwrap();
    let mut loaded = ClassicGroup::from_stored("g", stored, t0);
    assert_eq!((loaded.state(), loaded.generation(), loaded.member_count()), (GroupState::Stable, 2, 2));
    assert_eq!(loaded.validate_commit("a", 1, t0).unwrap_err().code, ErrorCode::IllegalGeneration);
    assert!(loaded.validate_commit("b", 2, t0).is_ok());
    assert_eq!(loaded.describe().members[0].assignment, "all");
}

#[test]
fn joins_with_unusable_protocols_are_refused_and_change_nothing() {
    let t0 = Instant::now();
    let mut g = stable_group(t0);
    let refuse = |g: &mut ClassicGroup, req: JoinGroupRequest| {
        let (tx, _rx) = oneshot::channel();
        g.join(&req, t0, DELAY, || "x".into(), tx).unwrap_err().code
    };
    assert_eq!(refuse(&mut g, request("", &["roundrobin"])), ErrorCode::InconsistentGroupProtocol);
    assert_eq!(refuse(&mut g, request("", &[])), ErrorCode::InconsistentGroupProtocol);
    let mut other_type = request("", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(refuse(&mut g, other_type), ErrorCode::InconsistentGroupProtocol);
    assert_eq!(refuse(&mut g, request("ghost", &["range"])), ErrorCode::UnknownMemberId);
    assert_eq!((g.state(), g.member_count(), g.generation()), (GroupState::Stable, 3, 1));
    let (tx, _rx) = oneshot::channel();
    assert_eq!(g.sync("ghost", 1, &[], t0, tx).unwrap_err().code, ErrorCode::UnknownMemberId);
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn an_abandoned_join_is_dropped_and_a_waiting_sync_does_not_expire() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g");
    let _kept = join(&mut g, "", "a", t0);
    drop(join(&mut g, "", "ghost", t0)); // the client gave up its request
    g.maybe_complete_join(t0 + DELAY);
    assert_eq!((g.state(), g.member_count()), (GroupState::CompletingRebalance, 1), "the ghost got nothing");
    // A follower waits in sync past its session while the leader syncs late.
    let mut g = stable_group(t0);
    g.leave("c", t0).unwrap();
    let (mut ra, mut rb) = (join(&mut g, "a", "-", t0), join(&mut g, "b", "-", t0));
    let g2 = ra.try_recv().unwrap().unwrap().generation;
    assert_eq!(rb.try_recv().unwrap().unwrap().generation, g2);
    let (tx, mut waiting) = oneshot::channel();
    assert!(!g.sync("b", g2, &[], t0, tx).unwrap());
    g.heartbeat("a", g2, t0 + Duration::from_millis(900)).unwrap();
    g.expire(t0 + Duration::from_millis(1_500));
    assert_eq!(g.member_count(), 2, "b waits in sync: not expired");
    let (tx, _ra) = oneshot::channel();
    let both = [MemberAssignment { member_id: "b".into(), assignment: "all".into() }];
    assert!(g.sync("a", g2, &both, t0 + Duration::from_millis(1_500), tx).unwrap());
    g.finish_sync(g2, Ok(()), t0 + Duration::from_millis(1_500));
    assert_eq!(waiting.try_recv().unwrap().unwrap().assignment, "all");
}
