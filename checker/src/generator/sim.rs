//! The simulation behind the generator: per-partition logs, and producer
//! and consumer actors that each have at most one op in flight, moved one
//! step at a time in an order the seeded PRNG picks.

mod final_phase;
mod script;

use super::{
    BATCH_MAX, CONSUMERS, ENQUEUE_FAIL_PER_MILLE, ENQUEUE_PER_MILLE, GenConfig, NEMESIS_EVERY_OPS, NODES,
    POLL_RECORDS_MAX, PROCESS_FAIL_PER_MILLE, PRODUCERS,
};
use crate::anomaly::AnomalyKind;
use crate::error::Result;
use crate::op::{
    AssignValue, CommitValue, F, Op, OpType, OpValue, PartMap, PollValue, Process, RecordValue, Seek, SendRecord,
    SendValue,
};
use crate::sink::SinkLine;
use crate::util::{FxHashSet, SplitMix64};

struct Pending {
    invoke: u64,
    what: Doing,
}

enum Doing {
    /// `enqueued`: the application enqueued the values first; the send then
    /// succeeds, so a clean history loses no enqueued record.
    Send {
        p: usize,
        values: Vec<i64>,
        enqueued: bool,
    },
    Poll,
    Assign {
        partitions: Vec<usize>,
        seek: Seek,
    },
    Commit,
}

struct Actor {
    process: u64,
    consumer: bool,
    pending: Option<Pending>,
    /// Consumers: (partition, next offset to read).
    assigned: Vec<(usize, u64)>,
}

pub(super) struct Sim<'a> {
    rng: SplitMix64,
    /// Unseen values are injected: their partitions are not drained.
    unseen_injected: bool,
    emit: &'a mut dyn FnMut(&Op) -> Result<()>,
    next_index: u64,
    time_ns: u64,
    /// Per partition: (value, leader epoch) by offset.
    logs: Vec<Vec<(i64, u64)>>,
    names: Vec<String>,
    next_value: i64,
    epoch: u64,
    committed: Vec<u64>,
    actors: Vec<Actor>,
    next_process: u64,
    /// The sink's rows, in insertion order.
    pub(super) sink: Vec<SinkLine>,
    /// `(partition, value)`s in the sink: actor consumers insert
    /// idempotently, as an idempotent sink absorbs redeliveries.
    in_sink: FxHashSet<(usize, i64)>,
    /// `(partition, value)`s actor consumers never process (a
    /// `lost-processing` injection).
    unprocessable: FxHashSet<(usize, i64)>,
}

impl<'a> Sim<'a> {
    pub(super) fn new(cfg: &GenConfig, emit: &'a mut dyn FnMut(&Op) -> Result<()>) -> Self {
        let n = cfg.partitions as usize;
        let actors = (0..PRODUCERS + CONSUMERS)
            .map(|process| Actor { process, consumer: process >= PRODUCERS, pending: None, assigned: Vec::new() })
            .collect();
        Sim {
            rng: SplitMix64::new(cfg.seed),
            unseen_injected: cfg.inject.iter().any(|i| i.0 == AnomalyKind::Unseen && i.1 > 0),
            emit,
            next_index: 0,
            time_ns: 0,
            logs: vec![Vec::new(); n],
            names: (0..n).map(|p| format!("events/{p}")).collect(),
            next_value: 0,
            epoch: 1,
            committed: vec![0; n],
            actors,
            next_process: PRODUCERS + CONSUMERS,
            sink: Vec::new(),
            in_sink: FxHashSet::default(),
            unprocessable: FxHashSet::default(),
        }
    }

    pub(super) fn run(&mut self, cfg: &GenConfig) -> Result<()> {
        // Consumers start assigned to everything from the beginning.
        for a in 0..self.actors.len() {
            if self.actors[a].consumer {
                let partitions: Vec<usize> = (0..self.logs.len()).collect();
                self.assign(self.actors[a].process, &partitions, Seek::Beginning, false)?;
                self.actors[a].assigned = partitions.into_iter().map(|p| (p, 0)).collect();
            }
        }
        let mut scripts: Vec<(u64, AnomalyKind)> = Vec::new();
        for &(kind, n) in &cfg.inject {
            if matches!(kind, AnomalyKind::LostWrite | AnomalyKind::Unseen | AnomalyKind::ReplicaDivergence) {
                continue;
            }
            for _ in 0..n {
                let at = cfg.ops / 10 + self.rng.below((cfg.ops * 8 / 10).max(1));
                scripts.push((at, kind));
            }
        }
        scripts.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        while self.next_index < cfg.ops || !scripts.is_empty() {
            while scripts.last().is_some_and(|s| s.0 <= self.next_index) {
                let (_, kind) = scripts.pop().expect("checked");
                self.script(kind)?;
            }
            if self.next_index % NEMESIS_EVERY_OPS == NEMESIS_EVERY_OPS - 1 {
                self.nemesis()?;
            }
            let a = self.rng.below(self.actors.len() as u64) as usize;
            self.step(a)?;
        }
        for a in 0..self.actors.len() {
            if self.actors[a].pending.is_some() {
                self.step(a)?;
            }
        }
        self.emit_nemesis("heal")?;
        self.final_phase(cfg)
    }

    fn fresh(&mut self) -> i64 {
        self.next_value += 1;
        self.next_value
    }

    fn fresh_process(&mut self) -> u64 {
        self.next_process += 1;
        self.next_process - 1
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        process: u64,
        invoke_index: Option<u64>,
        op_type: OpType,
        f: F,
        value: OpValue,
        error: Option<&str>,
        is_final: bool,
    ) -> Result<u64> {
        self.time_ns += self.rng.range(1_000, 200_000);
        let index = self.next_index;
        self.next_index += 1;
        let op = Op {
            index,
            time_ns: self.time_ns,
            process: Process::Client(process),
            invoke_index,
            op_type,
            f,
            value,
            error: error.map(str::to_owned),
            error_code: None,
            node: None,
            is_final,
        };
        (self.emit)(&op)?;
        Ok(index)
    }

    fn emit_nemesis(&mut self, f: &str) -> Result<()> {
        self.time_ns += self.rng.range(1_000, 200_000);
        let target = NODES[self.rng.below(NODES.len() as u64) as usize];
        let op = Op {
            index: self.next_index,
            time_ns: self.time_ns,
            process: Process::Nemesis,
            invoke_index: None,
            op_type: OpType::Info,
            f: F::Fault(f.to_owned()),
            value: OpValue::Other(serde_json::json!({"targets": [target]})),
            error: None,
            error_code: None,
            node: None,
            is_final: false,
        };
        self.next_index += 1;
        (self.emit)(&op)
    }

    fn nemesis(&mut self) -> Result<()> {
        let f = ["partition-halves", "heal", "kill", "start"][self.rng.below(4) as usize];
        if f == "kill" {
            self.epoch += 1;
        }
        self.emit_nemesis(f)
    }

    fn send_value(&self, p: usize, recs: &[(Option<u64>, i64)]) -> OpValue {
        let records = recs.iter().map(|&(offset, v)| SendRecord { offset, value: RecordValue::Int(v) }).collect();
        OpValue::Send(SendValue { records: PartMap(vec![(self.names[p].clone(), records)]), atomic: None })
    }

    fn send_invoke(&mut self, process: u64, p: usize, values: &[i64]) -> Result<u64> {
        let recs: Vec<_> = values.iter().map(|&v| (None, v)).collect();
        let value = self.send_value(p, &recs);
        self.emit(process, None, OpType::Invoke, F::Send, value, None, false)
    }

    fn send_complete(
        &mut self,
        process: u64,
        inv: u64,
        p: usize,
        recs: &[(Option<u64>, i64)],
        t: OpType,
        err: Option<&str>,
    ) -> Result<u64> {
        let value = self.send_value(p, recs);
        self.emit(process, Some(inv), t, F::Send, value, err, false)
    }

    fn append(&mut self, p: usize, v: i64) -> u64 {
        self.logs[p].push((v, self.epoch));
        self.logs[p].len() as u64 - 1
    }

    /// A whole ok send by `process` of fresh values; returns them.
    fn ok_send(&mut self, process: u64, p: usize, n: u64) -> Result<Vec<i64>> {
        let values: Vec<i64> = (0..n).map(|_| self.fresh()).collect();
        let inv = self.send_invoke(process, p, &values)?;
        let recs: Vec<_> = values.iter().map(|&v| (Some(self.append(p, v)), v)).collect();
        self.send_complete(process, inv, p, &recs, OpType::Ok, None)?;
        Ok(values)
    }

    /// An enqueue of `values` by `process`, completing with `t`.
    fn enqueue(&mut self, process: u64, p: usize, values: &[i64], t: OpType) -> Result<()> {
        let recs: Vec<_> = values.iter().map(|&v| (None, v)).collect();
        let OpValue::Send(v) = self.send_value(p, &recs) else { unreachable!("send_value makes a send value") };
        let inv = self.emit(process, None, OpType::Invoke, F::Enqueue, OpValue::Enqueue(v.clone()), None, false)?;
        let err = (t != OpType::Ok).then_some("max.block.ms exceeded");
        self.emit(process, Some(inv), t, F::Enqueue, OpValue::Enqueue(v), err, false)?;
        Ok(())
    }

    /// A process op of `records` by `process`, completing with `t`; an ok
    /// one inserts them into `slot`, plainly or idempotently.
    fn process_op(
        &mut self,
        process: u64,
        slot: u64,
        records: &[(usize, u64)],
        t: OpType,
        idempotent: bool,
    ) -> Result<()> {
        let mut parts: Vec<(String, Vec<(u64, RecordValue)>)> = Vec::new();
        for &(p, o) in records {
            let rec = (o, RecordValue::Int(self.logs[p][o as usize].0));
            match parts.iter_mut().find(|x| x.0 == self.names[p]) {
                Some(x) => x.1.push(rec),
                None => parts.push((self.names[p].clone(), vec![rec])),
            }
        }
        let value = PollValue { records: PartMap(parts) };
        let inv = self.emit(process, None, OpType::Invoke, F::Process, OpValue::Process(value.clone()), None, false)?;
        let err = match t {
            OpType::Fail => Some("database is locked"),
            OpType::Info => Some("killed mid-transaction"),
            _ => None,
        };
        self.emit(process, Some(inv), t, F::Process, OpValue::Process(value), err, false)?;
        if t == OpType::Ok {
            for &(p, o) in records {
                let v = self.logs[p][o as usize].0;
                if self.in_sink.insert((p, v)) || !idempotent {
                    let partition = self.names[p].clone();
                    self.sink.push(SinkLine { slot, partition, offset: o, value: RecordValue::Int(v) });
                }
            }
        }
        Ok(())
    }

    /// An actor consumer processes what it polled, retrying a refused write.
    fn process_polled(&mut self, a: usize, reads: &[(usize, Vec<u64>)]) -> Result<()> {
        let records: Vec<(usize, u64)> = reads
            .iter()
            .flat_map(|(p, offsets)| offsets.iter().map(move |&o| (*p, o)))
            .filter(|&(p, o)| !self.unprocessable.contains(&(p, self.logs[p][o as usize].0)))
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        let (process, slot) = (self.actors[a].process, a as u64 - PRODUCERS);
        if self.rng.chance(PROCESS_FAIL_PER_MILLE) {
            self.process_op(process, slot, &records, OpType::Fail, true)?;
        }
        self.process_op(process, slot, &records, OpType::Ok, true)
    }

    fn poll_invoke(&mut self, process: u64, is_final: bool) -> Result<u64> {
        self.emit(process, None, OpType::Invoke, F::Poll, OpValue::Other(serde_json::json!({})), None, is_final)
    }

    fn poll_ok(&mut self, process: u64, inv: u64, reads: Vec<(usize, Vec<u64>)>, is_final: bool) -> Result<u64> {
        let records = reads
            .into_iter()
            .filter(|r| !r.1.is_empty())
            .map(|(p, offsets)| {
                let recs = offsets.iter().map(|&o| (o, RecordValue::Int(self.logs[p][o as usize].0))).collect();
                (self.names[p].clone(), recs)
            })
            .collect();
        self.emit(
            process,
            Some(inv),
            OpType::Ok,
            F::Poll,
            OpValue::Poll(PollValue { records: PartMap(records) }),
            None,
            is_final,
        )
    }

    fn assign_invoke(&mut self, process: u64, partitions: &[usize], seek: Seek, is_final: bool) -> Result<u64> {
        let value =
            OpValue::Assign(AssignValue::manual(partitions.iter().map(|&p| self.names[p].clone()).collect(), seek));
        self.emit(process, None, OpType::Invoke, F::Assign, value, None, is_final)
    }

    /// An assign that completes at once: scripted consumers and the final
    /// reader need their position settled before they poll.
    fn assign(&mut self, process: u64, partitions: &[usize], seek: Seek, is_final: bool) -> Result<()> {
        let inv = self.assign_invoke(process, partitions, seek, is_final)?;
        self.emit(process, Some(inv), OpType::Ok, F::Assign, OpValue::none(), None, is_final)?;
        Ok(())
    }

    /// One move of actor `a`: invoke something, or complete what it started.
    fn step(&mut self, a: usize) -> Result<()> {
        let process = self.actors[a].process;
        let Some(pending) = self.actors[a].pending.take() else {
            return self.start(a);
        };
        let inv = Some(pending.invoke);
        match pending.what {
            Doing::Send { p, values, enqueued } => {
                let roll = if enqueued { 0 } else { self.rng.below(100) };
                let (t, err, appended) = match roll {
                    0..=92 => (OpType::Ok, None, true),
                    93..=96 => (OpType::Info, Some("timeout"), self.rng.chance(500)),
                    _ => (OpType::Fail, Some("not enough replicas"), false),
                };
                let recs: Vec<(Option<u64>, i64)> = values
                    .iter()
                    .map(|&v| {
                        let off = appended.then(|| self.append(p, v));
                        (off.filter(|_| t == OpType::Ok), v)
                    })
                    .collect();
                self.send_complete(process, pending.invoke, p, &recs, t, err)?;
            }
            Doing::Poll => {
                if self.rng.chance(30) {
                    self.emit(
                        process,
                        inv,
                        OpType::Fail,
                        F::Poll,
                        OpValue::Other(serde_json::Value::Null),
                        Some("network"),
                        false,
                    )?;
                    return Ok(());
                }
                let mut reads = Vec::new();
                let assigned = std::mem::take(&mut self.actors[a].assigned);
                let mut next = Vec::with_capacity(assigned.len());
                for (p, pos) in assigned {
                    let avail = self.logs[p].len() as u64 - pos;
                    let n = self.rng.below(POLL_RECORDS_MAX + 1).min(avail);
                    reads.push((p, (pos..pos + n).collect()));
                    next.push((p, pos + n));
                }
                self.actors[a].assigned = next;
                self.poll_ok(process, pending.invoke, reads.clone(), false)?;
                self.process_polled(a, &reads)?;
            }
            Doing::Assign { partitions, seek } => {
                self.emit(process, inv, OpType::Ok, F::Assign, OpValue::Other(serde_json::Value::Null), None, false)?;
                self.actors[a].assigned = partitions
                    .into_iter()
                    .map(|p| (p, if seek == Seek::Beginning { 0 } else { self.committed[p] }))
                    .collect();
            }
            Doing::Commit => {
                self.emit(process, inv, OpType::Ok, F::Commit, OpValue::Other(serde_json::Value::Null), None, false)?;
                for &(p, pos) in &self.actors[a].assigned {
                    self.committed[p] = pos;
                }
            }
        }
        Ok(())
    }

    fn start(&mut self, a: usize) -> Result<()> {
        let process = self.actors[a].process;
        let nparts = self.logs.len() as u64;
        let (invoke, what) = if !self.actors[a].consumer {
            let p = self.rng.below(nparts) as usize;
            let mut values = Vec::new();
            if self.rng.chance(ENQUEUE_FAIL_PER_MILLE) {
                // Refused; the application sends the record again now.
                let v = self.fresh();
                self.enqueue(process, p, &[v], OpType::Fail)?;
                values.push(v);
            }
            let n = self.rng.range(1, BATCH_MAX) as usize;
            while values.len() < n {
                values.push(self.fresh());
            }
            let enqueued = self.rng.chance(ENQUEUE_PER_MILLE);
            if enqueued {
                self.enqueue(process, p, &values, OpType::Ok)?;
            }
            (self.send_invoke(process, p, &values)?, Doing::Send { p, values, enqueued })
        } else {
            let roll = self.rng.below(100);
            if roll < 3 {
                let partitions: Vec<usize> = (0..nparts as usize).filter(|_| self.rng.chance(600)).collect();
                let partitions = if partitions.is_empty() { vec![self.rng.below(nparts) as usize] } else { partitions };
                let seek = if self.rng.chance(500) { Seek::Beginning } else { Seek::Committed };
                (self.assign_invoke(process, &partitions, seek, false)?, Doing::Assign { partitions, seek })
            } else if roll < 7 && !self.actors[a].assigned.is_empty() {
                let offsets = self.actors[a].assigned.iter().map(|&(p, pos)| (self.names[p].clone(), pos)).collect();
                let value = OpValue::Commit(CommitValue::simple("g".into(), PartMap(offsets)));
                (self.emit(process, None, OpType::Invoke, F::Commit, value, None, false)?, Doing::Commit)
            } else {
                (self.poll_invoke(process, false)?, Doing::Poll)
            }
        };
        self.actors[a].pending = Some(Pending { invoke, what });
        Ok(())
    }

    /// A partition with at least `n` records, appending some if needed.
    fn partition_with(&mut self, n: usize) -> Result<usize> {
        let p = self.rng.below(self.logs.len() as u64) as usize;
        if self.logs[p].len() < n {
            let s = self.fresh_process();
            self.ok_send(s, p, (n - self.logs[p].len()) as u64)?;
        }
        Ok(p)
    }

    /// An ok commit of `offset` for partition `p` alone.
    fn commit_ok(&mut self, process: u64, p: usize, offset: u64) -> Result<()> {
        let offsets = PartMap(vec![(self.names[p].clone(), offset)]);
        let value = OpValue::Commit(CommitValue::simple("g".into(), offsets));
        let inv = self.emit(process, None, OpType::Invoke, F::Commit, value, None, false)?;
        self.emit(process, Some(inv), OpType::Ok, F::Commit, OpValue::Other(serde_json::Value::Null), None, false)?;
        self.committed[p] = offset;
        Ok(())
    }
}
