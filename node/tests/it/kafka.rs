//! The Kafka-protocol listener with a raw client built on the same codecs:
//! ApiVersions (also at a version it does not support), Metadata with the
//! leaders and ISR the controller holds, and frames that cannot be answered
//! closing only their own connection.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use faultline_client::api::{Acks, FetchRequest};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::api::{create, produce_req};
use crate::util::Node;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends one request and reads its response body (after the header).
pub(crate) fn call<Req: Encodable>(s: &mut TcpStream, key: ApiKey, version: i16, req: &Req) -> Bytes {
    call_as(s, key, version, version, req)
}

/// As [`call`], with the header naming `wire_version` and the body encoded
/// at `body_version` (to ask for a version the codec cannot encode).
fn call_as<Req: Encodable>(s: &mut TcpStream, key: ApiKey, wire_version: i16, body_version: i16, req: &Req) -> Bytes {
    let version = wire_version;
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("faultline-test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, key.request_header_version(body_version)).unwrap();
    req.encode(&mut body, body_version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    let mut buf = Bytes::from(buf);
    let header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(body_version) };
    let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
    assert_eq!(header.correlation_id, 7, "the response answers our request");
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_and_metadata_answer_over_the_kafka_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listeners = format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{port}");
    let node = Node::start(dir.path(), &[&listeners]);
    let client = node.client();
    create(&client, "events", 2).await;
    client.produce("events", 0, &produce_req(Acks::All, &["a"])).await.unwrap();

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut body = call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let versions = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(versions.error_code, 0);
    let metadata = versions.api_keys.iter().find(|k| k.api_key == ApiKey::Metadata as i16).expect("Metadata");
    assert_eq!((metadata.min_version, metadata.max_version), (0, 12));

    // A newer ApiVersions than supported: answered in v0 with the ranges.
    let mut body = call_as(&mut s, ApiKey::ApiVersions, 99, 3, &ApiVersionsRequest::default());
    let v0 = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(v0.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(v0.api_keys.iter().any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 3));

    for version in [1, 9, 12] {
        let topics = vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("events")))),
            MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("nope")))),
        ];
        let req = MetadataRequest::default().with_topics(Some(topics));
        let mut body = call(&mut s, ApiKey::Metadata, version, &req);
        let m = MetadataResponse::decode(&mut body, version).unwrap();
        assert_eq!(m.brokers.len(), 1, "v{version}: {m:?}");
        assert_eq!((m.brokers[0].node_id.0, m.brokers[0].port), (1, i32::from(port)));
        assert_eq!(m.controller_id.0, 1);
        let events = &m.topics[0];
        assert_eq!((events.error_code, events.partitions.len()), (0, 2), "v{version}: {events:?}");
        let p0 = &events.partitions[0];
        assert_eq!((p0.leader_id.0, p0.replica_nodes.len(), p0.isr_nodes.len()), (1, 1, 1));
        assert_eq!(m.topics[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION for an unknown topic");
    }
    drop(s);

    // Frames that cannot be answered close their connection only.
    for garbage in
        [&[0u8, 0, 0, 6, 0x7f, 0x7f, 0, 0, 0, 1][..], &[0x7f, 0xff, 0xff, 0xff][..], &[0, 0, 0, 2, 0, 18][..]]
    {
        let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
        bad.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        bad.write_all(garbage).unwrap();
        let mut buf = [0u8; 16];
        let n = bad.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "{garbage:?}: the connection is closed without an answer");
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut body = call(&mut s, ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    assert_eq!(ApiVersionsResponse::decode(&mut body, 0).unwrap().error_code, 0, "other connections go on");
    assert!(client.health().await.is_ok());
    let _ = body.remaining();
}

/// `kcat -L` (librdkafka) against a 3-node cluster's Kafka listeners: every
/// broker, and every partition's leader, replicas and ISR as the
/// controller has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_brokers_leaders_and_isr_of_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kafka) = crate::cluster::Cluster::start_with_kafka(dir.path(), 3, crate::cluster::FAST);
    let req = crate::cluster::create_req("events", 3, &[("min.insync.replicas", "2")]);
    cluster.client(1).create_topic(&req).await.unwrap();
    let p =
        cluster.wait_for("events", &[], "a full ISR", std::time::Duration::from_secs(10), |p| p.isr.len() == 3).await;
    let out = std::process::Command::new("kcat")
        .args(["-b", &kafka[0].to_string(), "-L", "-t", "events", "-m", "10"])
        .output()
        .expect("kcat runs (Debian package kcat; scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kcat -L: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(" 3 brokers:"), "{text}");
    for (i, k) in kafka.iter().enumerate() {
        assert!(text.contains(&format!("broker {} at {k}", i + 1)), "broker {} at {k} in {text}", i + 1);
    }
    let leader = p.leader.unwrap();
    let replicas: Vec<String> = p.replicas.iter().map(i32::to_string).collect();
    let isr: Vec<String> = p.isr.iter().map(i32::to_string).collect();
    let line = format!("partition 0, leader {leader}, replicas: {}, isrs: {}", replicas.join(","), isr.join(","));
    assert!(text.contains(&line), "{line} in {text}");

    // librdkafka's idempotent producer (InitProducerId, then acks=all with
    // sequences, to each partition's leader from Metadata) and its consumer,
    // over the Kafka listeners.
    let brokers: Vec<String> = kafka.iter().map(ToString::to_string).collect();
    let lines: Vec<String> = (0..30).map(|i| format!("k{i}:v{i}")).collect();
    let produced = kcat(
        &["-b", &brokers.join(","), "-P", "-t", "events", "-K:", "-X", "enable.idempotence=true"],
        &lines.join("\n"),
    );
    assert!(produced.status.success(), "kcat -P: {}", String::from_utf8_lossy(&produced.stderr));
    let consumed = kcat(&["-b", &brokers[0], "-C", "-t", "events", "-o", "beginning", "-e", "-f", "%k:%s\n"], "");
    let mut got: Vec<String> = String::from_utf8_lossy(&consumed.stdout).lines().map(str::to_string).collect();
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want, "every record produced is consumed once: {}", String::from_utf8_lossy(&consumed.stderr));
    // The HTTP API reads the same log.
    let mut total = 0;
    for (p, d) in cluster.describe("events", &[]).await.partitions.iter().enumerate() {
        let req = FetchRequest { offset: 0, max_records: None, max_bytes: None, max_wait_ms: None };
        total += cluster.client(d.leader.unwrap()).fetch("events", p as u32, &req).await.unwrap().records.len();
    }
    assert_eq!(total, 30);
}

/// kcat with `input` on stdin, bounded.
fn kcat(args: &[&str], input: &str) -> std::process::Output {
    let mut child = std::process::Command::new("kcat")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kcat runs (Debian package kcat; scripts/setup.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Fetch returns what the HTTP API appended, as record batches with each
/// record's offset, leader epoch, key and value, never past the high
/// watermark; ListOffsets gives the log start and the high watermark; a
/// partition this node does not have gets Kafka's error code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_list_offsets_read_what_was_appended() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse};
    use kafka_protocol::records::RecordBatchDecoder;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = Node::start(dir.path(), &[&format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{port}")]);
    let client = node.client();
    create(&client, "events", 1).await;
    client.produce("events", 0, &produce_req(Acks::All, &["a", "b", "c"])).await.unwrap();
    let name = || TopicName(StrBytes::from_static_str("events"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();

    for (version, from) in [(4, 0), (11, 1)] {
        let partition = |p: i32| {
            FetchPartition::default().with_partition(p).with_fetch_offset(from).with_partition_max_bytes(1 << 20)
        };
        let topic = FetchTopic::default().with_topic(name()).with_partitions(vec![partition(0), partition(7)]);
        let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![topic]);
        let mut body = call(&mut s, ApiKey::Fetch, version, &req);
        let r = FetchResponse::decode(&mut body, version).unwrap();
        let p0 = &r.responses[0].partitions[0];
        assert_eq!((p0.error_code, p0.high_watermark), (0, 3), "v{version}: {p0:?}");
        let mut records = p0.records.clone().unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut records).unwrap();
        assert_eq!(sets.len(), usize::from(from < 3), "v{version}: one batch for one leader epoch's records");
        let got: Vec<(i64, String)> = sets
            .iter()
            .flat_map(|set| &set.records)
            .map(|r| (r.offset, String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()))
            .collect();
        let want: Vec<(i64, String)> =
            ["a", "b", "c"].iter().enumerate().map(|(i, v)| (i as i64, v.to_string())).collect();
        assert_eq!(got, want[from as usize..], "v{version}: from offset {from}");
        assert_eq!(r.responses[0].partitions[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION for partition 7");
    }
    let beyond = FetchPartition::default().with_partition(0).with_fetch_offset(99).with_partition_max_bytes(1 << 20);
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![FetchTopic::default().with_topic(name()).with_partitions(vec![beyond])]);
    let mut body = call(&mut s, ApiKey::Fetch, 11, &req);
    assert_eq!(
        FetchResponse::decode(&mut body, 11).unwrap().responses[0].partitions[0].error_code,
        1,
        "OFFSET_OUT_OF_RANGE"
    );

    acks0_is_appended_and_never_answered(&mut s, &client).await;

    for (timestamp, want) in [(-2, 0), (-1, 4)] {
        let p = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp);
        let req = ListOffsetsRequest::default()
            .with_topics(vec![ListOffsetsTopic::default().with_name(name()).with_partitions(vec![p])]);
        let mut body = call(&mut s, ApiKey::ListOffsets, 7, &req);
        let r = ListOffsetsResponse::decode(&mut body, 7).unwrap();
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, want), "timestamp {timestamp}");
    }
}

/// acks=0: appended, never answered; the next request on the connection
/// gets its own answer (the correlation id `call` checks).
async fn acks0_is_appended_and_never_answered(s: &mut TcpStream, client: &faultline_client::Client) {
    let name = || TopicName(StrBytes::from_static_str("events"));
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1,
        key: None,
        value: Some(Bytes::from_static(b"fire-and-forget")),
        headers: Default::default(),
    };
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut batch, [&record], &options).unwrap();
    let data = PartitionProduceData::default().with_index(0).with_records(Some(batch.freeze()));
    let topic = TopicProduceData::default().with_name(name()).with_partition_data(vec![data]);
    let req = ProduceRequest::default().with_acks(0).with_timeout_ms(1000).with_topic_data(vec![topic]);
    let header = RequestHeader::default().with_request_api_key(ApiKey::Produce as i16).with_request_api_version(7);
    let mut body = BytesMut::new();
    header.with_correlation_id(5).encode(&mut body, ApiKey::Produce.request_header_version(7)).unwrap();
    req.encode(&mut body, 7).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    s.write_all(&frame).unwrap();
    let mut next = call(s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(
        ApiVersionsResponse::decode(&mut next, 3).unwrap().error_code,
        0,
        "the next answer is the next request's"
    );
    let mut appended = false;
    for _ in 0..100 {
        let req = faultline_client::api::FetchRequest {
            offset: 3,
            max_records: None,
            max_bytes: None,
            max_wait_ms: Some(100),
        };
        if client.fetch("events", 0, &req).await.unwrap().records.iter().any(|r| r.value == "fire-and-forget") {
            appended = true;
            break;
        }
    }
    assert!(appended, "the acks=0 record was appended");
}
