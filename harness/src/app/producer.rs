//! The producer application: sends unique integers at a bounded rate,
//! synchronously (one `send` op per send) or through Kafka's accumulator
//! (`enqueue` ops per record, and `send` ops per batch under one logical
//! process per partition and in-flight slot).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use faultline_checker::modes::{Acks, ProducerMode};
use faultline_checker::op::{F, Op, OpType, OpValue};
use faultline_client::api::{Acks as WireAcks, ProduceRecord};
use faultline_client::{
    AccumulatorConfig, AsyncProducer, BatchInfo, BatchObserver, ClusterClient, EnqueueError, Producer, ProducerConfig,
    SendOutcome,
};
use parking_lot::Mutex;

use super::record::{Ids, SendError, bare, emit, part_name, send_completion};
use super::spec::{ClientSpec, ProducerSpec};

/// Values of process `p` are `p * VALUE_SPACE + counter`: unique across
/// processes, so unique per partition, and plain JSON integers.
pub const VALUE_SPACE: i64 = 1_000_000_000;
/// Extra time a closing producer gives its last batches beyond their delivery timeout.
pub const CLOSE_SLACK: Duration = Duration::from_secs(1);
/// Highest accepted send rate of one process, sends per second.
const RATE_MAX_PER_S: f64 = 100_000.0;

/// The wire's acks for the run's.
pub fn wire_acks(acks: Acks) -> WireAcks {
    match acks {
        Acks::Zero => WireAcks::None,
        Acks::One => WireAcks::Leader,
        Acks::All => WireAcks::All,
    }
}

/// An enqueue error's machine-readable name.
fn enqueue_error_code(e: &EnqueueError) -> &'static str {
    match e {
        EnqueueError::BufferFull(_) => "max.block.ms",
        EnqueueError::TooLarge { .. } => "buffer.memory",
        EnqueueError::Config { setting, .. } => setting,
    }
}

/// splitmix64: a seeded choice of partitions, reproducible from the seed.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Records the accumulator's batches as `send` ops, one logical process per
/// (partition, in-flight slot), as the history format asks.
struct SendRecorder {
    topic: String,
    acks: WireAcks,
    ids: Ids,
    lanes: Mutex<HashMap<(u32, usize), u64>>,
}

impl SendRecorder {
    fn values(b: &BatchInfo) -> Vec<i64> {
        b.values.iter().map(|v| v.parse().unwrap_or(-1)).collect()
    }
}

impl BatchObserver for SendRecorder {
    fn sending(&self, b: &BatchInfo) {
        let lane = *self.lanes.lock().entry((b.partition, b.slot)).or_insert_with(|| self.ids.take());
        let name = part_name(&self.topic, b.partition);
        emit(Op::invoke(lane, F::Send, OpValue::Send(bare(&name, &Self::values(b)))));
    }

    fn done(&self, b: &BatchInfo, outcome: &SendOutcome) {
        let mut lanes = self.lanes.lock();
        let lane = *lanes.get(&(b.partition, b.slot)).expect("sending came first");
        let name = part_name(&self.topic, b.partition);
        let (op_type, value, error) = send_completion(self.acks, &name, &Self::values(b), outcome);
        emit(SendError::on(Op::complete(op_type, lane, F::Send, OpValue::Send(value)), error));
        if op_type == OpType::Info {
            lanes.insert((b.partition, b.slot), self.ids.take());
        }
    }
}

/// Everything a producer process uses while it runs.
struct Running {
    topic: String,
    partitions: u32,
    acks: WireAcks,
    producer: Arc<Producer>,
    accumulator: Option<AsyncProducer>,
    ids: Ids,
    process: u64,
}

/// The checks every producer application makes of its spec.
pub fn check_spec(c: &ClientSpec, a: &ProducerSpec) -> anyhow::Result<()> {
    anyhow::ensure!(a.rate > 0.0 && a.rate <= RATE_MAX_PER_S, "rate {}: must be in (0, {RATE_MAX_PER_S}]", a.rate);
    anyhow::ensure!(a.partitions > 0 && a.records_per_send > 0, "partitions and records_per_send must be positive");
    anyhow::ensure!(
        a.mode == ProducerMode::Sync || c.process_stride > 0,
        "producer mode {} needs a process stride > 0 (one process id per send in flight)",
        a.mode
    );
    Ok(())
}

/// The seeded partition choice of producer process `process`.
pub fn partition_rng(a: &ProducerSpec, process: u64) -> u64 {
    a.seed ^ process.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

pub async fn produce(c: &ClientSpec, a: &ProducerSpec, stop: &AtomicBool) -> anyhow::Result<()> {
    check_spec(c, a)?;
    let mut run = start(c, a)?;
    // Values come from the id the process started with, which no other
    // process ever has, so they stay unique across id changes.
    let value_base = c.process as i64 * VALUE_SPACE;
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let mut rng = partition_rng(a, run.process);
    let mut counter: i64 = 0;
    let mut next = tokio::time::Instant::now();
    // Bounded by the harness's stop (stdin), and by the harness's SIGKILL
    // when a stop is not honoured within its grace.
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep_until(next).await;
        // Fixed schedule without catch-up bursts after a slow send.
        next = (next + interval).max(tokio::time::Instant::now());
        let partition = (next_random(&mut rng) % u64::from(run.partitions)) as u32;
        if run.accumulator.is_some() {
            counter += 1;
            run.enqueue(partition, value_base + counter).await;
            continue;
        }
        let values: Vec<i64> = (0..a.records_per_send)
            .map(|_| {
                counter += 1;
                value_base + counter
            })
            .collect();
        run.send(partition, values).await;
    }
    if let Some(acc) = &run.accumulator {
        // A graceful close sends what is buffered (Kafka's close()), bounded.
        let bound = Duration::from_millis(a.delivery_timeout_ms + a.linger_ms) + CLOSE_SLACK;
        if !acc.flush(bound).await {
            tracing::warn!("producer {}: {} records still outstanding after {bound:?}", c.process, acc.outstanding());
        }
    }
    Ok(())
}

/// The producer, and the accumulator in front of it in async modes.
fn start(c: &ClientSpec, a: &ProducerSpec) -> anyhow::Result<Running> {
    let acks = wire_acks(a.acks);
    let cluster = Arc::new(ClusterClient::new(c.bootstrap.clone(), Duration::from_millis(c.request_timeout_ms)));
    let config = ProducerConfig {
        acks,
        retries: a.retries,
        request_timeout_ms: c.request_timeout_ms,
        delivery_timeout_ms: a.delivery_timeout_ms,
        retry_backoff_ms: a.retry_backoff_ms,
        enable_idempotence: Some(a.idempotence),
        // One logical process per (partition, in-flight slot).
        max_in_flight: a.max_in_flight,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(cluster, config).map_err(|e| anyhow::anyhow!("producer settings: {e}"))?);
    let ids = Ids::new(c.process, c.process_stride);
    let accumulator = match a.mode {
        ProducerMode::Sync => None,
        _ => {
            let recorder =
                Arc::new(SendRecorder { topic: c.topic.clone(), acks, ids: ids.clone(), lanes: Default::default() });
            let acc = AccumulatorConfig {
                linger_ms: a.linger_ms,
                batch_size: a.batch_size,
                buffer_memory: a.buffer_memory,
                max_block_ms: a.max_block_ms,
            };
            let ap = AsyncProducer::new(producer.clone(), acc, Some(recorder));
            Some(ap.map_err(|e| anyhow::anyhow!("producer settings: {e}"))?)
        }
    };
    let process = ids.take();
    Ok(Running { topic: c.topic.clone(), partitions: a.partitions, acks, producer, accumulator, ids, process })
}

impl Running {
    /// One record into the accumulator: the application does not wait for
    /// the callback; the recorder notes it.
    async fn enqueue(&mut self, partition: u32, v: i64) {
        let name = part_name(&self.topic, partition);
        let value = || OpValue::Enqueue(bare(&name, &[v]));
        emit(Op::invoke(self.process, F::Enqueue, value()));
        let record = ProduceRecord { key: None, value: v.to_string(), timestamp: None };
        let acc = self.accumulator.as_ref().expect("async mode");
        match acc.send(&self.topic, partition, record).await {
            Ok(_delivery) => emit(Op::complete(OpType::Ok, self.process, F::Enqueue, value())),
            Err(e) => {
                let op = Op::complete(OpType::Fail, self.process, F::Enqueue, value());
                emit(op.with_error(Some(enqueue_error_code(&e)), e.to_string()))
            }
        }
    }

    /// One synchronous send, awaited.
    async fn send(&mut self, partition: u32, values: Vec<i64>) {
        let name = part_name(&self.topic, partition);
        emit(Op::invoke(self.process, F::Send, OpValue::Send(bare(&name, &values))));
        let records =
            values.iter().map(|v| ProduceRecord { key: None, value: v.to_string(), timestamp: None }).collect();
        let outcome = self.producer.send(&self.topic, partition, records).await;
        let (op_type, value, error) = send_completion(self.acks, &name, &values, &outcome);
        emit(SendError::on(Op::complete(op_type, self.process, F::Send, OpValue::Send(value)), error));
        if op_type == OpType::Info {
            self.process = self.ids.take();
        }
    }
}
