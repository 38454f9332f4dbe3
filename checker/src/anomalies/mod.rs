//! One analysis per anomaly type, one file each. Every analysis reads the
//! indexed [`crate::history::History`] and reports into a
//! [`crate::anomaly::Findings`]; [`run_all`] runs them in a fixed order.

pub mod aborted_read;
pub(crate) mod consumer;
pub mod cycles;
pub mod dropped_enqueued;
pub mod duplicate;
pub mod duplicate_processing;
pub mod inconsistent_offsets;
pub mod lost_enqueued;
pub mod lost_processing;
pub mod lost_unacknowledged;
pub mod lost_write;
pub mod metadata_regression;
pub mod nonmonotonic_poll;
pub mod nonmonotonic_send;
pub mod order_cycle;
pub mod phantom_read;
pub mod poll_skip;
pub mod realtime_cycle;
pub mod replica_divergence;
pub mod unseen;
pub mod zombie_commit;

use crate::Inputs;
use crate::anomaly::Findings;
use crate::guarantees::Guarantees;
use crate::history::History;
use crate::sink::Sink;

/// Runs every analysis that the guarantees and inputs allow; the others are
/// listed in [`Findings::not_checked`] with the reason (no `replicas.json`:
/// `replica-divergence` is not checked).
///
/// The cycle and replica analyses run on a second thread while the others
/// run on this one; each type is reported by exactly one analysis, so
/// merging the two collectors is deterministic.
pub fn run_all(h: &History, g: &Guarantees, inputs: &Inputs<'_>, out: &mut Findings) {
    let limit = out.example_limit();
    let (replicas, elections) = (inputs.replicas, inputs.elections);
    let (mine, theirs) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut f = Findings::with_example_limit(limit);
            let report = cycles::analyze(h);
            order_cycle::check(&report, &mut f);
            realtime_cycle::check(&report, &mut f);
            match replicas {
                Some(r) => replica_divergence::check(r, |p| h.partition_id(p), &mut f),
                None => f.not_checked("replica-divergence: no replicas.json next to the history".to_owned()),
            }
            match elections {
                Some(e) => metadata_regression::check(e, |p| h.partition_id(p), &mut f),
                None => f.not_checked("metadata-regression: no elections.jsonl next to the history".to_owned()),
            }
            f
        });
        let mut f = Findings::with_example_limit(limit);
        lost_write::check(h, &mut f);
        unseen::check(h, &mut f);
        duplicate::check(h, &mut f);
        inconsistent_offsets::check(h, &mut f);
        poll_skip::check(h, &mut f);
        nonmonotonic_poll::check(h, &mut f);
        nonmonotonic_send::check(h, &mut f);
        aborted_read::check(h, &mut f);
        phantom_read::check(h, &mut f);
        zombie_commit::check(h, &mut f);
        application(h, g, inputs.sink, &mut f);
        (f, other.join())
    });
    out.merge(mine);
    match theirs {
        Ok(f) => out.merge(f),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The analyses of the application around the broker: the producer's buffer
/// (and, with acks=0, its unanswered sends) and the consumers' sink. Each
/// runs only when the run used what it checks.
fn application(h: &History, g: &Guarantees, sink: Option<&Sink>, f: &mut Findings) {
    let enqueued_counted = lost_enqueued::precondition(h, g);
    match &enqueued_counted {
        Ok(()) => {
            lost_enqueued::check(h, f);
            dropped_enqueued::check(h, f);
        }
        // One note for both: they apply to the same runs.
        Err(why) => f.not_checked(why.clone()),
    }
    // Silent otherwise: with acknowledgements, lost-write covers loss.
    if lost_unacknowledged::applies(g) {
        lost_unacknowledged::check(h, enqueued_counted.is_ok(), f);
    }
    let sink = match (g.sink_mode, sink) {
        (None, _) => Err("sink-mode=none: the run had no sink"),
        (_, None) => Err("no sink.jsonl next to the history"),
        (_, Some(s)) => Ok(s),
    };
    match sink.map(|s| (s, lost_processing::precondition(h))) {
        Ok((s, Ok(()))) => lost_processing::check(h, s, f),
        Ok((_, Err(why))) => f.not_checked(why),
        Err(why) => f.not_checked(format!("lost-processing: {why}")),
    }
    match sink {
        Ok(s) => duplicate_processing::check(h, s, f),
        Err(why) => f.not_checked(format!("duplicate-processing: {why}")),
    }
}
