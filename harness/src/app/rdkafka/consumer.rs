//! The consumer application on librdkafka: `assign` (no group membership)
//! from the group's committed offsets, `poll`, processing into the sink
//! (inline or through the bounded queue, as the Rust model's), and commits
//! as the strategy says.
//!
//! - `auto`: librdkafka's own auto-commit (`enable.auto.commit`), which
//!   commits the offsets of records `poll` returned, processed or not. The
//!   application never commits; each commit librdkafka performed is recorded
//!   from its offset-commit callback, with the offsets it reports. librdkafka
//!   runs that callback only inside `poll`, so the op's time is an upper
//!   bound on when the commit happened and its invoke carries the same time:
//!   the checker only asks which offsets an `ok` commit covered, never when.
//!   A commit made after the last poll of a killed process is not recorded.
//! - `after-process` / `before-process`: synchronous `commit` calls of the
//!   processed or polled positions, recorded around the call.
//!
//! librdkafka's calls block, so each runs on tokio's blocking pool while the
//! queue worker goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use faultline_checker::modes::{CommitStrategy, OffsetReset};
use faultline_checker::op::{AssignValue, CommitValue, F, Op, OpType, OpValue, PartMap, PollValue, RecordValue, Seek};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::errors::{code_name, is_broker_error, kafka_error_code};
use super::{Polled, config, poll_batch};
use crate::app::processing::{Downstream, RETRY_PAUSE, Records};
use crate::app::record::{Ids, emit, emit_at, part_name};
use crate::app::spec::{ClientSpec, ConsumerSpec};
use crate::history::monotonic_ns;

/// Records the commits librdkafka performs on its own (auto-commit).
struct CommitRecorder {
    group: String,
    record: bool,
    ids: Ids,
    /// The auto-commit lane's process id; a new one after an `info` commit.
    lane: Mutex<u64>,
}

impl ClientContext for CommitRecorder {}

impl ConsumerContext for CommitRecorder {
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if !self.record {
            return;
        }
        let committed: Vec<(String, u64)> = offsets
            .elements()
            .iter()
            .filter(|e| e.error().is_ok())
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some((part_name(e.topic(), e.partition() as u32), o as u64)),
                _ => None,
            })
            .collect();
        let code = result.as_ref().err().and_then(|e| e.rdkafka_error_code());
        // `_NO_OFFSET`: nothing new to commit, so nothing was sent.
        if committed.is_empty() || code.is_some_and(|c| code_name(c) == "_NO_OFFSET") {
            return;
        }
        let mut lane = self.lane.lock();
        // The callback is all we see of the commit: one time for both ops.
        let now = monotonic_ns();
        let value = CommitValue::simple(self.group.clone(), PartMap(committed));
        emit_at(Op::invoke(*lane, F::Commit, OpValue::Commit(value)), now);
        let done = |t| Op::complete(t, *lane, F::Commit, OpValue::none());
        match (&result, code) {
            (Ok(()), _) => emit_at(done(OpType::Ok), now),
            (Err(e), Some(c)) if is_broker_error(c) => {
                emit_at(done(OpType::Fail).with_error(Some(&code_name(c)), e.to_string()), now)
            }
            (Err(e), _) => {
                emit_at(done(OpType::Info).with_error(Some(&kafka_error_code(e)), e.to_string()), now);
                *lane = self.ids.take();
            }
        }
    }
}

type Rk = BaseConsumer<CommitRecorder>;

/// A consumer application's state between polls.
struct App<'a> {
    spec: &'a ConsumerSpec,
    topic: String,
    names: Vec<String>,
    ids: Ids,
    stride: u64,
    process: u64,
    consumer: Arc<Rk>,
    timeout: Duration,
    /// Processing; a partition's processed offset is -1 until known.
    downstream: Downstream,
    /// Per owned partition, the next offset to read, once known.
    positions: Vec<Option<i64>>,
    committed: Vec<Option<i64>>,
}

pub async fn consume(c: &ClientSpec, a: &ConsumerSpec, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut app = App::new(c, a, stop)?;
    // Assign, then poll, process and commit until stopped; an `info` commit
    // ends the logical process and the next one assigns afresh. Bounded by
    // the harness's stop.
    'assign: while !stop.load(Ordering::SeqCst) {
        let Some(start) = app.assign(stop).await else { break };
        app.downstream.reset(start.iter().map(|o| o.unwrap_or(-1)).collect());
        app.positions = start.clone();
        app.committed = start;
        while !stop.load(Ordering::SeqCst) {
            if !app.poll_once().await? {
                continue 'assign;
            }
        }
    }
    app.close().await
}

/// Runs a blocking librdkafka call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    consumer: &Arc<Rk>,
    f: impl FnOnce(&Rk) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let consumer = consumer.clone();
    tokio::task::spawn_blocking(move || f(&consumer)).await.context("a librdkafka call panicked")
}

impl<'a> App<'a> {
    fn new(c: &ClientSpec, a: &'a ConsumerSpec, stop: &Arc<AtomicBool>) -> anyhow::Result<App<'a>> {
        let ids = Ids::new(c.process, c.process_stride);
        let process = ids.take();
        let recorder = CommitRecorder {
            group: a.group.clone(),
            record: a.commit == CommitStrategy::Auto,
            lane: Mutex::new(ids.take()),
            ids: ids.clone(),
        };
        let mut settings = config::consumer(a, c.request_timeout_ms, Some(&c.kafka_bootstrap));
        settings.set("client.id", format!("faultline-consumer-{}", c.process));
        let consumer: Rk = settings.create_with_context(recorder).context("librdkafka's consumer")?;
        let names: Vec<String> = a.owned.iter().map(|&p| part_name(&c.topic, p)).collect();
        let downstream = Downstream::start(a, names.clone(), &ids, c.process_stride, stop)?;
        downstream.reset(vec![-1; names.len()]);
        Ok(App {
            spec: a,
            topic: c.topic.clone(),
            names,
            ids,
            stride: c.process_stride,
            process,
            consumer: Arc::new(consumer),
            timeout: Duration::from_millis(c.request_timeout_ms),
            downstream,
            positions: Vec::new(),
            committed: Vec::new(),
        })
    }

    /// The owned partitions at `offsets` (`None`: Kafka's reset rule).
    fn partitions(&self, offsets: &[Option<i64>]) -> anyhow::Result<TopicPartitionList> {
        let reset = match self.spec.auto_offset_reset {
            OffsetReset::Earliest => Offset::Beginning,
            OffsetReset::Latest => Offset::End,
        };
        let mut tpl = TopicPartitionList::new();
        for (&p, o) in self.spec.owned.iter().zip(offsets) {
            tpl.add_partition_offset(&self.topic, p as i32, o.map_or(reset, Offset::Offset))?;
        }
        Ok(tpl)
    }

    /// Assigns until it succeeds: the group's committed offsets, read with
    /// OffsetFetch, then `assign` there. `None` when stopped first.
    async fn assign(&mut self, stop: &AtomicBool) -> Option<Vec<Option<i64>>> {
        // Bounded by the harness's stop.
        while !stop.load(Ordering::SeqCst) {
            let value = OpValue::Assign(AssignValue::manual(self.names.clone(), Seek::Committed));
            emit(Op::invoke(self.process, F::Assign, value));
            match self.try_assign().await {
                Ok(start) => {
                    emit(Op::complete(OpType::Ok, self.process, F::Assign, OpValue::none()));
                    return Some(start);
                }
                Err((code, text)) => {
                    let op = Op::complete(OpType::Fail, self.process, F::Assign, OpValue::none());
                    emit(op.with_error(Some(&code), text));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        None
    }

    async fn try_assign(&self) -> Result<Vec<Option<i64>>, (String, String)> {
        let unknown =
            self.partitions(&vec![None; self.spec.owned.len()]).map_err(|e| ("librdkafka".into(), e.to_string()))?;
        let timeout = self.timeout;
        let committed = blocking(&self.consumer, move |c| c.committed_offsets(unknown, timeout))
            .await
            .map_err(|e| ("librdkafka".to_string(), e.to_string()))?
            .map_err(|e| (kafka_error_code(&e), format!("reading committed offsets: {e}")))?;
        let start: Vec<Option<i64>> = self
            .spec
            .owned
            .iter()
            .map(|&p| match committed.find_partition(&self.topic, p as i32).map(|e| e.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Some(o),
                _ => None,
            })
            .collect();
        let tpl = self.partitions(&start).map_err(|e| ("librdkafka".into(), e.to_string()))?;
        blocking(&self.consumer, move |c| c.assign(&tpl))
            .await
            .map_err(|e| ("librdkafka".to_string(), e.to_string()))?
            .map_err(|e| (kafka_error_code(&e), format!("assign: {e}")))?;
        Ok(start)
    }

    /// Takes up to `max.poll.records` messages: waits up to
    /// `fetch.max.wait.ms` for the first, then takes what is ready.
    async fn take_messages(&self) -> anyhow::Result<Polled> {
        let (max, wait) = (self.spec.max_poll_records as usize, Duration::from_millis(self.spec.fetch_max_wait_ms));
        blocking(&self.consumer, move |c| poll_batch(c, max, wait)).await
    }
}

impl App<'_> {
    /// One poll, its processing and the commit the strategy asks for.
    /// `false` when a commit's outcome is unknown: the logical process then
    /// ends and the next one assigns afresh.
    async fn poll_once(&mut self) -> anyhow::Result<bool> {
        emit(Op::invoke(self.process, F::Poll, OpValue::none()));
        let polled = self.take_messages().await?;
        if polled.messages.is_empty() {
            let op = Op::complete(OpType::Fail, self.process, F::Poll, OpValue::none());
            match polled.error {
                Some(e) => {
                    emit(op.with_error(Some(&kafka_error_code(&e)), e.to_string()));
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                None => emit(Op::complete(OpType::Ok, self.process, F::Poll, OpValue::Poll(PollValue::default()))),
            }
            return Ok(true);
        }
        if let Some(e) = &polled.error {
            tracing::debug!("poll ended early: {e}");
        }
        let got = self.by_partition(polled.messages);
        let read = PartMap(got.iter().map(|(i, r)| (self.names[*i].clone(), r.clone())).collect());
        emit(Op::complete(OpType::Ok, self.process, F::Poll, OpValue::Poll(PollValue { records: read })));
        if self.spec.commit == CommitStrategy::BeforeProcess && !self.commit(self.positions.clone()).await? {
            return Ok(false);
        }
        self.downstream.hand(self.process, got).await?;
        if self.spec.commit == CommitStrategy::AfterProcess {
            return self.commit(self.processed_positions()).await;
        }
        Ok(true)
    }

    /// Messages grouped by owned partition in the order received; moves
    /// each partition's position past them.
    fn by_partition(&mut self, messages: Vec<(u32, i64, RecordValue)>) -> Vec<(usize, Records)> {
        let mut got: Vec<(usize, Records)> = Vec::new();
        for (p, offset, value) in messages {
            let Some(i) = self.spec.owned.iter().position(|&o| o == p) else {
                tracing::warn!("librdkafka returned partition {p}, which is not assigned");
                continue;
            };
            self.positions[i] = Some(offset + 1);
            match got.iter_mut().find(|(j, _)| *j == i) {
                Some((_, records)) => records.push((offset as u64, value)),
                None => got.push((i, vec![(offset as u64, value)])),
            }
        }
        got
    }

    fn processed_positions(&self) -> Vec<Option<i64>> {
        self.downstream.processed().into_iter().map(|o| (o >= 0).then_some(o)).collect()
    }

    /// Commits, synchronously, the partitions of `at` that moved since the
    /// last commit, as a `commit` op. `Ok(false)` when the outcome is unknown.
    async fn commit(&mut self, at: Vec<Option<i64>>) -> anyhow::Result<bool> {
        let moved: Vec<usize> = (0..at.len()).filter(|&i| at[i].is_some() && at[i] != self.committed[i]).collect();
        if moved.is_empty() {
            return Ok(true);
        }
        let offsets = moved.iter().map(|&i| (self.names[i].clone(), at[i].unwrap_or(0) as u64)).collect();
        let value = CommitValue::simple(self.spec.group.clone(), PartMap(offsets));
        emit(Op::invoke(self.process, F::Commit, OpValue::Commit(value)));
        let mut tpl = TopicPartitionList::new();
        for &i in &moved {
            tpl.add_partition_offset(&self.topic, self.spec.owned[i] as i32, Offset::Offset(at[i].unwrap_or(0)))?;
        }
        let result = blocking(&self.consumer, move |c| c.commit(&tpl, CommitMode::Sync)).await?;
        let done = |t| Op::complete(t, self.process, F::Commit, OpValue::none());
        let Err(e) = result else {
            self.committed = at;
            emit(done(OpType::Ok));
            return Ok(true);
        };
        let code = e.rdkafka_error_code();
        if code.is_some_and(is_broker_error) {
            emit(done(OpType::Fail).with_error(Some(&kafka_error_code(&e)), e.to_string()));
            return Ok(true);
        }
        emit(done(OpType::Info).with_error(Some(&kafka_error_code(&e)), e.to_string()));
        if self.stride == 0 {
            return Ok(true);
        }
        self.process = self.ids.take();
        Ok(false)
    }

    /// A graceful close: the worker finishes the queue, then the consumer
    /// commits what its strategy covers (Kafka's close() commits with
    /// auto-commit; here the application does it, so it is recorded).
    async fn close(mut self) -> anyhow::Result<()> {
        self.downstream.finish().await?;
        if self.positions.is_empty() {
            return Ok(());
        }
        let at = match self.spec.commit {
            CommitStrategy::Auto | CommitStrategy::BeforeProcess => self.positions.clone(),
            CommitStrategy::AfterProcess => self.processed_positions(),
        };
        self.commit(at).await?;
        Ok(())
    }
}
