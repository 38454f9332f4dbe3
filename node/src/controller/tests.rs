//! Controller quorums over real HTTP on 127.0.0.1: election, forwarding,
//! failover, restart from disk, broker liveness and fencing, and a single
//! voter. Every wait is bounded.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::metadata::{Command, CommandResult, MetadataImage};
use super::{Controller, ControllerConfig, SNAPSHOT_TUNING, SnapshotTuning};

/// Small raft timeouts keep each test to a few seconds.
const ELECTION_TIMEOUT_MS: u64 = 200;
const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// Long enough that brokers registered without heartbeats stay unfenced
/// for the whole of the tests that are not about liveness.
const SESSION_TIMEOUT_LONG_MS: u64 = 60_000;
const SESSION_TIMEOUT_SHORT_MS: u64 = 1_000;
/// Bound on waiting for an election or convergence.
const CONVERGE_MS: u64 = 10_000;

struct Node {
    controller: Arc<Controller>,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

struct Cluster {
    _root: tempfile::TempDir,
    dirs: BTreeMap<i32, PathBuf>,
    /// Every node's base URL, voters and learners.
    urls: BTreeMap<i32, String>,
    voters: BTreeMap<i32, String>,
    session_timeout_ms: u64,
    snapshots: SnapshotTuning,
    nodes: BTreeMap<i32, Node>,
}

async fn bind_retrying(addr: &str) -> TcpListener {
    // The port was just released by a stopped node; binding again may race
    // the kernel for a moment.
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("could not bind {addr} again");
}

impl Cluster {
    async fn start(ids: &[i32], session_timeout_ms: u64) -> Cluster {
        Cluster::start_with_learners(ids, &[], session_timeout_ms).await
    }

    /// Binds a listener per node first (the ports make the voter URLs),
    /// then starts every controller; `learners` are nodes outside the voters.
    async fn start_with_learners(voter_ids: &[i32], learners: &[i32], session_timeout_ms: u64) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let mut listeners = BTreeMap::new();
        let mut urls = BTreeMap::new();
        for &id in voter_ids.iter().chain(learners) {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            urls.insert(id, format!("http://{}", l.local_addr().unwrap()));
            listeners.insert(id, l);
        }
        let voters = urls.iter().filter(|(id, _)| voter_ids.contains(id)).map(|(id, u)| (*id, u.clone())).collect();
        let dirs = urls.keys().map(|id| (*id, root.path().join(format!("node-{id}")))).collect();
        let mut cluster = Cluster {
            _root: root,
            dirs,
            urls,
            voters,
            session_timeout_ms,
            snapshots: SNAPSHOT_TUNING,
            nodes: BTreeMap::new(),
        };
        for (id, l) in listeners {
            cluster.start_node(id, l).await;
        }
        cluster
    }

    async fn start_node(&mut self, id: i32, listener: TcpListener) {
        let config = ControllerConfig {
            node_id: id,
            voters: self.voters.clone(),
            kafka_address: None,
            dir: self.dirs[&id].clone(),
            election_timeout_ms: ELECTION_TIMEOUT_MS,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
            session_timeout_ms: self.session_timeout_ms,
        };
        let controller = Controller::start_tuned(config, self.snapshots).await.expect("controller starts");
        let (stop_server, stopped) = oneshot::channel::<()>();
        let serve = axum::serve(listener, controller.router()).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let server = tokio::spawn(async move {
            let _ = serve.into_future().await;
        });
        self.nodes.insert(id, Node { controller, stop_server, server });
    }

    /// Stops a node like a clean shutdown: raft first, then its listener
    /// and keep-alive connections.
    async fn stop(&mut self, id: i32) {
        let node = self.nodes.remove(&id).expect("node is running");
        node.controller.shutdown().await;
        let _ = node.stop_server.send(());
        if tokio::time::timeout(Duration::from_secs(5), node.server).await.is_err() {
            panic!("node {id}'s HTTP server did not stop within 5 s");
        }
    }

    async fn restart(&mut self, id: i32) {
        let addr = self.urls[&id].trim_start_matches("http://").to_string();
        let listener = bind_retrying(&addr).await;
        self.start_node(id, listener).await;
    }

    fn get(&self, id: i32) -> &Arc<Controller> {
        &self.nodes[&id].controller
    }

    /// Waits until every running voter names the same running leader.
    async fn leader(&self) -> i32 {
        eventually("a leader every running voter agrees on", CONVERGE_MS, || {
            let voters = self.nodes.iter().filter(|(id, _)| self.voters.contains_key(id));
            let views: Vec<Option<i32>> = voters.map(|(_, n)| n.controller.leader()).collect();
            let first = views[0]?;
            (views.iter().all(|v| *v == Some(first)) && self.nodes.contains_key(&first)).then_some(first)
        })
        .await
    }

    fn follower_of(&self, leader: i32) -> i32 {
        *self.nodes.keys().find(|id| **id != leader && self.voters.contains_key(id)).expect("a follower is running")
    }

    /// Waits until every running node has the same image, at least at `offset`.
    async fn converged(&self, offset: u64) -> Arc<MetadataImage> {
        eventually(&format!("every running node's image equal at offset >= {offset}"), CONVERGE_MS, || {
            let images: Vec<Arc<MetadataImage>> = self.nodes.values().map(|n| n.controller.image()).collect();
            (images[0].offset >= offset && images.iter().all(|i| i == &images[0])).then(|| images[0].clone())
        })
        .await
    }

    async fn shutdown(mut self) {
        let ids: Vec<i32> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

/// Polls `f` every 20 ms until it yields a value; panics after `timeout_ms`.
async fn eventually<T>(what: &str, timeout_ms: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout_ms} ms waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn register(id: i32) -> Command {
    Command::RegisterBroker { id, address: format!("http://broker-{id}"), kafka: None }
}

async fn registered(c: &Controller, id: i32) -> i64 {
    match c.propose(register(id)).await.expect("proposal commits") {
        CommandResult::BrokerRegistered { epoch } => epoch,
        other => panic!("unexpected result {other:?}"),
    }
}

/// A proposal at a follower is forwarded to the leader, and its result is
/// already visible on the follower when `propose` returns; all three
/// voters then hold equal images at the same offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_a_leader_and_forward_a_follower_proposal() {
    let cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_LONG_MS).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);

    let epoch = registered(cluster.get(follower), 7).await;
    let here = cluster.get(follower).image();
    assert_eq!(here.brokers[&7].epoch, epoch, "read-your-writes on the proposing follower");
    assert!(here.offset >= epoch as u64);

    let image = cluster.converged(here.offset).await;
    assert_eq!(image.brokers[&7].epoch, epoch);
    cluster.shutdown().await;
}

/// With the leader gone, the two survivors elect a new one and proposals
/// from either of them commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_when_the_leader_stops() {
    let mut cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_LONG_MS).await;
    let old = cluster.leader().await;
    registered(cluster.get(old), 1).await;
    cluster.stop(old).await;

    let new = cluster.leader().await;
    assert_ne!(new, old);
    let follower = cluster.follower_of(new);
    let e2 = registered(cluster.get(follower), 2).await;
    let e3 = registered(cluster.get(new), 3).await;
    let image = cluster.converged(e3 as u64).await;
    assert!(image.brokers.contains_key(&1) && image.brokers[&2].epoch == e2 && image.brokers[&3].epoch == e3);
    cluster.shutdown().await;
}

/// A voter restarted from its directory recovers its image from its
/// snapshot and log before it hears from anyone, then catches up on what
/// it missed while down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_voter_recovers_from_snapshot_and_log_and_catches_up() {
    let mut cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_LONG_MS).await;
    let leader = cluster.leader().await;
    let victim = cluster.follower_of(leader);
    for id in 10..13 {
        registered(cluster.get(leader), id).await;
    }
    let before_snapshot = cluster.converged(cluster.get(leader).image().offset).await;
    cluster.get(victim).trigger_snapshot().await;
    eventually("the victim's snapshot", CONVERGE_MS, || {
        cluster.get(victim).metrics.borrow().snapshot.is_some_and(|s| s.index >= before_snapshot.offset).then_some(())
    })
    .await;
    for id in 13..15 {
        registered(cluster.get(leader), id).await;
    }
    let at_stop = cluster.converged(cluster.get(leader).image().offset).await;
    cluster.stop(victim).await;
    // Committed while the victim is down.
    let missed = registered(cluster.get(leader), 15).await;

    cluster.restart(victim).await;
    let recovered = cluster.get(victim).image();
    assert!(recovered.offset >= before_snapshot.offset, "the snapshot is loaded at start-up");
    eventually("the victim re-applies its committed log", CONVERGE_MS, || {
        (cluster.get(victim).image().offset >= at_stop.offset).then_some(())
    })
    .await;
    let image = cluster.converged(missed as u64).await;
    assert_eq!(image.brokers.keys().copied().collect::<Vec<_>>(), (10..16).collect::<Vec<_>>());
    cluster.shutdown().await;
}

/// A voter that was down while the leader snapshotted and purged the
/// entries it misses catches up by a snapshot sent over HTTP, then by log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_voter_catches_up_by_an_installed_snapshot() {
    let mut cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_LONG_MS).await;
    let tuning = SnapshotTuning { every_entries: 10, keep_entries: 2 };
    // Restart everyone with frequent snapshots (the ports stay the same).
    cluster.snapshots = tuning;
    for id in [1, 2, 3] {
        cluster.stop(id).await;
        cluster.restart(id).await;
    }
    let leader = cluster.leader().await;
    let victim = cluster.follower_of(leader);
    let victim_log_end = cluster.get(victim).metrics.borrow().last_log_index.unwrap_or(0);
    cluster.stop(victim).await;
    let mut last = 0;
    for id in 100..130 {
        last = registered(cluster.get(leader), id).await;
    }
    eventually("the leader purges past what the victim has", CONVERGE_MS, || {
        cluster.get(leader).metrics.borrow().purged.is_some_and(|p| p.index > victim_log_end).then_some(())
    })
    .await;
    cluster.restart(victim).await;
    let image = cluster.converged(last as u64).await;
    assert_eq!(image.brokers.len(), 30);
    // The entries after its log end are gone from the leader's log: only an
    // installed snapshot can have brought them.
    let installed = cluster.get(victim).metrics.borrow().snapshot;
    assert!(installed.is_some_and(|s| s.index > victim_log_end), "the victim installed a snapshot: {installed:?}");
    cluster.shutdown().await;
}

/// Every voter restarts from disk at once: the committed metadata survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_quorum_restart_keeps_committed_metadata() {
    let mut cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_LONG_MS).await;
    let leader = cluster.leader().await;
    let epoch = registered(cluster.get(leader), 4).await;
    cluster.converged(epoch as u64).await;
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
    for id in [1, 2, 3] {
        cluster.restart(id).await;
    }
    let leader = cluster.leader().await;
    let again = registered(cluster.get(leader), 5).await;
    let image = cluster.converged(again as u64).await;
    assert_eq!(image.brokers[&4].epoch, epoch);
    cluster.shutdown().await;
}

/// A broker that never heartbeats is fenced after about the session
/// timeout; brokers whose nodes heartbeat stay unfenced, also across a
/// controller leader change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_brokers_are_fenced_and_live_ones_survive_a_controller_failover() {
    let cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_SHORT_MS).await;
    let leader = cluster.leader().await;
    for id in [1, 2, 3] {
        let c = cluster.get(id);
        tokio::time::timeout(Duration::from_secs(10), c.register_broker(format!("http://broker-{id}")))
            .await
            .expect("registration within 10 s")
            .expect("registration commits");
    }
    let silent_at = Instant::now();
    let silent_epoch = registered(cluster.get(leader), 9).await;
    let fenced_after = eventually("the silent broker is fenced", 5 * SESSION_TIMEOUT_SHORT_MS, || {
        cluster.get(leader).image().brokers[&9].fenced.then(|| silent_at.elapsed())
    })
    .await;
    assert!(
        fenced_after >= Duration::from_millis(SESSION_TIMEOUT_SHORT_MS),
        "fenced after {fenced_after:?}: too early"
    );
    assert_eq!(cluster.get(leader).image().brokers[&9].epoch, silent_epoch);
    let live = |c: &Controller| [1, 2, 3].iter().all(|id| !c.image().brokers[id].fenced);
    assert!(live(cluster.get(leader)), "heartbeating brokers stay unfenced");

    // Move leadership without stopping any broker.
    let follower = cluster.follower_of(leader);
    cluster.get(follower).raft.trigger().elect().await.unwrap();
    let new = eventually("a new leader", CONVERGE_MS, || {
        let l = cluster.get(follower).leader()?;
        (l != leader).then_some(l)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2 * SESSION_TIMEOUT_SHORT_MS)).await;
    let image = cluster.converged(cluster.get(new).image().offset).await;
    for id in [1, 2, 3] {
        assert!(!image.brokers[&id].fenced, "broker {id} was fenced across the failover");
        assert_eq!(Some(image.brokers[&id].epoch), *cluster.get(id).broker_epoch().borrow());
    }
    cluster.shutdown().await;
}

/// A broker that finds itself fenced while alive registers again with a
/// new, larger epoch and keeps heartbeating under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_live_broker_re_registers_with_a_new_epoch() {
    let cluster = Cluster::start(&[1, 2, 3], SESSION_TIMEOUT_SHORT_MS).await;
    let leader = cluster.leader().await;
    let node = cluster.follower_of(leader);
    let c = cluster.get(node).clone();
    let first =
        tokio::time::timeout(Duration::from_secs(10), c.register_broker("http://me".into())).await.unwrap().unwrap();
    let fence = Command::FenceBroker { id: node, epoch: first };
    assert_eq!(c.propose(fence).await.unwrap(), CommandResult::BrokerFenced);
    let mut epochs = c.broker_epoch();
    let second = tokio::time::timeout(Duration::from_secs(5), epochs.wait_for(|e| e.is_some_and(|e| e > first)))
        .await
        .expect("re-registered within 5 s")
        .unwrap()
        .unwrap();
    let image = cluster.converged(second as u64).await;
    assert_eq!((image.brokers[&node].epoch, image.brokers[&node].fenced), (second, false));
    // Still alive a full session later: the new epoch is heartbeating.
    tokio::time::sleep(Duration::from_millis(SESSION_TIMEOUT_SHORT_MS * 3 / 2)).await;
    let image = cluster.get(leader).image();
    assert_eq!((image.brokers[&node].epoch, image.brokers[&node].fenced), (second, false));
    cluster.shutdown().await;
}

/// The one-node default: a single voter elects itself, commits, registers
/// its broker, and recovers everything after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_works_and_restarts() {
    let mut cluster = Cluster::start(&[1], SESSION_TIMEOUT_SHORT_MS).await;
    assert_eq!(cluster.leader().await, 1);
    let c = cluster.get(1).clone();
    let epoch =
        tokio::time::timeout(Duration::from_secs(5), c.register_broker("http://me".into())).await.unwrap().unwrap();
    assert_eq!(*c.broker_epoch().borrow(), Some(epoch));
    let other = registered(&c, 2).await;
    cluster.stop(1).await;
    cluster.restart(1).await;
    assert_eq!(cluster.leader().await, 1);
    let c = cluster.get(1).clone();
    let image = eventually("the restarted voter's image", CONVERGE_MS, || {
        let i = c.image();
        (i.offset >= other as u64).then_some(i)
    })
    .await;
    assert_eq!((image.brokers[&1].epoch, image.brokers[&2].epoch), (epoch, other));
    cluster.shutdown().await;
}

/// A node outside the voters registers its broker through a voter, is
/// added as a raft learner at its registered address, and then applies the
/// metadata, knows the leader, and proposes like any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_voter_node_joins_as_a_learner() {
    let cluster = Cluster::start_with_learners(&[1, 2, 3], &[4], SESSION_TIMEOUT_SHORT_MS).await;
    let leader = cluster.leader().await;
    let learner = cluster.get(4).clone();
    let url = cluster.urls[&4].clone();
    let epoch = tokio::time::timeout(Duration::from_secs(10), learner.register_broker(url)).await.unwrap().unwrap();
    assert_eq!(learner.image().brokers[&4].epoch, epoch, "the learner applied its own registration");
    eventually("the learner knows the leader", CONVERGE_MS, || (learner.leader() == Some(leader)).then_some(())).await;
    let other = registered(&learner, 8).await;
    let image = cluster.converged(other as u64).await;
    assert!(!image.brokers[&4].fenced && image.brokers[&8].epoch == other);
    // Its heartbeats reach the active controller: still live a session later.
    tokio::time::sleep(Duration::from_millis(SESSION_TIMEOUT_SHORT_MS * 3 / 2)).await;
    assert!(!cluster.get(leader).image().brokers[&4].fenced);
    cluster.shutdown().await;
}

/// Config errors are named before anything starts.
#[tokio::test]
async fn a_controller_without_voters_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = ControllerConfig {
        node_id: 4,
        voters: BTreeMap::new(),
        kafka_address: None,
        dir: dir.path().to_path_buf(),
        election_timeout_ms: ELECTION_TIMEOUT_MS,
        heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
        session_timeout_ms: SESSION_TIMEOUT_SHORT_MS,
    };
    let err = Controller::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("no controller voters"), "{err}");
}
