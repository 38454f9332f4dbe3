//! Consumer groups over Kafka's protocol: librdkafka consumers (the
//! `rdkafka` crate) `subscribe`, the coordinator shares the topic's
//! partitions among them through JoinGroup and SyncGroup, heartbeats keep
//! them, and a member that closes (LeaveGroup) hands its partitions to the
//! other; the HTTP API describes the same group.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use faultline_client::ClientError;
use faultline_client::api::{ErrorCode, GroupDescription};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, TopicPartitionList};

use crate::cluster::{Cluster, FAST};
use crate::rdkafka_util::Producer;

const TOPIC: &str = "sg";
const GROUP: &str = "kg";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 40;
/// Fast group timings, one offsets partition on every node.
const GROUPS: &[&str] = &[
    "group.initial.rebalance.delay.ms=300",
    "group.min.session.timeout.ms=500",
    "offsets.topic.num.partitions=1",
    "offsets.topic.replication.factor=3",
];

fn subscriber(brokers: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", GROUP)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        .set("partition.assignment.strategy", "range")
        .create()
        .expect("a consumer");
    c.subscribe(&[TOPIC]).expect("subscribe");
    c
}

fn partitions(list: &TopicPartitionList) -> BTreeSet<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

/// Polls every consumer in turn until `done` holds of their assignments,
/// collecting the values they read; bounded by a deadline.
fn poll_until(consumers: &[&BaseConsumer], values: &mut Vec<String>, done: impl Fn(&[BTreeSet<i32>]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for c in consumers {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        let owned: Vec<BTreeSet<i32>> = consumers.iter().map(|c| partitions(&c.assignment().unwrap())).collect();
        if done(&owned) {
            return;
        }
        assert!(Instant::now() < deadline, "assignments never settled: {owned:?}");
    }
}

/// The group as its coordinator describes it over HTTP: node 1, or the
/// coordinator its `NOT_COORDINATOR` names.
async fn describe(cluster: &Cluster) -> GroupDescription {
    match cluster.client(1).describe_group(GROUP).await {
        Ok(d) => d,
        Err(ClientError::Api { body, .. }) if body.error == ErrorCode::NotCoordinator => {
            let leader = body.leader_id.expect("a coordinator hint");
            cluster.client(leader).describe_group(GROUP).await.expect("the coordinator answers")
        }
        Err(e) => panic!("describing the group: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_subscribers_share_the_partitions_and_rebalance_when_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let config: Vec<&str> = FAST.iter().chain(GROUPS).copied().collect();
    let (cluster, kafka) = Cluster::start_with_kafka(dir.path(), 3, &config);
    let brokers = kafka.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
    let mut req = crate::cluster::create_req(TOPIC, 3, &[]);
    req.partitions = Some(i64::from(PARTITIONS));
    cluster.client(1).create_topic(&req).await.expect("the topic");
    let values: Vec<String> = (0..RECORDS).map(|i| format!("v{i}")).collect();
    let producer = Producer::new(&brokers, &[]);
    let sent = values.clone();
    let reports = tokio::task::spawn_blocking(move || producer.send_all(TOPIC, &sent)).await.unwrap();
    assert_eq!(reports.acked().len(), RECORDS, "{:?}", reports.failed());

    let b = brokers.clone();
    let (first, second, mut read) = tokio::task::spawn_blocking(move || {
        let (a, b) = (subscriber(&b), subscriber(&b));
        let mut read = Vec::new();
        // Both members own partitions, none twice, all of them in all.
        poll_until(&[&a, &b], &mut read, |owned| {
            let all: BTreeSet<i32> = owned.iter().flatten().copied().collect();
            owned.iter().all(|o| !o.is_empty()) && owned[0].is_disjoint(&owned[1]) && all.len() == PARTITIONS as usize
        });
        (a, b, read)
    })
    .await
    .unwrap();
    let two = describe(&cluster).await;
    assert_eq!((two.state.as_str(), two.members.len()), ("Stable", 2), "{two:?}");

    // The second member closes: it leaves the group.
    tokio::task::spawn_blocking(move || drop(second)).await.unwrap();
    let (first, read) = tokio::task::spawn_blocking(move || {
        poll_until(&[&first], &mut read, |owned| owned[0].len() == PARTITIONS as usize);
        // Then it reads on to the end of every partition.
        let deadline = Instant::now() + Duration::from_secs(30);
        while read.iter().collect::<BTreeSet<_>>().len() < RECORDS && Instant::now() < deadline {
            if let Some(Ok(m)) = first.poll(Duration::from_millis(100)) {
                read.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        (first, read)
    })
    .await
    .unwrap();
    let one = describe(&cluster).await;
    assert_eq!(one.members.len(), 1, "{one:?}");
    assert!(one.generation > two.generation, "the leave rebalanced the group: {two:?} then {one:?}");
    let got: BTreeSet<&String> = read.iter().collect();
    assert_eq!(got, values.iter().collect(), "every record was read by some member");
    drop(first);
}
