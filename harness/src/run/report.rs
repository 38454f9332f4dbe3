//! What a run came to: [`RunReport`] for the CLI and campaigns, with the
//! text `faultline run` prints. Running never prints; the caller decides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faultline_checker::op::OpType;
use faultline_checker::{Results, Validity};

use crate::exit::{EXIT_BAD_ARGS, EXIT_HARNESS};

/// What one run came to, for `faultline run` and for campaigns.
#[derive(Debug)]
pub struct RunReport {
    /// The run's exit code: 0 valid, 1 invalid, 2 unknown, 254 bad
    /// arguments, 255 harness failure.
    pub code: u8,
    /// The run's store directory, when one was created.
    pub dir: Option<PathBuf>,
    /// The checker's results, when the run got that far.
    pub results: Option<Results>,
    /// The command that reproduces the run.
    pub reproduce: String,
    /// Why the run could not start or finish (bad arguments, harness failure).
    pub error: Option<String>,
    /// The run was stopped by SIGINT or SIGTERM: a campaign stops too.
    pub interrupted: bool,
    /// The ops table and the verdict, when the run was checked.
    pub summary: Option<String>,
}

impl RunReport {
    pub fn bad_args(error: String, reproduce: String) -> RunReport {
        RunReport { code: EXIT_BAD_ARGS, error: Some(error), ..RunReport::failed(None, String::new(), reproduce) }
    }

    pub fn failed(dir: Option<PathBuf>, error: String, reproduce: String) -> RunReport {
        RunReport {
            code: EXIT_HARNESS,
            dir,
            results: None,
            reproduce,
            error: Some(error),
            interrupted: false,
            summary: None,
        }
    }

    /// Prints what `faultline run` shows: the summary (stdout), the
    /// failure and the reproduce command (stderr).
    pub fn print(&self) {
        if let Some(s) = &self.summary {
            print!("{s}");
        }
        if let Some(e) = &self.error {
            match (&self.dir, &self.summary) {
                (Some(dir), None) if self.code == EXIT_HARNESS => {
                    println!("Run failed (harness): {e}\nStore: {}", dir.display())
                }
                _ => eprintln!("faultline run: {e}"),
            }
        }
        if self.code != 0 && self.code != EXIT_BAD_ARGS {
            eprintln!("faultline run: reproduce with: {}", self.reproduce);
        }
    }
}

/// What a completed run found.
pub struct Outcome {
    pub valid: Validity,
    pub results: Results,
    /// Ops by (f, type), from the history writer.
    pub counts: BTreeMap<(String, OpType), u64>,
}

/// The ops table, the checker's summary and the store directory.
pub fn summary(dir: &Path, o: &Outcome) -> String {
    let mut fs: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((f, t), n) in &o.counts {
        fs.entry(f.as_str()).or_default().insert(t.as_str(), *n);
    }
    let mut text = String::from("Ops by f (invoke/ok/fail/info):\n");
    // Fault ops have long names (`start-partition-leader-from-followers`).
    let w = fs.keys().map(|f| f.len()).max().unwrap_or(0).max(8);
    for (f, m) in &fs {
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        text.push_str(&format!("  {f:<w$} {:>8} {:>8} {:>8} {:>8}\n", g("invoke"), g("ok"), g("fail"), g("info")));
    }
    text.push_str(&faultline_checker::summary::summary(&o.results));
    text.push_str(&format!("Store: {}\n", dir.display()));
    let report = dir.join(crate::report::REPORT_FILE);
    if report.exists() {
        text.push_str(&format!("Report: {}\n", report.display()));
    }
    text
}
