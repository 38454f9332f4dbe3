//! The nemesis during `faultline run`: fires a seeded schedule of faults at
//! the cluster, resolving role targets (the leader of `events/0`, the
//! controller, …) from the cluster's metadata when each fault fires,
//! records every fault twice in the history (when it starts, and when it
//! took effect with its resolved targets and outcome), and heals everything
//! at the end: partitions flushed, paused nodes resumed, killed nodes
//! started. A fault that cannot be applied because of a harness problem (a
//! missing tool, a failed command) aborts the run; it is never recorded as
//! an outcome of the system.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use anyhow::Context;
use faultline_client::Client;
use faultline_nemesis::Host;
use faultline_nemesis::fault::PartitionShape;
use faultline_nemesis::partition::{self, CONTROL, Shape};
use faultline_nemesis::precondition::Precondition;
use faultline_nemesis::schedule::{Action, ScheduledFault, Target};
use rand::{RngExt, SeedableRng};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::ClusterState;
use crate::history::HistoryWriter;
use crate::hosts::AnyHost;
use crate::store::RunLog;
use crate::system::roles::Roles;
use crate::system::{AnySystem, System};

/// The partition whose leader role targets name by default.
const DEFAULT_PARTITION: &str = "events/0";
/// Timeout of one metadata request while resolving a target.
const METADATA_TIMEOUT: Duration = Duration::from_millis(1_500);

/// What the nemesis has broken and not yet healed.
#[derive(Default)]
struct Active {
    partition: Option<String>,
    paused: BTreeSet<usize>,
    killed: BTreeSet<usize>,
}

pub struct Nemesis {
    hosts: Vec<AnyHost>,
    /// Where role targets are looked up.
    roles: Roles,
    state: Mutex<ClusterState>,
    addresses: BTreeMap<String, std::net::Ipv4Addr>,
    writer: Arc<Mutex<HistoryWriter>>,
    log: Arc<RunLog>,
    faults: watch::Sender<String>,
    active: Mutex<Active>,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    /// The consumers' sink databases, for `sink-outage`.
    sink_paths: Vec<std::path::PathBuf>,
    /// The workload's partitions, as role targets name them (`events/0`, …).
    partitions: Vec<String>,
    /// The sink outage in progress: the connection holding the locks.
    outage: Mutex<Option<crate::sink::Outage>>,
}

/// How a fault ended: installed, or skipped with the reason (no leader…).
enum Outcome {
    Installed(Vec<String>),
    Skipped(String),
}

impl Nemesis {
    pub fn new(
        state: &ClusterState,
        hosts: Vec<AnyHost>,
        writer: Arc<Mutex<HistoryWriter>>,
        log: Arc<RunLog>,
        faults: watch::Sender<String>,
        plan: &crate::run::plan::Plan,
        sink_paths: Vec<std::path::PathBuf>,
    ) -> Nemesis {
        let seed = plan.settings.seed;
        let mut addresses: BTreeMap<String, std::net::Ipv4Addr> =
            hosts.iter().map(|h| (h.name().to_string(), h.ip())).collect();
        addresses.insert(CONTROL.to_string(), state.placement.control_ip());
        Nemesis {
            hosts,
            roles: Roles::new(state, &plan.topic, &plan.group, METADATA_TIMEOUT),
            state: Mutex::new(state.clone()),
            addresses,
            writer,
            log,
            faults,
            active: Mutex::default(),
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300)),
            sink_paths,
            outage: Mutex::default(),
            partitions: (0..plan.settings.topic_partitions).map(|p| format!("events/{p}")).collect(),
        }
    }

    fn record(&self, f: &str, value: serde_json::Value) -> anyhow::Result<()> {
        self.writer.lock().nemesis(f, value)
    }

    fn publish(&self) {
        let a = self.active.lock();
        let mut parts = Vec::new();
        if let Some(p) = &a.partition {
            parts.push(format!("partition {p}"));
        }
        if self.outage.lock().is_some() {
            parts.push("sink outage".into());
        }
        let name = |i: &usize| self.hosts[*i].name().to_string();
        if !a.paused.is_empty() {
            parts.push(format!("paused {}", a.paused.iter().map(name).collect::<Vec<_>>().join(",")));
        }
        if !a.killed.is_empty() {
            parts.push(format!("killed {}", a.killed.iter().map(name).collect::<Vec<_>>().join(",")));
        }
        self.faults.send_replace(if parts.is_empty() { "none".into() } else { parts.join("; ") });
    }

    /// Fires `schedule` in time order until it ends or `stop` is set.
    /// Client kills are not done here (the supervisors do them at the same
    /// times); they are recorded.
    pub async fn run(
        self: Arc<Self>,
        schedule: Vec<ScheduledFault>,
        started: Instant,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        // Bounded: one iteration per scheduled fault.
        for op in schedule {
            let scheduled = started + Duration::from_secs_f64(op.at_s);
            tokio::select! {
                _ = tokio::time::sleep_until(scheduled) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            let scheduled_ns = self.writer.lock().time_of(scheduled.into_std());
            self.fire(&op, scheduled_ns).await.with_context(|| format!("nemesis {} {}", op.action, op.target))?;
        }
        Ok(())
    }

    /// Performs one fault; its `start-` op records when the schedule wanted
    /// it (`scheduled_ns`, history time), so the delay to the op that
    /// records its effect can be read from the history.
    async fn fire(&self, op: &ScheduledFault, scheduled_ns: u64) -> anyhow::Result<()> {
        let f = op.action.to_string();
        self.record(&format!("start-{f}"), json!({ "target": op.target.to_string(), "scheduled_ns": scheduled_ns }))?;
        // Checked before the fault acts on what it checks.
        let precondition = match &op.require {
            Some(r) => Some((r, self.check(r).await)),
            None => None,
        };
        let mut detail = None;
        let outcome = match &op.action {
            Action::KillProducer
            | Action::KillConsumer
            | Action::PauseConsumer
            | Action::ResumeConsumer
            | Action::StallConsumer => Outcome::Installed(vec![op.target.to_string()]),
            Action::SinkOutage => self.sink_outage().await?,
            Action::SinkRecover => self.sink_recover()?,
            Action::Heal => {
                partition::heal(&self.hosts).await?;
                self.active.lock().partition = None;
                Outcome::Installed(vec!["all".into()])
            }
            Action::Partition(shape) => self.partition(shape, &op.target).await?,
            Action::PowerLoss => match self.resolve(&op.target, &op.action).await {
                Err(why) => Outcome::Skipped(why),
                Ok(nodes) if nodes.is_empty() => Outcome::Skipped("no node matches the target now".into()),
                Ok(nodes) => {
                    detail = Some(self.power_loss(&nodes).await?);
                    Outcome::Installed(nodes.iter().map(|i| self.hosts[*i].name().to_string()).collect())
                }
            },
            Action::Grudge(g) => {
                partition::apply(&self.hosts, g, &self.addresses).await?;
                self.active.lock().partition = Some("explicit".into());
                Outcome::Installed(partition::describe(g))
            }
            Action::Kill
            | Action::Pause
            | Action::Resume
            | Action::Start
            | Action::PauseFetchers
            | Action::ResumeFetchers => match self.resolve(&op.target, &op.action).await {
                Err(why) => Outcome::Skipped(why),
                Ok(nodes) if nodes.is_empty() => Outcome::Skipped("no node matches the target now".into()),
                Ok(nodes) => {
                    for i in &nodes {
                        self.act(*i, &op.action).await?;
                    }
                    Outcome::Installed(nodes.iter().map(|i| self.hosts[*i].name().to_string()).collect())
                }
            },
        };
        let mut value = match &outcome {
            Outcome::Installed(targets) => json!({ "outcome": "installed", "targets": targets }),
            Outcome::Skipped(why) => json!({ "outcome": "skipped", "reason": why }),
        };
        if let Some((lost, replicas)) = detail {
            value["lost"] = lost;
            value["replicas"] = replicas;
        }
        if let Some((require, seen)) = precondition {
            value["require"] = json!(require.to_string());
            match seen {
                Ok(seen) => value["met"] = json!(seen),
                Err(why) => value["unmet"] = json!(why),
            }
        }
        self.log.info(format!("nemesis: {f} {} -> {value}", op.target));
        self.record(&f, value)?;
        self.publish();
        Ok(())
    }

    async fn partition(&self, shape: &str, target: &Target) -> anyhow::Result<Outcome> {
        let shape = if shape == "random" {
            PartitionShape::STANDARD[self.rng.lock().random_range(0..PartitionShape::STANDARD.len())].name().to_string()
        } else {
            shape.to_string()
        };
        let names: Vec<String> = self.hosts.iter().map(|h| h.name().to_string()).collect();
        let leader = |t: &Target| match t {
            Target::LeaderOf(p) => p.clone(),
            _ => DEFAULT_PARTITION.to_string(),
        };
        let resolved = match shape.as_str() {
            "one" => {
                let i = match target {
                    Target::Node(n) => names.iter().position(|x| x == n),
                    _ => Some(self.rng.lock().random_range(0..names.len())),
                };
                i.map(|i| Shape::One(names[i].clone()))
            }
            "isolate-leader" => {
                self.leader_of(&leader(target)).await.map(|i| Shape::IsolateWithClients(names[i].clone()))
            }
            "leader-from-followers" => self.leader_of(&leader(target)).await.map(|i| Shape::One(names[i].clone())),
            "mute-leader" => self.leader_of(&leader(target)).await.map(|i| Shape::MuteToClients(names[i].clone())),
            "isolate-controller" => self.controller().await.map(|i| Shape::One(names[i].clone())),
            "coordinator-from-clients" => {
                self.roles.coordinator().await.map(|i| Shape::RefuseClients(names[i].clone()))
            }
            other => Some(partition::parse_shape(other).map_err(anyhow::Error::msg)?),
        };
        let Some(resolved) = resolved else {
            let what = format!("no leader of {}, controller or group coordinator right now", leader(target));
            return Ok(Outcome::Skipped(format!("{shape}: {what}")));
        };
        let seed = self.rng.lock().random_range(0..u64::MAX);
        let grudge = partition::grudge(&resolved, &names, seed);
        partition::apply(&self.hosts, &grudge, &self.addresses).await?;
        self.active.lock().partition = Some(shape.clone());
        Ok(Outcome::Installed(partition::describe(&grudge)))
    }

    /// A step's precondition, now.
    async fn check(&self, require: &Precondition) -> Result<String, String> {
        let Precondition::Behind { partition, .. } = require;
        let acked = self.roles.history_name(partition).and_then(|p| self.writer.lock().acked_max(&p));
        self.roles.check(require, &self.names(), acked).await
    }

    fn names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name().to_string()).collect()
    }

    async fn leader_of(&self, partition: &str) -> Option<usize> {
        self.roles.leader_of(partition).await
    }

    async fn controller(&self) -> Option<usize> {
        self.roles.controller().await
    }

    /// Resolves a target to host indices now, or says why it cannot be.
    async fn resolve(&self, target: &Target, action: &Action) -> Result<Vec<usize>, String> {
        let n = self.hosts.len();
        let live: Vec<usize> = {
            let a = self.active.lock();
            (0..n).filter(|i| !a.killed.contains(i)).collect()
        };
        let pick = |k: usize, from: &[usize]| -> Vec<usize> {
            let mut v = from.to_vec();
            let mut rng = self.rng.lock();
            let mut out = Vec::new();
            while out.len() < k && !v.is_empty() {
                out.push(v.swap_remove(rng.random_range(0..v.len())));
            }
            out.sort_unstable();
            out
        };
        Ok(match target {
            Target::Node(name) => {
                vec![self.hosts.iter().position(|h| h.name() == name).ok_or(format!("no node {name}"))?]
            }
            Target::All => match action {
                Action::Resume => self.active.lock().paused.iter().copied().collect(),
                Action::Start => self.active.lock().killed.iter().copied().collect(),
                // A killed node has no process to signal or fetchers to pause.
                _ => live.clone(),
            },
            Target::Killed => self.active.lock().killed.iter().copied().collect(),
            Target::Random => pick(1, &live),
            Target::Minority => pick((n - 1) / 2, &live),
            Target::Majority => pick(n / 2 + 1, &live),
            Target::Controller => vec![self.controller().await.ok_or("no active controller right now")?],
            Target::LeaderOf(p) => vec![self.leader_of(p).await.ok_or(format!("no leader of {p} right now"))?],
            Target::IsrOf(p) => {
                let r = self.roles.replicas_of(p).await.ok_or(format!("{p} is unknown right now"))?;
                r.isr.into_iter().filter(|i| live.contains(i)).collect()
            }
            Target::FollowerOf(p) | Target::FollowersOf(p) => {
                let r = self.roles.replicas_of(p).await.ok_or(format!("{p} is unknown right now"))?;
                let followers: Vec<usize> = r.replicas.into_iter().filter(|i| Some(*i) != r.leader).collect();
                if matches!(target, Target::FollowerOf(_)) { pick(1, &followers) } else { followers }
            }
        })
    }

    /// Power loss on `nodes` at once: every one is SIGKILLed (and proven
    /// gone) before any disk forgets, as when one power feed fails; then
    /// each disk drops what it never synced. Returns what each lost: the
    /// proof the fault took effect.
    async fn power_loss(&self, nodes: &[usize]) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
        let replicas = self.replica_names().await;
        for &i in nodes {
            self.act(i, &Action::Kill).await?;
            let node = self.state.lock().nodes[i].clone();
            if let Some(pid) = node.pid {
                anyhow::ensure!(
                    self.hosts[i].process(pid).await?.is_none(),
                    "{} (pid {pid}) survived SIGKILL: its disk cannot lose power under it",
                    node.name
                );
            }
        }
        let mut lost = serde_json::Map::new();
        for &i in nodes {
            let node = self.state.lock().nodes[i].clone();
            let loss = crate::cluster::lazy_disk::lose_unsynced(&node, None).await?;
            lost.insert(node.name.clone(), serde_json::to_value(loss)?);
        }
        Ok((serde_json::Value::Object(lost), replicas))
    }

    /// Each workload partition's replicas by node name, under its history
    /// name: the checker learns from them whose power a partition needs.
    async fn replica_names(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for p in &self.partitions {
            if let (Some(r), Some(name)) = (self.roles.replicas_of(p).await, self.roles.history_name(p)) {
                let nodes: Vec<&str> = r.replicas.iter().map(|i| self.hosts[*i].name()).collect();
                out.insert(name, json!(nodes));
            }
        }
        serde_json::Value::Object(out)
    }

    /// Applies a process fault to host `i` and proves it took effect.
    async fn act(&self, i: usize, action: &Action) -> anyhow::Result<()> {
        let host = &self.hosts[i];
        let node = self.state.lock().nodes[i].clone();
        let system = AnySystem::of(&node);
        match action {
            Action::Kill => {
                if let Some(pid) = node.pid {
                    system.kill(host, pid).await?;
                }
                let mut a = self.active.lock();
                a.killed.insert(i);
                a.paused.remove(&i);
            }
            Action::Start => {
                let pid = system.start(host, &node).await?;
                let mut state = self.state.lock();
                state.nodes[i].pid = Some(pid);
                // Teardown finds the new pid in the state file.
                state.save()?;
                drop(state);
                self.active.lock().killed.remove(&i);
            }
            Action::Pause | Action::Resume => {
                if let Some(pid) = node.pid {
                    if *action == Action::Pause {
                        system.pause(host, pid).await?
                    } else {
                        system.resume(host, pid).await?
                    }
                }
                let mut a = self.active.lock();
                if *action == Action::Pause {
                    a.paused.insert(i)
                } else {
                    a.paused.remove(&i)
                };
            }
            Action::PauseFetchers | Action::ResumeFetchers => {
                let url = self.state.lock().nodes[i].url.clone();
                let paused = *action == Action::PauseFetchers;
                Client::with_timeout(&url, METADATA_TIMEOUT)
                    .set_fetchers_paused(paused)
                    .await
                    .with_context(|| format!("admin hook on {} (does the run pass --admin-hooks?)", host.name()))?;
            }
            _ => unreachable!("not a process fault"),
        }
        Ok(())
    }

    /// Heals everything: partitions, paused processes, killed nodes. Runs at
    /// the end of every run before the final reads.
    /// Holds every sink database's write lock from the harness's own
    /// connection: consumers' writes fail with `SQLITE_BUSY` until recovery.
    async fn sink_outage(&self) -> anyhow::Result<Outcome> {
        if self.sink_paths.is_empty() {
            return Ok(Outcome::Skipped("the run has no sink (--sink none)".into()));
        }
        if self.outage.lock().is_some() {
            return Ok(Outcome::Skipped("a sink outage is already in progress".into()));
        }
        // Blocking for at most the lock wait of a transaction in progress,
        // on the blocking pool: not `block_in_place`, which could retire a
        // runtime thread that started client processes, and the kernel
        // kills a child whose starting thread is gone (PR_SET_PDEATHSIG).
        let paths = self.sink_paths.clone();
        let begun = tokio::task::spawn_blocking(move || crate::sink::Outage::begin(&paths)).await??;
        // The nemesis fires one fault at a time: nothing began meanwhile.
        *self.outage.lock() = Some(begun);
        Ok(Outcome::Installed(
            self.sink_paths.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect(),
        ))
    }

    fn sink_recover(&self) -> anyhow::Result<Outcome> {
        match self.outage.lock().take() {
            Some(o) => {
                o.end()?;
                Ok(Outcome::Installed(vec!["sink".into()]))
            }
            None => Ok(Outcome::Skipped("no sink outage in progress".into())),
        }
    }

    pub async fn final_heal(&self) -> anyhow::Result<()> {
        self.record("start-final-heal", json!({}))?;
        let outage = self.outage.lock().take();
        if let Some(o) = outage {
            o.end()?;
        }
        partition::heal(&self.hosts).await?;
        let (paused, killed): (Vec<usize>, Vec<usize>) = {
            let a = self.active.lock();
            (a.paused.iter().copied().collect(), a.killed.iter().copied().collect())
        };
        for i in &paused {
            self.act(*i, &Action::Resume).await?;
        }
        for i in &killed {
            self.act(*i, &Action::Start).await?;
        }
        for i in 0..self.hosts.len() {
            let url = self.state.lock().nodes[i].url.clone();
            // Fetchers paused by an admin hook resume too (a refusal means the hooks are off).
            let _ = Client::with_timeout(&url, METADATA_TIMEOUT).set_fetchers_paused(false).await;
        }
        self.active.lock().partition = None;
        let names = |v: &[usize]| v.iter().map(|i| self.hosts[*i].name().to_string()).collect::<Vec<_>>();
        self.record(
            "final-heal",
            json!({ "outcome": "installed", "resumed": names(&paused), "started": names(&killed) }),
        )?;
        self.publish();
        Ok(())
    }
}
