//! Replicated produce throughput and leader failover time on a 3-node
//! cluster of real `faultline-node` processes on 127.0.0.2-4, all sharing
//! this machine's cores with the load client.
//!
//! Run: `cargo bench -p faultline-node --bench cluster` (add `-- --seconds 5`).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use faultline_client::Client;
use faultline_client::api::{Acks, CreateTopicRequest, ProduceRecord, ProduceRequest};

const NODES: usize = 3;
const PARTITIONS: u32 = 4;
/// Failovers measured; the median is reported.
const KILLS: usize = 10;
/// Timings a short chaos run uses (the harness's defaults).
const FAST: &[&str] = &[
    "broker.heartbeat.interval.ms=200",
    "broker.session.timeout.ms=2000",
    "controller.quorum.election.timeout.ms=500",
    "replica.fetch.wait.max.ms=200",
];

struct Cluster {
    nodes: Vec<Option<Server>>,
    dirs: Vec<std::path::PathBuf>,
    overrides: Vec<Vec<String>>,
    urls: Vec<String>,
    /// Holds every node's data; removed when the cluster is dropped.
    _root: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let addrs: Vec<_> = (0..NODES)
            .map(|i| std::net::TcpListener::bind(format!("127.0.0.{}:0", 2 + i)).unwrap().local_addr().unwrap())
            .collect();
        let voters: Vec<String> = addrs.iter().enumerate().map(|(i, a)| format!("{}@{a}", i + 1)).collect();
        let root_dir = tempfile::tempdir().unwrap();
        let root = root_dir.path().to_path_buf();
        let mut c =
            Cluster { nodes: Vec::new(), dirs: Vec::new(), overrides: Vec::new(), urls: Vec::new(), _root: root_dir };
        for (i, a) in addrs.iter().enumerate() {
            let mut o = vec![
                format!("node.id={}", i + 1),
                format!("listeners=http://{a}"),
                format!("controller.quorum.voters={}", voters.join(",")),
            ];
            o.extend(FAST.iter().map(|s| s.to_string()));
            c.dirs.push(root.join(format!("n{}", i + 1)));
            c.overrides.push(o);
            c.urls.push(format!("http://{a}"));
        }
        for i in 0..NODES {
            c.nodes.push(Some(c.spawn(i)));
        }
        for n in c.nodes.iter().flatten() {
            wait_node_healthy(n);
        }
        c
    }

    fn spawn(&self, i: usize) -> Server {
        std::fs::create_dir_all(&self.dirs[i]).unwrap();
        let dir = tempfile::Builder::new().tempdir_in(&self.dirs[i]).unwrap();
        // Reuse one data directory per node across restarts.
        let data = self.dirs[i].join("data");
        let mut o = self.overrides[i].clone();
        o.push(format!("log.dirs={}", data.display()));
        spawn_node(dir, &o)
    }

    async fn leaders(&self, topic: &str) -> Vec<Option<i32>> {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_some()
                && let Ok(d) = Client::new(&self.urls[i]).describe_topic(topic).await
            {
                return d.partitions.iter().map(|p| p.leader).collect();
            }
        }
        vec![None; PARTITIONS as usize]
    }
}

fn batch(n: usize) -> ProduceRequest {
    ProduceRequest {
        acks: Acks::All.into(),
        timeout_ms: Some(5_000),
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: (0..n).map(|_| ProduceRecord { key: None, value: "v".repeat(VALUE_BYTES), timestamp: None }).collect(),
    }
}

fn main() {
    let o = parse_options();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut cluster = Cluster::start();
        let client = Client::new(&cluster.urls[0]);
        let req = CreateTopicRequest {
            name: "bench".into(),
            partitions: Some(i64::from(PARTITIONS)),
            replication_factor: Some(3),
            configs: [("min.insync.replicas".to_string(), serde_json::json!("2"))].into(),
        };
        client.create_topic(&req).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let leaders = cluster.leaders("bench").await;
        let targets: Vec<String> = leaders
            .iter()
            .enumerate()
            .map(|(p, l)| {
                let url = &cluster.urls[(l.expect("a leader") - 1) as usize];
                format!("{url}/v1/topics/bench/partitions/{p}/produce")
            })
            .collect();
        let r = produce_load(&targets, 100, Acks::All, &o).await;
        let secs = r.elapsed.as_secs_f64();
        println!(
            "3-node cluster, acks=all, RF=3, min.insync.replicas=2, {PARTITIONS} partitions, \
             100-record batches of {VALUE_BYTES} B, {} concurrent requests, {} s",
            o.concurrency, o.seconds
        );
        println!(
            "produce: {:.0} records/s, {:.1} MB/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            r.records as f64 / secs,
            r.bytes as f64 / secs / 1e6,
            r.latency.value_at_quantile(0.5) as f64 / 1000.0,
            r.latency.value_at_quantile(0.99) as f64 / 1000.0,
            r.errors
        );

        // Failover: SIGKILL the leader of partition 0, then time until an
        // acks=all produce succeeds at the new leader.
        let mut times = Vec::new();
        for round in 0..KILLS {
            let Some(old) = cluster.leaders("bench").await[0] else { panic!("no leader before round {round}") };
            let i = (old - 1) as usize;
            let t0 = Instant::now();
            drop(cluster.nodes[i].take());
            let deadline = t0 + Duration::from_secs(30);
            loop {
                assert!(Instant::now() < deadline, "no new leader within 30 s");
                let leaders = cluster.leaders("bench").await;
                if let Some(l) = leaders[0].filter(|l| *l != old) {
                    let c = Client::with_timeout(&cluster.urls[(l - 1) as usize], Duration::from_secs(5));
                    if c.produce("bench", 0, &batch(1)).await.is_ok() {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            times.push(t0.elapsed());
            let node = cluster.spawn(i);
            wait_node_healthy(cluster.nodes[i].insert(node));
            // Let the restarted node catch up and rejoin before the next kill.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "failover (SIGKILL leader -> first acks=all success on the new leader), {KILLS} kills: \
             median {:.0} ms, min {:.0} ms, max {:.0} ms (broker.session.timeout.ms=2000)",
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
    });
}
