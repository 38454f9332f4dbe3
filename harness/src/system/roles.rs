//! The roles the nemesis aims at (`leader-of:P`, `followers-of:P`,
//! `controller`, the consumer group's coordinator), found from the system
//! itself when a fault fires:
//! faultline-node's HTTP API for the built-in system, Kafka's Metadata and
//! DescribeQuorum for an external one. A role is a host index (brokers are
//! matched to hosts by their ids); `None` when nobody answers or the role is
//! vacant right now.

use std::time::Duration;

use faultline_client::Client;
use faultline_client::api::ErrorCode;
use faultline_nemesis::precondition::Precondition;

use super::kafka_admin::KafkaAdmin;
use crate::cluster::ClusterState;

/// The partition name role targets use for the workload's topic.
const WORKLOAD_TOPIC: &str = "events";

/// How the nemesis asks the system for roles.
pub struct Roles {
    /// Each host's node id, by host index.
    ids: Vec<i32>,
    urls: Vec<String>,
    /// `Some` for a system that speaks only Kafka's protocol.
    kafka: Option<KafkaAdmin>,
    /// The run's topic, which `events` in a target names.
    topic: String,
    /// The run's consumer group.
    group: String,
    timeout: Duration,
}

/// A partition's replicas, in-sync replicas and leader, as host indices.
pub struct Replicas {
    pub replicas: Vec<usize>,
    pub isr: Vec<usize>,
    pub leader: Option<usize>,
}

impl Roles {
    pub fn new(state: &ClusterState, topic: &str, group: &str, timeout: Duration) -> Roles {
        let external = state.nodes.iter().any(|n| n.external.is_some());
        let kafka = external.then(|| KafkaAdmin::new(state.nodes.iter().map(|n| n.kafka_address()).collect(), timeout));
        Roles {
            ids: state.nodes.iter().map(|n| n.id as i32).collect(),
            urls: state.nodes.iter().map(|n| n.url.clone()).collect(),
            kafka,
            topic: topic.to_string(),
            group: group.to_string(),
            timeout,
        }
    }

    fn index_of(&self, id: i32) -> Option<usize> {
        self.ids.iter().position(|x| *x == id)
    }

    /// `events/2` → the run's topic and partition 2.
    fn partition<'a>(&'a self, name: &'a str) -> Option<(&'a str, u32)> {
        let (topic, index) = name.rsplit_once('/')?;
        let topic = if topic == WORKLOAD_TOPIC { self.topic.as_str() } else { topic };
        Some((topic, index.parse().ok()?))
    }

    /// `partition`'s replicas and leader, as the first node that answers sees them.
    pub async fn replicas_of(&self, partition: &str) -> Option<Replicas> {
        let (topic, index) = self.partition(partition)?;
        if let Some(admin) = &self.kafka {
            let m = admin.metadata(topic).await.ok()?;
            let p = m.partitions.iter().find(|p| p.partition == index)?;
            let replicas = p.replicas.iter().filter_map(|r| self.index_of(*r)).collect();
            let isr = p.isr.iter().filter_map(|r| self.index_of(*r)).collect();
            return Some(Replicas { replicas, isr, leader: p.leader.and_then(|l| self.index_of(l)) });
        }
        for url in &self.urls {
            if let Ok(d) = Client::with_timeout(url, self.timeout).describe_topic(topic).await {
                let p = d.partitions.get(index as usize)?;
                let replicas = p.replicas.iter().filter_map(|r| self.index_of(*r)).collect();
                let isr = p.isr.iter().filter_map(|r| self.index_of(*r)).collect();
                return Some(Replicas { replicas, isr, leader: p.leader.and_then(|l| self.index_of(l)) });
            }
        }
        None
    }

    /// `partition`'s leader.
    pub async fn leader_of(&self, partition: &str) -> Option<usize> {
        self.replicas_of(partition).await?.leader
    }

    /// The run's group's coordinator: the node that answers for the group,
    /// or the one a `NOT_COORDINATOR` names. faultline-node only (an
    /// external system's FindCoordinator is not asked yet).
    pub async fn coordinator(&self) -> Option<usize> {
        if self.kafka.is_some() {
            return None;
        }
        for (i, url) in self.urls.iter().enumerate() {
            match Client::with_timeout(url, self.timeout).committed_offsets(&self.group).await {
                Ok(_) => return Some(i),
                Err(faultline_client::ClientError::Api { body, .. }) if body.error == ErrorCode::NotCoordinator => {
                    if let Some(id) = body.leader_id {
                        return self.index_of(id);
                    }
                }
                Err(_) => {}
            }
        }
        None
    }

    /// The active controller.
    pub async fn controller(&self) -> Option<usize> {
        if let Some(admin) = &self.kafka {
            return self.index_of(admin.controller().await?);
        }
        for url in &self.urls {
            if let Ok(c) = Client::with_timeout(url, self.timeout).cluster().await {
                return self.index_of(c.controller?);
            }
        }
        None
    }

    /// `partition` as the history names it (`events/2` → `<topic>/2`).
    pub fn history_name(&self, partition: &str) -> Option<String> {
        self.partition(partition).map(|(topic, index)| format!("{topic}/{index}"))
    }

    /// `host`'s replica of `partition`: its log end offset.
    async fn log_end_offset(&self, host: usize, partition: &str) -> Result<i64, String> {
        if self.kafka.is_some() {
            return Err("an external system's replicas cannot be asked for their log end".into());
        }
        let (topic, index) = self.partition(partition).ok_or_else(|| format!("no partition {partition}"))?;
        let client = Client::with_timeout(&self.urls[host], self.timeout);
        client.replica_log(topic, index).await.map(|d| d.log_end_offset).map_err(|e| e.to_string())
    }

    /// Checks a timeline step's precondition now, over hosts named `names`,
    /// given the highest offset of its partition acknowledged so far: what
    /// was seen, as `Ok` when it holds and `Err` when it does not.
    pub async fn check(&self, require: &Precondition, names: &[String], acked: Option<u64>) -> Result<String, String> {
        match require {
            Precondition::Behind { node, partition } => {
                let i = names.iter().position(|n| n == node).ok_or_else(|| format!("there is no node {node}"))?;
                let acked = acked.ok_or_else(|| format!("nothing on {partition} was acknowledged yet"))?;
                if self.leader_of(partition).await == Some(i) {
                    return Err(format!("{node} leads {partition}"));
                }
                let end = self.log_end_offset(i, partition).await.map_err(|e| format!("{node}: {e}"))?;
                // Offsets below `end` are in the replica: it lacks offset
                // `acked` exactly when it ends at or below it.
                if u64::try_from(end).is_ok_and(|e| e <= acked) {
                    Ok(format!("{node}'s replica ends at {end}, without offset {acked}, which was acknowledged"))
                } else {
                    Err(format!(
                        "{node} had every acknowledged record: its replica ends at {end}, the highest \
                         acknowledged offset is {acked}"
                    ))
                }
            }
        }
    }
}
