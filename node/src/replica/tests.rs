//! Deterministic replication scenarios on real logs, driving the leader's
//! and followers' fetch steps by hand: KIP-101 scenarios 1 and 2, KIP-279's
//! fast double failover, high-watermark rules, and fencing of stale epochs.

use std::path::Path;
use std::time::Instant;

use faultline_client::api::ErrorCode;

use super::test_support::{self, fetch_once, records, sync, write};
use crate::broker::Partition;
use crate::bugs::Bugs;
use crate::config::{BrokerConfig, Settings};
use crate::log::batch::{self, NewRecord, ProducerFields};
use crate::log::{OpenMode, PartitionLog};

fn replica(root: &Path, id: i32, hw: i64) -> Partition {
    test_support::replica(root, id, hw, Bugs::default(), 1)
}

fn values(p: &Partition) -> Vec<(i64, i32, String)> {
    records(p)
}

#[test]
fn kip101_scenario1_a_restarted_follower_keeps_a_committed_record_above_its_stale_hw() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    // B (2) leads epoch 1 with ISR {A, B}; A (1) follows.
    let b = replica(dir.path(), 2, 0);
    let a = replica(dir.path(), 1, 0);
    b.become_leader(1, 0, &[2, 1], &[2, 1], now);
    a.become_follower(2, "b", 1, 0, &[2, 1], &[2, 1]);
    write(&b, "m1");
    sync(&b, &a, 1);
    write(&b, "m2");
    // A fetches m2; its next fetch tells B, so B's HW covers m2 (committed)...
    assert!(fetch_once(&b, &a, 1));
    let pos = a.fetch_position();
    b.serve_follower(1, 1, pos, 1 << 20, now);
    assert_eq!(b.high_watermark(), 2, "m2 is committed on the leader");
    // ...but A has not seen that HW when it crashes: its HW is stale (1).
    let stale_hw = a.high_watermark();
    assert_eq!(stale_hw, 1);
    drop(a);
    let a = replica(dir.path(), 1, stale_hw);
    // B fails; A is elected (it is in the ISR) for epoch 2.
    a.become_leader(2, 1, &[2, 1], &[1], now);
    assert_eq!(
        values(&a).iter().map(|v| v.2.as_str()).collect::<Vec<_>>(),
        vec!["m1", "m2"],
        "with epochs, A never truncates to its HW: m2 survives"
    );
}

#[test]
fn kip101_scenario2_divergent_tails_converge_by_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let a = replica(dir.path(), 1, 0);
    let b = replica(dir.path(), 2, 0);
    // Epoch 1: A leads, both have m1; A alone also has m2 (B never got it).
    a.become_leader(1, 0, &[1, 2], &[1, 2], now);
    b.become_follower(1, "a", 1, 0, &[1, 2], &[1, 2]);
    write(&a, "m1");
    sync(&a, &b, 2);
    write(&a, "m2");
    // Both "lose power"; B comes back first and leads epoch 2, taking m3 at offset 1.
    b.become_leader(2, 1, &[1, 2], &[2], now);
    write(&b, "m3");
    // A comes back as a follower of epoch 2.
    a.become_follower(2, "b", 2, 1, &[1, 2], &[2]);
    sync(&b, &a, 1);
    assert_eq!(values(&a), values(&b), "no divergence: A truncated m2 and copied m3");
    assert_eq!(values(&a)[1].2, "m3");
}

#[test]
fn kip279_fast_double_failover_converges() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let a = replica(dir.path(), 1, 0);
    let b = replica(dir.path(), 2, 0);
    // Epoch 1: A leads; B copies the first two records only.
    a.become_leader(1, 0, &[1, 2], &[1, 2], now);
    b.become_follower(1, "a", 1, 0, &[1, 2], &[1, 2]);
    write(&a, "e1-0");
    write(&a, "e1-1");
    sync(&a, &b, 2);
    write(&a, "e1-2");
    write(&a, "e1-3");
    // Epoch 2: B leads (unclean or fast failover) and writes; A is away.
    b.become_leader(2, 1, &[1, 2], &[2], now);
    write(&b, "e2-2");
    // Epoch 3: A leads again before it ever truncated its epoch-1 suffix.
    a.become_leader(3, 2, &[1, 2], &[1], now);
    write(&a, "e3-4");
    // B follows A in epoch 3: it must discard its epoch-2 record.
    b.become_follower(1, "a", 3, 2, &[1, 2], &[1]);
    sync(&a, &b, 2);
    assert_eq!(values(&a), values(&b), "the logs converge on A's lineage");
    assert!(!values(&b).iter().any(|v| v.2 == "e2-2"));
}

#[test]
fn stale_or_future_epochs_are_refused_and_the_hw_needs_every_isr_member() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let a = replica(dir.path(), 1, 0);
    let b = replica(dir.path(), 2, 0);
    let c = replica(dir.path(), 3, 0);
    a.become_leader(5, 0, &[1, 2, 3], &[1, 2, 3], now);
    b.become_follower(1, "a", 5, 0, &[1, 2, 3], &[1, 2, 3]);
    c.become_follower(1, "a", 5, 0, &[1, 2, 3], &[1, 2, 3]);
    write(&a, "x");
    sync(&a, &b, 2);
    assert_eq!(a.high_watermark(), 0, "C has not fetched: the HW waits for every ISR member");
    sync(&a, &c, 3);
    assert_eq!(a.high_watermark(), 1);
    let mut pos = b.fetch_position();
    pos.current_leader_epoch = 4;
    assert_eq!(a.serve_follower(2, 1, pos, 1024, now).error, Some(ErrorCode::FencedLeaderEpoch));
    pos.current_leader_epoch = 6;
    assert_eq!(a.serve_follower(2, 1, pos, 1024, now).error, Some(ErrorCode::UnknownLeaderEpoch));
    // A deposed leader refuses produce and consumer fetch.
    a.become_follower(2, "b", 6, 1, &[1, 2, 3], &[2, 3]);
    let mut batch = batch::encode(&[NewRecord { key: None, value: b"late", timestamp_ms: 0 }], ProducerFields::NONE);
    let err = a.append(&mut batch, false).unwrap_err();
    assert_eq!((err.code, err.leader_id), (ErrorCode::NotLeaderOrFollower, Some(2)));
}

#[test]
fn the_hw_does_not_move_while_the_isr_is_below_min_isr() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let settings = Settings::broker([
        ("node.id".to_string(), "1".to_string()),
        ("min.insync.replicas".to_string(), "2".to_string()),
    ])
    .unwrap();
    let config = BrokerConfig::from_settings(settings).unwrap().topic_config(&Default::default());
    let (log, _) = PartitionLog::open(
        &dir.path().join("1"),
        config.log.clone(),
        OpenMode { clean_shutdown: false, recovery_point: 0 },
    )
    .unwrap();
    let a = Partition::new("t", 0, 1, config, log, 0);
    a.become_leader(1, 0, &[1, 2, 3], &[1], now);
    write(&a, "acks=1 while alone");
    assert_eq!(a.high_watermark(), 0, "R1.7: invisible to consumers until the ISR recovers");
    a.update_isr(1, &[1, 2]);
    let b = replica(dir.path(), 2, 0);
    b.become_follower(1, "a", 1, 1, &[1, 2, 3], &[1, 2]);
    sync(&a, &b, 2);
    assert_eq!(a.high_watermark(), 1);
}

#[test]
fn a_follower_joins_the_isr_only_after_reaching_the_epoch_start() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let a = replica(dir.path(), 1, 0);
    let b = replica(dir.path(), 2, 0);
    a.become_leader(1, 0, &[1, 2], &[1], now);
    write(&a, "old-0");
    write(&a, "old-1");
    // New epoch starts at offset 2 (KAFKA-7128).
    a.become_leader(2, 1, &[1, 2], &[1], now);
    b.become_follower(1, "a", 2, 1, &[1, 2], &[1]);
    let pos = b.fetch_position();
    assert_eq!(a.serve_follower(2, 7, pos, 1, now).expand_candidate, None, "offset 0 is below the epoch start");
    sync(&a, &b, 2);
    let pos = b.fetch_position();
    assert_eq!(a.serve_follower(2, 7, pos, 1024, now).expand_candidate, Some(2));
}

/// Regression (seen after every node lost power): a replica that led an
/// epoch without writing anything (its cache says epoch 0 starts at 0, its
/// log is empty) follows a leader whose cache starts at epoch 3. The leader
/// answers "diverging" to its epoch 0; the follower has no record to cut,
/// and used to keep the epoch too, so it sent it again forever and never
/// copied a record nor joined the ISR.
#[test]
fn a_follower_drops_an_empty_epoch_the_leader_never_had_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let now = Instant::now();
    let a = replica(dir.path(), 1, 0);
    let b = replica(dir.path(), 2, 0);
    b.become_leader(0, 0, &[1, 2], &[2], now);
    a.become_leader(3, 1, &[1, 2], &[1], now);
    write(&a, "x");
    write(&a, "y");
    b.become_follower(1, "a", 3, 1, &[1, 2], &[1]);
    assert_eq!(b.fetch_position().last_fetched_epoch, Some(0), "b sends the epoch it led");
    // Bounded: a handful of rounds, each of which must make progress.
    for _ in 0..4 {
        fetch_once(&a, &b, 2);
    }
    assert_eq!(b.read_state(|st| st.log().log_end_offset()), 2, "b copied the leader's records");
    let pos = b.fetch_position();
    assert_eq!(pos.last_fetched_epoch, Some(3));
    assert_eq!(a.serve_follower(2, 7, pos, 1024, now).expand_candidate, Some(2), "and qualifies for the ISR");
}

/// Regression: an acks=all waiter that sees its leader deposed answers
/// `NOT_LEADER_OR_FOLLOWER` and leaves the replica usable. It used to build
/// that answer while still holding the view's read guard, which deadlocked
/// the worker thread (found by `faultline run --nemesis kill,partition`).
#[test]
fn a_commit_waiter_deposed_mid_wait_answers_and_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::sync::Arc::new(replica(dir.path(), 1, 0));
    a.become_leader(1, 0, &[1, 2], &[1, 2], Instant::now());
    let offset = write(&a, "pending") + 1;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let waiter = {
        let a = a.clone();
        rt.spawn(async move { a.wait_for_commit(offset, 1, std::time::Duration::from_secs(30)).await })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    a.become_follower(2, "b", 2, 1, &[1, 2], &[2]);
    let outcome = rt.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await });
    let err = outcome.expect("the waiter answered instead of hanging").unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::NotLeaderOrFollower);
    assert_eq!(a.read_state(|st| st.leader_epoch()), 2, "the replica's lock is free again");
}
