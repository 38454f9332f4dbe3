//! One partition replica hosted by this node: its log, leader-epoch cache,
//! role (leader, follower or offline), ISR and high watermark, and every
//! path that reads or changes them: leader appends, follower fetches served
//! by a leader, follower appends, truncation, and role changes driven by
//! the controller's metadata.
//!
//! Architecture Invariant: a consumer fetch never returns an offset at or
//! above the high watermark.
//!
//! Architecture Invariant: the high watermark of a leader only grows, and
//! is the minimum log end offset over the maximal ISR (R2.3, R2.4); it does
//! not move while the committed ISR is below the effective min ISR (R1.7).
//!
//! Architecture Invariant: a leader changes its ISR only through the
//! controller; a shrink takes effect when the controller has committed it.
//!
//! Layout: `replica_state` holds [`ReplicaState`], the state under the
//! lock, whose private fields change only through methods that keep (and
//! in debug builds assert) the invariants above; `replication` holds both
//! sides of a follower's fetch; this file the [`Partition`] itself, its
//! client paths (produce, consumer fetch), role changes and ISR proposals.

mod replica_state;
mod replication;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::ErrorCode;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::bugs::Bug;
use crate::config::TopicConfig;
use crate::error::ApiError;
use crate::log::batch::{self, BatchHeader};
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::replica::epoch_cache::EpochCache;

use super::producer_state::{BATCHES_TO_RETAIN, ProducerState, SeqCheck};
use replica_state::Assignment;
pub use replica_state::{FollowerState, PendingIsr, ReplicaState, Role};
pub use replication::{FetchPosition, ReplicaFetch};

/// What the rest of the node may observe without the lock: enough for
/// acks=all waiters and long polls to know when to wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub is_leader: bool,
    pub log_end_offset: i64,
}

pub struct Partition {
    pub topic: String,
    pub index: u32,
    pub node_id: i32,
    pub config: TopicConfig,
    pub dir: PathBuf,
    state: Mutex<ReplicaState>,
    view_tx: watch::Sender<View>,
    /// Bytes and records appended since start, for `/metrics`.
    pub bytes_appended: AtomicU64,
    pub records_appended: AtomicU64,
}

/// What a consumer fetch read: whole batches below the high watermark.
pub struct FetchResult {
    pub batches: Vec<Vec<u8>>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The end of what the consumer may see: the high watermark, or the
    /// log end under bug `serve-consumers-to-leo`.
    pub visible_end: i64,
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
    /// Wraps an opened log. The replica starts offline; the controller's
    /// metadata makes it a leader or a follower. `high_watermark` is the
    /// checkpointed value, capped by the log end offset.
    pub fn new(
        topic: &str,
        index: u32,
        node_id: i32,
        config: TopicConfig,
        log: PartitionLog,
        high_watermark: i64,
    ) -> Partition {
        let dir = log.dir().to_path_buf();
        let epoch_cache = EpochCache::load(&dir).unwrap_or_else(|| rebuild_epoch_cache(&log));
        let mut epoch_cache = epoch_cache;
        epoch_cache.truncate_from_end(log.log_end_offset());
        let mut log = log;
        let hw = high_watermark.clamp(log.log_start_offset(), log.log_end_offset());
        if config.bugs.on(Bug::TruncateToLocalHw) && hw < log.log_end_offset() {
            // Pre-KIP-101: a restarted replica trusts its checkpointed HW.
            let before = log.log_end_offset();
            match log.truncate_to(hw) {
                Ok(end) => {
                    epoch_cache.truncate_from_end(end);
                    tracing::warn!(
                        partition = %format!("{topic}/{index}"),
                        from = before,
                        to = end,
                        "bug truncate-to-local-hw: truncated to the local HW on restart"
                    );
                }
                Err(e) => tracing::error!(error = %e, "bug truncate-to-local-hw: truncation failed"),
            }
        }
        let producers = ProducerState::load(&dir, &log, retained_batches(&config));
        let state = ReplicaState::new(node_id, &config, log, epoch_cache, producers, hw);
        let view = state.view();
        Partition {
            topic: topic.to_string(),
            index,
            node_id,
            config,
            dir,
            state: Mutex::new(state),
            view_tx: watch::channel(view).0,
            bytes_appended: AtomicU64::new(0),
            records_appended: AtomicU64::new(0),
        }
    }

    /// Runs `f` with the replica state locked, read-only: what the HTTP,
    /// debug and metrics handlers and the replica manager use. Every change
    /// goes through this module's methods instead, so the rules of
    /// [`ReplicaState`] are kept in one place. Never held across an await.
    pub fn read_state<T>(&self, f: impl FnOnce(&ReplicaState) -> T) -> T {
        f(&self.state.lock())
    }

    /// Runs `f` with the replica state locked for a change, then publishes
    /// the view if it changed. Private to this module and its children (see
    /// [`Self::read_state`]). Never held across an await.
    fn update_state<T>(&self, f: impl FnOnce(&mut ReplicaState) -> T) -> T {
        let mut guard = self.state.lock();
        let out = f(&mut guard);
        let view = guard.view();
        self.view_tx.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
        out
    }

    pub fn view(&self) -> View {
        *self.view_tx.borrow()
    }

    pub fn high_watermark(&self) -> i64 {
        self.view().high_watermark
    }

    fn not_leader(&self, st: &ReplicaState) -> ApiError {
        let mut e = ApiError::new(
            ErrorCode::NotLeaderOrFollower,
            format!("this node is not the leader of {}/{}", self.topic, self.index),
        );
        if let Role::Follower { leader, leader_address, .. } = st.role() {
            e.leader_id = Some(*leader);
            e.leader_address = Some(leader_address.clone());
        }
        e
    }

    /// Appends an encoded batch as leader and returns where it landed and
    /// the leader epoch it was written in. `check_min_isr` is acks=all's
    /// pre-append check: with too few in-sync replicas nothing is appended.
    pub fn append(&self, batch: &mut [u8], check_min_isr: bool) -> Result<(AppendInfo, i32), ApiError> {
        let record_count = u64::from(batch::parse_header(batch).map(|h: BatchHeader| h.record_count).unwrap_or(0));
        let mut append = || {
            self.update_state(|st| {
                if !st.is_leader() {
                    return Err(self.not_leader(st));
                }
                let min_isr = st.effective_min_isr();
                if check_min_isr && self.enforces_min_isr() && st.isr().len() < min_isr {
                    return Err(ApiError::new(
                        ErrorCode::NotEnoughReplicas,
                        format!("ISR {:?} is smaller than the effective min.insync.replicas {min_isr}", st.isr()),
                    ));
                }
                let epoch = st.leader_epoch();
                let header =
                    batch::parse_header(batch).map_err(|e| ApiError::invalid(format!("unparsable batch: {e}")))?;
                let p = header.producer;
                if p.producer_id >= 0 {
                    match st.producers().check(p.producer_id, p.producer_epoch, p.base_sequence, header.record_count) {
                        SeqCheck::Append => {}
                        SeqCheck::Duplicate { first_offset, last_offset } => {
                            return Ok((AppendInfo { base_offset: first_offset, last_offset, bytes: 0 }, epoch));
                        }
                        SeqCheck::Refuse(code, message) => return Err(ApiError::new(code, message)),
                    }
                }
                let info = st.append_as_leader(batch, header).map_err(|e| storage_error(&self.topic, self.index, e))?;
                st.advance_leader_hw();
                Ok((info, epoch))
            })
        };
        // With a flush policy an append may fsync; keep that off the async
        // workers' hot loop so other requests proceed meanwhile.
        let out = if self.config.log.flush_messages < u64::MAX / 2 || self.config.log.flush_ms.is_some() {
            tokio::task::block_in_place(append)?
        } else {
            append()?
        };
        self.bytes_appended.fetch_add(out.0.bytes as u64, Ordering::Relaxed);
        self.records_appended.fetch_add(record_count, Ordering::Relaxed);
        Ok(out)
    }

    /// Waits until the high watermark reaches `offset` while this node
    /// stays leader in `epoch`. Ok(true) when reached, Ok(false) on timeout,
    /// Err when leadership was lost meanwhile.
    pub async fn wait_for_commit(&self, offset: i64, epoch: i32, timeout: Duration) -> Result<bool, ApiError> {
        let mut rx = self.view_tx.subscribe();
        // Copy the view out at once: the `Ref` that `wait_for` returns holds
        // the watch's read lock, and `read_state` below takes the state lock,
        // which `update_state` holds while it takes the watch's write lock.
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|v| v.high_watermark >= offset || !v.is_leader || v.leader_epoch != epoch),
        )
        .await
        .map(|r| r.map(|v| *v));
        match waited {
            Err(_) | Ok(Err(_)) => Ok(false),
            Ok(Ok(v)) if v.high_watermark >= offset && v.is_leader && v.leader_epoch == epoch => Ok(true),
            Ok(Ok(_)) => Err(self.read_state(|st| {
                let mut e = self.not_leader(st);
                e.message = format!(
                    "leadership of {}/{} moved to epoch {} before the batch was committed; it may or may not survive",
                    self.topic,
                    self.index,
                    st.leader_epoch()
                );
                e
            })),
        }
    }

    /// Whether the maximal ISR is large enough for a committed acks=all
    /// request to succeed (R1.6); otherwise it is
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND`. Bug `leader-unilateral-isr-shrink`
    /// ignores min ISR here as at the append: otherwise a leader that dropped
    /// both followers in one step would refuse what it committed alone.
    pub fn isr_satisfies_min(&self) -> bool {
        !self.enforces_min_isr() || self.read_state(|st| st.maximal_isr().len() >= st.effective_min_isr())
    }

    /// Whether acks=all obeys `min.insync.replicas`, before the append and
    /// after it; bug `leader-unilateral-isr-shrink` ignores it at both.
    fn enforces_min_isr(&self) -> bool {
        !self.config.bugs.on(Bug::LeaderUnilateralIsrShrink)
    }

    /// Reads for a consumer: batches from `offset` below the high watermark,
    /// long-polling up to `max_wait` when nothing is there yet. Only the
    /// leader serves consumers.
    pub async fn fetch(&self, offset: i64, max_bytes: usize, max_wait: Duration) -> Result<FetchResult, ApiError> {
        let deadline = Instant::now() + max_wait;
        let mut rx = self.view_tx.subscribe();
        // Bounded: every round either returns or waits for the view to change; the deadline ends it.
        loop {
            let read = self.read_state(|st| {
                if !st.is_leader() {
                    return Err(self.not_leader(st));
                }
                let hw = st.high_watermark();
                let upto = if self.config.bugs.on(Bug::ServeConsumersToLeo) { st.log().log_end_offset() } else { hw };
                let batches =
                    st.log().read(offset, upto, max_bytes).map_err(|e| storage_error(&self.topic, self.index, e))?;
                Ok(FetchResult {
                    batches,
                    high_watermark: hw,
                    log_start_offset: st.log().log_start_offset(),
                    visible_end: upto,
                })
            })?;
            let now = Instant::now();
            if !read.batches.is_empty() || now >= deadline {
                return Ok(read);
            }
            let to_leo = self.config.bugs.on(Bug::ServeConsumersToLeo);
            // Reduced to a bool at once, so no watch read guard outlives this line.
            let woke = matches!(
                tokio::time::timeout(
                    deadline - now,
                    rx.wait_for(|v| v.high_watermark > offset || (to_leo && v.log_end_offset > offset) || !v.is_leader),
                )
                .await,
                Ok(Ok(_))
            );
            if !woke {
                return Ok(read);
            }
        }
    }

    fn save_epoch_cache(&self, st: &ReplicaState) {
        if let Err(e) = st.epoch_cache().save(&self.dir) {
            tracing::error!(partition = %self.name(), error = %e, "writing the leader-epoch checkpoint failed");
        }
    }

    /// Becomes leader in `epoch` (R2.10, R2.11): records the epoch's start
    /// at the log end, keeps the whole log, and starts tracking followers.
    pub fn become_leader(&self, epoch: i32, partition_epoch: i32, replicas: &[i32], isr: &[i32], now: Instant) {
        self.update_state(|st| {
            let assignment = Assignment { leader_epoch: epoch, partition_epoch, replicas, isr };
            let leo = st.become_leader(assignment, now);
            self.save_epoch_cache(st);
            if self.config.bugs.on(Bug::DropProducerStateOnFailover) {
                st.drop_producer_state(ProducerState::new(retained_batches(&self.config)));
            }
            st.advance_leader_hw();
            tracing::info!(partition = %self.name(), epoch, start_offset = leo, isr = ?isr, "became leader");
        })
    }

    /// Becomes a follower of `leader` in `epoch`; the fetcher truncates by
    /// epoch before it copies anything (R2.12).
    pub fn become_follower(
        &self,
        leader: i32,
        leader_address: &str,
        epoch: i32,
        partition_epoch: i32,
        replicas: &[i32],
        isr: &[i32],
    ) {
        self.update_state(|st| {
            // KAFKA-7164: the same leader after missed epochs looks like no change.
            let same_leader =
                matches!(st.role(), Role::Follower { leader: l, .. } if *l == leader) && epoch > st.leader_epoch() + 1;
            let skip_epoch_check = same_leader && self.config.bugs.on(Bug::SkipTruncateSameLeader);
            let assignment = Assignment { leader_epoch: epoch, partition_epoch, replicas, isr };
            st.become_follower(leader, leader_address, skip_epoch_check, assignment);
            if self.config.bugs.on(Bug::TruncateToLocalHw) {
                let hw = st.high_watermark();
                if let Err(e) = self.truncate_locked(st, hw) {
                    tracing::error!(
                        partition = %self.name(),
                        error = %e,
                        "bug truncate-to-local-hw: truncation failed"
                    );
                }
            }
            tracing::info!(partition = %self.name(), leader, epoch, skip_epoch_check, "became follower");
        })
    }

    pub fn become_offline(&self, epoch: i32, partition_epoch: i32, replicas: &[i32], isr: &[i32]) {
        self.update_state(|st| {
            st.become_offline(Assignment { leader_epoch: epoch, partition_epoch, replicas, isr });
        })
    }

    /// Takes a committed ISR change for the current epoch (R2.4).
    pub fn update_isr(&self, partition_epoch: i32, isr: &[i32]) {
        self.update_state(|st| {
            if st.apply_committed_isr(partition_epoch, isr) {
                st.advance_leader_hw();
            }
        })
    }

    /// Records an ISR change this leader is about to propose, so the HW
    /// counts joining replicas at once. Returns the leader and partition
    /// epochs to propose with, or `None` if not leader or one is pending.
    pub fn begin_isr_change(&self, proposed: &[i32]) -> Option<(i32, i32)> {
        self.update_state(|st| st.begin_isr_change(proposed))
    }

    /// Forgets a pending ISR change the controller refused or never answered.
    pub fn abandon_isr_change(&self) {
        self.update_state(|st| {
            st.clear_pending_isr();
            // The proposal's members no longer hold the HW back.
            st.advance_leader_hw();
        })
    }

    /// Followers in the ISR that have not caught up within `lag` (R2.7).
    /// With bug `leader-unilateral-isr-shrink` the leader also drops them
    /// from its ISR at once, without the controller (Jepsen 2013).
    pub fn out_of_sync_followers(&self, now: Instant, lag: Duration) -> Vec<i32> {
        let bug = self.config.bugs.on(Bug::LeaderUnilateralIsrShrink);
        self.update_state(|st| {
            let Role::Leader { followers, pending_isr, .. } = st.role() else { return Vec::new() };
            // A change the controller has not answered yet blocks the next
            // one, except under the bug, where the leader does not wait.
            let pending = pending_isr.is_some();
            if pending && !bug {
                return Vec::new();
            }
            let leo = st.log().log_end_offset();
            let out: Vec<i32> = st
                .isr()
                .iter()
                .copied()
                .filter(|r| *r != self.node_id)
                .filter(|r| match followers.get(r) {
                    Some(f) => f.leo != Some(leo) && now.duration_since(f.last_caught_up) > lag,
                    None => true,
                })
                .collect();
            if !out.is_empty() && bug {
                st.shrink_isr_unilaterally(&out);
                st.advance_leader_hw();
                tracing::warn!(
                    partition = %self.name(),
                    isr = ?st.isr(),
                    "bug leader-unilateral-isr-shrink: shrank the ISR without the controller"
                );
                if pending {
                    // Shrunk locally; the proposal in flight stays the only one.
                    return Vec::new();
                }
            }
            out
        })
    }

    /// The broker epochs the leader last saw for `members`, for AlterPartition.
    pub fn member_epochs(&self, members: &[i32], own_epoch: i64) -> Vec<(i32, i64)> {
        self.read_state(|st| {
            members
                .iter()
                .map(|m| {
                    let e = if *m == self.node_id {
                        own_epoch
                    } else if let Role::Leader { followers, .. } = st.role() {
                        followers.get(m).map_or(-1, |f| f.broker_epoch)
                    } else {
                        -1
                    };
                    (*m, e)
                })
                .collect()
        })
    }

    pub fn flush_if_due(&self, now: Instant) {
        if self.config.log.flush_ms.is_some() {
            self.update_state(|st| st.flush_if_due(now));
        }
    }

    pub fn flush(&self) {
        self.update_state(|st| st.flush());
    }

    /// Snapshots producer state so a restart replays only the log after it.
    pub fn snapshot_producers(&self) {
        self.read_state(|st| {
            if let Err(e) = st.producers().save(&self.dir) {
                tracing::warn!(partition = %self.name(), error = %e, "writing the producer-state snapshot failed");
            }
        })
    }

    /// `topic/partition`, for logs.
    pub fn name(&self) -> String {
        format!("{}/{}", self.topic, self.index)
    }

    /// The partition's key in checkpoints and its directory name.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }
}

/// Batches kept per idempotent producer: 5, or 1 with `dedupe-window-1`.
fn retained_batches(config: &TopicConfig) -> usize {
    if config.bugs.on(Bug::DedupeWindow1) { 1 } else { BATCHES_TO_RETAIN }
}

/// Rebuilds the epoch cache from the batches' epochs when the checkpoint
/// is missing or damaged. Reads the whole log once.
fn rebuild_epoch_cache(log: &PartitionLog) -> EpochCache {
    let mut cache = EpochCache::default();
    let mut from = log.log_start_offset();
    let end = log.log_end_offset();
    // Bounded: every round advances past at least one batch.
    while from < end {
        let Ok(batches) = log.read(from, end, 1 << 20) else { break };
        let Some(last) = batches.last() else { break };
        for b in &batches {
            if let Ok(h) = batch::parse_header(b)
                && cache.latest_epoch().is_none_or(|e| e < h.leader_epoch)
            {
                cache.assign(h.leader_epoch, h.base_offset);
            }
        }
        match batch::parse_header(last) {
            Ok(h) => from = h.next_offset(),
            Err(_) => break,
        }
    }
    cache
}
