//! A consumer application's downstream processing, whichever client library
//! polls: each batch of records goes into the slot's sink (one transaction,
//! recorded as a `process` op), inline or through a bounded in-memory queue
//! drained by a worker that is its own logical process, and the partition's
//! processed offset moves past it. When the group takes the partitions
//! away, the queue's batches not yet started are dropped, as an
//! application's `onPartitionsRevoked` clears its hand-off queue: their new
//! owner reads from the committed offset.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use faultline_checker::modes::OnSinkError;
use faultline_checker::op::{F, Op, OpType, OpValue, PartMap, PollValue};
use parking_lot::Mutex;

use super::record::emit;
use super::stall::Stall;
use crate::sink::Sink;

/// Pause after a failed assign, poll or sink write.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Attempts of one sink write with `on_sink_error = retry` (about a
/// minute at [`RETRY_PAUSE`] plus the busy timeout): longer than any outage.
const SINK_ATTEMPTS_MAX: u32 = 300;
/// Poll batches the in-memory queue holds before the poll loop waits.
/// Small, as applications bound their hand-off queues: it bounds how far
/// polling runs ahead of processing, and the drain at a graceful stop.
const QUEUE_BATCHES_MAX: usize = 32;
/// How long a stopping consumer's worker may take to drain its queue:
/// within the harness's stop grace (15 s), which SIGKILLs after it.
const WORKER_DRAIN_BOUND: Duration = Duration::from_secs(10);

pub type Records = Vec<(u64, faultline_checker::op::RecordValue)>;

/// One consumer's downstream processing: writes records into its sink, one
/// transaction per batch, recorded as `process` ops.
struct Processor {
    sink: Option<Arc<Mutex<Sink>>>,
    on_error: OnSinkError,
    work: Duration,
    /// Subscribe mode: the `stall-consumer` fault's pending stall.
    stall: Option<Stall>,
}

impl Processor {
    /// Processes one partition's records under process `pid`: ok once the
    /// sink's transaction committed. On a sink error, `skip` gives the
    /// records up and `retry` tries again (bounded).
    async fn process(&self, pid: u64, name: &str, records: Records) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(stall) = &self.stall {
            stall.take().await;
        }
        let Some(sink) = &self.sink else { return Ok(()) };
        let value = || OpValue::Process(PollValue { records: PartMap(vec![(name.to_string(), records.clone())]) });
        tokio::time::sleep(self.work).await;
        for attempt in 1..=SINK_ATTEMPTS_MAX {
            emit(Op::invoke(pid, F::Process, value()));
            let (sink, part, recs) = (sink.clone(), name.to_string(), records.clone());
            let result = tokio::task::spawn_blocking(move || sink.lock().write(&part, &recs))
                .await
                .context("the sink task panicked")?;
            match result {
                Ok(_) => {
                    emit(Op::complete(OpType::Ok, pid, F::Process, value()));
                    return Ok(());
                }
                Err(e) => {
                    let op = Op::complete(OpType::Fail, pid, F::Process, value());
                    emit(op.with_error(Some("sink-error"), e.to_string()));
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

    /// Processes and moves the partition's processed offset past the records.
    async fn process_and_mark(
        &self,
        pid: u64,
        name: &str,
        index: usize,
        records: Records,
        processed: &Mutex<Vec<i64>>,
    ) -> anyhow::Result<()> {
        let next = records.last().map(|(o, _)| *o as i64 + 1);
        self.process(pid, name, records).await?;
        if let Some(next) = next {
            let mut p = processed.lock();
            p[index] = p[index].max(next);
        }
        Ok(())
    }
}

/// Records of one partition handed from the poll loop to the queue worker.
struct Handoff {
    index: usize,
    records: Records,
    /// The assignment it was polled under (see [`Downstream::revoke`]).
    assignment: u64,
}

/// The queue worker's task.
type Worker = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Starts the worker that drains the bounded queue under process `id`,
/// marking each partition's processed offset (`names[index]`, `processed[index]`).
/// Batches of an earlier assignment than `assignment` are dropped.
fn spawn_worker(
    processor: Arc<Processor>,
    processed: Arc<Mutex<Vec<i64>>>,
    assignment: Arc<AtomicU64>,
    names: Vec<String>,
    id: u64,
) -> (tokio::sync::mpsc::Sender<Handoff>, Worker) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Handoff>(QUEUE_BATCHES_MAX);
    let worker = tokio::spawn(async move {
        // Bounded by the channel: it ends when the poll loop drops its sender.
        while let Some(h) = rx.recv().await {
            if h.assignment != assignment.load(Ordering::SeqCst) {
                continue;
            }
            processor.process_and_mark(id, &names[h.index], h.index, h.records, &processed).await?;
        }
        anyhow::Ok(())
    });
    (tx, worker)
}

/// Waits (bounded) for a worker whose sender was dropped to finish the queue.
async fn drain_worker(worker: Option<Worker>) -> anyhow::Result<()> {
    if let Some(w) = worker {
        match tokio::time::timeout(WORKER_DRAIN_BOUND, w).await {
            Ok(r) => r.context("the queue worker panicked")??,
            Err(_) => bail!("the queue worker did not drain within {WORKER_DRAIN_BOUND:?}"),
        }
    }
    Ok(())
}

/// A consumer's whole downstream side: the processor, each owned
/// partition's processed offset, and (with `processing = queue`) the queue
/// and its worker. Both client libraries' consumers hand their polls here.
pub struct Downstream {
    processor: Arc<Processor>,
    names: Vec<String>,
    /// Per owned partition, the offset after the last processed record.
    processed: Arc<Mutex<Vec<i64>>>,
    /// Counts the assignments given up ([`Downstream::revoke`]).
    assignment: Arc<AtomicU64>,
    queue: Option<tokio::sync::mpsc::Sender<Handoff>>,
    worker: Option<Worker>,
}

impl Downstream {
    /// Opens the spec's sink and, for a queue, starts the worker under the
    /// next id of `ids` (so the stride must be positive). A subscribing
    /// consumer listens for `stall-consumer` (a stall ends early at `stop`).
    pub fn start(
        a: &crate::app::spec::ConsumerSpec,
        names: Vec<String>,
        ids: &super::record::Ids,
        stride: u64,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<Downstream> {
        let sink = match &a.sink_path {
            Some(path) => Some(Arc::new(Mutex::new(Sink::open(path)?))),
            None => None,
        };
        let stall = match &a.subscribe {
            Some(s) => Some(Stall::listen(Duration::from_millis(s.max_poll_interval_ms), stop.clone())?),
            None => None,
        };
        let work = Duration::from_millis(a.process_time_ms);
        let processor = Arc::new(Processor { sink, on_error: a.on_sink_error, work, stall });
        let processed = Arc::new(Mutex::new(vec![0; names.len()]));
        let assignment = Arc::new(AtomicU64::new(0));
        let mut d = Downstream { processor, names, processed, assignment, queue: None, worker: None };
        if a.processing == faultline_checker::modes::Processing::Queue {
            anyhow::ensure!(stride > 0, "processing = queue needs a process stride > 0 (the worker has its own id)");
            let (processor, processed, assignment) = (d.processor.clone(), d.processed.clone(), d.assignment.clone());
            let (tx, worker) = spawn_worker(processor, processed, assignment, d.names.clone(), ids.take());
            (d.queue, d.worker) = (Some(tx), Some(worker));
        }
        Ok(d)
    }

    /// Where each partition's processing starts (a new assignment).
    pub fn reset(&self, positions: Vec<i64>) {
        *self.processed.lock() = positions;
    }

    /// Each partition's processed offset.
    pub fn processed(&self) -> Vec<i64> {
        self.processed.lock().clone()
    }

    /// The partitions were given up: the queue's batches not yet started
    /// are dropped (the one being processed finishes).
    pub fn revoke(&self) {
        self.assignment.fetch_add(1, Ordering::SeqCst);
    }

    /// One poll's records, partition by partition: processed now under
    /// process `pid`, or handed to the queue (waiting while it is full).
    pub async fn hand(&self, pid: u64, got: Vec<(usize, Records)>) -> anyhow::Result<()> {
        for (i, records) in got {
            match &self.queue {
                Some(tx) => tx
                    .send(Handoff { index: i, records, assignment: self.assignment.load(Ordering::SeqCst) })
                    .await
                    .map_err(|_| anyhow::anyhow!("the queue worker stopped"))?,
                None => self.processor.process_and_mark(pid, &self.names[i], i, records, &self.processed).await?,
            }
        }
        Ok(())
    }

    /// A graceful stop: the worker finishes what the queue holds (bounded).
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        drop(self.queue.take());
        drain_worker(self.worker.take()).await
    }
}
