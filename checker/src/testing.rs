//! Test helpers shared by the analyses' unit tests.

use crate::anomaly::{AnomalyKind, Findings};
use crate::anomalies::run_all;
use crate::generator::{self, GenConfig};
use crate::history::History;
use crate::{Guarantees, Inputs};

/// Every finding of a hand-written history, with every example kept.
pub fn findings_of(jsonl: &str) -> Findings {
    let h = History::parse(jsonl.as_bytes()).expect("test history parses");
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(&h, &Guarantees::default(), &Inputs::default(), &mut f);
    f
}

fn findings_of_generated(cfg: &GenConfig) -> Findings {
    let g = generator::generate_vec(cfg).expect("generates");
    let h = History::from_ops(g.ops).expect("generated history is well-formed");
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(&h, &Guarantees::default(), &Inputs { replicas: Some(&g.replicas), sink: None }, &mut f);
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
