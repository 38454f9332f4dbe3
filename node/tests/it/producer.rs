//! The Rust producer against real nodes: idempotent retries never
//! duplicate, across a request timeout, a leader failover and a restart;
//! without idempotence the same retries do duplicate.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faultline_client::api::*;
use faultline_client::{ClusterClient, Producer, ProducerConfig, SendOutcome};

use crate::cluster::{Cluster, FAST, create_req};
use crate::util::Node;

fn record(v: &str) -> Vec<ProduceRecord> {
    vec![ProduceRecord { key: None, value: v.to_string(), timestamp: None }]
}

fn bootstrap(cluster: &Cluster, n: usize) -> Vec<String> {
    (1..=n as i32).map(|id| cluster.node(id).url.clone()).collect()
}

/// Every value of `topic/0` with how often it appears, read from `url`'s replica.
async fn counts(cluster: &Cluster, id: i32, topic: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in cluster.dump(id, topic).await.records {
        *m.entry(r.2).or_default() += 1;
    }
    m
}

async fn retry_through_a_timeout(idempotence: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut opts: Vec<&str> = FAST.iter().copied().filter(|o| !o.starts_with("replica.lag")).collect();
    opts.push("replica.lag.time.max.ms=60000");
    opts.push("faultline.admin.hooks=true");
    let cluster = Cluster::start(dir.path(), 3, &opts);
    cluster.client(1).create_topic(&create_req("retry", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let p = cluster
        .wait_for("retry", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let leader = p.leader.unwrap();
    let followers: Vec<i32> = p.replicas.iter().copied().filter(|r| *r != leader).collect();
    let hook = |id: i32, paused: bool| {
        let url = format!("{}/v1/admin/fetchers", cluster.node(id).url);
        async move { reqwest::Client::new().post(url).json(&FetcherControl { paused }).send().await.unwrap() }
    };
    for f in &followers {
        hook(*f, true).await;
    }
    // Let fetches already in flight (long polls of replica.fetch.wait.max.ms) finish.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let config = ProducerConfig {
        request_timeout_ms: 700,
        delivery_timeout_ms: 20_000,
        enable_idempotence: Some(idempotence),
        ..ProducerConfig::default()
    };
    let producer =
        Producer::new(Arc::new(ClusterClient::new(bootstrap(&cluster, 3), Duration::from_secs(5))), config).unwrap();
    let send = producer.send("retry", 0, record("once"));
    let resume = async {
        tokio::time::sleep(Duration::from_millis(1_800)).await;
        for f in &followers {
            hook(*f, false).await;
        }
    };
    let (outcome, ()) = tokio::join!(send, resume);
    assert!(matches!(outcome, SendOutcome::Acked { attempts, .. } if attempts > 1), "acked after retries: {outcome:?}");
    counts(&cluster, leader, "retry").await.get("once").copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_request_timed_out_duplicate_only_without_idempotence() {
    assert_eq!(retry_through_a_timeout(true).await, 1, "idempotent: one copy");
    assert!(retry_through_a_timeout(false).await > 1, "not idempotent: every timed-out attempt left a copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_sends_survive_a_leader_failover_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 3, FAST);
    cluster.client(1).create_topic(&create_req("fo", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let p = cluster
        .wait_for("fo", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let old = p.leader.unwrap();
    let config = ProducerConfig { request_timeout_ms: 1_000, delivery_timeout_ms: 30_000, ..ProducerConfig::default() };
    let producer = Arc::new(
        Producer::new(Arc::new(ClusterClient::new(bootstrap(&cluster, 3), Duration::from_secs(3))), config).unwrap(),
    );
    assert!(producer.is_idempotent());
    let mut tasks = Vec::new();
    for i in 0..60 {
        let producer = producer.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * (i % 30))).await;
            let v = format!("v{i}");
            (v.clone(), producer.send("fo", 0, record(&v)).await)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill(old);
    let mut acked = Vec::new();
    for t in tasks {
        let (v, outcome) = t.await.unwrap();
        if matches!(outcome, SendOutcome::Acked { .. }) {
            acked.push(v);
        }
    }
    let p = cluster
        .wait_for("fo", &[old], "a new leader", Duration::from_secs(15), |p| p.leader.is_some_and(|l| l != old))
        .await;
    let counts = counts(&cluster, p.leader.unwrap(), "fo").await;
    assert!(acked.len() > 30, "most sends were acknowledged: {}", acked.len());
    for v in &acked {
        assert_eq!(counts.get(v), Some(&1), "{v}: acknowledged once, present once");
    }
    assert!(counts.values().all(|n| *n == 1), "no value appears twice: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_sends_survive_a_node_restart_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let listener = format!("listeners=http://{addr}");
    let mut node = Node::start(dir.path(), &[&listener]);
    node.client().create_topic(&create_req("rs", 1, &[])).await.unwrap();
    let config = ProducerConfig {
        request_timeout_ms: 1_000,
        delivery_timeout_ms: 30_000,
        retry_backoff_max_ms: 300,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(
        Producer::new(Arc::new(ClusterClient::new(vec![node.url.clone()], Duration::from_secs(2))), config).unwrap(),
    );
    let mut tasks = Vec::new();
    for i in 0..40 {
        let producer = producer.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i)).await;
            let v = format!("v{i}");
            (v.clone(), producer.send("rs", 0, record(&v)).await)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.kill();
    let node = Node::start(dir.path(), &[&listener]);
    let mut acked = Vec::new();
    for t in tasks {
        let (v, outcome) = t.await.unwrap();
        if matches!(outcome, SendOutcome::Acked { .. }) {
            acked.push(v);
        }
    }
    let req = FetchRequest { offset: 0, max_records: Some(10_000), max_bytes: None, max_wait_ms: None };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in node.client().fetch("rs", 0, &req).await.unwrap().records {
        *counts.entry(r.value).or_default() += 1;
    }
    assert_eq!(acked.len(), 40, "every send got through the restart");
    assert!(counts.values().all(|n| *n == 1), "no duplicates: {counts:?}");
    assert_eq!(counts.len(), 40);
}
