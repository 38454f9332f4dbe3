//! `faultline client producer|consumer|drain` (hidden): the client
//! applications of a run, each a separate OS process started by
//! `faultline run`, built on `faultline-client`.
//!
//! A client process writes one JSON line per event to its stdout: an op of
//! the public history format (`faultline_checker::op::Op`) with `time` the
//! absolute `CLOCK_MONOTONIC` stamp taken when it happened and `index` 0;
//! the harness, the single history writer, assigns indices, pairs
//! completions and makes times relative to the run's start. A client runs
//! one op at a time per logical process; after an `info` op it goes on
//! under its next process id (`--process-stride`), as a Jepsen worker does,
//! and a consumer then assigns afresh. It stops gracefully, after its
//! current op settles, when its stdin closes or receives a line; a closed
//! stdout (the harness is gone) ends it at once.
//!
//! Outcomes follow R1.10: a send is `ok` when acknowledged with offsets,
//! `fail` only when the producer says no attempt could have been appended
//! ([`SendOutcome::Failed`]), and `info` otherwise; an acks=0 send is always
//! `info`, because nothing acknowledges it.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use faultline_checker::op::{
    AssignValue, CommitValue, DrainComplete, DrainTargets, Op, OpType, OpValue, PartMap, PollValue, Process,
    RecordValue, Seek, SendRecord, SendValue,
};
use faultline_client::api::{
    Acks, ErrorCode, FetchRequest, FetchedRecord, OffsetCommit, OffsetCommitRequest, ProduceRecord,
};
use faultline_client::{
    AccumulatorConfig, AsyncProducer, BatchInfo, BatchObserver, Client, ClientError, ClusterClient, Producer,
    ProducerConfig, SendOutcome,
};

use crate::history::monotonic_ns;
use crate::run::OnSinkError;
use crate::sink::Sink;

/// Values of process `p` are `p * VALUE_SPACE + counter`: unique across
/// processes, so unique per partition, and plain JSON integers.
pub const VALUE_SPACE: i64 = 1_000_000_000;
/// Records one poll asks a partition for.
const POLL_RECORDS_MAX: u32 = 1_000;
/// Long-poll wait of one consumer fetch: short, so a stop is seen quickly.
const POLL_WAIT_MS: u64 = 100;
/// Records one final-drain fetch asks for.
const DRAIN_RECORDS_MAX: u32 = 5_000;
/// Attempts of one group request while following coordinator hints.
const COORDINATOR_ATTEMPTS_MAX: u32 = 5;
/// Pause after a failed assign, poll or coordinator attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Attempts of one sink write with `--on-sink-error retry` (about a
/// minute at [`RETRY_PAUSE`] plus the busy timeout): longer than any outage.
const SINK_ATTEMPTS_MAX: u32 = 300;
/// Poll batches the in-memory queue holds before the poll loop waits.
/// Small, as applications bound their hand-off queues: it bounds how far
/// polling runs ahead of processing, and the drain at a graceful stop.
const QUEUE_BATCHES_MAX: usize = 32;
/// How long a stopping consumer's worker may take to drain its queue:
/// within the harness's stop grace (15 s), which SIGKILLs after it.
const WORKER_DRAIN_BOUND: Duration = Duration::from_secs(10);
/// Extra time a closing producer gives its last batches beyond their delivery timeout.
const CLOSE_SLACK: Duration = Duration::from_secs(1);
/// Highest accepted send rate of one process, sends per second.
const RATE_MAX_PER_S: f64 = 100_000.0;

#[derive(Args, Debug)]
pub struct ClientArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Send batches of unique integers at a bounded rate.
    Producer(ProducerArgs),
    /// Assign partitions, poll them from the leaders, commit after each poll.
    Consumer(ConsumerArgs),
    /// Read every partition from offset 0 up to its target (the final phase).
    Drain(DrainArgs),
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// The logical process id this client records its ops under.
    #[arg(long)]
    process: u64,
    /// Node URLs, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    bootstrap: Vec<String>,
    #[arg(long)]
    topic: String,
    /// Per-request timeout, milliseconds.
    #[arg(long, default_value_t = 3_000)]
    request_timeout_ms: u64,
    /// After an `info` op the client goes on as `process + stride`, as
    /// Jepsen's worker does (process + concurrency): the unknown op may
    /// still be in flight, so it is concurrent with everything after it.
    /// 0 keeps the id.
    #[arg(long, default_value_t = 0)]
    process_stride: u64,
}

#[derive(Args, Debug)]
struct ProducerArgs {
    #[command(flatten)]
    common: Common,
    /// Partitions of the topic; each send picks one.
    #[arg(long)]
    partitions: u32,
    /// Sends per second of this process.
    #[arg(long)]
    rate: f64,
    /// Values per send (one broker batch) in sync mode.
    #[arg(long, default_value_t = 1)]
    records_per_send: u32,
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, action = clap::ArgAction::Set)]
    idempotence: bool,
    #[arg(long, default_value_t = 10_000)]
    delivery_timeout_ms: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// `sync` awaits each send; `callback` and `fire-and-forget` enqueue
    /// into the accumulator (recorded as `enqueue` ops) and record each
    /// batch's send when it is sent and when its callback fires.
    #[arg(long, value_enum, default_value_t = crate::run::ProducerMode::Sync)]
    mode: crate::run::ProducerMode,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// `batch.size`, bytes.
    #[arg(long, default_value_t = 16_384)]
    batch_size: usize,
    /// `buffer.memory`, bytes.
    #[arg(long, default_value_t = 33_554_432)]
    buffer_memory: usize,
    #[arg(long, default_value_t = 60_000)]
    max_block_ms: u64,
    #[arg(long, default_value_t = i32::MAX as u32)]
    retries: u32,
    /// Batches in flight per partition (async modes; sync has one).
    #[arg(long, default_value_t = 1)]
    max_in_flight: usize,
}

#[derive(Args, Debug)]
struct ConsumerArgs {
    #[command(flatten)]
    common: Common,
    /// The partitions this consumer owns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    owned: Vec<u32>,
    #[arg(long)]
    group: String,
    #[arg(long, value_enum, default_value_t = crate::run::CommitStrategy::AfterProcess)]
    commit: crate::run::CommitStrategy,
    #[arg(long, default_value_t = 5_000)]
    auto_commit_interval_ms: u64,
    #[arg(long, value_enum, default_value_t = crate::run::Processing::Inline)]
    processing: crate::run::Processing,
    /// This slot's sink database (made by the harness); none: no processing.
    #[arg(long)]
    sink_path: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = crate::run::OnSinkError::Retry)]
    on_sink_error: crate::run::OnSinkError,
    #[arg(long, value_enum, default_value_t = crate::run::OffsetReset::Earliest)]
    auto_offset_reset: crate::run::OffsetReset,
    /// The application's own work per batch, before the sink write.
    #[arg(long, default_value_t = 0)]
    process_time_ms: u64,
}

#[derive(Args, Debug)]
struct DrainArgs {
    #[command(flatten)]
    common: Common,
    /// `partition=end_offset`, comma-separated. The drain op is recorded
    /// under `--process`, its polls under `--process + 1`.
    #[arg(long, value_delimiter = ',', required = true)]
    targets: Vec<String>,
    /// Bound on the whole drain, milliseconds.
    #[arg(long, default_value_t = 20_000)]
    deadline_ms: u64,
}

pub fn main(args: ClientArgs) -> ExitCode {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("building the tokio runtime");
    let stop = Arc::new(AtomicBool::new(false));
    watch_stdin(stop.clone());
    let result = runtime.block_on(async {
        match args.role {
            Role::Producer(a) => produce(a, &stop).await,
            Role::Consumer(a) => consume(a, &stop).await,
            Role::Drain(a) => drain(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline client: {e:#}");
            ExitCode::from(255)
        }
    }
}

/// Sets `stop` when stdin has a line or closes: the harness's graceful stop.
fn watch_stdin(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        stop.store(true, Ordering::SeqCst);
    });
}

/// Writes one event line; a closed stdout means the harness is gone, and
/// nobody records what this process does any more.
fn emit(process: u64, op_type: OpType, f: &str, value: OpValue, error: Option<String>, is_final: bool) {
    let op = Op {
        index: 0,
        time_ns: monotonic_ns(),
        process: Process::Client(process),
        invoke_index: None,
        op_type,
        f: f.into(),
        value,
        error,
        node: None,
        is_final,
    };
    let mut line = serde_json::to_vec(&op).expect("ops serialize");
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    if out.write_all(&line).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn null() -> OpValue {
    OpValue::Other(serde_json::Value::Null)
}

fn part_name(topic: &str, p: u32) -> String {
    format!("{topic}/{p}")
}

/// A record value as the history knows it: integers stay integers.
pub(crate) fn record_value(text: &str) -> RecordValue {
    text.parse().map(RecordValue::Int).unwrap_or_else(|_| RecordValue::Str(text.to_string()))
}

/// splitmix64: a seeded choice of partitions, reproducible from `--seed`.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// This client's process ids: `first, first + stride, ...`. Each logical
/// thread (the application loop, each in-flight slot of a partition, a
/// queue worker) takes one, and takes a new one after an `info` op, so no
/// id ever has two ops open.
#[derive(Clone)]
struct Ids(Arc<std::sync::Mutex<(u64, u64)>>);

impl Ids {
    fn new(first: u64, stride: u64) -> Ids {
        Ids(Arc::new(std::sync::Mutex::new((first, stride))))
    }

    /// The next unused id. With stride 0 (one logical thread) the id is kept.
    fn take(&self) -> u64 {
        let mut g = self.0.lock().unwrap();
        let id = g.0;
        g.0 += g.1;
        id
    }
}

/// Bare values of one partition: a send or enqueue invoke's value.
fn bare(name: &str, values: &[i64]) -> SendValue {
    SendValue {
        records: PartMap(vec![(
            name.to_string(),
            values.iter().map(|&v| SendRecord { offset: None, value: RecordValue::Int(v) }).collect(),
        )]),
        atomic: None,
    }
}

/// A send's completion as the history records it (R1.10).
fn send_completion(
    acks: Acks,
    name: &str,
    values: &[i64],
    outcome: &SendOutcome,
) -> (OpType, SendValue, Option<String>) {
    match outcome {
        SendOutcome::Acked { .. } if acks == Acks::None => {
            (OpType::Info, bare(name, values), Some("acks=0: never acknowledged".to_string()))
        }
        SendOutcome::Acked { base_offset: Some(base), .. } if *base >= 0 => {
            let recs = values
                .iter()
                .enumerate()
                .map(|(i, &v)| SendRecord { offset: Some(*base as u64 + i as u64), value: RecordValue::Int(v) })
                .collect();
            (OpType::Ok, SendValue { records: PartMap(vec![(name.to_string(), recs)]), atomic: None }, None)
        }
        SendOutcome::Acked { .. } => {
            (OpType::Info, bare(name, values), Some("acknowledged without a base offset".to_string()))
        }
        SendOutcome::Failed { error, .. } => (OpType::Fail, bare(name, values), Some(error.clone())),
        SendOutcome::Unknown { error, .. } => (OpType::Info, bare(name, values), Some(error.clone())),
    }
}

/// Records the accumulator's batches as `send` ops, one logical process per
/// (partition, in-flight slot), as the history format asks.
struct SendRecorder {
    topic: String,
    acks: Acks,
    ids: Ids,
    lanes: std::sync::Mutex<std::collections::HashMap<(u32, usize), u64>>,
}

impl SendRecorder {
    fn values(b: &BatchInfo) -> Vec<i64> {
        b.values.iter().map(|v| v.parse().unwrap_or(-1)).collect()
    }
}

impl BatchObserver for SendRecorder {
    fn sending(&self, b: &BatchInfo) {
        let lane = *self.lanes.lock().unwrap().entry((b.partition, b.slot)).or_insert_with(|| self.ids.take());
        let name = part_name(&self.topic, b.partition);
        emit(lane, OpType::Invoke, "send", OpValue::Send(bare(&name, &Self::values(b))), None, false);
    }

    fn done(&self, b: &BatchInfo, outcome: &SendOutcome) {
        let mut lanes = self.lanes.lock().unwrap();
        let lane = *lanes.get(&(b.partition, b.slot)).expect("sending came first");
        let name = part_name(&self.topic, b.partition);
        let (op_type, value, error) = send_completion(self.acks, &name, &Self::values(b), outcome);
        emit(lane, op_type, "send", OpValue::Send(value), error, false);
        if op_type == OpType::Info {
            lanes.insert((b.partition, b.slot), self.ids.take());
        }
    }
}

async fn produce(a: ProducerArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    let acks = Acks::parse(&a.acks).ok_or_else(|| anyhow!("--acks {}: expected 0, 1 or all", a.acks))?;
    anyhow::ensure!(a.rate > 0.0 && a.rate <= RATE_MAX_PER_S, "--rate {}: must be in (0, {RATE_MAX_PER_S}]", a.rate);
    anyhow::ensure!(a.partitions > 0 && a.records_per_send > 0, "--partitions and --records-per-send must be positive");
    let cluster =
        Arc::new(ClusterClient::new(a.common.bootstrap.clone(), Duration::from_millis(a.common.request_timeout_ms)));
    let config = ProducerConfig {
        acks,
        retries: a.retries,
        request_timeout_ms: a.common.request_timeout_ms,
        delivery_timeout_ms: a.delivery_timeout_ms,
        enable_idempotence: Some(a.idempotence),
        // One logical process per (partition, in-flight slot).
        max_in_flight: a.max_in_flight,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(cluster, config).context("producer settings")?);
    let ids = Ids::new(a.common.process, a.common.process_stride);
    let async_producer = match a.mode {
        crate::run::ProducerMode::Sync => None,
        _ => {
            anyhow::ensure!(
                a.common.process_stride > 0,
                "--mode {:?} needs --process-stride > 0 (one process id per in-flight slot)",
                a.mode
            );
            let recorder = Arc::new(SendRecorder {
                topic: a.common.topic.clone(),
                acks,
                ids: ids.clone(),
                lanes: Default::default(),
            });
            let acc = AccumulatorConfig {
                linger_ms: a.linger_ms,
                batch_size: a.batch_size,
                buffer_memory: a.buffer_memory,
                max_block_ms: a.max_block_ms,
            };
            Some(AsyncProducer::new(producer.clone(), acc, Some(recorder)).context("producer settings")?)
        }
    };
    let mut process = ids.take();
    // Values come from the id the process started with, which no other
    // process ever has, so they stay unique across id changes.
    let value_base = a.common.process as i64 * VALUE_SPACE;
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let mut rng = a.seed ^ process.wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut counter: i64 = 0;
    let mut next = tokio::time::Instant::now();
    // Bounded by the harness's stop (stdin), and by the harness's SIGKILL
    // when a stop is not honoured within its grace.
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep_until(next).await;
        let now = tokio::time::Instant::now();
        // Fixed schedule without catch-up bursts after a slow send.
        next = (next + interval).max(now);
        let partition = (next_random(&mut rng) % a.partitions as u64) as u32;
        let name = part_name(&a.common.topic, partition);
        if let Some(ap) = &async_producer {
            counter += 1;
            let v = value_base + counter;
            emit(process, OpType::Invoke, "enqueue", OpValue::Send(bare(&name, &[v])), None, false);
            let record = ProduceRecord { key: None, value: v.to_string(), timestamp: None };
            match ap.send(&a.common.topic, partition, record).await {
                // The application does not wait for the callback; the recorder notes it.
                Ok(_delivery) => emit(process, OpType::Ok, "enqueue", OpValue::Send(bare(&name, &[v])), None, false),
                Err(e) => {
                    emit(process, OpType::Fail, "enqueue", OpValue::Send(bare(&name, &[v])), Some(e.to_string()), false)
                }
            }
            continue;
        }
        let values: Vec<i64> = (0..a.records_per_send)
            .map(|_| {
                counter += 1;
                value_base + counter
            })
            .collect();
        emit(process, OpType::Invoke, "send", OpValue::Send(bare(&name, &values)), None, false);
        let records =
            values.iter().map(|v| ProduceRecord { key: None, value: v.to_string(), timestamp: None }).collect();
        let outcome = producer.send(&a.common.topic, partition, records).await;
        let (op_type, value, error) = send_completion(acks, &name, &values, &outcome);
        emit(process, op_type, "send", OpValue::Send(value), error, false);
        if op_type == OpType::Info {
            process = ids.take();
        }
    }
    if let Some(ap) = &async_producer {
        // A graceful close sends what is buffered (Kafka's close()), bounded.
        let bound = Duration::from_millis(a.delivery_timeout_ms + a.linger_ms) + CLOSE_SLACK;
        if !ap.flush(bound).await {
            eprintln!(
                "faultline client: producer {}: {} records still outstanding after {bound:?}",
                a.common.process,
                ap.outstanding()
            );
        }
    }
    Ok(())
}

/// Whether an error may hide a request that took effect.
fn indefinite(e: &ClientError) -> bool {
    e.code().is_none()
}

/// Follows the group coordinator: asks the known coordinator or a bootstrap
/// node, and moves to the node a `NOT_COORDINATOR` names.
struct Coordinator {
    cluster: ClusterClient,
    address: Option<String>,
    group: String,
}

impl Coordinator {
    fn pick(&self, attempt: u32) -> Client {
        let boot = self.cluster.bootstrap();
        let address = self.address.clone().unwrap_or_else(|| boot[attempt as usize % boot.len()].clone());
        self.cluster.node(&address)
    }

    fn learn(&mut self, e: &ClientError) {
        match e {
            ClientError::Api { body, .. }
                if body.error == ErrorCode::NotCoordinator && body.leader_address.is_some() =>
            {
                self.address = body.leader_address.clone();
            }
            _ => self.address = None,
        }
    }

    /// The group's committed offsets (a read: retried freely).
    async fn committed(&mut self) -> Result<Vec<OffsetCommit>, ClientError> {
        let mut last = None;
        for attempt in 0..COORDINATOR_ATTEMPTS_MAX {
            match self.pick(attempt).committed_offsets(&self.group).await {
                Ok(r) => return Ok(r.offsets),
                Err(e) => {
                    self.learn(&e);
                    last = Some(e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Commits; `Err((error, maybe_applied))` when no attempt succeeded.
    async fn commit(&mut self, req: &OffsetCommitRequest) -> Result<(), (ClientError, bool)> {
        let (mut last, mut maybe) = (None, false);
        for attempt in 0..COORDINATOR_ATTEMPTS_MAX {
            match self.pick(attempt).commit_offsets(&self.group, req).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    maybe |= indefinite(&e);
                    self.learn(&e);
                    last = Some(e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        Err((last.expect("at least one attempt"), maybe))
    }
}

fn fetched_pairs(records: &[FetchedRecord]) -> Vec<(u64, RecordValue)> {
    records.iter().map(|r| (r.offset.max(0) as u64, record_value(&r.value))).collect()
}

/// One consumer's downstream processing: writes records into its sink, one
/// transaction per batch, recorded as `process` ops.
struct Processor {
    sink: Option<Arc<std::sync::Mutex<Sink>>>,
    on_error: OnSinkError,
    work: Duration,
}

impl Processor {
    /// Processes one partition's records under process `pid`: ok once the
    /// sink's transaction committed. On a sink error, `skip` gives the
    /// records up and `retry` tries again (bounded).
    async fn process(&self, pid: u64, name: &str, records: Vec<(u64, RecordValue)>) -> anyhow::Result<()> {
        let Some(sink) = &self.sink else { return Ok(()) };
        if records.is_empty() {
            return Ok(());
        }
        let value = || OpValue::Poll(PollValue { records: PartMap(vec![(name.to_string(), records.clone())]) });
        tokio::time::sleep(self.work).await;
        for attempt in 1..=SINK_ATTEMPTS_MAX {
            emit(pid, OpType::Invoke, "process", value(), None, false);
            let (sink, part, recs) = (sink.clone(), name.to_string(), records.clone());
            let result = tokio::task::spawn_blocking(move || sink.lock().unwrap().write(&part, &recs))
                .await
                .context("the sink task panicked")?;
            match result {
                Ok(_) => {
                    emit(pid, OpType::Ok, "process", value(), None, false);
                    return Ok(());
                }
                Err(e) => {
                    emit(pid, OpType::Fail, "process", value(), Some(e.to_string()), false);
                    if self.on_error == OnSinkError::Skip {
                        return Ok(());
                    }
                    if attempt < SINK_ATTEMPTS_MAX {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
        bail!("the sink refused {name}'s records {SINK_ATTEMPTS_MAX} times; giving up")
    }
}

/// Records of one partition handed from the poll loop to the queue worker.
struct Handoff {
    index: usize,
    records: Vec<(u64, RecordValue)>,
}

async fn consume(a: ConsumerArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    use crate::run::{CommitStrategy, Processing};
    let ids = Ids::new(a.common.process, a.common.process_stride);
    let mut process = ids.take();
    let topic = a.common.topic.clone();
    let timeout = Duration::from_millis(a.common.request_timeout_ms);
    let cluster = ClusterClient::new(a.common.bootstrap.clone(), timeout);
    let mut coordinator = Coordinator {
        cluster: ClusterClient::new(a.common.bootstrap.clone(), timeout),
        address: None,
        group: a.group.clone(),
    };
    let names: Vec<String> = a.owned.iter().map(|&p| part_name(&topic, p)).collect();
    let sink = match &a.sink_path {
        Some(path) => Some(Arc::new(std::sync::Mutex::new(Sink::open(path)?))),
        None => None,
    };
    let processor =
        Arc::new(Processor { sink, on_error: a.on_sink_error, work: Duration::from_millis(a.process_time_ms) });
    // Per owned partition, the offset after the last processed record.
    let processed = Arc::new(std::sync::Mutex::new(vec![0i64; a.owned.len()]));
    // The queue hand-off: a bounded channel drained by a worker task, which
    // is its own logical process.
    let (queue_tx, worker) = if a.processing == Processing::Queue {
        anyhow::ensure!(
            a.common.process_stride > 0,
            "--processing queue needs --process-stride > 0 (the worker has its own process id)"
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Handoff>(QUEUE_BATCHES_MAX);
        let (processor, processed, names, worker_id) =
            (processor.clone(), processed.clone(), names.clone(), ids.take());
        let worker = tokio::spawn(async move {
            // Bounded by the channel: it ends when the poll loop drops its sender.
            while let Some(h) = rx.recv().await {
                let next = h.records.last().map(|(o, _)| *o as i64 + 1);
                processor.process(worker_id, &names[h.index], h.records).await?;
                if let Some(next) = next {
                    let mut p = processed.lock().unwrap();
                    p[h.index] = p[h.index].max(next);
                }
            }
            anyhow::Ok(())
        });
        (Some(tx), Some(worker))
    } else {
        (None, None)
    };
    let auto_interval = Duration::from_millis(a.auto_commit_interval_ms);
    let mut positions: Vec<i64> = Vec::new();
    let mut committed: Vec<i64> = Vec::new();
    // Assign, then poll, process and commit until stopped; an `info` commit
    // ends the logical process, and the next one assigns afresh. These
    // loops are bounded by the harness's stop, as the producer's.
    'assign: while !stop.load(Ordering::SeqCst) {
        // Assign: positions from the group's committed offsets.
        positions = loop {
            if stop.load(Ordering::SeqCst) {
                break 'assign;
            }
            let value = OpValue::Assign(AssignValue { partitions: names.clone(), seek: Seek::Committed });
            emit(process, OpType::Invoke, "assign", value, None, false);
            let committed = coordinator.committed().await;
            // auto.offset.reset=latest: partitions without a committed offset start at their end.
            let ends = match (&committed, a.auto_offset_reset) {
                (Ok(offsets), crate::run::OffsetReset::Latest)
                    if a.owned.iter().any(|&p| !offsets.iter().any(|o| o.topic == topic && o.partition == p)) =>
                {
                    cluster
                        .refresh(&topic)
                        .await
                        .map(|d| d.partitions.iter().map(|x| (x.partition, x.high_watermark)).collect::<Vec<_>>())
                        .map_err(|e| format!("reading end offsets: {e}"))
                }
                _ => Ok(Vec::new()),
            };
            match (committed, ends) {
                (Ok(offsets), Ok(ends)) => {
                    emit(process, OpType::Ok, "assign", null(), None, false);
                    let reset = |p: u32| ends.iter().find(|(x, _)| *x == p).map_or(0, |(_, end)| *end);
                    let at = |p: u32| {
                        offsets
                            .iter()
                            .find(|o| o.topic == topic && o.partition == p)
                            .map_or_else(|| reset(p), |o| o.offset)
                    };
                    break a.owned.iter().map(|&p| at(p)).collect();
                }
                (_, Err(e)) => {
                    emit(process, OpType::Fail, "assign", null(), Some(e), false);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                (Err(e), _) => {
                    emit(
                        process,
                        OpType::Fail,
                        "assign",
                        null(),
                        Some(format!("reading committed offsets: {e}")),
                        false,
                    );
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        };
        committed = positions.clone();
        *processed.lock().unwrap() = positions.clone();
        let mut last_auto_commit = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            // Kafka's poll() auto-commits first: the positions returned by
            // earlier polls, whether or not they were processed (R5.3).
            if a.commit == CommitStrategy::Auto && last_auto_commit.elapsed() >= auto_interval && positions != committed
            {
                last_auto_commit = Instant::now();
                let at = positions.clone();
                if !commit(&a, &names, &mut coordinator, &mut process, &ids, &at, &mut committed).await {
                    continue 'assign;
                }
            }
            emit(process, OpType::Invoke, "poll", null(), None, false);
            let (mut got, mut errors) = (Vec::new(), Vec::new());
            for (i, &p) in a.owned.iter().enumerate() {
                let req = FetchRequest {
                    offset: positions[i],
                    max_records: Some(POLL_RECORDS_MAX),
                    max_bytes: None,
                    max_wait_ms: Some(POLL_WAIT_MS),
                };
                match cluster.fetch(&topic, p, &req).await {
                    Ok(resp) => {
                        if let Some(last) = resp.records.last() {
                            positions[i] = last.offset + 1;
                            got.push((i, fetched_pairs(&resp.records)));
                        }
                    }
                    Err(e) => errors.push(format!("{}: {e}", names[i])),
                }
            }
            if errors.len() == a.owned.len() {
                // Nothing was read, so no position moved: a definite failure.
                emit(process, OpType::Fail, "poll", null(), Some(errors.join("; ")), false);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            let read = PartMap(got.iter().map(|(i, r)| (names[*i].clone(), r.clone())).collect());
            emit(process, OpType::Ok, "poll", OpValue::Poll(PollValue { records: read }), None, false);
            if a.commit == CommitStrategy::BeforeProcess && positions != committed {
                let at = positions.clone();
                if !commit(&a, &names, &mut coordinator, &mut process, &ids, &at, &mut committed).await {
                    continue 'assign;
                }
            }
            for (i, records) in got {
                match &queue_tx {
                    Some(tx) => {
                        tx.send(Handoff { index: i, records }).await.map_err(|_| anyhow!("the queue worker stopped"))?
                    }
                    None => {
                        let next = records.last().map(|(o, _)| *o as i64 + 1);
                        processor.process(process, &names[i], records).await?;
                        if let Some(next) = next {
                            let mut p = processed.lock().unwrap();
                            p[i] = p[i].max(next);
                        }
                    }
                }
            }
            if a.commit == CommitStrategy::AfterProcess {
                let at = processed.lock().unwrap().clone();
                if at != committed
                    && !commit(&a, &names, &mut coordinator, &mut process, &ids, &at, &mut committed).await
                {
                    continue 'assign;
                }
            }
        }
    }
    // A graceful close: the worker finishes what the queue holds, then the
    // consumer commits (Kafka's close() commits with auto-commit; manual
    // committers commit what they processed).
    drop(queue_tx);
    if let Some(w) = worker {
        match tokio::time::timeout(WORKER_DRAIN_BOUND, w).await {
            Ok(r) => r.context("the queue worker panicked")??,
            Err(_) => bail!("the queue worker did not drain within {WORKER_DRAIN_BOUND:?}"),
        }
    }
    if positions.is_empty() {
        return Ok(());
    }
    let at = match a.commit {
        CommitStrategy::Auto | CommitStrategy::BeforeProcess => positions.clone(),
        CommitStrategy::AfterProcess => processed.lock().unwrap().clone(),
    };
    if at != committed {
        commit(&a, &names, &mut coordinator, &mut process, &ids, &at, &mut committed).await;
    }
    Ok(())
}

/// Commits `at` for the owned partitions as a `commit` op. Returns `false`
/// when the outcome is unknown: the logical process then ends (the next
/// one assigns afresh from the committed offsets).
async fn commit(
    a: &ConsumerArgs,
    names: &[String],
    coordinator: &mut Coordinator,
    process: &mut u64,
    ids: &Ids,
    at: &[i64],
    committed: &mut Vec<i64>,
) -> bool {
    let offsets: Vec<(String, u64)> = names.iter().cloned().zip(at.iter().map(|&o| o.max(0) as u64)).collect();
    emit(
        *process,
        OpType::Invoke,
        "commit",
        OpValue::Commit(CommitValue { group: a.group.clone(), offsets: PartMap(offsets) }),
        None,
        false,
    );
    let req = OffsetCommitRequest {
        offsets: a
            .owned
            .iter()
            .zip(at)
            .map(|(&partition, &offset)| OffsetCommit {
                topic: a.common.topic.clone(),
                partition,
                offset,
                metadata: None,
            })
            .collect(),
    };
    match coordinator.commit(&req).await {
        Ok(()) => {
            *committed = at.to_vec();
            emit(*process, OpType::Ok, "commit", null(), None, false);
            true
        }
        Err((e, false)) => {
            emit(*process, OpType::Fail, "commit", null(), Some(e.to_string()), false);
            true
        }
        Err((e, true)) => {
            emit(*process, OpType::Info, "commit", null(), Some(e.to_string()), false);
            if a.common.process_stride > 0 {
                *process = ids.take();
                return false;
            }
            true
        }
    }
}

async fn drain(a: DrainArgs) -> anyhow::Result<()> {
    let topic = a.common.topic.clone();
    let mut targets: Vec<(u32, i64)> = Vec::new();
    for t in &a.targets {
        let (p, o) = t.split_once('=').ok_or_else(|| anyhow!("--targets {t:?}: expected partition=offset"))?;
        targets.push((p.parse().context("partition")?, o.parse().context("offset")?));
    }
    let (drainer, poller) = (a.common.process, a.common.process + 1);
    let cluster = ClusterClient::new(a.common.bootstrap.clone(), Duration::from_millis(a.common.request_timeout_ms));
    let goal = DrainTargets {
        targets: PartMap(targets.iter().map(|&(p, o)| (part_name(&topic, p), o.max(0) as u64)).collect()),
    };
    emit(drainer, OpType::Invoke, "drain", OpValue::DrainTargets(goal), None, true);
    let deadline = Instant::now() + Duration::from_millis(a.deadline_ms);
    let mut complete = Vec::new();
    for &(p, target) in &targets {
        let name = part_name(&topic, p);
        let mut position = 0i64;
        // Bounded by the deadline: every round either advances or pauses.
        while position < target && Instant::now() < deadline {
            emit(poller, OpType::Invoke, "poll", null(), None, true);
            let req = FetchRequest {
                offset: position,
                max_records: Some(DRAIN_RECORDS_MAX),
                max_bytes: None,
                max_wait_ms: Some(0),
            };
            match cluster.fetch(&topic, p, &req).await {
                Ok(resp) => {
                    if let Some(last) = resp.records.last() {
                        position = last.offset + 1;
                    }
                    let records = PartMap(vec![(name.clone(), fetched_pairs(&resp.records))]);
                    emit(poller, OpType::Ok, "poll", OpValue::Poll(PollValue { records }), None, true);
                    if resp.records.is_empty() {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
                Err(e) => {
                    emit(poller, OpType::Fail, "poll", null(), Some(e.to_string()), true);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        complete.push((name, position >= target));
    }
    emit(
        drainer,
        OpType::Ok,
        "drain",
        OpValue::DrainComplete(DrainComplete { complete: PartMap(complete) }),
        None,
        true,
    );
    Ok(())
}
