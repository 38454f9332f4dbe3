//! Idempotent-producer state of one replica (KIP-98, R4.7): per producer id,
//! its epoch and the sequence ranges and offsets of its last 5 batches.
//!
//! The leader checks every idempotent batch against it before appending:
//! an exact retry of a retained batch is answered with the original
//! offsets and not appended again; a stale epoch, or a sequence that does
//! not follow, is refused. Every replica updates it from every batch it
//! appends, leader or follower, so deduplication survives failover; a
//! restarted replica rebuilds it from a snapshot plus the log after it.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use faultline_client::api::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::log::PartitionLog;
use crate::log::batch::{self, BatchHeader};

/// Kafka's `NUM_BATCHES_TO_RETAIN`: five, to match up to five in-flight requests.
pub const BATCHES_TO_RETAIN: usize = 5;
pub const SNAPSHOT_FILE: &str = "producer-state-snapshot";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most the retention bound.
    pub batches: VecDeque<BatchMeta>,
}

/// What the leader does with an idempotent batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    Append,
    /// An exact retry of a retained batch: answer with its offsets.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
    },
    Refuse(ErrorCode, String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerState {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Batches retained per producer: 5, or fewer with a bug switch.
    retain: usize,
    /// The log offset this state covers: every batch below it is applied.
    applied_to: i64,
}

fn last_seq(first_seq: i32, count: u32) -> i32 {
    // Sequences wrap at i32::MAX to 0, as Kafka's do.
    ((i64::from(first_seq) + i64::from(count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerState {
    pub fn new(retain: usize) -> ProducerState {
        ProducerState { producers: BTreeMap::new(), retain: retain.max(1), applied_to: 0 }
    }

    pub fn producer(&self, id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&id)
    }

    pub fn applied_to(&self) -> i64 {
        self.applied_to
    }

    /// R4.7 steps 2–5, for a batch from a client.
    pub fn check(&self, producer_id: i64, epoch: i16, first_seq: i32, count: u32) -> SeqCheck {
        let Some(entry) = self.producers.get(&producer_id) else {
            // No state (new producer, or state lost): accept, as Kafka does.
            return SeqCheck::Append;
        };
        if epoch < entry.epoch {
            return SeqCheck::Refuse(
                ErrorCode::InvalidProducerEpoch,
                format!("producer {producer_id} epoch {epoch} is older than the current epoch {}", entry.epoch),
            );
        }
        let last = last_seq(first_seq, count);
        if epoch == entry.epoch
            && let Some(b) = entry.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last)
        {
            return SeqCheck::Duplicate { first_offset: b.first_offset, last_offset: b.last_offset };
        }
        if epoch > entry.epoch {
            if first_seq != 0 {
                return SeqCheck::Refuse(
                    ErrorCode::OutOfOrderSequenceNumber,
                    format!("producer {producer_id} started epoch {epoch} at sequence {first_seq}, not 0"),
                );
            }
            return SeqCheck::Append;
        }
        let expected = entry.batches.back().map_or(0, |b| last_seq(b.last_seq, 2));
        if first_seq != expected {
            return SeqCheck::Refuse(
                ErrorCode::OutOfOrderSequenceNumber,
                format!("producer {producer_id} sent sequence {first_seq}; {expected} was expected"),
            );
        }
        SeqCheck::Append
    }

    /// Records a batch appended to the log (by a leader or a follower).
    pub fn record(&mut self, header: &BatchHeader) {
        self.applied_to = self.applied_to.max(header.next_offset());
        let p = header.producer;
        if p.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(p.producer_id).or_default();
        if p.producer_epoch > entry.epoch {
            entry.epoch = p.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: p.base_sequence,
            last_seq: last_seq(p.base_sequence, header.record_count),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
        });
        while entry.batches.len() > self.retain {
            entry.batches.pop_front();
        }
    }

    /// Applies every batch of `log` from `applied_to` on.
    pub fn catch_up(&mut self, log: &PartitionLog) {
        let end = log.log_end_offset();
        let mut from = self.applied_to.max(log.log_start_offset());
        // Bounded: every round advances `from` past at least one batch.
        while from < end {
            let Ok(batches) = log.read(from, end, 4 << 20) else { return };
            let Some(last) = batches.last() else { return };
            for b in &batches {
                if let Ok(h) = batch::parse_header(b)
                    && h.base_offset >= self.applied_to
                {
                    self.record(&h);
                }
            }
            match batch::parse_header(last) {
                Ok(h) => from = h.next_offset(),
                Err(_) => return,
            }
        }
    }

    /// Forgets everything and replays `log` from its start: after a
    /// truncation, state may name batches that are gone.
    pub fn rebuild(&mut self, log: &PartitionLog) {
        *self = ProducerState::new(self.retain);
        self.catch_up(log);
    }

    /// Loads the snapshot in `dir` if it is sane for `log`, then replays
    /// the log after it; without one, replays the whole log.
    pub fn load(dir: &Path, log: &PartitionLog, retain: usize) -> ProducerState {
        let snapshot = std::fs::read(dir.join(SNAPSHOT_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ProducerState>(&bytes).ok())
            .filter(|s| s.applied_to <= log.log_end_offset() && s.applied_to >= log.log_start_offset());
        let mut state = snapshot.unwrap_or_else(|| ProducerState::new(retain));
        state.retain = retain.max(1);
        state.catch_up(log);
        state
    }

    /// Writes a snapshot atomically, so a restart replays only the tail.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        write_atomic(&dir.join(SNAPSHOT_FILE), &serde_json::to_vec(self).expect("serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{NewRecord, ProducerFields};
    use crate::log::{LogConfig, OpenMode};

    fn header(pid: i64, epoch: i16, seq: i32, count: u32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            size: 0,
            leader_epoch: 0,
            record_count: count,
            max_timestamp_ms: 0,
            producer: ProducerFields { producer_id: pid, producer_epoch: epoch, base_sequence: seq },
        }
    }

    #[test]
    fn retries_of_retained_batches_are_duplicates_and_gaps_are_refused() {
        let mut s = ProducerState::new(BATCHES_TO_RETAIN);
        assert_eq!(s.check(7, 0, 0, 3), SeqCheck::Append);
        s.record(&header(7, 0, 0, 3, 10));
        s.record(&header(7, 0, 3, 2, 20));
        assert_eq!(s.check(7, 0, 0, 3), SeqCheck::Duplicate { first_offset: 10, last_offset: 12 });
        assert_eq!(s.check(7, 0, 3, 2), SeqCheck::Duplicate { first_offset: 20, last_offset: 21 });
        assert_eq!(s.check(7, 0, 5, 1), SeqCheck::Append);
        assert!(matches!(s.check(7, 0, 6, 1), SeqCheck::Refuse(ErrorCode::OutOfOrderSequenceNumber, _)), "a gap");
        assert!(
            matches!(s.check(7, 0, 1, 2), SeqCheck::Refuse(ErrorCode::OutOfOrderSequenceNumber, _)),
            "overlaps but is not a retained batch"
        );
    }

    #[test]
    fn epochs_fence_old_producers_and_a_new_epoch_starts_at_zero() {
        let mut s = ProducerState::new(BATCHES_TO_RETAIN);
        s.record(&header(7, 2, 0, 1, 0));
        assert!(matches!(s.check(7, 1, 1, 1), SeqCheck::Refuse(ErrorCode::InvalidProducerEpoch, _)));
        assert!(matches!(s.check(7, 3, 4, 1), SeqCheck::Refuse(ErrorCode::OutOfOrderSequenceNumber, _)));
        assert_eq!(s.check(7, 3, 0, 1), SeqCheck::Append);
    }

    #[test]
    fn only_the_last_five_batches_are_retained() {
        let mut s = ProducerState::new(BATCHES_TO_RETAIN);
        for i in 0..7 {
            s.record(&header(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(s.check(1, 0, 1, 1), SeqCheck::Refuse(..)), "batch 1 fell out of the window");
        assert_eq!(s.check(1, 0, 2, 1), SeqCheck::Duplicate { first_offset: 2, last_offset: 2 });
        let mut one = ProducerState::new(1);
        for i in 0..2 {
            one.record(&header(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(one.check(1, 0, 0, 1), SeqCheck::Refuse(..)), "a window of one forgets the previous batch");
    }

    #[test]
    fn state_is_rebuilt_from_a_snapshot_plus_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) =
            PartitionLog::open(dir.path(), LogConfig::default(), OpenMode { clean_shutdown: false, recovery_point: 0 })
                .unwrap();
        let append = |log: &mut PartitionLog, seq: i32| {
            let mut b = batch::encode(
                &[NewRecord { key: None, value: b"v", timestamp_ms: 0 }],
                ProducerFields { producer_id: 9, producer_epoch: 0, base_sequence: seq },
            );
            log.append_as_leader(&mut b, 0).unwrap();
        };
        append(&mut log, 0);
        append(&mut log, 1);
        let s = ProducerState::load(dir.path(), &log, BATCHES_TO_RETAIN);
        s.save(dir.path()).unwrap();
        append(&mut log, 2);
        let s = ProducerState::load(dir.path(), &log, BATCHES_TO_RETAIN);
        assert_eq!(s.applied_to(), 3);
        assert_eq!(
            s.check(9, 0, 2, 1),
            SeqCheck::Duplicate { first_offset: 2, last_offset: 2 },
            "the tail after the snapshot was replayed"
        );
        assert_eq!(
            s.check(9, 0, 0, 1),
            SeqCheck::Duplicate { first_offset: 0, last_offset: 0 },
            "the snapshot was loaded"
        );
    }
}
