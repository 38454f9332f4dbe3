//! The node on the power-loss filesystem (`faultline-lazyfs`, FUSE) against
//! the same node on a plain directory, in the same run: acks=1, 100-record
//! batches, four partitions, then the same with `flush.messages=1` (every
//! append fsynced, which the filesystem turns into dropping journal
//! records). Reports records/s and the lazyfs/plain ratio; the goal is at
//! least 50%. Rows alternate plain, lazyfs, plain, lazyfs so that a machine
//! that slows down during the run does not favour one side.
//!
//! Run as root (mounting FUSE needs it): `cargo bench -p faultline-node
//! --bench lazyfs` (`-- --seconds 5 --concurrency 16` as for `produce`).

#[path = "common/mod.rs"]
mod common;

use common::*;
use faultline_client::api::Acks;
use faultline_lazyfs::{MountSpec, Mounted};

const PARTITIONS: u32 = 4;
const BATCH: usize = 100;

/// A node whose `log.dirs` is plain, or a lazyfs mount (kept until the node is gone).
async fn node(lazy: bool, overrides: &[String]) -> (Server, Option<Mounted>) {
    let dir = tempfile::tempdir().unwrap();
    let mounted = lazy.then(|| {
        let spec = MountSpec {
            backing: dir.path().join("backing"),
            mountpoint: dir.path().join("data"),
            control: dir.path().join("lazyfs.sock"),
        };
        Mounted::start(&spec).expect("mounting FUSE needs root and /dev/fuse")
    });
    let mut all = vec!["node.id=1".to_string(), "listeners=http://127.0.0.1:0".to_string()];
    all.extend(overrides.iter().cloned());
    let server = spawn_node(dir, &all);
    wait_node_healthy(&server);
    (server, mounted)
}

/// records/s of one row.
async fn row(name: &str, lazy: bool, overrides: &[String], o: &Options) -> f64 {
    let (server, mounted) = node(lazy, overrides).await;
    let client = faultline_client::Client::new(&server.url);
    let req = faultline_client::api::CreateTopicRequest {
        name: "t".into(),
        partitions: Some(i64::from(PARTITIONS)),
        ..Default::default()
    };
    client.create_topic(&req).await.unwrap();
    let targets: Vec<String> =
        (0..PARTITIONS).map(|p| format!("{}/v1/topics/t/partitions/{p}/produce", server.url)).collect();
    let (r, _) = measured(&server, produce_load(&targets, BATCH, Acks::Leader, o)).await;
    let rps = r.records as f64 / r.elapsed.as_secs_f64();
    println!(
        "{name:<34} {:>12.0} {:>8.2} {:>8.2} {:>7}",
        rps,
        r.latency.value_at_quantile(0.50) as f64 / 1000.0,
        r.latency.value_at_quantile(0.99) as f64 / 1000.0,
        r.errors
    );
    // The node goes before its disk.
    drop(server);
    drop(mounted);
    rps
}

fn main() {
    let o = parse_options();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        println!(
            "faultline-node on faultline-lazyfs vs a plain directory: acks=1, {BATCH}-record batches, {PARTITIONS} \
             partitions, {} s per row, {} concurrent requests",
            o.seconds, o.concurrency
        );
        println!("{:<34} {:>12} {:>8} {:>8} {:>7}", "scenario", "records/s", "p50 ms", "p99 ms", "errors");
        for (label, overrides) in
            [("default flush", vec![]), ("flush.messages=1", vec!["flush.messages=1".to_string()])]
        {
            let mut plain = Vec::new();
            let mut lazy = Vec::new();
            for _ in 0..2 {
                plain.push(row(&format!("plain, {label}"), false, &overrides, &o).await);
                lazy.push(row(&format!("lazyfs, {label}"), true, &overrides, &o).await);
            }
            let (p, l) = (plain.iter().sum::<f64>() / 2.0, lazy.iter().sum::<f64>() / 2.0);
            println!("{label}: lazyfs {l:.0} records/s = {:.0}% of plain {p:.0} (goal: at least 50%)", 100.0 * l / p);
        }
    });
}
