//! The leader-epoch cache of one replica: `(epoch, start_offset)` pairs,
//! strictly increasing in both, checkpointed to `leader-epoch-checkpoint`.
//!
//! It answers "where does epoch E end on this replica?" (KIP-101), which
//! is how a follower finds the largest log prefix it shares with the
//! leader, and it drives the truncation-point function
//! [`truncation_point`] (KIP-279's iterative version).

use std::path::{Path, PathBuf};

use crate::fsutil::write_atomic;

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<EpochEntry>,
}

/// The answer to "end offset of epoch E": the largest epoch ≤ E this
/// replica knows, and where it ends (the next epoch's start, or the log end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEnd {
    pub epoch: i32,
    pub end_offset: i64,
}

impl EpochCache {
    pub fn from_entries(entries: Vec<EpochEntry>) -> EpochCache {
        let mut c = EpochCache::default();
        for e in entries {
            c.assign(e.epoch, e.start_offset);
        }
        c
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. An entry that would
    /// break the strict ordering (an older epoch, or a start before an
    /// existing later entry) makes the conflicting later entries go, as
    /// Kafka's cache does; a repeat of the latest epoch is ignored.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch {
                return;
            }
            if last.epoch > epoch {
                return;
            }
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        debug_assert!(
            self.entries.windows(2).all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset)
        );
    }

    /// The largest epoch ≤ `epoch` and its end offset on a log ending at
    /// `log_end_offset`; `None` when every known epoch is larger (or none is known).
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<EpochEnd> {
        let i = self.entries.partition_point(|e| e.epoch <= epoch);
        if i == 0 {
            return None;
        }
        let found = self.entries[i - 1];
        let end = self.entries.get(i).map_or(log_end_offset, |next| next.start_offset);
        Some(EpochEnd { epoch: found.epoch, end_offset: end })
    }

    /// Forgets epochs that start at or after `offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, offset: i64) {
        self.entries.retain(|e| e.start_offset < offset);
    }

    /// Reads the checkpoint in `dir`; a missing or damaged file yields an
    /// empty cache, which the caller rebuilds from the log's batches.
    pub fn load(dir: &Path) -> Option<EpochCache> {
        let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok()?;
        let (body, crc) = text.strip_suffix('\n')?.rsplit_once('\n')?;
        (u32::from_str_radix(crc.trim(), 16).ok()? == crc32c::crc32c(body.as_bytes())).then_some(())?;
        let mut entries = Vec::new();
        for line in body.lines() {
            let (e, s) = line.split_once(' ')?;
            entries.push(EpochEntry { epoch: e.parse().ok()?, start_offset: s.parse().ok()? });
        }
        Some(EpochCache::from_entries(entries))
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let body: String = self.entries.iter().map(|e| format!("{} {}\n", e.epoch, e.start_offset)).collect();
        let body = body.trim_end_matches('\n');
        let text = format!("{body}\n{:08x}\n", crc32c::crc32c(body.as_bytes()));
        write_atomic(&checkpoint_path(dir), text.as_bytes())
    }
}

fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

/// What a follower does with the leader's answer `leader_end` to "where
/// does epoch E end?" (R2.12 step 3):
/// - it knows the leader's epoch: truncate to the smaller of both ends, done;
/// - it does not: truncate to the end of its largest epoch below the
///   leader's, and ask again (KIP-279), since the logs may have diverged earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    pub offset: i64,
    /// False when another round of epoch comparison is needed.
    pub complete: bool,
}

pub fn truncation_point(follower: &EpochCache, follower_leo: i64, leader_end: EpochEnd) -> Truncation {
    match follower.end_offset_for(leader_end.epoch, follower_leo) {
        Some(own) if own.epoch == leader_end.epoch => {
            Truncation { offset: leader_end.end_offset.min(own.end_offset).min(follower_leo), complete: true }
        }
        Some(own) => {
            // Our largest epoch ≤ the leader's is older than it: that epoch
            // is where we may share history; the leader will say.
            Truncation { offset: own.end_offset.min(follower_leo), complete: false }
        }
        // We know no epoch that old: nothing can be shared past the leader's end.
        None => Truncation {
            offset: leader_end
                .end_offset
                .min(follower_leo)
                .min(follower.entries.first().map_or(follower_leo, |e| e.start_offset)),
            complete: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cache(pairs: &[(i32, i64)]) -> EpochCache {
        EpochCache::from_entries(
            pairs.iter().map(|&(epoch, start_offset)| EpochEntry { epoch, start_offset }).collect(),
        )
    }

    #[test]
    fn end_offsets_follow_the_next_epoch_or_the_log_end() {
        let c = cache(&[(0, 0), (2, 10), (5, 30)]);
        assert_eq!(c.end_offset_for(0, 40), Some(EpochEnd { epoch: 0, end_offset: 10 }));
        assert_eq!(c.end_offset_for(1, 40), Some(EpochEnd { epoch: 0, end_offset: 10 }), "largest epoch ≤ 1 is 0");
        assert_eq!(c.end_offset_for(4, 40), Some(EpochEnd { epoch: 2, end_offset: 30 }));
        assert_eq!(c.end_offset_for(9, 40), Some(EpochEnd { epoch: 5, end_offset: 40 }));
        assert_eq!(cache(&[(3, 5)]).end_offset_for(2, 9), None);
    }

    #[test]
    fn assign_keeps_the_cache_strictly_increasing() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        c.assign(2, 15);
        assert_eq!(c.entries().len(), 2, "a repeat of the latest epoch is ignored");
        c.assign(3, 8);
        assert_eq!(
            c.entries(),
            &[EpochEntry { epoch: 0, start_offset: 0 }, EpochEntry { epoch: 3, start_offset: 8 }],
            "conflicting later entries go"
        );
        c.truncate_from_end(8);
        assert_eq!(c.latest_epoch(), Some(0));
    }

    #[test]
    fn the_checkpoint_round_trips_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(&[(0, 0), (4, 100)]);
        c.save(dir.path()).unwrap();
        assert_eq!(EpochCache::load(dir.path()), Some(c));
        let path = dir.path().join(CHECKPOINT_FILE);
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("100", "101")).unwrap();
        assert_eq!(EpochCache::load(dir.path()), None);
    }

    /// A log as a list of epochs, one per offset; its cache is derived.
    fn cache_of(log: &[i32]) -> EpochCache {
        let mut c = EpochCache::default();
        for (o, e) in log.iter().enumerate() {
            c.assign(*e, o as i64);
        }
        c
    }

    /// The length of the longest common prefix of two logs, where records
    /// are identified by (offset, epoch): same offset and same epoch means
    /// the same record, since one epoch has one leader.
    fn common_prefix(a: &[i32], b: &[i32]) -> usize {
        a.iter().zip(b).take_while(|(x, y)| x == y).count()
    }

    /// Runs the fetch-time protocol to completion: the follower tells its
    /// latest epoch, the leader answers its end for that epoch, the
    /// follower truncates; repeat until complete. Bounded by the epochs.
    fn converge(leader: &[i32], follower: &[i32]) -> usize {
        let lc = cache_of(leader);
        let mut f = follower.to_vec();
        for _ in 0..=follower.len() + 1 {
            let fc = cache_of(&f);
            let Some(fe) = fc.latest_epoch() else { return 0 };
            let Some(answer) = lc.end_offset_for(fe, leader.len() as i64) else {
                f.clear();
                return 0;
            };
            let t = truncation_point(&fc, f.len() as i64, answer);
            f.truncate(t.offset as usize);
            if t.complete {
                return f.len();
            }
        }
        panic!("truncation did not converge")
    }

    /// Two logs that share a prefix and then diverge, each epoch led once:
    /// epochs are non-decreasing along each log, and an epoch present in
    /// both suffixes would have had one leader, so suffixes use disjoint epochs.
    fn diverged_logs() -> impl Strategy<Value = (Vec<i32>, Vec<i32>)> {
        (
            proptest::collection::vec(0..3i32, 0..12),
            proptest::collection::vec(1..4i32, 0..12),
            proptest::collection::vec(1..4i32, 0..12),
            any::<bool>(),
        )
            .prop_map(|(prefix_steps, a_steps, b_steps, a_odd)| {
                let mut prefix = Vec::new();
                let mut e = 0;
                for s in prefix_steps {
                    e += s;
                    prefix.push(e);
                }
                let base = e;
                // Disjoint epochs for the two suffixes: odd ones for A, even for B (or the reverse).
                let suffix = |steps: Vec<i32>, odd: bool| {
                    let mut out = Vec::new();
                    let mut cur = base + if odd { 1 } else { 2 };
                    for s in steps {
                        out.push(cur);
                        if s > 2 {
                            cur += 2;
                        }
                    }
                    out
                };
                let mut a = prefix.clone();
                a.extend(suffix(a_steps, a_odd));
                let mut b = prefix;
                b.extend(suffix(b_steps, !a_odd));
                (a, b)
            })
    }

    proptest! {
        /// The truncation-point function, iterated as the fetch protocol does,
        /// always lands exactly on the longest common prefix of the two logs.
        #[test]
        fn iterated_truncation_converges_on_the_common_prefix((leader, follower) in diverged_logs()) {
            let kept = converge(&leader, &follower);
            prop_assert_eq!(kept, common_prefix(&leader, &follower), "leader {:?} follower {:?}", leader, follower);
        }
    }
}
