//! Broker and topic configuration with Kafka's key names.
//!
//! `server.properties` is parsed into key/value pairs, `--override`s are laid
//! over it, and every key is checked against [`BROKER_KEYS`]: an unknown key
//! is an error naming it, and a bad value is an error naming the key and the
//! allowed range. Topic-level overrides use [`TOPIC_KEYS`] the same way.

mod listeners;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use listeners::{Listeners, parse_listener, parse_listeners};

use crate::bugs::Bugs;
use crate::log::LogConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{file}:{line}: expected `key=value`, found `{text}`")]
    Syntax { file: String, line: usize, text: String },
    #[error("unknown configuration key `{key}`")]
    UnknownKey { key: String },
    #[error("`{key}` = `{value}`: expected {expected}")]
    BadValue { key: String, value: String, expected: String },
    #[error("missing required key `{key}`")]
    Missing { key: String },
    #[error("`{a}` and `{b}` are the same setting; give only one")]
    Conflict { a: String, b: String },
}

/// The type and range of one key.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Int { min: i64, max: i64 },
    Bool,
    Text,
}

/// One known key: name, type and default (`None` = required or unset).
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const I32_MAX: i64 = i32::MAX as i64;

/// Upper bound on partitions per topic. Each partition costs a directory,
/// two open files and a replica fetcher; past this, a create is refused as
/// absurd rather than allowed to exhaust file descriptors.
pub const PARTITIONS_PER_TOPIC_MAX: i64 = 1_000;

macro_rules! key {
    ($name:expr, $kind:expr, $default:expr, $doc:expr) => {
        KeySpec { name: $name, kind: $kind, default: $default, doc: $doc }
    };
}

/// Every broker-level key this node accepts.
pub const BROKER_KEYS: &[KeySpec] = &[
    key!("node.id", Kind::Int { min: 0, max: I32_MAX }, None, "this broker's id"),
    key!(
        "listeners",
        Kind::Text,
        Some("http://127.0.0.1:9092"),
        "http://host:port to bind, and optionally PLAINTEXT://host:port for Kafka's protocol; port 0 picks one"
    ),
    key!(
        "advertised.listeners",
        Kind::Text,
        None,
        "addresses given to clients (http://…, PLAINTEXT://…); default: the bound listeners"
    ),
    key!("log.dirs", Kind::Text, Some("/tmp/faultline-logs"), "the data directory (one)"),
    key!(
        "num.partitions",
        Kind::Int { min: 1, max: PARTITIONS_PER_TOPIC_MAX },
        Some("1"),
        "default partitions for a new topic"
    ),
    key!("default.replication.factor", Kind::Int { min: 1, max: 32767 }, Some("1"), "default replication factor"),
    key!(
        "min.insync.replicas",
        Kind::Int { min: 1, max: 32767 },
        Some("1"),
        "acks=all needs this many in-sync replicas"
    ),
    key!(
        "unclean.leader.election.enable",
        Kind::Bool,
        Some("false"),
        "elect an out-of-sync replica when none is in sync"
    ),
    key!(
        "log.flush.interval.messages",
        Kind::Int { min: 1, max: i64::MAX },
        Some("9223372036854775807"),
        "fsync after this many messages"
    ),
    key!("flush.messages", Kind::Int { min: 1, max: i64::MAX }, None, "alias of log.flush.interval.messages"),
    key!("log.flush.interval.ms", Kind::Int { min: 0, max: i64::MAX }, None, "fsync when data is this old"),
    key!("flush.ms", Kind::Int { min: 0, max: i64::MAX }, None, "alias of log.flush.interval.ms"),
    key!(
        "replica.high.watermark.checkpoint.interval.ms",
        Kind::Int { min: 100, max: I32_MAX },
        Some("5000"),
        "how often high watermarks are checkpointed"
    ),
    key!(
        "log.flush.offset.checkpoint.interval.ms",
        Kind::Int { min: 100, max: I32_MAX },
        Some("60000"),
        "how often the recovery point is checkpointed"
    ),
    key!("log.segment.bytes", Kind::Int { min: 128, max: I32_MAX }, Some("1073741824"), "roll segments at this size"),
    key!(
        "log.index.interval.bytes",
        Kind::Int { min: 0, max: I32_MAX },
        Some("4096"),
        "bytes between sparse index entries"
    ),
    key!("message.max.bytes", Kind::Int { min: 64, max: I32_MAX }, Some("1048588"), "largest batch accepted"),
    key!(
        "socket.request.max.bytes",
        Kind::Int { min: 1024, max: I32_MAX },
        Some("104857600"),
        "largest HTTP request body accepted"
    ),
    key!(
        "offsets.topic.num.partitions",
        Kind::Int { min: 1, max: PARTITIONS_PER_TOPIC_MAX },
        Some("50"),
        "partitions of __consumer_offsets"
    ),
    key!(
        "offsets.topic.replication.factor",
        Kind::Int { min: 1, max: 32767 },
        Some("3"),
        "replication of __consumer_offsets, capped at the broker count"
    ),
    key!(
        "group.min.session.timeout.ms",
        Kind::Int { min: 1, max: I32_MAX },
        Some("6000"),
        "shortest session.timeout.ms a group member may ask for"
    ),
    key!(
        "group.max.session.timeout.ms",
        Kind::Int { min: 1, max: I32_MAX },
        Some("1800000"),
        "longest session.timeout.ms (and rebalance timeout) a group member may ask for"
    ),
    key!(
        "group.initial.rebalance.delay.ms",
        Kind::Int { min: 0, max: 300_000 },
        Some("3000"),
        "how long the first rebalance of an empty group waits for more members"
    ),
    key!(
        "controller.quorum.voters",
        Kind::Text,
        None,
        "id@host:port,... of the controller voters; default: this node alone"
    ),
    key!(
        "controller.quorum.election.timeout.ms",
        Kind::Int { min: 50, max: 600_000 },
        Some("1000"),
        "Raft election timeout (randomised up to twice this)"
    ),
    key!(
        "broker.heartbeat.interval.ms",
        Kind::Int { min: 10, max: 600_000 },
        Some("2000"),
        "how often a broker heartbeats to the active controller"
    ),
    key!(
        "broker.session.timeout.ms",
        Kind::Int { min: 50, max: 3_600_000 },
        Some("9000"),
        "a broker without a heartbeat for this long is fenced"
    ),
    key!(
        "replica.lag.time.max.ms",
        Kind::Int { min: 10, max: 3_600_000 },
        Some("30000"),
        "a follower not caught up for this long leaves the ISR"
    ),
    key!(
        "replica.fetch.wait.max.ms",
        Kind::Int { min: 0, max: 60_000 },
        Some("500"),
        "long-poll time of follower fetches"
    ),
    key!(
        "replica.fetch.max.bytes",
        Kind::Int { min: 0, max: 1_048_576 },
        Some("1048576"),
        "bytes a follower asks per partition and fetch; at least one batch is always returned"
    ),
    key!("faultline.bugs", Kind::Text, None, "comma list of bug switches to turn on (see bugs.rs); off by default"),
    key!(
        "faultline.admin.hooks",
        Kind::Bool,
        Some("false"),
        "enable admin hooks (pause fetchers) that bug recipes drive"
    ),
    key!(
        "faultline.acks0.queue.batches",
        Kind::Int { min: 1, max: 1_000_000 },
        Some("1024"),
        "bound on acks=0 batches queued but not yet appended"
    ),
];

/// Every topic-level key, with the broker key that supplies its default.
pub const TOPIC_KEYS: &[(KeySpec, &str)] = &[
    (key!("min.insync.replicas", Kind::Int { min: 1, max: 32767 }, None, ""), "min.insync.replicas"),
    (key!("unclean.leader.election.enable", Kind::Bool, None, ""), "unclean.leader.election.enable"),
    (key!("flush.messages", Kind::Int { min: 1, max: i64::MAX }, None, ""), "log.flush.interval.messages"),
    (key!("flush.ms", Kind::Int { min: 0, max: i64::MAX }, None, ""), "log.flush.interval.ms"),
    (key!("segment.bytes", Kind::Int { min: 128, max: I32_MAX }, None, ""), "log.segment.bytes"),
    (key!("index.interval.bytes", Kind::Int { min: 0, max: I32_MAX }, None, ""), "log.index.interval.bytes"),
    (key!("max.message.bytes", Kind::Int { min: 64, max: I32_MAX }, None, ""), "message.max.bytes"),
];

/// Parses Java-properties-style text: `key=value` or `key: value` lines,
/// `#` and `!` comments, blank lines.
pub fn parse_properties(file: &str, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).filter(|&at| at > 0);
        let Some(at) = split else {
            return Err(ConfigError::Syntax { file: file.to_string(), line: i + 1, text: line.to_string() });
        };
        out.push((line[..at].trim().to_string(), line[at + 1..].trim().to_string()));
    }
    Ok(out)
}

/// Checks `value` against `spec`, returning it normalised.
pub fn check_value(spec: &KeySpec, value: &str) -> Result<String, ConfigError> {
    let bad =
        |expected: String| ConfigError::BadValue { key: spec.name.to_string(), value: value.to_string(), expected };
    match spec.kind {
        Kind::Int { min, max } => match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
            _ => Err(bad(format!("an integer in {min}..={max}"))),
        },
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(value.to_ascii_lowercase()),
            _ => Err(bad("true or false".into())),
        },
        Kind::Text => Ok(value.to_string()),
    }
}

/// Validated key/value settings with typed getters.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Builds broker settings from pairs (later pairs win), rejecting
    /// unknown keys and bad values.
    pub fn broker(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Settings, ConfigError> {
        let mut values = BTreeMap::new();
        for (key, value) in pairs {
            let spec =
                BROKER_KEYS.iter().find(|s| s.name == key).ok_or(ConfigError::UnknownKey { key: key.clone() })?;
            values.insert(key, check_value(spec, &value)?);
        }
        for (alias, canonical) in
            [("flush.messages", "log.flush.interval.messages"), ("flush.ms", "log.flush.interval.ms")]
        {
            if let Some(v) = values.remove(alias) {
                if values.contains_key(canonical) {
                    return Err(ConfigError::Conflict { a: alias.into(), b: canonical.into() });
                }
                values.insert(canonical.to_string(), v);
            }
        }
        for spec in BROKER_KEYS {
            if let (Some(d), false) = (spec.default, values.contains_key(spec.name)) {
                values.insert(spec.name.to_string(), d.to_string());
            }
        }
        Ok(Settings { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    fn require(&self, key: &str) -> Result<&str, ConfigError> {
        self.get(key).ok_or(ConfigError::Missing { key: key.to_string() })
    }

    fn int(&self, key: &str) -> Result<i64, ConfigError> {
        Ok(self.require(key)?.parse().expect("validated when set"))
    }

    fn opt_int(&self, key: &str) -> Option<i64> {
        self.get(key).map(|v| v.parse().expect("validated when set"))
    }
}

/// Effective per-topic settings: broker defaults with the topic's overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    /// Broker-wide bug switches, carried here so every replica sees them.
    pub bugs: Bugs,
    pub min_insync_replicas: i64,
    pub unclean_leader_election: bool,
    pub max_message_bytes: usize,
    pub log: LogConfig,
}

/// Everything the broker reads from its configuration.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listener: SocketAddr,
    /// The Kafka-protocol listener (`PLAINTEXT://` in `listeners`), if any.
    pub kafka_listener: Option<SocketAddr>,
    /// `host:port` Kafka clients are given (`PLAINTEXT://` in
    /// `advertised.listeners`); the bound Kafka listener when absent.
    pub kafka_advertised: Option<String>,
    pub advertised: Option<String>,
    pub log_dir: PathBuf,
    pub num_partitions: i64,
    pub default_replication_factor: i64,
    pub recovery_checkpoint_interval_ms: u64,
    pub hw_checkpoint_interval_ms: u64,
    pub socket_request_max_bytes: usize,
    pub offsets_topic_partitions: i64,
    pub offsets_topic_replication_factor: i64,
    pub group_min_session_timeout_ms: u64,
    pub group_max_session_timeout_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub acks0_queue_batches: usize,
    /// Controller voters: id → base URL of that node's HTTP API. Defaults
    /// to this node alone.
    pub voters: BTreeMap<i32, String>,
    pub election_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub session_timeout_ms: u64,
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_wait_max_ms: u64,
    /// What a follower asks per partition and fetch. Small values make a
    /// far-behind follower catch up over many round trips, as in Kafka.
    pub replica_fetch_max_bytes: usize,
    /// Active bug switches; none by default.
    pub bugs: Bugs,
    /// Whether `/v1/admin/...` hooks are enabled; off by default.
    pub admin_hooks: bool,
    /// The raw settings, for topic defaults and `GET /v1/cluster`.
    pub settings: Settings,
}

/// Parses `1@127.0.0.1:9092,2@127.0.0.2:9092` into id → `http://host:port`.
fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let bad = || ConfigError::BadValue {
        key: "controller.quorum.voters".into(),
        value: value.into(),
        expected: "a comma list of id@host:port, ids unique and non-negative".into(),
    };
    let mut voters = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.parse().ok().filter(|i| *i >= 0).ok_or_else(bad)?;
        let addr = addr.strip_prefix("http://").unwrap_or(addr);
        addr.parse::<SocketAddr>().map_err(|_| bad())?;
        if voters.insert(id, format!("http://{addr}")).is_some() {
            return Err(bad());
        }
    }
    if voters.is_empty() {
        return Err(bad());
    }
    Ok(voters)
}

impl BrokerConfig {
    pub fn from_settings(settings: Settings) -> Result<BrokerConfig, ConfigError> {
        let dirs = settings.require("log.dirs")?;
        if dirs.contains(',') || dirs.is_empty() {
            return Err(ConfigError::BadValue {
                key: "log.dirs".into(),
                value: dirs.into(),
                expected: "exactly one directory".into(),
            });
        }
        let listeners = parse_listener(settings.require("listeners")?)?;
        let advertised = match settings.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?,
            None => Listeners::default(),
        };
        Ok(BrokerConfig {
            node_id: settings.int("node.id")? as i32,
            listener: listeners.0,
            kafka_listener: listeners.1,
            advertised: advertised.http.map(|h| format!("http://{h}")),
            kafka_advertised: advertised.kafka,
            log_dir: PathBuf::from(dirs),
            num_partitions: settings.int("num.partitions")?,
            default_replication_factor: settings.int("default.replication.factor")?,
            recovery_checkpoint_interval_ms: settings.int("log.flush.offset.checkpoint.interval.ms")? as u64,
            hw_checkpoint_interval_ms: settings.int("replica.high.watermark.checkpoint.interval.ms")? as u64,
            socket_request_max_bytes: settings.int("socket.request.max.bytes")? as usize,
            offsets_topic_partitions: settings.int("offsets.topic.num.partitions")?,
            offsets_topic_replication_factor: settings.int("offsets.topic.replication.factor")?,
            group_min_session_timeout_ms: settings.int("group.min.session.timeout.ms")? as u64,
            group_max_session_timeout_ms: settings.int("group.max.session.timeout.ms")? as u64,
            group_initial_rebalance_delay_ms: settings.int("group.initial.rebalance.delay.ms")? as u64,
            acks0_queue_batches: settings.int("faultline.acks0.queue.batches")? as usize,
            voters: match settings.get("controller.quorum.voters") {
                Some(v) => parse_voters(v)?,
                None => BTreeMap::new(),
            },
            election_timeout_ms: settings.int("controller.quorum.election.timeout.ms")? as u64,
            heartbeat_interval_ms: settings.int("broker.heartbeat.interval.ms")? as u64,
            session_timeout_ms: settings.int("broker.session.timeout.ms")? as u64,
            replica_lag_time_max_ms: settings.int("replica.lag.time.max.ms")? as u64,
            replica_fetch_wait_max_ms: settings.int("replica.fetch.wait.max.ms")? as u64,
            replica_fetch_max_bytes: settings.int("replica.fetch.max.bytes")? as usize,
            bugs: match settings.get("faultline.bugs") {
                Some(list) => Bugs::parse_list(list).map_err(|e| ConfigError::BadValue {
                    key: "faultline.bugs".into(),
                    value: list.into(),
                    expected: e,
                })?,
                None => Bugs::default(),
            },
            admin_hooks: settings.get("faultline.admin.hooks") == Some("true"),
            settings,
        })
    }

    /// Reads `path` and applies `overrides` (`key=value`) on top.
    pub fn load(path: Option<&std::path::Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut pairs = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::BadValue {
                    key: "--config".into(),
                    value: p.display().to_string(),
                    expected: format!("a readable properties file ({e})"),
                })?;
                parse_properties(&p.display().to_string(), &text)?
            }
            None => Vec::new(),
        };
        for o in overrides {
            pairs.extend(parse_properties("--override", o)?);
        }
        BrokerConfig::from_settings(Settings::broker(pairs)?)
    }

    /// The effective configuration of a topic with `overrides` (already
    /// validated by [`validate_topic_overrides`]).
    pub fn topic_config(&self, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let get = |topic_key: &str| -> Option<i64> {
            let broker_key = TOPIC_KEYS.iter().find(|(s, _)| s.name == topic_key).map(|(_, b)| *b).expect("known key");
            overrides
                .get(topic_key)
                .map(|v| v.parse().expect("validated"))
                .or_else(|| self.settings.opt_int(broker_key))
        };
        let unclean = match overrides.get("unclean.leader.election.enable") {
            Some(v) => v == "true",
            None => self.settings.get("unclean.leader.election.enable") == Some("true"),
        };
        // Every broker key but flush.ms has a default, filled in by `Settings::broker`.
        let must = |topic_key: &str| get(topic_key).expect("the broker key has a default");
        TopicConfig {
            bugs: self.bugs,
            min_insync_replicas: must("min.insync.replicas"),
            unclean_leader_election: unclean,
            max_message_bytes: must("max.message.bytes") as usize,
            log: LogConfig {
                segment_bytes: must("segment.bytes") as u64,
                index_interval_bytes: must("index.interval.bytes") as u64,
                flush_messages: must("flush.messages") as u64,
                flush_ms: get("flush.ms").map(|v| v as u64),
            },
        }
    }
}

/// Checks topic-level overrides, normalising their values to strings.
pub fn validate_topic_overrides(raw: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, value) in raw {
        let (spec, _) =
            TOPIC_KEYS.iter().find(|(s, _)| s.name == key).ok_or(ConfigError::UnknownKey { key: key.clone() })?;
        out.insert(key.clone(), check_value(spec, value)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's example file is a valid configuration.
    #[test]
    fn the_example_server_properties_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/server.properties");
        let c = BrokerConfig::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(c.settings.get("node.id"), Some("1"));
    }

    pub(super) fn load(text: &str) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_settings(Settings::broker(parse_properties("server.properties", text)?)?)
    }

    #[test]
    fn kafka_style_properties_parse_with_defaults() {
        let c = load("# comment\nnode.id=3\nlisteners = http://127.0.0.1:0\nlog.dirs: /tmp/x\n\n! also a comment\n")
            .unwrap();
        assert_eq!((c.node_id, c.listener.port(), c.num_partitions), (3, 0, 1));
        assert_eq!(c.topic_config(&BTreeMap::new()).log.flush_messages, i64::MAX as u64);
    }

    #[test]
    fn unknown_keys_bad_values_and_missing_keys_are_named() {
        assert_eq!(
            load("node.id=1\nlog.retention.foo=1").unwrap_err(),
            ConfigError::UnknownKey { key: "log.retention.foo".into() }
        );
        let err = load("node.id=1\nlog.segment.bytes=12").unwrap_err().to_string();
        assert!(err.contains("log.segment.bytes") && err.contains("128..="), "{err}");
        assert_eq!(load("listeners=http://127.0.0.1:1").unwrap_err(), ConfigError::Missing { key: "node.id".into() });
        assert!(
            load("node.id=1\nunclean.leader.election.enable=yes").unwrap_err().to_string().contains("true or false")
        );
        assert!(matches!(load("node.id=1\nthis line has no separator"), Err(ConfigError::Syntax { line: 2, .. })));
        assert!(matches!(load("node.id=1\nlisteners=127.0.0.1:9"), Err(ConfigError::BadValue { .. })));
    }

    #[test]
    fn controller_voters_parse_and_bad_lists_are_named() {
        let c = load("node.id=2\ncontroller.quorum.voters=1@127.0.0.1:9001, 2@127.0.0.2:9002").unwrap();
        assert_eq!(c.voters.get(&2).map(String::as_str), Some("http://127.0.0.2:9002"));
        for bad in ["1@nohost", "x@127.0.0.1:1", "1@127.0.0.1:1,1@127.0.0.1:2", ","] {
            let err = load(&format!("node.id=1\ncontroller.quorum.voters={bad}")).unwrap_err().to_string();
            assert!(err.contains("controller.quorum.voters"), "{bad}: {err}");
        }
    }

    #[test]
    fn flush_aliases_map_to_the_broker_key_and_conflicts_are_refused() {
        let c = load("node.id=1\nflush.messages=1").unwrap();
        assert_eq!(c.topic_config(&BTreeMap::new()).log.flush_messages, 1);
        assert!(matches!(
            load("node.id=1\nflush.messages=1\nlog.flush.interval.messages=2"),
            Err(ConfigError::Conflict { .. })
        ));
    }

    #[test]
    fn topic_overrides_win_over_broker_defaults() {
        let c = load("node.id=1\nmin.insync.replicas=2").unwrap();
        let o = validate_topic_overrides(&BTreeMap::from([("segment.bytes".into(), "1024".into())])).unwrap();
        let t = c.topic_config(&o);
        assert_eq!((t.min_insync_replicas, t.log.segment_bytes), (2, 1024));
        assert!(validate_topic_overrides(&BTreeMap::from([("bogus".into(), "1".into())])).is_err());
    }
}
