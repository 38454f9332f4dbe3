//! What the run promised, and which anomalies its configuration permits.
//!
//! An anomaly is not always a broken promise: acks=1 permits losing
//! acknowledged writes on failover, idempotence off permits duplicates. Like
//! Jepsen's allowed error types per test option, [`Guarantees::permits`]
//! turns the rules of `kafka-semantics.md` §9 into a per-type "permitted,
//! because ..." or "violation". A history with no guarantees promises
//! everything.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::anomaly::AnomalyKind;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    #[serde(rename = "0")]
    Zero,
    #[serde(rename = "1")]
    One,
    #[serde(rename = "all")]
    All,
}

/// When the consumer commits offsets relative to processing (for the
/// `process` analyses of a later issue; recorded here so results show it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    Auto,
    AfterProcess,
    BeforeProcess,
    None,
}

/// How processed records reach the sink (for the `enqueue`/`process`
/// analyses of a later issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkMode {
    None,
    Plain,
    Idempotent,
}

/// The run's configuration, as far as verdicts depend on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guarantees {
    pub acks: Acks,
    pub idempotence: bool,
    pub max_in_flight: u32,
    pub unclean_leader_election: bool,
    pub commit: CommitMode,
    pub sink_mode: SinkMode,
}

impl Default for Guarantees {
    /// Everything promised: acks=all, idempotent producer, clean elections.
    fn default() -> Self {
        Guarantees {
            acks: Acks::All,
            idempotence: true,
            max_in_flight: 5,
            unclean_leader_election: false,
            commit: CommitMode::AfterProcess,
            sink_mode: SinkMode::Idempotent,
        }
    }
}

pub const KEYS: [&str; 6] = ["acks", "idempotence", "max_in_flight", "unclean_leader_election", "commit", "sink_mode"];

impl Guarantees {
    /// Sets one key from its textual value, as in `--guarantees acks=1`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |message: &str| Error::BadGuarantee { item: format!("{key}={value}"), message: message.to_owned() };
        let boolean = || match value {
            "true" | "on" => Ok(true),
            "false" | "off" => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        match key {
            "acks" => {
                self.acks = match value {
                    "0" => Acks::Zero,
                    "1" => Acks::One,
                    "all" | "-1" => Acks::All,
                    _ => return Err(bad("expected 0, 1 or all")),
                }
            }
            "idempotence" => self.idempotence = boolean()?,
            "max_in_flight" => {
                self.max_in_flight = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("expected a positive integer"))?
            }
            "unclean_leader_election" => self.unclean_leader_election = boolean()?,
            "commit" => {
                self.commit = serde_json::from_value(serde_json::Value::String(value.into()))
                    .map_err(|_| bad("expected auto, after-process, before-process or none"))?
            }
            "sink_mode" => {
                self.sink_mode = serde_json::from_value(serde_json::Value::String(value.into()))
                    .map_err(|_| bad("expected none, plain or idempotent"))?
            }
            _ => return Err(bad(&format!("unknown key; known keys: {}", KEYS.join(", ")))),
        }
        Ok(())
    }

    /// Applies `key=value,key=value` on top of `self`.
    pub fn apply_list(&mut self, list: &str) -> Result<()> {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| Error::BadGuarantee { item: item.into(), message: "expected key=value".into() })?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// Reads the top-level `"guarantees"` object of a `test.json`; missing
    /// keys keep their promise-everything defaults.
    pub fn from_test_json(path: &Path) -> Result<Guarantees> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::BadFile { path: path.into(), message: e.to_string() })?;
        let mut g = Guarantees::default();
        let Some(obj) = doc.get("guarantees") else { return Ok(g) };
        let obj = obj
            .as_object()
            .ok_or_else(|| Error::BadFile { path: path.into(), message: "\"guarantees\" must be an object".into() })?;
        for (k, v) in obj {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            g.set(k, &text)?;
        }
        Ok(g)
    }

    /// `Some(reason)` when this configuration permits anomalies of `kind`.
    pub fn permits(&self, kind: AnomalyKind) -> Option<String> {
        let loss = self.loss_reason();
        let reuse = self.offset_reuse_reason();
        match kind {
            AnomalyKind::LostWrite | AnomalyKind::Unseen => loss,
            AnomalyKind::Duplicate => {
                (!self.idempotence).then(|| "idempotence=false: a retried send may be appended twice".to_owned())
            }
            AnomalyKind::InconsistentOffsets | AnomalyKind::RealtimeCycle => reuse,
            AnomalyKind::NonmonotonicSend => {
                if !self.idempotence && self.max_in_flight > 1 {
                    Some("idempotence=false with max_in_flight>1: retries may reorder sends".to_owned())
                } else {
                    reuse
                }
            }
            AnomalyKind::PollSkip | AnomalyKind::NonmonotonicPoll | AnomalyKind::OrderCycle => self
                .unclean_leader_election
                .then(|| "unclean_leader_election=true: the high watermark can move back".to_owned()),
            AnomalyKind::ReplicaDivergence | AnomalyKind::AbortedRead | AnomalyKind::PhantomRead => None,
        }
    }

    fn loss_reason(&self) -> Option<String> {
        match (self.acks, self.unclean_leader_election) {
            (Acks::Zero, _) => Some("acks=0: sends are never truly acknowledged".to_owned()),
            (Acks::One, _) => Some("acks=1 allows loss of acknowledged writes on failover".to_owned()),
            (_, true) => Some("unclean_leader_election=true allows loss of acknowledged writes".to_owned()),
            _ => None,
        }
    }

    /// Truncating acknowledged records makes their offsets available again.
    fn offset_reuse_reason(&self) -> Option<String> {
        match (self.acks, self.unclean_leader_election) {
            (_, true) => Some("unclean_leader_election=true: truncation reuses offsets".to_owned()),
            (Acks::Zero | Acks::One, _) => {
                Some("acks=0/1: failover truncates acknowledged records and reuses their offsets".to_owned())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_sets_keys_and_rejects_unknown_ones() {
        let mut g = Guarantees::default();
        g.apply_list("acks=1, idempotence=false,max_in_flight=5").unwrap();
        assert_eq!((g.acks, g.idempotence, g.max_in_flight), (Acks::One, false, 5));
        assert!(g.permits(AnomalyKind::LostWrite).is_some());
        assert!(g.permits(AnomalyKind::Duplicate).is_some());
        assert!(g.permits(AnomalyKind::PhantomRead).is_none());
        assert!(matches!(g.apply_list("acks=2"), Err(Error::BadGuarantee { .. })));
        assert!(matches!(g.apply_list("colour=blue"), Err(Error::BadGuarantee { .. })));
    }

    #[test]
    fn defaults_permit_nothing() {
        let g = Guarantees::default();
        for k in AnomalyKind::ALL {
            assert_eq!(g.permits(k), None, "{k}");
        }
    }
}
