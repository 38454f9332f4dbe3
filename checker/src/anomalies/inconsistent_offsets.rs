//! `inconsistent-offsets`: one offset of a partition holds two or more values
//! across polls and acks (Jepsen's `version-orders` errors, kafka.clj
//! L973-992).

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Obs};

/// Values listed per witness.
const VALUES_PER_WITNESS_MAX: usize = 8;

pub fn check(h: &History, out: &mut Findings) {
    for p in 0..h.partitions.len() {
        let obs = &h.index.obs[h.index.part_obs[p].clone()];
        // `obs` is sorted by (offset, key): a group with two keys disagrees.
        for group in obs.chunk_by(|a, b| a.offset == b.offset) {
            if group.first().map(|o| o.key) != group.last().map(|o| o.key) {
                out.report(AnomalyKind::InconsistentOffsets, Some(p as u32), || witness(h, group));
            }
        }
    }
}

fn witness(h: &History, group: &[Obs]) -> Anomaly {
    let p = group[0].partition as usize;
    let pname = &h.partitions[p];
    let per_value: Vec<&[Obs]> = group.chunk_by(|a, b| a.key == b.key).collect();
    let values: Vec<_> = per_value
        .iter()
        .take(VALUES_PER_WITNESS_MAX)
        .map(|g| {
            json!({
                "value": h.keys[g[0].key as usize].value,
                "seen_by": h.op_json(g[0].op),
                "ack": g[0].ack,
            })
        })
        .collect();
    let listed: Vec<String> = per_value
        .iter()
        .take(VALUES_PER_WITNESS_MAX)
        .map(|g| {
            let how = if g[0].ack { "acked to" } else { "read by" };
            format!("{} ({how} {})", h.keys[g[0].key as usize].value, h.op_text(g[0].op))
        })
        .collect();
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::InconsistentOffsets,
        partition: Some(pname.clone()),
        explanation: format!(
            "offset {} of {pname} holds {} values: {}",
            group[0].offset,
            per_value.len(),
            listed.join(", ")
        ),
        witness: json!({"offset": group[0].offset, "value_count": per_value.len(), "values": values}),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_inconsistent_offsets() {
        let f = injected(AnomalyKind::InconsistentOffsets, 3);
        assert_eq!(f.count(AnomalyKind::InconsistentOffsets), 3);
        // Two values at one offset means one of them, read by a consumer and
        // so committed, was truncated away: each injection is also exactly
        // one lost write (`generator::implied_by`), and nothing else.
        assert_eq!(f.count(AnomalyKind::LostWrite), 3);
        assert_eq!(f.kinds.len(), 2, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_inconsistent_offsets() {
        assert_eq!(clean_findings().count(AnomalyKind::InconsistentOffsets), 0);
    }

    /// An ack and a poll that disagree on offset 0.
    #[test]
    fn ack_and_poll_disagree() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":3,"process":2,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":2,"type":"info","f":"send"}
{"index":4,"time":5,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":5,"time":6,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::InconsistentOffsets), 1);
        assert_eq!(f.examples(AnomalyKind::InconsistentOffsets)[0].witness["value_count"], 2);
    }
}
