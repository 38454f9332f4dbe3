//! `nonmonotonic-poll`: within one assignment, a process read an offset at or
//! below one it had already read, between polls or inside one poll. See
//! [`super::consumer`] for the rules on assignments and failed polls.

use serde_json::json;

use super::consumer::{self, Move};
use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::History;

pub fn check(h: &History, out: &mut Findings) {
    consumer::walk(h, |m| {
        if m.backwards {
            out.report(AnomalyKind::NonmonotonicPoll, Some(m.partition), || witness(h, m));
        }
    });
}

fn witness(h: &History, m: Move) -> Anomaly {
    let pname = &h.partitions[m.partition as usize];
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::NonmonotonicPoll,
        partition: Some(pname.clone()),
        explanation: format!(
            "process {} read {pname} offset {} (op {}) after offset {} (op {}) without a new assignment",
            h.processes[m.process as usize], m.to.0, m.to.1, m.from.0, m.from.1
        ),
        witness: json!({
            "from": {"offset": m.from.0, "op": h.op_json(m.from.1)},
            "to": {"offset": m.to.0, "op": h.op_json(m.to.1)},
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_nonmonotonic_polls() {
        let f = injected(AnomalyKind::NonmonotonicPoll, 3);
        assert_eq!(f.count(AnomalyKind::NonmonotonicPoll), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_nonmonotonic_poll() {
        assert_eq!(clean_findings().count(AnomalyKind::NonmonotonicPoll), 0);
    }

    /// Re-reading an offset is nonmonotonic; a failed poll in between does
    /// not move the position.
    #[test]
    fn reread_after_failed_poll() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1,2]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1],[1,2]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
{"index":4,"time":5,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":5,"time":6,"process":1,"type":"fail","f":"poll","error":"network"}
{"index":6,"time":7,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":7,"time":8,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[1,2],[1,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::NonmonotonicPoll), 1);
        assert_eq!(f.count(AnomalyKind::PollSkip), 0);
    }
}
