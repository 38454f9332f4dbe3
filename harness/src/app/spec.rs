//! What a client process is told to do: one [`ClientSpec`], written by the
//! harness as JSON and read back by `faultline client` (hidden). A typed
//! spec instead of a hand-built argument list, so the two sides cannot
//! disagree about a flag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use faultline_checker::modes::{Acks, CommitStrategy, OffsetReset, OnSinkError, Processing, ProducerMode};
use serde::{Deserialize, Serialize};

use super::library::ClientLibrary;

/// One client process: who it is, where the cluster is, and its role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// The logical process id this client records its ops under.
    pub process: u64,
    /// After an `info` op the client goes on as `process + stride`, as
    /// Jepsen's worker does (process + concurrency): the unknown op may
    /// still be in flight, so it is concurrent with everything after it.
    /// 0 keeps the id.
    pub process_stride: u64,
    /// The library the application runs on.
    pub library: ClientLibrary,
    /// Node URLs (HTTP API: the faultline client and the drain).
    pub bootstrap: Vec<String>,
    /// The nodes' Kafka listeners, `host:port` (librdkafka's `bootstrap.servers`).
    pub kafka_bootstrap: Vec<String>,
    pub topic: String,
    /// Per-request timeout, milliseconds.
    pub request_timeout_ms: u64,
    pub role: RoleSpec,
}

/// The client's application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RoleSpec {
    /// Send batches of unique integers at a bounded rate.
    Producer(ProducerSpec),
    /// Assign partitions, poll them from the leaders, process and commit.
    Consumer(ConsumerSpec),
    /// Read every partition from offset 0 up to its target (the final phase).
    Drain(DrainSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSpec {
    /// Partitions of the topic; each send picks one.
    pub partitions: u32,
    /// Sends per second of this process.
    pub rate: f64,
    /// Values per send (one broker batch) in sync mode.
    pub records_per_send: u32,
    pub acks: Acks,
    pub idempotence: bool,
    pub delivery_timeout_ms: u64,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
    pub seed: u64,
    /// `sync` awaits each send; `callback` and `fire-and-forget` enqueue
    /// into the accumulator (recorded as `enqueue` ops) and record each
    /// batch's send when it is sent and when its callback fires.
    pub mode: ProducerMode,
    pub linger_ms: u64,
    /// `batch.size`, bytes.
    pub batch_size: usize,
    /// `buffer.memory`, bytes.
    pub buffer_memory: usize,
    pub max_block_ms: u64,
    pub retries: u32,
    /// Batches in flight per partition (async modes; sync has one).
    pub max_in_flight: usize,
    /// librdkafka's own settings, passed as they are.
    pub library_config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    /// The partitions this consumer owns (assign mode).
    pub owned: Vec<u32>,
    /// Subscribe instead: the group shares the topic's partitions out.
    #[serde(default)]
    pub subscribe: Option<SubscribeSpec>,
    pub group: String,
    pub commit: CommitStrategy,
    pub auto_commit_interval_ms: u64,
    pub processing: Processing,
    /// This slot's sink database (made by the harness); none: no processing.
    pub sink_path: Option<PathBuf>,
    pub on_sink_error: OnSinkError,
    pub auto_offset_reset: OffsetReset,
    /// The application's own work per batch, before the sink write.
    pub process_time_ms: u64,
    /// `max.poll.records`: records one poll returns at most.
    pub max_poll_records: u32,
    /// `fetch.max.wait.ms`: how long a poll may wait for data.
    pub fetch_max_wait_ms: u64,
    /// librdkafka's own settings, passed as they are.
    pub library_config: BTreeMap<String, String>,
}

/// A subscribing consumer's group settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeSpec {
    /// Partitions of the topic, all shared among the group's members.
    pub partitions: u32,
    pub session_timeout_ms: u64,
    pub max_poll_interval_ms: u64,
    pub heartbeat_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSpec {
    /// `(partition, end offset)`. The drain op is recorded under the
    /// spec's process, its polls under the process after it.
    pub targets: Vec<(u32, i64)>,
    /// Bound on the whole drain, milliseconds.
    pub deadline_ms: u64,
    /// Read over Kafka's protocol (with librdkafka) instead of the HTTP
    /// API: for systems that have only the former.
    pub kafka: bool,
}

impl ClientSpec {
    /// The spec as the one argument of `faultline client`.
    pub fn to_arg(&self) -> String {
        serde_json::to_string(self).expect("client specs serialize")
    }

    /// Reads the argument back; the error names the field.
    pub fn from_arg(arg: &str) -> Result<ClientSpec, String> {
        let de = &mut serde_json::Deserializer::from_str(arg);
        serde_path_to_error::deserialize(de).map_err(|e| format!("client spec: {}: {}", e.path(), e.inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_errors_name_the_field() {
        let spec = ClientSpec {
            process: 3,
            process_stride: 5,
            library: ClientLibrary::Librdkafka,
            bootstrap: vec!["http://10.0.0.1:9092".into()],
            kafka_bootstrap: vec!["10.0.0.1:9093".into()],
            topic: "events".into(),
            request_timeout_ms: 3_000,
            role: RoleSpec::Drain(DrainSpec { targets: vec![(0, 12)], deadline_ms: 20_000, kafka: false }),
        };
        assert_eq!(ClientSpec::from_arg(&spec.to_arg()).unwrap(), spec);
        let bad = spec.to_arg().replace("\"deadline_ms\":20000", "\"deadline_ms\":-1");
        let e = ClientSpec::from_arg(&bad).unwrap_err();
        assert!(e.contains("role.drain.deadline_ms"), "{e}");
    }
}
