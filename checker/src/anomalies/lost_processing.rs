//! `lost-processing`: a record in the log that the consumer group committed
//! past but never processed into its sink. The consumer-side loss of
//! `docs/semantics.md` §5 and §8.3.
//!
//! Per partition, let C be the highest offset of any ok `commit` outside the
//! final drain: the group committed past every offset below C. A record
//! `(o, v)` returned by an ok poll of the final drain (so it is in the log),
//! with `o < C`, whose value `v` is in no sink row of that partition, was lost
//! to processing: a restarted consumer resumes at the committed offset and
//! never sees it again.
//!
//! Permitted by auto-commit with queue hand-off (C2), commit before
//! processing (C4), skipping records the sink refused, and unclean elections
//! (offsets reused under the committed position); a violation with C1 and C3
//! (§9 rule 9). See [`crate::guarantees::Guarantees::permits`].

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Kind, NONE};
use crate::op::OpType;
use crate::sink::Sink;

/// Process ops listed per witness.
const PROCESS_OPS_PER_WITNESS_MAX: usize = 8;

/// `Err(reason)` when the run left nothing to check: no final drain read the
/// log, so what the group should have processed is unknown.
pub fn precondition(h: &History) -> Result<(), String> {
    let drained = h.entries.iter().any(|e| e.kind == Kind::Poll && e.op_type == OpType::Ok && e.is_final);
    if drained { Ok(()) } else { Err("lost-processing: no ok poll of a final drain read the log".to_owned()) }
}

pub fn check(h: &History, sink: &Sink, out: &mut Findings) {
    let ix = &h.index;
    let in_sink = keys_in_sink(h, sink);
    let mut seen = vec![false; h.keys.len()];
    for (i, e) in h.entries.iter().enumerate() {
        if e.kind != Kind::Poll || e.op_type != OpType::Ok || !e.is_final {
            continue;
        }
        for r in h.recs(i as u32) {
            let k = r.key as usize;
            if seen[k] || in_sink[k] {
                continue;
            }
            let Some((committed, _)) = ix.committed[r.partition as usize] else { continue };
            if r.offset >= committed {
                continue;
            }
            seen[k] = true;
            out.report(AnomalyKind::LostProcessing, Some(r.partition), || witness(h, r.key, r.offset, i as u32));
        }
    }
}

/// Per history key: whether some sink row holds it.
fn keys_in_sink(h: &History, sink: &Sink) -> Vec<bool> {
    let parts: Vec<Option<u32>> = sink.partitions().iter().map(|p| h.partition_id(p)).collect();
    let mut in_sink = vec![false; h.keys.len()];
    for row in sink.rows() {
        if let Some(p) = parts[row.partition as usize]
            && let Some(k) = h.key_id(p, &row.value)
        {
            in_sink[k as usize] = true;
        }
    }
    in_sink
}

/// The first ok commit (completion, in history order) that committed
/// `partition` past `offset`, with the offset it committed.
fn first_commit_past(h: &History, partition: u32, offset: u64) -> Option<(u32, u64)> {
    let mut best: Option<(u32, u64)> = None;
    for c in &h.commits {
        let done = h.entries[c.invoke as usize].partner;
        if done == NONE || h.entries[c.invoke as usize].is_final {
            continue;
        }
        let e = &h.entries[done as usize];
        if e.op_type != OpType::Ok || e.is_final {
            continue;
        }
        let past = c.offsets.iter().find(|&&(p, o)| p == partition && o > offset);
        if let Some(&(_, o)) = past
            && best.is_none_or(|b| done < b.0)
        {
            best = Some((done, o));
        }
    }
    best
}

/// Only built for kept examples: a few scans of the history.
fn witness(h: &History, k: u32, offset: u64, final_read: u32) -> Anomaly {
    let key = &h.keys[k as usize];
    let pname = &h.partitions[key.partition as usize];
    let (commit, committed) = first_commit_past(h, key.partition, offset).expect("a commit past the offset exists");
    let delivered = h.entries.iter().enumerate().find_map(|(i, e)| {
        let poll = e.kind == Kind::Poll && e.op_type == OpType::Ok && !e.is_final;
        (poll && h.recs(i as u32).iter().any(|r| r.key == k)).then_some(i as u32)
    });
    // Process invokes naming it that did not complete ok: fail, info, or
    // never completed.
    let attempts: Vec<u32> = h
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            e.kind == Kind::Process
                && e.op_type == OpType::Invoke
                && h.outcome(*i as u32) != Some(OpType::Ok)
                && h.recs(*i as u32).iter().any(|r| r.key == k)
        })
        .map(|(i, _)| i as u32)
        .take(PROCESS_OPS_PER_WITNESS_MAX)
        .collect();
    let delivered_text = match delivered {
        Some(d) => format!("it was delivered to {}", h.op_text(d)),
        None => "no consumer poll outside the final drain returned it".to_owned(),
    };
    let attempts_text = match attempts.first() {
        Some(&a) => {
            let outcome = h.outcome(a).map_or("never completed", OpType::as_str);
            format!("; processing it by {} ended {outcome}", h.op_text(a))
        }
        None => String::new(),
    };
    let attempts_json: Vec<_> = attempts
        .iter()
        .map(|&a| {
            let done = h.entries[a as usize].partner;
            json!({
                "invoke": h.op_json(a),
                "outcome": h.outcome(a).map_or("never completed", OpType::as_str),
                "completion": (done != NONE).then(|| h.op_json(done)),
            })
        })
        .collect();
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::LostProcessing,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} at {pname} offset {offset} is in the log (final drain {}) and the group committed past it \
             (offset {committed} by {}), but it is not in the sink; {delivered_text}{attempts_text}",
            key.value,
            h.op_text(final_read),
            h.op_text(commit)
        ),
        witness: json!({
            "value": key.value,
            "offset": offset,
            "commit": {"offset": committed, "op": h.op_json(commit)},
            "delivered_by": delivered.map(|d| h.op_json(d)),
            "process_attempts": attempts_json,
            "final_read": h.op_json(final_read),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_with, injected};

    #[test]
    fn finds_injected_lost_processing() {
        let f = injected(AnomalyKind::LostProcessing, 3);
        assert_eq!(f.count(AnomalyKind::LostProcessing), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_lost_processing() {
        let f = clean_findings();
        assert_eq!(f.count(AnomalyKind::LostProcessing), 0);
        assert!(!f.not_checked.iter().any(|n| n.starts_with("lost-processing")), "{:?}", f.not_checked);
    }

    /// Values 1..=3 at offsets 0..=2. The group processed 1, failed to
    /// process 2 (the sink refused), and committed offset 2; 3 was never
    /// committed. Only 2 is lost.
    const HISTORY: &str = concat!(
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1,2,3]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1],[1,2],[2,3]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1],[1,2]]}}}
{"index":4,"time":5,"process":1,"type":"invoke","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":5,"time":6,"process":1,"type":"ok","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":6,"time":7,"process":1,"type":"invoke","f":"process","value":{"records":{"t/0":[[1,2]]}}}
{"index":7,"time":8,"process":1,"type":"fail","f":"process","value":{"records":{"t/0":[[1,2]]}},"#,
        r#""error":"database is locked"}
{"index":8,"time":9,"process":1,"type":"invoke","f":"commit","value":{"group":"g","offsets":{"t/0":2}}}
{"index":9,"time":10,"process":1,"type":"ok","f":"commit"}
{"index":10,"time":11,"process":2,"type":"invoke","f":"drain","value":{"targets":{"t/0":3}},"final":true}
{"index":11,"time":12,"process":3,"type":"invoke","f":"poll","value":{},"final":true}
{"index":12,"time":13,"process":3,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1],[1,2],[2,3]]}},"final":true}
{"index":13,"time":14,"process":2,"type":"ok","f":"drain","value":{"complete":{"t/0":true}},"final":true}
"#
    );
    const SINK: &str = r#"{"slot":0,"partition":"t/0","offset":0,"value":1}"#;

    #[test]
    fn committed_past_but_not_in_sink_is_lost() {
        let f = findings_with(HISTORY, "", Some(SINK));
        assert_eq!(f.count(AnomalyKind::LostProcessing), 1);
        let w = &f.examples(AnomalyKind::LostProcessing)[0].witness;
        assert_eq!((w["value"].as_i64(), w["offset"].as_u64()), (Some(2), Some(1)));
        assert_eq!(w["commit"]["offset"], 2);
        assert_eq!(w["commit"]["op"]["index"], 9);
        assert_eq!(w["delivered_by"]["index"], 3);
        assert_eq!(w["process_attempts"][0]["outcome"], "fail");
        assert_eq!(w["final_read"]["index"], 12);
        // With the record in the sink (another slot), nothing is lost.
        let sink = format!("{SINK}\n{}", r#"{"slot":1,"partition":"t/0","offset":1,"value":2}"#);
        assert_eq!(findings_with(HISTORY, "", Some(&sink)).count(AnomalyKind::LostProcessing), 0);
    }

    /// Without a sink, or with sink-mode=none, the analysis says why it did
    /// not run.
    #[test]
    fn needs_a_sink() {
        let f = findings_with(HISTORY, "", None);
        assert!(f.not_checked.iter().any(|n| n.starts_with("lost-processing: no sink.jsonl")), "{:?}", f.not_checked);
        let f = findings_with(HISTORY, "sink-mode=none", Some(SINK));
        assert_eq!(f.count(AnomalyKind::LostProcessing), 0);
        assert!(f.not_checked.iter().any(|n| n.starts_with("lost-processing: sink-mode=none")), "{:?}", f.not_checked);
    }
}
