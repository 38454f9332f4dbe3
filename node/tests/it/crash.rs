//! The crash test: produce under load with acks=1, SIGKILL the node
//! repeatedly, and check that every acknowledged record is still readable
//! at its acknowledged offset, with offsets dense and never reused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faultline_client::api::*;
use parking_lot::Mutex;
use rand::{RngExt, SeedableRng};

use crate::util::Node;

/// At least this many kills, as the issue demands five.
const KILLS: usize = 6;
const PARTITIONS: u32 = 3;
const PRODUCERS: usize = 6;
/// Small segments so that rolls happen between kills.
const SEGMENT_BYTES: &str = "log.segment.bytes=32768";

/// (partition, offset) → value of every acknowledged record.
type Acked = Arc<Mutex<BTreeMap<(u32, i64), String>>>;

async fn producer(
    client: faultline_client::Client,
    id: usize,
    round: usize,
    acked: Acked,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut seq = 0u64;
    // Bounded by `stop`, which the test sets before the kill.
    while !*stop.borrow() {
        let partition = (seq % u64::from(PARTITIONS)) as u32;
        let n = 1 + (seq % 7) as usize;
        let values: Vec<String> = (0..n).map(|i| format!("r{round}-p{id}-s{seq}-{i}")).collect();
        seq += 1;
        let req = ProduceRequest {
            acks: Acks::Leader.into(),
            timeout_ms: Some(2_000),
            producer_id: None,
            producer_epoch: None,
            base_sequence: None,
            records: values.iter().map(|v| ProduceRecord { key: None, value: v.clone(), timestamp: None }).collect(),
        };
        match client.produce("crash", partition, &req).await {
            Ok(resp) => {
                let base = resp.base_offset.expect("acks=1 returns an offset");
                let mut acked = acked.lock();
                for (i, v) in values.into_iter().enumerate() {
                    assert!(
                        acked.insert((partition, base + i as i64), v).is_none(),
                        "offset {base}+{i} acknowledged twice"
                    );
                }
            }
            // The node died mid-request: the outcome is unknown, not acknowledged.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for round in 0..KILLS {
        let mut node = Node::start(dir.path(), &[SEGMENT_BYTES]);
        if round == 0 {
            let req = CreateTopicRequest {
                name: "crash".into(),
                partitions: Some(i64::from(PARTITIONS)),
                ..Default::default()
            };
            node.client().create_topic(&req).await.unwrap();
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..PRODUCERS)
            .map(|id| tokio::spawn(producer(node.client(), id, round, acked.clone(), stop_rx.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..1200))).await;
        // SIGKILL while requests are in flight, then let the producers see it.
        node.kill();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop_tx.send(true).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let node = Node::start(dir.path(), &[SEGMENT_BYTES]);
    let client = node.client();
    let acked = acked.lock().clone();
    assert!(acked.len() > 1_000, "the load was real: {} acknowledged records", acked.len());
    for p in 0..PARTITIONS {
        crate::util::wait_serving(&client, "crash", p).await;
    }
    let desc = client.describe_topic("crash").await.unwrap();
    for p in 0..PARTITIONS {
        let end = desc.partitions[p as usize].log_end_offset;
        let mut next = 0i64;
        // Bounded: each fetch returns at least one record until `end`.
        while next < end {
            let req = FetchRequest { offset: next, max_records: Some(5_000), max_bytes: None, max_wait_ms: None };
            let resp = client.fetch("crash", p, &req).await.unwrap();
            assert!(!resp.records.is_empty(), "no progress at {p}/{next} below the log end {end}");
            for r in resp.records {
                assert_eq!(r.offset, next, "partition {p}: offsets must be dense, found a gap or reuse at {next}");
                if let Some(v) = acked.get(&(p, r.offset)) {
                    assert_eq!(&r.value, v, "partition {p} offset {}: acknowledged value replaced", r.offset);
                }
                next += 1;
            }
        }
        for ((ap, offset), v) in acked.range((p, 0)..(p + 1, 0)) {
            assert!(*offset < end, "acknowledged {v} at {ap}/{offset} was lost: log ends at {end}");
        }
    }
    let truncations = node.log().matches("recovery truncated").count();
    eprintln!(
        "crash test: {} acknowledged records over {KILLS} kills, {truncations} torn tails truncated",
        acked.len()
    );
}
