//! What this broker did that Kafka operators alert on and that no image of
//! the metadata shows afterwards: ISR shrinks and expands it proposed and
//! the controller committed (Kafka's `IsrShrinksPerSec`/`IsrExpandsPerSec`),
//! and produce requests it refused, by Kafka error name (Kafka's
//! `ErrorsPerSec` of the Produce request). `/metrics` renders them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use faultline_client::api::ErrorCode;
use parking_lot::Mutex;

#[derive(Default)]
pub struct BrokerStats {
    isr_shrinks: AtomicU64,
    isr_expands: AtomicU64,
    produce_errors: Mutex<HashMap<ErrorCode, u64>>,
}

impl BrokerStats {
    /// A committed ISR change of a partition this broker leads, from
    /// `before` members to `after`.
    pub fn isr_changed(&self, before: usize, after: usize) {
        if after < before {
            self.isr_shrinks.fetch_add(1, Ordering::Relaxed);
        } else if after > before {
            self.isr_expands.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn produce_error(&self, code: ErrorCode) {
        *self.produce_errors.lock().entry(code).or_default() += 1;
    }

    pub fn isr_shrinks(&self) -> u64 {
        self.isr_shrinks.load(Ordering::Relaxed)
    }

    pub fn isr_expands(&self) -> u64 {
        self.isr_expands.load(Ordering::Relaxed)
    }

    /// Refused produce requests by Kafka error name, sorted by name.
    pub fn produce_errors(&self) -> Vec<(&'static str, u64)> {
        let mut all: Vec<_> = self.produce_errors.lock().iter().map(|(c, n)| (c.name(), *n)).collect();
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_expands_and_errors_are_counted_apart() {
        let s = BrokerStats::default();
        s.isr_changed(3, 2);
        s.isr_changed(2, 1);
        s.isr_changed(1, 3);
        s.isr_changed(2, 2);
        assert_eq!((s.isr_shrinks(), s.isr_expands()), (2, 1));
        s.produce_error(ErrorCode::NotEnoughReplicas);
        s.produce_error(ErrorCode::NotLeaderOrFollower);
        s.produce_error(ErrorCode::NotEnoughReplicas);
        assert_eq!(s.produce_errors(), [("NOT_ENOUGH_REPLICAS", 2), ("NOT_LEADER_OR_FOLLOWER", 1)]);
    }
}
