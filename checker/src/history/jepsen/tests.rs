//! Hand-written Jepsen histories, one per anomaly Jepsen's Kafka checker
//! names, each written from its documented definition and giving the
//! faultline anomaly it maps to; and a clean one.

use crate::anomalies::run_all;
use crate::anomaly::{AnomalyKind, Findings};
use crate::history::History;
use crate::{Guarantees, Inputs};

fn history(edn: &str) -> History {
    History::parse_jepsen(edn.as_bytes()).expect("the EDN history reads")
}

fn findings(edn: &str) -> Findings {
    let h = history(edn);
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(
        &h,
        &Guarantees::default(),
        &Inputs { replicas: None, sink: None, lost_control: None, elections: None },
        &mut f,
    );
    f
}

fn kinds(f: &Findings) -> Vec<AnomalyKind> {
    f.kinds.keys().copied().collect()
}

/// Two producers and a consumer, everything acknowledged and read once in
/// order, written as `jepsen.history.Op` records as Jepsen 0.3 prints them.
const CLEAN: &str = r#"#jepsen.history.Op{:index 0, :time 10, :type :invoke, :process 0, :f :send, :value [[:send 1 1]]}
#jepsen.history.Op{:index 1, :time 20, :type :ok, :process 0, :f :send, :value [[:send 1 [0 1]]]}
{:index 2, :time 30, :type :invoke, :process 1, :f :send, :value [[:send 1 2]]}
{:index 3, :time 40, :type :ok, :process 1, :f :send, :value [[:send 1 [1 2]]]}
{:index 4, :time 50, :type :invoke, :process 2, :f :assign, :value [1]}
{:index 5, :time 60, :type :ok, :process 2, :f :assign, :value [1]}
{:index 6, :time 70, :type :invoke, :process 2, :f :poll, :value [[:poll]]}
{:index 7, :time 80, :type :ok, :process 2, :f :poll, :value [[:poll {1 [[0 1] [1 2]]}]]}
{:index 8, :time 90, :type :info, :process :nemesis, :f :start-partition, :value :majority}
"#;

#[test]
fn a_clean_history_has_no_anomaly_and_says_what_it_could_not_check() {
    let f = findings(CLEAN);
    assert!(f.kinds.is_empty(), "{:?}", kinds(&f));
    let h = history(CLEAN);
    assert_eq!(h.entries.len(), 9, "every op, the nemesis's too");
    assert!(h.not_checked.iter().any(|n| n.contains("Jepsen's rule")), "{:?}", h.not_checked);
}

/// `:lost-write`: value 2 of key 1 sits below offset 2, which a poll read,
/// and no ok poll read it although its send was ok.
#[test]
fn lost_write() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 1]], :time 1}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 1]]], :time 2}
{:type :invoke, :process 0, :f :send, :value [[:send 1 2]], :time 3}
{:type :ok, :process 0, :f :send, :value [[:send 1 [1 2]]], :time 4}
{:type :invoke, :process 0, :f :send, :value [[:send 1 3]], :time 5}
{:type :ok, :process 0, :f :send, :value [[:send 1 [2 3]]], :time 6}
{:type :invoke, :process 1, :f :assign, :value [1], :seek-to-beginning? true, :time 7}
{:type :ok, :process 1, :f :assign, :value [1], :time 8}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 9}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[0 1] [2 3]]}]], :time 10}
"#;
    let f = findings(edn);
    assert_eq!(f.count(AnomalyKind::LostWrite), 1, "{:?}", kinds(&f));
    assert_eq!(f.examples(AnomalyKind::LostWrite)[0].witness["value"], 2);
}

/// `:duplicate`: one value at two offsets of a key.
#[test]
fn duplicate() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 5]], :time 1}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 5]]], :time 2}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 3}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[0 5] [1 5]]}]], :time 4}
"#;
    assert_eq!(findings(edn).count(AnomalyKind::Duplicate), 1);
}

/// `:inconsistent-offsets`: one offset of a key holds two values.
#[test]
fn inconsistent_offsets() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 5]], :time 1}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 5]]], :time 2}
{:type :invoke, :process 0, :f :send, :value [[:send 1 6]], :time 3}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 6]]], :time 4}
"#;
    assert!(findings(edn).count(AnomalyKind::InconsistentOffsets) >= 1);
}

/// `:poll-skip` (assign mode): one consumer's second poll jumps over an
/// offset some other read showed.
#[test]
fn poll_skip() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 1] [:send 1 2] [:send 1 3]], :time 1}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 1]] [:send 1 [1 2]] [:send 1 [2 3]]], :time 2}
{:type :invoke, :process 1, :f :assign, :value [1], :time 3}
{:type :ok, :process 1, :f :assign, :value [1], :time 4}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 5}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[0 1]]}]], :time 6}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 7}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[2 3]]}]], :time 8}
"#;
    assert_eq!(findings(edn).count(AnomalyKind::PollSkip), 1);
    // Under subscribe the history has no rebalances: across polls, not checked.
    let subscribed = edn.replace(":f :assign", ":f :subscribe");
    assert_eq!(findings(&subscribed).count(AnomalyKind::PollSkip), 0);
    assert!(history(&subscribed).not_checked.iter().any(|n| n.starts_with("subscribe:")));
}

/// `:nonmonotonic-poll`: a consumer's second poll starts before where its
/// first one stopped.
#[test]
fn nonmonotonic_poll() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 1] [:send 1 2]], :time 1}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 1]] [:send 1 [1 2]]], :time 2}
{:type :invoke, :process 1, :f :assign, :value [1], :time 3}
{:type :ok, :process 1, :f :assign, :value [1], :time 4}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 5}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[0 1] [1 2]]}]], :time 6}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 7}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[1 2]]}]], :time 8}
"#;
    assert_eq!(findings(edn).count(AnomalyKind::NonmonotonicPoll), 1);
}

/// `:nonmonotonic-send`: one process's later send lands at a lower offset.
#[test]
fn nonmonotonic_send() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 1]], :time 1}
{:type :ok, :process 0, :f :send, :value [[:send 1 [1 1]]], :time 2}
{:type :invoke, :process 0, :f :send, :value [[:send 1 2]], :time 3}
{:type :ok, :process 0, :f :send, :value [[:send 1 [0 2]]], :time 4}
"#;
    assert!(findings(edn).count(AnomalyKind::NonmonotonicSend) >= 1);
}

/// `:G1a`: an ok poll read a value whose send failed.
#[test]
fn g1a_is_an_aborted_read() {
    let edn = r#"{:type :invoke, :process 0, :f :send, :value [[:send 1 9]], :time 1}
{:type :fail, :process 0, :f :send, :value [[:send 1 9]], :error :not-enough-replicas, :time 2}
{:type :invoke, :process 1, :f :poll, :value [[:poll]], :time 3}
{:type :ok, :process 1, :f :poll, :value [[:poll {1 [[0 9]]}]], :time 4}
"#;
    assert_eq!(findings(edn).count(AnomalyKind::AbortedRead), 1);
}

/// A transaction: its sends and its polls are both checked, and the
/// verdict says its internal order is not.
#[test]
fn transactions_are_split_and_said_to_be_partly_unchecked() {
    let edn = r#"{:type :invoke, :process 0, :f :txn, :value [[:send 1 1] [:poll]], :time 1}
{:type :ok, :process 0, :f :txn, :value [[:send 1 [0 1]] [:poll {1 [[0 1]]}]], :time 2}
{:type :invoke, :process 1, :f :txn, :value [[:poll] [:send 2 7]], :time 3}
{:type :fail, :process 1, :f :txn, :value [[:poll] [:send 2 7]], :time 4}
{:type :invoke, :process 2, :f :poll, :value [[:poll]], :time 5}
{:type :ok, :process 2, :f :poll, :value [[:poll {2 [[0 7]]}]], :time 6}
"#;
    let f = findings(edn);
    assert_eq!(f.count(AnomalyKind::AbortedRead), 1, "the failed txn's send was read: {:?}", kinds(&f));
    let h = history(edn);
    assert!(h.not_checked.iter().any(|n| n.starts_with("txn: 2 transactions")), "{:?}", h.not_checked);
}

/// A history that is one vector of ops reads as one op per line does.
#[test]
fn a_vector_of_ops_reads_too() {
    let lines: Vec<&str> = CLEAN.lines().collect();
    let vector = format!("[{}]", lines.join("\n"));
    assert_eq!(history(&vector).entries.len(), 9);
}

/// Bad input names its line.
#[test]
fn errors_name_the_line() {
    let bad = format!("{}{{:type :ok, :process 0, :f :send, :value [[:send 1 [0 {{}}]]]}}\n", &CLEAN[..CLEAN.len()]);
    let e = History::parse_jepsen(bad.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("line 10") && e.contains("value"), "{e}");
    let e = History::parse_jepsen("{:type :ok :f\n".as_bytes()).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("EDN"), "{e}");
    let e = History::parse_jepsen("{:type :begin, :process 0, :f :send}\n".as_bytes()).unwrap_err().to_string();
    assert!(e.contains(":type"), "{e}");
}

/// faultline's generated histories written as EDN and read back: a clean
/// one stays clean, and injected anomalies Jepsen's model can hold are
/// found with the same counts.
#[test]
fn generated_histories_round_trip_through_edn() {
    use crate::generator::{GenConfig, generate_vec};
    for (kind, n) in [
        (None, 0),
        (Some(AnomalyKind::Duplicate), 3),
        (Some(AnomalyKind::AbortedRead), 2),
        (Some(AnomalyKind::PollSkip), 2),
        (Some(AnomalyKind::NonmonotonicPoll), 1),
    ] {
        let inject = kind.map(|k| vec![(k, n)]).unwrap_or_default();
        let g = generate_vec(&GenConfig { ops: 4000, partitions: 3, seed: 9, inject }).unwrap();
        let edn: String = g.ops.iter().filter_map(|op| super::edn_line(op, op.index)).map(|l| l + "\n").collect();
        let f = findings(&edn);
        match kind {
            None => assert!(f.kinds.is_empty(), "{:?}", kinds(&f)),
            Some(k) => assert_eq!((f.count(k), f.kinds.len()), (n as u64, 1), "{k}: {:?}", kinds(&f)),
        }
    }
}

/// The fast reader gives what `edn-format` gives on Jepsen's forms, and
/// leaves anything outside its subset to `edn-format`.
#[test]
fn the_fast_reader_agrees_with_edn_format_and_falls_back_outside_its_subset() {
    use super::edn::{Edn, read_fast};
    let same = [
        r#"{:type :ok, :f :poll, :value [[:poll {1 [[0 -5] [1 7]]}]], :process 3, :time 12}"#,
        r#"#jepsen.history.Op{:index 0, :type :invoke, :f :send, :value [[:send "k\"1" 2]], :process :nemesis}"#,
        r#"{:error [:not-leader "x\\y\nz é"], :b true, :c false, :d nil, :e (1 2), :ns/k sym}"#,
    ];
    // Maps compared without their order, which EDN does not give.
    fn canon(e: &Edn<'_>) -> String {
        match e {
            Edn::Map(m) => {
                let mut entries: Vec<String> = m.iter().map(|(k, v)| format!("{} {}", canon(k), canon(v))).collect();
                entries.sort();
                format!("{{{}}}", entries.join(", "))
            }
            Edn::Seq(x) => format!("[{}]", x.iter().map(canon).collect::<Vec<_>>().join(" ")),
            Edn::Tagged(t, v) => format!("#{t}{}", canon(v)),
            other => format!("{other:?}"),
        }
    }
    for text in same {
        let slow = Edn::from_value(&edn_format::parse_str(text).unwrap());
        assert_eq!(read_fast(text).as_ref().map(canon), Some(canon(&slow)), "{text}");
    }
    for outside in ["{:a #{1 2}}", "{:a 1.5}", "{:a \\c}", "{:a 10N}", "{:a #_ 1 :b 2}", r#"{:a "\u0041"}"#] {
        assert_eq!(read_fast(outside), None, "{outside}");
    }
    // Outside the subset, the line still reads (through edn-format).
    let line = "{:type :invoke, :process 0, :f :poll, :value [[:poll]], :extra #{1.5}}\n";
    assert_eq!(history(line).entries.len(), 1);
}

/// Deep nesting is refused by line, never handed to a parser that
/// recurses without a bound; names with `:` inside fall back, and a
/// vector's lines stay apart.
#[test]
fn deep_nesting_is_refused_and_odd_names_fall_back() {
    let deep = format!("{{:type :invoke, :process 0, :f :x, :value {}{}}}\n", "[".repeat(100_000), "]".repeat(100_000));
    let e = History::parse_jepsen(deep.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("nested deeper"), "{e}");
    assert_eq!(super::edn::read_fast("{:a:b 1}"), None);
    let vector = "[{:type :invoke, :process 0, :f :poll, :value [[:poll]], :time 1}\n{:type :ok, :process 0, :f :poll, :value [[:poll {1 [[0 5]]}]], :time 2}]";
    assert_eq!(history(vector).entries.len(), 2);
}

/// A transaction's completion follows its invoke even when its value is nil.
#[test]
fn a_txn_completion_without_a_value_follows_its_invoke() {
    let edn = r#"{:type :invoke, :process 0, :f :txn, :value [[:send 1 1] [:poll]], :time 1}
{:type :info, :process 0, :f :txn, :value nil, :error :timeout, :time 2}
"#;
    let h = history(edn);
    assert_eq!(h.entries.len(), 4, "send invoke and info, poll invoke and info");
}
