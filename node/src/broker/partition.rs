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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::ErrorCode;
use tokio::sync::watch;

use crate::bugs::Bug;
use crate::config::TopicConfig;
use crate::error::ApiError;
use crate::log::batch::{self, BatchHeader};
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::replica::epoch_cache::{EpochCache, EpochEnd, truncation_point};

use super::producer_state::{BATCHES_TO_RETAIN, ProducerState, SeqCheck};

/// What the rest of the node may observe without the lock: enough for
/// acks=all waiters and long polls to know when to wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub is_leader: bool,
    pub log_end_offset: i64,
}

/// A follower as its leader tracks it (R2.6).
#[derive(Clone, Debug)]
pub struct FollowerState {
    /// The follower's log end offset, known from its last fetch; `None`
    /// until it fetched from this leader in this epoch.
    pub leo: Option<i64>,
    pub broker_epoch: i64,
    pub last_fetch: Option<Instant>,
    /// The leader's log end offset at the follower's previous fetch.
    pub leader_leo_at_last_fetch: i64,
    pub last_caught_up: Instant,
}

/// An ISR change sent to the controller and not yet seen committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingIsr {
    pub proposed: Vec<i32>,
    pub partition_epoch: i32,
}

#[derive(Clone, Debug)]
pub enum Role {
    Leader {
        /// Where this leader's epoch starts: a follower must reach it to join the ISR (KAFKA-7128).
        epoch_start_offset: i64,
        followers: BTreeMap<i32, FollowerState>,
        pending_isr: Option<PendingIsr>,
    },
    Follower {
        leader: i32,
        leader_address: String,
        /// Bug `skip-truncate-same-leader`: fetch without the epoch check.
        skip_epoch_check: bool,
    },
    /// No leader, or this node is not told yet.
    Offline,
}

/// The mutable state of a replica, under one lock so the log end offset,
/// the high watermark, the epoch and the role are always seen together.
pub struct ReplicaState {
    pub log: PartitionLog,
    pub epoch_cache: EpochCache,
    /// Idempotent producers' sequence state, kept by every replica.
    pub producers: ProducerState,
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    /// The ISR the controller committed, leader included.
    pub isr: Vec<i32>,
    pub role: Role,
}

impl ReplicaState {
    /// The ISR the high watermark is computed over: the committed ISR plus
    /// replicas of a pending expansion; a pending shrink does not count yet.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut m = self.isr.clone();
        if let Role::Leader { pending_isr: Some(p), .. } = &self.role {
            for r in &p.proposed {
                if !m.contains(r) {
                    m.push(*r);
                }
            }
        }
        m
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    fn view(&self) -> View {
        View {
            high_watermark: self.high_watermark,
            leader_epoch: self.leader_epoch,
            is_leader: self.is_leader(),
            log_end_offset: self.log.log_end_offset(),
        }
    }
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

/// What a leader answers one partition of a follower's fetch.
#[derive(Debug, Default)]
pub struct ReplicaFetch {
    pub error: Option<ErrorCode>,
    pub diverging: Option<EpochEnd>,
    pub batches: Vec<Vec<u8>>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// A follower that now qualifies to join the ISR.
    pub expand_candidate: Option<i32>,
}

/// A follower's fetch position for one partition.
#[derive(Clone, Copy, Debug)]
pub struct FetchPosition {
    pub fetch_offset: i64,
    pub last_fetched_epoch: Option<i32>,
    pub current_leader_epoch: i32,
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
                    tracing::warn!(partition = %format!("{topic}/{index}"), from = before, to = end, "bug truncate-to-local-hw: truncated to the local HW on restart");
                }
                Err(e) => tracing::error!(error = %e, "bug truncate-to-local-hw: truncation failed"),
            }
        }
        let producers = ProducerState::load(&dir, &log, retained_batches(&config));
        let state = ReplicaState {
            epoch_cache,
            producers,
            high_watermark: hw,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            role: Role::Offline,
            log,
        };
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

    /// Runs `f` with the replica state locked, then publishes the view if
    /// it changed. Never held across an await.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut ReplicaState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Kafka's effective min ISR: min(`min.insync.replicas`, replication factor).
    pub fn effective_min_isr(&self, st: &ReplicaState) -> usize {
        (self.config.min_insync_replicas as usize).min(st.replicas.len().max(1))
    }

    fn not_leader(&self, st: &ReplicaState) -> ApiError {
        let mut e = ApiError::new(
            ErrorCode::NotLeaderOrFollower,
            format!("this node is not the leader of {}/{}", self.topic, self.index),
        );
        if let Role::Follower { leader, leader_address, .. } = &st.role {
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
            self.with_state(|st| {
                if !st.is_leader() {
                    return Err(self.not_leader(st));
                }
                let min_isr = self.effective_min_isr(st);
                if check_min_isr && st.isr.len() < min_isr && !self.config.bugs.on(Bug::LeaderUnilateralIsrShrink) {
                    return Err(ApiError::new(
                        ErrorCode::NotEnoughReplicas,
                        format!("ISR {:?} is smaller than the effective min.insync.replicas {min_isr}", st.isr),
                    ));
                }
                let epoch = st.leader_epoch;
                let header =
                    batch::parse_header(batch).map_err(|e| ApiError::invalid(format!("unparsable batch: {e}")))?;
                let p = header.producer;
                if p.producer_id >= 0 {
                    match st.producers.check(p.producer_id, p.producer_epoch, p.base_sequence, header.record_count) {
                        SeqCheck::Append => {}
                        SeqCheck::Duplicate { first_offset, last_offset } => {
                            return Ok((AppendInfo { base_offset: first_offset, last_offset, bytes: 0 }, epoch));
                        }
                        SeqCheck::Refuse(code, message) => return Err(ApiError::new(code, message)),
                    }
                }
                let info =
                    st.log.append_as_leader(batch, epoch).map_err(|e| storage_error(&self.topic, self.index, e))?;
                let stamped = BatchHeader { base_offset: info.base_offset, leader_epoch: epoch, ..header };
                st.producers.record(&stamped);
                self.maybe_advance_high_watermark(st);
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

    /// R2.3: HW := min LEO over the maximal ISR, never lower, and frozen
    /// while the committed ISR is below the effective min ISR.
    fn maybe_advance_high_watermark(&self, st: &mut ReplicaState) {
        let Role::Leader { followers, .. } = &st.role else { return };
        if st.isr.len() < self.effective_min_isr(st) && !self.config.bugs.on(Bug::LeaderUnilateralIsrShrink) {
            return;
        }
        let mut hw = st.log.log_end_offset();
        // Under the bug the leader trusts its own ISR alone, not what it
        // proposed to the controller.
        let members =
            if self.config.bugs.on(Bug::LeaderUnilateralIsrShrink) { st.isr.clone() } else { st.maximal_isr() };
        for r in members {
            if r == self.node_id {
                continue;
            }
            match followers.get(&r).and_then(|f| f.leo) {
                Some(leo) => hw = hw.min(leo),
                // A member we have not heard from in this epoch holds us back.
                None => hw = hw.min(st.high_watermark),
            }
        }
        if hw > st.high_watermark {
            st.high_watermark = hw;
        }
    }

    /// Waits until the high watermark reaches `offset` while this node
    /// stays leader in `epoch`. Ok(true) when reached, Ok(false) on timeout,
    /// Err when leadership was lost meanwhile.
    pub async fn wait_for_commit(&self, offset: i64, epoch: i32, timeout: Duration) -> Result<bool, ApiError> {
        let mut rx = self.view_tx.subscribe();
        // Copy the view out at once: the `Ref` that `wait_for` returns holds
        // the watch's read lock, and `with_state` below takes its write lock.
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|v| v.high_watermark >= offset || !v.is_leader || v.leader_epoch != epoch),
        )
        .await
        .map(|r| r.map(|v| *v));
        match waited {
            Err(_) | Ok(Err(_)) => Ok(false),
            Ok(Ok(v)) if v.high_watermark >= offset && v.is_leader && v.leader_epoch == epoch => Ok(true),
            Ok(Ok(_)) => Err(self.with_state(|st| {
                let mut e = self.not_leader(st);
                e.message = format!(
                    "leadership of {}/{} moved to epoch {} before the batch was committed; it may or may not survive",
                    self.topic, self.index, st.leader_epoch
                );
                e
            })),
        }
    }

    /// Whether the maximal ISR is large enough for a committed acks=all
    /// request to succeed (R1.6); otherwise it is
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND`.
    pub fn isr_satisfies_min(&self) -> bool {
        self.with_state(|st| st.maximal_isr().len() >= self.effective_min_isr(st))
    }

    /// Reads for a consumer: batches from `offset` below the high watermark,
    /// long-polling up to `max_wait` when nothing is there yet. Only the
    /// leader serves consumers.
    pub async fn fetch(&self, offset: i64, max_bytes: usize, max_wait: Duration) -> Result<FetchResult, ApiError> {
        let deadline = Instant::now() + max_wait;
        let mut rx = self.view_tx.subscribe();
        // Bounded: every round either returns or waits for the view to change; the deadline ends it.
        loop {
            let read = self.with_state(|st| {
                if !st.is_leader() {
                    return Err(self.not_leader(st));
                }
                let hw = st.high_watermark;
                let upto = if self.config.bugs.on(Bug::ServeConsumersToLeo) { st.log.log_end_offset() } else { hw };
                let batches =
                    st.log.read(offset, upto, max_bytes).map_err(|e| storage_error(&self.topic, self.index, e))?;
                Ok(FetchResult {
                    batches,
                    high_watermark: hw,
                    log_start_offset: st.log.log_start_offset(),
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

    /// Serves one partition of a follower's fetch on the leader (R2.1,
    /// R2.6, R2.13, KAFKA-10554): fences stale epochs, reports divergence,
    /// records the follower's position as an implicit ack, advances the
    /// high watermark, and returns records up to the log end offset.
    pub fn serve_follower(
        &self,
        replica: i32,
        broker_epoch: i64,
        pos: FetchPosition,
        max_bytes: usize,
        now: Instant,
    ) -> ReplicaFetch {
        self.with_state(|st| {
            let mut out = ReplicaFetch {
                high_watermark: st.high_watermark,
                log_start_offset: st.log.log_start_offset(),
                log_end_offset: st.log.log_end_offset(),
                ..ReplicaFetch::default()
            };
            if !st.is_leader() {
                out.error = Some(ErrorCode::NotLeaderOrFollower);
                return out;
            }
            if pos.current_leader_epoch < st.leader_epoch {
                out.error = Some(ErrorCode::FencedLeaderEpoch);
                return out;
            }
            if pos.current_leader_epoch > st.leader_epoch {
                out.error = Some(ErrorCode::UnknownLeaderEpoch);
                return out;
            }
            if !st.replicas.contains(&replica) || replica == self.node_id {
                out.error = Some(ErrorCode::NotLeaderOrFollower);
                return out;
            }
            let leo = st.log.log_end_offset();
            if let Some(fe) = pos.last_fetched_epoch {
                let answer = st.epoch_cache.end_offset_for(fe, leo);
                match answer {
                    Some(end) if end.epoch == fe && end.end_offset >= pos.fetch_offset => {}
                    Some(end) => {
                        out.diverging = Some(end);
                        return out;
                    }
                    None => {
                        out.diverging = Some(EpochEnd { epoch: -1, end_offset: st.log.log_start_offset() });
                        return out;
                    }
                }
            }
            if pos.fetch_offset > leo || pos.fetch_offset < st.log.log_start_offset() {
                out.error = Some(ErrorCode::OffsetOutOfRange);
                return out;
            }
            // The fetch offset acknowledges everything below it.
            let hw_before = st.high_watermark;
            let in_isr = st.isr.contains(&replica);
            let (epoch_start, expand) = {
                let Role::Leader { followers, epoch_start_offset, pending_isr } = &mut st.role else {
                    unreachable!("checked above")
                };
                let f = followers.entry(replica).or_insert_with(|| FollowerState {
                    leo: None,
                    broker_epoch,
                    last_fetch: None,
                    leader_leo_at_last_fetch: 0,
                    last_caught_up: now,
                });
                if pos.fetch_offset >= leo {
                    f.last_caught_up = now;
                } else if let Some(prev) = f.last_fetch
                    && pos.fetch_offset >= f.leader_leo_at_last_fetch
                {
                    f.last_caught_up = f.last_caught_up.max(prev);
                }
                f.leo = Some(pos.fetch_offset);
                f.broker_epoch = broker_epoch;
                f.last_fetch = Some(now);
                f.leader_leo_at_last_fetch = leo;
                (*epoch_start_offset, pending_isr.is_none())
            };
            self.maybe_advance_high_watermark(st);
            // R2.8: caught up to the HW and into this leader's epoch.
            let past_epoch_start =
                pos.fetch_offset >= epoch_start || self.config.bugs.on(Bug::IsrJoinIgnoresEpochStart);
            if !in_isr && expand && pos.fetch_offset >= st.high_watermark.max(hw_before) && past_epoch_start {
                out.expand_candidate = Some(replica);
            }
            match st.log.read(pos.fetch_offset, leo, max_bytes) {
                Ok(batches) => out.batches = batches,
                Err(e) => out.error = Some(storage_error(&self.topic, self.index, e).code),
            }
            out.high_watermark = st.high_watermark;
            out
        })
    }

    /// The follower's side of a fetch: where to fetch from.
    pub fn fetch_position(&self) -> FetchPosition {
        self.with_state(|st| {
            let skip = matches!(st.role, Role::Follower { skip_epoch_check: true, .. });
            FetchPosition {
                fetch_offset: st.log.log_end_offset(),
                last_fetched_epoch: if skip { None } else { st.epoch_cache.latest_epoch() },
                current_leader_epoch: st.leader_epoch,
            }
        })
    }

    /// Applies a leader's divergence answer: truncates as the epoch
    /// comparison says (R2.12). Only while still a follower in `epoch`.
    pub fn truncate_on_divergence(&self, epoch: i32, answer: EpochEnd) -> Result<(), LogError> {
        self.with_state(|st| {
            if st.leader_epoch != epoch || st.is_leader() {
                return Ok(());
            }
            let leo = st.log.log_end_offset();
            let to = if answer.epoch < 0 {
                answer.end_offset.min(leo)
            } else {
                truncation_point(&st.epoch_cache, leo, answer).offset
            };
            self.truncate_locked(st, to)
        })
    }

    fn truncate_locked(&self, st: &mut ReplicaState, offset: i64) -> Result<(), LogError> {
        let before = st.log.log_end_offset();
        if offset >= before {
            return Ok(());
        }
        let new_end = st.log.truncate_to(offset)?;
        st.epoch_cache.truncate_from_end(new_end);
        st.producers.rebuild(&st.log);
        // A snapshot of the old lineage must not survive the truncation.
        if let Err(e) = st.producers.save(&self.dir) {
            tracing::error!(partition = %self.name(), error = %e, "rewriting the producer-state snapshot failed");
        }
        self.save_epoch_cache(st);
        st.high_watermark = st.high_watermark.min(new_end);
        tracing::info!(partition = %self.name(), from = before, to = new_end, "truncated follower log");
        Ok(())
    }

    /// Appends batches copied from the leader and takes the leader's high
    /// watermark, capped by this replica's log end (R2.2). Only while still
    /// a follower in `epoch`.
    pub fn append_as_follower(&self, epoch: i32, batches: &[Vec<u8>], leader_hw: i64) -> Result<(), LogError> {
        self.with_state(|st| {
            if st.leader_epoch != epoch || st.is_leader() {
                return Ok(());
            }
            let mut new_epoch = false;
            for b in batches {
                let header = batch::parse_header(b).map_err(LogError::InvalidBatch)?;
                if header.next_offset() <= st.log.log_end_offset() {
                    continue;
                }
                let info = st.log.append_as_follower(b)?;
                st.producers.record(&header);
                self.bytes_appended.fetch_add(info.bytes as u64, Ordering::Relaxed);
                self.records_appended.fetch_add(u64::from(header.record_count), Ordering::Relaxed);
                if st.epoch_cache.latest_epoch().is_none_or(|e| e < header.leader_epoch) {
                    st.epoch_cache.assign(header.leader_epoch, header.base_offset);
                    new_epoch = true;
                }
            }
            if new_epoch {
                self.save_epoch_cache(st);
            }
            let hw = leader_hw.min(st.log.log_end_offset());
            if hw > st.high_watermark {
                st.high_watermark = hw;
            }
            Ok(())
        })
    }

    fn save_epoch_cache(&self, st: &ReplicaState) {
        if let Err(e) = st.epoch_cache.save(&self.dir) {
            tracing::error!(partition = %self.name(), error = %e, "writing the leader-epoch checkpoint failed");
        }
    }

    /// Becomes leader in `epoch` (R2.10, R2.11): records the epoch's start
    /// at the log end, keeps the whole log, and starts tracking followers.
    pub fn become_leader(&self, epoch: i32, partition_epoch: i32, replicas: &[i32], isr: &[i32], now: Instant) {
        self.with_state(|st| {
            let leo = st.log.log_end_offset();
            st.epoch_cache.assign(epoch, leo);
            self.save_epoch_cache(st);
            let followers = replicas
                .iter()
                .filter(|r| **r != self.node_id)
                .map(|r| {
                    (
                        *r,
                        FollowerState {
                            leo: None,
                            broker_epoch: -1,
                            last_fetch: None,
                            leader_leo_at_last_fetch: 0,
                            last_caught_up: now,
                        },
                    )
                })
                .collect();
            st.role = Role::Leader { epoch_start_offset: leo, followers, pending_isr: None };
            if self.config.bugs.on(Bug::DropProducerStateOnFailover) {
                st.producers = ProducerState::new(retained_batches(&self.config));
            }
            st.leader_epoch = epoch;
            st.partition_epoch = partition_epoch;
            st.replicas = replicas.to_vec();
            st.isr = isr.to_vec();
            self.maybe_advance_high_watermark(st);
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
        self.with_state(|st| {
            // KAFKA-7164: the same leader after missed epochs looks like no change.
            let same_leader = matches!(st.role, Role::Follower { leader: l, .. } if l == leader) && epoch > st.leader_epoch + 1;
            let skip_epoch_check = same_leader && self.config.bugs.on(Bug::SkipTruncateSameLeader);
            st.role = Role::Follower { leader, leader_address: leader_address.to_string(), skip_epoch_check };
            st.leader_epoch = epoch;
            st.partition_epoch = partition_epoch;
            st.replicas = replicas.to_vec();
            st.isr = isr.to_vec();
            if self.config.bugs.on(Bug::TruncateToLocalHw) {
                let hw = st.high_watermark;
                if let Err(e) = self.truncate_locked(st, hw) {
                    tracing::error!(partition = %self.name(), error = %e, "bug truncate-to-local-hw: truncation failed");
                }
            }
            tracing::info!(partition = %self.name(), leader, epoch, skip_epoch_check, "became follower");
        })
    }

    pub fn become_offline(&self, epoch: i32, partition_epoch: i32, replicas: &[i32], isr: &[i32]) {
        self.with_state(|st| {
            st.role = Role::Offline;
            st.leader_epoch = epoch;
            st.partition_epoch = partition_epoch;
            st.replicas = replicas.to_vec();
            st.isr = isr.to_vec();
        })
    }

    /// Takes a committed ISR change for the current epoch (R2.4).
    pub fn update_isr(&self, partition_epoch: i32, isr: &[i32]) {
        self.with_state(|st| {
            if partition_epoch <= st.partition_epoch {
                return;
            }
            st.partition_epoch = partition_epoch;
            st.isr = isr.to_vec();
            if let Role::Leader { pending_isr, .. } = &mut st.role {
                *pending_isr = None;
            }
            self.maybe_advance_high_watermark(st);
        })
    }

    /// Records an ISR change this leader is about to propose, so the HW
    /// counts joining replicas at once. Returns false if one is pending.
    pub fn begin_isr_change(&self, proposed: &[i32]) -> Option<(i32, i32)> {
        self.with_state(|st| {
            let (epoch, pepoch) = (st.leader_epoch, st.partition_epoch);
            let Role::Leader { pending_isr, .. } = &mut st.role else { return None };
            if pending_isr.is_some() {
                return None;
            }
            *pending_isr = Some(PendingIsr { proposed: proposed.to_vec(), partition_epoch: pepoch });
            Some((epoch, pepoch))
        })
    }

    /// Forgets a pending ISR change the controller refused or never answered.
    pub fn abandon_isr_change(&self) {
        self.with_state(|st| {
            if let Role::Leader { pending_isr, .. } = &mut st.role {
                *pending_isr = None;
            }
            // The proposal's members no longer hold the HW back.
            self.maybe_advance_high_watermark(st);
        })
    }

    /// Followers in the ISR that have not caught up within `lag` (R2.7).
    /// With bug `leader-unilateral-isr-shrink` the leader also drops them
    /// from its ISR at once, without the controller (Jepsen 2013).
    pub fn out_of_sync_followers(&self, now: Instant, lag: Duration) -> Vec<i32> {
        let bug = self.config.bugs.on(Bug::LeaderUnilateralIsrShrink);
        self.with_state(|st| {
            let Role::Leader { followers, pending_isr, .. } = &st.role else { return Vec::new() };
            // A change the controller has not answered yet blocks the next
            // one, except under the bug, where the leader does not wait.
            let pending = pending_isr.is_some();
            if pending && !bug {
                return Vec::new();
            }
            let leo = st.log.log_end_offset();
            let out: Vec<i32> = st
                .isr
                .iter()
                .copied()
                .filter(|r| *r != self.node_id)
                .filter(|r| match followers.get(r) {
                    Some(f) => f.leo != Some(leo) && now.duration_since(f.last_caught_up) > lag,
                    None => true,
                })
                .collect();
            if !out.is_empty() && bug {
                st.isr.retain(|r| !out.contains(r));
                self.maybe_advance_high_watermark(st);
                tracing::warn!(partition = %self.name(), isr = ?st.isr, "bug leader-unilateral-isr-shrink: shrank the ISR without the controller");
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
        self.with_state(|st| {
            members
                .iter()
                .map(|m| {
                    let e = if *m == self.node_id {
                        own_epoch
                    } else if let Role::Leader { followers, .. } = &st.role {
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
            self.with_state(|st| st.log.flush_if_due(now));
        }
    }

    pub fn flush(&self) {
        self.with_state(|st| st.log.flush());
    }

    /// Snapshots producer state so a restart replays only the log after it.
    pub fn snapshot_producers(&self) {
        self.with_state(|st| {
            if let Err(e) = st.producers.save(&self.dir) {
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
