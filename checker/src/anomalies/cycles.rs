//! The ordering graph behind `order-cycle` and `realtime-cycle`.
//!
//! Per partition, nodes are values seen at exactly one offset (values at
//! several offsets are `duplicate`s and are left out). Edges say "a precedes
//! b", from three sources:
//! - **offset order**: every value precedes the values at the next higher
//!   observed offset (a chain, so O(values) edges);
//! - **op order**: consecutive records of one poll or one ack, in the order
//!   the op lists them;
//! - **real time**: a send acknowledged before another send was invoked
//!   precedes it. Built with Elle's frontier sweep: each invoke links only to
//!   the sends completed since its predecessors, never all pairs.
//!
//! The offset chain already implies every edge that goes to a higher offset,
//! so only *backward* op-order and real-time edges (to an equal or lower
//! offset) are added; reachability, and so every strongly connected
//! component, is unchanged. A partition with no backward edge is acyclic and
//! costs no graph at all. Otherwise a petgraph `DiGraph` is built over the
//! offset range the backward edges span, its components found with
//! `kosaraju_scc` (iterative: Tarjan's recursion overflows on long chains),
//! and each component of two or more values reported with a shortest cycle
//! through one of its backward edges (BFS), with the op behind every edge.

use std::collections::VecDeque;

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind};
use crate::history::{History, Kind, NO_OFFSET, NONE};
use crate::op::OpType;
use crate::util::{FxHashMap, FxHashSet};

/// Backward edges tried as cycle entry points per component; each costs one
/// BFS over the component.
const CYCLE_SEARCHES_PER_SCC_MAX: usize = 32;
/// Above this many values at one offset times the next, the chain goes
/// through a hub node instead of all pairs.
const CHAIN_PAIRS_MAX: usize = 4;

/// Why an edge exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `from` is at a lower offset than `to`.
    OffsetOrder,
    /// The op listed `from` right before `to`.
    OpOrder { op: u32 },
    /// `ack` acknowledged `from` before `invoke` sent `to`.
    Realtime { ack: u32, invoke: u32 },
}

#[derive(Debug, Clone, Copy)]
struct BackEdge {
    from: u32,
    to: u32,
    why: Why,
}

/// One cycle found: the anomaly it is reported as, and its witness.
pub struct Cycle {
    pub kind: AnomalyKind,
    pub partition: u32,
    pub anomaly: Anomaly,
}

/// Every cycle of the history, one per strongly connected component.
pub struct CycleReport {
    pub cycles: Vec<Cycle>,
}

/// Per key: its single offset, or `None` when unseen or duplicated.
fn node_offsets(h: &History) -> Vec<Option<u64>> {
    let ix = &h.index;
    ix.key_offset.iter().zip(&ix.multi_offset).map(|(&o, &multi)| (o != NO_OFFSET && !multi).then_some(o)).collect()
}

fn op_order_edges(h: &History, off: &[Option<u64>], out: &mut Vec<BackEdge>) {
    for (i, e) in h.entries.iter().enumerate() {
        let observes = e.op_type == OpType::Ok && matches!(e.kind, Kind::Poll | Kind::Send);
        if !observes {
            continue;
        }
        for w in h.recs(i as u32).windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.partition != b.partition || a.key == b.key {
                continue;
            }
            if let (Some(oa), Some(ob)) = (off[a.key as usize], off[b.key as usize])
                && oa >= ob
            {
                out.push(BackEdge { from: a.key, to: b.key, why: Why::OpOrder { op: i as u32 } });
            }
        }
    }
}

/// One send invoke's records in one partition, as the sweep sees it.
struct Batch {
    invoke: u32,
    /// Its nodes' lowest and highest offsets.
    lo: u64,
    hi: u64,
    /// Where the frontier was when it was invoked: `snapshots[at.0 .. at.1]`.
    at: (u32, u32),
}

/// The real-time frontier sweep, per partition.
fn realtime_edges(h: &History, off: &[Option<u64>], out: &mut Vec<BackEdge>) {
    // (partition, time, 0 = invoke / 1 = ack, batch). Invokes sort before
    // acks at equal times: "before" must be strict.
    let mut events: Vec<(u32, u64, u8, u32)> = Vec::new();
    let mut batches: Vec<Batch> = Vec::new();
    for (i, e) in h.entries.iter().enumerate() {
        if e.kind != Kind::Send || e.op_type != OpType::Invoke {
            continue;
        }
        let i = i as u32;
        let acked = h.outcome(i) == Some(OpType::Ok);
        for batch in h.recs(i).chunk_by(|a, b| a.partition == b.partition) {
            let offsets = batch.iter().filter_map(|r| off[r.key as usize]);
            let Some((lo, hi)) = offsets
                .fold(None, |m: Option<(u64, u64)>, o| Some(m.map_or((o, o), |(lo, hi)| (lo.min(o), hi.max(o)))))
            else {
                continue;
            };
            let (p, b) = (batch[0].partition, batches.len() as u32);
            batches.push(Batch { invoke: i, lo, hi, at: (0, 0) });
            events.push((p, e.time_ns, 0, b));
            if acked {
                events.push((p, h.entries[e.partner as usize].time_ns, 1, b));
            }
        }
    }
    events.sort_unstable();
    let nodes_of = |i: u32, p: u32| h.recs(i).iter().filter(move |r| r.partition == p && off[r.key as usize].is_some());
    let mut snapshots: Vec<u32> = Vec::new();
    for part in events.chunk_by(|a, b| a.0 == b.0) {
        let p = part[0].0;
        // Batches acknowledged with no acknowledged successor yet.
        let mut frontier: Vec<u32> = Vec::new();
        for &(_, _, is_ack, b) in part {
            if is_ack == 1 {
                let (s, e) = batches[b as usize].at;
                let before = &snapshots[s as usize..e as usize];
                frontier.retain(|x| !before.contains(x));
                frontier.push(b);
                continue;
            }
            let cur = &batches[b as usize];
            // Only a predecessor reaching this batch's offsets can give a
            // backward edge: the rest are skipped without a look at records.
            for &a in frontier.iter().filter(|&&a| batches[a as usize].hi >= cur.lo) {
                let a = &batches[a as usize];
                for ra in nodes_of(a.invoke, p) {
                    for rb in nodes_of(cur.invoke, p) {
                        if ra.key != rb.key && off[ra.key as usize] >= off[rb.key as usize] {
                            let why = Why::Realtime { ack: h.entries[a.invoke as usize].partner, invoke: cur.invoke };
                            out.push(BackEdge { from: ra.key, to: rb.key, why });
                        }
                    }
                }
            }
            let s = snapshots.len() as u32;
            snapshots.extend_from_slice(&frontier);
            batches[b as usize].at = (s, snapshots.len() as u32);
        }
    }
}

pub fn analyze(h: &History) -> CycleReport {
    let off = node_offsets(h);
    let mut back = Vec::new();
    op_order_edges(h, &off, &mut back);
    realtime_edges(h, &off, &mut back);
    back.sort_unstable_by_key(|b| (h.keys[b.from as usize].partition, b.from, b.to));
    let mut cycles = Vec::new();
    for edges in back.chunk_by(|a, b| h.keys[a.from as usize].partition == h.keys[b.from as usize].partition) {
        let p = h.keys[edges[0].from as usize].partition;
        partition_cycles(h, p, &off, edges, &mut cycles);
    }
    CycleReport { cycles }
}

fn partition_cycles(h: &History, p: u32, off: &[Option<u64>], back: &[BackEdge], out: &mut Vec<Cycle>) {
    let lo = back.iter().filter_map(|b| off[b.to as usize]).min().unwrap_or(0);
    let hi = back.iter().filter_map(|b| off[b.from as usize]).max().unwrap_or(0);
    // Nodes in offset order, from the partition's sorted observations.
    let obs = &h.index.obs[h.index.part_obs[p as usize].clone()];
    let start = obs.partition_point(|o| o.offset < lo);
    let end = obs.partition_point(|o| o.offset <= hi);
    let mut g: DiGraph<u32, Why> = DiGraph::new();
    let mut node_of: FxHashMap<u32, NodeIndex> = FxHashMap::default();
    let mut prev_group: Vec<NodeIndex> = Vec::new();
    for group in obs[start..end].chunk_by(|a, b| a.offset == b.offset) {
        let mut cur: Vec<NodeIndex> = Vec::new();
        for o in group {
            if off[o.key as usize].is_some() && !node_of.contains_key(&o.key) {
                let n = g.add_node(o.key);
                node_of.insert(o.key, n);
                cur.push(n);
            }
        }
        if cur.is_empty() {
            continue;
        }
        if prev_group.len() * cur.len() > CHAIN_PAIRS_MAX {
            let hub = g.add_node(NONE);
            for &a in &prev_group {
                g.add_edge(a, hub, Why::OffsetOrder);
            }
            for &b in &cur {
                g.add_edge(hub, b, Why::OffsetOrder);
            }
        } else {
            for &a in &prev_group {
                for &b in &cur {
                    g.add_edge(a, b, Why::OffsetOrder);
                }
            }
        }
        prev_group = cur;
    }
    for b in back {
        if let (Some(&x), Some(&y)) = (node_of.get(&b.from), node_of.get(&b.to)) {
            g.add_edge(x, y, b.why);
        }
    }
    for scc in kosaraju_scc(&g) {
        let values = scc.iter().filter(|&&n| g[n] != NONE).count();
        if values < 2 {
            continue;
        }
        let members: FxHashSet<NodeIndex> = scc.iter().copied().collect();
        let mut best: Option<Vec<(NodeIndex, Why)>> = None;
        let entries = back
            .iter()
            .filter_map(|b| Some((*node_of.get(&b.from)?, *node_of.get(&b.to)?, b.why)))
            .filter(|(x, y, _)| members.contains(x) && members.contains(y))
            .take(CYCLE_SEARCHES_PER_SCC_MAX);
        for (x, y, why) in entries {
            if let Some(path) = bfs_path(&g, &members, y, x) {
                // The cycle: x -why-> y -path-> x.
                let mut cyc = vec![(x, why)];
                cyc.extend(path);
                if best.as_ref().is_none_or(|b| cyc.len() < b.len()) {
                    best = Some(cyc);
                }
            }
        }
        let Some(cyc) = best else { continue };
        out.push(render(h, p, off, &g, &cyc, values));
    }
}

/// Shortest path `from` → `to` inside `members`, as (node, edge to the next
/// node) steps starting at `from` and ending with the edge into `to`.
fn bfs_path(
    g: &DiGraph<u32, Why>,
    members: &FxHashSet<NodeIndex>,
    from: NodeIndex,
    to: NodeIndex,
) -> Option<Vec<(NodeIndex, Why)>> {
    let mut parent: FxHashMap<NodeIndex, (NodeIndex, Why)> = FxHashMap::default();
    let mut queue = VecDeque::from([from]);
    let mut seen: FxHashSet<NodeIndex> = FxHashSet::from_iter([from]);
    // Bounded by the component's size: each node is queued once.
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut steps = Vec::new();
            let mut cur = to;
            while cur != from {
                let (prev, why) = parent[&cur];
                steps.push((prev, why));
                cur = prev;
            }
            steps.reverse();
            return Some(steps);
        }
        for e in g.edges(n) {
            let t = e.target();
            if members.contains(&t) && seen.insert(t) {
                parent.insert(t, (n, *e.weight()));
                queue.push_back(t);
            }
        }
    }
    None
}

/// Edges an explanation shows at each end of a long cycle: a cycle can run
/// through thousands of values, and one line of them helps nobody.
const CYCLE_EDGES_SHOWN: usize = 3;

/// The cycle's edges, or its first and last few and where the rest is.
fn shown(edges: &[String]) -> String {
    if edges.len() <= 2 * CYCLE_EDGES_SHOWN + 1 {
        return edges.join(", ");
    }
    let (first, last) = (&edges[..CYCLE_EDGES_SHOWN], &edges[edges.len() - CYCLE_EDGES_SHOWN..]);
    let hidden = edges.len() - 2 * CYCLE_EDGES_SHOWN;
    format!(
        "{}, … {hidden} more edges (all of them in results.json, the witness's `cycle`) …, {}",
        first.join(", "),
        last.join(", ")
    )
}

fn render(
    h: &History,
    p: u32,
    off: &[Option<u64>],
    g: &DiGraph<u32, Why>,
    cyc: &[(NodeIndex, Why)],
    scc_values: usize,
) -> Cycle {
    let realtime = cyc.iter().any(|(_, w)| matches!(w, Why::Realtime { .. }));
    let kind = if realtime { AnomalyKind::RealtimeCycle } else { AnomalyKind::OrderCycle };
    let pname = &h.partitions[p as usize];
    // Hubs of the offset chain are not values: drop them. The edges into
    // and out of a hub are offset-order edges, so nothing else changes.
    let keyed: Vec<(u32, Why)> = cyc.iter().filter(|(n, _)| g[*n] != NONE).map(|&(n, w)| (g[n], w)).collect();
    let mut steps = Vec::new();
    let mut text = Vec::new();
    for (i, &(k, why)) in keyed.iter().enumerate() {
        let next = keyed[(i + 1) % keyed.len()].0;
        let at = |k: u32| format!("{}@{}", h.keys[k as usize].value, off[k as usize].unwrap_or_default());
        let (edge, said) = match why {
            Why::OffsetOrder => (json!({"kind": "offset-order"}), "lower offset".to_owned()),
            Why::OpOrder { op } => {
                (json!({"kind": "op-order", "op": h.op_json(op)}), format!("listed first by op {op}"))
            }
            Why::Realtime { ack, invoke } => (
                json!({"kind": "realtime", "ack": h.op_json(ack), "invoke": h.op_json(invoke)}),
                format!("acked by op {ack} before op {invoke} sent {}", h.keys[next as usize].value),
            ),
        };
        text.push(format!("{} -> {} ({said})", at(k), at(next)));
        steps.push(json!({"value": h.keys[k as usize].value, "offset": off[k as usize], "edge_to_next": edge}));
    }
    let anomaly = Anomaly {
        faults: Vec::new(),
        kind,
        partition: Some(pname.clone()),
        explanation: format!(
            "values of {pname} precede each other in a cycle of {} edges: {}",
            text.len(),
            shown(&text)
        ),
        witness: json!({"cycle": steps, "component_values": scc_values}),
    };
    Cycle { kind, partition: p, anomaly }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_cycle_is_shown_by_its_ends() {
        let edges: Vec<String> = (0..1000).map(|i| format!("{i}@{i} -> {}@{} (lower offset)", i + 1, i + 1)).collect();
        let text = shown(&edges);
        assert!(text.len() < 400, "{}", text.len());
        assert!(text.starts_with("0@0 -> 1@1"), "{text}");
        assert!(text.ends_with("1000@1000 (lower offset)") && text.contains("994 more"), "{text}");
        assert_eq!(shown(&edges[..5]), edges[..5].join(", "), "a short cycle is shown whole");
    }
}
