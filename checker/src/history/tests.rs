//! Parsing and indexing small hand-written histories: where errors point,
//! how completions pair, and what the index holds.

use super::*;

fn parse(s: &str) -> Result<History> {
    History::parse(s.as_bytes())
}

/// A syntax error names its line and column.
#[test]
fn malformed_line_names_line_and_column() {
    let s = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{}}\n{\"index\":1,,}\n";
    match parse(s) {
        Err(Error::Malformed { line, column, .. }) => assert_eq!((line, column), (2, 12)),
        other => panic!("expected a malformed-line error, got {other:?}"),
    }
}

/// A bad value inside a line is located inside that line.
#[test]
fn bad_value_column_points_into_the_value() {
    let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1.5]}}}"#;
    match parse(s) {
        Err(Error::Malformed { line: 1, column, message }) => {
            assert!(column > 60, "column {column} should be inside the value ({message})");
        }
        other => panic!("expected a malformed value error, got {other:?}"),
    }
}

/// A last line cut mid-write is skipped and reported.
#[test]
fn truncated_last_line_is_skipped() {
    let s = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{}}\n\
             {\"index\":1,\"time\":2,\"pro";
    let h = parse(s).unwrap();
    assert_eq!(h.entries.len(), 1);
    assert_eq!(h.truncated.as_ref().map(|t| t.line), Some(2));
}

/// Completions without `invoke_index` pair with the process's open invoke.
#[test]
fn completions_pair_without_invoke_index() {
    let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}}
{"index":1,"time":1,"process":1,"type":"invoke","f":"send","value":{"records":{"t/0":[2]}}}
{"index":2,"time":2,"process":0,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}}}
{"index":3,"time":3,"process":1,"type":"info","f":"send"}
"#;
    let h = parse(s).unwrap();
    assert_eq!(h.entries[0].partner, 2);
    assert_eq!(h.entries[1].partner, 3);
    assert_eq!(h.index.ack_offset[0], 0);
    assert_eq!(h.index.ack_op[1], NONE);
}

/// Non-dense indices are rejected with the line.
#[test]
fn index_gap_is_an_error() {
    let s = r#"{"index":1,"time":1,"process":0,"type":"invoke","f":"poll"}"#;
    assert!(matches!(parse(s), Err(Error::Malformed { line: 1, .. })));
}

/// Enqueue and process invokes carry their records; completions pair
/// with them; ok enqueues and ok commits are indexed.
#[test]
fn enqueue_process_and_commit_are_indexed() {
    let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[1,2]}}}
{"index":1,"time":2,"process":0,"type":"ok","f":"enqueue","value":{"records":{"t/0":[1,2]}}}
{"index":2,"time":3,"process":0,"type":"invoke","f":"enqueue","value":{"records":{"t/0":[3]}}}
{"index":3,"time":4,"process":0,"type":"fail","f":"enqueue","value":{"records":{"t/0":[3]}},"error":"max.block.ms"}
{"index":4,"time":5,"process":1,"type":"invoke","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":5,"time":6,"process":1,"type":"ok","f":"process","value":{"records":{"t/0":[[0,1]]}}}
{"index":6,"time":7,"process":1,"type":"invoke","f":"commit","value":{"group":"g","offsets":{"t/0":1}}}
{"index":7,"time":8,"process":1,"type":"ok","f":"commit"}
{"index":8,"time":9,"process":1,"type":"invoke","f":"commit","value":{"group":"g","offsets":{"t/0":5}}}
{"index":9,"time":10,"process":1,"type":"info","f":"commit","error":"timeout"}
{"index":10,"time":11,"process":2,"type":"invoke","f":"commit","value":{"group":"r","offsets":{"t/0":9}},"final":true}
{"index":11,"time":12,"process":2,"type":"ok","f":"commit","final":true}
"#;
    let h = parse(s).unwrap();
    assert!(h.ignored_f.is_empty(), "{:?}", h.ignored_f);
    assert_eq!((h.entries[0].kind, h.entries[4].kind), (Kind::Enqueue, Kind::Process));
    assert_eq!((h.entries[0].partner, h.entries[4].partner), (1, 5));
    let t0 = h.partition_id("t/0").unwrap();
    let k = |v: i64| h.key_id(t0, &RecordValue::Int(v)).unwrap() as usize;
    assert_eq!((h.index.enqueued[k(1)], h.index.enqueued[k(2)], h.index.enqueued[k(3)]), (1, 1, NONE));
    assert_eq!(h.recs(4), &[Rec { key: k(1) as u32, partition: t0, offset: 0 }]);
    // The info commit and the final reader's commit do not count.
    assert_eq!(h.index.committed[t0 as usize], Some((1, 7)));
    assert_eq!(h.commits.len(), 3);
}

/// Offsets near u64::MAX cost nothing: memory is per record, not per offset.
#[test]
fn huge_offsets_are_fine() {
    let s = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"poll","value":{}}
{"index":1,"time":2,"process":0,"type":"ok","f":"poll","value":{"records":{"t/0":[[18446744073709551000,"x"]]}}}
"#;
    let h = parse(s).unwrap();
    assert_eq!(h.index.max_read[0].map(|m| m.0), Some(18_446_744_073_709_551_000));
}

/// A read that fails in the middle of a line is an I/O error, never a
/// "truncated last line" that would quietly check a prefix.
#[test]
fn a_read_error_mid_line_is_an_error_not_a_truncation() {
    struct Failing(&'static [u8]);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let text =
        b"{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{}}\n{\"index\":1,\"ti";
    match History::parse(std::io::BufReader::new(Failing(text))) {
        Err(Error::Io { source, .. }) => assert_eq!(source.to_string(), "disk on fire"),
        other => panic!("expected the read's error, got {other:?}"),
    }
}
