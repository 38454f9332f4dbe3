//! Reads a JSON Lines history into a compact, indexed form.
//!
//! Parsing streams from a `BufRead`: each line becomes a transient [`Op`],
//! which is validated (dense `index`, invoke/completion pairing) and folded
//! into flat arrays: one 32-byte [`Entry`] per op and one 16-byte [`Rec`] per
//! record, with partitions, processes and `(partition, value)` keys interned to
//! dense `u32`s. Nothing is sized by offsets, so memory is O(ops) whatever the
//! offsets are. [`History::index`] then holds the per-key and per-partition
//! facts that every analysis shares.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::op::{F, Op, OpType, OpValue, Process, RawOp, RecordValue, Seek};
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
    pub drains: Vec<Drain>,
    /// Every `commit` invoke with its offsets, in index order.
    pub commits: Vec<Commit>,
    /// Ops by `f` and `type` (counts indexed by `OpType as usize`).
    pub op_counts: BTreeMap<String, [u64; 4]>,
    /// Unknown `f` names and how many lines had each.
    pub ignored_f: BTreeMap<String, u64>,
    /// Distinct `error`s of `info` ops: why outcomes were unknown.
    pub info_causes: BTreeMap<String, u64>,
    pub warnings: Warnings,
    pub truncated: Option<TruncatedLine>,
    pub index: Index,
    partition_ids: FxHashMap<String, u32>,
    /// Integer values (the common case) get a map with 16-byte keys: half
    /// the cache misses of a map keyed by `RecordValue`.
    int_key_ids: FxHashMap<(u32, i64), u32>,
    /// Per partition: string values, looked up by `&str` without allocating.
    str_key_ids: Vec<FxHashMap<String, u32>>,
    process_ids: FxHashMap<Process, u32>,
    /// Per process: its latest invoke not yet completed, for completions
    /// without `invoke_index`.
    open_invoke: Vec<u32>,
    /// Per process: the time of its latest op; time must not go back.
    last_time_ns: Vec<u64>,
    drain_of_invoke: FxHashMap<u32, usize>,
}

impl History {
    /// Reads a whole history. A malformed line is an error naming its line
    /// and column; a last line cut short is skipped and reported in
    /// [`History::truncated`].
    ///
    /// Two stages on two threads: one reads and JSON-parses lines in batches,
    /// the caller's thread validates and interns them in order. The channel
    /// between them holds at most `PARSE_BATCHES_IN_FLIGHT` batches.
    pub fn parse<R: BufRead + Send>(reader: R) -> Result<History> {
        let mut h = History::default();
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(PARSE_BATCHES_IN_FLIGHT);
            // Consumed batches go back to the reader thread to be freed there.
            // Unbounded in type only: the reader drains it before each send,
            // so it never holds more than the batches in flight.
            let (done_tx, done_rx) = std::sync::mpsc::channel::<Vec<Parsed>>();
            s.spawn(move || read_lines(reader, &tx, &done_rx));
            // Dropping `rx` on an early return stops the reader at its next send.
            for mut batch in rx {
                for item in &mut batch {
                    match item {
                        Parsed::Op(line, op) => h.push(op, *line)?,
                        Parsed::Truncated(t) => h.truncated = Some(t.clone()),
                        Parsed::Error(_) => {
                            if let Parsed::Error(e) = std::mem::replace(item, Parsed::Taken) {
                                return Err(e);
                            }
                        }
                        Parsed::Taken => {}
                    }
                }
                let _ = done_tx.send(batch);
            }
            Ok(())
        })?;
        h.finish();
        Ok(h)
    }

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
            RecordValue::Int(i) => self.int_key_ids.get(&(partition, *i)).copied(),
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

    fn intern_partition(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.partition_ids.get(name) {
            return id;
        }
        let id = self.partitions.len() as u32;
        self.partitions.push(name.to_owned());
        self.partition_ids.insert(name.to_owned(), id);
        self.str_key_ids.push(FxHashMap::default());
        id
    }

    fn intern_key(&mut self, partition: u32, value: &RecordValue) -> u32 {
        let next = self.keys.len() as u32;
        let keys = &mut self.keys;
        match value {
            RecordValue::Int(i) => *self.int_key_ids.entry((partition, *i)).or_insert_with(|| {
                keys.push(KeyInfo { partition, value: value.clone(), sender: NONE });
                next
            }),
            RecordValue::Str(s) => {
                let map = &mut self.str_key_ids[partition as usize];
                if let Some(&k) = map.get(s.as_str()) {
                    return k;
                }
                map.insert(s.clone(), next);
                keys.push(KeyInfo { partition, value: value.clone(), sender: NONE });
                next
            }
        }
    }

    fn intern_process(&mut self, p: Process) -> u32 {
        let next = self.processes.len() as u32;
        let procs = &mut self.processes;
        let open = &mut self.open_invoke;
        let last = &mut self.last_time_ns;
        *self.process_ids.entry(p).or_insert_with(|| {
            procs.push(p);
            open.push(NONE);
            last.push(0);
            next
        })
    }

    /// Folds one op in. Takes it by reference so that the parse thread,
    /// which allocated it, also frees it: cross-thread frees contend on the
    /// allocator's locks.
    fn push(&mut self, op: &Op, line: u64) -> Result<()> {
        let idx = self.entries.len() as u32;
        if op.index != u64::from(idx) {
            return Err(malformed(
                line,
                1,
                &format!("index {} out of order: expected {idx} (indices are dense from 0)", op.index),
            ));
        }
        let process = self.intern_process(op.process);
        let last = &mut self.last_time_ns[process as usize];
        if op.time_ns < *last {
            let (prev, now, who) = (*last, op.time_ns, op.process);
            self.warnings
                .push(|| format!("op {idx} of process {who} has time {now} ns, before its previous op's {prev} ns"));
        }
        *last = (*last).max(op.time_ns);
        let kind = match (op.process, &op.f) {
            (Process::Nemesis, _) | (_, F::Fault(_)) => Kind::Nemesis,
            (_, F::Send) => Kind::Send,
            (_, F::Enqueue) => Kind::Enqueue,
            (_, F::Poll) => Kind::Poll,
            (_, F::Process) => Kind::Process,
            (_, F::Assign) => Kind::Assign,
            (_, F::Commit) => Kind::Commit,
            (_, F::Drain) => Kind::Drain,
            (_, F::Other(_)) => Kind::Unknown,
        };
        let counts = match self.op_counts.get_mut(op.f.name()) {
            Some(c) => c,
            None => self.op_counts.entry(op.f.name().to_owned()).or_default(),
        };
        counts[op.op_type as usize] += 1;
        if kind == Kind::Unknown {
            bump_bounded(&mut self.ignored_f, op.f.name());
        }
        if op.op_type == OpType::Info
            && kind != Kind::Nemesis
            && let Some(e) = &op.error
        {
            bump_bounded(&mut self.info_causes, e);
        }
        let partner = self.pair(op, idx, process, kind, line)?;
        let rec_start = self.records.len() as u32;
        let mut atomic = true;
        match &op.value {
            OpValue::Send(v) if op.op_type == OpType::Invoke => {
                atomic = v.atomic != Some(false);
                for (pname, recs) in &v.records.0 {
                    let p = self.intern_partition(pname);
                    for r in recs {
                        let key = self.intern_key(p, &r.value);
                        let k = &mut self.keys[key as usize];
                        if k.sender == NONE {
                            k.sender = idx;
                        } else {
                            let (first, value) = (k.sender, k.value.clone());
                            let pn = self.partitions[p as usize].clone();
                            self.warnings.push(|| {
                                format!("value {value} sent to {pn} again by op {idx} (first by op {first}); values must be unique per partition")
                            });
                        }
                        self.records.push(Rec { key, partition: p, offset: NO_OFFSET });
                    }
                }
            }
            OpValue::Send(v) if op.op_type == OpType::Ok => {
                for (pname, recs) in &v.records.0 {
                    let p = self.intern_partition(pname);
                    for r in recs {
                        let key = self.intern_key(p, &r.value);
                        self.records.push(Rec { key, partition: p, offset: r.offset.unwrap_or(NO_OFFSET) });
                    }
                }
            }
            // Completions repeat their invoke's records: the invoke's are kept.
            OpValue::Enqueue(v) if op.op_type == OpType::Invoke => {
                for (pname, recs) in &v.records.0 {
                    let p = self.intern_partition(pname);
                    for r in recs {
                        let key = self.intern_key(p, &r.value);
                        self.records.push(Rec { key, partition: p, offset: NO_OFFSET });
                    }
                }
            }
            OpValue::Process(v) if op.op_type == OpType::Invoke => {
                for (pname, recs) in &v.records.0 {
                    let p = self.intern_partition(pname);
                    for &(offset, ref value) in recs {
                        if offset == NO_OFFSET {
                            return Err(malformed(line, 1, "process offset out of range"));
                        }
                        let key = self.intern_key(p, value);
                        self.records.push(Rec { key, partition: p, offset });
                    }
                }
            }
            OpValue::Commit(c) if kind == Kind::Commit => {
                let offsets = c.offsets.0.iter().map(|(p, o)| (self.intern_partition(p), *o)).collect();
                self.commits.push(Commit { invoke: idx, offsets });
            }
            OpValue::Poll(v) if kind == Kind::Poll => {
                for (pname, recs) in &v.records.0 {
                    let p = self.intern_partition(pname);
                    for &(offset, ref value) in recs {
                        if offset == NO_OFFSET {
                            return Err(malformed(line, 1, "poll offset out of range"));
                        }
                        let key = self.intern_key(p, value);
                        self.records.push(Rec { key, partition: p, offset });
                    }
                }
            }
            OpValue::Assign(a) if kind == Kind::Assign => {
                let partitions = a.partitions.iter().map(|p| self.intern_partition(p)).collect();
                self.assigns.insert(idx, Assign { partitions, seek: a.seek });
            }
            OpValue::DrainTargets(d) if kind == Kind::Drain => {
                let targets = d.targets.0.iter().map(|(p, o)| (self.intern_partition(p), *o)).collect();
                self.drain_of_invoke.insert(idx, self.drains.len());
                self.drains.push(Drain { invoke: idx, completion: NONE, targets, complete: Vec::new() });
            }
            OpValue::DrainComplete(d) if kind == Kind::Drain => {
                let complete = d.complete.0.iter().map(|(p, c)| (self.intern_partition(p), *c)).collect();
                match self.drain_of_invoke.get(&partner) {
                    Some(&di) => {
                        self.drains[di].completion = idx;
                        self.drains[di].complete = complete;
                    }
                    None => {
                        self.warnings.push(|| format!("drain completion op {idx} has no drain invoke with targets"))
                    }
                }
            }
            _ => {}
        }
        let rec_len = self.records.len() as u32 - rec_start;
        self.entries.push(Entry {
            time_ns: op.time_ns,
            process,
            partner,
            kind,
            op_type: op.op_type,
            is_final: op.is_final,
            atomic,
            rec_start,
            rec_len,
        });
        if partner != NONE {
            self.entries[partner as usize].partner = idx;
        }
        Ok(())
    }

    /// Finds the invoke a completion belongs to and validates the pair.
    fn pair(&mut self, op: &Op, idx: u32, process: u32, kind: Kind, line: u64) -> Result<u32> {
        if kind == Kind::Nemesis {
            return Ok(NONE);
        }
        if op.op_type == OpType::Invoke {
            self.open_invoke[process as usize] = idx;
            return Ok(NONE);
        }
        let target = match op.invoke_index {
            Some(i) if i >= u64::from(idx) => {
                return Err(malformed(line, 1, &format!("invoke_index {i} is not before this op")));
            }
            Some(i) => i as u32,
            None => self.open_invoke[process as usize],
        };
        if target == NONE {
            return Err(malformed(
                line,
                1,
                &format!("{} completion of process {} has no open invoke", op.op_type.as_str(), op.process),
            ));
        }
        let inv = self.entries[target as usize];
        if inv.op_type != OpType::Invoke || inv.partner != NONE || inv.process != process || inv.kind != kind {
            return Err(malformed(
                line,
                1,
                &format!(
                    "op {idx} cannot complete op {target}: that op is not an open {} invoke of process {}",
                    op.f, op.process
                ),
            ));
        }
        if self.open_invoke[process as usize] == target {
            self.open_invoke[process as usize] = NONE;
        }
        Ok(target)
    }

    /// Builds [`History::index`].
    fn finish(&mut self) {
        let nkeys = self.keys.len();
        let nparts = self.partitions.len();
        let mut ix = Index {
            ack_op: vec![NONE; nkeys],
            ack_offset: vec![NO_OFFSET; nkeys],
            first_read: vec![NONE; nkeys],
            first_final_read: vec![NONE; nkeys],
            obs: Vec::new(),
            key_offset: vec![NO_OFFSET; nkeys],
            multi_offset: vec![false; nkeys],
            part_obs: Vec::with_capacity(nparts),
            max_read: vec![None; nparts],
            drained_by: vec![NONE; nparts],
            drain_target: vec![NO_OFFSET; nparts],
            enqueued: vec![NONE; nkeys],
            committed: vec![None; nparts],
        };
        for (i, e) in self.entries.iter().enumerate() {
            let i = i as u32;
            if e.op_type != OpType::Ok {
                continue;
            }
            match e.kind {
                Kind::Send if e.partner != NONE => {
                    for r in self.recs(e.partner) {
                        if ix.ack_op[r.key as usize] == NONE {
                            ix.ack_op[r.key as usize] = i;
                        }
                    }
                    for r in self.recs(i) {
                        if r.offset == NO_OFFSET {
                            continue;
                        }
                        if ix.ack_offset[r.key as usize] == NO_OFFSET {
                            ix.ack_offset[r.key as usize] = r.offset;
                        }
                        ix.obs.push(Obs { partition: r.partition, offset: r.offset, key: r.key, op: i, ack: true });
                    }
                }
                Kind::Enqueue if e.partner != NONE => {
                    for r in self.recs(e.partner) {
                        if ix.enqueued[r.key as usize] == NONE {
                            ix.enqueued[r.key as usize] = i;
                        }
                    }
                }
                Kind::Poll => {
                    for r in self.recs(i) {
                        let k = r.key as usize;
                        if ix.first_read[k] == NONE {
                            ix.first_read[k] = i;
                        }
                        if e.is_final && ix.first_final_read[k] == NONE {
                            ix.first_final_read[k] = i;
                        }
                        let m = &mut ix.max_read[r.partition as usize];
                        if m.is_none_or(|(o, _)| r.offset > o) {
                            *m = Some((r.offset, i));
                        }
                        ix.obs.push(Obs { partition: r.partition, offset: r.offset, key: r.key, op: i, ack: false });
                    }
                }
                _ => {}
            }
        }
        ix.obs.sort_unstable();
        for o in &ix.obs {
            let k = o.key as usize;
            if ix.key_offset[k] == NO_OFFSET {
                ix.key_offset[k] = o.offset;
            } else if ix.key_offset[k] != o.offset {
                ix.multi_offset[k] = true;
            }
        }
        let mut start = 0;
        for p in 0..nparts as u32 {
            let end = start + ix.obs[start..].partition_point(|o| o.partition == p);
            ix.part_obs.push(start..end);
            start = end;
        }
        // The final reader is not the group whose processing is checked: its
        // commits (if any) say nothing about what the group processed.
        for c in &self.commits {
            let (inv, done) = (&self.entries[c.invoke as usize], self.entries[c.invoke as usize].partner);
            if done == NONE || inv.is_final {
                continue;
            }
            let completion = &self.entries[done as usize];
            if completion.op_type != OpType::Ok || completion.is_final {
                continue;
            }
            for &(p, offset) in &c.offsets {
                let m = &mut ix.committed[p as usize];
                match m {
                    Some((o, op)) if offset > *o || (offset == *o && done < *op) => *m = Some((offset, done)),
                    None => *m = Some((offset, done)),
                    _ => {}
                }
            }
        }
        for d in &self.drains {
            if d.completion == NONE || self.entries[d.completion as usize].op_type != OpType::Ok {
                continue;
            }
            for &(p, complete) in &d.complete {
                if complete {
                    ix.drained_by[p as usize] = d.completion;
                    let target = d.targets.iter().find(|t| t.0 == p).map_or(NO_OFFSET, |t| t.1);
                    ix.drain_target[p as usize] = target;
                }
            }
        }
        self.index = ix;
    }
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Send => "send",
        Kind::Enqueue => "enqueue",
        Kind::Poll => "poll",
        Kind::Process => "process",
        Kind::Assign => "assign",
        Kind::Commit => "commit",
        Kind::Drain => "drain",
        Kind::Nemesis => "nemesis",
        Kind::Unknown => "unknown",
    }
}

fn bump_bounded(map: &mut BTreeMap<String, u64>, name: &str) {
    if let Some(c) = map.get_mut(name) {
        *c += 1;
    } else if map.len() < DISTINCT_NAMES_MAX {
        map.insert(name.to_owned(), 1);
    } else {
        *map.entry("(other)".to_owned()).or_default() += 1;
    }
}

fn malformed(line: u64, column: u64, message: &str) -> Error {
    Error::Malformed { line, column, message: message.to_owned() }
}

/// Lines parsed per batch handed from the reader thread to the indexer:
/// large enough to amortise the channel, small enough to stay in cache.
const PARSE_BATCH_LINES: usize = 4096;
/// Batches queued between the two stages; bounds the memory in flight.
const PARSE_BATCHES_IN_FLIGHT: usize = 4;

enum Parsed {
    Op(u64, Op),
    Truncated(TruncatedLine),
    Error(Error),
    /// An error moved out of its batch.
    Taken,
}

/// The reader stage: splits lines and parses JSON, in order. Stops at the
/// first error, at a truncated last line, or when the indexer hangs up.
fn read_lines<R: BufRead>(
    mut reader: R,
    tx: &std::sync::mpsc::SyncSender<Vec<Parsed>>,
    done: &std::sync::mpsc::Receiver<Vec<Parsed>>,
) {
    let mut buf = Vec::with_capacity(512);
    let mut line_no: u64 = 0;
    let mut batch = Vec::with_capacity(PARSE_BATCH_LINES);
    let done = loop {
        buf.clear();
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(source) => break Some(Parsed::Error(Error::Io { path: "<history>".into(), source })),
        };
        if n == 0 {
            break None;
        }
        line_no += 1;
        let has_newline = buf.last() == Some(&b'\n');
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => break Some(Parsed::Error(malformed(line_no, e.valid_up_to() as u64 + 1, "invalid UTF-8"))),
        };
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(op) => batch.push(Parsed::Op(line_no, op)),
            Err(LineError { eof: true, message, .. }) if !has_newline => {
                break Some(Parsed::Truncated(TruncatedLine { line: line_no, message }));
            }
            Err(LineError { column, message, .. }) => break Some(Parsed::Error(malformed(line_no, column, &message))),
        }
        if batch.len() == PARSE_BATCH_LINES {
            // Reuse a consumed batch's vector when one is back; its ops are
            // freed here, on the thread that allocated them.
            let fresh = match done.try_recv() {
                Ok(mut old) => {
                    while let Ok(more) = done.try_recv() {
                        drop(more);
                    }
                    old.clear();
                    old
                }
                Err(_) => Vec::with_capacity(PARSE_BATCH_LINES),
            };
            let full = std::mem::replace(&mut batch, fresh);
            if tx.send(full).is_err() {
                return;
            }
        }
    };
    batch.extend(done);
    let _ = tx.send(batch);
}

struct LineError {
    column: u64,
    message: String,
    /// The line ended before the JSON did: a truncated write.
    eof: bool,
}

/// Parses one line: the envelope first, then `value` typed by `f`. Errors in
/// the value are mapped back to columns of the whole line.
fn parse_line(line: &str) -> std::result::Result<Op, LineError> {
    let raw: RawOp<'_, &RawValue> = serde_json::from_str(line).map_err(|e| LineError {
        column: e.column() as u64,
        eof: e.is_eof(),
        message: without_position(&e),
    })?;
    let value_col =
        raw.value.map_or(1, |v| (v.get().as_ptr() as usize).saturating_sub(line.as_ptr() as usize) as u64 + 1);
    // A `Cow` clone: free unless the name had escapes.
    let f = raw.f.clone();
    raw.into_op().map_err(|e| LineError {
        column: value_col + (e.column() as u64).saturating_sub(1),
        eof: false,
        message: format!("bad value for f {f:?}: {}", without_position(&e)),
    })
}

/// serde_json's message without its " at line 1 column N" suffix: positions
/// are reported against the whole file instead (histories and `sink.jsonl`).
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((msg, _)) => msg.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<History> {
        History::parse(s.as_bytes())
    }

    /// A syntax error names its line and column.
    #[test]
    fn malformed_line_names_line_and_column() {
        let s =
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{}}\n{\"index\":1,,}\n";
        match parse(s) {
            Err(Error::Malformed { line, column, .. }) => assert_eq!((line, column), (2, 12)),
            other => panic!("expected a malformed-line error, got {other:?}"),
        }
    }

    /// A bad value inside a line is located inside that line.
    #[test]
    fn bad_value_column_points_into_the_value() {
        let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1.5]}}}"#;
        match parse(s) {
            Err(Error::Malformed { line: 1, column, message }) => {
                assert!(column > 60, "column {column} should be inside the value ({message})");
            }
            other => panic!("expected a malformed value error, got {other:?}"),
        }
    }

    /// A last line cut mid-write is skipped and reported.
    #[test]
    fn truncated_last_line_is_skipped() {
        let s = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{}}\n{\"index\":1,\"time\":2,\"pro";
        let h = parse(s).unwrap();
        assert_eq!(h.entries.len(), 1);
        assert_eq!(h.truncated.as_ref().map(|t| t.line), Some(2));
    }

    /// Completions without `invoke_index` pair with the process's open invoke.
    #[test]
    fn completions_pair_without_invoke_index() {
        let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":1,"process":1,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":2,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":3,"time":3,"process":1,"type":"info","f":"send"}
"#;
        let h = parse(s).unwrap();
        assert_eq!(h.entries[0].partner, 2);
        assert_eq!(h.entries[1].partner, 3);
        assert_eq!(h.index.ack_offset[0], 0);
        assert_eq!(h.index.ack_op[1], NONE);
    }

    /// Non-dense indices are rejected with the line.
    #[test]
    fn index_gap_is_an_error() {
        let s = r#"{"index":1,"time":1,"process":0,"type":"invoke","f":"poll"}"#;
        assert!(matches!(parse(s), Err(Error::Malformed { line: 1, .. })));
    }

    /// Enqueue and process invokes carry their records; completions pair
    /// with them; ok enqueues and ok commits are indexed.
    #[test]
    fn enqueue_process_and_commit_are_indexed() {
        let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[1,2]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"enqueue","value":{"records":{"t/0":[1,2]}}}
{"index":2,"time":3,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[3]}}}
{"index":3,"time":4,"process":0,"type":"fail","f":"enqueue","value":{"records":{"t/0":[3]}},"error":"max.block.ms"}
{"index":4,"time":5,"process":1,"type":"invoke","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":5,"time":6,"process":1,"type":"ok","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":6,"time":7,"process":1,"type":"invoke","f":"commit","value":{"group":"g","offsets":{"t/0":1}}}
{"index":7,"time":8,"process":1,"type":"ok","f":"commit"}
{"index":8,"time":9,"process":1,"type":"invoke","f":"commit","value":{"group":"g","offsets":{"t/0":5}}}
{"index":9,"time":10,"process":1,"type":"info","f":"commit","error":"timeout"}
{"index":10,"time":11,"process":2,"type":"invoke","f":"commit","value":{"group":"r","offsets":{"t/0":9}},"final":true}
{"index":11,"time":12,"process":2,"type":"ok","f":"commit","final":true}
"#;
        let h = parse(s).unwrap();
        assert!(h.ignored_f.is_empty(), "{:?}", h.ignored_f);
        assert_eq!((h.entries[0].kind, h.entries[4].kind), (Kind::Enqueue, Kind::Process));
        assert_eq!((h.entries[0].partner, h.entries[4].partner), (1, 5));
        let t0 = h.partition_id("t/0").unwrap();
        let k = |v: i64| h.key_id(t0, &RecordValue::Int(v)).unwrap() as usize;
        assert_eq!((h.index.enqueued[k(1)], h.index.enqueued[k(2)], h.index.enqueued[k(3)]), (1, 1, NONE));
        assert_eq!(h.recs(4), &[Rec { key: k(1) as u32, partition: t0, offset: 0 }]);
        // The info commit and the final reader's commit do not count.
        assert_eq!(h.index.committed[t0 as usize], Some((1, 7)));
        assert_eq!(h.commits.len(), 3);
    }

    /// Offsets near u64::MAX cost nothing: memory is per record, not per offset.
    #[test]
    fn huge_offsets_are_fine() {
        let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"poll","value":{}}
{"index":1,"time":2,"process":0,"type":"ok","f":"poll","value":{"records":{"t/0":[[18446744073709551000,"x"]]}}}
"#;
        let h = parse(s).unwrap();
        assert_eq!(h.index.max_read[0].map(|m| m.0), Some(18_446_744_073_709_551_000));
    }
}
