//! `elections.jsonl`: what each node said a partition's leader and leader
//! epoch were, over the run, for the `metadata-regression` analysis. The
//! harness asks every node a few times a second and writes a line whenever
//! a node's answer for a partition changes. One JSON object per line:
//! `{"time_ns": 812000000, "node": "n1", "partition": "events/0", "leader": 2, "epoch": 3}`
//! (`leader` is `null` while the partition is offline).

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One node's answer about one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub time_ns: u64,
    pub node: String,
    pub partition: String,
    pub leader: Option<i32>,
    pub epoch: i32,
}

/// Every observation, in file order.
pub type Elections = Vec<Observation>;

/// Reads `elections.jsonl`; a bad line is an error naming the file and line.
pub fn load(path: &Path) -> Result<Elections> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| Error::Io { path: path.into(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let obs = serde_json::from_str(&line)
            .map_err(|e| Error::BadFile { path: path.into(), message: format!("line {}: {e}", i + 1) })?;
        out.push(obs);
    }
    Ok(out)
}
