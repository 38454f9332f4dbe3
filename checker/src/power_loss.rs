//! Power loss of every replica of a partition at once: the one way Kafka,
//! with its default flush settings and clean elections, may lose records it
//! acknowledged with acks=all. A broker acknowledges once the in-sync
//! replicas hold a record in memory (the page cache); it fsyncs only as
//! `flush.messages` says (by default never by itself). Replication covers
//! one broker's power failure, not the failure of every replica at once.
//!
//! The history says whose power went: a `power-loss` op's `targets` lost
//! power (and stay without it until a `start` names them, or the final
//! heal), and its `replicas` give each partition's replicas at that time.
//! A partition is covered once every one of its replicas was without
//! power at one moment. Its anomalies that a log losing its tail produces
//! (lost writes, one offset holding two values, offsets reused, polls
//! going back) are then permitted, unless the brokers fsynced every append
//! before acknowledging it (`flush-messages` = 1).

use std::collections::{BTreeMap, BTreeSet};

use crate::anomaly::AnomalyKind;
use crate::guarantees::Guarantees;
use crate::history::History;

/// The partitions whose every replica was without power at one moment.
#[derive(Debug, Default)]
pub struct PoweredOff {
    /// Partition → (the latest such moment, history ns; its replicas).
    covered: BTreeMap<String, (u64, Vec<String>)>,
}

/// What a log that lost its unsynced tail can show.
fn follows_from_a_lost_tail(kind: AnomalyKind) -> bool {
    matches!(
        kind,
        AnomalyKind::LostWrite
            | AnomalyKind::Unseen
            | AnomalyKind::InconsistentOffsets
            | AnomalyKind::RealtimeCycle
            | AnomalyKind::NonmonotonicSend
            | AnomalyKind::PollSkip
            | AnomalyKind::NonmonotonicPoll
            | AnomalyKind::OrderCycle
    )
}

impl PoweredOff {
    pub fn of(h: &History) -> PoweredOff {
        let mut down: BTreeSet<&str> = BTreeSet::new();
        let mut replicas: BTreeMap<&str, &[String]> = BTreeMap::new();
        let mut covered = BTreeMap::new();
        for n in &h.nemesis {
            match n.f.as_str() {
                "power-loss" if n.skipped.is_none() => {
                    down.extend(n.targets.iter().map(String::as_str));
                    replicas.extend(n.replicas.iter().map(|(p, r)| (p.as_str(), r.as_slice())));
                    for (p, r) in &replicas {
                        if !r.is_empty() && r.iter().all(|x| down.contains(x.as_str())) {
                            // The latest such moment: a record acknowledged
                            // before any of them was exposed to one.
                            covered.insert(p.to_string(), (n.time_ns, r.to_vec()));
                        }
                    }
                }
                "start" => n.targets.iter().for_each(|t| {
                    down.remove(t.as_str());
                }),
                "final-heal" => down.clear(),
                _ => {}
            }
        }
        PoweredOff { covered }
    }

    /// Why `kind` is permitted by power loss, if it is: every instance
    /// (its partition, and a time: a lost write's acknowledgement, or for
    /// the other types the earliest op an example's witness names) lies in
    /// a partition that lost all its replicas' power, and began no later
    /// than that moment; and appends were not fsynced before their
    /// acknowledgement. Instances of an untimed type beyond its examples are
    /// judged by their partition only.
    pub fn reason(&self, kind: AnomalyKind, instances: &[(&str, Option<u64>)], g: &Guarantees) -> Option<String> {
        if g.flush_messages == 1 || !follows_from_a_lost_tail(kind) || instances.is_empty() {
            return None;
        }
        let explained =
            |(p, t): &(&str, Option<u64>)| self.covered.get(*p).is_some_and(|(at, _)| t.is_none_or(|t| t <= *at));
        if !instances.iter().all(explained) {
            return None;
        }
        let named: BTreeSet<&str> = instances.iter().map(|(p, _)| *p).collect();
        let first = *named.first()?;
        let (t, r) = &self.covered[first];
        Some(format!(
            "power-loss of every replica of {} at once ({first}: {} at {:.1} s) with flush-messages={}: Kafka \
             acknowledges records its replicas hold in memory and promises nothing across the loss of every \
             replica's unsynced writes",
            named.into_iter().collect::<Vec<_>>().join(", "),
            r.join(", "),
            *t as f64 / 1e9,
            g.flush_messages
        ))
    }
}
