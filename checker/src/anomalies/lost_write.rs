//! `lost-write`: provable loss of a value that must exist.
//!
//! A value must exist when its send was `ok`; when a consumer read it (a
//! consumer is served only what is committed, below the high watermark, so
//! a read value was committed even if its send's outcome is unknown); or
//! when its send was `info` (or never completed) but belonged to an atomic
//! batch of which another value was read: the batch was appended, so all of
//! it was (Jepsen's `must-have-committed?`, kafka.clj L788-799).
//!
//! Proof of loss, per partition:
//! - with a complete final drain, the value is lost if no final poll returned
//!   it, even if an earlier poll had seen it (`read_before: true`: the record
//!   was consumed, then vanished);
//! - without one, the value is lost if no ok poll ever returned it although
//!   some ok poll returned a higher offset than its acknowledged offset
//!   (Jepsen's `lost-write-cases`, L1045-1143). Otherwise it may only be
//!   late, and [`super::unseen`] reports it.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, Kind, NO_OFFSET, NONE};
use crate::op::OpType;
use crate::util::FxHashMap;

/// Why a value is lost.
pub(crate) enum Loss {
    /// A complete drain of the partition did not return it.
    Drain { drain: u32 },
    /// Never read, below an offset some ok poll returned.
    Overtaken { offset: u64, poll: u32 },
}

/// The loss proof for key `k`, assuming it must exist.
pub(crate) fn loss(h: &History, k: u32) -> Option<Loss> {
    let ix = &h.index;
    let p = h.keys[k as usize].partition as usize;
    if ix.drained_by[p] != NONE {
        return (ix.first_final_read[k as usize] == NONE).then_some(Loss::Drain { drain: ix.drained_by[p] });
    }
    if ix.first_read[k as usize] != NONE {
        return None;
    }
    let known = ix.ack_offset[k as usize];
    match ix.max_read[p] {
        Some((offset, poll)) if known != NO_OFFSET && offset > known => Some(Loss::Overtaken { offset, poll }),
        _ => None,
    }
}

/// Keys of info (or never completed) atomic sends that must exist because a
/// sibling in the same partition's batch was read; maps to that sibling.
fn proven_by_batch(h: &History) -> FxHashMap<u32, u32> {
    let mut proven = FxHashMap::default();
    for (i, e) in h.entries.iter().enumerate() {
        if e.kind != Kind::Send || e.op_type != OpType::Invoke || !e.atomic {
            continue;
        }
        if matches!(h.outcome(i as u32), Some(OpType::Ok | OpType::Fail)) {
            continue;
        }
        let recs = h.recs(i as u32);
        // Records of one partition are contiguous: they came from one array.
        for batch in recs.chunk_by(|a, b| a.partition == b.partition) {
            if let Some(read) = batch.iter().find(|r| h.index.first_read[r.key as usize] != NONE) {
                for r in batch {
                    if r.key != read.key {
                        proven.insert(r.key, read.key);
                    }
                }
            }
        }
    }
    proven
}

pub fn check(h: &History, out: &mut Findings) {
    let ix = &h.index;
    let proven = proven_by_batch(h);
    for k in 0..h.keys.len() as u32 {
        let key = &h.keys[k as usize];
        if key.sender == NONE {
            continue;
        }
        let acked = ix.ack_op[k as usize] != NONE;
        let sibling = proven.get(&k).copied();
        let read = ix.first_read[k as usize] != NONE;
        if !acked && sibling.is_none() && !read {
            continue;
        }
        let Some(why) = loss(h, k) else { continue };
        out.report_at(AnomalyKind::LostWrite, key.partition, h.key_time_ns(k), || witness(h, k, sibling, &why));
    }
}

fn witness(h: &History, k: u32, sibling: Option<u32>, why: &Loss) -> Anomaly {
    let ix = &h.index;
    let key = &h.keys[k as usize];
    let pname = &h.partitions[key.partition as usize];
    let ack = ix.ack_op[k as usize];
    let offset = ix.ack_offset[k as usize];
    let read_before = ix.first_read[k as usize] != NONE;
    let at = if offset == NO_OFFSET { String::new() } else { format!(" offset {offset}") };
    let how = match (ack != NONE, sibling) {
        (true, _) => format!("acked at {pname}{at} by {}", h.op_text(ack)),
        (false, Some(s)) => format!(
            "sent in an atomic batch by {} whose value {} was read",
            h.op_text(key.sender),
            h.keys[s as usize].value
        ),
        (false, None) => {
            format!("sent by {} with an unknown outcome, was committed (a consumer read it)", h.op_text(key.sender))
        }
    };
    let (proof, proof_json) = match *why {
        Loss::Drain { drain } => (
            format!("the complete final drain (op {drain}) did not return it"),
            json!({"drain": h.op_json(drain), "drain_target": ix.drain_target[key.partition as usize]}),
        ),
        Loss::Overtaken { offset: hi, poll } => (
            format!("it was never read, yet {} read offset {hi}", h.op_text(poll)),
            json!({"higher_read": {"offset": hi, "op": h.op_json(poll)}}),
        ),
    };
    let before = if read_before {
        format!("; it had been read by {} before", h.op_text(ix.first_read[k as usize]))
    } else {
        String::new()
    };
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::LostWrite,
        partition: Some(pname.clone()),
        explanation: format!("value {} {how}, but {proof}{before}", key.value),
        witness: json!({
            "value": key.value,
            "offset": (offset != NO_OFFSET).then_some(offset),
            "send": h.op_json(key.sender),
            "ack": (ack != NONE).then(|| h.op_json(ack)),
            "proven_by_batch_value": sibling.map(|s| &h.keys[s as usize].value),
            "read_before": read_before,
            "first_read": read_before.then(|| h.op_json(ix.first_read[k as usize])),
            "proof": proof_json,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    /// An injected lost write is found, and nothing else.
    #[test]
    fn finds_injected_lost_write() {
        let f = injected(AnomalyKind::LostWrite, 3);
        assert_eq!(f.count(AnomalyKind::LostWrite), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    #[test]
    fn clean_history_has_no_lost_write() {
        assert_eq!(clean_findings().count(AnomalyKind::LostWrite), 0);
    }

    /// Acked at offset 0, never read, while offset 1 was read: lost.
    #[test]
    fn overtaken_ack_is_lost() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":3,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":3,"time":4,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[1,2]]}}}
{"index":4,"time":5,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":5,"time":6,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[1,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::LostWrite), 1);
        let ex = &f.examples(AnomalyKind::LostWrite)[0];
        assert_eq!(ex.witness["value"], 1);
        assert_eq!(ex.witness["read_before"], false);
    }

    /// A value read earlier but missing from a complete drain is lost with
    /// `read_before: true`.
    #[test]
    fn read_then_vanished_from_drain() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
{"index":4,"time":5,"process":2,"type":"invoke","f":"drain","value":{"targets":{"t/0":0}}}
{"index":5,"time":6,"process":3,"type":"invoke","f":"poll","value":{},"final":true}
{"index":6,"time":7,"process":3,"type":"ok","f":"poll","value":{"records":{}},"final":true}
{"index":7,"time":8,"process":2,"type":"ok","f":"drain","value":{"complete":{"t/0":true}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::LostWrite), 1);
        assert_eq!(f.examples(AnomalyKind::LostWrite)[0].witness["read_before"], true);
        assert_eq!(f.count(AnomalyKind::Unseen), 0);
    }

    /// A failed send and an info send that nobody read are not lost, even
    /// below a read offset.
    #[test]
    fn fail_and_unread_info_are_not_lost() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"fail","f":"send","error":"not enough replicas"}
{"index":2,"time":3,"process":4,"type":"invoke","f":"send","value":{"records":{"t/0":[3]}}}
{"index":3,"time":4,"process":4,"type":"info","f":"send","error":"timeout"}
{"index":4,"time":3,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":5,"time":4,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[5,2]]}}}
{"index":6,"time":5,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":7,"time":6,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[5,2]]}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::LostWrite), 0);
        assert!(f.kinds.is_empty(), "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    /// A value whose send is unknown but that a consumer read was
    /// committed; missing from a complete drain, it is lost (a broker that
    /// served a consumer past its high watermark, then failed over).
    #[test]
    fn read_info_value_missing_from_the_drain_is_lost() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":0,"type":"info","f":"send","error":"timeout"}
{"index":2,"time":3,"process":1,"type":"invoke","f":"poll","value":{}}
{"index":3,"time":4,"process":1,"type":"ok","f":"poll","value":{"records":{"t/0":[[0,1]]}}}
{"index":4,"time":5,"process":2,"type":"invoke","f":"drain","value":{"targets":{"t/0":0}}}
{"index":5,"time":6,"process":3,"type":"invoke","f":"poll","value":{},"final":true}
{"index":6,"time":7,"process":3,"type":"ok","f":"poll","value":{"records":{}},"final":true}
{"index":7,"time":8,"process":2,"type":"ok","f":"drain","value":{"complete":{"t/0":true}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::LostWrite), 1);
        let ex = &f.examples(AnomalyKind::LostWrite)[0];
        assert!(ex.explanation.contains("a consumer read it"), "{}", ex.explanation);
        assert_eq!(ex.witness["read_before"], true);
    }

    /// An info batch with one value read proves its sibling was appended.
    #[test]
    fn info_batch_sibling_must_exist() {
        let f = findings_of(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1,2]}}}
{"index":1,"time":2,"process":0,"type":"info","f":"send","error":"timeout"}
{"index":2,"time":3,"process":1,"type":"invoke","f":"drain","value":{"targets":{"t/0":2}}}
{"index":3,"time":4,"process":2,"type":"invoke","f":"poll","value":{},"final":true}
{"index":4,"time":5,"process":2,"type":"ok","f":"poll","value":{"records":{"t/0":[[1,2]]}},"final":true}
{"index":5,"time":6,"process":1,"type":"ok","f":"drain","value":{"complete":{"t/0":true}}}
"#,
        );
        assert_eq!(f.count(AnomalyKind::LostWrite), 1);
        assert_eq!(f.examples(AnomalyKind::LostWrite)[0].witness["value"], 1);
    }
}
