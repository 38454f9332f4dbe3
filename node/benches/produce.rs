//! Produce and fetch throughput of one real `faultline-node`, and the
//! ceiling of a bare axum server that only parses the same JSON batches and
//! appends them to memory, measured with the same load client on the same
//! cores.
//!
//! Run: `cargo bench -p faultline-node --bench produce` (add
//! `-- --seconds 5 --concurrency 16` to change the defaults). Prints one
//! table; the README quotes it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::{Acks, FetchRequest, ProduceRecord, ProduceRequest};

/// Record value size, as the issue specifies.
const VALUE_BYTES: usize = 100;
/// Environment variable that turns this binary into the bare ceiling server.
const BARE_ENV: &str = "FAULTLINE_BENCH_BARE_SERVER";

struct Options {
    seconds: f64,
    concurrency: usize,
}

fn parse_options() -> Options {
    let mut o = Options { seconds: 3.0, concurrency: 16 };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--seconds" => {
                o.seconds = args[i + 1].parse().expect("--seconds takes a number");
                i += 1;
            }
            "--concurrency" => {
                o.concurrency = args[i + 1].parse().expect("--concurrency takes a number");
                i += 1;
            }
            _ => {} // cargo passes --bench; ignore it and anything else
        }
        i += 1;
    }
    o
}

/// A child process killed on drop.
struct Server {
    child: Child,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout).lines().next().expect("server printed nothing").unwrap();
    line.rsplit(' ').next().unwrap().to_string()
}

fn start_node(overrides: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-node"));
    cmd.args(["--override", "node.id=1", "--override", "listeners=http://127.0.0.1:0"]);
    cmd.arg("--override").arg(format!("log.dirs={}", dir.path().join("data").display()));
    for o in overrides {
        cmd.arg("--override").arg(o);
    }
    let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let url = read_url(&mut child);
    Server { child, url, _dir: Some(dir) }
}

fn start_bare() -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap()).env(BARE_ENV, "1").stdout(Stdio::piped()).spawn().unwrap();
    let url = read_url(&mut child);
    Server { child, url, _dir: None }
}

/// The ceiling: parse the same JSON, append values to memory, answer an offset.
fn run_bare_server() {
    use axum::extract::State;
    use axum::routing::post;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/v1/topics/{topic}/partitions/{partition}/produce",
                post(|State(store): State<Arc<std::sync::Mutex<Vec<String>>>>, axum::Json(req): axum::Json<ProduceRequest>| async move {
                    let mut s = store.lock().unwrap();
                    let base = s.len();
                    s.extend(req.records.into_iter().map(|r| r.value));
                    axum::Json(serde_json::json!({ "base_offset": base }))
                }),
            )
            .with_state(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("bare listening on http://{}", listener.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

struct Result {
    requests: u64,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latency: hdrhistogram::Histogram<u64>,
    errors: u64,
}

/// Drives `concurrency` request loops against `url` for `seconds`, each
/// sending the same pre-serialised batch of `batch` records.
async fn produce_load(url: &str, topic: &str, partitions: u32, batch: usize, acks: Acks, o: &Options) -> Result {
    let value = "v".repeat(VALUE_BYTES);
    let req = ProduceRequest {
        acks: acks.into(),
        timeout_ms: Some(30_000),
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: (0..batch).map(|_| ProduceRecord { key: None, value: value.clone(), timestamp: None }).collect(),
    };
    let body = bytes::Bytes::from(serde_json::to_vec(&req).unwrap());
    let http = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(o.concurrency).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..o.concurrency)
        .map(|i| {
            let (http, body, stop) = (http.clone(), body.clone(), stop.clone());
            let url = format!("{url}/v1/topics/{topic}/partitions/{}/produce", i as u32 % partitions);
            tokio::spawn(async move {
                let mut hist = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                let (mut ok, mut errors) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let resp = http.post(&url).header("content-type", "application/json").body(body.clone()).send().await;
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            ok += 1;
                            hist.record(t.elapsed().as_micros() as u64).unwrap();
                        }
                        _ => errors += 1,
                    }
                }
                (ok, errors, hist)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut result = Result { requests: 0, records: 0, bytes: 0, elapsed: Duration::ZERO, latency: hdrhistogram::Histogram::new(3).unwrap(), errors: 0 };
    for t in tasks {
        let (ok, errors, hist) = t.await.unwrap();
        result.requests += ok;
        result.errors += errors;
        result.latency.add(hist).unwrap();
    }
    result.elapsed = start.elapsed();
    result.records = result.requests * batch as u64;
    result.bytes = result.records * VALUE_BYTES as u64;
    result
}

fn print_row(name: &str, batch: usize, r: &Result) -> f64 {
    let secs = r.elapsed.as_secs_f64();
    let rps = r.records as f64 / secs;
    println!(
        "{name:<34} {batch:>5} {rps:>12.0} {:>8.1} {:>8.2} {:>8.2} {:>7}",
        r.bytes as f64 / secs / 1e6,
        r.latency.value_at_quantile(0.50) as f64 / 1000.0,
        r.latency.value_at_quantile(0.99) as f64 / 1000.0,
        r.errors
    );
    rps
}

async fn create_topic(url: &str, name: &str, partitions: u32) {
    let client = faultline_client::Client::new(url);
    let req = faultline_client::api::CreateTopicRequest { name: name.into(), partitions: Some(i64::from(partitions)), ..Default::default() };
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
                    let req = FetchRequest { offset: next, max_records: Some(10_000), max_bytes: Some(4 << 20), max_wait_ms: None };
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
        println!("faultline-node produce/fetch benchmark: {} s per row, {} concurrent requests, {VALUE_BYTES}-byte values", o.seconds, o.concurrency);
        println!("{:<34} {:>5} {:>12} {:>8} {:>8} {:>8} {:>7}", "scenario", "batch", "records/s", "MB/s", "p50 ms", "p99 ms", "errors");
        let partitions = 4;
        let bare = start_bare();
        let ceiling = print_row("bare axum parse+append (ceiling)", 100, &produce_load(&bare.url, "x", partitions, 100, Acks::Leader, &o).await);
        drop(bare);

        let mut broker_100 = 0.0;
        let node = start_node(&[]);
        for batch in [1, 10, 100] {
            let topic = format!("b{batch}");
            create_topic(&node.url, &topic, partitions).await;
            let rps = print_row("acks=1, default flush", batch, &produce_load(&node.url, &topic, partitions, batch, Acks::Leader, &o).await);
            if batch == 100 {
                broker_100 = rps;
            }
        }
        create_topic(&node.url, "ball", partitions).await;
        print_row("acks=all, default flush", 100, &produce_load(&node.url, "ball", partitions, 100, Acks::All, &o).await);
        let (n, took) = fetch_load(&node.url, "b100", partitions).await;
        println!("{:<34} {:>5} {:>12.0} {:>8.1}", "fetch (4 readers, 10k records/poll)", "-", n as f64 / took.as_secs_f64(), n as f64 * VALUE_BYTES as f64 / took.as_secs_f64() / 1e6);
        drop(node);

        let node = start_node(&["flush.messages=1"]);
        for batch in [1, 10, 100] {
            let topic = format!("f{batch}");
            create_topic(&node.url, &topic, partitions).await;
            print_row("acks=1, flush.messages=1", batch, &produce_load(&node.url, &topic, partitions, batch, Acks::Leader, &o).await);
        }
        drop(node);
        println!("broker acks=1 100-record batches: {:.0} records/s = {:.0}% of the bare ceiling", broker_100, 100.0 * broker_100 / ceiling);
    });
}
