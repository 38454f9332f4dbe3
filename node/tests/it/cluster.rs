//! Test support: a cluster of real `faultline-node` processes on distinct
//! 127.0.0.x loopback addresses, every node a controller voter.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_client::Client;
use faultline_client::api::*;

use crate::util::Node;

/// Fast timings so that failovers happen within seconds.
pub const FAST: &[&str] = &[
    "broker.heartbeat.interval.ms=100",
    "broker.session.timeout.ms=1500",
    "controller.quorum.election.timeout.ms=300",
    "replica.lag.time.max.ms=1000",
    "replica.fetch.wait.max.ms=200",
];

pub struct Cluster {
    pub nodes: Vec<Node>,
    root: PathBuf,
    overrides: Vec<Vec<String>>,
}

/// A free port on `ip`, found by binding port 0. Another process could take
/// it before the node binds; the node then fails loudly at start-up.
fn free_addr(ip: &str) -> SocketAddr {
    std::net::TcpListener::bind(format!("{ip}:0")).unwrap().local_addr().unwrap()
}

impl Cluster {
    /// Starts `n` nodes (ids 1..=n) and waits until every one is registered.
    pub fn start(root: &Path, n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(root, n, extra, false).0
    }

    /// As [`Cluster::start`], each node also with a Kafka-protocol
    /// listener; returns their addresses, by node.
    pub fn start_with_kafka(root: &Path, n: usize, extra: &[&str]) -> (Cluster, Vec<SocketAddr>) {
        Cluster::start_with(root, n, extra, true)
    }

    fn start_with(root: &Path, n: usize, extra: &[&str], kafka: bool) -> (Cluster, Vec<SocketAddr>) {
        let addrs: Vec<SocketAddr> = (0..n).map(|i| free_addr(&format!("127.0.0.{}", 2 + i))).collect();
        let kafka_addrs: Vec<SocketAddr> =
            if kafka { (0..n).map(|i| free_addr(&format!("127.0.0.{}", 2 + i))).collect() } else { Vec::new() };
        let voters: Vec<String> = addrs.iter().enumerate().map(|(i, a)| format!("{}@{a}", i + 1)).collect();
        let overrides: Vec<Vec<String>> = (0..n)
            .map(|i| {
                let kafka = kafka_addrs.get(i).map(|k| format!(",PLAINTEXT://{k}")).unwrap_or_default();
                let mut o = vec![
                    format!("node.id={}", i + 1),
                    format!("listeners=http://{}{kafka}", addrs[i]),
                    format!("controller.quorum.voters={}", voters.join(",")),
                ];
                o.extend(extra.iter().map(|s| s.to_string()));
                o
            })
            .collect();
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                Node::spawn(&root.join(format!("n{}", i + 1)), &overrides[i])
                    .unwrap_or_else(|e| panic!("node {}: {e}", i + 1))
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            node.wait_healthy().unwrap_or_else(|e| panic!("node {}: {e}\n{}", i + 1, node.log()));
        }
        (Cluster { nodes, root: root.to_path_buf(), overrides }, kafka_addrs)
    }

    pub fn node(&self, id: i32) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    pub fn client(&self, id: i32) -> Client {
        self.node(id).client()
    }

    pub fn kill(&mut self, id: i32) {
        self.nodes[(id - 1) as usize].kill();
    }

    /// Restarts a killed node with its data and configuration.
    pub fn restart(&mut self, id: i32) {
        let i = (id - 1) as usize;
        let node = Node::spawn(&self.root.join(format!("n{id}")), &self.overrides[i]).unwrap();
        node.wait_healthy().unwrap_or_else(|e| panic!("node {id}: {e}\n{}", node.log()));
        self.nodes[i] = node;
    }

    /// A client of some running node other than `except`.
    pub fn other_client(&self, except: &[i32]) -> Client {
        let id = (1..=self.nodes.len() as i32)
            .find(|id| !except.contains(id) && self.node(*id).is_running())
            .expect("a running node");
        self.client(id)
    }

    /// `sample` (a metric name with its labels, as rendered) in node `id`'s
    /// `/metrics`; 0 when the node does not render it (an error it never saw).
    pub async fn metric(&self, id: i32, sample: &str) -> u64 {
        let text = self.client(id).metrics().await.unwrap_or_else(|e| panic!("/metrics of node {id}: {e}"));
        let value = text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '));
        value.map_or(0, |v| v.parse().unwrap_or_else(|e| panic!("{sample} of node {id}: {v}: {e}")))
    }

    /// Waits until the sum of `sample` over running nodes outside `except`
    /// satisfies `cond`, and returns it.
    pub async fn wait_metric_sum(&self, sample: &str, except: &[i32], cond: impl Fn(u64) -> bool) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut sum = 0;
            for id in (1..=self.nodes.len() as i32).filter(|id| !except.contains(id) && self.node(*id).is_running()) {
                sum += self.metric(id, sample).await;
            }
            if cond(sum) {
                return sum;
            }
            assert!(Instant::now() < deadline, "timed out waiting on {sample}; the last sum was {sum}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Describes `topic` from a running node that is not in `except`.
    pub async fn describe(&self, topic: &str, except: &[i32]) -> TopicDescription {
        self.other_client(except).describe_topic(topic).await.unwrap()
    }

    /// Waits until `cond` holds for partition 0 of `topic` as seen by a
    /// node outside `except`, and returns that description.
    pub async fn wait_for(
        &self,
        topic: &str,
        except: &[i32],
        what: &str,
        timeout: Duration,
        cond: impl Fn(&PartitionDescription) -> bool,
    ) -> PartitionDescription {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(d) = self.other_client(except).describe_topic(topic).await
                && cond(&d.partitions[0])
            {
                return d.partitions[0].clone();
            }
            if Instant::now() > deadline {
                let d = self.other_client(except).describe_topic(topic).await;
                panic!("timed out after {timeout:?} waiting for {what}; last: {d:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Produces `values` to `topic/0` at its current leader, following the
    /// leader through failovers, until acknowledged or `timeout`. Returns
    /// the base offset, or the last error.
    pub async fn produce(
        &self,
        topic: &str,
        acks: Acks,
        values: &[String],
        timeout: Duration,
    ) -> Result<i64, ErrorCode> {
        let deadline = Instant::now() + timeout;
        let req = ProduceRequest {
            acks: acks.into(),
            timeout_ms: Some(2_000),
            producer_id: None,
            producer_epoch: None,
            base_sequence: None,
            records: values.iter().map(|v| ProduceRecord { key: None, value: v.clone(), timestamp: None }).collect(),
        };
        let mut last = ErrorCode::RequestTimedOut;
        while Instant::now() < deadline {
            let leader = match self.other_client(&[]).describe_topic(topic).await {
                Ok(d) => d.partitions[0].leader,
                Err(_) => None,
            };
            let Some(leader) = leader.filter(|l| self.node(*l).is_running()) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match self.client(leader).produce(topic, 0, &req).await {
                Ok(r) => return Ok(r.base_offset.expect("acks≥1 has an offset")),
                Err(e) => {
                    last = e.code().unwrap_or(ErrorCode::RequestTimedOut);
                    if matches!(last, ErrorCode::NotEnoughReplicas) {
                        return Err(last);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Err(last)
    }

    /// A replica's whole log as (offset, value).
    pub async fn dump(&self, id: i32, topic: &str) -> ReplicaLogDump {
        let url = format!("{}/v1/debug/topics/{topic}/partitions/0/log", self.node(id).url);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    pub async fn history(&self, topic: &str, except: &[i32]) -> PartitionHistory {
        let id = (1..=self.nodes.len() as i32).find(|id| !except.contains(id) && self.node(*id).is_running()).unwrap();
        let url = format!("{}/v1/debug/topics/{topic}/partitions/0/history", self.node(id).url);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }
}

pub fn create_req(name: &str, rf: i64, configs: &[(&str, &str)]) -> CreateTopicRequest {
    CreateTopicRequest {
        name: name.into(),
        partitions: Some(1),
        replication_factor: Some(rf),
        configs: configs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect(),
    }
}
