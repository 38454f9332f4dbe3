//! The producer application on librdkafka: the same unique integers at the
//! same bounded rate and seeded partitions as the Rust model's, handed to
//! librdkafka one record at a time (`produce()` with an explicit partition).
//!
//! Every record is a `send` op of its own, invoked just before `produce()`
//! and completed by the record's delivery report, under a logical process
//! taken from a pool (returned after `ok` or `fail`, retired after `info`),
//! so no process ever has two ops open however many records librdkafka
//! holds. In `callback` and `fire-and-forget` modes `produce()` itself is
//! also an `enqueue` op of the application's process; in `sync` mode the
//! application waits for each record's report before the next send. The
//! recorder logs every report in every mode: the history shows what
//! librdkafka said, whatever the application did with it.
//!
//! A report's outcome follows R1.10 with librdkafka's own persistence
//! status (`rd_kafka_message_status`): an error with `NOT_PERSISTED` is a
//! `fail` (librdkafka knows no attempt reached a broker's log), any other
//! error is `info`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checker::modes::{Acks, ProducerMode};
use faultline_checker::op::{F, Op, OpType, OpValue};
use faultline_client::SendOutcome;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::bindings::{rd_kafka_message_status, rd_kafka_msg_status_t};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::config;
use super::errors::kafka_error_code;
use crate::app::producer::{CLOSE_SLACK, VALUE_SPACE, check_spec, next_random, partition_rng, wire_acks};
use crate::app::record::{Ids, SendError, bare, emit, part_name, send_completion};
use crate::app::spec::{ClientSpec, ProducerSpec};

/// Pause between two attempts to enqueue into a full librdkafka queue.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);

/// Process ids for sends in flight: reused after `ok` or `fail`, never
/// after `info` (the send may still be in flight, so it stays open).
struct Lanes {
    ids: Ids,
    free: Mutex<Vec<u64>>,
}

impl Lanes {
    fn take(&self) -> u64 {
        self.free.lock().pop().unwrap_or_else(|| self.ids.take())
    }

    fn give_back(&self, id: u64) {
        self.free.lock().push(id);
    }
}

/// What a record's delivery report needs: its lane, value, and whom to wake.
struct Pending {
    lane: u64,
    partition: u32,
    value: i64,
    waiter: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Records every delivery report as its send's completion.
struct Reporter {
    topic: String,
    acks: Acks,
    lanes: Arc<Lanes>,
}

impl ClientContext for Reporter {}

impl ProducerContext for Reporter {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, p: Box<Pending>) {
        let name = part_name(&self.topic, p.partition);
        let outcome = outcome(result);
        let (op_type, value, error) = send_completion(wire_acks(self.acks), &name, &[p.value], &outcome);
        emit(SendError::on(Op::complete(op_type, p.lane, F::Send, OpValue::Send(value)), error));
        if op_type != OpType::Info {
            self.lanes.give_back(p.lane);
        }
        if let Some(w) = p.waiter {
            let _ = w.send(());
        }
    }
}

/// A delivery report as the Rust model's outcome, so both record alike.
fn outcome(result: &DeliveryResult<'_>) -> SendOutcome {
    match result {
        Ok(m) => SendOutcome::Acked { base_offset: Some(m.offset()), attempts: 1 },
        Err((e, m)) => {
            // SAFETY: the message is valid for the callback's duration.
            let status = unsafe { rd_kafka_message_status(m.ptr()) };
            let (error, code) = (e.to_string(), kafka_error_code(e));
            if status == rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED {
                SendOutcome::Failed { error, code, attempts: 1 }
            } else {
                SendOutcome::Unknown { error, code, attempts: 1 }
            }
        }
    }
}

/// A running producer application.
struct App<'a> {
    spec: &'a ProducerSpec,
    topic: String,
    producer: ThreadedProducer<Reporter>,
    lanes: Arc<Lanes>,
    /// The application's own process: its `enqueue` ops.
    process: u64,
}

pub async fn produce(c: &ClientSpec, a: &ProducerSpec, stop: &AtomicBool) -> anyhow::Result<()> {
    check_spec(c, a)?;
    let ids = Ids::new(c.process, c.process_stride);
    let process = ids.take();
    let lanes = Arc::new(Lanes { ids, free: Mutex::new(Vec::new()) });
    let mut settings = config::producer(a, c.request_timeout_ms, Some(&c.kafka_bootstrap));
    settings.set("client.id", format!("faultline-producer-{}", c.process));
    let reporter = Reporter { topic: c.topic.clone(), acks: a.acks, lanes: lanes.clone() };
    let producer = settings.create_with_context(reporter).context("librdkafka's producer")?;
    let app = App { spec: a, topic: c.topic.clone(), producer, lanes, process };
    let value_base = c.process as i64 * VALUE_SPACE;
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let mut rng = partition_rng(a, process);
    let mut counter: i64 = 0;
    let mut next = tokio::time::Instant::now();
    // Bounded by the harness's stop (stdin), and by its SIGKILL after the grace.
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep_until(next).await;
        next = (next + interval).max(tokio::time::Instant::now());
        let partition = (next_random(&mut rng) % u64::from(a.partitions)) as u32;
        let sends = if a.mode == ProducerMode::Sync { a.records_per_send } else { 1 };
        let values: Vec<i64> = (0..sends)
            .map(|_| {
                counter += 1;
                value_base + counter
            })
            .collect();
        match a.mode {
            ProducerMode::Sync => app.send_and_wait(partition, &values).await,
            _ => app.enqueue(partition, values[0]).await,
        }
    }
    // A graceful close delivers what is queued (librdkafka's flush), bounded.
    let bound = Duration::from_millis(a.delivery_timeout_ms + a.linger_ms) + CLOSE_SLACK;
    let producer = app.producer;
    let flushed = tokio::task::spawn_blocking(move || {
        let r = producer.flush(bound);
        (r, producer)
    })
    .await
    .context("flushing librdkafka's producer")?;
    if let Err(e) = flushed.0 {
        tracing::warn!(
            "producer {}: {} records still queued after {bound:?}: {e}",
            c.process,
            flushed.1.in_flight_count()
        );
    }
    Ok(())
}

impl App<'_> {
    /// `produce()` of one record, retried while librdkafka's queue is full
    /// for up to `max.block.ms` (what Kafka's `send` does). `Err` carries
    /// the error code and text when the record was never queued.
    async fn produce(&self, partition: u32, value: i64, pending: Box<Pending>) -> Result<(), (String, String)> {
        let payload = value.to_string();
        let mut record: BaseRecord<'_, (), String, Box<Pending>> =
            BaseRecord::with_opaque_to(&self.topic, pending).partition(partition as i32).payload(&payload);
        let deadline = Instant::now() + Duration::from_millis(self.spec.max_block_ms);
        // Bounded by max.block.ms.
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    let text = format!("librdkafka's queue stayed full for max.block.ms={}", self.spec.max_block_ms);
                    return Err(("max.block.ms".into(), text));
                }
                Err((e, _)) => return Err((kafka_error_code(&e), e.to_string())),
            }
        }
    }

    /// Opens a record's `send` op and queues it; a record that never
    /// entered the queue completes its send as `fail` at once.
    async fn send(
        &self,
        partition: u32,
        value: i64,
        waiter: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<(), (String, String)> {
        let lane = self.lanes.take();
        let name = part_name(&self.topic, partition);
        emit(Op::invoke(lane, F::Send, OpValue::Send(bare(&name, &[value]))));
        let pending = Box::new(Pending { lane, partition, value, waiter });
        let result = self.produce(partition, value, pending).await;
        if let Err((code, text)) = &result {
            let op = Op::complete(OpType::Fail, lane, F::Send, OpValue::Send(bare(&name, &[value])));
            emit(op.with_error(Some(code), text.clone()));
            self.lanes.give_back(lane);
        }
        result
    }

    /// `callback` and `fire-and-forget`: the record into librdkafka's queue,
    /// as an `enqueue` op; the report completes its send later.
    async fn enqueue(&self, partition: u32, value: i64) {
        let name = part_name(&self.topic, partition);
        let op_value = || OpValue::Enqueue(bare(&name, &[value]));
        emit(Op::invoke(self.process, F::Enqueue, op_value()));
        match self.send(partition, value, None).await {
            Ok(()) => emit(Op::complete(OpType::Ok, self.process, F::Enqueue, op_value())),
            Err((code, text)) => {
                emit(Op::complete(OpType::Fail, self.process, F::Enqueue, op_value()).with_error(Some(&code), text))
            }
        }
    }

    /// `sync`: each record queued, then every report awaited (bounded by
    /// the delivery timeout, which librdkafka enforces itself).
    async fn send_and_wait(&self, partition: u32, values: &[i64]) {
        let mut waits = Vec::new();
        for &v in values {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if self.send(partition, v, Some(tx)).await.is_ok() {
                waits.push(rx);
            }
        }
        let bound = Duration::from_millis(self.spec.delivery_timeout_ms) + CLOSE_SLACK;
        for rx in waits {
            if tokio::time::timeout(bound, rx).await.is_err() {
                tracing::warn!("no delivery report within {bound:?}");
            }
        }
    }
}
