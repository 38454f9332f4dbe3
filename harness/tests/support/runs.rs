//! Running `faultline run` from a test, and reading what it stored: the
//! test's own store, cluster name and subnet; the history, checked for
//! well-formedness; the results; and the leak check after teardown.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline_checker::op::{Op, OpType, Process};

use super::{TestCluster, lines};

/// Subscribing consumers on fast group timings: a 1.5 s session the
/// brokers accept, and a short first rebalance.
pub const FAST_GROUP: &[&str] = &[
    "--subscribe",
    "--session-timeout-ms",
    "1500",
    "--broker-config",
    "group.min.session.timeout.ms=500",
    "--broker-config",
    "group.initial.rebalance.delay.ms=300",
];

/// Runs `faultline run` with the test's store, cluster name and subnet.
pub fn run(cluster: &TestCluster, subnet: &str, extra: &[&str]) -> Output {
    let store = cluster.dir.join("store");
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--name", "t", "--store"])
        .arg(&store)
        .args(["--cluster-name", &cluster.name, "--subnet", subnet])
        .args(extra)
        .env_remove("RUST_LOG")
        .output()
        .expect("runs faultline run")
}

pub fn run_dir(cluster: &TestCluster) -> PathBuf {
    std::fs::canonicalize(cluster.dir.join("store/latest")).expect("store/latest points at the run")
}

pub fn history(dir: &Path) -> Vec<Op> {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Indices dense from 0; every completion names an earlier invoke of the
/// same process and f, and every invoke is completed at most once.
pub fn assert_well_formed(ops: &[Op]) {
    let mut completed = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(op.index, i as u64, "dense indices");
        // Invokes, and nemesis ops (info records that pair with nothing).
        if op.op_type == OpType::Invoke || op.process == Process::Nemesis {
            continue;
        }
        let inv = op.invoke_index.unwrap_or_else(|| panic!("completion without invoke_index: {op:?}"));
        let invoke = &ops[inv as usize];
        assert!(inv < op.index && invoke.op_type == OpType::Invoke, "{op:?} pairs with {invoke:?}");
        assert_eq!((invoke.process, &invoke.f), (op.process, &op.f), "{op:?} pairs with {invoke:?}");
        assert!(completed.insert(inv, op.index).is_none(), "invoke {inv} completed twice");
    }
}

/// Nothing of the run is left: cluster resources, node and client processes.
pub fn assert_no_leftovers(cluster: &TestCluster, subnet: &str) {
    assert_eq!(cluster.leftovers(), Vec::<String>::new(), "leftovers");
    let prefix = subnet.trim_end_matches("0/24");
    let clients: Vec<String> = lines(&["ps", "-eo", "pid,stat,args"])
        .into_iter()
        .filter(|l| l.contains(prefix) && !l.split_whitespace().nth(1).is_some_and(|s| s.starts_with('Z')))
        .collect();
    assert_eq!(clients, Vec::<String>::new(), "client processes left");
    assert!(
        !cluster.dir.join("store/clusters").join(&cluster.name).exists(),
        "the cluster directory is removed after teardown"
    );
}

/// Waits (bounded by `MID_UP_WAIT`) until the run named `t` in `store` has
/// recorded a workload's worth of history.
pub fn wait_for_workload(store: &Path) {
    let deadline = std::time::Instant::now() + super::MID_UP_WAIT;
    let history = store.join("t/latest/history.jsonl");
    while std::fs::metadata(&history).map(|m| m.len()).unwrap_or(0) < 10_000 {
        assert!(std::time::Instant::now() < deadline, "no workload within {:?}", super::MID_UP_WAIT);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
