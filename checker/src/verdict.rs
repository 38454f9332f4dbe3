//! Turns findings and guarantees into `results.json` and a human summary.
//!
//! - `valid: false` if any violation other than `unseen` was found.
//! - `unseen` makes it `false` where a complete final drain covers the
//!   partition, and `"unknown"` otherwise: loss cannot be told from delay.
//! - An analysis that cannot decide, or a history with no completed client
//!   op, gives `"unknown"` with the reason. Nothing gives `true` by default.
//!
//! Results are bounded: ≤ 8 examples per type, and stats per partition.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::Inputs;
use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::availability::{Availability, FaultWindow, fault_windows};
use crate::guarantees::Guarantees;
use crate::history::{History, Kind, NONE, TruncatedLine, Warnings};
use crate::op::OpType;

/// Jepsen's tri-state validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        })
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl Validity {
    /// Jepsen's exit codes: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Violation,
    Permitted,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeResult {
    pub count: u64,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For the types whose instances have a time (a lost write's
    /// acknowledgement, …): how many fell in each fault window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<FaultShares>,
    pub examples: Vec<Anomaly>,
}

/// Where in time a type's instances fell, against the fault windows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultShares {
    /// Instances per fault window: the window's index in
    /// `availability.faults`, its label and the count; windows with none
    /// are left out.
    pub in_faults: Vec<FaultCount>,
    /// Instances outside every lasting fault window.
    pub outside_faults: u64,
    /// The first and last instance's time, in seconds.
    pub first_s: f64,
    pub last_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultCount {
    pub fault: usize,
    pub label: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionStats {
    pub acknowledged: u64,
    pub lost: u64,
    pub unseen: u64,
    /// A completed final drain reached this partition's target.
    pub drained: bool,
    /// Values an ok enqueue accepted into a producer's buffer.
    #[serde(skip_serializing_if = "is_zero")]
    pub enqueued: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_enqueued: u64,
    /// Records the buffer refused that a fire-and-forget application dropped.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_enqueued: u64,
    /// acks=0 sends that never reached the log.
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_unacknowledged: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_processing: u64,
    /// Values at two or more offsets.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicated: u64,
    /// `lost` and `duplicated` as shares of `acknowledged` (0.45 is 45%).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicated_share: Option<f64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Ops by `f`, then by `type`.
    pub ops: BTreeMap<String, BTreeMap<String, u64>>,
    pub partitions: BTreeMap<String, PartitionStats>,
    /// Lines with an `f` the checker does not know, by `f`.
    pub ignored_f: BTreeMap<String, u64>,
    /// `error`s of info ops: why outcomes were unknown.
    pub info_causes: BTreeMap<String, u64>,
    /// What `sink.jsonl` held, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkStats>,
}

/// The size of the sink the processing analyses read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStats {
    pub rows: u64,
    /// Consumer slots holding at least one row.
    pub slots: u64,
}

/// `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub valid: Validity,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_reasons: Vec<String>,
    pub anomaly_types: Vec<AnomalyKind>,
    pub violations: Vec<AnomalyKind>,
    pub anomalies: BTreeMap<AnomalyKind, TypeResult>,
    pub guarantees: Guarantees,
    /// Analyses that could not run, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
    pub warnings: Warnings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_line: Option<TruncatedLine>,
    pub stats: Stats,
    pub availability: Availability,
    /// `(partition, time_ns)` of every timed instance, by type, for the
    /// report's pictures; too large for `results.json`.
    #[serde(skip)]
    pub times_ns: BTreeMap<AnomalyKind, Vec<(u32, u64)>>,
}

/// Why each timeline step whose precondition did not hold leaves the run
/// undecided.
fn unmet_preconditions(h: &History) -> impl Iterator<Item = String> + '_ {
    h.nemesis.iter().filter_map(|n| {
        let why = n.unmet.as_deref()?;
        Some(format!(
            "the timeline step {} at {:.1} s needed {}, which did not hold ({why}): the run does not test what its \
             recipe was built to test",
            n.f,
            n.time_ns as f64 / 1e9,
            n.require.as_deref().unwrap_or("a precondition"),
        ))
    })
}

pub fn verdict(h: &History, g: &Guarantees, f: &Findings, inputs: &Inputs<'_>) -> Results {
    let windows = fault_windows(h);
    let powered_off = crate::power_loss::PoweredOff::of(h);
    let mut anomalies = BTreeMap::new();
    let mut violations = Vec::new();
    let mut unknown_reasons = f.undecided.clone();
    let mut invalid = false;
    for (&kind, k) in &f.kinds {
        let reason = g.permits(kind).or_else(|| powered_off.reason(kind, &instances(h, k), g));
        let status = if reason.is_some() { Status::Permitted } else { Status::Violation };
        if status == Status::Violation {
            violations.push(kind);
            let drained = || k.per_partition.keys().any(|&p| h.index.drained_by[p as usize] != NONE);
            if kind != AnomalyKind::Unseen || drained() {
                invalid = true;
            } else {
                unknown_reasons.push(format!(
                    "{} acknowledged values were never read and no complete final drain covers their partitions: \
                     loss cannot be told from delay",
                    k.count
                ));
            }
        }
        // Every instance of a timed type has its time, in report order, so
        // example i happened at times_ns[i].
        let timed = k.times_ns.len() as u64 == k.count;
        let examples =
            k.examples.iter().enumerate().map(|(i, a)| placed(a, timed.then(|| k.times_ns[i].1), &windows)).collect();
        let when = (!k.times_ns.is_empty()).then(|| fault_shares(&k.times_ns, &windows));
        anomalies.insert(kind, TypeResult { count: k.count, status, reason, when, examples });
    }
    let completed =
        h.entries.iter().any(|e| e.op_type != OpType::Invoke && !matches!(e.kind, Kind::Nemesis | Kind::Unknown));
    if !completed {
        unknown_reasons.push("the history has no completed client operation: nothing was tested".to_owned());
    }
    unknown_reasons.extend(unmet_preconditions(h));
    if let Some(reason) = inputs.lost_control {
        unknown_reasons.push(format!(
            "the harness lost control of the cluster ({reason}): what the run read at the end does not \
             describe the system, so no anomaly found is a claim about it"
        ));
    }
    let valid = if inputs.lost_control.is_some() {
        Validity::Unknown
    } else if invalid {
        Validity::Invalid
    } else if unknown_reasons.is_empty() {
        Validity::Valid
    } else {
        Validity::Unknown
    };
    let not_checked: Vec<String> = f.not_checked.iter().chain(&h.not_checked).cloned().collect();
    Results {
        valid,
        unknown_reasons,
        anomaly_types: f.kinds.keys().copied().collect(),
        violations,
        anomalies,
        guarantees: g.clone(),
        not_checked,
        warnings: h.warnings.clone(),
        truncated_line: h.truncated.clone(),
        stats: stats(h, f, inputs),
        availability: h.availability.clone(),
        times_ns: f
            .kinds
            .iter()
            .filter(|(_, k)| !k.times_ns.is_empty())
            .map(|(&kind, k)| (kind, k.times_ns.clone()))
            .collect(),
    }
}

/// Each instance's partition and time, for a timed type (every instance has
/// its time); else each example with its earliest witness op, and every
/// partition without a time.
fn instances<'h>(h: &'h History, k: &'h crate::anomaly::KindFindings) -> Vec<(&'h str, Option<u64>)> {
    let name = |p: u32| h.partitions[p as usize].as_str();
    if k.times_ns.len() as u64 == k.count {
        return k.times_ns.iter().map(|&(p, t)| (name(p), Some(t))).collect();
    }
    let examples = k.examples.iter().filter_map(|a| {
        let first = a.witness_times_ns().into_iter().min();
        Some((a.partition.as_deref()?, first))
    });
    examples.chain(k.per_partition.keys().map(|&p| (name(p), None))).collect()
}

/// An example with the fault windows it fell in: those holding its own
/// time when its type gives one (a lost write's acknowledgement), else
/// those holding one of its witness ops. Not the span between them: a
/// lost write's witness ends at the final drain, long after any fault.
fn placed(a: &Anomaly, time_ns: Option<u64>, windows: &[FaultWindow]) -> Anomaly {
    let times_ns = time_ns.map_or_else(|| a.witness_times_ns(), |t| vec![t]);
    let mut a = a.clone();
    a.faults = windows.iter().filter(|w| times_ns.iter().any(|&t| w.contains(t))).map(FaultWindow::label).collect();
    a
}

/// How many of `times_ns` fell in each window, and outside every lasting one.
fn fault_shares(times_ns: &[(u32, u64)], windows: &[FaultWindow]) -> FaultShares {
    let mut counts = vec![0u64; windows.len()];
    let mut s = FaultShares::default();
    let (mut lo, mut hi) = (u64::MAX, 0);
    for &(_, t) in times_ns {
        let mut inside = false;
        for (i, w) in windows.iter().enumerate() {
            if w.contains(t) {
                counts[i] += 1;
                inside |= !w.is_instant();
            }
        }
        s.outside_faults += u64::from(!inside);
        (lo, hi) = (lo.min(t), hi.max(t));
    }
    s.in_faults = counts
        .into_iter()
        .enumerate()
        .filter(|&(_, n)| n > 0)
        .map(|(i, count)| FaultCount { fault: i, label: windows[i].label(), count })
        .collect();
    (s.first_s, s.last_s) = (lo as f64 / 1e9, hi as f64 / 1e9);
    s
}

fn stats(h: &History, f: &Findings, inputs: &Inputs<'_>) -> Stats {
    let mut s = Stats { ignored_f: h.ignored_f.clone(), info_causes: h.info_causes.clone(), ..Stats::default() };
    s.sink = inputs.sink.map(|k| SinkStats { rows: k.rows().len() as u64, slots: k.slot_count() as u64 });
    for (name, counts) in &h.op_counts {
        let by_type = s.ops.entry(name.clone()).or_default();
        for t in [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info] {
            if counts[t as usize] > 0 {
                by_type.insert(t.as_str().to_owned(), counts[t as usize]);
            }
        }
    }
    let mut parts: Vec<PartitionStats> = vec![PartitionStats::default(); h.partitions.len()];
    for (k, key) in h.keys.iter().enumerate() {
        if h.index.ack_op[k] != NONE {
            parts[key.partition as usize].acknowledged += 1;
        }
        if h.index.enqueued[k] != NONE {
            parts[key.partition as usize].enqueued += 1;
        }
    }
    type Field = fn(&mut PartitionStats) -> &mut u64;
    let fields: [(AnomalyKind, Field); 7] = [
        (AnomalyKind::LostWrite, |ps| &mut ps.lost),
        (AnomalyKind::Duplicate, |ps| &mut ps.duplicated),
        (AnomalyKind::Unseen, |ps| &mut ps.unseen),
        (AnomalyKind::LostEnqueued, |ps| &mut ps.lost_enqueued),
        (AnomalyKind::DroppedEnqueued, |ps| &mut ps.dropped_enqueued),
        (AnomalyKind::LostUnacknowledged, |ps| &mut ps.lost_unacknowledged),
        (AnomalyKind::LostProcessing, |ps| &mut ps.lost_processing),
    ];
    for (kind, field) in fields {
        if let Some(k) = f.kinds.get(&kind) {
            for (&p, &n) in &k.per_partition {
                *field(&mut parts[p as usize]) += n;
            }
        }
    }
    for (p, mut ps) in parts.into_iter().enumerate() {
        ps.drained = h.index.drained_by[p] != NONE;
        let share = |n: u64| (ps.acknowledged > 0 && n > 0).then(|| n as f64 / ps.acknowledged as f64);
        (ps.lost_share, ps.duplicated_share) = (share(ps.lost), share(ps.duplicated));
        s.partitions.insert(h.partitions[p].clone(), ps);
    }
    s
}
