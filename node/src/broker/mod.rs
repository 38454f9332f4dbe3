//! The topics and partitions this node hosts: start-up from disk, topic
//! creation and description, and lookup for the produce and fetch paths.
//!
//! Topic metadata lives in `topics.json` in the data directory, replaced
//! atomically; partition data lives in one directory per partition. The
//! metadata is written before the partition directories are created, so a
//! crash in between leaves a topic whose empty logs are created at the next
//! start, never a directory nobody knows about.

mod partition;
mod produce;
mod topic_name;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use faultline_client::api::{CreateTopicRequest, ErrorCode, PartitionDescription, TopicDescription};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::{BrokerConfig, PARTITIONS_PER_TOPIC_MAX, validate_topic_overrides};
use crate::error::ApiError;
use crate::fsutil::write_atomic;
use crate::log::checkpoint;
use crate::log::{OpenMode, PartitionLog};

pub use partition::{FetchResult, Partition, ReplicaState};
pub use produce::{Acks0Batch, decode_records};
pub use topic_name::validate_topic_name;

/// The internal topic that stores consumer-group offsets, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Bound on all partitions of all topics on one node (file descriptors and
/// memory grow with it).
pub const PARTITIONS_PER_NODE_MAX: usize = 10_000;
const TOPICS_FILE: &str = "topics.json";
const NODE_META_FILE: &str = "meta.properties";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is damaged: {detail}")]
    CorruptMetadata { path: PathBuf, detail: String },
    #[error("{path} belongs to node.id {found}, but this node is node.id {expected}")]
    WrongNode { path: PathBuf, found: String, expected: i32 },
    #[error("opening {topic}/{partition}: {source}")]
    Log { topic: String, partition: u32, source: crate::log::LogError },
}

/// A topic's durable description.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct TopicRecord {
    name: String,
    partitions: u32,
    replication_factor: u16,
    configs: BTreeMap<String, String>,
    leader_epoch: i32,
}

pub struct Topic {
    pub name: String,
    pub internal: bool,
    pub overrides: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Partition>>,
    record: TopicRecord,
}

pub struct Broker {
    pub config: BrokerConfig,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation and writes of `topics.json`.
    create_lock: Mutex<()>,
    /// Recovery points read at start-up, used when logs are opened.
    recovery_points: BTreeMap<String, i64>,
    clean_start: bool,
    acks0_tx: mpsc::Sender<Acks0Batch>,
    acks0_rx: Mutex<Option<mpsc::Receiver<Acks0Batch>>>,
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> StartupError + '_ {
    move |source| StartupError::Io { path: path.to_path_buf(), source }
}

impl Broker {
    /// Opens the data directory, recovering every partition log.
    pub fn open(config: BrokerConfig) -> Result<Broker, StartupError> {
        let dir = config.log_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        check_node_meta(&dir, config.node_id)?;
        let clean_start = checkpoint::take_clean_shutdown_marker(&dir).map_err(io_err(&dir))?;
        let recovery_points = checkpoint::read_recovery_points(&dir);
        let (acks0_tx, acks0_rx) = mpsc::channel(config.acks0_queue_batches);
        let broker = Broker {
            config,
            topics: RwLock::new(BTreeMap::new()),
            create_lock: Mutex::new(()),
            recovery_points,
            clean_start,
            acks0_tx,
            acks0_rx: Mutex::new(Some(acks0_rx)),
        };
        let path = dir.join(TOPICS_FILE);
        let records: Vec<TopicRecord> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StartupError::CorruptMetadata { path: path.clone(), detail: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StartupError::Io { path, source: e }),
        };
        tracing::info!(dir = %dir.display(), clean_shutdown = clean_start, topics = records.len(), "opening data directory");
        let mut topics = BTreeMap::new();
        for record in records {
            let topic = broker.open_topic(record)?;
            topics.insert(topic.name.clone(), Arc::new(topic));
        }
        *broker.topics.write().unwrap() = topics;
        Ok(broker)
    }

    /// Whether the previous run ended with a clean shutdown.
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    fn open_topic(&self, record: TopicRecord) -> Result<Topic, StartupError> {
        let topic_config = self.config.topic_config(&record.configs);
        let mut partitions = Vec::with_capacity(record.partitions as usize);
        for index in 0..record.partitions {
            let key = format!("{}-{index}", record.name);
            let mode = OpenMode {
                clean_shutdown: self.clean_start,
                recovery_point: self.recovery_points.get(&key).copied().unwrap_or(0),
            };
            let dir = self.config.log_dir.join(&key);
            let (log, report) = PartitionLog::open(&dir, topic_config.log.clone(), mode)
                .map_err(|source| StartupError::Log { topic: record.name.clone(), partition: index, source })?;
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
            let replicas = vec![self.config.node_id];
            partitions.push(Arc::new(Partition::new(&record.name, index, topic_config.clone(), replicas, log, record.leader_epoch)));
        }
        Ok(Topic {
            name: record.name.clone(),
            internal: record.name == OFFSETS_TOPIC,
            overrides: record.configs.clone(),
            partitions,
            record,
        })
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().unwrap().get(name).cloned()
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.topics.read().unwrap().keys().cloned().collect()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics.read().unwrap().values().flat_map(|t| t.partitions.iter().cloned()).collect()
    }

    /// The partition `topic/index`, or `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn partition(&self, topic: &str, index: i64) -> Result<Arc<Partition>, ApiError> {
        let t = self.topic(topic).ok_or_else(|| ApiError::unknown_partition(topic, index))?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i).cloned())
            .ok_or_else(|| ApiError::unknown_partition(topic, index))
    }

    /// Creates a topic, validating everything before anything is written.
    pub fn create_topic(&self, req: &CreateTopicRequest) -> Result<TopicDescription, ApiError> {
        validate_topic_name(&req.name)?;
        if req.name.starts_with("__") {
            return Err(ApiError::new(ErrorCode::InvalidTopicException, format!("topic name `{}` is reserved for internal topics", req.name)));
        }
        self.create_topic_unchecked(req)
    }

    /// Creates a topic that may be internal; the name is already valid.
    pub(crate) fn create_topic_unchecked(&self, req: &CreateTopicRequest) -> Result<TopicDescription, ApiError> {
        let partitions = req.partitions.unwrap_or(self.config.num_partitions);
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(ApiError::new(
                ErrorCode::InvalidPartitions,
                format!("partitions must be in 1..={PARTITIONS_PER_TOPIC_MAX}, got {partitions}"),
            ));
        }
        let rf = req.replication_factor.unwrap_or(self.config.default_replication_factor);
        let brokers = 1;
        if !(1..=brokers).contains(&rf) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!("replication factor must be in 1..={brokers} (the number of brokers), got {rf}"),
            ));
        }
        let configs = config_strings(&req.configs)?;
        let configs = validate_topic_overrides(&configs).map_err(|e| ApiError::new(ErrorCode::InvalidConfig, e.to_string()))?;
        let _guard = self.create_lock.lock().unwrap();
        {
            let topics = self.topics.read().unwrap();
            if topics.contains_key(&req.name) {
                return Err(ApiError::new(ErrorCode::TopicAlreadyExists, format!("topic `{}` already exists", req.name)));
            }
            let collides = |n: &String| n.replace('.', "_") == req.name.replace('.', "_");
            if let Some(other) = topics.keys().find(|n| collides(n)) {
                return Err(ApiError::new(
                    ErrorCode::InvalidTopicException,
                    format!("topic `{}` collides with existing topic `{other}`: '.' and '_' are interchangeable in metric names", req.name),
                ));
            }
            let hosted: usize = topics.values().map(|t| t.partitions.len()).sum();
            if hosted + partitions as usize > PARTITIONS_PER_NODE_MAX {
                return Err(ApiError::new(
                    ErrorCode::InvalidPartitions,
                    format!("this node hosts {hosted} partitions; {partitions} more would exceed {PARTITIONS_PER_NODE_MAX}"),
                ));
            }
        }
        let record = TopicRecord { name: req.name.clone(), partitions: partitions as u32, replication_factor: rf as u16, configs, leader_epoch: 0 };
        let mut records: Vec<TopicRecord> = self.topics.read().unwrap().values().map(|t| t.record.clone()).collect();
        records.push(record.clone());
        self.write_topics_file(&records)?;
        let topic = self.open_topic(record).map_err(|e| {
            tracing::error!(error = %e, "creating partition logs failed");
            ApiError::new(ErrorCode::KafkaStorageError, e.to_string())
        })?;
        let topic = Arc::new(topic);
        self.topics.write().unwrap().insert(topic.name.clone(), topic.clone());
        tracing::info!(topic = %topic.name, partitions, replication_factor = rf, "created topic");
        Ok(describe(&topic))
    }

    fn write_topics_file(&self, records: &[TopicRecord]) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec_pretty(records).expect("topic records serialize");
        write_atomic(&self.config.log_dir.join(TOPICS_FILE), &bytes).map_err(|e| {
            tracing::error!(error = %e, "writing topics.json failed");
            ApiError::new(ErrorCode::KafkaStorageError, format!("writing topic metadata: {e}"))
        })
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, ApiError> {
        let topic = self.topic(name).ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("topic `{name}` does not exist"))
        })?;
        Ok(describe(&topic))
    }

    /// Fsyncs every log and writes the recovery-point checkpoint.
    pub fn checkpoint_recovery_points(&self, flush_first: bool) -> std::io::Result<()> {
        let mut points = BTreeMap::new();
        for p in self.all_partitions() {
            if flush_first {
                p.flush();
            }
            points.insert(p.dir_name(), p.with_state(|st| st.log.recovery_point()));
        }
        checkpoint::write_recovery_points(&self.config.log_dir, &points)
    }

    pub fn acks0_sender(&self) -> mpsc::Sender<Acks0Batch> {
        self.acks0_tx.clone()
    }

    /// Hands the acks=0 queue's receiving end to the task that drains it (once).
    pub fn take_acks0_receiver(&self) -> Option<mpsc::Receiver<Acks0Batch>> {
        self.acks0_rx.lock().unwrap().take()
    }
}

fn describe(topic: &Topic) -> TopicDescription {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            p.with_state(|st| PartitionDescription {
                partition: p.index,
                leader: Some(p.replicas[0]),
                leader_epoch: st.leader_epoch,
                replicas: p.replicas.clone(),
                isr: st.isr.clone(),
                high_watermark: st.high_watermark,
                log_end_offset: st.log.log_end_offset(),
                log_start_offset: st.log.log_start_offset(),
            })
        })
        .collect();
    TopicDescription { name: topic.name.clone(), internal: topic.internal, partitions, configs: topic.overrides.clone() }
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
                    return Err(ApiError::new(ErrorCode::InvalidConfig, format!("config `{k}` must be a string, number or boolean, got {other}")));
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
