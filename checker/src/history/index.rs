//! Deriving [`Index`] once every op is in: the per-key and per-partition
//! facts (acks, first reads, observed offsets, commits, drains) that every
//! analysis shares, computed in one pass so that no analysis rescans the ops.

use super::{History, Index, Kind, NO_OFFSET, NONE, Obs};
use crate::op::OpType;

impl History {
    /// Builds [`History::index`].
    pub(super) fn finish(&mut self) {
        let mut ix = Index::sized(self.keys.len(), self.partitions.len());
        self.index_ok_ops(&mut ix);
        index_observations(&mut ix, self.partitions.len());
        self.index_commits(&mut ix);
        self.index_drains(&mut ix);
        self.index = ix;
    }

    /// Acks, enqueues and reads: what ok sends, enqueues and polls said.
    fn index_ok_ops(&self, ix: &mut Index) {
        for (i, e) in self.entries.iter().enumerate() {
            let i = i as u32;
            if e.op_type != OpType::Ok {
                continue;
            }
            match e.kind {
                Kind::Send if e.partner != NONE => self.index_ack(ix, i, e.partner),
                Kind::Enqueue if e.partner != NONE => {
                    for r in self.recs(e.partner) {
                        if ix.enqueued[r.key as usize] == NONE {
                            ix.enqueued[r.key as usize] = i;
                        }
                    }
                }
                Kind::Poll => self.index_read(ix, i, e.is_final),
                _ => {}
            }
        }
    }

    /// Ok send `i`, completing `invoke`: every value the invoke named is
    /// acknowledged, but only the ack's own records carry offsets.
    fn index_ack(&self, ix: &mut Index, i: u32, invoke: u32) {
        for r in self.recs(invoke) {
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

    /// Ok poll `i`.
    fn index_read(&self, ix: &mut Index, i: u32, is_final: bool) {
        for r in self.recs(i) {
            let k = r.key as usize;
            if ix.first_read[k] == NONE {
                ix.first_read[k] = i;
            }
            if is_final && ix.first_final_read[k] == NONE {
                ix.first_final_read[k] = i;
            }
            let m = &mut ix.max_read[r.partition as usize];
            if m.is_none_or(|(o, _)| r.offset > o) {
                *m = Some((r.offset, i));
            }
            ix.obs.push(Obs { partition: r.partition, offset: r.offset, key: r.key, op: i, ack: false });
        }
    }

    /// The highest offset the group committed per partition.
    fn index_commits(&self, ix: &mut Index) {
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
    }

    /// Which partitions an ok drain reported complete, and up to where.
    fn index_drains(&self, ix: &mut Index) {
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
    }
}

impl Index {
    /// An index with nothing known yet, sized for the history.
    fn sized(nkeys: usize, nparts: usize) -> Index {
        Index {
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
        }
    }
}

/// Sorts the observations, then derives each key's offset(s) and each
/// partition's slice from the sorted order.
fn index_observations(ix: &mut Index, nparts: usize) {
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
}
