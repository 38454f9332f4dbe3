//! Synthetic histories for tests and benchmarks, with exactly-injected
//! anomalies.
//!
//! A small simulation: per-partition logs, concurrent producer processes (one
//! send in flight each, some sends first `enqueue`d as a fire-and-forget
//! application does), consumer processes that `assign`, `poll`, `process`
//! what they polled into an idempotent sink, and `commit` after processing,
//! occasional nemesis ops, `info` and `fail` outcomes, and a final drain that
//! reads every partition from the beginning. The clean history it writes has
//! no anomaly under the strictest guarantees, with the sink rows it returns
//! and `producer_mode=fire-and-forget`.
//!
//! Each injection is a short scripted episode that produces exactly one
//! instance of its anomaly type (one `replica-divergence` per offset, one
//! `lost-write` or `unseen` per value). A few anomalies cannot occur alone:
//! [`implied_by`] lists the types an injection necessarily brings along.
//!
//! The PRNG is a local SplitMix64, so a seed reproduces the same history.

use std::collections::BTreeMap;

use crate::anomaly::AnomalyKind;
use crate::error::{Error, Result};
use crate::op::{
    AssignValue, CommitValue, DrainComplete, DrainTargets, F, Op, OpType, OpValue, PartMap, PollValue, Process,
    RecordValue, Seek, SendRecord, SendValue,
};
use crate::replicas::{ReplicaLog, Replicas};
use crate::sink::{Sink, SinkLine};
use crate::util::{FxHashSet, SplitMix64};

/// Producer processes: each is one in-flight slot.
const PRODUCERS: u64 = 4;
/// Consumer processes, each with its own assignment.
const CONSUMERS: u64 = 3;
/// Records per send: 1 to this many.
const BATCH_MAX: u64 = 3;
/// Records a consumer poll returns per partition, at most.
const POLL_RECORDS_MAX: u64 = 8;
/// Records a final-drain poll returns per partition, at most.
const DRAIN_POLL_RECORDS_MAX: u64 = 256;
/// Lines between nemesis ops.
const NEMESIS_EVERY_OPS: u64 = 2000;
/// Replica nodes in `replicas.json`.
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// Injections allowed per history; each is a scripted episode of a few ops.
const INJECTIONS_MAX: usize = 100_000;
/// Share of sends a producer first enqueues, as a fire-and-forget
/// application does; such sends always succeed in a clean history.
const ENQUEUE_PER_MILLE: u64 = 200;
/// Share of producer moves that start with an enqueue refused because the
/// buffer stayed full past `max.block.ms`: a definite failure, never sent.
const ENQUEUE_FAIL_PER_MILLE: u64 = 20;
/// Share of consumer processing attempts the sink refuses first; the
/// consumer retries until it succeeds.
const PROCESS_FAIL_PER_MILLE: u64 = 20;
/// The sink slot of scripted consumers; actor consumers use slots
/// `0..CONSUMERS`.
const SCRIPT_SLOT: u64 = CONSUMERS;

#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Lines of the main phase; the final drain adds a few more.
    pub ops: u64,
    pub partitions: u32,
    pub seed: u64,
    pub inject: Vec<(AnomalyKind, usize)>,
}

/// A generated history held in memory (tests).
pub struct Generated {
    pub ops: Vec<Op>,
    pub replicas: Replicas,
    /// The consumers' sink rows (`sink.jsonl`).
    pub sink: Sink,
}

/// The anomaly types an injection of `kind` necessarily also produces.
pub fn implied_by(kind: AnomalyKind) -> &'static [AnomalyKind] {
    match kind {
        // Sequential sends of one process landing out of order contradict
        // real time: the first was acknowledged before the second started.
        AnomalyKind::NonmonotonicSend => &[AnomalyKind::RealtimeCycle],
        // A batch acknowledged in an order its offsets contradict is also a
        // nonmonotonic send within that batch.
        AnomalyKind::OrderCycle => &[AnomalyKind::NonmonotonicSend],
        // The value truncated from under another was read, so committed:
        // it is a lost write.
        AnomalyKind::InconsistentOffsets => &[AnomalyKind::LostWrite],
        _ => &[],
    }
}

/// Parses `lost-write:3,duplicate:2`.
pub fn parse_inject(s: &str) -> Result<Vec<(AnomalyKind, usize)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, n) = item.split_once(':').unwrap_or((item, "1"));
        let kind = AnomalyKind::from_name(name.trim())
            .ok_or_else(|| Error::Generate(format!("unknown anomaly type {name:?}")))?;
        let n: usize = n.trim().parse().map_err(|_| Error::Generate(format!("bad count in {item:?}")))?;
        out.push((kind, n));
    }
    Ok(out)
}

pub fn generate_vec(cfg: &GenConfig) -> Result<Generated> {
    let mut ops = Vec::new();
    let (replicas, sink) = generate_with_sink(cfg, &mut |op: &Op| {
        ops.push(op.clone());
        Ok(())
    })?;
    Ok(Generated { ops, replicas, sink })
}

/// Streams the history's ops, in index order, to `emit`, and returns the
/// replicas' final logs.
pub fn generate(cfg: &GenConfig, emit: &mut dyn FnMut(&Op) -> Result<()>) -> Result<Replicas> {
    generate_with_sink(cfg, emit).map(|(replicas, _)| replicas)
}

/// As [`generate`], and also returns the consumers' sink rows, for
/// `sink.jsonl` ([`Sink::write_jsonl`]).
pub fn generate_with_sink(cfg: &GenConfig, emit: &mut dyn FnMut(&Op) -> Result<()>) -> Result<(Replicas, Sink)> {
    if cfg.partitions == 0 {
        return Err(Error::Generate("need at least one partition".into()));
    }
    let total: usize = cfg.inject.iter().map(|i| i.1).sum();
    if total > INJECTIONS_MAX {
        return Err(Error::Generate(format!("at most {INJECTIONS_MAX} injections")));
    }
    let wants = |k| cfg.inject.iter().any(|i| i.0 == k && i.1 > 0);
    if cfg.partitions < 2 && wants(AnomalyKind::LostWrite) && wants(AnomalyKind::Unseen) {
        return Err(Error::Generate("lost-write and unseen together need at least 2 partitions".into()));
    }
    let mut sim = Sim::new(cfg, emit);
    sim.run(cfg)?;
    let replicas = sim.replicas(cfg)?;
    Ok((replicas, std::mem::take(&mut sim.sink).into_iter().collect()))
}

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

struct Sim<'a> {
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
    sink: Vec<SinkLine>,
    /// `(partition, value)`s in the sink: actor consumers insert
    /// idempotently, as an idempotent sink absorbs redeliveries.
    in_sink: FxHashSet<(usize, i64)>,
    /// `(partition, value)`s actor consumers never process (a
    /// `lost-processing` injection).
    unprocessable: FxHashSet<(usize, i64)>,
}

impl<'a> Sim<'a> {
    fn new(cfg: &GenConfig, emit: &'a mut dyn FnMut(&Op) -> Result<()>) -> Self {
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

    fn run(&mut self, cfg: &GenConfig) -> Result<()> {
        // Consumers start assigned to everything from the beginning.
        for a in 0..self.actors.len() {
            if self.actors[a].consumer {
                let partitions: Vec<usize> = (0..self.logs.len()).collect();
                let inv = self.assign_invoke(self.actors[a].process, &partitions, Seek::Beginning, false)?;
                self.emit(
                    self.actors[a].process,
                    Some(inv),
                    OpType::Ok,
                    F::Assign,
                    OpValue::Other(serde_json::Value::Null),
                    None,
                    false,
                )?;
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
        let f = ["start-partition", "heal", "kill", "start"][self.rng.below(4) as usize];
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
        let value = OpValue::Assign(AssignValue {
            partitions: partitions.iter().map(|&p| self.names[p].clone()).collect(),
            seek,
        });
        self.emit(process, None, OpType::Invoke, F::Assign, value, None, is_final)
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
            if self.rng.chance(ENQUEUE_FAIL_PER_MILLE) {
                let v = self.fresh();
                self.enqueue(process, p, &[v], OpType::Fail)?;
            }
            let n = self.rng.range(1, BATCH_MAX);
            let values: Vec<i64> = (0..n).map(|_| self.fresh()).collect();
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
                let value = OpValue::Commit(CommitValue { group: "g".into(), offsets: PartMap(offsets) });
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

    /// One scripted episode producing one instance of `kind`.
    fn script(&mut self, kind: AnomalyKind) -> Result<()> {
        let mut p = self.rng.below(self.logs.len() as u64) as usize;
        if kind == AnomalyKind::InconsistentOffsets && self.unseen_injected && self.logs.len() > 1 {
            // Its lost write is provable only where the final drain runs:
            // the even partitions when unseen values live on the odd ones.
            p &= !1;
        }
        match kind {
            AnomalyKind::Duplicate => {
                let s = self.fresh_process();
                let v = self.fresh();
                let inv = self.send_invoke(s, p, &[v])?;
                let x = self.append(p, v);
                self.append(p, v); // the retry, appended again
                self.send_complete(s, inv, p, &[(Some(x), v)], OpType::Ok, None)?;
            }
            AnomalyKind::AbortedRead => {
                let s = self.fresh_process();
                let v = self.fresh();
                let inv = self.send_invoke(s, p, &[v])?;
                self.append(p, v);
                self.send_complete(s, inv, p, &[(None, v)], OpType::Fail, Some("not enough replicas"))?;
            }
            AnomalyKind::PhantomRead => {
                let v = self.fresh();
                self.append(p, v);
            }
            AnomalyKind::PollSkip | AnomalyKind::NonmonotonicPoll => {
                let p = self.partition_with(4)?;
                let c = self.fresh_process();
                let inv = self.assign_invoke(c, &[p], Seek::Beginning, false)?;
                self.emit(c, Some(inv), OpType::Ok, F::Assign, OpValue::Other(serde_json::Value::Null), None, false)?;
                let inv = self.poll_invoke(c, false)?;
                self.poll_ok(c, inv, vec![(p, vec![0, 1])], false)?;
                let inv = self.poll_invoke(c, false)?;
                // A skip jumps from offset 1 over 2 to 3; a step back re-reads 1.
                let second = if kind == AnomalyKind::PollSkip { vec![3] } else { vec![1] };
                self.poll_ok(c, inv, vec![(p, second)], false)?;
            }
            AnomalyKind::NonmonotonicSend | AnomalyKind::RealtimeCycle => {
                let s1 = self.fresh_process();
                let s2 = if kind == AnomalyKind::NonmonotonicSend { s1 } else { self.fresh_process() };
                let (a, b) = (self.fresh(), self.fresh());
                let x = self.logs[p].len() as u64;
                let inv = self.send_invoke(s1, p, &[a])?;
                self.send_complete(s1, inv, p, &[(Some(x + 1), a)], OpType::Ok, None)?;
                let inv = self.send_invoke(s2, p, &[b])?;
                self.append(p, b);
                self.append(p, a);
                self.send_complete(s2, inv, p, &[(Some(x), b)], OpType::Ok, None)?;
            }
            AnomalyKind::OrderCycle => {
                let s = self.fresh_process();
                let (a, b) = (self.fresh(), self.fresh());
                let inv = self.send_invoke(s, p, &[a, b])?;
                let xb = self.append(p, b);
                let xa = self.append(p, a);
                self.send_complete(s, inv, p, &[(Some(xa), a), (Some(xb), b)], OpType::Ok, None)?;
            }
            AnomalyKind::InconsistentOffsets => {
                let (s1, s2, c) = (self.fresh_process(), self.fresh_process(), self.fresh_process());
                let (u, v) = (self.fresh(), self.fresh());
                let inv_u = self.send_invoke(s1, p, &[u])?;
                let x = self.append(p, u);
                let inv = self.assign_invoke(c, &[p], Seek::Committed, false)?;
                self.emit(c, Some(inv), OpType::Ok, F::Assign, OpValue::Other(serde_json::Value::Null), None, false)?;
                let inv = self.poll_invoke(c, false)?;
                self.poll_ok(c, inv, vec![(p, vec![x])], false)?;
                self.logs[p].pop(); // an unclean election truncates u
                self.send_complete(s1, inv_u, p, &[(None, u)], OpType::Info, Some("timeout"))?;
                let inv = self.send_invoke(s2, p, &[v])?;
                let x2 = self.append(p, v);
                self.send_complete(s2, inv, p, &[(Some(x2), v)], OpType::Ok, None)?;
            }
            AnomalyKind::LostEnqueued => {
                // The producer dies with the record buffered, in flight, or
                // after its batch expired: never appended.
                let s = self.fresh_process();
                let v = self.fresh();
                self.enqueue(s, p, &[v], OpType::Ok)?;
                let fate = self.rng.below(3);
                if fate > 0 {
                    let inv = self.send_invoke(s, p, &[v])?;
                    let (t, err) = if fate == 1 {
                        (OpType::Info, "producer killed")
                    } else {
                        (OpType::Fail, "delivery.timeout.ms")
                    };
                    self.send_complete(s, inv, p, &[(None, v)], t, Some(err))?;
                }
            }
            AnomalyKind::LostProcessing => self.lost_processing(p)?,
            AnomalyKind::DuplicateProcessing => {
                // Processed into a plain sink, then redelivered to a
                // replacement that had no commit to resume from.
                let s = self.fresh_process();
                let v = self.ok_send(s, p, 1)?[0];
                let x = self.logs[p].len() as u64 - 1;
                for _ in 0..2 {
                    let c = self.fresh_process();
                    let inv = self.assign_invoke(c, &[p], Seek::Committed, false)?;
                    self.emit(
                        c,
                        Some(inv),
                        OpType::Ok,
                        F::Assign,
                        OpValue::Other(serde_json::Value::Null),
                        None,
                        false,
                    )?;
                    let inv = self.poll_invoke(c, false)?;
                    self.poll_ok(c, inv, vec![(p, vec![x])], false)?;
                    self.process_op(c, SCRIPT_SLOT, &[(p, x)], OpType::Ok, false)?;
                }
                debug_assert!(self.in_sink.contains(&(p, v)));
            }
            AnomalyKind::LostWrite | AnomalyKind::Unseen | AnomalyKind::ReplicaDivergence => {
                unreachable!("{kind} is injected at the end of the run")
            }
        }
        Ok(())
    }

    /// One `lost-processing`: a consumer resumes at the committed offset and
    /// polls up to a fresh record. Either it processes what it polled, the
    /// sink refuses the fresh record, and it skips it and commits past it;
    /// or it commits first and dies mid-transaction on the fresh record.
    /// Actor consumers never process that record either, and every record
    /// below its commit was processed: the earlier commits' prefixes were,
    /// and this consumer did the rest.
    fn lost_processing(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let v = self.ok_send(s, p, 1)?[0];
        let x = self.logs[p].len() as u64 - 1;
        self.unprocessable.insert((p, v));
        let c = self.fresh_process();
        let inv = self.assign_invoke(c, &[p], Seek::Committed, false)?;
        self.emit(c, Some(inv), OpType::Ok, F::Assign, OpValue::Other(serde_json::Value::Null), None, false)?;
        let from = self.committed[p];
        let inv = self.poll_invoke(c, false)?;
        self.poll_ok(c, inv, vec![(p, (from..=x).collect())], false)?;
        let rest: Vec<(usize, u64)> = (from..x)
            .map(|o| (p, o))
            .filter(|&(p, o)| !self.unprocessable.contains(&(p, self.logs[p][o as usize].0)))
            .collect();
        let skip = self.rng.chance(500);
        if !skip {
            self.commit_ok(c, p, x + 1)?;
        }
        if !rest.is_empty() {
            self.process_op(c, SCRIPT_SLOT, &rest, OpType::Ok, true)?;
        }
        let t = if skip { OpType::Fail } else { OpType::Info };
        self.process_op(c, SCRIPT_SLOT, &[(p, x)], t, true)?;
        if skip {
            self.commit_ok(c, p, x + 1)?;
        }
        Ok(())
    }

    /// An ok commit of `offset` for partition `p` alone.
    fn commit_ok(&mut self, process: u64, p: usize, offset: u64) -> Result<()> {
        let offsets = PartMap(vec![(self.names[p].clone(), offset)]);
        let value = OpValue::Commit(CommitValue { group: "g".into(), offsets });
        let inv = self.emit(process, None, OpType::Invoke, F::Commit, value, None, false)?;
        self.emit(process, Some(inv), OpType::Ok, F::Commit, OpValue::Other(serde_json::Value::Null), None, false)?;
        self.committed[p] = offset;
        Ok(())
    }

    /// End-phase injections, then the final drain.
    fn final_phase(&mut self, cfg: &GenConfig) -> Result<()> {
        let count = |k| cfg.inject.iter().filter(|i| i.0 == k).map(|i| i.1).sum::<usize>();
        let (lost, unseen) = (count(AnomalyKind::LostWrite), count(AnomalyKind::Unseen));
        let n = self.logs.len();
        // Lost writes (and the lost writes inconsistent offsets imply) on
        // even partitions and unseen ones on odd partitions when both are
        // asked for: a partition is drained or it is not.
        let (lost_parts, unseen_parts): (Vec<usize>, Vec<usize>) =
            if (lost > 0 || count(AnomalyKind::InconsistentOffsets) > 0) && unseen > 0 && n > 1 {
                ((0..n).step_by(2).collect(), (1..n).step_by(2).collect())
            } else {
                ((0..n).collect(), (0..n).collect())
            };
        let mut goal: Vec<u64> = Vec::with_capacity(n);
        let mut lost_per = vec![0u64; n];
        for i in 0..lost {
            lost_per[lost_parts[i % lost_parts.len()]] += 1;
        }
        for (p, &k) in lost_per.iter().enumerate() {
            if k > 0 {
                // Acknowledged, then truncated by a failover before anyone read them.
                let s = self.fresh_process();
                for _ in 0..k {
                    self.ok_send(s, p, 1)?;
                }
                let len = self.logs[p].len() - k as usize;
                self.logs[p].truncate(len);
            }
        }
        for p in 0..n {
            goal.push(self.logs[p].len() as u64);
        }
        let mut unseen_per = vec![0u64; n];
        for i in 0..unseen {
            unseen_per[unseen_parts[i % unseen_parts.len()]] += 1;
        }
        for (p, &k) in unseen_per.iter().enumerate() {
            if k > 0 {
                // Acknowledged at the tail; the final reader never gets there.
                let s = self.fresh_process();
                for _ in 0..k {
                    self.ok_send(s, p, 1)?;
                }
            }
        }
        let (drainer, reader) = (self.fresh_process(), self.fresh_process());
        let targets: Vec<(String, u64)> = (0..n).map(|p| (self.names[p].clone(), self.logs[p].len() as u64)).collect();
        let drain_inv = self.emit(
            drainer,
            None,
            OpType::Invoke,
            F::Drain,
            OpValue::DrainTargets(DrainTargets { targets: PartMap(targets) }),
            None,
            true,
        )?;
        let all: Vec<usize> = (0..n).collect();
        let inv = self.assign_invoke(reader, &all, Seek::Beginning, true)?;
        self.emit(reader, Some(inv), OpType::Ok, F::Assign, OpValue::Other(serde_json::Value::Null), None, true)?;
        let mut pos = vec![0u64; n];
        // Bounded: every round advances some partition by at least one record.
        while (0..n).any(|p| pos[p] < goal[p]) {
            let inv = self.poll_invoke(reader, true)?;
            let mut reads = Vec::new();
            for p in 0..n {
                let k = DRAIN_POLL_RECORDS_MAX.min(goal[p] - pos[p]);
                reads.push((p, (pos[p]..pos[p] + k).collect()));
                pos[p] += k;
            }
            self.poll_ok(reader, inv, reads, true)?;
        }
        let complete = (0..n).map(|p| (self.names[p].clone(), pos[p] >= self.logs[p].len() as u64)).collect();
        self.emit(
            drainer,
            Some(drain_inv),
            OpType::Ok,
            F::Drain,
            OpValue::DrainComplete(DrainComplete { complete: PartMap(complete) }),
            None,
            true,
        )?;
        Ok(())
    }

    /// Every node holds the final log; divergences are injected into `n2`.
    fn replicas(&mut self, cfg: &GenConfig) -> Result<Replicas> {
        let k: usize = cfg.inject.iter().filter(|i| i.0 == AnomalyKind::ReplicaDivergence).map(|i| i.1).sum();
        let total: usize = self.logs.iter().map(Vec::len).sum();
        if k > total {
            return Err(Error::Generate(format!(
                "{k} replica divergences need at least {k} records; the run has {total}"
            )));
        }
        let mut diverged: BTreeMap<(usize, usize), i64> = BTreeMap::new();
        // Bounded: the loop gives up after many tries rather than spin.
        let mut tries = 0u64;
        while diverged.len() < k {
            tries += 1;
            if tries > 1000 * k as u64 + 1000 {
                return Err(Error::Generate("could not place replica divergences".into()));
            }
            let p = self.rng.below(self.logs.len() as u64) as usize;
            if self.logs[p].is_empty() {
                continue;
            }
            let o = self.rng.below(self.logs[p].len() as u64) as usize;
            if let std::collections::btree_map::Entry::Vacant(e) = diverged.entry((p, o)) {
                self.next_value += 1;
                e.insert(self.next_value);
            }
        }
        let mut out = Replicas::new();
        for (p, log) in self.logs.iter().enumerate() {
            let mut nodes = BTreeMap::new();
            for node in NODES {
                let records = log
                    .iter()
                    .enumerate()
                    .map(|(o, &(v, epoch))| {
                        let v = if node == "n2" { diverged.get(&(p, o)).copied().unwrap_or(v) } else { v };
                        (o as u64, epoch, RecordValue::Int(v))
                    })
                    .collect();
                nodes.insert(node.to_owned(), ReplicaLog { log_end_offset: log.len() as u64, records });
            }
            out.insert(self.names[p].clone(), nodes);
        }
        Ok(out)
    }
}
