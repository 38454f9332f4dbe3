//! The consumer application: assigns its partitions itself (assign mode)
//! or gets them from its group (subscribe mode, `group.rs`), starts from
//! the group's committed offsets, polls them from the leaders, processes
//! each batch into its sink (inline, or through a bounded queue and a
//! worker that is its own logical process), and commits automatically (at
//! the start of a poll, Kafka's rule) or manually after or before
//! processing.

mod group;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faultline_checker::modes::{CommitStrategy, OffsetReset};
use faultline_checker::op::{AssignValue, CommitValue, F, Op, OpType, OpValue, PartMap, PollValue, Seek};
use faultline_client::ClusterClient;
use faultline_client::api::{FetchRequest, OffsetCommit, OffsetCommitRequest};

use super::coordinator::{Coordinator, fetched_pairs};
use super::member::Member;
use super::processing::{Downstream, RETRY_PAUSE, Records};
use super::record::{Ids, emit, part_name, with_client_error};
use super::spec::{ClientSpec, ConsumerSpec};

/// A consumer process's state between polls.
struct Consumer<'a> {
    spec: &'a ConsumerSpec,
    topic: String,
    /// The partitions this consumer may own, and their names; positions,
    /// committed and processed offsets are indexed alike.
    parts: Vec<u32>,
    names: Vec<String>,
    /// Indexes into `parts` of the partitions owned now.
    owned: Vec<usize>,
    /// Subscribe mode: the group membership.
    member: Option<Member>,
    ids: Ids,
    stride: u64,
    process: u64,
    cluster: ClusterClient,
    coordinator: Coordinator,
    downstream: Downstream,
    positions: Vec<i64>,
    committed: Vec<i64>,
}

pub async fn consume(c: &ClientSpec, a: &ConsumerSpec, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut consumer = Consumer::new(c, a, stop)?;
    // Assign, then poll, process and commit until stopped; an `info` commit
    // ends the logical process, and the next one assigns afresh. Bounded by
    // the harness's stop, as the producer's loop.
    'assign: while !stop.load(Ordering::SeqCst) {
        let Some(positions) = consumer.assign(stop).await else { break };
        consumer.positions = positions.clone();
        consumer.committed = positions.clone();
        consumer.downstream.reset(positions);
        let mut last_auto_commit = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if consumer.member.as_ref().is_some_and(Member::needs_rejoin) {
                consumer.revoke().await;
                continue 'assign;
            }
            let auto_interval = Duration::from_millis(a.auto_commit_interval_ms);
            // Kafka's poll() auto-commits first: the positions returned by
            // earlier polls, whether or not they were processed (R5.3).
            if a.commit == CommitStrategy::Auto
                && last_auto_commit.elapsed() >= auto_interval
                && consumer.positions != consumer.committed
            {
                last_auto_commit = Instant::now();
                if !consumer.commit_if_moved(consumer.positions.clone()).await {
                    continue 'assign;
                }
            }
            if !consumer.poll_once().await? {
                continue 'assign;
            }
        }
    }
    consumer.close().await
}

impl<'a> Consumer<'a> {
    fn new(c: &ClientSpec, a: &'a ConsumerSpec, stop: &Arc<AtomicBool>) -> anyhow::Result<Consumer<'a>> {
        let ids = Ids::new(c.process, c.process_stride);
        let process = ids.take();
        let timeout = Duration::from_millis(c.request_timeout_ms);
        let parts: Vec<u32> = match &a.subscribe {
            Some(s) => (0..s.partitions).collect(),
            None => a.owned.clone(),
        };
        let names: Vec<String> = parts.iter().map(|&p| part_name(&c.topic, p)).collect();
        let downstream = Downstream::start(a, names.clone(), &ids, c.process_stride, stop)?;
        let member =
            a.subscribe.clone().map(|s| Member::new(&c.bootstrap, timeout, a.group.clone(), c.topic.clone(), s));
        Ok(Consumer {
            spec: a,
            topic: c.topic.clone(),
            owned: if member.is_some() { Vec::new() } else { (0..parts.len()).collect() },
            parts,
            names,
            member,
            ids,
            stride: c.process_stride,
            process,
            cluster: ClusterClient::new(c.bootstrap.clone(), timeout),
            coordinator: Coordinator::new(ClusterClient::new(c.bootstrap.clone(), timeout), a.group.clone()),
            downstream,
            positions: Vec::new(),
            committed: Vec::new(),
        })
    }

    /// Assigns until it succeeds, as an `assign` op: the partitions (all of
    /// the consumer's, or in subscribe mode those its group gave it, after
    /// rejoining if the group rebalanced), positions from the group's
    /// committed offsets. `None` when stopped first.
    async fn assign(&mut self, stop: &AtomicBool) -> Option<Vec<i64>> {
        let value = match self.member.is_some() {
            true => self.group_assignment(stop).await?,
            false => {
                self.owned = (0..self.parts.len()).collect();
                AssignValue::manual(self.names.clone(), Seek::Committed)
            }
        };
        // Bounded by the harness's stop.
        while !stop.load(Ordering::SeqCst) {
            emit(Op::invoke(self.process, F::Assign, OpValue::Assign(value.clone())));
            let fail = |op: Op| {
                emit(op);
                tokio::time::sleep(RETRY_PAUSE)
            };
            let failed = Op::complete(OpType::Fail, self.process, F::Assign, OpValue::none());
            let offsets = match self.coordinator.committed().await {
                Ok(o) => o,
                Err(e) => {
                    let text = format!("reading committed offsets: {e}");
                    fail(failed.with_error(Some(&e.code_name()), text)).await;
                    continue;
                }
            };
            match self.reset_offsets(&offsets).await {
                Ok(ends) => {
                    emit(Op::complete(OpType::Ok, self.process, F::Assign, OpValue::none()));
                    return Some(self.starting_positions(&offsets, &ends));
                }
                Err(e) => {
                    let code = e.code_name();
                    fail(failed.with_error(Some(&code), format!("reading end offsets: {e}"))).await
                }
            }
        }
        None
    }

    /// `auto.offset.reset=latest`: the end offsets of partitions without a
    /// committed offset; nothing to read otherwise.
    async fn reset_offsets(&self, offsets: &[OffsetCommit]) -> Result<Vec<(u32, i64)>, faultline_client::ClientError> {
        let uncommitted =
            self.owned.iter().any(|&i| !offsets.iter().any(|o| o.topic == self.topic && o.partition == self.parts[i]));
        if self.spec.auto_offset_reset != OffsetReset::Latest || !uncommitted {
            return Ok(Vec::new());
        }
        let d = self.cluster.refresh(&self.topic).await?;
        Ok(d.partitions.iter().map(|x| (x.partition, x.high_watermark)).collect())
    }

    fn starting_positions(&self, offsets: &[OffsetCommit], ends: &[(u32, i64)]) -> Vec<i64> {
        let reset = |p: u32| ends.iter().find(|(x, _)| *x == p).map_or(0, |(_, end)| *end);
        let at = |p: u32| {
            offsets.iter().find(|o| o.topic == self.topic && o.partition == p).map_or_else(|| reset(p), |o| o.offset)
        };
        self.parts.iter().map(|&p| at(p)).collect()
    }

    /// One poll of every owned partition, its processing and the commit the
    /// strategy asks for. `false` when a commit's outcome is unknown: the
    /// logical process then ends and the next one assigns afresh.
    async fn poll_once(&mut self) -> anyhow::Result<bool> {
        if let Some(m) = &self.member {
            m.polled();
            if self.owned.is_empty() {
                // A member the group gave nothing: nothing to poll.
                tokio::time::sleep(RETRY_PAUSE).await;
                return Ok(true);
            }
        }
        emit(Op::invoke(self.process, F::Poll, OpValue::none()));
        let Some(got) = self.fetch_all().await else { return Ok(true) };
        let read = PartMap(got.iter().map(|(i, r)| (self.names[*i].clone(), r.clone())).collect());
        emit(Op::complete(OpType::Ok, self.process, F::Poll, OpValue::Poll(PollValue { records: read })));
        if self.spec.commit == CommitStrategy::BeforeProcess && !self.commit_if_moved(self.positions.clone()).await {
            return Ok(false);
        }
        self.downstream.hand(self.process, got).await?;
        if self.spec.commit == CommitStrategy::AfterProcess {
            let at = self.downstream.processed();
            return Ok(self.commit_if_moved(at).await);
        }
        Ok(true)
    }

    /// Fetches every owned partition from its position. `None` (and a
    /// `fail` poll) when nothing could be read, so no position moved.
    async fn fetch_all(&mut self) -> Option<Vec<(usize, Records)>> {
        let (mut got, mut errors, mut codes) = (Vec::new(), Vec::new(), Vec::new());
        for &i in &self.owned {
            let p = self.parts[i];
            let req = FetchRequest {
                offset: self.positions[i],
                max_records: Some(self.spec.max_poll_records),
                max_bytes: None,
                max_wait_ms: Some(self.spec.fetch_max_wait_ms),
            };
            match self.cluster.fetch(&self.topic, p, &req).await {
                Ok(resp) => {
                    if let Some(last) = resp.records.last() {
                        self.positions[i] = last.offset + 1;
                        got.push((i, fetched_pairs(&resp.records)));
                    }
                }
                Err(e) => {
                    codes.push(e.code_name());
                    errors.push(format!("{}: {e}", self.names[i]));
                }
            }
        }
        if errors.len() < self.owned.len() {
            return Some(got);
        }
        let failed = Op::complete(OpType::Fail, self.process, F::Poll, OpValue::none());
        codes.dedup();
        let code = (codes.len() == 1).then(|| codes[0].as_str());
        emit(failed.with_error(code, errors.join("; ")));
        tokio::time::sleep(RETRY_PAUSE).await;
        None
    }

    /// Commits `at` unless the owned partitions' offsets are what was
    /// committed last.
    async fn commit_if_moved(&mut self, at: Vec<i64>) -> bool {
        let moved = self.owned.iter().any(|&i| at[i] != self.committed[i]);
        if moved { self.commit(at).await } else { true }
    }

    /// Commits `at` for the owned partitions as a `commit` op, naming the
    /// member and generation in subscribe mode. Returns `false` when the
    /// outcome is unknown: the logical process then ends.
    async fn commit(&mut self, at: Vec<i64>) -> bool {
        let offsets = self.owned.iter().map(|&i| (self.names[i].clone(), at[i].max(0) as u64)).collect();
        let membership = match &self.member {
            None => Some((String::new(), -1)),
            Some(m) => m.may_commit(),
        };
        let mut value = CommitValue::simple(self.spec.group.clone(), PartMap(offsets));
        if let Some(m) = &self.member {
            // What is sent; a member that lost its generation names the one
            // it believed in, and sends nothing.
            value.generation = Some(membership.as_ref().map_or_else(|| m.generation(), |(_, g)| *g));
            value.member = membership.as_ref().map(|(id, _)| id.clone());
        }
        emit(Op::invoke(self.process, F::Commit, OpValue::Commit(value)));
        let done = |t| Op::complete(t, self.process, F::Commit, OpValue::none());
        let Some((member_id, generation)) = membership else {
            // Kafka's CommitFailedException: nothing is sent.
            let text = "not part of an active group: the member was removed or its generation ended";
            emit(done(OpType::Fail).with_error(Some("COMMIT_FAILED"), text.to_string()));
            return true;
        };
        let offsets = self
            .owned
            .iter()
            .map(|&i| OffsetCommit {
                topic: self.topic.clone(),
                partition: self.parts[i],
                offset: at[i],
                metadata: None,
            })
            .collect();
        let req = OffsetCommitRequest { offsets, generation, member_id };
        match self.coordinator.commit(&req).await {
            Ok(()) => {
                self.committed = at;
                emit(done(OpType::Ok));
                true
            }
            Err((e, false)) => {
                if let Some(m) = &self.member {
                    m.commit_refused(e.code());
                }
                emit(with_client_error(done(OpType::Fail), &e));
                true
            }
            Err((e, true)) => {
                emit(with_client_error(done(OpType::Info), &e));
                if self.stride == 0 {
                    return true;
                }
                self.process = self.ids.take();
                false
            }
        }
    }

    /// A graceful close: the worker finishes what the queue holds, then the
    /// consumer commits (Kafka's close() commits with auto-commit; manual
    /// committers commit what they processed).
    async fn close(mut self) -> anyhow::Result<()> {
        self.downstream.finish().await?;
        if self.positions.is_empty() {
            return Ok(());
        }
        let at = match self.spec.commit {
            CommitStrategy::Auto | CommitStrategy::BeforeProcess => self.positions.clone(),
            CommitStrategy::AfterProcess => self.downstream.processed(),
        };
        self.commit_if_moved(at).await;
        if let Some(m) = &mut self.member {
            m.leave().await;
        }
        Ok(())
    }
}
