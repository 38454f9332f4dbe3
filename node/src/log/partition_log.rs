//! The durable log of one topic-partition replica: an ordered list of
//! segments, with append, read, truncate, flush and crash recovery.
//!
//! Appends reach the page cache (a `write`) before they return, so they
//! survive SIGKILL; fsync follows `flush.messages` / `flush.ms` as in Kafka.
//! Recovery after an unclean shutdown scans every segment from the one that
//! holds the recovery point, validates each batch, and truncates the log at
//! the first torn or corrupt batch.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::batch::{self, BatchHeader};
use super::segment::{Scan, ScanStop, Segment};
use crate::fsutil::fsync_dir;

/// Per-log settings, from broker defaults and topic overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would exceed this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Bytes of log between sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Fsync once this many messages are unflushed (`flush.messages`); 1 means before every answer.
    pub flush_messages: u64,
    /// Fsync when the oldest unflushed append is this old (`flush.ms`); `None` never.
    pub flush_ms: Option<u64>,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { segment_bytes: 1 << 30, index_interval_bytes: 4096, flush_messages: u64::MAX, flush_ms: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {}: {source}", .path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },
    #[error("offset {offset} is outside the log [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("segment {} is unreadable at a position recovery had validated: {detail}", .path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("follower batch has base offset {found}, log end offset is {expected}")]
    NonContiguous { expected: i64, found: i64 },
    #[error("invalid batch: {0}")]
    InvalidBatch(batch::BatchError),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io { op, path: path.to_path_buf(), source }
}

/// How the log was last closed, from the broker's clean-shutdown marker and
/// recovery-point checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct OpenMode {
    pub clean_shutdown: bool,
    /// Every offset below this was fsync'd; recovery starts at its segment.
    pub recovery_point: i64,
}

/// What recovery did, for the log line the harness correlates with kills.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments_scanned: usize,
    pub batches_scanned: u64,
    /// Where a torn or corrupt tail was cut, if one was.
    pub truncation: Option<Truncation>,
    /// Base offsets of whole segments removed after the cut.
    pub segments_deleted: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    pub segment: String,
    pub position: u64,
    pub bytes_removed: u64,
    pub log_end_offset: i64,
    pub reason: String,
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: usize,
}

pub struct PartitionLog {
    dir: PathBuf,
    /// Sorted by base offset, never empty; the last one is active.
    segments: Vec<Segment>,
    config: LogConfig,
    /// Every offset below this is known fsync'd.
    recovery_point: i64,
    unflushed_messages: u64,
    /// When the oldest unflushed append happened, for `flush.ms`.
    oldest_unflushed: Option<Instant>,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`, recovering it as `mode` requires.
    pub fn open(dir: &Path, config: LogConfig, mode: OpenMode) -> Result<(PartitionLog, RecoveryReport), LogError> {
        crate::fsutil::create_dir_durable(dir).map_err(io_err("create", dir))?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let name = entry.map_err(io_err("list", dir))?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                match stem.parse::<i64>() {
                    Ok(base) if base >= 0 => bases.push(base),
                    _ => tracing::warn!(dir = %dir.display(), file = %name, "ignoring a file that is not a segment"),
                }
            }
        }
        bases.sort_unstable();
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            segments: Vec::with_capacity(bases.len().max(1)),
            config,
            recovery_point: 0,
            unflushed_messages: 0,
            oldest_unflushed: None,
        };
        if bases.is_empty() {
            log.segments.push(
                Segment::create(dir, 0, log.config.index_interval_bytes).map_err(io_err("create segment in", dir))?,
            );
            fsync_dir(dir).map_err(io_err("fsync", dir))?;
            return Ok((log, RecoveryReport::default()));
        }
        for &base in &bases {
            let seg =
                Segment::open(dir, base, log.config.index_interval_bytes).map_err(io_err("open segment in", dir))?;
            log.segments.push(seg);
        }
        let report = log.recover(mode)?;
        if !mode.clean_shutdown {
            // What recovery read may live in the page cache only (a SIGKILL
            // keeps it there): fsync it before the recovery point claims it.
            let from = log.segments.partition_point(|s| s.base_offset <= mode.recovery_point).saturating_sub(1);
            for seg in &log.segments[from..] {
                seg.flush();
            }
        }
        log.recovery_point = log.log_end_offset();
        Ok((log, report))
    }

    /// Finds each segment's end, scanning and validating where the data may
    /// not have been fsync'd, and cuts the log at the first bad batch.
    fn recover(&mut self, mode: OpenMode) -> Result<RecoveryReport, LogError> {
        let mut report = RecoveryReport::default();
        // After a clean shutdown only the active segment's end must be found;
        // otherwise everything from the recovery point's segment is suspect.
        let first_scanned = if mode.clean_shutdown {
            self.segments.len() - 1
        } else {
            self.segments.partition_point(|s| s.base_offset <= mode.recovery_point).saturating_sub(1)
        };
        for i in 0..first_scanned {
            let next_base = self.segments[i + 1].base_offset;
            self.segments[i].set_trusted_end(next_base);
        }
        let mut expected = self.segments[first_scanned].base_offset;
        let mut cut_at: Option<(usize, String)> = None;
        for i in first_scanned..self.segments.len() {
            let seg = &mut self.segments[i];
            if seg.base_offset != expected {
                let reason = format!("segment starts at offset {} but the log ends at {expected}", seg.base_offset);
                cut_at = Some((i, reason));
                break;
            }
            let file_len = seg.size();
            let Scan { valid_end, next_offset, batches, stop } = seg.scan(expected);
            report.segments_scanned += 1;
            report.batches_scanned += batches;
            expected = next_offset;
            if let Some(stop) = stop {
                if let ScanStop::Io(e) = stop {
                    return Err(LogError::Io { op: "read segment", path: seg.log_path().to_path_buf(), source: e });
                }
                report.truncation = Some(Truncation {
                    segment: seg.log_path().display().to_string(),
                    position: valid_end,
                    bytes_removed: file_len - valid_end,
                    log_end_offset: next_offset,
                    reason: stop.to_string(),
                });
                seg.truncate_file(valid_end, next_offset).map_err(io_err("truncate", seg.log_path()))?;
                cut_at = Some((i + 1, String::new()));
                break;
            }
            seg.write_index().map_err(io_err("write index for", seg.log_path()))?;
        }
        if let Some((from, reason)) = cut_at {
            for seg in self.segments.drain(from..).collect::<Vec<_>>() {
                if report.truncation.is_none() {
                    report.truncation = Some(Truncation {
                        segment: seg.log_path().display().to_string(),
                        position: 0,
                        bytes_removed: seg.size(),
                        log_end_offset: expected,
                        reason: reason.clone(),
                    });
                }
                report.segments_deleted.push(seg.base_offset);
                let path = seg.log_path().to_path_buf();
                seg.delete().map_err(io_err("delete segment", &path))?;
            }
            if self.segments.is_empty() {
                let seg = Segment::create(&self.dir, expected, self.config.index_interval_bytes)
                    .map_err(io_err("create segment in", &self.dir))?;
                self.segments.push(seg);
            }
            for seg in &self.segments {
                seg.flush();
            }
            fsync_dir(&self.dir).map_err(io_err("fsync", &self.dir))?;
        }
        Ok(report)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.segments[0].base_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    /// Appends an encoded batch as the leader: stamps it with the next offset
    /// and `leader_epoch`, writes it, and fsyncs if `flush.messages` says so.
    pub fn append_as_leader(&mut self, batch: &mut [u8], leader_epoch: i32) -> Result<AppendInfo, LogError> {
        let base = self.log_end_offset();
        batch::stamp(batch, base, leader_epoch);
        let header = batch::parse_header(batch).map_err(LogError::InvalidBatch)?;
        self.append_validated(batch, &header)
    }

    /// Appends a batch copied from the leader, whose offsets are already set.
    pub fn append_as_follower(&mut self, batch: &[u8]) -> Result<AppendInfo, LogError> {
        let header = batch::validate(batch).map_err(LogError::InvalidBatch)?;
        if header.base_offset != self.log_end_offset() {
            return Err(LogError::NonContiguous { expected: self.log_end_offset(), found: header.base_offset });
        }
        self.append_validated(batch, &header)
    }

    fn append_validated(&mut self, batch: &[u8], header: &BatchHeader) -> Result<AppendInfo, LogError> {
        debug_assert_eq!(header.size, batch.len());
        let active = self.active();
        if !active.is_empty() && active.size() + batch.len() as u64 > self.config.segment_bytes {
            self.roll()?;
        }
        let seg = self.segments.last_mut().expect("a log always has a segment");
        seg.append(batch, header).map_err(io_err("append to", seg.log_path()))?;
        self.unflushed_messages += u64::from(header.record_count);
        self.oldest_unflushed.get_or_insert_with(Instant::now);
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush();
        }
        Ok(AppendInfo { base_offset: header.base_offset, last_offset: header.last_offset(), bytes: batch.len() })
    }

    /// Starts a new active segment at the log end offset. The old segment is
    /// fsync'd first, as Kafka flushes a segment when it rolls.
    fn roll(&mut self) -> Result<(), LogError> {
        self.flush();
        let base = self.log_end_offset();
        let seg = Segment::create(&self.dir, base, self.config.index_interval_bytes)
            .map_err(io_err("create segment in", &self.dir))?;
        self.segments.push(seg);
        fsync_dir(&self.dir).map_err(io_err("fsync", &self.dir))?;
        Ok(())
    }

    /// Fsyncs everything appended so far and advances the recovery point.
    pub fn flush(&mut self) {
        if self.unflushed_messages == 0 && self.recovery_point == self.log_end_offset() {
            return;
        }
        let from = self.segments.partition_point(|s| s.base_offset <= self.recovery_point).saturating_sub(1);
        for seg in &self.segments[from..] {
            seg.flush();
        }
        self.recovery_point = self.log_end_offset();
        self.unflushed_messages = 0;
        self.oldest_unflushed = None;
    }

    /// Fsyncs if the oldest unflushed append is older than `flush.ms`.
    pub fn flush_if_due(&mut self, now: Instant) {
        if let (Some(ms), Some(oldest)) = (self.config.flush_ms, self.oldest_unflushed)
            && now.duration_since(oldest) >= Duration::from_millis(ms)
        {
            self.flush();
        }
    }

    /// Reads whole batches holding offsets in `[from, upto)`, about
    /// `max_bytes` worth (at least one batch when any exists).
    pub fn read(&self, from: i64, upto: i64, max_bytes: usize) -> Result<Vec<Vec<u8>>, LogError> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange { offset: from, start, end });
        }
        let mut out = Vec::new();
        let upto = upto.min(end);
        if from >= upto {
            return Ok(out);
        }
        let first = self.segments.partition_point(|s| s.base_offset <= from).saturating_sub(1);
        let mut budget = max_bytes;
        for seg in &self.segments[first..] {
            if seg.base_offset >= upto {
                break;
            }
            let full = seg
                .read(from, upto, &mut budget, &mut out)
                .map_err(|e| LogError::Damaged { path: seg.log_path().to_path_buf(), detail: e.to_string() })?;
            if full {
                break;
            }
        }
        Ok(out)
    }

    /// Removes every batch that holds an offset ≥ `offset` (a batch is kept or
    /// removed whole, so the new log end may be below `offset`). Returns the
    /// new log end offset.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        let offset = offset.max(self.log_start_offset());
        while self.segments.len() > 1 && self.active().base_offset >= offset {
            let seg = self.segments.pop().expect("checked above");
            let path = seg.log_path().to_path_buf();
            seg.delete().map_err(io_err("delete segment", &path))?;
        }
        let seg = self.segments.last_mut().expect("a log always has a segment");
        let (pos, base) = seg
            .cut_point(offset)
            .map_err(|e| LogError::Damaged { path: seg.log_path().to_path_buf(), detail: e.to_string() })?;
        seg.truncate_file(pos, base).map_err(io_err("truncate", seg.log_path()))?;
        seg.flush();
        fsync_dir(&self.dir).map_err(io_err("fsync", &self.dir))?;
        self.recovery_point = self.recovery_point.min(base);
        Ok(base)
    }
}
