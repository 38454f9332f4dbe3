//! A partition's replication paths, both sides of a follower's fetch: the
//! leader serving it (fencing, divergence, the follower's position as an
//! implicit ack, ISR expansion candidates), and the follower's fetch
//! position, truncation by epoch and appends of copied batches (R2.1, R2.2,
//! R2.6, R2.8, R2.12, R2.13).
//!
//! Kept apart from `partition.rs`, which holds the client-facing paths
//! (produce, consumer fetch) and role changes, so each file reads as one
//! concern; both change the state only through [`ReplicaState`]'s methods.

use std::sync::atomic::Ordering;
use std::time::Instant;

use faultline_client::api::ErrorCode;

use crate::bugs::Bug;
use crate::log::LogError;
use crate::log::batch;
use crate::replica::epoch_cache::{EpochEnd, truncation_point};

use super::{Partition, ReplicaState, Role, storage_error};

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

impl Partition {
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
        self.update_state(|st| {
            let mut out = ReplicaFetch {
                high_watermark: st.high_watermark(),
                log_start_offset: st.log().log_start_offset(),
                log_end_offset: st.log().log_end_offset(),
                ..ReplicaFetch::default()
            };
            if let Some(refused) = self.refuse_follower_fetch(st, replica, pos) {
                return ReplicaFetch { error: refused.0, diverging: refused.1, ..out };
            }
            // The fetch offset acknowledges everything below it.
            let leo = st.log().log_end_offset();
            let hw_before = st.high_watermark();
            let in_isr = st.isr().contains(&replica);
            let (epoch_start, expand) = st.record_follower_fetch(replica, broker_epoch, pos.fetch_offset, now);
            st.advance_leader_hw();
            // R2.8: caught up to the HW and into this leader's epoch.
            let past_epoch_start =
                pos.fetch_offset >= epoch_start || self.config.bugs.on(Bug::IsrJoinIgnoresEpochStart);
            if !in_isr && expand && pos.fetch_offset >= st.high_watermark().max(hw_before) && past_epoch_start {
                out.expand_candidate = Some(replica);
            }
            match st.log().read(pos.fetch_offset, leo, max_bytes) {
                Ok(batches) => out.batches = batches,
                Err(e) => out.error = Some(storage_error(&self.topic, self.index, e).code),
            }
            out.high_watermark = st.high_watermark();
            out
        })
    }

    /// Why a follower's fetch gets no records: an error (not leader, a
    /// stale or future epoch, not a replica, out of range) or the end of the
    /// follower's last epoch where the logs diverge. `None` serves it.
    fn refuse_follower_fetch(
        &self,
        st: &ReplicaState,
        replica: i32,
        pos: FetchPosition,
    ) -> Option<(Option<ErrorCode>, Option<EpochEnd>)> {
        let error = |code| Some((Some(code), None));
        if !st.is_leader() {
            return error(ErrorCode::NotLeaderOrFollower);
        }
        if pos.current_leader_epoch < st.leader_epoch() {
            return error(ErrorCode::FencedLeaderEpoch);
        }
        if pos.current_leader_epoch > st.leader_epoch() {
            return error(ErrorCode::UnknownLeaderEpoch);
        }
        if !st.replicas().contains(&replica) || replica == self.node_id {
            return error(ErrorCode::NotLeaderOrFollower);
        }
        let (start, leo) = (st.log().log_start_offset(), st.log().log_end_offset());
        if let Some(fe) = pos.last_fetched_epoch {
            match st.epoch_cache().end_offset_for(fe, leo) {
                Some(end) if end.epoch == fe && end.end_offset >= pos.fetch_offset => {}
                Some(end) => return Some((None, Some(end))),
                None => return Some((None, Some(EpochEnd { epoch: -1, end_offset: start }))),
            }
        }
        if pos.fetch_offset > leo || pos.fetch_offset < start {
            return error(ErrorCode::OffsetOutOfRange);
        }
        None
    }

    /// The follower's side of a fetch: where to fetch from.
    pub fn fetch_position(&self) -> FetchPosition {
        self.read_state(|st| {
            let skip = matches!(st.role(), Role::Follower { skip_epoch_check: true, .. });
            FetchPosition {
                fetch_offset: st.log().log_end_offset(),
                last_fetched_epoch: if skip { None } else { st.epoch_cache().latest_epoch() },
                current_leader_epoch: st.leader_epoch(),
            }
        })
    }

    /// Applies a leader's divergence answer: truncates as the epoch
    /// comparison says (R2.12). Only while still a follower in `epoch`.
    pub fn truncate_on_divergence(&self, epoch: i32, answer: EpochEnd) -> Result<(), LogError> {
        self.update_state(|st| {
            if st.leader_epoch() != epoch || st.is_leader() {
                return Ok(());
            }
            let leo = st.log().log_end_offset();
            let to = if answer.epoch < 0 {
                answer.end_offset.min(leo)
            } else {
                truncation_point(st.epoch_cache(), leo, answer).offset
            };
            self.truncate_locked(st, to)
        })
    }

    /// Truncates a non-leader's log to `offset` and rewrites the
    /// checkpoints derived from it.
    pub(super) fn truncate_locked(&self, st: &mut ReplicaState, offset: i64) -> Result<(), LogError> {
        let Some((before, new_end)) = st.truncate(offset)? else { return Ok(()) };
        // A snapshot of the old lineage must not survive the truncation.
        if let Err(e) = st.producers().save(&self.dir) {
            tracing::error!(partition = %self.name(), error = %e, "rewriting the producer-state snapshot failed");
        }
        self.save_epoch_cache(st);
        tracing::info!(partition = %self.name(), from = before, to = new_end, "truncated follower log");
        Ok(())
    }

    /// Appends batches copied from the leader and takes the leader's high
    /// watermark, capped by this replica's log end (R2.2). Only while still
    /// a follower in `epoch`.
    pub fn append_as_follower(&self, epoch: i32, batches: &[Vec<u8>], leader_hw: i64) -> Result<(), LogError> {
        self.update_state(|st| {
            if st.leader_epoch() != epoch || st.is_leader() {
                return Ok(());
            }
            let mut new_epoch = false;
            for b in batches {
                let header = batch::parse_header(b).map_err(LogError::InvalidBatch)?;
                if header.next_offset() <= st.log().log_end_offset() {
                    continue;
                }
                let (info, learned_epoch) = st.append_as_follower(b, &header)?;
                self.bytes_appended.fetch_add(info.bytes as u64, Ordering::Relaxed);
                self.records_appended.fetch_add(u64::from(header.record_count), Ordering::Relaxed);
                new_epoch |= learned_epoch;
            }
            if new_epoch {
                self.save_epoch_cache(st);
            }
            st.advance_follower_hw(leader_hw);
            Ok(())
        })
    }
}
