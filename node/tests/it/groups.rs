//! Consumer groups on real clusters: Kafka's classic protocol (join, sync,
//! heartbeat, leave), a member whose heartbeats stop, a coordinator
//! failover mid-group, fenced commits, the bug switch that breaks fencing,
//! and malformed group requests.

use std::time::{Duration, Instant};

use faultline_client::api::*;
use faultline_client::{Client, ClientError};

use crate::cluster::{Cluster, FAST, create_req};
use crate::util::{Node, wait_serving};

/// Fast group timings, one offsets partition replicated on every node.
const GROUPS: &[&str] = &[
    "group.initial.rebalance.delay.ms=300",
    "group.min.session.timeout.ms=500",
    "offsets.topic.num.partitions=1",
    "offsets.topic.replication.factor=3",
];
const SESSION_MS: u64 = 1_500;
const GROUP: &str = "g";

fn config() -> Vec<&'static str> {
    FAST.iter().chain(GROUPS).copied().collect()
}

fn join_req(member: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![GroupProtocol { name: "range".into(), metadata: r#"{"topics":["t"]}"#.into() }],
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: 3_000,
    }
}

fn code(e: ClientError) -> ErrorCode {
    e.code().unwrap_or_else(|| panic!("an error body, got {e}"))
}

fn member(id: &str, generation: i32) -> MemberRequest {
    MemberRequest { member_id: id.into(), generation }
}

fn commit(id: &str, generation: i32, offset: i64) -> OffsetCommitRequest {
    let offsets = vec![OffsetCommit { topic: "t".into(), partition: 0, offset, metadata: None }];
    OffsetCommitRequest { offsets, generation, member_id: id.into() }
}

/// The node coordinating the group, as its nodes say, skipping `except`.
async fn coordinator(c: &Cluster, except: &[i32]) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    // Bounded by the deadline: an election may be under way.
    loop {
        for id in (1..=c.nodes.len() as i32).filter(|id| !except.contains(id)) {
            match c.client(id).describe_group(GROUP).await {
                Ok(_) => return c.client(id),
                Err(ClientError::Api { body, .. }) if body.error == ErrorCode::NotCoordinator => {
                    if let Some(l) = body.leader_id.filter(|l| !except.contains(l)) {
                        return c.client(l);
                    }
                }
                Err(_) => {}
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for the group");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` new members join at once and sync; returns their ids (leader
/// first) and the generation, after checking each got its assignment.
async fn form_group(coord: &Client, n: usize) -> (Vec<String>, i32) {
    let joins = (0..n).map(|_| {
        let c = coord.clone();
        tokio::spawn(async move { c.join_group(GROUP, &join_req(""), Duration::from_secs(1)).await.unwrap() })
    });
    let joins: Vec<_> = joins.collect();
    let mut joined = Vec::new();
    for j in joins {
        joined.push(j.await.unwrap());
    }
    let generation = joined[0].generation;
    assert!(joined.iter().all(|j| j.generation == generation && j.leader == joined[0].leader), "{joined:?}");
    joined.sort_by_key(|j| j.member_id != j.leader);
    assert_eq!(joined[0].members.len(), n, "the leader sees every member");
    assert!(joined[1..].iter().all(|j| j.members.is_empty()));
    let ids: Vec<String> = joined.iter().map(|j| j.member_id.clone()).collect();
    sync_all(coord, &ids, generation).await;
    (ids, generation)
}

/// Every member syncs, the leader (first) with one assignment per member.
async fn sync_all(coord: &Client, ids: &[String], generation: i32) {
    let assignments: Vec<MemberAssignment> =
        ids.iter().map(|m| MemberAssignment { member_id: m.clone(), assignment: format!("to {m}") }).collect();
    let syncs = ids.iter().enumerate().map(|(i, m)| {
        let (c, m) = (coord.clone(), m.clone());
        let req = SyncGroupRequest {
            member_id: m.clone(),
            generation,
            assignments: if i == 0 { assignments.clone() } else { Vec::new() },
        };
        tokio::spawn(async move { (m, c.sync_group(GROUP, &req, Duration::from_secs(2)).await.unwrap()) })
    });
    let syncs: Vec<_> = syncs.collect();
    for s in syncs {
        let (m, got) = s.await.unwrap();
        assert_eq!(got.assignment, format!("to {m}"));
    }
}

/// Heartbeats from `ids` until the coordinator says the group rebalances;
/// bounded by a count of heartbeats.
async fn heartbeat_until_rebalance(coord: &Client, ids: &[String], generation: i32) {
    for _ in 0..100 {
        for m in ids {
            match coord.heartbeat(GROUP, &member(m, generation)).await {
                Ok(_) => {}
                Err(e) => return assert_eq!(code(e), ErrorCode::RebalanceInProgress),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the group never rebalanced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_join_and_a_silent_member_is_rebalanced_away_and_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, &config());
    cluster.client(1).create_topic(&create_req("t", 3, &[])).await.unwrap();
    let coord = coordinator(&cluster, &[]).await;
    let (ids, g1) = form_group(&coord, 3).await;
    let d = coord.describe_group(GROUP).await.unwrap();
    assert_eq!((d.state.as_str(), d.generation, d.members.len()), ("Stable", g1, 3));
    assert!(coord.commit_offsets(GROUP, &commit(&ids[2], g1, 1)).await.is_ok());

    // The third member stops heartbeating, as a killed consumer would.
    let (alive, dead) = (&ids[..2], &ids[2]);
    heartbeat_until_rebalance(&coord, alive, g1).await;
    let rejoins = alive.iter().map(|m| {
        let (c, m) = (coord.clone(), m.clone());
        tokio::spawn(async move { c.join_group(GROUP, &join_req(&m), Duration::ZERO).await.unwrap() })
    });
    let rejoins: Vec<_> = rejoins.collect();
    let mut g2 = 0;
    for r in rejoins {
        g2 = r.await.unwrap().generation;
    }
    assert_eq!(g2, g1 + 1);
    let mut alive_ids = alive.to_vec();
    let leader = coord.describe_group(GROUP).await.unwrap().leader;
    alive_ids.sort_by_key(|m| *m != leader);
    sync_all(&coord, &alive_ids, g2).await;
    let d = coord.describe_group(GROUP).await.unwrap();
    assert_eq!((d.state.as_str(), d.generation, d.members.len()), ("Stable", g2, 2));

    // Stale commits are refused and change nothing; the current one counts.
    let refused = coord.commit_offsets(GROUP, &commit(dead, g1, 7)).await.unwrap_err();
    assert_eq!(code(refused), ErrorCode::UnknownMemberId);
    let refused = coord.commit_offsets(GROUP, &commit(&alive[0], g1, 8)).await.unwrap_err();
    assert_eq!(code(refused), ErrorCode::IllegalGeneration);
    let simple = coord.commit_offsets(GROUP, &OffsetCommitRequest::simple(commit("", -1, 9).offsets)).await;
    assert_eq!(code(simple.unwrap_err()), ErrorCode::UnknownMemberId, "the group has members");
    assert_eq!(coord.committed_offsets(GROUP).await.unwrap().offsets[0].offset, 1);
    coord.commit_offsets(GROUP, &commit(&alive[1], g2, 5)).await.unwrap();
    assert_eq!(coord.committed_offsets(GROUP).await.unwrap().offsets[0].offset, 5);

    // Both leave: the group is empty and simple commits work again.
    for m in alive {
        coord.leave_group(GROUP, &member(m, g2)).await.unwrap();
    }
    let d = coord.describe_group(GROUP).await.unwrap();
    assert_eq!((d.state.as_str(), d.members.len()), ("Empty", 0));
    coord.commit_offsets(GROUP, &OffsetCommitRequest::simple(commit("", -1, 6).offsets)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_failover_keeps_the_generation_assignments_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, &config());
    cluster.client(1).create_topic(&create_req("t", 3, &[])).await.unwrap();
    let coord = coordinator(&cluster, &[]).await;
    let (ids, g1) = form_group(&coord, 2).await;
    let old = coord.health().await.unwrap().node_id;
    cluster.kill(old);

    let coord = coordinator(&cluster, &[old]).await;
    assert_ne!(coord.health().await.unwrap().node_id, old);
    let d = coord.describe_group(GROUP).await.unwrap();
    assert_eq!((d.state.as_str(), d.generation, d.members.len()), ("Stable", g1, 2), "{d:?}");
    for m in &d.members {
        assert_eq!(m.assignment, format!("to {}", m.member_id), "the assignment survived the failover");
    }
    for m in &ids {
        coord.heartbeat(GROUP, &member(m, g1)).await.unwrap();
    }
    coord.commit_offsets(GROUP, &commit(&ids[0], g1, 3)).await.unwrap();
    let stale = coord.commit_offsets(GROUP, &commit(&ids[1], g1 - 1, 4)).await.unwrap_err();
    assert_eq!(code(stale), ErrorCode::IllegalGeneration);
    let unknown = coord.commit_offsets(GROUP, &commit("member-9-9-0", g1, 4)).await.unwrap_err();
    assert_eq!(code(unknown), ErrorCode::UnknownMemberId);
    assert_eq!(coord.committed_offsets(GROUP).await.unwrap().offsets[0].offset, 3);
}

/// One node with group timings and extra settings.
async fn single(dir: &std::path::Path, extra: &[&str]) -> Node {
    let mut o: Vec<&str> = GROUPS.iter().copied().filter(|s| !s.starts_with("offsets.topic.replication")).collect();
    o.extend(extra);
    let node = Node::start(dir, &o);
    let c = node.client();
    c.create_topic(&create_req("t", 1, &[])).await.unwrap();
    wait_serving(&c, "t", 0).await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_bug_switch_a_departed_members_commit_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let node = single(dir.path(), &["faultline.bugs=accept-stale-generation-commit"]).await;
    let c = node.client();
    let (ids, g1) = form_group(&c, 1).await;
    c.leave_group(GROUP, &member(&ids[0], g1)).await.unwrap();
    c.commit_offsets(GROUP, &commit(&ids[0], g1, 11)).await.unwrap();
    assert_eq!(c.committed_offsets(GROUP).await.unwrap().offsets[0].offset, 11, "the zombie's commit took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_group_requests_get_kafkas_errors_and_the_group_stays_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let node = single(dir.path(), &[]).await;
    let c = node.client();
    let (ids, g1) = form_group(&c, 2).await;
    let join = |req: JoinGroupRequest| {
        let c = c.clone();
        async move { code(c.join_group(GROUP, &req, Duration::ZERO).await.unwrap_err()) }
    };
    let mut other = join_req("");
    other.protocols[0].name = "roundrobin".into();
    assert_eq!(join(other).await, ErrorCode::InconsistentGroupProtocol);
    let mut none = join_req("");
    none.protocols.clear();
    assert_eq!(join(none).await, ErrorCode::InconsistentGroupProtocol);
    let mut short = join_req("");
    short.session_timeout_ms = 10;
    assert_eq!(join(short).await, ErrorCode::InvalidSessionTimeout);
    assert_eq!(join(join_req("ghost")).await, ErrorCode::UnknownMemberId);
    let ghost = SyncGroupRequest { member_id: "ghost".into(), generation: g1, assignments: Vec::new() };
    assert_eq!(code(c.sync_group(GROUP, &ghost, Duration::ZERO).await.unwrap_err()), ErrorCode::UnknownMemberId);
    let stale = SyncGroupRequest { member_id: ids[1].clone(), generation: g1 + 5, assignments: Vec::new() };
    assert_eq!(code(c.sync_group(GROUP, &stale, Duration::ZERO).await.unwrap_err()), ErrorCode::IllegalGeneration);
    let d = c.describe_group(GROUP).await.unwrap();
    assert_eq!((d.state.as_str(), d.generation, d.members.len()), ("Stable", g1, 2), "nothing changed");

    // Raw bodies: a bad shape is INVALID_REQUEST naming the field, never a 5xx.
    let url = format!("{}/v1/groups/{GROUP}/join", node.url);
    let resp = reqwest::Client::new().post(&url).body(r#"{"member_id":""}"#).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("protocol_type"));

    // An oversized assignment: refused, and the group rebalances.
    let leader = d.leader.clone();
    for m in &ids {
        let _ = c.heartbeat(GROUP, &member(m, g1)).await;
    }
    c.leave_group(GROUP, &member(ids.iter().find(|m| **m != leader).unwrap(), g1)).await.unwrap();
    let j = c.join_group(GROUP, &join_req(&leader), Duration::ZERO).await.unwrap();
    let huge = "x".repeat(1 << 20);
    let big = SyncGroupRequest {
        member_id: leader.clone(),
        generation: j.generation,
        assignments: vec![MemberAssignment { member_id: leader.clone(), assignment: huge.clone() + "x" }],
    };
    assert_eq!(code(c.sync_group(GROUP, &big, Duration::ZERO).await.unwrap_err()), ErrorCode::MessageTooLarge);
    let d = c.describe_group(GROUP).await.unwrap();
    assert_eq!(d.generation, j.generation, "{d:?}");
    assert_ne!(d.state, "Stable", "no member was given the oversized assignment");
    let unknown = c.describe_group("never-seen").await.unwrap();
    assert_eq!((unknown.state.as_str(), unknown.generation), ("Empty", 0), "described, not created");
}
