//! Latency percentiles of completed operations, with `hdrhistogram`:
//! 3 significant digits over microseconds, so p99 of a million ops costs a
//! few kilobytes and no sort.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Collects latencies and reads their percentiles.
pub struct LatencyRecorder {
    hist: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        // 3 significant digits; the histogram grows to whatever it is given.
        LatencyRecorder { hist: Histogram::new(3).expect("3 significant digits is a valid precision") }
    }
}

impl LatencyRecorder {
    pub fn record_ns(&mut self, ns: u64) {
        // Sub-microsecond latencies count as 1 µs: the histogram's floor.
        let us = (ns / 1_000).max(1);
        // `record` grows the histogram; only a value beyond what any
        // histogram can hold fails, and that one is clamped.
        if self.hist.record(us).is_err() {
            self.hist.saturating_record(us);
        }
    }

    /// The percentiles, or `None` when nothing was recorded.
    pub fn latency(&self) -> Option<Latency> {
        if self.hist.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Some(Latency {
            count: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1..=100 ms: the percentiles are the values at those ranks, within
    /// the histogram's 3 significant digits.
    #[test]
    fn percentiles_of_known_latencies() {
        let mut r = LatencyRecorder::default();
        assert_eq!(r.latency(), None);
        for ms in 1..=100u64 {
            r.record_ns(ms * 1_000_000);
        }
        let l = r.latency().unwrap();
        assert_eq!(l.count, 100);
        for (got, want) in [(l.p50_ms, 50.0), (l.p90_ms, 90.0), (l.p99_ms, 99.0), (l.max_ms, 100.0)] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
    }
}
