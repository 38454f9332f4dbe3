//! The controller's durable raft log and vote: openraft's [`RaftLogStorage`].
//!
//! Files in the controller directory:
//! - `raft-log`: CRC-framed records (see [`codec`]), appended and fsync'd
//!   before openraft hears the entries are flushed. The first record may be
//!   a `Purged` marker; a purge rewrites the file atomically without the
//!   purged entries. A conflict truncation cuts the file and fsyncs.
//! - `vote` and `committed`: one CRC-framed record each, replaced with
//!   [`fsutil::write_atomic`] (tmp, fsync, rename, fsync dir) before the call
//!   returns.
//!
//! At start-up a torn or corrupt tail of `raft-log` (a short frame, a CRC
//! mismatch, an entry that does not follow its predecessor) is cut off,
//! fsync'd and logged, never a panic. A corrupt `vote` is an error: losing a
//! vote could let this node vote twice in one term.
//!
//! Unpurged entries are also kept in memory: the controller log is small,
//! and openraft bounds it by purging after each snapshot.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::codec;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::fsutil;

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "vote";
const COMMITTED_FILE: &str = "committed";

/// One record of `raft-log`.
#[derive(Serialize, Deserialize)]
enum LogRecord {
    /// Every entry up to and including this id was purged.
    Purged(LogId),
    Entry(Entry),
}

/// The same record by reference, so appending does not clone entries.
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Purged(&'a LogId),
    Entry(&'a Entry),
}

/// What readers see: entries and pointers, updated after each write is durable.
#[derive(Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// The open log file; only the store's own (serialized) writes touch it.
struct LogFile {
    dir: PathBuf,
    file: File,
    /// Byte length of the valid log: where the next frame goes.
    len: u64,
    /// Byte offset of each entry's frame, for truncation.
    offsets: BTreeMap<u64, u64>,
}

/// The raft log store. Cloning shares the same log, which is how openraft's
/// log readers see it.
#[derive(Clone)]
pub struct LogStore {
    mem: Arc<Mutex<LogMem>>,
    file: Arc<Mutex<LogFile>>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        fsutil::create_dir_durable(dir)?;
        let vote = read_single::<Vote>(&dir.join(VOTE_FILE))?;
        let committed = read_single::<LogId>(&dir.join(COMMITTED_FILE))?;
        let path = dir.join(LOG_FILE);
        let created = !path.exists();
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        if created {
            fsutil::fsync_or_abort(&file, &path);
            fsutil::fsync_dir(dir)?;
        }
        let bytes = std::fs::read(&path)?;
        let scan = codec::scan::<LogRecord>(&bytes);
        let mut mem = LogMem { vote, committed, ..LogMem::default() };
        let mut offsets = BTreeMap::new();
        let mut valid_len = scan.valid_len;
        let mut why_cut = scan.tail_error.map(|e| e.to_string());
        for (offset, record) in scan.records {
            match record {
                LogRecord::Purged(id) => {
                    mem.entries.retain(|i, _| *i > id.index);
                    offsets.retain(|i, _| *i > id.index);
                    mem.last_purged = Some(id);
                }
                LogRecord::Entry(entry) => {
                    let index = entry.log_id.index;
                    // Appends overwrite by cutting the file first, so an
                    // index at or below its predecessor means corruption.
                    let previous = mem.entries.keys().next_back().copied().or(mem.last_purged.map(|p| p.index));
                    if previous.is_some_and(|p| index <= p) {
                        valid_len = offset;
                        why_cut = Some(format!("entry {index} does not follow {previous:?}"));
                        break;
                    }
                    offsets.insert(index, offset);
                    mem.entries.insert(index, entry);
                }
            }
        }
        if valid_len < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(), valid_len, file_len = bytes.len(), reason = why_cut.as_deref().unwrap_or("?"),
                "controller log: cutting a torn or corrupt tail"
            );
            file.set_len(valid_len)?;
            fsutil::fsync_or_abort(&file, &path);
        }
        let log = LogFile { dir: dir.to_path_buf(), file, len: valid_len, offsets };
        Ok(LogStore { mem: Arc::new(Mutex::new(mem)), file: Arc::new(Mutex::new(log)) })
    }

    /// Whether nothing was ever stored here: no vote and no log.
    pub fn is_pristine(&self) -> bool {
        let mem = self.mem.lock();
        mem.vote.is_none() && mem.entries.is_empty() && mem.last_purged.is_none()
    }

    /// Runs file work on the blocking pool: fsync must not stall the runtime.
    async fn with_file<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogFile) -> io::Result<R> + Send + 'static,
    ) -> io::Result<R> {
        let file = self.file.clone();
        match tokio::task::spawn_blocking(move || f(&mut file.lock())).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(io_err(e)),
        }
    }

    fn last_log_id(mem: &LogMem) -> Option<LogId> {
        mem.entries.values().next_back().map(|e| e.log_id).or(mem.last_purged)
    }
}

/// Reads a single-record file; a missing file is `None`, a corrupt one an error.
fn read_single<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => codec::decode_single(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl LogFile {
    fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Writes frames at the end of the log and fsyncs them.
    fn append(&mut self, frames: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(frames.iter().map(|f| f.1.len()).sum());
        let mut at = self.len;
        let mut offsets = Vec::with_capacity(frames.len());
        for (index, frame) in &frames {
            offsets.push((*index, at));
            at += frame.len() as u64;
            buf.extend_from_slice(frame);
        }
        self.file.write_all_at(&buf, self.len)?;
        fsutil::fsync_or_abort(&self.file, &self.path());
        self.len = at;
        self.offsets.extend(offsets);
        Ok(())
    }

    /// Cuts the log at the frame of entry `index`, if it is present.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some(&offset) = self.offsets.get(&index) else { return Ok(()) };
        self.file.set_len(offset)?;
        fsutil::fsync_or_abort(&self.file, &self.path());
        self.len = offset;
        self.offsets.split_off(&index);
        Ok(())
    }

    /// Replaces the log with a `Purged` marker followed by `kept` entries.
    fn rewrite(&mut self, purged: &LogId, kept: &[Entry]) -> io::Result<()> {
        let mut bytes = codec::encode(&LogRecordRef::Purged(purged));
        let mut offsets = BTreeMap::new();
        for e in kept {
            offsets.insert(e.log_id.index, bytes.len() as u64);
            bytes.extend(codec::encode(&LogRecordRef::Entry(e)));
        }
        let path = self.path();
        fsutil::write_atomic(&path, &bytes)?;
        self.file = OpenOptions::new().read(true).write(true).open(&path)?;
        self.len = bytes.len() as u64;
        self.offsets = offsets;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let mem = self.mem.lock();
        Ok(mem.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem.lock();
        Ok(LogState { last_purged_log_id: mem.last_purged, last_log_id: Self::last_log_id(&mem) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes = codec::encode(vote);
        self.with_file(move |f| fsutil::write_atomic(&f.dir.join(VOTE_FILE), &bytes))
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.mem.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.mem.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let Some(id) = committed else { return Ok(()) };
        if self.mem.lock().committed == Some(id) {
            return Ok(());
        }
        let bytes = codec::encode(&id);
        self.with_file(move |f| fsutil::write_atomic(&f.dir.join(COMMITTED_FILE), &bytes))
            .await
            .map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        self.mem.lock().committed = Some(id);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.mem.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(first) = entries.first().map(|e| e.log_id) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        for pair in entries.windows(2) {
            if pair[1].log_id.index != pair[0].log_id.index + 1 {
                let err = io_err(format!(
                    "entries {} and {} are not consecutive",
                    pair[0].log_id.index, pair[1].log_id.index
                ));
                return Err(StorageIOError::write_logs(AnyError::new(&err)).into());
            }
        }
        // openraft truncates conflicts before appending; an append over
        // existing entries (openraft's storage suite does it) overwrites
        // them, so the file never holds an index twice.
        let last = Self::last_log_id(&self.mem.lock()).map(|l| l.index);
        if last.is_some_and(|l| l >= first.index) {
            self.truncate(first).await?;
        }
        let frames: Vec<(u64, Vec<u8>)> =
            entries.iter().map(|e| (e.log_id.index, codec::encode(&LogRecordRef::Entry(e)))).collect();
        match self.with_file(move |f| f.append(frames)).await {
            Ok(()) => {
                let mut mem = self.mem.lock();
                mem.entries.extend(entries.into_iter().map(|e| (e.log_id.index, e)));
                drop(mem);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(AnyError::new(&e));
                callback.log_io_completed(Err(e));
                Err(err.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let index = log_id.index;
        self.with_file(move |f| f.truncate(index)).await.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.mem.lock().entries.split_off(&index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let kept: Vec<Entry> = {
            let mem = self.mem.lock();
            if mem.last_purged.is_some_and(|p| p.index >= log_id.index) {
                return Ok(());
            }
            mem.entries.range(log_id.index + 1..).map(|(_, e)| e.clone()).collect()
        };
        self.with_file(move |f| f.rewrite(&log_id, &kept))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let mut mem = self.mem.lock();
        mem.entries = mem.entries.split_off(&(log_id.index + 1));
        mem.last_purged = Some(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn blank(index: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Blank }
    }

    fn indices(store: &LogStore) -> Vec<u64> {
        store.mem.lock().entries.keys().copied().collect()
    }

    /// A half-written frame at the end of the log (a crash mid-append) is
    /// cut at start-up and the log stays usable.
    #[tokio::test]
    async fn a_torn_tail_is_cut_at_open_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        store.blocking_append((1..=3).map(blank)).await.unwrap();
        drop(store);
        let path = dir.path().join(LOG_FILE);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&codec::encode(&LogRecordRef::Entry(&blank(4)))[..10]).unwrap();
        drop(f);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indices(&store), vec![1, 2, 3]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        store.blocking_append([blank(4)]).await.unwrap();
        drop(store);
        assert_eq!(indices(&LogStore::open(dir.path()).unwrap()), vec![1, 2, 3, 4]);
    }

    /// Truncation and purge survive a reopen.
    #[tokio::test]
    async fn truncate_and_purge_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        store.blocking_append((1..=6).map(blank)).await.unwrap();
        store.truncate(blank(5).log_id).await.unwrap();
        store.purge(blank(2).log_id).await.unwrap();
        store.blocking_append([blank(5)]).await.unwrap();
        drop(store);
        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indices(&store), vec![3, 4, 5]);
        let state = store.get_log_state().await.unwrap();
        assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(blank(2).log_id), Some(blank(5).log_id)));
    }

    /// A vote file that fails its CRC stops the start, rather than letting
    /// the node forget whom it voted for.
    #[test]
    fn a_corrupt_vote_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = codec::encode(&Vote::new(3, 1));
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        std::fs::write(dir.path().join(VOTE_FILE), bytes).unwrap();
        let err = LogStore::open(dir.path()).err().expect("a corrupt vote must not open");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
