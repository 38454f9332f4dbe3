//! `--repeat N`: the flake bar. Every cell runs N seeds (its first seed and
//! the N-1 after it) without stopping early, and a cell passes only when
//! its claim holds by design, not by luck: a hunting cell (one that expects
//! an anomaly or error) meets its expectation on at least
//! [`HUNTING_BAR`] of them, any other cell on all of them. The table gives
//! each cell's rate and its median time to detection.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::expect::Met;
use super::outcome::CellResult;

/// The share of seeds a hunting cell must detect on: 9 in 10.
pub const HUNTING_BAR: f64 = 0.9;

/// One cell over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlakeRow {
    pub cell: String,
    pub hunts: bool,
    pub runs: usize,
    /// Seeds whose run met the expectation.
    pub met: usize,
    /// The median of the met runs' times to the first anomalous op, in
    /// seconds, for hunting cells.
    pub median_detection_s: Option<f64>,
    pub passes: bool,
}

/// A row per cell.
pub fn rows(results: &[CellResult]) -> Vec<FlakeRow> {
    results
        .iter()
        .map(|r| {
            let hunts = r.cell.expect.hunts();
            let met: Vec<_> = r.runs.iter().filter(|s| matches!(s.met, Some(Met::Yes))).collect();
            let mut times: Vec<f64> = met.iter().filter_map(|s| s.first_anomalous_s).collect();
            times.sort_by(f64::total_cmp);
            let median_detection_s = (hunts && !times.is_empty()).then(|| times[times.len() / 2]);
            let runs = r.runs.len();
            let passes =
                runs > 0 && if hunts { met.len() as f64 >= HUNTING_BAR * runs as f64 } else { met.len() == runs };
            FlakeRow { cell: r.cell.name.clone(), hunts, runs, met: met.len(), median_detection_s, passes }
        })
        .collect()
}

/// The table people read: one line per cell.
pub fn render(rows: &[FlakeRow]) -> String {
    let w = rows.iter().map(|r| r.cell.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:<w$}  {:<7}  {:>8}  {:>9}  bar\n", "cell", "kind", "met", "median");
    for r in rows {
        let kind = if r.hunts { "hunts" } else { "holds" };
        let median = r.median_detection_s.map_or_else(|| "-".to_owned(), |t| format!("{t:.1} s"));
        let bar = if r.passes { "ok" } else { "FLAKY" };
        let _ = writeln!(out, "{:<w$}  {kind:<7}  {:>8}  {median:>9}  {bar}", r.cell, format!("{}/{}", r.met, r.runs));
    }
    let failing = rows.iter().filter(|r| !r.passes).count();
    let _ = writeln!(
        out,
        "{failing} of {} cells below the bar (hunting cells detect on ≥ {:.0}% of seeds, the others hold on all).",
        rows.len(),
        HUNTING_BAR * 100.0
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::campaign::expect::Expectation;
    use crate::campaign::outcome::tests::{cell, run};
    use crate::campaign::outcome::{CellResult, Verdict};

    fn result(expect: Expectation, met: &[bool]) -> CellResult {
        let runs = met
            .iter()
            .enumerate()
            .map(|(k, &m)| run(k as u64, Some(if m { Met::Yes } else { Met::No(vec!["no".into()]) })))
            .collect();
        CellResult {
            cell: cell("c", expect, met.len() as u32),
            verdict: Verdict::Met,
            reasons: vec![],
            runs,
            detection: None,
            elapsed: Duration::ZERO,
        }
    }

    /// 9 of 10 is the hunting bar, 10 of 10 the holding one.
    #[test]
    fn the_bar_is_nine_in_ten_for_hunting_cells_and_all_for_the_others() {
        let hunting = || Expectation::from_parts(None, &["lost-write".into()], &[], &[], &[]).unwrap();
        let valid = || Expectation::from_parts(Some("valid"), &[], &[], &[], &[]).unwrap();
        let nine = [true, true, true, true, false, true, true, true, true, true];
        let got = rows(&[result(hunting(), &nine), result(hunting(), &nine[..5]), result(valid(), &nine)]);
        assert_eq!(
            got.iter().map(|r| (r.met, r.runs, r.passes)).collect::<Vec<_>>(),
            [(9, 10, true), (4, 5, false), (9, 10, false)]
        );
        assert_eq!(got[0].median_detection_s, Some(4.5), "the runs' first anomalous op is at 4.5 s");
        assert_eq!(got[2].median_detection_s, None, "a holding cell detects nothing");
        let table = render(&got);
        assert!(
            table.contains("9/10") && table.contains("FLAKY") && table.contains("2 of 3 cells below the bar"),
            "{table}"
        );
    }
}
