//! `phantom-read`: an ok poll returned a value that no send ever named in
//! that partition. Values are unique and all come from the workload, so the
//! broker invented or misrouted it.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, NONE};

pub fn check(h: &History, out: &mut Findings) {
    let ix = &h.index;
    for (k, key) in h.keys.iter().enumerate() {
        let read = ix.first_read[k];
        if read == NONE || key.sender != NONE {
            continue;
        }
        out.report(AnomalyKind::PhantomRead, Some(key.partition), || {
            let pname = &h.partitions[key.partition as usize];
            let offset = h.recs(read).iter().find(|r| r.key == k as u32).map(|r| r.offset);
            Anomaly {
                faults: Vec::new(),
                kind: AnomalyKind::PhantomRead,
                partition: Some(pname.clone()),
                explanation: format!(
                    "value {} was read at {pname} offset {} by {}, but no send ever named it",
                    key.value,
                    offset.unwrap_or_default(),
                    h.op_text(read)
                ),
                witness: json!({"value": key.value, "offset": offset, "read": h.op_json(read)}),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_phantom_reads() {
        let f = injected(AnomalyKind::PhantomRead, 3);
        assert_eq!(f.count(AnomalyKind::PhantomRead), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_phantom_read() {
        assert_eq!(clean_findings().count(AnomalyKind::PhantomRead), 0);
    }

    /// A value sent to another partition is a phantom here.
    #[test]
    fn value_of_another_partition_is_a_phantom() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/1":[1]}}}
{"index":1,"time":2,"process":0,"type":"info","f":"send"}
{"index":2,"time":5,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":6,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::PhantomRead), 1);
    }
}
