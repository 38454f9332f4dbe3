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
//! - [`verdict`]: `results.json` and the human summary.
//! - [`generator`]: synthetic histories with exactly-injected anomalies.
//! - [`replicas`]: the `replicas.json` replica dumps.

pub mod anomalies;
pub mod anomaly;
pub mod error;
pub mod generator;
pub mod guarantees;
pub mod history;
pub mod op;
pub mod replicas;
pub mod verdict;
mod util;

#[cfg(test)]
mod testing;

use std::io::BufReader;
use std::path::{Path, PathBuf};

pub use anomaly::{Anomaly, AnomalyKind, Findings};
pub use error::{Error, Result};
pub use guarantees::Guarantees;
pub use history::History;
pub use replicas::Replicas;
pub use verdict::{Results, Validity};

/// The history file name inside a run's store directory.
pub const HISTORY_FILE: &str = "history.jsonl";
/// The run header holding `"guarantees"`, next to the history.
pub const TEST_FILE: &str = "test.json";
/// Replica log dumps, next to the history.
pub const REPLICAS_FILE: &str = "replicas.json";
/// Where results are written, next to the history.
pub const RESULTS_FILE: &str = "results.json";

/// Checks a parsed history.
pub fn check(h: &History, g: &Guarantees, replicas: Option<&Replicas>) -> Results {
    let mut findings = Findings::default();
    anomalies::run_all(h, replicas, &mut findings);
    verdict::verdict(h, g, &findings, replicas.is_some())
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
        let file = std::fs::File::open(&self.history).map_err(|source| Error::Io { path: self.history.clone(), source })?;
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

    pub fn replicas(&self) -> Result<Option<Replicas>> {
        let p = self.dir.join(REPLICAS_FILE);
        if p.exists() { replicas::load(&p).map(Some) } else { Ok(None) }
    }
}
