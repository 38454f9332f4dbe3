//! Property tests across anomaly types: injecting k anomalies of one type into
//! a clean generated history makes the checker find exactly those k (plus only
//! the types that injection necessarily implies), and a clean history is
//! always valid.

use faultline_checker::anomalies::run_all;
use faultline_checker::generator::{self, GenConfig, implied_by};
use faultline_checker::{AnomalyKind, Findings, Guarantees, History, Validity};
use proptest::prelude::*;

fn findings(cfg: &GenConfig) -> (History, Findings, faultline_checker::Replicas) {
    let g = generator::generate_vec(cfg).expect("generates");
    let h = History::from_ops(g.ops).expect("well-formed");
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(&h, Some(&g.replicas), &mut f);
    (h, f, g.replicas)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn injected_anomalies_are_found_exactly(
        seed in any::<u64>(),
        partitions in 1u32..6,
        ops in 500u64..4000,
        kind_ix in 0usize..AnomalyKind::ALL.len(),
        k in 1usize..6,
    ) {
        let kind = AnomalyKind::ALL[kind_ix];
        let (_, f, _) = findings(&GenConfig { ops, partitions, seed, inject: vec![(kind, k)] });
        prop_assert_eq!(f.count(kind), k as u64, "{} of {}", f.count(kind), kind);
        for other in f.kinds.keys() {
            prop_assert!(*other == kind || implied_by(kind).contains(other), "{} also found {}", kind, other);
        }
        prop_assert!(f.undecided.is_empty(), "{:?}", f.undecided);
    }

    #[test]
    fn clean_histories_are_valid(seed in any::<u64>(), partitions in 1u32..6, ops in 0u64..4000) {
        let (h, f, replicas) = findings(&GenConfig { ops, partitions, seed, inject: vec![] });
        prop_assert!(f.kinds.is_empty(), "{:?}", f.kinds.keys().collect::<Vec<_>>());
        let r = faultline_checker::check(&h, &Guarantees::default(), Some(&replicas));
        prop_assert_eq!(r.valid, Validity::Valid);
    }
}

/// Several types injected together are each found exactly.
#[test]
fn mixed_injection_is_found_exactly() {
    let inject = generator::parse_inject("lost-write:3,duplicate:2,aborted-read:1,phantom-read:2,poll-skip:1,replica-divergence:2").unwrap();
    let (_, f, _) = findings(&GenConfig { ops: 20_000, partitions: 4, seed: 5, inject: inject.clone() });
    for (kind, n) in inject {
        assert_eq!(f.count(kind), n as u64, "{kind}");
    }
    assert_eq!(f.kinds.len(), 6);
}
