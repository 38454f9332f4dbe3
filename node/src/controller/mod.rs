//! The KRaft-style controller: cluster metadata replicated by a Raft quorum
//! (openraft) embedded in every node.
//!
//! - [`metadata`]: the metadata image and the deterministic commands that
//!   change it, with Kafka's election and ISR rules;
//! - `raft`: openraft's types, the fsync'd log/vote/snapshot store and the
//!   HTTP transport;
//! - `routes`: the internal HTTP routes ([`Controller::router`]);
//! - `liveness`: broker heartbeats and fencing on the active controller;
//! - `wire`: JSON bodies of proposal forwarding and heartbeats.
//!
//! [`Controller`] is the API the broker uses: propose a [`Command`] from any
//! node (forwarded to the raft leader), watch the applied
//! [`MetadataImage`], register this node's broker and keep it alive.
//! Voters are fixed by configuration; other nodes become raft learners at
//! the address their broker registers with.
//!
//! Architecture Invariant: no openraft type appears outside this module.

pub mod metadata;

mod liveness;
mod raft;
mod routes;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::liveness::Liveness;
use self::metadata::{Command, CommandResult, MetadataImage};
use self::raft::log_store::LogStore;
use self::raft::network::HttpNetworkFactory;
use self::raft::state_machine::StateMachine;
use self::raft::types::{NodeId, Raft, from_raft_id, to_raft_id};
use self::wire::{HEARTBEAT_PATH, HeartbeatReply, HeartbeatRequest, PROPOSE_PATH, ProposeReply};

/// End-to-end bound on [`Controller::propose`]: finding the leader,
/// forwarding, commit, and the local apply.
pub const PROPOSE_TIMEOUT_MS: u64 = 5_000;
/// Attempts per proposal; each failed one (no leader, not the leader,
/// connection refused) is known not to have proposed anything.
const PROPOSE_ATTEMPTS_MAX: u32 = 64;
/// Backoff between proposal attempts, doubling from min to max.
const PROPOSE_BACKOFF_MIN_MS: u64 = 20;
const PROPOSE_BACKOFF_MAX_MS: u64 = 500;
/// Registration attempts before [`Controller::register_broker`] gives up;
/// with the backoff cap that is over an hour, so callers normally bound it
/// with their own timeout or cancellation first.
const REGISTER_ATTEMPTS_MAX: u32 = 1_000;
const REGISTER_BACKOFF_MAX_MS: u64 = 1_000;
/// Build a snapshot after this many applied entries; the log keeps
/// [`SNAPSHOT_KEEP_ENTRIES`] behind it so slow followers catch up from the
/// log rather than a snapshot. Together they bound the in-memory log.
const SNAPSHOT_EVERY_ENTRIES: u64 = 1_000;
const SNAPSHOT_KEEP_ENTRIES: u64 = 100;
/// Snapshot chunk size on the wire; below the routes' body limit.
const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;
/// Idle pooled connections are dropped after this, so a keep-alive
/// connection does not outlive a network partition for long.
const HTTP_POOL_IDLE_MS: u64 = 2_000;

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// This node. A node outside `voters` runs a raft learner: it gets the
    /// metadata once the leader adds it, after its broker registers.
    pub node_id: i32,
    /// Voter id -> base URL of that voter's HTTP API, e.g.
    /// "http://127.0.0.1:9092". Raft RPCs travel over the nodes' normal
    /// HTTP listener under `/internal/...`.
    pub voters: BTreeMap<i32, String>,
    /// Where the raft log, vote and snapshots live (`<log.dirs>/__controller`).
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`: openraft's minimum election
    /// timeout; the maximum is twice this. Also bounds one raft RPC.
    pub election_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`: broker -> active controller.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: silence after which the active
    /// controller fences a broker.
    pub session_timeout_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    #[error("invalid controller config: {0}")]
    Config(String),
    #[error("controller storage: {0}")]
    Storage(#[from] std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
    /// No leader took the command within the timeout; it was not proposed.
    #[error("no controller quorum: {0}")]
    NoQuorum(String),
    /// The command was proposed but its outcome is unknown: it may still commit.
    #[error("controller proposal timed out: {0}")]
    Timeout(String),
    /// Forwarding to the leader failed after the request may have been
    /// delivered: the outcome is unknown.
    #[error("forwarding to controller {leader} failed: {message}")]
    Forward { leader: i32, message: String },
    /// Committed at `index`, but this node did not apply it in time.
    #[error("committed at index {index} but not yet applied on this node")]
    NotApplied { index: u64 },
    #[error("unexpected controller answer: {0}")]
    Unexpected(String),
    #[error("the controller is shut down")]
    Shutdown,
}

/// One controller voter (and this node's broker registration).
pub struct Controller {
    config: ControllerConfig,
    raft: Raft,
    metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    /// Client for forwarding and heartbeats (raft RPCs share its pool).
    http: reqwest::Client,
    liveness: Mutex<Liveness>,
    broker_epoch_tx: watch::Sender<Option<i64>>,
    /// The liveness checker; aborted at shutdown.
    liveness_task: Mutex<Option<JoinHandle<()>>>,
    /// This node's broker heartbeat loop, once registered; aborted at shutdown.
    heartbeat_task: Mutex<Option<JoinHandle<()>>>,
    stopped: AtomicBool,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn validate(c: &ControllerConfig) -> Result<(), ControllerError> {
    let bad = |m: String| Err(ControllerError::Config(m));
    if c.node_id < 0 {
        return bad(format!("node id {} is negative", c.node_id));
    }
    if c.voters.is_empty() {
        return bad("no controller voters".into());
    }
    if let Some(id) = c.voters.keys().find(|id| **id < 0) {
        return bad(format!("voter id {id} is negative"));
    }
    if c.election_timeout_ms < 10 || c.heartbeat_interval_ms == 0 || c.session_timeout_ms <= c.heartbeat_interval_ms {
        return bad(format!(
            "need election timeout >= 10 ms and session timeout > heartbeat interval > 0; got {} / {} / {} ms",
            c.election_timeout_ms, c.session_timeout_ms, c.heartbeat_interval_ms
        ));
    }
    Ok(())
}

/// How often to snapshot and how much log to keep behind a snapshot; the
/// constants above, except in tests that need snapshots sooner.
#[derive(Clone, Copy, Debug)]
struct SnapshotTuning {
    every_entries: u64,
    keep_entries: u64,
}

const SNAPSHOT_TUNING: SnapshotTuning = SnapshotTuning { every_entries: SNAPSHOT_EVERY_ENTRIES, keep_entries: SNAPSHOT_KEEP_ENTRIES };

fn raft_config(c: &ControllerConfig, snapshots: SnapshotTuning) -> Result<openraft::Config, ControllerError> {
    let election = c.election_timeout_ms;
    openraft::Config {
        cluster_name: "faultline-controller".into(),
        election_timeout_min: election,
        election_timeout_max: 2 * election,
        // Also the append RPC timeout, so not too short for an fsync.
        heartbeat_interval: (election / 3).max(1),
        install_snapshot_timeout: election.max(200),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshots.every_entries),
        max_in_snapshot_log_to_keep: snapshots.keep_entries,
        // Purge as soon as a snapshot allows, so the kept log stays bounded.
        purge_batch_size: 1,
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        ..openraft::Config::default()
    }
    .validate()
    .map_err(|e| ControllerError::Config(e.to_string()))
}

impl Controller {
    /// Opens the store (fsync'd raft log + vote + snapshot), starts openraft,
    /// and initialises the membership (all voters) on first start. Does not
    /// wait for a quorum.
    pub async fn start(config: ControllerConfig) -> Result<Arc<Controller>, ControllerError> {
        Controller::start_tuned(config, SNAPSHOT_TUNING).await
    }

    async fn start_tuned(config: ControllerConfig, snapshots: SnapshotTuning) -> Result<Arc<Controller>, ControllerError> {
        validate(&config)?;
        let raft_config = raft_config(&config, snapshots)?;
        let election = ms(config.election_timeout_ms);
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(election)
            .pool_idle_timeout(ms(HTTP_POOL_IDLE_MS))
            .build()
            .map_err(|e| ControllerError::Config(format!("HTTP client: {e}")))?;
        let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::default()));
        let dir = config.dir.clone();
        let (log, sm) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            Ok((LogStore::open(&dir)?, StateMachine::open(&dir, image_tx)?))
        })
        .await
        .map_err(|e| ControllerError::Storage(std::io::Error::other(e.to_string())))??;
        let pristine = log.is_pristine();
        let network = HttpNetworkFactory::new(http.clone(), election, election / 2);
        let raft = Raft::new(to_raft_id(config.node_id), Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| ControllerError::Raft(e.to_string()))?;
        // A node outside the voters joins as a raft learner instead: the
        // leader adds it once its broker registration names its address.
        if pristine && config.voters.contains_key(&config.node_id) {
            let members: BTreeMap<NodeId, BasicNode> =
                config.voters.iter().map(|(id, url)| (to_raft_id(*id), BasicNode::new(url))).collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node = config.node_id, "controller: initialised the voter membership"),
                // Another voter's log or vote got here first: already formed.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(ControllerError::Raft(format!("initialise membership: {e}"))),
            }
        }
        let session = ms(config.session_timeout_ms);
        let controller = Arc::new(Controller {
            metrics: raft.metrics(),
            raft,
            image_rx,
            http,
            liveness: Mutex::new(Liveness::new(session)),
            broker_epoch_tx: watch::channel(None).0,
            liveness_task: Mutex::new(None),
            heartbeat_task: Mutex::new(None),
            stopped: AtomicBool::new(false),
            config,
        });
        let period = (session / 4).max(ms(5));
        let task = tokio::spawn(liveness_loop(Arc::downgrade(&controller), period));
        *controller.liveness_task.lock().unwrap() = Some(task);
        Ok(controller)
    }

    /// The internal routes (`/internal/raft/...`, `/internal/controller/...`)
    /// with their state applied, to merge into the node's router.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        routes::router(self.clone())
    }

    /// The latest image applied on this node.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_rx.borrow().clone()
    }

    /// Fires on every apply (and snapshot install) on this node.
    pub fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_rx.clone()
    }

    /// The raft leader (the active controller) as this node believes.
    pub fn leader(&self) -> Option<i32> {
        self.metrics.borrow().current_leader.map(from_raft_id)
    }

    /// This node's broker epoch: `None` until registered; changes when the
    /// broker re-registers after being fenced.
    pub fn broker_epoch(&self) -> watch::Receiver<Option<i64>> {
        self.broker_epoch_tx.subscribe()
    }

    fn is_leader(&self) -> bool {
        let m = self.metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(to_raft_id(self.config.node_id))
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Proposes `cmd` from any node: locally on the leader, else forwarded
    /// to it. Resolves once the command is committed and applied on this
    /// node (read-your-writes), within [`PROPOSE_TIMEOUT_MS`].
    ///
    /// Only attempts known not to have proposed anything are retried (no
    /// leader, "not the leader", connection refused). `Timeout` and
    /// `Forward` errors leave the outcome unknown.
    pub async fn propose(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
        let deadline = Instant::now() + ms(PROPOSE_TIMEOUT_MS);
        let (index, result) = self.commit(cmd, deadline).await?;
        // The leader applied it; give this node a moment beyond the deadline
        // to apply it too.
        self.wait_applied(index, deadline.max(Instant::now() + 2 * ms(self.config.election_timeout_ms))).await?;
        Ok(result)
    }

    /// Gets `cmd` committed and applied by the leader, by `deadline`;
    /// returns its log index and result. The retry rules of [`Self::propose`].
    async fn commit(&self, cmd: Command, deadline: Instant) -> Result<(u64, CommandResult), ControllerError> {
        let mut backoff = ms(PROPOSE_BACKOFF_MIN_MS);
        let mut hint: Option<i32> = None;
        let mut last = String::from("no attempt finished in time");
        for attempt in 0..PROPOSE_ATTEMPTS_MAX {
            if self.stopped() {
                return Err(ControllerError::Shutdown);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let target = hint.take().or_else(|| self.leader()).or_else(|| self.some_voter(attempt));
            // `Err(why)`: this attempt proposed nothing, so retrying is safe.
            let reply: Result<ProposeReply, String> = match target {
                Some(l) if l == self.config.node_id => Ok(self.propose_here(cmd.clone(), remaining).await),
                Some(l) => match self.forward(l, &cmd, remaining).await {
                    Ok(reply) => Ok(reply),
                    Err(Forwarded::NotSent(why)) => Err(why),
                    Err(Forwarded::Unknown(e)) => return Err(e),
                },
                None => Err("no leader known".into()),
            };
            match reply {
                Ok(ProposeReply::Applied { index, result }) => return Ok((index, result)),
                Ok(ProposeReply::Failed { message }) => return Err(ControllerError::Timeout(message)),
                Ok(ProposeReply::NotLeader { leader }) if leader.is_some() && leader != target => {
                    // Follow the redirect at once.
                    hint = leader;
                    last = format!("controller {target:?} is not the leader; it names {leader:?}");
                    continue;
                }
                Ok(ProposeReply::NotLeader { leader }) => last = format!("controller {target:?} is not the leader; leader {leader:?}"),
                Err(why) => last = why,
            }
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(ms(PROPOSE_BACKOFF_MAX_MS));
        }
        Err(ControllerError::NoQuorum(last))
    }

    /// A voter to ask when no leader is known (a learner before it hears
    /// from the leader): they take turns by attempt, and any of them
    /// answers with the leader's id.
    fn some_voter(&self, attempt: u32) -> Option<i32> {
        let n = self.config.voters.len();
        self.config.voters.keys().nth(attempt as usize % n.max(1)).copied()
    }

    /// Proposes on this node's raft, which refuses unless it leads.
    async fn propose_here(&self, cmd: Command, timeout: Duration) -> ProposeReply {
        match tokio::time::timeout(timeout, self.raft.client_write(cmd)).await {
            Ok(Ok(resp)) => match resp.data.result {
                Some(result) => ProposeReply::Applied { index: resp.log_id.index, result },
                None => ProposeReply::Failed { message: format!("entry {} applied without a result", resp.log_id) },
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                ProposeReply::NotLeader { leader: f.leader_id.map(from_raft_id) }
            }
            Ok(Err(e)) => ProposeReply::Failed { message: e.to_string() },
            Err(_) => ProposeReply::Failed { message: format!("not committed within {} ms", timeout.as_millis()) },
        }
    }

    async fn forward(&self, leader: i32, cmd: &Command, timeout: Duration) -> Result<ProposeReply, Forwarded> {
        let Some(base) = self.config.voters.get(&leader) else {
            return Err(Forwarded::NotSent(format!("leader {leader} is not a configured voter")));
        };
        let url = format!("{}{PROPOSE_PATH}", base.trim_end_matches('/'));
        let unknown = |message: String| Forwarded::Unknown(ControllerError::Forward { leader, message });
        let resp = match self.http.post(&url).timeout(timeout).json(cmd).send().await {
            Ok(resp) => resp,
            Err(e) if e.is_connect() => return Err(Forwarded::NotSent(format!("{url}: {e}"))),
            Err(e) if e.is_timeout() => {
                return Err(Forwarded::Unknown(ControllerError::Timeout(format!("no answer from {url} within {} ms", timeout.as_millis()))));
            }
            Err(e) => return Err(unknown(format!("{url}: {e}"))),
        };
        if !resp.status().is_success() {
            return Err(unknown(format!("{url}: HTTP {}", resp.status())));
        }
        resp.json::<ProposeReply>().await.map_err(|e| unknown(format!("{url}: {e}")))
    }

    /// Waits until this node's image has applied log `index`.
    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ControllerError> {
        let mut rx = self.image_rx.clone();
        loop {
            if rx.borrow_and_update().offset >= index {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ControllerError::Shutdown),
                Err(_) => return Err(ControllerError::NotApplied { index }),
            }
        }
    }

    /// Registers this node's broker (retrying with backoff until the quorum
    /// answers), publishes the epoch on [`Controller::broker_epoch`], and
    /// starts heartbeating to the active controller. Callers bound the wait
    /// with a timeout or by dropping the future.
    pub async fn register_broker(self: &Arc<Self>, address: String) -> Result<i64, ControllerError> {
        let cmd = Command::RegisterBroker { id: self.config.node_id, address: address.clone() };
        let mut backoff = ms(PROPOSE_BACKOFF_MIN_MS);
        let mut last = None;
        for attempt in 0..REGISTER_ATTEMPTS_MAX {
            match self.commit(cmd.clone(), Instant::now() + ms(PROPOSE_TIMEOUT_MS)).await {
                Ok((index, CommandResult::BrokerRegistered { epoch })) => {
                    // Committed: never register again for a slow local apply
                    // (a learner applies only once the leader has added it).
                    let apply_wait = Instant::now() + ms(self.config.session_timeout_ms.max(PROPOSE_TIMEOUT_MS));
                    if let Err(e) = self.wait_applied(index, apply_wait).await {
                        tracing::warn!(node = self.config.node_id, epoch, error = %e, "controller: registration not yet applied here");
                    }
                    self.broker_epoch_tx.send_replace(Some(epoch));
                    let task = tokio::spawn(heartbeat_loop(Arc::downgrade(self), address));
                    if let Some(old) = self.heartbeat_task.lock().unwrap().replace(task) {
                        old.abort();
                    }
                    tracing::info!(node = self.config.node_id, epoch, "controller: broker registered");
                    return Ok(epoch);
                }
                Ok((_, other)) => return Err(ControllerError::Unexpected(format!("{other:?}"))),
                Err(ControllerError::Shutdown) => return Err(ControllerError::Shutdown),
                Err(e) => {
                    tracing::warn!(node = self.config.node_id, attempt, error = %e, "controller: broker registration failed; retrying");
                    last = Some(e);
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(ms(REGISTER_BACKOFF_MAX_MS));
        }
        Err(last.unwrap_or(ControllerError::NoQuorum("no registration attempt".into())))
    }

    /// Answers a broker heartbeat: recorded if this node is the active
    /// controller, else refused with the leader's id.
    fn handle_heartbeat(&self, req: HeartbeatRequest) -> HeartbeatReply {
        if !self.is_leader() {
            return HeartbeatReply::NotLeader { leader: self.leader() };
        }
        let image = self.image();
        let registered = self.liveness.lock().unwrap().record(&image, req.broker_id, req.broker_epoch, Instant::now());
        HeartbeatReply::Ok { registered }
    }

    /// One round of this node's broker lifecycle: re-register if the image
    /// shows our incarnation fenced, else heartbeat the active controller.
    async fn heartbeat_once(&self, address: &str) {
        let Some(epoch) = *self.broker_epoch_tx.borrow() else { return };
        let me = self.config.node_id;
        if self.image().brokers.get(&me).is_some_and(|b| b.epoch == epoch && b.fenced) {
            tracing::warn!(node = me, epoch, "controller: this broker was fenced; re-registering");
            match self.propose(Command::RegisterBroker { id: me, address: address.to_string() }).await {
                Ok(CommandResult::BrokerRegistered { epoch }) => {
                    self.broker_epoch_tx.send_replace(Some(epoch));
                }
                other => tracing::warn!(node = me, result = ?other, "controller: re-registration failed; will retry"),
            }
            return;
        }
        let req = HeartbeatRequest { broker_id: me, broker_epoch: epoch };
        let mut target = self.leader().or_else(|| self.config.voters.keys().copied().find(|v| *v != me));
        // At most one redirect per round: the next round asks again.
        for _ in 0..2 {
            let reply = match target {
                None => return,
                Some(l) if l == me => self.handle_heartbeat(req),
                Some(l) => match self.send_heartbeat(l, req).await {
                    Some(reply) => reply,
                    None => return,
                },
            };
            match reply {
                HeartbeatReply::Ok { .. } => return,
                HeartbeatReply::NotLeader { leader } if leader != target => target = leader,
                HeartbeatReply::NotLeader { .. } => return,
            }
        }
    }

    async fn send_heartbeat(&self, leader: i32, req: HeartbeatRequest) -> Option<HeartbeatReply> {
        let base = self.config.voters.get(&leader)?;
        let url = format!("{}{HEARTBEAT_PATH}", base.trim_end_matches('/'));
        let timeout = ms(self.config.heartbeat_interval_ms.max(50));
        let result = async { self.http.post(&url).timeout(timeout).json(&req).send().await?.error_for_status()?.json().await };
        match result.await {
            Ok(reply) => Some(reply),
            Err(e) => {
                tracing::debug!(url, error = %e, "controller: heartbeat not delivered");
                None
            }
        }
    }

    /// On the leader: fences every incarnation silent for longer than the
    /// session timeout. Elsewhere: forgets the heartbeat table.
    async fn check_liveness(&self) {
        let (leading, term) = {
            let m = self.metrics.borrow();
            (m.state == ServerState::Leader, m.current_term)
        };
        if !leading {
            self.liveness.lock().unwrap().step_down();
            return;
        }
        let image = self.image();
        self.add_learners(&image).await;
        let expired = self.liveness.lock().unwrap().expired(&image, term, Instant::now());
        for (id, epoch) in expired {
            tracing::warn!(broker = id, epoch, session_timeout_ms = self.config.session_timeout_ms, "controller: no heartbeat; fencing");
            let reply = self.propose_here(Command::FenceBroker { id, epoch }, ms(self.config.session_timeout_ms)).await;
            if !matches!(reply, ProposeReply::Applied { .. }) {
                tracing::warn!(broker = id, epoch, ?reply, "controller: fencing did not commit; will retry");
            }
        }
    }

    /// On the leader: adds every live registered broker that is neither a
    /// voter nor in the raft membership as a learner, at its registered
    /// address, so nodes outside the voters replicate the metadata too.
    async fn add_learners(&self, image: &MetadataImage) {
        let membership = self.metrics.borrow().membership_config.clone();
        let joining: Vec<(i32, String)> = image
            .brokers
            .values()
            .filter(|b| !b.fenced && !self.config.voters.contains_key(&b.id))
            .filter(|b| membership.membership().get_node(&to_raft_id(b.id)).is_none())
            .map(|b| (b.id, b.address.clone()))
            .collect();
        for (id, address) in joining {
            let added = tokio::time::timeout(ms(PROPOSE_TIMEOUT_MS), self.raft.add_learner(to_raft_id(id), BasicNode::new(&address), false));
            match added.await {
                Ok(Ok(_)) => tracing::info!(node = id, address, "controller: added a non-voter node as a raft learner"),
                Ok(Err(e)) => tracing::warn!(node = id, error = %e, "controller: adding a learner failed; will retry"),
                Err(_) => tracing::warn!(node = id, "controller: adding a learner timed out; will retry"),
            }
        }
    }

    /// Stops raft and the background tasks. Idempotent.
    pub async fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for slot in [&self.liveness_task, &self.heartbeat_task] {
            if let Some(task) = slot.lock().unwrap().take() {
                task.abort();
            }
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "controller: raft did not shut down cleanly");
        }
    }

    /// Builds a snapshot now (tests exercise recovery from snapshots).
    #[cfg(test)]
    async fn trigger_snapshot(&self) {
        self.raft.trigger().snapshot().await.expect("raft is running");
    }
}

/// How a forwarding attempt failed.
enum Forwarded {
    /// The request never reached the leader: safe to retry.
    NotSent(String),
    /// It may have been delivered: the outcome is unknown.
    Unknown(ControllerError),
}

/// Runs [`Controller::check_liveness`] every `period` until the controller
/// stops or is dropped.
async fn liveness_loop(controller: Weak<Controller>, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(c) = controller.upgrade() else { return };
        if c.stopped() {
            return;
        }
        c.check_liveness().await;
    }
}

/// Runs [`Controller::heartbeat_once`] every heartbeat interval until the
/// controller stops or is dropped.
async fn heartbeat_loop(controller: Weak<Controller>, address: String) {
    let period = match controller.upgrade() {
        Some(c) => ms(c.config.heartbeat_interval_ms),
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(c) = controller.upgrade() else { return };
        if c.stopped() {
            return;
        }
        c.heartbeat_once(&address).await;
    }
}
