//! Shared benchmark support: node processes killed on drop and a load
//! client that drives pre-serialised produce batches at target URLs.

#![allow(dead_code)]

pub mod kafka_load;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::{Acks, ProduceRecord, ProduceRequest};

/// Record value size, as the issues specify.
pub const VALUE_BYTES: usize = 100;

pub struct Options {
    pub seconds: f64,
    pub concurrency: usize,
}

pub fn parse_options() -> Options {
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

/// CPU seconds (user + system) process `pid` has used so far, from
/// `/proc/<pid>/stat`; the server side of each row's cost.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, in clock ticks.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = 100.0; // USER_HZ on Linux
    (ticks(11) + ticks(12)) / hz
}

/// Runs one load row against `server` and returns its result with the CPU
/// seconds the server spent meanwhile.
pub async fn measured(server: &Server, load: impl std::future::Future<Output = LoadResult>) -> (LoadResult, f64) {
    let before = cpu_seconds(server.child.id());
    let result = load.await;
    (result, cpu_seconds(server.child.id()) - before)
}

/// A child process killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// The node's log (warnings and errors); `None` for a bare server.
    pub log: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout).lines().next().expect("server printed nothing").unwrap();
    line.rsplit(' ').next().unwrap().to_string()
}

pub fn start_node(overrides: &[&str]) -> Server {
    let mut all = vec!["node.id=1".to_string(), "listeners=http://127.0.0.1:0".to_string()];
    all.extend(overrides.iter().map(|o| o.to_string()));
    let server = spawn_node(tempfile::tempdir().unwrap(), &all);
    wait_node_healthy(&server);
    server
}

/// Starts a node with data in `dir` and exactly these overrides.
pub fn spawn_node(dir: tempfile::TempDir, overrides: &[String]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-node"));
    faultline_nemesis::process::die_with_parent(&mut cmd);
    cmd.arg("--override").arg(format!("log.dirs={}", dir.path().join("data").display()));
    for o in overrides {
        cmd.arg("--override").arg(o);
    }
    // A node's log goes to a file, not into the benchmark's report: killed
    // peers make openraft log every refused connection at ERROR, which is
    // exactly what a failover benchmark causes on purpose.
    let log = dir.path().join("node.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = cmd.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(file).spawn().unwrap();
    let url = read_url(&mut child);
    Server { child, url, log: Some(log), _dir: Some(dir) }
}

/// Waits (bounded) until `/health` answers 200.
pub fn wait_healthy(url: &str) {
    assert!(faultline_client::wait_healthy_blocking(url, Duration::from_secs(30)), "{url} never became healthy");
}

/// Waits (bounded) until the node is healthy; if it never is, fails with
/// the end of its log.
pub fn wait_node_healthy(server: &Server) {
    if !faultline_client::wait_healthy_blocking(&server.url, Duration::from_secs(30)) {
        let log = server.log.as_ref().map(std::fs::read_to_string).and_then(Result::ok).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "{} never became healthy; its log ends:\n{}",
            server.url,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

pub fn start_bare(bare_env: &str) -> Server {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    faultline_nemesis::process::die_with_parent(&mut cmd);
    let mut child = cmd.env(bare_env, "1").stdout(Stdio::piped()).spawn().unwrap();
    let url = read_url(&mut child);
    Server { child, url, log: None, _dir: None }
}

pub struct LoadResult {
    pub requests: u64,
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latency: hdrhistogram::Histogram<u64>,
    pub errors: u64,
}

/// Drives `concurrency` request loops for `seconds`, loop `i` posting to
/// `targets[i % targets.len()]` (a full produce URL), each sending the same
/// pre-serialised batch of `batch` records.
pub async fn produce_load(targets: &[String], batch: usize, acks: Acks, o: &Options) -> LoadResult {
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
            let url = targets[i % targets.len()].clone();
            tokio::spawn(async move {
                let mut hist = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                let (mut ok, mut errors) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let resp =
                        http.post(&url).header("content-type", "application/json").body(body.clone()).send().await;
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
    finish(tasks, &stop, start, batch, o).await
}

/// One load worker's count of good requests, failed ones, and latencies (µs).
pub type WorkerResult = (u64, u64, hdrhistogram::Histogram<u64>);

/// Lets the workers run for `o.seconds`, stops them, and sums what they
/// measured into one row of `batch`-record requests.
pub async fn finish(
    tasks: Vec<tokio::task::JoinHandle<WorkerResult>>,
    stop: &AtomicBool,
    start: Instant,
    batch: usize,
    o: &Options,
) -> LoadResult {
    tokio::time::sleep(Duration::from_secs_f64(o.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut result = LoadResult {
        requests: 0,
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latency: hdrhistogram::Histogram::new(3).unwrap(),
        errors: 0,
    };
    for t in tasks {
        let (good, errors, hist) = t.await.unwrap();
        result.requests += good;
        result.errors += errors;
        result.latency.add(hist).unwrap();
    }
    result.elapsed = start.elapsed();
    result.records = result.requests * batch as u64;
    result.bytes = result.records * VALUE_BYTES as u64;
    result
}
