//! What the asynchronous producer's accumulator buys: records per second of
//! one application task calling `send` on one real `faultline-node`, with
//! the synchronous producer (one produce request per record, awaited) as
//! the baseline, and the accumulator at several `linger.ms` settings.
//!
//! Run: `cargo bench -p faultline-node --bench producer` (add
//! `-- --seconds 5` to change the duration). Prints one table; the README
//! quotes it.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use faultline_client::api::{Acks, ProduceRecord};
use faultline_client::{AccumulatorConfig, AsyncProducer, ClusterClient, Producer, ProducerConfig, SendOutcome};

/// Partitions of the benchmark topic; records go round robin.
const PARTITIONS: u32 = 3;

fn record(i: u64) -> ProduceRecord {
    let mut value = format!("{i:0>width$}", width = VALUE_BYTES);
    value.truncate(VALUE_BYTES);
    ProduceRecord { key: None, value, timestamp: None }
}

fn producer(url: &str) -> Arc<Producer> {
    let cluster = Arc::new(ClusterClient::new(vec![url.to_string()], Duration::from_secs(10)));
    let config = ProducerConfig {
        acks: Acks::All,
        request_timeout_ms: 10_000,
        delivery_timeout_ms: 60_000,
        ..ProducerConfig::default()
    };
    Arc::new(Producer::new(cluster, config).expect("valid settings"))
}

/// One task awaiting each send in turn.
async fn sync_load(url: &str, topic: &str, seconds: f64) -> (u64, u64, Duration) {
    let p = producer(url);
    let (mut ok, mut errors) = (0u64, 0u64);
    let start = Instant::now();
    let mut i = 0u64;
    // Bounded by the duration.
    while start.elapsed().as_secs_f64() < seconds {
        match p.send(topic, (i % u64::from(PARTITIONS)) as u32, vec![record(i)]).await {
            SendOutcome::Acked { .. } => ok += 1,
            _ => errors += 1,
        }
        i += 1;
    }
    (ok, errors, start.elapsed())
}

/// One task enqueueing as fast as the buffer allows, then a flush; every
/// record's outcome is counted.
async fn async_load(url: &str, topic: &str, seconds: f64, linger_ms: u64) -> (u64, u64, Duration) {
    let acc = AccumulatorConfig { linger_ms, ..AccumulatorConfig::default() };
    let ap = AsyncProducer::new(producer(url), acc, None).expect("valid settings");
    let mut deliveries = Vec::new();
    let start = Instant::now();
    let mut i = 0u64;
    // Bounded by the duration (and by buffer.memory through max.block.ms).
    while start.elapsed().as_secs_f64() < seconds {
        deliveries.push(ap.send(topic, (i % u64::from(PARTITIONS)) as u32, record(i)).await.expect("enqueued"));
        i += 1;
    }
    assert!(ap.flush(Duration::from_secs(60)).await, "every record completes");
    let elapsed = start.elapsed();
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    for d in deliveries {
        match d.outcome().await.map(|o| o.outcome) {
            Some(SendOutcome::Acked { .. }) => ok += 1,
            other => {
                // One line per kind of failure, so a regression says what it is.
                let text = format!("{other:?}");
                if seen.insert(text.chars().filter(|c| !c.is_ascii_digit()).collect::<String>()) {
                    eprintln!("error: {text}");
                }
                errors += 1
            }
        }
    }
    (ok, errors, elapsed)
}

fn main() {
    let o = parse_options();
    let node = start_node(&[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    println!(
        "one application task, acks=all, {VALUE_BYTES}-byte values, {PARTITIONS} partitions, {} s per row",
        o.seconds
    );
    println!("{:<36} {:>12} {:>8}", "producer", "records/s", "errors");
    rt.block_on(async {
        let client = faultline_client::Client::new(&node.url);
        let req = faultline_client::api::CreateTopicRequest {
            name: "bench".into(),
            partitions: Some(i64::from(PARTITIONS)),
            ..Default::default()
        };
        client.create_topic(&req).await.unwrap();
        let (ok, errors, t) = sync_load(&node.url, "bench", o.seconds).await;
        println!("{:<36} {:>12.0} {:>8}", "sync (await each send)", ok as f64 / t.as_secs_f64(), errors);
        for linger in [0, 5, 20] {
            let (ok, errors, t) = async_load(&node.url, "bench", o.seconds, linger).await;
            println!(
                "{:<36} {:>12.0} {:>8}",
                format!("async, linger.ms={linger}, batch.size=16384"),
                ok as f64 / t.as_secs_f64(),
                errors
            );
        }
    });
}
