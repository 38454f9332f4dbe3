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
    pub examples: Vec<Anomaly>,
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
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_processing: u64,
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
}

pub fn verdict(h: &History, g: &Guarantees, f: &Findings, inputs: &Inputs<'_>) -> Results {
    let mut anomalies = BTreeMap::new();
    let mut violations = Vec::new();
    let mut unknown_reasons = f.undecided.clone();
    let mut invalid = false;
    for (&kind, k) in &f.kinds {
        let reason = g.permits(kind);
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
        anomalies.insert(kind, TypeResult { count: k.count, status, reason, examples: k.examples.clone() });
    }
    let completed =
        h.entries.iter().any(|e| e.op_type != OpType::Invoke && !matches!(e.kind, Kind::Nemesis | Kind::Unknown));
    if !completed {
        unknown_reasons.push("the history has no completed client operation: nothing was tested".to_owned());
    }
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
    let not_checked = f.not_checked.clone();
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
    }
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
    let fields: [(AnomalyKind, Field); 4] = [
        (AnomalyKind::LostWrite, |ps| &mut ps.lost),
        (AnomalyKind::Unseen, |ps| &mut ps.unseen),
        (AnomalyKind::LostEnqueued, |ps| &mut ps.lost_enqueued),
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
        s.partitions.insert(h.partitions[p].clone(), ps);
    }
    s
}

/// The short human summary `faultline check` prints.
pub fn summary(r: &Results) -> String {
    let mut out = String::new();
    let verdict = match r.valid {
        Validity::Valid => "valid: no violations found",
        Validity::Invalid => "INVALID: violations found",
        Validity::Unknown => "UNKNOWN: the checker could not decide",
    };
    out.push_str(&format!("Verdict: {verdict}\n"));
    for reason in &r.unknown_reasons {
        out.push_str(&format!("  unknown because: {reason}\n"));
    }
    let ops: u64 = r.stats.ops.values().flat_map(|m| m.values()).sum();
    let acked: u64 = r.stats.partitions.values().map(|p| p.acknowledged).sum();
    out.push_str(&format!(
        "Checked {ops} ops over {} partitions ({acked} values acknowledged).\n",
        r.stats.partitions.len()
    ));
    let enqueued: u64 = r.stats.partitions.values().map(|p| p.enqueued).sum();
    if enqueued > 0 {
        out.push_str(&format!("{enqueued} values were enqueued into producer buffers.\n"));
    }
    if let Some(s) = &r.stats.sink {
        out.push_str(&format!("The sink holds {} rows in {} slots.\n", s.rows, s.slots));
    }
    if r.anomalies.is_empty() {
        out.push_str("No anomalies.\n");
    }
    for (kind, t) in &r.anomalies {
        let status = match (&t.status, &t.reason) {
            (Status::Permitted, Some(why)) => format!("permitted: {why}"),
            _ => "violation".to_owned(),
        };
        out.push_str(&format!("{kind}: {} ({status})\n", t.count));
        if let Some(ex) = t.examples.first() {
            out.push_str(&format!("  e.g. {}\n", ex.explanation));
        }
    }
    if r.warnings.count > 0 {
        out.push_str(&format!("{} warnings, e.g. {}\n", r.warnings.count, r.warnings.examples[0]));
    }
    if let Some(t) = &r.truncated_line {
        out.push_str(&format!("Skipped truncated last line {}: {}\n", t.line, t.message));
    }
    let ignored: u64 = r.stats.ignored_f.values().sum();
    if ignored > 0 {
        let names: Vec<&str> = r.stats.ignored_f.keys().map(String::as_str).collect();
        out.push_str(&format!("Ignored {ignored} ops with unknown f: {}\n", names.join(", ")));
    }
    for n in &r.not_checked {
        out.push_str(&format!("Not checked: {n}\n"));
    }
    out
}
