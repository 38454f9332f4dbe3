//! A cluster-aware client: finds partition leaders from metadata, follows
//! `NOT_LEADER_OR_FOLLOWER` hints, and never stays pinned to a dead node.
//!
//! Metadata comes from any reachable bootstrap node (every node answers
//! from its replica of the controller's metadata) and is cached per
//! partition until an error says it is stale.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

use crate::api::*;
use crate::client::{Client, ClientError};

/// Where a partition's leader was last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    pub id: i32,
    pub address: String,
}

pub struct ClusterClient {
    bootstrap: Vec<String>,
    request_timeout: Duration,
    /// One HTTP client per node address, so connections are pooled per node.
    clients: Mutex<HashMap<String, Client>>,
    /// Cached leaders; an entry goes on any error that may mean it is stale.
    leaders: Mutex<HashMap<(String, u32), LeaderInfo>>,
}

impl ClusterClient {
    pub fn new(bootstrap: Vec<String>, request_timeout: Duration) -> ClusterClient {
        assert!(!bootstrap.is_empty(), "a cluster client needs at least one bootstrap address");
        ClusterClient { bootstrap, request_timeout, clients: Mutex::default(), leaders: Mutex::default() }
    }

    pub fn bootstrap(&self) -> &[String] {
        &self.bootstrap
    }

    /// The client for one node address.
    pub fn node(&self, address: &str) -> Client {
        let mut clients = self.clients.lock();
        clients
            .entry(address.to_string())
            .or_insert_with(|| Client::with_timeout(address, self.request_timeout))
            .clone()
    }

    /// Asks the bootstrap nodes in turn for `topic`, caching its leaders.
    pub async fn refresh(&self, topic: &str) -> Result<TopicDescription, ClientError> {
        let mut last = None;
        for address in &self.bootstrap {
            let node = self.node(address);
            let desc = match node.describe_topic(topic).await {
                Ok(d) => d,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let brokers = match node.cluster().await {
                Ok(c) => c.brokers,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let mut leaders = self.leaders.lock();
            for p in &desc.partitions {
                let key = (topic.to_string(), p.partition);
                match p.leader.and_then(|l| brokers.iter().find(|b| b.id == l)) {
                    Some(b) => {
                        leaders.insert(key, LeaderInfo { id: b.id, address: b.address.clone() });
                    }
                    None => {
                        leaders.remove(&key);
                    }
                }
            }
            return Ok(desc);
        }
        Err(last.unwrap_or_else(|| ClientError::Transport("no bootstrap node answered".into())))
    }

    /// The leader of `topic/partition`, from the cache or fresh metadata.
    pub async fn leader(&self, topic: &str, partition: u32) -> Result<LeaderInfo, ClientError> {
        if let Some(l) = self.leaders.lock().get(&(topic.to_string(), partition)) {
            return Ok(l.clone());
        }
        self.refresh(topic).await?;
        self.leaders.lock().get(&(topic.to_string(), partition)).cloned().ok_or_else(|| ClientError::Api {
            status: 503,
            body: ErrorBody {
                error: ErrorCode::NotLeaderOrFollower,
                message: format!("{topic}/{partition} has no leader right now"),
                leader_id: None,
                leader_address: None,
            },
        })
    }

    /// Learns from an error: a leader hint replaces the cached leader, and
    /// any other error that may mean stale metadata drops it.
    pub fn learn(&self, topic: &str, partition: u32, err: &ClientError) {
        let key = (topic.to_string(), partition);
        let mut leaders = self.leaders.lock();
        match err {
            ClientError::Api { body, .. } if body.leader_id.is_some() && body.leader_address.is_some() => {
                let hint = LeaderInfo { id: body.leader_id.unwrap(), address: body.leader_address.clone().unwrap() };
                leaders.insert(key, hint);
            }
            ClientError::Api { body, .. }
                if !matches!(
                    body.error,
                    ErrorCode::NotLeaderOrFollower | ErrorCode::UnknownTopicOrPartition | ErrorCode::FencedLeaderEpoch
                ) =>
            {
                // A definite answer from the right node: metadata is fine.
            }
            _ => {
                leaders.remove(&key);
            }
        }
    }

    /// One produce attempt at the current leader.
    pub async fn produce(
        &self,
        topic: &str,
        partition: u32,
        req: &ProduceRequest,
    ) -> Result<ProduceResponse, ClientError> {
        let leader = self.leader(topic, partition).await?;
        let r = self.node(&leader.address).produce(topic, partition, req).await;
        if let Err(e) = &r {
            self.learn(topic, partition, e);
        }
        r
    }

    /// One fetch attempt at the current leader.
    pub async fn fetch(&self, topic: &str, partition: u32, req: &FetchRequest) -> Result<FetchResponse, ClientError> {
        let leader = self.leader(topic, partition).await?;
        let r = self.node(&leader.address).fetch(topic, partition, req).await;
        if let Err(e) = &r {
            self.learn(topic, partition, e);
        }
        r
    }

    /// A producer id from any node.
    pub async fn init_producer_id(&self) -> Result<InitProducerIdResponse, ClientError> {
        let mut last = None;
        for address in &self.bootstrap {
            match self.node(address).init_producer_id().await {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("bootstrap is not empty"))
    }
}
