//! Seeded bug switches: each one brings back a historical Kafka data-loss or
//! duplication bug (`docs/semantics.md` §7), so the harness can prove it
//! catches it. All are off by default; an active switch is logged at WARN at
//! start-up and listed by `GET /v1/cluster`, so none is ever silently on.
//!
//! Each switch's doc says: the mechanism, the upstream reference, the recipe
//! (config + fault) that exposes it, and the anomaly the checker reports.
//! The recipes, as data, are in `recipes/bugs/*.toml`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// B1, KIP-101 scenario 1 (KAFKA-1211, fixed in 0.11.0). A follower
    /// truncates its log to its own (possibly stale) high watermark on
    /// restart and whenever it becomes a follower, instead of asking the
    /// leader where its epoch ends. Recipe: 5 nodes, RF=3, acks=all, min ISR
    /// 1, HW checkpoints every 5 s; kill the leader and a follower so the
    /// last follower leads alone, then kill it and restart everything: it
    /// leads again from a log cut to its stale checkpointed HW. Checker:
    /// `lost-write` (committed, possibly consumed), then
    /// `inconsistent-offsets` when offsets are reused.
    TruncateToLocalHw,
    /// B6, Jepsen 2013 (fixed by KAFKA-1555 / KIP-497). The leader shrinks
    /// its ISR on its own, without the controller committing it, and
    /// ignores `min.insync.replicas` when acking, so it acks acks=all alone.
    /// Recipe: RF=3, acks=all, min ISR 2, unclean off; partition the leader
    /// from its followers and the controller while clients still reach it
    /// (`leader-from-followers`). Checker: `lost-write`.
    LeaderUnilateralIsrShrink,
    /// B7 (contract R1.4). acks=all is answered as soon as the leader
    /// appended, before the high watermark covers the batch. Recipe: acks=all,
    /// RF=3; kill the leader under load. Checker: `lost-write`.
    AckAllOnLocalAppend,
    /// B8 (contract R2.5). Consumer fetches are served up to the log end
    /// offset instead of the high watermark. Recipe: acks=all; stall the
    /// followers' fetchers, then kill the leader under load. Checker:
    /// `lost-write` of values that were read (a read value was committed)
    /// with `read_before`, and `inconsistent-offsets` (a read value later
    /// replaced at its offset).
    ServeConsumersToLeo,
    /// B9 (contract R2.9, R3.3). With unclean election off, the controller
    /// still elects a live out-of-sync replica when no ISR member is alive.
    /// Recipe: RF=3, min ISR 1, unclean off; pause two followers until they
    /// leave the ISR, write, kill the leader. Checker: `lost-write`.
    ElectOutOfSyncReplica,
    /// B5, KAFKA-7164 (fixed in 2.0.1 / 2.1.0). A follower whose leader id is
    /// unchanged across missed epochs skips epoch-based truncation and keeps
    /// fetching from its log end without the epoch check. Recipe: 5 nodes,
    /// acks=1, unclean on, a 3 s session and a long lag time; pause one
    /// follower's fetchers (C), then cut the other follower (B) off from
    /// every node so it misses metadata (a partition, not SIGSTOP, whose
    /// queued messages would replay each epoch change); kill the leader (A)
    /// so C leads, restart A, kill C so A leads again; heal. Checker:
    /// `replica-divergence` (B keeps A's old records where A now has C's).
    SkipTruncateSameLeader,
    /// B4, KAFKA-7128 (fixed in 2.0.1 / 2.1.0). A follower joins the ISR once
    /// it reaches the high watermark, even if it has not reached the start of
    /// the leader's current epoch. Recipe: the new leader's HW lags far
    /// behind its log (it restarted without an HW checkpoint, min ISR 2
    /// freezes the HW while it is alone in the ISR); a lagging follower that
    /// copies one batch per fetch (`replica.fetch.max.bytes=0`) is let in at
    /// its first fetch, stops, and the leader is killed so it is elected.
    /// Checker: `lost-write` of acks=all records.
    IsrJoinIgnoresEpochStart,
    /// B13 (KAFKA-5494 keeps 5). The broker keeps one batch, not five, per
    /// idempotent producer, so retries of older in-flight batches are not
    /// recognised. Recipe: idempotent producer, max in-flight 5; drop the
    /// leader's packets to the clients (`mute-leader`), then kill it, so the
    /// in-flight batches, replicated but unacknowledged, are retried on the
    /// new leader: the oldest is out of sequence there, and the producer
    /// sends it again under a bumped epoch. Checker: `duplicate`.
    DedupeWindow1,
    /// B16 (contract R4.7.6). A new leader forgets the producer state it
    /// replicated, so a retry of a batch the old leader appended is appended
    /// again. Recipe: idempotent producer, max in-flight 5; drop the leader's
    /// packets to the clients (`mute-leader`: requests are appended and
    /// replicated, the acks are lost), then kill it, so the in-flight batches
    /// are retried on the new leader. Checker: `duplicate`.
    DropProducerStateOnFailover,
    /// Contract R5.1 and R5.7 (Kafka's coordinator answers
    /// `ILLEGAL_GENERATION` or `UNKNOWN_MEMBER_ID`, and the client raises
    /// `CommitFailedException`). The group coordinator accepts an offset
    /// commit from a member whose generation has ended, or that was removed
    /// from the group, so a consumer that lost its partitions (a zombie)
    /// moves the committed offset of partitions another member now owns.
    /// Recipe: consumers that subscribe and commit after processing; pause
    /// one consumer process past its session timeout so the group
    /// rebalances without it, then resume it: it commits what it processed
    /// under its old generation. Checker: `zombie-commit`.
    AcceptStaleGenerationCommit,
    /// B17 (no upstream bug; the promise of `flush.messages`). With
    /// `flush.messages=1` the node still acknowledges appends that are in
    /// the page cache only: the fsync is left to the next segment roll or
    /// shutdown. SIGKILL keeps the page cache, so only power loss can catch
    /// it. Recipe: RF=3, acks=all, `flush.messages=1`, the nodes on the
    /// lazyfs disk; `power-loss` of every node under load. Checker:
    /// `lost-write` (with `flush-messages=1` power loss permits none).
    SkipFsyncOnFlushMessages,
}

impl Bug {
    pub const ALL: [Bug; 11] = [
        Bug::TruncateToLocalHw,
        Bug::LeaderUnilateralIsrShrink,
        Bug::AckAllOnLocalAppend,
        Bug::ServeConsumersToLeo,
        Bug::ElectOutOfSyncReplica,
        Bug::SkipTruncateSameLeader,
        Bug::IsrJoinIgnoresEpochStart,
        Bug::DedupeWindow1,
        Bug::DropProducerStateOnFailover,
        Bug::AcceptStaleGenerationCommit,
        Bug::SkipFsyncOnFlushMessages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::TruncateToLocalHw => "truncate-to-local-hw",
            Bug::LeaderUnilateralIsrShrink => "leader-unilateral-isr-shrink",
            Bug::AckAllOnLocalAppend => "ack-all-on-local-append",
            Bug::ServeConsumersToLeo => "serve-consumers-to-leo",
            Bug::ElectOutOfSyncReplica => "elect-out-of-sync-replica",
            Bug::SkipTruncateSameLeader => "skip-truncate-same-leader",
            Bug::IsrJoinIgnoresEpochStart => "isr-join-ignores-epoch-start",
            Bug::DedupeWindow1 => "dedupe-window-1",
            Bug::DropProducerStateOnFailover => "drop-producer-state-on-failover",
            Bug::AcceptStaleGenerationCommit => "accept-stale-generation-commit",
            Bug::SkipFsyncOnFlushMessages => "skip-fsync-on-flush-messages",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Bug, String> {
        Bug::ALL.iter().copied().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug switch `{s}`; known: {}", names.join(", "))
        })
    }
}

/// The set of active switches, a bitset so it is `Copy` and free to test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs(u32);

impl Bugs {
    pub fn on(self, bug: Bug) -> bool {
        self.0 & (1 << bug as u32) != 0
    }

    pub fn with(self, bug: Bug) -> Bugs {
        Bugs(self.0 | (1 << bug as u32))
    }

    pub fn active(self) -> Vec<Bug> {
        Bug::ALL.iter().copied().filter(|b| self.on(*b)).collect()
    }

    /// Parses a comma list of names.
    pub fn parse_list(list: &str) -> Result<Bugs, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .try_fold(Bugs::default(), |acc, s| Ok(acc.with(s.parse()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every switch has a recipe file named after it, and every recipe names a real switch.
    #[test]
    fn every_switch_has_a_recipe_data_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/bugs");
        for b in Bug::ALL {
            let path = dir.join(format!("{}.toml", b.name()));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let named = text.lines().find_map(|l| l.strip_prefix("bug = ")).expect("a bug = line").trim_matches('"');
            assert_eq!(named.parse::<Bug>(), Ok(b), "{}", path.display());
            assert!(
                text.contains("expect = [") && text.contains("[[timeline]]"),
                "{} lacks expect or timeline",
                path.display()
            );
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for b in Bug::ALL {
            assert_eq!(b.name().parse::<Bug>(), Ok(b));
            assert!(Bugs::default().with(b).on(b));
        }
        let err = Bugs::parse_list("dedupe-window-1, nope").unwrap_err();
        assert!(err.contains("`nope`") && err.contains("truncate-to-local-hw"), "{err}");
        assert_eq!(Bugs::parse_list("dedupe-window-1,ack-all-on-local-append").unwrap().active().len(), 2);
    }
}
