//! One analysis per anomaly type, one file each. Every analysis reads the
//! indexed [`crate::history::History`] and reports into a
//! [`crate::anomaly::Findings`]; [`run_all`] runs them in a fixed order.

pub mod aborted_read;
pub(crate) mod consumer;
pub mod cycles;
pub mod duplicate;
pub mod inconsistent_offsets;
pub mod lost_write;
pub mod nonmonotonic_poll;
pub mod nonmonotonic_send;
pub mod order_cycle;
pub mod phantom_read;
pub mod poll_skip;
pub mod realtime_cycle;
pub mod replica_divergence;
pub mod unseen;

use crate::anomaly::Findings;
use crate::history::History;
use crate::replicas::Replicas;

/// Runs every analysis. `replicas` is `None` when no `replicas.json` exists;
/// `replica-divergence` is then not checked.
pub fn run_all(h: &History, replicas: Option<&Replicas>, out: &mut Findings) {
    lost_write::check(h, out);
    unseen::check(h, out);
    duplicate::check(h, out);
    inconsistent_offsets::check(h, out);
    poll_skip::check(h, out);
    nonmonotonic_poll::check(h, out);
    nonmonotonic_send::check(h, out);
    aborted_read::check(h, out);
    phantom_read::check(h, out);
    let report = cycles::analyze(h);
    order_cycle::check(&report, out);
    realtime_cycle::check(&report, out);
    if let Some(r) = replicas {
        replica_divergence::check(r, |p| h.partition_id(p), out);
    }
}
