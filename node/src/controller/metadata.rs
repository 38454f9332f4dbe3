//! The cluster metadata: a deterministic state machine replicated by the
//! controller quorum.
//!
//! [`MetadataImage::apply`] is the only way metadata changes. It is a pure
//! function of the image and one [`Command`], so every voter that applies
//! the same log reaches the same image. Kafka's election and ISR rules live
//! here (`docs/semantics.md` §2.2, §3):
//!
//! - a fenced broker leaves every ISR, except where it is the last member;
//!   then the ISR keeps it and the partition has no leader (R2.9);
//! - a clean election picks the first replica in assignment order that is
//!   in the ISR and unfenced (R3.2);
//! - with none, the partition stays offline unless unclean election is on;
//!   then the first unfenced replica leads with ISR = {it}, recorded as
//!   unclean (R3.3, R3.4);
//! - every leader change increments the leader epoch; every change of
//!   leader or ISR increments the partition epoch;
//! - an ISR change proposed by a leader (AlterPartition) is checked against
//!   leader epoch, partition epoch, and the broker epochs of joining
//!   replicas (KIP-497, KIP-903).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Entries kept per partition in its election history; older entries are
/// dropped (and counted) so the image stays bounded.
pub const PARTITION_HISTORY_MAX: usize = 1_000;
/// Producer ids handed out per allocation; brokers assign ids from a block
/// without asking the controller for each producer.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicMetadata>,
    /// The first producer id not yet allocated.
    pub next_producer_id: i64,
    /// Log index of the last command applied: the metadata offset.
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: i32,
    /// Base URL of the broker's HTTP API.
    pub address: String,
    /// `host:port` of its Kafka-protocol listener, if it has one.
    #[serde(default)]
    pub kafka: Option<String>,
    /// The metadata offset of this incarnation's registration; a restarted
    /// broker gets a new, larger epoch (KIP-903).
    pub epoch: i64,
    pub fenced: bool,
    /// Bug switches this broker runs with; the controller honours
    /// `elect-out-of-sync-replica` if any live broker declares it.
    #[serde(default)]
    pub bugs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    /// Explicit topic-level overrides, as given at creation.
    pub configs: BTreeMap<String, String>,
    /// Effective `unclean.leader.election.enable`, resolved at creation.
    pub unclean_leader_election: bool,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    /// Assigned replicas, in preference order.
    pub replicas: Vec<i32>,
    /// `None` while the partition is offline.
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
    /// Every leader and ISR change, oldest first, at most [`PARTITION_HISTORY_MAX`].
    pub history: Vec<ElectionRecord>,
    /// History entries dropped to respect the bound.
    pub history_dropped: u64,
    /// Leader elections since the topic was created, never dropped.
    #[serde(default)]
    pub elections: Elections,
}

/// How many times a partition got a new leader, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elections {
    /// From the ISR.
    pub clean: u64,
    /// From outside the ISR (`unclean.leader.election.enable`).
    pub unclean: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The topic was created.
    Created,
    /// A leader from the ISR.
    Clean,
    /// A leader from outside the ISR: data may be lost.
    Unclean,
    /// No eligible leader: the partition is offline.
    Offline,
    /// The ISR changed, the leader did not.
    IsrChange,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionRecord {
    /// Metadata offset of the change.
    pub offset: u64,
    pub kind: ChangeKind,
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
}

/// A change to the metadata, as replicated in the controller's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Command {
    /// A broker (re)starts: a new incarnation with a new epoch. An older
    /// incarnation is first treated as dead, so a restarted broker comes
    /// back outside the ISR and must catch up to rejoin (R6.2).
    RegisterBroker {
        id: i32,
        address: String,
        /// `host:port` of the broker's Kafka-protocol listener, if it has one.
        #[serde(default)]
        kafka: Option<String>,
    },
    /// The active controller saw no heartbeat from this incarnation for
    /// `broker.session.timeout.ms`.
    FenceBroker { id: i32, epoch: i64 },
    CreateTopic {
        name: String,
        partitions: u32,
        replication_factor: u16,
        configs: BTreeMap<String, String>,
        unclean_leader_election: bool,
    },
    /// A leader asks to change its partition's ISR (AlterPartition).
    AlterPartition {
        topic: String,
        partition: u32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        /// The proposed ISR with each member's broker epoch as the leader saw it.
        new_isr: Vec<(i32, i64)>,
    },
    /// Reserve a block of producer ids for a broker.
    AllocateProducerIds { broker: i32 },
    /// A broker declares the bug switches it runs with (see `bugs.rs`), so
    /// the controller's own switch is part of the replicated state and every
    /// voter elects alike.
    DeclareBugs { broker: i32, bugs: Vec<String> },
}

/// What applying a command produced. Rejections are data: the command is
/// in the log, it just changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CommandResult {
    BrokerRegistered { epoch: i64 },
    BugsDeclared,
    BrokerFenced,
    TopicCreated,
    PartitionAltered { partition_epoch: i32 },
    ProducerIds { start: i64, count: i64 },
    Rejected { reason: Rejection, message: String },
}

/// Why a command changed nothing, with Kafka's error names where they exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rejection {
    TopicAlreadyExists,
    InvalidReplicationFactor,
    InvalidPartitions,
    UnknownTopicOrPartition,
    /// The sender is not the leader of this epoch.
    FencedLeaderEpoch,
    /// The partition changed since the sender last saw it.
    InvalidUpdateVersion,
    /// A joining replica is fenced or its broker epoch is stale (KIP-903).
    IneligibleReplica,
    InvalidRequest,
    /// The fence names an incarnation that is already gone.
    StaleBrokerEpoch,
    UnknownBroker,
}

fn reject(reason: Rejection, message: impl Into<String>) -> CommandResult {
    CommandResult::Rejected { reason, message: message.into() }
}

impl PartitionMetadata {
    fn record(&mut self, offset: u64, kind: ChangeKind) {
        match kind {
            ChangeKind::Clean => self.elections.clean += 1,
            ChangeKind::Unclean => self.elections.unclean += 1,
            ChangeKind::Created | ChangeKind::Offline | ChangeKind::IsrChange => {}
        }
        if self.history.len() == PARTITION_HISTORY_MAX {
            self.history.remove(0);
            self.history_dropped += 1;
        }
        self.history.push(ElectionRecord {
            offset,
            kind,
            leader: self.leader,
            leader_epoch: self.leader_epoch,
            isr: self.isr.clone(),
        });
    }
}

impl MetadataImage {
    pub fn apply(&mut self, index: u64, cmd: &Command) -> CommandResult {
        debug_assert!(index > self.offset || self.offset == 0, "commands apply in log order");
        self.offset = index;
        match cmd {
            Command::RegisterBroker { id, address, kafka } => self.register(index, *id, address, kafka.clone()),
            Command::FenceBroker { id, epoch } => match self.brokers.get(id) {
                None => reject(Rejection::UnknownBroker, format!("broker {id} never registered")),
                Some(b) if b.epoch != *epoch => {
                    reject(Rejection::StaleBrokerEpoch, format!("broker {id} is at epoch {}, not {epoch}", b.epoch))
                }
                Some(b) if b.fenced => CommandResult::BrokerFenced,
                Some(_) => {
                    self.fence(index, *id);
                    CommandResult::BrokerFenced
                }
            },
            Command::CreateTopic { name, partitions, replication_factor, configs, unclean_leader_election } => {
                self.create_topic(index, name, *partitions, *replication_factor, configs, *unclean_leader_election)
            }
            Command::AlterPartition { topic, partition, leader, leader_epoch, partition_epoch, new_isr } => {
                self.alter_partition(index, topic, *partition, *leader, *leader_epoch, *partition_epoch, new_isr)
            }
            Command::DeclareBugs { broker, bugs } => match self.brokers.get_mut(broker) {
                Some(b) => {
                    b.bugs = bugs.clone();
                    CommandResult::BugsDeclared
                }
                None => reject(Rejection::UnknownBroker, format!("broker {broker} never registered")),
            },
            Command::AllocateProducerIds { broker } => {
                if !self.brokers.contains_key(broker) {
                    return reject(Rejection::UnknownBroker, format!("broker {broker} never registered"));
                }
                let start = self.next_producer_id;
                self.next_producer_id += PRODUCER_ID_BLOCK_SIZE;
                CommandResult::ProducerIds { start, count: PRODUCER_ID_BLOCK_SIZE }
            }
        }
    }

    fn unfenced(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    fn register(&mut self, index: u64, id: i32, address: &str, kafka: Option<String>) -> CommandResult {
        if self.brokers.get(&id).is_some_and(|b| !b.fenced) {
            // The old incarnation died without being fenced yet.
            self.fence(index, id);
        }
        let bugs = self.brokers.get(&id).map(|b| b.bugs.clone()).unwrap_or_default();
        self.brokers.insert(
            id,
            BrokerRegistration { id, address: address.to_string(), kafka, epoch: index as i64, fenced: false, bugs },
        );
        self.elect_offline(index);
        CommandResult::BrokerRegistered { epoch: index as i64 }
    }

    /// Removes `id` from every ISR and leadership, electing replacements.
    fn fence(&mut self, index: u64, id: i32) {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = true;
        }
        let live: BTreeMap<i32, bool> = self.brokers.iter().map(|(k, b)| (*k, !b.fenced)).collect();
        let elect_any_bug = self.elect_any_bug();
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_leader_election;
            for p in &mut topic.partitions {
                let in_isr = p.isr.contains(&id);
                let leads = p.leader == Some(id);
                if !in_isr && !leads {
                    continue;
                }
                if in_isr && p.isr.len() > 1 {
                    p.isr.retain(|r| *r != id);
                }
                if leads {
                    elect(p, index, unclean, elect_any_bug, |r| live.get(&r).copied().unwrap_or(false));
                } else {
                    p.partition_epoch += 1;
                    p.record(index, ChangeKind::IsrChange);
                }
            }
        }
    }

    /// Tries to elect a leader for every offline partition.
    fn elect_offline(&mut self, index: u64) {
        let live: BTreeMap<i32, bool> = self.brokers.iter().map(|(k, b)| (*k, !b.fenced)).collect();
        let elect_any_bug = self.elect_any_bug();
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_leader_election;
            for p in topic.partitions.iter_mut().filter(|p| p.leader.is_none()) {
                let before = (p.leader_epoch, p.leader);
                let mut trial = p.clone();
                elect(&mut trial, index, unclean, elect_any_bug, |r| live.get(&r).copied().unwrap_or(false));
                if trial.leader.is_some() {
                    *p = trial;
                }
                debug_assert!(p.leader.is_none() || p.leader_epoch > before.0);
            }
        }
    }

    fn create_topic(
        &mut self,
        index: u64,
        name: &str,
        partitions: u32,
        rf: u16,
        configs: &BTreeMap<String, String>,
        unclean: bool,
    ) -> CommandResult {
        if self.topics.contains_key(name) {
            return reject(Rejection::TopicAlreadyExists, format!("topic `{name}` already exists"));
        }
        if partitions == 0 {
            return reject(Rejection::InvalidPartitions, "a topic needs at least one partition");
        }
        let live: Vec<i32> = self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect();
        if rf == 0 || usize::from(rf) > live.len() {
            return reject(
                Rejection::InvalidReplicationFactor,
                format!("replication factor {rf} needs that many live brokers; {} are live", live.len()),
            );
        }
        // Round-robin placement with a per-topic starting point, so leaders
        // of different topics spread over the brokers.
        let start = (crc32c::crc32c(name.as_bytes()) as usize) % live.len();
        let parts = (0..partitions as usize)
            .map(|i| {
                let replicas: Vec<i32> = (0..usize::from(rf)).map(|k| live[(start + i + k) % live.len()]).collect();
                let mut p = PartitionMetadata {
                    leader: Some(replicas[0]),
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    history: Vec::new(),
                    history_dropped: 0,
                    elections: Elections::default(),
                };
                p.record(index, ChangeKind::Created);
                p
            })
            .collect();
        let topic = TopicMetadata {
            name: name.to_string(),
            configs: configs.clone(),
            unclean_leader_election: unclean,
            partitions: parts,
        };
        self.topics.insert(name.to_string(), topic);
        CommandResult::TopicCreated
    }

    #[allow(clippy::too_many_arguments)]
    fn alter_partition(
        &mut self,
        index: u64,
        topic: &str,
        partition: u32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: &[(i32, i64)],
    ) -> CommandResult {
        let brokers = self.brokers.clone();
        let Some(p) = self.topics.get_mut(topic).and_then(|t| t.partitions.get_mut(partition as usize)) else {
            return reject(Rejection::UnknownTopicOrPartition, format!("{topic}/{partition} does not exist"));
        };
        if p.leader != Some(leader) || p.leader_epoch != leader_epoch {
            return reject(
                Rejection::FencedLeaderEpoch,
                format!(
                    "{topic}/{partition}: leader is {:?} at epoch {}, not {leader} at {leader_epoch}",
                    p.leader, p.leader_epoch
                ),
            );
        }
        if p.partition_epoch != partition_epoch {
            return reject(
                Rejection::InvalidUpdateVersion,
                format!("{topic}/{partition}: partition epoch is {}, not {partition_epoch}", p.partition_epoch),
            );
        }
        let ids: Vec<i32> = new_isr.iter().map(|(id, _)| *id).collect();
        if !ids.contains(&leader) || ids.iter().any(|id| !p.replicas.contains(id)) {
            return reject(
                Rejection::InvalidRequest,
                format!("ISR {ids:?} must hold the leader and only assigned replicas"),
            );
        }
        for (id, epoch) in new_isr {
            let joining = !p.isr.contains(id);
            let eligible = brokers.get(id).is_some_and(|b| !b.fenced && b.epoch == *epoch);
            if joining && !eligible {
                return reject(
                    Rejection::IneligibleReplica,
                    format!("replica {id} at broker epoch {epoch} may not join: fenced or a stale incarnation"),
                );
            }
        }
        // Keep assignment order, so ISRs compare and display stably.
        p.isr = p.replicas.iter().copied().filter(|r| ids.contains(r)).collect();
        p.partition_epoch += 1;
        p.record(index, ChangeKind::IsrChange);
        CommandResult::PartitionAltered { partition_epoch: p.partition_epoch }
    }

    /// Whether a live broker runs with `elect-out-of-sync-replica`.
    fn elect_any_bug(&self) -> bool {
        self.brokers.values().any(|b| !b.fenced && b.bugs.iter().any(|n| n == "elect-out-of-sync-replica"))
    }

    /// Whether broker `id` is registered and unfenced.
    pub fn is_live(&self, id: i32) -> bool {
        self.unfenced(id)
    }
}

/// Elects a new leader for `p` (whose current leader is gone or absent):
/// clean from the ISR, else unclean if allowed, else offline.
fn elect(
    p: &mut PartitionMetadata,
    index: u64,
    unclean_allowed: bool,
    elect_any_bug: bool,
    live: impl Fn(i32) -> bool,
) {
    let clean = p.replicas.iter().copied().find(|r| p.isr.contains(r) && live(*r));
    let (leader, kind) = match clean {
        Some(r) => (Some(r), ChangeKind::Clean),
        // Bug `elect-out-of-sync-replica`: an out-of-sync replica is elected
        // with unclean election off, and the history calls it clean.
        None if elect_any_bug && !unclean_allowed => match p.replicas.iter().copied().find(|r| live(*r)) {
            Some(r) => {
                p.isr = vec![r];
                (Some(r), ChangeKind::Clean)
            }
            None => (None, ChangeKind::Offline),
        },
        None if unclean_allowed => match p.replicas.iter().copied().find(|r| live(*r)) {
            Some(r) => {
                p.isr = vec![r];
                (Some(r), ChangeKind::Unclean)
            }
            None => (None, ChangeKind::Offline),
        },
        None => (None, ChangeKind::Offline),
    };
    if leader.is_none() && p.leader.is_none() {
        // Already offline and still no candidate: nothing changes.
        return;
    }
    p.leader = leader;
    p.leader_epoch += 1;
    p.partition_epoch += 1;
    p.record(index, kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(brokers: &[i32], rf: u16, unclean: bool) -> MetadataImage {
        let mut m = MetadataImage::default();
        let mut i = 0;
        for &b in brokers {
            i += 1;
            m.apply(i, &Command::RegisterBroker { id: b, address: format!("http://127.0.0.{b}:9092"), kafka: None });
        }
        let cmd = Command::CreateTopic {
            name: "t".into(),
            partitions: 1,
            replication_factor: rf,
            configs: BTreeMap::new(),
            unclean_leader_election: unclean,
        };
        assert_eq!(m.apply(i + 1, &cmd), CommandResult::TopicCreated);
        m
    }

    fn part(m: &MetadataImage) -> &PartitionMetadata {
        &m.topics["t"].partitions[0]
    }

    fn fence(m: &mut MetadataImage, id: i32) {
        let epoch = m.brokers[&id].epoch;
        let next = m.offset + 1;
        assert_eq!(m.apply(next, &Command::FenceBroker { id, epoch }), CommandResult::BrokerFenced);
    }

    #[test]
    fn fencing_the_leader_elects_the_next_isr_replica_and_bumps_the_epoch() {
        let mut m = image_with(&[1, 2, 3], 3, false);
        let leader = part(&m).leader.unwrap();
        fence(&mut m, leader);
        let p = part(&m);
        assert_ne!(p.leader, Some(leader));
        assert!(p.isr.len() == 2 && !p.isr.contains(&leader));
        assert_eq!(p.leader_epoch, 1);
        assert_eq!(p.history.last().unwrap().kind, ChangeKind::Clean);
    }

    #[test]
    fn the_last_isr_member_stays_in_the_isr_and_the_partition_goes_offline() {
        let mut m = image_with(&[1, 2, 3], 3, false);
        let order = part(&m).replicas.clone();
        fence(&mut m, order[1]);
        fence(&mut m, order[2]);
        assert_eq!(part(&m).isr, vec![order[0]]);
        fence(&mut m, order[0]);
        let p = part(&m);
        assert_eq!((p.leader, p.isr.clone()), (None, vec![order[0]]), "R2.9: the ISR keeps its last member");
        assert_eq!(p.history.last().unwrap().kind, ChangeKind::Offline);
        // A follower outside the ISR comes back: with unclean off, still offline.
        let next = m.offset + 1;
        m.apply(next, &Command::RegisterBroker { id: order[1], address: "x".into(), kafka: None });
        assert_eq!(part(&m).leader, None);
        // The last ISR member comes back: clean election.
        let next = m.offset + 1;
        m.apply(next, &Command::RegisterBroker { id: order[0], address: "x".into(), kafka: None });
        assert_eq!(part(&m).leader, Some(order[0]));
        assert_eq!(part(&m).history.last().unwrap().kind, ChangeKind::Clean);
        // Going offline is no election; coming back from it is a clean one.
        assert_eq!(part(&m).elections, Elections { clean: 1, unclean: 0 });
    }

    #[test]
    fn unclean_election_picks_a_live_out_of_sync_replica_and_resets_the_isr() {
        let mut m = image_with(&[1, 2, 3], 3, true);
        let order = part(&m).replicas.clone();
        fence(&mut m, order[1]);
        fence(&mut m, order[2]);
        let next = m.offset + 1;
        m.apply(next, &Command::RegisterBroker { id: order[2], address: "x".into(), kafka: None });
        fence(&mut m, order[0]);
        let p = part(&m);
        assert_eq!((p.leader, p.isr.clone()), (Some(order[2]), vec![order[2]]));
        assert_eq!(p.history.last().unwrap().kind, ChangeKind::Unclean);
        assert_eq!(p.elections, Elections { clean: 0, unclean: 1 });
    }

    #[test]
    fn a_restarted_broker_is_removed_from_the_isr_and_gets_a_new_epoch() {
        let mut m = image_with(&[1, 2, 3], 3, false);
        let follower = part(&m).replicas[1];
        let old = m.brokers[&follower].epoch;
        let next = m.offset + 1;
        let r = m.apply(next, &Command::RegisterBroker { id: follower, address: "x".into(), kafka: None });
        assert!(matches!(r, CommandResult::BrokerRegistered { epoch } if epoch > old));
        assert!(!part(&m).isr.contains(&follower));
        // Fencing the old incarnation is a no-op rejection.
        let next = m.offset + 1;
        assert!(matches!(
            m.apply(next, &Command::FenceBroker { id: follower, epoch: old }),
            CommandResult::Rejected { reason: Rejection::StaleBrokerEpoch, .. }
        ));
    }

    #[test]
    fn alter_partition_checks_leader_epoch_partition_epoch_and_broker_epoch() {
        let mut m = image_with(&[1, 2, 3], 3, false);
        let p = part(&m).clone();
        let (leader, f1, f2) = (p.replicas[0], p.replicas[1], p.replicas[2]);
        let e = |m: &MetadataImage, id: i32| m.brokers[&id].epoch;
        let shrink = Command::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            new_isr: vec![(leader, e(&m, leader)), (f1, e(&m, f1))],
        };
        assert_eq!(m.apply(m.offset + 1, &shrink), CommandResult::PartitionAltered { partition_epoch: 1 });
        assert_eq!(part(&m).isr, vec![leader, f1]);
        // The same request again is stale.
        assert!(matches!(
            m.apply(m.offset + 1, &shrink),
            CommandResult::Rejected { reason: Rejection::InvalidUpdateVersion, .. }
        ));
        // A joining replica with a stale broker epoch is refused (KIP-903).
        let stale = Command::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader,
            leader_epoch: 0,
            partition_epoch: 1,
            new_isr: vec![(leader, e(&m, leader)), (f1, e(&m, f1)), (f2, e(&m, f2) - 1)],
        };
        assert!(matches!(
            m.apply(m.offset + 1, &stale),
            CommandResult::Rejected { reason: Rejection::IneligibleReplica, .. }
        ));
        // A non-leader is fenced.
        let wrong = Command::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader: f1,
            leader_epoch: 0,
            partition_epoch: 1,
            new_isr: vec![(f1, e(&m, f1))],
        };
        assert!(matches!(
            m.apply(m.offset + 1, &wrong),
            CommandResult::Rejected { reason: Rejection::FencedLeaderEpoch, .. }
        ));
    }

    #[test]
    fn topics_need_enough_live_brokers_and_spread_leaders() {
        let mut m = image_with(&[1, 2, 3], 1, false);
        let cmd = |n: &str, rf| Command::CreateTopic {
            name: n.into(),
            partitions: 6,
            replication_factor: rf,
            configs: BTreeMap::new(),
            unclean_leader_election: false,
        };
        assert!(matches!(
            m.apply(m.offset + 1, &cmd("big", 4)),
            CommandResult::Rejected { reason: Rejection::InvalidReplicationFactor, .. }
        ));
        assert_eq!(m.apply(m.offset + 1, &cmd("spread", 3)), CommandResult::TopicCreated);
        let leaders: std::collections::BTreeSet<_> = m.topics["spread"].partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders.len(), 3, "six partitions spread their leaders over three brokers");
        assert!(matches!(
            m.apply(m.offset + 1, &cmd("spread", 3)),
            CommandResult::Rejected { reason: Rejection::TopicAlreadyExists, .. }
        ));
    }

    #[test]
    fn bug_elect_out_of_sync_replica_elects_without_the_isr_and_calls_it_clean() {
        for bug in [false, true] {
            let mut m = image_with(&[1, 2, 3], 3, false);
            if bug {
                for id in 1..=3 {
                    let next = m.offset + 1;
                    m.apply(next, &Command::DeclareBugs { broker: id, bugs: vec!["elect-out-of-sync-replica".into()] });
                }
            }
            let order = part(&m).replicas.clone();
            fence(&mut m, order[1]);
            fence(&mut m, order[2]);
            let next = m.offset + 1;
            m.apply(next, &Command::RegisterBroker { id: order[1], address: "x".into(), kafka: None });
            fence(&mut m, order[0]);
            let p = part(&m);
            if bug {
                assert_eq!(p.leader, Some(order[1]), "the out-of-sync replica leads although unclean election is off");
                assert_eq!(p.history.last().unwrap().kind, ChangeKind::Clean, "and the history hides it");
            } else {
                assert_eq!(p.leader, None, "without the switch the partition stays offline");
            }
        }
    }

    #[test]
    fn history_is_bounded() {
        let mut m = image_with(&[1, 2], 2, false);
        for _ in 0..(PARTITION_HISTORY_MAX + 10) {
            let leader = part(&m).leader.unwrap();
            let next = m.offset + 1;
            m.apply(next, &Command::RegisterBroker { id: leader, address: "x".into(), kafka: None });
        }
        assert_eq!(part(&m).history.len(), PARTITION_HISTORY_MAX);
        assert!(part(&m).history_dropped > 0);
    }
}
