//! The produce and fetch requests: validation, encoding into a batch,
//! acks handling, and decoding fetched batches for the wire.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultline_client::api::{
    Acks, ErrorCode, FetchRequest, FetchResponse, FetchedRecord, ProduceRequest, ProduceResponse,
};

use super::{Broker, OFFSETS_TOPIC, Partition};
use crate::error::ApiError;
use crate::log::batch::{self, NewRecord, ProducerFields};

/// Kafka's `request.timeout.ms` default, used when a produce names none.
pub const PRODUCE_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Longest a produce may ask to wait for replication; bounds parked requests.
pub const PRODUCE_TIMEOUT_MS_MAX: u64 = 300_000;
/// Kafka's `max.poll.records` default.
pub const FETCH_RECORDS_DEFAULT: u32 = 500;
/// Bound on records in one fetch answer, to bound its JSON size.
pub const FETCH_RECORDS_MAX: u32 = 100_000;
/// Kafka's `max.partition.fetch.bytes` default.
pub const FETCH_BYTES_DEFAULT: u32 = 1 << 20;
/// Bound on bytes read for one fetch.
pub const FETCH_BYTES_MAX: u32 = 64 << 20;
/// Longest long-poll a fetch may ask for.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

/// An acks=0 batch that was validated and answered, waiting to be appended.
pub struct Acks0Batch {
    pub partition: Arc<Partition>,
    pub batch: Vec<u8>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn producer_fields(req: &ProduceRequest) -> Result<ProducerFields, ApiError> {
    match (req.producer_id, req.producer_epoch, req.base_sequence) {
        (None, None, None) => Ok(ProducerFields::NONE),
        (Some(id), Some(epoch), Some(seq)) if id >= 0 && epoch >= 0 && seq >= 0 => {
            Ok(ProducerFields { producer_id: id, producer_epoch: epoch, base_sequence: seq })
        }
        (Some(_), Some(_), Some(_)) => {
            Err(ApiError::invalid("producer_id, producer_epoch and base_sequence must be non-negative"))
        }
        _ => Err(ApiError::invalid(
            "producer_id, producer_epoch and base_sequence come all three together or not at all",
        )),
    }
}

/// Validates a produce request and encodes its records as one batch.
fn encode_request(partition: &Partition, req: &ProduceRequest) -> Result<(Acks, Vec<u8>), ApiError> {
    let acks = req.acks.validate().ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be 0, 1, -1 or \"all\"; got {}", serde_json::to_string(&req.acks).unwrap_or_default()),
        )
    })?;
    if partition.topic == OFFSETS_TOPIC {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("cannot produce to the internal topic {OFFSETS_TOPIC}"),
        ));
    }
    if req.records.is_empty() {
        return Err(ApiError::invalid("records: a produce request needs at least one record"));
    }
    let producer = producer_fields(req)?;
    let now = now_ms();
    let records: Vec<NewRecord<'_>> = req
        .records
        .iter()
        .map(|r| NewRecord {
            key: r.key.as_deref().map(str::as_bytes),
            value: r.value.as_bytes(),
            timestamp_ms: r.timestamp.unwrap_or(now),
        })
        .collect();
    let size = batch::encoded_len(&records);
    if size > partition.config.max_message_bytes {
        return Err(ApiError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "the batch is {size} bytes; max.message.bytes of {} is {}",
                partition.topic, partition.config.max_message_bytes
            ),
        ));
    }
    Ok((acks, batch::encode(&records, producer)))
}

impl Broker {
    /// Handles one produce request. Returns the acks it was made with, so
    /// the HTTP layer can answer acks=0 with 202.
    pub async fn produce(
        &self,
        topic: &str,
        index: i64,
        req: &ProduceRequest,
    ) -> Result<(Acks, ProduceResponse), ApiError> {
        let partition = self.partition(topic, index)?;
        let (acks, mut batch) = encode_request(&partition, req)?;
        let timeout_ms = req.timeout_ms.unwrap_or(PRODUCE_TIMEOUT_MS_DEFAULT);
        if timeout_ms > PRODUCE_TIMEOUT_MS_MAX {
            return Err(ApiError::invalid(format!(
                "timeout_ms must be at most {PRODUCE_TIMEOUT_MS_MAX}, got {timeout_ms}"
            )));
        }
        let timeout = Duration::from_millis(timeout_ms);
        match acks {
            Acks::None => {
                let queued = Acks0Batch { partition, batch };
                tokio::time::timeout(timeout, self.acks0_sender().send(queued))
                    .await
                    .map_err(|_| {
                        ApiError::new(ErrorCode::RequestTimedOut, "the acks=0 queue stayed full for timeout_ms")
                    })?
                    .map_err(|_| ApiError::new(ErrorCode::RequestTimedOut, "the broker is shutting down"))?;
                Ok((acks, ProduceResponse { base_offset: None, log_start_offset: None }))
            }
            Acks::Leader => {
                let (info, _) = partition.append(&mut batch, false)?;
                self.data_arrived.notify_waiters();
                let start = partition.read_state(|st| st.log().log_start_offset());
                Ok((acks, ProduceResponse { base_offset: Some(info.base_offset), log_start_offset: Some(start) }))
            }
            Acks::All => {
                let (info, epoch) = partition.append(&mut batch, true)?;
                self.data_arrived.notify_waiters();
                let committed = if partition.config.bugs.on(crate::bugs::Bug::AckAllOnLocalAppend) {
                    true
                } else {
                    partition.wait_for_commit(info.last_offset + 1, epoch, timeout).await?
                };
                if !committed {
                    return Err(ApiError::new(
                        ErrorCode::RequestTimedOut,
                        format!(
                            "the high watermark did not reach {} within {timeout_ms} ms; the batch stays in the log",
                            info.last_offset + 1
                        ),
                    ));
                }
                if !partition.isr_satisfies_min() {
                    return Err(ApiError::new(
                        ErrorCode::NotEnoughReplicasAfterAppend,
                        "the ISR shrank below min.insync.replicas after the append",
                    ));
                }
                let start = partition.read_state(|st| st.log().log_start_offset());
                Ok((acks, ProduceResponse { base_offset: Some(info.base_offset), log_start_offset: Some(start) }))
            }
        }
    }

    /// Handles one fetch request.
    pub async fn fetch(&self, topic: &str, index: i64, req: &FetchRequest) -> Result<FetchResponse, ApiError> {
        let partition = self.partition(topic, index)?;
        let max_records = req.max_records.unwrap_or(FETCH_RECORDS_DEFAULT);
        if !(1..=FETCH_RECORDS_MAX).contains(&max_records) {
            return Err(ApiError::invalid(format!(
                "max_records must be in 1..={FETCH_RECORDS_MAX}, got {max_records}"
            )));
        }
        let max_bytes = req.max_bytes.unwrap_or(FETCH_BYTES_DEFAULT);
        if !(1..=FETCH_BYTES_MAX).contains(&max_bytes) {
            return Err(ApiError::invalid(format!("max_bytes must be in 1..={FETCH_BYTES_MAX}, got {max_bytes}")));
        }
        let max_wait_ms = req.max_wait_ms.unwrap_or(0);
        if max_wait_ms > FETCH_WAIT_MS_MAX {
            return Err(ApiError::invalid(format!(
                "max_wait_ms must be at most {FETCH_WAIT_MS_MAX}, got {max_wait_ms}"
            )));
        }
        let read = partition.fetch(req.offset, max_bytes as usize, Duration::from_millis(max_wait_ms)).await?;
        let records = decode_records(&read.batches, req.offset, read.visible_end, max_records as usize)
            .map_err(|e| ApiError::new(ErrorCode::KafkaStorageError, format!("{topic}/{index}: {e}")))?;
        let next_offset = records.last().map_or(req.offset, |r| r.offset + 1);
        Ok(FetchResponse {
            records,
            high_watermark: read.high_watermark,
            log_start_offset: read.log_start_offset,
            next_offset,
        })
    }
}

/// Decodes batches into wire records with offsets in `[from, upto)`, at most `max`.
pub fn decode_records(
    batches: &[Vec<u8>],
    from: i64,
    upto: i64,
    max: usize,
) -> Result<Vec<FetchedRecord>, batch::BatchError> {
    let mut out = Vec::new();
    for b in batches {
        let header = batch::parse_header(b)?;
        let mut full = false;
        batch::for_each_record(b, &header, |r| {
            if r.offset < from || r.offset >= upto || full {
                return;
            }
            if out.len() == max {
                full = true;
                return;
            }
            out.push(FetchedRecord {
                offset: r.offset,
                leader_epoch: header.leader_epoch,
                timestamp: r.timestamp_ms,
                key: r.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                value: String::from_utf8_lossy(r.value).into_owned(),
            });
        })?;
        if full {
            break;
        }
    }
    Ok(out)
}
