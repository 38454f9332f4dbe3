//! Start-up, configuration errors, clean shutdown, and restarts after
//! SIGKILL and after on-disk damage.

use std::io::Write;

use faultline_client::api::*;

use crate::util::{Node, run_node_to_exit};

fn records(values: &[&str]) -> ProduceRequest {
    ProduceRequest {
        acks: Acks::All.into(),
        timeout_ms: None,
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: values.iter().map(|v| ProduceRecord { key: None, value: v.to_string(), timestamp: None }).collect(),
    }
}

/// Every value of `topic/0`. Right after a restart the node is registered
/// (healthy) a moment before the controller re-elects it and it takes
/// leadership, so `NOT_LEADER_OR_FOLLOWER` is retried for a bounded time,
/// as any client would.
async fn values(node: &Node, topic: &str) -> Vec<String> {
    let req = FetchRequest { offset: 0, max_records: Some(10_000), max_bytes: None, max_wait_ms: None };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match node.client().fetch(topic, 0, &req).await {
            Ok(r) => return r.records.into_iter().map(|r| r.value).collect(),
            Err(e) if e.code() == Some(ErrorCode::NotLeaderOrFollower) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("fetch {topic}/0: {e}"),
        }
    }
}

async fn setup(node: &Node) {
    let client = node.client();
    let req = CreateTopicRequest { name: "t".into(), partitions: Some(1), ..Default::default() };
    client.create_topic(&req).await.unwrap();
    client.produce("t", 0, &records(&["a", "b"])).await.unwrap();
    let commit = OffsetCommit { topic: "t".into(), partition: 0, offset: 2, metadata: Some("m".into()) };
    client.commit_offsets("g", &OffsetCommitRequest::simple(vec![commit])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly_and_a_restart_keeps_records_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    setup(&node).await;
    let status = node.terminate();
    assert!(status.success(), "clean shutdown exits 0: {status}");
    assert!(dir.path().join("data/.clean-shutdown").exists(), "the clean-shutdown marker is written");
    assert!(node.log().contains("clean shutdown complete"));

    let node = Node::start(dir.path(), &[]);
    assert!(!dir.path().join("data/.clean-shutdown").exists(), "the marker is consumed at start-up");
    assert!(node.log().contains("clean_shutdown=true"), "{}", node.log());
    assert_eq!(values(&node, "t").await, vec!["a", "b"]);
    let offsets = node.client().committed_offsets("g").await.unwrap().offsets;
    assert_eq!(offsets, vec![OffsetCommit { topic: "t".into(), partition: 0, offset: 2, metadata: Some("m".into()) }]);
    node.client().produce("t", 0, &records(&["c"])).await.unwrap();
    assert_eq!(values(&node, "t").await, vec!["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_recovery_keeps_records_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    setup(&node).await;
    node.kill();
    let node = Node::start(dir.path(), &[]);
    assert!(node.log().contains("clean_shutdown=false"), "{}", node.log());
    assert_eq!(values(&node, "t").await, vec!["a", "b"]);
    assert_eq!(node.client().committed_offsets("g").await.unwrap().offsets.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_segment_tail_is_truncated_logged_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    setup(&node).await;
    node.kill();
    let segment = dir.path().join("data/t-0/00000000000000000000.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&segment).unwrap();
    f.write_all(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1]).unwrap();
    drop(f);
    let node = Node::start(dir.path(), &[]);
    assert!(node.log().contains("recovery truncated a torn or corrupt log tail"), "{}", node.log());
    assert_eq!(values(&node, "t").await, vec!["a", "b"]);
    let r = node.client().produce("t", 0, &records(&["c"])).await.unwrap();
    assert_eq!(r.base_offset, Some(2), "offsets continue with no gap and no reuse");
}

#[test]
fn configuration_errors_name_the_key_and_the_allowed_range() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "node.id=1\nlog.dirs=/tmp/never\nlog.retention.hours=1\n").unwrap();
    let (code, err) = run_node_to_exit(&["--config", props.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown configuration key `log.retention.hours`"), "{err}");

    let (code, err) = run_node_to_exit(&["--override", "node.id=1", "--override", "log.segment.bytes=-5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("`log.segment.bytes` = `-5`: expected an integer in 128..=2147483647"), "{err}");

    let (code, err) = run_node_to_exit(&["--override", "log.dirs=/tmp/x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing required key `node.id`"), "{err}");

    let (code, err) = run_node_to_exit(&["--config", "/nonexistent/server.properties"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/server.properties"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_another_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    node.terminate();
    let err = Node::try_start(dir.path(), &["node.id=7"]).err().expect("node 7 must not adopt node 1's data");
    assert!(err.contains("exit status"), "{err}");
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(log.contains("belongs to node.id 1, but this node is node.id 7"), "{log}");
}

/// A node's log is for people: by default openraft's info-level dumps stay
/// out (they were half of a node's lines, up to 2,000 characters each),
/// while the node's own info lines and RUST_LOG's choices stay in.
#[test]
fn a_node_log_has_no_openraft_dumps_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["node.id=1".to_string(), "listeners=http://127.0.0.1:0".to_string()];
    let node = Node::spawn_logging(dir.path(), &args, None).unwrap();
    node.wait_healthy().unwrap();
    let log = node.log();
    assert!(log.contains("faultline_node"), "the node's own lines: {log}");
    assert!(!log.contains(" INFO openraft"), "openraft's info dumps by default: {log}");
    drop(node);
    let verbose = tempfile::tempdir().unwrap();
    let node = Node::spawn_logging(verbose.path(), &args, Some("info")).unwrap();
    node.wait_healthy().unwrap();
    assert!(node.log().contains(" INFO openraft"), "RUST_LOG=info asks for them");
}
