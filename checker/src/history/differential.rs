//! The fast path against serde_json: whatever line the fast path reads, it
//! must read exactly as serde_json does, and whole histories must fold to
//! the same [`History`] either way.

use super::fast::{self, Arena};
use super::fold::{Head, PartRef, ValRef, placed_groups, send_groups};
use super::read::parse_line;
use super::*;
use crate::generator::{GenConfig, generate_vec, injectable};
use crate::op::OpValue;
use crate::util::SplitMix64;

/// What folding sees of a line: its head and every record its value holds.
type Seen = (String, Vec<(String, Option<u64>, String)>);

fn seen_fast(line: &str) -> Option<Seen> {
    let (mut arena, text) = (Arena::default(), line.as_bytes());
    let op = fast::parse(text, 0, text.len(), &mut arena)?;
    let head = format!("{:?}", op.head(text));
    let name = |n: u32| arena.names[n as usize].of(text).to_owned();
    let recs = op.groups(text, &arena).flat_map(|(p, rs)| rs.map(move |(o, v)| (p, o, v)));
    Some((head, recs.map(|(p, o, v)| (name(p), o, format!("{v:?}"))).collect()))
}

fn seen_serde(op: &Op) -> Seen {
    let head = format!("{:?}", Head::of_op(op));
    let mut recs = Vec::new();
    let mut add = |p: PartRef<'_>, o: Option<u64>, v: ValRef<'_>| {
        let PartRef::Name(p) = p else { unreachable!("serde's ops name their partitions") };
        recs.push((p.to_owned(), o, format!("{v:?}")));
    };
    match &op.value {
        OpValue::Send(v) | OpValue::Enqueue(v) => {
            send_groups(&v.records).for_each(|(p, rs)| rs.for_each(|(o, v)| add(p, o, v)))
        }
        OpValue::Poll(v) | OpValue::Process(v) => {
            placed_groups(v).for_each(|(p, rs)| rs.for_each(|(o, v)| add(p, o, v)))
        }
        _ => {}
    }
    (head, recs)
}

fn lines_of(ops: &[Op]) -> Vec<String> {
    ops.iter().map(|op| serde_json::to_string(op).unwrap()).collect()
}

/// A generated history with every injectable anomaly, as JSON lines.
fn generated(seed: u64) -> Vec<String> {
    let inject = injectable().into_iter().map(|k| (k, 2)).collect();
    lines_of(&generate_vec(&GenConfig { ops: 6000, partitions: 3, seed, inject }).unwrap().ops)
}

/// The recorder's own lines: nearly all take the fast path, and each reads
/// as serde_json reads it.
#[test]
fn the_fast_path_reads_the_hot_lines_as_serde_does() {
    let lines = generated(3);
    let mut fast_lines = 0;
    for line in &lines {
        let serde = parse_line(line).ok().expect("the generator's lines parse");
        if let Some(seen) = seen_fast(line) {
            fast_lines += 1;
            assert_eq!(seen, seen_serde(&serde), "{line}");
        }
    }
    assert!(fast_lines * 100 >= lines.len() * 90, "only {fast_lines} of {} lines took the fast path", lines.len());
}

/// Lines with string values, errors, `atomic`, nulls, odd spacing and key
/// orders: taken or left, never misread.
#[test]
fn unusual_but_valid_lines_are_read_alike() {
    let lines = [
        r#"{"index":0,"time":1,"process":2,"type":"invoke","f":"send","value":{"atomic":false,"records":{"t/0":["a","b",3]}}}"#,
        r#" { "f" : "send" , "type" : "ok", "index":0,"time":1,"process":2,"value":{"records":{"t/0":[[0,"a"],[null,3]]}}} "#,
        r#"{"index":0,"time":1,"process":2,"type":"info","f":"send","value":null,"error":"timed out","error_code":"timeout","node":"n1"}"#,
        r#"{"index":0,"time":1,"process":2,"type":"ok","f":"poll","value":{"records":{"t/0":[[5,-7]],"t/0":[[6,8]]}},"final":true}"#,
        r#"{"index":0,"time":1,"process":2,"type":"invoke","f":"poll","value":{"any":[1,{"x":null}]}}"#,
        r#"{"index":0,"time":1,"process":2,"type":"ok","f":"send","value":{"records":{"t/0":[[0,1]]}},"invoke_index":null}"#,
        r#"{"value":{"records":{}},"index":0,"time":1,"process":2,"type":"invoke","f":"send"}"#,
        r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"kill","value":{"targets":["n1"]}}"#,
    ];
    for line in lines {
        let serde = parse_line(line).ok().expect("valid line");
        if let Some(seen) = seen_fast(line) {
            assert_eq!(seen, seen_serde(&serde), "{line}");
        }
    }
    assert!(seen_fast(lines[0]).is_some() && seen_fast(lines[3]).is_some(), "the fast path takes these");
}

/// Random edits of real lines: whenever the fast path still takes a line,
/// serde_json takes it too and reads the same.
#[test]
fn mutated_lines_are_never_misread() {
    let lines = generated(5);
    let mut rng = SplitMix64::new(11);
    let alphabet = b" \t0123456789-.eE,:[]{}\"\\nultrfase/x";
    let (mut taken, mut total) = (0, 0);
    for line in lines.iter().step_by(3) {
        for _ in 0..8 {
            let mut b = line.as_bytes().to_vec();
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(b.len() as u64 + 1) as usize;
                match rng.below(3) {
                    0 if at < b.len() => drop(b.remove(at)),
                    1 if at < b.len() => b[at] = alphabet[rng.below(alphabet.len() as u64) as usize],
                    _ => b.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]),
                }
            }
            let Ok(text) = String::from_utf8(b) else { continue };
            total += 1;
            if let Some(seen) = seen_fast(&text) {
                taken += 1;
                let serde =
                    parse_line(&text).ok().unwrap_or_else(|| panic!("fast path took a line serde refuses: {text}"));
                assert_eq!(seen, seen_serde(&serde), "{text}");
            }
        }
    }
    assert!(taken >= 500, "the edits left too few lines on the fast path ({taken} of {total})");
}

/// A whole history folds to the same thing by either path, errors and cut
/// last lines included.
#[test]
fn whole_histories_fold_alike() {
    let text = generated(7).join("\n") + "\n";
    let mut bad = text.clone();
    bad.insert_str(bad.len() / 2, "{\"index\":1,,}\n");
    let cut = &text[..text.len() - 40];
    for input in [text.as_str(), bad.as_str(), cut] {
        let fast = History::parse_by(input.as_bytes(), true);
        let serde = History::parse_by(input.as_bytes(), false);
        assert_eq!(format!("{fast:?}"), format!("{serde:?}"));
    }
}
