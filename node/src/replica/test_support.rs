//! Shared helpers for the replication scenario tests: replicas on real
//! logs and one-step follower fetches driven by hand.

use std::path::Path;
use std::time::Instant;

use crate::broker::Partition;
use crate::bugs::Bugs;
use crate::config::{BrokerConfig, Settings};
use crate::log::batch::{self, NewRecord, ProducerFields};
use crate::log::{OpenMode, PartitionLog};

/// Opens (or reopens, after a "crash") node `id`'s replica in `root/id`.
pub fn replica(root: &Path, id: i32, hw: i64, bugs: Bugs, min_isr: i64) -> Partition {
    let settings = Settings::broker([
        ("node.id".to_string(), id.to_string()),
        ("min.insync.replicas".to_string(), min_isr.to_string()),
    ])
    .unwrap();
    let mut config = BrokerConfig::from_settings(settings).unwrap().topic_config(&Default::default());
    config.bugs = bugs;
    let (log, _) = PartitionLog::open(
        &root.join(id.to_string()),
        config.log.clone(),
        OpenMode { clean_shutdown: false, recovery_point: 0 },
    )
    .unwrap();
    Partition::new("t", 0, id, config, log, hw)
}

/// Appends one record as leader with acks=all's pre-append min-ISR check.
pub fn write_as(
    leader: &Partition,
    value: &str,
    producer: ProducerFields,
) -> Result<i64, faultline_client::api::ErrorCode> {
    let mut b = batch::encode(&[NewRecord { key: None, value: value.as_bytes(), timestamp_ms: 0 }], producer);
    leader.append(&mut b, true).map(|(i, _)| i.base_offset).map_err(|e| e.code)
}

/// Appends one record as leader with acks=1 (no min-ISR check).
pub fn write(leader: &Partition, value: &str) -> i64 {
    let mut b =
        batch::encode(&[NewRecord { key: None, value: value.as_bytes(), timestamp_ms: 0 }], ProducerFields::NONE);
    leader.append(&mut b, false).unwrap().0.base_offset
}

/// One fetch round trip of `follower` (id `fid`) against `leader`. Returns
/// whether anything happened (records copied or a truncation).
pub fn fetch_once(leader: &Partition, follower: &Partition, fid: i32) -> bool {
    let pos = follower.fetch_position();
    let r = leader.serve_follower(fid, 1, pos, 1 << 20, Instant::now());
    if r.error.is_some() {
        return false;
    }
    if let Some(d) = r.diverging {
        follower.truncate_on_divergence(pos.current_leader_epoch, d).unwrap();
        return true;
    }
    let copied = !r.batches.is_empty();
    follower.append_as_follower(pos.current_leader_epoch, &r.batches, r.high_watermark).unwrap();
    copied
}

/// Fetches until nothing changes, plus one round so the follower learns the HW (bounded).
pub fn sync(leader: &Partition, follower: &Partition, fid: i32) {
    for _ in 0..50 {
        if !fetch_once(leader, follower, fid) {
            fetch_once(leader, follower, fid);
            return;
        }
    }
    panic!("replication did not settle");
}

/// Every record of a replica as (offset, leader epoch, value).
pub fn records(p: &Partition) -> Vec<(i64, i32, String)> {
    p.read_state(|st| {
        let batches = st.log().read(0, st.log().log_end_offset(), usize::MAX).unwrap();
        batches
            .iter()
            .flat_map(|b| {
                let (h, recs) = batch::decode(b).unwrap();
                recs.into_iter().map(move |r| (r.offset, h.leader_epoch, String::from_utf8(r.value).unwrap()))
            })
            .collect()
    })
}
