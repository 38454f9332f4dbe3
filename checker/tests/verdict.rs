//! Verdict rules: permitted vs violation by guarantees, unseen's drain rule,
//! and degenerate inputs that must give a verdict, not a crash.

use faultline_checker::generator::{self, GenConfig};
use faultline_checker::verdict::Status;
use faultline_checker::{AnomalyKind, Guarantees, History, Inputs, Validity, check, check_with};

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

/// A generated history checked with its replicas and sink.
fn generated_with_sink(inject: &str, guarantees: &str) -> faultline_checker::Results {
    let cfg = GenConfig { ops: 5000, partitions: 3, seed: 11, inject: generator::parse_inject(inject).unwrap() };
    let g = generator::generate_vec(&cfg).unwrap();
    let h = History::from_ops(g.ops).unwrap();
    let mut gs = Guarantees::default();
    gs.apply_list(guarantees).unwrap();
    check_with(
        &h,
        &gs,
        &Inputs { replicas: Some(&g.replicas), sink: Some(&g.sink), lost_control: None, elections: None },
    )
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
    assert_eq!(
        generated("phantom-read:1", "acks=0,idempotence=false,unclean_leader_election=true").valid,
        Validity::Invalid
    );
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
            "{{\"index\":{idx},\"time\":{i},\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\
             \"value\":{{\"records\":{{\"t/0\":[{i}]}}}}}}\n"
        ));
        s.push_str(&format!(
            "{{\"index\":{},\"time\":{i},\"process\":0,\"type\":\"ok\",\"f\":\"send\",\
             \"value\":{{\"records\":{{\"t/0\":[[{off},{i}]]}}}}}}\n",
            idx + 1
        ));
        s.push_str(&format!(
            "{{\"index\":{},\"time\":{i},\"process\":1,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{{}}}}\n",
            idx + 2
        ));
        s.push_str(&format!(
            "{{\"index\":{},\"time\":{i},\"process\":1,\"type\":\"ok\",\"f\":\"poll\",\
             \"value\":{{\"records\":{{\"t/0\":[[{off},{i}]]}}}}}}\n",
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

/// Commit after inline processing promises no processing loss (§8.3 C3);
/// auto-commit with a queue hand-off does not (C2).
#[test]
fn lost_processing_depends_on_commit_and_processing() {
    let r = generated_with_sink("lost-processing:2", "");
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations, [AnomalyKind::LostProcessing]);
    assert_eq!(r.stats.partitions.values().map(|p| p.lost_processing).sum::<u64>(), 2);
    assert!(faultline_checker::summary::summary(&r).contains("lost-processing: 2 (violation)"));
    let r = generated_with_sink("lost-processing:2", "commit=auto,processing=queue");
    assert_eq!(r.valid, Validity::Valid);
    let t = &r.anomalies[&AnomalyKind::LostProcessing];
    assert_eq!((t.count, t.status), (2, Status::Permitted));
    assert!(t.reason.as_deref().unwrap_or_default().contains("C2"), "{:?}", t.reason);
    assert_eq!(generated_with_sink("lost-processing:1", "on_sink_error=skip").valid, Validity::Valid);
}

/// An idempotent sink must absorb redeliveries; a plain one under
/// at-least-once commits may not.
#[test]
fn duplicate_processing_depends_on_sink_mode() {
    let r = generated_with_sink("duplicate-processing:3", "");
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[&AnomalyKind::DuplicateProcessing].count, 3);
    assert_eq!(generated_with_sink("duplicate-processing:3", "sink_mode=plain").valid, Validity::Valid);
    assert_eq!(
        generated_with_sink("duplicate-processing:3", "sink_mode=plain,commit=before-process").valid,
        Validity::Invalid
    );
}

/// Buffered records lost under fire-and-forget are shown, counted and
/// permitted; other modes do not check them, and say so.
#[test]
fn lost_enqueued_is_permitted_and_counted() {
    let r = generated_with_sink("lost-enqueued:3", "producer-mode=fire-and-forget");
    assert_eq!(r.valid, Validity::Valid);
    let t = &r.anomalies[&AnomalyKind::LostEnqueued];
    assert_eq!((t.count, t.status), (3, Status::Permitted));
    assert!(t.reason.as_deref().unwrap_or_default().contains("R4.10"), "{:?}", t.reason);
    assert_eq!(r.stats.partitions.values().map(|p| p.lost_enqueued).sum::<u64>(), 3);
    assert!(r.stats.partitions.values().map(|p| p.enqueued).sum::<u64>() > 3);
    assert!(!r.anomalies.contains_key(&AnomalyKind::LostWrite));
    let r = generated_with_sink("lost-enqueued:3", "");
    assert!(r.anomaly_types.is_empty(), "{:?}", r.anomaly_types);
    assert!(r.not_checked.iter().any(|n| n.starts_with("lost-enqueued: producer-mode=sync")), "{:?}", r.not_checked);
}

/// Without sink.jsonl the processing analyses are listed as not checked,
/// and the verdict does not change.
#[test]
fn processing_without_a_sink_is_not_checked() {
    let r = generated("", "");
    assert_eq!(r.valid, Validity::Valid);
    for kind in ["lost-processing", "duplicate-processing"] {
        assert!(
            r.not_checked.iter().any(|n| n == &format!("{kind}: no sink.jsonl next to the history")),
            "{:?}",
            r.not_checked
        );
    }
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["stats"].get("sink").is_none());
    assert_eq!(json["guarantees"]["producer-mode"], "sync");
}

/// When the harness lost control of the cluster, the verdict is unknown
/// with the reason, whatever the final reads showed; the same history
/// without that record keeps its verdict.
#[test]
fn lost_control_makes_any_history_unknown() {
    let cfg =
        GenConfig { ops: 5000, partitions: 3, seed: 11, inject: generator::parse_inject("lost-write:2").unwrap() };
    let g = generator::generate_vec(&cfg).unwrap();
    let h = History::from_ops(g.ops).unwrap();
    let gs = Guarantees::default();
    let inputs =
        |lost| Inputs { replicas: Some(&g.replicas), sink: Some(&g.sink), lost_control: lost, elections: None };
    assert_eq!(check_with(&h, &gs, &inputs(None)).valid, Validity::Invalid);
    let r = check_with(&h, &gs, &inputs(Some("node n1's data directory was replaced")));
    assert_eq!(r.valid, Validity::Unknown);
    assert!(
        r.unknown_reasons.iter().any(|x| x.contains("lost control") && x.contains("n1")),
        "{:?}",
        r.unknown_reasons
    );
    assert_eq!(r.anomalies[&AnomalyKind::LostWrite].count, 2, "what was found is still shown");
}

/// Four sends to t/0, two acknowledged during a partition (2–4 s) and lost
/// from the drain: lost-write is 50% of what t/0 acknowledged, both
/// instances fall in the partition's window, the example names it, and the
/// summary says so.
#[test]
fn lost_writes_are_placed_in_their_fault_window_and_given_as_shares() {
    let jsonl = r#"{"index":0,"time":1000000000,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":1100000000,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":2,"time":2000000000,"process":"nemesis","type":"info","f":"partition-halves","value":{"outcome":"installed","targets":["n1"]}}
{"index":3,"time":2500000000,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":4,"time":2600000000,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[1,2]]}}}
{"index":5,"time":3000000000,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[3]}}}
{"index":6,"time":3100000000,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[2,3]]}}}
{"index":7,"time":4000000000,"process":"nemesis","type":"info","f":"heal","value":{"outcome":"installed","targets":["all"]}}
{"index":8,"time":5000000000,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[4]}}}
{"index":9,"time":5100000000,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[1,4]]}}}
{"index":10,"time":6000000000,"process":8,"type":"invoke","f":"drain","final":true,"value":{"targets":{"t/0":2}}}
{"index":11,"time":6100000000,"process":9,"type":"invoke","f":"poll","final":true}
{"index":12,"time":6200000000,"process":9,"type":"ok","f":"poll","final":true,"value":{"records":{"t/0":[[0,1],[1,4]]}}}
{"index":13,"time":6300000000,"process":8,"type":"ok","f":"drain","final":true,"value":{"complete":{"t/0":true}}}"#;
    let r = results_of(jsonl, "acks=1");
    let t = &r.anomalies[&AnomalyKind::LostWrite];
    assert_eq!(t.count, 2);
    let when = t.when.as_ref().expect("lost writes have times");
    assert_eq!(when.in_faults.len(), 1, "{when:?}");
    assert_eq!((when.in_faults[0].label.as_str(), when.in_faults[0].count), ("partition-halves n1 at 2.0–4.0 s", 2));
    assert_eq!(when.outside_faults, 0);
    assert!(t.examples.iter().all(|e| e.faults == ["partition-halves n1 at 2.0–4.0 s"]), "{:?}", t.examples);
    assert_eq!(r.stats.partitions["t/0"].lost_share, Some(0.5));
    let text = faultline_checker::summary::summary(&r);
    assert!(text.contains("50% of acknowledged on t/0"), "{text}");
    assert!(text.contains("2 of them during partition-halves n1 at 2.0–4.0 s"), "{text}");
    assert!(text.contains("During partition-halves n1 at 2.0–4.0 s: "), "{text}");
}

/// A timeline step whose precondition did not hold makes a valid run
/// unknown, naming the step and why; one that held changes nothing.
#[test]
fn an_unmet_precondition_makes_the_verdict_unknown() {
    use faultline_checker::op::{F, Op, OpType, OpValue, Process};
    let verdict_with = |seen: (&str, &str)| {
        let mut ops =
            generator::generate_vec(&GenConfig { ops: 2000, partitions: 2, seed: 3, inject: vec![] }).unwrap().ops;
        let value = serde_json::json!({
            "outcome": "installed", "targets": ["n4"], "require": "behind:n5:events/0", seen.0: seen.1,
        });
        let last = ops.last().unwrap().time_ns;
        let mut kill = Op::new(OpType::Info, Process::Nemesis, F::Fault("kill".into()), OpValue::Other(value)).at(last);
        kill.index = ops.len() as u64;
        ops.push(kill);
        check(&History::from_ops(ops).unwrap(), &Guarantees::default(), None)
    };
    let held = verdict_with(("met", "n5's replica ends at 812, the leader n4's at 1800"));
    assert_eq!(held.valid, Validity::Valid, "{:?}", held.unknown_reasons);
    let unmet = verdict_with(("unmet", "n5 had caught up"));
    assert_eq!(unmet.valid, Validity::Unknown);
    let reason = unmet.unknown_reasons.join("; ");
    assert!(reason.contains("kill") && reason.contains("behind:n5:events/0") && reason.contains("n5 had caught up"));
}
