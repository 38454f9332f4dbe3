//! Reads a JSON Lines history into a compact, indexed form.
//!
//! Parsing streams from a `BufRead`: each line is read (the hot ones
//! straight from the text, the rest as a transient [`Op`]), validated
//! (dense `index`, invoke/completion pairing) and folded into flat arrays:
//! one 32-byte [`Entry`] per op and one 16-byte [`Rec`] per record, with
//! partitions, processes and `(partition, value)` keys interned to dense
//! `u32`s. Nothing is sized by offsets, so memory is O(ops) whatever the
//! offsets are. [`History::index`] then holds the per-key and per-partition
//! facts that every analysis shares.
//!
//! # Layout
//! - `read`: [`History::parse`], a pipeline that cuts the input into blocks
//!   of lines, scans blocks on one worker per core, and folds them in order.
//! - `fast`: the allocation-free reading of the hot lines (client sends,
//!   enqueues, polls and processes), over `scan`'s strict JSON subset; any
//!   other line is serde_json's.
//! - `fold`: validating each op and folding it into the flat arrays.
//! - `index`: deriving [`Index`] once every op is in.
//! - `jepsen`: [`History::parse_jepsen`], Jepsen's EDN histories mapped
//!   onto the same ops.

#[cfg(test)]
mod differential;
mod fast;
mod fold;
mod index;
mod ints;
pub mod jepsen;
mod read;
mod scan;
#[cfg(test)]
mod tests;

pub(crate) use read::without_position;

use std::collections::BTreeMap;

use crate::availability::Availability;
use crate::error::{Error, Result};
use crate::op::{Op, OpType, Process, RecordValue, Seek};
use crate::util::FxHashMap;

/// "No op" / "no key" in the `u32` link fields.
pub const NONE: u32 = u32::MAX;
/// "Offset unknown" in [`Rec::offset`].
pub const NO_OFFSET: u64 = u64::MAX;
/// At most this many warnings are kept verbatim; the rest are only counted,
/// so a history full of non-unique sends cannot blow up the results.
pub const WARNING_EXAMPLES_MAX: usize = 8;
/// Distinct unknown `f` names and info error causes kept; more are lumped
/// together under "(other)".
const DISTINCT_NAMES_MAX: usize = 64;

/// What an op does, from its `f` (and `process` for the nemesis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Send,
    /// A fire-and-forget or callback producer accepted records into its
    /// in-memory buffer.
    Enqueue,
    Poll,
    /// A consumer wrote records into its downstream sink.
    Process,
    Assign,
    Revoke,
    Commit,
    Drain,
    Nemesis,
    /// An `f` this checker does not know; ignored with a count.
    Unknown,
}

/// One history line, compacted.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub time_ns: u64,
    /// Index into [`History::processes`].
    pub process: u32,
    /// For an invoke, its completion; for a completion, its invoke; else NONE.
    pub partner: u32,
    pub kind: Kind,
    pub op_type: OpType,
    pub is_final: bool,
    /// Send invokes only: false when the invoke said `"atomic": false`.
    pub atomic: bool,
    /// This op's records are `records[rec_start .. rec_start + rec_len]`.
    pub rec_start: u32,
    pub rec_len: u32,
}

/// One record named by an op: a send or enqueue invoke's value (offset
/// unknown), an ok send's ack, an ok poll's `[offset, value]`, or a process
/// invoke's `[offset, value]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    /// Index into [`History::keys`].
    pub key: u32,
    pub partition: u32,
    /// `NO_OFFSET` when unknown.
    pub offset: u64,
}

/// One `(partition, value)` pair; the unit most analyses reason about.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub partition: u32,
    pub value: RecordValue,
    /// The first send invoke that named this value, or NONE: nobody sent it.
    pub sender: u32,
}

/// An `assign` invoke's new assignment.
#[derive(Debug, Clone)]
pub struct Assign {
    pub partitions: Vec<u32>,
    pub seek: Seek,
    /// The group and its generation, for a subscribing consumer.
    pub group: Option<String>,
    pub generation: Option<i32>,
}

/// A `drain` op: the final reader's targets and what it reached.
#[derive(Debug, Clone)]
pub struct Drain {
    pub invoke: u32,
    pub completion: u32,
    pub targets: Vec<(u32, u64)>,
    pub complete: Vec<(u32, bool)>,
}

/// A `commit` invoke: the next offset to consume per partition. Whether the
/// group committed them is its completion's type.
#[derive(Debug, Clone)]
pub struct Commit {
    pub invoke: u32,
    pub offsets: Vec<(u32, u64)>,
    pub group: String,
    /// The member's generation; `None` for a simple consumer's commit.
    pub generation: Option<i32>,
}

/// A nemesis op, as the history recorded it: the fault windows of the
/// availability analysis and the report are built from these.
#[derive(Debug, Clone)]
pub struct NemesisOp {
    /// The op's index in the history.
    pub op: u32,
    pub time_ns: u64,
    /// The op's `f`: `start-<fault>` when it fired, `<fault>` once it took
    /// effect, `final-heal` at the end.
    pub f: String,
    /// `value.targets` (the nodes or targets it acted on), when given.
    pub targets: Vec<String>,
    /// `value.reason` of a fault recorded with `"outcome": "skipped"`.
    pub skipped: Option<String>,
    /// `value.require`: the precondition a timeline step needed when it
    /// fired, and `value.unmet`, why it did not hold, when it did not.
    pub require: Option<String>,
    pub unmet: Option<String>,
    /// `value.replicas` of a `power-loss`: each partition's replicas (node
    /// names) when it fired, so the checker knows whose power went.
    pub replicas: BTreeMap<String, Vec<String>>,
}

/// A line that was skipped: the last one, cut short by a killed writer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TruncatedLine {
    pub line: u64,
    pub message: String,
}

/// Bounded list of non-fatal oddities in the input.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Warnings {
    pub count: u64,
    pub examples: Vec<String>,
}

impl Warnings {
    pub fn push(&mut self, make: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < WARNING_EXAMPLES_MAX {
            self.examples.push(make());
        }
    }
}

/// Facts derived once after parsing and shared by the analyses.
#[derive(Debug, Default)]
pub struct Index {
    /// Per key: the ok send completion that acknowledged it, or NONE.
    pub ack_op: Vec<u32>,
    /// Per key: the offset its ack reported, or NO_OFFSET.
    pub ack_offset: Vec<u64>,
    /// Per key: the first ok poll that returned it, or NONE.
    pub first_read: Vec<u32>,
    /// Per key: the first ok final-drain poll that returned it, or NONE.
    pub first_final_read: Vec<u32>,
    /// Every `(offset, key)` observation by an ok poll or an ok send's ack,
    /// sorted by `(partition, offset, key, op)`.
    pub obs: Vec<Obs>,
    /// Per key: the lowest offset any observation put it at, or NO_OFFSET.
    pub key_offset: Vec<u64>,
    /// Per key: observed at two or more different offsets (a duplicate).
    pub multi_offset: Vec<bool>,
    /// Per partition: its slice of `obs`.
    pub part_obs: Vec<std::ops::Range<usize>>,
    /// Per partition: the highest offset any ok poll returned, and that poll.
    pub max_read: Vec<Option<(u64, u32)>>,
    /// Per partition: the drain completion that reported it complete, or NONE.
    pub drained_by: Vec<u32>,
    /// Per partition: the drain's target end offset, when drained.
    pub drain_target: Vec<u64>,
    /// Per key: the first ok enqueue completion that named it, or NONE.
    pub enqueued: Vec<u32>,
    /// Per partition: the highest offset any ok commit outside the final
    /// drain committed, and the first ok commit (completion) that did.
    pub committed: Vec<Option<(u64, u32)>>,
}

/// One observation of a value at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Obs {
    pub partition: u32,
    pub offset: u64,
    pub key: u32,
    pub op: u32,
    /// True when it came from a send's ack rather than a poll.
    pub ack: bool,
}

/// A parsed, validated and indexed history.
#[derive(Debug, Default)]
pub struct History {
    pub entries: Vec<Entry>,
    pub records: Vec<Rec>,
    pub partitions: Vec<String>,
    pub keys: Vec<KeyInfo>,
    pub processes: Vec<Process>,
    /// Keyed by the assign invoke's index.
    pub assigns: FxHashMap<u32, Assign>,
    /// The partitions of each `revoke` invoke, keyed by its index.
    pub revokes: FxHashMap<u32, Vec<u32>>,
    pub drains: Vec<Drain>,
    /// Every `commit` invoke with its offsets, in index order.
    pub commits: Vec<Commit>,
    /// Every nemesis op, in index order.
    pub nemesis: Vec<NemesisOp>,
    /// Ops by `f` and `type` (counts indexed by `OpType as usize`).
    pub op_counts: BTreeMap<String, [u64; 4]>,
    /// Unknown `f` names and how many lines had each.
    pub ignored_f: BTreeMap<String, u64>,
    /// Distinct `error`s of `info` ops: why outcomes were unknown.
    pub info_causes: BTreeMap<String, u64>,
    pub warnings: Warnings,
    pub truncated: Option<TruncatedLine>,
    /// What the input format could not carry, for the verdict's "not
    /// checked" list (a Jepsen history's transactions, for one).
    pub not_checked: Vec<String>,
    pub index: Index,
    /// The availability section of the verdict: rates, latencies and
    /// unavailable stretches, from the ops alone.
    pub availability: Availability,
    partition_ids: FxHashMap<String, u32>,
    /// Integer values (the common case): mostly an array index.
    int_key_ids: ints::IntIds,
    /// Per partition: string values, looked up by `&str` without allocating.
    str_key_ids: Vec<FxHashMap<String, u32>>,
    process_ids: FxHashMap<Process, u32>,
    /// Per process: its latest invoke not yet completed, for completions
    /// without `invoke_index`.
    open_invoke: Vec<u32>,
    /// Per process: the time of its latest op; time must not go back.
    last_time_ns: Vec<u64>,
    drain_of_invoke: FxHashMap<u32, usize>,
    /// Ops of each of `fold::COUNTED_KINDS` by type, until `finish` moves
    /// them into `op_counts`.
    kind_counts: [[u64; 4]; 8],
}

impl History {
    /// Builds a history from ops already in memory (the harness, tests).
    pub fn from_ops<I: IntoIterator<Item = Op>>(ops: I) -> Result<History> {
        let mut h = History::default();
        for (i, op) in ops.into_iter().enumerate() {
            h.push(&op, i as u64 + 1)?;
        }
        h.finish();
        Ok(h)
    }

    pub fn partition_id(&self, name: &str) -> Option<u32> {
        self.partition_ids.get(name).copied()
    }

    pub fn key_id(&self, partition: u32, value: &RecordValue) -> Option<u32> {
        match value {
            RecordValue::Int(i) => self.int_key_ids.get(partition, *i, |k| self.keys[k as usize].partition),
            RecordValue::Str(s) => self.str_key_ids.get(partition as usize)?.get(s.as_str()).copied(),
        }
    }

    /// The records of op `i`.
    pub fn recs(&self, i: u32) -> &[Rec] {
        let e = &self.entries[i as usize];
        &self.records[e.rec_start as usize..(e.rec_start + e.rec_len) as usize]
    }

    /// The completion type of an invoke, or `None` if it never completed.
    pub fn outcome(&self, invoke: u32) -> Option<OpType> {
        let p = self.entries[invoke as usize].partner;
        (p != NONE).then(|| self.entries[p as usize].op_type)
    }

    /// When key `k` happened, for placing it in time: its acknowledgement,
    /// else its first send's invoke, else its first observation.
    pub fn key_time_ns(&self, k: u32) -> u64 {
        let ix = &self.index;
        let op =
            [ix.ack_op[k as usize], self.keys[k as usize].sender, ix.first_read[k as usize], ix.enqueued[k as usize]]
                .into_iter()
                .find(|&op| op != NONE);
        op.map_or(0, |op| self.entries[op as usize].time_ns)
    }

    /// A JSON description of op `i` for witnesses.
    pub fn op_json(&self, i: u32) -> serde_json::Value {
        let e = &self.entries[i as usize];
        serde_json::json!({
            "index": i,
            "process": self.processes[e.process as usize],
            "f": kind_name(e.kind),
            "type": e.op_type,
            "time_ns": e.time_ns,
        })
    }

    /// "process 7 (op 30211, t=23.4 s)"
    pub fn op_text(&self, i: u32) -> String {
        let e = &self.entries[i as usize];
        format!("process {} (op {i}, t={:.1} s)", self.processes[e.process as usize], e.time_ns as f64 / 1e9)
    }
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Send => "send",
        Kind::Enqueue => "enqueue",
        Kind::Poll => "poll",
        Kind::Process => "process",
        Kind::Assign => "assign",
        Kind::Revoke => "revoke",
        Kind::Commit => "commit",
        Kind::Drain => "drain",
        Kind::Nemesis => "nemesis",
        Kind::Unknown => "unknown",
    }
}

fn malformed(line: u64, column: u64, message: &str) -> Error {
    Error::Malformed { line, column, message: message.to_owned() }
}
