//! Folding one op into the history: validating its place (dense `index`,
//! monotonic time per process, invoke/completion pairing), interning its
//! partitions, values and process, and appending its records.

use std::collections::BTreeMap;

use super::{
    Assign, Commit, DISTINCT_NAMES_MAX, Drain, Entry, History, KeyInfo, Kind, NO_OFFSET, NONE, NemesisOp, Rec,
    malformed,
};
use crate::error::Result;
use crate::op::{
    DrainComplete, F, Op, OpType, OpValue, PartMap, PollValue, Process, RecordValue, SendRecord, SendValue,
};
use crate::util::FxHashMap;

impl History {
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
    pub(super) fn push(&mut self, op: &Op, line: u64) -> Result<()> {
        let idx = self.entries.len() as u32;
        if op.index != u64::from(idx) {
            return Err(malformed(
                line,
                1,
                &format!("index {} out of order: expected {idx} (indices are dense from 0)", op.index),
            ));
        }
        let process = self.intern_process(op.process);
        self.check_time(op, idx, process);
        let kind = kind_of(op);
        self.count(op, kind);
        let partner = self.pair(op, idx, process, kind, line)?;
        let rec_start = self.records.len() as u32;
        self.fold_value(op, idx, kind, partner, line)?;
        let rec_len = self.records.len() as u32 - rec_start;
        self.entries.push(Entry {
            time_ns: op.time_ns,
            process,
            partner,
            kind,
            op_type: op.op_type,
            is_final: op.is_final,
            atomic: !matches!(&op.value, OpValue::Send(v) if op.op_type == OpType::Invoke && v.atomic == Some(false)),
            rec_start,
            rec_len,
        });
        if partner != NONE {
            self.entries[partner as usize].partner = idx;
        }
        Ok(())
    }

    /// A process's clock going back is a recorder bug worth reporting, but
    /// not one that makes the rest of the history unreadable.
    fn check_time(&mut self, op: &Op, idx: u32, process: u32) {
        let last = &mut self.last_time_ns[process as usize];
        if op.time_ns < *last {
            let (prev, now, who) = (*last, op.time_ns, op.process);
            self.warnings
                .push(|| format!("op {idx} of process {who} has time {now} ns, before its previous op's {prev} ns"));
        }
        *last = (*last).max(op.time_ns);
    }

    /// Tallies the op for the summary: by `f` and type, unknown `f`s, and
    /// why `info` outcomes were unknown.
    fn count(&mut self, op: &Op, kind: Kind) {
        // `get_mut` first: the name is allocated once per distinct `f`, not
        // once per line.
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

    /// Appends the op's records and files its assign, commit or drain.
    fn fold_value(&mut self, op: &Op, idx: u32, kind: Kind, partner: u32, line: u64) -> Result<()> {
        match &op.value {
            OpValue::Send(v) if op.op_type == OpType::Invoke => self.push_sent(v, idx),
            OpValue::Send(v) if op.op_type == OpType::Ok => self.push_acked(&v.records),
            // Completions repeat their invoke's records: the invoke's are kept.
            OpValue::Enqueue(v) if op.op_type == OpType::Invoke => self.push_unplaced(&v.records),
            OpValue::Process(v) if op.op_type == OpType::Invoke => {
                self.push_placed(v, line, "process offset out of range")?;
            }
            OpValue::Commit(c) if kind == Kind::Commit => {
                let offsets = c.offsets.0.iter().map(|(p, o)| (self.intern_partition(p), *o)).collect();
                let generation = c.generation.filter(|g| *g >= 0);
                self.commits.push(Commit { invoke: idx, offsets, group: c.group.clone(), generation });
            }
            OpValue::Poll(v) if kind == Kind::Poll => self.push_placed(v, line, "poll offset out of range")?,
            OpValue::Assign(a) if kind == Kind::Assign => {
                let partitions = a.partitions.iter().map(|p| self.intern_partition(p)).collect();
                self.assigns
                    .insert(idx, Assign { partitions, seek: a.seek, group: a.group.clone(), generation: a.generation });
            }
            OpValue::Revoke(r) if kind == Kind::Revoke => {
                let partitions = r.partitions.iter().map(|p| self.intern_partition(p)).collect();
                self.revokes.insert(idx, partitions);
            }
            OpValue::DrainTargets(d) if kind == Kind::Drain => {
                let targets = d.targets.0.iter().map(|(p, o)| (self.intern_partition(p), *o)).collect();
                self.drain_of_invoke.insert(idx, self.drains.len());
                self.drains.push(Drain { invoke: idx, completion: NONE, targets, complete: Vec::new() });
            }
            OpValue::DrainComplete(d) if kind == Kind::Drain => self.complete_drain(d, idx, partner),
            OpValue::Other(v) if kind == Kind::Nemesis => self.nemesis.push(nemesis_op(op, idx, v)),
            _ => {}
        }
        Ok(())
    }

    /// A send invoke's records, offsets unknown. The first sender of each
    /// value is remembered: the analyses trust that values are unique per
    /// partition, so a repeat is worth a warning.
    fn push_sent(&mut self, v: &SendValue, idx: u32) {
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
                        format!(
                            "value {value} sent to {pn} again by op {idx} (first by op {first}); \
                             values must be unique per partition"
                        )
                    });
                }
                self.records.push(Rec { key, partition: p, offset: NO_OFFSET });
            }
        }
    }

    /// An ok send's records, at the offsets its ack reported (if any).
    fn push_acked(&mut self, records: &PartMap<Vec<SendRecord>>) {
        for (pname, recs) in &records.0 {
            let p = self.intern_partition(pname);
            for r in recs {
                let key = self.intern_key(p, &r.value);
                self.records.push(Rec { key, partition: p, offset: r.offset.unwrap_or(NO_OFFSET) });
            }
        }
    }

    /// Records that have no offset yet (an enqueue's).
    fn push_unplaced(&mut self, records: &PartMap<Vec<SendRecord>>) {
        for (pname, recs) in &records.0 {
            let p = self.intern_partition(pname);
            for r in recs {
                let key = self.intern_key(p, &r.value);
                self.records.push(Rec { key, partition: p, offset: NO_OFFSET });
            }
        }
    }

    /// `[offset, value]` records (a poll's or a process's). `NO_OFFSET` is
    /// refused: it would read as "offset unknown".
    fn push_placed(&mut self, v: &PollValue, line: u64, out_of_range: &str) -> Result<()> {
        for (pname, recs) in &v.records.0 {
            let p = self.intern_partition(pname);
            for &(offset, ref value) in recs {
                if offset == NO_OFFSET {
                    return Err(malformed(line, 1, out_of_range));
                }
                let key = self.intern_key(p, value);
                self.records.push(Rec { key, partition: p, offset });
            }
        }
        Ok(())
    }

    /// Attaches a drain completion to the drain its invoke opened.
    fn complete_drain(&mut self, d: &DrainComplete, idx: u32, partner: u32) {
        let complete = d.complete.0.iter().map(|(p, c)| (self.intern_partition(p), *c)).collect();
        match self.drain_of_invoke.get(&partner) {
            Some(&di) => {
                self.drains[di].completion = idx;
                self.drains[di].complete = complete;
            }
            None => self.warnings.push(|| format!("drain completion op {idx} has no drain invoke with targets")),
        }
    }
}

/// A nemesis op's fault, targets and outcome. Its value is free-form: what
/// is not there is left empty.
fn nemesis_op(op: &Op, idx: u32, v: &serde_json::Value) -> NemesisOp {
    let targets = v.get("targets").and_then(|t| t.as_array()).map_or_else(Vec::new, |ts| {
        ts.iter().map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned)).collect()
    });
    let skipped = (v.get("outcome").and_then(|o| o.as_str()) == Some("skipped"))
        .then(|| v.get("reason").and_then(|r| r.as_str()).unwrap_or("skipped").to_owned());
    NemesisOp { op: idx, time_ns: op.time_ns, f: op.f.name().to_owned(), targets, skipped }
}

/// What an op does. A nemesis process's ops are nemesis ops whatever their
/// `f`, so that a fault named like a client op is not mistaken for one.
fn kind_of(op: &Op) -> Kind {
    match (op.process, &op.f) {
        (Process::Nemesis, _) | (_, F::Fault(_)) => Kind::Nemesis,
        (_, F::Send) => Kind::Send,
        (_, F::Enqueue) => Kind::Enqueue,
        (_, F::Poll) => Kind::Poll,
        (_, F::Process) => Kind::Process,
        (_, F::Assign) => Kind::Assign,
        (_, F::Revoke) => Kind::Revoke,
        (_, F::Commit) => Kind::Commit,
        (_, F::Drain) => Kind::Drain,
        (_, F::Other(_)) => Kind::Unknown,
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
