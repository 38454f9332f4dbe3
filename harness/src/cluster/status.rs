//! `faultline cluster status [--json]`: each node's process and health,
//! and whether the cluster's harness is alive.

use anyhow::anyhow;
use clap::Args;

use super::state::Phase;
use super::{HEALTH_REQUEST_TIMEOUT, Where, load_named};
use crate::exit::Failure;

#[derive(Args, Debug)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    at: Where,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

/// One node as `status` shows it.
#[derive(serde::Serialize)]
struct NodeStatus {
    name: String,
    url: String,
    host: String,
    pid: Option<u32>,
    /// `running`, `paused` or `not running`.
    process: &'static str,
    health: String,
}

pub(super) async fn status(args: StatusArgs) -> Result<(), Failure> {
    let state = load_named(&args.at)?;
    let hosts = super::connect_hosts(&state).await?;
    let mut nodes = Vec::new();
    for (i, (node, host)) in state.nodes.iter().zip(&hosts).enumerate() {
        let process = match node.pid {
            Some(pid) => super::processes::node_process(node, host, pid).await.map_err(|e| anyhow!(e))?,
            None => None,
        };
        // Only talk to an address whose namespace and bridge are ours and up.
        let health = if node.external.is_some() {
            // No HTTP API to ask: `cluster describe` reads it over Kafka's protocol.
            format!("external, Kafka listener {}", node.kafka_address())
        } else if state.phase != Phase::Down && super::placement::can_reach(&state, i).await? {
            let client = faultline_client::Client::with_timeout(node.url.clone(), HEALTH_REQUEST_TIMEOUT);
            match client.health().await {
                Ok(h) => format!("health {}", h.status),
                Err(e) => format!("unhealthy ({e})"),
            }
        } else {
            "network down".into()
        };
        let word = match &process {
            Some(p) if p.state == faultline_nemesis::ProcState::Stopped => "paused",
            Some(_) => "running",
            None => "not running",
        };
        let (name, url, host) = (node.name.clone(), node.url.clone(), node.host.clone());
        nodes.push(NodeStatus { name, url, host, pid: process.map(|p| p.pid), process: word, health });
    }
    let (liveness, placement, control) = (state.liveness(), state.placement.describe(), state.placement.control_ip());
    if args.json {
        let doc = serde_json::json!({
            "name": state.name, "state": liveness.to_string(), "placement": placement,
            "subnet": state.placement.net().map(|n| n.subnet.network.to_string() + "/24"),
            "control_ip": control.to_string(), "nodes": nodes,
        });
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| anyhow!(e))?);
        return Ok(());
    }
    println!("cluster {} ({liveness}), {placement} (control {control})", state.name);
    for n in &nodes {
        let pid = n.pid.map(|p| format!("pid {p} ")).unwrap_or_default();
        println!("  {} {} on {} {pid}{}, {}", n.name, n.url, n.host, n.process, n.health);
    }
    Ok(())
}
