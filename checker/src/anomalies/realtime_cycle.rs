//! `realtime-cycle`: a send acknowledged before another send was invoked
//! ended up at a higher offset than it, directly or through other values:
//! the log's order contradicts real time. The graph and its cycles come from
//! [`super::cycles`]; this file reports the components whose shortest cycle
//! needs a real-time edge.

use super::cycles::CycleReport;
use crate::anomaly::{AnomalyKind, Findings};

pub fn check(report: &CycleReport, out: &mut Findings) {
    for c in report.cycles.iter().filter(|c| c.kind == AnomalyKind::RealtimeCycle) {
        out.report(AnomalyKind::RealtimeCycle, Some(c.partition), || c.anomaly.clone());
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_realtime_cycles() {
        let f = injected(AnomalyKind::RealtimeCycle, 3);
        assert_eq!(f.count(AnomalyKind::RealtimeCycle), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_realtime_cycle() {
        assert_eq!(clean_findings().count(AnomalyKind::RealtimeCycle), 0);
    }

    /// Value 1 is acked at offset 1 before value 2's send starts, yet 2 lands
    /// at offset 0. Overlapping sends in either order are fine.
    #[test]
    fn later_send_at_lower_offset() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[1,1]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":1,"type":"ok","f":"send","value":{"records":{"t/0":[[0,2]]}}}
{"index":4,"time":5,"process":2,"type":"invoke","f":"send","value":{"records":{"t/0":[3]}}}
{"index":5,"time":6,"process":3,"type":"invoke","f":"send","value":{"records":{"t/0":[4]}}}
{"index":6,"time":7,"process":2,"type":"ok","f":"send","value":{"records":{"t/0":[[3,3]]}}}
{"index":7,"time":8,"process":3,"type":"ok","f":"send","value":{"records":{"t/0":[[2,4]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::RealtimeCycle), 1);
        let w = &f.examples(AnomalyKind::RealtimeCycle)[0].witness;
        assert_eq!(w["cycle"].as_array().map(Vec::len), Some(2));
    }
}
