//! Anomaly types, their witnesses, and the bounded collector analyses report
//! into.
//!
//! An analysis may find millions of instances (every value of a partition
//! unseen), so [`Findings`] counts every instance but keeps only the first
//! `example_limit` witnesses per type, and builds a witness only when it will
//! be kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::util::FxHashMap;

/// Witnesses kept per anomaly type in results: enough to debug, never
/// gigabytes (Jepsen's "two gigabytes of EDN" complaint).
pub const EXAMPLES_PER_TYPE_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    LostWrite,
    Unseen,
    ReplicaDivergence,
    Duplicate,
    InconsistentOffsets,
    PollSkip,
    NonmonotonicPoll,
    NonmonotonicSend,
    AbortedRead,
    PhantomRead,
    OrderCycle,
    RealtimeCycle,
    LostEnqueued,
    DroppedEnqueued,
    LostUnacknowledged,
    LostProcessing,
    DuplicateProcessing,
    ZombieCommit,
    MetadataRegression,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 19] = [
        AnomalyKind::LostWrite,
        AnomalyKind::Unseen,
        AnomalyKind::ReplicaDivergence,
        AnomalyKind::Duplicate,
        AnomalyKind::InconsistentOffsets,
        AnomalyKind::PollSkip,
        AnomalyKind::NonmonotonicPoll,
        AnomalyKind::NonmonotonicSend,
        AnomalyKind::AbortedRead,
        AnomalyKind::PhantomRead,
        AnomalyKind::OrderCycle,
        AnomalyKind::RealtimeCycle,
        AnomalyKind::LostEnqueued,
        AnomalyKind::DroppedEnqueued,
        AnomalyKind::LostUnacknowledged,
        AnomalyKind::LostProcessing,
        AnomalyKind::DuplicateProcessing,
        AnomalyKind::ZombieCommit,
        AnomalyKind::MetadataRegression,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::LostWrite => "lost-write",
            AnomalyKind::Unseen => "unseen",
            AnomalyKind::ReplicaDivergence => "replica-divergence",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::InconsistentOffsets => "inconsistent-offsets",
            AnomalyKind::PollSkip => "poll-skip",
            AnomalyKind::NonmonotonicPoll => "nonmonotonic-poll",
            AnomalyKind::NonmonotonicSend => "nonmonotonic-send",
            AnomalyKind::AbortedRead => "aborted-read",
            AnomalyKind::PhantomRead => "phantom-read",
            AnomalyKind::OrderCycle => "order-cycle",
            AnomalyKind::RealtimeCycle => "realtime-cycle",
            AnomalyKind::LostEnqueued => "lost-enqueued",
            AnomalyKind::DroppedEnqueued => "dropped-enqueued",
            AnomalyKind::LostUnacknowledged => "lost-unacknowledged",
            AnomalyKind::LostProcessing => "lost-processing",
            AnomalyKind::DuplicateProcessing => "duplicate-processing",
            AnomalyKind::ZombieCommit => "zombie-commit",
            AnomalyKind::MetadataRegression => "metadata-regression",
        }
    }

    pub fn from_name(s: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One instance of an anomaly, with the evidence that proves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    #[serde(rename = "type")]
    pub kind: AnomalyKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// One sentence a person can act on.
    pub explanation: String,
    /// The ops (index, process, f, type, time), offsets and values involved.
    pub witness: serde_json::Value,
    /// The fault windows its witness ops fell in, as labels
    /// (`kill n2 at 3.1–7.9 s`); filled in by the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

impl Anomaly {
    /// The ops the witness names, as `(index, time_ns)`: every object of
    /// the shape `History::op_json` writes, sorted by index, each once.
    pub fn witness_ops(&self) -> Vec<(u32, u64)> {
        fn walk(v: &serde_json::Value, out: &mut Vec<(u32, u64)>) {
            match v {
                serde_json::Value::Object(m) => {
                    let index = m.get("index").and_then(|i| i.as_u64());
                    if let (Some(i), Some(t)) = (index, m.get("time_ns").and_then(|t| t.as_u64())) {
                        out.push((i as u32, t));
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.witness, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// When the witness's ops happened.
    pub fn witness_times_ns(&self) -> Vec<u64> {
        self.witness_ops().into_iter().map(|(_, t)| t).collect()
    }
}

/// Everything found of one type.
#[derive(Debug, Clone, Default)]
pub struct KindFindings {
    pub count: u64,
    pub examples: Vec<Anomaly>,
    /// Instances per partition id, for stats and the unseen verdict.
    pub per_partition: FxHashMap<u32, u64>,
    /// `(partition, time_ns)` of each instance reported with a time (the
    /// ack of a lost write, …): when it happened, for the fault windows.
    pub times_ns: Vec<(u32, u64)>,
}

/// The collector every analysis reports into.
#[derive(Debug, Clone)]
pub struct Findings {
    example_limit: usize,
    pub kinds: BTreeMap<AnomalyKind, KindFindings>,
    /// Reasons an analysis could not decide; they make the verdict unknown.
    pub undecided: Vec<String>,
    /// Analyses that did not run, each as "type: why". They leave the
    /// verdict alone: a run that did not use a feature is not unknown.
    pub not_checked: Vec<String>,
}

impl Default for Findings {
    fn default() -> Self {
        Findings::with_example_limit(EXAMPLES_PER_TYPE_MAX)
    }
}

impl Findings {
    /// Tests raise the limit to see every instance.
    pub fn with_example_limit(example_limit: usize) -> Self {
        Findings { example_limit, kinds: BTreeMap::new(), undecided: Vec::new(), not_checked: Vec::new() }
    }

    /// Counts one instance; `make` builds its witness only if it is kept.
    pub fn report(&mut self, kind: AnomalyKind, partition: Option<u32>, make: impl FnOnce() -> Anomaly) {
        let k = self.kinds.entry(kind).or_default();
        k.count += 1;
        if let Some(p) = partition {
            *k.per_partition.entry(p).or_default() += 1;
        }
        if k.examples.len() < self.example_limit {
            let a = make();
            debug_assert_eq!(a.kind, kind, "witness built for the wrong kind");
            k.examples.push(a);
        }
    }

    /// As [`Findings::report`], for an instance that happened at `time_ns`
    /// in `partition`.
    pub fn report_at(&mut self, kind: AnomalyKind, partition: u32, time_ns: u64, make: impl FnOnce() -> Anomaly) {
        self.report(kind, Some(partition), make);
        self.kinds.get_mut(&kind).expect("just reported").times_ns.push((partition, time_ns));
    }

    pub fn example_limit(&self) -> usize {
        self.example_limit
    }

    /// Adds `other`'s findings (from analyses run on another thread).
    pub fn merge(&mut self, other: Findings) {
        for (kind, k) in other.kinds {
            let mine = self.kinds.entry(kind).or_default();
            mine.count += k.count;
            let room = self.example_limit.saturating_sub(mine.examples.len());
            mine.examples.extend(k.examples.into_iter().take(room));
            for (p, n) in k.per_partition {
                *mine.per_partition.entry(p).or_default() += n;
            }
            mine.times_ns.extend(k.times_ns);
        }
        for reason in other.undecided {
            self.undecided(reason);
        }
        for reason in other.not_checked {
            self.not_checked(reason);
        }
    }

    /// Records that an analysis did not run, and why.
    pub fn not_checked(&mut self, reason: String) {
        if !self.not_checked.contains(&reason) {
            self.not_checked.push(reason);
        }
    }

    pub fn undecided(&mut self, reason: String) {
        if !self.undecided.contains(&reason) {
            self.undecided.push(reason);
        }
    }

    pub fn count(&self, kind: AnomalyKind) -> u64 {
        self.kinds.get(&kind).map_or(0, |k| k.count)
    }

    pub fn examples(&self, kind: AnomalyKind) -> &[Anomaly] {
        self.kinds.get(&kind).map_or(&[], |k| &k.examples)
    }
}
