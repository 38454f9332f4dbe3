//! What a finished run showed, for expectations: the checker's verdict and
//! anomaly counts (from its [`Results`]), the error codes (`error_code`) on `fail`
//! and `info` ops (a scan of `history.jsonl`), and when the first anomalous
//! op happened, for time to detection.
//!
//! The time of detection is the earliest op time among the witnesses the
//! checker kept for the expected anomaly types (`time_ns` of their ops; an
//! op named only by index is looked up in the history), or of the first op
//! failing with an expected error name. Witnesses are bounded per type, so
//! this is the earliest *kept* witness: checkers scan in history order, so
//! it is the first one in practice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use faultline_checker::Results;
use serde::Deserialize;

use super::expect::{Expectation, Observation};

/// Longest history line the scan reads; longer lines are skipped (a send
/// of many records), they cannot be error-bearing fail ops of interest.
const LINE_BYTES_MAX: usize = 1 << 20;

/// The observation, and the seconds into the run of the first anomalous op
/// the expectation looks for.
pub fn observe(results: &Results, history: Option<&Path>, expect: &Expectation) -> (Observation, Option<f64>) {
    let anomalies: BTreeMap<String, _> =
        results.anomalies.iter().map(|(k, t)| (k.name().to_string(), (t.count, t.status))).collect();
    let wanted = expect.wanted_anomalies();
    let (mut times, mut indices) = (Vec::new(), BTreeSet::new());
    for (kind, t) in &results.anomalies {
        if wanted.iter().any(|w| w == kind.name()) {
            for ex in &t.examples {
                witness_times(&ex.witness, &mut times, &mut indices);
            }
        }
    }
    let names = expect.error_names();
    let scan = match history {
        Some(path) if !names.is_empty() || (times.is_empty() && !indices.is_empty()) => {
            scan_history(path, &names, &indices)
        }
        _ => Scan::default(),
    };
    if times.is_empty() {
        times.extend(scan.index_times.values());
    }
    times.extend(expect.errors.iter().filter_map(|e| scan.first_error_ns.get(e)));
    let errors = names.iter().map(|n| (n.clone(), scan.errors.get(n).copied().unwrap_or(0))).collect();
    let observation =
        Observation { validity: results.valid, unknown_reasons: results.unknown_reasons.clone(), anomalies, errors };
    (observation, times.into_iter().min().map(|ns| ns as f64 / 1e9))
}

/// Op times in a witness: `time_ns` of every op object, and the `index` of
/// op objects without a time.
fn witness_times(v: &serde_json::Value, times: &mut Vec<u64>, indices: &mut BTreeSet<u64>) {
    match v {
        serde_json::Value::Object(m) => {
            match (
                m.get("time_ns").and_then(serde_json::Value::as_u64),
                m.get("index").and_then(serde_json::Value::as_u64),
            ) {
                (Some(t), _) => times.push(t),
                (None, Some(i)) if m.contains_key("f") => {
                    indices.insert(i);
                }
                _ => {}
            }
            for x in m.values() {
                witness_times(x, times, indices);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| witness_times(x, times, indices)),
        _ => {}
    }
}

#[derive(Debug, Default)]
struct Scan {
    /// Error name → client fail/info ops naming it.
    errors: BTreeMap<String, u64>,
    first_error_ns: BTreeMap<String, u64>,
    /// Times of the ops asked for by index.
    index_times: BTreeMap<u64, u64>,
}

/// The fields of a history line the scan needs.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    time: u64,
    #[serde(rename = "type", borrow)]
    op_type: std::borrow::Cow<'a, str>,
    #[serde(default)]
    process: serde_json::Value,
    #[serde(default, borrow)]
    error_code: Option<std::borrow::Cow<'a, str>>,
}

/// One pass over `history.jsonl`; unreadable lines are skipped (the
/// checker already judged the file).
fn scan_history(path: &Path, names: &[String], indices: &BTreeSet<u64>) -> Scan {
    let mut scan = Scan::default();
    let Ok(file) = std::fs::File::open(path) else { return scan };
    // Bounded by the file.
    for line in std::io::BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { break };
        if line.len() > LINE_BYTES_MAX {
            continue;
        }
        let Ok(op) = serde_json::from_slice::<Line>(&line) else { continue };
        if indices.contains(&op.index) {
            scan.index_times.insert(op.index, op.time);
        }
        let client = op.process.is_u64();
        if !client || !(op.op_type == "fail" || op.op_type == "info") {
            continue;
        }
        let Some(code) = op.error_code else { continue };
        if let Some(n) = names.iter().find(|n| **n == code) {
            *scan.errors.entry(n.clone()).or_default() += 1;
            scan.first_error_ns.entry(n.clone()).or_insert(op.time);
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_times_find_op_times_at_any_depth_and_indices_without_times() {
        let w = serde_json::json!({
            "value": 3,
            "send": {"index": 10, "process": 0, "f": "send", "type": "invoke", "time_ns": 7_000_000_000u64},
            "ack": {"index": 11, "process": 0, "f": "send", "type": "ok", "time_ns": 7_200_000_000u64},
            "proof": {"drain": {"index": 90, "f": "drain"}},
        });
        let (mut times, mut indices) = (Vec::new(), BTreeSet::new());
        witness_times(&w, &mut times, &mut indices);
        times.sort();
        assert_eq!(times, [7_000_000_000, 7_200_000_000]);
        assert_eq!(indices.into_iter().collect::<Vec<_>>(), [90]);
    }

    #[test]
    fn the_history_scan_counts_error_names_on_client_fail_and_info_ops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"index":0,"time":100,"process":0,"type":"invoke","f":"send","#,
                r#""value":{"records":{"events/0":[1]}}}"#,
                "\n",
                r#"{"index":1,"time":2000000000,"process":0,"invoke_index":0,"type":"fail","f":"send","#,
                r#""value":{"records":{"events/0":[1]}},"#,
                r#""error":"503: NOT_ENOUGH_REPLICAS: isr \"1\" (after 3 attempts)","#,
                r#""error_code":"NOT_ENOUGH_REPLICAS"}"#,
                "\n",
                r#"{"index":2,"time":3000000000,"process":1,"type":"info","f":"send","#,
                r#""error":"x","error_code":"NOT_ENOUGH_REPLICAS_AFTER_APPEND"}"#,
                "\n",
                r#"{"index":3,"time":4000000000,"process":"nemesis","type":"info","f":"kill","#,
                r#""error":"x","error_code":"NOT_ENOUGH_REPLICAS"}"#,
                "\n",
                r#"{"index":4,"time":5000000000,"process":0,"type":"fail","f":"poll","#,
                r#""error":"NOT_ENOUGH_REPLICAS in the text only"}"#,
                "\n",
                "not json\n",
            ),
        )
        .unwrap();
        let names = vec!["NOT_ENOUGH_REPLICAS".to_string(), "NOT_ENOUGH_REPLICAS_AFTER_APPEND".to_string()];
        let scan = scan_history(&path, &names, &BTreeSet::from([2]));
        assert_eq!(scan.errors["NOT_ENOUGH_REPLICAS"], 1, "the nemesis line and words in a text do not count");
        assert_eq!(scan.errors["NOT_ENOUGH_REPLICAS_AFTER_APPEND"], 1);
        assert_eq!(scan.first_error_ns["NOT_ENOUGH_REPLICAS"], 2_000_000_000);
        assert_eq!(scan.index_times[&2], 3_000_000_000);
    }
}
