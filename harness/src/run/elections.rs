//! The election observer: during the whole run (workload and final phase)
//! it asks every node, a few times a second, who leads each of the run's
//! partitions and at which leader epoch, and writes a line to
//! `elections.jsonl` whenever a node's answer changes. The checker's
//! `metadata-regression` reads it: a node whose epochs go back, or two
//! leaders for one epoch. A node that does not answer (killed, paused,
//! cut off) is simply not heard that round.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use faultline_checker::elections::Observation;
use faultline_client::Client;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::ClusterState;
use crate::history::HistoryWriter;

/// How often every node is asked.
const PERIOD: Duration = Duration::from_millis(250);
/// How long one node may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// The running observer; [`Observer::stop`] ends it and returns the lines written.
pub struct Observer {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<u64>>,
}

impl Observer {
    /// Starts observing `topic` on every node of `state`, into `path`.
    pub fn start(
        state: &ClusterState,
        topic: &str,
        path: &Path,
        writer: Arc<Mutex<HistoryWriter>>,
    ) -> anyhow::Result<Observer> {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let nodes: Vec<(String, String)> = state.nodes.iter().map(|n| (n.name.clone(), n.url.clone())).collect();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(observe(nodes, topic.to_string(), std::io::BufWriter::new(file), writer, stopped));
        Ok(Observer { stop, task })
    }

    pub async fn stop(self) -> anyhow::Result<u64> {
        let _ = self.stop.send(true);
        self.task.await.context("the election observer panicked")?
    }
}

async fn observe(
    nodes: Vec<(String, String)>,
    topic: String,
    mut out: std::io::BufWriter<std::fs::File>,
    writer: Arc<Mutex<HistoryWriter>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let mut last: HashMap<(String, u32), (Option<i32>, i32)> = HashMap::new();
    let mut written = 0;
    let clients: Vec<Client> = nodes.iter().map(|(_, url)| Client::with_timeout(url, ASK_TIMEOUT)).collect();
    // Bounded by the run: it stops when the run says so.
    loop {
        let asks = clients.iter().map(|c| c.describe_topic(&topic));
        let answers = futures_util::future::join_all(asks).await;
        let time_ns = writer.lock().time_of(std::time::Instant::now());
        for ((node, _), answer) in nodes.iter().zip(answers) {
            let Ok(d) = answer else { continue };
            for p in d.partitions {
                let now = (p.leader, p.leader_epoch);
                if last.insert((node.clone(), p.partition), now) == Some(now) {
                    continue;
                }
                let o = Observation {
                    time_ns,
                    node: node.clone(),
                    partition: format!("{topic}/{}", p.partition),
                    leader: p.leader,
                    epoch: p.leader_epoch,
                };
                serde_json::to_writer(&mut out, &o)?;
                out.write_all(b"\n")?;
                written += 1;
            }
        }
        out.flush()?;
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = stop.wait_for(|s| *s) => return Ok(written),
        }
    }
}
