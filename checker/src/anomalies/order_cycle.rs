//! `order-cycle`: the values of a partition cannot be put in one order that
//! agrees with every poll's and ack's offset order, without help from real
//! time. The graph and its cycles come from [`super::cycles`]; this file
//! reports the components whose shortest cycle uses no real-time edge.

use super::cycles::CycleReport;
use crate::anomaly::{AnomalyKind, Findings};

pub fn check(report: &CycleReport, out: &mut Findings) {
    for c in report.cycles.iter().filter(|c| c.kind == AnomalyKind::OrderCycle) {
        out.report(AnomalyKind::OrderCycle, Some(c.partition), || c.anomaly.clone());
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::generator::implied_by;
    use crate::testing::{clean_findings, findings_of, injected};

    /// Injected batch reorderings form order cycles; the only other type is
    /// the nonmonotonic send a reordered batch implies.
    #[test]
    fn finds_injected_order_cycles() {
        let f = injected(AnomalyKind::OrderCycle, 2);
        assert_eq!(f.count(AnomalyKind::OrderCycle), 2);
        for k in f.kinds.keys() {
            assert!(*k == AnomalyKind::OrderCycle || implied_by(AnomalyKind::OrderCycle).contains(k), "{k}");
        }
    }

    #[test]
    fn clean_history_has_no_order_cycle() {
        assert_eq!(clean_findings().count(AnomalyKind::OrderCycle), 0);
    }

    /// An ack lists 1 before 2, a poll shows 2 below 1: a two-value cycle.
    #[test]
    fn ack_order_against_offsets() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1,2]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[1,1],[0,2]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,2],[1,1]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::OrderCycle), 1);
        assert_eq!(f.examples(AnomalyKind::OrderCycle)[0].witness["cycle"].as_array().map(Vec::len), Some(2));
        assert_eq!(f.count(AnomalyKind::RealtimeCycle), 0);
    }

    /// One strongly connected component of 100 000 values: kosaraju is
    /// iterative, so no stack overflow, and a two-value cycle is reported.
    #[test]
    fn long_chain_component() {
        const N: u64 = 100_000;
        let values: Vec<String> = (0..N).map(|v| v.to_string()).collect();
        let acked: Vec<String> = (0..N).map(|v| format!("[{v},{v}]")).collect();
        let reversed: Vec<String> = (0..N).rev().map(|v| format!("[{v},{v}]")).collect();
        let h = format!(
            "{{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\
             \"value\":{{\"records\":{{\"t/0\":[{}]}}}}}}\n\
             {{\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"send\",\
             \"value\":{{\"records\":{{\"t/0\":[{}]}}}}}}\n\
             {{\"index\":2,\"time\":3,\"process\":1,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{{}}}}\n\
             {{\"index\":3,\"time\":4,\"process\":1,\"type\":\"ok\",\"f\":\"poll\",\
             \"value\":{{\"records\":{{\"t/0\":[{}]}}}}}}\n",
            values.join(","),
            acked.join(","),
            reversed.join(",")
        );
        let f = findings_of(&h);
        assert_eq!(f.count(AnomalyKind::OrderCycle), 1);
        let w = &f.examples(AnomalyKind::OrderCycle)[0].witness;
        assert_eq!(w["component_values"], N);
        assert_eq!(w["cycle"].as_array().map(Vec::len), Some(2));
    }
}
