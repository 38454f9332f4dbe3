//! Real Kafka clients against a 3-node cluster's Kafka listeners:
//! kafka-python and confluent-kafka (from the virtualenv
//! `scripts/kafka-clients-venv.sh` installs) and the `rdkafka` crate
//! (bundled librdkafka). Each creates a topic, reads its settings back,
//! produces with acks=all and idempotence, consumes, commits as a simple
//! consumer and reads the commit back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::cluster::{Cluster, FAST};
use crate::rdkafka_util::{Producer, values_in};

const RECORDS: usize = 40;
const PARTITIONS: i32 = 3;

/// The venv's python (`KAFKA_CLIENTS_PYTHON` overrides it).
fn python() -> PathBuf {
    let path = std::env::var_os("KAFKA_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/kafka-clients-venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/kafka-clients-venv.sh (scripts/test.sh does) or set KAFKA_CLIENTS_PYTHON",
        path.display()
    );
    path
}

/// Runs one of `tests/clients/*.py` (bounded by `timeout`) and parses the
/// JSON line it prints.
fn run_client(script: &str, brokers: &str, topic: &str) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg(python())
        .arg(&script)
        .args([brokers, topic, &PARTITIONS.to_string(), "3", &RECORDS.to_string()])
        .output()
        .expect("timeout(1) and python run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {stdout}\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {stdout}", script.display()))
}

/// What every client must have seen: each record once, the topic's
/// override, and committed offsets equal to each partition's end.
fn assert_round_trip(out: &serde_json::Value) {
    assert_eq!(out["acked"], RECORDS, "{out}");
    let mut values: Vec<String> =
        out["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    values.sort();
    let mut want: Vec<String> = (0..RECORDS).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(values, want, "every record consumed once: {out}");
    assert_eq!(out["configs"]["min.insync.replicas"], "2", "DescribeConfigs: {out}");
    assert_eq!(out["configs"]["segment.bytes"], "1073741824", "the broker's value: {out}");
    let mut total = 0;
    for p in 0..PARTITIONS {
        let end = out["end_offsets"][p.to_string()].as_i64().unwrap();
        assert_eq!(out["committed"][p.to_string()].as_i64(), Some(end), "partition {p}: {out}");
        total += end;
    }
    assert_eq!(total, RECORDS as i64, "{out}");
}

fn brokers(kafka: &[std::net::SocketAddr]) -> String {
    kafka.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_round_trips_against_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kafka) = Cluster::start_with_kafka(dir.path(), 3, FAST);
    let out = tokio::task::spawn_blocking(move || run_client("kafka_python_roundtrip.py", &brokers(&kafka), "kp"));
    let out = out.await.unwrap();
    assert_round_trip(&out);
    assert_eq!(http_committed(&cluster, "kafka-python-roundtrip").await, RECORDS as i64, "one store: {out}");
}

/// The sum of a group's committed offsets, read over the HTTP API from its
/// coordinator (the node that does not answer NOT_COORDINATOR).
async fn http_committed(cluster: &Cluster, group: &str) -> i64 {
    for id in 1..=3 {
        if let Ok(r) = cluster.client(id).committed_offsets(group).await {
            return r.offsets.iter().map(|o| o.offset).sum();
        }
    }
    panic!("no node answers as {group}'s coordinator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_round_trips_against_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, kafka) = Cluster::start_with_kafka(dir.path(), 3, FAST);
    let out = tokio::task::spawn_blocking(move || run_client("confluent_roundtrip.py", &brokers(&kafka), "cf"));
    assert_round_trip(&out.await.unwrap());
}

/// The `rdkafka` crate: AdminClient creates and describes, an idempotent
/// BaseProducer produces, a BaseConsumer with assigned partitions consumes
/// and commits synchronously, and `committed` reads the commit back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_crate_round_trips_against_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kafka) = Cluster::start_with_kafka(dir.path(), 3, FAST);
    let brokers = brokers(&kafka);
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("an admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let topic = NewTopic::new("rk", PARTITIONS, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    let created = admin.create_topics([&topic], &opts).await.expect("CreateTopics answered");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let described =
        admin.describe_configs([&ResourceSpecifier::Topic("rk")], &opts).await.expect("DescribeConfigs answered");
    let resource = described.into_iter().next().unwrap().expect("the topic's configs");
    assert_eq!(resource.get("min.insync.replicas").and_then(|e| e.value.as_deref()), Some("2"));

    let values: Vec<String> = (0..RECORDS).map(|i| format!("v{i}")).collect();
    let producer = Producer::new(&brokers, &[]);
    let reports = tokio::task::spawn_blocking(move || producer.send_all("rk", &values)).await.unwrap();
    assert_eq!(reports.acked().len(), RECORDS, "every send acknowledged: {:?}", reports.failed());

    let brokers2 = brokers.clone();
    let (consumed, committed) = tokio::task::spawn_blocking(move || consume_and_commit(&brokers2)).await.unwrap();
    let mut consumed = consumed;
    consumed.sort();
    let mut want: Vec<String> = (0..RECORDS).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(consumed, want, "every record consumed once");
    // librdkafka commits the position of each partition it read from.
    let ends: Vec<i64> = cluster.describe("rk", &[]).await.partitions.iter().map(|p| p.high_watermark).collect();
    for (p, (c, end)) in committed.iter().zip(&ends).enumerate() {
        assert!(*c == Some(*end) || (c.is_none() && *end == 0), "partition {p}: committed {c:?}, end {end}");
    }
    assert_eq!(http_committed(&cluster, "rdkafka-roundtrip").await, RECORDS as i64);
    assert_eq!(values_in(&cluster, "rk").await.len(), RECORDS, "the HTTP API reads the same log");
}

/// Consumes every partition of `rk` from the start until RECORDS records
/// came (bounded), commits synchronously, and reads the commits back, by
/// partition (`None`: nothing committed, as for a partition never read).
fn consume_and_commit(brokers: &str) -> (Vec<String>, Vec<Option<i64>>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rdkafka-roundtrip")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset("rk", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < RECORDS && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).expect("OffsetCommit");
    let committed = consumer.committed(Duration::from_secs(20)).expect("OffsetFetch");
    let by_partition = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect();
    (values, by_partition)
}
