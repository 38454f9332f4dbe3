//! A producer with Kafka's retry and idempotence semantics, one produce
//! request per [`Producer::send`] (one broker batch).
//!
//! - Retries follow `retries`, `retry.backoff.ms` (exponential up to
//!   `retry.backoff.max.ms`) and `delivery.timeout.ms` (R4.3).
//! - With `enable.idempotence`, the producer takes a producer id, numbers
//!   each partition's batches, and keeps a batch's sequence across retries,
//!   so the broker deduplicates them (R4.7). `OUT_OF_ORDER_SEQUENCE_NUMBER`
//!   for a batch that is not next in sequence is retried as is; only a real
//!   gap (the next batch refused) or `UNKNOWN_PRODUCER_ID` bumps the epoch
//!   and restarts sequences at 0 (KIP-360, R4.8). Bumping on every such
//!   error would bring back KAFKA-14034's duplicates.
//! - Every outcome says whether the batch was definitely not appended
//!   ([`SendOutcome::Failed`]) or may have been ([`SendOutcome::Unknown`]):
//!   once any attempt could have been appended, a later definite error
//!   cannot make the whole send a definite failure (R1.10).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::api::*;
use crate::client::ClientError;
use crate::cluster::ClusterClient;

/// Kafka's `max.in.flight.requests.per.connection` limit for idempotence.
pub const IDEMPOTENT_IN_FLIGHT_MAX: usize = 5;

/// How often a batch waiting for its epoch's first batch to be acknowledged
/// looks again (it is also woken by every acknowledgement).
const FIRST_BATCH_POLL: Duration = Duration::from_millis(5);

/// Producer settings with Kafka's names and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// `retries`: attempts after the first; Kafka's default is `i32::MAX`.
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Per attempt; also the broker-side `timeout_ms` of acks=all.
    pub request_timeout_ms: u64,
    /// Bound on the whole send, retries included.
    pub delivery_timeout_ms: u64,
    /// `None` is Kafka's default: on unless other settings conflict.
    pub enable_idempotence: Option<bool>,
    /// `max.in.flight.requests.per.connection`, per partition here.
    pub max_in_flight: usize,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            acks: Acks::All,
            retries: i32::MAX as u32,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            request_timeout_ms: 30_000,
            delivery_timeout_ms: 120_000,
            enable_idempotence: None,
            max_in_flight: 5,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProducerConfigError {
    #[error("enable.idempotence=true conflicts with {setting}={value}: {why}")]
    Conflict { setting: &'static str, value: String, why: &'static str },
    #[error("{setting}={value}: {why}")]
    Invalid { setting: &'static str, value: String, why: &'static str },
}

impl ProducerConfig {
    /// Whether the producer will be idempotent, or why the settings conflict.
    /// An explicit `enable.idempotence=true` with conflicting settings is an
    /// error naming them; an unset one is quietly off (R4.6).
    pub fn idempotence(&self) -> Result<bool, ProducerConfigError> {
        if self.max_in_flight == 0 {
            return Err(ProducerConfigError::Invalid {
                setting: "max.in.flight.requests.per.connection",
                value: "0".into(),
                why: "must be at least 1",
            });
        }
        if self.delivery_timeout_ms < self.request_timeout_ms {
            return Err(ProducerConfigError::Invalid {
                setting: "delivery.timeout.ms",
                value: self.delivery_timeout_ms.to_string(),
                why: "must be at least request.timeout.ms",
            });
        }
        let conflict = if self.acks != Acks::All {
            Some(("acks", self.acks.to_string(), "idempotence needs acks=all"))
        } else if self.retries == 0 {
            Some(("retries", "0".to_string(), "idempotence needs retries > 0"))
        } else if self.max_in_flight > IDEMPOTENT_IN_FLIGHT_MAX {
            Some((
                "max.in.flight.requests.per.connection",
                self.max_in_flight.to_string(),
                "idempotence allows at most 5",
            ))
        } else {
            None
        };
        match (self.enable_idempotence, conflict) {
            (Some(true), Some((setting, value, why))) => Err(ProducerConfigError::Conflict { setting, value, why }),
            (Some(on), _) => Ok(on),
            (None, c) => Ok(c.is_none()),
        }
    }
}

/// How one send ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Acked {
        base_offset: Option<i64>,
        attempts: u32,
    },
    /// Definitely not appended.
    Failed {
        error: String,
        /// The last error's [`ClientError::code_name`].
        code: String,
        attempts: u32,
    },
    /// May or may not have been appended.
    Unknown {
        error: String,
        /// The last error's [`ClientError::code_name`].
        code: String,
        attempts: u32,
    },
}

/// Per-partition sequence state of an idempotent producer.
#[derive(Debug)]
struct SeqState {
    epoch: i16,
    next_seq: i32,
    /// Highest sequence the broker acknowledged in this epoch; -1 for none.
    last_acked_seq: i32,
    /// A batch of this epoch ended without an acknowledgement and may have
    /// been appended: its sequences can never be reused nor skipped, so the
    /// next batch starts a new epoch (KIP-360's bump after an expired batch).
    bump_before_next: bool,
}

struct PartitionState {
    seq: Mutex<SeqState>,
    /// Bounds in-flight requests to this partition.
    in_flight: Arc<Semaphore>,
    /// Free in-flight slot numbers (0..max.in.flight), one per permit, so a
    /// reservation can say which slot it occupies.
    free_slots: Mutex<Vec<usize>>,
    /// Woken when a batch is acknowledged (see [`Producer::deliver`]).
    acked: tokio::sync::Notify,
}

/// A batch that holds an in-flight slot of its partition and, with
/// idempotence, its sequence numbers: the order of reservations is the
/// order of sequences. Deliver it with [`Producer::deliver`]; dropping it
/// frees the slot.
pub struct Reservation {
    state: Arc<PartitionState>,
    slot: usize,
    _permit: tokio::sync::OwnedSemaphorePermit,
    topic: String,
    partition: u32,
    req: ProduceRequest,
    count: i32,
    deadline: Instant,
}

impl Reservation {
    /// Which of its partition's in-flight slots (0..max.in.flight) this batch occupies.
    pub fn slot(&self) -> usize {
        self.slot
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Before the permit (a field) is released, so a freed permit always has a slot.
        self.state.free_slots.lock().push(self.slot);
    }
}

pub struct Producer {
    cluster: Arc<ClusterClient>,
    config: ProducerConfig,
    idempotent: bool,
    producer_id: tokio::sync::Mutex<Option<i64>>,
    partitions: Mutex<HashMap<(String, u32), Arc<PartitionState>>>,
}

/// An idempotent batch ended without an acknowledgement. If it was surely
/// not appended and is the last one numbered, its sequences are handed out
/// again; otherwise the sequence has a hole the broker will never fill, and
/// the next batch starts a new epoch at sequence 0 (Kafka bumps the epoch
/// after an expired batch, KIP-360). Without this every later batch would be
/// refused with `OUT_OF_ORDER_SEQUENCE_NUMBER` until its delivery timeout.
fn after_unacknowledged(state: &PartitionState, req: &ProduceRequest, count: i32, maybe_appended: bool) {
    let mut s = state.seq.lock();
    let (Some(seq), Some(epoch)) = (req.base_sequence, req.producer_epoch) else { return };
    if epoch != s.epoch {
        return;
    }
    if !maybe_appended && s.next_seq == seq.wrapping_add(count) & i32::MAX {
        s.next_seq = seq;
    } else {
        s.bump_before_next = true;
    }
}

/// A broker accepts any sequence from a producer it has no state for
/// (R4.7 step 5), and HTTP requests on separate connections may arrive in
/// any order, unlike Kafka's one ordered connection. So a later batch must
/// not reach the broker before the epoch's first batch was acknowledged, or
/// it would be taken as the start. Stops waiting at `deadline`.
async fn wait_for_first_batch_of_epoch(state: &PartitionState, req: &ProduceRequest, deadline: Instant) {
    while let (Some(seq), Some(epoch)) = (req.base_sequence, req.producer_epoch) {
        let first_pending = {
            let s = state.seq.lock();
            seq != 0 && s.epoch == epoch && s.last_acked_seq < 0
        };
        if !first_pending || Instant::now() >= deadline {
            break;
        }
        let _ = tokio::time::timeout(FIRST_BATCH_POLL, state.acked.notified()).await;
    }
}

/// Notes an idempotent batch's acknowledgement and wakes the batches that
/// wait for it (the epoch's later batches, and any that overtook it).
fn record_ack(state: &PartitionState, req: &ProduceRequest, count: i32) {
    if let (Some(seq), Some(epoch)) = (req.base_sequence, req.producer_epoch) {
        let mut s = state.seq.lock();
        if s.epoch == epoch {
            s.last_acked_seq = s.last_acked_seq.max(seq + count - 1);
        }
        state.acked.notify_waiters();
    }
}

/// Renumbers the batch into the partition's current epoch if that moved on
/// since it was numbered; returns whether it did (and the batch should be
/// sent again at once).
fn renumber_if_epoch_moved(state: &PartitionState, req: &mut ProduceRequest, count: i32) -> bool {
    let mut s = state.seq.lock();
    if req.producer_epoch.is_some_and(|e| e != s.epoch) {
        req.producer_epoch = Some(s.epoch);
        req.base_sequence = Some(s.next_seq);
        s.next_seq = s.next_seq.wrapping_add(count) & i32::MAX;
        return true;
    }
    false
}

/// Whether the batch is of the current epoch but not next in sequence: an
/// earlier batch is still in flight and its acknowledgement is what lets
/// this one through.
fn overtook_an_earlier_batch(state: &PartitionState, req: &ProduceRequest) -> bool {
    let s = state.seq.lock();
    req.producer_epoch == Some(s.epoch) && req.base_sequence.is_some_and(|seq| seq > s.last_acked_seq.wrapping_add(1))
}

/// Whether an error means the request may have been appended.
fn maybe_appended(err: &ClientError, acks: Acks) -> bool {
    match err.code() {
        None => true, // timeout or broken connection: unknown
        Some(ErrorCode::RequestTimedOut | ErrorCode::NotEnoughReplicasAfterAppend) => true,
        // A parked acks=all request whose leader was deposed (R1.8).
        Some(ErrorCode::NotLeaderOrFollower) => acks == Acks::All,
        Some(_) => false,
    }
}

fn retriable(code: Option<ErrorCode>) -> bool {
    match code {
        None => true,
        Some(c) => matches!(
            c,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::RequestTimedOut
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotEnoughReplicasAfterAppend
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::KafkaStorageError
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::OutOfOrderSequenceNumber
                | ErrorCode::UnknownProducerId
        ),
    }
}

impl Producer {
    pub fn new(cluster: Arc<ClusterClient>, config: ProducerConfig) -> Result<Producer, ProducerConfigError> {
        let idempotent = config.idempotence()?;
        Ok(Producer {
            cluster,
            config,
            idempotent,
            producer_id: tokio::sync::Mutex::new(None),
            partitions: Mutex::default(),
        })
    }

    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    fn partition(&self, topic: &str, partition: u32) -> Arc<PartitionState> {
        let mut map = self.partitions.lock();
        map.entry((topic.to_string(), partition))
            .or_insert_with(|| {
                Arc::new(PartitionState {
                    seq: Mutex::new(SeqState { epoch: 0, next_seq: 0, last_acked_seq: -1, bump_before_next: false }),
                    in_flight: Arc::new(Semaphore::new(self.config.max_in_flight)),
                    free_slots: Mutex::new((0..self.config.max_in_flight).rev().collect()),
                    acked: tokio::sync::Notify::new(),
                })
            })
            .clone()
    }

    /// The producer id, asking again after failures until `deadline`
    /// (Kafka retries InitProducerId the same way).
    async fn producer_id_until(&self, deadline: Instant) -> Result<i64, ClientError> {
        let mut backoff_ms = self.config.retry_backoff_ms;
        // Bounded by the deadline.
        loop {
            match self.producer_id().await {
                Ok(id) => return Ok(id),
                Err(e) if Instant::now() + Duration::from_millis(backoff_ms) >= deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(self.config.retry_backoff_max_ms);
                }
            }
        }
    }

    async fn producer_id(&self) -> Result<i64, ClientError> {
        let mut id = self.producer_id.lock().await;
        if let Some(id) = *id {
            return Ok(id);
        }
        let got = self.cluster.init_producer_id().await?;
        *id = Some(got.producer_id);
        Ok(got.producer_id)
    }

    /// Sends `records` as one batch to `topic/partition`, retrying as
    /// configured, and says how it ended.
    pub async fn send(&self, topic: &str, partition: u32, records: Vec<ProduceRecord>) -> SendOutcome {
        let deadline = Instant::now() + Duration::from_millis(self.config.delivery_timeout_ms);
        match self.reserve(topic, partition, records, deadline).await {
            Ok(mut r) => self.deliver(&mut r).await,
            Err(failed) => failed,
        }
    }

    /// The producer's settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Waits for an in-flight slot of `topic/partition` (until `deadline`,
    /// the batch's delivery deadline) and numbers the batch. `Err` is a
    /// [`SendOutcome::Failed`]: the batch was never sent.
    pub async fn reserve(
        &self,
        topic: &str,
        partition: u32,
        records: Vec<ProduceRecord>,
        deadline: Instant,
    ) -> Result<Reservation, SendOutcome> {
        let state = self.partition(topic, partition);
        let Ok(Ok(permit)) = tokio::time::timeout_at(deadline.into(), state.in_flight.clone().acquire_owned()).await
        else {
            return Err(SendOutcome::Failed {
                error: "delivery.timeout.ms passed waiting for an in-flight slot".into(),
                code: "timeout".into(),
                attempts: 0,
            });
        };
        let slot = state.free_slots.lock().pop().expect("one free slot per permit");
        let count = records.len() as i32;
        let mut req = ProduceRequest {
            acks: self.config.acks.into(),
            timeout_ms: Some(self.config.request_timeout_ms),
            producer_id: None,
            producer_epoch: None,
            base_sequence: None,
            records,
        };
        let r = |req| Reservation {
            state: state.clone(),
            slot,
            _permit: permit,
            topic: topic.to_string(),
            partition,
            req,
            count,
            deadline,
        };
        if self.idempotent {
            match self.producer_id_until(deadline).await {
                Ok(pid) => {
                    let mut s = state.seq.lock();
                    if s.bump_before_next {
                        s.epoch = s.epoch.wrapping_add(1) & i16::MAX;
                        s.next_seq = 0;
                        s.last_acked_seq = -1;
                        s.bump_before_next = false;
                    }
                    req.producer_id = Some(pid);
                    req.producer_epoch = Some(s.epoch);
                    req.base_sequence = Some(s.next_seq);
                    s.next_seq = s.next_seq.wrapping_add(count) & i32::MAX;
                }
                Err(e) => {
                    drop(r(req));
                    let (error, code) = (format!("no producer id: {e}"), e.code_name());
                    return Err(SendOutcome::Failed { error, code, attempts: 0 });
                }
            }
        }
        Ok(r(req))
    }

    /// Sends a reserved batch, retrying as configured until its deadline,
    /// and says how it ended. The reservation keeps its slot until dropped.
    pub async fn deliver(&self, r: &mut Reservation) -> SendOutcome {
        let (topic, partition, count, deadline) = (r.topic.clone(), r.partition, r.count, r.deadline);
        let state = r.state.clone();
        let req = &mut r.req;
        wait_for_first_batch_of_epoch(&state, req, deadline).await;
        let mut attempts = 0u32;
        let mut maybe = false;
        let mut backoff_ms = self.config.retry_backoff_ms;
        loop {
            attempts += 1;
            let result = tokio::time::timeout_at(deadline.into(), self.cluster.produce(&topic, partition, req)).await;
            let err = match result {
                Ok(Ok(resp)) => {
                    record_ack(&state, req, count);
                    return SendOutcome::Acked { base_offset: resp.base_offset, attempts };
                }
                Ok(Err(e)) => e,
                Err(_) => ClientError::Timeout("delivery.timeout.ms passed".into()),
            };
            maybe |= self.config.acks == Acks::None || maybe_appended(&err, self.config.acks);
            let code = err.code();
            if self.idempotent
                && matches!(code, Some(ErrorCode::OutOfOrderSequenceNumber | ErrorCode::UnknownProducerId))
            {
                self.maybe_bump_epoch(&state, req, count, code);
            }
            // Another batch bumped the epoch while this one was in flight:
            // the broker refused it unappended, so it is renumbered into the
            // current epoch and sent again, as Kafka re-sequences in-flight
            // batches after a bump. Not when an earlier attempt may have
            // been appended: a new identity could then duplicate it
            // (KAFKA-14034).
            if self.idempotent
                && code == Some(ErrorCode::InvalidProducerEpoch)
                && !maybe
                && Instant::now() < deadline
                && renumber_if_epoch_moved(&state, req, count)
            {
                continue;
            }
            let out_of_time = Instant::now() + Duration::from_millis(backoff_ms) >= deadline;
            if !retriable(code) || attempts > self.config.retries || out_of_time {
                return self.give_up(&state, req, count, &err, attempts, maybe);
            }
            // A batch that overtook an earlier one in flight (requests on
            // separate connections arrive in any order) is retried as soon
            // as an earlier batch is acknowledged, not after a backoff:
            // otherwise every reordering stalls the partition.
            if self.idempotent
                && code == Some(ErrorCode::OutOfOrderSequenceNumber)
                && overtook_an_earlier_batch(&state, req)
            {
                let _ = tokio::time::timeout(Duration::from_millis(backoff_ms), state.acked.notified()).await;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            backoff_ms = (backoff_ms * 2).min(self.config.retry_backoff_max_ms);
        }
    }

    /// The final outcome of a batch that will not be retried. The sequence
    /// state is repaired first, so the next batch is not refused because of
    /// this one (see [`after_unacknowledged`]).
    fn give_up(
        &self,
        state: &PartitionState,
        req: &ProduceRequest,
        count: i32,
        err: &ClientError,
        attempts: u32,
        maybe: bool,
    ) -> SendOutcome {
        let (error, code) = (format!("{err} (after {attempts} attempts)"), err.code_name());
        if self.idempotent {
            after_unacknowledged(state, req, count, maybe);
        }
        if maybe {
            SendOutcome::Unknown { error, code, attempts }
        } else {
            SendOutcome::Failed { error, code, attempts }
        }
    }

    /// KIP-360: a refused batch that is next in sequence means a real gap
    /// (or lost producer state): bump the epoch, restart sequences at 0, and
    /// renumber this batch. A batch that is not next is left as it is; an
    /// earlier one is still in flight.
    fn maybe_bump_epoch(&self, state: &PartitionState, req: &mut ProduceRequest, count: i32, code: Option<ErrorCode>) {
        let mut s = state.seq.lock();
        let (Some(seq), Some(epoch)) = (req.base_sequence, req.producer_epoch) else { return };
        let next_in_sequence = epoch == s.epoch && seq == s.last_acked_seq.wrapping_add(1);
        if code == Some(ErrorCode::UnknownProducerId) || next_in_sequence {
            s.epoch = s.epoch.wrapping_add(1) & i16::MAX;
            s.last_acked_seq = -1;
            req.producer_epoch = Some(s.epoch);
            req.base_sequence = Some(0);
            s.next_seq = count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_defaults_on_and_conflicts_are_named() {
        assert_eq!(ProducerConfig::default().idempotence(), Ok(true));
        let acks1 = ProducerConfig { acks: Acks::Leader, ..ProducerConfig::default() };
        assert_eq!(acks1.idempotence(), Ok(false), "unset: quietly off, as Kafka does");
        let explicit = ProducerConfig { enable_idempotence: Some(true), ..acks1 };
        let err = explicit.idempotence().unwrap_err().to_string();
        assert!(err.contains("enable.idempotence=true") && err.contains("acks=1"), "{err}");
        let in_flight =
            ProducerConfig { enable_idempotence: Some(true), max_in_flight: 6, ..ProducerConfig::default() };
        assert!(in_flight.idempotence().unwrap_err().to_string().contains("max.in.flight.requests.per.connection=6"));
        let no_retries = ProducerConfig { enable_idempotence: Some(true), retries: 0, ..ProducerConfig::default() };
        assert!(no_retries.idempotence().unwrap_err().to_string().contains("retries=0"));
        let short = ProducerConfig { delivery_timeout_ms: 10, ..ProducerConfig::default() };
        assert!(short.idempotence().unwrap_err().to_string().contains("delivery.timeout.ms"));
    }

    #[test]
    fn only_the_next_batch_in_sequence_bumps_the_epoch() {
        let cluster = Arc::new(ClusterClient::new(vec!["http://127.0.0.1:1".into()], Duration::from_millis(10)));
        let p = Producer::new(cluster, ProducerConfig::default()).unwrap();
        let state = p.partition("t", 0);
        {
            let mut s = state.seq.lock();
            s.next_seq = 10;
            s.last_acked_seq = 4;
        }
        let mut req = ProduceRequest {
            acks: Acks::All.into(),
            timeout_ms: None,
            producer_id: Some(1),
            producer_epoch: Some(0),
            base_sequence: Some(7),
            records: vec![],
        };
        p.maybe_bump_epoch(&state, &mut req, 3, Some(ErrorCode::OutOfOrderSequenceNumber));
        assert_eq!(
            (req.producer_epoch, req.base_sequence),
            (Some(0), Some(7)),
            "seq 7 is not next (5 is): retried as is"
        );
        let mut next = ProduceRequest { base_sequence: Some(5), ..req.clone() };
        p.maybe_bump_epoch(&state, &mut next, 2, Some(ErrorCode::OutOfOrderSequenceNumber));
        assert_eq!(
            (next.producer_epoch, next.base_sequence),
            (Some(1), Some(0)),
            "the next batch refused: a real gap bumps the epoch"
        );
        assert_eq!(state.seq.lock().next_seq, 2);
    }

    /// A batch that ended unacknowledged leaves no hole the next batch would
    /// run into: a surely unappended last batch gives its sequences back; an
    /// unknown one makes the next batch start a new epoch at 0.
    #[test]
    fn an_unacknowledged_batch_does_not_block_the_next_one() {
        let cluster = Arc::new(ClusterClient::new(vec!["http://127.0.0.1:1".into()], Duration::from_millis(10)));
        let p = Producer::new(cluster, ProducerConfig::default()).unwrap();
        let state = p.partition("t", 0);
        state.seq.lock().next_seq = 12;
        let req = |seq| ProduceRequest {
            acks: Acks::All.into(),
            timeout_ms: None,
            producer_id: Some(1),
            producer_epoch: Some(0),
            base_sequence: Some(seq),
            records: vec![],
        };
        after_unacknowledged(&state, &req(10), 2, false);
        assert_eq!(state.seq.lock().next_seq, 10, "definitely not appended: sequences reused");
        assert!(!state.seq.lock().bump_before_next);
        after_unacknowledged(&state, &req(8), 2, true);
        assert!(state.seq.lock().bump_before_next, "maybe appended: the next batch bumps the epoch");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            *p.producer_id.lock().await = Some(1);
            let deadline = Instant::now() + Duration::from_secs(1);
            let r = p
                .reserve("t", 0, vec![ProduceRecord { key: None, value: "v".into(), timestamp: None }], deadline)
                .await
                .ok()
                .unwrap();
            assert_eq!((r.req.producer_epoch, r.req.base_sequence), (Some(1), Some(0)));
        });
    }
}
