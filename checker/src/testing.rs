//! Test helpers shared by the analyses' unit tests.

use crate::anomalies::run_all;
use crate::anomaly::{AnomalyKind, Findings};
use crate::generator::{self, GenConfig};
use crate::guarantees::ProducerMode;
use crate::history::History;
use crate::sink::Sink;
use crate::{Guarantees, Inputs};

/// Every finding of a hand-written history, with every example kept.
pub fn findings_of(jsonl: &str) -> Findings {
    findings_with(jsonl, "", None)
}

/// As [`findings_of`], under the guarantees `key=value,...` and with the
/// `sink.jsonl` text, if any.
pub fn findings_with(jsonl: &str, guarantees: &str, sink: Option<&str>) -> Findings {
    let h = History::parse(jsonl.as_bytes()).expect("test history parses");
    let mut g = Guarantees::default();
    g.apply_list(guarantees).expect("test guarantees parse");
    let sink = sink.map(|s| Sink::parse(s.as_bytes()).expect("test sink parses"));
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(&h, &g, &Inputs { replicas: None, sink: sink.as_ref(), lost_control: None, elections: None }, &mut f);
    f
}

/// The guarantees under which every analysis of a generated history runs:
/// its enqueues are fire-and-forget.
pub fn generated_guarantees() -> Guarantees {
    Guarantees { producer_mode: ProducerMode::FireAndForget, ..Guarantees::default() }
}

fn findings_of_generated(cfg: &GenConfig) -> Findings {
    let g = generator::generate_vec(cfg).expect("generates");
    let h = History::from_ops(g.ops).expect("generated history is well-formed");
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(
        &h,
        &generated_guarantees(),
        &Inputs { replicas: Some(&g.replicas), sink: Some(&g.sink), lost_control: None, elections: None },
        &mut f,
    );
    f
}

/// A clean generated history's findings (should be empty).
pub fn clean_findings() -> Findings {
    findings_of_generated(&GenConfig { ops: 6000, partitions: 3, seed: 7, inject: vec![] })
}

/// Findings of a generated history with `n` anomalies of `kind` injected.
pub fn injected(kind: AnomalyKind, n: usize) -> Findings {
    findings_of_generated(&GenConfig { ops: 6000, partitions: 3, seed: 42, inject: vec![(kind, n)] })
}
