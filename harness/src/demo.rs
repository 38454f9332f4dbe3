//! `faultline demo`: the first thing a new user runs. Starts one broker,
//! creates a topic, produces a few records with acks=all, reads them back,
//! SIGKILLs the broker, restarts it, and shows that every acknowledged
//! record survived at its offset.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use faultline_client::Client;
use faultline_client::api::{Acks, CreateTopicRequest, FetchRequest, ProduceRecord, ProduceRequest};

use crate::node_process::NodeProcess;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Records to produce per partition.
    #[arg(long, default_value_t = 5)]
    records: u32,
    /// Keep the data directory here instead of a temporary one.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

const TOPIC: &str = "demo";
/// Bound on fetch retries while a restarted broker takes leadership back.
const FETCH_TRIES_MAX: u32 = 200;
const PARTITIONS: u32 = 2;

pub fn main(args: DemoArgs) -> ExitCode {
    let rt = tokio::runtime::Runtime::new().expect("building the tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline demo failed: {e:#}");
            ExitCode::from(255)
        }
    }
}

async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.records == 0 || args.records > 10_000 {
        bail!("--records must be in 1..=10000");
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut node = NodeProcess::start(&dir, 1, &[])?;
    println!("started faultline-node (pid {}) at {}", node.pid().unwrap_or(0), node.url);
    let client = Client::with_timeout(&node.url, Duration::from_secs(10));
    let req = CreateTopicRequest { name: TOPIC.into(), partitions: Some(i64::from(PARTITIONS)), ..Default::default() };
    client.create_topic(&req).await.context("creating the topic")?;
    println!("created topic {TOPIC} with {PARTITIONS} partitions\n");

    let mut acked = Vec::new();
    for p in 0..PARTITIONS {
        let records = (0..args.records)
            .map(|i| ProduceRecord { key: None, value: format!("value-{p}-{i}"), timestamp: None })
            .collect();
        let req = ProduceRequest {
            acks: Acks::All.into(),
            timeout_ms: Some(5_000),
            producer_id: None,
            producer_epoch: None,
            base_sequence: None,
            records,
        };
        let resp = client.produce(TOPIC, p, &req).await.context("producing")?;
        let base = resp.base_offset.context("acks=all answers with an offset")?;
        println!(
            "produced {} records to {TOPIC}/{p} with acks=all: offsets {base}..={}",
            args.records,
            base + i64::from(args.records) - 1
        );
        acked.extend((0..args.records).map(|i| (p, base + i64::from(i), format!("value-{p}-{i}"))));
    }
    println!();
    print_partitions(&client).await?;

    node.kill()?;
    println!("\nSIGKILLed the broker; restarting it on the same data directory");
    let mut node = NodeProcess::start(&dir, 1, &[])?;
    let client = Client::with_timeout(&node.url, Duration::from_secs(10));
    let read = print_partitions(&client).await?;
    let lost: Vec<_> = acked.iter().filter(|a| !read.contains(a)).collect();
    if !lost.is_empty() {
        bail!("{} acknowledged records were lost: {lost:?}", lost.len());
    }
    println!("\nall {} acknowledged records survived the kill at their offsets", acked.len());
    node.stop()?;
    println!("stopped the broker with SIGTERM (clean shutdown)");
    Ok(())
}

/// Prints every record of every partition and returns them.
async fn print_partitions(client: &Client) -> anyhow::Result<Vec<(u32, i64, String)>> {
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        let req = FetchRequest { offset: 0, max_records: Some(10_000), max_bytes: None, max_wait_ms: None };
        // Right after a restart the broker is registered a moment before the
        // controller re-elects it leader; a client retries, and so do we.
        let mut tries = 0;
        let resp = loop {
            match client.fetch(TOPIC, p, &req).await {
                Err(e)
                    if e.code() == Some(faultline_client::api::ErrorCode::NotLeaderOrFollower)
                        && tries < FETCH_TRIES_MAX =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => break other.context("fetching")?,
            }
        };
        println!("fetched {TOPIC}/{p} (high watermark {}):", resp.high_watermark);
        for r in resp.records {
            println!("  offset {:>3}  epoch {}  {}", r.offset, r.leader_epoch, r.value);
            out.push((p, r.offset, r.value));
        }
    }
    Ok(out)
}
