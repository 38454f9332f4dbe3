//! Deriving [`Index`] once every op is in: the per-key and per-partition
//! facts (acks, first reads, observed offsets, commits, drains) that every
//! analysis shares, computed in one pass so that no analysis rescans the ops.

use super::fold::COUNTED_KINDS;
use super::{History, Index, Kind, NO_OFFSET, NONE, Obs, kind_name};
use crate::availability;
use crate::op::OpType;

impl History {
    /// Derives what every analysis shares once all ops are in: moves the
    /// client kinds' counts into [`History::op_counts`], and builds
    /// [`History::index`] while the availability section, which reads only
    /// the ops, is computed on a second thread.
    pub(super) fn finish(&mut self) {
        for (kind, counts) in COUNTED_KINDS.iter().zip(std::mem::take(&mut self.kind_counts)) {
            if counts.iter().any(|&n| n > 0) {
                let total = self.op_counts.entry(kind_name(*kind).to_owned()).or_default();
                total.iter_mut().zip(counts).for_each(|(t, n)| *t += n);
            }
        }
        let this = &*self;
        let (index, availability) = std::thread::scope(|s| {
            let availability = s.spawn(|| availability::availability(this, &availability::fault_windows(this)));
            (this.build_index(), availability.join())
        });
        self.index = index;
        self.availability = availability.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    }

    fn build_index(&self) -> Index {
        let mut ix = Index::sized(self.keys.len(), self.partitions.len());
        let mut obs = self.observation_buckets();
        self.index_ok_ops(&mut ix, &mut obs);
        index_observations(&mut ix, obs);
        self.index_commits(&mut ix);
        self.index_drains(&mut ix);
        ix
    }

    /// Room for every observation, bucketed by partition: the number of
    /// records that ok sends' acks placed and ok polls returned.
    fn observation_buckets(&self) -> Buckets {
        let mut starts = vec![0usize; self.partitions.len() + 1];
        for (i, e) in self.entries.iter().enumerate() {
            let observes =
                e.op_type == OpType::Ok && (e.kind == Kind::Poll || (e.kind == Kind::Send && e.partner != NONE));
            if observes {
                for r in self.recs(i as u32).iter().filter(|r| r.offset != NO_OFFSET) {
                    starts[r.partition as usize + 1] += 1;
                }
            }
        }
        for p in 1..starts.len() {
            starts[p] += starts[p - 1];
        }
        let blank = Obs { partition: 0, offset: 0, key: 0, op: 0, ack: false };
        Buckets { obs: vec![blank; starts[starts.len() - 1]], next: starts[..starts.len() - 1].to_vec(), starts }
    }

    /// Acks, enqueues and reads: what ok sends, enqueues and polls said.
    fn index_ok_ops(&self, ix: &mut Index, obs: &mut Buckets) {
        for (i, e) in self.entries.iter().enumerate() {
            let i = i as u32;
            if e.op_type != OpType::Ok {
                continue;
            }
            match e.kind {
                Kind::Send if e.partner != NONE => self.index_ack(ix, obs, i, e.partner),
                Kind::Enqueue if e.partner != NONE => {
                    for r in self.recs(e.partner) {
                        if ix.enqueued[r.key as usize] == NONE {
                            ix.enqueued[r.key as usize] = i;
                        }
                    }
                }
                Kind::Poll => self.index_read(ix, obs, i, e.is_final),
                _ => {}
            }
        }
    }

    /// Ok send `i`, completing `invoke`: every value the invoke named is
    /// acknowledged, but only the ack's own records carry offsets.
    fn index_ack(&self, ix: &mut Index, obs: &mut Buckets, i: u32, invoke: u32) {
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
            obs.push(Obs { partition: r.partition, offset: r.offset, key: r.key, op: i, ack: true });
        }
    }

    /// Ok poll `i`.
    fn index_read(&self, ix: &mut Index, obs: &mut Buckets, i: u32, is_final: bool) {
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
            obs.push(Obs { partition: r.partition, offset: r.offset, key: r.key, op: i, ack: false });
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

/// Observations filed by partition as they come, in op order.
struct Buckets {
    obs: Vec<Obs>,
    /// Per partition: where its bucket starts; one more at the end.
    starts: Vec<usize>,
    /// Per partition: the next free place in its bucket.
    next: Vec<usize>,
}

impl Buckets {
    fn push(&mut self, o: Obs) {
        let at = &mut self.next[o.partition as usize];
        self.obs[*at] = o;
        *at += 1;
    }
}

/// Sorts each partition's observations by `(offset, key, op)`, then derives
/// each key's offset(s) and each partition's slice of [`Index::obs`].
///
fn index_observations(ix: &mut Index, mut b: Buckets) {
    let total = b.obs.len();
    let mut buckets = Vec::with_capacity(b.starts.len());
    let mut rest = &mut b.obs[..];
    for (p, w) in b.starts.windows(2).enumerate() {
        debug_assert_eq!(b.next[p], w[1], "every counted observation was filed");
        let (bucket, after) = rest.split_at_mut(w[1] - w[0]);
        buckets.push(bucket);
        rest = after;
        ix.part_obs.push(w[0]..w[1]);
    }
    // Buckets sort independently: half the observations on a second thread.
    let mut other = Vec::new();
    let mut moved = 0;
    while moved * 2 < total
        && let Some(bucket) = buckets.pop()
    {
        moved += bucket.len();
        other.push(bucket);
    }
    std::thread::scope(|s| {
        s.spawn(|| other.into_iter().for_each(sort_bucket));
        buckets.into_iter().for_each(sort_bucket);
    });
    for o in &b.obs {
        let k = o.key as usize;
        if ix.key_offset[k] == NO_OFFSET {
            ix.key_offset[k] = o.offset;
        } else if ix.key_offset[k] != o.offset {
            ix.multi_offset[k] = true;
        }
    }
    ix.obs = b.obs;
}

/// Counting sort slots allowed per observation; sparser offsets are sorted
/// by comparison instead, so memory stays O(observations).
const COUNTING_SLOTS_PER_OBS: usize = 4;

/// Sorts one partition's observations by `(offset, key)`, stably: they were
/// filed in op order, so ties stay in op order. Offsets in a partition are
/// usually dense, so a counting sort by offset does it in linear time; then
/// the rare offsets that several keys claim are put in key order.
fn sort_bucket(obs: &mut [Obs]) {
    let Some(min) = obs.iter().map(|o| o.offset).min() else { return };
    let max = obs.iter().map(|o| o.offset).max().unwrap_or(min);
    let range = usize::try_from(max - min).ok().filter(|r| *r < COUNTING_SLOTS_PER_OBS * obs.len() + 1024);
    let Some(range) = range else {
        obs.sort_by_key(|o| (o.offset, o.key));
        return;
    };
    let mut next = vec![0u32; range + 2];
    for o in obs.iter() {
        next[(o.offset - min) as usize + 1] += 1;
    }
    for i in 1..next.len() {
        next[i] += next[i - 1];
    }
    let filed = obs.to_vec();
    for o in filed {
        let at = &mut next[(o.offset - min) as usize];
        obs[*at as usize] = o;
        *at += 1;
    }
    for group in obs.chunk_by_mut(|a, b| a.offset == b.offset) {
        if group.iter().any(|o| o.key != group[0].key) {
            group.sort_by_key(|o| o.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::SplitMix64;

    /// The counting sort orders exactly as a stable sort by `(offset, key)`,
    /// for dense offsets, sparse ones, and offsets claimed by several keys.
    #[test]
    fn bucket_sort_is_a_stable_sort_by_offset_and_key() {
        let mut rng = SplitMix64::new(4);
        for spread in [8u64, 1000, 1 << 62] {
            let mut obs: Vec<Obs> = (0..5000u32)
                .map(|op| {
                    let offset = rng.below(spread) + (1 << 40);
                    Obs { partition: 0, offset, key: rng.below(3) as u32, op, ack: rng.chance(500) }
                })
                .collect();
            let mut expected = obs.clone();
            expected.sort_by_key(|o| (o.offset, o.key));
            sort_bucket(&mut obs);
            assert_eq!(obs, expected, "offsets spread over {spread}");
        }
    }
}
