//! Kafka's asynchronous producer: [`AsyncProducer::send`] appends a record to
//! its partition's batch in memory and returns at once; a background sender
//! task per partition sends batches when they are ready (R4.1–R4.3).
//!
//! - A batch is ready when it holds `batch.size` bytes, when a later batch
//!   exists behind it, when it has waited `linger.ms`, or when the producer
//!   is flushing.
//! - `buffer.memory` bounds the bytes of records not yet completed. When it
//!   is exhausted, `send` waits up to `max.block.ms` and then fails with
//!   [`EnqueueError::BufferFull`]: that record was never enqueued.
//! - A batch's delivery deadline (`delivery.timeout.ms`) runs from its
//!   creation, so time spent lingering and waiting counts.
//! - Sending goes through [`Producer::reserve`] and [`Producer::deliver`],
//!   which keep idempotence and retries. A retried batch keeps its place at
//!   the front of its partition: it keeps its in-flight slot, and with one
//!   slot (`max.in.flight.requests.per.connection=1`) nothing behind it is
//!   sent before it completes (Kafka's re-enqueue at the front, R4.3).
//! - Records still in memory die with the process (R4.10): that is the loss
//!   a fire-and-forget application does not see.
//!
//! A [`BatchObserver`] hears each batch when it is sent and when it
//! completes, with the in-flight slot it occupies; the harness records these
//! as `send` ops.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::api::ProduceRecord;
use crate::producer::{Producer, SendOutcome};

/// Bytes a record costs in `batch.size` and `buffer.memory` beyond its key
/// and value (Kafka's per-record framing is of this order).
pub const RECORD_OVERHEAD_BYTES: usize = 16;

/// The accumulator's settings, with Kafka's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccumulatorConfig {
    /// `linger.ms`: how long a batch that is not full waits for more records.
    pub linger_ms: u64,
    /// `batch.size`: bytes per partition batch.
    pub batch_size: usize,
    /// `buffer.memory`: bytes of records not yet completed.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` waits for buffer space.
    pub max_block_ms: u64,
}

impl Default for AccumulatorConfig {
    /// Kafka 4.0's defaults (`linger.ms` 5 since KIP-1030).
    fn default() -> AccumulatorConfig {
        AccumulatorConfig { linger_ms: 5, batch_size: 16_384, buffer_memory: 32 * 1024 * 1024, max_block_ms: 60_000 }
    }
}

/// Why a record was not enqueued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnqueueError {
    #[error("max.block.ms ({0} ms) passed waiting for buffer.memory: the record was not enqueued")]
    BufferFull(u64),
    #[error("a record of {size} bytes exceeds buffer.memory ({limit} bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("{setting}={value}: {why}")]
    Config { setting: &'static str, value: String, why: &'static str },
}

/// One batch as the observer sees it.
#[derive(Clone, Debug)]
pub struct BatchInfo {
    pub topic: String,
    pub partition: u32,
    /// The in-flight slot (0..max.in.flight) the batch occupies while sent.
    pub slot: usize,
    /// The records' values, in order.
    pub values: Vec<String>,
}

/// Hears batches being sent and completing. `sending` and `done` of one
/// batch bracket each other, and a slot is not reused before `done`.
pub trait BatchObserver: Send + Sync {
    fn sending(&self, batch: &BatchInfo);
    fn done(&self, batch: &BatchInfo, outcome: &SendOutcome);
}

/// How one record ended: its batch's outcome and, when acknowledged with
/// offsets, the record's own offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOutcome {
    pub outcome: SendOutcome,
    pub offset: Option<i64>,
}

/// The future of one enqueued record (Kafka's callback). Dropping it is
/// fine: the record is sent anyway.
pub struct Delivery(oneshot::Receiver<RecordOutcome>);

impl Delivery {
    /// Waits for the record's outcome; `None` if the producer went away.
    pub async fn outcome(self) -> Option<RecordOutcome> {
        self.0.await.ok()
    }
}

struct Batch {
    records: Vec<ProduceRecord>,
    bytes: usize,
    created: Instant,
    waiters: Vec<oneshot::Sender<RecordOutcome>>,
    /// The batch's share of `buffer.memory`, released when it completes.
    memory: Option<OwnedSemaphorePermit>,
}

struct Queue {
    batches: Mutex<VecDeque<Batch>>,
    wake: Notify,
}

struct Inner {
    producer: Arc<Producer>,
    config: AccumulatorConfig,
    delivery_timeout: Duration,
    memory: Arc<Semaphore>,
    queues: Mutex<HashMap<(String, u32), Arc<Queue>>>,
    observer: Option<Arc<dyn BatchObserver>>,
    /// Records enqueued and not yet completed.
    outstanding: watch::Sender<u64>,
    flushing: AtomicBool,
    enqueued: AtomicU64,
}

/// The asynchronous producer. Cloning shares it.
#[derive(Clone)]
pub struct AsyncProducer {
    inner: Arc<Inner>,
}

fn record_size(r: &ProduceRecord) -> usize {
    r.value.len() + r.key.as_ref().map_or(0, String::len) + RECORD_OVERHEAD_BYTES
}

impl AsyncProducer {
    /// Must be called inside a tokio runtime (sender tasks are spawned on it).
    pub fn new(
        producer: Arc<Producer>,
        config: AccumulatorConfig,
        observer: Option<Arc<dyn BatchObserver>>,
    ) -> Result<AsyncProducer, EnqueueError> {
        let bad = |setting, value: usize, why| Err(EnqueueError::Config { setting, value: value.to_string(), why });
        if config.batch_size == 0 {
            return bad("batch.size", 0, "must be at least 1");
        }
        if config.buffer_memory < config.batch_size {
            return bad("buffer.memory", config.buffer_memory, "must be at least batch.size");
        }
        if config.buffer_memory > Semaphore::MAX_PERMITS {
            return bad("buffer.memory", config.buffer_memory, "too large");
        }
        let pc = producer.config();
        if config.linger_ms + pc.request_timeout_ms > pc.delivery_timeout_ms {
            return Err(EnqueueError::Config {
                setting: "delivery.timeout.ms",
                value: pc.delivery_timeout_ms.to_string(),
                why: "must be at least linger.ms + request.timeout.ms",
            });
        }
        let delivery_timeout = Duration::from_millis(pc.delivery_timeout_ms);
        Ok(AsyncProducer {
            inner: Arc::new(Inner {
                memory: Arc::new(Semaphore::new(config.buffer_memory)),
                producer,
                config,
                delivery_timeout,
                queues: Mutex::default(),
                observer,
                outstanding: watch::channel(0).0,
                flushing: AtomicBool::new(false),
                enqueued: AtomicU64::new(0),
            }),
        })
    }

    /// Appends `record` to `topic/partition`'s batch. Waits up to
    /// `max.block.ms` for buffer space; an `Err` means the record was never
    /// enqueued.
    pub async fn send(&self, topic: &str, partition: u32, record: ProduceRecord) -> Result<Delivery, EnqueueError> {
        let inner = &self.inner;
        let size = record_size(&record);
        if size > inner.config.buffer_memory {
            return Err(EnqueueError::TooLarge { size, limit: inner.config.buffer_memory });
        }
        let wait = Duration::from_millis(inner.config.max_block_ms);
        let permit = match tokio::time::timeout(wait, inner.memory.clone().acquire_many_owned(size as u32)).await {
            Ok(Ok(p)) => p,
            _ => return Err(EnqueueError::BufferFull(inner.config.max_block_ms)),
        };
        let (tx, rx) = oneshot::channel();
        let queue = self.queue(topic, partition);
        {
            let mut batches = queue.batches.lock();
            let fits = batches.back().is_some_and(|b| b.bytes + size <= inner.config.batch_size);
            if !fits {
                batches.push_back(Batch {
                    records: Vec::new(),
                    bytes: 0,
                    created: Instant::now(),
                    waiters: Vec::new(),
                    memory: None,
                });
            }
            let b = batches.back_mut().expect("just ensured");
            b.records.push(record);
            b.bytes += size;
            b.waiters.push(tx);
            match &mut b.memory {
                Some(m) => m.merge(permit),
                None => b.memory = Some(permit),
            }
        }
        inner.outstanding.send_modify(|n| *n += 1);
        inner.enqueued.fetch_add(1, Ordering::Relaxed);
        queue.wake.notify_one();
        Ok(Delivery(rx))
    }

    /// Records enqueued so far.
    pub fn enqueued(&self) -> u64 {
        self.inner.enqueued.load(Ordering::Relaxed)
    }

    /// Records enqueued and not yet completed.
    pub fn outstanding(&self) -> u64 {
        *self.inner.outstanding.borrow()
    }

    /// Sends every batch without lingering and waits until every record
    /// enqueued so far has completed, up to `bound`; `false` if the bound
    /// passed first (Kafka's `flush()`, bounded).
    pub async fn flush(&self, bound: Duration) -> bool {
        self.inner.flushing.store(true, Ordering::SeqCst);
        for q in self.inner.queues.lock().values() {
            q.wake.notify_one();
        }
        let mut rx = self.inner.outstanding.subscribe();
        let done = tokio::time::timeout(bound, rx.wait_for(|n| *n == 0)).await.is_ok();
        self.inner.flushing.store(false, Ordering::SeqCst);
        done
    }

    fn queue(&self, topic: &str, partition: u32) -> Arc<Queue> {
        let mut queues = self.inner.queues.lock();
        if let Some(q) = queues.get(&(topic.to_string(), partition)) {
            return q.clone();
        }
        let q = Arc::new(Queue { batches: Mutex::default(), wake: Notify::new() });
        queues.insert((topic.to_string(), partition), q.clone());
        tokio::spawn(sender(self.inner.clone(), q.clone(), topic.to_string(), partition));
        q
    }
}

/// When the front batch may go: now, or at its linger deadline; `None`
/// when the queue is empty.
fn ready_at(inner: &Inner, batches: &VecDeque<Batch>) -> Option<Instant> {
    let front = batches.front()?;
    let full = front.bytes >= inner.config.batch_size || batches.len() > 1;
    if full || inner.flushing.load(Ordering::SeqCst) {
        Some(Instant::now())
    } else {
        Some(front.created + Duration::from_millis(inner.config.linger_ms))
    }
}

/// One partition's sender: takes ready batches in order, reserves an
/// in-flight slot (in order, so sequences follow the queue), and delivers
/// each on its own task. Runs as long as the process.
async fn sender(inner: Arc<Inner>, queue: Arc<Queue>, topic: String, partition: u32) {
    // Bounded by the process: it ends with the runtime.
    loop {
        let batch = {
            let at = ready_at(&inner, &queue.batches.lock());
            match at {
                None => {
                    queue.wake.notified().await;
                    continue;
                }
                Some(t) if t > Instant::now() => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t.into()) => {}
                        _ = queue.wake.notified() => {}
                    }
                    continue;
                }
                Some(_) => queue.batches.lock().pop_front().expect("a front batch"),
            }
        };
        let deadline = batch.created + inner.delivery_timeout;
        let values: Vec<String> = batch.records.iter().map(|r| r.value.clone()).collect();
        match inner.producer.reserve(&topic, partition, batch.records.clone(), deadline).await {
            Err(failed) => complete(&inner, batch, &failed),
            Ok(mut reservation) => {
                let info = BatchInfo { topic: topic.clone(), partition, slot: reservation.slot(), values };
                if let Some(o) = &inner.observer {
                    o.sending(&info);
                }
                let inner = inner.clone();
                tokio::spawn(async move {
                    let outcome = inner.producer.deliver(&mut reservation).await;
                    if let Some(o) = &inner.observer {
                        o.done(&info, &outcome);
                    }
                    // The slot is freed only after `done`.
                    drop(reservation);
                    complete(&inner, batch, &outcome);
                });
            }
        }
    }
}

fn complete(inner: &Inner, batch: Batch, outcome: &SendOutcome) {
    let n = batch.waiters.len() as u64;
    let base = match outcome {
        SendOutcome::Acked { base_offset: Some(b), .. } if *b >= 0 => Some(*b),
        _ => None,
    };
    for (i, w) in batch.waiters.into_iter().enumerate() {
        let _ = w.send(RecordOutcome { outcome: outcome.clone(), offset: base.map(|b| b + i as i64) });
    }
    drop(batch.memory);
    inner.outstanding.send_modify(|x| *x -= n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterClient;
    use crate::producer::ProducerConfig;

    fn producer(url: &str) -> Arc<Producer> {
        let cluster = Arc::new(ClusterClient::new(vec![url.into()], Duration::from_millis(200)));
        let config = ProducerConfig {
            request_timeout_ms: 200,
            delivery_timeout_ms: 400,
            retry_backoff_ms: 50,
            ..ProducerConfig::default()
        };
        Arc::new(Producer::new(cluster, config).unwrap())
    }

    fn rec(v: &str) -> ProduceRecord {
        ProduceRecord { key: None, value: v.into(), timestamp: None }
    }

    #[test]
    fn settings_are_checked_by_name() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let p = producer("http://127.0.0.1:9");
            let e = AsyncProducer::new(p.clone(), AccumulatorConfig { batch_size: 0, ..Default::default() }, None)
                .err()
                .unwrap();
            assert!(e.to_string().contains("batch.size=0"), "{e}");
            let e = AsyncProducer::new(
                p.clone(),
                AccumulatorConfig { buffer_memory: 10, batch_size: 100, ..Default::default() },
                None,
            )
            .err()
            .unwrap();
            assert!(e.to_string().contains("buffer.memory=10"), "{e}");
            let e = AsyncProducer::new(p, AccumulatorConfig { linger_ms: 1_000, ..Default::default() }, None)
                .err()
                .unwrap();
            assert!(e.to_string().contains("delivery.timeout.ms"), "{e}");
        });
    }

    /// With nothing answering (a closed loopback port), batches fail after
    /// their delivery timeout, so buffer space is held meanwhile: a full
    /// buffer makes `send` wait `max.block.ms` and fail; nothing is dropped
    /// silently, and every enqueued record gets an outcome.
    #[test]
    fn a_full_buffer_blocks_then_fails_and_every_enqueued_record_completes() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let p = producer("http://127.0.0.1:9");
            let size = record_size(&rec("x"));
            let config =
                AccumulatorConfig { linger_ms: 100, batch_size: size * 2, buffer_memory: size * 2, max_block_ms: 50 };
            let ap = AsyncProducer::new(p, config, None).unwrap();
            let a = ap.send("t", 0, rec("x")).await.unwrap();
            let b = ap.send("t", 0, rec("y")).await.unwrap();
            let started = Instant::now();
            assert_eq!(ap.send("t", 0, rec("z")).await.err(), Some(EnqueueError::BufferFull(50)));
            assert!(started.elapsed() >= Duration::from_millis(50));
            assert_eq!(ap.enqueued(), 2);
            assert!(ap.flush(Duration::from_secs(5)).await, "every enqueued record completes");
            for d in [a, b] {
                let o = d.outcome().await.unwrap();
                assert!(!matches!(o.outcome, SendOutcome::Acked { .. }), "{o:?}");
            }
            assert_eq!(ap.outstanding(), 0);
            ap.send("t", 0, rec("z")).await.expect("buffer space is back");
        });
    }
}
