//! Broker liveness as the active controller sees it: the last heartbeat of
//! every registered incarnation, and which ones have been silent longer
//! than `broker.session.timeout.ms` and must be fenced.
//!
//! Only the raft leader acts on this table. When a node becomes leader (a
//! new term), every broker counts as having heartbeated "now": heartbeats
//! sent to the previous leader are lost with it, and a controller failover
//! must not fence the whole cluster. An incarnation first seen in the image
//! also starts at "now", so a fresh registration has a full session to send
//! its first heartbeat.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::metadata::MetadataImage;

pub struct Liveness {
    session_timeout: Duration,
    /// Last heartbeat (or grace start) per `(broker id, broker epoch)`.
    /// Holds only incarnations registered and unfenced in the image, so it
    /// is bounded by the number of brokers.
    last_seen: HashMap<(i32, i64), Instant>,
    /// The term this node leads in, if it is the leader; a new term resets
    /// every incarnation to "now".
    led_term: Option<u64>,
}

impl Liveness {
    pub fn new(session_timeout: Duration) -> Liveness {
        Liveness { session_timeout, last_seen: HashMap::new(), led_term: None }
    }

    /// Records a heartbeat if `image` has this incarnation registered and
    /// unfenced; returns whether it did.
    pub fn record(&mut self, image: &MetadataImage, id: i32, epoch: i64, now: Instant) -> bool {
        let live = image.brokers.get(&id).is_some_and(|b| b.epoch == epoch && !b.fenced);
        if live {
            self.last_seen.insert((id, epoch), now);
        }
        live
    }

    /// This node is not (or no longer) the leader: forget everything, so
    /// leading again starts with a fresh grace period.
    pub fn step_down(&mut self) {
        self.led_term = None;
        self.last_seen.clear();
    }

    /// Called by the leader of `term`: the unfenced incarnations in `image`
    /// whose last heartbeat is older than the session timeout.
    pub fn expired(&mut self, image: &MetadataImage, term: u64, now: Instant) -> Vec<(i32, i64)> {
        if self.led_term != Some(term) {
            self.led_term = Some(term);
            self.last_seen.clear();
        }
        let current: HashMap<(i32, i64), ()> =
            image.brokers.values().filter(|b| !b.fenced).map(|b| ((b.id, b.epoch), ())).collect();
        self.last_seen.retain(|k, _| current.contains_key(k));
        let mut out = Vec::new();
        for key in current.keys() {
            let last = *self.last_seen.entry(*key).or_insert(now);
            if now.saturating_duration_since(last) > self.session_timeout {
                out.push(*key);
            }
        }
        out.sort_unstable();
        debug_assert!(self.last_seen.len() == current.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::metadata::Command;

    fn image(ids: &[i32]) -> MetadataImage {
        let mut m = MetadataImage::default();
        for (i, id) in ids.iter().enumerate() {
            m.apply(i as u64 + 1, &Command::RegisterBroker { id: *id, address: format!("http://b{id}"), kafka: None });
        }
        m
    }

    #[test]
    fn silent_brokers_expire_after_the_session_and_heartbeating_ones_do_not() {
        let session = Duration::from_millis(100);
        let mut l = Liveness::new(session);
        let m = image(&[1, 2]);
        let (e1, e2) = (m.brokers[&1].epoch, m.brokers[&2].epoch);
        let t0 = Instant::now();
        assert!(l.expired(&m, 5, t0).is_empty(), "a new leader grants everyone a grace period");
        assert!(l.record(&m, 1, e1, t0 + session));
        assert!(!l.record(&m, 1, e1 - 1, t0 + session), "a stale incarnation is not recorded");
        assert_eq!(l.expired(&m, 5, t0 + session + Duration::from_millis(50)), vec![(2, e2)]);
    }

    #[test]
    fn a_new_term_restarts_the_grace_period() {
        let session = Duration::from_millis(100);
        let mut l = Liveness::new(session);
        let m = image(&[1]);
        let t0 = Instant::now();
        assert!(l.expired(&m, 1, t0).is_empty());
        let late = t0 + 3 * session;
        assert_eq!(l.expired(&m, 1, late).len(), 1, "same term: silent too long");
        assert!(l.expired(&m, 2, late).is_empty(), "new term: everyone heartbeated now");
        l.step_down();
        assert!(l.expired(&m, 2, late + 2 * session).is_empty(), "leading again after stepping down: grace again");
    }
}
