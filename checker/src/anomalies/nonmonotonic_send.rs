//! `nonmonotonic-send`: one process's successive ok sends to a partition got
//! non-increasing offsets, across ops or between the records of one batch
//! (Jepsen's `nonmonotonic-send` and `int-nonmonotonic-send`, kafka.clj
//! L1230-1265, L1375-1453). A process has one send in flight at a time, so
//! its sends must land in order unless retries reorder them (idempotence off,
//! max in-flight > 1) or a truncation reused offsets.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Kind, NO_OFFSET};
use crate::op::OpType;
use crate::util::FxHashMap;

/// The last acknowledged send of a process to a partition.
#[derive(Clone, Copy)]
struct Last {
    offset: u64,
    key: u32,
    op: u32,
}

pub fn check(h: &History, out: &mut Findings) {
    let mut last: FxHashMap<(u32, u32), Last> = FxHashMap::default();
    for (i, e) in h.entries.iter().enumerate() {
        if e.kind != Kind::Send || e.op_type != OpType::Ok {
            continue;
        }
        let i = i as u32;
        for r in h.recs(i) {
            if r.offset == NO_OFFSET {
                continue;
            }
            let now = Last { offset: r.offset, key: r.key, op: i };
            if let Some(prev) = last.insert((e.process, r.partition), now)
                && r.offset <= prev.offset
            {
                out.report(AnomalyKind::NonmonotonicSend, Some(r.partition), || witness(h, prev, now));
            }
        }
    }
}

fn witness(h: &History, prev: Last, now: Last) -> Anomaly {
    let k = &h.keys[now.key as usize];
    let pname = &h.partitions[k.partition as usize];
    let pk = &h.keys[prev.key as usize];
    let where_ = if prev.op == now.op {
        format!("in one batch acked to {}", h.op_text(now.op))
    } else {
        format!("by {}, after value {} got offset {} (op {})", h.op_text(now.op), pk.value, prev.offset, prev.op)
    };
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::NonmonotonicSend,
        partition: Some(pname.clone()),
        explanation: format!(
            "value {} sent to {pname} got offset {} {where_}{}",
            k.value,
            now.offset,
            if prev.op == now.op {
                format!(", after value {} at offset {}", pk.value, prev.offset)
            } else {
                String::new()
            }
        ),
        witness: json!({
            "previous": {"value": pk.value, "offset": prev.offset, "op": h.op_json(prev.op)},
            "next": {"value": k.value, "offset": now.offset, "op": h.op_json(now.op)},
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::generator::implied_by;
    use crate::testing::{clean_findings, findings_of, injected};

    /// Injected reorderings are found; the only other type is the realtime
    /// cycle a reordering of sequential sends always implies.
    #[test]
    fn finds_injected_nonmonotonic_sends() {
        let f = injected(AnomalyKind::NonmonotonicSend, 3);
        assert_eq!(f.count(AnomalyKind::NonmonotonicSend), 3);
        for k in f.kinds.keys() {
            assert!(
                *k == AnomalyKind::NonmonotonicSend || implied_by(AnomalyKind::NonmonotonicSend).contains(k),
                "{k}"
            );
        }
    }

    #[test]
    fn clean_history_has_no_nonmonotonic_send() {
        assert_eq!(clean_findings().count(AnomalyKind::NonmonotonicSend), 0);
    }

    /// Offsets 5 then 3 from one process; other processes may interleave.
    #[test]
    fn backwards_offsets_from_one_process() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[5,1]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"send","value":{"records":{"t/0":[9]}}}
{"index":3,"time":4,"process":1,"type":"ok","f":"send","value":{"records":{"t/0":[[4,9]]}}}
{"index":4,"time":5,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":5,"time":6,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[3,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::NonmonotonicSend), 1);
        let w = &f.examples(AnomalyKind::NonmonotonicSend)[0].witness;
        assert_eq!((w["previous"]["offset"].as_u64(), w["next"]["offset"].as_u64()), (Some(5), Some(3)));
    }
}
