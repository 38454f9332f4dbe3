//! Round trips of every typed value, and the parsing of `f`.

use super::*;

/// Every typed value round-trips through JSON unchanged.
#[test]
fn ops_round_trip() {
    let lines = [
        r#"{"index":0,"time":5,"process":3,"type":"invoke","f":"send","value":{"records":{"events/2":[1,"a"]}}}"#,
        concat!(
            r#"{"index":1,"time":9,"process":3,"invoke_index":0,"type":"ok","f":"send","#,
            r#""value":{"records":{"events/2":[[0,1],[1,"a"]]}}}"#
        ),
        concat!(
            r#"{"index":2,"time":9,"process":4,"type":"ok","f":"poll","value":{"records":{"events/2":[[0,1]]}},"#,
            r#""final":true}"#
        ),
        r#"{"index":3,"time":9,"process":"nemesis","type":"info","f":"kill","value":{"targets":["n1"]},"node":"n1"}"#,
        concat!(
            r#"{"index":4,"time":9,"process":4,"type":"invoke","f":"assign","value":{"partitions":["events/2"],"#,
            r#""seek":"beginning"}}"#
        ),
        r#"{"index":5,"time":9,"process":4,"type":"info","f":"send","error":"timeout"}"#,
        r#"{"index":6,"time":9,"process":5,"type":"invoke","f":"enqueue","value":{"records":{"events/2":[7]}}}"#,
        concat!(
            r#"{"index":7,"time":9,"process":5,"invoke_index":6,"type":"fail","f":"enqueue","#,
            r#""value":{"records":{"events/2":[7]}},"error":"max.block.ms"}"#
        ),
        concat!(
            r#"{"index":8,"time":9,"process":4,"type":"invoke","f":"process","value":{"records":{"events/2":[[0,1],"#,
            r#"[1,"a"]]}}}"#
        ),
        concat!(
            r#"{"index":9,"time":9,"process":4,"invoke_index":8,"type":"info","f":"process","#,
            r#""value":{"records":{"events/2":[[0,1],[1,"a"]]}},"error":"killed"}"#
        ),
        concat!(
            r#"{"index":10,"time":9,"process":4,"type":"invoke","f":"commit","value":{"group":"g","#,
            r#""offsets":{"events/2":2}}}"#
        ),
    ];
    for line in lines {
        let op: Op = serde_json::from_str(line).unwrap();
        let back = serde_json::to_string(&op).unwrap();
        assert_eq!(back, line);
    }
}

/// `F`'s names and its parser agree; the nemesis's ops are faults.
#[test]
fn f_names_parse_back() {
    let client = [F::Send, F::Poll, F::Commit, F::Assign, F::Enqueue, F::Process, F::Drain];
    for f in client {
        assert_eq!(F::parse(f.name(), Process::Client(0)), f);
    }
    assert_eq!(F::parse("kill", Process::Nemesis), F::Fault("kill".into()));
    assert_eq!(F::parse("frob", Process::Client(0)), F::Other("frob".into()));
}

/// `[null, v]` in a send completion means an unknown offset.
#[test]
fn null_offset_pairs_are_unknown_offsets() {
    let op: Op = serde_json::from_str(
        r#"{"index":1,"time":1,"process":0,"type":"info","f":"send","value":{"records":{"t/0":[[null,7]]}}}"#,
    )
    .unwrap();
    let OpValue::Send(s) = op.value else { panic!("not a send: {:?}", op.value) };
    assert_eq!(s.records.0[0].1, vec![SendRecord { offset: None, value: RecordValue::Int(7) }]);
}
