//! `metadata-regression`: two leaders for one leader epoch of a partition,
//! from `elections.jsonl` (what each node said a partition's leader and
//! epoch were, over time). An epoch names one election; seen with two
//! leaders, it was reused, which happens when the controller's log loses
//! committed changes (a log that was not durable before it acknowledged).
//! A controller that fsyncs before it acknowledges (Raft's rule) never
//! does it, whatever it loses, so this is always a violation.
//!
//! A node's epoch going back in its own answers is not counted: a
//! restarted node may answer from the image it replays before it catches
//! up, which is stale, not regressed.

use std::collections::BTreeMap;

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::elections::{Elections, Observation};

fn seen(o: &Observation) -> serde_json::Value {
    json!({"node": o.node, "time_ns": o.time_ns, "leader": o.leader, "epoch": o.epoch})
}

fn report(
    out: &mut Findings,
    partition_id: &impl Fn(&str) -> Option<u32>,
    a: &Observation,
    b: &Observation,
    why: String,
) {
    out.report(AnomalyKind::MetadataRegression, partition_id(&a.partition), || Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::MetadataRegression,
        partition: Some(a.partition.clone()),
        explanation: why,
        witness: json!({"before": seen(a), "after": seen(b)}),
    });
}

pub fn check(elections: &Elections, partition_id: impl Fn(&str) -> Option<u32>, out: &mut Findings) {
    let mut leaders: BTreeMap<(&str, i32), &Observation> = BTreeMap::new();
    for o in elections {
        let Some(leader) = o.leader else { continue };
        match leaders.get(&(o.partition.as_str(), o.epoch)) {
            Some(first) if first.leader != Some(leader) => {
                let why = format!(
                    "{} epoch {}: led by {} ({} at {:.1} s) and by {leader} ({} at {:.1} s): an epoch was reused",
                    o.partition,
                    o.epoch,
                    first.leader.unwrap_or(-1),
                    first.node,
                    first.time_ns as f64 / 1e9,
                    o.node,
                    o.time_ns as f64 / 1e9
                );
                report(out, &partition_id, first, o, why);
            }
            Some(_) => {}
            None => {
                leaders.insert((&o.partition, o.epoch), o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(t: u64, node: &str, leader: i32, epoch: i32) -> Observation {
        Observation { time_ns: t, node: node.into(), partition: "events/0".into(), leader: Some(leader), epoch }
    }

    fn found(e: &Elections) -> Findings {
        let mut f = Findings::with_example_limit(usize::MAX);
        check(e, |_| None, &mut f);
        f
    }

    #[test]
    fn a_clean_election_history_has_no_regression() {
        let e =
            vec![obs(1, "n1", 1, 0), obs(1, "n2", 1, 0), obs(5, "n2", 2, 1), obs(9, "n1", 2, 1), obs(9, "n1", 3, 2)];
        assert_eq!(found(&e).count(AnomalyKind::MetadataRegression), 0);
    }

    #[test]
    fn two_leaders_for_one_epoch_are_found() {
        let e = vec![obs(1, "n1", 1, 4), obs(5, "n2", 3, 4)];
        let f = found(&e);
        assert_eq!(f.count(AnomalyKind::MetadataRegression), 1);
        assert!(f.examples(AnomalyKind::MetadataRegression)[0].explanation.contains("reused"));
    }

    #[test]
    fn a_node_that_is_behind_or_restarted_is_not_a_regression() {
        // n2 still says epoch 1 after n1 saw epoch 2; n1, restarted, says
        // epoch 1 again: stale views of the same elections.
        let e = vec![obs(1, "n1", 1, 1), obs(2, "n1", 2, 2), obs(3, "n2", 1, 1), obs(4, "n1", 1, 1)];
        assert_eq!(found(&e).count(AnomalyKind::MetadataRegression), 0);
    }
}
