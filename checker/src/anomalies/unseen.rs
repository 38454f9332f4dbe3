//! `unseen`: a value was acknowledged but no ok poll ever returned it, and
//! its loss cannot be proven (it is not a [`super::lost_write`]).
//!
//! This is Jepsen's `:unseen` (kafka.clj L1482-1533): without a complete final
//! drain a missing value may just be late. The verdict makes it `false` only
//! where a complete drain covers the partition, and `"unknown"` elsewhere.

use serde_json::json;

use super::lost_write;
use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, NO_OFFSET, NONE};

pub fn check(h: &History, out: &mut Findings) {
    let ix = &h.index;
    for k in 0..h.keys.len() as u32 {
        if ix.ack_op[k as usize] == NONE || ix.first_read[k as usize] != NONE {
            continue;
        }
        if lost_write::loss(h, k).is_some() {
            continue;
        }
        let p = h.keys[k as usize].partition;
        out.report_at(AnomalyKind::Unseen, p, h.key_time_ns(k), || witness(h, k));
    }
}

fn witness(h: &History, k: u32) -> Anomaly {
    let ix = &h.index;
    let key = &h.keys[k as usize];
    let pname = &h.partitions[key.partition as usize];
    let ack = ix.ack_op[k as usize];
    let offset = ix.ack_offset[k as usize];
    let at = if offset == NO_OFFSET { " (offset unknown)".to_owned() } else { format!(" offset {offset}") };
    let reached = match ix.max_read[key.partition as usize] {
        Some((o, _)) => format!("polls reached offset {o}"),
        None => format!("no poll read {pname}"),
    };
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::Unseen,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} acked at {pname}{at} by {} was never read; {reached}",
            key.value,
            h.op_text(ack)
        ),
        witness: json!({
            "value": key.value,
            "offset": (offset != NO_OFFSET).then_some(offset),
            "send": h.op_json(key.sender),
            "ack": h.op_json(ack),
            "max_read_offset": ix.max_read[key.partition as usize].map(|m| m.0),
            "drained": ix.drained_by[key.partition as usize] != NONE,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_unseen() {
        let f = injected(AnomalyKind::Unseen, 4);
        assert_eq!(f.count(AnomalyKind::Unseen), 4);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_unseen() {
        assert_eq!(clean_findings().count(AnomalyKind::Unseen), 0);
    }

    /// An acked tail nobody read, with no higher offset read, is unseen (not
    /// lost); an unread info send is neither.
    #[test]
    fn unread_tail_is_unseen_not_lost() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":3,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[1,2]]}}}
{"index":4,"time":5,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[3]}}}
{"index":5,"time":6,"process":0,"type":"info","f":"send"}
{"index":6,"time":7,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":7,"time":8,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::Unseen), 1);
        assert_eq!(f.count(AnomalyKind::LostWrite), 0);
        let ex = &f.examples(AnomalyKind::Unseen)[0];
        assert_eq!(ex.witness["value"], 2);
        assert!(ex.explanation.contains("polls reached offset 0"), "{}", ex.explanation);
    }
}
