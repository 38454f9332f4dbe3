//! The replica manager: turns the controller's metadata into local replica
//! roles, runs one fetcher per leader this node follows, and proposes ISR
//! changes (shrinks on lag, expansions when a follower catches up).
//!
//! Every change of leader or epoch in the metadata is applied here, so a
//! follower re-runs epoch-based truncation after every epoch change it
//! learns of, even when the leader id is unchanged (KAFKA-7164).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::{Broker, Partition, Role};
use crate::controller::metadata::{Command, CommandResult, MetadataImage};
use crate::replica::fetcher;

pub struct ReplicaManager {
    pub broker: Arc<Broker>,
    /// One fetch loop per leader broker this node follows.
    fetchers: Mutex<HashMap<i32, JoinHandle<()>>>,
    pub http: reqwest::Client,
    stop: watch::Receiver<bool>,
    /// Admin hook: while set, fetchers do not fetch.
    pub fetchers_paused: std::sync::atomic::AtomicBool,
}

impl ReplicaManager {
    pub fn new(broker: Arc<Broker>, stop: watch::Receiver<bool>) -> Arc<ReplicaManager> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_millis(1_000))
            .build()
            .expect("a reqwest client without TLS always builds");
        Arc::new(ReplicaManager { broker, fetchers: Mutex::default(), http, stop, fetchers_paused: Default::default() })
    }

    fn node_id(&self) -> i32 {
        self.broker.config.node_id
    }

    /// Applies every metadata change until shutdown.
    pub async fn run(self: Arc<Self>) {
        let mut rx = self.broker.control().watch();
        let mut registered = self.broker.control().watch_broker_epoch();
        let mut stop = self.stop.clone();
        loop {
            let image = rx.borrow_and_update().clone();
            registered.borrow_and_update();
            self.reconcile(&image);
            // Leadership waits for this incarnation's registration, which
            // may reach this node after the image that holds it.
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                changed = registered.changed() => if changed.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Whether `image` shows this node registered as the incarnation that
    /// is running: an image from before its registration (its own log,
    /// replayed at start-up) still names the previous incarnation, whose
    /// leadership a restarted node must not take: its log may have lost
    /// what that incarnation wrote (a power loss), and the controller moves
    /// the leadership on (with a new epoch) when the new incarnation registers.
    fn current_incarnation(&self, image: &MetadataImage) -> bool {
        let mine = image.brokers.get(&self.node_id());
        let epoch = self.broker.control().broker_epoch();
        mine.is_some_and(|b| !b.fenced && Some(b.epoch) == epoch)
    }

    /// Brings local replicas in line with `image`.
    pub fn reconcile(self: &Arc<Self>, image: &MetadataImage) {
        let me = self.node_id();
        let now = Instant::now();
        let may_lead = self.current_incarnation(image);
        for (name, topic) in &image.topics {
            for (i, p) in topic.partitions.iter().enumerate() {
                if !p.replicas.contains(&me) {
                    continue;
                }
                let local = match self.broker.ensure_replica(name, i as u32, &topic.configs) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(
                            topic = %name,
                            partition = i,
                            error = %e.message,
                            "cannot create local replica"
                        );
                        continue;
                    }
                };
                let (epoch, role_leader) = local.read_state(|st| (st.leader_epoch(), st.leader()));
                let fresh = epoch != p.leader_epoch || role_leader != p.leader;
                match p.leader {
                    // Not yet: the registration's change brings a new epoch.
                    Some(l) if l == me && fresh && !may_lead => {}
                    Some(l) if l == me && fresh => {
                        local.become_leader(p.leader_epoch, p.partition_epoch, &p.replicas, &p.isr, now)
                    }
                    Some(l) if fresh => {
                        let address = image.brokers.get(&l).map(|b| b.address.clone()).unwrap_or_default();
                        local.become_follower(l, &address, p.leader_epoch, p.partition_epoch, &p.replicas, &p.isr);
                    }
                    None if fresh => local.become_offline(p.leader_epoch, p.partition_epoch, &p.replicas, &p.isr),
                    _ => local.update_isr(p.partition_epoch, &p.isr),
                }
            }
        }
        self.ensure_fetchers();
    }

    /// Starts a fetcher for every leader that some local replica follows
    /// and that has none running. Fetchers stop by themselves when nothing
    /// follows their leader any more.
    fn ensure_fetchers(self: &Arc<Self>) {
        let mut leaders: Vec<i32> = Vec::new();
        for p in self.broker.all_partitions() {
            if let Some(l) = p.read_state(|st| match st.role() {
                Role::Follower { leader, .. } => Some(*leader),
                _ => None,
            }) && !leaders.contains(&l)
            {
                leaders.push(l);
            }
        }
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|_, h| !h.is_finished());
        for l in leaders {
            fetchers.entry(l).or_insert_with(|| tokio::spawn(fetcher::run(self.clone(), l)));
        }
    }

    /// Local replicas that currently follow `leader`.
    pub fn followed_from(&self, leader: i32) -> Vec<Arc<Partition>> {
        self.broker
            .all_partitions()
            .into_iter()
            .filter(|p| p.read_state(|st| matches!(st.role(), Role::Follower { leader: l, .. } if *l == leader)))
            .collect()
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Proposes `new_isr` for a partition this node leads, unless a change
    /// is already pending. The outcome reaches the replica through the
    /// metadata; a refusal just clears the pending change.
    pub fn propose_isr(self: &Arc<Self>, partition: Arc<Partition>, new_isr: Vec<i32>) {
        let before = partition.read_state(|st| st.isr().len());
        let Some((leader_epoch, partition_epoch)) = partition.begin_isr_change(&new_isr) else { return };
        let own_epoch = self.broker.control().broker_epoch().unwrap_or(-1);
        let members = partition.member_epochs(&new_isr, own_epoch);
        let cmd = Command::AlterPartition {
            topic: partition.topic.clone(),
            partition: partition.index,
            leader: self.node_id(),
            leader_epoch,
            partition_epoch,
            new_isr: members,
        };
        let mgr = self.clone();
        tokio::spawn(async move {
            match mgr.broker.control().propose(cmd).await {
                Ok(CommandResult::PartitionAltered { .. }) => {
                    mgr.broker.stats.isr_changed(before, new_isr.len());
                    tracing::info!(partition = %partition.name(), isr = ?new_isr, "ISR change committed");
                }
                Ok(other) => {
                    tracing::info!(
                        partition = %partition.name(),
                        isr = ?new_isr,
                        answer = ?other,
                        "ISR change refused"
                    );
                    partition.abandon_isr_change();
                }
                Err(e) => {
                    tracing::warn!(partition = %partition.name(), error = %e, "ISR change not answered");
                    partition.abandon_isr_change();
                }
            }
        });
    }

    /// Every `replica.lag.time.max.ms / 2`, proposes removing followers
    /// that have not caught up within `replica.lag.time.max.ms` (R2.7).
    pub async fn run_isr_expiration(self: Arc<Self>) {
        let lag = Duration::from_millis(self.broker.config.replica_lag_time_max_ms);
        let mut tick = tokio::time::interval((lag / 2).max(Duration::from_millis(10)));
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = Instant::now();
            for p in self.broker.all_partitions() {
                let out = p.out_of_sync_followers(now, lag);
                if out.is_empty() {
                    continue;
                }
                let isr: Vec<i32> = p.read_state(|st| st.isr().iter().copied().filter(|r| !out.contains(r)).collect());
                tracing::info!(partition = %p.name(), out_of_sync = ?out, "shrinking ISR");
                self.propose_isr(p, isr);
            }
        }
    }
}
