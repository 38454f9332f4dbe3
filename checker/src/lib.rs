//! The checker: reads a history of what clients asked and were told, and
//! proves what went wrong with the exact records involved.
//!
//! A pure library: no network I/O, ever. The `faultline check` and
//! `faultline gen-history` commands are thin wrappers around it.
//!
//! # Layout
//! - [`op`]: the public history format (one [`op::Op`] per JSON line), which
//!   the harness also writes with.
//! - [`history`]: the streaming parser and the compact, indexed history.
//! - [`anomalies`]: one file per anomaly type, each with a `check` function.
//! - [`guarantees`]: what a run promised; which anomaly types it permits.
//! - [`verdict`]: `results.json`; [`summary`]: its short human text.
//! - [`availability`]: ok/fail/info rates, latency, unavailability and
//!   fault windows, from the history alone.
//! - [`generator`]: synthetic histories with exactly-injected anomalies.
//! - [`replicas`]: the `replicas.json` replica dumps.
//! - [`sink`]: the `sink.jsonl` rows of the consumers' downstream sink.

pub mod anomalies;
pub mod anomaly;
pub mod availability;
pub mod elections;
pub mod error;
pub mod generator;
pub mod guarantees;
pub mod history;
pub mod modes;
pub mod op;
pub mod power_loss;
pub mod replicas;
pub mod sink;
pub mod summary;
mod util;
pub mod verdict;

#[cfg(test)]
mod testing;

use std::io::BufReader;
use std::path::{Path, PathBuf};

pub use anomaly::{Anomaly, AnomalyKind, Findings};
pub use error::{Error, Result};
pub use guarantees::Guarantees;
pub use history::History;
pub use replicas::Replicas;
pub use sink::Sink;
pub use verdict::{Results, Validity};

/// The history file name inside a run's store directory.
pub const HISTORY_FILE: &str = "history.jsonl";
/// The run header holding `"guarantees"`, next to the history.
pub const TEST_FILE: &str = "test.json";
/// Replica log dumps, next to the history.
pub const REPLICAS_FILE: &str = "replicas.json";
/// What each node said partitions' leaders and epochs were, next to the history.
pub const ELECTIONS_FILE: &str = "elections.jsonl";
/// The consumers' sink rows after the run, next to the history.
pub const SINK_FILE: &str = "sink.jsonl";
/// Where results are written, next to the history.
pub const RESULTS_FILE: &str = "results.json";
/// A run directory's record that the harness lost control of the cluster
/// (`{"lost_control": "<reason>"}`); absent when it kept control.
pub const CONTROL_FILE: &str = "control.json";

/// What a check reads besides the history and the guarantees. Each input is
/// optional; the analyses that need a missing one are listed under
/// `not_checked` with the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// `replicas.json`, for `replica-divergence`.
    pub replicas: Option<&'a Replicas>,
    /// `sink.jsonl`, for `lost-processing` and `duplicate-processing`.
    pub sink: Option<&'a Sink>,
    /// `elections.jsonl`, for `metadata-regression`.
    pub elections: Option<&'a elections::Elections>,
    /// Why the harness lost control of the system under test, when it did
    /// (a node's data directory replaced, the cluster removed from outside):
    /// the verdict is then unknown, never a claim about the system.
    pub lost_control: Option<&'a str>,
}

/// Checks a parsed history with replica dumps but no sink.
pub fn check(h: &History, g: &Guarantees, replicas: Option<&Replicas>) -> Results {
    check_with(h, g, &Inputs { replicas, ..Inputs::default() })
}

/// Checks a parsed history with every input the run left.
pub fn check_with(h: &History, g: &Guarantees, inputs: &Inputs<'_>) -> Results {
    let mut findings = Findings::default();
    anomalies::run_all(h, g, inputs, &mut findings);
    verdict::verdict(h, g, &findings, inputs)
}

/// A run's history checked with every input next to it.
#[derive(Debug)]
pub struct Checked {
    pub history: History,
    pub results: Results,
    pub replicas: Option<Replicas>,
}

/// Where a run's files are: PATH is a history file or a store directory.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub history: PathBuf,
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn locate(path: &Path) -> RunFiles {
        if path.is_dir() {
            RunFiles { history: path.join(HISTORY_FILE), dir: path.to_path_buf() }
        } else {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            RunFiles { history: path.to_path_buf(), dir }
        }
    }

    pub fn read_history(&self) -> Result<History> {
        let file =
            std::fs::File::open(&self.history).map_err(|source| Error::Io { path: self.history.clone(), source })?;
        History::parse(BufReader::with_capacity(1 << 20, file)).map_err(|e| match e {
            Error::Io { source, .. } => Error::Io { path: self.history.clone(), source },
            other => other,
        })
    }

    /// `test.json`'s guarantees, or everything promised when it is absent.
    pub fn guarantees(&self) -> Result<Guarantees> {
        let p = self.dir.join(TEST_FILE);
        if p.exists() { Guarantees::from_test_json(&p) } else { Ok(Guarantees::default()) }
    }

    /// `elections.jsonl` next to the history, or `None` when there is none.
    pub fn elections(&self) -> Result<Option<elections::Elections>> {
        let p = self.dir.join(ELECTIONS_FILE);
        if p.exists() { elections::load(&p).map(Some) } else { Ok(None) }
    }

    pub fn replicas(&self) -> Result<Option<Replicas>> {
        let p = self.dir.join(REPLICAS_FILE);
        if p.exists() { replicas::load(&p).map(Some) } else { Ok(None) }
    }

    /// The reason in `control.json`, if the harness lost control of the run.
    pub fn lost_control(&self) -> Result<Option<String>> {
        #[derive(serde::Deserialize)]
        struct Control {
            lost_control: Option<String>,
        }
        let path = self.dir.join(CONTROL_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let c: Control =
            serde_json::from_str(&text).map_err(|e| Error::BadFile { path: path.clone(), message: e.to_string() })?;
        Ok(c.lost_control)
    }

    /// Reads the history and every input next to it, and checks it under
    /// `g`: what `faultline check` and `faultline report` do with a run
    /// directory.
    pub fn check(&self, g: &Guarantees) -> Result<Checked> {
        let replicas = self.replicas()?;
        let sink = self.read_sink()?;
        let history = self.read_history()?;
        let lost_control = self.lost_control()?;
        let elections = self.elections()?;
        let inputs = Inputs {
            replicas: replicas.as_ref(),
            sink: sink.as_ref(),
            elections: elections.as_ref(),
            lost_control: lost_control.as_deref(),
        };
        let results = check_with(&history, g, &inputs);
        Ok(Checked { history, results, replicas })
    }

    /// `sink.jsonl` next to the history, or `None` when there is none. A bad
    /// line is a [`Error::BadFile`] naming the file, line and column.
    pub fn read_sink(&self) -> Result<Option<Sink>> {
        let path = self.dir.join(SINK_FILE);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        Sink::parse(BufReader::with_capacity(1 << 20, file)).map(Some).map_err(|e| match e {
            Error::Io { source, .. } => Error::Io { path: path.clone(), source },
            Error::Malformed { line, column, message } => {
                Error::BadFile { path: path.clone(), message: format!("line {line}, column {column}: {message}") }
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No sink.jsonl is `None`; a bad line names the file, line and column.
    #[test]
    fn read_sink_absent_present_and_bad() {
        let dir = std::env::temp_dir().join(format!("faultline-read-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = RunFiles::locate(&dir);
        let absent = files.read_sink();
        std::fs::write(dir.join(SINK_FILE), "{\"slot\":0,\"partition\":\"t/0\",\"offset\":1,\"value\":2}\n").unwrap();
        let present = files.read_sink();
        std::fs::write(
            dir.join(SINK_FILE),
            "{\"slot\":0,\"partition\":\"t/0\",\"offset\":1,\"value\":2}\n{\"slot\":0}\n",
        )
        .unwrap();
        let bad = files.read_sink();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(absent, Ok(None)), "{absent:?}");
        assert_eq!(present.unwrap().map(|s| s.rows().len()), Some(1));
        match bad {
            Err(Error::BadFile { path, message }) => {
                assert!(path.ends_with(SINK_FILE), "{}", path.display());
                assert!(message.starts_with("line 2, column "), "{message}");
            }
            other => panic!("expected a bad sink file, got {other:?}"),
        }
    }
}
