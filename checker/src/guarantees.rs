//! What the run promised, and which anomalies its configuration permits.
//!
//! An anomaly is not always a broken promise: acks=1 permits losing
//! acknowledged writes on failover, idempotence off permits duplicates. Like
//! Jepsen's allowed error types per test option, [`Guarantees::permits`]
//! turns the rules of `docs/semantics.md` §9 into a per-type "permitted,
//! because ..." or "violation". A history with no guarantees promises
//! everything.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::anomaly::AnomalyKind;
use crate::error::{Error, Result};

use crate::modes::none_or;
pub use crate::modes::{Acks, CommitStrategy, OffsetReset, OnSinkError, Processing, ProducerMode, SinkMode};

/// The run's configuration, as far as verdicts depend on it.
///
/// Keys missing from a serialized form take their defaults, so results and
/// headers written before a key existed still read back.
///
/// Keys are kebab-case, as everywhere users see them (`faultline run`'s
/// options, campaign files); the snake_case of older `test.json` files is
/// still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct Guarantees {
    pub acks: Acks,
    pub idempotence: bool,
    #[serde(alias = "max_in_flight")]
    pub max_in_flight: u32,
    #[serde(alias = "unclean_leader_election")]
    pub unclean_leader_election: bool,
    /// `None` ("none"): the run had no consumers.
    #[serde(with = "none_or")]
    pub commit: Option<CommitStrategy>,
    /// `None` ("none"): the run had no sink.
    #[serde(with = "none_or", alias = "sink_mode")]
    pub sink_mode: Option<SinkMode>,
    #[serde(alias = "producer_mode")]
    pub producer_mode: ProducerMode,
    pub processing: Processing,
    #[serde(alias = "on_sink_error")]
    pub on_sink_error: OnSinkError,
    #[serde(alias = "auto_offset_reset")]
    pub auto_offset_reset: OffsetReset,
    /// The brokers' `flush.messages`: 1 fsyncs every append before it is
    /// acknowledged; Kafka's default (2^63-1) leaves flushing to the OS.
    pub flush_messages: u64,
}

/// Kafka's default `flush.messages` (`log.flush.interval.messages`): Long.MAX_VALUE.
pub const FLUSH_MESSAGES_DEFAULT: u64 = i64::MAX as u64;

impl Default for Guarantees {
    /// Everything promised: acks=all, idempotent producer, clean elections,
    /// a synchronous producer, and a consumer that processes inline, retries
    /// its sink and commits after processing into an idempotent sink.
    fn default() -> Self {
        Guarantees {
            acks: Acks::All,
            idempotence: true,
            max_in_flight: 5,
            unclean_leader_election: false,
            commit: Some(CommitStrategy::AfterProcess),
            sink_mode: Some(SinkMode::Idempotent),
            producer_mode: ProducerMode::Sync,
            processing: Processing::Inline,
            on_sink_error: OnSinkError::Retry,
            auto_offset_reset: OffsetReset::Earliest,
            flush_messages: FLUSH_MESSAGES_DEFAULT,
        }
    }
}

pub const KEYS: [&str; 11] = [
    "acks",
    "idempotence",
    "max-in-flight",
    "unclean-leader-election",
    "commit",
    "sink-mode",
    "producer-mode",
    "processing",
    "on-sink-error",
    "auto-offset-reset",
    "flush-messages",
];

impl Guarantees {
    /// Sets one key from its textual value, as in `--guarantees acks=1`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |message: &str| Error::BadGuarantee { item: format!("{key}={value}"), message: message.to_owned() };
        let boolean = || match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        let named = |e: crate::modes::UnknownName| bad(&e.to_string());
        // snake_case is how older `test.json` files and habits spell keys.
        match key.replace('_', "-").as_str() {
            "acks" => self.acks = value.parse().map_err(named)?,
            "idempotence" => self.idempotence = boolean()?,
            "max-in-flight" => {
                self.max_in_flight =
                    value.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("expected a positive integer"))?
            }
            "unclean-leader-election" => self.unclean_leader_election = boolean()?,
            "commit" => self.commit = none_or::parse(value).map_err(named)?,
            "sink-mode" => self.sink_mode = none_or::parse(value).map_err(named)?,
            "producer-mode" => self.producer_mode = value.parse().map_err(named)?,
            "processing" => self.processing = value.parse().map_err(named)?,
            "on-sink-error" => self.on_sink_error = value.parse().map_err(named)?,
            "auto-offset-reset" => self.auto_offset_reset = value.parse().map_err(named)?,
            "flush-messages" => {
                self.flush_messages =
                    value.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("expected a positive integer"))?
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
            AnomalyKind::Duplicate => self.log_duplicate_reason(),
            AnomalyKind::InconsistentOffsets | AnomalyKind::RealtimeCycle => reuse,
            AnomalyKind::NonmonotonicSend => {
                if !self.idempotence && self.max_in_flight > 1 {
                    Some("idempotence=false with max-in-flight>1: retries may reorder sends".to_owned())
                } else {
                    reuse
                }
            }
            AnomalyKind::PollSkip | AnomalyKind::NonmonotonicPoll | AnomalyKind::OrderCycle => self
                .unclean_leader_election
                .then(|| "unclean-leader-election=true: the high watermark can move back".to_owned()),
            AnomalyKind::ReplicaDivergence
            | AnomalyKind::AbortedRead
            | AnomalyKind::PhantomRead
            | AnomalyKind::MetadataRegression => None,
            AnomalyKind::LostEnqueued => (self.producer_mode == ProducerMode::FireAndForget).then(|| {
                "producer-mode=fire-and-forget: Kafka never promises records still in the producer's buffer; \
                 a producer crash, or a batch that fails for good unheard, loses them (docs/semantics.md R4.10)"
                    .to_owned()
            }),
            AnomalyKind::DroppedEnqueued => (self.producer_mode == ProducerMode::FireAndForget).then(|| {
                "producer-mode=fire-and-forget: the buffer refused the record and said so; an application \
                 that ignores what send() returns drops it (docs/semantics.md R4.10)"
                    .to_owned()
            }),
            AnomalyKind::LostUnacknowledged => (self.acks == Acks::Zero).then(|| {
                "acks=0: nothing was acknowledged; a record counts as sent once it is on the wire, and a leader \
                 that dies or a connection that breaks loses it"
                    .to_owned()
            }),
            AnomalyKind::LostProcessing => self.processing_loss_reason(),
            AnomalyKind::DuplicateProcessing => self.processing_duplicate_reason(),
            AnomalyKind::ZombieCommit => self.unclean_leader_election.then(|| {
                "unclean-leader-election=true: the offsets partition can lose the stored generation".to_owned()
            }),
        }
    }

    /// Why the log itself may hold one value at two offsets.
    fn log_duplicate_reason(&self) -> Option<String> {
        if !self.idempotence {
            Some("idempotence=false: a retried send may be appended twice".to_owned())
        } else if self.acks != Acks::All {
            Some("acks=0/1: Kafka's idempotence needs acks=all, so a retried send may be appended twice".to_owned())
        } else if self.unclean_leader_election {
            Some(
                "unclean-leader-election=true: an unclean leader lacks the producer state that deduplicates retries"
                    .to_owned(),
            )
        } else {
            None
        }
    }

    /// Why the group may commit past a record it never processed
    /// (docs/semantics.md §8.3 and §9 rule 9: C2 and C4 allow it, C1 and C3
    /// do not).
    fn processing_loss_reason(&self) -> Option<String> {
        if self.commit == Some(CommitStrategy::Auto) && self.processing == Processing::Queue {
            Some(
                "commit=auto with processing=queue: an auto-commit commits records still queued for processing \
                 (docs/semantics.md §8.3 C2)"
                    .to_owned(),
            )
        } else if self.commit == Some(CommitStrategy::BeforeProcess) {
            Some(
                "commit=before-process: offsets are committed before processing, at most once \
                 (docs/semantics.md §8.3 C4)"
                    .to_owned(),
            )
        } else if self.on_sink_error == OnSinkError::Skip {
            Some("on-sink-error=skip: records the sink refused are dropped and committed past".to_owned())
        } else if self.unclean_leader_election {
            Some("unclean-leader-election=true: truncation reuses offsets the group already committed past".to_owned())
        } else if self.auto_offset_reset == OffsetReset::Latest {
            Some(
                "auto-offset-reset=latest: a consumer without a committed offset skips what was written before it \
                 (docs/semantics.md §8.3 C5)"
                    .to_owned(),
            )
        } else {
            None
        }
    }

    /// Why the sink may hold one value twice: at-least-once commits
    /// redeliver records processed but not yet committed, and duplicates in
    /// the log reach the sink, unless an idempotent sink absorbs them.
    fn processing_duplicate_reason(&self) -> Option<String> {
        if self.sink_mode != Some(SinkMode::Plain) {
            return None;
        }
        match self.commit {
            Some(c @ (CommitStrategy::Auto | CommitStrategy::AfterProcess)) => Some(format!(
                "sink-mode=plain with commit={}: at-least-once redelivers records processed but not yet committed \
                 (docs/semantics.md §8.3 C1/C3)",
                c
            )),
            _ => self
                .log_duplicate_reason()
                .map(|why| format!("sink-mode=plain and {why}; log duplicates reach the sink")),
        }
    }

    fn loss_reason(&self) -> Option<String> {
        match (self.acks, self.unclean_leader_election) {
            (Acks::Zero, _) => Some("acks=0: sends are never truly acknowledged".to_owned()),
            (Acks::One, _) => Some("acks=1 allows loss of acknowledged writes on failover".to_owned()),
            (_, true) => Some("unclean-leader-election=true allows loss of acknowledged writes".to_owned()),
            _ => None,
        }
    }

    /// Truncating acknowledged records makes their offsets available again.
    fn offset_reuse_reason(&self) -> Option<String> {
        match (self.acks, self.unclean_leader_election) {
            (_, true) => Some("unclean-leader-election=true: truncation reuses offsets".to_owned()),
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
        g.apply_list("acks=1, idempotence=false,max-in-flight=5").unwrap();
        assert_eq!((g.acks, g.idempotence, g.max_in_flight), (Acks::One, false, 5));
        assert!(g.permits(AnomalyKind::LostWrite).is_some());
        assert!(g.permits(AnomalyKind::Duplicate).is_some());
        assert!(g.permits(AnomalyKind::PhantomRead).is_none());
        assert!(matches!(g.apply_list("acks=2"), Err(Error::BadGuarantee { .. })));
        assert!(matches!(g.apply_list("colour=blue"), Err(Error::BadGuarantee { .. })));
    }

    /// The new keys parse from `--guarantees` and from test.json alike, and
    /// serialize back to the same names.
    #[test]
    fn application_keys_round_trip() {
        let mut g = Guarantees::default();
        g.apply_list("producer-mode=fire-and-forget,processing=queue,on-sink-error=skip,commit=auto,sink-mode=plain")
            .unwrap();
        assert_eq!(
            (g.producer_mode, g.processing, g.on_sink_error),
            (ProducerMode::FireAndForget, Processing::Queue, OnSinkError::Skip)
        );
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["producer-mode"], "fire-and-forget");
        assert_eq!(json["on-sink-error"], "skip");
        let dir = std::env::temp_dir().join(format!("faultline-guarantees-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("test.json");
        std::fs::write(&path, serde_json::to_string(&serde_json::json!({"guarantees": json})).unwrap()).unwrap();
        let back = Guarantees::from_test_json(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(back.unwrap(), g);
        // Serialized guarantees without the new keys read back with defaults.
        let old: Guarantees = serde_json::from_str(r#"{"acks":"1","commit":"auto"}"#).unwrap();
        assert_eq!((old.acks, old.producer_mode), (Acks::One, ProducerMode::Sync));
        // Older test.json files spell keys in snake_case; both still read.
        let snake: Guarantees = serde_json::from_str(r#"{"producer_mode":"callback","max_in_flight":1}"#).unwrap();
        assert_eq!((snake.producer_mode, snake.max_in_flight), (ProducerMode::Callback, 1));
        let mut s = Guarantees::default();
        s.apply_list("max_in_flight=2,on_sink_error=skip").unwrap();
        assert_eq!((s.max_in_flight, s.on_sink_error), (2, OnSinkError::Skip));
        assert!(s.apply_list("idempotence=on").is_err(), "booleans are true or false, as everywhere");
        for bad in ["producer-mode=async", "processing=batch", "on-sink-error=ignore"] {
            match g.apply_list(bad) {
                Err(Error::BadGuarantee { item, .. }) => assert_eq!(item, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match g.apply_list("on_sink_errors=skip") {
            Err(Error::BadGuarantee { item, message }) => {
                assert!(item.starts_with("on_sink_errors") && message.contains("unknown key"), "{item}: {message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The processing anomalies' permission rules (docs/semantics.md §8.3).
    #[test]
    fn processing_rules() {
        let with = |list: &str| {
            let mut g = Guarantees::default();
            g.apply_list(list).unwrap();
            g
        };
        let loss = |list: &str| with(list).permits(AnomalyKind::LostProcessing).is_some();
        let dup = |list: &str| with(list).permits(AnomalyKind::DuplicateProcessing).is_some();
        assert!(loss("commit=auto,processing=queue"));
        assert!(!loss("commit=auto,processing=inline"));
        assert!(!loss("commit=after-process,processing=queue"));
        assert!(loss("commit=before-process"));
        assert!(loss("on-sink-error=skip"));
        assert!(loss("unclean-leader-election=true"));
        assert!(loss("auto-offset-reset=latest"));
        assert!(!loss("auto-offset-reset=earliest"));
        assert!(dup("sink-mode=plain,commit=auto"));
        assert!(dup("sink-mode=plain,commit=after-process"));
        assert!(!dup("sink-mode=plain,commit=before-process"));
        assert!(dup("sink-mode=plain,commit=before-process,idempotence=false"));
        assert!(dup("sink-mode=plain,commit=before-process,acks=1"));
        assert!(!dup("sink-mode=idempotent,commit=auto,idempotence=false"));
        let lost_enqueued = |list: &str| with(list).permits(AnomalyKind::LostEnqueued);
        assert!(lost_enqueued("producer-mode=fire-and-forget").unwrap().contains("R4.10"));
        assert_eq!(lost_enqueued("producer-mode=callback"), None);
        // Log duplicates: idempotence off, or anything that defeats it.
        assert!(with("acks=1").permits(AnomalyKind::Duplicate).is_some());
        assert!(with("unclean-leader-election=true").permits(AnomalyKind::Duplicate).is_some());
    }

    #[test]
    fn defaults_permit_nothing() {
        let g = Guarantees::default();
        for k in AnomalyKind::ALL {
            assert_eq!(g.permits(k), None, "{k}");
        }
    }
}
