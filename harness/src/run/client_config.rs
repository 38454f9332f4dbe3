//! Kafka's client settings, under Kafka's key names: `--producer-config
//! KEY=VALUE` and `--consumer-config KEY=VALUE` (repeatable, also a
//! campaign cell's `producer-config`/`consumer-config` lists). The
//! dedicated options (`--linger-ms`, `--acks`, `--commit`, …) are short
//! forms of the same settings; a `*-config` entry given for the same key
//! wins. Defaults are Kafka's, except the timeouts: a run lasts seconds,
//! so `delivery.timeout.ms` is 10 s (Kafka: 120 s) and `request.timeout.ms`
//! 3 s (Kafka: 30 s); set them to Kafka's own to see what they change.
//!
//! An unknown key or a value out of its range is an error that names both.
//! With `--client librdkafka`, a key not listed here is librdkafka's own
//! (`queue.buffering.max.messages`, `enable.auto.offset.store`, …) and goes
//! to the library as it is; librdkafka checks it when the plan is made
//! (`crate::app::rdkafka::config`), so a bad one still fails before the run.

use std::collections::BTreeMap;
use std::str::FromStr;

use faultline_checker::modes::{Acks, CommitStrategy, OffsetReset};
use serde::Serialize;

use super::settings::RunSettings;
use crate::app::library::ClientLibrary;

/// Keys the harness sets itself, so no `*-config` entry may.
const HARNESS_OWNED_KEYS: &[(&str, &str)] = &[
    ("bootstrap.servers", "the cluster's nodes"),
    ("group.id", "the run's group"),
    ("enable.partition.eof", "the consumer application"),
];

/// The run's default `delivery.timeout.ms`.
pub const DELIVERY_TIMEOUT_MS: u64 = 10_000;
/// The run's default `request.timeout.ms`, for producers and consumers.
pub const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// Kafka's `retry.backoff.ms`.
const RETRY_BACKOFF_MS: u64 = 100;
/// The consumer's `max.poll.records` (Kafka: 500; a poll here covers every
/// owned partition at once).
const MAX_POLL_RECORDS: u32 = 1_000;
/// The consumer's `fetch.max.wait.ms` (Kafka: 500; short, so a stopping
/// consumer notices soon).
const FETCH_MAX_WAIT_MS: u64 = 100;

/// Every producer setting a run uses, after the flags and `--producer-config`;
/// serialised (into `test.json`) under Kafka's key names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerSettings {
    pub acks: Acks,
    pub retries: u32,
    #[serde(rename = "delivery.timeout.ms")]
    pub delivery_timeout_ms: u64,
    #[serde(rename = "request.timeout.ms")]
    pub request_timeout_ms: u64,
    #[serde(rename = "retry.backoff.ms")]
    pub retry_backoff_ms: u64,
    #[serde(rename = "linger.ms")]
    pub linger_ms: u64,
    #[serde(rename = "batch.size")]
    pub batch_size: u64,
    #[serde(rename = "buffer.memory")]
    pub buffer_memory: u64,
    #[serde(rename = "max.block.ms")]
    pub max_block_ms: u64,
    /// `max.in.flight.requests.per.connection`, per partition here.
    #[serde(rename = "max.in.flight.requests.per.connection")]
    pub max_in_flight: usize,
    /// `enable.idempotence`; unset: Kafka's rule (on with acks=all).
    #[serde(rename = "enable.idempotence")]
    pub enable_idempotence: Option<bool>,
    /// librdkafka's own keys, passed to it as they are (`--client librdkafka`).
    #[serde(flatten)]
    pub library: BTreeMap<String, String>,
}

/// Every consumer setting a run uses, after the flags and `--consumer-config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerSettings {
    /// `enable.auto.commit` is `commit = auto`; false commits manually.
    pub commit: CommitStrategy,
    #[serde(rename = "auto.commit.interval.ms")]
    pub auto_commit_interval_ms: u64,
    #[serde(rename = "auto.offset.reset")]
    pub auto_offset_reset: OffsetReset,
    #[serde(rename = "max.poll.records")]
    pub max_poll_records: u32,
    #[serde(rename = "fetch.max.wait.ms")]
    pub fetch_max_wait_ms: u64,
    #[serde(rename = "request.timeout.ms")]
    pub request_timeout_ms: u64,
    #[serde(rename = "session.timeout.ms")]
    pub session_timeout_ms: u64,
    #[serde(rename = "max.poll.interval.ms")]
    pub max_poll_interval_ms: u64,
    /// Kafka's default, or a third of the session if that is shorter, as
    /// Kafka requires it below the session.
    #[serde(rename = "heartbeat.interval.ms")]
    pub heartbeat_interval_ms: u64,
    /// librdkafka's own keys, passed to it as they are (`--client librdkafka`).
    #[serde(flatten)]
    pub library: BTreeMap<String, String>,
}

/// Kafka's `heartbeat.interval.ms` default.
const HEARTBEAT_INTERVAL_MS: u64 = 3_000;

/// The producer keys, with their ranges for errors.
pub const PRODUCER_KEYS: &[(&str, &str)] = &[
    ("acks", "0, 1, all or -1"),
    ("retries", "0 to 2147483647"),
    ("delivery.timeout.ms", "1000 to 3600000"),
    ("request.timeout.ms", "100 to 600000"),
    ("retry.backoff.ms", "0 to 60000"),
    ("linger.ms", "0 to 60000"),
    ("batch.size", "1 to 1073741824"),
    ("buffer.memory", "1 to 1073741824"),
    ("max.block.ms", "0 to 600000"),
    ("max.in.flight.requests.per.connection", "1 to 64"),
    ("enable.idempotence", "true or false"),
];

/// The consumer keys, with their ranges for errors.
pub const CONSUMER_KEYS: &[(&str, &str)] = &[
    ("enable.auto.commit", "true or false"),
    ("auto.commit.interval.ms", "1 to 3600000"),
    ("auto.offset.reset", "earliest or latest"),
    ("max.poll.records", "1 to 10000"),
    ("fetch.max.wait.ms", "0 to 30000"),
    ("request.timeout.ms", "100 to 600000"),
    ("session.timeout.ms", "1 to 1800000"),
    ("max.poll.interval.ms", "1 to 1800000"),
    ("heartbeat.interval.ms", "1 to 600000"),
];

/// A `key=value` entry: a known key with its range for errors, or (with
/// librdkafka) one of the library's own keys.
enum Entry<'a> {
    Known(&'a str, &'a str, &'static str),
    Library(&'a str, &'a str),
}

fn entry<'a>(
    flag: &str,
    kv: &'a str,
    keys: &[(&str, &'static str)],
    client: ClientLibrary,
) -> Result<Entry<'a>, String> {
    let (k, v) = kv
        .split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .ok_or_else(|| format!("{flag} {kv:?}: expected key=value with Kafka's key names"))?;
    if let Some((_, owner)) = HARNESS_OWNED_KEYS.iter().find(|(key, _)| *key == k) {
        return Err(format!("{flag} {k}: set by the harness ({owner}), not by a setting"));
    }
    match keys.iter().find(|(key, _)| *key == k) {
        Some((_, range)) => Ok(Entry::Known(k, v, range)),
        None if client == ClientLibrary::Librdkafka && !k.is_empty() => Ok(Entry::Library(k, v)),
        None => Err(unknown(flag, k, keys)),
    }
}

/// A value parsed and kept within `lo..=hi`, or an error naming key and range.
fn ranged<T: FromStr + PartialOrd + Copy>(
    flag: &str,
    key: &str,
    v: &str,
    lo: T,
    hi: T,
    range: &str,
) -> Result<T, String> {
    v.parse::<T>().ok().filter(|x| *x >= lo && *x <= hi).ok_or_else(|| format!("{flag} {key}={v}: expected {range}"))
}

fn boolean(flag: &str, key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{flag} {key}={v}: expected true or false")),
    }
}

fn unknown(flag: &str, key: &str, keys: &[(&str, &str)]) -> String {
    let known: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    format!("{flag} {key}: unknown key; known: {} (librdkafka's own keys need --client librdkafka)", known.join(", "))
}

impl ProducerSettings {
    /// The dedicated flags, then every `--producer-config` entry in order.
    pub fn resolve(a: &RunSettings) -> Result<ProducerSettings, String> {
        let mut p = ProducerSettings {
            acks: a.acks,
            retries: a.retries,
            delivery_timeout_ms: DELIVERY_TIMEOUT_MS,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            retry_backoff_ms: RETRY_BACKOFF_MS,
            linger_ms: a.linger_ms,
            batch_size: a.batch_size,
            buffer_memory: a.buffer_memory,
            max_block_ms: a.max_block_ms,
            max_in_flight: a.max_in_flight,
            enable_idempotence: a.idempotence,
            library: BTreeMap::new(),
        };
        for kv in &a.producer_config {
            match entry("--producer-config", kv, PRODUCER_KEYS, a.client)? {
                Entry::Known(k, v, range) => p.set(k, v, range)?,
                Entry::Library(k, v) => drop(p.library.insert(k.into(), v.into())),
            }
        }
        Ok(p)
    }

    fn set(&mut self, k: &str, v: &str, range: &str) -> Result<(), String> {
        const F: &str = "--producer-config";
        match k {
            "acks" => self.acks = v.parse().map_err(|_| format!("{F} {k}={v}: expected {range}"))?,
            "retries" => self.retries = ranged(F, k, v, 0, i32::MAX as u32, range)?,
            "delivery.timeout.ms" => self.delivery_timeout_ms = ranged(F, k, v, 1_000, 3_600_000, range)?,
            "request.timeout.ms" => self.request_timeout_ms = ranged(F, k, v, 100, 600_000, range)?,
            "retry.backoff.ms" => self.retry_backoff_ms = ranged(F, k, v, 0, 60_000, range)?,
            "linger.ms" => self.linger_ms = ranged(F, k, v, 0, 60_000, range)?,
            "batch.size" => self.batch_size = ranged(F, k, v, 1, 1 << 30, range)?,
            "buffer.memory" => self.buffer_memory = ranged(F, k, v, 1, 1 << 30, range)?,
            "max.block.ms" => self.max_block_ms = ranged(F, k, v, 0, 600_000, range)?,
            "max.in.flight.requests.per.connection" => self.max_in_flight = ranged(F, k, v, 1, 64, range)?,
            "enable.idempotence" => self.enable_idempotence = Some(boolean(F, k, v)?),
            _ => unreachable!("every key of PRODUCER_KEYS is handled"),
        }
        Ok(())
    }
}

impl ConsumerSettings {
    /// The dedicated flags, then every `--consumer-config` entry in order.
    pub fn resolve(a: &RunSettings) -> Result<ConsumerSettings, String> {
        let mut c = ConsumerSettings {
            commit: a.commit,
            auto_commit_interval_ms: a.auto_commit_interval_ms,
            auto_offset_reset: a.auto_offset_reset,
            max_poll_records: MAX_POLL_RECORDS,
            fetch_max_wait_ms: FETCH_MAX_WAIT_MS,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            session_timeout_ms: a.session_timeout_ms,
            max_poll_interval_ms: a.max_poll_interval_ms,
            heartbeat_interval_ms: 0,
            library: BTreeMap::new(),
        };
        for kv in &a.consumer_config {
            match entry("--consumer-config", kv, CONSUMER_KEYS, a.client)? {
                Entry::Known(k, v, range) => c.set(k, v, range)?,
                Entry::Library(k, v) => drop(c.library.insert(k.into(), v.into())),
            }
        }
        if c.heartbeat_interval_ms == 0 {
            c.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS.min(c.session_timeout_ms / 3).max(1);
        }
        if c.heartbeat_interval_ms >= c.session_timeout_ms {
            return Err(format!(
                "--consumer-config heartbeat.interval.ms={} must be below session.timeout.ms={}",
                c.heartbeat_interval_ms, c.session_timeout_ms
            ));
        }
        Ok(c)
    }

    fn set(&mut self, k: &str, v: &str, range: &str) -> Result<(), String> {
        const F: &str = "--consumer-config";
        match k {
            // Manual commits keep the run's strategy (after or before
            // processing); turning auto-commit off from auto commits after.
            "enable.auto.commit" => {
                self.commit = match (boolean(F, k, v)?, self.commit) {
                    (true, _) => CommitStrategy::Auto,
                    (false, CommitStrategy::Auto) => CommitStrategy::AfterProcess,
                    (false, manual) => manual,
                }
            }
            "auto.commit.interval.ms" => self.auto_commit_interval_ms = ranged(F, k, v, 1, 3_600_000, range)?,
            "auto.offset.reset" => {
                self.auto_offset_reset = v.parse().map_err(|_| format!("{F} {k}={v}: expected {range}"))?
            }
            "max.poll.records" => self.max_poll_records = ranged(F, k, v, 1, 10_000, range)?,
            "fetch.max.wait.ms" => self.fetch_max_wait_ms = ranged(F, k, v, 0, 30_000, range)?,
            "request.timeout.ms" => self.request_timeout_ms = ranged(F, k, v, 100, 600_000, range)?,
            "session.timeout.ms" => self.session_timeout_ms = ranged(F, k, v, 1, 1_800_000, range)?,
            "max.poll.interval.ms" => self.max_poll_interval_ms = ranged(F, k, v, 1, 1_800_000, range)?,
            "heartbeat.interval.ms" => self.heartbeat_interval_ms = ranged(F, k, v, 1, 600_000, range)?,
            _ => unreachable!("every key of CONSUMER_KEYS is handled"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::settings::DEFAULTS;

    #[test]
    fn flags_are_short_forms_and_config_entries_win() {
        let s = RunSettings {
            linger_ms: 7,
            producer_config: vec!["delivery.timeout.ms=120000".into(), "linger.ms=9".into(), "acks=1".into()],
            consumer_config: vec!["enable.auto.commit=true".into(), "max.poll.records=50".into()],
            ..DEFAULTS
        };
        let p = ProducerSettings::resolve(&s).unwrap();
        assert_eq!((p.delivery_timeout_ms, p.linger_ms, p.acks), (120_000, 9, Acks::One));
        let c = ConsumerSettings::resolve(&s).unwrap();
        assert_eq!((c.commit, c.max_poll_records), (CommitStrategy::Auto, 50));
        let d = ProducerSettings::resolve(&DEFAULTS).unwrap();
        assert_eq!((d.delivery_timeout_ms, d.request_timeout_ms, d.linger_ms), (10_000, 3_000, 5));
    }

    #[test]
    fn errors_name_the_key_and_its_range() {
        let bad = |p: &[&str], c: &[&str], needle: &str| {
            let s = RunSettings {
                producer_config: p.iter().map(|x| x.to_string()).collect(),
                consumer_config: c.iter().map(|x| x.to_string()).collect(),
                ..DEFAULTS
            };
            let e = ProducerSettings::resolve(&s).and(ConsumerSettings::resolve(&s).map(|_| ())).map(|_| ());
            let e = e.unwrap_err();
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        };
        bad(&["linger.msx=1"], &[], "unknown key; known: acks");
        bad(&["request.timeout.ms=5"], &[], "request.timeout.ms=5: expected 100 to 600000");
        bad(&["acks=2"], &[], "acks=2: expected 0, 1, all");
        bad(&["novalue"], &[], "expected key=value");
        bad(&[], &["enable.auto.commit=yes"], "expected true or false");
        bad(&[], &["group.id=x"], "--consumer-config group.id: set by the harness");
        bad(&[], &["queue.buffering.max.messages=5"], "librdkafka's own keys need --client librdkafka");
    }

    #[test]
    fn librdkafka_takes_its_own_keys_as_they_are() {
        let s = RunSettings {
            client: ClientLibrary::Librdkafka,
            producer_config: vec!["queue.buffering.max.messages=100".into(), "linger.ms=9".into()],
            consumer_config: vec!["enable.auto.offset.store=false".into()],
            ..DEFAULTS
        };
        let p = ProducerSettings::resolve(&s).unwrap();
        assert_eq!((p.linger_ms, p.library["queue.buffering.max.messages"].as_str()), (9, "100"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["queue.buffering.max.messages"], "100", "test.json shows them beside Kafka's");
        let c = ConsumerSettings::resolve(&s).unwrap();
        assert_eq!(c.library["enable.auto.offset.store"], "false");
    }
}
