//! What a cell came to over its seeds, and the campaign's exit code.
//!
//! A cell's seeds run in order. A *hunting* cell (one that expects
//! something to appear) stops at the first seed that meets its
//! expectation; any other cell stops at the first seed that misses it.
//! A harness failure or bad arguments end the cell as an error. The
//! campaign's exit code is the first that applies: 255 when a cell hit an
//! error (or the campaign was interrupted), 1 when a cell missed its
//! expectation, 2 when a cell was undecided, 0 when all met theirs.

use std::path::PathBuf;
use std::time::Duration;

use super::expect::{Met, Observation};
use super::file::Cell;
use crate::exit::EXIT_HARNESS;

/// One seed's run of a cell.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub seed: u64,
    /// `faultline run`'s exit code.
    pub code: u8,
    pub dir: Option<PathBuf>,
    pub reproduce: String,
    /// Why the run could not start or finish.
    pub error: Option<String>,
    pub observation: Option<Observation>,
    /// `None` when the run ended without results.
    pub met: Option<Met>,
    /// Seconds into the run of the first op the expectation looked for.
    pub first_anomalous_s: Option<f64>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Mismatch,
    Unknown,
    Error,
    /// The campaign was interrupted before this cell ran.
    NotRun,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [Verdict::Met, Verdict::Mismatch, Verdict::Unknown, Verdict::Error, Verdict::NotRun];

    /// The verdict a label names, as `campaign.json` writes it.
    pub fn from_label(label: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.label() == label)
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "ok",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Unknown => "UNKNOWN",
            Verdict::Error => "ERROR",
            Verdict::NotRun => "not run",
        }
    }
}

/// When a hunting cell found what it hunted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// 1-based: how many seeds it took.
    pub seed_number: u32,
    pub seeds: u32,
    pub time_s: Option<f64>,
}

/// A cell's result.
#[derive(Debug, Clone)]
pub struct CellResult {
    pub cell: Cell,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub runs: Vec<SeedRun>,
    pub detection: Option<Detection>,
    pub elapsed: Duration,
}

impl CellResult {
    pub fn not_run(cell: Cell) -> CellResult {
        CellResult {
            cell,
            verdict: Verdict::NotRun,
            reasons: vec!["the campaign was interrupted before this cell ran".into()],
            runs: Vec::new(),
            detection: None,
            elapsed: Duration::ZERO,
        }
    }

    /// The run the table shows: the last one (the deciding seed).
    pub fn shown(&self) -> Option<&SeedRun> {
        self.runs.last()
    }
}

/// Whether the cell is decided after `runs` (no further seed needed).
pub fn decided(cell: &Cell, runs: &[SeedRun]) -> bool {
    let Some(last) = runs.last() else { return false };
    let settled = match &last.met {
        None => true,
        Some(Met::Yes) => cell.expect.hunts(),
        Some(Met::No(_)) => !cell.expect.hunts(),
        Some(Met::Unknown(_)) => false,
    };
    settled || runs.len() as u32 >= cell.seeds
}

/// The cell's result from its runs.
pub fn conclude(cell: Cell, runs: Vec<SeedRun>, elapsed: Duration) -> CellResult {
    let seeds = cell.seeds;
    let reasons_of = |r: &SeedRun| -> Vec<String> {
        match &r.met {
            None => vec![format!(
                "seed {}: {}",
                r.seed,
                r.error.clone().unwrap_or_else(|| format!("the run exited {}", r.code))
            )],
            Some(Met::No(w) | Met::Unknown(w)) => w.iter().map(|x| format!("seed {}: {x}", r.seed)).collect(),
            Some(Met::Yes) => vec![],
        }
    };
    let (verdict, reasons, detection) = if let Some(bad) = runs.iter().find(|r| r.met.is_none()) {
        (Verdict::Error, reasons_of(bad), None)
    } else if cell.expect.hunts() {
        match runs.iter().position(|r| r.met == Some(Met::Yes)) {
            Some(i) => (
                Verdict::Met,
                vec![],
                Some(Detection { seed_number: i as u32 + 1, seeds, time_s: runs[i].first_anomalous_s }),
            ),
            None => {
                let undecided = runs.iter().any(|r| matches!(r.met, Some(Met::Unknown(_))));
                let reasons = runs.iter().flat_map(reasons_of).collect();
                (if undecided { Verdict::Unknown } else { Verdict::Mismatch }, reasons, None)
            }
        }
    } else if let Some(miss) = runs.iter().find(|r| matches!(r.met, Some(Met::No(_)))) {
        (Verdict::Mismatch, reasons_of(miss), None)
    } else if runs.iter().any(|r| matches!(r.met, Some(Met::Unknown(_)))) {
        (Verdict::Unknown, runs.iter().flat_map(reasons_of).collect(), None)
    } else {
        (Verdict::Met, vec![], None)
    };
    CellResult { cell, verdict, reasons, runs, detection, elapsed }
}

/// The campaign's exit code from its cells.
pub fn exit_code(results: &[CellResult], interrupted: bool) -> u8 {
    exit_code_of(&results.iter().map(|r| r.verdict).collect::<Vec<_>>(), interrupted)
}

/// The campaign's exit code from its cells' verdicts (a merge of shards
/// has only those).
pub fn exit_code_of(verdicts: &[Verdict], interrupted: bool) -> u8 {
    let any = |v: Verdict| verdicts.contains(&v);
    if interrupted || any(Verdict::Error) || any(Verdict::NotRun) {
        EXIT_HARNESS
    } else if any(Verdict::Mismatch) {
        1
    } else if any(Verdict::Unknown) {
        2
    } else {
        0
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::campaign::expect::Expectation;
    use crate::campaign::file::Cell;

    pub fn cell(name: &str, expect: Expectation, seeds: u32) -> Cell {
        Cell {
            name: name.into(),
            base: name.into(),
            about: None,
            headline: false,
            settings: Default::default(),
            from_defaults: Default::default(),
            run: crate::run::RunSettings { seed: 1, ..Default::default() },
            timeline: None,
            seeds,
            expect,
        }
    }

    pub fn run(seed: u64, met: Option<Met>) -> SeedRun {
        SeedRun {
            seed,
            code: if met.is_some() { 0 } else { 255 },
            dir: None,
            reproduce: format!("faultline run --seed {seed}"),
            error: met.is_none().then(|| "cluster up failed".into()),
            observation: None,
            met,
            first_anomalous_s: Some(4.5),
            elapsed: Duration::from_secs(1),
        }
    }

    fn hunting() -> Expectation {
        Expectation::from_parts(None, &["lost-write".into()], &[], &[], &[]).unwrap()
    }

    fn valid() -> Expectation {
        Expectation::from_parts(Some("valid"), &[], &[], &[], &[]).unwrap()
    }

    #[test]
    fn a_hunting_cell_stops_at_its_first_detection_and_says_how_many_seeds_it_took() {
        let c = cell("h", hunting(), 5);
        let runs = vec![run(1, Some(Met::No(vec!["none".into()])))];
        assert!(!decided(&c, &runs));
        let runs = vec![runs[0].clone(), run(2, Some(Met::Yes))];
        assert!(decided(&c, &runs));
        let r = conclude(c, runs, Duration::from_secs(2));
        assert_eq!(r.verdict, Verdict::Met);
        assert_eq!(r.detection, Some(Detection { seed_number: 2, seeds: 5, time_s: Some(4.5) }));
    }

    #[test]
    fn a_hunting_cell_that_never_detects_misses_or_is_undecided() {
        let c = cell("h", hunting(), 2);
        let runs = vec![run(1, Some(Met::No(vec!["none".into()]))), run(2, Some(Met::No(vec!["none".into()])))];
        assert!(decided(&c, &runs), "out of seeds");
        assert_eq!(conclude(c.clone(), runs, Duration::ZERO).verdict, Verdict::Mismatch);
        let runs = vec![run(1, Some(Met::No(vec!["none".into()]))), run(2, Some(Met::Unknown(vec!["?".into()])))];
        assert_eq!(conclude(c, runs, Duration::ZERO).verdict, Verdict::Unknown);
    }

    #[test]
    fn a_cell_expecting_absence_must_hold_on_every_seed_and_stops_at_a_miss() {
        let c = cell("v", valid(), 3);
        let runs = vec![run(1, Some(Met::Yes))];
        assert!(!decided(&c, &runs));
        let runs = vec![run(1, Some(Met::Yes)), run(2, Some(Met::No(vec!["lost-write 3".into()])))];
        assert!(decided(&c, &runs));
        let r = conclude(c.clone(), runs, Duration::ZERO);
        assert_eq!(r.verdict, Verdict::Mismatch);
        assert_eq!(r.reasons, ["seed 2: lost-write 3"]);
        let all = vec![run(1, Some(Met::Yes)), run(2, Some(Met::Yes)), run(3, Some(Met::Yes))];
        assert!(decided(&c, &all));
        assert_eq!(conclude(c, all, Duration::ZERO).verdict, Verdict::Met);
    }

    #[test]
    fn a_harness_failure_ends_the_cell_as_an_error() {
        let c = cell("e", valid(), 3);
        let runs = vec![run(1, None)];
        assert!(decided(&c, &runs));
        let r = conclude(c, runs, Duration::ZERO);
        assert_eq!(r.verdict, Verdict::Error);
        assert!(r.reasons[0].contains("cluster up failed"));
    }

    #[test]
    fn exit_codes_take_the_first_that_applies() {
        let with = |vs: &[Verdict]| -> Vec<CellResult> {
            vs.iter().map(|v| CellResult { verdict: *v, ..CellResult::not_run(cell("x", valid(), 1)) }).collect()
        };
        assert_eq!(exit_code(&with(&[Verdict::Met, Verdict::Met]), false), 0);
        assert_eq!(exit_code(&with(&[Verdict::Met, Verdict::Unknown]), false), 2);
        assert_eq!(exit_code(&with(&[Verdict::Unknown, Verdict::Mismatch]), false), 1);
        assert_eq!(exit_code(&with(&[Verdict::Mismatch, Verdict::Error, Verdict::Unknown]), false), 255);
        assert_eq!(exit_code(&with(&[Verdict::Met]), true), 255);
        assert_eq!(exit_code(&with(&[Verdict::Met, Verdict::NotRun]), false), 255);
    }
}
