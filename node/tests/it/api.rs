//! Every endpoint and every client-mistake error of the HTTP API, against
//! the real binary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use faultline_client::api::*;
use faultline_client::{Client, ClientError};
use serde_json::{Value, json};

use crate::util::Node;

/// Sends `body` verbatim and returns the status and JSON body.
async fn raw(node: &Node, method: &str, path: &str, body: &str) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", node.url);
    let req = match method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        "DELETE" => http.delete(url),
        other => panic!("method {other}"),
    };
    let resp = req.header("content-type", "application/json").body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body for {method} {path}: {text}"));
    (status, value)
}

/// Asserts that `body` to `path` gets `status` with error name `error`.
async fn expect_error(node: &Node, method: &str, path: &str, body: &str, status: u16, error: &str) -> String {
    let (got_status, value) = raw(node, method, path, body).await;
    assert_eq!((got_status, value["error"].as_str()), (status, Some(error)), "{method} {path} {body:.200} → {value}");
    value["message"].as_str().unwrap().to_string()
}

pub fn produce_req(acks: Acks, values: &[&str]) -> ProduceRequest {
    ProduceRequest {
        acks: acks.into(),
        timeout_ms: None,
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: values.iter().map(|v| ProduceRecord { key: None, value: v.to_string(), timestamp: None }).collect(),
    }
}

pub async fn create(client: &Client, name: &str, partitions: i64) -> TopicDescription {
    let req = CreateTopicRequest { name: name.into(), partitions: Some(partitions), ..Default::default() };
    client.create_topic(&req).await.unwrap()
}

async fn fetch_all(client: &Client, topic: &str, partition: u32) -> Vec<(i64, String)> {
    let resp = client
        .fetch(
            topic,
            partition,
            &FetchRequest { offset: 0, max_records: Some(100_000), max_bytes: None, max_wait_ms: None },
        )
        .await
        .unwrap();
    resp.records.into_iter().map(|r| (r.offset, r.value)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_cluster_openapi_and_metrics_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let client = node.client();
    assert_eq!(client.health().await.unwrap(), Health { status: "ok".into(), node_id: 1 });
    let cluster = client.cluster().await.unwrap();
    assert_eq!((cluster.node_id, cluster.controller, cluster.brokers.len()), (1, Some(1), 1));
    assert!(cluster.bugs.is_empty(), "no bug switch is on by default");

    let (status, doc) = raw(&node, "GET", "/openapi.json", "").await;
    assert_eq!(status, 200);
    for path in [
        paths::HEALTH,
        paths::METRICS,
        paths::OPENAPI,
        paths::CLUSTER,
        paths::TOPICS,
        paths::TOPIC,
        paths::PRODUCE,
        paths::FETCH,
        paths::GROUP_OFFSETS,
    ] {
        assert!(doc["paths"][path].is_object(), "openapi.json lacks {path}");
    }

    create(&client, "metered", 1).await;
    client.produce("metered", 0, &produce_req(Acks::Leader, &["x", "y"])).await.unwrap();
    let text = reqwest::get(format!("{}/metrics", node.url)).await.unwrap().text().await.unwrap();
    for needle in [
        "faultline_http_requests_total{route=\"/v1/topics/{topic}/partitions/{partition}/produce\",status=\"200\"} 1",
        "faultline_log_end_offset{topic=\"metered\",partition=\"0\"} 2",
        "faultline_log_appended_records_total{topic=\"metered\",partition=\"0\"} 2",
        "faultline_http_request_duration_seconds_bucket{route=\"/v1/topics\",le=\"+Inf\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack `{needle}`:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_listed_and_described() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["num.partitions=3"]);
    let client = node.client();
    let req = CreateTopicRequest {
        name: "orders".into(),
        partitions: None,
        replication_factor: Some(1),
        configs: BTreeMap::from([("min.insync.replicas".into(), json!(1)), ("flush.messages".into(), json!("1"))]),
    };
    let desc = client.create_topic(&req).await.unwrap();
    assert_eq!(desc.partitions.len(), 3, "num.partitions is the default");
    assert_eq!(desc.configs.get("flush.messages").map(String::as_str), Some("1"));
    let p = &desc.partitions[2];
    assert_eq!(
        (p.partition, p.leader, p.leader_epoch, p.replicas.clone(), p.isr.clone()),
        (2, Some(1), 0, vec![1], vec![1])
    );
    assert_eq!((p.high_watermark, p.log_end_offset, p.log_start_offset), (0, 0, 0));
    client.produce("orders", 1, &produce_req(Acks::All, &["a", "b", "c"])).await.unwrap();
    let desc = client.describe_topic("orders").await.unwrap();
    assert_eq!((desc.partitions[1].high_watermark, desc.partitions[1].log_end_offset), (3, 3));
    assert_eq!(client.list_topics().await.unwrap().topics, vec!["orders".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_creation_mistakes_get_kafka_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    create(&node.client(), "taken", 1).await;
    let p = paths::TOPICS;
    expect_error(&node, "POST", p, r#"{"name":"taken"}"#, 409, "TOPIC_ALREADY_EXISTS").await;
    for bad in ["", ".", "..", "a/b", "sp ace", "ünïcode", &"x".repeat(250)] {
        let body = json!({ "name": bad }).to_string();
        expect_error(&node, "POST", p, &body, 400, "INVALID_TOPIC_EXCEPTION").await;
    }
    expect_error(&node, "POST", p, r#"{"name":"__internal"}"#, 400, "INVALID_TOPIC_EXCEPTION").await;
    create(&node.client(), "a.b", 1).await;
    let msg = expect_error(&node, "POST", p, r#"{"name":"a_b"}"#, 400, "INVALID_TOPIC_EXCEPTION").await;
    assert!(msg.contains("collides"), "{msg}");
    for n in ["0", "-1", "1001", "9223372036854775807"] {
        expect_error(
            &node,
            "POST",
            p,
            &format!(r#"{{"name":"t{}","partitions":{n}}}"#, n.len()),
            400,
            "INVALID_PARTITIONS",
        )
        .await;
    }
    for rf in ["0", "2", "-3"] {
        expect_error(
            &node,
            "POST",
            p,
            &format!(r#"{{"name":"r","replication_factor":{rf}}}"#),
            400,
            "INVALID_REPLICATION_FACTOR",
        )
        .await;
    }
    let msg =
        expect_error(&node, "POST", p, r#"{"name":"c","configs":{"retention.bogus":"1"}}"#, 400, "INVALID_CONFIG")
            .await;
    assert!(msg.contains("retention.bogus"), "{msg}");
    let msg =
        expect_error(&node, "POST", p, r#"{"name":"c","configs":{"segment.bytes":"tiny"}}"#, 400, "INVALID_CONFIG")
            .await;
    assert!(msg.contains("segment.bytes") && msg.contains("128..="), "{msg}");
    expect_error(&node, "POST", p, r#"{"name":"c","configs":{"flush.ms":[1]}}"#, 400, "INVALID_CONFIG").await;
    let msg = expect_error(&node, "POST", p, r#"{"name":"c","partitions":"three"}"#, 400, "INVALID_REQUEST").await;
    assert!(msg.contains("invalid type"), "{msg}");
    expect_error(&node, "POST", p, r#"{"nam":"c"}"#, 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", p, "{not json", 400, "INVALID_REQUEST").await;
    expect_error(&node, "GET", "/v1/topics/nope", "", 404, "UNKNOWN_TOPIC_OR_PARTITION").await;
    expect_error(&node, "DELETE", p, "", 405, "INVALID_REQUEST").await;
    expect_error(&node, "GET", "/v2/anything", "", 404, "INVALID_REQUEST").await;
    assert_eq!(
        node.client().list_topics().await.unwrap().topics,
        vec!["a.b".to_string(), "taken".to_string()],
        "no bad create left a topic behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_with_each_acks_then_fetch_returns_records_at_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let client = node.client();
    create(&client, "events", 2).await;
    let r1 = client.produce("events", 0, &produce_req(Acks::Leader, &["a", "b"])).await.unwrap();
    let r2 = client.produce("events", 0, &produce_req(Acks::All, &["c"])).await.unwrap();
    assert_eq!((r1.base_offset, r2.base_offset), (Some(0), Some(2)));

    // acks=0: 202, no offset, and the record shows up soon after.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/topics/events/partitions/0/produce", node.url))
        .json(&produce_req(Acks::None, &["d"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(resp.json::<ProduceResponse>().await.unwrap().base_offset, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fetch_all(&client, "events", 0).await.len() < 4 {
        assert!(Instant::now() < deadline, "the acks=0 record never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let want: Vec<(i64, String)> =
        ["a", "b", "c", "d"].iter().enumerate().map(|(i, v)| (i as i64, v.to_string())).collect();
    assert_eq!(fetch_all(&client, "events", 0).await, want);

    // Keys, timestamps and epochs come back; partition 1 is independent.
    let keyed = ProduceRequest {
        records: vec![ProduceRecord { key: Some("k".into()), value: "v".into(), timestamp: Some(42) }],
        ..produce_req(Acks::Leader, &[])
    };
    assert_eq!(client.produce("events", 1, &keyed).await.unwrap().base_offset, Some(0));
    let got = client
        .fetch("events", 1, &FetchRequest { offset: 0, max_records: None, max_bytes: None, max_wait_ms: None })
        .await
        .unwrap();
    assert_eq!(
        got.records,
        vec![FetchedRecord { offset: 0, leader_epoch: 0, timestamp: 42, key: Some("k".into()), value: "v".into() }]
    );
    assert_eq!((got.high_watermark, got.log_start_offset, got.next_offset), (1, 0, 1));

    // max_records and a mid-batch start offset.
    let got = client
        .fetch("events", 0, &FetchRequest { offset: 1, max_records: Some(2), max_bytes: None, max_wait_ms: None })
        .await
        .unwrap();
    assert_eq!(got.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(got.next_offset, 3);
    let at_end = client
        .fetch("events", 0, &FetchRequest { offset: 4, max_records: None, max_bytes: None, max_wait_ms: None })
        .await
        .unwrap();
    assert!(at_end.records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_fetch_wakes_on_a_new_record_and_times_out_empty() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let client = node.client();
    create(&client, "lp", 1).await;
    let poller = {
        let client = client.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let r = client
                .fetch(
                    "lp",
                    0,
                    &FetchRequest { offset: 0, max_records: None, max_bytes: None, max_wait_ms: Some(10_000) },
                )
                .await
                .unwrap();
            (r, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.produce("lp", 0, &produce_req(Acks::Leader, &["woke"])).await.unwrap();
    let (resp, waited) = poller.await.unwrap();
    assert_eq!(resp.records.len(), 1);
    assert!(waited < Duration::from_secs(9), "the poll returned when the record came, not at max_wait: {waited:?}");
    let start = Instant::now();
    let empty = client
        .fetch("lp", 0, &FetchRequest { offset: 1, max_records: None, max_bytes: None, max_wait_ms: Some(300) })
        .await
        .unwrap();
    assert!(empty.records.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(300), "the poll waited its max_wait_ms");
}

/// One end-to-end story against one node: acknowledge two records, send
/// every kind of mistaken produce and fetch (bad acks, bad JSON, oversized
/// bodies, unknown or unparsable partitions and offsets, a write to an
/// internal topic) and check each gets its Kafka error, then check the node
/// is healthy and the two records intact. It is long because that last
/// check is the point, and it holds only if every mistake before it went to
/// the same node and log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_mistakes_get_kafka_errors_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["message.max.bytes=2000", "socket.request.max.bytes=100000"]);
    let client = node.client();
    create(&client, "t", 2).await;
    client.produce("t", 0, &produce_req(Acks::All, &["keep-0", "keep-1"])).await.unwrap();
    let pp = "/v1/topics/t/partitions/0/produce";
    let ok_records = r#""records":[{"value":"x"}]"#;
    for acks in ["2", "-2", "\"none\"", "\"ALL\"", "1.5"] {
        let body = format!(r#"{{"acks":{acks},{ok_records}}}"#);
        let (status, v) = raw(&node, "POST", pp, &body).await;
        assert_eq!(status, 400, "{body} → {v}");
        assert!(["INVALID_REQUIRED_ACKS", "INVALID_REQUEST"].contains(&v["error"].as_str().unwrap()), "{body} → {v}");
    }
    expect_error(&node, "POST", pp, r#"{"acks":2,"records":[{"value":"x"}]}"#, 400, "INVALID_REQUIRED_ACKS").await;
    expect_error(&node, "POST", pp, r#"{"acks":1,"records":[]}"#, 400, "INVALID_REQUEST").await;
    let msg = expect_error(&node, "POST", pp, r#"{"acks":1,"records":[{"value":7}]}"#, 400, "INVALID_REQUEST").await;
    assert!(msg.contains("field `records[0].value`") && msg.contains("expected a string"), "{msg}");
    let msg = expect_error(&node, "POST", pp, r#"{"acks":1}"#, 400, "INVALID_REQUEST").await;
    assert!(msg.contains("missing field `records`"), "{msg}");
    expect_error(&node, "POST", pp, r#"{"acks":1,"records":[{"value":"x","extra":1}]}"#, 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", pp, r#"{"acks":1,"producer_id":5,"records":[{"value":"x"}]}"#, 400, "INVALID_REQUEST")
        .await;
    expect_error(
        &node,
        "POST",
        pp,
        r#"{"acks":1,"timeout_ms":999999999,"records":[{"value":"x"}]}"#,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(&node, "POST", pp, "[1,2", 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", pp, "", 400, "INVALID_REQUEST").await;
    let big = json!({ "acks": 1, "records": [{ "value": "z".repeat(3000) }] }).to_string();
    let msg = expect_error(&node, "POST", pp, &big, 413, "MESSAGE_TOO_LARGE").await;
    assert!(msg.contains("max.message.bytes"), "{msg}");
    let huge = json!({ "acks": 1, "records": [{ "value": "z".repeat(200_000) }] }).to_string();
    let msg = expect_error(&node, "POST", pp, &huge, 413, "MESSAGE_TOO_LARGE").await;
    assert!(msg.contains("socket.request.max.bytes"), "{msg}");
    for path in [
        "/v1/topics/t/partitions/2/produce",
        "/v1/topics/t/partitions/-1/produce",
        "/v1/topics/nope/partitions/0/produce",
    ] {
        expect_error(&node, "POST", path, r#"{"acks":1,"records":[{"value":"x"}]}"#, 404, "UNKNOWN_TOPIC_OR_PARTITION")
            .await;
    }
    expect_error(
        &node,
        "POST",
        "/v1/topics/t/partitions/abc/produce",
        r#"{"acks":1,"records":[{"value":"x"}]}"#,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        &node,
        "POST",
        "/v1/topics/t/partitions/99999999999999999999999/produce",
        r#"{"acks":1,"records":[{"value":"x"}]}"#,
        400,
        "INVALID_REQUEST",
    )
    .await;

    let fp = "/v1/topics/t/partitions/0/fetch";
    for offset in ["-1", "3", "9223372036854775807"] {
        expect_error(&node, "POST", fp, &format!(r#"{{"offset":{offset}}}"#), 416, "OFFSET_OUT_OF_RANGE").await;
    }
    let msg = expect_error(&node, "POST", fp, r#"{"offset":99999999999999999999999}"#, 400, "INVALID_REQUEST").await;
    assert!(msg.contains("field `offset`"), "{msg}");
    expect_error(&node, "POST", fp, r#"{"offset":"0"}"#, 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", fp, r#"{"offset":0,"max_records":0}"#, 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", fp, r#"{"offset":0,"max_bytes":0}"#, 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", fp, r#"{"offset":0,"max_wait_ms":3600000}"#, 400, "INVALID_REQUEST").await;
    expect_error(
        &node,
        "POST",
        "/v1/topics/t/partitions/7/fetch",
        r#"{"offset":0}"#,
        404,
        "UNKNOWN_TOPIC_OR_PARTITION",
    )
    .await;

    // Internal topics are readable but not writable.
    client
        .commit_offsets(
            "g",
            &OffsetCommitRequest::simple(vec![OffsetCommit {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                metadata: None,
            }]),
        )
        .await
        .unwrap();
    expect_error(
        &node,
        "POST",
        "/v1/topics/__consumer_offsets/partitions/0/produce",
        r#"{"acks":1,"records":[{"value":"x"}]}"#,
        400,
        "INVALID_TOPIC_EXCEPTION",
    )
    .await;

    // Nothing above crashed the node or touched the acknowledged records.
    assert_eq!(client.health().await.unwrap().status, "ok");
    assert_eq!(fetch_all(&client, "t", 0).await, vec![(0, "keep-0".to_string()), (1, "keep-1".to_string())]);
    assert!(!node.log().contains("panicked"), "a handler panicked:\n{}", node.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offsets_are_committed_read_back_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["offsets.topic.num.partitions=4"]);
    let client = node.client();
    create(&client, "t", 2).await;
    let commit = |p: u32, o: i64| OffsetCommit { topic: "t".into(), partition: p, offset: o, metadata: None };
    assert_eq!(client.committed_offsets("g1").await.unwrap().offsets, vec![], "an unknown group has no offsets");
    client.commit_offsets("g1", &OffsetCommitRequest::simple(vec![commit(0, 5), commit(1, 2)])).await.unwrap();
    client.commit_offsets("g1", &OffsetCommitRequest::simple(vec![commit(0, 9)])).await.unwrap();
    client.commit_offsets("g2", &OffsetCommitRequest::simple(vec![commit(1, 1)])).await.unwrap();
    assert_eq!(client.committed_offsets("g1").await.unwrap().offsets, vec![commit(0, 9), commit(1, 2)]);
    assert_eq!(client.committed_offsets("g2").await.unwrap().offsets, vec![commit(1, 1)]);
    let desc = client.describe_topic("__consumer_offsets").await.unwrap();
    assert!(desc.internal);
    assert_eq!(desc.partitions.len(), 4);
    assert_eq!(desc.partitions.iter().map(|p| p.log_end_offset).sum::<i64>(), 4, "one record per committed partition");

    let gp = "/v1/groups/g1/offsets";
    expect_error(
        &node,
        "POST",
        gp,
        r#"{"offsets":[{"topic":"nope","partition":0,"offset":1}]}"#,
        404,
        "UNKNOWN_TOPIC_OR_PARTITION",
    )
    .await;
    expect_error(&node, "POST", gp, r#"{"offsets":[{"topic":"t","partition":0,"offset":-4}]}"#, 400, "INVALID_REQUEST")
        .await;
    expect_error(&node, "POST", gp, r#"{"offsets":[]}"#, 400, "INVALID_REQUEST").await;
    expect_error(&node, "POST", gp, r#"{"offsets":{}}"#, 400, "INVALID_REQUEST").await;
    let long = format!("/v1/groups/{}/offsets", "g".repeat(300));
    expect_error(
        &node,
        "POST",
        &long,
        r#"{"offsets":[{"topic":"t","partition":0,"offset":1}]}"#,
        400,
        "INVALID_GROUP_ID",
    )
    .await;
    expect_error(&node, "GET", &long, "", 400, "INVALID_GROUP_ID").await;
    assert_eq!(
        client.committed_offsets("g1").await.unwrap().offsets,
        vec![commit(0, 9), commit(1, 2)],
        "failed commits changed nothing"
    );
    let err = client.commit_offsets("g1", &OffsetCommitRequest::simple(vec![commit(5, 1)])).await.unwrap_err();
    assert!(matches!(err, ClientError::Api { status: 404, .. }), "{err}");
}
