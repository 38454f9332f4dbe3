//! `lost-unacknowledged`: under `acks=0`, a record the producer sent that
//! never reached the log. No broker answers an acks=0 produce request, so
//! every such send is `info`; the application (and Kafka's client, whose
//! callback reports success with offset -1) counts it as sent once it is
//! written to the socket. A complete final drain of its partition that does
//! not return the value proves it is gone: lost with a leader that died
//! before replicating it, or with a connection that broke.
//!
//! Kafka promises nothing here ("acks=0: nothing was acknowledged"), so the
//! type is always permitted; it is reported with counts so users see what
//! `acks=0` costs under their faults. A value some poll read, or an ok send
//! acknowledged, belongs to [`super::lost_write`] instead; a send that
//! failed definitely told the application. Checked only with `acks=0`: with
//! acknowledgements, an `info` send that left no record may simply have
//! failed.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::guarantees::{Acks, Guarantees};
use crate::history::{History, NONE};
use crate::op::OpType;

/// Whether the run's sends were acks=0, the only setting under which an
/// unanswered send counts as done.
pub fn applies(g: &Guarantees) -> bool {
    g.acks == Acks::Zero
}

/// `enqueued_counted`: lost-enqueued ran (fire-and-forget), and counts
/// the records that went through the buffer, so they are not counted here
/// again.
pub fn check(h: &History, enqueued_counted: bool, out: &mut Findings) {
    let ix = &h.index;
    for (k, key) in h.keys.iter().enumerate() {
        let drained = ix.drained_by[key.partition as usize] != NONE;
        if key.sender == NONE || !drained || ix.ack_op[k] != NONE || ix.first_read[k] != NONE {
            continue;
        }
        if enqueued_counted && ix.enqueued[k] != NONE {
            continue;
        }
        if h.outcome(key.sender) == Some(OpType::Fail) {
            continue;
        }
        let t = h.entries[key.sender as usize].time_ns;
        out.report_at(AnomalyKind::LostUnacknowledged, key.partition, t, || witness(h, k as u32));
    }
}

fn witness(h: &History, k: u32) -> Anomaly {
    let key = &h.keys[k as usize];
    let pname = &h.partitions[key.partition as usize];
    let drain = h.index.drained_by[key.partition as usize];
    let done = h.entries[key.sender as usize].partner;
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::LostUnacknowledged,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} for {pname} was sent with acks=0 by {}, and the complete final drain (op {drain}) \
             did not return it: nothing acknowledged it, and it never reached the log",
            key.value,
            h.op_text(key.sender)
        ),
        witness: json!({
            "value": key.value,
            "send": h.op_json(key.sender),
            "completion": (done != NONE).then(|| h.op_json(done)),
            "drain": h.op_json(drain),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_with};

    const HISTORY: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"info","f":"send","error":"acks=0"}
{"index":2,"time":3,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":0,"type":"info","f":"send","error":"acks=0"}
{"index":4,"time":5,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[3]}}}
{"index":5,"time":6,"process":0,"type":"fail","f":"send","error":"connection refused"}
{"index":6,"time":7,"process":9,"type":"invoke","f":"drain","value":{"targets":{"t/0":1}},"final":true}
{"index":7,"time":8,"process":10,"type":"invoke","f":"poll","value":{},"final":true}
{"index":8,"time":9,"process":10,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}},"final":true}
{"index":9,"time":10,"process":9,"type":"ok","f":"drain","value":{"complete":{"t/0":true}},"final":true}
"#;

    /// Sent and drained (1): fine. Sent, info, not in the complete drain
    /// (2): lost, and permitted. Failed definitely (3): the application knew.
    #[test]
    fn finds_a_record_sent_with_acks_0_missing_from_the_drain() {
        let f = findings_with(HISTORY, "acks=0", None);
        assert_eq!(f.count(AnomalyKind::LostUnacknowledged), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
        let ex = &f.examples(AnomalyKind::LostUnacknowledged)[0];
        assert_eq!(ex.witness["value"].as_i64(), Some(2));
        assert_eq!(ex.witness["completion"]["index"], 3);
        assert_eq!(f.count(AnomalyKind::LostWrite), 0);
    }

    /// A fire-and-forget producer's record at acks=0 is lost-enqueued's to
    /// count, not counted twice.
    #[test]
    fn an_enqueued_record_is_counted_once() {
        let with_enqueue = format!(
            "{}{}",
            concat!(
                r#"{"index":0,"time":0,"process":5,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[2]}}}"#,
                "\n",
                r#"{"index":1,"time":0,"process":5,"type":"ok","f":"enqueue","value":{"records":{"t/0":[2]}}}"#,
                "\n"
            ),
            renumber(HISTORY, 2)
        );
        let f = findings_with(&with_enqueue, "acks=0,producer-mode=fire-and-forget", None);
        assert_eq!(
            (f.count(AnomalyKind::LostEnqueued), f.count(AnomalyKind::LostUnacknowledged)),
            (1, 0),
            "{:?}",
            f.kinds.keys().collect::<Vec<_>>()
        );
        let f = findings_with(&with_enqueue, "acks=0,producer-mode=callback", None);
        assert_eq!(f.count(AnomalyKind::LostUnacknowledged), 1);
    }

    /// The history's lines with their indices moved up by `by`.
    fn renumber(history: &str, by: u64) -> String {
        history
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let i = v["index"].as_u64().unwrap();
                format!("{}\n", l.replacen(&format!("\"index\":{i},"), &format!("\"index\":{},", i + by), 1))
            })
            .collect()
    }

    /// With acknowledgements the same history proves nothing.
    #[test]
    fn is_checked_only_with_acks_0() {
        let f = findings_with(HISTORY, "acks=all", None);
        assert_eq!(f.count(AnomalyKind::LostUnacknowledged), 0);
    }

    /// A clean acks=0 history: every unacknowledged send is in the drain.
    #[test]
    fn clean_history_has_no_lost_unacknowledged() {
        let clean = HISTORY.replace(r#"[[0,1]]"#, r#"[[0,1],[1,2]]"#);
        let f = findings_with(&clean, "acks=0", None);
        assert_eq!(f.count(AnomalyKind::LostUnacknowledged), 0);
        assert_eq!(clean_findings().count(AnomalyKind::LostUnacknowledged), 0);
    }
}
