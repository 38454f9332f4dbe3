//! Availability: what the system did for its clients while faults came and
//! went, computed from the history alone (so an imported history gets it
//! too), and written into `results.json` next to what was lost.
//!
//! - ok/fail/info counts and rates per op type, and of sends per partition;
//! - latency percentiles of ok sends and polls ([`latency`]);
//! - per partition, the longest wait with no acknowledgement and the
//!   stretches that count as unavailable ([`gaps`]), and their union;
//! - every fault window ([`windows`]) with the sends and polls inside it,
//!   next to the same figures for the time outside every fault.
//!
//! The final drain's ops are the harness reading back, not the workload,
//! and are left out. An invoke that never completed counts as `info`.

pub mod gaps;
pub mod latency;
pub mod windows;

use std::collections::BTreeMap;

use serde::Serialize;

pub use gaps::{Gap, UNAVAILABLE_GAP_MIN_MS};
pub use latency::Latency;
pub use windows::{FaultWindow, fault_windows};

use crate::history::{History, Kind, NONE, kind_name};
use crate::op::OpType;
use gaps::Attempt;
use latency::LatencyRecorder;

/// ok/fail/info counts of one op type, and their rates per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcomes {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub ok_per_s: f64,
    pub fail_per_s: f64,
    pub info_per_s: f64,
}

impl Outcomes {
    fn add(&mut self, outcome: OpType) {
        match outcome {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            _ => self.info += 1,
        }
    }

    fn with_rates(mut self, seconds: f64) -> Outcomes {
        let rate = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
        (self.ok_per_s, self.fail_per_s, self.info_per_s) = (rate(self.ok), rate(self.fail), rate(self.info));
        self
    }

    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

/// One partition's availability to its producers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PartitionAvailability {
    /// Send ops that named the partition, by outcome.
    pub sends: Outcomes,
    /// The longest stretch in which a send to it waited with no
    /// acknowledgement, however short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_unavailable: Option<Gap>,
    /// The stretches of at least `unavailable_gap_min_ms`, and their sum.
    pub unavailable: Vec<Gap>,
    pub unavailable_s: f64,
}

/// Sends and polls within one stretch of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowStats {
    pub duration_s: f64,
    /// Sends invoked in the stretch, by outcome; rates over its duration.
    pub sends: Outcomes,
    pub polls: Outcomes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_latency: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_latency: Option<Latency>,
}

/// A fault window and what clients saw inside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultStats {
    #[serde(flatten)]
    pub window: FaultWindow,
    pub label: String,
    /// `None` for an instant fault: nothing happens inside no time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inside: Option<WindowStats>,
}

/// `results.json`'s `availability` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Availability {
    /// From the first client op to the last one of the workload.
    pub span_s: f64,
    /// Client ops by `f`, by outcome; rates over the span.
    pub ops: BTreeMap<String, Outcomes>,
    /// Latency of ok ops by `f` (`send`, `poll`).
    pub latency: BTreeMap<String, Latency>,
    pub partitions: BTreeMap<String, PartitionAvailability>,
    /// Time in which at least one partition was unavailable.
    pub unavailable_s: f64,
    pub unavailable_gap_min_ms: u64,
    pub faults: Vec<FaultStats>,
    /// The same figures for the time outside every lasting fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_faults: Option<WindowStats>,
}

/// One completed (or never completed) client op of the workload.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub kind: Kind,
    pub invoke: u32,
    pub invoke_ns: u64,
    /// `u64::MAX` when it never completed.
    pub end_ns: u64,
    pub outcome: OpType,
}

impl Sample {
    /// Invoke to completion of an ok op; `None` otherwise.
    pub fn latency_ns(&self) -> Option<u64> {
        (self.outcome == OpType::Ok && self.end_ns != u64::MAX).then(|| self.end_ns.saturating_sub(self.invoke_ns))
    }
}

/// The workload's client ops, in invoke order.
pub fn samples(h: &History) -> Vec<Sample> {
    let mut out = Vec::new();
    for (i, e) in h.entries.iter().enumerate() {
        if e.op_type != OpType::Invoke || e.is_final || matches!(e.kind, Kind::Nemesis | Kind::Unknown | Kind::Drain) {
            continue;
        }
        let (end_ns, outcome) = match e.partner {
            NONE => (u64::MAX, OpType::Info),
            p => (h.entries[p as usize].time_ns, h.entries[p as usize].op_type),
        };
        out.push(Sample { kind: e.kind, invoke: i as u32, invoke_ns: e.time_ns, end_ns, outcome });
    }
    out.sort_by_key(|s| s.invoke_ns);
    out
}

/// The availability section of a history.
pub fn availability(h: &History, faults: &[FaultWindow]) -> Availability {
    let samples = samples(h);
    let Some(first) = samples.first() else {
        return Availability { unavailable_gap_min_ms: UNAVAILABLE_GAP_MIN_MS, ..Availability::default() };
    };
    let start_ns = first.invoke_ns;
    let end_ns = samples.iter().map(|s| if s.end_ns == u64::MAX { s.invoke_ns } else { s.end_ns }).max();
    let end_ns = end_ns.unwrap_or(start_ns).max(start_ns);
    let span_s = (end_ns - start_ns) as f64 / 1e9;
    let mut ops: BTreeMap<String, Outcomes> = BTreeMap::new();
    let mut latency: BTreeMap<String, LatencyRecorder> = BTreeMap::new();
    for s in &samples {
        ops.entry(kind_name(s.kind).to_owned()).or_default().add(s.outcome);
        if let (Some(ns), Kind::Send | Kind::Poll) = (s.latency_ns(), s.kind) {
            latency.entry(kind_name(s.kind).to_owned()).or_default().record_ns(ns);
        }
    }
    let (partitions, mut stretches) = partitions(h, &samples, end_ns);
    // Inside a window means inside the workload too: a fault left open to
    // the final heal must not dilute its rates with the final phase.
    let clip = |w: &FaultWindow| (w.start_ns.max(start_ns), w.end_ns.min(end_ns));
    let faults = faults
        .iter()
        .map(|w| FaultStats {
            window: w.clone(),
            label: w.label(),
            inside: Some(clip(w)).filter(|(a, b)| !w.is_instant() && a < b).map(|span| window_stats(&samples, &[span])),
        })
        .collect::<Vec<_>>();
    let outside = outside(start_ns, end_ns, faults.iter().map(|f| &f.window));
    Availability {
        span_s,
        ops: ops.into_iter().map(|(f, o)| (f, o.with_rates(span_s))).collect(),
        latency: latency.into_iter().filter_map(|(f, r)| Some((f, r.latency()?))).collect(),
        partitions,
        unavailable_s: gaps::union_ns(&mut stretches) as f64 / 1e9,
        unavailable_gap_min_ms: UNAVAILABLE_GAP_MIN_MS,
        outside_faults: (!faults.is_empty()).then(|| window_stats(&samples, &outside)),
        faults,
    }
}

/// Per partition: its sends and unavailable stretches; and every stretch.
fn partitions(
    h: &History,
    samples: &[Sample],
    end_ns: u64,
) -> (BTreeMap<String, PartitionAvailability>, Vec<(u64, u64)>) {
    let mut attempts: Vec<Vec<Attempt>> = vec![Vec::new(); h.partitions.len()];
    let mut sends: Vec<Outcomes> = vec![Outcomes::default(); h.partitions.len()];
    // One buffer for every send's partitions: no allocation per send.
    let mut named: Vec<u32> = Vec::new();
    for s in samples.iter().filter(|s| s.kind == Kind::Send) {
        // A send counts once per partition it names, however its records
        // are laid out.
        named.clear();
        named.extend(h.recs(s.invoke).iter().map(|r| r.partition));
        named.sort_unstable();
        named.dedup();
        for p in named.iter().map(|&p| p as usize) {
            sends[p].add(s.outcome);
            attempts[p].push(Attempt { invoke_ns: s.invoke_ns, end_ns: s.end_ns, ok: s.outcome == OpType::Ok });
        }
    }
    let span_s = |a: &[Attempt]| {
        let first = a.iter().map(|a| a.invoke_ns).min().unwrap_or(0);
        let last = a.iter().map(|a| if a.end_ns == u64::MAX { a.invoke_ns } else { a.end_ns }).max().unwrap_or(0);
        last.saturating_sub(first) as f64 / 1e9
    };
    let mut out = BTreeMap::new();
    let mut all = Vec::new();
    for (p, (mut a, s)) in attempts.into_iter().zip(sends).enumerate() {
        if a.is_empty() {
            continue;
        }
        let seconds = span_s(&a);
        let g = gaps::gaps(&mut a, end_ns);
        let unavailable: Vec<Gap> = g.unavailable.iter().map(|&(x, y)| Gap::from_ns(x, y)).collect();
        all.extend(g.unavailable.iter().copied());
        out.insert(
            h.partitions[p].clone(),
            PartitionAvailability {
                sends: s.with_rates(seconds),
                longest_unavailable: g.longest.map(|(x, y)| Gap::from_ns(x, y)),
                // A fold from +0.0: an empty `sum` of floats is -0.0.
                unavailable_s: unavailable.iter().fold(0.0, |t, g| t + g.duration_s),
                unavailable,
            },
        );
    }
    (out, all)
}

/// The stretches of `[start_ns, end_ns]` outside every lasting window.
fn outside<'a>(start_ns: u64, end_ns: u64, windows: impl Iterator<Item = &'a FaultWindow>) -> Vec<(u64, u64)> {
    let mut inside: Vec<(u64, u64)> = windows
        .filter(|w| !w.is_instant())
        .map(|w| (w.start_ns.max(start_ns), w.end_ns.min(end_ns)))
        .filter(|(a, b)| a < b)
        .collect();
    inside.sort_unstable();
    let mut out = Vec::new();
    let mut from_ns = start_ns;
    for (a_ns, b_ns) in inside {
        if a_ns > from_ns {
            out.push((from_ns, a_ns));
        }
        from_ns = from_ns.max(b_ns);
    }
    if end_ns > from_ns {
        out.push((from_ns, end_ns));
    }
    out
}

/// The sends and polls invoked within `spans` (sorted, disjoint).
fn window_stats(samples: &[Sample], spans: &[(u64, u64)]) -> WindowStats {
    let mut w = WindowStats::default();
    let (mut send_lat, mut poll_lat) = (LatencyRecorder::default(), LatencyRecorder::default());
    let mut ns = 0;
    for &(a, b) in spans {
        ns += b.saturating_sub(a);
        let from = samples.partition_point(|s| s.invoke_ns < a);
        for s in samples[from..].iter().take_while(|s| s.invoke_ns < b) {
            let (outcomes, lat) = match s.kind {
                Kind::Send => (&mut w.sends, &mut send_lat),
                Kind::Poll => (&mut w.polls, &mut poll_lat),
                _ => continue,
            };
            outcomes.add(s.outcome);
            if let Some(l) = s.latency_ns() {
                lat.record_ns(l);
            }
        }
    }
    w.duration_s = ns as f64 / 1e9;
    w.sends = w.sends.with_rates(w.duration_s);
    w.polls = w.polls.with_rates(w.duration_s);
    (w.send_latency, w.poll_latency) = (send_lat.latency(), poll_lat.latency());
    w
}

#[cfg(test)]
mod tests;
