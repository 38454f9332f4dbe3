//! `faultline cluster describe`: what Kafka users know from `kafka-topics
//! --describe`, for a running cluster: every topic's partitions with
//! leader, leader epoch, replicas and ISR, plus HW and LEO as the leader
//! itself sees them. `--under-replicated-partitions` keeps partitions whose
//! ISR is short (or that have no leader); `--json` prints the rows as JSON.
//! Only nodes whose namespace this cluster created and can reach are asked.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use faultline_client::Client;
use faultline_client::api::TopicDescription;
use serde::Serialize;

use super::Where;
use super::state::ClusterState;
use crate::exit::Failure;

/// Timeout of one describe request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    at: Where,
    /// Print the rows as a JSON array.
    #[arg(long)]
    json: bool,
    /// Only partitions whose ISR is smaller than their replica set, or that
    /// have no leader.
    #[arg(long)]
    under_replicated_partitions: bool,
}

/// One partition, as its leader sees it.
#[derive(Debug, Serialize)]
struct Row {
    topic: String,
    partition: u32,
    leader: Option<i32>,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    high_watermark: i64,
    log_end_offset: i64,
}

impl Row {
    fn under_replicated(&self) -> bool {
        self.leader.is_none() || self.isr.len() < self.replicas.len()
    }
}

pub async fn describe(args: DescribeArgs) -> Result<(), Failure> {
    let state = super::load_named(&args.at)?;
    if let Some(node) = state.nodes.iter().find(|n| n.external.is_some()) {
        return Err(Failure::BadArgs(format!(
            "cluster {} runs an external system with no HTTP API: describe it with your Kafka tools \
             (kafka-topics.sh --bootstrap-server {} --describe)",
            state.name,
            node.kafka_address()
        )));
    }
    let views = node_views(&state).await?;
    if views.is_empty() {
        return Err(anyhow!("no node of cluster {} answers", state.name).into());
    }
    let mut rows = leader_rows(&views);
    if args.under_replicated_partitions {
        rows.retain(Row::under_replicated);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| anyhow!(e))?);
        return Ok(());
    }
    println!(
        "{:<24} {:>9} {:>6} {:>6} {:<12} {:<12} {:>10} {:>10}",
        "TOPIC", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "HW", "LEO"
    );
    for r in &rows {
        let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let leader = r.leader.map_or("none".to_string(), |l| l.to_string());
        println!(
            "{:<24} {:>9} {:>6} {:>6} {:<12} {:<12} {:>10} {:>10}",
            r.topic,
            r.partition,
            leader,
            r.leader_epoch,
            list(&r.replicas),
            list(&r.isr),
            r.high_watermark,
            r.log_end_offset
        );
    }
    Ok(())
}

/// Every reachable node's description of every topic: node id → topic → description.
async fn node_views(state: &ClusterState) -> anyhow::Result<BTreeMap<i32, BTreeMap<String, TopicDescription>>> {
    let mut views = BTreeMap::new();
    for (i, node) in state.nodes.iter().enumerate() {
        // Only talk to an address whose namespace and bridge are ours and up.
        if !super::placement::can_reach(state, i).await? {
            continue;
        }
        let client = Client::with_timeout(node.url.clone(), REQUEST_TIMEOUT);
        let Ok(list) = client.list_topics().await else { continue };
        let mut topics = BTreeMap::new();
        for t in list.topics {
            if let Ok(d) = client.describe_topic(&t).await {
                topics.insert(t, d);
            }
        }
        views.insert(node.id as i32, topics);
    }
    Ok(views)
}

/// One row per partition: the leader's own view where it answered, else
/// the first node's.
fn leader_rows(views: &BTreeMap<i32, BTreeMap<String, TopicDescription>>) -> Vec<Row> {
    let mut rows = Vec::new();
    let topics: std::collections::BTreeSet<&String> = views.values().flat_map(|t| t.keys()).collect();
    for topic in topics {
        let any = views.values().find_map(|t| t.get(topic)).expect("listed by some node");
        for p in &any.partitions {
            let own = p
                .leader
                .and_then(|l| views.get(&l))
                .and_then(|t| t.get(topic))
                .and_then(|d| d.partitions.iter().find(|x| x.partition == p.partition));
            let x = own.unwrap_or(p);
            rows.push(Row {
                topic: topic.clone(),
                partition: x.partition,
                leader: x.leader,
                leader_epoch: x.leader_epoch,
                replicas: x.replicas.clone(),
                isr: x.isr.clone(),
                high_watermark: x.high_watermark,
                log_end_offset: x.log_end_offset,
            });
        }
    }
    rows
}
