//! Verdict rules: permitted vs violation by guarantees, unseen's drain rule,
//! and degenerate inputs that must give a verdict, not a crash.

use faultline_checker::generator::{self, GenConfig};
use faultline_checker::verdict::Status;
use faultline_checker::{AnomalyKind, Guarantees, History, Validity, check};

fn results_of(jsonl: &str, guarantees: &str) -> faultline_checker::Results {
    let h = History::parse(jsonl.as_bytes()).expect("parses");
    let mut g = Guarantees::default();
    g.apply_list(guarantees).unwrap();
    check(&h, &g, None)
}

fn generated(inject: &str, guarantees: &str) -> faultline_checker::Results {
    let cfg = GenConfig { ops: 5000, partitions: 3, seed: 9, inject: generator::parse_inject(inject).unwrap() };
    let g = generator::generate_vec(&cfg).unwrap();
    let h = History::from_ops(g.ops).unwrap();
    let mut gs = Guarantees::default();
    gs.apply_list(guarantees).unwrap();
    check(&h, &gs, Some(&g.replicas))
}

#[test]
fn lost_write_is_a_violation_under_acks_all() {
    let r = generated("lost-write:2", "");
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[&AnomalyKind::LostWrite].status, Status::Violation);
    assert_eq!(r.stats.partitions.values().map(|p| p.lost).sum::<u64>(), 2);
}

#[test]
fn lost_write_is_permitted_under_acks_1() {
    let r = generated("lost-write:2", "acks=1");
    assert_eq!(r.valid, Validity::Valid);
    let t = &r.anomalies[&AnomalyKind::LostWrite];
    assert_eq!(t.status, Status::Permitted);
    assert!(t.reason.as_deref().unwrap_or_default().contains("acks=1"), "{:?}", t.reason);
}

#[test]
fn duplicates_are_permitted_without_idempotence_only() {
    assert_eq!(generated("duplicate:1", "idempotence=false").valid, Validity::Valid);
    assert_eq!(generated("duplicate:1", "").valid, Validity::Invalid);
}

/// Unseen without a complete drain of its partition cannot be told from delay.
#[test]
fn unseen_without_drain_is_unknown() {
    let r = generated("unseen:3", "");
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(r.anomalies[&AnomalyKind::Unseen].count, 3);
    assert!(r.unknown_reasons.iter().any(|s| s.contains("delay")), "{:?}", r.unknown_reasons);
}

#[test]
fn phantom_read_is_never_permitted() {
    assert_eq!(generated("phantom-read:1", "acks=0,idempotence=false,unclean_leader_election=true").valid, Validity::Invalid);
}

#[test]
fn examples_are_bounded() {
    let r = generated("duplicate:30", "");
    let t = &r.anomalies[&AnomalyKind::Duplicate];
    assert_eq!(t.count, 30);
    assert_eq!(t.examples.len(), 8);
}

#[test]
fn empty_history_is_unknown() {
    let r = results_of("", "");
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.anomaly_types.is_empty());
}

#[test]
fn only_invokes_is_unknown() {
    let r = results_of(
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":2,"process":1,"type":"invoke","f":"poll","value":{}}
"#,
        "",
    );
    assert_eq!(r.valid, Validity::Unknown);
}

#[test]
fn only_nemesis_ops_is_unknown() {
    let r = results_of(
        r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"start-partition","value":{"targets":["n1"]}}
{"index":1,"time":2,"process":"nemesis","type":"info","f":"heal","value":null}
"#,
        "",
    );
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(r.stats.ops["heal"]["info"], 1);
}

/// Unknown `f`s are counted and ignored; a truncated last line is reported.
#[test]
fn unknown_f_and_truncated_tail() {
    let r = results_of(
        r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"transact","value":{"x":1}}
{"index":1,"time":2,"process":0,"type":"ok","f":"transact"}
{"index":2,"time":3,"process":1,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":3,"time":4,"process":1,"type":"fail","f":"send"}
{"index":4,"time":5,"process":1,"type":"invoke","f":"se"#,
        "",
    );
    assert_eq!(r.stats.ignored_f["transact"], 2);
    assert_eq!(r.truncated_line.as_ref().map(|t| t.line), Some(5));
    assert_eq!(r.valid, Validity::Valid);
}

/// Offsets spread up to 2^62 cost memory per record, not per offset: the
/// whole check stays small and instant.
#[test]
fn huge_sparse_offsets() {
    let mut s = String::new();
    let mut idx = 0;
    for i in 0..200u64 {
        let off = i << 55;
        s.push_str(&format!(
            "{{\"index\":{idx},\"time\":{i},\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"value\":{{\"records\":{{\"t/0\":[{i}]}}}}}}\n"
        ));
        s.push_str(&format!(
            "{{\"index\":{},\"time\":{i},\"process\":0,\"type\":\"ok\",\"f\":\"send\",\"value\":{{\"records\":{{\"t/0\":[[{off},{i}]]}}}}}}\n",
            idx + 1
        ));
        s.push_str(&format!("{{\"index\":{},\"time\":{i},\"process\":1,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{{}}}}\n", idx + 2));
        s.push_str(&format!(
            "{{\"index\":{},\"time\":{i},\"process\":1,\"type\":\"ok\",\"f\":\"poll\",\"value\":{{\"records\":{{\"t/0\":[[{off},{i}]]}}}}}}\n",
            idx + 3
        ));
        idx += 4;
    }
    let h = History::parse(s.as_bytes()).unwrap();
    assert_eq!(h.records.len(), 600);
    assert!(h.index.obs.len() <= 400);
    let r = check(&h, &Guarantees::default(), None);
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.anomaly_types);
}
