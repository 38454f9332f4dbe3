//! Bug switches end to end: an active switch is announced;
//! `ack-all-on-local-append` (which lives in the produce path) loses an
//! acknowledged record on failover only when it is on; and
//! `serve-consumers-to-leo` shows consumers, over HTTP, records above the
//! high watermark only when it is on.

use std::time::Duration;

use faultline_client::api::*;

use crate::cluster::{Cluster, FAST, create_req};
use crate::util::Node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_switches_are_listed_by_the_cluster_endpoint_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["faultline.bugs=dedupe-window-1,serve-consumers-to-leo"]);
    let info = node.client().cluster().await.unwrap();
    assert_eq!(info.bugs, vec!["serve-consumers-to-leo".to_string(), "dedupe-window-1".to_string()]);
    assert!(!info.admin_hooks);
    assert!(node.log().contains("BUG SWITCH ON") && node.log().contains("dedupe-window-1"), "{}", node.log());
    let (code, err) = crate::util::run_node_to_exit(&["--override", "node.id=1", "--bug", "no-such-bug"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown bug switch `no-such-bug`"), "{err}");
}

async fn ack_all_then_kill_leader(bug: bool) -> (Result<i64, ErrorCode>, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts: Vec<&str> = FAST.iter().copied().filter(|o| !o.starts_with("replica.lag")).collect();
    opts.push("replica.lag.time.max.ms=60000");
    opts.push("faultline.admin.hooks=true");
    if bug {
        opts.push("faultline.bugs=ack-all-on-local-append");
    }
    let mut cluster = Cluster::start(dir.path(), 3, &opts);
    cluster.client(1).create_topic(&create_req("b7", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let p = cluster
        .wait_for("b7", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let leader = p.leader.unwrap();
    // The followers stay alive and in the ISR but stop copying (admin hook).
    for f in p.replicas.iter().filter(|r| **r != leader) {
        let url = format!("{}/v1/admin/fetchers", cluster.node(*f).url);
        let r = reqwest::Client::new().post(url).json(&FetcherControl { paused: true }).send().await.unwrap();
        assert!(r.status().is_success());
    }
    // Let fetches already in flight (long polls of replica.fetch.wait.max.ms) finish.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let req = ProduceRequest {
        acks: Acks::All.into(),
        timeout_ms: Some(1_000),
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: vec![ProduceRecord { key: None, value: "acked?".into(), timestamp: None }],
    };
    let outcome = cluster
        .client(leader)
        .produce("b7", 0, &req)
        .await
        .map(|r| r.base_offset.unwrap())
        .map_err(|e| e.code().unwrap_or(ErrorCode::RequestTimedOut));
    cluster.kill(leader);
    let p = cluster
        .wait_for("b7", &[leader], "a new leader", Duration::from_secs(15), |p| p.leader.is_some_and(|l| l != leader))
        .await;
    let dump = cluster.dump(p.leader.unwrap(), "b7").await;
    (outcome, dump.records.iter().any(|r| r.2 == "acked?"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_all_on_local_append_acknowledges_a_record_that_failover_loses() {
    let (off, _) = ack_all_then_kill_leader(false).await;
    assert_eq!(
        off,
        Err(ErrorCode::RequestTimedOut),
        "switch off: acks=all waits for the followers and times out, so nothing acknowledged can be lost"
    );
    let (on, on_survived) = ack_all_then_kill_leader(true).await;
    assert!(on.is_ok(), "switch on: acknowledged at once");
    assert!(!on_survived, "and the acknowledged record is gone after failover: a lost write");
}

/// A consumer's fetch over HTTP while the followers are stalled: the
/// record appended above the high watermark is invisible, unless
/// `serve-consumers-to-leo` is on. Guards the HTTP path, which once cut
/// records at the high watermark after the partition had read to the log
/// end, so the switch did nothing end to end.
async fn consumer_sees_above_hw(bug: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut opts: Vec<&str> = FAST.iter().copied().filter(|o| !o.starts_with("replica.lag")).collect();
    opts.push("replica.lag.time.max.ms=60000");
    opts.push("faultline.admin.hooks=true");
    if bug {
        opts.push("faultline.bugs=serve-consumers-to-leo");
    }
    let cluster = Cluster::start(dir.path(), 3, &opts);
    cluster.client(1).create_topic(&create_req("b8", 3, &[])).await.unwrap();
    let p = cluster
        .wait_for("b8", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let leader = p.leader.unwrap();
    for f in p.replicas.iter().filter(|r| **r != leader) {
        let url = format!("{}/v1/admin/fetchers", cluster.node(*f).url);
        assert!(
            reqwest::Client::new()
                .post(url)
                .json(&FetcherControl { paused: true })
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let req = ProduceRequest {
        acks: Acks::Leader.into(),
        timeout_ms: None,
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: vec![ProduceRecord { key: None, value: "above".into(), timestamp: None }],
    };
    let base = cluster.client(leader).produce("b8", 0, &req).await.unwrap().base_offset.unwrap();
    let fetch = FetchRequest { offset: base, max_records: Some(10), max_bytes: None, max_wait_ms: Some(0) };
    let got = cluster.client(leader).fetch("b8", 0, &fetch).await.unwrap();
    assert!(got.high_watermark <= base, "the record is above the high watermark");
    got.records.iter().any(|r| r.value == "above")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_consumers_to_leo_shows_consumers_records_above_the_high_watermark_over_http() {
    assert!(!consumer_sees_above_hw(false).await, "switch off: invisible until replicated");
    assert!(consumer_sees_above_hw(true).await, "switch on: served to consumers");
}
