//! Tests of the partition log: round trips, segment rolls and index
//! lookups, truncation, flushing, and recovery from every torn or corrupt
//! tail.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use proptest::prelude::*;

use super::batch::{self, NewRecord, ProducerFields};
use super::segment::log_file_name;
use super::*;

fn encode_values(values: &[String]) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> =
        values.iter().map(|v| NewRecord { key: None, value: v.as_bytes(), timestamp_ms: 1_700_000_000_000 }).collect();
    batch::encode(&recs, ProducerFields::NONE)
}

fn unclean_from_zero() -> OpenMode {
    OpenMode { clean_shutdown: false, recovery_point: 0 }
}

fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: 100, ..LogConfig::default() }
}

/// Appends batches of `sizes[i]` records with values `"v<offset>"`.
fn fill(log: &mut PartitionLog, sizes: &[usize]) -> Vec<AppendInfo> {
    let mut out = Vec::new();
    for &n in sizes {
        let base = log.log_end_offset();
        let values: Vec<String> = (0..n as i64).map(|i| format!("v{}", base + i)).collect();
        let mut b = encode_values(&values);
        out.push(log.append_as_leader(&mut b, 3).unwrap());
    }
    out
}

/// Every record of the log as (offset, value), read from the start.
fn read_all(log: &PartitionLog) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < log.log_end_offset() {
        let batches = log.read(from, i64::MAX, 1024).unwrap();
        assert!(!batches.is_empty(), "no progress at {from}");
        for b in batches {
            let (_, recs) = batch::decode(&b).unwrap();
            for r in recs.into_iter().filter(|r| r.offset >= from) {
                out.push((r.offset, String::from_utf8(r.value).unwrap()));
            }
        }
        from = out.last().unwrap().0 + 1;
    }
    out
}

fn expected(upto: i64) -> Vec<(i64, String)> {
    (0..upto).map(|o| (o, format!("v{o}"))).collect()
}

#[test]
fn append_then_read_round_trips_with_dense_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), unclean_from_zero()).unwrap();
    let infos = fill(&mut log, &[1, 10, 100, 3]);
    assert_eq!(infos.iter().map(|i| i.base_offset).collect::<Vec<_>>(), vec![0, 1, 11, 111]);
    assert_eq!(log.log_end_offset(), 114);
    assert_eq!(read_all(&log), expected(114));
    let (header, _) = batch::decode(&log.read(50, 114, 1).unwrap()[0]).unwrap();
    assert_eq!(
        (header.base_offset, header.leader_epoch),
        (11, 3),
        "the batch holding offset 50, stamped with its epoch"
    );
}

#[test]
fn reads_stop_at_upto_and_at_the_byte_budget_but_always_return_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), LogConfig::default(), unclean_from_zero()).unwrap();
    fill(&mut log, &[5, 5, 5, 5]);
    assert!(log.read(10, 10, 1 << 20).unwrap().is_empty(), "nothing below upto=from");
    assert_eq!(log.read(0, 10, 1 << 20).unwrap().len(), 2, "upto=10 ends after the second batch");
    assert_eq!(log.read(0, 20, 1).unwrap().len(), 1, "a tiny budget still returns one batch");
    assert!(matches!(log.read(21, 30, 10), Err(LogError::OffsetOutOfRange { offset: 21, .. })));
    assert!(matches!(log.read(-1, 30, 10), Err(LogError::OffsetOutOfRange { offset: -1, .. })));
    assert!(log.read(20, 30, 10).unwrap().is_empty(), "reading at the log end is empty, not an error");
}

#[test]
fn segments_roll_at_segment_bytes_and_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    fill(&mut log, &[4; 30]);
    assert!(log.segment_count() > 5, "600-byte segments roll often: {}", log.segment_count());
    for seg in log.segments() {
        assert!(seg.size() <= 600 || seg.size() == log.segments()[0].size(), "segment over segment.bytes");
    }
    log.flush();
    drop(log);
    let (log, report) =
        PartitionLog::open(dir.path(), small_config(), OpenMode { clean_shutdown: true, recovery_point: 120 }).unwrap();
    assert_eq!(report.segments_scanned, 1, "a clean start scans only the active segment");
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(read_all(&log), expected(120));
}

#[test]
fn the_sparse_index_points_at_batch_starts_and_serves_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { index_interval_bytes: 200, ..LogConfig::default() };
    let (mut log, _) = PartitionLog::open(dir.path(), config.clone(), unclean_from_zero()).unwrap();
    fill(&mut log, &[3; 100]);
    let seg = &log.segments()[0];
    let entries = seg.index_entries().to_vec();
    assert!(entries.len() > 20, "about one entry per 200 bytes: {}", entries.len());
    let file = std::fs::File::open(seg.log_path()).unwrap();
    for e in &entries {
        let mut head = [0u8; batch::HEADER_LEN];
        file.read_exact_at(&mut head, u64::from(e.position)).unwrap();
        assert_eq!(batch::parse_header(&head).unwrap().base_offset, e.offset, "entry {e:?}");
    }
    for from in 0..300 {
        let (h, _) = batch::decode(&log.read(from, 300, 1).unwrap()[0]).unwrap();
        assert!(h.base_offset <= from && from <= h.last_offset(), "read from {from} got batch at {}", h.base_offset);
    }
    drop(log);
    // The index file is reloaded, not rebuilt, on a clean start.
    let (log, _) =
        PartitionLog::open(dir.path(), config, OpenMode { clean_shutdown: true, recovery_point: 300 }).unwrap();
    assert_eq!(log.segments()[0].index_entries(), &entries[..]);
}

#[test]
fn a_garbage_index_file_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { index_interval_bytes: 100, ..LogConfig::default() };
    let (mut log, _) = PartitionLog::open(dir.path(), config.clone(), unclean_from_zero()).unwrap();
    fill(&mut log, &[3; 50]);
    log.flush();
    drop(log);
    std::fs::write(dir.path().join("00000000000000000000.index"), [0xFFu8; 77]).unwrap();
    let (log, _) =
        PartitionLog::open(dir.path(), config, OpenMode { clean_shutdown: true, recovery_point: 150 }).unwrap();
    assert_eq!(read_all(&log), expected(150));
}

#[test]
fn truncate_to_removes_whole_batches_and_appends_continue_there() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    fill(&mut log, &[4; 40]);
    assert_eq!(log.truncate_to(82).unwrap(), 80, "offset 82 sits in the batch [80, 84), which goes whole");
    assert_eq!(log.log_end_offset(), 80);
    fill(&mut log, &[2]);
    assert_eq!(read_all(&log), expected(82));
    drop(log);
    let (log, _) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    assert_eq!(read_all(&log), expected(82));
}

#[test]
fn flush_messages_one_fsyncs_every_append_and_the_default_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let sync = LogConfig { flush_messages: 1, ..LogConfig::default() };
    let (mut log, _) = PartitionLog::open(&dir.path().join("a"), sync, unclean_from_zero()).unwrap();
    fill(&mut log, &[3, 3]);
    assert_eq!(log.recovery_point(), 6);
    let (mut log, _) = PartitionLog::open(&dir.path().join("b"), LogConfig::default(), unclean_from_zero()).unwrap();
    fill(&mut log, &[3, 3]);
    assert_eq!(log.recovery_point(), 0);
    let timed = LogConfig { flush_ms: Some(0), ..LogConfig::default() };
    let (mut log, _) = PartitionLog::open(&dir.path().join("c"), timed, unclean_from_zero()).unwrap();
    fill(&mut log, &[3]);
    log.flush_if_due(std::time::Instant::now());
    assert_eq!(log.recovery_point(), 3, "flush.ms elapsed");
}

/// Byte ranges of every batch, in file order, per segment file.
fn batch_spans(log: &PartitionLog) -> Vec<(std::path::PathBuf, u64, u64, i64)> {
    let mut spans = Vec::new();
    for seg in log.segments() {
        let bytes = std::fs::read(seg.log_path()).unwrap();
        let mut pos = 0usize;
        while pos < bytes.len() {
            let h = batch::parse_header(&bytes[pos..]).unwrap();
            spans.push((seg.log_path().to_path_buf(), pos as u64, (pos + h.size) as u64, h.next_offset()));
            pos += h.size;
        }
    }
    spans
}

/// Damages byte `at` of the whole log (segments concatenated) by `damage`,
/// reopens uncleanly, and returns the recovered records plus the offset the
/// log must end at: the end of the last batch wholly before the damage.
fn damage_and_recover(sizes: &[usize], at_permille: u32, truncate: bool) -> (Vec<(i64, String)>, i64, RecoveryReport) {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    fill(&mut log, sizes);
    let spans = batch_spans(&log);
    drop(log);
    let total: u64 = spans.iter().map(|s| s.2 - s.1).sum();
    let target = u64::from(at_permille) * total / 1000;
    let mut seen = 0u64;
    let mut keep_upto = 0i64;
    for (path, start, end, next) in &spans {
        let len = end - start;
        if seen + len <= target {
            seen += len;
            keep_upto = *next;
            continue;
        }
        let pos = start + (target - seen);
        let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
        if truncate {
            file.set_len(pos).unwrap();
        } else {
            let mut b = [0u8];
            file.read_exact_at(&mut b, pos).unwrap();
            file.write_all_at(&[b[0] ^ 0x5A], pos).unwrap();
        }
        break;
    }
    let (log, report) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    assert_eq!(log.log_end_offset(), keep_upto, "report: {report:?}");
    (read_all(&log), keep_upto, report)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Truncating the log at any byte keeps every batch before the cut and nothing after.
    #[test]
    fn a_torn_tail_at_any_byte_keeps_exactly_the_whole_batches_before_it(
        sizes in proptest::collection::vec(1usize..8, 1..40), at in 0u32..1000,
    ) {
        let (records, upto, _) = damage_and_recover(&sizes, at, true);
        prop_assert_eq!(records, expected(upto));
    }

    /// Flipping any byte keeps every batch before the damaged one and nothing after.
    #[test]
    fn a_corrupt_byte_anywhere_keeps_exactly_the_batches_before_it(
        sizes in proptest::collection::vec(1usize..8, 1..40), at in 0u32..1000,
    ) {
        let (records, upto, report) = damage_and_recover(&sizes, at, false);
        prop_assert!(report.truncation.is_some(), "the damage must be reported");
        prop_assert_eq!(records, expected(upto));
    }
}

#[test]
fn recovery_after_damage_lets_appends_continue_without_gaps_or_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    fill(&mut log, &[5; 20]);
    let last = log.segments().last().unwrap().log_path().to_path_buf();
    drop(log);
    let len = std::fs::metadata(&last).unwrap().len();
    OpenOptions::new().write(true).open(&last).unwrap().set_len(len - 3).unwrap();
    let (mut log, report) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    let cut = report.truncation.expect("a torn tail is reported");
    assert!(cut.reason.contains("torn"), "{}", cut.reason);
    assert_eq!(log.log_end_offset(), 95);
    fill(&mut log, &[5]);
    assert_eq!(read_all(&log), expected(100));
}

#[test]
fn a_segment_file_that_breaks_the_offset_chain_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    fill(&mut log, &[4; 10]);
    let leo = log.log_end_offset();
    drop(log);
    // A stray segment far beyond the log end, e.g. left by a botched copy.
    std::fs::copy(dir.path().join(log_file_name(0)), dir.path().join(log_file_name(leo + 1000))).unwrap();
    let (log, report) = PartitionLog::open(dir.path(), small_config(), unclean_from_zero()).unwrap();
    assert_eq!(report.segments_deleted, vec![leo + 1000]);
    assert_eq!(read_all(&log), expected(leo));
    assert!(!Path::new(&dir.path().join(log_file_name(leo + 1000))).exists());
}
