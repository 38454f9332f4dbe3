//! The KRaft-style controller: cluster metadata replicated by a Raft quorum
//! (openraft) embedded in every node.
//!
//! - [`metadata`]: the metadata image and the deterministic commands that
//!   change it, with Kafka's election and ISR rules;
//! - `raft`: openraft's types, the fsync'd log/vote/snapshot store and the
//!   HTTP transport;
//! - `routes`: the internal HTTP routes ([`Controller::router`]);
//! - `propose`: proposals from any node, forwarded to the leader;
//! - `lifecycle`: this node's broker registration and heartbeats, and the
//!   active controller's fencing and learner admission;
//! - `liveness`: the active controller's heartbeat table;
//! - `wire`: JSON bodies of proposal forwarding and heartbeats.
//!
//! [`Controller`] is the API the broker uses: propose a [`metadata::Command`] from any
//! node (forwarded to the raft leader), watch the applied
//! [`MetadataImage`], register this node's broker and keep it alive.
//! Voters are fixed by configuration; other nodes become raft learners at
//! the address their broker registers with.
//!
//! Architecture Invariant: no openraft type appears outside this module.

pub mod metadata;

mod lifecycle;
mod liveness;
mod propose;
mod raft;
mod routes;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::liveness::Liveness;
use self::metadata::MetadataImage;
use self::raft::log_store::LogStore;
use self::raft::network::HttpNetworkFactory;
use self::raft::state_machine::StateMachine;
use self::raft::types::{NodeId, Raft, from_raft_id, to_raft_id};

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
    /// `host:port` of this node's Kafka-protocol listener, registered with
    /// its broker so that Kafka clients get it in Metadata.
    pub kafka_address: Option<String>,
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

const SNAPSHOT_TUNING: SnapshotTuning =
    SnapshotTuning { every_entries: SNAPSHOT_EVERY_ENTRIES, keep_entries: SNAPSHOT_KEEP_ENTRIES };

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

    async fn start_tuned(
        config: ControllerConfig,
        snapshots: SnapshotTuning,
    ) -> Result<Arc<Controller>, ControllerError> {
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
        let task = tokio::spawn(lifecycle::liveness_loop(Arc::downgrade(&controller), period));
        *controller.liveness_task.lock() = Some(task);
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

    /// The quorum as this node's Raft metrics show it.
    pub fn quorum(&self) -> crate::broker::control::QuorumView {
        let m = self.metrics.borrow();
        crate::broker::control::QuorumView {
            leader: m.current_leader.map(from_raft_id),
            epoch: i32::try_from(m.current_term).unwrap_or(i32::MAX),
            voters: m.membership_config.membership().voter_ids().map(from_raft_id).collect(),
            applied_offset: m.last_applied.map_or(-1, |l| i64::try_from(l.index).unwrap_or(i64::MAX)),
        }
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

    /// Stops raft and the background tasks. Idempotent.
    pub async fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        for slot in [&self.liveness_task, &self.heartbeat_task] {
            if let Some(task) = slot.lock().take() {
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
