//! `replica-divergence`: after the final heal, two replicas of a partition
//! hold different records (value or leader epoch) at an offset below both
//! their log end offsets. Kafka's epoch-based truncation (KIP-101/279) makes
//! this impossible in a correct broker, so it is always a violation
//! (`docs/semantics.md` §9 rule 3). Reads `replicas.json`, not the history.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::op::RecordValue;
use crate::replicas::Replicas;

/// Replicas listed per witness; partitions have a handful.
const REPLICAS_PER_WITNESS_MAX: usize = 8;

/// `partition_id` maps a partition name to the history's id, for per-partition
/// counts; partitions the history never named are counted without one.
pub fn check(replicas: &Replicas, partition_id: impl Fn(&str) -> Option<u32>, out: &mut Findings) {
    for (pname, nodes) in replicas {
        // (offset, node, epoch, value) for every record below its own LEO.
        let mut all: Vec<(u64, &str, u64, &RecordValue, u64)> = Vec::new();
        for (node, log) in nodes {
            for (offset, epoch, value) in &log.records {
                if *offset < log.log_end_offset {
                    all.push((*offset, node, *epoch, value, log.log_end_offset));
                }
            }
        }
        all.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for group in all.chunk_by(|a, b| a.0 == b.0) {
            let first = group[0];
            if group.iter().all(|r| r.2 == first.2 && r.3 == first.3) {
                continue;
            }
            out.report(AnomalyKind::ReplicaDivergence, partition_id(pname), || {
                let held: Vec<_> = group
                    .iter()
                    .take(REPLICAS_PER_WITNESS_MAX)
                    .map(|r| json!({"node": r.1, "leader_epoch": r.2, "value": r.3, "log_end_offset": r.4}))
                    .collect();
                let other = group.iter().find(|r| r.2 != first.2 || r.3 != first.3).expect("group disagrees");
                Anomaly {
                    faults: Vec::new(),
                    kind: AnomalyKind::ReplicaDivergence,
                    partition: Some(pname.clone()),
                    explanation: format!(
                        "{pname} offset {}: {} holds value {} (epoch {}) but {} holds value {} (epoch {})",
                        first.0, first.1, first.3, first.2, other.1, other.3, other.2
                    ),
                    witness: json!({"offset": first.0, "replicas": held}),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::{AnomalyKind, Findings};
    use crate::generator::{self, GenConfig};

    fn run(inject: usize) -> Findings {
        let cfg = GenConfig {
            ops: 4000,
            partitions: 3,
            seed: 11,
            inject: if inject > 0 { vec![(AnomalyKind::ReplicaDivergence, inject)] } else { vec![] },
        };
        let g = generator::generate_vec(&cfg).unwrap();
        let mut f = Findings::with_example_limit(usize::MAX);
        super::check(&g.replicas, |_| None, &mut f);
        f
    }

    #[test]
    fn finds_injected_divergence() {
        let f = run(3);
        assert_eq!(f.count(AnomalyKind::ReplicaDivergence), 3);
    }

    #[test]
    fn clean_replicas_agree() {
        assert_eq!(run(0).count(AnomalyKind::ReplicaDivergence), 0);
    }

    /// A replica whose log ends earlier is not compared above its end.
    #[test]
    fn records_above_a_log_end_are_not_compared() {
        let r: crate::replicas::Replicas = serde_json::from_str(
            r#"{"t/0": {"n1": {"log_end_offset": 2, "records": [[0,1,"a"],[1,1,"b"]]},
                        "n2": {"log_end_offset": 1, "records": [[0,1,"a"],[1,2,"x"]]}}}"#,
        )
        .unwrap();
        let mut f = Findings::default();
        super::check(&r, |_| None, &mut f);
        assert_eq!(f.count(AnomalyKind::ReplicaDivergence), 0);
    }
}
