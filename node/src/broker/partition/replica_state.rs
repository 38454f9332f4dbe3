//! The guarded state of one partition replica, [`ReplicaState`], and the
//! rules it keeps by itself.
//!
//! Why a type of its own: the log, the high watermark (HW), the epochs, the
//! ISR and the role are read and changed together under the partition's
//! lock, and replication is only safe while a few rules about them hold.
//! When every field was public those rules held by convention in each
//! module that took `&mut` to the state. Now the fields are private: other
//! modules read through accessors (the partition hands out only
//! `&ReplicaState`, see [`super::Partition::read_state`]), and every change
//! goes through a `pub(super)` method here that keeps its rule and, in
//! debug builds, asserts it:
//!
//! - the HW only rises, never past the log end offset; only a truncation
//!   lowers it, to the new log end;
//! - only a replica that is not the leader truncates its log (a leader
//!   keeps its whole log, KIP-101), so a leader's HW never goes down;
//! - only the leader appends as leader; only a non-leader copies batches;
//! - the ISR holds only assigned replicas, and a leader is in its own ISR;
//!   it changes only as the controller's metadata says, except under bug
//!   `leader-unilateral-isr-shrink`, which shrinks it locally on purpose;
//! - only bug `drop-producer-state-on-failover` forgets producer state.
//!
//! Persisting checkpoints, logging and publishing the [`View`] stay in the
//! partition module, which is the only caller of the mutators.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::bugs::{Bug, Bugs};
use crate::config::TopicConfig;
use crate::log::batch::BatchHeader;
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::replica::epoch_cache::EpochCache;

use super::View;
use crate::broker::producer_state::ProducerState;

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

impl FollowerState {
    /// A follower not heard from yet in this epoch; counted as caught up
    /// at `now` so it gets a full lag period before it is dropped.
    fn unheard(broker_epoch: i64, now: Instant) -> FollowerState {
        FollowerState { leo: None, broker_epoch, last_fetch: None, leader_leo_at_last_fetch: 0, last_caught_up: now }
    }
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

impl Role {
    /// `leader`, `follower` or `offline`, for debug dumps.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Leader { .. } => "leader",
            Role::Follower { .. } => "follower",
            Role::Offline => "offline",
        }
    }
}

/// One assignment from the controller's metadata: epochs, replicas, ISR.
#[derive(Clone, Copy, Debug)]
pub(super) struct Assignment<'a> {
    pub(super) leader_epoch: i32,
    pub(super) partition_epoch: i32,
    pub(super) replicas: &'a [i32],
    pub(super) isr: &'a [i32],
}

/// The mutable state of a replica, under one lock so the log end offset,
/// the high watermark, the epoch and the role are always seen together.
pub struct ReplicaState {
    log: PartitionLog,
    epoch_cache: EpochCache,
    /// Idempotent producers' sequence state, kept by every replica.
    producers: ProducerState,
    high_watermark: i64,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    /// The ISR the controller committed, leader included.
    isr: Vec<i32>,
    role: Role,
    /// Fixed at creation: this node's id, `min.insync.replicas` and the bug
    /// switches, so the rules (and their debug checks) know which apply.
    node_id: i32,
    min_insync_replicas: usize,
    bugs: Bugs,
}

impl ReplicaState {
    /// An offline replica over an opened log; the controller's metadata
    /// gives it a role and epochs. `high_watermark` is already capped.
    pub(super) fn new(
        node_id: i32,
        config: &TopicConfig,
        log: PartitionLog,
        epoch_cache: EpochCache,
        producers: ProducerState,
        high_watermark: i64,
    ) -> ReplicaState {
        ReplicaState {
            log,
            epoch_cache,
            producers,
            high_watermark,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            role: Role::Offline,
            node_id,
            min_insync_replicas: usize::try_from(config.min_insync_replicas).unwrap_or(usize::MAX),
            bugs: config.bugs,
        }
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn epoch_cache(&self) -> &EpochCache {
        &self.epoch_cache
    }

    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// The ISR the controller committed (leader included); see [`Self::maximal_isr`].
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    pub fn role(&self) -> &Role {
        &self.role
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// The leader this replica knows of: itself, the one it follows, or
    /// none while offline.
    pub fn leader(&self) -> Option<i32> {
        match &self.role {
            Role::Leader { .. } => Some(self.node_id),
            Role::Follower { leader, .. } => Some(*leader),
            Role::Offline => None,
        }
    }

    /// The address of the leader this replica follows, if it follows one.
    pub fn leader_address(&self) -> Option<&str> {
        match &self.role {
            Role::Follower { leader_address, .. } => Some(leader_address),
            _ => None,
        }
    }

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

    /// Kafka's effective min ISR: min(`min.insync.replicas`, replication factor).
    pub fn effective_min_isr(&self) -> usize {
        self.min_insync_replicas.min(self.replicas.len().max(1))
    }

    pub(super) fn view(&self) -> View {
        View {
            high_watermark: self.high_watermark,
            leader_epoch: self.leader_epoch,
            is_leader: self.is_leader(),
            log_end_offset: self.log.log_end_offset(),
        }
    }

    /// The one place the HW rises. It never falls here (a leader's HW only
    /// grows, R2.3; a follower keeps the highest HW it was told) and never
    /// passes the log end: consumers must not be promised records this
    /// replica lacks.
    fn raise_high_watermark(&mut self, candidate: i64) {
        debug_assert!(
            candidate <= self.log.log_end_offset(),
            "HW candidate {candidate} is past the log end {}",
            self.log.log_end_offset()
        );
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
        }
    }

    /// R2.3: a leader's HW := min LEO over the maximal ISR, never lower, and
    /// frozen while the committed ISR is below the effective min ISR (R1.7).
    /// A no-op on a non-leader.
    pub(super) fn advance_leader_hw(&mut self) {
        let Role::Leader { followers, .. } = &self.role else { return };
        // Under the bug the leader trusts its own ISR alone, not what it
        // proposed to the controller, and ignores min ISR.
        let unilateral = self.bugs.on(Bug::LeaderUnilateralIsrShrink);
        if self.isr.len() < self.effective_min_isr() && !unilateral {
            return;
        }
        let mut hw = self.log.log_end_offset();
        let members = if unilateral { self.isr.clone() } else { self.maximal_isr() };
        for r in members {
            if r == self.node_id {
                continue;
            }
            match followers.get(&r).and_then(|f| f.leo) {
                Some(leo) => hw = hw.min(leo),
                // A member we have not heard from in this epoch holds us back.
                None => hw = hw.min(self.high_watermark),
            }
        }
        self.raise_high_watermark(hw);
    }

    /// A follower takes the leader's HW, capped by its own log end (R2.2).
    pub(super) fn advance_follower_hw(&mut self, leader_hw: i64) {
        debug_assert!(!self.is_leader(), "a leader computes its own HW");
        self.raise_high_watermark(leader_hw.min(self.log.log_end_offset()));
    }

    /// Cuts the log at `offset` (whole batches) with everything derived
    /// from it: epoch cache, producer state, and the HW, which falls to the
    /// new log end if it was above. Returns the log end before and after,
    /// or `None` when nothing changed. The caller persists the checkpoints.
    pub(super) fn truncate(&mut self, offset: i64) -> Result<Option<(i64, i64)>, LogError> {
        debug_assert!(!self.is_leader(), "a leader never truncates its own log (KIP-101)");
        let before = self.log.log_end_offset();
        if offset >= before {
            // No record to cut, but an epoch this replica led without
            // writing (it starts at the log end) diverges all the same:
            // kept, the follower would send it with every fetch, and the
            // leader would answer "diverging" forever.
            let epochs = self.epoch_cache.entries().len();
            self.epoch_cache.truncate_from_end(offset);
            return Ok((self.epoch_cache.entries().len() != epochs).then_some((before, before)));
        }
        let new_end = self.log.truncate_to(offset)?;
        self.epoch_cache.truncate_from_end(new_end);
        self.producers.rebuild(&self.log);
        self.high_watermark = self.high_watermark.min(new_end);
        Ok(Some((before, new_end)))
    }

    /// Appends `batch` as the leader, stamped with the current leader epoch,
    /// and records its producer's sequence. The caller has checked the min
    /// ISR and the sequence, and advances the HW.
    pub(super) fn append_as_leader(&mut self, batch: &mut [u8], header: BatchHeader) -> Result<AppendInfo, LogError> {
        debug_assert!(self.is_leader(), "only the leader appends as leader");
        let epoch = self.leader_epoch;
        let info = self.log.append_as_leader(batch, epoch)?;
        self.producers.record(&BatchHeader { base_offset: info.base_offset, leader_epoch: epoch, ..header });
        Ok(info)
    }

    /// Appends a batch copied from the leader (offsets and epoch already
    /// set) and records its producer and epoch. Returns the append and
    /// whether the epoch cache learned a new epoch, to be persisted.
    pub(super) fn append_as_follower(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
    ) -> Result<(AppendInfo, bool), LogError> {
        debug_assert!(!self.is_leader(), "a leader never copies batches from another replica");
        let info = self.log.append_as_follower(batch)?;
        self.producers.record(header);
        let new_epoch = self.epoch_cache.latest_epoch().is_none_or(|e| e < header.leader_epoch);
        if new_epoch {
            self.epoch_cache.assign(header.leader_epoch, header.base_offset);
        }
        Ok((info, new_epoch))
    }

    pub(super) fn flush(&mut self) {
        self.log.flush();
    }

    pub(super) fn flush_if_due(&mut self, now: Instant) {
        self.log.flush_if_due(now);
    }

    /// Takes the controller's epochs, replicas and ISR, after the role.
    fn apply_assignment(&mut self, a: Assignment<'_>) {
        self.debug_check_isr(a.isr, a.replicas);
        self.leader_epoch = a.leader_epoch;
        self.partition_epoch = a.partition_epoch;
        self.replicas = a.replicas.to_vec();
        self.isr = a.isr.to_vec();
    }

    /// The controller only commits an ISR of assigned replicas that holds
    /// the leader (AlterPartition refuses others; elections pick from the
    /// ISR or reset it to the new leader).
    fn debug_check_isr(&self, isr: &[i32], replicas: &[i32]) {
        debug_assert!(isr.iter().all(|r| replicas.contains(r)), "ISR {isr:?} is not within the replicas {replicas:?}");
        debug_assert!(
            !self.is_leader() || isr.contains(&self.node_id),
            "leader {} is not in its ISR {isr:?}",
            self.node_id
        );
    }

    /// Becomes leader (R2.10, R2.11): the new epoch starts at the log end,
    /// the whole log is kept, and every other replica is tracked as not
    /// heard from yet. Returns the epoch's start offset. The caller saves
    /// the epoch cache and advances the HW.
    pub(super) fn become_leader(&mut self, a: Assignment<'_>, now: Instant) -> i64 {
        let leo = self.log.log_end_offset();
        self.epoch_cache.assign(a.leader_epoch, leo);
        let followers =
            a.replicas.iter().filter(|r| **r != self.node_id).map(|r| (*r, FollowerState::unheard(-1, now))).collect();
        self.role = Role::Leader { epoch_start_offset: leo, followers, pending_isr: None };
        self.apply_assignment(a);
        leo
    }

    /// Becomes a follower of `leader`; the fetcher truncates by epoch before
    /// it copies anything (R2.12), unless `skip_epoch_check` (a bug) says not to.
    pub(super) fn become_follower(
        &mut self,
        leader: i32,
        leader_address: &str,
        skip_epoch_check: bool,
        a: Assignment<'_>,
    ) {
        self.role = Role::Follower { leader, leader_address: leader_address.to_string(), skip_epoch_check };
        self.apply_assignment(a);
    }

    pub(super) fn become_offline(&mut self, a: Assignment<'_>) {
        self.role = Role::Offline;
        self.apply_assignment(a);
    }

    /// Takes an ISR change the controller committed (R2.4), if newer than
    /// what this replica has; it clears a pending proposal. Returns whether
    /// anything changed.
    pub(super) fn apply_committed_isr(&mut self, partition_epoch: i32, isr: &[i32]) -> bool {
        if partition_epoch <= self.partition_epoch {
            return false;
        }
        self.debug_check_isr(isr, &self.replicas);
        self.partition_epoch = partition_epoch;
        self.isr = isr.to_vec();
        self.clear_pending_isr();
        true
    }

    /// Records an ISR change this leader is about to propose, so the HW
    /// counts joining replicas at once. Returns the leader and partition
    /// epochs to send, or `None` when not leader or a change is pending.
    pub(super) fn begin_isr_change(&mut self, proposed: &[i32]) -> Option<(i32, i32)> {
        let (epoch, pepoch) = (self.leader_epoch, self.partition_epoch);
        let Role::Leader { pending_isr, .. } = &mut self.role else { return None };
        if pending_isr.is_some() {
            return None;
        }
        *pending_isr = Some(PendingIsr { proposed: proposed.to_vec(), partition_epoch: pepoch });
        Some((epoch, pepoch))
    }

    /// Forgets a pending ISR change (committed, refused or unanswered).
    pub(super) fn clear_pending_isr(&mut self) {
        if let Role::Leader { pending_isr, .. } = &mut self.role {
            *pending_isr = None;
        }
    }

    /// Bug `leader-unilateral-isr-shrink` only (Jepsen 2013): the leader
    /// drops `out` from its ISR without the controller. Nothing else
    /// changes the ISR outside the controller's metadata.
    pub(super) fn shrink_isr_unilaterally(&mut self, out: &[i32]) {
        debug_assert!(
            self.bugs.on(Bug::LeaderUnilateralIsrShrink),
            "the ISR changes only through the controller unless bug leader-unilateral-isr-shrink is on"
        );
        debug_assert!(self.is_leader() && !out.contains(&self.node_id), "only a leader drops others, never itself");
        self.isr.retain(|r| !out.contains(r));
    }

    /// Bug `drop-producer-state-on-failover` only: forget every producer's
    /// sequences, replacing them with `fresh`.
    pub(super) fn drop_producer_state(&mut self, fresh: ProducerState) {
        debug_assert!(self.bugs.on(Bug::DropProducerStateOnFailover), "producer state is only dropped by the bug");
        self.producers = fresh;
    }

    /// Records a follower's fetch from `fetch_offset` on this leader: its
    /// position is an implicit ack (R2.6), and it counts as caught up when
    /// it reached the log end, or the log end of its previous fetch (R2.7).
    /// Returns where this leader's epoch starts and whether no ISR change
    /// is pending. Only on a leader.
    pub(super) fn record_follower_fetch(
        &mut self,
        replica: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        now: Instant,
    ) -> (i64, bool) {
        let leo = self.log.log_end_offset();
        let Role::Leader { followers, epoch_start_offset, pending_isr } = &mut self.role else {
            unreachable!("only a leader serves follower fetches")
        };
        let f = followers.entry(replica).or_insert_with(|| FollowerState::unheard(broker_epoch, now));
        if fetch_offset >= leo {
            f.last_caught_up = now;
        } else if let Some(prev) = f.last_fetch
            && fetch_offset >= f.leader_leo_at_last_fetch
        {
            f.last_caught_up = f.last_caught_up.max(prev);
        }
        f.leo = Some(fetch_offset);
        f.broker_epoch = broker_epoch;
        f.last_fetch = Some(now);
        f.leader_leo_at_last_fetch = leo;
        (*epoch_start_offset, pending_isr.is_none())
    }
}
