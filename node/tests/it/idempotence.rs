//! The idempotent producer, broker side: exact retries are deduplicated
//! with their original offsets, sequence gaps and stale epochs are refused,
//! and deduplication survives a restart and a leader failover.

use std::time::Duration;

use faultline_client::api::*;
use faultline_client::{Client, ClientError};

use crate::cluster::{Cluster, FAST, create_req};
use crate::util::Node;

fn batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> ProduceRequest {
    ProduceRequest {
        acks: Acks::All.into(),
        timeout_ms: Some(5_000),
        producer_id: Some(pid),
        producer_epoch: Some(epoch),
        base_sequence: Some(seq),
        records: values.iter().map(|v| ProduceRecord { key: None, value: v.to_string(), timestamp: None }).collect(),
    }
}

async fn log_values(client: &Client, topic: &str) -> Vec<String> {
    let req = FetchRequest { offset: 0, max_records: Some(10_000), max_bytes: None, max_wait_ms: None };
    client.fetch(topic, 0, &req).await.unwrap().records.into_iter().map(|r| r.value).collect()
}

fn code(r: Result<ProduceResponse, ClientError>) -> Option<ErrorCode> {
    r.err().and_then(|e| e.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_deduplicated_and_sequence_errors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let client = node.client();
    client.create_topic(&create_req("idem", 1, &[])).await.unwrap();
    let a = client.init_producer_id().await.unwrap();
    let b = client.init_producer_id().await.unwrap();
    assert_ne!(a.producer_id, b.producer_id, "producer ids are unique");
    let pid = a.producer_id;
    let first = client.produce("idem", 0, &batch(pid, 0, 0, &["a", "b"])).await.unwrap();
    let second = client.produce("idem", 0, &batch(pid, 0, 2, &["c"])).await.unwrap();
    // A retry of either retained batch gets its original offset back.
    assert_eq!(client.produce("idem", 0, &batch(pid, 0, 0, &["a", "b"])).await.unwrap().base_offset, first.base_offset);
    assert_eq!(client.produce("idem", 0, &batch(pid, 0, 2, &["c"])).await.unwrap().base_offset, second.base_offset);
    assert_eq!(log_values(&client, "idem").await, vec!["a", "b", "c"], "no second append");
    assert_eq!(
        code(client.produce("idem", 0, &batch(pid, 0, 5, &["gap"])).await),
        Some(ErrorCode::OutOfOrderSequenceNumber)
    );
    assert_eq!(
        code(client.produce("idem", 0, &batch(pid, 1, 3, &["x"])).await),
        Some(ErrorCode::OutOfOrderSequenceNumber),
        "a new epoch starts at 0"
    );
    client.produce("idem", 0, &batch(pid, 1, 0, &["d"])).await.unwrap();
    assert_eq!(
        code(client.produce("idem", 0, &batch(pid, 0, 3, &["stale"])).await),
        Some(ErrorCode::InvalidProducerEpoch)
    );
    assert_eq!(log_values(&client, "idem").await, vec!["a", "b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    let client = node.client();
    client.create_topic(&create_req("idem", 1, &[])).await.unwrap();
    let pid = client.init_producer_id().await.unwrap().producer_id;
    let r = client.produce("idem", 0, &batch(pid, 0, 0, &["a"])).await.unwrap();
    node.kill();
    let node = Node::start(dir.path(), &[]);
    let client = node.client();
    crate::util::wait_serving(&client, "idem", 0).await;
    assert_eq!(client.produce("idem", 0, &batch(pid, 0, 0, &["a"])).await.unwrap().base_offset, r.base_offset);
    assert_eq!(log_values(&client, "idem").await, vec!["a"]);
    let fresh = client.init_producer_id().await.unwrap().producer_id;
    assert!(fresh > pid, "ids are not reused after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_survives_a_leader_failover() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, FAST);
    cluster.client(1).create_topic(&create_req("idem", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let p = cluster
        .wait_for("idem", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let old = p.leader.unwrap();
    let pid = cluster.client(old).init_producer_id().await.unwrap().producer_id;
    let r = cluster.client(old).produce("idem", 0, &batch(pid, 0, 0, &["a", "b"])).await.unwrap();
    cluster.kill(old);
    let p = cluster
        .wait_for("idem", &[old], "a new leader", Duration::from_secs(15), |p| p.leader.is_some_and(|l| l != old))
        .await;
    let new = cluster.client(p.leader.unwrap());
    assert_eq!(
        new.produce("idem", 0, &batch(pid, 0, 0, &["a", "b"])).await.unwrap().base_offset,
        r.base_offset,
        "the new leader knows the batch"
    );
    new.produce("idem", 0, &batch(pid, 0, 2, &["c"])).await.unwrap();
    assert_eq!(log_values(&new, "idem").await, vec!["a", "b", "c"]);
}
