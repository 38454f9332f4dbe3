//! A consumer application's downstream processing, whichever client library
//! polls: each batch of records goes into the slot's sink (one transaction,
//! recorded as a `process` op), inline or through a bounded in-memory queue
//! drained by a worker that is its own logical process, and the partition's
//! processed offset moves past it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use faultline_checker::modes::OnSinkError;
use faultline_checker::op::{F, Op, OpType, OpValue, PartMap, PollValue};
use parking_lot::Mutex;

use super::record::emit;
use crate::sink::Sink;

/// Pause after a failed assign, poll or sink write.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Attempts of one sink write with `on_sink_error = retry` (about a
/// minute at [`RETRY_PAUSE`] plus the busy timeout): longer than any outage.
const SINK_ATTEMPTS_MAX: u32 = 300;
/// Poll batches the in-memory queue holds before the poll loop waits.
/// Small, as applications bound their hand-off queues: it bounds how far
/// polling runs ahead of processing, and the drain at a graceful stop.
pub const QUEUE_BATCHES_MAX: usize = 32;
/// How long a stopping consumer's worker may take to drain its queue:
/// within the harness's stop grace (15 s), which SIGKILLs after it.
pub const WORKER_DRAIN_BOUND: Duration = Duration::from_secs(10);

pub type Records = Vec<(u64, faultline_checker::op::RecordValue)>;

/// One consumer's downstream processing: writes records into its sink, one
/// transaction per batch, recorded as `process` ops.
pub struct Processor {
    pub sink: Option<Arc<Mutex<Sink>>>,
    pub on_error: OnSinkError,
    pub work: Duration,
}

impl Processor {
    /// Processes one partition's records under process `pid`: ok once the
    /// sink's transaction committed. On a sink error, `skip` gives the
    /// records up and `retry` tries again (bounded).
    async fn process(&self, pid: u64, name: &str, records: Records) -> anyhow::Result<()> {
        let Some(sink) = &self.sink else { return Ok(()) };
        if records.is_empty() {
            return Ok(());
        }
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
    pub async fn process_and_mark(
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
pub struct Handoff {
    pub index: usize,
    pub records: Records,
}

/// The queue worker's task.
pub type Worker = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Starts the worker that drains the bounded queue under process `id`,
/// marking each partition's processed offset (`names[index]`, `processed[index]`).
pub fn spawn_worker(
    processor: Arc<Processor>,
    processed: Arc<Mutex<Vec<i64>>>,
    names: Vec<String>,
    id: u64,
) -> (tokio::sync::mpsc::Sender<Handoff>, Worker) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Handoff>(QUEUE_BATCHES_MAX);
    let worker = tokio::spawn(async move {
        // Bounded by the channel: it ends when the poll loop drops its sender.
        while let Some(h) = rx.recv().await {
            processor.process_and_mark(id, &names[h.index], h.index, h.records, &processed).await?;
        }
        anyhow::Ok(())
    });
    (tx, worker)
}

/// Waits (bounded) for a worker whose sender was dropped to finish the queue.
pub async fn drain_worker(worker: Option<Worker>) -> anyhow::Result<()> {
    if let Some(w) = worker {
        match tokio::time::timeout(WORKER_DRAIN_BOUND, w).await {
            Ok(r) => r.context("the queue worker panicked")??,
            Err(_) => bail!("the queue worker did not drain within {WORKER_DRAIN_BOUND:?}"),
        }
    }
    Ok(())
}
