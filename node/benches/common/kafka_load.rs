//! A raw Kafka-protocol load client: each connection sends one pre-encoded
//! Produce request (v9, one RecordBatch v2 of `batch` records) at a time and
//! reads its answer, so the client spends no time encoding and the node's
//! Kafka listener is what is measured. Mirrors [`super::produce_load`]: the
//! same concurrency, duration and record size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{LoadResult, Options, VALUE_BYTES, finish};

const PRODUCE_VERSION: i16 = 9;

/// One Produce frame (length prefix included) for `topic`/`partition`.
fn produce_frame(topic: &str, partition: i32, batch: usize, acks: i16) -> Bytes {
    let records: Vec<Record> = (0..batch)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // One batch with no sequence: base -1 plus the offset delta.
            sequence: i as i32 - 1,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from("v".repeat(VALUE_BYTES))),
            headers: Default::default(),
        })
        .collect();
    let mut batch_bytes = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut batch_bytes, &records, &options).unwrap();
    let data = PartitionProduceData::default().with_index(partition).with_records(Some(batch_bytes.freeze()));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![data]);
    let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("bench")));
    let mut body = BytesMut::new();
    header.encode(&mut body, ApiKey::Produce.request_header_version(PRODUCE_VERSION)).unwrap();
    req.encode(&mut body, PRODUCE_VERSION).unwrap();
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame.freeze()
}

/// Whether a Produce answer reports success for its one partition.
fn ok(mut answer: Bytes) -> bool {
    let header_version = ApiKey::Produce.response_header_version(PRODUCE_VERSION);
    ResponseHeader::decode(&mut answer, header_version).is_ok()
        && ProduceResponse::decode(&mut answer, PRODUCE_VERSION)
            .is_ok_and(|r| r.responses.iter().flat_map(|t| &t.partition_responses).all(|p| p.error_code == 0))
}

/// Drives `o.concurrency` connections for `o.seconds`, connection `i` at
/// partition `i % partitions`, one request in flight each.
pub async fn kafka_produce_load(
    addr: std::net::SocketAddr,
    topic: &str,
    partitions: i32,
    batch: usize,
    acks: i16,
    o: &Options,
) -> LoadResult {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..o.concurrency)
        .map(|i| {
            let frame = produce_frame(topic, (i as i32) % partitions, batch, acks);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
                conn.set_nodelay(true).unwrap();
                let mut hist = hdrhistogram::Histogram::<u64>::new(3).unwrap();
                let (mut good, mut errors) = (0u64, 0u64);
                let mut answer = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    conn.write_all(&frame).await.unwrap();
                    let len = conn.read_i32().await.unwrap() as usize;
                    answer.resize(len, 0);
                    conn.read_exact(&mut answer).await.unwrap();
                    if ok(Bytes::copy_from_slice(&answer)) {
                        good += 1;
                        hist.record(t.elapsed().as_micros() as u64).unwrap();
                    } else {
                        errors += 1;
                    }
                }
                (good, errors, hist)
            })
        })
        .collect();
    finish(tasks, &stop, start, batch, o).await
}
