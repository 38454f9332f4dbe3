//! `lost-enqueued`: a record the producer application counted as sent that
//! never reached the log. Its `enqueue` was ok (accepted into the producer's
//! in-memory buffer), yet no ok send acknowledged it and no ok poll, final
//! drain included, ever returned it.
//!
//! This is the producer-buffer loss of `docs/semantics.md` R4.10: a
//! fire-and-forget application treats `send()` returning as success, and a
//! producer crash loses everything still buffered or in flight. Kafka never
//! promised those records, so the type is permitted under
//! `producer-mode=fire-and-forget`; it is reported with counts so users see
//! what that mode costs. It is never a `lost-write`, which stays reserved for
//! acknowledged records.
//!
//! The analysis runs only when the guarantees say
//! `producer-mode=fire-and-forget` and the history has enqueue ops
//! ([`precondition`]): in `sync` and `callback` modes the application learns
//! each outcome, so an enqueue is not a promise.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::guarantees::{Guarantees, ProducerMode};
use crate::history::{History, Kind, NONE};
use crate::op::OpType;

/// `Err(reason)` when the analysis does not apply to this run.
pub fn precondition(h: &History, g: &Guarantees) -> Result<(), String> {
    let mode = match g.producer_mode {
        ProducerMode::FireAndForget => None,
        ProducerMode::Sync => Some("sync"),
        ProducerMode::Callback => Some("callback"),
    };
    if let Some(mode) = mode {
        return Err(format!(
            "lost-enqueued: producer-mode={mode}: the application learns every send's outcome, \
             so an enqueued record was never counted as sent"
        ));
    }
    if !h.entries.iter().any(|e| e.kind == Kind::Enqueue) {
        return Err("lost-enqueued: the history has no enqueue ops".to_owned());
    }
    Ok(())
}

pub fn check(h: &History, out: &mut Findings) {
    let ix = &h.index;
    for k in 0..h.keys.len() {
        if ix.enqueued[k] == NONE || ix.ack_op[k] != NONE || ix.first_read[k] != NONE {
            continue;
        }
        let t = h.entries[ix.enqueued[k] as usize].time_ns;
        out.report_at(AnomalyKind::LostEnqueued, h.keys[k].partition, t, || witness(h, k as u32));
    }
}

fn witness(h: &History, k: u32) -> Anomaly {
    let ix = &h.index;
    let key = &h.keys[k as usize];
    let pname = &h.partitions[key.partition as usize];
    let enqueued = ix.enqueued[k as usize];
    let invoke = h.entries[enqueued as usize].partner;
    let drained = ix.drained_by[key.partition as usize] != NONE;
    let (fate, fate_json) = if key.sender == NONE {
        ("it was never sent".to_owned(), json!({"outcome": "never sent"}))
    } else {
        let done = h.entries[key.sender as usize].partner;
        let outcome = h.outcome(key.sender).map_or("never completed", OpType::as_str);
        let how = match h.outcome(key.sender) {
            Some(t) => format!("ended {} (op {done})", t.as_str()),
            None => "never completed".to_owned(),
        };
        (
            format!("its send by {} {how}", h.op_text(key.sender)),
            json!({
                "outcome": outcome,
                "send": h.op_json(key.sender),
                "completion": (done != NONE).then(|| h.op_json(done)),
            }),
        )
    };
    let unread = if drained {
        "no poll ever read it, and a complete final drain did not return it"
    } else {
        "no poll ever read it (no complete final drain covers the partition)"
    };
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::LostEnqueued,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} for {pname} was accepted into the producer's buffer by {}, \
             but no ok send acknowledged it and {unread}; {fate}",
            key.value,
            h.op_text(enqueued)
        ),
        witness: json!({
            "value": key.value,
            "enqueue": h.op_json(invoke),
            "enqueued": h.op_json(enqueued),
            "send": fate_json,
            "drained": drained,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_with, injected};

    #[test]
    fn finds_injected_lost_enqueued() {
        let f = injected(AnomalyKind::LostEnqueued, 4);
        assert_eq!(f.count(AnomalyKind::LostEnqueued), 4);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_lost_enqueued() {
        let f = clean_findings();
        assert_eq!(f.count(AnomalyKind::LostEnqueued), 0);
        assert!(!f.not_checked.iter().any(|n| n.starts_with("lost-enqueued")), "{:?}", f.not_checked);
    }

    const HISTORY: &str = concat!(
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"enqueue","value":{"records":{"t/0":[1]}}}
{"index":2,"time":3,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":0,"type":"ok","f":"enqueue","value":{"records":{"t/0":[2]}}}
{"index":4,"time":5,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[3]}}}
{"index":5,"time":6,"process":0,"type":"fail","f":"enqueue","value":{"records":{"t/0":[3]}},"error":"max.block.ms"}
{"index":6,"time":7,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[4]}}}
{"index":7,"time":8,"process":0,"type":"ok","f":"enqueue","value":{"records":{"t/0":[4]}}}
"#,
        r#"{"index":8,"time":9,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":9,"time":10,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":10,"time":11,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":11,"time":12,"process":0,"type":"info","f":"send","error":"producer killed"}
{"index":12,"time":13,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":13,"time":14,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
"#
    );

    /// Enqueued and acked (1): fine. Enqueued, send info, never read (2):
    /// lost. Enqueue failed (3): never promised. Enqueued, never sent (4):
    /// lost. Neither is a lost-write.
    #[test]
    fn enqueued_never_acked_nor_read_is_lost() {
        let f = findings_with(HISTORY, "producer-mode=fire-and-forget", None);
        assert_eq!(f.count(AnomalyKind::LostEnqueued), 2);
        assert_eq!(f.count(AnomalyKind::LostWrite), 0);
        let ex = f.examples(AnomalyKind::LostEnqueued);
        assert_eq!((ex[0].witness["value"].as_i64(), ex[1].witness["value"].as_i64()), (Some(2), Some(4)));
        assert_eq!(ex[0].witness["send"]["outcome"], "info");
        assert_eq!(ex[0].witness["send"]["completion"]["index"], 11);
        assert_eq!(ex[0].witness["enqueued"]["index"], 3);
        assert_eq!(ex[1].witness["send"]["outcome"], "never sent");
    }

    /// Outside fire-and-forget mode the analysis does not run, and says why.
    #[test]
    fn other_modes_are_not_checked() {
        let f = findings_with(HISTORY, "producer-mode=callback", None);
        assert_eq!(f.count(AnomalyKind::LostEnqueued), 0);
        assert!(
            f.not_checked.iter().any(|n| n.starts_with("lost-enqueued: producer-mode=callback")),
            "{:?}",
            f.not_checked
        );
    }
}
