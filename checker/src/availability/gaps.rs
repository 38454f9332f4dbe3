//! Unavailability of a partition: stretches with no acknowledged send while
//! sends to it were being attempted.
//!
//! A partition is *active* from its first send's invoke to its last send's
//! end. Its acknowledgements cut that span into gaps. Within a gap, the
//! partition is waited on from the first moment a send to it was in flight
//! until the acknowledgement that ends the gap; such a stretch counts as
//! unavailable when it lasts at least [`UNAVAILABLE_GAP_MIN_MS`]. A producer
//! that was merely idle (or killed) is not mistaken for an unavailable
//! system: nothing waited.

use serde::Serialize;

/// The shortest gap between acknowledgements that counts as unavailable.
pub const UNAVAILABLE_GAP_MIN_MS: u64 = 1_000;

/// A stretch of time, in seconds on the history's clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gap {
    pub start_s: f64,
    pub end_s: f64,
    pub duration_s: f64,
}

impl Gap {
    pub fn from_ns(a: u64, b: u64) -> Gap {
        Gap { start_s: a as f64 / 1e9, end_s: b as f64 / 1e9, duration_s: b.saturating_sub(a) as f64 / 1e9 }
    }
}

/// One send to a partition: when it was invoked, when it ended (`u64::MAX`
/// if it never did) and whether it was acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub invoke_ns: u64,
    pub end_ns: u64,
    pub ok: bool,
}

/// A partition's stretches without an acknowledgement while a send waited.
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    /// The longest such stretch, however short.
    pub longest: Option<(u64, u64)>,
    /// The stretches that count as unavailable, in time order.
    pub unavailable: Vec<(u64, u64)>,
}

/// The gaps of one partition's sends; `attempts` in any order.
pub fn gaps(attempts: &mut [Attempt], history_end_ns: u64) -> Gaps {
    if attempts.is_empty() {
        return Gaps::default();
    }
    attempts.sort_unstable_by_key(|a| a.invoke_ns);
    let start = attempts[0].invoke_ns;
    let ends = attempts.iter().map(|a| if a.end_ns == u64::MAX { history_end_ns } else { a.end_ns });
    let end = ends.max().unwrap_or(start).max(start);
    // Prefix maximum of the attempts' ends, in invoke order: "was a send
    // invoked before s still in flight after s?" is one binary search.
    let mut reach = Vec::with_capacity(attempts.len());
    let mut far = 0u64;
    for a in attempts.iter() {
        far = far.max(a.end_ns);
        reach.push(far);
    }
    let mut acks: Vec<u64> = attempts.iter().filter(|a| a.ok).map(|a| a.end_ns).collect();
    acks.sort_unstable();
    let mut out = Gaps::default();
    let mut from = start;
    for to in acks.into_iter().chain(std::iter::once(end)) {
        let to = to.max(from);
        if let Some(waited) = first_waiting(attempts, &reach, from, to) {
            if out.longest.is_none_or(|(a, b)| to - waited > b - a) {
                out.longest = Some((waited, to));
            }
            if to - waited >= UNAVAILABLE_GAP_MIN_MS * 1_000_000 {
                out.unavailable.push((waited, to));
            }
        }
        from = to;
    }
    out
}

/// The first moment in `[from, to)` at which a send was in flight, if any:
/// `from` itself when a send invoked earlier was still waiting, else the
/// first invoke inside the gap.
fn first_waiting(attempts: &[Attempt], reach: &[u64], from: u64, to: u64) -> Option<u64> {
    let before = attempts.partition_point(|a| a.invoke_ns < from);
    if before > 0 && reach[before - 1] > from {
        return Some(from);
    }
    attempts.get(before).map(|a| a.invoke_ns).filter(|&t| t < to)
}

/// The total length of the union of `spans`.
pub fn union_ns(spans: &mut [(u64, u64)]) -> u64 {
    spans.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(u64, u64)> = None;
    for &(a, b) in spans.iter() {
        cur = match cur {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + cur.map_or(0, |(a, b)| b - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Acks every 100 ms but none from 2 s to 7 s, with a send retried in
    /// between: the longest wait and the one unavailable window are 2–7 s,
    /// from the first send that waited to the next acknowledgement.
    #[test]
    fn a_known_outage_is_the_longest_unavailable_window() {
        let mut a: Vec<Attempt> = (0..20u64)
            .chain(70..100)
            .map(|i| Attempt { invoke_ns: i * S / 10, end_ns: i * S / 10 + 1_000, ok: true })
            .collect();
        a.push(Attempt { invoke_ns: 2 * S, end_ns: 5 * S, ok: false });
        a.push(Attempt { invoke_ns: 5 * S, end_ns: u64::MAX, ok: false });
        let g = gaps(&mut a, 10 * S);
        assert_eq!(g.longest, Some((2 * S, 7 * S + 1_000)));
        assert_eq!(g.unavailable, vec![(2 * S, 7 * S + 1_000)]);
    }

    /// A producer that stops sending for 3 s is idle, not unavailable.
    #[test]
    fn an_idle_producer_is_not_unavailable() {
        let mut a: Vec<Attempt> = [0u64, 1, 40, 41]
            .iter()
            .map(|&i| Attempt { invoke_ns: i * S / 10, end_ns: i * S / 10 + 5, ok: true })
            .collect();
        let g = gaps(&mut a, 5 * S);
        assert!(g.unavailable.is_empty(), "{:?}", g.unavailable);
        assert_eq!(g.longest.map(|(a, b)| b - a), Some(5));
    }

    #[test]
    fn union_merges_overlaps() {
        assert_eq!(union_ns(&mut [(5, 10), (0, 3), (8, 12), (20, 21)]), 3 + 7 + 1);
        assert_eq!(union_ns(&mut []), 0);
    }
}
