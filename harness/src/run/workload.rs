//! The workload: the topic, the consumers' sink databases, and one
//! supervised client slot per producer and consumer, each with its typed
//! [`RoleSpec`] derived from the plan.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use faultline_client::Client;
use faultline_client::api::{CreateTopicRequest, ErrorCode};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::plan::{METADATA_POLL_INTERVAL, Plan, REQUEST_TIMEOUT_MS, Role, TOPIC, TOPIC_READY_TIMEOUT};
use super::settings::SinkKind;
use super::supervisor::{Shared, Slot, supervise};
use crate::app::spec::RoleSpec;
use crate::store::RunLog;

/// One role's supervisors and the switch that stops them.
pub struct Clients {
    pub tasks: JoinSet<anyhow::Result<()>>,
    pub stop: watch::Sender<bool>,
}

impl Clients {
    fn new() -> (Clients, watch::Receiver<bool>) {
        let (stop, stopped) = watch::channel(false);
        (Clients { tasks: JoinSet::new(), stop }, stopped)
    }

    /// Tells every client to stop and waits for its supervisor.
    pub async fn stop(&mut self, role: Role) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        while let Some(r) = self.tasks.join_next().await {
            r.with_context(|| format!("{} supervisor panicked", role.name()))??;
        }
        Ok(())
    }
}

/// Starts every producer slot.
pub fn start_producers(plan: &Plan, shared: &Arc<Shared>) -> Clients {
    let a = &plan.settings;
    let (mut clients, stopped) = Clients::new();
    for i in 0..a.producers {
        let spec = RoleSpec::Producer(plan.producer_spec());
        let kills = if i == 0 { plan.kills_of(Role::Producer) } else { vec![] };
        let request_timeout_ms = plan.producer.request_timeout_ms;
        let slot =
            Slot { role: Role::Producer, index: i, first_process: u64::from(i), spec, kills, request_timeout_ms };
        clients.tasks.spawn(supervise(shared.clone(), slot, stopped.clone()));
    }
    clients
}

/// Starts every consumer slot that owns a partition.
pub fn start_consumers(plan: &Plan, shared: &Arc<Shared>, sinks: &[(u32, PathBuf)]) -> Clients {
    let a = &plan.settings;
    let (mut clients, stopped) = Clients::new();
    for j in 0..a.consumers {
        let owned: Vec<u32> = (0..a.topic_partitions).filter(|p| p % a.consumers == j).collect();
        // Subscribing consumers all start: the group shares the partitions.
        if owned.is_empty() && !a.subscribe {
            shared.log.info(format!(
                "consumer {j} owns no partition ({} partitions for {} consumers); not started",
                a.topic_partitions, a.consumers
            ));
            continue;
        }
        let sink = sinks.iter().find(|(slot, _)| *slot == j).map(|(_, path)| path.clone());
        let spec = RoleSpec::Consumer(plan.consumer_spec(owned, sink));
        let kills = if j == 0 { plan.kills_of(Role::Consumer) } else { vec![] };
        let request_timeout_ms = plan.consumer.request_timeout_ms;
        let first_process = u64::from(a.producers + j);
        let slot = Slot { role: Role::Consumer, index: j, first_process, spec, kills, request_timeout_ms };
        clients.tasks.spawn(supervise(shared.clone(), slot, stopped.clone()));
    }
    clients
}

/// Each consumer slot's sink database (`--sink sqlite`), created before the
/// workload so replacements reopen it and the nemesis can lock it.
pub fn create_sinks(plan: &Plan, dir: &std::path::Path) -> anyhow::Result<Vec<(u32, PathBuf)>> {
    let a = &plan.settings;
    if a.sink == SinkKind::None {
        return Ok(Vec::new());
    }
    let dir = dir.join("sink");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for j in 0..a.consumers.min(a.topic_partitions) {
        let path = std::path::absolute(dir.join(format!("slot-{j}.sqlite"))).context("the sink path")?;
        crate::sink::create(&path, a.sink_mode)?;
        out.push((j, path));
    }
    Ok(out)
}

/// Creates the topic and waits until every partition has a leader.
pub async fn create_topic(plan: &Plan, log: &RunLog, urls: &[String]) -> anyhow::Result<()> {
    let a = &plan.settings;
    let mut configs = BTreeMap::new();
    configs.insert("min.insync.replicas".to_string(), serde_json::json!(a.min_insync_replicas.to_string()));
    configs
        .insert("unclean.leader.election.enable".to_string(), serde_json::json!(a.unclean_leader_election.to_string()));
    let req = CreateTopicRequest {
        name: TOPIC.into(),
        partitions: Some(i64::from(a.topic_partitions)),
        replication_factor: Some(i64::from(a.replication_factor)),
        configs,
    };
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    let clients: Vec<Client> =
        urls.iter().map(|u| Client::with_timeout(u.clone(), Duration::from_millis(REQUEST_TIMEOUT_MS))).collect();
    let mut created = false;
    // Bounded by the deadline.
    for round in 0u64.. {
        let node = &clients[round as usize % clients.len()];
        if !created {
            created = try_create(node, &req, Instant::now() > deadline).await?;
        }
        if created
            && let Ok(d) = node.describe_topic(TOPIC).await
            && d.partitions.len() == a.topic_partitions as usize
            && d.partitions.iter().all(|p| p.leader.is_some())
        {
            log.info(format!(
                "topic {TOPIC}: {} partitions, RF {}, every partition has a leader",
                a.topic_partitions, a.replication_factor
            ));
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {TOPIC} has no leader for every partition within {TOPIC_READY_TIMEOUT:?}");
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL).await;
    }
    unreachable!("the loop returns or fails by the deadline")
}

/// One attempt: whether the topic exists now. A refusal of the request
/// itself fails at once; other errors are retried until `late`.
async fn try_create(node: &Client, req: &CreateTopicRequest, late: bool) -> anyhow::Result<bool> {
    match node.create_topic(req).await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => Ok(true),
        Err(e) if late => bail!("creating topic {TOPIC}: {e}"),
        Err(e)
            if e.code().is_some_and(|c| {
                matches!(
                    c,
                    ErrorCode::InvalidConfig
                        | ErrorCode::InvalidReplicationFactor
                        | ErrorCode::InvalidPartitions
                        | ErrorCode::InvalidRequest
                )
            }) =>
        {
            bail!("creating topic {TOPIC}: {e}")
        }
        Err(_) => Ok(false),
    }
}
