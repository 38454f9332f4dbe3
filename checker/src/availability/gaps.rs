//! Unavailability of a partition: stretches in which a send to it waited
//! and none was acknowledged.
//!
//! A partition is *active* while a send to it is in flight (invoked, not
//! yet completed), and across pauses between its sends shorter than
//! [`UNAVAILABLE_GAP_MIN_MS`]: a client whose sends fail at once and are
//! retried every 100 ms is trying all along. Its acknowledgements cut the
//! active stretches into pieces; each piece is time in which clients tried
//! and got nothing, and counts as unavailable when it lasts at least
//! [`UNAVAILABLE_GAP_MIN_MS`]. A producer idle, killed or gone for longer
//! than that tries nothing, so that time is never counted.

use serde::Serialize;

/// The shortest stretch without an acknowledgement that counts as
/// unavailable; also the shortest pause that makes a client idle.
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

/// The gaps of one partition's sends; `attempts` in any order. A send
/// that never completed is in flight until `history_end_ns`.
pub fn gaps(attempts: &mut [Attempt], history_end_ns: u64) -> Gaps {
    let mut acks_ns: Vec<u64> = attempts.iter().filter(|a| a.ok).map(|a| a.end_ns).collect();
    acks_ns.sort_unstable();
    let mut out = Gaps::default();
    for (busy_from_ns, busy_to_ns) in busy(attempts, history_end_ns) {
        // The acknowledgements inside the busy stretch cut it into pieces.
        let first = acks_ns.partition_point(|&t| t <= busy_from_ns);
        let inside = acks_ns[first..].iter().take_while(|&&t| t < busy_to_ns);
        let mut from_ns = busy_from_ns;
        for to_ns in inside.copied().chain(std::iter::once(busy_to_ns)) {
            if out.longest.is_none_or(|(a, b)| to_ns - from_ns > b - a) {
                out.longest = Some((from_ns, to_ns));
            }
            if to_ns - from_ns >= UNAVAILABLE_GAP_MIN_MS * 1_000_000 {
                out.unavailable.push((from_ns, to_ns));
            }
            from_ns = to_ns;
        }
    }
    out
}

/// The attempts' in-flight intervals, joined across pauses shorter than
/// [`UNAVAILABLE_GAP_MIN_MS`]: the active stretches, in time order.
fn busy(attempts: &mut [Attempt], history_end_ns: u64) -> Vec<(u64, u64)> {
    attempts.sort_unstable_by_key(|a| a.invoke_ns);
    let pause_ns = UNAVAILABLE_GAP_MIN_MS * 1_000_000;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for a in attempts.iter() {
        let end_ns = if a.end_ns == u64::MAX { history_end_ns } else { a.end_ns }.max(a.invoke_ns);
        match out.last_mut() {
            Some((_, to_ns)) if a.invoke_ns < to_ns.saturating_add(pause_ns) => *to_ns = (*to_ns).max(end_ns),
            _ => out.push((a.invoke_ns, end_ns)),
        }
    }
    out
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
    /// between: the longest stretch and the one unavailable window run
    /// from the last acknowledgement before to the first one after.
    #[test]
    fn a_known_outage_is_the_longest_unavailable_window() {
        let mut a: Vec<Attempt> = (0..20u64)
            .chain(70..100)
            .map(|i| Attempt { invoke_ns: i * S / 10, end_ns: i * S / 10 + 1_000, ok: true })
            .collect();
        a.push(Attempt { invoke_ns: 2 * S, end_ns: 5 * S, ok: false });
        a.push(Attempt { invoke_ns: 5 * S, end_ns: u64::MAX, ok: false });
        let g = gaps(&mut a, 10 * S);
        let outage = (19 * S / 10 + 1_000, 7 * S + 1_000);
        assert_eq!((g.longest, g.unavailable), (Some(outage), vec![outage]));
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
        assert_eq!(g.longest, Some((5, S / 10 + 5)));
    }

    /// A send fails just after an ack, then the producer is gone for 3 s:
    /// nothing was tried in those 3 s, so they are not unavailable.
    #[test]
    fn a_failure_then_a_pause_is_not_unavailable() {
        let mut a = vec![
            Attempt { invoke_ns: 0, end_ns: S / 100, ok: true },
            Attempt { invoke_ns: S / 100, end_ns: S / 50, ok: false },
            Attempt { invoke_ns: 3 * S, end_ns: 3 * S + S / 100, ok: true },
        ];
        let g = gaps(&mut a, 4 * S);
        assert!(g.unavailable.is_empty(), "{:?}", g.unavailable);
        assert_eq!(g.longest, Some((0, S / 100)));
    }

    #[test]
    fn union_merges_overlaps() {
        assert_eq!(union_ns(&mut [(5, 10), (0, 3), (8, 12), (20, 21)]), 3 + 7 + 1);
        assert_eq!(union_ns(&mut []), 0);
    }
}
