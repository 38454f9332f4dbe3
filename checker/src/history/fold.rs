//! Folding one op into the history: validating its place (dense `index`,
//! monotonic time per process, invoke/completion pairing), interning its
//! partitions, values and process, and appending its records.

use std::collections::BTreeMap;

use super::{
    Assign, Commit, DISTINCT_NAMES_MAX, Drain, Entry, History, KeyInfo, Kind, NO_OFFSET, NONE, NemesisOp, Rec,
    malformed,
};
use crate::error::Result;
use crate::op::{DrainComplete, F, Op, OpType, OpValue, PartMap, PollValue, Process, RecordValue, SendRecord};
use crate::util::FxHashMap;

/// What folding needs of a line besides its records: the same whether the
/// line came through serde_json or the fast path.
#[derive(Debug, PartialEq)]
pub(super) struct Head<'a> {
    pub index: u64,
    pub time_ns: u64,
    pub process: Process,
    pub invoke_index: Option<u64>,
    pub op_type: OpType,
    pub kind: Kind,
    pub f: &'a str,
    pub error: Option<&'a str>,
    pub is_final: bool,
    /// False for a send invoke that said `"atomic": false`.
    pub atomic: bool,
}

impl<'a> Head<'a> {
    pub(super) fn of_op(op: &'a Op) -> Head<'a> {
        Head {
            index: op.index,
            time_ns: op.time_ns,
            process: op.process,
            invoke_index: op.invoke_index,
            op_type: op.op_type,
            kind: kind_of(op),
            f: op.f.name(),
            error: op.error.as_deref(),
            is_final: op.is_final,
            atomic: !matches!(&op.value, OpValue::Send(v) if op.op_type == OpType::Invoke && v.atomic == Some(false)),
        }
    }
}

/// A record value, borrowed from wherever the line was read into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ValRef<'a> {
    Int(i64),
    Str(&'a str),
}

impl<'a> ValRef<'a> {
    fn of(v: &'a RecordValue) -> ValRef<'a> {
        match v {
            RecordValue::Int(i) => ValRef::Int(*i),
            RecordValue::Str(s) => ValRef::Str(s),
        }
    }
}

/// A partition as an op names it: by name, or by id once interned.
#[derive(Debug, Clone, Copy)]
pub(super) enum PartRef<'a> {
    Name(&'a str),
    Id(u32),
}

/// Where an op's records go, by its kind and type.
#[derive(Debug, Clone, Copy)]
pub(super) enum Place {
    /// A send invoke's: offsets unknown, and op `.0` is their sender.
    Sent(u32),
    /// An ok send's, at the offsets its ack reported (if any).
    Acked,
    /// An enqueue invoke's: no offset yet.
    Unplaced,
    /// A poll's or a process's `[offset, value]` pairs. An offset of
    /// `NO_OFFSET` would read as "unknown", so it is refused with this text.
    Placed(&'static str),
}

impl Place {
    /// `None` for ops whose records are not kept: completions repeat their
    /// invoke's records, and the invoke's are kept.
    pub(super) fn of(kind: Kind, op_type: OpType, idx: u32) -> Option<Place> {
        Some(match (kind, op_type) {
            (Kind::Send, OpType::Invoke) => Place::Sent(idx),
            (Kind::Send, OpType::Ok) => Place::Acked,
            (Kind::Enqueue, OpType::Invoke) => Place::Unplaced,
            (Kind::Process, OpType::Invoke) => Place::Placed("process offset out of range"),
            (Kind::Poll, OpType::Ok) => Place::Placed("poll offset out of range"),
            _ => return None,
        })
    }
}

pub(super) fn send_groups(
    records: &PartMap<Vec<SendRecord>>,
) -> impl Iterator<Item = (PartRef<'_>, impl Iterator<Item = (Option<u64>, ValRef<'_>)>)> {
    records.0.iter().map(|(p, recs)| (PartRef::Name(p), recs.iter().map(|r| (r.offset, ValRef::of(&r.value)))))
}

pub(super) fn placed_groups(
    v: &PollValue,
) -> impl Iterator<Item = (PartRef<'_>, impl Iterator<Item = (Option<u64>, ValRef<'_>)>)> {
    v.records.0.iter().map(|(p, recs)| (PartRef::Name(p), recs.iter().map(|(o, v)| (Some(*o), ValRef::of(v)))))
}

impl History {
    pub(super) fn intern_partition(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.partition_ids.get(name) {
            return id;
        }
        let id = self.partitions.len() as u32;
        self.partitions.push(name.to_owned());
        self.partition_ids.insert(name.to_owned(), id);
        self.str_key_ids.push(FxHashMap::default());
        id
    }

    fn intern_key(&mut self, partition: u32, value: ValRef<'_>) -> u32 {
        let next = self.keys.len() as u32;
        let keys = &mut self.keys;
        match value {
            ValRef::Int(i) => {
                let (id, new) = self.int_key_ids.intern(partition, i, next, |k| keys[k as usize].partition);
                if new {
                    keys.push(KeyInfo { partition, value: RecordValue::Int(i), sender: NONE });
                }
                id
            }
            ValRef::Str(s) => {
                let map = &mut self.str_key_ids[partition as usize];
                if let Some(&k) = map.get(s) {
                    return k;
                }
                map.insert(s.to_owned(), next);
                keys.push(KeyInfo { partition, value: RecordValue::Str(s.to_owned()), sender: NONE });
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
        let head = Head::of_op(op);
        self.push_head(&head, line, |h, idx, partner| h.fold_value(op, idx, head.kind, partner, line))
    }

    /// Validates an op's place, pairs it, lets `fold` append its records and
    /// file its value, and appends its entry.
    pub(super) fn push_head(
        &mut self,
        op: &Head<'_>,
        line: u64,
        fold: impl FnOnce(&mut History, u32, u32) -> Result<()>,
    ) -> Result<()> {
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
        self.count(op);
        let partner = self.pair(op, idx, process, line)?;
        let rec_start = self.records.len() as u32;
        fold(self, idx, partner)?;
        let rec_len = self.records.len() as u32 - rec_start;
        self.entries.push(Entry {
            time_ns: op.time_ns,
            process,
            partner,
            kind: op.kind,
            op_type: op.op_type,
            is_final: op.is_final,
            atomic: op.atomic,
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
    fn check_time(&mut self, op: &Head<'_>, idx: u32, process: u32) {
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
    fn count(&mut self, op: &Head<'_>) {
        // A client kind's `f` is its name: counted in an array here, and
        // named in `op_counts` once, at the end.
        if let Some(k) = counted_kind(op.kind) {
            self.kind_counts[k][op.op_type as usize] += 1;
        } else {
            // `get_mut` first: the name is allocated once per distinct `f`,
            // not once per line.
            let counts = match self.op_counts.get_mut(op.f) {
                Some(c) => c,
                None => self.op_counts.entry(op.f.to_owned()).or_default(),
            };
            counts[op.op_type as usize] += 1;
        }
        if op.kind == Kind::Unknown {
            bump_bounded(&mut self.ignored_f, op.f);
        }
        if op.op_type == OpType::Info
            && op.kind != Kind::Nemesis
            && let Some(e) = op.error
        {
            bump_bounded(&mut self.info_causes, e);
        }
    }

    /// Finds the invoke a completion belongs to and validates the pair.
    fn pair(&mut self, op: &Head<'_>, idx: u32, process: u32, line: u64) -> Result<u32> {
        let kind = op.kind;
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
        let place = Place::of(kind, op.op_type, idx);
        match &op.value {
            OpValue::Send(v) | OpValue::Enqueue(v) => {
                if let Some(place) = place {
                    self.push_records(send_groups(&v.records), place, line)?;
                }
            }
            OpValue::Poll(v) | OpValue::Process(v) => {
                if let Some(place) = place {
                    self.push_records(placed_groups(v), place, line)?;
                }
            }
            OpValue::Commit(c) if kind == Kind::Commit => {
                let offsets = c.offsets.0.iter().map(|(p, o)| (self.intern_partition(p), *o)).collect();
                let generation = c.generation.filter(|g| *g >= 0);
                self.commits.push(Commit { invoke: idx, offsets, group: c.group.clone(), generation });
            }
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

    /// Appends an op's records, partition by partition, as `place` says.
    pub(super) fn push_records<'v, G, R>(&mut self, groups: G, place: Place, line: u64) -> Result<()>
    where
        G: IntoIterator<Item = (PartRef<'v>, R)>,
        R: IntoIterator<Item = (Option<u64>, ValRef<'v>)>,
    {
        for (part, recs) in groups {
            let p = match part {
                PartRef::Name(name) => self.intern_partition(name),
                PartRef::Id(p) => p,
            };
            for (offset, value) in recs {
                let key = self.intern_key(p, value);
                let offset = match place {
                    Place::Sent(idx) => {
                        self.note_sender(key, p, idx);
                        NO_OFFSET
                    }
                    Place::Acked => offset.unwrap_or(NO_OFFSET),
                    Place::Unplaced => NO_OFFSET,
                    Place::Placed(out_of_range) => match offset {
                        Some(o) if o != NO_OFFSET => o,
                        _ => return Err(malformed(line, 1, out_of_range)),
                    },
                };
                self.records.push(Rec { key, partition: p, offset });
            }
        }
        Ok(())
    }

    /// The first sender of each value is remembered: the analyses trust
    /// that values are unique per partition, so a repeat is worth a warning.
    fn note_sender(&mut self, key: u32, p: u32, idx: u32) {
        let k = &mut self.keys[key as usize];
        if k.sender == NONE {
            k.sender = idx;
            return;
        }
        let (first, value) = (k.sender, k.value.clone());
        let pn = self.partitions[p as usize].clone();
        self.warnings.push(|| {
            format!(
                "value {value} sent to {pn} again by op {idx} (first by op {first}); \
                 values must be unique per partition"
            )
        });
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
    let text = |key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_owned);
    let (require, unmet) = (text("require"), text("unmet"));
    let names = |x: &serde_json::Value| -> Option<Vec<String>> {
        x.as_array()?.iter().map(|n| n.as_str().map(str::to_owned)).collect()
    };
    let replicas = v.get("replicas").and_then(|r| r.as_object()).map_or_else(Default::default, |m| {
        m.iter().filter_map(|(p, nodes)| Some((p.clone(), names(nodes)?))).collect()
    });
    let f = op.f.name().to_owned();
    NemesisOp { op: idx, time_ns: op.time_ns, f, targets, skipped, require, unmet, replicas }
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

/// The client kinds counted in [`History::kind_counts`], by index.
pub(super) const COUNTED_KINDS: [Kind; 8] =
    [Kind::Send, Kind::Enqueue, Kind::Poll, Kind::Process, Kind::Assign, Kind::Revoke, Kind::Commit, Kind::Drain];

fn counted_kind(kind: Kind) -> Option<usize> {
    COUNTED_KINDS.iter().position(|k| *k == kind)
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
