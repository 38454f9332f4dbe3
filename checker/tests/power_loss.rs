//! Power loss of every replica at once permits what a log that lost its
//! unsynced tail shows, and nothing else permits it: one node at a time,
//! fsync per append, or records acknowledged after the power came back.

use faultline_checker::generator::{self, GenConfig};
use faultline_checker::op::{F, Op, OpType, OpValue, Process};
use faultline_checker::verdict::Status;
use faultline_checker::{AnomalyKind, Guarantees, History, Validity, check};
use serde_json::json;

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// A nemesis op `f` on `targets`; a power loss also names every partition's replicas.
fn nemesis(f: &str, targets: &[&str], time_ns: u64) -> Op {
    let mut value = json!({ "outcome": "installed", "targets": targets });
    if f == "power-loss" {
        value["replicas"] = json!({ "events/0": NODES, "events/1": NODES, "events/2": NODES });
    }
    Op::new(OpType::Info, Process::Nemesis, F::Fault(f.into()), OpValue::Other(value)).at(time_ns)
}

/// A generated history with `inject`, then the nemesis ops `faults` gives
/// from the times of the first and last ops (appended: only a process's
/// own times must not go back), checked under `guarantees`.
fn checked(inject: &str, guarantees: &str, faults: impl Fn(u64, u64) -> Vec<Op>) -> faultline_checker::Results {
    let cfg = GenConfig { ops: 4000, partitions: 3, seed: 5, inject: generator::parse_inject(inject).unwrap() };
    let mut ops = generator::generate_vec(&cfg).unwrap().ops;
    let (first, last) = (ops[0].time_ns, ops.last().unwrap().time_ns);
    for mut op in faults(first, last) {
        op.index = ops.len() as u64;
        ops.push(op);
    }
    let mut g = Guarantees::default();
    g.apply_list(guarantees).unwrap();
    check(&History::from_ops(ops).unwrap(), &g, None)
}

fn whole_cluster(_first: u64, last: u64) -> Vec<Op> {
    vec![nemesis("power-loss", &NODES, last), nemesis("start", &NODES, last + 1)]
}

#[test]
fn lost_writes_after_every_replica_lost_power_are_permitted_with_default_flush() {
    let r = checked("lost-write:3", "", whole_cluster);
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.violations);
    let t = &r.anomalies[&AnomalyKind::LostWrite];
    assert_eq!((t.count, t.status), (3, Status::Permitted));
    let reason = t.reason.as_deref().unwrap();
    assert!(reason.contains("power-loss of every replica") && reason.contains("n1, n2, n3"), "{reason}");
}

#[test]
fn with_an_fsync_per_append_the_same_loss_is_a_violation() {
    let r = checked("lost-write:3", "flush-messages=1", whole_cluster);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.anomalies[&AnomalyKind::LostWrite].status, Status::Violation);
}

#[test]
fn one_node_at_a_time_never_permits_a_loss() {
    let r = checked("lost-write:3", "", |_, last| {
        NODES
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                let t = last + 10 * i as u64;
                [nemesis("power-loss", &[n], t), nemesis("start", &[n], t + 5)]
            })
            .collect()
    });
    assert_eq!(r.valid, Validity::Invalid, "replication covers one node's power at a time");
}

#[test]
fn records_acknowledged_after_the_power_came_back_are_not_explained_by_it() {
    let r = checked("lost-write:3", "", |first, _| {
        vec![nemesis("power-loss", &NODES, first), nemesis("start", &NODES, first + 1)]
    });
    assert_eq!(r.anomalies[&AnomalyKind::LostWrite].status, Status::Violation);
}

#[test]
fn a_clean_history_with_a_power_loss_is_valid() {
    let r = checked("", "", whole_cluster);
    assert_eq!(r.valid, Validity::Valid);
    assert!(r.anomalies.is_empty());
}

#[test]
fn a_duplicate_is_not_what_a_lost_tail_explains() {
    let r = checked("duplicate:1", "", whole_cluster);
    assert_eq!(r.anomalies[&AnomalyKind::Duplicate].status, Status::Violation);
}

#[test]
fn untimed_types_are_judged_by_their_examples_witness_times() {
    let before = checked("inconsistent-offsets:2", "", whole_cluster);
    assert_eq!(before.anomalies[&AnomalyKind::InconsistentOffsets].status, Status::Permitted);
    let after = checked("inconsistent-offsets:2", "", |first, _| {
        vec![nemesis("power-loss", &NODES, first), nemesis("start", &NODES, first + 1)]
    });
    assert_eq!(after.anomalies[&AnomalyKind::InconsistentOffsets].status, Status::Violation);
}

#[test]
fn a_later_power_loss_of_every_replica_covers_what_was_acknowledged_before_it() {
    let r = checked("lost-write:3", "", |first, last| {
        vec![
            nemesis("power-loss", &NODES, first),
            nemesis("start", &NODES, first + 1),
            nemesis("power-loss", &NODES, last),
            nemesis("start", &NODES, last + 1),
        ]
    });
    assert_eq!(r.anomalies[&AnomalyKind::LostWrite].status, Status::Permitted);
}
