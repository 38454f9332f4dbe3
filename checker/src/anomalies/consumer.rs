//! The shared pass behind `poll-skip` and `nonmonotonic-poll`: walks each
//! process's ok polls in order and tracks, per assigned partition, the last
//! offset it read (Jepsen's `poll-skip+nonmonotonic-cases-per-process` and
//! the `int-` variants, kafka.clj L1151-1343).
//!
//! - An `assign` that completed `ok` or `info` starts a new assignment and
//!   forgets every position: its first poll is the new baseline. A `revoke`
//!   that completed forgets the positions of its partitions. So a jump or a
//!   step back across a partition's reassignment (a rebalance, where the new
//!   owner starts from the committed offset) is never an anomaly; inside one
//!   assignment it still is.
//! - A poll that completed `fail` or `info` does not move the position: the
//!   client must roll its position back (Jepsen's `with-consumer-rollback`).
//! - Consecutive records inside one poll are checked like successive polls.
//! - A jump from `a` to `b` is a skip only if some poll or ack showed an
//!   offset strictly between them: offsets need not be dense.

use crate::history::{History, Kind, NONE, Obs};
use crate::op::OpType;

/// Where a consumer moved wrongly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Move {
    pub process: u32,
    pub partition: u32,
    /// The last record read before, and the poll that read it.
    pub from: (u64, u32),
    /// The record read next, and its poll.
    pub to: (u64, u32),
    pub backwards: bool,
}

/// Calls `on_move` for every skip and every backwards step.
pub(crate) fn walk(h: &History, mut on_move: impl FnMut(Move)) {
    // Per process: (partition, last offset, poll). Assignments name a few
    // partitions, so a small vector beats a map.
    let mut pos: Vec<Vec<(u32, u64, u32)>> = vec![Vec::new(); h.processes.len()];
    for (i, e) in h.entries.iter().enumerate() {
        let i = i as u32;
        match (e.kind, e.op_type) {
            (Kind::Assign, OpType::Ok | OpType::Info) if e.partner != NONE => pos[e.process as usize].clear(),
            (Kind::Revoke, OpType::Ok | OpType::Info) if e.partner != NONE => {
                let revoked = h.revokes.get(&e.partner).map_or(&[][..], Vec::as_slice);
                pos[e.process as usize].retain(|s| !revoked.contains(&s.0));
            }
            (Kind::Poll, OpType::Ok) => {
                let mine = &mut pos[e.process as usize];
                for r in h.recs(i) {
                    let slot = mine.iter_mut().find(|s| s.0 == r.partition);
                    let Some(slot) = slot else {
                        mine.push((r.partition, r.offset, i));
                        continue;
                    };
                    let from = (slot.1, slot.2);
                    *slot = (r.partition, r.offset, i);
                    let backwards = r.offset <= from.0;
                    if backwards || exists_between(h, r.partition, from.0, r.offset) {
                        on_move(Move {
                            process: e.process,
                            partition: r.partition,
                            from,
                            to: (r.offset, i),
                            backwards,
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

/// The observations of `partition` at offsets strictly inside `(lo, hi)`.
pub(crate) fn between(h: &History, partition: u32, lo: u64, hi: u64) -> &[Obs] {
    let obs = &h.index.obs[h.index.part_obs[partition as usize].clone()];
    let a = obs.partition_point(|o| o.offset <= lo);
    let b = obs.partition_point(|o| o.offset < hi);
    if a < b { &obs[a..b] } else { &[] }
}

fn exists_between(h: &History, partition: u32, lo: u64, hi: u64) -> bool {
    hi > lo.saturating_add(1) && !between(h, partition, lo, hi).is_empty()
}
