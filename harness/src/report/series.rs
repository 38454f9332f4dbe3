//! The numbers behind the run report's charts, from the checked history:
//! throughput per time bucket, a bounded latency scatter, and each
//! partition's acknowledged, lost and duplicated values over time.
//!
//! Everything here is bounded whatever the history's size: a fixed number
//! of buckets, at most [`SCATTER_POINTS_MAX`] points, at most
//! [`STEPS_MAX`] steps per cumulative line.

use faultline_checker::availability::{Sample, samples};
use faultline_checker::history::{History, Kind, NONE};
use faultline_checker::op::OpType;
use faultline_checker::{AnomalyKind, Results};

/// Buckets of the throughput chart.
pub const BUCKETS: usize = 120;
/// Points of the latency scatter: every failed or unknown op up to half of
/// it, then every n-th ok op.
pub const SCATTER_POINTS_MAX: usize = 8_000;
/// Steps per cumulative line of the per-partition charts.
pub const STEPS_MAX: usize = 400;

/// The time the charts share, in seconds on the history's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
}

/// One line of the throughput chart: ops of one `f` and outcome per second.
#[derive(Debug, Clone)]
pub struct Rate {
    pub f: &'static str,
    pub outcome: OpType,
    pub per_s: Vec<f64>,
}

/// One op of the latency scatter.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub t_s: f64,
    pub ms: f64,
    pub f: &'static str,
    pub outcome: OpType,
}

#[derive(Debug, Clone, Default)]
pub struct Scatter {
    pub points: Vec<Point>,
    /// Completed sends and polls in the history; `points` may hold fewer.
    pub total: u64,
    /// Every `ok_stride`-th ok op is shown.
    pub ok_stride: u64,
    /// Failed or unknown ops left out once half the points were taken.
    pub errors_left_out: u64,
}

/// A step line: `(time_s, count so far)`.
pub type Steps = Vec<(f64, u64)>;

/// One partition's values over time.
#[derive(Debug, Clone)]
pub struct PartitionLines {
    pub partition: String,
    pub acknowledged: Steps,
    pub lost: Steps,
    pub duplicated: Steps,
}

/// Everything the charts draw.
pub struct Series {
    pub span: Span,
    pub bucket_s: f64,
    pub rates: Vec<Rate>,
    pub scatter: Scatter,
    pub partitions: Vec<PartitionLines>,
}

/// The workload's sends and polls, with a time span to draw them in.
pub fn series(h: &History, r: &Results) -> Series {
    let ops: Vec<Sample> = samples(h).into_iter().filter(|s| matches!(s.kind, Kind::Send | Kind::Poll)).collect();
    let start_ns = ops.first().map_or(0, |s| s.invoke_ns);
    let ends_ns = ops.iter().map(|s| if s.end_ns == u64::MAX { s.invoke_ns } else { s.end_ns });
    let end_ns = ends_ns.max().unwrap_or(start_ns).max(start_ns.saturating_add(1_000_000));
    let span = Span { start_s: start_ns as f64 / 1e9, end_s: end_ns as f64 / 1e9 };
    let bucket_s = (span.end_s - span.start_s) / BUCKETS as f64;
    Series {
        span,
        bucket_s,
        rates: rates(&ops, span, bucket_s),
        scatter: scatter(&ops),
        partitions: partition_lines(h, r),
    }
}

fn rates(ops: &[Sample], span: Span, bucket_s: f64) -> Vec<Rate> {
    let mut out = Vec::new();
    for (f, kind) in [("send", Kind::Send), ("poll", Kind::Poll)] {
        for outcome in [OpType::Ok, OpType::Fail, OpType::Info] {
            let mut per_s = vec![0.0; BUCKETS];
            for s in ops.iter().filter(|s| s.kind == kind && s.outcome == outcome) {
                // An op counts when it completed; one that never did, when invoked.
                let t = if s.end_ns == u64::MAX { s.invoke_ns } else { s.end_ns } as f64 / 1e9;
                let b = (((t - span.start_s) / bucket_s) as usize).min(BUCKETS - 1);
                per_s[b] += 1.0 / bucket_s;
            }
            if per_s.iter().any(|&v| v > 0.0) {
                out.push(Rate { f, outcome, per_s });
            }
        }
    }
    out
}

fn scatter(ops: &[Sample]) -> Scatter {
    let completed: Vec<&Sample> = ops.iter().filter(|s| s.end_ns != u64::MAX).collect();
    let errors = completed.iter().filter(|s| s.outcome != OpType::Ok).count();
    let error_room = SCATTER_POINTS_MAX / 2;
    let ok_room = SCATTER_POINTS_MAX - errors.min(error_room);
    let oks = completed.len() - errors;
    let ok_stride = oks.div_ceil(ok_room.max(1)).max(1) as u64;
    let mut out = Scatter { total: completed.len() as u64, ok_stride, ..Scatter::default() };
    let (mut nth_ok, mut errors_taken) = (0u64, 0usize);
    for s in completed {
        let keep = if s.outcome == OpType::Ok {
            nth_ok += 1;
            (nth_ok - 1) % ok_stride == 0
        } else {
            errors_taken += 1;
            errors_taken <= error_room
        };
        if !keep {
            out.errors_left_out += u64::from(s.outcome != OpType::Ok);
            continue;
        }
        out.points.push(Point {
            t_s: s.invoke_ns as f64 / 1e9,
            // The log axis needs a floor: 1 µs.
            ms: (s.end_ns.saturating_sub(s.invoke_ns) as f64 / 1e6).max(0.001),
            f: if s.kind == Kind::Send { "send" } else { "poll" },
            outcome: s.outcome,
        });
    }
    out
}

/// Acknowledged values by the time of their ack; lost and duplicated ones
/// by the times the checker gave them. Partitions with anomalies first.
fn partition_lines(h: &History, r: &Results) -> Vec<PartitionLines> {
    let n = h.partitions.len();
    let mut acked: Vec<Vec<u64>> = vec![Vec::new(); n];
    for (k, key) in h.keys.iter().enumerate() {
        let ack = h.index.ack_op[k];
        if ack != NONE {
            acked[key.partition as usize].push(h.entries[ack as usize].time_ns);
        }
    }
    let by = |kind: AnomalyKind| {
        let mut out: Vec<Vec<u64>> = vec![Vec::new(); n];
        for &(p, t) in r.times_ns.get(&kind).map_or(&[][..], |v| v.as_slice()) {
            out[p as usize].push(t);
        }
        out
    };
    let (lost, dup) = (by(AnomalyKind::LostWrite), by(AnomalyKind::Duplicate));
    let mut lines: Vec<PartitionLines> = (0..n)
        .filter(|&p| !acked[p].is_empty() || !lost[p].is_empty())
        .map(|p| PartitionLines {
            partition: h.partitions[p].clone(),
            acknowledged: steps(&mut acked[p].clone()),
            lost: steps(&mut lost[p].clone()),
            duplicated: steps(&mut dup[p].clone()),
        })
        .collect();
    lines.sort_by_key(|l| (l.lost.is_empty() && l.duplicated.is_empty(), l.partition.clone()));
    lines
}

/// A cumulative count over `times`, at most [`STEPS_MAX`] steps.
fn steps(times: &mut [u64]) -> Steps {
    times.sort_unstable();
    let stride = times.len().div_ceil(STEPS_MAX).max(1);
    let mut out: Steps =
        times.iter().enumerate().step_by(stride).map(|(i, &t)| (t as f64 / 1e9, i as u64 + 1)).collect();
    if let (Some(&last), Some(&(_, n))) = (times.last(), out.last())
        && n != times.len() as u64
    {
        out.push((last as f64 / 1e9, times.len() as u64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A million ok ops and a thousand failures: every failure is drawn
    /// (under half the budget), and the oks thin out to fit.
    #[test]
    fn the_scatter_keeps_errors_and_thins_oks() {
        let mut ops: Vec<Sample> = (0..1_000_000u64)
            .map(|i| Sample { kind: Kind::Send, invoke: 0, invoke_ns: i, end_ns: i + 5, outcome: OpType::Ok })
            .collect();
        ops.extend((0..1_000u64).map(|i| Sample {
            kind: Kind::Poll,
            invoke: 0,
            invoke_ns: i,
            end_ns: i + 7,
            outcome: OpType::Fail,
        }));
        let s = scatter(&ops);
        assert!(s.points.len() <= SCATTER_POINTS_MAX, "{}", s.points.len());
        assert_eq!(s.points.iter().filter(|p| p.outcome == OpType::Fail).count(), 1_000);
        assert_eq!((s.total, s.errors_left_out), (1_001_000, 0));
        assert!(s.ok_stride > 1);
    }

    #[test]
    fn steps_are_bounded_and_end_at_the_total() {
        let mut t: Vec<u64> = (0..10_001u64).rev().collect();
        let s = steps(&mut t);
        assert!(s.len() <= STEPS_MAX + 1);
        assert_eq!(s.first(), Some(&(0.0, 1)));
        assert_eq!(s.last().map(|x| x.1), Some(10_001));
        assert!(steps(&mut []).is_empty());
    }
}
