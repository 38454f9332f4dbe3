//! Produce over Kafka's protocol: each partition's RecordBatch v2 becomes
//! the same append the HTTP API makes (acks, the idempotent producer's id,
//! epoch and base sequence, dedupe and sequence checks, bug switches), so
//! both listeners share one set of semantics.
//!
//! The log keeps keys and values as UTF-8 text, so a record that is not
//! UTF-8 is refused (`CORRUPT_MESSAGE`) rather than altered; compressed
//! batches are refused with `UNSUPPORTED_COMPRESSION_TYPE` (none of the
//! codecs is built in).

use bytes::Bytes;
use faultline_client::api::{ErrorCode, ProduceRecord, ProduceRequest as HttpProduce, RawAcks};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::broker::Broker;

/// Kafka's codes for refusals that have no name in the HTTP API.
const CORRUPT_MESSAGE: i16 = 2;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;

/// The append one partition's data asks for, or the code that refuses it.
fn append_of(req: &ProduceRequest, records: Option<&Bytes>) -> Result<HttpProduce, i16> {
    let mut data = records.cloned().ok_or(CORRUPT_MESSAGE)?;
    let sets = RecordBatchDecoder::decode_all(&mut data).map_err(|_| UNSUPPORTED_COMPRESSION_TYPE)?;
    // Clients send one batch per partition per request.
    let [set] = &sets[..] else { return Err(ErrorCode::InvalidRequest.kafka_code()) };
    if set.compression != Compression::None {
        return Err(UNSUPPORTED_COMPRESSION_TYPE);
    }
    let first = set.records.first().ok_or(CORRUPT_MESSAGE)?;
    let text =
        |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).map_err(|_| CORRUPT_MESSAGE)).transpose();
    let records = set
        .records
        .iter()
        .map(|r| {
            Ok(ProduceRecord {
                key: text(&r.key)?,
                value: text(&r.value)?.unwrap_or_default(),
                timestamp: Some(r.timestamp),
            })
        })
        .collect::<Result<Vec<_>, i16>>()?;
    let idempotent = first.producer_id >= 0;
    Ok(HttpProduce {
        acks: RawAcks::Number(i64::from(req.acks)),
        timeout_ms: u64::try_from(req.timeout_ms).ok(),
        producer_id: idempotent.then_some(first.producer_id),
        producer_epoch: idempotent.then_some(first.producer_epoch),
        base_sequence: idempotent.then_some(first.sequence),
        records,
    })
}

/// InitProducerId for an idempotent producer: a cluster-unique id at
/// epoch 0, as the HTTP API allocates (a bump request gets a fresh id,
/// which Kafka allows). Transactions are not supported: a transactional id
/// is refused with `INVALID_REQUEST`.
pub async fn init_producer_id(req: &InitProducerIdRequest, broker: &Broker) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return response.with_error_code(ErrorCode::InvalidRequest.kafka_code());
    }
    match broker.init_producer_id().await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => response.with_error_code(e.code.kafka_code()),
    }
}

/// Appends every partition's batch in request order; `None` for acks=0,
/// which Kafka never answers.
pub async fn produce(req: &ProduceRequest, version: i16, broker: &Broker) -> Option<ProduceResponse> {
    let mut topics = Vec::new();
    for t in &req.topic_data {
        let mut partitions = Vec::new();
        for p in &t.partition_data {
            let base = PartitionProduceResponse::default().with_index(p.index);
            let outcome = match append_of(req, p.records.as_ref()) {
                Ok(append) => broker
                    .produce(&t.name.0, i64::from(p.index), &append)
                    .await
                    .map_err(|e| (e.code.kafka_code(), Some(e.message))),
                Err(code) => Err((code, None)),
            };
            partitions.push(match outcome {
                Ok((_, r)) => {
                    let start = if version >= 5 { r.log_start_offset.unwrap_or(-1) } else { -1 };
                    base.with_base_offset(r.base_offset.unwrap_or(-1)).with_log_start_offset(start)
                }
                Err((code, message)) => base
                    .with_error_code(code)
                    .with_base_offset(-1)
                    .with_error_message(message.map(StrBytes::from_string)),
            });
        }
        topics.push(TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(partitions));
    }
    (req.acks != 0).then(|| ProduceResponse::default().with_responses(topics))
}
