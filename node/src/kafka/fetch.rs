//! Reading over Kafka's protocol: Fetch and ListOffsets, through the same
//! broker reads as the HTTP API (leader only, never past the high
//! watermark), and Kafka's error codes for the broker's errors.

use bytes::{Bytes, BytesMut};
use faultline_client::api::{ErrorCode, FetchRequest as HttpFetch, FetchedRecord};
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use crate::broker::{Broker, FETCH_BYTES_MAX, FETCH_WAIT_MS_MAX};
use crate::error::ApiError;

/// Records as Kafka record batches: one batch per run of records with the
/// same leader epoch, so each batch's epoch is its records'. The encoder
/// keeps records in one batch only while offset minus sequence is constant,
/// so each record's sequence is the batch's "no sequence" (-1) plus its
/// offset delta, which is what a decoder derives from a -1 base sequence.
fn batches(records: &[FetchedRecord]) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    for run in records.chunk_by(|a, b| a.leader_epoch == b.leader_epoch) {
        let first = run[0].offset;
        let records: Vec<Record> = run
            .iter()
            .map(|r| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: r.leader_epoch,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: r.offset,
                sequence: (r.offset - first) as i32 - 1,
                timestamp: r.timestamp,
                key: r.key.clone().map(Bytes::from),
                value: Some(Bytes::from(r.value.clone())),
                headers: Default::default(),
            })
            .collect();
        RecordBatchEncoder::encode(&mut out, &records, &options)
            .map_err(|e| ApiError::new(ErrorCode::UnknownServerError, format!("encoding a record batch: {e}")))?;
    }
    Ok(out.freeze())
}

/// One partition of a Fetch, waiting up to `wait_ms` for records; the log
/// start offset only from v5, where the field exists.
async fn read(broker: &Broker, version: i16, topic: &str, p: &FetchPartition, wait_ms: u64) -> PartitionData {
    let (index, offset, max_bytes) = (p.partition, p.fetch_offset, p.partition_max_bytes);
    let req = HttpFetch {
        offset,
        max_records: None,
        max_bytes: Some(max_bytes.clamp(1, FETCH_BYTES_MAX as i32) as u32),
        max_wait_ms: Some(wait_ms),
    };
    let base = PartitionData::default().with_partition_index(index);
    match broker.fetch(topic, i64::from(index), &req).await.and_then(|r| Ok((batches(&r.records)?, r))) {
        Ok((records, r)) => {
            let start = if version >= 5 { r.log_start_offset } else { -1 };
            base.with_high_watermark(r.high_watermark)
                .with_last_stable_offset(r.high_watermark)
                .with_log_start_offset(start)
                .with_records(Some(records))
        }
        Err(e) => base.with_error_code(e.code.kafka_code()).with_high_watermark(-1).with_records(Some(Bytes::new())),
    }
}

/// Fetch: every requested partition read at once; when nothing at all
/// came back and the client is willing to wait, one long poll on the first
/// partition (bounded by `max_wait_ms`), then the partitions again.
pub async fn fetch(req: &FetchRequest, version: i16, broker: &Broker) -> FetchResponse {
    let wait_ms = u64::try_from(req.max_wait_ms).unwrap_or(0).min(FETCH_WAIT_MS_MAX);
    let mut response = fetch_once(req, version, broker).await;
    let empty = |r: &FetchResponse| {
        r.responses.iter().flat_map(|t| &t.partitions).all(|p| p.records.as_ref().is_none_or(|b| b.is_empty()))
    };
    if empty(&response) && wait_ms > 0 {
        if let Some((topic, p)) = req.topics.first().and_then(|t| Some((t, t.partitions.first()?))) {
            read(broker, version, &topic.topic.0, p, wait_ms).await;
        }
        response = fetch_once(req, version, broker).await;
    }
    response
}

/// Every requested partition, read without waiting.
async fn fetch_once(req: &FetchRequest, version: i16, broker: &Broker) -> FetchResponse {
    let mut topics = Vec::new();
    for t in &req.topics {
        let mut partitions = Vec::new();
        for p in &t.partitions {
            partitions.push(read(broker, version, &t.topic.0, p, 0).await);
        }
        topics.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions));
    }
    FetchResponse::default().with_responses(topics)
}

/// ListOffsets: the log start (`-2`, earliest) or the high watermark (`-1`,
/// latest, what a consumer can read) of partitions this node leads. Other
/// timestamps need a time index the node does not keep: `INVALID_REQUEST`.
pub fn list_offsets(req: &ListOffsetsRequest, version: i16, broker: &Broker) -> ListOffsetsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    match offset_at(broker, &t.name.0, p.partition_index, p.timestamp) {
                        Ok((offset, epoch)) => {
                            // The leader epoch exists from v4.
                            let epoch = if version >= 4 { epoch } else { -1 };
                            base.with_offset(offset).with_leader_epoch(epoch).with_timestamp(-1)
                        }
                        Err(code) => base.with_error_code(code).with_offset(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn offset_at(broker: &Broker, topic: &str, index: i32, timestamp: i64) -> Result<(i64, i32), i16> {
    let p = broker.partition(topic, i64::from(index)).map_err(|e| e.code.kafka_code())?;
    let (leader, start, epoch) = p.read_state(|st| (st.is_leader(), st.log().log_start_offset(), st.leader_epoch()));
    if !leader {
        return Err(ErrorCode::NotLeaderOrFollower.kafka_code());
    }
    match timestamp {
        -2 => Ok((start, epoch)),
        -1 => Ok((p.high_watermark(), epoch)),
        _ => Err(ErrorCode::InvalidRequest.kafka_code()),
    }
}
