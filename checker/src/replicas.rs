//! `replicas.json`: each replica's log as dumped by the harness after the
//! final heal, for the `replica-divergence` analysis. Shape:
//! `{"<topic>/<p>": {"<node>": {"log_end_offset": N, "records": [[offset, leader_epoch, value], ...]}}}`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::op::RecordValue;

/// One replica's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaLog {
    pub log_end_offset: u64,
    /// `(offset, leader_epoch, value)`, any order.
    pub records: Vec<(u64, u64, RecordValue)>,
}

/// Partition name → node name → log.
pub type Replicas = BTreeMap<String, BTreeMap<String, ReplicaLog>>;

pub fn load(path: &Path) -> Result<Replicas> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
    serde_json::from_str(&text).map_err(|e| Error::BadFile { path: path.into(), message: e.to_string() })
}
