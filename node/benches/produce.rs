//! Produce and fetch throughput of one real `faultline-node`, over its HTTP
//! API and over its Kafka listener (a raw client sending pre-encoded
//! batches), and the ceiling of a bare axum server that only parses the same
//! JSON batches and appends them to memory, all on the same cores.
//!
//! Run: `cargo bench -p faultline-node --bench produce` (add
//! `-- --seconds 5 --concurrency 16` to change the defaults). Prints one
//! table; the README quotes it.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka_load::kafka_produce_load;
use common::*;
use faultline_client::api::{Acks, FetchRequest, ProduceRequest};

/// Environment variable that turns this binary into the bare ceiling server.
const BARE_ENV: &str = "FAULTLINE_BENCH_BARE_SERVER";

/// The ceiling: parse the same JSON, append values to memory, answer an offset.
fn run_bare_server() {
    use axum::extract::State;
    use axum::routing::post;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store: Arc<parking_lot::Mutex<Vec<String>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/v1/topics/{topic}/partitions/{partition}/produce",
                post(
                    |State(store): State<Arc<parking_lot::Mutex<Vec<String>>>>,
                     axum::Json(req): axum::Json<ProduceRequest>| async move {
                        let mut s = store.lock();
                        let base = s.len();
                        s.extend(req.records.into_iter().map(|r| r.value));
                        axum::Json(serde_json::json!({ "base_offset": base }))
                    },
                ),
            )
            .with_state(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("bare listening on http://{}", listener.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

/// Prints one row: the load's throughput and latency, and the server's CPU
/// time per record (µs), which does not depend on the client's share of
/// the cores.
fn print_row(name: &str, batch: usize, (r, cpu_s): &(LoadResult, f64)) -> (f64, f64) {
    let secs = r.elapsed.as_secs_f64();
    let rps = r.records as f64 / secs;
    println!(
        "{name:<34} {batch:>5} {rps:>12.0} {:>8.1} {:>8.2} {:>8.2} {:>7} {:>9.2}",
        r.bytes as f64 / secs / 1e6,
        r.latency.value_at_quantile(0.50) as f64 / 1000.0,
        r.latency.value_at_quantile(0.99) as f64 / 1000.0,
        r.errors,
        cpu_s * 1e6 / r.records.max(1) as f64
    );
    (rps, cpu_s * 1e6 / r.records.max(1) as f64)
}

fn targets(url: &str, topic: &str, partitions: u32) -> Vec<String> {
    (0..partitions).map(|p| format!("{url}/v1/topics/{topic}/partitions/{p}/produce")).collect()
}

async fn create_topic(url: &str, name: &str, partitions: u32) {
    let client = faultline_client::Client::new(url);
    let req = faultline_client::api::CreateTopicRequest {
        name: name.into(),
        partitions: Some(i64::from(partitions)),
        ..Default::default()
    };
    client.create_topic(&req).await.unwrap();
}

/// Reads the whole of `partitions` partitions with one reader each.
async fn fetch_load(url: &str, topic: &str, partitions: u32) -> (u64, Duration) {
    let client = faultline_client::Client::new(url);
    let start = Instant::now();
    let tasks: Vec<_> = (0..partitions)
        .map(|p| {
            let client = client.clone();
            let topic = topic.to_string();
            tokio::spawn(async move {
                let (mut next, mut n) = (0i64, 0u64);
                loop {
                    let req = FetchRequest {
                        offset: next,
                        max_records: Some(10_000),
                        max_bytes: Some(4 << 20),
                        max_wait_ms: None,
                    };
                    let resp = client.fetch(&topic, p, &req).await.unwrap();
                    if resp.records.is_empty() {
                        return n;
                    }
                    n += resp.records.len() as u64;
                    next = resp.next_offset;
                }
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    (total, start.elapsed())
}

fn main() {
    if std::env::var_os(BARE_ENV).is_some() {
        return run_bare_server();
    }
    let o = parse_options();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        println!(
            "faultline-node produce/fetch benchmark: {} s per row, {} concurrent requests, {VALUE_BYTES}-byte values",
            o.seconds, o.concurrency
        );
        println!(
            "{:<34} {:>5} {:>12} {:>8} {:>8} {:>8} {:>7} {:>9}",
            "scenario", "batch", "records/s", "MB/s", "p50 ms", "p99 ms", "errors", "cpu µs/r"
        );
        let partitions = 4;
        let bare = start_bare(BARE_ENV);
        let (ceiling, _) = print_row(
            "bare axum parse+append (ceiling)",
            100,
            &measured(&bare, produce_load(&targets(&bare.url, "x", partitions), 100, Acks::Leader, &o)).await,
        );
        drop(bare);

        let mut broker_100 = (0.0, 0.0);
        let kafka_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let kafka_addr: std::net::SocketAddr = ([127, 0, 0, 1], kafka_port).into();
        let node = start_node(&[&format!("listeners=http://127.0.0.1:0,PLAINTEXT://{kafka_addr}")]);
        for batch in [1, 10, 100] {
            let topic = format!("b{batch}");
            create_topic(&node.url, &topic, partitions).await;
            let row = print_row(
                "acks=1, default flush",
                batch,
                &measured(&node, produce_load(&targets(&node.url, &topic, partitions), batch, Acks::Leader, &o)).await,
            );
            if batch == 100 {
                broker_100 = row;
            }
        }
        create_topic(&node.url, "k100", partitions).await;
        let kafka_100 = print_row(
            "Kafka protocol acks=1 (raw client)",
            100,
            &measured(&node, kafka_produce_load(kafka_addr, "k100", partitions as i32, 100, 1, &o)).await,
        );
        create_topic(&node.url, "ball", partitions).await;
        print_row(
            "acks=all, default flush",
            100,
            &measured(&node, produce_load(&targets(&node.url, "ball", partitions), 100, Acks::All, &o)).await,
        );
        let (n, took) = fetch_load(&node.url, "b100", partitions).await;
        println!(
            "{:<34} {:>5} {:>12.0} {:>8.1}",
            "fetch (4 readers, 10k records/poll)",
            "-",
            n as f64 / took.as_secs_f64(),
            n as f64 * VALUE_BYTES as f64 / took.as_secs_f64() / 1e6
        );
        drop(node);

        let node = start_node(&["flush.messages=1"]);
        for batch in [1, 10, 100] {
            let topic = format!("f{batch}");
            create_topic(&node.url, &topic, partitions).await;
            print_row(
                "acks=1, flush.messages=1",
                batch,
                &measured(&node, produce_load(&targets(&node.url, &topic, partitions), batch, Acks::Leader, &o)).await,
            );
        }
        drop(node);
        println!(
            "broker acks=1 100-record batches: {:.0} records/s = {:.0}% of the bare ceiling",
            broker_100.0,
            100.0 * broker_100.0 / ceiling
        );
        println!(
            "Kafka protocol acks=1 100-record batches: {:.0} records/s = {:.2}x the HTTP path ({:.2}x the bare \
             HTTP ceiling); node CPU per record {:.2}x the HTTP path's",
            kafka_100.0,
            kafka_100.0 / broker_100.0,
            kafka_100.0 / ceiling,
            kafka_100.1 / broker_100.1
        );
    });
}
