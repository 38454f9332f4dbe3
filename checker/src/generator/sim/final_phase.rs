//! The end of a run: the injections that must come last (`lost-write` and
//! `unseen` depend on what the final drain reads), the final drain itself,
//! and the replicas' logs with `replica-divergence` injected.

use std::collections::BTreeMap;

use super::Sim;
use crate::anomaly::AnomalyKind;
use crate::error::{Error, Result};
use crate::generator::{DRAIN_POLL_RECORDS_MAX, GenConfig, NODES};
use crate::op::{DrainComplete, DrainTargets, F, OpType, OpValue, PartMap, RecordValue, Seek};
use crate::replicas::{ReplicaLog, Replicas};

impl Sim<'_> {
    /// End-phase injections, then the final drain.
    pub(super) fn final_phase(&mut self, cfg: &GenConfig) -> Result<()> {
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
        for (p, k) in spread(lost, &lost_parts, n).into_iter().enumerate() {
            if k > 0 {
                self.lost_writes(p, k)?;
            }
        }
        let goal: Vec<u64> = self.logs.iter().map(|log| log.len() as u64).collect();
        for (p, k) in spread(unseen, &unseen_parts, n).into_iter().enumerate() {
            if k > 0 {
                // Acknowledged at the tail; the final reader never gets there.
                let s = self.fresh_process();
                for _ in 0..k {
                    self.ok_send(s, p, 1)?;
                }
            }
        }
        self.final_drain(&goal)
    }

    /// `k` lost writes on `p`: acknowledged, then truncated by a failover
    /// before anyone read them.
    fn lost_writes(&mut self, p: usize, k: u64) -> Result<()> {
        let s = self.fresh_process();
        for _ in 0..k {
            self.ok_send(s, p, 1)?;
        }
        let len = self.logs[p].len() - k as usize;
        self.logs[p].truncate(len);
        Ok(())
    }

    /// The final reader drains every partition from the beginning up to
    /// `goal`, and the drain reports each partition complete when that
    /// reached the log's end.
    fn final_drain(&mut self, goal: &[u64]) -> Result<()> {
        let n = self.logs.len();
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
        self.assign(reader, &all, Seek::Beginning, true)?;
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
    pub(in crate::generator) fn replicas(&mut self, cfg: &GenConfig) -> Result<Replicas> {
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

/// `count` injections dealt round-robin over `parts`: how many land on each
/// of the `n` partitions.
fn spread(count: usize, parts: &[usize], n: usize) -> Vec<u64> {
    let mut per = vec![0u64; n];
    for i in 0..count {
        per[parts[i % parts.len()]] += 1;
    }
    per
}
