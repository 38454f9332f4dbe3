//! One deterministic mechanism test per bug switch on the data path: the
//! same scenario, driven step by step on real logs, loses or duplicates
//! data with the switch on and does not with it off. (The controller's
//! switch, `elect-out-of-sync-replica`, is tested in `controller::metadata`;
//! `ack-all-on-local-append` needs the produce path and is tested end to
//! end in `tests/it/bugs.rs`.)

use std::time::{Duration, Instant};

use faultline_client::api::ErrorCode;

use super::test_support::{fetch_once, records, replica, sync, write, write_as};
use crate::broker::Partition;
use crate::bugs::{Bug, Bugs};
use crate::log::batch::{self, ProducerFields};

fn bugs(on: bool, bug: Bug) -> Bugs {
    if on { Bugs::default().with(bug) } else { Bugs::default() }
}

fn values(p: &Partition) -> Vec<String> {
    records(p).into_iter().map(|r| r.2).collect()
}

fn consumer_values(p: &Partition) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let read = rt.block_on(p.fetch(0, 1 << 20, Duration::ZERO)).unwrap();
    read.batches.iter().flat_map(|b| batch::decode(b).unwrap().1).map(|r| String::from_utf8(r.value).unwrap()).collect()
}

#[test]
fn truncate_to_local_hw_loses_a_committed_record_on_restart_then_election() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let b = replica(dir.path(), 2, 0, bugs(on, Bug::TruncateToLocalHw), 1);
        let a = replica(dir.path(), 1, 0, bugs(on, Bug::TruncateToLocalHw), 1);
        b.become_leader(1, 0, &[2, 1], &[2, 1], now);
        a.become_follower(2, "b", 1, 0, &[2, 1], &[2, 1]);
        write(&b, "m1");
        sync(&b, &a, 1);
        write(&b, "m2");
        assert!(fetch_once(&b, &a, 1));
        b.serve_follower(1, 1, a.fetch_position(), 1 << 20, now);
        assert_eq!(b.high_watermark(), 2, "m2 is committed");
        let stale_hw = a.high_watermark();
        drop(a);
        let a = replica(dir.path(), 1, stale_hw, bugs(on, Bug::TruncateToLocalHw), 1);
        a.become_leader(2, 1, &[2, 1], &[1], now);
        let kept = values(&a);
        if on {
            assert_eq!(kept, vec!["m1"], "switch on: the committed m2 is lost");
        } else {
            assert_eq!(kept, vec!["m1", "m2"], "switch off: nothing is lost");
        }
    }
}

#[test]
fn leader_unilateral_isr_shrink_acks_alone_and_the_record_is_lost() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let a = replica(dir.path(), 1, 0, bugs(on, Bug::LeaderUnilateralIsrShrink), 2);
        let b = replica(dir.path(), 2, 0, bugs(on, Bug::LeaderUnilateralIsrShrink), 2);
        a.become_leader(1, 0, &[1, 2, 3], &[1, 2, 3], now);
        b.become_follower(1, "a", 1, 0, &[1, 2, 3], &[1, 2, 3]);
        write(&a, "safe");
        sync(&a, &b, 2);
        // The leader is cut off from its followers: they stop fetching.
        let x = write(&a, "zombie");
        let lag = Duration::from_millis(100);
        let out = a.out_of_sync_followers(now + lag * 10, lag);
        assert_eq!(out.len(), 2, "both followers lag");
        // Without the controller's commit the ISR is unchanged, unless the bug acts alone.
        let acked = a.high_watermark() > x;
        assert_eq!(acked, on, "acks=all of `zombie` completes only with the switch");
        if on {
            assert!(
                write_as(&a, "below-min-isr", ProducerFields::NONE).is_ok(),
                "the switch also ignores min.insync.replicas"
            );
            // Both followers left in one step, so no proposal keeps a second
            // member in the maximal ISR: the after-append check must pass too.
            assert!(a.isr_satisfies_min(), "acks=all is answered, not NOT_ENOUGH_REPLICAS_AFTER_APPEND");
        }
        // The controller elects B, which never had `zombie`.
        b.become_leader(2, 1, &[1, 2, 3], &[2, 3], now);
        assert!(!values(&b).contains(&"zombie".to_string()));
    }
}

#[test]
fn serve_consumers_to_leo_shows_a_record_that_failover_then_removes() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let a = replica(dir.path(), 1, 0, bugs(on, Bug::ServeConsumersToLeo), 1);
        let b = replica(dir.path(), 2, 0, bugs(on, Bug::ServeConsumersToLeo), 1);
        a.become_leader(1, 0, &[1, 2], &[1, 2], now);
        b.become_follower(1, "a", 1, 0, &[1, 2], &[1, 2]);
        write(&a, "uncommitted");
        let seen = consumer_values(&a);
        assert_eq!(seen.contains(&"uncommitted".to_string()), on, "consumers see above the HW only with the switch");
        b.become_leader(2, 1, &[1, 2], &[2], now);
        assert!(values(&b).is_empty(), "the value a consumer may have read is gone after failover");
    }
}

#[test]
fn skip_truncate_same_leader_leaves_replicas_diverged() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let bg = bugs(on, Bug::SkipTruncateSameLeader);
        let (a, b, c) =
            (replica(dir.path(), 1, 0, bg, 1), replica(dir.path(), 2, 0, bg, 1), replica(dir.path(), 3, 0, bg, 1));
        a.become_leader(1, 0, &[1, 2, 3], &[1, 2, 3], now);
        b.become_follower(1, "a", 1, 0, &[1, 2, 3], &[1, 2, 3]);
        c.become_follower(1, "a", 1, 0, &[1, 2, 3], &[1, 2, 3]);
        write(&a, "m0");
        sync(&a, &b, 2);
        sync(&a, &c, 3);
        write(&a, "m1");
        sync(&a, &b, 2); // B has m1; C does not. Then B is paused.
        c.become_leader(2, 1, &[1, 2, 3], &[1, 3], now);
        write(&c, "c1");
        a.become_follower(3, "c", 2, 1, &[1, 2, 3], &[1, 3]);
        sync(&c, &a, 1);
        a.become_leader(3, 2, &[1, 2, 3], &[1, 3], now);
        write(&a, "a3");
        // B resumes: its leader is A again, two epochs later.
        b.become_follower(1, "a", 3, 2, &[1, 2, 3], &[1, 3]);
        sync(&a, &b, 2);
        if on {
            assert_ne!(values(&b), values(&a), "switch on: B kept m1 where A has c1");
        } else {
            assert_eq!(values(&b), values(&a), "switch off: B truncated by epoch and converged");
        }
    }
}

#[test]
fn isr_join_ignores_epoch_start_lets_a_replica_missing_committed_data_into_the_isr() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let bg = bugs(on, Bug::IsrJoinIgnoresEpochStart);
        // A holds x0, x1, both committed by the previous leader; A's own HW lags at 0.
        let a = replica(dir.path(), 1, 0, bg, 1);
        let b = replica(dir.path(), 2, 0, bg, 1);
        a.become_leader(1, 0, &[1, 2], &[1], now);
        write(&a, "x0");
        b.become_follower(1, "a", 1, 0, &[1, 2], &[1]);
        sync(&a, &b, 2);
        write(&a, "x1");
        a.become_follower(9, "gone", 2, 1, &[1, 2, 3], &[1, 3]);
        // A restarts without an HW checkpoint, so its HW is back at 0. (The
        // HW never goes down in a running replica, so a restart it is.)
        drop(a);
        let a = replica(dir.path(), 1, 0, bg, 1);
        // A leads again with ISR {A, C}; C has not fetched yet, so A's HW stays at 0.
        a.become_leader(3, 2, &[1, 2, 3], &[1, 3], now);
        // B has only x0 (offset 1 < epoch start 2) but is at or above A's lagging HW.
        b.become_follower(1, "a", 3, 2, &[1, 2, 3], &[1, 3]);
        let r = a.serve_follower(2, 1, b.fetch_position(), 0, now);
        assert_eq!(r.expand_candidate.is_some(), on, "B qualifies for the ISR only with the switch");
        if on {
            // It joins, A dies, and B is elected without x1: committed data lost.
            b.become_leader(4, 3, &[1, 2, 3], &[2], now);
            assert!(!values(&b).contains(&"x1".to_string()));
        }
    }
}

#[test]
fn dedupe_window_1_turns_a_retry_into_a_duplicate() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let a = replica(dir.path(), 1, 0, bugs(on, Bug::DedupeWindow1), 1);
        a.become_leader(1, 0, &[1], &[1], Instant::now());
        let p = |epoch, seq| ProducerFields { producer_id: 5, producer_epoch: epoch, base_sequence: seq };
        // Two batches in flight, both appended, both answers lost; both retried.
        write_as(&a, "v0", p(0, 0)).unwrap();
        write_as(&a, "v1", p(0, 1)).unwrap();
        match write_as(&a, "v0", p(0, 0)) {
            Ok(offset) => assert_eq!(offset, 0, "deduplicated to the original offset"),
            Err(code) => {
                assert_eq!(code, ErrorCode::OutOfOrderSequenceNumber);
                // The client sees a gap before its oldest batch: KIP-360 bumps the epoch and resends.
                write_as(&a, "v0", p(1, 0)).unwrap();
            }
        }
        let v0s = values(&a).iter().filter(|v| *v == "v0").count();
        assert_eq!(v0s, if on { 2 } else { 1 }, "switch on: v0 is in the log twice");
    }
}

#[test]
fn drop_producer_state_on_failover_duplicates_a_retried_batch() {
    for on in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = Instant::now();
        let bg = bugs(on, Bug::DropProducerStateOnFailover);
        let a = replica(dir.path(), 1, 0, bg, 1);
        let b = replica(dir.path(), 2, 0, bg, 1);
        a.become_leader(1, 0, &[1, 2], &[1, 2], now);
        b.become_follower(1, "a", 1, 0, &[1, 2], &[1, 2]);
        let p = ProducerFields { producer_id: 5, producer_epoch: 0, base_sequence: 0 };
        write_as(&a, "once", p).unwrap();
        sync(&a, &b, 2);
        // The answer was lost in the failover; the producer retries at B.
        b.become_leader(2, 1, &[1, 2], &[2], now);
        write_as(&b, "once", p).unwrap();
        let n = values(&b).iter().filter(|v| *v == "once").count();
        assert_eq!(n, if on { 2 } else { 1 });
    }
}
