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
//! and `producer-mode=fire-and-forget`.
//!
//! Each injection is a short scripted episode that produces exactly one
//! instance of its anomaly type (one `replica-divergence` per offset, one
//! `lost-write` or `unseen` per value). A few anomalies cannot occur alone:
//! [`implied_by`] lists the types an injection necessarily brings along.
//!
//! The PRNG is a local SplitMix64, so a seed reproduces the same history.
//!
//! # Layout
//! - this module: the configuration and the entry points.
//! - `sim`: the simulated cluster and the actors' moves, with the scripted
//!   episodes in `sim::script` and the end of the run (end-phase
//!   injections, final drain, replica dumps) in `sim::final_phase`.

mod sim;

use self::sim::Sim;
use crate::anomaly::AnomalyKind;
use crate::error::{Error, Result};
use crate::op::Op;
use crate::replicas::Replicas;
use crate::sink::Sink;

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
/// buffer stayed full past `max.block.ms`: a definite failure, after which
/// the application sends the record again (so nothing is dropped).
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

/// Whether the generator can inject `kind`. Its histories are acks=all, so
/// not `lost-unacknowledged`, which only acks=0 histories can show; nor
/// `metadata-regression`, which lives in `elections.jsonl`, not a history
/// (its own tests build those).
pub fn can_inject(kind: AnomalyKind) -> bool {
    !matches!(kind, AnomalyKind::LostUnacknowledged | AnomalyKind::MetadataRegression)
}

/// The types [`can_inject`] allows, in [`AnomalyKind::ALL`]'s order.
pub fn injectable() -> Vec<AnomalyKind> {
    AnomalyKind::ALL.into_iter().filter(|k| can_inject(*k)).collect()
}

/// Parses `lost-write:3,duplicate:2`.
pub fn parse_inject(s: &str) -> Result<Vec<(AnomalyKind, usize)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // A count is required: `lost-write` alone could mean one or "some".
        let (name, n) =
            item.split_once(':').ok_or_else(|| Error::Generate(format!("{item:?}: give a count, as in {item}:1")))?;
        let kind = AnomalyKind::from_name(name.trim())
            .ok_or_else(|| Error::Generate(format!("unknown anomaly type {name:?}")))?;
        if !can_inject(kind) {
            return Err(Error::Generate(format!("{kind}: generated histories are acks=all, so it cannot occur")));
        }
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
    if let Some((kind, _)) = cfg.inject.iter().find(|(k, n)| *n > 0 && !can_inject(*k)) {
        return Err(Error::Generate(format!("{kind}: generated histories are acks=all, so it cannot occur")));
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
