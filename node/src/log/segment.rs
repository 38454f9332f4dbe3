//! One segment of a partition log: a `.log` file of batches and its sparse
//! `.index` file.
//!
//! The index maps an offset to the file position of the batch that starts
//! there, one entry per `index.interval.bytes` of log, so a fetch seeks close
//! to its offset instead of scanning the segment. Entries are 8 bytes on
//! disk: offset relative to the segment's base (u32) and position (u32).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::{self, BatchError, BatchHeader};
use crate::fsutil::fsync_or_abort;

/// Bytes per index entry on disk.
const INDEX_ENTRY_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: i64,
    pub position: u32,
}

/// What stopped a scan before the end of the file.
#[derive(Debug)]
pub enum ScanStop {
    Corrupt(BatchError),
    /// A batch whose base offset is not the one expected: a stale or foreign tail.
    WrongOffset {
        expected: i64,
        found: i64,
    },
    Io(io::Error),
}

impl std::fmt::Display for ScanStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanStop::Corrupt(e) => write!(f, "{e}"),
            ScanStop::WrongOffset { expected, found } => {
                write!(f, "batch base offset {found} where {expected} was expected")
            }
            ScanStop::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

/// The result of scanning a segment from some position.
pub struct Scan {
    /// Position just after the last valid batch.
    pub valid_end: u64,
    pub next_offset: i64,
    pub batches: u64,
    pub stop: Option<ScanStop>,
}

pub struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    log: File,
    index_file: File,
    /// Bytes of valid batches; appends go here, whatever lies beyond is garbage.
    size: u64,
    /// The offset the next batch appended to this segment gets.
    next_offset: i64,
    index: Vec<IndexEntry>,
    /// Log bytes appended since the last index entry.
    bytes_since_index: u64,
    index_interval_bytes: u64,
}

pub fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}

fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)
}

impl Segment {
    /// Creates an empty segment, replacing any files of the same name. The
    /// caller fsyncs the directory.
    pub fn create(dir: &Path, base_offset: i64, index_interval_bytes: u64) -> io::Result<Segment> {
        let log_path = dir.join(log_file_name(base_offset));
        let index_path = dir.join(index_file_name(base_offset));
        let log = open_rw(&log_path, true)?;
        log.set_len(0)?;
        let index_file = open_rw(&index_path, true)?;
        index_file.set_len(0)?;
        Ok(Segment {
            base_offset,
            log_path,
            index_path,
            log,
            index_file,
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            bytes_since_index: 0,
            index_interval_bytes,
        })
    }

    /// Opens an existing segment, loading its index as far as it is sane. The
    /// segment's end is not known until [`Segment::scan`] or
    /// [`Segment::set_trusted_end`] runs.
    pub fn open(dir: &Path, base_offset: i64, index_interval_bytes: u64) -> io::Result<Segment> {
        let log_path = dir.join(log_file_name(base_offset));
        let index_path = dir.join(index_file_name(base_offset));
        let log = open_rw(&log_path, false)?;
        let index_file = open_rw(&index_path, true)?;
        let size = log.metadata()?.len();
        let mut seg = Segment {
            base_offset,
            log_path,
            index_path,
            log,
            index_file,
            size,
            next_offset: base_offset,
            index: Vec::new(),
            bytes_since_index: 0,
            index_interval_bytes,
        };
        seg.load_index()?;
        Ok(seg)
    }

    /// Reads the index file, keeping the longest prefix of entries that are
    /// strictly increasing and point inside the log file.
    fn load_index(&mut self) -> io::Result<()> {
        let bytes = fs::read(&self.index_path)?;
        let mut prev: Option<IndexEntry> = None;
        for chunk in bytes.chunks_exact(INDEX_ENTRY_LEN) {
            let rel = u32::from_be_bytes(chunk[0..4].try_into().unwrap());
            let position = u32::from_be_bytes(chunk[4..8].try_into().unwrap());
            let entry = IndexEntry { offset: self.base_offset + i64::from(rel), position };
            let increasing = prev.is_none_or(|p| entry.offset > p.offset && entry.position > p.position);
            if !increasing || u64::from(position) >= self.size {
                break;
            }
            self.index.push(entry);
            prev = Some(entry);
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn index_entries(&self) -> &[IndexEntry] {
        &self.index
    }

    /// For a segment before the recovery point: its end is the file's end
    /// and its next offset is the next segment's base.
    pub fn set_trusted_end(&mut self, next_offset: i64) {
        self.next_offset = next_offset;
    }

    /// The position of the last indexed batch at or before `offset`.
    fn seek(&self, offset: i64) -> IndexEntry {
        let i = self.index.partition_point(|e| e.offset <= offset);
        if i == 0 { IndexEntry { offset: self.base_offset, position: 0 } } else { self.index[i - 1] }
    }

    /// Reads the whole batch at `pos`, or says why there is none.
    fn read_batch_at(&self, pos: u64, end: u64) -> Result<Vec<u8>, ScanStop> {
        let available = (end - pos) as usize;
        let mut prefix = [0u8; batch::LENGTH_PREFIX_LEN];
        if available < prefix.len() {
            return Err(ScanStop::Corrupt(BatchError::Truncated { needed: prefix.len(), available }));
        }
        self.log.read_exact_at(&mut prefix, pos).map_err(ScanStop::Io)?;
        let size = batch::claimed_size(&prefix).map_err(ScanStop::Corrupt)?;
        if size > available {
            return Err(ScanStop::Corrupt(BatchError::Truncated { needed: size, available }));
        }
        let mut buf = vec![0u8; size];
        self.log.read_exact_at(&mut buf, pos).map_err(ScanStop::Io)?;
        Ok(buf)
    }

    /// Validates every batch from the start of the file, rebuilding the index
    /// and the segment's end as it goes. Stops at the first invalid batch;
    /// the caller decides whether to truncate there.
    pub fn scan(&mut self, expected_base: i64) -> Scan {
        self.index.clear();
        self.bytes_since_index = 0;
        let file_len = self.size;
        let (mut pos, mut next, mut batches) = (0u64, expected_base, 0u64);
        let mut stop = None;
        while pos < file_len {
            let header =
                match self.read_batch_at(pos, file_len).and_then(|b| batch::validate(&b).map_err(ScanStop::Corrupt)) {
                    Ok(h) => h,
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                };
            if header.base_offset != next {
                stop = Some(ScanStop::WrongOffset { expected: next, found: header.base_offset });
                break;
            }
            self.note_index(pos, &header);
            pos += header.size as u64;
            next = header.next_offset();
            batches += 1;
        }
        self.size = pos;
        self.next_offset = next;
        Scan { valid_end: pos, next_offset: next, batches, stop }
    }

    /// Adds an index entry for the batch at `pos` if enough bytes passed.
    fn note_index(&mut self, pos: u64, header: &BatchHeader) {
        if pos > 0 && self.bytes_since_index >= self.index_interval_bytes {
            self.index.push(IndexEntry { offset: header.base_offset, position: pos as u32 });
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.size as u64;
    }

    /// Writes the in-memory index to the index file, replacing it.
    pub fn write_index(&self) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(self.index.len() * INDEX_ENTRY_LEN);
        for e in &self.index {
            bytes.extend_from_slice(&((e.offset - self.base_offset) as u32).to_be_bytes());
            bytes.extend_from_slice(&e.position.to_be_bytes());
        }
        self.index_file.set_len(0)?;
        self.index_file.write_all_at(&bytes, 0)
    }

    /// Cuts the log file at `size` bytes (which ends a valid batch) and sets
    /// the segment's end to `next_offset`.
    pub fn truncate_file(&mut self, size: u64, next_offset: i64) -> io::Result<()> {
        self.log.set_len(size)?;
        self.size = size;
        self.next_offset = next_offset;
        self.index.retain(|e| u64::from(e.position) < size);
        self.bytes_since_index = size - self.index.last().map_or(0, |e| u64::from(e.position));
        self.write_index()
    }

    /// Appends one stamped, validated batch.
    pub fn append(&mut self, bytes: &[u8], header: &BatchHeader) -> io::Result<()> {
        debug_assert_eq!(header.base_offset, self.next_offset);
        debug_assert!(self.size + bytes.len() as u64 <= u64::from(u32::MAX), "segment positions fit u32");
        let pos = self.size;
        // pwrite at the logical end: a failed partial write leaves garbage
        // beyond `size`, which the next append overwrites and recovery cuts.
        self.log.write_all_at(bytes, pos)?;
        let indexed = self.index.len();
        self.note_index(pos, header);
        if self.index.len() > indexed {
            let e = self.index[indexed];
            let mut entry = [0u8; INDEX_ENTRY_LEN];
            entry[0..4].copy_from_slice(&((e.offset - self.base_offset) as u32).to_be_bytes());
            entry[4..8].copy_from_slice(&e.position.to_be_bytes());
            self.index_file.write_all_at(&entry, (indexed * INDEX_ENTRY_LEN) as u64)?;
        }
        self.size += bytes.len() as u64;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Appends to `out` the whole batches that hold offsets in `[from, upto)`,
    /// starting near `from` by the index, while they fit in `budget` bytes.
    /// A batch is always taken when `out` is empty, so a consumer makes
    /// progress even past an oversized batch. Returns true when the budget
    /// stopped the read.
    pub fn read(&self, from: i64, upto: i64, budget: &mut usize, out: &mut Vec<Vec<u8>>) -> Result<bool, ScanStop> {
        let mut pos = u64::from(self.seek(from).position);
        while pos < self.size {
            let bytes = self.read_batch_at(pos, self.size)?;
            let header = batch::parse_header(&bytes).map_err(ScanStop::Corrupt)?;
            pos += header.size as u64;
            if header.next_offset() <= from {
                continue;
            }
            if header.base_offset >= upto {
                return Ok(false);
            }
            if !out.is_empty() && bytes.len() > *budget {
                return Ok(true);
            }
            *budget = budget.saturating_sub(bytes.len());
            out.push(bytes);
        }
        Ok(false)
    }

    /// Position and base offset of the first batch that holds `offset` or
    /// anything after it: where a truncation to `offset` cuts, since a
    /// batch is kept or removed whole. The segment's end when there is none.
    pub fn cut_point(&self, offset: i64) -> Result<(u64, i64), ScanStop> {
        let mut pos = u64::from(self.seek(offset).position);
        while pos < self.size {
            let bytes = self.read_batch_at(pos, self.size)?;
            let header = batch::parse_header(&bytes).map_err(ScanStop::Corrupt)?;
            if header.next_offset() > offset {
                return Ok((pos, header.base_offset));
            }
            pos += header.size as u64;
        }
        Ok((self.size, self.next_offset))
    }

    pub fn flush(&self) {
        fsync_or_abort(&self.log, &self.log_path);
        fsync_or_abort(&self.index_file, &self.index_path);
    }

    /// Deletes both files; the caller fsyncs the directory.
    pub fn delete(self) -> io::Result<()> {
        fs::remove_file(&self.log_path)?;
        match fs::remove_file(&self.index_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}
