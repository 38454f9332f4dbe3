//! `duplicate-processing`: one value of a partition in more than one sink
//! row, i.e. processed into the downstream sink twice or more.
//!
//! At-least-once consumers (auto-commit, or commit after processing)
//! redeliver records processed but not yet committed after a crash or
//! rebalance (`docs/semantics.md` R5.4, R5.5, R5.7), and duplicates already
//! in the log reach the sink too. A plain sink keeps every delivery; an
//! idempotent one must absorb them. So the type is permitted only with a
//! plain sink under at-least-once commits, or when the log itself may hold
//! duplicates (see [`crate::guarantees::Guarantees::permits`]).

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Kind, NONE};
use crate::op::OpType;
use crate::sink::{Sink, SinkRow};

/// Rows and process ops listed per witness; a value processed a thousand
/// times needs no thousand-entry witness.
const ROWS_PER_WITNESS_MAX: usize = 8;

pub fn check(h: &History, sink: &Sink, out: &mut Findings) {
    let rows = sink.rows();
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        let (a, b) = (&rows[a as usize], &rows[b as usize]);
        (a.partition, &a.value, a.slot, a.offset).cmp(&(b.partition, &b.value, b.slot, b.offset))
    });
    let same = |a: &u32, b: &u32| {
        let (a, b) = (&rows[*a as usize], &rows[*b as usize]);
        a.partition == b.partition && a.value == b.value
    };
    for group in order.chunk_by(same).filter(|g| g.len() > 1) {
        let first = &rows[group[0] as usize];
        let partition = h.partition_id(sink.partition_name(first.partition));
        out.report(AnomalyKind::DuplicateProcessing, partition, || witness(h, sink, group));
    }
}

/// Only built for kept examples: one scan of the history's process ops.
fn witness(h: &History, sink: &Sink, group: &[u32]) -> Anomaly {
    let rows: Vec<&SinkRow> = group.iter().map(|&r| &sink.rows()[r as usize]).collect();
    let pname = sink.partition_name(rows[0].partition);
    let value = &rows[0].value;
    let key = h.partition_id(pname).and_then(|p| h.key_id(p, value));
    // Ok process completions whose invoke named the value.
    let writers: Vec<u32> = match key {
        None => Vec::new(),
        Some(k) => h
            .entries
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                e.kind == Kind::Process
                    && e.op_type == OpType::Invoke
                    && e.partner != NONE
                    && h.outcome(*i as u32) == Some(OpType::Ok)
                    && h.recs(*i as u32).iter().any(|r| r.key == k)
            })
            .map(|(_, e)| e.partner)
            .take(ROWS_PER_WITNESS_MAX)
            .collect(),
    };
    let mut offsets: Vec<u64> = rows.iter().map(|r| r.offset).collect();
    offsets.sort_unstable();
    offsets.dedup();
    let shown: Vec<String> =
        rows.iter().take(ROWS_PER_WITNESS_MAX).map(|r| format!("slot {} offset {}", r.slot, r.offset)).collect();
    let by = match writers.as_slice() {
        [] => String::new(),
        ws => format!("; processed ok by {}", ws.iter().map(|&w| h.op_text(w)).collect::<Vec<_>>().join(", ")),
    };
    let log_dup =
        if offsets.len() > 1 { format!(" (the log holds it at {} offsets)", offsets.len()) } else { String::new() };
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::DuplicateProcessing,
        partition: Some(pname.to_owned()),
        explanation: format!(
            "value {value} of {pname} is in the sink {} times: {}{log_dup}{by}",
            rows.len(),
            shown.join(", ")
        ),
        witness: json!({
            "value": value,
            "row_count": rows.len(),
            "rows": rows
                .iter()
                .take(ROWS_PER_WITNESS_MAX)
                .map(|r| json!({"slot": r.slot, "offset": r.offset}))
                .collect::<Vec<_>>(),
            "distinct_offsets": offsets.len(),
            "process_ops": writers.iter().map(|&w| h.op_json(w)).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_with, injected};

    #[test]
    fn finds_injected_duplicate_processing() {
        let f = injected(AnomalyKind::DuplicateProcessing, 3);
        assert_eq!(f.count(AnomalyKind::DuplicateProcessing), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_duplicate_processing() {
        let f = clean_findings();
        assert_eq!(f.count(AnomalyKind::DuplicateProcessing), 0);
        assert!(!f.not_checked.iter().any(|n| n.starts_with("duplicate-processing")), "{:?}", f.not_checked);
    }

    /// Value 1 processed by two consumers (a redelivery after a crash) is a
    /// duplicate; value 2 in one row, and value 1 of another partition, are
    /// not.
    #[test]
    fn one_value_in_two_rows_is_a_duplicate() {
        let history = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1,2]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1],[1,2]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":3,"time":4,"process":1,"type":"ok","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":4,"time":5,"process":5,"type":"invoke","f":"process","value":{"records":{"t/0":[[0,1],[1,2]]}}}
{"index":5,"time":6,"process":5,"type":"ok","f":"process","value":{"records":{"t/0":[[0,1],[1,2]]}}}
"#;
        let sink = r#"{"slot":0,"partition":"t/0","offset":0,"value":1}
{"slot":0,"partition":"t/0","offset":0,"value":1}
{"slot":0,"partition":"t/0","offset":1,"value":2}
{"slot":1,"partition":"t/1","offset":0,"value":1}
"#;
        let f = findings_with(history, "", Some(sink));
        assert_eq!(f.count(AnomalyKind::DuplicateProcessing), 1);
        let w = &f.examples(AnomalyKind::DuplicateProcessing)[0].witness;
        assert_eq!((w["value"].as_i64(), w["row_count"].as_u64()), (Some(1), Some(2)));
        assert_eq!(w["rows"][0]["slot"], 0);
        assert_eq!(w["process_ops"].as_array().map(Vec::len), Some(2));
        assert_eq!(w["process_ops"][1]["index"], 5);
    }
}
