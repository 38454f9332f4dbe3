//! `duplicate`: one value at two or more offsets of a partition, as seen by
//! polls or acks (Jepsen's `duplicate-cases`, kafka.clj L1455-1480).

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Obs};

/// Offsets listed per witness; a value duplicated a thousand times needs no
/// thousand-entry witness.
const OFFSETS_PER_WITNESS_MAX: usize = 8;

pub fn check(h: &History, out: &mut Findings) {
    for (k, &multi) in h.index.multi_offset.iter().enumerate() {
        if multi {
            let (p, t) = (h.keys[k].partition, h.key_time_ns(k as u32));
            out.report_at(AnomalyKind::Duplicate, p, t, || witness(h, k as u32));
        }
    }
}

/// Only built for kept examples: one scan of the partition's observations.
fn witness(h: &History, k: u32) -> Anomaly {
    let key = &h.keys[k as usize];
    let group: Vec<Obs> =
        h.index.obs[h.index.part_obs[key.partition as usize].clone()].iter().filter(|o| o.key == k).copied().collect();
    let pname = &h.partitions[key.partition as usize];
    let mut seen: Vec<(u64, u32, bool)> = Vec::new();
    for g in group.chunk_by(|a, b| a.offset == b.offset) {
        seen.push((g[0].offset, g[0].op, g[0].ack));
    }
    let offsets: Vec<u64> = seen.iter().map(|s| s.0).collect();
    let shown: Vec<_> = seen
        .iter()
        .take(OFFSETS_PER_WITNESS_MAX)
        .map(|&(offset, op, ack)| json!({"offset": offset, "seen_by": h.op_json(op), "ack": ack}))
        .collect();
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::Duplicate,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} appears at {} offsets of {pname}: {:?} (first seen at offset {} by {})",
            key.value,
            offsets.len(),
            &offsets[..offsets.len().min(OFFSETS_PER_WITNESS_MAX)],
            seen[0].0,
            h.op_text(seen[0].1)
        ),
        witness: json!({
            "value": key.value,
            "offset_count": offsets.len(),
            "observations": shown,
            "send": (key.sender != crate::history::NONE).then(|| h.op_json(key.sender)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_duplicates() {
        let f = injected(AnomalyKind::Duplicate, 5);
        assert_eq!(f.count(AnomalyKind::Duplicate), 5);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_duplicate() {
        assert_eq!(clean_findings().count(AnomalyKind::Duplicate), 0);
    }

    /// Reading one record twice at the same offset is not a duplicate; the
    /// same value at offsets 0 and 2 is.
    #[test]
    fn same_offset_twice_is_not_a_duplicate() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
{"index":4,"time":5,"process":2,"type":"invoke","f":"poll","value":{}}
{"index":5,"time":6,"process":2,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::Duplicate), 0);
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1],[1,1]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::Duplicate), 1);
        assert_eq!(f.examples(AnomalyKind::Duplicate)[0].witness["offset_count"], 2);
    }
}
