//! Property tests across anomaly types: injecting k anomalies of one type into
//! a clean generated history makes the checker find exactly those k (plus only
//! the types that injection necessarily implies), and a clean history is
//! always valid.

use faultline_checker::anomalies::run_all;
use faultline_checker::generator::{self, GenConfig, Generated, implied_by};
use faultline_checker::guarantees::ProducerMode;
use faultline_checker::{AnomalyKind, Findings, Guarantees, History, Inputs, Validity};
use proptest::prelude::*;

/// Every analysis runs on generated histories: their enqueues are
/// fire-and-forget, and they come with replicas and a sink.
fn guarantees() -> Guarantees {
    Guarantees { producer_mode: ProducerMode::FireAndForget, ..Guarantees::default() }
}

fn findings(cfg: &GenConfig) -> (History, Findings, Generated) {
    let g = generator::generate_vec(cfg).expect("generates");
    let h = History::from_ops(g.ops.clone()).expect("well-formed");
    let mut f = Findings::with_example_limit(usize::MAX);
    run_all(
        &h,
        &guarantees(),
        &Inputs { replicas: Some(&g.replicas), sink: Some(&g.sink), lost_control: None, elections: None },
        &mut f,
    );
    (h, f, g)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn injected_anomalies_are_found_exactly(
        seed in any::<u64>(),
        partitions in 1u32..6,
        ops in 500u64..4000,
        kind_ix in 0usize..generator::injectable().len(),
        k in 1usize..6,
    ) {
        let kind = generator::injectable()[kind_ix];
        let (_, f, _) = findings(&GenConfig { ops, partitions, seed, inject: vec![(kind, k)] });
        prop_assert_eq!(f.count(kind), k as u64, "{} of {}", f.count(kind), kind);
        for other in f.kinds.keys() {
            prop_assert!(*other == kind || implied_by(kind).contains(other), "{} also found {}", kind, other);
        }
        prop_assert!(f.undecided.is_empty(), "{:?}", f.undecided);
    }

    #[test]
    fn clean_histories_are_valid(seed in any::<u64>(), partitions in 1u32..6, ops in 0u64..4000) {
        let (h, f, g) = findings(&GenConfig { ops, partitions, seed, inject: vec![] });
        prop_assert!(f.kinds.is_empty(), "{:?}", f.kinds.keys().collect::<Vec<_>>());
        let inputs = Inputs { replicas: Some(&g.replicas), sink: Some(&g.sink), lost_control: None, elections: None };
        let r = faultline_checker::check_with(&h, &guarantees(), &inputs);
        prop_assert_eq!(r.valid, Validity::Valid);
        // The strictest guarantees, where lost-enqueued is not checked.
        let r = faultline_checker::check_with(&h, &Guarantees::default(), &inputs);
        prop_assert_eq!(r.valid, Validity::Valid);
    }
}

/// The expected count of every type when several are injected together:
/// each injection brings one of each type it implies.
fn expected_counts(inject: &[(AnomalyKind, usize)]) -> std::collections::BTreeMap<AnomalyKind, u64> {
    let mut out = std::collections::BTreeMap::new();
    for &(kind, n) in inject {
        if n == 0 {
            continue;
        }
        *out.entry(kind).or_default() += n as u64;
        for &implied in implied_by(kind) {
            *out.entry(implied).or_default() += n as u64;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any mix of types, injected together, is found with exact counts.
    #[test]
    fn mixed_injections_are_found_exactly(
        seed in any::<u64>(),
        partitions in 2u32..6,
        ops in 1000u64..6000,
        mix in proptest::collection::vec((0usize..generator::injectable().len(), 1usize..4), 1..5),
    ) {
        let kinds = generator::injectable();
        let inject: Vec<(AnomalyKind, usize)> = mix.into_iter().map(|(i, n)| (kinds[i], n)).collect();
        let (_, f, _) = findings(&GenConfig { ops, partitions, seed, inject: inject.clone() });
        let found: std::collections::BTreeMap<AnomalyKind, u64> = f.kinds.iter().map(|(k, v)| (*k, v.count)).collect();
        prop_assert_eq!(found, expected_counts(&inject));
    }
}

/// Several types injected together are each found exactly.
#[test]
fn mixed_injection_is_found_exactly() {
    let inject = generator::parse_inject(
        "lost-write:3,duplicate:2,aborted-read:1,phantom-read:2,poll-skip:1,replica-divergence:2",
    )
    .unwrap();
    let (_, f, _) = findings(&GenConfig { ops: 20_000, partitions: 4, seed: 5, inject: inject.clone() });
    for (kind, n) in inject {
        assert_eq!(f.count(kind), n as u64, "{kind}");
    }
    assert_eq!(f.kinds.len(), 6);
}
