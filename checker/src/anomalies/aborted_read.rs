//! `aborted-read`: an ok poll returned a value whose send definitely failed
//! (Jepsen's G1a, kafka.clj L1001-1018). Only `fail` counts: an `info` send
//! may well have been appended.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, NONE};
use crate::op::OpType;

pub fn check(h: &History, out: &mut Findings) {
    let ix = &h.index;
    for (k, key) in h.keys.iter().enumerate() {
        let read = ix.first_read[k];
        // Another, acknowledged send of the same value (a non-unique send,
        // already warned about) could explain the read.
        if read == NONE || key.sender == NONE || ix.ack_op[k] != NONE {
            continue;
        }
        if h.outcome(key.sender) != Some(OpType::Fail) {
            continue;
        }
        out.report(AnomalyKind::AbortedRead, Some(key.partition), || {
            let pname = &h.partitions[key.partition as usize];
            let fail = h.entries[key.sender as usize].partner;
            Anomaly {
                faults: Vec::new(),
                kind: AnomalyKind::AbortedRead,
                partition: Some(pname.clone()),
                explanation: format!(
                    "value {} of {pname} was read by {} although its send by {} failed definitely (op {fail})",
                    key.value,
                    h.op_text(read),
                    h.op_text(key.sender)
                ),
                witness: json!({
                    "value": key.value,
                    "send": h.op_json(key.sender),
                    "fail": h.op_json(fail),
                    "read": h.op_json(read),
                }),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_aborted_reads() {
        let f = injected(AnomalyKind::AbortedRead, 2);
        assert_eq!(f.count(AnomalyKind::AbortedRead), 2);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_aborted_read() {
        assert_eq!(clean_findings().count(AnomalyKind::AbortedRead), 0);
    }

    /// A read of a failed send is aborted; a read of an info send is not.
    #[test]
    fn fail_read_is_aborted_info_read_is_not() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"fail","f":"send","error":"not enough replicas"}
{"index":2,"time":3,"process":2,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":2,"type":"info","f":"send","error":"timeout"}
{"index":4,"time":5,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":5,"time":6,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1],[1,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::AbortedRead), 1);
        assert_eq!(f.examples(AnomalyKind::AbortedRead)[0].witness["value"], 1);
    }
}
