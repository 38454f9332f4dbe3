//! Replication end to end on real node processes: failover, ISR shrink and
//! rejoin, clean versus unclean election, and fencing of a deposed leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faultline_client::api::*;
use parking_lot::Mutex;

use crate::cluster::{Cluster, FAST, create_req};

fn vals(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn offsets_of(dump: &ReplicaLogDump) -> BTreeMap<i64, String> {
    dump.records.iter().map(|(o, _, v)| (*o, v.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_an_isr_replica_and_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, FAST);
    cluster.client(1).create_topic(&create_req("fo", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let before = cluster
        .wait_for("fo", &[], "a leader", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let old = before.leader.unwrap();

    let acked: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let cluster = Arc::new(tokio::sync::RwLock::new(cluster));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            // Bounded by `stop`, set after the failover.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch = vals(&format!("b{i}"), 3);
                i += 1;
                let c = cluster.read().await;
                if let Ok(base) = c.produce("fo", Acks::All, &batch, Duration::from_secs(1)).await {
                    let mut a = acked.lock();
                    for (k, v) in batch.into_iter().enumerate() {
                        a.insert(base + k as i64, v);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked_before_kill = acked.lock().len();
    cluster.write().await.kill(old);
    let after = {
        let c = cluster.read().await;
        c.wait_for("fo", &[old], "a new leader", Duration::from_secs(15), |p| p.leader.is_some_and(|l| l != old)).await
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    producer.await.unwrap();
    let new = after.leader.unwrap();
    assert!(before.isr.contains(&new), "the new leader {new} came from the ISR {:?}", before.isr);
    assert_eq!(after.leader_epoch, before.leader_epoch + 1, "a leader change bumps the epoch");
    let acked = acked.lock().clone();
    assert!(acked_before_kill > 0 && acked.len() > acked_before_kill, "writes succeeded before and after the failover");
    let c = cluster.read().await;
    let log = offsets_of(&c.dump(new, "fo").await);
    for (offset, value) in &acked {
        assert_eq!(log.get(offset), Some(value), "acknowledged {value} at offset {offset} is gone from the new leader");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_followers_leave_the_isr_then_acks_all_fails_and_acks_1_stays_invisible_until_they_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    // Five voters, so the quorum survives two paused nodes; a long session
    // timeout, so the followers leave the ISR by lag, not by fencing.
    let mut opts = FAST.to_vec();
    opts.retain(|o| !o.starts_with("broker.session.timeout.ms"));
    opts.push("broker.session.timeout.ms=60000");
    let cluster = Cluster::start(dir.path(), 5, &opts);
    cluster.client(1).create_topic(&create_req("isr", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let p = cluster
        .wait_for("isr", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let leader = p.leader.unwrap();
    let followers: Vec<i32> = p.replicas.iter().copied().filter(|r| *r != leader).collect();
    cluster.produce("isr", Acks::All, &vals("warm", 2), Duration::from_secs(5)).await.unwrap();

    cluster.node(followers[0]).pause();
    // A follower that stopped while fully caught up stays in sync until the
    // leader has something it lacks (Kafka's isCaughtUp), so write.
    cluster.produce("isr", Acks::Leader, &vals("nudge-1", 1), Duration::from_secs(5)).await.unwrap();
    cluster
        .wait_for("isr", &followers[..1], "the first follower to leave the ISR", Duration::from_secs(10), |p| {
            !p.isr.contains(&followers[0])
        })
        .await;
    cluster
        .produce("isr", Acks::All, &vals("two-in-sync", 1), Duration::from_secs(5))
        .await
        .expect("ISR of 2 meets min.insync.replicas=2");

    cluster.node(followers[1]).pause();
    cluster.produce("isr", Acks::Leader, &vals("nudge-2", 1), Duration::from_secs(5)).await.unwrap();
    cluster
        .wait_for("isr", &followers, "the ISR to shrink to the leader", Duration::from_secs(10), |p| {
            p.isr == vec![leader]
        })
        .await;
    let err = cluster.produce("isr", Acks::All, &vals("refused", 1), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err, ErrorCode::NotEnoughReplicas);
    // What an operator's alerts see on the leader: one under-replicated
    // partition, two shrinks, and the refusals by error name.
    assert_eq!(cluster.metric(leader, "faultline_under_replicated_partitions").await, 1);
    assert_eq!(cluster.metric(leader, "faultline_isr_shrinks_total").await, 2);
    assert!(cluster.metric(leader, "faultline_produce_errors_total{error=\"NOT_ENOUGH_REPLICAS\"}").await >= 1);
    let hidden = cluster
        .produce("isr", Acks::Leader, &vals("hidden", 1), Duration::from_secs(5))
        .await
        .expect("acks=1 is still accepted");
    let d = cluster.client(leader).describe_topic("isr").await.unwrap().partitions[0].clone();
    assert!(d.high_watermark <= hidden && d.log_end_offset == hidden + 1, "the acks=1 record is above the HW: {d:?}");
    let fetched = cluster
        .client(leader)
        .fetch("isr", 0, &FetchRequest { offset: 0, max_records: None, max_bytes: None, max_wait_ms: None })
        .await
        .unwrap();
    assert!(fetched.records.iter().all(|r| r.value != "hidden-0"), "consumers never see it while the ISR is below min");

    cluster.node(followers[0]).resume();
    cluster.node(followers[1]).resume();
    cluster.wait_for("isr", &[], "both followers to rejoin", Duration::from_secs(15), |p| p.isr.len() == 3).await;
    assert_eq!(cluster.metric(leader, "faultline_under_replicated_partitions").await, 0);
    assert_eq!(cluster.metric(leader, "faultline_isr_expands_total").await, 2);
    let mut visible = false;
    for _ in 0..100 {
        let f = cluster
            .client(leader)
            .fetch(
                "isr",
                0,
                &FetchRequest { offset: hidden, max_records: None, max_bytes: None, max_wait_ms: Some(100) },
            )
            .await
            .unwrap();
        if f.records.first().is_some_and(|r| r.value == "hidden-0") {
            visible = true;
            break;
        }
    }
    assert!(visible, "the acks=1 record became visible once the ISR recovered");
}

/// Isolates the leader's data: both followers are paused until fenced, the
/// leader alone acknowledges `lost-*` records, then the leader is killed
/// and the followers come back.
async fn only_an_out_of_sync_replica_survives(
    cluster: &mut Cluster,
    topic: &str,
) -> (i32, Vec<i32>, BTreeMap<i64, String>) {
    let p = cluster
        .wait_for(topic, &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let leader = p.leader.unwrap();
    let followers: Vec<i32> = p.replicas.iter().copied().filter(|r| *r != leader).collect();
    let base = cluster.produce(topic, Acks::All, &vals("safe", 3), Duration::from_secs(5)).await.unwrap();
    assert_eq!(base, 0);
    cluster
        .wait_for(topic, &[], "the followers to copy the safe records", Duration::from_secs(10), |p| p.isr.len() == 3)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for f in &followers {
        cluster.node(*f).pause();
    }
    cluster.produce(topic, Acks::Leader, &vals("nudge", 1), Duration::from_secs(5)).await.unwrap();
    cluster
        .wait_for(topic, &followers, "the ISR to shrink to the leader", Duration::from_secs(10), |p| {
            p.isr == vec![leader]
        })
        .await;
    let mut acked = BTreeMap::new();
    for i in 0..5 {
        let v = vec![format!("lost-{i}")];
        let o = cluster
            .produce(topic, Acks::All, &v, Duration::from_secs(5))
            .await
            .expect("min.insync.replicas=1 lets the leader ack alone");
        acked.insert(o, v[0].clone());
    }
    cluster.kill(leader);
    for f in &followers {
        cluster.node(*f).resume();
    }
    (leader, followers, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclean_election_elects_an_out_of_sync_replica_and_loses_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 5, FAST);
    let configs = [("min.insync.replicas", "1"), ("unclean.leader.election.enable", "true")];
    cluster.client(1).create_topic(&create_req("unclean", 3, &configs)).await.unwrap();
    let (old, followers, acked) = only_an_out_of_sync_replica_survives(&mut cluster, "unclean").await;
    let p = cluster
        .wait_for("unclean", &[old], "an unclean leader", Duration::from_secs(15), |p| {
            p.leader.is_some_and(|l| followers.contains(&l))
        })
        .await;
    let new = p.leader.unwrap();
    // Every node reports the cluster's elections from its metadata; the
    // active controller alone reports the fenced old leader.
    assert!(cluster.metric(new, "faultline_leader_elections_total{kind=\"unclean\"}").await >= 1);
    cluster.wait_metric_sum("faultline_active_controller", &[old], |n| n == 1).await;
    cluster.wait_metric_sum("faultline_fenced_brokers", &[old], |n| n >= 1).await;
    let history = cluster.history("unclean", &[old]).await;
    assert!(
        history.entries.iter().any(|e| e.kind == "unclean" && e.leader == Some(new) && e.isr == vec![new]),
        "an unclean election of {new} with ISR reset to it: {history:?}"
    );
    let log = offsets_of(&cluster.dump(new, "unclean").await);
    for (offset, value) in &acked {
        assert_ne!(
            log.get(offset),
            Some(value),
            "{value} was acknowledged only by the old leader; unclean election loses it"
        );
    }
    assert_eq!(log.values().filter(|v| v.starts_with("safe")).count(), 3, "records the followers had are kept");
    // The old leader comes back as a follower and truncates to the new lineage.
    cluster.restart(old);
    let mut converged = false;
    for _ in 0..100 {
        let (a, b) = (cluster.dump(old, "unclean").await, cluster.dump(new, "unclean").await);
        if a.records == b.records {
            converged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(converged, "the old leader converged on the new leader's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_unclean_election_the_partition_stays_offline_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 5, FAST);
    let configs = [("min.insync.replicas", "1"), ("unclean.leader.election.enable", "false")];
    cluster.client(1).create_topic(&create_req("clean", 3, &configs)).await.unwrap();
    let (old, _followers, acked) = only_an_out_of_sync_replica_survives(&mut cluster, "clean").await;
    let p = cluster
        .wait_for("clean", &[old], "the partition to go offline", Duration::from_secs(15), |p| p.leader.is_none())
        .await;
    assert_eq!(p.isr, vec![old], "R2.9: the ISR keeps its last member");
    cluster.wait_metric_sum("faultline_offline_partitions", &[old], |n| n == 1).await;
    let live = if old == 1 { 2 } else { 1 };
    assert_eq!(cluster.metric(live, "faultline_leader_elections_total{kind=\"unclean\"}").await, 0);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(cluster.describe("clean", &[old]).await.partitions[0].leader, None, "no out-of-sync replica is elected");
    cluster.restart(old);
    let p = cluster
        .wait_for("clean", &[], "the last ISR member to lead again", Duration::from_secs(15), |p| p.leader == Some(old))
        .await;
    assert_eq!(p.leader, Some(old));
    let log = offsets_of(&cluster.dump(old, "clean").await);
    for (offset, value) in &acked {
        assert_eq!(log.get(offset), Some(value), "{value} survived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_never_acknowledges_acks_all_after_a_new_epoch_exists() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), 3, FAST);
    cluster.client(1).create_topic(&create_req("fence", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let p = cluster
        .wait_for("fence", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 3)
        .await;
    let old = p.leader.unwrap();
    cluster.produce("fence", Acks::All, &vals("before", 2), Duration::from_secs(5)).await.unwrap();
    cluster.node(old).pause();
    // Queued in the paused leader's socket; it is handled after the resume.
    let zombie = {
        let client = faultline_client::Client::with_timeout(&cluster.node(old).url, Duration::from_secs(20));
        tokio::spawn(async move {
            let req = ProduceRequest {
                acks: Acks::All.into(),
                timeout_ms: Some(5_000),
                producer_id: None,
                producer_epoch: None,
                base_sequence: None,
                records: vec![ProduceRecord { key: None, value: "zombie".into(), timestamp: None }],
            };
            client.produce("fence", 0, &req).await
        })
    };
    let p = cluster
        .wait_for("fence", &[old], "a new leader", Duration::from_secs(15), |p| p.leader.is_some_and(|l| l != old))
        .await;
    cluster.node(old).resume();
    let outcome = zombie.await.unwrap();
    assert!(outcome.is_err(), "the deposed leader acknowledged acks=all: {outcome:?}");
    let new = p.leader.unwrap();
    cluster.produce("fence", Acks::All, &vals("after", 1), Duration::from_secs(10)).await.unwrap();
    let log = cluster.dump(new, "fence").await;
    assert!(!log.records.iter().any(|r| r.2 == "zombie"), "the zombie write is not in the new epoch's log");
}

/// `replica.fetch.max.bytes`: the leader answers a follower fetch with
/// about that many bytes of a partition (one batch at least), and a
/// follower configured with 0 still catches up, one batch per fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_fetch_gets_about_replica_fetch_max_bytes_and_still_catches_up() {
    use faultline_node::replica::protocol::{FETCH_PATH, FetchRequest, PartitionFetch, decode_response};
    let dir = tempfile::tempdir().unwrap();
    let mut opts: Vec<&str> = FAST.iter().copied().filter(|o| !o.starts_with("replica.lag")).collect();
    opts.extend(["replica.lag.time.max.ms=60000", "faultline.admin.hooks=true", "replica.fetch.max.bytes=0"]);
    let cluster = Cluster::start(dir.path(), 2, &opts);
    cluster.client(1).create_topic(&create_req("fmb", 2, &[])).await.unwrap();
    let p = cluster
        .wait_for("fmb", &[], "a full ISR", Duration::from_secs(10), |p| p.leader.is_some() && p.isr.len() == 2)
        .await;
    let (leader, follower) = (p.leader.unwrap(), *p.replicas.iter().find(|r| Some(**r) != p.leader).unwrap());
    let pause = |paused: bool| {
        let url = format!("{}/v1/admin/fetchers", cluster.node(follower).url);
        async move {
            assert!(
                reqwest::Client::new()
                    .post(url)
                    .json(&FetcherControl { paused })
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .is_success()
            )
        }
    };
    pause(true).await;
    // Let a long poll already in flight finish.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let start = cluster.dump(follower, "fmb").await.log_end_offset;
    const BATCHES: usize = 40;
    for i in 0..BATCHES {
        cluster.produce("fmb", Acks::Leader, &vals(&format!("m{i}"), 2), Duration::from_secs(5)).await.unwrap();
    }
    // Ask the leader directly, as the follower would.
    let ask = |max_bytes: usize| {
        let req = FetchRequest {
            replica_id: follower,
            broker_epoch: -1,
            max_wait_ms: 0,
            partitions: vec![PartitionFetch {
                topic: "fmb".into(),
                partition: 0,
                fetch_offset: start,
                last_fetched_epoch: None,
                current_leader_epoch: p.leader_epoch,
                max_bytes,
            }],
        };
        let url = format!("{}{FETCH_PATH}", cluster.node(leader).url);
        async move {
            let body = reqwest::Client::new().post(url).json(&req).send().await.unwrap().bytes().await.unwrap();
            let (header, batches) = decode_response(&body).unwrap();
            assert_eq!(header.partitions[0].error, None, "{header:?}");
            (batches[0].len(), batches[0].iter().map(Vec::len).sum::<usize>())
        }
    };
    let (one, _) = ask(0).await;
    assert_eq!(one, 1, "max_bytes 0 still returns exactly one batch");
    let (some, bytes) = ask(600).await;
    assert!(some > 1 && some < BATCHES, "600 bytes returned {some} of {BATCHES} batches ({bytes} bytes)");
    let (all, _) = ask(1 << 20).await;
    assert_eq!(all, BATCHES, "the default returns everything written");

    pause(false).await;
    let end = cluster.dump(leader, "fmb").await.log_end_offset;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cluster.dump(follower, "fmb").await.log_end_offset < end {
        assert!(std::time::Instant::now() < deadline, "the follower with replica.fetch.max.bytes=0 did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
