//! Random and mutated frames against the Kafka listener. Each frame goes
//! on its own connection; whatever the node answers or however it closes,
//! afterwards the node must be healthy, answer a well-formed request, have
//! logged no panic, and hold exactly the records it held before, apart
//! from whole, intact copies of the one batch the produce template carries
//! (a mutation outside a CRC-checked batch can leave a valid request).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use faultline_client::api::{Acks, FetchRequest as HttpFetch};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeConfigsRequest, FetchRequest, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, LeaveGroupRequest, MetadataRequest, OffsetFetchRequest, ProduceRequest, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use rand::{RngExt, SeedableRng};

use crate::api::{create, produce_req};
use crate::kafka::{call, free_port};
use crate::util::Node;

/// Frames thrown at the listener: bounded by count, not time.
const FRAMES: usize = 10_000;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A request with its header and length prefix.
fn frame<Req: Encodable>(key: ApiKey, version: i16, req: &Req) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut body = BytesMut::new();
    header.encode(&mut body, key.request_header_version(version)).unwrap();
    req.encode(&mut body, version).unwrap();
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out.to_vec()
}

/// The values the produce template's one batch carries.
const FUZZ_VALUES: [&str; 3] = ["fuzz-0", "fuzz-1", "fuzz-2"];

/// Well-formed requests of most served APIs, the seeds of mutation.
fn templates() -> Vec<Vec<u8>> {
    let records: Vec<Record> = FUZZ_VALUES
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
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
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &records,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .unwrap();
    let data = PartitionProduceData::default().with_index(0).with_records(Some(batch.freeze()));
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default().with_name(name("events")).with_partition_data(vec![data])]);
    let fetch = FetchRequest::default().with_max_wait_ms(0).with_topics(vec![
        FetchTopic::default()
            .with_topic(name("events"))
            .with_partitions(vec![FetchPartition::default().with_fetch_offset(0).with_partition_max_bytes(1 << 16)]),
    ]);
    let (group, member) = (GroupId(StrBytes::from_static_str("g")), StrBytes::from_static_str("m"));
    let leaver = MemberIdentity::default().with_member_id(member.clone());
    vec![
        frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
        frame(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)),
        frame(ApiKey::Produce, 9, &produce),
        frame(ApiKey::Produce, 3, &produce),
        frame(ApiKey::Fetch, 12, &fetch),
        frame(ApiKey::Fetch, 4, &fetch),
        frame(ApiKey::FindCoordinator, 3, &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))),
        frame(ApiKey::OffsetFetch, 7, &OffsetFetchRequest::default().with_topics(None)),
        frame(ApiKey::DescribeConfigs, 4, &DescribeConfigsRequest::default()),
        // Group requests that answer at once (a join or sync waits for the group).
        frame(
            ApiKey::Heartbeat,
            4,
            &HeartbeatRequest::default().with_group_id(group.clone()).with_member_id(member.clone()),
        ),
        frame(ApiKey::LeaveGroup, 5, &LeaveGroupRequest::default().with_group_id(group).with_members(vec![leaver])),
    ]
}

/// One frame: random bytes, or a template with bytes flipped, cut, or
/// inserted, or with a length prefix that lies.
fn mutate(rng: &mut impl RngExt, templates: &[Vec<u8>]) -> Vec<u8> {
    let mut f = templates[rng.random_range(0..templates.len())].clone();
    match rng.random_range(0..5) {
        0 => {
            let n = rng.random_range(0..300);
            f = (0..n).map(|_| rng.random()).collect();
        }
        1 => {
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(4..f.len());
                f[at] = rng.random();
            }
        }
        2 => f.truncate(rng.random_range(0..f.len())),
        3 => {
            let at = rng.random_range(4..=f.len());
            let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            f.splice(at..at, extra);
        }
        _ => {
            let lie: i32 = rng.random_range(-8..2_000);
            f[..4].copy_from_slice(&lie.to_be_bytes());
        }
    }
    // Keep the prefix honest unless that was the mutation, so the body
    // itself is what the node parses.
    if f.len() >= 4 && rng.random_bool(0.7) {
        let len = (f.len() - 4) as i32;
        f[..4].copy_from_slice(&len.to_be_bytes());
    }
    f
}

/// Sends one frame, half-closes, and reads whatever comes (bounded).
fn throw(port: u16, f: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(f);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

/// Every record of partition 0 below the HW, fetched page by page.
async fn log_of(node: &Node, topic: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    // Bounded by the HW: each round reads at least one record or stops.
    loop {
        let offset = out.last().map_or(0, |(o, _): &(i64, String)| o + 1);
        let req = HttpFetch { offset, max_records: None, max_bytes: None, max_wait_ms: None };
        let records = node.client().fetch(topic, 0, &req).await.unwrap().records;
        if records.is_empty() {
            return out;
        }
        out.extend(records.into_iter().map(|r| (r.offset, r.value)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_frames_leave_the_node_healthy_and_its_logs_intact() {
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x006b_6166_6b61);
    eprintln!("kafka fuzz seed {seed} (FUZZ_SEED={seed} reproduces)");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = Node::start(dir.path(), &[&format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{port}")]);
    let client = node.client();
    for topic in ["events", "quiet"] {
        create(&client, topic, 1).await;
        client.produce(topic, 0, &produce_req(Acks::All, &["a", "b", "c"])).await.unwrap();
    }
    let (events_before, quiet_before) = (log_of(&node, "events").await, log_of(&node, "quiet").await);

    let templates = templates();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let frames: Vec<Vec<u8>> = (0..FRAMES).map(|_| mutate(&mut rng, &templates)).collect();
    let thrown = tokio::task::spawn_blocking(move || frames.iter().for_each(|f| throw(port, f))).await;
    assert!(thrown.is_ok(), "the listener stayed up: {}", node.log());

    assert!(node.is_running() && client.health().await.is_ok(), "the node is up after {FRAMES} frames");
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut body = call(&mut conn, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(ApiVersionsResponse::decode(&mut body, 3).unwrap().error_code, 0, "and answers a good request");
    assert!(!node.log().contains("panicked"), "no handler panicked: {}", node.log());
    assert_eq!(log_of(&node, "quiet").await, quiet_before, "a topic no template names is untouched");
    let events = log_of(&node, "events").await;
    assert_eq!(&events[..events_before.len()], &events_before[..], "what was there is unchanged");
    let added: Vec<&str> = events[events_before.len()..].iter().map(|(_, v)| v.as_str()).collect();
    for batch in added.chunks(FUZZ_VALUES.len()) {
        assert_eq!(batch, FUZZ_VALUES, "only whole, intact copies of the template's batch: {added:?}");
    }
    assert_eq!(client.list_topics().await.unwrap().topics.len(), 2 + usize::from(has_offsets(&client).await));
}

/// Whether `__consumer_offsets` exists (a mutated FindCoordinator may have
/// created it, as a real one does).
async fn has_offsets(client: &faultline_client::Client) -> bool {
    client.list_topics().await.unwrap().topics.iter().any(|t| t == "__consumer_offsets")
}
