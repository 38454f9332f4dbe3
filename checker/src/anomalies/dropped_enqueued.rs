//! `dropped-enqueued`: a record the producer's buffer refused that the
//! application never sent again. Its `enqueue` failed (the buffer stayed
//! full past `max.block.ms`, or `max.block.ms=0` refused it at once), and
//! no send ever named the value, no ok poll ever returned it.
//!
//! A fire-and-forget application ignores what `send()` returns, so a
//! refused record is gone although the application counted it as sent:
//! the loss of the classic advice "a full buffer with a non-blocking
//! producer drops records" (`docs/semantics.md` R4.10). Kafka reported the
//! refusal, so the type is permitted under `producer-mode=fire-and-forget`
//! and shown with the run's losses; an application that blocks, or retries
//! the refused record, has none.
//!
//! It runs under the same precondition as [`super::lost_enqueued`]: in
//! `sync` and `callback` modes the application sees every outcome.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Kind, NONE};
use crate::op::OpType;

pub fn check(h: &History, out: &mut Findings) {
    let ix = &h.index;
    // A value refused more than once is one dropped record.
    let mut reported = vec![false; h.keys.len()];
    for (i, e) in h.entries.iter().enumerate() {
        if e.kind != Kind::Enqueue || e.op_type != OpType::Fail || e.partner == NONE {
            continue;
        }
        for r in h.recs(e.partner) {
            let k = r.key as usize;
            let sent = h.keys[k].sender != NONE || ix.enqueued[k] != NONE;
            if sent || ix.ack_op[k] != NONE || ix.first_read[k] != NONE || reported[k] {
                continue;
            }
            reported[k] = true;
            out.report_at(AnomalyKind::DroppedEnqueued, r.partition, e.time_ns, || witness(h, i as u32, r.key));
        }
    }
}

fn witness(h: &History, refused: u32, k: u32) -> Anomaly {
    let key = &h.keys[k as usize];
    let pname = &h.partitions[key.partition as usize];
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::DroppedEnqueued,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} for {pname} was refused by the producer's buffer (its enqueue failed) at {}, and the \
             application never sent it again: no send named it and no poll read it",
            key.value,
            h.op_text(refused)
        ),
        witness: json!({
            "value": key.value,
            "enqueue": h.op_json(h.entries[refused as usize].partner),
            "refused": h.op_json(refused),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_with, injected};

    #[test]
    fn finds_injected_dropped_enqueued() {
        let f = injected(AnomalyKind::DroppedEnqueued, 3);
        assert_eq!(f.count(AnomalyKind::DroppedEnqueued), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    /// The generator's applications retry a refused record: nothing dropped.
    #[test]
    fn clean_history_has_no_dropped_enqueued() {
        let f = clean_findings();
        assert_eq!(f.count(AnomalyKind::DroppedEnqueued), 0);
    }

    const HISTORY: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"fail","f":"enqueue","value":{"records":{"t/0":[1]}},"error":"max.block.ms"}
{"index":2,"time":3,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":0,"type":"fail","f":"enqueue","value":{"records":{"t/0":[2]}},"error":"max.block.ms"}
{"index":4,"time":5,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[2]}}}
{"index":5,"time":6,"process":0,"type":"ok","f":"enqueue","value":{"records":{"t/0":[2]}}}
{"index":6,"time":7,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":7,"time":8,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,2]]}}}
"#;

    /// Refused and never retried (1): dropped, and permitted in
    /// fire-and-forget mode. Refused, then enqueued again and sent (2): not.
    #[test]
    fn a_refused_record_never_sent_again_is_dropped() {
        let f = findings_with(HISTORY, "producer-mode=fire-and-forget", None);
        assert_eq!(f.count(AnomalyKind::DroppedEnqueued), 1);
        let ex = &f.examples(AnomalyKind::DroppedEnqueued)[0];
        assert_eq!(ex.witness["value"].as_i64(), Some(1));
        assert_eq!(ex.witness["refused"]["index"], 1);
        assert_eq!(f.count(AnomalyKind::LostEnqueued), 0);
    }

    /// In callback mode the application saw the refusal: not checked.
    #[test]
    fn other_modes_are_not_checked() {
        let f = findings_with(HISTORY, "producer-mode=callback", None);
        assert_eq!(f.count(AnomalyKind::DroppedEnqueued), 0);
    }
}
