//! `poll-skip`: within one assignment, a process's polls jumped over offsets
//! that other reads or acks show exist, between polls or inside one poll.
//! See [`super::consumer`] for the rules on assignments and failed polls.

use serde_json::json;

use super::consumer::{self, Move};
use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::History;

/// Skipped offsets listed per witness.
const SKIPPED_PER_WITNESS_MAX: usize = 8;

pub fn check(h: &History, out: &mut Findings) {
    consumer::walk(h, |m| {
        if !m.backwards {
            out.report(AnomalyKind::PollSkip, Some(m.partition), || witness(h, m));
        }
    });
}

fn witness(h: &History, m: Move) -> Anomaly {
    let pname = &h.partitions[m.partition as usize];
    let skipped_obs = consumer::between(h, m.partition, m.from.0, m.to.0);
    let mut skipped = Vec::new();
    for g in skipped_obs.chunk_by(|a, b| a.offset == b.offset).take(SKIPPED_PER_WITNESS_MAX) {
        skipped.push(
            json!({"offset": g[0].offset, "value": h.keys[g[0].key as usize].value, "seen_by": h.op_json(g[0].op)}),
        );
    }
    let first = &skipped_obs[0];
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::PollSkip,
        partition: Some(pname.clone()),
        explanation: format!(
            "process {} jumped from {pname} offset {} (op {}) to offset {} (op {}), \
             skipping offset {} (value {}, seen by op {})",
            h.processes[m.process as usize],
            m.from.0,
            m.from.1,
            m.to.0,
            m.to.1,
            first.offset,
            h.keys[first.key as usize].value,
            first.op
        ),
        witness: json!({
            "from": {"offset": m.from.0, "op": h.op_json(m.from.1)},
            "to": {"offset": m.to.0, "op": h.op_json(m.to.1)},
            "skipped": skipped,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_poll_skips() {
        let f = injected(AnomalyKind::PollSkip, 3);
        assert_eq!(f.count(AnomalyKind::PollSkip), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_poll_skip() {
        assert_eq!(clean_findings().count(AnomalyKind::PollSkip), 0);
    }

    /// A gap inside one poll is a skip; a gap nobody saw filled is not; a
    /// reassignment resets the position.
    #[test]
    fn gaps_inside_polls_and_reassignment() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1,2,3]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1],[1,2],[2,3]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1],[2,3]]}}}
{"index":4,"time":5,"process":2,"type":"invoke","f":"poll","value":{}}
{"index":5,"time":6,"process":2,"type":"ok","f":"poll","value":{"records":{"t/0":[[2,3]]}}}
{"index":6,"time":7,"process":2,"type":"invoke","f":"assign","value":{"partitions":["t/0"],"seek":"beginning"}}
{"index":7,"time":8,"process":2,"type":"ok","f":"assign"}
{"index":8,"time":9,"process":2,"type":"invoke","f":"poll","value":{}}
{"index":9,"time":10,"process":2,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1],[1,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::PollSkip), 1);
        assert_eq!(f.count(AnomalyKind::NonmonotonicPoll), 0);
        let w = &f.examples(AnomalyKind::PollSkip)[0].witness;
        assert_eq!(w["skipped"][0]["offset"], 1);
    }
}
