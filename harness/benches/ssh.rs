//! SSH hosts against namespaces, on the same machine in the same run: how
//! long a 5-node `cluster up` and `cluster down` take over SSH (to an sshd
//! in each namespace) and directly, and how long a fault takes from the
//! moment the schedule wants it to the moment it took effect (`<fault>` op
//! time minus its `start-` op's `scheduled_ns`), over SSH and directly.
//!
//! Run as root: `cargo bench -p faultline-harness --bench ssh`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use support::sshd::SshNet;

/// Rounds of up and down per backend; the median is reported.
const ROUNDS: usize = 3;

fn faultline(args: &[&str], store: &Path) -> f64 {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_faultline")).args(args).arg("--store").arg(store).output().unwrap();
    assert!(o.status.success() || o.status.code() == Some(1), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Delays in ms from `scheduled_ns` to the effect, for every scheduled fault.
fn fault_delays_ms(history: &Path) -> Vec<f64> {
    let mut scheduled = std::collections::HashMap::new();
    let mut delays = Vec::new();
    for line in std::fs::read_to_string(history).unwrap().lines() {
        let op: serde_json::Value = serde_json::from_str(line).unwrap();
        if op["process"] != "nemesis" {
            continue;
        }
        let f = op["f"].as_str().unwrap_or_default().to_string();
        match f.strip_prefix("start-") {
            Some(fault) => {
                if let Some(ns) = op["value"]["scheduled_ns"].as_u64() {
                    scheduled.insert(fault.to_string(), ns);
                }
            }
            None => {
                if let (Some(at), Some(time)) = (scheduled.remove(&f), op["time"].as_u64()) {
                    delays.push(time.saturating_sub(at) as f64 / 1e6);
                }
            }
        }
    }
    delays
}

fn run_faults(store: &Path, extra: &[&str]) -> Vec<f64> {
    let args = ["run", "--time-limit", "20", "--rate", "200", "--nemesis", "kill,pause,partition"];
    faultline(&[&args[..], &["--nemesis-interval", "1", "--seed", "3"], extra].concat(), store);
    fault_delays_ms(&std::fs::canonicalize(store.join("latest")).unwrap().join("history.jsonl"))
}

fn main() {
    let net = SshNet::start("bh", 0, 5, 5);
    let hosts = net.hosts_toml(5, None);
    let hosts = hosts.to_str().unwrap();
    let store = net.dir.join("store");
    let name = net.net.name.clone();
    let (mut ssh_up, mut ssh_down, mut ns_up, mut ns_down) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        ssh_up.push(faultline(&["cluster", "up", "--hosts", hosts, "--name", &name], &store));
        ssh_down.push(faultline(&["cluster", "down", "--name", &name], &store));
        ns_up.push(faultline(&["cluster", "up", "--nodes", "5", "--name", "bhns"], &store));
        ns_down.push(faultline(&["cluster", "down", "--name", "bhns"], &store));
    }
    let ssh_faults = run_faults(&store.join("ssh"), &["--hosts", hosts, "--cluster-name", &name]);
    let ns_faults = run_faults(&store.join("ns"), &["--cluster-name", "bhns"]);
    println!("5 nodes on this machine's 2 cores; median of {ROUNDS} rounds");
    println!("| measure | over SSH | namespaces | target (SSH) |");
    println!("|---|---:|---:|---:|");
    println!("| cluster up | {:.2} s | {:.2} s | ≤ 10 s |", median(ssh_up), median(ns_up));
    println!("| cluster down | {:.2} s | {:.2} s | ≤ 5 s |", median(ssh_down), median(ns_down));
    println!(
        "| fault, scheduled → in effect (median of {} / {}) | {:.0} ms | {:.0} ms | ≤ 100 ms |",
        ssh_faults.len(),
        ns_faults.len(),
        median(ssh_faults),
        median(ns_faults)
    );
}
