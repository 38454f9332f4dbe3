//! The partition replicas this node hosts, and the topic-level operations
//! that go through the controller: create, describe, list.
//!
//! Which topics exist, who leads and who is in sync is the controller's
//! metadata ([`control::ControlPlane`]); this module keeps the local
//! replicas that metadata assigns here. Each replica directory holds a
//! `partition.json` (topic, index, topic configs) written atomically when
//! the replica is created, so that a restarted node reopens and recovers
//! its logs before it has heard from the controller.

pub mod control;
mod partition;
mod produce;
pub mod producer_state;
pub mod stats;
mod topic_name;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use faultline_client::api::{CreateTopicRequest, ErrorCode, PartitionDescription, TopicDescription};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use crate::config::{BrokerConfig, PARTITIONS_PER_TOPIC_MAX, validate_topic_overrides};
use crate::controller::metadata::{Command, CommandResult, MetadataImage, Rejection};
use crate::error::ApiError;
use crate::fsutil::write_atomic;
use crate::log::checkpoint;
use crate::log::{OpenMode, PartitionLog};
use control::ControlPlane;

pub use partition::{
    FetchPosition, FetchResult, FollowerState, Partition, PendingIsr, ReplicaFetch, ReplicaState, Role, View,
};
pub use produce::{
    Acks0Batch, FETCH_BYTES_MAX, FETCH_RECORDS_MAX, FETCH_WAIT_MS_MAX, PRODUCE_TIMEOUT_MS_MAX, decode_records,
};
pub use topic_name::{validate_topic_name, validate_user_topic_name};

/// The internal topic that stores consumer-group offsets, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Bound on partitions hosted by one node (file descriptors and memory grow with it).
pub const PARTITIONS_PER_NODE_MAX: usize = 10_000;
const PARTITION_META_FILE: &str = "partition.json";
const NODE_META_FILE: &str = "meta.properties";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} belongs to node.id {found}, but this node is node.id {expected}")]
    WrongNode { path: PathBuf, found: String, expected: i32 },
    #[error("opening {topic}/{partition}: {source}")]
    Log { topic: String, partition: u32, source: crate::log::LogError },
}

/// What a replica directory says about itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct PartitionMeta {
    topic: String,
    partition: u32,
    configs: BTreeMap<String, String>,
}

type PartitionKey = (String, u32);

pub struct Broker {
    pub config: BrokerConfig,
    partitions: RwLock<BTreeMap<PartitionKey, Arc<Partition>>>,
    /// Serialises creation of local replicas.
    create_lock: Mutex<()>,
    /// Recovery points and high watermarks read at start-up.
    recovery_points: BTreeMap<String, i64>,
    high_watermarks: BTreeMap<String, i64>,
    clean_start: bool,
    acks0_tx: mpsc::Sender<Acks0Batch>,
    acks0_rx: Mutex<Option<mpsc::Receiver<Acks0Batch>>>,
    control: OnceLock<Arc<dyn ControlPlane>>,
    /// Woken on every leader append, for follower long polls.
    pub data_arrived: Notify,
    /// The unused part of this node's producer-id block: `[next, end)`.
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    /// Counters `/metrics` shows.
    pub stats: stats::BrokerStats,
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StartupError + '_ {
    move |source| StartupError::Io { path: path.to_path_buf(), source }
}

impl Broker {
    /// Opens the data directory, recovering every replica log found there.
    pub fn open(config: BrokerConfig) -> Result<Broker, StartupError> {
        let dir = config.log_dir.clone();
        crate::fsutil::create_dir_durable(&dir).map_err(io_err(&dir))?;
        check_node_meta(&dir, config.node_id)?;
        let clean_start = checkpoint::take_clean_shutdown_marker(&dir).map_err(io_err(&dir))?;
        let recovery_points = checkpoint::read_recovery_points(&dir);
        let high_watermarks = checkpoint::read_offsets(&dir.join(checkpoint::HIGH_WATERMARK_FILE));
        let (acks0_tx, acks0_rx) = mpsc::channel(config.acks0_queue_batches);
        let broker = Broker {
            config,
            partitions: RwLock::new(BTreeMap::new()),
            create_lock: Mutex::new(()),
            recovery_points,
            high_watermarks,
            clean_start,
            acks0_tx,
            acks0_rx: Mutex::new(Some(acks0_rx)),
            control: OnceLock::new(),
            data_arrived: Notify::new(),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            stats: stats::BrokerStats::default(),
        };
        let mut metas = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            let meta_path = path.join(PARTITION_META_FILE);
            match std::fs::read(&meta_path) {
                Ok(bytes) => match serde_json::from_slice::<PartitionMeta>(&bytes) {
                    Ok(m) => metas.push(m),
                    Err(e) => {
                        tracing::warn!(
                            path = %meta_path.display(),
                            error = %e,
                            "ignoring a replica directory with a damaged partition.json"
                        )
                    }
                },
                Err(_) => continue,
            }
        }
        tracing::info!(
            dir = %dir.display(),
            clean_shutdown = clean_start,
            replicas = metas.len(),
            "opening data directory"
        );
        for m in metas {
            broker.open_replica(&m)?;
        }
        Ok(broker)
    }

    /// Connects the control plane; done once at start-up.
    pub fn attach_control(&self, control: Arc<dyn ControlPlane>) {
        if self.control.set(control).is_err() {
            panic!("the control plane is attached once");
        }
    }

    pub fn control(&self) -> &Arc<dyn ControlPlane> {
        self.control.get().expect("the control plane is attached at start-up")
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.control().image()
    }

    /// Whether the previous run ended with a clean shutdown.
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    fn open_replica(&self, meta: &PartitionMeta) -> Result<Arc<Partition>, StartupError> {
        let key = format!("{}-{}", meta.topic, meta.partition);
        let topic_config = self.config.topic_config(&meta.configs);
        let mode = OpenMode {
            clean_shutdown: self.clean_start,
            recovery_point: self.recovery_points.get(&key).copied().unwrap_or(0),
        };
        let dir = self.config.log_dir.join(&key);
        let mut log_config = topic_config.log.clone();
        if topic_config.bugs.on(crate::bugs::Bug::SkipFsyncOnFlushMessages) {
            // Bug `skip-fsync-on-flush-messages`: no fsync before the acknowledgement.
            log_config.flush_messages = u64::MAX;
        }
        let (log, report) = PartitionLog::open(&dir, log_config, mode).map_err(|source| StartupError::Log {
            topic: meta.topic.clone(),
            partition: meta.partition,
            source,
        })?;
        if let Some(t) = &report.truncation {
            tracing::warn!(
                partition = %key, segment = %t.segment, position = t.position, bytes_removed = t.bytes_removed,
                log_end_offset = t.log_end_offset, segments_deleted = ?report.segments_deleted, reason = %t.reason,
                "recovery truncated a torn or corrupt log tail"
            );
        } else if report.segments_scanned > 0 {
            tracing::info!(partition = %key, segments = report.segments_scanned, batches = report.batches_scanned,
                log_end_offset = log.log_end_offset(), "recovered log");
        }
        let hw = self.high_watermarks.get(&key).copied().unwrap_or(0);
        let p = Arc::new(Partition::new(&meta.topic, meta.partition, self.config.node_id, topic_config, log, hw));
        self.partitions.write().insert((meta.topic.clone(), meta.partition), p.clone());
        Ok(p)
    }

    /// The local replica of `topic/index`, creating it (directory,
    /// `partition.json`, empty log) when the metadata first assigns it here.
    pub fn ensure_replica(
        &self,
        topic: &str,
        index: u32,
        configs: &BTreeMap<String, String>,
    ) -> Result<Arc<Partition>, ApiError> {
        if let Some(p) = self.local(topic, index) {
            return Ok(p);
        }
        let _guard = self.create_lock.lock();
        if let Some(p) = self.local(topic, index) {
            return Ok(p);
        }
        if self.partitions.read().len() >= PARTITIONS_PER_NODE_MAX {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!("this node already hosts {PARTITIONS_PER_NODE_MAX} partitions"),
            ));
        }
        let meta = PartitionMeta { topic: topic.to_string(), partition: index, configs: configs.clone() };
        let dir = self.config.log_dir.join(format!("{topic}-{index}"));
        let storage = |e: String| {
            tracing::error!(error = %e, "creating a replica failed");
            ApiError::new(ErrorCode::KafkaStorageError, e)
        };
        // The new replica directory must survive a power loss with its name.
        crate::fsutil::create_dir_durable(&dir).map_err(|e| storage(format!("{}: {e}", dir.display())))?;
        write_atomic(&dir.join(PARTITION_META_FILE), &serde_json::to_vec_pretty(&meta).expect("serializes"))
            .map_err(|e| storage(format!("{}: {e}", dir.display())))?;
        self.open_replica(&meta).map_err(|e| storage(e.to_string()))
    }

    fn local(&self, topic: &str, index: u32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&(topic.to_string(), index)).cloned()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// The local replica of `topic/index` for a client request. A partition
    /// that exists but is not hosted here answers `NOT_LEADER_OR_FOLLOWER`
    /// with the leader's address, so clients find their way.
    pub fn partition(&self, topic: &str, index: i64) -> Result<Arc<Partition>, ApiError> {
        let local = u32::try_from(index).ok().and_then(|i| self.local(topic, i));
        if let Some(p) = local {
            return Ok(p);
        }
        let image = self.image();
        let meta = image.topics.get(topic).and_then(|t| usize::try_from(index).ok().and_then(|i| t.partitions.get(i)));
        match meta {
            None => Err(ApiError::unknown_partition(topic, index)),
            Some(p) => {
                let mut e = ApiError::new(
                    ErrorCode::NotLeaderOrFollower,
                    format!("{topic}/{index} is not hosted on this node"),
                );
                e.leader_id = p.leader;
                e.leader_address = p.leader.and_then(|l| image.brokers.get(&l)).map(|b| b.address.clone());
                Err(e)
            }
        }
    }

    /// Creates a topic through the controller, validating what can be
    /// validated locally first.
    pub async fn create_topic(&self, req: &CreateTopicRequest) -> Result<TopicDescription, ApiError> {
        validate_user_topic_name(&req.name)?;
        self.create_topic_unchecked(req).await
    }

    /// Checks a create as [`Broker::create_topic`] would, creating nothing
    /// (Kafka's `validate_only`).
    pub fn validate_create_topic(&self, req: &CreateTopicRequest) -> Result<(), ApiError> {
        validate_user_topic_name(&req.name)?;
        self.create_command(req)?;
        if self.image().topics.contains_key(&req.name) {
            return Err(ApiError::new(ErrorCode::TopicAlreadyExists, format!("topic `{}` already exists", req.name)));
        }
        Ok(())
    }

    /// The controller command a create asks for, checked as far as this
    /// node can: partitions, replication factor, overrides, name collisions.
    fn create_command(&self, req: &CreateTopicRequest) -> Result<(Command, i64, i64), ApiError> {
        let partitions = req.partitions.unwrap_or(self.config.num_partitions);
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!("partitions must be in 1..={PARTITIONS_PER_TOPIC_MAX}, got {partitions}"),
            ));
        }
        let rf = req.replication_factor.unwrap_or(self.config.default_replication_factor);
        if !(1..=i64::from(i16::MAX)).contains(&rf) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("replication factor must be at least 1, got {rf}"),
            ));
        }
        let configs = config_strings(&req.configs)?;
        let configs =
            validate_topic_overrides(&configs).map_err(|e| ApiError::new(ErrorCode::InvalidConfig, e.to_string()))?;
        let image = self.image();
        if let Some(other) =
            image.topics.keys().find(|n| *n != &req.name && n.replace('.', "_") == req.name.replace('.', "_"))
        {
            return Err(ApiError::new(
                ErrorCode::InvalidTopicException,
                format!(
                    "topic `{}` collides with existing topic `{other}`: \
                     '.' and '_' are interchangeable in metric names",
                    req.name
                ),
            ));
        }
        let unclean = self.config.topic_config(&configs).unclean_leader_election;
        let cmd = Command::CreateTopic {
            name: req.name.clone(),
            partitions: partitions as u32,
            replication_factor: rf as u16,
            configs,
            unclean_leader_election: unclean,
        };
        Ok((cmd, partitions, rf))
    }

    /// Creates a topic that may be internal; the name is already valid.
    pub(crate) async fn create_topic_unchecked(&self, req: &CreateTopicRequest) -> Result<TopicDescription, ApiError> {
        let (cmd, partitions, rf) = self.create_command(req)?;
        match self.control().propose(cmd).await.map_err(controller_unavailable)? {
            CommandResult::TopicCreated => {}
            CommandResult::Rejected { reason, message } => return Err(ApiError::new(rejection_code(reason), message)),
            other => {
                return Err(ApiError::new(
                    ErrorCode::UnknownServerError,
                    format!("unexpected controller answer {other:?}"),
                ));
            }
        }
        tracing::info!(topic = %req.name, partitions, replication_factor = rf, "created topic");
        self.wait_for_local_leaders(&req.name).await;
        self.describe_topic(&req.name)
    }

    /// Waits (bounded) until every partition of `topic` that the metadata
    /// says this node leads is leader locally, so a client that created a
    /// topic here can produce here at once.
    async fn wait_for_local_leaders(&self, topic: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let image = self.image();
            let Some(t) = image.topics.get(topic) else { return };
            let ready = t.partitions.iter().enumerate().all(|(i, p)| {
                p.leader != Some(self.config.node_id)
                    || self
                        .local(topic, i as u32)
                        .is_some_and(|l| l.view().is_leader && l.view().leader_epoch == p.leader_epoch)
            });
            if ready {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Hands out a cluster-unique producer id from this node's block,
    /// asking the controller for a new block when it runs out.
    pub async fn init_producer_id(&self) -> Result<i64, ApiError> {
        let mut block = self.producer_ids.lock().await;
        if block.0 >= block.1 {
            let cmd = Command::AllocateProducerIds { broker: self.config.node_id };
            match self.control().propose(cmd).await.map_err(controller_unavailable)? {
                CommandResult::ProducerIds { start, count } => *block = (start, start + count),
                other => {
                    return Err(ApiError::new(
                        ErrorCode::CoordinatorNotAvailable,
                        format!("no producer-id block: {other:?}"),
                    ));
                }
            }
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.image().topics.keys().cloned().collect()
    }

    /// Describes a topic from this node's metadata; high watermark and log
    /// end offset are this node's replica's, or -1 where it hosts none.
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, ApiError> {
        let image = self.image();
        let topic = image.topics.get(name).ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("topic `{name}` does not exist"))
        })?;
        let partitions = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (hw, leo, start) = match self.local(name, i as u32) {
                    Some(local) => local
                        .read_state(|st| (st.high_watermark(), st.log().log_end_offset(), st.log().log_start_offset())),
                    None => (-1, -1, -1),
                };
                PartitionDescription {
                    partition: i as u32,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    high_watermark: hw,
                    log_end_offset: leo,
                    log_start_offset: start,
                }
            })
            .collect();
        Ok(TopicDescription {
            name: name.to_string(),
            internal: name == OFFSETS_TOPIC,
            partitions,
            configs: topic.configs.clone(),
        })
    }

    /// Writes the recovery-point and high-watermark checkpoints, fsyncing
    /// every log first when `flush_first`.
    pub fn checkpoint(&self, flush_first: bool) -> std::io::Result<()> {
        let mut points = BTreeMap::new();
        let mut hws = BTreeMap::new();
        for p in self.all_partitions() {
            if flush_first {
                p.flush();
            }
            p.snapshot_producers();
            let (rp, hw) = p.read_state(|st| (st.log().recovery_point(), st.high_watermark()));
            points.insert(p.dir_name(), rp);
            hws.insert(p.dir_name(), hw);
        }
        checkpoint::write_recovery_points(&self.config.log_dir, &points)?;
        checkpoint::write_offsets(&self.config.log_dir.join(checkpoint::HIGH_WATERMARK_FILE), &hws)
    }

    pub fn acks0_sender(&self) -> mpsc::Sender<Acks0Batch> {
        self.acks0_tx.clone()
    }

    /// Hands the acks=0 queue's receiving end to the task that drains it (once).
    pub fn take_acks0_receiver(&self) -> Option<mpsc::Receiver<Acks0Batch>> {
        self.acks0_rx.lock().take()
    }
}

pub fn controller_unavailable(e: String) -> ApiError {
    ApiError::new(ErrorCode::RequestTimedOut, format!("the controller quorum did not answer: {e}"))
}

pub fn rejection_code(reason: Rejection) -> ErrorCode {
    match reason {
        Rejection::TopicAlreadyExists => ErrorCode::TopicAlreadyExists,
        Rejection::InvalidReplicationFactor => ErrorCode::InvalidReplicationFactor,
        Rejection::InvalidPartitions => ErrorCode::InvalidPartitions,
        Rejection::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
        Rejection::FencedLeaderEpoch => ErrorCode::FencedLeaderEpoch,
        _ => ErrorCode::InvalidRequest,
    }
}

/// Topic config values arrive as JSON scalars; Kafka's are strings.
fn config_strings(raw: &BTreeMap<String, serde_json::Value>) -> Result<BTreeMap<String, String>, ApiError> {
    raw.iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!("config `{k}` must be a string, number or boolean, got {other}"),
                    ));
                }
            };
            Ok((k.clone(), s))
        })
        .collect()
}

/// Refuses to start on a data directory that another node id wrote.
fn check_node_meta(dir: &std::path::Path, node_id: i32) -> Result<(), StartupError> {
    let path = dir.join(NODE_META_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found = text.lines().find_map(|l| l.strip_prefix("node.id=")).unwrap_or("").trim().to_string();
            if found != node_id.to_string() {
                return Err(StartupError::WrongNode { path, found, expected: node_id });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomic(&path, format!("version=1\nnode.id={node_id}\n").as_bytes()).map_err(io_err(dir))
        }
        Err(e) => Err(StartupError::Io { path, source: e }),
    }
}
