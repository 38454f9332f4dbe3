//! One partition replica hosted by this node: its log, leader epoch, ISR and
//! high watermark, and the produce and fetch paths over them.
//!
//! Architecture Invariant: a consumer fetch never returns an offset at or
//! above the high watermark. With a single replica the high watermark
//! follows the log end offset after each append; replication (a later
//! module) moves it by the ISR's fetch positions instead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::ErrorCode;
use tokio::sync::watch;

use crate::config::TopicConfig;
use crate::error::ApiError;
use crate::log::batch::{self, BatchHeader};
use crate::log::{AppendInfo, LogError, PartitionLog};

/// The mutable state of a replica, under one lock so that the log end
/// offset, the high watermark and the epoch are always seen together.
pub struct ReplicaState {
    pub log: PartitionLog,
    pub high_watermark: i64,
    pub leader_epoch: i32,
    /// In-sync replicas, leader included, as committed by the controller.
    pub isr: Vec<i32>,
}

pub struct Partition {
    pub topic: String,
    pub index: u32,
    pub config: TopicConfig,
    pub replicas: Vec<i32>,
    state: Mutex<ReplicaState>,
    /// Publishes the high watermark, so long-polling fetches and acks=all
    /// waiters wake when it moves.
    hw_tx: watch::Sender<i64>,
    /// Bytes and records appended since start, for `/metrics`.
    pub bytes_appended: AtomicU64,
    pub records_appended: AtomicU64,
}

/// What a fetch returns: decoded records below the high watermark.
pub struct FetchResult {
    pub batches: Vec<Vec<u8>>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

fn storage_error(topic: &str, index: u32, err: LogError) -> ApiError {
    match err {
        LogError::OffsetOutOfRange { offset, start, end } => ApiError::new(
            ErrorCode::OffsetOutOfRange,
            format!("offset {offset} is outside {topic}/{index}'s log [{start}, {end}]"),
        ),
        other => {
            tracing::error!(topic, partition = index, error = %other, "storage error");
            ApiError::new(ErrorCode::KafkaStorageError, format!("{topic}/{index}: {other}"))
        }
    }
}

impl Partition {
    pub fn new(topic: &str, index: u32, config: TopicConfig, replicas: Vec<i32>, log: PartitionLog, leader_epoch: i32) -> Partition {
        let leo = log.log_end_offset();
        let isr = replicas.clone();
        // A lone replica has every record it holds; a restarted single node
        // therefore serves its whole log again.
        let hw = leo;
        Partition {
            topic: topic.to_string(),
            index,
            config,
            replicas,
            state: Mutex::new(ReplicaState { log, high_watermark: hw, leader_epoch, isr }),
            hw_tx: watch::channel(hw).0,
            bytes_appended: AtomicU64::new(0),
            records_appended: AtomicU64::new(0),
        }
    }

    /// Runs `f` with the replica state locked. Never held across an await.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut ReplicaState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn high_watermark(&self) -> i64 {
        *self.hw_tx.borrow()
    }

    /// The replicas that acks=all needs, Kafka's effective min ISR:
    /// min(`min.insync.replicas`, replication factor).
    pub fn effective_min_isr(&self) -> usize {
        (self.config.min_insync_replicas as usize).min(self.replicas.len())
    }

    /// Appends an encoded batch as leader. `check_min_isr` is acks=all's
    /// pre-append check: with too few in-sync replicas nothing is appended.
    pub fn append(&self, batch: &mut [u8], check_min_isr: bool) -> Result<AppendInfo, ApiError> {
        let record_count = u64::from(batch::parse_header(batch).map(|h: BatchHeader| h.record_count).unwrap_or(0));
        let mut append = || {
            self.with_state(|st| {
                if check_min_isr && st.isr.len() < self.effective_min_isr() {
                    return Err(ApiError::new(
                        ErrorCode::NotEnoughReplicas,
                        format!("ISR {:?} is smaller than the effective min.insync.replicas {}", st.isr, self.effective_min_isr()),
                    ));
                }
                let epoch = st.leader_epoch;
                let info = st.log.append_as_leader(batch, epoch).map_err(|e| storage_error(&self.topic, self.index, e))?;
                self.advance_high_watermark(st);
                Ok(info)
            })
        };
        // With a flush policy an append may fsync; keep that off the async
        // workers' hot loop so other requests proceed meanwhile.
        let info = if self.config.log.flush_messages < u64::MAX / 2 || self.config.log.flush_ms.is_some() {
            tokio::task::block_in_place(append)?
        } else {
            append()?
        };
        self.bytes_appended.fetch_add(info.bytes as u64, Ordering::Relaxed);
        self.records_appended.fetch_add(record_count, Ordering::Relaxed);
        Ok(info)
    }

    /// Moves the high watermark to the minimum log end offset over the ISR.
    /// On a single replica that is its own log end offset. It never goes down.
    fn advance_high_watermark(&self, st: &mut ReplicaState) {
        let candidate = st.log.log_end_offset();
        if candidate > st.high_watermark && st.isr.len() >= self.effective_min_isr() {
            st.high_watermark = candidate;
            self.hw_tx.send_replace(candidate);
        }
    }

    /// Waits until the high watermark reaches `offset`, or `timeout` passes.
    /// Returns whether it did.
    pub async fn wait_for_high_watermark(&self, offset: i64, timeout: Duration) -> bool {
        let mut rx = self.hw_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|hw| *hw >= offset)).await.is_ok_and(|r| r.is_ok())
    }

    /// Reads batches from `offset` up to the high watermark, long-polling up
    /// to `max_wait` when nothing is there yet.
    pub async fn fetch(&self, offset: i64, max_bytes: usize, max_wait: Duration) -> Result<FetchResult, ApiError> {
        let deadline = Instant::now() + max_wait;
        loop {
            let read = self.with_state(|st| {
                let hw = st.high_watermark;
                let batches = st.log.read(offset, hw, max_bytes).map_err(|e| storage_error(&self.topic, self.index, e))?;
                Ok::<_, ApiError>(FetchResult { batches, high_watermark: hw, log_start_offset: st.log.log_start_offset() })
            })?;
            let now = Instant::now();
            if !read.batches.is_empty() || now >= deadline {
                return Ok(read);
            }
            // Bounded: each round either returns or waits for the HW to pass
            // `offset`; the deadline ends the loop.
            if !self.wait_for_high_watermark(offset + 1, deadline - now).await {
                return Ok(read);
            }
        }
    }

    pub fn flush_if_due(&self, now: Instant) {
        if self.config.log.flush_ms.is_some() {
            self.with_state(|st| st.log.flush_if_due(now));
        }
    }

    pub fn flush(&self) {
        self.with_state(|st| st.log.flush());
    }

    /// The partition's key in the recovery checkpoint and its directory name.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }
}
